"""multilevel_meta_analysis against metafor::rma.mv.

Without moderators: tests/reference/ref_mixed.R -> mixed.json (metafor's default control), tolerance
1e-6 relative unless said otherwise; metafor's own optimiser stops ~3e-8 from the optimum on
dat.konstantopoulos2011.

With moderators (issue 18): tests/reference/ref_multilevel.R -> multilevel.json, rma.mv(yi, vi,
mods = ~ ..., random = ~ 1 | outer/inner) on dat.konstantopoulos2011, dat.assink2016, dat.bornmann2007
x {REML, ML} x {z, t} x {continuous, categorical, two moderators} and a hand-built study (3 regions,
8 sites, a site-level moderator). The R script polishes the variance components on the analytic
score and checks that no optimiser (nlminb, BFGS with tight control) finds a higher logLik, so the
fixture is the optimum: tolerance 1e-8 relative. A simulation with a planted moderator slope is the
known-truth check.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("mixed")
MREF = load_reference("multilevel")
EXPECTED = {f"{ds}|{m}" for ds in ("konstantopoulos2011", "sim3level") for m in ("REML", "ML")}
# dataset -> levels (outermost first)
LEVELS = {"konstantopoulos2011": ["district", "school"], "sim3level": ["region", "site", "es"]}
FIELDS = {"estimate", "se", "zval", "pval", "ci_lb", "ci_ub", "sigma2", "QE", "QEp", "logLik", "deviance",
          "AIC", "BIC"}
KON_FIELDS = {"typical_v", "I2", "sigma2_ci_lb", "sigma2_ci_ub", "t"}
T_FIELDS = {"se", "tval", "df", "pval", "ci_lb", "ci_ub"}
# result attribute -> metafor value
PAIRS = [("estimate", "estimate"), ("se", "se"), ("statistic", "zval"), ("pvalue", "pval"),
         ("QE", "QE"), ("QE_pvalue", "QEp"), ("loglik", "logLik"), ("deviance", "deviance"), ("AIC", "AIC"),
         ("BIC", "BIC")]


def kon() -> pd.DataFrame:
    return pd.DataFrame(REF["data"]["konstantopoulos2011"])


@lru_cache(maxsize=None)
def fit(method: str, test: str = "z", dataset: str = "konstantopoulos2011"):
    return sa.multilevel_meta_analysis(pd.DataFrame(REF["data"][dataset]), yi="yi", vi="vi",
                                       group=LEVELS[dataset], method=method, test=test)


def test_grid_coverage():
    assert set(REF["multilevel"]) == EXPECTED
    assert set(REF["rma_uni"]) == {"REML", "ML"}
    for key, cell in REF["multilevel"].items():
        assert FIELDS <= set(cell), key
        assert len(cell["sigma2"]) == len(LEVELS[key.split("|")[0]]), key
        if key.startswith("konstantopoulos2011"):
            assert KON_FIELDS <= set(cell), key
            assert T_FIELDS <= set(cell["t"]), key
            assert len(cell["I2"]) == 2


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_against_metafor(key):
    dataset, method = key.split("|")
    r = REF["multilevel"][key]
    res = fit(method, "z", dataset)
    assert res.k == r["k"]
    assert res.converged
    for attr, name in PAIRS:
        assert abs(getattr(res, attr) / r[name] - 1) < 1e-6, attr  # meta-analysis: 1e-6
    # CI bounds: 1e-6 relative to the SE (a bound close to 0 makes a relative error meaningless)
    assert abs(res.ci_low - r["ci_lb"]) / r["se"] < 1e-6
    assert abs(res.ci_high - r["ci_ub"]) / r["se"] < 1e-6
    assert list(res.sigma2.index) == LEVELS[dataset]
    assert np.max(np.abs(res.sigma2.to_numpy() / r["sigma2"] - 1)) < 1e-6  # 1e-6


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_konstantopoulos_i2_and_profile_ci(method):
    r = REF["multilevel"][f"konstantopoulos2011|{method}"]
    res = fit(method)
    assert abs(res.typical_v / r["typical_v"] - 1) < 1e-6  # closed form given the data: 1e-6
    assert np.max(np.abs(res.I2.to_numpy() / r["I2"] - 1)) < 1e-6  # 1e-6
    # profile-likelihood intervals (confint.rma.mv with uniroot tol = 1e-12)
    assert np.max(np.abs(res.sigma2_ci["ci_low"].to_numpy() / r["sigma2_ci_lb"] - 1)) < 1e-6
    assert np.max(np.abs(res.sigma2_ci["ci_high"].to_numpy() / r["sigma2_ci_ub"] - 1)) < 1e-6
    assert res.n_units.tolist() == [11, 56]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_t_test_against_metafor(method):
    r = REF["multilevel"][f"konstantopoulos2011|{method}"]["t"]
    res = fit(method, "t")
    assert res.df == r["df"]
    assert abs(res.se / r["se"] - 1) < 1e-6  # 1e-6
    assert abs(res.statistic / r["tval"] - 1) < 1e-6
    assert abs(res.pvalue / r["pval"] - 1) < 1e-6
    assert abs(res.ci_low / r["ci_lb"] - 1) < 1e-6
    assert abs(res.ci_high / r["ci_ub"] - 1) < 1e-6


def test_recovery_site_and_region_variances():
    """Simulated sites within 18 regions with known variances: the 95 % profile CIs cover the truth."""
    rng = np.random.default_rng(2026)
    s2_region, s2_site, mu = 0.04, 0.02, 0.25
    rows = []
    for r in range(18):
        u_r = rng.normal(0, np.sqrt(s2_region))
        for s in range(int(rng.integers(3, 7))):
            u_s = rng.normal(0, np.sqrt(s2_site))
            vi = rng.uniform(0.005, 0.03)
            rows.append({"region": f"{r + 1:02d}", "site": f"site{s}", "vi": vi,
                         "yi": mu + u_r + u_s + rng.normal(0, np.sqrt(vi))})
    df = pd.DataFrame(rows)
    res = sa.multilevel_meta_analysis(df, group=["region", "site"])
    assert res.n_units["region"] == 18
    assert res.ci_low < mu < res.ci_high
    ci = res.sigma2_ci
    assert ci.loc["region", "ci_low"] < s2_region < ci.loc["region", "ci_high"]
    assert ci.loc["site", "ci_low"] < s2_site < ci.loc["site", "ci_high"]
    # the profile interval contains the estimate
    assert np.all(ci["ci_low"] <= res.sigma2) and np.all(res.sigma2 <= ci["ci_high"])


def test_nested_labels_and_row_order():
    """Inner labels are nested in their outer unit; row order does not matter."""
    df = kon()
    base = fit("REML")
    # schools numbered 1..n within each district (labels repeat across districts)
    df2 = df.copy()
    df2["school"] = df2.groupby("district").cumcount().astype(str)
    df2 = df2.sample(frac=1.0, random_state=np.random.RandomState(3))
    res = sa.multilevel_meta_analysis(df2, group=["district", "school"])
    assert abs(res.estimate / base.estimate - 1) < 1e-7  # optimiser precision ~1e-8
    assert np.allclose(res.sigma2, base.sigma2, rtol=1e-6)
    assert abs(res.loglik - base.loglik) < 1e-9


def test_result_api():
    res = fit("REML")
    tidy = res.to_frame()
    assert tidy["term"].tolist() == ["intercept", "sigma2.district", "sigma2.school"]
    assert "district" in res.summary()
    assert isinstance(res.plot_variance_shares(), matplotlib.axes.Axes)


def test_missing_rows_warn_and_bad_input():
    df = kon()
    df.loc[[0, 5, 9], "yi"] = np.nan
    with pytest.warns(RowsOmittedWarning, match="3 row"):
        res = sa.multilevel_meta_analysis(df, group=["district", "school"])
    assert res.k == 53
    bad = kon()
    bad.loc[[1, 2], "vi"] = 0.0
    with pytest.raises(ScaleupDataError, match="'vi'.*2 row"):
        sa.multilevel_meta_analysis(bad, group=["district", "school"])
    with pytest.raises(ScaleupDataError, match="'region'"):
        sa.multilevel_meta_analysis(kon(), group=["region", "school"])
    with pytest.raises(ScaleupDataError, match="method"):
        sa.multilevel_meta_analysis(kon(), group=["district", "school"], method="DL")


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_single_level_is_rma_uni(method):
    """One level with one effect size per unit is the usual random-effects model (metafor::rma)."""
    r = REF["rma_uni"][method]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sa.multilevel_meta_analysis(kon(), group=["study"], method=method)
    assert abs(res.estimate / r["estimate"] - 1) < 1e-6  # 1e-6
    assert abs(res.se / r["se"] - 1) < 1e-6
    assert abs(res.sigma2["study"] / r["tau2"] - 1) < 1e-6
    assert abs(res.loglik / r["logLik"] - 1) < 1e-6


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=4, deadline=None)
@given(a=st.floats(0.05, 20.0), method=st.sampled_from(["REML", "ML"]))
def test_rescaling_effect_sizes(a, method):
    """yi -> a yi, vi -> a^2 vi: estimate x a, sigma2 x a^2, I2, QE and z unchanged."""
    df = kon()
    base = fit(method)
    df["yi"] *= a
    df["vi"] *= a * a
    res = sa.multilevel_meta_analysis(df, group=["district", "school"], method=method)
    assert np.isclose(res.estimate, a * base.estimate, rtol=1e-6)  # 1e-6
    assert np.allclose(res.sigma2, a * a * base.sigma2, rtol=1e-6)
    assert np.allclose(res.I2, base.I2, rtol=1e-6)
    assert np.isclose(res.QE, base.QE, rtol=1e-10)  # closed form
    assert np.isclose(res.statistic, base.statistic, rtol=1e-6)


# ------------------------------------------------------------------ moderators (multilevel.json) ---
MOD_SETS = {"konstantopoulos2011": ("continuous", "categorical", "two"), "assink2016": ("continuous", "categorical", "two"),
            "bornmann2007": ("continuous", "categorical", "two"), "hand": ("continuous",)}
MOD_EXPECTED = {f"{ds}|{m}|{t}|{ms}" for ds, sets in MOD_SETS.items() for m in ("REML", "ML") for t in ("z", "t")
                for ms in sets}
MOD_FIELDS = {"mods", "k", "p", "estimate", "se", "statistic", "pval", "ci_lb", "ci_ub", "vcov", "QM", "QMdf", "QMp",
              "QE", "QEp", "sigma2", "sigma2_nomods", "R2", "R2_total", "typical_v", "I2", "logLik", "deviance", "AIC",
              "BIC", "AICc", "pred", "check"}
REL = 1e-8  # the fixture is the optimum (see the module docstring)


def _mods(cell) -> list[str]:
    return cell["mods"] if isinstance(cell["mods"], list) else [cell["mods"]]


@lru_cache(maxsize=None)
def mfit(key: str, btt=None):
    ds, method, test, _ = key.split("|")
    cell = MREF["cells"][key]
    return sa.multilevel_meta_analysis(pd.DataFrame(MREF["data"][ds]), group=MREF["levels"][ds], mods=_mods(cell),
                                       method=method, test=test, btt=btt)


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_moderator_grid_coverage():
    """Every cell of dataset x method x test x moderator set is in the fixture, at the optimum."""
    assert set(MREF["cells"]) == MOD_EXPECTED
    for key, cell in MREF["cells"].items():
        assert MOD_FIELDS <= set(cell), key
        assert len(cell["sigma2"]) == 2 and len(cell["R2"]) == 2, key
        ch = cell["check"]
        # R side: the polished point is at least as good as both optimisers (fixture = optimum)
        assert ch["logLik_polished"] >= max(ch["logLik_nlminb"], ch["logLik_bfgs"]) - 1e-12, key
        assert max(np.abs(ch["score_polished"])) < 1e-8, key
        if key.endswith("|two"):
            assert "btt" in cell, key
    assert {k for k, c in MREF["cells"].items() if "sigma2_ci_lb" in c} == {
        "konstantopoulos2011|REML|z|continuous", "konstantopoulos2011|ML|z|continuous",
        "assink2016|REML|z|categorical", "hand|REML|z|continuous"}


@pytest.mark.parametrize("key", sorted(MOD_EXPECTED))
def test_moderators_against_metafor(key):
    r = MREF["cells"][key]
    res = mfit(key)
    assert res.converged
    assert (res.k, res.p) == (r["k"], r["p"])
    c = res.coef
    assert len(c) == len(r["terms"]) and c.index[0] == "intrcpt"
    assert _rel(c["estimate"], r["estimate"]) < REL
    assert _rel(c["se"], r["se"]) < REL
    assert _rel(c["statistic"], r["statistic"]) < REL
    assert _rel(c["pvalue"], r["pval"]) < REL
    se = np.asarray(r["se"])
    # CI bounds: relative to the SE (a bound near 0 makes a relative error meaningless)
    assert np.max(np.abs(c["ci_low"] - r["ci_lb"]) / se) < REL
    assert np.max(np.abs(c["ci_high"] - r["ci_ub"]) / se) < REL
    vb = np.asarray(r["vcov"])
    assert np.max(np.abs(res.vcov.to_numpy() - vb) / np.outer(se, se)) < REL
    if res.test == "t":
        assert res.df == r["k"] - r["p"] == r["ddf"][0]
        assert res.QM_df == tuple(r["QMdf"])
    else:
        assert np.isinf(res.df) and res.QM_df == (r["QMdf"][0], None)
    for attr, name in [("QM", "QM"), ("QM_pvalue", "QMp"), ("QE", "QE"), ("QE_pvalue", "QEp"),
                       ("loglik", "logLik"), ("deviance", "deviance"), ("AIC", "AIC"), ("BIC", "BIC"),
                       ("AICc", "AICc"), ("typical_v", "typical_v")]:
        assert _rel(getattr(res, attr), r[name]) < REL, attr
    assert res.QE_df == r["k"] - r["p"]
    assert list(res.sigma2.index) == MREF["levels"][key.split("|")[0]]
    assert _rel(res.sigma2, r["sigma2"]) < REL
    assert _rel(res.sigma2_nomods, r["sigma2_nomods"]) < REL
    assert _rel(res.I2, r["I2"]) < REL
    # pseudo-R2 in percent: 1e-6 percentage points (1e-8 of the 0-100 scale; a level's R2 is often 0)
    assert np.max(np.abs(res.R2.to_numpy() - r["R2"])) < 1e-6
    assert abs(res.R2_total - r["R2_total"]) < 1e-6
    # predictions at the first three rows' moderator values (metafor predict(newmods = ...))
    pr = res.predict(pd.DataFrame(MREF["data"][key.split("|")[0]]).iloc[:3])
    rp = r["pred"]
    assert _rel(pr["pred"], rp["pred"]) < REL and _rel(pr["se"], rp["se"]) < REL
    for ours, theirs in [("ci_low", "ci_lb"), ("ci_high", "ci_ub"), ("pi_low", "pi_lb"), ("pi_high", "pi_ub")]:
        assert np.max(np.abs(pr[ours] - rp[theirs]) / np.asarray(rp["se"])) < REL, ours


@pytest.mark.parametrize("key", sorted(k for k in MOD_EXPECTED if k.endswith("|two")))
def test_btt_subset_test(key):
    """QM of the categorical moderator's coefficients only (rma.mv(..., btt = ...))."""
    r = MREF["cells"][key]["btt"]
    res = mfit(key, btt=r["mod"])
    assert res.btt == tuple(res.coef.index[i - 1] for i in np.atleast_1d(r["coefs"]))
    assert res.QM_df[0] == r["QMdf"][0]
    assert _rel(res.QM, r["QM"]) < REL and _rel(res.QM_pvalue, r["QMp"]) < REL
    # the same subset named by its coefficients
    by_name = mfit(key, btt=tuple(res.btt))
    assert by_name.QM == res.QM


@pytest.mark.parametrize("key", ["konstantopoulos2011|REML|z|continuous", "konstantopoulos2011|ML|z|continuous",
                                 "assink2016|REML|z|categorical", "hand|REML|z|continuous"])
def test_profile_ci_with_moderators(key):
    r = MREF["cells"][key]
    res = mfit(key)
    # 1e-6: confint.rma.mv re-estimates the other component with metafor's default control
    # (a lower bound at 0 must be exactly 0)
    assert np.allclose(res.sigma2_ci["ci_low"], r["sigma2_ci_lb"], rtol=1e-6, atol=0)
    assert np.allclose(res.sigma2_ci["ci_high"], r["sigma2_ci_ub"], rtol=1e-6, atol=0)


def test_moderator_slope_recovered():
    """Known truth: sites within 60 regions, a site-level moderator with slope 0.3 and a region-level
    one with slope -0.2. The estimates lie within 3 SE of the slopes (a 99.7 % band: a 95 % CI misses
    1 time in 20, and a coverage run of 60 such simulations gave z-scores with SD 1.01 and 1.04), and each
    moderator takes variance away at its own level."""
    rng = np.random.default_rng(2026)
    s2_region, s2_site, slope_site, slope_region = 0.03, 0.02, 0.3, -0.2
    rows = []
    for r in range(60):
        z = rng.normal()
        u_r = rng.normal(0, np.sqrt(s2_region))
        for s in range(int(rng.integers(3, 6))):
            x = rng.normal()
            vi = rng.uniform(0.005, 0.02)
            rows.append({"region": f"r{r}", "site": f"s{s}", "x": x, "z": z, "vi": vi,
                         "yi": 0.2 + slope_site * x + slope_region * z + u_r + rng.normal(0, np.sqrt(s2_site))
                         + rng.normal(0, np.sqrt(vi))})
    df = pd.DataFrame(rows)
    res = sa.multilevel_meta_analysis(df, group=["region", "site"], mods=["x", "z"])
    c = res.coef
    assert abs(c.loc["x", "estimate"] - slope_site) < 3 * c.loc["x", "se"]
    assert abs(c.loc["z", "estimate"] - slope_region) < 3 * c.loc["z", "se"]
    assert res.QM_pvalue < 1e-6
    # the site-level moderator explains site variance (and some region variance: region means of x
    # differ), the region-level one region variance only (z is constant within a region)
    only_x = sa.multilevel_meta_analysis(df, group=["region", "site"], mods=["x"])
    only_z = sa.multilevel_meta_analysis(df, group=["region", "site"], mods=["z"])
    assert only_x.R2["site"] > 50
    assert only_z.R2["region"] > 30 and only_z.R2["site"] < 10


def test_moderator_forms_and_invariances():
    """A formula string equals the list of columns; rescaling a moderator rescales its coefficient only;
    row order does not matter."""
    key = "assink2016|REML|z|two"
    base = mfit(key)
    df = pd.DataFrame(MREF["data"]["assink2016"])
    f = sa.multilevel_meta_analysis(df, group=["study", "esid"], mods="~ deltype + year")
    assert np.allclose(f.coef["estimate"], base.coef["estimate"], rtol=1e-10, atol=0)
    scaled = sa.multilevel_meta_analysis(df.assign(year=df["year"] / 10), group=["study", "esid"],
                                         mods=["deltype", "year"])
    assert np.isclose(scaled.coef.loc["year", "estimate"], 10 * base.coef.loc["year", "estimate"], rtol=1e-9)
    assert np.allclose(scaled.sigma2, base.sigma2, rtol=1e-9)
    assert np.isclose(scaled.QM, base.QM, rtol=1e-9)
    shuffled = sa.multilevel_meta_analysis(df.sample(frac=1.0, random_state=np.random.RandomState(5)),
                                           group=["study", "esid"], mods=["deltype", "year"])
    assert np.allclose(shuffled.coef["estimate"], base.coef["estimate"], rtol=1e-9)
    assert abs(shuffled.loglik - base.loglik) < 1e-10


def test_moderator_result_api():
    res = mfit("hand|REML|t|continuous")
    tidy = res.to_frame()
    assert tidy["term"].tolist() == ["intrcpt", "volume", "sigma2.region", "sigma2.site"]
    assert {"estimate", "se", "statistic", "df", "pvalue", "ci_low", "ci_high", "I2", "n_units", "R2"} <= set(tidy)
    text = res.summary()
    assert "volume" in text and "QE(df = 14)" in text and "F(df1 = 1, df2 = 14)" in text
    assert np.isnan(res.estimate)  # no single pooled effect with moderators: see coef
    assert isinstance(res.plot_variance_shares(), matplotlib.axes.Axes)
    # without moderators: no QM / R2, one coefficient, the pooled prediction with its PI
    base = fit("REML")
    assert base.formula is None and np.isnan(base.QM) and base.R2.isna().all() and base.btt == ()
    assert base.coef["estimate"].iloc[0] == base.estimate
    pr = base.predict()
    assert pr["pred"].iloc[0] == base.estimate
    assert pr["pi_low"].iloc[0] < base.ci_low


def test_moderator_bad_input():
    df = pd.DataFrame(MREF["data"]["hand"])
    with pytest.raises(ScaleupDataError, match="no column.*'size'"):
        sa.multilevel_meta_analysis(df, group=["region", "site"], mods=["size"])
    miss = df.copy()
    miss.loc[[2, 3], "volume"] = np.nan
    with pytest.warns(RowsOmittedWarning, match="missing moderator values"):
        res = sa.multilevel_meta_analysis(miss, group=["region", "site"], mods=["volume"])
    assert res.k == 14
    with pytest.raises(ScaleupDataError, match="not of full rank"):
        sa.multilevel_meta_analysis(df.assign(v2=2 * df["volume"]), group=["region", "site"], mods=["volume", "v2"])
    with pytest.raises(ScaleupDataError, match="btt names 'size'"):
        sa.multilevel_meta_analysis(df, group=["region", "site"], mods=["volume"], btt="size")
    with pytest.raises(ScaleupDataError, match="multilevel_meta_analysis.*'volume'.*infinite"):
        sa.multilevel_meta_analysis(df.assign(volume=df["volume"].where(df.index != 4, np.inf)),
                                    group=["region", "site"], mods=["volume"])
    with pytest.raises(ScaleupDataError, match="newdata"):
        mfit("hand|REML|z|continuous").predict()
    with pytest.raises(ScaleupDataError, match="need at least 5"):
        sa.multilevel_meta_analysis(df.iloc[[0, 1, 6, 7]], group=["region", "site"], mods=["volume", "indicator"])
