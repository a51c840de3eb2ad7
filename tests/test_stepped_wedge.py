"""Tests for scaleup_analysis.rollout.stepped_wedge (design, power, simulated power, analysis).

References:
* published example: swCRTdesign README (J. Hughes' package; the Hussey & Hughes 2007 design with
  24 clusters, 4 steps, n = 120 per cluster-period, p0 = 0.05, p1 = 0.035, tau = 0.01):
  ``swPwr(...)`` = 0.7861896;
* ``tests/reference/ref_stepped_wedge.R`` -> ``stepped_wedge.json``: GLS variance from the full
  stacked design with a block-diagonal covariance, Hussey & Hughes' closed form, power and
  detectable effect (uniroot) for 5 designs x 3 options; lmerTest::lmer fits (REML and ML) of a
  simulated 18-cluster trial;
* in this file: Hussey & Hughes' closed form written out by hand, and GLS computed from scratch
  with numpy on the stacked design (incomplete design, unequal cluster sizes).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, stats

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.rollout.stepped_wedge import hussey_hughes_variance
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
    kw = dict(alpha=0.05, outcome=o["outcome"], cluster_period_tau2=o["gamma2"])
    if design.cluster_sizes is None:
        kw["m"] = o["m"]
    if o["outcome"] == "binary":
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
    res = sa.stepped_wedge_power(d, -0.015, outcome="binary", p0=0.05, tau2=0.01**2, m=120)
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
    p0 = sa.stepped_wedge_power(d, -0.05, outcome="binary", p0=0.2, icc=0.02, m=30,
                                binary_variance="p0")
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
    sim = sa.stepped_wedge_power_sim(hh, -0.015, outcome="binary", p0=0.05, tau2=1e-4, m=120,
                                     n_sim=1000, seed=3)
    assert abs(sim.power - 0.7861896) < 4 * math.sqrt(0.786 * 0.214 / 1000)
    again = sa.stepped_wedge_power_sim(hh, -0.015, outcome="binary", p0=0.05, tau2=1e-4, m=120,
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
    for f in ("estimate", "se", "df", "p_value", "tau2", "sigma2"):
        assert getattr(res, f) == pytest.approx(ref[f], rel=1e-4), f
    assert res.n_clusters == 18 and res.nobs == len(df)
    assert res.plot_period_means().get_legend() is not None


def test_analysis_bad_input():
    df = pd.DataFrame(REF["analysis_data"]).head(200)
    with pytest.raises(ScaleupDataError, match="cluster_period_re"):
        sa.stepped_wedge_analysis(df, "y", "cluster", "period", "treatment", cluster_period_re=True)
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
        sa.stepped_wedge_power(d, 0.1, outcome="binary", tau2=0.01, m=10)
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
