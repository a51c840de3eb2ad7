"""``site_effects``: site-level difference-in-differences effects (hand-computed example)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa


def _tiny():
    # Two adopting sites (A adopts in period 3, B in period 2) and two comparison sites (C, D),
    # periods 1..4, indicator "Y" (mean type); n = 10 everywhere, sd = 2 everywhere.
    means = {
        "A": [10, 12, 20, 22],
        "B": [5, 9, 9, 11],
        "C": [10, 11, 12, 13],
        "D": [20, 21, 22, 23],
    }
    rows = [
        (s, t + 1, "Y", 10, np.nan, float(m), 2.0)
        for s, ms in means.items()
        for t, m in enumerate(ms)
    ]
    outcomes = pd.DataFrame(rows, columns=["site_id", "period", "indicator_id", "n", "events", "mean", "sd"])
    sites = pd.DataFrame(
        {
            "site_id": ["A", "B", "C", "D"],
            "adoption_period": pd.array([3, 2, None, None], dtype="Int64"),
            "phase": ["pilot", "scale-up", "not-adopted", "not-adopted"],
        }
    )
    return outcomes, sites


def test_hand_computed_effects_and_variances():
    outcomes, sites = _tiny()
    es = sa.site_effects(outcomes, sites, "Y").set_index("site_id")
    # Comparison pooled means (C and D, n = 10 each): periods 1..4 -> 15, 16, 17, 18.
    # Site A (adopts at 3): before = mean(10, 12) = 11, after = mean(20, 22) = 21 -> +10;
    #   comparison before = mean(15, 16) = 15.5, after = mean(17, 18) = 17.5 -> +2; effect = 8.
    # Site B (adopts at 2): before = 5, after = mean(9, 9, 11) = 29/3 -> +14/3;
    #   comparison before = 15, after = 17 -> +2; effect = 14/3 - 2 = 8/3.
    assert es.loc["A", "yi"] == pytest.approx(8.0, rel=1e-12)
    assert es.loc["B", "yi"] == pytest.approx(8.0 / 3.0, rel=1e-12)
    # Variance of a pooled mean over N individuals with sd 2: 4 / N.
    # A: before N = 20, after N = 20; comparison before N = 40, after N = 40 -> 4/20 + 4/20 + 4/40 + 4/40
    assert es.loc["A", "vi"] == pytest.approx(0.6, rel=1e-12)
    # B: before N = 10, after N = 30; comparison before N = 20, after N = 60
    assert es.loc["B", "vi"] == pytest.approx(4 / 10 + 4 / 30 + 4 / 20 + 4 / 60, rel=1e-12)
    assert es.loc["A", "phase"] == "pilot" and es.loc["B", "phase"] == "scale-up"
    assert es.loc["B", "n_before"] == 10 and es.loc["B", "n_after"] == 30


def test_washin_drops_early_periods():
    outcomes, sites = _tiny()
    es = sa.site_effects(outcomes, sites, "Y", washin_periods=1).set_index("site_id")
    # B with a wash-in of 1: after = periods 3, 4 -> mean(9, 11) = 10 -> +5; comparison 17.5 - 15 = 2.5
    assert es.loc["B", "yi"] == pytest.approx(2.5, rel=1e-12)
    # A with a wash-in of 1: after = period 4 only -> 22 - 11 = 11; comparison 18 - 15.5 = 2.5
    assert es.loc["A", "yi"] == pytest.approx(8.5, rel=1e-12)


def test_site_without_after_window_is_reported():
    outcomes, sites = _tiny()
    with pytest.warns(sa.RowsOmittedWarning, match=r"1 adopting site\(s\) left out.*A"):
        es = sa.site_effects(outcomes, sites, "Y", washin_periods=2)
    assert list(es["site_id"]) == ["B"]


def test_errors_name_the_problem():
    outcomes, sites = _tiny()
    with pytest.raises(sa.ScaleupDataError, match="no row for indicator 'Z'"):
        sa.site_effects(outcomes, sites, "Z")
    with pytest.raises(sa.ScaleupDataError, match="no site with phase 'never'"):
        sa.site_effects(outcomes, sites, "Y", comparison_phase="never")
    with pytest.raises(sa.ScaleupDataError, match="washin_periods"):
        sa.site_effects(outcomes, sites, "Y", washin_periods=-1)


def test_proportion_indicator_hand_computed():
    # Site A adopts in period 2; C is the comparison; indicator "P" (proportion), n = 100 everywhere.
    # events: A 20 -> 40, C 30 -> 35.  Effect = (0.40 - 0.20) - (0.35 - 0.30) = 0.15.
    # Wald variance of each proportion p (1 - p) / 100: 0.16/100 + 0.24/100 + 0.21/100 + 0.2275/100.
    rows = [("A", 1, "P", 100, 20, np.nan, np.nan), ("A", 2, "P", 100, 40, np.nan, np.nan),
            ("C", 1, "P", 100, 30, np.nan, np.nan), ("C", 2, "P", 100, 35, np.nan, np.nan)]
    outcomes = pd.DataFrame(rows, columns=["site_id", "period", "indicator_id", "n", "events", "mean", "sd"])
    outcomes["events"] = outcomes["events"].astype("Int64")
    sites = pd.DataFrame({"site_id": ["A", "C"], "adoption_period": pd.array([2, None], dtype="Int64"),
                          "phase": ["scale-up", "not-adopted"]})
    es = sa.site_effects(outcomes, sites, "P").set_index("site_id")
    assert es.loc["A", "yi"] == pytest.approx(0.15, rel=1e-12)
    assert es.loc["A", "vi"] == pytest.approx((0.16 + 0.24 + 0.21 + 0.2275) / 100, rel=1e-12)


# ------------------------------------------------------------------------ voltage_drop: a pilot effect of ~0
def _record(call):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = call()
    foreign = [f"{w.category.__name__}: {w.message}" for w in rec if not issubclass(w.category, sa.ScaleupWarning)]
    assert not foreign, foreign  # no numpy RuntimeWarning
    return res, [str(w.message) for w in rec]


def test_voltage_drop_of_a_pilot_effect_whose_square_underflows():
    """Effect sizes x 1e-300 (their variances unchanged): the pilot effect's square underflows, which
    used to end in a raw ZeroDivisionError. The ratio and its delta-method SE are computed as
    sqrt(V_s - 2 r C_as + r^2 V_a) / |a|, and a ScaleupWarning says the ratio is not informative."""
    rng = np.random.default_rng(5)
    d = pd.DataFrame({"phase": ["pilot"] * 6 + ["scale-up"] * 12, "yi": rng.normal(1.0, 1.0, 18) * 1e-300,
                      "vi": rng.uniform(0.5, 2.0, 18)})
    res, msgs = _record(lambda: sa.voltage_drop(data=d, levels=["pilot", "scale-up"]))
    assert len(msgs) == 1, msgs
    for part in ("voltage_drop(): the effect of the pilot phase 'pilot' is ", "model(s) ['meta_regression', "
                 "'subgroups']", "too close to 0 to divide by", "not informative (delta-method SE",
                 "Report the difference (scaled - pilot) instead"):
        assert part in msgs[0], msgs[0]
    row = res.to_frame().set_index("model").loc["meta_regression"]
    V = res.meta_regression.vcov.to_numpy()
    a, s = row["pilot_estimate"], row["scaled_estimate"]
    va, vs, cas = V[0, 0], V[0, 0] + V[1, 1] + 2 * V[0, 1], V[0, 0] + V[0, 1]
    r = s / a
    assert 0 < abs(a) < 1e-290 and row["ratio"] == pytest.approx(r, rel=1e-12)
    se = np.sqrt(vs - 2 * r * cas + r * r * va) / abs(a)
    assert 1e280 < se < 1e310 and row["ratio_se"] == pytest.approx(se, rel=1e-12)
    z = 1.959963984540054
    assert row["ratio_ci_low_delta"] == pytest.approx(r - z * se, rel=1e-12)
    assert row["fieller_type"] == "unbounded" and np.isnan(row["fieller_root1"])
    assert row["difference"] == pytest.approx(s - a, abs=1e-310) and np.isfinite(row["difference_se"])


@pytest.mark.parametrize("pilot, ratio, fragment", [
    (0.0, np.nan, "is 0 (standard error 0.1; model(s) ['estimates']), too close to 0 to divide by: the ratio "
                  "scaled / pilot is undefined (NaN)"),
    (1e-300, 0.6, "is 1e-300 (standard error 0.1; model(s) ['estimates']), too close to 0 to divide by"),
])
def test_voltage_drop_of_two_estimates_with_a_null_pilot(pilot, ratio, fragment):
    res, msgs = _record(lambda: sa.voltage_drop(pilot, 0.6 * pilot, pilot_se=0.1, scaled_se=0.05))
    assert len(msgs) == 1 and fragment in msgs[0], msgs
    row = res.to_frame().iloc[0]
    if np.isnan(ratio):
        assert np.isnan(row["ratio"]) and np.isnan(row["ratio_se"])
    else:
        assert row["ratio"] == pytest.approx(ratio, rel=1e-12)
        assert row["ratio_se"] == pytest.approx(np.sqrt(0.05**2 + 0.36 * 0.1**2) / pilot, rel=1e-12)


def test_voltage_drop_of_usual_estimates_does_not_warn():
    res, msgs = _record(lambda: sa.voltage_drop(0.50, 0.30, pilot_se=0.10, scaled_se=0.05))
    assert msgs == [] and res.to_frame().iloc[0]["ratio"] == pytest.approx(0.6, rel=1e-12)
