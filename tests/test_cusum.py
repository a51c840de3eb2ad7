"""risk_adjusted_cusum (risk-adjusted Bernoulli CUSUM, Steiner et al. 2000; VLAD) against R and simulation.

References (no R package is used: CI has no R, and ``cusum`` / ``vlad`` are not installed here):

* chart values: tests/reference/cusum.json, written by tests/reference/ref_cusum.R, an independent
  base-R recursion of Steiner et al. (2000) eq. 2.1 (weights, ``S_t = max(0, S_{t-1} + W_t)``,
  signals at ``h``, restart or not, the lower chart as ``-S_t``, VLAD ``cumsum(p - y)``) on a
  hand-built set (3 sites, ties in time, rows shuffled) and a simulated study (3 sites x 60
  patients with odds ratios 1, 2.5 and 0.4), for the upper, lower and both charts, with and
  without restart: every row agrees to 1e-12 relative (observed: ~1e-16);
* Markov-chain run lengths: (a) against 50,000 run lengths simulated in the R script for a mix of
  60 risks, charts R_A = 2 (h = 3) and R_A = 0.5 (h = 2.5), in and out of control: within 3 Monte
  Carlo standard errors (observed: at most 1.3 SE); (b) against the exact chains of constant-risk
  charts whose weights lie on a lattice (Reynolds & Stoumbos 1999's integer-valued scaled weights;
  solved in the R script): 1e-4 relative (observed 4e-6); (c) a limit chosen for arl0 = 200 gives
  simulated in-control run lengths (numpy, seed 11, 6,000 runs) whose mean is 200 within 4 Monte
  Carlo SEs: the issue's "CUSUM run lengths checked by simulation against the target";
* invariances (row order outside ties, relabelling of units) and bad inputs naming table 'data',
  the column and the rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.monitoring import cusum as cusum_module
from scaleup_analysis.monitoring.cusum import _llr_weights, _run_length
from tests.conftest import load_reference

REF = load_reference("cusum")
RTOL = 1e-12


@pytest.fixture
def no_run_lengths(monkeypatch):
    """Tests of the chart values skip the run lengths of the given limits (checked below), for speed."""
    monkeypatch.setattr(cusum_module, "_run_length", lambda *args, **kwargs: float("nan"))


def _data(name: str) -> pd.DataFrame:
    d = pd.DataFrame(REF[name])
    assert list(d["row"]) == list(range(len(d)))  # R's 0-based row labels are pandas' default index
    return d.drop(columns="row")


# ----------------------------------------------------------------------------------------------
# chart values against the R recursion
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(REF["cases"]))
def test_chart_values_match_r_recursion(case, no_run_lengths):
    ref = REF["cases"][case]
    chart = ref["chart"]
    ratios = ref["odds_ratio"] if isinstance(ref["odds_ratio"], list) else [ref["odds_ratio"]]
    limits = ref["limit"] if isinstance(ref["limit"], list) else [ref["limit"]]
    res = sa.risk_adjusted_cusum(_data(ref["data"]), odds_ratio=tuple(ratios), limit=tuple(limits),
                                 reset=ref["reset"])
    got = res.to_frame()
    assert list(got["unit"]) == chart["site_id"]
    assert list(got["time"]) == chart["period"]
    assert list(got["row"]) == chart["row"]
    assert list(got["outcome"]) == chart["event"]
    np.testing.assert_allclose(got["risk"], chart["risk"], rtol=RTOL)
    np.testing.assert_allclose(got["vlad"], chart["vlad"], rtol=RTOL, atol=1e-14)
    for c in ("upper", "lower"):
        if f"cusum_{c}" in chart:
            np.testing.assert_allclose(got[f"llr_{c}"], chart[f"llr_{c}"], rtol=RTOL, err_msg=c)
            np.testing.assert_allclose(got[f"cusum_{c}"], chart[f"cusum_{c}"], rtol=RTOL, atol=1e-15, err_msg=c)
            assert list(got[f"signal_{c}"]) == chart[f"signal_{c}"], c
        else:
            assert got[f"cusum_{c}"].isna().all() and not got[f"signal_{c}"].any()
    # the signals table lists exactly the flagged rows
    sig = res.to_frame("signals")
    n_flags = int(got["signal_upper"].sum() + got["signal_lower"].sum())
    assert len(sig) == n_flags
    units = res.to_frame("units")
    assert units["n_signals_upper"].sum() + units["n_signals_lower"].sum() == n_flags


def test_some_cases_signal_in_both_directions(no_run_lengths):
    """The fixture exercises signals (else the comparison above would be weak)."""
    both = REF["cases"]["sim_both_reset"]["chart"]
    assert sum(both["signal_upper"]) >= 1 and sum(both["signal_lower"]) >= 1
    res = sa.risk_adjusted_cusum(_data("sim"), odds_ratio=(2, 0.5), limit=(2.5, 2.0))
    sig = res.to_frame("signals")
    assert set(sig["direction"]) == {"deterioration", "improvement"}
    assert (sig.loc[sig["direction"] == "deterioration", "cusum"] >= 2.5).all()
    assert (sig.loc[sig["direction"] == "improvement", "cusum"] <= -2.0).all()


def test_weights_formula_by_hand():
    # Steiner et al. (2000): R_A = 2, p = 0.2: W = log 2 - log 1.2 if y = 1, -log 1.2 if y = 0
    w1, w0 = _llr_weights(np.array([0.2]), 2.0, 1.0)
    np.testing.assert_allclose([w1[0], w0[0]], [math.log(2 / 1.2), -math.log(1.2)], rtol=1e-15)
    # R_0 = 1.5 against R_A = 3: log((1 - p + 3p) / (1 - p + 1.5p))
    w1, w0 = _llr_weights(np.array([0.3]), 3.0, 1.5)
    np.testing.assert_allclose([w1[0], w0[0]], [math.log(2) - math.log(1.6 / 1.15), -math.log(1.6 / 1.15)],
                               rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# run lengths
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(len(REF["run_lengths"]["cases"])))
def test_markov_chain_arl_matches_simulated_run_lengths(k):
    case = REF["run_lengths"]["cases"][k]
    mix = np.array(REF["run_lengths"]["risks"])
    arl = _run_length(case["limit"], mix, case["odds_ratio"], 1.0, case["odds_ratio_true"])
    # Monte Carlo error of the mean of 50,000 run lengths: 3 SE (the chain's own error is < 1e-3)
    assert abs(arl - case["mean"]) < 3 * case["se"], (arl, case)


@pytest.mark.parametrize("k", range(len(REF["lattice"])))
def test_markov_chain_arl_matches_exact_lattice_chain(k):
    case = REF["lattice"][k]
    arl = _run_length(case["limit"], np.array([case["risk"]]), case["odds_ratio"], 1.0, case["odds_ratio_true"])
    np.testing.assert_allclose(arl, case["arl"], rtol=1e-4)


def test_chain_has_converged():
    """1000 states against 3000: the discretisation error quoted in the docstring (< 1e-3, or 2e-3
    with risks as small as 0.001, where the steps of an outcome 0 are below the grid step)."""
    mix = np.array(REF["run_lengths"]["risks"])
    rng = np.random.default_rng(3)
    tiny = rng.choice([0.001, 0.002, 0.01, 0.02, 0.1, 0.2], 100)  # cusum::racusum's example risks
    for risks, ra, h, tol in ((mix, 2.0, 3.0, 1e-3), (mix, 0.5, 2.5, 1e-3), (tiny, 2.0, 3.0, 2e-3)):
        for rt in (1.0, ra):
            fine = _run_length(h, risks, ra, 1.0, rt, n_states=3000)
            np.testing.assert_allclose(_run_length(h, risks, ra, 1.0, rt), fine, rtol=tol)


def _simulate(h, risks, ra, n_runs, seed):
    rng = np.random.default_rng(seed)
    rl = np.zeros(n_runs, dtype=int)
    s = np.zeros(n_runs)
    active = np.arange(n_runs)
    t = 0
    while active.size:
        t += 1
        p = risks[rng.integers(0, risks.size, active.size)]
        y = rng.random(active.size) < p
        w1, w0 = _llr_weights(p, ra, 1.0)
        s[active] = np.maximum(0.0, s[active] + np.where(y, w1, w0))
        done = s[active] >= h
        rl[active[done]] = t
        active = active[~done]
    return rl


@pytest.mark.parametrize("ratio", [2.0, 0.5])
def test_limit_for_arl0_gives_the_target_run_length_in_simulation(ratio):
    mix = np.array(REF["run_lengths"]["risks"])
    d = pd.DataFrame({"site_id": "A", "period": np.arange(mix.size), "event": 0, "risk": mix})
    res = sa.risk_adjusted_cusum(d, odds_ratio=ratio, arl0=200)
    c = "upper" if ratio > 1 else "lower"
    row = res.to_frame("units").iloc[0]
    # for discrete weights the run length is a step function of h: the limit is where it crosses
    # the target, within 1e-5 relative
    np.testing.assert_allclose(row[f"arl0_{c}"], 200, rtol=1e-5)
    assert row[f"arl1_{c}"] < 200
    rl = _simulate(row[f"limit_{c}"], mix, ratio, 6000, seed=11)
    se = rl.std(ddof=1) / math.sqrt(rl.size)
    assert abs(rl.mean() - 200) < 4 * se, (rl.mean(), se)


def test_arl0_default_and_pair():
    d = _data("sim").query("site_id != 'S3'")
    res = sa.risk_adjusted_cusum(d, odds_ratio=(2, 0.5))
    u = res.to_frame("units")
    np.testing.assert_allclose(u[["arl0_upper", "arl0_lower"]].to_numpy(), 1000, rtol=1e-5)  # a step function of h
    assert res.arl0 == (1000.0, 1000.0)
    res2 = sa.risk_adjusted_cusum(d.query("site_id == 'S1'"), odds_ratio=(0.5, 2), arl0=(300, 600))
    u2 = res2.to_frame("units")
    np.testing.assert_allclose(u2["arl0_upper"], 300, rtol=1e-5)
    np.testing.assert_allclose(u2["arl0_lower"], 600, rtol=1e-5)
    # each site's own risk mix gives its own limit
    assert u["limit_upper"].nunique() == 2


def test_odds_ratio_null_shifts_the_in_control_state():
    """With R_0 = R_A the chart would test nothing; with R_0 = 1.5 the in-control outcomes have odds
    1.5 x predicted: the chain then equals the chain of risks recomputed at odds 1.5 with R_0 = 1."""
    mix = np.array(REF["run_lengths"]["risks"])
    shifted = 1.5 * mix / (1 - mix + 1.5 * mix)
    a = _run_length(3.0, mix, 3.0, 1.5, 1.5)
    b = _run_length(3.0, shifted, 2.0, 1.0, 1.0)
    np.testing.assert_allclose(a, b, rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# invariances and options
# ----------------------------------------------------------------------------------------------
def test_row_order_outside_ties_and_unit_labels_do_not_matter(no_run_lengths):
    d = _data("sim")
    a = sa.risk_adjusted_cusum(d, odds_ratio=(2, 0.5), limit=(2.5, 2.0))
    # shuffle the rows but keep the order of rows of the same unit and time (ties)
    rng = np.random.default_rng(5)
    key = d.groupby(["site_id", "period"]).ngroup().map(dict(enumerate(rng.permutation(200))))
    b = sa.risk_adjusted_cusum(d.iloc[np.argsort(key.to_numpy(), kind="stable")], odds_ratio=(2, 0.5),
                               limit=(2.5, 2.0))
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    relabel = {"S1": "zeta", "S2": "alpha", "S3": "mu"}
    c = sa.risk_adjusted_cusum(d.assign(site_id=d["site_id"].map(relabel)), odds_ratio=(2, 0.5), limit=(2.5, 2.0))
    for old, new in relabel.items():
        x = a.to_frame().query("unit == @old").drop(columns="unit").reset_index(drop=True)
        y = c.to_frame().query("unit == @new").drop(columns="unit").reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y)


def test_ties_are_kept_in_data_order():
    d = pd.DataFrame({"site_id": "A", "period": [1, 1, 1], "event": [1, 0, 1], "risk": [0.1, 0.2, 0.3]})
    res = sa.risk_adjusted_cusum(d, limit=10)
    assert list(res.to_frame()["row"]) == [0, 1, 2]
    rev = sa.risk_adjusted_cusum(d.iloc[::-1], limit=10)
    assert list(rev.to_frame()["row"]) == [2, 1, 0]


def test_no_unit_no_time_and_dates(no_run_lengths):
    d = _data("hand")
    one = d[d["site_id"] == "A"].sort_values("period", kind="stable")
    a = sa.risk_adjusted_cusum(one, unit=None, time=None, limit=1.2)
    b = sa.risk_adjusted_cusum(one, limit=1.2)
    np.testing.assert_allclose(a.to_frame()["cusum_upper"], b.to_frame()["cusum_upper"], rtol=0)
    assert a.to_frame()["unit"].eq("all").all() and a.to_frame()["time"].isna().all()
    dated = one.assign(period=pd.Timestamp("2025-01-01") + pd.to_timedelta(one["period"] * 7, unit="D"))
    c = sa.risk_adjusted_cusum(dated, limit=1.2)
    np.testing.assert_allclose(c.to_frame()["cusum_upper"], b.to_frame()["cusum_upper"], rtol=0)


def test_reset_false_keeps_accumulating():
    d = pd.DataFrame({"site_id": "A", "period": range(6), "event": [1, 1, 1, 0, 1, 1], "risk": 0.1})
    on = sa.risk_adjusted_cusum(d, limit=1.0).to_frame()
    off = sa.risk_adjusted_cusum(d, limit=1.0, reset=False).to_frame()
    w1 = math.log(2 / 1.1)
    assert on["cusum_upper"].iloc[1] == pytest.approx(2 * w1) and on["cusum_upper"].iloc[2] == pytest.approx(w1)
    assert off["cusum_upper"].iloc[2] == pytest.approx(3 * w1)
    assert list(on["signal_upper"]) == [False, True, False, False, True, False]
    assert list(off["signal_upper"]) == [False, True, False, False, False, False]  # one spell above h


def test_vlad_and_units_table():
    d = _data("sim")
    res = sa.risk_adjusted_cusum(d, limit=3.0)
    u = res.to_frame("units").set_index("unit")
    grouped = d.groupby("site_id")
    np.testing.assert_allclose(u["expected"], grouped["risk"].sum(), rtol=1e-12)
    assert list(u["n_events"]) == list(grouped["event"].sum())
    np.testing.assert_allclose(u["vlad"], u["expected"] - u["n_events"], rtol=1e-10)
    last = res.to_frame().groupby("unit")["vlad"].last()
    np.testing.assert_allclose(last, u["vlad"], rtol=1e-10)
    assert res.n_units == 3 and res.n_obs == 180
    assert repr(res).startswith("RiskAdjustedCusum(n_units=3")


def test_summary_in_both_languages():
    res = sa.risk_adjusted_cusum(_data("sim"), odds_ratio=(2, 0.5), limit=(2.5, 2.0))
    en, fr = res.summary(language="en"), res.summary(language="fr")
    assert "3 units" in en and "signalled" in en and "S2" in en
    assert "unités" in fr and "S2" in fr


def test_embedded_simulation_with_a_fitted_risk_model():
    """The embedded study's encounters: risk from a logistic model (statsmodels) on age and sex."""
    import statsmodels.formula.api as smf

    enc = sa.simulate_scaleup(seed=3).tables["encounters"]
    enc = enc[enc["site_id"].isin(sorted(enc["site_id"].unique())[:3])].copy()
    fit = smf.logit("event ~ age + female", data=enc).fit(disp=0)
    enc["risk"] = fit.predict(enc)
    res = sa.risk_adjusted_cusum(enc, odds_ratio=(2, 0.5), arl0=500)
    u = res.to_frame("units")
    assert len(u) == 3 and u["n_obs"].sum() == len(enc)
    np.testing.assert_allclose(u[["arl0_upper", "arl0_lower"]].to_numpy(), 500, rtol=1e-5)
    # a logistic model with an intercept reproduces the total of events: the VLADs sum to 0
    assert abs(u["vlad"].sum()) < 1e-6
    assert (u["arl1_upper"] < 500).all() and (u["arl1_lower"] < 500).all()


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, kwargs, fragments", [
    (lambda d: d.assign(risk=d["risk"].where(d.index != 3, 0.0)), {},
     ["table 'data', column 'risk'", "(first: 3)", "strictly between 0 and 1"]),
    (lambda d: d.assign(risk=d["risk"].where(d.index != 4, 1.2)), {},
     ["column 'risk'", "(first: 4)", "1.2"]),
    (lambda d: d.assign(event=d["event"].where(d.index != 2, 2)), {},
     ["table 'data', column 'event'", "(first: 2)", "not 0 or 1"]),
    (lambda d: d.assign(event=d["event"].astype(float).where(d.index != 5)), {},
     ["column 'event'", "(first: 5)", "missing"]),
    (lambda d: d.assign(risk=d["risk"].where(d.index != 6)), {}, ["column 'risk'", "(first: 6)", "missing"]),
    (lambda d: d.assign(period=d["period"].astype(float).where(d.index != 7)), {},
     ["column 'period'", "(first: 7)", "missing"]),
    (lambda d: d.assign(site_id=d["site_id"].where(d.index != 8)), {},
     ["column 'site_id'", "(first: 8)", "missing"]),
    (None, {"risk": "p"}, ["table 'data'", "missing column(s) ['p']"]),
    (None, {"odds_ratio": 1.0}, ["argument 'odds_ratio'", "above odds_ratio_null"]),
    (None, {"odds_ratio": (2, 3)}, ["argument 'odds_ratio'", "one of each"]),
    (None, {"odds_ratio": -2}, ["argument 'odds_ratio'", "positive"]),
    (None, {"limit": 0}, ["argument 'limit'", "positive"]),
    (None, {"limit": (3, 2)}, ["argument 'limit'", "gives two values"]),
    (None, {"limit": 3, "arl0": 500}, ["either limit=", "not both"]),
    (None, {"arl0": 1.0}, ["argument 'arl0'", "above 1"]),
    (None, {"arl0": 2.0}, ["argument 'arl0'", "below the smallest in-control run length"]),
    (None, {"reset": "yes"}, ["argument 'reset'"]),
])
def test_bad_inputs_name_the_problem(change, kwargs, fragments):
    d = _data("hand")
    if change is not None:
        d = change(d)
    with pytest.raises(ScaleupDataError) as e:
        sa.risk_adjusted_cusum(d, **kwargs)
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def test_plot_arguments():
    res = sa.risk_adjusted_cusum(_data("hand"), odds_ratio=(2, 0.5), limit=(1.2, 0.8))
    with pytest.raises(ScaleupDataError, match="not a unit of the chart"):
        res.plot_cusum(unit="Z")
    with pytest.raises(ScaleupDataError, match="single unit"):
        import matplotlib.pyplot as plt

        res.plot_vlad(ax=plt.subplots()[1])
    assert res.plot_cusum(unit="A").get_title()
    assert res.plot_vlad().shape == (1, 3)
    with pytest.raises(ScaleupDataError, match="kind must be"):
        res.to_frame("rows")
