"""meta_analysis / meta_regression against metafor 3.8 (tests/reference/ref_meta.R -> meta.json).

The reference is metafor run to convergence (``control = list(threshold = 1e-12, tol = 1e-12,
maxiter = 10000)`` for ``rma()``, ``control = list(tol = 1e-12)`` for the Q-profile ``confint()``), so
the fixtures hold the exact optimum of tau^2 and the exact roots of the CI bounds.

Tolerance: 1e-6 relative everywhere (meta-analysis convention), tau^2 and its Q-profile CI bounds at
1e-8 relative (:func:`assert_tau2`), unless stated otherwise next to the assertion. Values that
metafor itself reports as exactly 0 (e.g. tau^2 truncated at 0) are compared with an absolute
tolerance of 1e-10, since a relative tolerance is meaningless at 0. Besides metafor, the iterative
tau^2 are checked against the optimum found by a bounded one-dimensional optimiser (scipy) and
the Q-profile bounds against the root of the Q equation found by scipy's brentq.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("meta")
RTOL = 1e-6  # meta-analysis: closed forms and metafor's own iterations replicated step by step
ATOL0 = 1e-10  # only bites when the reference value is (numerically) zero

BASKERVILLE_CSV = (
    Path(__file__).resolve().parents[1]
    / "scaleup_analysis"
    / "data"
    / "bundled"
    / "baskerville2012_practice_facilitation.csv"
)


def _arr(x) -> np.ndarray:
    """JSON value (possibly null / list with nulls) -> float array with NaN."""
    if x is None:
        return np.array(np.nan)
    return np.array([np.nan if v is None else v for v in np.atleast_1d(x).tolist()], dtype=float)


def assert_close(got, ref, name, rtol=RTOL, atol=ATOL0):
    got = np.asarray(got, dtype=float)
    ref = _arr(ref).reshape(got.shape) if np.size(got) == np.size(_arr(ref)) else _arr(ref)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


TAU2_RTOL = 1e-8  # tau^2 and its CI bounds: exact optimum / roots on both sides


def assert_tau2(got, ref, name):
    """tau^2-type values: 1e-8 relative, or 1e-10 absolute where metafor's value is within 1e-10 of 0."""
    got = np.atleast_1d(np.asarray(got, dtype=float))
    ref_a = _arr(ref).reshape(got.shape)
    both_nan = np.isnan(got) & np.isnan(ref_a)
    tol = np.where(np.abs(ref_a) <= 1e-10, 1e-10, TAU2_RTOL * np.abs(ref_a))
    ok = both_nan | (np.abs(got - ref_a) <= tol)
    assert ok.all(), (name, got[~ok], ref_a[~ok])


def _data(name: str) -> pd.DataFrame:
    return pd.DataFrame(REF["data"][name])


MA_CELLS = [
    (d, m, t) for d in REF["grid"]["datasets"] for m in REF["grid"]["methods"] for t in REF["grid"]["tests"]
]
MR_CELLS = [
    (d, m, t)
    for d in REF["grid"]["reg_models"]
    for m in REF["grid"]["reg_methods"]
    for t in REF["grid"]["tests"]
]


# ------------------------------------------------------------------------------------------------
# the grid cannot silently shrink
# ------------------------------------------------------------------------------------------------
def test_reference_grid_is_complete():
    from scaleup_analysis.engines.rma import TESTS
    from scaleup_analysis.engines.tau2 import METHODS

    assert REF["grid"]["datasets"] == ["bcg", "baskerville", "hine1989"]
    # every estimator and every test the package offers is in the grid
    assert REF["grid"]["methods"] == ["FE", "DL", "REML", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk"]
    assert set(REF["grid"]["methods"]) == set(METHODS)
    assert REF["grid"]["tests"] == ["z", "t", "knha"] and set(TESTS) == set(REF["grid"]["tests"])
    assert REF["grid"]["reg_models"] == ["bcg_num", "bcg_cat", "baskerville"]
    assert set(REF["grid"]["reg_methods"]) == set(METHODS) - {"HE", "SJ"}
    # the fixture is metafor run to convergence, not with its default stopping rule
    assert REF["info"]["control"] == {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}
    assert REF["info"]["confint_control"] == {"tol": 1e-12, "maxiter": 10000}
    assert len(MA_CELLS) == 3 * 11 * 3
    for d, m, t in MA_CELLS:
        cell = REF["meta_analysis"][f"{d}|{m}|{t}"]
        for key in ("estimate", "se", "statistic", "pvalue", "tau2", "I2", "H2", "Q", "pi_low", "loglik",
                    "AICc", "weights", "influence", "leave1out"):  # fmt: skip
            assert key in cell, (d, m, t, key)
        if m != "FE":
            assert {"tau2_ci_low", "tau2_ci_high", "I2_ci_low", "H2_ci_high", "blup"} <= set(cell)
    assert len(MR_CELLS) == 3 * 9 * 3
    for d, m, t in MR_CELLS:
        cell = REF["meta_regression"][f"{d}|{m}|{t}"]
        assert {"estimate", "vcov", "tau2", "R2", "QM", "Q", "predict", "influence"} <= set(cell), (d, m, t)
    assert set(REF["permutest"]) == {"bcg6_ablat|REML|z", "bcg6_ablat|DL|knha", "bcg8_alloc|REML|z",
                                     "bcg6_ablat_year_btt3|PMM|t"}
    # btt: names, a name pattern, positions (with the intercept) x {REML, DL, FE} x every test
    assert set(REF["btt"]) == {f"{c}|{m}|{t}" for c in BTT_CASES for m in ("REML", "DL", "FE")
                               for t in REF["grid"]["tests"]}
    assert {type(REF["btt"][f"{c}|REML|z"]["btt_r"]).__name__ for c in BTT_CASES} >= {"str", "int", "list"}


# ------------------------------------------------------------------------------------------------
# meta_analysis: 3 datasets x 11 methods x 3 tests
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ma_results():
    out = {}
    for d, m, t in MA_CELLS:
        out[(d, m, t)] = sa.meta_analysis(_data(d), method=m, test=t, slab="author")
    return out


SCALARS = [
    "estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "tau2", "tau2_se", "I2", "H2", "Q",
    "Q_pvalue", "pi_low", "pi_high", "loglik", "deviance", "AIC", "BIC", "AICc",
]  # fmt: skip
FIXTURE_KEY = {"tau2_se": "se_tau2"}  # our name -> key of the R fixture (metafor's se.tau2)
CI_FIELDS = ["tau2_ci_low", "tau2_ci_high", "I2_ci_low", "I2_ci_high", "H2_ci_low", "H2_ci_high"]


@pytest.mark.parametrize("cell", MA_CELLS, ids=["|".join(c) for c in MA_CELLS])
def test_meta_analysis_matches_metafor(ma_results, cell):
    res = ma_results[cell]
    ref = REF["meta_analysis"]["|".join(cell)]
    for name in SCALARS:
        assert_close(getattr(res, name), ref[FIXTURE_KEY.get(name, name)], name)  # rtol 1e-6
    assert_tau2(res.tau2, ref["tau2"], "tau2")  # 1e-8 relative: the exact optimum
    assert res.k == ref["k"] and res.Q_df == ref["Q_df"]
    assert_close(res.weights.to_numpy(), ref["weights"], "weights")  # rtol 1e-6
    if cell[1] == "FE":
        assert math.isnan(res.tau2_ci_low) and math.isnan(res.pi_low)
    else:
        for name in CI_FIELDS:  # Q-profile CI (metafor confint), rtol 1e-6
            assert_close(getattr(res, name), ref[name], name)
        assert_tau2(res.tau2_ci_low, ref["tau2_ci_low"], "tau2_ci_low")  # exact roots: 1e-8 relative
        assert_tau2(res.tau2_ci_high, ref["tau2_ci_high"], "tau2_ci_high")


@pytest.mark.parametrize("cell", MA_CELLS, ids=["|".join(c) for c in MA_CELLS])
def test_influence_leave1out_blup_match_metafor(ma_results, cell):
    res = ma_results[cell]
    ref = REF["meta_analysis"]["|".join(cell)]
    inf = res.influence()
    mapping = {"rstudent": "rstudent", "dffits": "dffits", "cook_d": "cook_d", "cov_r": "cov_r",
               "tau2_del": "tau2_del", "QE_del": "QE_del", "hat": "hat", "weight": "weight",
               "dfbs_intrcpt": "dfbs"}  # fmt: skip
    for col, rcol in mapping.items():
        assert_close(inf[col].to_numpy(), ref["influence"][rcol], f"influence.{col}")  # rtol 1e-6
    assert_tau2(inf["tau2_del"].to_numpy(), ref["influence"]["tau2_del"], "tau2_del")  # 1e-8 relative
    assert inf["inf"].tolist() == ref["influence"]["inf"]
    l1o = res.leave_one_out()
    for col in l1o.columns:
        assert_close(l1o[col].to_numpy(), ref["leave1out"][col], f"leave1out.{col}")  # rtol 1e-6
    if cell[1] != "FE":
        bl = res.blup()
        for col in bl.columns:
            assert_close(bl[col].to_numpy(), ref["blup"][col], f"blup.{col}")  # rtol 1e-6


# ------------------------------------------------------------------------------------------------
# meta_regression: 3 models x 9 methods x 3 tests
# ------------------------------------------------------------------------------------------------
def _fit_reg(model, method, test):
    data = _data("bcg" if model.startswith("bcg") else "baskerville")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        return sa.meta_regression(data, mods=REF["data"]["reg_formulas"][model], method=method, test=test)


@pytest.mark.parametrize("cell", MR_CELLS, ids=["|".join(c) for c in MR_CELLS])
def test_meta_regression_matches_metafor(cell):
    res = _fit_reg(*cell)
    ref = REF["meta_regression"]["|".join(cell)]
    assert res.k == ref["k"] and res.p == ref["p"]
    assert len(res.coef) == len(ref["terms"])
    for col in ["estimate", "se", "statistic", "pvalue", "ci_low", "ci_high"]:
        assert_close(res.coef[col].to_numpy(), ref[col], col)  # rtol 1e-6
    assert_close(res.vcov.to_numpy(), np.array(ref["vcov"], dtype=float), "vcov")  # rtol 1e-6
    for name in ["tau2", "tau2_se", "I2", "H2", "R2", "QM", "QM_pvalue", "loglik", "deviance", "AIC", "BIC",
                 "AICc"]:  # fmt: skip
        assert_close(getattr(res, name), ref[FIXTURE_KEY.get(name, name)], name)  # rtol 1e-6
    assert_tau2(res.tau2, ref["tau2"], "tau2")  # 1e-8 relative: the exact optimum
    assert_close(res.QE, ref["Q"], "QE")
    assert_close(res.QE_pvalue, ref["Q_pvalue"], "QE_pvalue")
    assert res.QE_df == ref["Q_df"]
    assert res.QM_df[0] == ref["QM_df"][0]
    if cell[2] != "z":  # F test with (m, k - p) df
        assert res.QM_df[1] == ref["QM_df"][1]
    else:
        assert res.QM_df[1] is None and ref["QM_df"][1] is None
    if cell[1] != "FE":
        assert_tau2(res.tau2_ci_low, ref["tau2_ci_low"], "tau2_ci_low")  # exact roots: 1e-8 relative
        assert_tau2(res.tau2_ci_high, ref["tau2_ci_high"], "tau2_ci_high")
    # predictions for new moderator values (metafor predict(newmods = ...))
    nm = np.array(ref["predict"]["newmods"], dtype=float)
    if cell[0] == "bcg_num":
        newdata = pd.DataFrame({"ablat": nm[:, 0], "year": nm[:, 1]})
    elif cell[0] == "bcg_cat":
        alloc = np.where(nm[:, 1] == 1, "random", np.where(nm[:, 2] == 1, "systematic", "alternate"))
        newdata = pd.DataFrame({"ablat": nm[:, 0], "alloc": alloc})
    else:
        newdata = pd.DataFrame({"tailor": nm[:, 0], "pperf": nm[:, 1]})
    pred = res.predict(newdata)
    for col in ["pred", "se", "ci_low", "ci_high", "pi_low", "pi_high"]:
        assert_close(pred[col].to_numpy(), ref["predict"][col], f"predict.{col}")  # rtol 1e-6


@pytest.mark.parametrize("cell", MR_CELLS, ids=["|".join(c) for c in MR_CELLS])
def test_meta_regression_influence_matches_metafor(cell):
    res = _fit_reg(*cell)
    ref = REF["meta_regression"]["|".join(cell)]["influence"]
    inf = res.influence()
    for col in ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat", "weight"]:
        assert_close(inf[col].to_numpy(), ref[col], f"influence.{col}")  # rtol 1e-6
    dfbs = inf[[f"dfbs_{t}" for t in res.coef.index]].to_numpy()
    assert_close(dfbs, np.array(ref["dfbs"], dtype=float), "influence.dfbs")  # rtol 1e-6
    assert inf["inf"].tolist() == ref["inf"]


# ------------------------------------------------------------------------------------------------
# btt: subset tests of coefficients (metafor rma.uni(btt = ...)), 4 cases x {REML, DL, FE} x 3 tests
# ------------------------------------------------------------------------------------------------
BTT_CASES = ["bcg_cat_alloc", "bcg_cat_ablat", "bcg_num_int_year", "baskerville_pperf"]
BTT_CELLS = sorted(REF["btt"])


@pytest.mark.parametrize("key", BTT_CELLS)
def test_btt_subset_test_matches_metafor(key):
    ref = REF["btt"][key]
    _, method, test = key.split("|")
    btt_r = ref["btt_r"]  # as given to R: a name pattern (str) or 1-based positions
    terms = [ref["terms"]] if isinstance(ref["terms"], str) else ref["terms"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        res = sa.meta_regression(_data(ref["data"]), mods=ref["formula"], method=method, test=test, btt=btt_r)
        by_name = sa.meta_regression(_data(ref["data"]), mods=ref["formula"], method=method, test=test,
                                     btt=list(terms))
    assert res.btt == tuple(terms) == by_name.btt
    assert [list(res.coef.index).index(t) + 1 for t in terms] == list(np.atleast_1d(ref["btt_index"]))
    assert_close(res.QM, ref["QM"], "QM")  # rtol 1e-6
    assert_close(res.QM_pvalue, ref["QM_pvalue"], "QM_pvalue")
    assert res.QM_df[0] == ref["QM_df"][0] and (res.QM_df[1] == ref["QM_df"][1] if test != "z" else True)
    assert_close(res.coef["estimate"].to_numpy(), ref["estimate"], "estimate")
    assert_close(res.coef["se"].to_numpy(), ref["se"], "se")
    assert_tau2(res.tau2, ref["tau2"], "tau2")
    assert by_name.QM == res.QM and by_name.QM_pvalue == res.QM_pvalue


def test_btt_is_named_in_the_summary_and_checked():
    data = _data("bcg")
    res = sa.meta_regression(data, mods=["ablat", "alloc"], btt="alloc", test="t")
    en, fr = res.summary(language="en"), res.summary(language="fr")
    assert "Test of moderators (alloc[T.random], alloc[T.systematic]): F(df1 = 2, df2 = 9)" in en
    assert "Test des modérateurs (alloc[T.random], alloc[T.systematic])\u00a0: F(dl1 = 2, dl2 = 9)" in fr
    default = sa.meta_regression(data, mods=["ablat", "alloc"])
    assert default.btt == ("ablat", "alloc[T.random]", "alloc[T.systematic]")
    assert "Test of moderators: QM(df = 3)" in default.summary()
    # the default written out is the default test
    same = sa.meta_regression(data, mods=["ablat", "alloc"], btt=[2, 3, 4])
    assert same.QM == default.QM and "Test of moderators" in same.summary()
    for bad, msg in [("latitude", "no coefficient is named 'latitude'"), ([0], r"outside 1\.\.4"),
                     (["ablat", 2], "not a mix"), ([], "give term names"), (["abl"], "no coefficient"),
                     ([True], "not a mix")]:
        with pytest.raises(ScaleupDataError, match=msg):
            sa.meta_regression(data, mods=["ablat", "alloc"], btt=bad)


# ------------------------------------------------------------------------------------------------
# test="t": t and F distributions with k - p df, standard errors not adjusted
# ------------------------------------------------------------------------------------------------
def test_t_test_is_knha_without_the_adjustment():
    data = _data("bcg")
    z = sa.meta_analysis(data, test="z")
    t = sa.meta_analysis(data, test="t")
    kh = sa.meta_analysis(data, test="knha")
    assert t.se == z.se and t.statistic == z.statistic  # same SE as z (metafor: s2w = 1)
    assert t.pvalue == pytest.approx(2 * __import__("scipy").stats.t.sf(abs(t.statistic), 12), rel=1e-12)
    assert kh.se != t.se
    assert "(t distribution with 12 df, standard errors not adjusted)" in t.summary()
    assert "(loi t à 12 degrés de liberté, erreurs types non ajustées)" in t.summary(language="fr")


# ------------------------------------------------------------------------------------------------
# exact convergence: the iterative tau^2 is the optimum, not where metafor's default stops
# ------------------------------------------------------------------------------------------------
def _score(tau2, y, v, X, reml):
    """d loglik / d tau^2 from the dense k x k matrix P = W - W X (X'WX)^{-1} X'W (independent of the engine):
    REML 0.5 (y'PPy - tr P), ML 0.5 (y'PPy - sum w) (Viechtbauer, 2005)."""
    w = 1.0 / (v + tau2)
    W = np.diag(w)
    P = W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)
    Py = P @ y
    return 0.5 * (Py @ Py - (np.trace(P) if reml else w.sum()))


@pytest.mark.parametrize("model", ["bcg_num", "bcg_cat", "baskerville"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_iterative_tau2_is_the_likelihood_optimum(model, method):
    """A second opinion: the root of the score equation by scipy's brentq (xtol 1e-15)."""
    from scipy.optimize import brentq

    res = _fit_reg(model, method, "z")
    y, v, X = res._fit.yi, res._fit.vi, res._fit.X
    reml = method == "REML"
    if res.tau2 == 0.0:  # boundary: the likelihood decreases from tau^2 = 0
        assert _score(0.0, y, v, X, reml) <= 0
        return
    lo, hi = res.tau2 / 2, res.tau2 * 2  # a local maximum: the score goes from + to - around it
    assert _score(lo, y, v, X, reml) > 0 > _score(hi, y, v, X, reml)
    root = brentq(lambda t: _score(t, y, v, X, reml), lo, hi, xtol=1e-15, rtol=1e-15)
    assert res.tau2 == pytest.approx(root, rel=1e-9)
    default = REF["meta_regression"][f"{model}|{method}|z"]["default_control"]["tau2"]
    # metafor's default stopping rule (change <= 1e-5) stops measurably away from the root
    assert abs(res.tau2 - root) < 1e-3 * abs(default - root)


@pytest.mark.parametrize("dataset", ["bcg", "baskerville", "hine1989"])
def test_qprofile_bounds_are_roots_of_the_q_equation(dataset):
    """The Q-profile bounds solve Q(tau^2) = chi2 quantile (scipy brentq, xtol 1e-15), or sit at 0."""
    from scipy import stats as st
    from scipy.optimize import brentq

    res = sa.meta_analysis(_data(dataset), method="REML")
    y, v = res._fit.yi, res._fit.vi

    def q(t):
        w = 1 / (v + t)
        return float(np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2))

    for bound, p in ((res.tau2_ci_high, 0.025), (res.tau2_ci_low, 0.975)):
        target = st.chi2.ppf(p, res.k - 1)
        if q(0.0) < target:
            assert bound == 0.0
        else:
            assert bound == pytest.approx(brentq(lambda t: q(t) - target, 0, 100, xtol=1e-15), rel=1e-9)
    if dataset == "hine1989":  # metafor's default uniroot tolerance returns 6.1e-5 here
        assert res.tau2_ci_high == pytest.approx(3.166e-5, rel=1e-3)
        assert REF["meta_analysis"]["hine1989|REML|z"]["default_control"]["tau2_ci_high"] > 6e-5


def test_meta_regression_list_mods_equals_formula():
    data = _data("bcg")
    a = sa.meta_regression(data, mods=["ablat", "alloc"])
    b = sa.meta_regression(data, mods="~ ablat + alloc")
    pd.testing.assert_frame_equal(a.coef, b.coef)
    assert list(a.coef.index) == ["intrcpt", "ablat", "alloc[T.random]", "alloc[T.systematic]"]


def test_missing_moderators_are_omitted_with_warning():
    data = _data("baskerville")
    with pytest.warns(RowsOmittedWarning, match=r"2 row\(s\) with missing moderator"):
        res = sa.meta_regression(data, mods=["tailor", "pperf"])
    assert res.k == 21


# ------------------------------------------------------------------------------------------------
# permutation tests
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(REF["permutest"]))
def test_exact_permutation_test_matches_permutest(key):
    ref = REF["permutest"][key]
    _, method, test = key.split("|")
    data = _data("bcg").iloc[: ref["rows"]]
    res = sa.meta_regression(data, mods=ref["formula"], method=method, test=test,
                             btt=ref.get("btt") or None)  # R's NULL is stored as {}
    perm = res.permutation_test(exact=True)
    assert perm.exact and perm.n_perm == ref["n_perm"]
    # exact p-values are ratios of counts: they must agree to rounding (1e-12)
    np.testing.assert_allclose(perm.pvalue.to_numpy(), ref["pvalue"], rtol=1e-12)
    assert perm.QM_pvalue == pytest.approx(ref["QM_pvalue"], rel=1e-12)
    assert_close(perm.statistic.to_numpy(), ref["statistic"], "statistic")


def test_random_permutation_test_is_seeded_and_near_exact():
    ref = REF["permutest"]["bcg6_ablat|REML|z"]
    res = sa.meta_regression(_data("bcg").iloc[:6], mods="~ ablat", method="REML")
    a = res.permutation_test(n_perm=200, seed=1)  # 360 distinct permutations > 200 -> random
    b = res.permutation_test(n_perm=200, seed=1)
    assert not a.exact and a.n_perm == 200
    assert a.QM_pvalue == b.QM_pvalue
    p = ref["QM_pvalue"]
    # Monte Carlo error: within 4 binomial standard errors of the exact p-value
    assert abs(a.QM_pvalue - p) < 4 * math.sqrt(p * (1 - p) / 200) + 1 / 200
    assert "Permutation test" in a.summary()
    assert list(a.to_frame().index)[-1] == "QM (omnibus)"


# ------------------------------------------------------------------------------------------------
# published worked example: Baskerville et al. (2012), pooled SMD 0.56 (95% CI 0.43-0.68)
# ------------------------------------------------------------------------------------------------
def test_baskerville_paper_pooled_smd():
    raw = pd.read_csv(BASKERVILLE_CSV)
    df = raw.assign(vi=raw["se"] ** 2)
    # The paper's numbers are reproduced to two decimals by the DerSimonian-Laird estimator
    # (0.557 [0.432, 0.683]); it is the method the paper used (RevMan-style random effects).
    dl = sa.meta_analysis(df, yi="smd", vi="vi", method="DL")
    assert (round(dl.estimate, 2), round(dl.ci_low, 2), round(dl.ci_high, 2)) == (0.56, 0.43, 0.68)
    # REML gives the same pooled SMD and lower bound, but its upper bound rounds to 0.69
    # (0.560 [0.432, 0.688]): REML does not reproduce the published CI exactly.
    reml = sa.meta_analysis(df, yi="smd", vi="vi", method="REML")
    assert (round(reml.estimate, 2), round(reml.ci_low, 2), round(reml.ci_high, 2)) == (0.56, 0.43, 0.69)
    # and both agree with metafor on the bundled CSV (rtol 1e-6)
    assert_close(dl.estimate, REF["paper"]["DL"]["estimate"], "DL estimate")
    assert_close(reml.ci_high, REF["paper"]["REML"]["ci_high"], "REML ci_high")


# ------------------------------------------------------------------------------------------------
# simulation recovery and invariances
# ------------------------------------------------------------------------------------------------
def test_simulation_coverage_of_mu_and_tau2_intervals():
    """Known truth: 300 simulated meta-analyses (k = 20, mu = 0.3, tau^2 = 0.04, seeded).

    The Q-profile CI of tau^2 is exact under the model and the Knapp-Hartung CI of mu is nearly so:
    their empirical coverage must be within 3 binomial SEs (3 * 0.0126) of the nominal 95 %.
    """
    rng = np.random.default_rng(20261123)
    n_rep, k, mu, tau2 = 300, 20, 0.30, 0.04
    cover_mu = cover_tau2 = 0
    for _ in range(n_rep):
        vi = rng.uniform(0.01, 0.08, k)
        yi = mu + rng.normal(0, math.sqrt(tau2), k) + rng.normal(0, np.sqrt(vi))
        res = sa.meta_analysis(pd.DataFrame({"yi": yi, "vi": vi}), method="REML", test="knha")
        cover_mu += res.ci_low < mu < res.ci_high
        cover_tau2 += res.tau2_ci_low <= tau2 <= res.tau2_ci_high
    se = math.sqrt(0.95 * 0.05 / n_rep)
    assert abs(cover_mu / n_rep - 0.95) < 3 * se
    assert abs(cover_tau2 / n_rep - 0.95) < 3 * se


def test_row_order_and_scale_invariance():
    data = _data("bcg")
    base = sa.meta_analysis(data, method="REML")
    shuffled = sa.meta_analysis(data.sample(frac=1.0, random_state=3), method="REML")
    assert shuffled.estimate == pytest.approx(base.estimate, rel=1e-10)
    assert shuffled.tau2 == pytest.approx(base.tau2, rel=1e-8)  # same Fisher-scoring path up to rounding
    c = 2.5
    scaled = sa.meta_analysis(data.assign(yi=data["yi"] * c, vi=data["vi"] * c**2), method="DL")
    dl = sa.meta_analysis(data, method="DL")
    assert scaled.estimate == pytest.approx(c * dl.estimate, rel=1e-10)
    assert scaled.tau2 == pytest.approx(c**2 * dl.tau2, rel=1e-10)
    assert scaled.I2 == pytest.approx(dl.I2, rel=1e-10)


# ------------------------------------------------------------------------------------------------
# input checking
# ------------------------------------------------------------------------------------------------
def test_missing_yi_rows_are_omitted_with_warning():
    data = _data("bcg")
    data.loc[[2, 5], "yi"] = np.nan
    with pytest.warns(RowsOmittedWarning, match=r"2 row\(s\) with missing 'yi' or 'vi' \(rows 2, 5\)"):
        res = sa.meta_analysis(data)
    assert res.k == 11


@pytest.mark.parametrize("bad", [0.0, -0.1, np.inf])
def test_non_positive_variance_raises(bad):
    data = _data("bcg")
    data.loc[4, "vi"] = bad
    with pytest.raises(ScaleupDataError, match=r"column 'vi': 1 row\(s\).*first rows 4"):
        sa.meta_analysis(data)


def test_bad_inputs_raise():
    data = _data("bcg")
    with pytest.raises(ScaleupDataError, match="no such column"):
        sa.meta_analysis(data, yi="effect")
    with pytest.raises(ScaleupDataError, match="not numeric"):
        sa.meta_analysis(data.assign(yi=["a"] + data["yi"].tolist()[1:]))
    with pytest.raises(ScaleupDataError, match="at least 2 studies"):
        sa.meta_analysis(data.iloc[:1])
    assert sa.meta_analysis(data.iloc[:1], method="FE").k == 1
    with pytest.raises(ScaleupDataError, match="unknown tau\\^2 estimator"):
        sa.meta_analysis(data, method="XX")
    with pytest.raises(ScaleupDataError, match="'z' \\(normal\\), 't' .* or 'knha'"):
        sa.meta_analysis(data, test="wald")
    with pytest.raises(ScaleupDataError, match="DataFrame"):
        sa.meta_analysis(data.to_dict())
    with pytest.raises(ScaleupDataError, match="no column"):
        sa.meta_regression(data, mods=["latitude"])
    with pytest.raises(ScaleupDataError, match="not of full rank"):
        sa.meta_regression(data.assign(ablat2=2 * data["ablat"]), mods=["ablat", "ablat2"])
    with pytest.raises(ScaleupDataError, match="at least 4 studies"):
        sa.meta_regression(data.iloc[:3], mods=["ablat", "year"])


# ------------------------------------------------------------------------------------------------
# presentation
# ------------------------------------------------------------------------------------------------
def test_summary_to_frame_and_plots():
    import matplotlib.axes

    data = _data("bcg")
    res = sa.meta_analysis(data, method="REML", slab="author", subgroup="alloc")
    assert "Random-effects meta-analysis (k = 13" in res.summary()
    frame = res.to_frame()
    assert frame.shape[0] == 1 and frame.loc[0, "tau2"] == res.tau2
    assert isinstance(res.plot_forest(), matplotlib.axes.Axes)
    assert isinstance(res.plot_forest(subgroup=None), matplotlib.axes.Axes)
    assert isinstance(res.plot_funnel(), matplotlib.axes.Axes)
    reg = sa.meta_regression(data, mods=["ablat", "alloc"])
    assert "Test of moderators" in reg.summary()
    assert list(reg.to_frame().columns[:2]) == ["term", "estimate"]
    assert isinstance(reg.plot_bubble("ablat"), matplotlib.axes.Axes)
    assert isinstance(reg.plot_bubble("alloc"), matplotlib.axes.Axes)


def test_results_read_well_in_both_languages():
    data = _data("bcg")
    res = sa.meta_analysis(data, method="REML", slab="author")
    text = repr(res)
    assert text.startswith("MetaAnalysisResult(k=13, method='REML', estimate=") and "\n" not in text
    assert "np.float64" not in text and len(text) < 200
    en, fr = res.summary(language="en"), res.summary(language="fr")
    assert f"{res.tau2:.4f}" in en and f"{res.tau2:.4f}".replace(".", ",") in fr
    assert "Méta-analyse à effets aléatoires (k = 13" in fr and "Test d'hétérogénéité" in fr
    reg = sa.meta_regression(data, mods=["ablat", "alloc"])
    assert "Test des modérateurs" in reg.summary(language="fr")
    assert repr(reg).startswith("MetaRegressionResult(k=13, p=4, method='REML'")
    perm = sa.meta_regression(data.iloc[:6], mods="~ ablat").permutation_test(n_perm=50, seed=1)
    assert "Test par permutation" in perm.summary(language="fr") and "QM (global)" in perm.summary(language="fr")


def test_forest_plot_has_metafor_columns():
    import matplotlib.pyplot as plt

    data = _data("bcg")
    res = sa.meta_analysis(data, method="REML", slab="author", subgroup="alloc")
    ax = res.plot_forest()
    texts = [t.get_text() for t in ax.texts]
    assert {"Study", "Estimate [95% CI]", "Weight", "RE model", "Prediction interval (95%)"} <= set(texts)
    assert set(data["alloc"]) <= set(texts)  # subgroup headings
    weights = [float(t[:-1]) for t in texts if t.endswith("%") and t[:-1].replace(".", "").isdigit()]
    assert len(weights) == res.k + 1 and sum(weights[:-1]) == pytest.approx(100, abs=0.1)  # rounded to 0.1
    assert f"{res.estimate:.2f} [{res.ci_low:.2f}, {res.ci_high:.2f}]" in texts
    assert ax.figure.get_size_inches()[1] <= 14
    plt.close("all")
    sa.set_language("fr")
    try:
        fr = [t.get_text() for t in res.plot_forest(subgroup=None, measure="RR").texts]
    finally:
        sa.set_language("en")
    rr = f"{math.exp(res.estimate):.2f}".replace(".", ",")  # log risk ratios shown back-transformed
    assert "Étude" in fr and "Modèle à effets aléatoires" in fr and any(t.startswith(rr + " [") for t in fr)
    plt.close("all")
    big = pd.DataFrame({"yi": np.linspace(-1, 1, 150), "vi": 0.05})
    ax = sa.meta_analysis(big).plot_forest()
    assert ax.figure.get_size_inches()[1] <= 14 and "150 studies" in ax.get_xlabel()  # too many to label: said
    assert all(t.get_fontsize() >= 7 for t in ax.texts)
    plt.close("all")


# ------------------------------------------------------------------------------------------------
# the O(k p^2) engine at larger k (tests/reference/ref_meta_scaling.R -> meta_scaling.json):
# k = 500 (intercept only) and k = 300 with p = 4 (numeric + 3-level moderator), every estimator
# x test, and data on which metafor's Fisher scoring does not converge
# ------------------------------------------------------------------------------------------------
SCALE = load_reference("meta_scaling")
SCALE_CELLS = [(m, t) for m in SCALE["grid"]["methods"] for t in SCALE["grid"]["tests"]]
SCALE_FIELDS = ["estimate", "se", "tau2", "se_tau2", "I2", "H2", "Q", "Q_pvalue", "QM", "QM_pvalue",
                "loglik", "AICc"]  # fmt: skip


def test_scaling_reference_grid_is_complete():
    from scaleup_analysis.engines.rma import TESTS
    from scaleup_analysis.engines.tau2 import METHODS

    assert SCALE["grid"]["methods"] == ["FE", "DL", "REML", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk"]
    assert set(SCALE["grid"]["methods"]) == set(METHODS)
    assert SCALE["grid"]["tests"] == ["z", "t", "knha"] and set(SCALE["grid"]["tests"]) == set(TESTS)
    assert SCALE["control"] == {"threshold": 1e-12, "tol": 1e-12, "maxiter": 10000}  # metafor run to convergence
    assert len(SCALE["data"]["ma"]["yi"]) == SCALE["grid"]["k_ma"] == 500
    assert len(SCALE["data"]["mr"]["yi"]) == SCALE["grid"]["k_mr"] == 300
    for part in ("meta_analysis", "meta_regression"):
        assert set(SCALE[part]) == {f"{m}|{t}" for m, t in SCALE_CELLS}, part
        for (m, t) in SCALE_CELLS:
            cell = SCALE[part][f"{m}|{t}"]
            assert set(SCALE_FIELDS) <= set(cell), (part, m, t)
            if m != "FE":
                assert {"tau2_ci_low", "tau2_ci_high"} <= set(cell), (part, m, t)
    assert [(c["method"], "x" in c) for c in SCALE["nonconvergence"]] == [
        ("REML", False), ("ML", False), ("REML", True)]


def _scale_fields(res, fit_kind):
    if fit_kind == "meta_analysis":
        vals = {"estimate": res.estimate, "se": res.se, "Q": res.Q, "Q_pvalue": res.Q_pvalue,
                "QM": res._fit.QM, "QM_pvalue": res._fit.QM_pvalue}  # fmt: skip
    else:
        vals = {"estimate": res.coef["estimate"].to_numpy(), "se": res.coef["se"].to_numpy(), "Q": res.QE,
                "Q_pvalue": res.QE_pvalue, "QM": res.QM, "QM_pvalue": res.QM_pvalue}  # fmt: skip
    for name in ("tau2", "I2", "H2", "loglik", "AICc", "tau2_ci_low", "tau2_ci_high"):
        vals[name] = getattr(res, name)
    vals["se_tau2"] = res.tau2_se  # the fixture's key (metafor's se.tau2)
    return vals


@pytest.mark.parametrize("cell", SCALE_CELLS, ids=["|".join(c) for c in SCALE_CELLS])
def test_larger_k_meta_analysis_matches_metafor(cell):
    method, test = cell
    df = pd.DataFrame(SCALE["data"]["ma"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sa.meta_analysis(df, method=method, test=test)
    ref = SCALE["meta_analysis"]["|".join(cell)]
    got = _scale_fields(res, "meta_analysis")
    for name in SCALE_FIELDS + (["tau2_ci_low", "tau2_ci_high"] if method != "FE" else []):
        assert_close(got[name], ref[name], name)  # rtol 1e-6
    for name in ("tau2", "tau2_ci_low", "tau2_ci_high") if method != "FE" else ():
        assert_tau2(got[name], ref[name], name)  # exact optimum / roots: 1e-8 relative


@pytest.mark.parametrize("cell", SCALE_CELLS, ids=["|".join(c) for c in SCALE_CELLS])
def test_larger_k_meta_regression_matches_metafor(cell):
    method, test = cell
    df = pd.DataFrame(SCALE["data"]["mr"])
    res = sa.meta_regression(df, mods=SCALE["data"]["mr_formula"], method=method, test=test)
    assert list(res.coef.index) == ["intrcpt", "x", "arm[T.b]", "arm[T.c]"]  # metafor: intrcpt x armb armc
    ref = SCALE["meta_regression"]["|".join(cell)]
    got = _scale_fields(res, "meta_regression")
    for name in SCALE_FIELDS + (["tau2_ci_low", "tau2_ci_high"] if method != "FE" else []):
        assert_close(got[name], ref[name], name)  # rtol 1e-6
    for name in ("tau2", "tau2_ci_low", "tau2_ci_high") if method != "FE" else ():
        assert_tau2(got[name], ref[name], name)  # exact optimum / roots: 1e-8 relative


@pytest.mark.parametrize("case", SCALE["nonconvergence"], ids=lambda c: c["method"] + ("-mods" if "x" in c else ""))
def test_fisher_scoring_nonconvergence_matches_metafor(case):
    # With its default control (maxiter 100) metafor's rma() stops on these data ("Fisher scoring
    # algorithm did not converge"): tau^2 oscillates. Run to convergence (maxiter 10000), the first two
    # get there after a slow damped oscillation and we return the same tau^2; on the third tau^2 keeps
    # oscillating and we stop with metafor's diagnosis.
    assert case["error_default"].startswith("Fisher scoring algorithm did not converge")
    method = case["method"]
    if "x" in case:
        df = pd.DataFrame({"yi": case["yi"], "vi": case["vi"], "x": case["x"]})

        def fit(m):
            return sa.meta_regression(df, mods=["x"], method=m)
    else:
        df = pd.DataFrame({"yi": case["yi"], "vi": case["vi"]})

        def fit(m):
            return sa.meta_analysis(df, method=m)

    if case["error"] is None:
        assert_tau2(fit(method).tau2, case["tau2"], "tau2")  # 1e-8 relative (1e-10 absolute near 0)
    else:
        assert case["error"].startswith("Fisher scoring algorithm did not converge")
        with pytest.raises(
            ScaleupDataError,
            match=rf"Fisher scoring for the {method} estimate of tau2 did not converge in 10000 iterations"
            r".*metafor.*same error.*try method='PM' or method='DL'",
        ):
            fit(method)
    # the estimators the message suggests do work on these data, and equal metafor (rtol 1e-6)
    assert_close(fit("PM").tau2, case["PM_tau2"], "PM tau2")
    assert_close(fit("DL").tau2, case["DL_tau2"], "DL tau2")


def test_memory_is_linear_in_k():
    """No k x k matrix anywhere in the fit: at k = 200,000 a single k x k float matrix would need 298 GiB.

    The bound (80 float vectors of length k, i.e. 128 MB, Python-side peak measured by tracemalloc) is
    structural, not a timing: the engine holds a handful of length-k work vectors at a time; most of the
    ~45 vectors observed are the validated copy of the table, its string labels and patsy's design.
    """
    import tracemalloc

    k = 200_000
    rng = np.random.default_rng(7)
    vi = rng.uniform(0.01, 0.2, k)
    df = pd.DataFrame({"yi": rng.normal(0.3, np.sqrt(0.05 + vi)), "vi": vi, "x": rng.normal(size=k)})
    tracemalloc.start()
    try:
        res = sa.meta_analysis(df, method="REML")  # includes the Q-profile CI of tau^2
        reg = sa.meta_regression(df, mods=["x"], method="REML")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 80 * 8 * k, peak / 2**20  # O(k) memory; a k x k matrix would need 298 GiB
    # simulation truth (mu = 0.3, tau^2 = 0.05, no moderator effect): within 4 standard errors
    assert abs(res.estimate - 0.3) < 4 * res.se
    assert abs(res.tau2 - 0.05) < 4 * res.tau2_se
    assert res.tau2_ci_low < res.tau2 < res.tau2_ci_high
    assert abs(reg.coef.loc["x", "estimate"]) < 4 * reg.coef.loc["x", "se"]
