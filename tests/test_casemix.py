"""Case-mix adjustment (indirect standardisation, reliability-adjusted unit values) against R.

Reference: tests/reference/casemix.json, written by tests/reference/ref_casemix.R (R 4, stats::glm
with ``glm.control(epsilon = 1e-14, maxit = 100)``, lme4::glmer with a tight PIRLS/bobyqa), on data
simulated in R (seeded, stored in the JSON) and a hand-built study of 4 units x 20 patients:

* the case-mix models ``glm(event ~ age + female + factor(x), binomial)`` (all rows, and fitted on the
  ``ref`` rows only -- half the units have no reference row and get their expected counts from their
  covariates), ``glm(y ~ age + female + offset(log(time)), poisson)``: coefficients, SEs, z and p of
  ``summary.glm``, deviance, AIC -- 1e-8 relative (observed: coefficients, deviance 6e-15; SE, z, p
  5e-9, because R's ``glm`` takes the covariance from the weights of its last-but-one IRLS iterate);
* per unit O, E, O/E, its exact (Garwood) interval from ``qchisq``, the risk-adjusted rate and its
  interval, O - E, z, the crude rate and the c-statistic (Mann-Whitney AUC, fitted values tied to
  10 decimals) -- 1e-8 relative (observed: 5e-12 for O - E and z, below 5e-15 for the others);
* ``ranef(glmer(event ~ age + female + factor(x) + (1 | unit)), condVar = TRUE)``: conditional modes
  and SDs, tau2 -- 1e-4 absolute (iterative; observed ~2e-7), and the reliability identity
  ``1 - condVar / tau2``.

The rank intervals have no R reference: they are checked by simulation with a known truth (a unit
with a planted large effect and many patients ranks first with a narrow interval; a tiny unit never
gets a narrow extreme interval).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("casemix")
RTOL = 1e-8
UNIT_COLS = ["events", "expected", "ratio", "ratio_ci_low", "ratio_ci_high", "adjusted_rate", "adjusted_rate_ci_low",
             "adjusted_rate_ci_high", "excess", "z"]


def _data(name):
    return pd.DataFrame(REF[name]["data"])


def _close(actual, expected, what, rtol=RTOL, atol=1e-10):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol,
                               err_msg=what)


def _check(res, ref, name):
    coef = res.coef
    assert len(coef) == len(ref["coef"]["term"])
    for col in ("estimate", "se", "statistic"):
        _close(coef[col], ref["coef"][col], f"{name}: coef {col}")
    _close(coef["pvalue"], ref["coef"]["pvalue"], f"{name}: coef pvalue", rtol=1e-6, atol=1e-14)
    u = res.to_frame()
    assert list(u["unit"]) == ref["units"]["unit"]
    _close(u["n"], ref["units"]["n"], f"{name}: n")
    for col in UNIT_COLS:
        # excess and z are ~0 for some units: an absolute tolerance of 1e-10 as well
        _close(u[col], ref["units"][col], f"{name}: {col}")
    _close(res.crude_rate, ref["crude_rate"], f"{name}: crude rate")
    if "deviance" in ref:
        _close(res.deviance, ref["deviance"], f"{name}: deviance")
    if "aic" in ref:
        _close(res.AIC, ref["aic"], f"{name}: AIC")
    if "auc" in ref:
        _close(res.c_statistic, ref["auc"], f"{name}: c-statistic")


def test_logistic_all_rows_matches_glm():
    res = sa.indirect_standardization(_data("sim_binom"), outcome="event", covariates=["age", "female", "x"],
                                      unit="unit")
    _check(res, REF["sim_binom"]["all"], "sim_binom")
    assert list(res.coef["term"]) == ["Intercept", "age", "female", "x[T.b]", "x[T.c]"]
    assert res.family == "binomial" and res.n_obs == res.n_reference == len(_data("sim_binom"))
    # fitted on all rows with an intercept: sum of E = sum of O (the score equation)
    u = res.to_frame()
    assert u["expected"].sum() == pytest.approx(u["events"].sum(), rel=1e-10)


def test_level_090_matches_qchisq():
    res = sa.indirect_standardization(_data("sim_binom"), outcome="event", covariates=["age", "female", "x"],
                                      unit="unit", level=0.90)
    ref = REF["sim_binom"]["all"]["units90"]
    u = res.to_frame()
    for col in ("ratio_ci_low", "ratio_ci_high", "adjusted_rate_ci_low", "adjusted_rate_ci_high"):
        _close(u[col], ref[col], f"level 0.90: {col}")
    assert (u.loc[u["events"] == 0, "ratio_ci_low"] == 0).all()


def test_logistic_reference_rows_formula_matches_glm():
    d = _data("sim_binom")
    res = sa.indirect_standardization(d, outcome="event", covariates="age + female + C(x)", unit="unit",
                                      reference="ref")
    _check(res, REF["sim_binom"]["ref"], "sim_binom ref")
    assert res.n_reference == int(d["ref"].sum()) and res.n_obs == len(d)
    assert res.reference == "ref"
    # the same with the reference given as 1/0
    res01 = sa.indirect_standardization(d.assign(ref=d["ref"].astype(int)), outcome="event",
                                        covariates="age + female + C(x)", unit="unit", reference="ref")
    _close(res01.to_frame()["expected"], res.to_frame()["expected"], "reference as 1/0", rtol=1e-12)


def test_poisson_with_person_time_matches_glm():
    res = sa.indirect_standardization(_data("sim_pois"), outcome="y", covariates=["age", "female"], unit="unit",
                                      family="poisson", person_time="time")
    _check(res, REF["sim_pois"]["all"], "sim_pois")
    u = res.to_frame()
    _close(u["person_time"], _data("sim_pois").groupby("unit")["time"].sum(), "person-time", rtol=1e-12)
    assert np.isnan(res.c_statistic)


def test_hand_built_study_matches_glm():
    res = sa.indirect_standardization(_data("hand"), outcome="event", covariates=["age", "female"], unit="unit")
    _check(res, REF["hand"]["all"], "hand")
    assert res.n_units == 4


def test_conditional_modes_match_glmer():
    ref = REF["sim_binom"]["glmer"]
    res = sa.reliability_adjusted_values(_data("sim_binom"), outcome="event", covariates=["age", "female", "x"],
                                         unit="unit", seed=1)
    u = res.to_frame()
    assert list(u["unit"]) == ref["ranef_groups"]
    # iterative (Laplace optimum): 1e-4 absolute
    np.testing.assert_allclose(u["estimate"], ref["ranef"], atol=1e-4)
    np.testing.assert_allclose(u["se"], ref["ranef_condsd"], atol=1e-4)
    assert res.tau2 == pytest.approx(ref["tau2"], abs=1e-4)
    np.testing.assert_allclose(res.model.fixed["estimate"], list(ref["fixef"].values()), atol=1e-4)
    # reliability = 1 - condVar / tau2 at the Laplace approximation
    condvar = np.asarray(ref["ranef_condsd"]) ** 2
    np.testing.assert_allclose(u["reliability"], 1 - condvar / ref["tau2"], atol=1e-4)
    med = np.median(1 / (1 / condvar - 1 / ref["tau2"]))
    assert res.rankability == pytest.approx(ref["tau2"] / (ref["tau2"] + med), abs=1e-4)
    z = 1.959963984540054
    np.testing.assert_allclose(u["odds_ratio_ci_high"], np.exp(u["estimate"] + z * u["se"]), rtol=1e-12)
    # more patients, more reliable (same model, covariates aside)
    assert np.corrcoef(u["n"], u["reliability"])[0, 1] > 0.9


def _planted(seed):
    """30 units: unit BIG (2000 patients) with a planted log odds ratio of +1.5, unit TINY (5 patients),
    28 others of 150 patients with effects N(0, 0.3^2)."""
    rng = np.random.default_rng(seed)
    sizes = {"BIG": 2000, "TINY": 5, **{f"U{i:02d}": 150 for i in range(28)}}
    effect = {"BIG": 1.5, "TINY": 0.0, **{f"U{i:02d}": rng.normal(0, 0.3) for i in range(28)}}
    unit = np.concatenate([[u] * n for u, n in sizes.items()])
    age = rng.normal(60, 10, unit.size)
    lp = -1.5 + 0.04 * (age - 60) + np.array([effect[u] for u in unit])
    return pd.DataFrame({"site_id": unit, "age": age, "event": rng.binomial(1, 1 / (1 + np.exp(-lp)))})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rank_intervals_with_known_truth(seed):
    res = sa.reliability_adjusted_values(_planted(seed), outcome="event", covariates=["age"], seed=seed)
    u = res.to_frame().set_index("unit")
    k = res.n_units
    # the planted large, precisely measured unit ranks first with a narrow interval
    assert u.loc["BIG", "rank"] == 1
    assert u.loc["BIG", "rank_ci_low"] == 1 and u.loc["BIG", "rank_ci_high"] <= 2
    # a unit of 5 patients is never given a narrow interval at either end
    assert u.loc["TINY", "rank_ci_high"] - u.loc["TINY", "rank_ci_low"] >= k / 2
    assert u.loc["TINY", "reliability"] < 0.2
    assert (u["rank_ci_low"] <= u["rank"]).all() and (u["rank"] <= u["rank_ci_high"]).all()
    assert sorted(u["rank"]) == list(range(1, k + 1))


def test_rank_draws_are_seeded():
    d = _planted(4)
    a = sa.reliability_adjusted_values(d, outcome="event", covariates=["age"], n_draws=500, seed=7).to_frame()
    b = sa.reliability_adjusted_values(d, outcome="event", covariates=["age"], n_draws=500, seed=7).to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_missing_rows_are_left_out_as_glm_na_omit():
    d = _data("sim_binom")
    holes = d.copy()
    holes.loc[[3, 50], "age"] = np.nan
    holes.loc[[7], "event"] = np.nan
    holes.loc[[9], "x"] = None
    with pytest.warns(sa.RowsOmittedWarning, match="4 row"):
        res = sa.indirect_standardization(holes, outcome="event", covariates=["age", "female", "x"], unit="unit")
    full = sa.indirect_standardization(d.drop(index=[3, 7, 9, 50]), outcome="event",
                                       covariates=["age", "female", "x"], unit="unit")
    pd.testing.assert_frame_equal(res.to_frame(), full.to_frame())
    assert res.n_omitted == 4 and res.n_obs == len(d) - 4


def test_column_names_are_never_code():
    d = _data("hand").rename(columns={"age": 'age") + __import__("os").getcwd() + ("'})
    res = sa.indirect_standardization(d, outcome="event", covariates=[d.columns[1], "female"], unit="unit")
    ref = REF["hand"]["all"]
    _close(res.coef["estimate"], ref["coef"]["estimate"], "coefficients with an odd column name")
    assert res.coef["term"].iloc[1] == d.columns[1]


def test_invariances_row_order_and_relabelling():
    d = _data("sim_binom")
    base = sa.indirect_standardization(d, outcome="event", covariates=["age", "female", "x"], unit="unit").to_frame()
    shuffled = d.sample(frac=1, random_state=3)
    res = sa.indirect_standardization(shuffled, outcome="event", covariates=["age", "female", "x"],
                                      unit="unit").to_frame()
    pd.testing.assert_frame_equal(res, base, rtol=1e-9)
    renamed = d.assign(unit="site " + d["unit"])
    res = sa.indirect_standardization(renamed, outcome="event", covariates=["age", "female", "x"],
                                      unit="unit").to_frame()
    assert list(res["unit"]) == ["site " + u for u in base["unit"]]
    _close(res["ratio"], base["ratio"], "relabelled units", rtol=1e-12)


def test_funnel_of_the_ratios():
    res = sa.indirect_standardization(_data("sim_binom"), outcome="event", covariates=["age", "female", "x"],
                                      unit="unit")
    f = res.funnel(overdispersion="none")
    assert isinstance(f, sa.InstitutionalFunnel) and f.kind == "ratio" and f.target == 1.0
    ff = f.to_frame()
    _close(ff["value"], res.to_frame()["ratio"], "funnel values are O/E", rtol=1e-12)
    _close(ff["expected"], res.to_frame()["expected"], "funnel precision is E", rtol=1e-12)


def test_embedded_simulation():
    enc = sa.simulate_scaleup(seed=1).tables["encounters"]
    res = sa.indirect_standardization(enc, outcome="event", covariates=["age", "female"])
    u = res.to_frame()
    assert res.n_units == enc["site_id"].nunique() and len(u) == res.n_units
    assert u["expected"].sum() == pytest.approx(u["events"].sum(), rel=1e-9)
    assert res.coef.set_index("term").loc["age", "estimate"] > 0  # the simulation plants an age effect
    assert 0.5 < res.c_statistic < 1
    assert res.funnel().n_units == res.n_units


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_column_and_rows():
    d = _data("hand")
    with pytest.raises(ScaleupDataError, match=r"column 'event' \(argument 'outcome'\).*0 or 1"):
        sa.indirect_standardization(d.assign(event=d["event"] * 2), outcome="event", covariates=["age"], unit="unit")
    with pytest.raises(ScaleupDataError, match="person_time= is for family='poisson'"):
        sa.indirect_standardization(d, outcome="event", covariates=["age"], unit="unit", person_time="age")
    p = _data("sim_pois")
    with pytest.raises(ScaleupDataError, match=r"column 'time' \(argument 'person_time'\).*positive"):
        sa.indirect_standardization(p.assign(time=p["time"] - 1), outcome="y", covariates=["age"], unit="unit",
                                    family="poisson", person_time="time")
    with pytest.raises(ScaleupDataError, match=r"column 'female' \(argument 'reference'\).*True/False"):
        sa.indirect_standardization(d.assign(female=d["female"] + 1), outcome="event", covariates=["age"],
                                    unit="unit", reference="female")
    with pytest.raises(ScaleupDataError, match=r"missing column\(s\) \['nope'\]"):
        sa.indirect_standardization(d, outcome="event", covariates=["nope"], unit="unit")
    with pytest.raises(ScaleupDataError, match="family must be one of"):
        sa.indirect_standardization(d, outcome="event", covariates=["age"], unit="unit", family="gaussian")
    with pytest.raises(ScaleupDataError, match="left-hand side"):
        sa.indirect_standardization(d, outcome="event", covariates="event ~ age", unit="unit")
    with pytest.raises(ScaleupDataError, match="no event"):
        sa.indirect_standardization(d.assign(event=0), outcome="event", covariates=["age"], unit="unit")
    with pytest.raises(ScaleupDataError, match="collinear"):
        sa.indirect_standardization(d.assign(age2=2 * d["age"]), outcome="event", covariates=["age", "age2"],
                                    unit="unit")
    with pytest.raises(ScaleupDataError, match=r"missing unit in 1 row\(s\) \(first: 4\)"):
        sa.indirect_standardization(d.assign(unit=d["unit"].where(d.index != 4)), outcome="event",
                                    covariates=["age"], unit="unit")


def test_category_outside_the_reference_is_refused():
    d = _data("sim_binom")
    d = d.assign(x=np.where(d["ref"], np.where(d["x"] == "c", "a", d["x"]), d["x"]))  # no 'c' among the ref rows
    with pytest.raises(ScaleupDataError, match="category of a covariate that no reference row has"):
        sa.indirect_standardization(d, outcome="event", covariates=["age", "x"], unit="unit", reference="ref")


def test_reliability_needs_two_units_and_warns_when_singular():
    d = _data("hand")
    with pytest.raises(ScaleupDataError, match="at least 2 units"):
        sa.reliability_adjusted_values(d[d["unit"] == "A"], outcome="event", covariates=["age"], unit="unit")
    rng = np.random.default_rng(5)
    flat = pd.DataFrame({"site_id": np.repeat(list("ABCDEF"), 40), "age": rng.normal(60, 10, 240)})
    flat["event"] = rng.binomial(1, 0.3, 240)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sa.reliability_adjusted_values(flat, outcome="event", covariates=["age"], seed=1)
    if res.tau2 < 1e-8:
        assert any("singular" in str(w.message) and "reliability_adjusted_values" in str(w.message) for w in caught)
        assert res.rankability == pytest.approx(0, abs=1e-6)


def test_summary_and_plot():
    res = sa.reliability_adjusted_values(_planted(1), outcome="event", covariates=["age"], n_draws=500, seed=1)
    text = res.summary()
    assert "Rankability" in text and "BIG" in text
    ax = res.plot_ranks()
    assert ax.get_xlabel()
    ist = sa.indirect_standardization(_data("hand"), outcome="event", covariates=["age", "female"], unit="unit")
    assert "c-statistic" in ist.summary()
