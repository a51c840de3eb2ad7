"""Tests for scaleup_analysis.rollout.stepped_wedge (design, power, simulated power, analysis).

References:
* published example: swCRTdesign README (J. Hughes' package; the Hussey & Hughes 2007 design with
  24 clusters, 4 steps, n = 120 per cluster-period, p0 = 0.05, p1 = 0.035, tau = 0.01):
  ``swPwr(...)`` = 0.7861896;
* ``tests/reference/ref_stepped_wedge.R`` -> ``stepped_wedge.json``: GLS variance from the full
  stacked design with a block-diagonal covariance, Hussey & Hughes' closed form, power and
  detectable effect (uniroot) for 5 designs x 3 options; lmerTest::lmer fits (REML and ML) of a
  simulated 18-cluster trial; lmerTest::lmer fits with a cluster x period random effect
  (``(1 | cluster) + (1 | cluster:period)``) of 3 simulated data sets (complete, incomplete with
  unequal cluster-period sizes, singular) x (REML, ML), each with lme4's default optimiser and with
  BOBYQA run to rhoend = 1e-12;
* in this file: Hussey & Hughes' closed form written out by hand, and GLS computed from scratch
  with numpy on the stacked design (incomplete design, unequal cluster sizes).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, stats

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("stepped_wedge")
DESIGNS = ["hh24", "rss18", "uneven", "incomplete", "unequal_m"]
OPTIONS = ["continuous", "continuous_cp", "binary"]


def _design(name):
    X = np.array(REF["designs"][name]["X"], dtype=float)  # None -> nan
    m = REF["designs"][name].get("m")
    per_step = {"hh24": [6] * 4, "rss18": [3] * 6, "uneven": [4, 3, 3], "incomplete": [3] * 6,
                "unequal_m": [3] * 6}[name]
    baseline = 2 if name == "uneven" else 1
    d = sa.stepped_wedge_design(X.shape[0], len(per_step), clusters_per_step=per_step,
                                baseline_periods=baseline, incomplete=np.isnan(X),
                                cluster_sizes=m)
    np.testing.assert_array_equal(d.treatment, X)  # exact: same schedule as the R script
    return d


def _power(design, option):
    o = REF["options"][option]
    family = {"continuous": "gaussian", "binary": "binomial"}[o["outcome"]]  # fixture's outcome type
    kw = dict(alpha=0.05, family=family, cluster_period_tau2=o["gamma2"])
    if design.cluster_sizes is None:
        kw["m"] = o["m"]
    if family == "binomial":
        kw.update(p0=o["p0"], tau2=o["tau2"])
    else:
        kw.update(sigma2=o["sigma2"], icc=o["icc"])
    return sa.stepped_wedge_power(design, o["effect"], **kw)


# ---------------------------------------------------------------------------------------------
# power vs R, published example and hand computations
# ---------------------------------------------------------------------------------------------
def test_grid_covers_every_design_and_option():
    assert {(c["design"], c["option"]) for c in REF["cells"]} == set(itertools.product(DESIGNS, OPTIONS))


@pytest.mark.parametrize("cell", REF["cells"], ids=lambda c: f"{c['design']}-{c['option']}")
def test_power_matches_r(cell):
    res = _power(_design(cell["design"]), cell["option"])
    # closed forms: 1e-6 relative
    assert res.variance == pytest.approx(cell["variance"], rel=1e-6)
    assert res.se == pytest.approx(cell["se"], rel=1e-6)
    assert res.power == pytest.approx(cell["power"], rel=1e-6)
    assert res.sigma2 == pytest.approx(cell["sigma2"], rel=1e-6)
    assert res.tau2 == pytest.approx(cell["tau2"], rel=1e-6)
    # root finding in both (uniroot tol 1e-13, brentq xtol 1e-14): 1e-6 relative
    assert res.detectable_effect == pytest.approx(cell["detectable_effect"], rel=1e-6)
    if cell["variance_closed_form"] is None:
        assert res.variance_closed_form is None
    else:
        assert res.variance_closed_form == pytest.approx(cell["variance_closed_form"], rel=1e-6)


def test_published_swcrtdesign_example():
    # swCRTdesign README: swPwr(swDsn(c(6,6,6,6)), distn = "binomial", n = 120, mu0 = 0.05,
    # mu1 = 0.035, tau = 0.01, eta = 0, rho = 0, gamma = 0, alpha = 0.05) -> 0.7861896
    d = sa.stepped_wedge_design(24, 4)
    res = sa.stepped_wedge_power(d, -0.015, family="binomial", p0=0.05, tau2=0.01**2, m=120)
    assert res.power == pytest.approx(0.7861896, abs=5e-8)  # published to 7 decimals


def _hh_by_hand(I, T, per_step, baseline, s2, tau2):
    """Hussey & Hughes (2007) eq. 8 written from the paper, schedule built explicitly."""
    X = np.zeros((I, T))
    row = 0
    for s, k in enumerate(per_step, start=1):
        for _ in range(k):
            X[row, baseline + s - 1:] = 1.0
            row += 1
    U = X.sum()
    W = sum(X[:, j].sum() ** 2 for j in range(T))
    V = sum(X[i, :].sum() ** 2 for i in range(I))
    return I * s2 * (s2 + T * tau2) / ((I * U - W) * s2 + (U * U + I * T * U - T * W - I * V) * tau2)


@pytest.mark.parametrize("I, steps, per_step, baseline, sigma2, tau2, m", [
    (18, 6, [3] * 6, 1, 1.0, 0.05, 20),
    (12, 4, [3] * 4, 2, 4.0, 0.3, 10),
    (10, 5, [2] * 5, 1, 0.25, 0.0, 50),
    (9, 3, [4, 3, 2], 1, 2.0, 1.5, 5),
])
def test_gls_equals_hussey_hughes_closed_form(I, steps, per_step, baseline, sigma2, tau2, m):
    d = sa.stepped_wedge_design(I, steps, clusters_per_step=per_step, baseline_periods=baseline)
    res = sa.stepped_wedge_power(d, 0.5, sigma2=sigma2, tau2=tau2, m=m)
    hand = _hh_by_hand(I, baseline + steps, per_step, baseline, sigma2 / m, tau2)
    assert res.variance == pytest.approx(hand, rel=1e-9)  # closed form vs GLS algebra
    assert res.variance_closed_form == pytest.approx(hand, rel=1e-12)
    # power by hand, both tails (Hussey & Hughes 2007)
    z = stats.norm.ppf(0.975)
    se = math.sqrt(hand)
    assert res.power == pytest.approx(stats.norm.cdf(0.5 / se - z) + stats.norm.cdf(-0.5 / se - z),
                                      rel=1e-8)


def _gls_from_scratch(X, M, sigma2, tau2, gamma2=0.0):
    """Stacked GLS with scipy block_diag: Var(theta) = [(D' V^-1 D)^-1]_theta."""
    I, T = X.shape
    Ds, Vs = [], []
    for i in range(I):
        o = np.flatnonzero(~np.isnan(X[i]))
        D = np.zeros((o.size, T + 1))
        D[np.arange(o.size), o] = 1
        D[:, T] = X[i, o]
        Ds.append(D)
        Vs.append(np.diag(sigma2 / M[i, o] + gamma2) + tau2 * np.ones((o.size, o.size)))
    D = np.vstack(Ds)
    V = linalg.block_diag(*Vs)
    return np.linalg.inv(D.T @ np.linalg.solve(V, D))[T, T]


def test_incomplete_and_unequal_sizes_against_gls_from_scratch():
    rng = np.random.default_rng(7)
    mask = rng.random((12, 5)) < 0.2
    mask[:, 0] = False  # keep every cluster and the baseline observed
    d = sa.stepped_wedge_design(12, 4, incomplete=mask)
    M = rng.integers(5, 40, size=(12, 5)).astype(float)
    res = sa.stepped_wedge_power(d, 0.4, sigma2=2.0, tau2=0.2, m=M, cluster_period_tau2=0.05)
    ref = _gls_from_scratch(d.treatment, M, 2.0, 0.2, 0.05)
    assert res.variance == pytest.approx(ref, rel=1e-9)  # same estimator, different algebra
    assert res.variance_closed_form is None
    assert not d.complete


def test_detectable_effect_and_icc_parametrisation():
    d = sa.stepped_wedge_design(18, 6)
    res = sa.stepped_wedge_power(d, 0.2, sigma2=1.0, icc=0.1, m=15, power=0.9)
    assert res.tau2 == pytest.approx(0.1 / 0.9, rel=1e-12)  # tau2 = sigma2 icc / (1 - icc)
    at = sa.stepped_wedge_power(d, res.detectable_effect, sigma2=1.0, icc=0.1, m=15)
    assert at.power == pytest.approx(0.9, rel=1e-8)  # root of power(delta) = 0.9
    assert "power" in res.summary() and res.to_frame().shape[0] == 1
    p0 = sa.stepped_wedge_power(d, -0.05, family="binomial", p0=0.2, icc=0.02, m=30,
                                binomial_variance="p0")
    assert p0.sigma2 == pytest.approx(0.2 * 0.8, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# simulated power
# ---------------------------------------------------------------------------------------------
def test_power_sim_agrees_with_closed_form_within_mc_error():
    d = sa.stepped_wedge_design(18, 6)
    for effect in (0.15, 0.25):
        sim = sa.stepped_wedge_power_sim(d, effect, sigma2=1.0, icc=0.05, m=10, n_sim=1000, seed=11)
        ana = sa.stepped_wedge_power(d, effect, sigma2=1.0, icc=0.05, m=10).power
        mc = math.sqrt(ana * (1 - ana) / 1000)
        assert abs(sim.power - ana) < 4 * mc  # 4 Monte-Carlo SEs
        assert abs(sim.mean_estimate - effect) < 4 * sim.estimates.std(ddof=1) / math.sqrt(1000)
    # binary outcome: normal approximation of Hussey & Hughes, cluster-period proportions
    hh = sa.stepped_wedge_design(24, 4)
    sim = sa.stepped_wedge_power_sim(hh, -0.015, family="binomial", p0=0.05, tau2=1e-4, m=120,
                                     n_sim=1000, seed=3)
    assert abs(sim.power - 0.7861896) < 4 * math.sqrt(0.786 * 0.214 / 1000)
    again = sa.stepped_wedge_power_sim(hh, -0.015, family="binomial", p0=0.05, tau2=1e-4, m=120,
                                       n_sim=1000, seed=3)
    np.testing.assert_array_equal(sim.estimates, again.estimates)  # seeded, reproducible
    assert sim.to_frame().shape == (1000, 3) and "Simulated power" in sim.summary()


# ---------------------------------------------------------------------------------------------
# analysis vs lmerTest
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_analysis_matches_lmertest(method):
    df = pd.DataFrame(REF["analysis_data"])
    res = sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", reml=method == "REML")
    ref = REF["analysis"][method]
    # iterative mixed model: 1e-4 relative
    for f in ("estimate", "se", "df", "pvalue", "tau2", "sigma2"):
        assert getattr(res, f) == pytest.approx(ref["p_value" if f == "pvalue" else f], rel=1e-4), f  # fixture key
    assert res.n_clusters == 18 and res.n_obs == len(df)
    assert res.plot_period_means().get_legend() is not None


def test_analysis_hh_loglik_and_fixed_parameters_match_lmertest():
    df = pd.DataFrame(REF["analysis_data"])
    for method in ("REML", "ML"):
        res = sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", reml=method == "REML")
        assert res.loglik == pytest.approx(REF["hh_loglik"][method], rel=1e-6)  # deviance at optimum: 1e-6
        # the Hussey & Hughes model fixes gamma2 = 0, hence CAC = 1 and ICC = tau2 / (tau2 + sigma2)
        assert res.gamma2 == 0.0 and res.cac == 1.0 and not res.cluster_period_re
        assert res.icc == pytest.approx(res.tau2 / (res.tau2 + res.sigma2), rel=1e-12)
        assert res.n_cluster_periods == 18 * 7
        assert res.fixed.index[-1] == "treatment"
        assert list(res.fixed.index[1:3]) == ["period[T.2]", "period[T.3]"]


def test_analysis_bad_input():
    df = pd.DataFrame(REF["analysis_data"]).head(200)
    with pytest.raises(ScaleupDataError, match="cluster_period_re must be True or False"):
        sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re="yes")
    with pytest.raises(ScaleupDataError, match="'arm'"):
        sa.stepped_wedge_analysis(df, "y", "cluster", "period", "arm")
    bad = df.assign(treatment=df["treatment"] * 2)
    with pytest.raises(ScaleupDataError, match="must be 0/1"):
        sa.stepped_wedge_analysis(bad, "y", "cluster", "period", "treatment")


# ---------------------------------------------------------------------------------------------
# design
# ---------------------------------------------------------------------------------------------
def test_design_schedule_and_outputs():
    d = sa.stepped_wedge_design(7, 3, baseline_periods=2)
    assert d.clusters_per_step == (3, 2, 2)  # remainder to the earliest steps
    assert d.n_periods == 5
    # step-1 clusters exposed from period baseline + 1 = 3
    np.testing.assert_array_equal(d.treatment[0], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(d.treatment[-1], [0, 0, 0, 0, 1])
    f = d.to_frame()
    assert len(f) == 35 and f["treatment"].sum() == 3 * 3 + 2 * 2 + 2 * 1
    mask = np.zeros((7, 5), bool)
    mask[6, :2] = True
    di = sa.stepped_wedge_design(7, 3, baseline_periods=2, incomplete=mask, cluster_sizes=25)
    assert np.isnan(di.treatment[6, :2]).all() and "incomplete" in di.summary()
    ax = di.plot_schedule()
    assert ax.get_xlabel() == "period" and len(ax.patches) == 35
    assert "m" in di.to_frame()
    assert sa.stepped_wedge_power(di, 0.3, sigma2=1, tau2=0.1).se > 0  # m from cluster_sizes


def test_design_and_power_bad_input():
    with pytest.raises(ScaleupDataError, match="sum"):
        sa.stepped_wedge_design(6, 3, clusters_per_step=[1, 2, 2])
    with pytest.raises(ScaleupDataError, match="mask"):
        sa.stepped_wedge_design(6, 3, incomplete=np.zeros((6, 3), bool))
    with pytest.raises(ScaleupDataError, match="no observed period"):
        sa.stepped_wedge_design(2, 1, incomplete=[[True, True], [False, False]])
    d = sa.stepped_wedge_design(6, 3)
    with pytest.raises(ScaleupDataError, match="exactly one of tau2 or icc"):
        sa.stepped_wedge_power(d, 0.3, sigma2=1, m=10)
    with pytest.raises(ScaleupDataError, match="needs p0"):
        sa.stepped_wedge_power(d, 0.1, family="binomial", tau2=0.01, m=10)
    with pytest.raises(ScaleupDataError, match="give m"):
        sa.stepped_wedge_power(d, 0.3, sigma2=1, tau2=0.1)
    # observe only period 1 (all control) and period 4 (all exposed): treatment = period effect
    only_first_last = np.ones((6, 4), bool)
    only_first_last[:, [0, 3]] = False
    with pytest.raises(ScaleupDataError, match="identifiable"):
        sa.stepped_wedge_power(sa.stepped_wedge_design(6, 3, incomplete=only_first_last), 0.3,
                               sigma2=1, tau2=0.1, m=5)


def test_variance_invariant_to_cluster_relabelling():
    rng = np.random.default_rng(5)
    mask = rng.random((12, 5)) < 0.15
    mask[:, 0] = False
    d = sa.stepped_wedge_design(12, 4, incomplete=mask)
    M = rng.integers(5, 30, size=12).astype(float)
    perm = rng.permutation(12)
    X = d.treatment[perm]
    a = sa.stepped_wedge_power(d, 0.3, sigma2=1.0, tau2=0.1, m=M).variance
    assert _gls_from_scratch(X, np.repeat(M[perm, None], 5, axis=1), 1.0, 0.1) == pytest.approx(a, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# analysis with a cluster x period random effect vs lmerTest
# ---------------------------------------------------------------------------------------------
NESTED_DATASETS = ["complete", "incomplete", "singular"]
NESTED_METHODS = ["REML", "ML"]
NESTED_FIELDS = ("estimate", "se", "df", "pvalue", "ci_low", "ci_high", "tau2", "gamma2", "sigma2",
                 "icc", "cac", "loglik")


def _nested_fit(dataset, method, **kw):
    df = pd.DataFrame(REF["nested_data"][dataset])
    return sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=True,
                                     reml=method == "REML", **kw)


def test_nested_grid_covers_every_dataset_and_method():
    cells = {(c["dataset"], c["method"]) for c in REF["nested"]}
    assert cells == set(itertools.product(NESTED_DATASETS, NESTED_METHODS))
    assert len(REF["nested"]) == 6


def _close(ours, theirs, rel):
    if theirs == 0:  # a variance at the boundary: lme4 reports exactly 0
        return abs(ours) < 1e-10
    return ours == pytest.approx(theirs, rel=rel)


@pytest.mark.parametrize("cell", REF["nested"], ids=lambda c: f"{c['dataset']}-{c['method']}")
def test_nested_matches_lmertest(cell, recwarn):
    res = _nested_fit(cell["dataset"], cell["method"])
    df = pd.DataFrame(REF["nested_data"][cell["dataset"]])
    assert res.n_obs == cell["nobs"] == len(df) and res.cluster_period_re
    assert res.n_cluster_periods == df.groupby(["cluster", "period"]).ngroups
    # iterative mixed model vs lmer's default optimiser: 1e-4 relative (observed <= 5e-5: lme4's
    # nloptwrap stops at xtol_abs = 1e-8 on theta, loose in flat directions of the likelihood)
    for f in NESTED_FIELDS:
        assert _close(getattr(res, f), cell["p_value" if f == "pvalue" else f], 1e-4), f  # fixture key
    fe = res.fixed
    assert len(fe) == len(cell["fixed"]["term"])
    for col in ("estimate", "se", "df"):
        for ours, theirs in zip(fe[col], cell["fixed"][col], strict=True):
            assert ours == pytest.approx(theirs, rel=1e-4), col  # all fixed effects: 1e-4 relative
    # against BOBYQA run to rhoend = 1e-12 (the optimum located precisely): 1e-5 relative on
    # every field and fixed effect (observed <= 1e-6; kept at 1e-5 because Satterthwaite df and
    # p-values rest on numerical derivatives, numDeriv's Richardson scheme, on both sides)
    tight = cell["tight"]
    for col in ("estimate", "se", "df"):
        for ours, theirs in zip(fe[col], tight["fixed"][col], strict=True):
            assert ours == pytest.approx(theirs, rel=1e-5), col
    for f in NESTED_FIELDS:
        if f == "gamma2" and tight["singular"]:
            assert res.gamma2 < 1e-10 and tight["gamma2"] < 1e-10  # both at the boundary
            continue
        if f == "cac" and tight["singular"]:
            assert res.cac == pytest.approx(1.0, abs=1e-9)
            continue
        assert _close(getattr(res, f), tight["p_value" if f == "pvalue" else f], 1e-5), f  # fixture key
    # log-likelihood at the optimum: ours at least as high as lme4's (never a worse optimum), and
    # equal to 1e-9 relative to the tight fit
    assert res.loglik >= cell["loglik"] - 1e-9
    assert res.loglik == pytest.approx(tight["loglik"], rel=1e-9)
    # lme4's isSingular() <-> our boundary warning
    singular_warnings = [w for w in recwarn.list if issubclass(w.category, sa.ScaleupWarning)
                         and "singular" in str(w.message)]
    assert res.singular == cell["singular"] == bool(singular_warnings)
    if cell["singular"]:
        assert "gamma2 (cluster x period)" in str(singular_warnings[0].message)
        assert res.gamma2 == 0.0 and "singular" in res.summary()


def test_nested_fixed_effect_names_match_hussey_hughes_path():
    df = pd.DataFrame(REF["nested_data"]["incomplete"])
    a = sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment")
    b = sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=True)
    assert list(a.fixed.index) == list(b.fixed.index)
    assert a.model is not None and b.model is None
    assert b.gamma2 > 0 and 0 < b.cac < 1
    assert b.icc == pytest.approx((b.tau2 + b.gamma2) / (b.tau2 + b.gamma2 + b.sigma2), rel=1e-12)
    assert b.cac == pytest.approx(b.tau2 / (b.tau2 + b.gamma2), rel=1e-12)


def test_nested_invariant_to_row_order_and_cluster_relabelling():
    df = pd.DataFrame(REF["nested_data"]["complete"])
    base = sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=True)
    rng = np.random.default_rng(11)
    shuffled = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    new_names = dict(zip(sorted(df["cluster"].unique()), rng.permutation(18).astype(str), strict=True))
    shuffled["cluster"] = shuffled["cluster"].map(new_names)
    res = sa.stepped_wedge_analysis(shuffled, "y", "cluster", "period", "treatment", cluster_period_re=True)
    # same likelihood, different summation order and optimiser path: 1e-6 relative
    for f in ("estimate", "se", "df", "tau2", "gamma2", "sigma2", "loglik"):
        assert getattr(res, f) == pytest.approx(getattr(base, f), rel=1e-6), f


def test_nested_outputs():
    res = _nested_fit("complete", "REML", level=0.9)
    row = res.to_frame()
    assert row.shape[0] == 1 and {"gamma2", "cac", "loglik", "icc"} <= set(row.columns)
    text = res.summary()
    assert "gamma2" in text and "CAC" in text and "90% CI" in text
    t = stats.t.ppf(0.95, res.df)  # 90% interval from the Satterthwaite t quantile
    assert res.ci_high - res.ci_low == pytest.approx(2 * t * res.se, rel=1e-12)
    ax = res.plot_period_means()
    assert ax.get_xlabel() == "period" and ax.get_legend() is not None


def test_nested_bad_input():
    df = pd.DataFrame(REF["nested_data"]["complete"])
    # one row per cluster-period: gamma2 and sigma2 cannot be separated (lme4 stops as well)
    means = df.groupby(["cluster", "period"], as_index=False).agg(y=("y", "mean"), treatment=("treatment", "first"))
    with pytest.raises(ScaleupDataError, match="several rows per cluster-period"):
        sa.stepped_wedge_analysis(means, "y", "cluster", "period", "treatment", cluster_period_re=True)
    # every cluster crosses over in the same period: treatment collinear with the period effects
    same = df.assign(treatment=(df["period"] >= 4).astype(int))
    with pytest.raises(ScaleupDataError, match="collinear with the period effects"):
        sa.stepped_wedge_analysis(same, "y", "cluster", "period", "treatment", cluster_period_re=True)
    one = df[df["cluster"] == "c01"]
    with pytest.raises(ScaleupDataError, match="at least 2 clusters"):
        sa.stepped_wedge_analysis(one, "y", "cluster", "period", "treatment", cluster_period_re=True)
    with pytest.raises(ScaleupDataError, match="level' must be a coverage in"):
        sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=True, level=95)
    missing = df.assign(y=df["y"].where(df.index != 3))
    with pytest.warns(sa.RowsOmittedWarning, match=r"1 row\(s\) \(index 3\) left out"):
        res = sa.stepped_wedge_analysis(missing, "y", "cluster", "period", "treatment", cluster_period_re=True)
    assert res.n_obs == len(df) - 1


def test_nested_recovers_simulated_truth():
    # known truth (seeded): theta = 0.4, tau2 = 0.16, gamma2 = 0.09, sigma2 = 1 on the 18-region,
    # 6-step schedule with 25 individuals per cluster-period; the Satterthwaite 95% CI must cover
    # theta, and the variance components must land within 3 of their approximate standard errors
    # (Var(sigma2_hat) ~ 2 sigma2^2 / n; the cluster-level components are far noisier: checked
    # only for the right order of magnitude and CAC strictly between 0 and 1)
    rng = np.random.default_rng(2026)
    design = sa.stepped_wedge_design(18, 6).to_frame()
    df = design.loc[design.index.repeat(25)].reset_index(drop=True)
    a = rng.normal(0, 0.4, 18)
    g = rng.normal(0, 0.3, (18, 7))
    c, t = df["unit"].to_numpy() - 1, df["period"].to_numpy() - 1
    df["y"] = 5 + 0.1 * t + 0.4 * df["treatment"] + a[c] + g[c, t] + rng.normal(size=len(df))
    res = sa.stepped_wedge_analysis(df, "y", "unit", "period", "treatment", cluster_period_re=True)
    assert res.ci_low < 0.4 < res.ci_high
    assert abs(res.sigma2 - 1.0) < 3 * math.sqrt(2 / len(df))
    assert 0.16 / 4 < res.tau2 < 0.16 * 4 and 0.09 / 4 < res.gamma2 < 0.09 * 4
    assert 0 < res.cac < 1 and not res.singular


@pytest.mark.parametrize("cluster_period_re", [False, True])
@pytest.mark.parametrize("scale, problem, fix", [
    (1e-300, "the values differ by at most {spread:.3g} across the 1260 row(s)",
     "rescale it (e.g. multiply it by a power of 10)"),
    (1e300, "exceed +/-1e+50", "rescale the column (e.g. divide it by a power of 10)"),
])
def test_outcome_magnitudes_refused_naming_the_column(cluster_period_re, scale, problem, fix):
    """An outcome x 1e-300 (squares underflow) or x 1e300 (squares overflow) is refused before the fit,
    naming the user's column (not the model's internal one), with no numpy warning and no raw exception
    (the nested model used to end in ZeroDivisionError / LinAlgError)."""
    df = pd.DataFrame(REF["nested_data"]["complete"])
    df["y"] = df["y"] * scale
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(ScaleupDataError) as exc:
            sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=cluster_period_re)
    assert not rec, [str(w.message) for w in rec]
    msg = str(exc.value)
    assert msg.startswith("stepped_wedge_analysis: table 'data', column 'y' (argument 'outcome'): "), msg
    for part in (problem.format(spread=np.ptp(df["y"])), "(first: 0, 1, 2", fix):
        assert part in msg, msg
