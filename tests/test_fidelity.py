"""Tests of scaleup_analysis.fidelity: hand-computed examples and simulation recovery.

No R package computes these fidelity measures, so (CONTRIBUTING.md) they are checked against small
examples computed by hand (stated below) and against simulated data with a known truth.
"""

from __future__ import annotations

import inspect
import math

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError

REL = 1e-12  # closed-form arithmetic on a handful of numbers: 1e-12 relative (well inside 1e-6)

# --------------------------------------------------------------------------- hand example
# components: C1 core, weight 2, scale 0-4; C2 core, weight 1, scale 1-5; P1 adaptable (ignored).
COMPONENTS = pd.DataFrame({
    "component_id": ["C1", "C2", "P1"], "name": ["a", "b", "c"], "core": [True, True, False],
    "weight": [2.0, 1.0, 1.0], "scale_min": [0.0, 1.0, 0.0], "scale_max": [4.0, 5.0, 1.0],
})
_R = [  # site, session, period, rater, component, score
    ("A", "A1", 1, "r1", "C1", 3), ("A", "A1", 1, "r1", "C2", 5), ("A", "A1", 1, "r1", "P1", 0),
    ("A", "A1", 1, "r2", "C1", 2), ("A", "A1", 1, "r2", "C2", 3),
    ("A", "A2", 1, "r1", "C1", 4), ("A", "A2", 1, "r1", "C2", 3),
    ("A", "A3", 2, "r1", "C1", 1),
    ("B", "B1", 1, "r3", "C1", 4), ("B", "B1", 1, "r3", "C2", 5),
    ("B", "B2", 1, "r3", "C1", 0), ("B", "B2", 1, "r3", "C2", 1),
    ("B", "B3", 1, "r3", "C1", 4), ("B", "B3", 1, "r3", "C2", 1),
]
RATINGS = pd.DataFrame(_R, columns=["site_id", "session_id", "period", "rater_id", "component_id", "score"])
RATINGS["score"] = RATINGS["score"].astype(float)
DELIVERY = pd.DataFrame({
    "site_id": ["A", "A", "B", "B"], "period": [1, 2, 1, 2],
    "sessions_planned": [10, 10, 0, 5], "sessions_delivered": [8, 12, 0, 5],
    "eligible": [200, 100, 50, 40], "reached": [150, 90, 10, 40],
    "staff_eligible": [4, 4, 3, 3], "staff_trained": [4, 4, 2, 2], "cost": [1.0, 1.0, 1.0, 1.0],
})
SITES = pd.DataFrame({"site_id": ["A", "B"], "rss_code": ["06", "06"]})

# Session adherence by hand (rescaled score x* = (x - min)/(max - min), weighted mean over core):
#  A1: r1 (2*0.75 + 1*1.0)/3 = 5/6, r2 (2*0.5 + 1*0.5)/3 = 1/2  -> mean 2/3
#  A2: r1 (2*1.0 + 1*0.5)/3 = 5/6
#  A3: r1 only C1 rated: 0.25 (weight renormalised)
#  B1: 1, B2: 0, B3: (2*1 + 0)/3 = 2/3
SESSION_TRUTH = {"A1": 2 / 3, "A2": 5 / 6, "A3": 0.25, "B1": 1.0, "B2": 0.0, "B3": 2 / 3}


def test_session_adherence_hand_example():
    out = sa.session_adherence(RATINGS, COMPONENTS).set_index("session_id")
    for s, a in SESSION_TRUTH.items():
        assert out.loc[s, "adherence"] == pytest.approx(a, rel=REL, abs=1e-15)  # hand value, 1e-12
    assert out.loc["A1", "n_raters"] == 2 and out.loc["A3", "n_core_rated"] == 1
    assert out.loc["A1", "n_core_rated"] == 2  # P1 (adaptable) is not counted


def test_fidelity_index_hand_example():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY).set_index(["site_id", "period"])
    # site-period adherence = mean of session adherence
    a_a1 = (2 / 3 + 5 / 6) / 2  # 0.75
    a_b1 = (1 + 0 + 2 / 3) / 3  # 0.5556
    assert idx.loc[("A", 1), "adherence"] == pytest.approx(a_a1, rel=REL)
    assert idx.loc[("A", 1), "adherence_se"] == pytest.approx(abs(5 / 6 - 2 / 3) / 2, rel=REL)  # sd/sqrt(2)
    assert idx.loc[("A", 2), "adherence"] == pytest.approx(0.25, rel=REL)
    assert np.isnan(idx.loc[("A", 2), "adherence_se"])  # one session
    assert idx.loc[("B", 1), "adherence"] == pytest.approx(a_b1, rel=REL)
    # delivery: dose = delivered/planned, coverage = reached/eligible, exposure = min(dose,1)*coverage
    assert idx.loc[("A", 1), ["dose", "coverage", "exposure"]].tolist() == pytest.approx([0.8, 0.75, 0.6], rel=REL)
    assert idx.loc[("A", 2), "dose"] == pytest.approx(1.2, rel=REL)  # reported uncapped
    assert idx.loc[("A", 2), "exposure"] == pytest.approx(0.9, rel=REL)  # capped at 1 x 0.9
    assert np.isnan(idx.loc[("B", 1), "dose"])  # sessions_planned = 0: undefined
    # composite, equal weights: (adherence + min(dose, 1) + coverage) / 3
    assert idx.loc[("A", 1), "fidelity_index"] == pytest.approx((0.75 + 0.8 + 0.75) / 3, rel=REL)
    assert idx.loc[("A", 2), "fidelity_index"] == pytest.approx((0.25 + 1.0 + 0.9) / 3, rel=REL)
    assert np.isnan(idx.loc[("B", 1), "fidelity_index"])  # dose missing
    # B2: delivery but no rated session -> kept, 0 sessions, adherence and index missing
    assert idx.loc[("B", 2), "n_sessions"] == 0 and np.isnan(idx.loc[("B", 2), "fidelity_index"])
    assert idx["band"].astype(object).where(idx["band"].notna(), None).tolist() == [
        "moderate", "moderate", None, None]
    assert idx.attrs["fidelity_weights"] == {"adherence": 1.0, "dose": 1.0, "coverage": 1.0}


def test_fidelity_index_custom_weights_and_without_delivery():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY, weights={"adherence": 2, "dose": 1, "coverage": 1})
    a1 = idx.set_index(["site_id", "period"]).loc[("A", 1), "fidelity_index"]
    assert a1 == pytest.approx((2 * 0.75 + 0.8 + 0.75) / 4, rel=REL)  # hand value
    only = sa.fidelity_index(RATINGS, COMPONENTS)
    np.testing.assert_allclose(only["fidelity_index"], only["adherence"], rtol=0)  # index = adherence
    assert "dose" not in only.columns and len(only) == 3
    with pytest.raises(ScaleupDataError, match="needs the delivery table"):
        sa.fidelity_index(RATINGS, COMPONENTS, weights={"adherence": 1, "dose": 1})


def test_fidelity_by_region_hand_example():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    reg = sa.fidelity_by(idx, ["rss_code", "period"], sites=SITES).set_index(["rss_code", "period"])
    # period 1: adherence pooled over the 5 sessions = (2*0.75 + 3*0.5556)/5; dose = (8+0)/(10+0);
    # coverage = (150+10)/(200+50)
    adh1 = (2 * 0.75 + 3 * (5 / 9)) / 5
    r1 = reg.loc[("06", 1)]
    assert (r1["n_sites"], r1["n_sessions"]) == (2, 5)
    assert r1["adherence"] == pytest.approx(adh1, rel=REL)
    assert r1["dose"] == pytest.approx(0.8, rel=REL)
    assert r1["coverage"] == pytest.approx(160 / 250, rel=REL)
    assert r1["fidelity_index"] == pytest.approx((adh1 + 0.8 + 0.64) / 3, rel=REL)
    # period 2: only A has rated sessions; dose (12+5)/(10+5) > 1 is capped in the index
    r2 = reg.loc[("06", 2)]
    assert r2["adherence"] == pytest.approx(0.25, rel=REL)
    assert r2["dose"] == pytest.approx(17 / 15, rel=REL)
    assert r2["fidelity_index"] == pytest.approx((0.25 + 1 + 130 / 140) / 3, rel=REL)
    assert list(reg["band"].astype(str)) == ["moderate", "moderate"]


def test_fidelity_by_site_period_returns_the_index():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    same = sa.fidelity_by(idx, ["site_id", "period"])
    for c in ("adherence", "dose", "coverage", "exposure", "fidelity_index"):
        np.testing.assert_allclose(same[c], idx[c], rtol=1e-15, equal_nan=True)  # identical arithmetic
    with pytest.raises(ScaleupDataError, match="pass the sites table"):
        sa.fidelity_by(idx, ["rss_code", "period"])


@pytest.mark.parametrize(
    "bands, values, expected",
    [
        ((0.5, 0.8), [1.0, 0.8, 0.7999, 0.51, 0.5, 0.0, np.nan],
         ["high", "high", "moderate", "moderate", "low", "low", None]),
        ((0.6, 0.9), [0.9, 0.89, 0.6, 0.61], ["high", "moderate", "low", "moderate"]),
    ],
)
def test_classify_fidelity_bands(bands, values, expected):
    got = sa.classify_fidelity(pd.Series(values), bands=bands)
    assert [None if pd.isna(v) else v for v in got] == expected
    assert got.cat.ordered and list(got.cat.categories) == ["low", "moderate", "high"]


def test_classify_fidelity_rejects_percentages_and_bad_bands():
    with pytest.raises(ScaleupDataError, match="not percentages"):
        sa.classify_fidelity([85.0])
    with pytest.raises(ScaleupDataError, match="low_max < high_min"):
        sa.classify_fidelity([0.5], bands=(0.8, 0.5))


@pytest.mark.parametrize("values, fragment", [
    (pd.Series([0.52, "0.63", 0.9], index=[10, 11, 12]), "1 value(s) are not numbers, at index 11 ('0.63')"),
    ([0.5, "0.63", 0.9, "high"], "2 value(s) are not numbers, at position 1 ('0.63'), 3 ('high')"),
    (pd.Series(["nan", 0.7]), "1 value(s) are not numbers, at index 0 ('nan')"),
])
def test_classify_fidelity_names_text_values_and_their_positions(values, fragment):
    with pytest.raises(ScaleupDataError) as err:
        sa.classify_fidelity(values)
    assert fragment in str(err.value) and "pd.to_numeric(values)" in str(err.value)


def test_plot_fidelity_refuses_an_empty_table():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    with pytest.raises(ScaleupDataError, match="plot_fidelity: table 'data' has no rows"):
        sa.plot_fidelity(idx.iloc[:0])
    with pytest.raises(ScaleupDataError, match=r"plot_fidelity: no rows to plot \(no site x period cell"):
        inspect.unwrap(sa.plot_fidelity)(idx.iloc[:0])  # its own check, beneath the decorators' (no blank figure)


def test_plot_fidelity_refuses_values_beyond_proportions():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    with pytest.raises(ScaleupDataError) as err:
        sa.plot_fidelity(idx.assign(fidelity_index=idx["fidelity_index"] * 100))
    assert "column 'fidelity_index' (argument 'value') is outside [0, 1]" in str(err.value)
    assert "pass proportions, not percentages" in str(err.value)
    # dose is uncapped (more sessions than planned): drawn in the colour of 1, not refused
    assert isinstance(sa.plot_fidelity(idx.assign(dose=idx["dose"] * 1.5), value="dose"), matplotlib.axes.Axes)
    with pytest.raises(ScaleupDataError, match=r"argument 'values' has 1 value\(s\) outside \[0, 1\] \(first: 2.0\)"):
        sa.classify_fidelity([0.5, 2.0])


# --------------------------------------------------------------------------- drift by hand
def test_fidelity_drift_hand_example():
    # Site A: periods 1-4, adherence .90 .80 .75 .60. With t centred (-1.5, -.5, .5, 1.5), Stt = 5,
    # Sty = -0.475 -> slope = -0.095; residuals (-.005, -.01, .035, -.02), RSS = 0.00175,
    # sigma2 = RSS/2, se = sqrt(sigma2/5). For 2 df the t distribution has closed forms:
    # quantile q(p) = (2p-1)/sqrt(2p(1-p)), two-sided p-value = 1 - |t|/sqrt(2+t^2).
    idx = pd.DataFrame({
        "site_id": ["A"] * 4 + ["B"] * 6 + ["C"] * 2,
        "period": [1, 2, 3, 4] + [1, 2, 3, 4, 5, 6] + [1, 2],
        "adherence": [0.90, 0.80, 0.75, 0.60] + [0.90, 0.95, 0.94, 0.93, 0.92, 0.99] + [0.9, 0.7],
    })
    res = sa.fidelity_drift(idx)
    a = res.table.set_index("site_id").loc["A"]
    se = math.sqrt(0.00175 / 2 / 5)
    q = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    tstat = -0.095 / se
    assert a["slope"] == pytest.approx(-0.095, rel=1e-12)  # hand value, 1e-12 relative
    assert a["se"] == pytest.approx(se, rel=1e-10)  # 1e-10: RSS is a difference of O(1) numbers
    assert a["ci_low"] == pytest.approx(-0.095 - q * se, rel=1e-10)
    assert a["ci_high"] == pytest.approx(-0.095 + q * se, rel=1e-10)
    assert a["pvalue"] == pytest.approx(1 - abs(tstat) / math.sqrt(2 + tstat**2), rel=1e-8)  # cdf tail
    # the same numbers from R 4.2: confint(lm(y ~ t, data.frame(t = 1:4, y = c(.9, .8, .75, .6))))
    # and summary(...)$coefficients (printed with digits = 15), 1e-12 relative
    assert [a["ci_low"], a["ci_high"]] == pytest.approx([-0.151918745503951, -0.0380812544960485], rel=1e-12)
    assert [a["se"], a["pvalue"]] == pytest.approx([0.0132287565553230, 0.01884421896078776], rel=1e-12)
    assert a["significant_decline"] and a["longest_decline_run"] == 3 and a["flagged"]
    # Site B: three consecutive declines (.95 > .94 > .93 > .92) but rising overall -> run flag only
    b = res.table.set_index("site_id").loc["B"]
    assert b["slope"] > 0 and not b["significant_decline"]
    assert b["longest_decline_run"] == 3 and b["run_flag"] and b["flagged"]
    # Site C: two periods -> slope defined, no standard error, flagged by neither rule
    c = res.table.set_index("site_id").loc["C"]
    assert c["slope"] == pytest.approx(-0.2, rel=1e-12) and np.isnan(c["se"]) and not c["flagged"]
    assert res.drift_sites == ("A", "B")
    text = res.summary()
    assert "run of 3 consecutive declines" in text and "2 flagged for drift" in text
    assert "  A: slope per period -0.10 (95% CI -0.15 to -0.04)" in text  # the numbers asserted above
    assert "2 signalés pour dérive" in res.summary(language="fr")
    res4 = sa.fidelity_drift(idx, run_length=4)
    assert res4.drift_sites == ("A",)


# --------------------------------------------------------------------------- simulation recovery
def _simulate_unbiased(seed: int, n_sites=30, n_periods=8, n_sessions=4, n_drift=10, drift=-0.04):
    """Ratings with E[rescaled score] = true adherence exactly: Binomial(4, a_st) on 0-4 scales."""
    rng = np.random.default_rng(seed)
    comps = pd.DataFrame({"component_id": ["K1", "K2", "K3", "X"], "name": list("abcd"),
                          "core": [True, True, True, False], "weight": [0.5, 0.3, 0.2, 1.0],
                          "scale_min": 0.0, "scale_max": 4.0})
    sites = [f"S{i:02d}" for i in range(n_sites)]
    slope = np.where(np.arange(n_sites) < n_drift, drift, 0.0)
    base = rng.uniform(0.75, 0.9, n_sites)
    truth, rows = [], []
    for i, s in enumerate(sites):
        for t in range(1, n_periods + 1):
            a = base[i] + slope[i] * (t - 1)
            truth.append((s, t, a))
            for j in range(n_sessions):
                for r in ("r1", "r2"):
                    for c in comps["component_id"]:
                        rows.append((s, f"{s}-{t}-{j}", t, r, c, float(rng.binomial(4, a))))
    ratings = pd.DataFrame(rows, columns=["site_id", "session_id", "period", "rater_id", "component_id", "score"])
    truth = pd.DataFrame(truth, columns=["site_id", "period", "true_adherence"])
    return ratings, comps, truth, pd.Series(slope, index=sites)


def test_recovers_planted_adherence_and_drift_unbiased_simulation():
    ratings, comps, truth, slope = _simulate_unbiased(seed=20261123)
    idx = sa.fidelity_index(ratings, comps).merge(truth, on=["site_id", "period"])
    # 95% t-intervals from the 4 sessions (3 df) should cover the truth ~95% of the 240 cells
    q = 3.182446305284263  # t quantile 0.975, 3 df (R: qt(0.975, 3))
    cover = (np.abs(idx["adherence"] - idx["true_adherence"]) <= q * idx["adherence_se"]).mean()
    assert 0.90 <= cover <= 0.99, cover
    assert abs((idx["adherence"] - idx["true_adherence"]).mean()) < 0.01  # unbiased (mean of 240 errors)
    res = sa.fidelity_drift(idx)
    tab = res.table.set_index("site_id")
    true_slope = slope.loc[tab.index]
    slope_cover = ((tab["ci_low"] <= true_slope) & (true_slope <= tab["ci_high"])).mean()
    assert slope_cover >= 0.85, slope_cover  # nominal 95% over 30 sites
    drifting = true_slope < 0
    assert tab.loc[drifting, "significant_decline"].all()  # slope -0.04/period, se ~0.006: power ~1
    assert tab.loc[~drifting, "significant_decline"].sum() <= 3  # expected 2.5% of 20 stable sites


def test_recovers_truth_of_simulate_scaleup():
    sim = sa.simulate_scaleup(seed=3, n_sites=60, n_periods=12, patients_per_site_period=2, sessions_rated=4)
    tb = sim.tables
    idx = sa.fidelity_index(tb["fidelity_ratings"], tb["components"], tb["delivery"])
    m = idx.merge(sim.truth.true_adherence, on=["site_id", "period"], suffixes=("", "_true"))
    assert len(m) == len(sim.truth.true_adherence)  # every adopting site-period is estimated
    err = m["adherence"] - m["adherence_true"]
    # the simulator rounds and clips scores to integer scales and adds rater biases, so the
    # estimate is close but not exactly unbiased: bounds chosen from that design, not from our output
    assert np.corrcoef(m["adherence"], m["adherence_true"])[0, 1] > 0.9
    assert abs(err.mean()) < 0.02 and err.abs().mean() < 0.04
    res = sa.fidelity_drift(m)
    tab = res.table.set_index("site_id")
    planted = tab.index.isin(sim.truth.drift_sites)
    assert planted.sum() >= 5
    # drifting sites are flagged far more often than stable ones
    assert tab.loc[planted, "flagged"].mean() >= 0.5
    assert tab.loc[~planted, "flagged"].mean() <= 0.15
    # region pooling covers every region with adopting sites
    reg = sa.fidelity_by(idx, ["rss_code", "period"], sites=tb["sites"])
    assert set(reg.loc[reg["n_sessions"] > 0, "rss_code"]) == set(
        tb["sites"].loc[tb["sites"]["adoption_period"].notna(), "rss_code"])


# --------------------------------------------------------------------------- invariances
def test_row_order_and_scale_invariance():
    rng = np.random.default_rng(7)
    shuffled = RATINGS.iloc[rng.permutation(len(RATINGS))]
    a = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    b = sa.fidelity_index(shuffled, COMPONENTS, DELIVERY.iloc[::-1])
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-14)  # sums in another order
    # rating C1 on 0-100 instead of 0-4 (scores x 25) leaves adherence unchanged
    comps = COMPONENTS.assign(scale_max=[100.0, 5.0, 1.0])
    rescaled = RATINGS.assign(score=np.where(RATINGS["component_id"] == "C1", RATINGS["score"] * 25, RATINGS["score"]))
    c = sa.fidelity_index(rescaled, comps, DELIVERY)
    np.testing.assert_allclose(c["adherence"], a["adherence"], rtol=1e-14, equal_nan=True)
    # weights only matter relatively
    d = sa.fidelity_index(RATINGS, COMPONENTS.assign(weight=COMPONENTS["weight"] * 7), DELIVERY)
    np.testing.assert_allclose(d["adherence"], a["adherence"], rtol=1e-14, equal_nan=True)


# --------------------------------------------------------------------------- plots
def test_plots_return_axes():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    ax = sa.plot_fidelity(idx, value="adherence")
    assert isinstance(ax, matplotlib.axes.Axes) and ax.get_ylabel() == "Site"
    img = ax.get_images()[0].get_array()
    assert img.shape == (2, 2) and img.mask[1, 1]  # B2 has no adherence -> hatched "no rating" cell
    assert "No rating" in [t.get_text() for leg in ax.figure.findobj(matplotlib.legend.Legend) for t in leg.get_texts()]
    ax2 = sa.plot_fidelity(idx, by="region", sites=SITES)
    assert ax2.get_ylabel() == "Region" and ax2.get_images()[0].get_array().shape == (1, 2)
    from scaleup_analysis._style import region_labels

    names = region_labels(["05", "06"])
    assert [t.get_text() for t in ax2.get_yticklabels()] == [names["06"]]
    ax3 = sa.fidelity_drift(idx).plot_drift()
    assert isinstance(ax3, matplotlib.axes.Axes)
    # with a sites table of two regions: one panel per region (named), the first returned
    ax4 = sa.fidelity_drift(idx).plot_drift(sites=SITES.assign(rss_code=["05", "06"]))
    assert [a.get_title() for a in ax4.figure.axes if a.get_visible()] == ["Estrie (05)", "Montréal (06)"]
    with pytest.raises(ScaleupDataError, match="'site' or 'region'"):
        sa.plot_fidelity(idx, by="rss")


# --------------------------------------------------------------------------- invalid input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=RATINGS.drop(columns="score")), r"fidelity_ratings: missing column\(s\) \['score'\]"),
        (dict(data=RATINGS.assign(component_id=["C9"] + list(RATINGS.component_id[1:]))),
         r"refers to components not in the components table in 1 row\(s\) \(index 0\)"),
        (dict(data=RATINGS.assign(score=[9.0] + list(RATINGS.score[1:]))),
         r"'score' is outside its component's \[scale_min, scale_max\] in 1 row\(s\) \(index 0\)"),
        (dict(data=pd.concat([RATINGS, RATINGS.iloc[[0]]], ignore_index=True)),
         r"rated more than once .* in 2 row\(s\) \(index 0, 14\)"),
        (dict(data=RATINGS.assign(period=[1] * 7 + [2] + [1] * 6).assign(
            period=lambda d: d.period.where(d.index != 1, 3))), r"'period' differs within a session"),
        (dict(data=RATINGS.assign(score=[np.nan] + list(RATINGS.score[1:]))), r"are missing"),
        (dict(components=COMPONENTS.assign(core=False)), "no core component"),
        (dict(components=COMPONENTS.assign(weight=[1.0, 0.0, 1.0])), r"'weight' is not > 0 in 1 row"),
        (dict(components=COMPONENTS.assign(scale_max=[4.0, 1.0, 1.0])), "not greater than scale_min"),
        (dict(delivery=DELIVERY.assign(reached=[250, 90, 10, 40])), r"'reached' exceeds eligible in 1 row"),
        (dict(delivery=DELIVERY.assign(sessions_planned=[-1, 10, 0, 5])), r"'sessions_planned' is negative"),
        (dict(delivery=pd.concat([DELIVERY, DELIVERY.iloc[[0]]], ignore_index=True)), "duplicated"),
        (dict(weights={"fun": 1}), "unknown dimension 'fun'"),
        (dict(bands=(80, 50)), "bands"),
    ],
)
def test_invalid_input_raises(kwargs, match):
    args = dict(data=RATINGS, components=COMPONENTS, delivery=DELIVERY)
    args.update(kwargs)
    with pytest.raises(ScaleupDataError, match=match):
        sa.fidelity_index(**args)


def test_drift_input_errors():
    idx = pd.DataFrame({"site_id": ["A", "A"], "period": [1, 1], "adherence": [0.5, 0.6]})
    with pytest.raises(ScaleupDataError, match="duplicated within a site"):
        sa.fidelity_drift(idx)
    with pytest.raises(ScaleupDataError, match="level"):
        sa.fidelity_drift(idx.assign(period=[1, 2]), level=1.5)


def test_session_without_core_rating_is_left_out_with_warning():
    extra = pd.DataFrame([("B", "B9", 1, "r3", "P1", 1.0)], columns=RATINGS.columns)
    with pytest.warns(sa.RowsOmittedWarning, match="1 session"):
        out = sa.session_adherence(pd.concat([RATINGS, extra], ignore_index=True), COMPONENTS)
    assert "B9" not in set(out["session_id"]) and len(out) == 6


def test_band_column_is_ordered_categorical():
    idx = sa.fidelity_index(RATINGS, COMPONENTS, DELIVERY)
    assert isinstance(idx["band"].dtype, pd.CategoricalDtype) and idx["band"].cat.ordered
