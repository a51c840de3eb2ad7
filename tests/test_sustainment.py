"""Sustainment (issue 17): the data behind it, the simulator's planted model, and the report sections.

How the numbers are checked:

* ``deadoption_times``: against the simulator's planted per-site table (``truth.site_sustainment``,
  computed from the latent times, not from the tables) and a hand-computed example;
* the rate ratio of the ``sustainment`` section: against R's ``poisson.test`` (stats), reference values
  from ``tests/reference/ref_sustainment.R`` -> ``sustainment.json``;
* the simulator's sustainment model, by *recovery over seeds* (known truth, fixed seeds, so the test is
  deterministic): the Cox model (``cox_model``, itself validated against R ``survival`` in
  ``test_cox.py``) recovers the planted log hazard ratios of the PSAT score and of fidelity; an
  independent discrete-time model (binomial GLM with complementary log-log link on site-periods, the
  exact grouped-time form of the planted proportional hazards; statsmodels) recovers the hazard ratio
  after the support ends; ``support_withdrawal_effects`` recovers the planted effects during and after
  the support and their ratio. Coverage of the 95% intervals must lie in the binomial range of the
  number of seeds, and the mean estimate within 3 Monte Carlo standard errors of the truth;
* the report sections, on the embedded default, on the hand-built small study (5 adopting sites, 2
  partial de-adoptions) and on the null study (no sustainment tables: every section steps aside).
"""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.steps._section import SECTIONS, NotApplicable
from scaleup_analysis.steps.step5_sustainment import _exposure, _split_at_withdrawal, rate_ratio
from tests.conftest import load_reference

STUDIES = Path(__file__).parent / "studies"
KEYS = ("sustainment", "sustainment_predictors", "effect_after_support")


def _times(sim, **kw):
    t = sim.tables
    return sa.deadoption_times(t["sites"], last_period=sim.params["n_periods"], deadoption=t["deadoption"],
                               support=t["support"], site_assessments=t["site_assessments"], **kw)


# ----------------------------------------------------------------------------------------------
# deadoption_times
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 20261123])
def test_deadoption_times_equal_the_planted_site_table(seed):
    sim = sa.simulate_scaleup(seed=seed, patients_per_site_period=2)
    got = _times(sim).set_index("site_id")
    truth = sim.truth.site_sustainment.set_index("site_id")
    assert list(got.index) == list(truth.index)  # adopting sites, in the order of `sites`
    assert (got["time"] == truth["time"]).all() and (got["event"] == truth["event"]).all()
    np.testing.assert_allclose(got["score"], truth["psat_score"], rtol=0, atol=1e-12)
    w = truth["withdrawal_period"].where(np.isfinite(truth["withdrawal_period"]))
    w = w.where(w <= sim.params["n_periods"])  # a support ending after the data is "not withdrawn"
    np.testing.assert_array_equal(got["withdrawal_period"].to_numpy(), w.to_numpy())
    assert (got.loc[got["event"] == 1, "extent"] == truth.loc[truth["event"] == 1, "extent"]).all()
    assert got.loc[got["event"] == 0, ["extent", "reason"]].isna().all().all()


def test_deadoption_times_hand_computed():
    sites = pd.DataFrame({"site_id": ["A", "B", "C", "D"], "adoption_period": [2, 3, None, 8],
                          "rss_code": ["01", "01", "05", "05"]})
    stops = pd.DataFrame({"site_id": ["A", "B"], "period": [6, 9], "extent": ["complete", "partial"],
                          "reason": ["funding_ended", "low_fit"]})
    support = pd.DataFrame({"site_id": ["A", "B", "D", "A"], "support": ["facilitation", "facilitation",
                                                                         "facilitation", "champion"],
                            "start_period": [2, 3, 8, 2], "end_period": [5, None, None, 4]})
    psat = pd.DataFrame({"site_id": ["A", "A", "B", "D"], "instrument": "PSAT",
                         "domain": ["funding_stability", "partnerships", "funding_stability", "partnerships"],
                         "score": [3.0, 5.0, 6.5, 4.0]})
    got = sa.deadoption_times(sites, last_period=8, deadoption=stops, support=support, site_assessments=psat)
    # A: adopted in 2, first period without it 6 -> 4; B: stopped in 9 = last + 1 -> 6; D: adopted in the
    # last period, censored at 0; C never adopted (left out)
    assert got["site_id"].tolist() == ["A", "B", "D"]
    assert got["time"].tolist() == [4, 6, 0] and got["event"].tolist() == [1, 1, 0]
    assert got["withdrawal_period"].tolist()[0] == 5 and np.isnan(got["withdrawal_period"].tolist()[1:]).all()
    assert got["support_time"].tolist()[0] == 3  # the facilitation spell, not the champion's
    assert got["score"].tolist() == [4.0, 6.5, 4.0]
    assert got["score_partnerships"].tolist()[0] == 5.0 and np.isnan(got["score_partnerships"].iloc[1])
    assert got["rss_code"].tolist() == ["01", "01", "05"]  # the sites' columns are kept


@pytest.mark.parametrize("change, fragments", [
    (lambda s, d: (s, d.assign(period=[2, 9])), ["table 'deadoption', column 'period'", "1 row(s) (index 0)",
                                                  "not after the site's adoption period"]),
    (lambda s, d: (s, d.assign(site_id=["A", "C"])), ["column 'site_id'", "adoption_period is empty", "'C'"]),
    (lambda s, d: (s, d.assign(site_id=["A", "Z"])), ["name a site absent from 'sites'"]),
    (lambda s, d: (s, pd.concat([d, d.iloc[:1]])), ["repeat the same site_id"]),
    (lambda s, d: (s.assign(adoption_period=[2, 3.5, None]), d), ["without a whole period number"]),
    (lambda s, d: (s.drop(columns="adoption_period"), d), ["table 'sites' has no column 'adoption_period'"]),
])
def test_deadoption_times_bad_input_names_table_column_and_rows(change, fragments):
    sites = pd.DataFrame({"site_id": ["A", "B", "C"], "adoption_period": [2, 3, None]})
    stops = pd.DataFrame({"site_id": ["A", "B"], "period": [5, 6], "extent": ["complete", "partial"],
                          "reason": ["other", "other"]})
    s, d = change(sites, stops)
    with pytest.raises(ScaleupDataError) as info:
        sa.deadoption_times(s, last_period=8, deadoption=d)
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))
    assert "adoption_period" in sites and len(stops) == 2  # inputs untouched


# ----------------------------------------------------------------------------------------------
# rate ratio (sustainment section) against R poisson.test
# ----------------------------------------------------------------------------------------------
def _r_number(v):
    return {"Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan, "NA": math.nan}.get(v, v)


def test_rate_ratio_matches_r_poisson_test():
    cells = load_reference("sustainment")["rate_ratio"]
    assert len(cells) == 152  # 5 x 4 x 2 x 2 x 2 grid minus the 8 cells without events
    for c in cells:
        got = rate_ratio(c["x1"], c["t1"], c["x2"], c["t2"], level=c["level"])
        for key in ("estimate", "ci_low", "ci_high", "pvalue"):
            want = _r_number(c[key])
            if math.isinf(want) or want == 0:
                assert got[key] == want, (c, key, got[key])
            else:
                assert got[key] == pytest.approx(want, rel=1e-10), (c, key)  # closed forms


# ----------------------------------------------------------------------------------------------
# the simulator's sustainment model is recovered (known truth, fixed seeds)
# ----------------------------------------------------------------------------------------------
SEEDS = range(100)
RECOVERY = dict(n_sites=200, patients_per_site_period=2, deadoption_rate=0.04)


def _coverage_ok(hits: int, n: int) -> bool:
    # 95% intervals: the count of covering intervals lies within the central 99.8% of Binomial(n, 0.95)
    from scipy import stats

    lo, hi = stats.binom.ppf([0.001, 0.999], n, 0.95)
    return lo <= hits <= hi


@pytest.fixture(scope="module")
def recovery_sims():
    return [sa.simulate_scaleup(seed=s, **RECOVERY) for s in SEEDS]


def test_cox_recovers_the_planted_hazard_ratios_of_psat_and_fidelity(recovery_sims):
    est, hits = {"psat_score": [], "fidelity": []}, {"psat_score": 0, "fidelity": 0}
    for sim in recovery_sims:
        tr = sim.truth
        truth = {"psat_score": tr.deadoption_beta_psat, "fidelity": tr.deadoption_beta_fidelity}
        coef = sa.cox_model(tr.site_sustainment, ["psat_score", "fidelity"], time="time",
                            event="event").coef.set_index("term")
        for term, value in truth.items():
            est[term].append(coef.loc[term, "estimate"])
            hits[term] += coef.loc[term, "ci_low"] < value < coef.loc[term, "ci_high"]
    n = len(recovery_sims)
    for term, value in truth.items():
        assert _coverage_ok(hits[term], n), (term, hits[term])
        mc_se = np.std(est[term], ddof=1) / math.sqrt(n)
        assert abs(np.mean(est[term]) - value) < 3 * mc_se, (term, np.mean(est[term]), value, mc_se)


def test_discrete_time_model_recovers_the_hazard_ratio_after_the_support_ends(recovery_sims):
    """Site-period data: P(stop in period k | delivering) has cloglog = log h0 + beta'x + log HR_W 1[k > L],
    the exact grouped form of the planted piecewise-constant proportional hazard."""
    est, hits = [], 0
    for sim in recovery_sims:
        tr = sim.truth
        ss = tr.site_sustainment
        L = (ss["withdrawal_period"] - ss["adoption_period"]).to_numpy()  # each site's periods of support
        rows = np.repeat(np.arange(len(ss)), ss["time"])
        k = np.concatenate([np.arange(1, t + 1) for t in ss["time"]])
        y = ((k == ss["time"].to_numpy()[rows]) & (ss["event"].to_numpy()[rows] == 1)).astype(float)
        X = np.column_stack([np.ones(len(k)), ss["psat_score"].to_numpy()[rows], ss["fidelity"].to_numpy()[rows],
                             (k >= L[rows]).astype(float)])  # the passage into the first period without support
        fit = sm.GLM(y, X, family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit()
        lo, hi = fit.conf_int()[3]
        truth = math.log(tr.deadoption_hr_withdrawal)
        est.append(fit.params[3])
        hits += lo < truth < hi
    assert _coverage_ok(hits, len(est)), hits
    assert abs(np.mean(est) - truth) < 3 * np.std(est, ddof=1) / math.sqrt(len(est))


def test_time_varying_cox_recovers_every_planted_hazard_ratio(recovery_sims):
    """The report's model: each site split where its support ends (counting process), the end of the
    support as a time-varying covariate, with the PSAT score and fidelity."""
    est, hits = {}, {}
    for sim in recovery_sims:
        tr = sim.truth
        ss = tr.site_sustainment.assign(support_time=lambda d: d["withdrawal_period"] - d["adoption_period"])
        split = _split_at_withdrawal(ss).merge(ss[["site_id", "psat_score", "fidelity"]], on="site_id")
        coef = sa.cox_model(split, ["after_support", "psat_score", "fidelity"], start="start", time="stop",
                            event="event").coef.set_index("term")
        truth = {"after_support": math.log(tr.deadoption_hr_withdrawal), "psat_score": tr.deadoption_beta_psat,
                 "fidelity": tr.deadoption_beta_fidelity}
        for term, value in truth.items():
            est.setdefault(term, []).append(coef.loc[term, "estimate"])
            hits[term] = hits.get(term, 0) + (coef.loc[term, "ci_low"] < value < coef.loc[term, "ci_high"])
    n = len(recovery_sims)
    for term, value in truth.items():
        assert _coverage_ok(hits[term], n), (term, hits[term])
        assert abs(np.mean(est[term]) - value) < 3 * np.std(est[term], ddof=1) / math.sqrt(n), (term, np.mean(est[term]))


def test_split_rows_and_crude_exposures_agree():
    sim = sa.simulate_scaleup(seed=3, n_sites=60, patients_per_site_period=2, deadoption_rate=0.05)
    times = _times(sim)
    split = _split_at_withdrawal(times)
    e = _exposure(times[times["time"] > 0].reset_index(drop=True))
    length = split["stop"] - split["start"]
    assert length.gt(0).all()
    assert length[split["after_support"] == 1].sum() == e["after"].sum()
    assert length[split["after_support"] == 0].sum() == e["during"].sum()
    assert split.loc[split["after_support"] == 1, "event"].sum() == e["event_after"].sum()
    assert split["event"].sum() == times["event"].sum()
    # one row per site, two for a site whose support ended during its follow-up
    assert split.groupby("site_id").size().max() == 2


def _panel(sim) -> pd.DataFrame:
    t = sim.tables
    o = t["outcomes"][t["outcomes"]["indicator_id"] == "HO_Y"]
    ends = t["support"].set_index("site_id")["end_period"]
    return (o.merge(t["sites"][["site_id", "adoption_period"]])
            .assign(withdrawal_period=lambda d: d["site_id"].map(ends).astype("Float64")))


def test_support_withdrawal_effects_recover_the_planted_decay():
    sims = [sa.simulate_scaleup(seed=s, patients_per_site_period=10) for s in range(60)]
    hits = {"effect_during": 0, "effect_after": 0, "sustainment_ratio": 0}
    errors = []
    for i, sim in enumerate(sims):
        q = sa.support_withdrawal_effects(_panel(sim), outcome="mean", n_boot=199, seed=i).to_frame()
        q = q.set_index("quantity")
        truth = sim.truth.sustainment_effects.set_index("quantity")["value"]
        for name in hits:
            hits[name] += q.loc[name, "ci_low"] < truth[name] < q.loc[name, "ci_high"]
        errors.append(q.loc["sustainment_ratio", "estimate"] - truth["sustainment_ratio"])
    for name, h in hits.items():
        assert _coverage_ok(h, len(sims)), (name, h)
    assert abs(np.mean(errors)) < 3 * np.std(errors, ddof=1) / math.sqrt(len(errors))
    # the planted decay is visible: the realised ratio of the default draw is below 1
    assert sims[0].truth.sustainment_effects.set_index("quantity").loc["sustainment_ratio", "value"] < 0.9


def test_no_decay_and_no_deadoption_leave_the_effects_unchanged():
    steady = sa.simulate_scaleup(seed=4, n_sites=40, n_periods=12, patients_per_site_period=2, deadoption_rate=0.0,
                                 decay_ratio=1.0)
    assert steady.tables["deadoption"].empty
    r = steady.truth.sustainment_effects.set_index("quantity")["value"]
    assert r["effect_after"] > 0 and len(steady.tables["support"]) == steady.tables["sites"]["adoption_period"].notna().sum()


# ----------------------------------------------------------------------------------------------
# the report sections
# ----------------------------------------------------------------------------------------------
def _run(study, key):
    title, fn = SECTIONS[(5, key)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(study)


@pytest.fixture(scope="module")
def default_study():
    return sa.load_study(None, language="en")


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small") / "study"
    shutil.copytree(STUDIES / "small_study", folder)
    return sa.load_study(folder, language="en")


def test_sections_on_the_embedded_default_state_what_its_numbers_show(default_study):
    st = default_study
    times = _times(sa.simulate_scaleup())
    out = _run(st, "sustainment")
    k, n = int(times["event"].sum()), len(times)
    assert out.findings[0].startswith(f"By quarter 16, {k} of the {n} sites that adopted the innovation")
    assert out.key_figures == [("Sites that stopped delivering the innovation", f"{k} / {n}")]
    # the end of the support: the time-varying Cox model on the sites split where their support ended
    cox = sa.cox_model(_split_at_withdrawal(times), ["after_support"], start="start", time="stop", event="event",
                       cluster="rss_code").coef.iloc[0]
    sentence = next(f for f in out.findings if f.startswith("Compared at the same time since adoption"))
    assert f"was {cox['hazard_ratio']:.2f} (95% CI {cox['hazard_ratio_ci_low']:.2f} to " \
           f"{cox['hazard_ratio_ci_high']:.2f}) times" in sentence
    pred = _run(st, "sustainment_predictors")
    coef = pred.result.coef.set_index("term")
    assert list(coef.index) == ["PSAT score (per point)", "Fidelity, first two quarters (per 0.1)"]
    hr = coef.loc["PSAT score (per point)", ["hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high"]]
    sentence = pred.findings[0]
    # the verdict follows the interval
    if hr["hazard_ratio_ci_high"] < 1:
        assert sentence.startswith("Sites stopped less often as the PSAT sustainability score rises")
    elif hr["hazard_ratio_ci_low"] > 1:
        assert sentence.startswith("Sites stopped more often as the PSAT sustainability score rises")
    else:
        assert sentence.startswith("No clear relation between the PSAT sustainability score and stopping")
    # calibration: observed Kaplan-Meier share and Cox-predicted risk per PSAT category, quoted as computed
    calib = next(t.data for t in pred.tables if t.name == "05_sustainment_by_psat").set_index("category")
    low = calib.loc["low sustainability capacity"]
    assert 0 < low["predicted"] < 1 and low["observed_ci_low"] <= low["observed"] <= low["observed_ci_high"]
    assert f"low sustainability capacity {round(100 * low['observed'])}% (of {int(low['n_sites'])} sites; predicted " \
           f"from the score: {round(100 * low['predicted'])}%)" in pred.findings[-1]
    after = _run(st, "effect_after_support")
    q = after.result.to_frame().set_index("quantity")
    assert f"It kept {round(100 * q.loc['sustainment_ratio', 'estimate'])}% of its effect" in after.findings[1]
    verdict = ("the effect faded" if q.loc["sustainment_ratio", "ci_high"] < 1 else
               "the effect grew" if q.loc["sustainment_ratio", "ci_low"] > 1 else "no clear fading")
    assert verdict in after.findings[1]


def test_sections_on_the_small_hand_built_study(small_study):
    out = _run(small_study, "sustainment")
    assert out.findings[0] == ("By quarter 8, 2 of the 5 sites that adopted the innovation had stopped delivering "
                               "it (0 completely, 2 in part).")
    assert "Reasons given: external support ended (1) and trained staff left (1)." in out.findings
    # 3 sites lost their facilitation within the data; 1 of the 2 stops came after
    assert any(f == "The external facilitation ended within the data at 3 sites; stops after it ended: 1 of 2."
               for f in out.findings)
    pred = _run(small_study, "sustainment_predictors")
    # 2 stops: no hazard model and no interpreted concordance, but the PSAT categories are described
    assert any("No hazard model: 2 sites stopped" in n for n in pred.notes)
    assert any("not interpreted: 2 sites stopped" in n for n in pred.notes)
    assert not any("concordance of" in f for f in pred.findings)
    assert any("(of 1 site)" in f or "(of 2 sites)" in f for f in pred.findings)
    after = _run(small_study, "effect_after_support")
    assert after.findings[0].startswith("While supported, the innovation changed Patients with controlled HbA1c by")
    # with 6 sites many resamples draw no site followed after its support: the report says how many
    failed = after.result.n_boot_failed
    assert failed > 0 and any(n.startswith(f"In {failed} of the 999 bootstrap resamples of sites") for n in after.notes)


def test_sections_step_aside_with_a_reason_without_sustainment_data():
    st = sa.load_study(STUDIES / "null_study", language="fr")
    for key in KEYS:
        with pytest.raises(NotApplicable) as info:
            _run(st, key)
        assert info.value.reason and info.value.needs
    with pytest.raises(NotApplicable) as info:
        _run(st, "sustainment")
    assert "deadoption" in info.value.reason and "n'a pas de table" in info.value.reason


def test_sustainment_sections_in_french(small_study):
    st = sa.load_study(small_study.folder, language="fr")
    out = _run(st, "sustainment")
    assert out.findings[0].startswith("À la fin des données (trimestre 8), 2 des 5 sites qui ont adopté l'innovation")
