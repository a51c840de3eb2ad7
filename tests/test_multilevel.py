"""multilevel_meta_analysis against metafor::rma.mv (tests/reference/ref_mixed.R -> mixed.json).

Tolerance: 1e-6 relative (meta-analysis) unless said otherwise; metafor's own optimiser stops
~3e-8 from the optimum on dat.konstantopoulos2011.
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
