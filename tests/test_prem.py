"""score_scale and prem_by_site (PREM / PROM scores by site, case-mix adjusted) against R.

* tests/reference/prem.json, written by tests/reference/ref_prem.R (R 4, psych 2.2.9): the scale scores
  of a hand-built 3 sites x 12 respondents set with missing items, computed by hand in base R (rowMeans
  of the answered items with the rule) and by ``psych::scoreItems(..., totals = FALSE, impute = "none")``
  (equal to the rule with one answer required); per cell n, mean, sd, ``t.test`` interval; the case-mix
  model ``lm(score ~ covariates)`` (``summary(lm)`` coefficients, sigma, R2) and the adjusted means with
  their standard errors from ``predict(..., se.fit = TRUE)`` / ``vcov`` (checked in R against the hat
  matrix); on a simulated 10-site set (set.seed in R, the data stored in the JSON) by site, site x
  deprivation quintile and quintile.
* closed forms agree to 1e-10 relative (the JSON keeps 15 significant digits);
* invariances: row order, relabelling of units, a constant added to the score;
* simulation with known truth (seeded, numpy): two sites with a planted +1 point effect but an older
  case mix are found by the adjusted mean and not by the raw mean;
* small-cell suppression and bad inputs naming table 'data' and the column.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("prem")
RTOL = 1e-10
RAW = ["n", "mean", "sd", "mean_ci_low", "mean_ci_high"]
ADJ = ["expected_mean", "adjusted_mean", "adjusted_mean_se", "adjusted_mean_ci_low", "adjusted_mean_ci_high"]


def _frame(records):
    return pd.DataFrame(records).fillna(np.nan)


def _hand():
    ref = REF["hand"]
    d = _frame(ref["data"])
    d["score"] = sa.score_scale(d, items=ref["items"], reverse=[ref["reverse"]], scale_min=1, scale_max=5)
    return d


def _sim():
    return _frame(REF["sim"]["data"])


def _check_cells(table, ref_rows, keys, columns):
    assert len(table) == len(ref_rows)
    for row, ref in zip(table.to_dict("records"), ref_rows):
        for mine, theirs in keys.items():
            assert str(row[mine]) == ref[theirs]
        if row["suppressed"]:
            assert all(pd.isna(row[c]) for c in columns)
            continue
        for c in columns:
            if ref[c] is None:
                assert np.isnan(row[c]), c
            else:
                np.testing.assert_allclose(float(row[c]), ref[c], rtol=RTOL, err_msg=c)


# ----------------------------------------------------------------------------------------------
# score_scale
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, min_answered", [("m2", 0.5), ("m2", 2), ("m3", 3), ("m3", 0.75), ("m1", 1),
                                              ("psych", 1)])
def test_score_matches_rule_and_psych(key, min_answered):
    ref = REF["hand"]
    d = _frame(ref["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sa.score_scale(d, items=ref["items"], reverse=["q3"], scale_min=1, scale_max=5,
                           min_answered=min_answered)
    expected = np.array([np.nan if v is None else v for v in ref["scores"][key]])
    np.testing.assert_array_equal(np.isnan(s.to_numpy()), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(s.to_numpy()[ok], expected[ok], rtol=RTOL)
    assert s.name == "scale_score" and s.index.equals(d.index)


def test_score_share_one_needs_every_item_and_keeps_index():
    d = pd.DataFrame({"a": [1, 2, np.nan], "b": [3, np.nan, 2]}, index=[10, 20, 30])
    s = sa.score_scale(d, items=["a", "b"], min_answered=1.0)
    assert s.index.tolist() == [10, 20, 30]
    assert s.iloc[0] == 2.0 and np.isnan(s.iloc[1]) and np.isnan(s.iloc[2])


@pytest.mark.parametrize("kw, words", [
    ({"min_answered": 0}, "min_answered"), ({"min_answered": 5}, "min_answered"),
    ({"min_answered": 1.5}, "min_answered"), ({"min_answered": True}, "min_answered"),
    ({"items": "q1"}, "items"), ({"items": ["q1", "zz"]}, "zz"),
    ({"reverse": ["q3"]}, "scale_min"), ({"reverse": ["q3"], "scale_min": 1, "scale_max": 3}, "'q1'"),
])
def test_score_bad_inputs(kw, words):
    d = _frame(REF["hand"]["data"])
    args = {"items": ["q1", "q2", "q3", "q4"], **kw}
    with pytest.raises(ScaleupDataError, match=words):
        sa.score_scale(d, **args)


# ----------------------------------------------------------------------------------------------
# prem_by_site against R
# ----------------------------------------------------------------------------------------------
def _check_model(res, ref):
    m = ref["model"]
    names = {"(Intercept)": "Intercept"}
    assert res.coef["term"].tolist() == [names.get(t, t.replace("dep", "dep[T.") + "]" if t.startswith("dep") else t)
                                         for t in m["term"]]
    for c in ("estimate", "se", "statistic", "pvalue"):
        np.testing.assert_allclose(res.coef[c].to_numpy(), m[c], rtol=1e-9, err_msg=c)  # p-values: 1e-9
    np.testing.assert_allclose([res.sigma, res.r_squared, res.overall_mean], [m["sigma"], m["r_squared"],
                                                                              m["overall_mean"]], rtol=RTOL)
    assert (res.df_resid, res.n_obs) == (m["df_resid"], m["n_obs"])


def test_hand_raw_and_adjusted_match_lm():
    d = _hand()
    with pytest.warns(RowsOmittedWarning):
        raw = sa.prem_by_site(d, score="score")
    _check_cells(raw.to_frame(), REF["hand"]["raw_cells"], {"unit": "site_id"}, RAW)
    assert "adjusted_mean" not in raw.to_frame()
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(d, score="score", covariates=["age", "female"])
    _check_model(res, REF["hand"])
    _check_cells(res.to_frame(), REF["hand"]["cells"], {"unit": "site_id"}, RAW + ADJ)
    assert res.n_omitted == 2 and res.n_suppressed == 0


@pytest.mark.parametrize("covariates", [["age", "female", "dep"], "age + female + C(dep)"])
def test_sim_by_site_matches_lm(covariates):
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", covariates=covariates)
    if isinstance(covariates, list):
        _check_model(res, REF["sim"])
    t = res.to_frame()
    _check_cells(t, REF["sim"]["cells_site"], {"unit": "site_id"}, RAW + ADJ)
    # the sites of 4 and 3 respondents are suppressed (two cells: no complement needed), nothing of them shown
    small = t["unit"].isin(["S01", "S09"])
    assert t.loc[small, "suppressed"].all() and t.loc[small, "n"].isna().all()
    assert res.n_suppressed == int(t["suppressed"].sum()) == 2


def test_sim_by_stratum_and_site_by_stratum_match_lm():
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", unit=None, by="dep", covariates=["age", "female", "dep"])
    _check_cells(res.to_frame(), REF["sim"]["cells_dep"], {"stratum": "dep"}, RAW + ADJ)
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", by="dep", covariates=["age", "female", "dep"])
    t = res.to_frame()
    _check_cells(t, REF["sim"]["cells_site_dep"], {"unit": "site_id", "stratum": "dep"}, RAW + ADJ)
    # no published cell is small, and no unit or stratum has exactly one suppressed cell
    assert (t.loc[~t["suppressed"], "n"] >= 5).all()
    for k in ("unit", "stratum"):
        assert (t.groupby(k)["suppressed"].sum() != 1).all()


# ----------------------------------------------------------------------------------------------
# invariances and a simulation with known truth
# ----------------------------------------------------------------------------------------------
def _fit(d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        return sa.prem_by_site(d, score="score", covariates=["age", "female", "dep"], **kw).to_frame()


def test_row_order_relabelling_and_shift():
    d = _sim()
    base = _fit(d).set_index("unit")
    shuffled = _fit(d.sample(frac=1, random_state=3)).set_index("unit")
    pd.testing.assert_frame_equal(base, shuffled, rtol=1e-12)
    relabel = {s: f"site {i}" for i, s in enumerate(sorted(d["site_id"].unique())[::-1])}
    renamed = _fit(d.assign(site_id=d["site_id"].map(relabel))).set_index("unit")
    pd.testing.assert_frame_equal(base.rename(index=relabel).sort_index(), renamed.sort_index(), rtol=1e-12)
    shifted = _fit(d.assign(score=d["score"] + 10.0)).set_index("unit")
    for c in ("mean", "mean_ci_low", "mean_ci_high", "expected_mean", "adjusted_mean", "adjusted_mean_ci_low",
              "adjusted_mean_ci_high"):
        np.testing.assert_allclose(shifted[c].astype(float), base[c].astype(float) + 10.0, rtol=1e-12)
    for c in ("sd", "mean_se", "adjusted_mean_se"):
        np.testing.assert_allclose(shifted[c].astype(float), base[c].astype(float), rtol=1e-9)


def test_planted_effect_found_by_adjusted_not_raw_mean():
    """Known truth: score = 5 - 0.1 (age - 50) + 1 at sites P1, P2 + N(0, 0.5), age N(60, 15) at P1, P2 and
    N(50, 15) elsewhere (150 respondents a site): the older case mix of P1, P2 cancels their +1 in the raw
    means, and the adjusted means recover it. The model without the unit takes a little of the planted
    effect for case mix (age is correlated with the unit): the expected bias of the gap is about
    -0.07 here (between-site share of the age variance 16 / 241), so the gap must be within 0.15 of 1."""
    rng = np.random.default_rng(20261204)
    rows = []
    for s in ["P1", "P2"] + [f"O{i}" for i in range(8)]:
        planted = s.startswith("P")
        age = rng.normal(60 if planted else 50, 15, 150)
        y = 5 - 0.1 * (age - 50) + (1.0 if planted else 0.0) + rng.normal(0, 0.5, 150)
        rows.append(pd.DataFrame({"site_id": s, "age": age, "score": y}))
    d = pd.concat(rows, ignore_index=True)
    t = sa.prem_by_site(d, score="score", covariates=["age"]).to_frame().set_index("unit")
    planted, others = t.loc[["P1", "P2"]], t.drop(["P1", "P2"])
    raw_gap = planted["mean"].mean() - others["mean"].mean()
    adj_gap = planted["adjusted_mean"].mean() - others["adjusted_mean"].mean()
    assert abs(raw_gap) < 0.3  # the older case mix hides the effect in the raw means
    assert abs(adj_gap - 1.0) < 0.15
    assert (planted["adjusted_mean_ci_low"] > others["adjusted_mean_ci_high"].max()).all()


def test_funnel_of_adjusted_means_uses_sigma():
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", covariates=["age", "female", "dep"])
    f = res.funnel(overdispersion="none")
    shown = res.to_frame().loc[lambda t: ~t["suppressed"]]
    assert f.n_units == len(shown)
    np.testing.assert_allclose(f.sd, res.sigma, rtol=1e-12)
    np.testing.assert_allclose(f.to_frame()["value"].to_numpy(), shown["adjusted_mean"].to_numpy(float), rtol=1e-12)
    with pytest.raises(ScaleupDataError, match="by="):
        sa.prem_by_site(_sim().dropna(), score="score", by="dep").funnel()


@pytest.mark.parametrize("kw, words", [
    ({"score": "nope"}, "nope"), ({"unit": None}, "unit="), ({"threshold": 0}, "threshold"),
    ({"covariates": ["age", "age2"]}, "collinear"), ({"unit": "dep", "by": "dep"}, "same column"),
    ({"level": 2}, "level"),
])
def test_prem_bad_inputs(kw, words):
    d = _sim().dropna().assign(age2=lambda x: 2 * x["age"])
    args = {"score": "score", **kw}
    with pytest.raises(ScaleupDataError, match=words):
        sa.prem_by_site(d, **args)


def test_missing_unit_and_text_score_named():
    d = _sim().dropna().reset_index(drop=True)
    d.loc[3, "site_id"] = None
    with pytest.raises(ScaleupDataError, match="'site_id'.*missing unit"):
        sa.prem_by_site(d, score="score")
    d = _sim().dropna().reset_index(drop=True).astype({"score": object})
    d.loc[2, "score"] = "n/a"
    with pytest.raises(ScaleupDataError, match="table 'data', column 'score'"):
        sa.prem_by_site(d, score="score")


# ----------------------------------------------------------------------------------------------
# casemix="within": case-mix coefficients from within-site differences (lm with factor(site_id))
# ----------------------------------------------------------------------------------------------
def _check_within_model(res, m):
    assert res.coef["term"].tolist() == [t.replace("dep", "dep[T.") + "]" if t.startswith("dep") else t
                                         for t in m["term"]]
    for c in ("estimate", "se", "statistic", "pvalue"):
        np.testing.assert_allclose(res.coef[c].to_numpy(), m[c], rtol=1e-9, err_msg=c)  # p-values: 1e-9
    np.testing.assert_allclose([res.sigma, res.r_squared], [m["sigma"], m["r_squared"]], rtol=RTOL)
    assert res.df_resid == m["df_resid"] and res.casemix == "within"


def test_within_matches_lm_with_a_fixed_effect_per_site():
    # R: lm(score ~ covariates + factor(site_id)); per site the SE is also sigma^2/n + d' vcov d (checked in R)
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", covariates=["age", "female", "dep"], casemix="within")
    ref = REF["sim_within"]["site"]
    _check_within_model(res, ref["model"])
    cols = ["expected_mean", "adjusted_mean", "adjusted_mean_se", "adjusted_mean_ci_low", "adjusted_mean_ci_high"]
    _check_cells(res.to_frame(), ref["cells"], {"unit": "site_id"}, cols)
    with pytest.warns(RowsOmittedWarning):
        res = sa.prem_by_site(_sim(), score="score", by="dep", covariates=["age", "female", "dep"], casemix="within")
    _check_cells(res.to_frame(), REF["sim_within"]["site_dep"]["cells"], {"unit": "site_id", "stratum": "dep"}, cols)
    res = sa.prem_by_site(_hand().dropna(subset=["score"]), score="score", covariates=["age", "female"],
                          casemix="within")
    _check_within_model(res, REF["hand_within"]["model"])
    _check_cells(res.to_frame(), REF["hand_within"]["cells"], {"unit": "site_id"}, cols)


def test_within_recovers_a_planted_effect_that_the_pooled_model_shrinks():
    """Known truth: score = 5 - 0.1 (age - 50) + 1 at sites P1, P2 + N(0, 0.5); age N(70, 8) at P1, P2 and
    N(50, 8) elsewhere (150 respondents a site). Age differs mostly between sites (between-site share of its
    variance about 0.6), so the pooled model takes much of the +1 for age (measured: gap 0.53); the
    within-site coefficients recover it (measured 1.07; SE of the gap about 0.035)."""
    rng = np.random.default_rng(20261204)
    rows = []
    for s in ["P1", "P2"] + [f"O{i}" for i in range(8)]:
        planted = s.startswith("P")
        age = rng.normal(70 if planted else 50, 8, 150)
        y = 5 - 0.1 * (age - 50) + (1.0 if planted else 0.0) + rng.normal(0, 0.5, 150)
        rows.append(pd.DataFrame({"site_id": s, "age": age, "score": y}))
    d = pd.concat(rows, ignore_index=True)

    def gap(casemix):
        t = sa.prem_by_site(d, score="score", covariates=["age"], casemix=casemix).to_frame().set_index("unit")
        return t.loc[["P1", "P2"], "adjusted_mean"].mean() - t.drop(["P1", "P2"])["adjusted_mean"].mean()

    assert abs(gap("within") - 1.0) < 0.12
    assert gap("pooled") < 0.7


def test_within_needs_units_and_covariates_that_vary_within_them():
    d = _sim().dropna(subset=["score"])
    with pytest.raises(ScaleupDataError, match="needs unit= and covariates="):
        sa.prem_by_site(d, score="score", unit=None, by="dep", covariates=["age"], casemix="within")
    with pytest.raises(ScaleupDataError, match="casemix must be"):
        sa.prem_by_site(d, score="score", covariates=["age"], casemix="fixed")
    d = d.assign(region=d["site_id"].map(lambda s: int(s[1:]) % 2))
    with pytest.raises(ScaleupDataError, match="constant within every unit"):
        sa.prem_by_site(d, score="score", covariates=["age", "region"], casemix="within")
