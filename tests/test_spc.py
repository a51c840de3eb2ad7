"""Tests for scaleup_analysis.monitoring.spc (runs analysis and control charts).

Reference values come from three independent sources:

* ``tests/reference/ref_spc.R`` -> ``spc.json``: R's ``qbinom``/``log2`` thresholds, and centre
  lines / limits / signals for 2 datasets x 10 charts x 3 options computed in base R from the
  textbook formulas (qicharts2 itself is not installable offline here; the R script writes the
  formulas out independently of our Python code);
* published constants: the Anhøj longest-run limits (table reproduced at unaettie.com/en-us/faq.php,
  n = 10..100), the qicharts2 vignette example (24 useful points: longest run > 8 or fewer than
  8 crossings), Montgomery (2009) Appendix VI control-chart constants A3, B3, B4;
* small examples computed by hand (arithmetic written out in the comments);
* the qicharts2 vignette's published ``summary(qic(y, chart = 'i'))`` output (data regenerated
  with R's RNG in ref_spc.R).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.monitoring.spc import _c4, _c5, _crossings_min, _longest_run_max
from tests.conftest import load_reference

REF = load_reference("spc")
CHARTS = ["run", "i", "mr", "xbar", "s", "p", "u", "c", "pp", "up"]
OPTIONS = {"none": {}, "freeze": {"freeze": 12}, "part": {"part": 16}}
DATASETS = ["equal_subgroups", "unequal_subgroups"]


def _nan_equal(a, b, rtol):
    a = np.asarray(a, float)
    b = np.asarray([np.nan if v is None else v for v in b], float)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# Anhøj thresholds
# ---------------------------------------------------------------------------------------------
def test_anhoej_thresholds_match_r_for_n_1_to_100():
    ref = REF["anhoej"]
    for n, lr, nc in zip(ref["n"], ref["longest_run_max"], ref["n_crossings_min"]):
        assert _longest_run_max(n) == lr  # exact integer
        assert _crossings_min(n) == nc  # exact integer: qbinom(0.05, n - 1, 0.5)


def test_longest_run_limits_equal_published_table():
    # Published table of upper limits for the longest run, n = 10..100 (Anhøj & Olesen 2014;
    # reproduced at unaettie.com "Length of run in a run chart"): 6 for n = 10-11, 7 for 12-22,
    # 8 for 23-45, 9 for 46-90, 10 for 91-100.
    table = {**{n: 6 for n in range(10, 12)}, **{n: 7 for n in range(12, 23)},
             **{n: 8 for n in range(23, 46)}, **{n: 9 for n in range(46, 91)},
             **{n: 10 for n in range(91, 101)}}
    for n, ul in table.items():
        assert _longest_run_max(n) == ul  # exact


def test_crossings_limits_equal_exact_binomial_quantile():
    # 5th percentile of Binomial(n - 1, 1/2) computed exactly with integer arithmetic
    # (math.comb), independent of scipy and R: smallest k with sum_{j<=k} C(n-1, j) >= 0.05 2^(n-1)
    for n in range(10, 101):
        m = n - 1
        cum, k = 0, -1
        while 20 * cum < 2**m:  # cum / 2^m < 0.05, exact
            k += 1
            cum += math.comb(m, k)
        assert _crossings_min(n) == k  # exact
    # qicharts2 vignette: with 24 useful observations, a run longer than 8 or fewer than 8
    # crossings signals non-random variation.
    assert (_longest_run_max(24), _crossings_min(24)) == (8, 8)


@pytest.mark.parametrize("name", ["ties", "shift", "random"])
def test_runs_analysis_matches_r(name):
    ref = REF["runs"][name]
    ra = sa.runs_analysis(ref["y"])
    for f in ("n_obs", "n_useful", "longest_run", "longest_run_max", "n_crossings",
              "n_crossings_min", "runs_signal"):
        assert getattr(ra, f) == ref[f], f  # exact (integers / booleans)


def test_runs_analysis_hand_example():
    # 13 points about centre 5: signs - - - + + + + - + - + + +  (the "5" is not useful)
    y = [1, 2, 3, 6, 7, 8, 9, 4, 6, 3, 7, 8, 9, 5]
    ra = sa.runs_analysis(y, centre=5)
    assert ra.n_obs == 14 and ra.n_useful == 13
    assert ra.longest_run == 4  # the run + + + +
    assert ra.n_crossings == 5
    assert ra.longest_run_max == 7  # round(log2(13)) + 3 = 4 + 3
    assert ra.n_crossings_min == 3  # qbinom(0.05, 12, 0.5)
    assert ra.runs_signal is False
    assert "no runs signal" in ra.summary()
    assert ra.to_frame().shape == (1, 8)


def test_runs_analysis_no_useful_points():
    with pytest.warns(sa.ScaleupWarning) as rec:
        ra = sa.runs_analysis([2.0, 2.0, np.nan])
    assert ra.n_obs == 3 and ra.n_useful == 0 and ra.runs_signal is False
    assert ra.longest_run is None
    msgs = [str(w.message) for w in rec]
    assert any("1 missing value(s) of 3 (NaN, at position(s) 2)" in m for m in msgs)
    assert any("none of the 3 value(s) is off the centre line 2" in m for m in msgs)


def test_runs_analysis_missing_values_are_gaps_with_a_warning():
    y = [1, 2, 3, 6, 7, 8, 9, 4, 6, 3, 7, 8, 9, 5]
    gappy = y[:4] + [np.nan] + y[4:9] + [np.nan] + y[9:]
    with pytest.warns(sa.ScaleupWarning) as rec:
        ra = sa.runs_analysis(gappy, centre=5)
    (msg,) = [str(w.message) for w in rec]
    assert "argument 'values' has 2 missing value(s) of 16 (NaN, at position(s) 4, 10)" in msg
    assert "kept as gaps in the time order (counted in n_obs, as qicharts2) but left out of the runs" in msg
    assert "centre line" not in msg  # the centre was given
    # the gaps neither make nor break a run: the same analysis as without them, two more observations
    full = sa.runs_analysis(y, centre=5)
    assert ra.n_obs == full.n_obs + 2
    assert (ra.n_useful, ra.longest_run, ra.n_crossings, ra.runs_signal) == (13, 4, 5, False)
    with pytest.warns(sa.ScaleupWarning, match="left out of the centre line \\(the median\\) and of the runs"):
        med = sa.runs_analysis(gappy)
    assert med.centre == float(np.median(y))


@pytest.mark.parametrize("values, fragments", [
    ([[1, 0.84], [2, 0.9], [3, 0.7]], ("argument 'values' must be one-dimensional", "got a list with 2 dimension(s)")),
    ([[1], [2, 3]], ("must be one-dimensional",)),
    (pd.DataFrame({"y": [1.0, 2.0]}), ("must be one-dimensional", "DataFrame", "data['y']")),
    ([0.8, "0.84", 0.9, "0.7"], ("must be numeric: 2 value(s) are text, at position(s) 1, 3 (values '0.84', '0.7')",)),
    (pd.Series(["1", "2"], dtype="string"), ("2 value(s) are text, at position(s) 0, 1",)),
])
def test_runs_analysis_refuses_tables_and_text(values, fragments):
    with pytest.raises(ScaleupDataError) as err:
        sa.runs_analysis(values)
    for f in fragments:
        assert f in str(err.value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-100, 100), min_size=2, max_size=60),
       st.integers(1, 10), st.integers(-50, 50))
def test_runs_analysis_invariant_to_affine_change(y, scale, shift):
    # integers keep the affine map exact (no point moves on/off the centre by rounding)
    a = sa.runs_analysis(y, centre=0.0)
    b = sa.runs_analysis([v * scale + shift for v in y], centre=shift)
    assert (a.n_useful, a.longest_run, a.n_crossings, a.runs_signal) == (
        b.n_useful, b.longest_run, b.n_crossings, b.runs_signal)


# ---------------------------------------------------------------------------------------------
# control charts vs the R fixture
# ---------------------------------------------------------------------------------------------
def test_grid_covers_every_dataset_chart_option():
    cells = {(c["dataset"], c["chart"], c["option"]) for c in REF["charts"]}
    assert cells == set(itertools.product(DATASETS, CHARTS, OPTIONS))
    assert len(REF["charts"]) == 60


def _dataset(name):
    return pd.DataFrame(REF["datasets"][name])


@pytest.mark.parametrize("cell", REF["charts"], ids=lambda c: f"{c['dataset']}-{c['chart']}-{c['option']}")
def test_control_chart_matches_r(cell):
    df = _dataset(cell["dataset"])
    ch = cell["chart"]
    value = "events" if ch in ("p", "u", "c", "pp", "up") else "y"
    n = "n" if ch in ("p", "u", "pp", "up") else None
    cc = sa.control_chart(df, value=value, chart=ch, x="period", n=n, **OPTIONS[cell["option"]])
    d = cc.data
    # closed forms: 1e-6 relative
    _nan_equal(d["y"], cell["y"], 1e-6)
    _nan_equal(d["cl"], cell["cl"], 1e-6)
    _nan_equal(d["lcl"], cell["lcl"], 1e-6)
    _nan_equal(d["ucl"], cell["ucl"], 1e-6)
    assert d["part"].tolist() == cell["part"]  # exact
    assert d["sigma_signal"].tolist() == cell["sigma_signal"]  # exact
    assert d["runs_signal"].tolist() == cell["runs_signal"]  # exact
    if ch != "mr":
        summ = cc.to_frame(kind="parts")
        for i, ref in enumerate(cell["summary"]):
            row = summ.iloc[i]
            for f, v in ref.items():
                assert row[f] == v, (f, i)  # exact integers


# ---------------------------------------------------------------------------------------------
# hand-computed limits and published constants
# ---------------------------------------------------------------------------------------------
def test_i_chart_hand_computed_with_and_without_screening():
    df = pd.DataFrame({"t": range(1, 9), "y": [5, 7, 6, 8, 6, 7, 5, 20]})
    # CL = 64 / 8 = 8; moving ranges 2 1 2 2 1 2 15, AMR = 25/7; 15 >= 3.267 * 25/7 = 11.67 is
    # screened out -> AMR = 10/6, sigma = (10/6) / 1.128, UCL = 8 + 3 sigma = 12.4326241
    cc = sa.control_chart(df, value="y", chart="i", x="t")
    assert cc.data["cl"].iloc[0] == pytest.approx(8.0, rel=1e-12)
    assert cc.data["ucl"].iloc[0] == pytest.approx(8 + 3 * (10 / 6) / 1.128, rel=1e-12)
    assert cc.data["lcl"].iloc[0] == pytest.approx(8 - 3 * (10 / 6) / 1.128, rel=1e-12)
    assert cc.data["sigma_signal"].tolist() == [False] * 7 + [True]
    # without screening: sigma = (25/7) / 1.128, UCL = 17.4984802
    raw = sa.control_chart(df, value="y", chart="i", x="t", screen_mr=False)
    assert raw.data["ucl"].iloc[0] == pytest.approx(8 + 3 * (25 / 7) / 1.128, rel=1e-12)


def test_p_u_c_charts_hand_computed():
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [2, 4, 3, 5], "n": [20, 40, 30, 50]})
    # p: CL = 14/140 = 0.1; n = 20: UCL = 0.1 + 3 sqrt(0.09/20) = 0.30124612, LCL = max(0, .) = 0
    p = sa.control_chart(df, value="e", chart="p", x="t", n="n").data
    assert p["cl"].iloc[0] == pytest.approx(0.1, rel=1e-12)
    assert p["ucl"].iloc[0] == pytest.approx(0.30124611797498107, rel=1e-12)
    assert p["lcl"].iloc[0] == 0.0
    # u: CL = 14/140; n = 50: UCL = 0.1 + 3 sqrt(0.1/50) = 0.23416408
    u = sa.control_chart(df, value="e", chart="u", x="t", n="n").data
    assert u["ucl"].iloc[3] == pytest.approx(0.23416407864998739, rel=1e-12)
    # c: CL = 14/4 = 3.5; UCL = 3.5 + 3 sqrt(3.5) = 9.1124726; LCL = 0
    c = sa.control_chart(df, value="e", chart="c", x="t").data
    assert c["cl"].iloc[0] == pytest.approx(3.5, rel=1e-12)
    assert c["ucl"].iloc[0] == pytest.approx(3.5 + 3 * math.sqrt(3.5), rel=1e-12)
    assert c["lcl"].iloc[0] == 0.0


def test_laney_p_prime_hand_computed_and_equal_n_reduces_to_i_chart():
    # events 10 20 15 30 of n = 100: p = .10 .20 .15 .30, CL = 75/400 = 0.1875.
    # With equal n, sigma_p * z_i = p_i - CL, so sigma_p * sigma_z = AMR(p) / 1.128
    # = ((.10 + .05 + .15) / 3) / 1.128 = 0.0886525 and UCL = 0.1875 + 3 * 0.0886525 = 0.4534574
    # (Laney 2002: with equal subgroup sizes P' is the I chart of the proportions).
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [10, 20, 15, 30], "n": [100] * 4})
    pp = sa.control_chart(df, value="e", chart="pp", x="t", n="n").data
    assert pp["cl"].iloc[0] == pytest.approx(0.1875, rel=1e-12)
    assert pp["ucl"].iloc[0] == pytest.approx(0.1875 + 3 * 0.1 / 1.128, rel=1e-12)
    assert pp["lcl"].iloc[0] == 0.0  # 0.1875 - 0.2660 < 0, floored
    i = sa.control_chart(df.assign(p=df.e / df.n), value="p", chart="i", x="t").data
    np.testing.assert_allclose(pp["ucl"], i["ucl"], rtol=1e-12)


def test_laney_unequal_n_hand_computed():
    # events 5 18 9 of n = 50 100 60: CL = 32/210; sigma_i = sqrt(CL (1 - CL) / n_i);
    # z = (p_i - CL) / sigma_i; sigma_z = mean|diff z| / 1.128 (3 moving ranges < 3.267 AMR).
    e, n = np.array([5, 18, 9.0]), np.array([50, 100, 60.0])
    cl = 32 / 210
    s = np.sqrt(cl * (1 - cl) / n)
    z = (e / n - cl) / s
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
    # by hand: CL (1 - CL) = 0.1291610; sigma = 0.0508254, 0.0359390, 0.0463972;
    # z = -0.0523810 / 0.0508254, 0.0276190 / 0.0359390, -0.0023810 / 0.0463972
    assert z == pytest.approx([-1.030606, 0.768498, -0.051317], abs=2e-6)  # 6-d.p. hand values
    df = pd.DataFrame({"t": [1, 2, 3], "e": e, "n": n})
    pp = sa.control_chart(df, value="e", chart="pp", x="t", n="n").data
    np.testing.assert_allclose(pp["ucl"], cl + 3 * s * sigma_z, rtol=1e-12)


@pytest.mark.parametrize("m, a3, b3, b4", [(2, 2.659, 0.0, 3.267), (4, 1.628, 0.0, 2.266),
                                            (5, 1.427, 0.0, 2.089), (6, 1.287, 0.030, 1.970),
                                            (10, 0.975, 0.284, 1.716)])
def test_xbar_s_constants_equal_montgomery_table(m, a3, b3, b4):
    # Montgomery (2009) Appendix VI gives A3, B3, B4 to 3 decimals: abs tolerance 5e-4 (rounding)
    assert 3 / (_c4(m) * math.sqrt(m)) == pytest.approx(a3, abs=5e-4)
    assert max(0.0, 1 - 3 * _c5(m) / _c4(m)) == pytest.approx(b3, abs=5e-4)
    assert 1 + 3 * _c5(m) / _c4(m) == pytest.approx(b4, abs=5e-4)


# ---------------------------------------------------------------------------------------------
# facets, invariances, plotting, errors
# ---------------------------------------------------------------------------------------------
def test_facets_equal_separate_charts_and_row_order_invariance():
    a, b = _dataset("equal_subgroups"), _dataset("unequal_subgroups")
    both = pd.concat([a.assign(rss="01"), b.assign(rss="02")], ignore_index=True)
    shuffled = both.sample(frac=1.0, random_state=3)
    cc = sa.control_chart(shuffled, value="y", chart="xbar", x="period", by="rss", freeze=12)
    single = sa.control_chart(b, value="y", chart="xbar", x="period", freeze=12).data
    got = cc.data[cc.data["facet"] == "02"].reset_index(drop=True)
    np.testing.assert_allclose(got["ucl"], single["ucl"], rtol=1e-12)
    assert list(cc.to_frame(kind="parts")["facet"]) == ["01", "02"]
    # summary() is text (the tables are to_frame()): one line per facet, region codes by name
    text, fr = cc.summary(language="en"), cc.summary(language="fr")
    assert "Bas-Saint-Laurent (01)" in text and "Saguenay" in text and "centre line" in text
    assert "ligne centrale" in fr
    axes = cc.plot()
    assert axes.size >= 2
    ax = cc.plot(facet="01")
    assert ax.get_title() == "Bas-Saint-Laurent (01)"  # region codes are shown by name


def test_plot_single_returns_axes():
    import matplotlib.pyplot as plt

    df = _dataset("equal_subgroups")
    cc = sa.control_chart(df, value="events", chart="p", x="period", n="n", part=16)
    fig, ax = plt.subplots()
    assert cc.plot(ax=ax) is ax
    assert "P chart" in ax.get_title()


def test_control_chart_bad_input():
    df = pd.DataFrame({"t": [1, 2, 3], "e": [1, 5, 2], "n": [10, 4, 10]})
    with pytest.raises(ScaleupDataError, match="needs a denominator"):
        sa.control_chart(df, value="e", chart="p", x="t")
    with pytest.raises(ScaleupDataError, match=r"1 row\(s\) \(first: 1\)"):
        sa.control_chart(df, value="e", chart="p", x="t", n="n")
    # a non-numeric value names the offending rows (count and first few) and the values
    bad = df.assign(e=["1", "x", "y"])
    with pytest.raises(ScaleupDataError, match=r"column 'e' \(argument 'value'\): 2 row\(s\) \(first: 1, 2\) are not numeric"):
        sa.control_chart(bad, value="e", chart="i", x="t")
    with pytest.raises(ScaleupDataError, match="'zz'"):
        sa.control_chart(df, value="zz", chart="i")
    with pytest.raises(ScaleupDataError, match="not both"):
        sa.control_chart(df, value="e", chart="i", freeze=2, part=2)
    with pytest.raises(ScaleupDataError, match="not supported"):
        sa.control_chart(df, value="e", chart="x")


def test_control_chart_missing_value_is_a_gap_with_a_warning():
    t = np.arange(1, 25)
    d = pd.DataFrame({"t": t, "y": np.sin(t) + 0.1 * t})
    gappy = d.assign(y=d["y"].where(d["t"] != 7))
    with pytest.warns(sa.ScaleupWarning) as rec:
        cc = sa.control_chart(gappy, "y", "i", x="t")
    (msg,) = [str(w.message) for w in rec]
    assert "control_chart: table 'data', column 'y' (argument 'value') has missing values in 1 row(s) (first: 6)" in msg
    assert "a period with no value is drawn as a gap: 1 point(s) (x = 7)" in msg
    assert "left out of the centre line, the limits and the runs (n_useful)" in msg
    pts = cc.data
    assert len(pts) == 24 and np.isnan(pts.loc[pts["x"] == 7, "y"]).all()
    # centre line: mean of the 23 values; sigma: screened average of the 21 moving ranges not touching the gap
    y = gappy["y"].to_numpy()
    np.testing.assert_allclose(pts["cl"], np.nanmean(y), rtol=1e-12)
    mr = np.abs(np.diff(y))
    mr = mr[np.isfinite(mr)]
    amr = mr[mr < 3.267 * mr.mean()].mean()
    np.testing.assert_allclose(pts["ucl"], np.nanmean(y) + 3 * amr / 1.128, rtol=1e-12)
    runs = cc.to_frame(kind="parts").iloc[0]
    assert (runs["n_obs"], runs["n_useful"]) == (24, 23 - int((y == np.nanmean(y)).sum()))


def test_control_chart_missing_value_inside_a_period_is_left_out_of_its_point():
    d = pd.DataFrame({"t": [1, 1, 2, 2, 3, 3, 4, 4], "y": [1.0, 3.0, 2.0, np.nan, 5.0, 7.0, 4.0, 6.0]})
    with pytest.warns(sa.ScaleupWarning, match=r"1 missing value\(s\) in periods that have other values are left "
                                               r"out of their period's point \(x = 2\)"):
        cc = sa.control_chart(d, "y", "run", x="t")
    assert cc.data["y"].tolist() == [2.0, 2.0, 6.0, 5.0]


def test_subgroup_column_and_xbar_hand_computed():
    # two subgroups of 3 per week, identified by 'batch'; plotted at their first period.
    # batch A: 1 2 3 (mean 2, sd 1); batch B: 2 4 6 (mean 4, sd 2); equal sizes:
    # CL = (3*2 + 3*4) / 6 = 3, s-bar = 1.5, A3(3) = 3 / (c4(3) sqrt 3) with c4(3) = sqrt(pi)/2
    df = pd.DataFrame({"week": [1, 1, 1, 2, 2, 2], "batch": list("AAABBB"),
                       "y": [1, 2, 3, 2, 4, 6]})
    cc = sa.control_chart(df, value="y", chart="xbar", x="week", subgroup="batch")
    a3 = 3 / ((math.sqrt(math.pi) / 2) * math.sqrt(3))
    assert cc.data["x"].tolist() == [1, 2]
    assert cc.data["cl"].iloc[0] == pytest.approx(3.0, rel=1e-12)
    assert cc.data["ucl"].iloc[0] == pytest.approx(3 + a3 * 1.5, rel=1e-12)


def test_qicharts2_vignette_i_chart_published_summary():
    # qicharts2 vignette ("The Anhøj rules"): set.seed(19); y <- rnorm(24); y[22] <- 4;
    # y[13:24] <- rnorm(12, mean = 2); summary(qic(y, chart = 'i')) prints
    # n.obs 24, n.useful 24, longest.run 13, longest.run.max 8, n.crossings 4, n.crossings.min 8,
    # runs.signal 1, aLCL -2.114884, CL 1.057091, aUCL 4.229067, sigma.signal 0.
    # The data are regenerated with R's RNG by ref_spc.R.
    y = REF["qicharts2_vignette_y"]
    s = sa.control_chart(pd.DataFrame({"y": y}), value="y", chart="i").to_frame(kind="parts").iloc[0]
    assert (s.n_obs, s.n_useful, s.longest_run, s.longest_run_max, s.n_crossings,
            s.n_crossings_min, s.runs_signal, s.sigma_signal) == (24, 24, 13, 8, 4, 8, True, 0)
    # published to 7 significant digits: absolute tolerance 5e-7
    assert s.aLCL == pytest.approx(-2.114884, abs=5e-7)
    assert s.CL == pytest.approx(1.057091, abs=5e-7)
    assert s.aUCL == pytest.approx(4.229067, abs=5e-7)
