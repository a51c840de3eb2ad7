"""institutional_funnel (Spiegelhalter funnel plots with over-dispersion) against R.

* tests/reference/funnel.json, written by tests/reference/ref_funnel.R: FunnelPlotR is not packaged,
  so the published formulas are written in base R -- Spiegelhalter (2005a, Stat Med 24:1185,
  appendix A.1.1) exact binomial/Poisson limits interpolated between counts (qbinom/pbinom,
  qpois/ppois), normal limits on the transformed scale; Spiegelhalter (2005b, QSHC 14:347)
  z-scores, Winsorised (R quantile type 7) or truncated phi, multiplicative and additive
  (DerSimonian-Laird) over-dispersion; the SHMI variant (log, 10 % truncation) -- on a hand-built
  6-site study, 60 over-dispersed proportions, 40 rates per 1,000 person-years and 50 indirectly
  standardised ratios with two planted outliers, and 30 units' means (3 periods of n, mean, sd
  each, pooled): 132 dataset x option cases, every one tested
  (grid-coverage test below);
* every number agrees to 1e-10 relative (closed forms; the JSON keeps 15 significant digits) and
  every signal is identical;
* a simulation with a known truth: with no over-dispersion, about 5 % of units fall beyond the
  95 % exact limits; with planted outliers, those are the alarms;
* invariances (row order, relabelling of units, aggregation of patient rows) and bad inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("funnel")
CASES = REF["cases"]
RTOL = 1e-10
LIMITS = ("alert_low", "alert_high", "alarm_low", "alarm_high")


def _data(name: str) -> pd.DataFrame:
    return pd.DataFrame(REF["datasets"][name])


def _fit(case):
    o = case["options"]
    d = _data(case["dataset"])
    kw = dict(kind=o["kind"], transform=o["transform"], overdispersion=o["overdispersion"], trim=o["trim"],
              trim_method=o["trim_method"], limits=o["limits"], level=o["levels"][0], alarm_level=o["levels"][1],
              multiplier=o["multiplier"], target=o["target"], unit="unit")
    if o["kind"] == "ratio":
        kw["expected"] = "expected"
    return sa.institutional_funnel(d, **kw)


def o_kind(case) -> str:
    return case["options"]["kind"]


def _close(a, b, rtol=RTOL, atol=1e-13):
    a = np.asarray(a, float)
    b = np.asarray([np.nan if v is None else v for v in np.atleast_1d(b)], float)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_every_case_of_the_grid_is_tested():
    keys = {c["key"] for c in CASES}
    assert len(keys) == len(CASES) == 132
    kinds = {(c["options"]["kind"], c["options"]["transform"], c["options"]["overdispersion"],
              c["options"]["trim_method"], c["options"]["limits"]) for c in CASES}
    # 2 transforms of a proportion, 3 of a rate or ratio; x 3 over-dispersion x 2 trims x 2 limits;
    # a mean: normal limits on its own scale x 3 over-dispersion x 2 trims
    assert len(kinds) == (2 + 3 + 3) * 3 * 2 * 2 + 3 * 2


@pytest.mark.parametrize("case", CASES, ids=[c["key"] for c in CASES])
def test_against_the_published_formulas_in_r(case):
    res = _fit(case)
    f = res.to_frame()
    # units are sorted by name in R's data and in the result
    assert list(f["unit"]) == sorted(set(_data(case["dataset"])["unit"]))
    _close(res.target, case["target"])
    if o_kind(case) == "mean":
        _close(res.sd, case["sd"])
    _close(f["z"], case["z"])
    _close(res.phi, case["phi"])
    assert res.phi_df == case["phi_df"]
    _close(res.phi_pvalue, case["phi_pvalue"])
    _close(res.tau2, case["tau2"], atol=1e-15)
    assert res.adjusted == case["adjusted"]
    assert res.n_trimmed == case["n_trimmed"]
    assert list(f["trimmed"]) == list(case["trimmed"])
    _close(f["z_adjusted"], case["z_adjusted"])
    _close(f["value"], case["value"])
    for k in LIMITS:
        _close(f[k], case["limits"][k])
    assert list(f["signal"]) == list(case["signal"])
    grid_u = res.funnel_limits(case["grid"], adjusted=False)
    grid_a = res.funnel_limits(case["grid"], adjusted=True)
    for k in LIMITS:
        _close(grid_u[k], case["grid_unadjusted"][k])
        _close(grid_a[k], case["grid_adjusted"][k])


def test_the_planted_outliers_are_the_alarms():
    case = next(c for c in CASES if c["key"].startswith("ratio50|ratio|log|additive|0.1|truncate|exact|pooled"))
    f = _fit(case).to_frame().set_index("unit")
    assert f.loc["H07", "signal"] == "above_alarm"   # observed = 2.1 x expected
    assert f.loc["H31", "signal"] == "below_alarm"   # observed = 0.45 x expected


def test_without_overdispersion_about_5_percent_of_units_fall_outside_the_95_limits():
    # known truth: every unit has the target proportion 0.2; 4,000 units of 30 to 3,000 individuals.
    # Exact interpolated limits: the share outside is close to 5 % (discreteness makes it a little
    # lower, never above 5 % by more than the Monte-Carlo error, sd = 0.34 %).
    rng = np.random.default_rng(11)
    n = rng.integers(30, 3000, 4000)
    d = pd.DataFrame({"site_id": np.arange(4000), "events": rng.binomial(n, 0.2), "n": n})
    res = sa.institutional_funnel(d, target=0.2, overdispersion="none")
    outside = (res.to_frame()["signal"] != "within").mean()
    assert 0.04 < outside < 0.05 + 3 * 0.0034
    # and phi is close to 1: no over-dispersion is estimated (Winsorised z-scores: a little below 1)
    assert 0.6 < res.phi < 1.05


def test_overdispersion_is_estimated_when_units_truly_differ():
    # known truth: logit-normal site effects with sd 0.4 around -1.5 on large sites: phi >> 1,
    # tau2 > 0 and the adjusted limits are wider than the exact ones.
    rng = np.random.default_rng(5)
    n = rng.integers(500, 5000, 200)
    p = 1 / (1 + np.exp(-(-1.5 + rng.normal(0, 0.4, 200))))
    d = pd.DataFrame({"site_id": np.arange(200), "events": rng.binomial(n, p), "n": n})
    res = sa.institutional_funnel(d)
    assert res.phi > 5 and res.tau2 > 0 and res.adjusted
    assert res.phi_pvalue < 1e-6
    u = res.funnel_limits([1000], adjusted=False)
    a = res.funnel_limits([1000], adjusted=True)
    assert a["alarm_high"][0] > u["alarm_high"][0] and a["alarm_low"][0] < u["alarm_low"][0]
    # with tau2 the share of alarms is small, as it should be for units drawn from one distribution
    assert (res.to_frame()["signal"].str.endswith("alarm")).mean() < 0.05


def test_patient_rows_are_summed_per_unit_and_row_order_does_not_matter():
    d = _data("hand6")
    rows = []
    for r in d.itertuples(index=False):
        rows += [{"unit": r.unit, "events": 1, "n": 1}] * int(r.events)
        rows += [{"unit": r.unit, "events": 0, "n": 1}] * int(r.n - r.events)
    patients = pd.DataFrame(rows).sample(frac=1, random_state=2)
    a = sa.institutional_funnel(d, unit="unit").to_frame()
    b = sa.institutional_funnel(patients, unit="unit").to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_relabelling_units_changes_nothing_but_the_labels():
    d = _data("prop60")
    a = sa.institutional_funnel(d, unit="unit").to_frame()
    mapping = {u: f"site {i}" for i, u in enumerate(d["unit"])}
    b = sa.institutional_funnel(d.assign(unit=d["unit"].map(mapping)), unit="unit").to_frame()
    b = b.assign(unit=b["unit"].map({v: k for k, v in mapping.items()})).sort_values("unit").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_multiplier_scales_values_and_limits_only():
    d = _data("rate40")
    a = sa.institutional_funnel(d, unit="unit", kind="rate").to_frame()
    b = sa.institutional_funnel(d, unit="unit", kind="rate", multiplier=1000).to_frame()
    for k in ("value",) + LIMITS:
        np.testing.assert_allclose(b[k], 1000 * a[k], rtol=1e-14)
    np.testing.assert_array_equal(a["z"], b["z"])
    assert list(a["signal"]) == list(b["signal"])


def test_summary_and_plot_say_what_the_numbers_show():
    case = next(c for c in CASES if c["key"].startswith("ratio50|ratio|log|additive|0.1|truncate|exact|pooled"))
    res = _fit(case)
    en = res.summary(language="en")
    fr = res.summary(language="fr")
    assert "H07" in en and "Above the alarm limit" in en and "H31" in en
    assert "Au-dessus de la limite d'alarme" in fr and "H07" in fr
    ax = res.plot()
    texts = [t.get_text() for t in ax.texts]
    assert "H07" in texts and "H31" in texts


def test_plot_counts_the_alarms_it_does_not_name():
    """More alarms than the plot names (12): the legend says how many are not named. Known truth: 20
    hospitals with 60 % events where the target is 10 %, among 40 at the target."""
    n = np.full(60, 400)
    events = np.r_[np.full(40, 40), np.full(20, 240)]
    d = pd.DataFrame({"unit": [f"U{i:02d}" for i in range(60)], "events": events, "n": n})
    res = sa.institutional_funnel(d, unit="unit", target=0.1, overdispersion="none")
    assert int(res.to_frame()["signal"].eq("above_alarm").sum()) == 20
    from scaleup_analysis.i18n import get_language, set_language

    before = get_language()
    try:
        for lang, text in (("en", "8 more units beyond the alarm limits, not named"),
                           ("fr", "8 autres unités au-delà des limites d'alarme, non nommées")):
            set_language(lang)
            ax = res.plot()
            legend = " ".join(t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts())
            assert text in legend, legend
            assert sum(t.get_text().startswith("U") for t in ax.texts) == 12
    finally:
        set_language(before)


@pytest.mark.parametrize("kw, fragment", [
    (dict(kind="odds"), "kind must be one of"),
    (dict(transform="log"), "transform (for kind='proportion')"),
    (dict(level=0.998, alarm_level=0.95), "alarm_level (0.95) must be above level (0.998)"),
    (dict(level=95), "level"),
    (dict(trim=0.5), "trim must be a share"),
    (dict(target=1.2), "target must be a number in (0, 1)"),
    (dict(multiplier=0), "multiplier must be a positive number"),
    (dict(expected="n"), "expected= is for kind='ratio'"),
    (dict(kind="ratio"), "needs the column of expected events"),
])
def test_bad_options_are_named(kw, fragment):
    with pytest.raises(ScaleupDataError) as e:
        sa.institutional_funnel(_data("hand6"), unit="unit", **kw)
    assert fragment in str(e.value)


def test_bad_data_names_table_column_and_rows():
    d = _data("hand6")
    with pytest.raises(ScaleupDataError, match=r"table 'data'.*more events"):
        sa.institutional_funnel(d.assign(events=d["events"].where(d["unit"] != "C", 200)), unit="unit")
    with pytest.raises(ScaleupDataError, match=r"column 'events'.*negative.*index 3"):
        sa.institutional_funnel(d.assign(events=d["events"].where(d["unit"] != "D", -1)), unit="unit")
    with pytest.raises(ScaleupDataError, match=r"whole numbers"):
        sa.institutional_funnel(d.assign(n=d["n"] + 0.5), unit="unit")
    with pytest.raises(ScaleupDataError, match=r"at least 3 units"):
        sa.institutional_funnel(d.head(2), unit="unit")
    with pytest.raises(ScaleupDataError, match=r"without events.*'F'"):
        sa.institutional_funnel(d.assign(events=d["events"].where(d["unit"] != "F", 0)).rename(
            columns={"n": "expected"}), unit="unit", kind="ratio", expected="expected", transform="log")
    with pytest.raises(ScaleupDataError, match=r"missing column"):
        sa.institutional_funnel(d, unit="site")


def test_a_mean_pools_the_rows_of_a_unit_and_flags_the_planted_unit():
    case = next(c for c in CASES if c["key"].startswith("mean30|mean|none|additive|0.1|winsorize|normal|pooled"))
    res = _fit(case)
    f = res.to_frame().set_index("unit")
    assert f.loc["M05", "signal"] == "above_alarm"   # planted +2.5 points
    d = _data("mean30")
    # the pooled mean of a unit is the n-weighted mean of its rows
    m = d[d["unit"] == "M07"]
    assert f.loc["M07", "value"] == pytest.approx((m["n"] * m["mean"]).sum() / m["n"].sum(), rel=1e-14)
    assert f.loc["M07", "n"] == m["n"].sum()


def test_mean_inputs_are_checked():
    d = _data("mean30")
    kw = dict(kind="mean", unit="unit")
    with pytest.raises(ScaleupDataError, match=r"no exact"):
        sa.institutional_funnel(d, limits="exact", **kw)
    with pytest.raises(ScaleupDataError, match=r"column 'sd'.*index 4"):
        sa.institutional_funnel(d.assign(sd=d["sd"].where(d.index != 4)), **kw)
    with pytest.raises(ScaleupDataError, match=r"column 'mean'.*index 2"):
        sa.institutional_funnel(d.assign(mean=d["mean"].where(d.index != 2)), **kw)
    # a row without individuals needs no mean
    ok = d.assign(n=d["n"].where(d.index != 2, 0), mean=d["mean"].where(d.index != 2))
    assert sa.institutional_funnel(ok, **kw).n_units == 30


@pytest.fixture(scope="module")
def study_tables():
    return sa.simulate_scaleup(seed=1).tables


def test_indicator_funnel_sums_the_outcomes_of_each_unit_of_the_level(study_tables):
    t = study_tables
    periods = [13, 14, 15, 16]
    res = sa.indicator_funnel(t, indicator="HO_EVENT", by="establishment_id", periods=periods)
    o = t["outcomes"]
    o = o[(o["indicator_id"] == "HO_EVENT") & o["period"].isin(periods)]
    o = o.merge(t["establishments"], on="site_id")
    manual = o.groupby("establishment_id")[["events", "n"]].sum().reset_index()
    ref = sa.institutional_funnel(manual.astype({"events": float}), unit="establishment_id", multiplier=100)
    pd.testing.assert_frame_equal(res.to_frame(), ref.to_frame())
    assert res.n_units == t["establishments"]["establishment_id"].nunique()
    # a region's value is the pooled value of its sites: region 05 = establishment E05 (one CIUSSS)
    reg = sa.indicator_funnel(t, indicator="HO_EVENT", by="rss_code", periods=periods).to_frame().set_index("unit")
    est = res.to_frame().set_index("unit")
    assert reg.loc["05", "value"] == pytest.approx(est.loc["E05", "value"], rel=1e-15)


def test_indicator_funnel_of_a_mean_indicator_pools_n_mean_sd(study_tables):
    t = study_tables
    res = sa.indicator_funnel(t, indicator="HO_Y", periods=[16])
    o = t["outcomes"]
    o = o[(o["indicator_id"] == "HO_Y") & (o["period"] == 16)]
    ref = sa.institutional_funnel(o, unit="site_id", kind="mean")
    pd.testing.assert_frame_equal(res.to_frame(), ref.to_frame())
    assert res.kind == "mean" and res.sd > 0


def test_indicator_funnel_says_what_it_leaves_out(study_tables):
    t = dict(study_tables)
    est = t["establishments"]
    t["establishments"] = est[est["establishment_id"] != "E13"]
    res = sa.indicator_funnel(t, indicator="UX_SAT", by="establishment_id")
    assert "E13" not in set(res.to_frame()["unit"])
    with pytest.raises(ScaleupDataError, match=r"'XX' is not in table 'indicators'"):
        sa.indicator_funnel(t, indicator="XX")
    without = {k: v for k, v in t.items() if k != "establishments"}
    with pytest.raises(ScaleupDataError, match=r"needs table 'establishments'"):
        sa.indicator_funnel(without, indicator="UX_SAT", by="establishment_id")
    o = t["outcomes"].copy()
    o.loc[(o["site_id"] == "S0001") & (o["indicator_id"] == "UX_SAT"), ["n", "events"]] = 0
    with pytest.warns(sa.RowsOmittedWarning, match=r"S0001"):
        sa.indicator_funnel({**t, "outcomes": o}, indicator="UX_SAT")
