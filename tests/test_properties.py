"""Numerical robustness and invariances (hypothesis), checked against R or exact identities.

* tau^2 on the boundary (0) for every tau^2 estimator x test against metafor (``ref_robustness.R``
  -> ``robustness.json``): tau^2 exactly 0, no NaN, finite confidence intervals;
* zero cells and perfect separation in 2x2 tables against ``metafor::escalc`` (same JSON), with
  the warning when a correction-free measure is infinite;
* singular designs give a clear error; a perfectly separating covariate in staggered DiD warns;
* hypothesis properties: invariance to row order and to relabelling of sites/raters/units
  (meta_analysis, meta_regression, icc, krippendorff_alpha, staggered_did ATT(g,t),
  fidelity_index), equivariance to rescaling the outcome (meta-analysis; stepped-wedge power is
  unit-free), and the meta-analysis of k copies of one site (estimate = y, tau^2 = 0,
  se = sqrt(v/k): exact, for every estimator).

Tolerances: 1e-6 relative against R (meta-analysis, closed forms); 1e-9 relative for invariances
whose only source of difference is floating-point summation order, 1e-6 where an iterative
estimator (REML/ML/PM/EB Fisher scoring or root finding, stopping at 1e-5 as metafor) is re-run on
permuted or rescaled data.
"""

from __future__ import annotations

import re

import math
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import scaleup_analysis as sa
from tests.conftest import load_reference

REF = load_reference("robustness")
METHODS = ("FE", "DL", "REML", "ML", "PM", "EB", "HE", "SJ")
TESTS = ("z", "knha")
#: modest by default (the file runs in ~15 s); HYPOTHESIS_PROP_EXAMPLES=500 for a local stress run
PROP = settings(max_examples=int(os.environ.get("HYPOTHESIS_PROP_EXAMPLES", "20")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300) if b != 0 else abs(a)


# ----------------------------------------------------------------------------------------------
# grid coverage of the R fixture
# ----------------------------------------------------------------------------------------------
def test_reference_grid_is_complete():
    cells = {(r["dataset"], r["method"], r["test"]) for r in REF["meta"]}
    assert cells == {(d, m, t) for d in ("identical", "homogeneous") for m in METHODS for t in TESTS}
    es = {(r["measure"], r["to"], r["drop00"]) for r in REF["escalc"]}
    assert es == {(m, to, d) for m in ("OR", "RR", "RD") for to in ("only0", "all", "none") for d in (False, True)}


# ----------------------------------------------------------------------------------------------
# tau^2 on the boundary
# ----------------------------------------------------------------------------------------------
FIELDS = ("estimate", "se", "ci_low", "ci_high", "tau2", "tau2_se", "I2", "H2", "Q",
          "pi_low", "pi_high", "tau2_ci_low", "tau2_ci_high")


@pytest.mark.parametrize("ref", REF["meta"], ids=lambda r: f"{r['dataset']}-{r['method']}-{r['test']}")
def test_tau2_boundary_matches_metafor(ref):
    df = pd.DataFrame(REF["boundary_data"][ref["dataset"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # knha with s2w = 0: z = estimate / 0
        res = sa.meta_analysis(df, method=ref["method"], test=ref["test"])
    for f in FIELDS:
        expected = ref["se_tau2" if f == "tau2_se" else f]  # fixture key: metafor's se.tau2
        got = getattr(res, f)
        if expected is None:  # metafor gives no value (FE: no tau^2, no prediction interval)
            continue
        assert rel(got, expected) <= 1e-6, (f, got, expected)  # 1e-6 relative (absolute at 0)
    if ref["tau2"] == 0:
        assert res.tau2 == 0.0  # exactly on the boundary, not 1e-12
    assert all(math.isfinite(getattr(res, f)) for f in ("estimate", "se", "ci_low", "ci_high", "tau2", "I2", "H2"))
    if ref["method"] != "FE":
        assert math.isfinite(res.tau2_ci_low) and math.isfinite(res.tau2_ci_high)
        assert math.isfinite(res.pi_low) and math.isfinite(res.pi_high)


# ----------------------------------------------------------------------------------------------
# zero cells / perfect separation in 2x2 tables
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", REF["escalc"], ids=lambda r: f"{r['measure']}-{r['to']}-drop00={r['drop00']}")
def test_zero_cells_match_escalc(ref):
    t = pd.DataFrame(REF["tables2x2"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = sa.effect_sizes(t, ref["measure"], ai="ai", bi="bi", ci="ci", di="di", add=0.5,
                              to=ref["to"], drop00=ref["drop00"])
    for col in ("yi", "vi"):
        expected = np.array([np.nan if v is None else v for v in ref[col]], dtype=float)
        got = out[col].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), (col, got, expected)
        ok = ~np.isnan(expected)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-10)  # closed form: 1e-10 relative
    # a measure left infinite by to='none' is set to missing with a warning, never returned as inf
    if ref["to"] == "none" and ref["measure"] in ("OR", "RR"):
        msgs = [str(w.message) for w in record if issubclass(w.category, sa.ScaleupWarning)]
        n_inf = 2 if ref["drop00"] else 3  # drop00 sets the double-zero study to missing first
        assert any(f"infinite in {n_inf} row(s)" in m and "to='only0'" in m for m in msgs), msgs


def test_separated_table_flows_into_meta_analysis_with_clear_error():
    # perfect separation with RD: vi = 0 for the separated study (as escalc); meta_analysis refuses it
    t = pd.DataFrame(REF["tables2x2"])
    es = sa.effect_sizes(t, "RD", ai="ai", bi="bi", ci="ci", di="di", to="none")
    with pytest.raises(sa.ScaleupDataError, match=r"column 'vi'.*must be > 0"):
        sa.meta_analysis(es)


# ----------------------------------------------------------------------------------------------
# singular designs and non-convergence
# ----------------------------------------------------------------------------------------------
def test_singular_categorical_design_is_a_clear_error():
    df = pd.DataFrame({"yi": [0.1, 0.3, 0.2, 0.5, 0.4, 0.6], "vi": [0.02] * 6,
                       "arm": list("aabbcc"), "setting": list("xxyyzz")})  # arm and setting alias
    with pytest.raises(sa.ScaleupDataError, match="not of full rank.*Drop or merge moderators"):
        sa.meta_regression(df, mods=["arm", "setting"])
    # (a moderator equal to 1 everywhere is taken as the intercept and merged with it, exactly as
    # metafor's rma.uni does with intercept-like columns; any other constant is an error)
    with pytest.raises(sa.ScaleupDataError, match="not of full rank"):
        sa.meta_regression(df.assign(c=2.0), mods=["c"])  # a constant moderator aliases the intercept


def test_separating_covariate_in_staggered_did_warns():
    rng = np.random.default_rng(1)
    n, T = 40, 5
    coh = np.array([0] * 20 + [3] * 20)
    x = np.where(coh > 0, rng.uniform(1, 2, n), rng.uniform(-2, -1, n))  # separates the cohorts
    df = pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n),
                       "g": np.repeat(coh, T), "x": np.repeat(x, T), "y": rng.normal(size=n * T)})
    with pytest.warns(sa.ScaleupWarning, match="perfectly separating.*method='reg'"):
        res = sa.staggered_did(df, "y", "id", "t", "g", covariates=["x"], method="dr", n_boot=0)
    assert res.att_gt["att"].isna().all()  # no silent number from a degenerate propensity score


# ----------------------------------------------------------------------------------------------
# k copies of one site: estimate = y, tau^2 = 0, se = sqrt(v / k)
# ----------------------------------------------------------------------------------------------
@PROP
@given(y=st.floats(-5, 5, allow_nan=False), v=st.floats(1e-3, 2.0), k=st.integers(2, 12))
def test_repeated_site_meta_analysis(y, v, k):
    df = pd.DataFrame({"yi": [y] * k, "vi": [v] * k})
    for method in METHODS:
        res = sa.meta_analysis(df, method=method)
        assert res.tau2 == 0.0
        assert rel(res.estimate, y) <= 1e-12 or abs(res.estimate - y) <= 1e-12  # exact up to rounding
        assert rel(res.se, math.sqrt(v / k)) <= 1e-12
        assert res.I2 == 0.0 and res.Q <= 1e-20
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kh = sa.meta_analysis(df, method=method, test="knha")
        # Knapp-Hartung scales the variance by s2w = Q / (k - 1) = 0: a zero-width CI (as metafor)
        assert kh.se == 0.0 and kh.ci_low == kh.ci_high == pytest.approx(y, rel=1e-12, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# meta-analysis / meta-regression: row order, relabelling, rescaling
# ----------------------------------------------------------------------------------------------
@st.composite
def meta_tables(draw, k_min=4, k_max=10):
    k = draw(st.integers(k_min, k_max))
    yi = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.01, 0.5), min_size=k, max_size=k))
    x = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=k, max_size=k))
    return pd.DataFrame({"yi": yi, "vi": vi, "x": x, "site": [f"S{i:02d}" for i in range(k)]})


def _close(a, b, tol):
    return abs(a - b) <= tol * max(1.0, abs(b))


#: estimators whose tau^2 is computed in closed form (the others iterate as metafor: Fisher scoring
#: for REML/ML stops when tau^2 changes by < 1e-5 *absolute*, PM/EB solve Q(tau^2) = k - p with
#: uniroot; the stopping rule is not scale-free, so a rescaled problem stops at a slightly different
#: point -- metafor itself behaves so)
CLOSED_FORM = ("FE", "DL", "HE", "SJ")


def _meta_or_skip(df, method, fn=sa.meta_analysis, **kw):
    """sa.meta_analysis (or ``fn``), skipping the example (hypothesis ``assume``) only when Fisher
    scoring (REML/ML/EB) does not converge within its iteration limit. metafor fails identically on these data,
    e.g. hypothesis' yi = [1, 0, 0, 0, 0], vi = [0.03125, 0.5, 0.5, 0.5, 0.5]: rma(yi, vi,
    method="REML") stops with "Fisher scoring algorithm did not converge" (tau^2 oscillates around
    0.207), and yi = [0, 0, 0, 0, 0, 0, 1], vi = [.5, .5, .5, .5, .5, .5, .125], x = [0, 0, 0, 0, 0, 1, 0]:
    rma(yi, vi, mods = ~ x, method="REML") stops with the same error; tested against metafor in
    tests/test_meta.py::test_fisher_scoring_nonconvergence_matches_metafor.
    """
    try:
        return fn(df, method=method, **kw)
    except sa.ScaleupDataError as exc:
        # the iteration limit is metafor's tight control (maxiter 10000) since tau^2 is exact (issue 18)
        assume(not (method in ("REML", "ML", "EB") and re.search(r"did not converge in \d+ iterations", str(exc))))
        raise


@PROP
@given(meta_tables(), st.randoms(use_true_random=False), st.floats(0.2, 5))
def test_meta_analysis_invariances(df, rnd, c):
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    shuffled = df.iloc[perm].assign(site=lambda d: "X" + d["site"].str[::-1])  # new order, new labels
    for method in METHODS:
        a = _meta_or_skip(df, method, slab="site")
        b = _meta_or_skip(shuffled, method, slab="site")
        # row order and labels: 1e-6 (iterative estimators re-run on permuted sums)
        for f in ("estimate", "se", "tau2", "Q", "I2"):
            assert _close(getattr(b, f), getattr(a, f), 1e-6), (method, f)
        # rescaling y by c (v by c^2): estimate and se scale by c, tau2 by c^2, I2 and Q unchanged.
        if method in CLOSED_FORM:  # exact algebra: 1e-9 relative, any c in [0.2, 5]
            s = sa.meta_analysis(df.assign(yi=c * df["yi"], vi=c**2 * df["vi"]), method=method)
            assert _close(s.tau2, c**2 * a.tau2, 1e-9), method
            assert abs(s.estimate - c * a.estimate) <= 1e-9 * c * max(1.0, abs(a.estimate)), method
            assert _close(s.se, c * a.se, 1e-9), method
            assert abs(s.I2 - a.I2) <= 1e-7, method
        else:
            # Iterative estimators stop when tau2 moves by < 1e-5 *absolute* (metafor's threshold),
            # which is not scale-free: on data scaled down, 1e-5 is large next to the variances.
            # So we scale up (c >= 1, both problems then have v >= 0.01, i.e. a stopping error
            # <= 0.1% of the weights) and allow 1% of a standard error on estimate and se, and
            # 1e-4 (1 + c^2) absolute on tau2 (10x the threshold on each scale).
            cu = max(c, 1 / c)
            s = _meta_or_skip(df.assign(yi=cu * df["yi"], vi=cu**2 * df["vi"]), method)
            assert abs(s.tau2 - cu**2 * a.tau2) <= 1e-4 * (1 + cu**2), method
            assert abs(s.estimate - cu * a.estimate) <= 0.01 * cu * a.se, method
            assert abs(s.se - cu * a.se) <= 0.01 * cu * a.se, method
        assert _close(s.Q, a.Q, 1e-9), method  # Q is scale-free in closed form


@PROP
@given(meta_tables(k_min=6), st.randoms(use_true_random=False))
def test_meta_regression_row_order(df, rnd):
    assume(np.ptp(df["x"].to_numpy()) > 0.1)  # a constant moderator is a (tested) error
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    for method in ("DL", "REML"):
        a = _meta_or_skip(df, method, mods=["x"], fn=sa.meta_regression)
        b = _meta_or_skip(df.iloc[perm], method, mods=["x"], fn=sa.meta_regression)
        np.testing.assert_allclose(b.coef["estimate"].to_numpy(), a.coef["estimate"].to_numpy(),
                                   rtol=1e-6, atol=1e-9)  # 1e-6: iterative tau2 on permuted data
        np.testing.assert_allclose(b.coef["se"].to_numpy(), a.coef["se"].to_numpy(), rtol=1e-6, atol=1e-9)
        assert _close(b.tau2, a.tau2, 1e-6)


# ----------------------------------------------------------------------------------------------
# agreement: row order and relabelling of targets / raters / units
# ----------------------------------------------------------------------------------------------
@st.composite
def rating_tables(draw):
    n = draw(st.integers(3, 8))
    r = draw(st.integers(2, 4))
    scores = draw(st.lists(st.integers(1, 5), min_size=n * r, max_size=n * r))
    if len(set(scores)) < 2:
        scores[0] = 1 if scores[0] != 1 else 2
    return pd.DataFrame({"t": np.repeat([f"T{i}" for i in range(n)], r),
                         "r": np.tile([f"R{j}" for j in range(r)], n), "y": np.array(scores, float)})


def _new_labels(values, prefix, rnd):
    values = list(pd.unique(values))
    names = [f"{prefix}{i:03d}" for i in range(len(values))]
    rnd.shuffle(names)
    return dict(zip(values, names))


def _relabel(df, rnd):
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    t_map = _new_labels(df["t"], "unit-", rnd)
    r_map = _new_labels(df["r"], "rater-", rnd)
    return df.iloc[perm].assign(t=lambda d: d["t"].map(t_map), r=lambda d: d["r"].map(r_map))


@PROP
@given(rating_tables(), st.randoms(use_true_random=False))
def test_icc_and_alpha_invariances(df, rnd):
    other = _relabel(df, rnd)
    targets_vary = df.groupby("t")["y"].mean().nunique() > 1 or df["y"].nunique() > 1
    if targets_vary:
        a = sa.icc(df, "t", "r", "y").table
        b = sa.icc(other, "t", "r", "y").table
        num = a.select_dtypes("number").columns
        # closed-form ANOVA ICCs (psych::ICC): only summation order differs -> 1e-9
        np.testing.assert_allclose(b[num].to_numpy(float), a[num].to_numpy(float), rtol=1e-9, atol=1e-12)
    for metric in ("nominal", "interval"):
        ka = sa.krippendorff_alpha(df, "t", "r", "y", metric=metric, n_boot=0)
        kb = sa.krippendorff_alpha(other, "t", "r", "y", metric=metric, n_boot=0)
        assert _close(kb.estimate, ka.estimate, 1e-9)


# ----------------------------------------------------------------------------------------------
# staggered DiD ATT(g,t): row order and unit relabelling
# ----------------------------------------------------------------------------------------------
@st.composite
def did_panels(draw):
    n = draw(st.integers(12, 24))
    T = draw(st.integers(4, 6))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    coh = np.concatenate([[0, 0, 0, 3, 3], rng.choice([0, 3, 4], n - 5)])
    return pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n),
                         "g": np.repeat(coh, T), "y": rng.normal(size=n * T)})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(did_panels(), st.randoms(use_true_random=False))
def test_staggered_did_att_gt_invariances(df, rnd):
    perm = list(range(len(df)))
    rnd.shuffle(perm)
    ids = _new_labels(df["id"], "site-", rnd)
    other = df.iloc[perm].assign(id=lambda d: d["id"].map(ids))
    for control in ("never", "notyet"):
        a = sa.staggered_did(df, "y", "id", "t", "g", control=control, n_boot=0).att_gt
        b = sa.staggered_did(other, "y", "id", "t", "g", control=control, n_boot=0).att_gt
        key = ["cohort", "time"]
        a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
        assert a[key].equals(b[key])
        # ATT(g,t) are differences of means: only summation order differs -> 1e-9
        np.testing.assert_allclose(b["att"].to_numpy(float), a["att"].to_numpy(float), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b["se"].to_numpy(float), a["se"].to_numpy(float), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# fidelity index: row order and site relabelling
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fidelity_tables():
    t = sa.simulate_scaleup(seed=3, n_sites=36, n_periods=8, patients_per_site_period=4).tables
    return t["fidelity_ratings"], t["components"], t["delivery"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_fidelity_index_invariances(fidelity_tables, seed):
    ratings, components, delivery = fidelity_tables
    rng = np.random.default_rng(seed)
    a = sa.fidelity_index(ratings, components, delivery)
    sites = pd.unique(pd.concat([ratings["site_id"], delivery["site_id"]]))
    new = dict(zip(sites, [f"Z{i:03d}" for i in rng.permutation(len(sites))]))
    back = {v: k for k, v in new.items()}
    perm_r = rng.permutation(len(ratings))
    perm_d = rng.permutation(len(delivery))
    b = sa.fidelity_index(ratings.iloc[perm_r].assign(site_id=lambda d: d["site_id"].map(new)), components,
                          delivery.iloc[perm_d].assign(site_id=lambda d: d["site_id"].map(new)))
    b = b.assign(site_id=b["site_id"].map(back))
    key = ["site_id", "period"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)  # summation order only


# ----------------------------------------------------------------------------------------------
# stepped-wedge power does not depend on the unit of the outcome
# ----------------------------------------------------------------------------------------------
@PROP
@given(c=st.floats(0.01, 100), effect=st.floats(0.05, 1.0), icc=st.floats(0.0, 0.3), m=st.integers(2, 50))
def test_stepped_wedge_power_unit_free(c, effect, icc, m):
    design = sa.stepped_wedge_design(6, 3)
    a = sa.stepped_wedge_power(design, effect, sigma2=1.0, icc=icc, m=m)
    b = sa.stepped_wedge_power(design, c * effect, sigma2=c**2, icc=icc, m=m)
    assert _close(b.power, a.power, 1e-9)  # closed form: 1e-9 relative
    assert _close(b.se, c * a.se, 1e-9)
    assert _close(b.detectable_effect, c * a.detectable_effect, 1e-9)


# ----------------------------------------------------------------------------------------------
# binomial mixed model with perfectly separated outcomes
# ----------------------------------------------------------------------------------------------
def _binary_sites(seed=3, n_sites=12, m=30):
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), m)
    return rng, pd.DataFrame({"site": site, "x": rng.normal(size=site.size)})


def test_binomial_mixed_model_separated_by_covariate_warns():
    _, df = _binary_sites()
    df["y"] = (df["x"] > 0).astype(int)  # the event happens iff x > 0: the MLE is at infinity
    with pytest.warns(sa.ConvergenceWarning, match="did not converge.*Try rescaling covariates"):
        sa.mixed_model(df, "y ~ x", group="site", family="binomial")


def test_binomial_mixed_model_separated_by_treatment_warns():
    # a treatment arm with events only: quasi-complete separation (Konis 2007 LP check)
    rng, df = _binary_sites()
    df["trt"] = (df["site"] % 2).astype(float)
    df["y"] = np.where(df["trt"] == 1, 1, rng.binomial(1, 0.3, len(df)))  # treated sites: all events
    with pytest.warns(sa.ScaleupWarning, match=r"separated by the fixed effects \(involving .*trt"):
        sa.mixed_model(df, "y ~ trt", group="site", family="binomial")


def test_binomial_mixed_model_without_separation_does_not_warn():
    rng, df = _binary_sites()
    df["trt"] = (df["site"] % 2).astype(float)
    df["y"] = rng.binomial(1, np.where(df["trt"] == 1, 0.6, 0.3))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*separated.*")
        sa.mixed_model(df, "y ~ trt", group="site", family="binomial")
