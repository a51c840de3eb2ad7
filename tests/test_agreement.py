"""Tests of scaleup_analysis.agreement (ICC, Cohen's kappa, Fleiss' kappa, Krippendorff's alpha).

Reference values:
* tests/reference/agreement.json, written by tests/reference/ref_agreement.R with psych::ICC,
  psych::cohen.kappa and lme4::lmer (R 4.2, psych 2.2.9, lme4 1.1-31);
* published worked examples: Fleiss (1971) psychiatric diagnoses (30 subjects x 6 raters,
  5 categories), Krippendorff (2011) 4 coders x 12 units with missing values, and the SAS PROC FREQ
  printout for the 3 x 3 table reproduced in statsmodels' test suite;
* statsmodels.stats.inter_rater (cohens_kappa, fleiss_kappa) as an independent implementation.
"""

from __future__ import annotations

import warnings

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("agreement")

# Unit 12 of Krippendorff's example has one value: the RowsOmittedWarning it triggers is checked
# explicitly where it matters (pytest.warns / catch_warnings record regardless of this filter).
pytestmark = pytest.mark.filterwarnings("ignore::scaleup_analysis.errors.RowsOmittedWarning")

ICC_TYPES = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
ICC_FIELDS = {  # our column -> psych column in the fixture
    "icc": "icc",
    "statistic": "F",
    "df1": "df1",
    "df2": "df2",
    "pvalue": "p",
    "ci_low": "lower",
    "ci_high": "upper",
}
ICC_DATASETS = ["sf", "sim20x3", "gleser"]
ICC_LEVELS = {"level95": 0.95, "level90": 0.90}
MIXED_DATASETS = ["sf_missing", "sim25x5_missing"]
KAPPA_DATASETS = {"table10": [1, 2, 3], "sim60x4": [1, 2, 3, 4]}
KAPPA_WEIGHTS = {"none": None, "linear": "linear", "quadratic": "quadratic"}

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, categories 1 depression,
# 2 personality disorder, 3 schizophrenia, 4 neurosis, 5 other (= irr::diagnoses).
DIAGNOSES = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x
# 12 units, values 1-5, missing data (np.nan). Published: nominal 0.743, ordinal 0.815,
# interval 0.849, ratio 0.797; n.. = 40 pairable values (unit 12 has a single value).
KRIPP_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    "C": [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
}
KRIPP_2011_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def _long(data: dict) -> pd.DataFrame:
    return pd.DataFrame(data)


def _kripp_df(drop_missing: bool = True) -> pd.DataFrame:
    rows = [(u + 1, r, v) for r, vals in KRIPP_2011.items() for u, v in enumerate(vals)]
    df = pd.DataFrame(rows, columns=["unit", "coder", "value"])
    return df.dropna() if drop_missing else df


def _diagnoses_df() -> pd.DataFrame:
    rows = [(s, f"psychiatrist{r}", v) for s, row in enumerate(DIAGNOSES) for r, v in enumerate(row)]
    return pd.DataFrame(rows, columns=["patient", "rater", "diagnosis"])


# --------------------------------------------------------------------------------------------
# grid coverage: the fixture cannot silently shrink
# --------------------------------------------------------------------------------------------
def test_reference_grid_is_complete():
    for ds in ICC_DATASETS:
        entry = REF["icc"][ds]
        for option in (*ICC_LEVELS, "psych_lmer"):
            for typ in ICC_TYPES:
                assert set(ICC_FIELDS.values()) <= set(entry[option][typ]), (ds, option, typ)
    for ds in MIXED_DATASETS:
        entry = REF["icc_mixed"][ds]
        assert {"var_target", "var_rater", "var_residual", "reml_deviance"} <= set(entry["crossed"])
        assert {"var_target", "var_residual", "reml_deviance"} <= set(entry["oneway"])
        assert set(entry["icc"]) == set(ICC_TYPES)
        assert np.isfinite(entry["k"])
    for ds in KAPPA_DATASETS:
        for w in KAPPA_WEIGHTS:
            e = REF["cohen_kappa"][ds][w]
            assert {"kappa", "var_kappa", "weighted_kappa", "var_weighted"} <= set(e), (ds, w)
    # 3 datasets x 3 options x 6 types x 7 fields + 2 x (4 + 6) + 2 x 3 kappa cells
    n_cells = len(ICC_DATASETS) * 3 * 6 * 7 + len(MIXED_DATASETS) * 10 + len(KAPPA_DATASETS) * 3
    assert n_cells == 404


# --------------------------------------------------------------------------------------------
# ICC (ANOVA) == psych::ICC(lmer = FALSE)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level_key", sorted(ICC_LEVELS))
@pytest.mark.parametrize("dataset", ICC_DATASETS)
def test_icc_matches_psych(dataset, level_key):
    entry = REF["icc"][dataset]
    df = _long(entry["data"])
    res = sa.icc(df, unit="target", rater="rater", score="rating", level=ICC_LEVELS[level_key])
    table = res.to_frame()
    assert list(table.index) == ICC_TYPES
    for typ in ICC_TYPES:
        for ours, theirs in ICC_FIELDS.items():
            # 1e-8 relative: closed forms (the requirement for ICC)
            np.testing.assert_allclose(
                table.loc[typ, ours], entry[level_key][typ][theirs], rtol=1e-8, err_msg=f"{typ} {ours}"
            )


@pytest.mark.parametrize("dataset", ICC_DATASETS)
def test_icc_close_to_psych_default_lmer(dataset):
    """psych's default (lmer = TRUE) rebuilds the ANOVA mean squares from lme4's REML fit."""
    entry = REF["icc"][dataset]
    res = sa.icc(_long(entry["data"]), "target", "rater", "rating")
    for typ in ICC_TYPES:
        # 1e-4 relative: psych's values carry lme4's optimizer tolerance (observed ~1e-6)
        np.testing.assert_allclose(res.icc[typ], entry["psych_lmer"][typ]["icc"], rtol=1e-4)


def test_icc_shrout_fleiss_published_values():
    """Shrout & Fleiss (1979), Table 4, rounded to 2 decimals."""
    res = sa.icc(_long(REF["icc"]["sf"]["data"]), "target", "rater", "rating")
    published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
    for typ, val in published.items():
        assert res.icc[typ] == pytest.approx(val, abs=0.005)  # published to 2 decimals
    assert res.to_frame().loc["ICC3", "interpretation"] == "moderate"  # Koo & Li: 0.5-0.75
    assert res.to_frame().loc["ICC3k", "interpretation"] == "excellent"  # > 0.9
    assert res.to_frame().loc["ICC1", "interpretation"] == "poor"  # < 0.5


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_icc_invariant_to_row_order_and_relabelling(seed):
    rng = np.random.default_rng(seed)
    df = _long(REF["icc"]["sim20x3"]["data"])
    shuffled = df.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
    shuffled["target"] = "site-" + shuffled["target"].astype(str)
    shuffled["rater"] = shuffled["rater"].map({1: "z", 2: "a", 3: "m"})
    a = sa.icc(df, "target", "rater", "rating").icc
    b = sa.icc(shuffled, "target", "rater", "rating").icc
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-10)  # same sums, reordered


def test_icc_linear_rescaling_invariance():
    df = _long(REF["icc"]["gleser"]["data"])
    scaled = df.assign(rating=10 + 3.5 * df["rating"])
    np.testing.assert_allclose(
        sa.icc(scaled, "target", "rater", "rating").icc.to_numpy(),
        sa.icc(df, "target", "rater", "rating").icc.to_numpy(),
        rtol=1e-10,  # exact up to rounding
    )


# --------------------------------------------------------------------------------------------
# ICC from variance components == lme4::lmer
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", MIXED_DATASETS)
def test_icc_mixed_matches_lme4(dataset):
    entry = REF["icc_mixed"][dataset]
    df = _long(entry["data"])
    res = sa.icc_mixed(df, unit="target", rater="rater", score="rating")
    cr, ow = entry["crossed"], entry["oneway"]
    # 1e-4 relative: iterative REML fits (observed agreement ~1e-6)
    np.testing.assert_allclose(res.var_unit, cr["var_target"], rtol=1e-4)
    np.testing.assert_allclose(res.var_rater, cr["var_rater"], rtol=1e-4)
    np.testing.assert_allclose(res.var_residual, cr["var_residual"], rtol=1e-4)
    np.testing.assert_allclose(res.intercept, cr["intercept"], rtol=1e-4)
    np.testing.assert_allclose(res.var_unit_oneway, ow["var_target"], rtol=1e-4)
    np.testing.assert_allclose(res.var_residual_oneway, ow["var_residual"], rtol=1e-4)
    # same REML criterion as lme4::REMLcrit, and our optimum is at least as good
    assert res.reml_deviance <= cr["reml_deviance"] + 1e-6
    assert res.reml_deviance_oneway <= ow["reml_deviance"] + 1e-6
    np.testing.assert_allclose(res.reml_deviance, cr["reml_deviance"], rtol=1e-8)
    np.testing.assert_allclose(res.k, entry["k"], rtol=1e-12)  # harmonic mean, closed form
    for typ in ICC_TYPES:
        np.testing.assert_allclose(res.icc[typ], entry["icc"][typ], rtol=1e-4)  # iterative


@pytest.mark.parametrize("dataset", ["sf", "sim20x3"])
def test_icc_mixed_equals_anova_icc_on_complete_balanced_data(dataset):
    """REML = ANOVA (Henderson method 1) on balanced data when no estimate is truncated at 0."""
    df = _long(REF["icc"][dataset]["data"])
    a = sa.icc(df, "target", "rater", "rating")
    b = sa.icc_mixed(df, "target", "rater", "rating")
    assert b.k == pytest.approx(a.n_raters, rel=1e-12)  # harmonic mean of a constant
    np.testing.assert_allclose(b.icc.to_numpy(), a.icc.to_numpy(), rtol=1e-5)  # iterative fit
    n, k = a.n_units, a.n_raters
    np.testing.assert_allclose(b.var_residual, a.ms_error, rtol=1e-5)
    np.testing.assert_allclose(b.var_unit, (a.ms_units - a.ms_error) / k, rtol=1e-5)
    np.testing.assert_allclose(b.var_rater, (a.ms_raters - a.ms_error) / n, rtol=1e-5)


def test_icc_mixed_recovers_simulated_truth():
    """120 targets x 4 raters, 20% missing: the ICC2 estimate lands near the true value."""
    rng = np.random.default_rng(11)
    n_t, n_r = 120, 4
    s2t, s2r, s2e = 2.0, 0.5, 1.0
    t = np.repeat(np.arange(n_t), n_r)
    r = np.tile(np.arange(n_r), n_t)
    y = rng.normal(0, np.sqrt(s2t), n_t)[t] + rng.normal(0, np.sqrt(s2r), n_r)[r] + rng.normal(0, 1, t.size)
    keep = rng.random(t.size) > 0.2
    df = pd.DataFrame({"t": t[keep], "r": r[keep], "y": y[keep]})
    res = sa.icc_mixed(df, "t", "r", "y")
    # truth ICC3 = 2/3; SE of the ICC at this size is about 0.04, so 0.12 is a 3-SE band
    assert abs(res.icc["ICC3"] - s2t / (s2t + s2e)) < 0.12
    assert abs(res.var_residual - s2e) < 0.25  # ~ 4 SE of a variance from ~380 df


# --------------------------------------------------------------------------------------------
# ICC input errors
# --------------------------------------------------------------------------------------------
def test_icc_incomplete_design_points_to_icc_mixed():
    df = _long(REF["icc_mixed"]["sf_missing"]["data"])
    with pytest.raises(ScaleupDataError, match="icc_mixed"):
        sa.icc(df, "target", "rater", "rating")


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d[d["rater"] == 1], "at least 2 raters"),
        (lambda d: d[d["target"] == 1], "at least 2 units"),
        (lambda d: d.assign(rating=5.0), "all 24 ratings are equal"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "duplicates"),
        (lambda d: d.assign(rating=d["rating"].where(d.index != 4)), "are missing"),
        (lambda d: d.rename(columns={"rating": "score"}), "column 'rating'"),
    ],
)
def test_icc_bad_input(mutate, pattern):
    df = _long(REF["icc"]["sf"]["data"])
    for func in (sa.icc, sa.icc_mixed):
        with pytest.raises(ScaleupDataError, match=pattern):
            func(mutate(df), "target", "rater", "rating")


def test_icc_perfect_agreement_is_one_without_warnings():
    df = pd.DataFrame({"t": np.repeat(np.arange(5), 3), "r": np.tile(np.arange(3), 5)})
    df["y"] = df["t"] * 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sa.icc(df, "t", "r", "y")
    np.testing.assert_array_equal(res.icc.to_numpy(), np.ones(6))  # exact: MSW = MSE = 0
    assert np.isinf(res.to_frame()["statistic"]).all()
    assert (res.to_frame()["interpretation"] == "excellent").all()


def test_icc_error_names_rows():
    df = _long(REF["icc"]["sf"]["data"])
    df.loc[[3, 7], "rating"] = np.nan
    with pytest.raises(ScaleupDataError, match=r"2 row\(s\) \(first: 3, 7\)"):
        sa.icc(df, "target", "rater", "rating")


# --------------------------------------------------------------------------------------------
# Cohen's kappa
# --------------------------------------------------------------------------------------------
def _contingency(d: pd.DataFrame, cats) -> np.ndarray:
    t = np.zeros((len(cats), len(cats)))
    for a, b in zip(d["r1"], d["r2"]):
        t[cats.index(a), cats.index(b)] += 1
    return t


@pytest.mark.parametrize("wkey", list(KAPPA_WEIGHTS))
@pytest.mark.parametrize("dataset", list(KAPPA_DATASETS))
def test_cohen_kappa_matches_psych_and_statsmodels(dataset, wkey):
    cats = KAPPA_DATASETS[dataset]
    entry = REF["cohen_kappa"][dataset][wkey]
    d = _long(REF["cohen_kappa"][dataset]["data"])
    res = sa.cohen_kappa(d, "r1", "r2", weights=KAPPA_WEIGHTS[wkey], categories=cats)
    psych_kappa = entry["kappa"] if wkey == "none" else entry["weighted_kappa"]
    np.testing.assert_allclose(res.kappa, psych_kappa, rtol=1e-6)  # closed form
    assert res.n == entry["n"]

    table = _contingency(d, cats)
    if wkey == "none":
        sm = sm_cohens_kappa(table)
        # unweighted: psych's var.kappa is the Fleiss-Cohen-Everitt (1969) variance
        np.testing.assert_allclose(res.se**2, entry["var_kappa"], rtol=1e-6)
    else:
        sm = sm_cohens_kappa(table, weights=np.arange(len(cats)), wt=KAPPA_WEIGHTS[wkey])
    # statsmodels implements FCE (1969) for weighted kappa too (psych 2.2.9 does not; see below)
    np.testing.assert_allclose(res.kappa, sm.kappa, rtol=1e-6)
    np.testing.assert_allclose(res.se, sm.std_kappa, rtol=1e-6)
    np.testing.assert_allclose(res.se0, sm.std_kappa0, rtol=1e-6)
    np.testing.assert_allclose(res.statistic, sm.z_value, rtol=1e-6)
    np.testing.assert_allclose(res.pvalue, sm.pvalue_two_sided, rtol=1e-6)
    np.testing.assert_allclose([res.ci_low, res.ci_high], [sm.kappa_low, sm.kappa_upp], rtol=1e-6)


def test_cohen_kappa_sas_printout():
    """SAS PROC FREQ printout for the 3 x 3 table [[0,4,1],[0,8,0],[0,1,5]] (reproduced in
    statsmodels' test suite): simple kappa 0.4842, ASE 0.1380, CI 0.2137-0.7547, ASE0 0.1484,
    Z 3.2626, p 0.0011; weighted (Cicchetti-Allison) 0.4701, ASE 0.1457, CI 0.1845-0.7558,
    ASE0 0.1426, Z 3.2971, p 0.0010."""
    d = _long(REF["cohen_kappa"]["table10"]["data"])
    un = sa.cohen_kappa(d, "r1", "r2")
    wl = sa.cohen_kappa(d, "r1", "r2", weights="linear")
    got_un = [un.kappa, un.se, un.ci_low, un.ci_high, un.se0, un.statistic, un.pvalue]
    got_wl = [wl.kappa, wl.se, wl.ci_low, wl.ci_high, wl.se0, wl.statistic, wl.pvalue]
    # printed to 4 decimals
    np.testing.assert_allclose(got_un, [0.4842, 0.1380, 0.2137, 0.7547, 0.1484, 3.2626, 0.0011], atol=5e-5)
    np.testing.assert_allclose(got_wl, [0.4701, 0.1457, 0.1845, 0.7558, 0.1426, 3.2971, 0.0010], atol=5e-5)


def test_cohen_kappa_weighted_variance_differs_from_psych_2_2_9():
    """Documented divergence: psych 2.2.9's var.weighted is not the FCE (1969) formula."""
    d = _long(REF["cohen_kappa"]["table10"]["data"])
    res = sa.cohen_kappa(d, "r1", "r2", weights="quadratic")
    psych_var = REF["cohen_kappa"]["table10"]["quadratic"]["var_weighted"]
    assert abs(res.se**2 / psych_var - 1) > 0.05


def test_cohen_kappa_po_pe_and_band():
    d = _long(REF["cohen_kappa"]["sim60x4"]["data"])
    res = sa.cohen_kappa(d, "r1", "r2")
    np.testing.assert_allclose(res.po, np.mean(d["r1"] == d["r2"]), rtol=1e-12)  # definition
    np.testing.assert_allclose(res.kappa, (res.po - res.pe) / (1 - res.pe), rtol=1e-12)
    assert res.interpretation == "moderate"  # Landis & Koch: 0.41-0.60 (kappa = 0.458)
    assert res.table.to_numpy().sum() == 60
    assert {"kappa", "se", "ci_low", "ci_high", "statistic", "pvalue", "interpretation"} <= set(res.to_frame())


def test_cohen_kappa_symmetric_in_raters():
    d = _long(REF["cohen_kappa"]["sim60x4"]["data"])
    for w in (None, "linear", "quadratic"):
        a = sa.cohen_kappa(d, "r1", "r2", weights=w)
        b = sa.cohen_kappa(d, "r2", "r1", weights=w)
        np.testing.assert_allclose([a.kappa, a.se, a.se0], [b.kappa, b.se, b.se0], rtol=1e-10)


def test_cohen_kappa_bad_input():
    d = pd.DataFrame({"a": [1, 2, np.nan, 1], "b": [1, 2, 2, 1]})
    with pytest.raises(ScaleupDataError, match=r"1 row\(s\) \(first: 2\)"):
        sa.cohen_kappa(d, "a", "b")
    with pytest.raises(ScaleupDataError, match="weights must be"):
        sa.cohen_kappa(d.dropna(), "a", "b", weights="cubic")
    with pytest.raises(ScaleupDataError, match="single category"):
        sa.cohen_kappa(pd.DataFrame({"a": [1, 1], "b": [1, 1]}), "a", "b")
    with pytest.raises(ScaleupDataError, match="not listed in categories"):
        sa.cohen_kappa(d.dropna(), "a", "b", categories=[1])
    with pytest.raises(ScaleupDataError, match="column 'c'"):
        sa.cohen_kappa(d, "a", "c")


_KAPPA_D = pd.DataFrame({"a": [1, 2, 3, 1, 2, 3, 1, 2, 3, 1], "b": [1, 2, 3, 1, 3, 3, 2, 2, 3, 2]})


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_constant_rater_is_zero_with_a_warning(weights):
    """A rater who never varies: po = pe whatever the other rater did, so kappa = 0 and both FCE
    variances are 0 in exact arithmetic (z = 0/0, NaN as in irr::kappa2); the result is exact, not
    rounding noise (kappa ~ 1e-17, se0 ~ 1e-9 and an arbitrary z)."""
    d = _KAPPA_D.assign(a=2, b=[1, 3, 3, 2, 1, 3, 2, 2, 3, 1])
    with pytest.warns(sa.ScaleupWarning) as rec:
        res = sa.cohen_kappa(d, "a", "b", weights=weights)
    (msg,) = [str(w.message) for w in rec]
    assert "rater 'a' gave the same category (2) to all 10 subjects" in msg
    assert "kappa is 0" in msg and "z statistic and p-value are undefined (NaN" in msg
    assert (res.kappa, res.se, res.se0, res.ci_low, res.ci_high) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)
    assert res.po == pytest.approx(res.pe, abs=1e-15)
    if weights is None:
        assert res.po == pytest.approx(0.3, rel=1e-12)  # 3 of 10 subjects rated 2 by 'b'


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_cohen_kappa_raters_sharing_no_category_warn(scale):
    with pytest.warns(sa.ScaleupWarning, match=r"the two raters never gave the same category \(rater 'a' used "):
        res = sa.cohen_kappa(_KAPPA_D.assign(a=_KAPPA_D["a"] * scale), "a", "b")
    assert (res.kappa, res.po, res.pe, res.se, res.se0) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)


def test_cohen_kappa_valid_input_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sa.cohen_kappa(_KAPPA_D, "a", "b")
    assert np.isfinite(res.to_frame().select_dtypes("number").to_numpy(float)).all()


# --------------------------------------------------------------------------------------------
# Fleiss' kappa
# --------------------------------------------------------------------------------------------
def test_fleiss_kappa_published_example():
    """Fleiss (1971): kappa = 0.430; category kappas 0.245, 0.245, 0.520, 0.471, 0.566.
    irr::kappam.fleiss(diagnoses, detail = TRUE) prints z = 17.7 (overall) and 5.192, 5.192,
    11.031, 9.994, 12.009 for the categories (Fleiss, Nee & Landis 1979 null SEs)."""
    res = sa.fleiss_kappa(_diagnoses_df(), unit="patient", rater="rater", score="diagnosis")
    assert res.kappa == pytest.approx(0.430, abs=5e-4)  # published to 3 decimals
    np.testing.assert_allclose(
        res.per_category["kappa"].to_numpy(), [0.245, 0.245, 0.520, 0.471, 0.566], atol=5e-4
    )
    assert res.statistic == pytest.approx(17.7, abs=0.05)  # printed to 3 significant digits
    np.testing.assert_allclose(
        res.per_category["statistic"].to_numpy(), [5.192, 5.192, 11.031, 9.994, 12.009], atol=5e-4
    )
    assert (res.n_units, res.n_raters) == (30, 6)
    assert res.interpretation == "moderate"


def test_fleiss_kappa_matches_statsmodels():
    res = sa.fleiss_kappa(_diagnoses_df(), "patient", "rater", "diagnosis")
    sm = sm_fleiss_kappa(aggregate_raters(DIAGNOSES)[0], method="fleiss")
    np.testing.assert_allclose(res.kappa, sm, rtol=1e-10)  # closed form


@settings(max_examples=25, deadline=None)
@given(
    n_sub=st.integers(3, 15),
    m=st.integers(2, 6),
    n_cat=st.integers(2, 4),
    seed=st.integers(0, 10_000),
)
def test_fleiss_kappa_matches_statsmodels_random_tables(n_sub, m, n_cat, seed):
    rng = np.random.default_rng(seed)
    ratings = rng.integers(0, n_cat, size=(n_sub, m))
    if np.unique(ratings).size < 2:
        ratings[0, 0] = (ratings[0, 0] + 1) % n_cat
    df = pd.DataFrame(
        [(s, r, v) for s, row in enumerate(ratings) for r, v in enumerate(row)], columns=["s", "r", "v"]
    )
    res = sa.fleiss_kappa(df.sample(frac=1.0, random_state=seed), "s", "r", "v")
    expected = sm_fleiss_kappa(aggregate_raters(ratings)[0])
    np.testing.assert_allclose(res.kappa, expected, rtol=1e-9, atol=1e-12)  # closed form


def test_fleiss_kappa_unequal_ratings_error():
    df = _diagnoses_df().drop(index=[0, 7])
    with pytest.raises(ScaleupDataError, match="krippendorff_alpha"):
        sa.fleiss_kappa(df, "patient", "rater", "diagnosis")


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", list(KRIPP_2011_PUBLISHED))
def test_krippendorff_published_example(metric):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sa.krippendorff_alpha(_kripp_df(), "unit", "coder", "value", metric=metric, n_boot=200, seed=1)
    assert res.estimate == pytest.approx(KRIPP_2011_PUBLISHED[metric], abs=5e-4)  # published to 3 dp
    assert (res.n_units, res.n_pairable, res.n_units_dropped) == (11, 40, 1)
    msgs = [str(w.message) for w in caught if issubclass(w.category, RowsOmittedWarning)]
    assert any("1 unit(s)" in m and "[12]" in m for m in msgs)
    assert res.ci_low <= res.estimate <= res.ci_high


def test_krippendorff_nominal_coincidences_and_exact_value():
    """The coincidence matrix and nominal alpha checked exactly against a brute-force pairwise
    computation of Krippendorff's (2011) definitions."""
    res = sa.krippendorff_alpha(_kripp_df(), "unit", "coder", "value", n_boot=0)
    # brute force: every ordered pair of values within a unit weighted 1/(m_u - 1)
    df = _kripp_df()
    o = {}
    for _, g in df.groupby("unit"):
        v = g["value"].to_numpy()
        if v.size < 2:
            continue
        for i in range(v.size):
            for j in range(v.size):
                if i != j:
                    o[(v[i], v[j])] = o.get((v[i], v[j]), 0.0) + 1.0 / (v.size - 1)
    cats = sorted({c for c, _ in o})
    mat = np.array([[o.get((c, k), 0.0) for k in cats] for c in cats])
    np.testing.assert_allclose(res.coincidence.to_numpy(), mat, rtol=1e-12)
    n_c = mat.sum(1)
    n = n_c.sum()
    alpha = 1 - (n - 1) * (n - np.trace(mat)) / (n**2 - np.sum(n_c**2))
    np.testing.assert_allclose(res.estimate, alpha, rtol=1e-12)


def test_krippendorff_missing_values_rows_equivalent_to_absent_rows():
    with pytest.warns(RowsOmittedWarning, match="7 row"):
        a = sa.krippendorff_alpha(
            _kripp_df(drop_missing=False), "unit", "coder", "value", metric="interval", n_boot=0
        )
    b = sa.krippendorff_alpha(_kripp_df(), "unit", "coder", "value", metric="interval", n_boot=0)
    assert a.estimate == b.estimate


def test_krippendorff_bootstrap_deterministic_and_sane():
    df = _kripp_df()
    kw = dict(metric="ordinal", n_boot=500)
    a = sa.krippendorff_alpha(df, "unit", "coder", "value", seed=123, **kw)
    b = sa.krippendorff_alpha(df, "unit", "coder", "value", seed=123, **kw)
    c = sa.krippendorff_alpha(df, "unit", "coder", "value", seed=124, **kw)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    np.testing.assert_array_equal(a.boot, b.boot)
    assert not np.array_equal(a.boot, c.boot)
    assert a.ci_low < a.estimate < a.ci_high
    assert -1 <= a.boot.min() and a.boot.max() <= 1
    # the bootstrap is centred on alpha: its mean is within 3 Monte Carlo SEs of the estimate
    assert abs(a.boot.mean() - a.estimate) < 3 * a.boot.std() / np.sqrt(a.boot.size) + 0.01
    assert a.boot.size == 500 and np.all(np.diff(a.boot) >= 0)


def test_krippendorff_bootstrap_spread_matches_draw_count():
    """KALPHA draws M = min(25 Q, (m - 1) n.. / 2) pairs per replicate, so the replicates have
    SD = sd(delta2 over o_ck / n..) / (sqrt(M) De). For the 2011 data (nominal): n.. = 40,
    m = 4 coders -> (m - 1) n.. / 2 = 60 < 25 Q, so M = 60."""
    res = sa.krippendorff_alpha(_kripp_df(), "unit", "coder", "value", n_boot=4000, seed=2)
    o = res.coincidence.to_numpy()
    assert 25 * np.count_nonzero(o) > 60
    p = o / o.sum()
    d2 = 1.0 - np.eye(o.shape[0])
    sd_delta = np.sqrt(np.sum(p * d2**2) - np.sum(p * d2) ** 2)
    expected_sd = sd_delta / (np.sqrt(60) * res.expected_disagreement)
    # Monte Carlo SE of an SD from 4000 draws is ~1.1%; truncation at -1 never binds here
    assert res.boot.std() == pytest.approx(expected_sd, rel=0.05)
    assert res.boot.mean() == pytest.approx(res.estimate, abs=3 * expected_sd / np.sqrt(4000))


def test_krippendorff_bootstrap_narrows_with_more_data():
    """Replicating the 2011 data 10x (with fresh unit ids) keeps alpha and narrows the interval."""
    df = _kripp_df()
    big = pd.concat([df.assign(unit=df["unit"] + 100 * i) for i in range(10)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        small = sa.krippendorff_alpha(df, "unit", "coder", "value", n_boot=1000, seed=5)
        large = sa.krippendorff_alpha(big, "unit", "coder", "value", n_boot=1000, seed=5)
    np.testing.assert_allclose(large.estimate, small.estimate, atol=0.02)  # n.. - 1 factor changes slightly
    assert large.ci_high - large.ci_low < small.ci_high - small.ci_low


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), metric=st.sampled_from(list(KRIPP_2011_PUBLISHED)))
def test_krippendorff_invariant_to_row_order_and_labels(seed, metric):
    df = _kripp_df().sample(frac=1.0, random_state=seed % (2**31))
    df = df.assign(unit="u" + df["unit"].astype(str), coder=df["coder"].str.lower())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        res = sa.krippendorff_alpha(df, "unit", "coder", "value", metric=metric, n_boot=0)
    assert res.estimate == pytest.approx(KRIPP_2011_PUBLISHED[metric], abs=5e-4)


def test_krippendorff_ordinal_labels_follow_categorical_order():
    df = _kripp_df()
    labels = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}  # alphabetical != rank
    cat = pd.Categorical(df["value"].map(labels), categories=list(labels.values()), ordered=True)
    res = sa.krippendorff_alpha(df.assign(value=cat), "unit", "coder", "value", metric="ordinal", n_boot=0)
    assert res.estimate == pytest.approx(KRIPP_2011_PUBLISHED["ordinal"], abs=5e-4)  # published, 3 dp


def test_krippendorff_interval_scale_invariance():
    df = _kripp_df()
    a = sa.krippendorff_alpha(df, "unit", "coder", "value", metric="interval", n_boot=0)
    flipped = df.assign(value=7 - 2 * df["value"])
    b = sa.krippendorff_alpha(flipped, "unit", "coder", "value", metric="interval", n_boot=0)
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-12)


def test_krippendorff_bad_input():
    df = _kripp_df()
    with pytest.raises(ScaleupDataError, match="metric must be"):
        sa.krippendorff_alpha(df, "unit", "coder", "value", metric="circular")
    with pytest.raises(ScaleupDataError, match="no unit"):
        sa.krippendorff_alpha(df[df["coder"] == "A"], "unit", "coder", "value")
    with pytest.raises(ScaleupDataError, match="without variation"):
        sa.krippendorff_alpha(df.assign(value=1.0), "unit", "coder", "value", n_boot=0)
    with pytest.raises(ScaleupDataError, match="duplicates"):
        sa.krippendorff_alpha(pd.concat([df, df.iloc[[0]]]), "unit", "coder", "value")
    with pytest.raises(ScaleupDataError, match="non-negative"):
        sa.krippendorff_alpha(df.assign(value=df["value"] - 3), "unit", "coder", "value", metric="ratio")


# --------------------------------------------------------------------------------------------
# results objects: to_frame, summary, plots
# --------------------------------------------------------------------------------------------
def test_results_render_and_plot():
    sf = _long(REF["icc"]["sf"]["data"])
    mixed = _long(REF["icc_mixed"]["sf_missing"]["data"])
    kd = _long(REF["cohen_kappa"]["sim60x4"]["data"])
    results_and_plots = [
        (sa.icc(sf, "target", "rater", "rating"), "plot_icc"),
        (sa.icc_mixed(mixed, "target", "rater", "rating"), "plot_icc"),
        (sa.cohen_kappa(kd, "r1", "r2", weights="quadratic"), "plot_table"),
        (sa.fleiss_kappa(_diagnoses_df(), "patient", "rater", "diagnosis"), "plot_categories"),
        (sa.krippendorff_alpha(_kripp_df(), "unit", "coder", "value", n_boot=100, seed=0), "plot_bootstrap"),
    ]
    for res, plot in results_and_plots:
        assert isinstance(res.to_frame(), pd.DataFrame)
        assert isinstance(res.summary(), str) and res.summary()
        ax = getattr(res, plot)()
        assert isinstance(ax, matplotlib.axes.Axes)
        assert ax.get_title()
        assert "\n" not in repr(res) and "np.float64" not in repr(res)
        assert res.summary(language="fr") != res.summary(language="en")
        with pytest.raises(AttributeError):  # frozen
            res.level = 0.5  # type: ignore[misc]
    kappa = results_and_plots[2][0]
    fr = kappa.summary(language="fr")
    assert "Kappa de Cohen (pondération quadratique)" in fr and f"{kappa.kappa:.4f}".replace(".", ",") in fr
    assert repr(kappa).startswith("KappaResult(kappa=") and "weights='quadratic'" in repr(kappa)


# ------------------------------------------------------------------------------------------------
# internal code paths of krippendorff_alpha (dense vs sparse coincidence counts; hashed duplicates)
# ------------------------------------------------------------------------------------------------
def _random_long(n_units=400, n_raters=6, n_values=5, missing=0.3, seed=7):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, n_values + 1, n_units)
    rows = [
        (u, r, int(np.clip(truth[u] + rng.integers(-1, 2), 1, n_values)))
        for u in range(n_units) for r in range(n_raters) if rng.random() > missing
    ]
    return pd.DataFrame(rows, columns=["unit", "rater", "value"])


@pytest.mark.parametrize("metric", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_sparse_path_equals_dense_path(monkeypatch, metric):
    import scaleup_analysis.agreement as ag

    df = _random_long()
    dense = sa.krippendorff_alpha(df, "unit", "rater", "value", metric=metric, n_boot=200, seed=3)
    monkeypatch.setattr(ag, "_DENSE_CELLS", 0)  # force the sparse coincidence counts
    sparse = sa.krippendorff_alpha(df, "unit", "rater", "value", metric=metric, n_boot=200, seed=3)
    # same arithmetic in another order: 1e-12 relative
    assert sparse.estimate == pytest.approx(dense.estimate, rel=1e-12)
    assert sparse.ci_low == pytest.approx(dense.ci_low, rel=1e-12)
    assert sparse.ci_high == pytest.approx(dense.ci_high, rel=1e-12)


def test_krippendorff_duplicate_pairs_found_among_many_rater_ids():
    # 3,000 units x raters drawn from 5,000 ids: too many (unit, rater) pairs for the dense
    # duplicate count, so the hashed path runs; it must flag exactly the duplicated rows.
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"unit": rng.integers(0, 3000, 9000), "rater": rng.integers(0, 5000, 9000),
                       "value": rng.integers(1, 5, 9000)})
    dup = df.duplicated(["unit", "rater"], keep=False)
    assert dup.any()
    with pytest.raises(sa.ScaleupDataError) as err:
        sa.krippendorff_alpha(df, "unit", "rater", "value")
    assert f"{int(dup.sum())} row" in str(err.value)
