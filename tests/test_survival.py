"""Tests for scaleup_analysis.sustainment.survival (time to de-adoption).

Reference values: ``tests/reference/ref_survival.R`` -> ``survival.json``, computed with R's survival
package (the version is stored in the fixture): ``survfit`` (Kaplan-Meier curves with log, log-log
and plain intervals at 95% and 90%), ``summary(fit)$table`` (medians), ``quantile(fit)``,
``summary(fit, times =)`` (risk tables), ``survdiff`` (log-rank), multi-state ``survfit``
(Aalen-Johansen cumulative incidence with its infinitesimal-jackknife SE) and ``concordance``
(Harrell's C with its IJ SE, ``reverse`` FALSE/TRUE). Datasets: survival's ``lung`` (status recoded
0/1, the row with a missing ph.ecog dropped), ``aml``, ``veteran``, ``mgus2`` (progression vs death)
and small hand-built data with tied times, censoring at event times, an event at time 0, an
all-censored stratum, a single-row stratum, curves flat at exactly 0.5 and near-tied times (R's
``aeqSurv``). Every dataset is stored in the fixture, so R is not needed to run these tests.

Tolerance: 1e-10 relative, absolute 0 (every quantity is a closed form or a finite recursion; the
fixture holds 15 significant digits, jsonlite's maximum). Counts are compared exactly.
"""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleup_analysis.errors import ScaleupDataError, ScaleupWarning
from scaleup_analysis.sustainment.survival import (
    ConcordanceResult,
    CumulativeIncidenceResult,
    KaplanMeierResult,
    _logrank,
    _timefix,
    concordance,
    cumulative_incidence,
    kaplan_meier,
)
from tests.conftest import load_reference

REF = load_reference("survival")
RTOL = 1e-10  # closed forms / finite recursions: only rounding error (and 15-digit storage) separates us

# the grid written by ref_survival.R (kept here in full so that a shrinking fixture fails)
KM_BY = {"lung": [(), ("sex",), ("sex", "ph.ecog")], "aml": [(), ("x",)], "veteran": [("trt",), ("celltype",)],
         "hand": [(), ("g",)], "near": [("g",)]}
KM_OPTIONS = [("log", 0.95), ("log-log", 0.95), ("plain", 0.95), ("log", 0.9)]
KM_GRID = {(d, by, ct, lv) for d, bys in KM_BY.items() for by in bys for ct, lv in KM_OPTIONS}
LOGRANK_GRID = {(d, by) for d, bys in KM_BY.items() for by in bys if by}
CIF_GRID = {(d, by, lv) for lv in (0.95, 0.9) for d, by in
            (("mgus", ()), ("mgus", ("sex",)), ("hand_cr", ()), ("hand_cr", ("g",)))}
CONC_GRID = {(d, p, rv) for d, ps in {"lung": ["age", "ph.ecog"], "aml": ["maintained"], "veteran": ["karno"],
                                      "hand": ["x"], "near": ["x"]}.items() for p in ps for rv in (False, True)}


# ---------------------------------------------------------------------------------------------
# reading the fixture
# ---------------------------------------------------------------------------------------------
_SPECIAL = {"NA": np.nan, "NaN": np.nan, "Inf": np.inf, "-Inf": -np.inf, None: np.nan}


def _num(values) -> np.ndarray:
    """A numeric vector of the fixture (R's NA / NaN / Inf are written as text) as floats."""
    values = values if isinstance(values, list) else [values]
    return np.array([_SPECIAL[v] if v is None or isinstance(v, str) else v for v in values], dtype=float)


def _by(cell) -> tuple:
    by = cell["by"]
    return (by,) if isinstance(by, str) else tuple(by)


def _facets(cell) -> list:
    """The facet of each R stratum, as the Python functions name it."""
    by = _by(cell)
    if not by:
        return ["all"]
    vals = [[sv[b] for b in by] for sv in cell["strata_values"]]
    return [v[0] if len(by) == 1 else tuple(v) for v in vals]


def _dataset(name) -> pd.DataFrame:
    return pd.DataFrame(REF["datasets"][name])


def _rows(table, facet, cause=None):
    keep = np.array([f == facet for f in table["facet"]], dtype=bool)
    if cause is not None:
        keep &= np.array([c == cause for c in table["cause"]], dtype=bool)
    return table[keep]


def _close(actual, expected, what, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), _num(expected) if isinstance(expected, list)
                               else np.asarray(expected, dtype=float), rtol=rtol, atol=0, equal_nan=True,
                               err_msg=what)


def _km(cell) -> KaplanMeierResult:
    by = _by(cell)
    return kaplan_meier(_dataset(cell["dataset"]), time="time", event="event", by=list(by) or None,
                        level=cell["level"], conf_type=cell["conf_type"])


# ---------------------------------------------------------------------------------------------
# the grid cannot shrink
# ---------------------------------------------------------------------------------------------
def test_grid_covers_every_cell():
    km = {(c["dataset"], _by(c), c["conf_type"], c["level"]) for c in REF["km"]}
    assert km == KM_GRID and len(REF["km"]) == len(KM_GRID) == 40
    lr = {(c["dataset"], _by(c)) for c in REF["logrank"]}
    assert lr == LOGRANK_GRID and len(REF["logrank"]) == 7
    cif = {(c["dataset"], _by(c), c["level"]) for c in REF["cif"]}
    assert cif == CIF_GRID and len(REF["cif"]) == 8
    conc = {(c["dataset"], c["predictor"], c["reverse"]) for c in REF["concordance"]}
    assert conc == CONC_GRID and len(REF["concordance"]) == 12
    # the hand-built edge cases are in the data
    hand = _dataset("hand")
    per = hand.groupby("g")["event"].agg(["size", "sum"])
    assert per.loc["b", "sum"] == 0 and per.loc["c", "size"] == 1 and (hand["time"] == 0).any()
    assert REF["survival_version"].startswith("3.")


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier vs survfit / summary / quantile
# ---------------------------------------------------------------------------------------------
def _km_id(c):
    return f"{c['dataset']}-{'+'.join(_by(c)) or 'none'}-{c['conf_type']}-{c['level']}"


@pytest.mark.parametrize("cell", REF["km"], ids=_km_id)
def test_kaplan_meier_curve_matches_survfit(cell):
    res = _km(cell)
    facets = _facets(cell)
    assert res.facets == facets  # same order as R's strata (numbers numerically, texts alphabetically)
    cur = cell["curve"]
    stratum = np.array(cur["stratum"])
    t = res.to_frame()
    assert len(t) == len(stratum)
    for s, facet in enumerate(facets, start=1):
        r = stratum == s
        got = _rows(t, facet)
        pick = {k: [v for v, keep in zip(cur[k], r) if keep] for k in cur}
        _close(got["time"], pick["time"], "time")
        for k in ("n_risk", "n_event", "n_censor"):
            assert got[k].tolist() == pick[k], k  # exact counts
        _close(got["estimate"], pick["surv"], "surv")
        _close(got["log_estimate_se"], pick["std_err"], "std.err (of log S, Inf once S = 0)")
        with np.errstate(invalid="ignore"):  # 0 * Inf = NaN once S = 0, in R too
            r_se = _num(pick["surv"]) * _num(pick["std_err"])
        _close(got["se"], r_se, "surv * std.err (summary's std.err)")
        _close(got["ci_low"], pick["lower"], "lower")
        _close(got["ci_high"], pick["upper"], "upper")


@pytest.mark.parametrize("cell", REF["km"], ids=_km_id)
def test_kaplan_meier_medians_and_quantiles_match_r(cell):
    res = _km(cell)
    m = res.medians
    tab = cell["table"]
    assert m["n"].tolist() == _num(tab["records"]).astype(int).tolist()  # exact
    assert m["n_event"].tolist() == _num(tab["events"]).astype(int).tolist()  # exact
    _close(m["median"], _num(tab["median"]), "median (print.survfit)")
    _close(m["median_ci_low"], _num(tab["lcl"]), "median LCL")
    _close(m["median_ci_high"], _num(tab["ucl"]), "median UCL")
    q = cell["quantile"]
    probs = _num(q["probs"])
    got = res.quantile(probs)
    for j, p in enumerate(probs):
        rows = got[got["prob"] == p]
        assert [f for f in rows["facet"]] == _facets(cell)
        _close(rows["estimate"], _num(q["quantile"][j]), f"quantile {p}")
        _close(rows["ci_low"], _num(q["lower"][j]), f"quantile {p} lower")
        _close(rows["ci_high"], _num(q["upper"][j]), f"quantile {p} upper")


@pytest.mark.parametrize("cell", REF["km"], ids=_km_id)
def test_risk_table_matches_summary_times(cell):
    res = _km(cell)
    rk = cell["risk"]
    got = res.risk_table(_num(rk["times"]))
    stratum = np.array(rk["stratum"] if isinstance(rk["stratum"], list) else [rk["stratum"]])
    assert len(got) == len(stratum)  # times after a stratum's last time are left out, as extend = FALSE
    for s, facet in enumerate(_facets(cell), start=1):
        r = stratum == s
        g = _rows(got, facet)
        pick = {k: [v for v, keep in zip(rk[k] if isinstance(rk[k], list) else [rk[k]], r) if keep]
                for k in rk if k != "times"}
        _close(g["time"], pick["time"], "time")
        assert g["n_risk"].tolist() == pick["n_risk"]  # exact
        assert g["n_event"].tolist() == pick["n_event"]  # exact (events since the previous time)
        assert g["n_censor"].tolist() == pick["n_censor"]  # exact
        assert g["cum_n_event"].tolist() == np.cumsum(pick["n_event"]).tolist()  # exact
        _close(g["estimate"], pick["surv"], "surv")
        _close(g["se"], pick["std_err"], "summary std.err (SE of the survival)")
        _close(g["ci_low"], pick["lower"], "lower")
        _close(g["ci_high"], pick["upper"], "upper")


@pytest.mark.parametrize("cell", REF["logrank"], ids=lambda c: f"{c['dataset']}-{'+'.join(_by(c))}")
def test_logrank_matches_survdiff(cell):
    res = kaplan_meier(_dataset(cell["dataset"]), time="time", event="event", by=list(_by(cell)))
    assert res.facets == _facets(cell)
    _close([res.logrank], [cell["chisq"]], "chisq")
    _close([res.logrank_pvalue], [cell["pvalue"]], "pvalue")
    assert res.logrank_df == cell["df"]  # exact
    _close(res.medians["expected"], _num(cell["expected"]), "expected")
    assert res.medians["n_event"].tolist() == _num(cell["observed"]).astype(int).tolist()  # exact
    assert res.medians["n"].tolist() == cell["n"]  # exact
    # the covariance matrix of O - E (internal)
    d = _dataset(cell["dataset"])
    by = list(_by(cell))
    key = d[by].apply(tuple, axis=1) if len(by) > 1 else d[by[0]]
    g = np.array([res.facets.index(k) for k in key])
    lr = _logrank(_timefix(d["time"].to_numpy(float)), d["event"].to_numpy(float), g, len(res.facets))
    np.testing.assert_allclose(lr["var"], np.array(cell["var"], dtype=float).T, rtol=RTOL, atol=1e-12)
    # atol: off-diagonal sums of terms of both signs may end a few ulps from 0


# ---------------------------------------------------------------------------------------------
# cumulative incidence vs multi-state survfit
# ---------------------------------------------------------------------------------------------
def _cif_id(c):
    return f"{c['dataset']}-{'+'.join(_by(c)) or 'none'}-{c['level']}"


@pytest.mark.parametrize("cell", REF["cif"], ids=_cif_id)
def test_cumulative_incidence_matches_multistate_survfit(cell):
    d = _dataset(cell["dataset"])
    res = cumulative_incidence(d, time="time", event="event", by=list(_by(cell)) or None, level=cell["level"],
                               censored=cell["censored"])
    causes = cell["causes"] if isinstance(cell["causes"], list) else [cell["causes"]]
    assert res.causes == causes
    stratum = np.array(cell["stratum"])
    t = res.to_frame()
    assert list(t.columns) == ["facet", "cause", "time", "n_risk", "n_event", "estimate", "se", "ci_low", "ci_high"]
    assert len(t) == len(stratum) * len(causes)
    for s, facet in enumerate(_facets(cell), start=1):
        r = stratum == s
        free = _num(cell["event_free"])[r]
        total = np.zeros(r.sum())
        for j, cause in enumerate(causes):
            g = _rows(t, facet, cause)
            _close(g["time"], _num(cell["time"])[r], "time")
            assert g["n_risk"].tolist() == _num(cell["n_risk"])[r].astype(int).tolist()  # exact
            assert g["n_event"].tolist() == _num(cell["n_event"][j])[r].astype(int).tolist()  # exact
            _close(g["estimate"], _num(cell["pstate"][j])[r], f"pstate {cause}")
            _close(g["se"], _num(cell["std_err"][j])[r], f"std.err {cause} (infinitesimal jackknife)")
            _close(g["ci_low"], _num(cell["lower"][j])[r], f"lower {cause}")
            _close(g["ci_high"], _num(cell["upper"][j])[r], f"upper {cause}")
            total += g["estimate"].to_numpy()
        # the state "no event yet" of R is 1 minus the causes' incidences (a sum: a few ulps)
        np.testing.assert_allclose(1 - total, free, rtol=RTOL, atol=1e-14)


def test_single_cause_incidence_is_one_minus_kaplan_meier():
    d = _dataset("aml")
    km = kaplan_meier(d, time="time", event="event", by="x")
    ci = cumulative_incidence(d, time="time", event="event", by="x")
    np.testing.assert_allclose(ci.to_frame()["estimate"], 1 - km.to_frame()["estimate"], rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# concordance vs concordance()
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", REF["concordance"],
                         ids=lambda c: f"{c['dataset']}-{c['predictor']}-{'reverse' if c['reverse'] else 'default'}")
def test_concordance_matches_r(cell):
    res = concordance(_dataset(cell["dataset"]), time="time", event="event", predictor=cell["predictor"],
                      reverse=cell["reverse"])
    _close([res.estimate], [cell["concordance"]], "concordance")
    _close([res.se], [math.sqrt(cell["var"])], "IJ standard error")
    cnt = cell["count"]
    assert (res.n_concordant, res.n_discordant, res.n_tied_x, res.n_tied_y, res.n_tied_xy) == (
        cnt["concordant"], cnt["discordant"], cnt["tied.x"], cnt["tied.y"], cnt["tied.xy"])  # exact
    assert res.n == cell["n"]
    z = 1.959963984540054
    assert res.ci_low == pytest.approx(res.estimate - z * res.se, rel=1e-12)
    assert res.ci_high == pytest.approx(res.estimate + z * res.se, rel=1e-12)


def test_concordance_blocks_give_the_same_counts(monkeypatch):
    import scaleup_analysis.sustainment.survival as sv

    d = _dataset("lung")
    full = concordance(d, time="time", event="event", predictor="age")
    monkeypatch.setattr(sv, "_PAIR_BLOCK", 500)  # a few rows of pairs at a time
    small = concordance(d, time="time", event="event", predictor="age")
    assert small.to_frame().equals(full.to_frame())


# ---------------------------------------------------------------------------------------------
# hand-computed cases and documented rules
# ---------------------------------------------------------------------------------------------
def test_hand_computed_greenwood_and_median_rules():
    d = _dataset("hand")
    res = kaplan_meier(d[d["g"] == "e"], time="time", event="event")
    # e: events at 1, 2, 3, 4 (and a censoring at 4) among 5: S = 4/5, 3/5, 2/5, 1/5
    t = res.to_frame()
    np.testing.assert_allclose(t["estimate"], [0.8, 0.6, 0.4, 0.2], rtol=1e-15)
    green = np.cumsum([1 / (5 * 4), 1 / (4 * 3), 1 / (3 * 2), 1 / (2 * 1)])
    np.testing.assert_allclose(t["log_estimate_se"], np.sqrt(green), rtol=1e-14)
    np.testing.assert_allclose(t["se"], t["estimate"] * np.sqrt(green), rtol=1e-14)
    # d: S = 0.75, 0.5, 0.5, 0.5 to the end: print(survfit) says 2, quantile() the midpoint to the last time
    dd = kaplan_meier(d[d["g"] == "d"], time="time", event="event")
    assert dd.medians["median"].iloc[0] == 2.0
    assert dd.quantile([0.5])["estimate"].iloc[0] == (2.0 + 4.0) / 2


def test_timefix_ties_times_as_aeqsurv():
    t = np.array([1.0, 1 + 1e-10, 2.0, 2 * (1 + 1e-9), 3.0])
    assert _timefix(t).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert _timefix(np.array([1.0, 1.001])).tolist() == [1.0, 1.001]


def test_single_facet_and_no_by_have_no_logrank():
    d = _dataset("aml")
    for res in (kaplan_meier(d, time="time", event="event"),
                kaplan_meier(d[d["x"] == "Maintained"], time="time", event="event", by="x")):
        assert math.isnan(res.logrank) and math.isnan(res.logrank_pvalue)
        assert "Log-rank" not in res.summary()


def test_text_zero_counts_as_censored_and_text_causes():
    d = _dataset("hand_cr")
    num = cumulative_incidence(d, time="time", event="event")
    txt = cumulative_incidence(d.assign(event=d["event"].astype(str)), time="time", event="event")
    assert txt.causes == ["1", "2", "3"]
    pd.testing.assert_frame_equal(num.to_frame().drop(columns="cause"), txt.to_frame().drop(columns="cause"))


def test_censored_none_reads_a_missing_cause_as_censored():
    d = _dataset("hand_cr")
    coded = cumulative_incidence(d, time="time", event="event")
    gaps = cumulative_incidence(d.assign(event=d["event"].where(d["event"] != 0)), event="event", censored=None)
    pd.testing.assert_frame_equal(coded.to_frame(), gaps.to_frame())
    with pytest.raises(ScaleupDataError, match="pass censored=None"):
        cumulative_incidence(d.assign(event=d["event"].where(d["event"] != 0)), event="event")


def test_default_column_names():
    d = _dataset("aml")
    assert kaplan_meier(d, by="x").to_frame().equals(kaplan_meier(d, time="time", event="event", by="x").to_frame())
    assert concordance(d, predictor="maintained").estimate == concordance(
        d, time="time", event="event", predictor="maintained").estimate


def test_categorical_by_keeps_category_order():
    d = _dataset("veteran")
    order = ["squamous", "smallcell", "adeno", "large"]
    res = kaplan_meier(d.assign(celltype=pd.Categorical(d["celltype"], categories=order)), time="time",
                       event="event", by="celltype")
    assert res.facets == order
    plain = kaplan_meier(d, time="time", event="event", by="celltype")
    assert res.logrank == pytest.approx(plain.logrank, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# invariance to row order
# ---------------------------------------------------------------------------------------------
_HAND = _dataset("hand")
_HAND_CR = _dataset("hand_cr")


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(len(_HAND))), st.permutations(range(len(_HAND_CR))))
def test_results_do_not_depend_on_row_order(perm, perm_cr):
    a = kaplan_meier(_HAND, time="time", event="event", by="g")
    b = kaplan_meier(_HAND.iloc[list(perm)], time="time", event="event", by="g")
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-13)
    pd.testing.assert_frame_equal(a.medians, b.medians, rtol=1e-13)
    assert a.logrank == pytest.approx(b.logrank, rel=1e-12)
    c1 = cumulative_incidence(_HAND_CR, time="time", event="event", by="g")
    c2 = cumulative_incidence(_HAND_CR.iloc[list(perm_cr)], time="time", event="event", by="g")
    pd.testing.assert_frame_equal(c1.to_frame(), c2.to_frame(), rtol=1e-12)
    k1 = concordance(_HAND, time="time", event="event", predictor="x")
    k2 = concordance(_HAND.iloc[list(perm)], time="time", event="event", predictor="x")
    assert k1.to_frame().drop(columns=["estimate", "se", "ci_low", "ci_high"]).equals(
        k2.to_frame().drop(columns=["estimate", "se", "ci_low", "ci_high"]))
    assert k2.estimate == pytest.approx(k1.estimate, rel=1e-13) and k2.se == pytest.approx(k1.se, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def _sites():
    return pd.DataFrame({"years": [1.0, 2.0, 2.0, 3.0, 4.0], "stopped": [1, 0, 1, 1, 0],
                         "reason": ["funding", "censored", "staff", "funding", "censored"],
                         "region": ["05", "05", "13", "13", "13"], "score": [1.0, 2.0, 3.0, 2.0, 5.0]},
                        index=["s1", "s2", "s3", "s4", "s5"])


@pytest.mark.parametrize("fn, kwargs", [
    (kaplan_meier, {"time": "years", "event": "stopped"}),
    (cumulative_incidence, {"time": "years", "event": "reason", "censored": "censored"}),
    (concordance, {"time": "years", "event": "stopped", "predictor": "score"}),
])
def test_bad_time_column(fn, kwargs):
    d = _sites()
    with pytest.raises(ScaleupDataError, match=r"missing column\(s\) \['yrs'\]"):
        fn(d, **{**kwargs, "time": "yrs"})
    with pytest.raises(ScaleupDataError, match=r"column 'years' \(argument 'time'\): 1 row\(s\) \(first: 's4'\) are "
                                               r"negative \(values -3.0\)"):
        fn(d.assign(years=[1.0, 2.0, 2.0, -3.0, 4.0]), **kwargs)
    with pytest.raises(ScaleupDataError, match=r"column 'years' \(argument 'time'\): 2 row\(s\) \(first: 's2', 's5'\) "
                                               r"are missing"):
        fn(d.assign(years=[1.0, np.nan, 2.0, 3.0, np.nan]), **kwargs)
    with pytest.raises(ScaleupDataError, match=r"\(first: 's1'\) are infinite"):
        fn(d.assign(years=[np.inf, 2.0, 2.0, 3.0, 4.0]), **kwargs)
    with pytest.raises(ScaleupDataError, match=r"\(first: 's3'\) are not numeric \(values 'two'\)"):
        fn(d.assign(years=["1", "2", "two", "3", "4"]), **kwargs)
    with pytest.raises(ScaleupDataError, match="argument 'level'"):
        fn(d, **kwargs, level=95)


@pytest.mark.parametrize("fn, extra", [(kaplan_meier, {}), (concordance, {"predictor": "score"})])
def test_bad_event_column(fn, extra):
    d = _sites()
    with pytest.raises(ScaleupDataError, match=r"column 'stopped' \(argument 'event'\): 2 row\(s\) \(first: 's2', "
                                               r"'s4'\) are neither 0 nor 1 \(values 2.0, -1.0\)"):
        fn(d.assign(stopped=[1, 2, 0, -1, 0]), time="years", event="stopped", **extra)
    with pytest.raises(ScaleupDataError, match=r"\(first: 's5'\) are missing"):
        fn(d.assign(stopped=[1, 0, 1, 1, np.nan]), time="years", event="stopped", **extra)
    with pytest.raises(ScaleupDataError, match="not numeric"):
        fn(d, time="years", event="reason", **extra)


def test_bad_by_and_options():
    d = _sites()
    with pytest.raises(ScaleupDataError, match=r"column 'region' \(argument 'by'\): 1 row\(s\) \(first: 's3'\) are "
                                               r"missing"):
        kaplan_meier(d.assign(region=["05", "05", None, "13", "13"]), time="years", event="stopped", by="region")
    with pytest.raises(ScaleupDataError, match=r"missing column\(s\) \['rss'\]"):
        kaplan_meier(d, time="years", event="stopped", by=["region", "rss"])
    with pytest.raises(ScaleupDataError, match="argument 'by' must be a column name"):
        kaplan_meier(d, time="years", event="stopped", by=3)
    with pytest.raises(ScaleupDataError, match="argument 'conf_type'"):
        kaplan_meier(d, time="years", event="stopped", conf_type="logit")
    with pytest.raises(ScaleupDataError, match="argument 'reverse'"):
        concordance(d, time="years", event="stopped", predictor="score", reverse="yes")
    with pytest.raises(ScaleupDataError, match=r"column 'score' \(argument 'predictor'\): 1 row\(s\) \(first: 's2'\) "
                                               r"are missing"):
        concordance(d.assign(score=[1.0, np.nan, 3.0, 2.0, 5.0]), time="years", event="stopped", predictor="score")
    with pytest.raises(ScaleupDataError, match="has no rows"):
        kaplan_meier(d.iloc[:0], time="years", event="stopped")


def test_bad_causes():
    d = _sites()
    with pytest.raises(ScaleupDataError, match=r"column 'reason' \(argument 'event'\): 1 row\(s\) \(first: 's5'\) are "
                                               r"missing"):
        cumulative_incidence(d.assign(reason=["funding", "censored", "staff", "funding", None]), time="years",
                             event="reason", censored="censored")
    with pytest.raises(ScaleupDataError, match="every row is censored"):
        cumulative_incidence(d.assign(reason="censored"), time="years", event="reason", censored="censored")
    # causes as text with censoring as the number 0: refused at the boundary (1 and '1' would differ)
    with pytest.raises(ScaleupDataError, match="mixes value types"):
        cumulative_incidence(d.assign(reason=["funding", 0, "staff", "funding", "staff"]), time="years",
                             event="reason")


def test_bad_times_and_probs_of_methods():
    res = kaplan_meier(_sites(), time="years", event="stopped")
    for times in ([-1, 2], [np.nan], [], "2"):
        with pytest.raises(ScaleupDataError, match="'times' must be finite times >= 0"):
            res.risk_table(times)
    with pytest.raises(ScaleupDataError, match="'probs' must be probabilities"):
        res.quantile([0.5, 1.5])


def test_no_comparable_pair_warns():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 0, 1], "x": [1.0, 2.0, 3.0]})
    with pytest.warns(ScaleupWarning, match="no comparable pair"):
        res = concordance(d, time="t", event="e", predictor="x")
    assert math.isnan(res.estimate)


# ---------------------------------------------------------------------------------------------
# display and figures
# ---------------------------------------------------------------------------------------------
def test_results_display_in_both_languages():
    d = _dataset("lung")
    results = [kaplan_meier(d, time="time", event="event", by="sex"), kaplan_meier(d, time="time", event="event"),
               cumulative_incidence(_dataset("mgus"), time="time", event="event", by="sex", censored="censored"),
               concordance(d, time="time", event="event", predictor="age")]
    for res in results:
        assert isinstance(res, (KaplanMeierResult, CumulativeIncidenceResult, ConcordanceResult))
        assert len(repr(res)) <= 400
        for lang in ("en", "fr"):
            assert res.summary(language=lang)
        assert "<pre" in res._repr_html_()
        assert isinstance(res.to_frame(), pd.DataFrame)
    text = results[0].summary(language="en")
    assert "Log-rank test of equal survival across facets: chi-square(1) = 10.01, p = 0.002." in text
    assert "Median time" in text


def test_plots_return_their_axes():
    import matplotlib.pyplot as plt

    km = kaplan_meier(_dataset("hand"), time="time", event="event", by="g")
    fig, ax = plt.subplots()
    assert km.plot_survival(ax=ax) is ax
    assert ax.get_title() == "Time to de-adoption (Kaplan-Meier)"
    assert ax.get_ylabel() == "Probability of still delivering"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:5] == ["a", "b", "c", "d", "e"] and "95% CI" in labels
    ax2 = km.plot_survival(title="Sites", xlabel="Months since adoption", ylabel="Still delivering")
    assert isinstance(ax2, matplotlib.axes.Axes) and ax2.get_xlabel() == "Months since adoption"
    ci = cumulative_incidence(_dataset("hand_cr"), time="time", event="event", by="g")
    ax3 = ci.plot_incidence()
    assert ax3.get_title() == "De-adoption by cause (cumulative incidence)"
    assert len(ax3.get_legend().get_texts()) == 3 * 4 + 1
    assert km.plot_survival.styled and ci.plot_incidence.styled


def test_multi_column_by_gives_tuple_facets():
    d = _dataset("lung")
    res = kaplan_meier(d, time="time", event="event", by=["sex", "ph.ecog"])
    assert res.facets[:3] == [(1, 0), (1, 1), (1, 2)]
    assert all(isinstance(f, tuple) for f in res.to_frame()["facet"])
    assert list(itertools.islice(res.risk_table([0])["facet"], 2)) == [(1, 0), (1, 1)]
