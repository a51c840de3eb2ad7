"""Tests of scaleup_analysis.sustainment.after_support (did the effect fade once the support ended?).

* Against R: tests/reference/ref_after_support.R -> after_support.json. Base R's
  ``lm(y ~ factor(unit) + factor(period), weights = w, subset = untreated)`` + ``predict`` impute the
  untreated outcome of the treated unit-periods (the imputation estimator of Borusyak, Jaravel & Spiess
  2024); ``weighted.mean`` gives the effects during / after support and the event-study means,
  ``lm(tau ~ after + I(after * (period - withdrawal)), weights = w)`` the level and slope changes and
  ``lm(tau ~ fidelity, weights = w)`` the fidelity slope. Three panels (hand-built 6 x 8 with two
  never-adopters, weights and a unit never withdrawn; simulated 40 x 12, unbalanced; one with
  unit-periods that cannot be imputed), stored as CSV text in the JSON: point estimates agree to 1e-10
  relative.
* Against a known truth: simulated panels with a planted effect of 2.0 during support and 1.0 after
  (true sustainment ratio 0.5), a planted slope after the withdrawal and a planted fidelity slope;
  over 400 seeds the 95% cluster-bootstrap intervals cover the truth in 90-99% of the seeds and the
  estimates are unbiased (mean within 3 Monte-Carlo standard errors of the truth).
* The vectorised bootstrap against a direct one (units resampled, duplicates relabelled, the estimator
  refitted), invariances (row order, unit labels, affine outcome changes, weight scale), bad input,
  reproducibility, the result object (summary, plot).
"""

from __future__ import annotations

import dataclasses
import io
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from scaleup_analysis.sustainment.after_support import SupportWithdrawalResult, support_withdrawal_effects
from tests.conftest import load_reference

REF = load_reference("after_support")
PANELS = ("hand", "simulated", "excluded")
QUANTITIES = ("effect_during", "effect_after", "difference", "sustainment_ratio", "level_change", "slope_change",
              "fidelity_slope")
#: names of the R script's values
R_NAME = {q: q for q in QUANTITIES} | {"sustainment_ratio": "ratio"}
R_COLS = dict(outcome="y", unit="unit", cohort="cohort", withdrawal="withdrawal", weight="w", fidelity="fidelity")


def _panel(name: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(REF["panels"][name]["csv"]))


def _quiet(data, **kw):
    """The function with its warnings silenced (tests of the warnings call it directly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleupWarning)
        return support_withdrawal_effects(data, **kw)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))


# ----------------------------------------------------------------------------------------------
# 1. against R
# ----------------------------------------------------------------------------------------------
def test_reference_grid_is_complete():
    """Every panel of the R script is tested (the grid cannot silently shrink)."""
    assert set(REF["panels"]) == set(PANELS)
    for name in PANELS:
        assert {*R_NAME.values(), "event_study", "cells", "csv", "n_excluded"} <= set(REF["panels"][name])


@pytest.mark.parametrize("name", PANELS)
def test_point_estimates_match_r(name):
    ref = REF["panels"][name]
    res = _quiet(_panel(name), **R_COLS, n_boot=0)
    tab = res.to_frame().set_index("quantity")
    for m in QUANTITIES:
        assert _rel(tab.loc[m, "estimate"], ref[R_NAME[m]]) < 1e-10, m  # closed forms and lm(): 1e-10 relative
    # counts of unit-periods and units
    assert tab.loc["effect_during", "n_cells"] == ref["n_during"]
    assert tab.loc["effect_after", "n_cells"] == ref["n_after"]
    assert tab.loc["effect_during", "n_units"] == ref["n_units_during"]
    assert tab.loc["effect_after", "n_units"] == ref["n_units_after"]
    assert tab.loc["level_change", "n_cells"] == ref["n_segmented"]
    assert tab.loc["fidelity_slope", "n_cells"] == ref["n_fidelity"]
    assert res.n_excluded == ref["n_excluded"]
    # event study around the withdrawal
    es, res_es = ref["event_study"], res.event_study
    assert res_es["event_time"].tolist() == es["event_time"]
    assert _rel(res_es["estimate"], es["estimate"]) < 1e-10
    assert res_es["n_cells"].tolist() == es["n_cells"]
    assert res_es["n_units"].tolist() == es["n_units"]
    assert (res_es["phase"] == np.where(res_es["event_time"] < 0, "during", "after")).all()
    # the effect of every treated unit-period
    cells = pd.DataFrame(ref["cells"]).sort_values(["unit", "period"]).reset_index(drop=True)
    eff = res.effects
    assert eff[["unit", "period"]].astype(str).values.tolist() == cells[["unit", "period"]].astype(str).values.tolist()
    assert _rel(eff["estimate"], cells["tau"]) < 1e-10
    assert (eff["phase"].eq("after") == cells["after"].eq(1)).all()


def test_excluded_cells_are_counted_in_a_warning():
    """Panel 'excluded': unit A1 adopts in period 1 (never untreated) and nobody is untreated in
    periods 9-10 (BJS's rule: the unit and the period need untreated observations)."""
    with pytest.warns(ScaleupWarning, match=r"28 treated unit-period\(s\) of 10 unit\(s\) are left out") as rec:
        support_withdrawal_effects(_panel("excluded"), **R_COLS, n_boot=0)
    text = " ".join(str(w.message) for w in rec)
    assert "never observed untreated (units 'A1'" in text
    assert "in which no unit is untreated (periods 9, 10" in text


# ----------------------------------------------------------------------------------------------
# 2. against a known truth (simulation)
# ----------------------------------------------------------------------------------------------
SLOPE, BETA = 0.1, 1.5


def _truth_design(N=80, T=14):
    """Fixed design: 20 never-adopters, 60 adopters (cohorts 3-7), 45 of them withdrawn 3-5 periods
    after adoption, 15 never withdrawn."""
    r = np.random.default_rng(2024)
    coh = np.r_[np.full(20, np.nan), r.integers(3, 8, N - 20)]
    wd = coh + r.integers(3, 6, N)
    wd[:20] = np.nan
    wd[20 + r.choice(N - 20, 15, replace=False)] = np.nan
    u = np.repeat(np.arange(N), T)
    t = np.tile(np.arange(1, T + 1), N)
    return u, t, coh[u], wd[u], N, T


U, TT, G, W, N_UNITS, N_PERIODS = _truth_design()
TREATED = TT >= G
AFTER = TREATED & (TT >= W)
E_BAR = float(np.mean((TT - W)[AFTER]))
# planted: 2.0 during support; after it 1.0 + SLOPE * (event time - its mean) + BETA * (fidelity - its mean),
# so that the mean effect after support is exactly 1.0 (ratio 0.5) and the after-support line in event time
# starts at 1 - SLOPE * E_BAR (level change -1 - SLOPE * E_BAR)
TRUTH = {"effect_during": 2.0, "effect_after": 1.0, "difference": -1.0, "sustainment_ratio": 0.5,
         "level_change": -1.0 - SLOPE * E_BAR, "slope_change": SLOPE, "fidelity_slope": BETA}


def _truth_panel(seed):
    r = np.random.default_rng(seed)
    f = np.where(AFTER, r.uniform(0.4, 1.0, U.size), np.nan)
    tau = np.where(AFTER, 1.0 + SLOPE * (TT - W - E_BAR) + BETA * (np.nan_to_num(f) - np.nanmean(f)),
                   np.where(TREATED, 2.0, 0.0))
    period_fe = 0.2 * np.arange(1, N_PERIODS + 1) + r.normal(0, 0.3, N_PERIODS)
    y = r.normal(0, 1, N_UNITS)[U] + period_fe[TT - 1] + tau + r.normal(0, 1, U.size)
    return pd.DataFrame({"site_id": U, "period": TT, "adoption_period": G, "withdrawal_period": W, "y": y,
                         "fidelity_index": f})


def test_recovers_planted_truth_with_calibrated_intervals():
    """Known truth over 400 seeds (n_boot=199 each): 95% percentile intervals cover the planted values in
    90-99% of the seeds (Monte-Carlo SE of a 95% coverage: 1.1 points), the Fieller interval of the ratio
    too, and the mean estimates are within 3 Monte-Carlo SEs of the truth (unbiased)."""
    n_seeds = 400
    est = {k: [] for k in TRUTH}
    cover = {k: [] for k in TRUTH}
    fieller = []
    t0 = time.perf_counter()
    for s in range(n_seeds):
        res = support_withdrawal_effects(_truth_panel(s), outcome="y", fidelity="fidelity_index", n_boot=199, seed=s)
        tab = res.to_frame().set_index("quantity")
        for k, v in TRUTH.items():
            est[k].append(tab.loc[k, "estimate"])
            cover[k].append(tab.loc[k, "ci_low"] <= v <= tab.loc[k, "ci_high"])
        fieller.append(res.ratio_ci_low_fieller <= 0.5 <= res.ratio_ci_high_fieller)
        assert res.n_boot_failed == 0
    elapsed = time.perf_counter() - t0
    for k, v in TRUTH.items():
        e = np.array(est[k])
        mc_se = e.std(ddof=1) / np.sqrt(n_seeds)
        assert abs(e.mean() - v) < 3 * mc_se, (k, e.mean(), v, mc_se)
        assert 0.90 <= np.mean(cover[k]) <= 0.99, (k, np.mean(cover[k]))
    assert 0.90 <= np.mean(fieller) <= 0.99, np.mean(fieller)
    assert elapsed < 60, elapsed


# ----------------------------------------------------------------------------------------------
# the vectorised bootstrap against a direct one
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["simulated", "hand"])
def test_bootstrap_equals_refitting_on_resampled_units(name):
    """Each bootstrap replicate equals the estimator refitted on the resampled panel in which every
    copy of a unit drawn several times is a unit of its own (the draws are numpy's default_rng(seed)
    .integers(0, n_units, (n_boot, n_units)) over the sorted units)."""
    df = _panel(name)
    n_boot, seed = 12, 5
    res = _quiet(df, **R_COLS, n_boot=n_boot, seed=seed)
    units = np.sort(df["unit"].unique())
    draws = np.random.default_rng(seed).integers(0, units.size, size=(n_boot, units.size))
    by_unit = {u: g for u, g in df.groupby("unit")}
    compared = 0
    for b in range(n_boot):
        if res.boot.iloc[b].isna().all():  # a failed resample (left out of the intervals)
            continue
        parts = [by_unit[units[j]].assign(unit=f"copy{k:03d}") for k, j in enumerate(draws[b])]
        direct = _quiet(pd.concat(parts, ignore_index=True), **R_COLS, n_boot=0).to_frame()
        compared += 1
        assert _rel(res.boot.iloc[b][direct["quantity"]].to_numpy(), direct["estimate"].to_numpy()) < 1e-9
    assert compared >= 8


def test_bootstrap_summaries_and_failures():
    df = _panel("hand")
    with pytest.warns(ScaleupWarning, match="bootstrap resamples a quantity could not be computed"):
        res = support_withdrawal_effects(df, **R_COLS, n_boot=199, seed=3)
    assert 0 < res.n_boot_failed < 199
    assert res.boot.isna().all(axis=1).sum() == res.n_boot_failed
    ok = res.boot.dropna()
    tab = res.to_frame().set_index("quantity")
    for m in QUANTITIES:
        assert tab.loc[m, "se"] == pytest.approx(ok[m].std(ddof=1), rel=1e-12)
        assert tab.loc[m, "ci_low"] == pytest.approx(ok[m].quantile(0.025), rel=1e-12)
        assert tab.loc[m, "ci_high"] == pytest.approx(ok[m].quantile(0.975), rel=1e-12)
    assert (res.event_study["n_boot_failed"] >= res.n_boot_failed).all()
    # Fieller from the bootstrap covariance of the two effects
    from scipy import stats

    V = np.cov(ok[["effect_during", "effect_after"]].to_numpy(), rowvar=False)
    z = stats.norm.isf(0.025)
    a, s = res.effect_during, res.effect_after
    A, B, C = a * a - z * z * V[0, 0], a * s - z * z * V[0, 1], s * s - z * z * V[1, 1]
    assert res.fieller_type == "bounded" and A > 0
    lo, hi = (B - np.sqrt(B * B - A * C)) / A, (B + np.sqrt(B * B - A * C)) / A
    assert (res.ratio_ci_low_fieller, res.ratio_ci_high_fieller) == pytest.approx((lo, hi), rel=1e-12)


def test_fieller_unbounded_when_effect_during_is_null():
    """No effect during support: the Fieller set of after / during is unbounded."""
    df = _truth_panel(1)
    df["y"] = df["y"] - 2.0 * (TREATED & ~AFTER)
    res = support_withdrawal_effects(df, outcome="y", n_boot=199, seed=1)
    assert abs(res.effect_during) < 0.3
    assert res.fieller_type in ("exclusive", "unbounded")
    assert np.isinf(res.ratio_ci_low_fieller) and np.isinf(res.ratio_ci_high_fieller)
    assert "unbounded" in res.summary(language="en")


# ----------------------------------------------------------------------------------------------
# 3. invariances
# ----------------------------------------------------------------------------------------------
def _frames(res):
    return res.to_frame(), res.event_study, res.effects


def test_row_order_does_not_matter():
    df = _panel("simulated")
    a = _quiet(df, **R_COLS, n_boot=49, seed=2)
    b = _quiet(df.sample(frac=1.0, random_state=11), **R_COLS, n_boot=49, seed=2)
    for x, y in zip(_frames(a), _frames(b)):
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-12)
    assert a.fieller_type == b.fieller_type and a.ratio_ci_low_fieller == pytest.approx(b.ratio_ci_low_fieller)


def test_unit_labels_do_not_matter():
    df = _panel("simulated")
    a = _quiet(df, **R_COLS, n_boot=49, seed=2)
    # the same sort order: identical bootstrap draws, identical intervals
    same = _quiet(df.assign(unit="site-" + df["unit"]), **R_COLS, n_boot=49, seed=2)
    pd.testing.assert_frame_equal(a.to_frame(), same.to_frame(), check_exact=False, rtol=1e-12)
    # any relabelling (here integers in scrambled order): identical point estimates
    codes = dict(zip(sorted(df["unit"].unique()), np.random.default_rng(0).permutation(df["unit"].nunique())))
    other = _quiet(df.assign(unit=df["unit"].map(codes)), **R_COLS, n_boot=0)
    assert _rel(other.to_frame()["estimate"], a.to_frame()["estimate"]) < 1e-12
    assert _rel(other.event_study["estimate"], a.event_study["estimate"]) < 1e-12


@pytest.mark.parametrize("shift,scale", [(-7.0, 2.5), (100.0, 0.01), (3.0, -1.5)])
def test_affine_outcome_change(shift, scale):
    """y -> shift + scale * y: effects, differences, level and slope changes and fidelity slope scale by
    ``scale``, the ratio does not change; with the same seed the intervals follow (swapped if scale < 0)."""
    df = _panel("simulated")
    a = _quiet(df, **R_COLS, n_boot=49, seed=4).to_frame().set_index("quantity")
    b = _quiet(df.assign(y=shift + scale * df["y"]), **R_COLS, n_boot=49, seed=4).to_frame().set_index("quantity")
    scaled = [m for m in QUANTITIES if m != "sustainment_ratio"]
    assert _rel(b.loc[scaled, "estimate"], scale * a.loc[scaled, "estimate"]) < 1e-9
    assert _rel(b.loc[scaled, "se"], abs(scale) * a.loc[scaled, "se"]) < 1e-8
    lo, hi = ("ci_low", "ci_high") if scale > 0 else ("ci_high", "ci_low")
    assert _rel(b.loc[scaled, lo], scale * a.loc[scaled, "ci_low"]) < 1e-8
    assert _rel(b.loc[scaled, hi], scale * a.loc[scaled, "ci_high"]) < 1e-8
    cols = ["estimate", "ci_low", "ci_high"]
    assert _rel(b.loc["sustainment_ratio", cols], a.loc["sustainment_ratio", cols]) < 1e-9


def test_weights_scale_and_unit_weights():
    df = _panel("simulated")
    a = _quiet(df, **R_COLS, n_boot=19, seed=1).to_frame()
    b = _quiet(df.assign(w=df["w"] * 1000), **R_COLS, n_boot=19, seed=1).to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    # weight=None is weight 1
    c = _quiet(df, **{**R_COLS, "weight": None}, n_boot=0).to_frame()
    d = _quiet(df.assign(w=1.0), **R_COLS, n_boot=0).to_frame()
    assert _rel(c["estimate"], d["estimate"]) < 1e-12


# ----------------------------------------------------------------------------------------------
# identification: separate groups of units and periods
# ----------------------------------------------------------------------------------------------
def test_disconnected_blocks_are_fitted_separately():
    """Two blocks observed in disjoint periods: the fixed effects are identified within each block, so
    the effects equal those of the two blocks analysed apart; a unit untreated in one block's periods
    and treated in the other's cannot be imputed ('not linked')."""
    df = _panel("simulated")
    b1 = df[df["period"] <= 12]
    b2 = df.assign(unit="B" + df["unit"], period=df["period"] + 100, cohort=df["cohort"] + 100,
                   withdrawal=df["withdrawal"] + 100, y=df["y"] * 2 + 5)
    # a unit untreated in period 1 only (its one untreated cell is absorbed by its own fixed effect: it does
    # not change the fit of block 1), treated in periods 101-102
    bridge = pd.DataFrame({"unit": "X", "period": [1, 101, 102], "y": [1.0, 30.0, 31.0],
                           "cohort": 101.0, "withdrawal": np.nan, "w": 1.0, "fidelity": np.nan})
    with pytest.warns(ScaleupWarning, match=r"2 whose unit and period are not linked"):
        both = support_withdrawal_effects(pd.concat([b1, b2, bridge], ignore_index=True), **R_COLS, n_boot=0)
    assert both.n_excluded == 2
    one, two = (_quiet(b, **R_COLS, n_boot=0) for b in (b1, b2))
    expected = pd.concat([one.effects, two.effects]).set_index(["unit", "period"])["estimate"]
    got = both.effects.set_index(["unit", "period"])["estimate"]
    assert _rel(got.loc[expected.index], expected) < 1e-9


# ----------------------------------------------------------------------------------------------
# options and special cases
# ----------------------------------------------------------------------------------------------
def test_cohort_zero_means_never_adopts():
    df = _panel("hand")
    a = _quiet(df, **R_COLS, n_boot=0).to_frame()
    b = _quiet(df.assign(cohort=df["cohort"].fillna(0)), **R_COLS, n_boot=0).to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_missing_outcome_rows_are_dropped_with_a_warning():
    df = _panel("simulated").reset_index(drop=True)
    gap = df.copy()
    gap.loc[[3, 50, 51], "y"] = np.nan
    with pytest.warns(RowsOmittedWarning, match=r"3 row\(s\) \(first: 3, 50, 51\) have no outcome value"):
        a = support_withdrawal_effects(gap, **R_COLS, n_boot=0)
    b = _quiet(df.drop(index=[3, 50, 51]), **R_COLS, n_boot=0)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_fidelity_missing_in_after_cells():
    df = _panel("hand")
    gap = df.copy()
    gap.loc[(gap["unit"] == "U1") & (gap["period"] == 8), "fidelity"] = np.nan
    with pytest.warns(RowsOmittedWarning, match="1 unit-period"):
        res = support_withdrawal_effects(gap, **R_COLS, n_boot=0)
    eff = res.effects.merge(gap, on=["unit", "period"])
    sub = eff[eff["phase"].eq("after") & eff["fidelity"].notna()]
    slope = np.polyfit(sub["fidelity"], sub["estimate"], 1, w=np.sqrt(sub["w"]))[0]
    assert res.fidelity_slope == pytest.approx(slope, rel=1e-9)
    tab = res.to_frame().set_index("quantity")
    assert tab.loc["fidelity_slope", "n_cells"] == 6 and tab.loc["effect_after", "n_cells"] == 7
    # without fidelity: no fidelity row, NaN property
    plain = _quiet(df, **{**R_COLS, "fidelity": None}, n_boot=0)
    assert "fidelity_slope" not in set(plain.to_frame()["quantity"]) and np.isnan(plain.fidelity_slope)


def test_single_event_time_after_withdrawal():
    """All withdrawals in the last period: the slope change is not estimable; the level change is the
    difference of the mean effects after and during support of the withdrawn units."""
    df = _panel("hand")
    df["withdrawal"] = np.where(df["withdrawal"].notna(), 8.0, np.nan)
    with pytest.warns(ScaleupWarning, match="slope change is not estimable"):
        res = support_withdrawal_effects(df, **R_COLS, n_boot=0)
    assert np.isnan(res.slope_change)
    eff = res.effects[res.effects["event_time"].notna()]
    mean = {p: np.average(g["estimate"], weights=g["weight"]) for p, g in eff.groupby("phase")}
    assert res.level_change == pytest.approx(mean["after"] - mean["during"], rel=1e-12)


def test_withdrawal_beyond_the_panel_counts_as_during():
    df = _panel("hand")
    a = _quiet(df, **R_COLS, n_boot=0)
    b = _quiet(df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U3", 20.0)), **R_COLS, n_boot=0)
    assert b.to_frame().set_index("quantity").loc["effect_after", "n_cells"] == 5
    assert b.effect_during != a.effect_during
    assert (b.event_study["event_time"].min()) == -16


def test_infinite_withdrawal_means_not_withdrawn():
    df = _panel("hand")
    a = _quiet(df, **R_COLS, n_boot=0)
    b = _quiet(df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U4", np.inf)), **R_COLS, n_boot=0)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    _err(df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U4", -np.inf)), "are minus infinity")


def test_same_seed_same_intervals():
    df = _panel("simulated")
    a = _quiet(df, **R_COLS, n_boot=99, seed=7)
    b = _quiet(df, **R_COLS, n_boot=99, seed=7)
    c = _quiet(df, **R_COLS, n_boot=99, seed=np.random.default_rng(7))
    d = _quiet(df, **R_COLS, n_boot=99, seed=8)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    pd.testing.assert_frame_equal(a.to_frame(), c.to_frame())
    pd.testing.assert_frame_equal(a.boot, b.boot)
    assert not np.allclose(a.to_frame()["ci_low"], d.to_frame()["ci_low"])


def test_no_bootstrap():
    res = _quiet(_panel("simulated"), **R_COLS, n_boot=0)
    tab = res.to_frame()
    assert tab[["se", "ci_low", "ci_high"]].isna().all().all()
    assert res.event_study[["se", "ci_low", "ci_high"]].isna().all().all()
    assert res.fieller_type == "none" and len(res.boot) == 0
    assert "No bootstrap" in res.summary(language="en")
    ax = res.plot_event_study()  # points without bars
    assert ax.get_legend().get_title().get_text() == ""


def test_performance_500_units_20_periods():
    """500 units x 20 periods, n_boot=999: a few seconds at most (about 0.35 s measured)."""
    r = np.random.default_rng(0)
    n, T = 500, 20
    coh = np.where(r.random(n) < 0.25, np.nan, r.integers(4, 12, n))
    wd = np.where(r.random(n) < 0.2, np.nan, coh + r.integers(3, 7, n))
    u, t = np.repeat(np.arange(n), T), np.tile(np.arange(1, T + 1), n)
    tr, af = t >= coh[u], t >= wd[u]
    y = r.normal(0, 1, n)[u] + 0.1 * t + np.where(af, 1.0, np.where(tr, 2.0, 0)) + r.normal(0, 1, n * T)
    df = pd.DataFrame({"site_id": u, "period": t, "adoption_period": coh[u], "withdrawal_period": wd[u], "y": y})
    t0 = time.perf_counter()
    res = support_withdrawal_effects(df, outcome="y", n_boot=999, seed=1)
    assert time.perf_counter() - t0 < 10  # generous for slow CI machines
    assert res.ratio == pytest.approx(0.5, abs=0.1)


# ----------------------------------------------------------------------------------------------
# 4. bad input
# ----------------------------------------------------------------------------------------------
def _err(df, match, **kw):
    with pytest.raises(ScaleupDataError, match=match):
        _quiet(df, **{**R_COLS, "n_boot": 0, **kw})


def test_missing_columns():
    df = _panel("hand")
    _err(df.drop(columns="withdrawal"), r"table 'data': missing column\(s\) \['withdrawal'\]")
    _err(df, r"missing column\(s\) \['site_id'\]", unit="site_id")


def test_duplicated_unit_period_rows_are_named():
    df = _panel("hand")
    dup = pd.concat([df, df.iloc[[4]]], ignore_index=True)
    _err(dup, r"columns 'unit' and 'period': 2 row\(s\) \(first: 4, 48\) share a \(unit, period\) pair "
              r"\(pairs \('U1', 5\)\)")


def test_withdrawal_not_after_cohort():
    df = _panel("hand")
    bad = df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U2", 3.0))
    _err(bad, r"support_withdrawal_effects: table 'data', column 'withdrawal' \(argument 'withdrawal'\): 8 "
              r"row\(s\) \(first: 8, 9, 10, 11, 12, \.\.\. \(3 more\)\) are not after the unit's cohort")
    earlier = df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U2", 2.0))
    _err(earlier, "are not after the unit's cohort")


def test_withdrawal_without_cohort():
    df = _panel("hand")
    bad = df.assign(withdrawal=df["withdrawal"].where(df["unit"] != "U5", 4.0))
    _err(bad, r"8 row\(s\) \(first: 32, 33, .*have a withdrawal period but no cohort")


def test_non_numeric_values():
    df = _panel("hand").astype({"y": object})
    df.loc[5, "y"] = "n/a"
    _err(df, r"column 'y' \(argument 'outcome'\): 1 row\(s\) \(first: 5\) are not numeric \(values 'n/a'\)")
    df = _panel("hand")
    _err(df.assign(period=df["period"] + 0.5), r"column 'period' \(argument 'period'\): 48 row\(s\).*are not whole "
                                               "numbers")
    _err(df.assign(w=np.where(df.index == 7, 0.0, df["w"])), r"column 'w' \(argument 'weight'\): 1 row\(s\) "
                                                             r"\(first: 7\) are not positive")
    _err(df.assign(w=np.where(df.index == 7, np.nan, df["w"])), r"1 row\(s\) \(first: 7\) are missing")


def test_cohort_changing_within_a_unit():
    df = _panel("hand")
    df.loc[2, "cohort"] = 4
    _err(df, r"column 'cohort' \(argument 'cohort'\): 8 row\(s\).*differ within their unit \(units 'U1'\)")
    _err(df.assign(cohort=df["cohort"].fillna(0), period=df["period"] - 1), "are 0 while the panel has periods <= 0")
    _err(df.assign(unit=df["unit"].where(df.index != 9)), r"column 'unit' \(argument 'unit'\): 1 row\(s\) "
                                                          r"\(first: 9\) are missing")


def test_no_after_or_no_during_support():
    df = _panel("hand")
    _err(df.assign(withdrawal=np.nan), "no unit-period after support, because no adopting unit's support was "
                                       "withdrawn within the panel")
    _err(df.assign(withdrawal=np.where(df["withdrawal"].notna(), 30.0, np.nan)), "no unit-period after support")
    # every treated unit-period after its withdrawal: the during rows are not observed
    keep = df[~((df["cohort"].notna()) & (df["period"] >= df["cohort"]) &
                ((df["withdrawal"].isna()) | (df["period"] < df["withdrawal"])))]
    _err(keep, "no unit-period during support")
    # no untreated unit-period at all
    only = df[df["cohort"].notna() & (df["period"] >= df["cohort"])]
    _err(only, "no untreated unit-period")


def test_bad_arguments():
    df = _panel("hand")
    _err(df, "argument 'level' must be a coverage", level=95)
    _err(df, "argument 'n_boot' must be an integer >= 0", n_boot=-1)
    _err(df, "must name different columns", fidelity="y")
    with pytest.raises(ScaleupDataError, match="table 'data' has no rows"):
        support_withdrawal_effects(df.iloc[:0], **R_COLS)
    with pytest.raises(ScaleupDataError, match="must be a pandas DataFrame"):
        support_withdrawal_effects(df.to_dict(), **R_COLS)


# ----------------------------------------------------------------------------------------------
# the result object
# ----------------------------------------------------------------------------------------------
def test_result_object_summary_and_plot():
    import matplotlib.axes

    res = _quiet(_panel("simulated"), **R_COLS, n_boot=99, seed=1)
    assert isinstance(res, SupportWithdrawalResult)
    assert list(res.to_frame().columns) == ["quantity", "estimate", "se", "ci_low", "ci_high", "n_cells", "n_units"]
    assert list(res.to_frame()["quantity"]) == list(QUANTITIES)
    assert list(res.event_study.columns) == ["event_time", "phase", "estimate", "se", "ci_low", "ci_high", "n_cells",
                                             "n_units", "n_boot_failed"]
    assert list(res.effects.columns) == ["unit", "period", "phase", "event_time", "weight", "estimate"]
    assert res.effect_during == res.to_frame()["estimate"].iloc[0]
    assert len(repr(res)) < 400 and repr(res).startswith("SupportWithdrawalResult(")
    for lang in ("en", "fr"):
        text = res.summary(language=lang)
        assert "Borusyak" in text
    text = res.summary(language="en")
    assert "sustainment ratio (after / during)" in text and "Fieller" in text and "event time" in text
    assert "<pre" in res._repr_html_()
    ax = res.plot_event_study()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_xlabel() == "Periods since the end of support"
    assert any(np.allclose(line.get_xdata(), -0.5) for line in ax.get_lines())  # the withdrawal
    ax2 = res.plot_event_study(title="T", xlabel="X", ylabel="Y", ax=ax)
    assert ax2 is ax and ax.get_title() == "T" and ax.get_ylabel() == "Y"
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.n_boot = 5
