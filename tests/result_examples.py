"""Small examples of every public result class, shared by the tests that check all of them
(``test_vocabulary.py``: names; ``test_display.py``: repr, summary, HTML; ``test_figures.py``: every
plot). ``BUILDERS`` maps a class name to a function building one instance from a small example;
``built(name)`` caches it.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

import scaleup_analysis as sa

@lru_cache(maxsize=1)
def sim():
    return sa.simulate_scaleup(seed=1, n_sites=36, n_periods=8, patients_per_site_period=5)


def _ratings():
    return pd.DataFrame({"session": np.repeat(np.arange(6), 3), "rater": np.tile(["r1", "r2", "r3"], 6),
                         "score": [1, 2, 2, 3, 3, 4, 2, 2, 3, 5, 4, 5, 1, 1, 2, 3, 4, 3]})


def _bask():
    d = sa.load_dataset("baskerville2012")
    return d.assign(vi=d["se"] ** 2)


def _did_panel():
    t = sim().tables
    y = t["encounters"].groupby(["site_id", "period"], as_index=False)["y"].mean()
    y = y.merge(t["sites"][["site_id", "adoption_period"]], on="site_id")
    return y.assign(adoption_period=y["adoption_period"].fillna(0).astype(int))


def _health():
    t = sim().tables
    o = t["outcomes"].merge(t["sites"], on="site_id")
    return o[o["indicator_id"] == "HO_Y"]


def _sw_frame():
    d = sa.stepped_wedge_design(6, 3).to_frame()
    d = d.loc[d.index.repeat(5)].reset_index(drop=True)
    return d.assign(y=np.random.default_rng(1).normal(size=len(d)) + 0.3 * d["treatment"])


def _casemix():
    return sim().tables["encounters"][["site_id", "age", "female", "event"]]


def _loaded_tables():
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="vocabulary_"))
    for name in ("sites", "indicators", "outcomes"):
        sa.write_table_atomic(sim().tables[name], folder / f"{name}.csv")
    return sa.load_tables(folder, check_manifest=False, return_info=True)


def _changes():
    panel = sa.quintuple_aim_panel(sim().tables, subgroup="rurality", comparison=("phase", "not-adopted"))
    return sa.change_from_baseline(panel, baseline_periods=range(1, 3), followup_periods=range(6, 9))


def _fidelity():
    t = sim().tables
    return sa.fidelity_index(t["fidelity_ratings"], t["components"], t["delivery"])


@lru_cache(maxsize=1)
def _sustain_sim():
    # a faster de-adoption and a shorter support than the default, so that every survival estimator has
    # events to work on and some sites are followed after their support ended
    return sa.simulate_scaleup(seed=2, n_sites=60, n_periods=12, patients_per_site_period=2, deadoption_rate=0.08,
                               support_periods=4)


@lru_cache(maxsize=1)
def _deadoption():
    t = _sustain_sim().tables
    return sa.deadoption_times(t["sites"], last_period=12, deadoption=t["deadoption"], support=t["support"],
                               site_assessments=t["site_assessments"])


def _after_support():
    t = _sustain_sim().tables
    o = t["outcomes"][t["outcomes"]["indicator_id"] == "HO_Y"]
    ends = t["support"].set_index("site_id")["end_period"]
    return (o.merge(t["sites"][["site_id", "adoption_period"]], on="site_id")
            .assign(withdrawal_period=lambda d: d["site_id"].map(ends).astype("Float64")))


# one builder per public result class (several where options add attributes or columns)
BUILDERS = {
    "MetaAnalysisResult": lambda: sa.meta_analysis(_bask(), yi="smd", vi="vi", subgroup="design"),
    "MetaRegressionResult": lambda: sa.meta_regression(_bask(), yi="smd", vi="vi", mods=["pperf", "design"]),
    "PermutationTestResult": lambda: sa.meta_regression(_bask(), yi="smd", vi="vi", mods=["pperf"]).permutation_test(
        n_perm=30, seed=1),
    "MultilevelMetaResult": lambda: sa.multilevel_meta_analysis(
        _bask().assign(region=lambda d: d["country"], site=lambda d: d.index.astype(str)), yi="smd", vi="vi",
        group=["region", "site"], mods=["pperf"]),
    "MixedModelResult": lambda: sa.mixed_model(sim().tables["encounters"], "y ~ treated", group="site_id",
                                               re_formula="1 + treated"),
    "ICCResult": lambda: sa.icc(_ratings(), "session", "rater", "score"),
    "ICCMixedResult": lambda: sa.icc_mixed(_ratings(), "session", "rater", "score"),
    "KappaResult": lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 2, 3, 1, 2, 3, 1, 2], "b": [1, 2, 3, 1, 3, 3, 2, 2]}),
                                          "a", "b", weights="linear"),
    "FleissKappaResult": lambda: sa.fleiss_kappa(_ratings(), "session", "rater", "score"),
    "KrippendorffResult": lambda: sa.krippendorff_alpha(_ratings(), "session", "rater", "score", metric="ordinal",
                                                        n_boot=20, seed=1),
    "ScaleReliability": lambda: sa.scale_reliability(
        pd.DataFrame({"q1": [4, 5, 3, 2, 4, 5, 1], "q2": [3, 5, 4, 2, None, 4, 2], "q3": [2, 1, 3, 4, 2, 1, 5],
                      "q4": [5, 4, 3, 1, 4, 5, 2]}), items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1,
        scale_max=5),
    "PremBySite": lambda: sa.prem_by_site(
        pd.DataFrame({"site_id": list("AAAAAABBBBBBCCCCCCDDD"),
                      "age": [30, 40, 50, 60, 45, 35, 60, 70, 80, 75, 65, 55, 40, 50, 45, 55, 60, 35, 50, 60, 70],
                      "score": [4.0, 3.5, 3.8, 3.0, 4.2, 3.9, 3.1, 2.8, 2.5, 2.9, 3.4, 3.6, 3.7, 3.3, 4.0, 3.2, 3.0,
                                4.1, 3.5, 3.0, 2.7]}), score="score", covariates=["age"]),
    "ScaleOmega": lambda: sa.scale_omega(
        pd.DataFrame({"q1": [4, 5, 3, 2, 4, 5, 1, 3], "q2": [3, 4, 4, 2, 5, 3, 2, 2], "q3": [2, 3, 3, 4, 2, 1, 4, 2],
                      "q4": [5, 3, 3, 1, 4, 3, 2, 5]}), items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1,
        scale_max=5),
    "RiskAdjustedCusum": lambda: sa.risk_adjusted_cusum(
        pd.DataFrame({"site_id": np.repeat(["A", "B"], 12), "period": np.tile(np.repeat(np.arange(1, 5), 3), 2),
                      "event": [0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
                      "risk": np.tile([0.1, 0.3, 0.2, 0.15, 0.4, 0.25], 4)}), odds_ratio=(2, 0.5), limit=(1.0, 0.8)),
    "InstitutionalFunnel": lambda: sa.institutional_funnel(_funnel_sites(), multiplier=100),
    "IndirectStandardization": lambda: sa.indirect_standardization(_casemix(), outcome="event",
                                                                   covariates=["age", "female"]),
    "ReliabilityAdjusted": lambda: sa.reliability_adjusted_values(_casemix(), outcome="event", covariates=["age", "female"],
                                                                  n_draws=500, seed=1),
    "Instrument": lambda: sa.load_instrument("ISAT"),
    "AssessmentScores": lambda: sa.score_assessment(sim().tables["assessments"], "ISAT", n_boot=0,
                                                    min_answered=0.25),
    "Inequality": lambda: sa.inequality(
        pd.DataFrame({"quintile": [1, 2, 3, 4, 5], "events": [10, 12, 15, 18, 20], "n": [100] * 5,
                      "pop": [1000] * 5}).assign(p=lambda d: d["events"] / d["n"]),
        "p", "quintile", "pop", events="events", n="n"),
    "EquityEffects": lambda: sa.equity_effects(_health(), "mean", before=[1, 2], after=[7, 8]),
    "QuintupleAimPanel": lambda: _changes().panel,
    "ChangeFromBaseline": _changes,
    "DeleteriousEffects": lambda: sa.deleterious_effects(_changes(), contrast="comparison", by="subgroup"),
    "RunsAnalysis": lambda: sa.runs_analysis(list(range(12))),
    "ControlChart": lambda: sa.control_chart(_health(), "mean", chart="xbar", x="period", by="rss_code"),
    "ITSResult": lambda: sa.interrupted_time_series(
        _health().dropna(subset=["adoption_period"]), "period", "mean", "adoption_period", unit="site_id"),
    "StaggeredDiDResult": lambda: sa.staggered_did(_did_panel(), "y", "site_id", "period", "adoption_period",
                                                   n_boot=49, seed=1),
    "AggregatedDiDResult": lambda: sa.staggered_did(_did_panel(), "y", "site_id", "period", "adoption_period",
                                                    n_boot=0).aggregate("group"),
    "TWFEResult": lambda: sa.twfe_did(_did_panel(), "y", "site_id", "period", "adoption_period", event_study=True),
    "BaconDecomposition": lambda: sa.bacon_decomposition(_did_panel(), "y", "site_id", "period", "adoption_period"),
    "SteppedWedgeDesign": lambda: sa.stepped_wedge_design(6, 3, cluster_sizes=20),
    "SteppedWedgePower": lambda: sa.stepped_wedge_power(sa.stepped_wedge_design(6, 3), 0.3, sigma2=1, icc=0.05, m=20),
    "SteppedWedgePowerSim": lambda: sa.stepped_wedge_power_sim(sa.stepped_wedge_design(6, 3), 0.3, sigma2=1,
                                                               icc=0.05, m=5, n_sim=20, seed=1),
    "SteppedWedgeAnalysis": lambda: sa.stepped_wedge_analysis(_sw_frame(), "y", "unit", "period", "treatment"),
    "AdaptationSummary": lambda: sa.summarize_adaptations(sim().tables["adaptations"], sites=sim().tables["sites"]),
    "ComponentAnalysis": lambda: sa.component_analysis(
        sa.effect_sizes(sa.load_dataset("landenberger2005"), "OR", ai="n.cbt.non", bi="n.cbt.rec",
                        ci="n.ctrl.non", di="n.ctrl.rec"),
        components=["cbt.angerctrl", "cbt.intpprbsolv"], n_perm=10, seed=1),
    "AdaptationEffects": lambda: sa.adaptation_effects(sim().tables["outcomes"], sim().tables["adaptations"],
                                                       sim().tables["sites"], indicator="HO_Y", inference="cluster"),
    "DoseResponse": lambda: sa.fidelity_dose_response(sim().tables["outcomes"], _fidelity(), sim().tables["sites"],
                                                      indicator="HO_Y", inference="cluster"),
    "ReaimResult": lambda: sa.reaim(sim().tables),
    "VoltageDropResult": lambda: sa.voltage_drop(
        data=sa.site_effects(sim().tables["outcomes"], sim().tables["sites"], "HO_Y"),
        levels=["pilot", "scale-up"], n_boot=5, seed=1),
    "ScaleupTruth": lambda: sim().truth,
    "SimulatedScaleup": sim,
    "Study": lambda: sa.load_study(Path(__file__).parent / "studies" / "small_study"),
    "StudySettings": lambda: sa.load_study(Path(__file__).parent / "studies" / "small_study").settings,
    "FidelityDrift": lambda: sa.fidelity_drift(_fidelity()),
    "LoadedTables": _loaded_tables,
    "KaplanMeierResult": lambda: sa.kaplan_meier(_deadoption().assign(wave=lambda d: d["cohort"]), by="wave"),
    "CumulativeIncidenceResult": lambda: sa.cumulative_incidence(_deadoption(), event="reason", censored=None),
    "ConcordanceResult": lambda: sa.concordance(_deadoption(), predictor="score"),
    "CoxResult": lambda: sa.cox_model(_deadoption().assign(region_id=lambda d: d["rss_code"]), ["score"],
                                      time="time", event="event", cluster="rss_code"),
    "SupportWithdrawalResult": lambda: sa.support_withdrawal_effects(_after_support(), outcome="mean", n_boot=49,
                                                                     seed=1),
}


_RESULTS: dict = {}


def built(cname: str):
    """The example result of class ``cname`` (built once per test session)."""
    if cname not in _RESULTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _RESULTS[cname] = BUILDERS[cname]()
    return _RESULTS[cname]

def _funnel_sites() -> pd.DataFrame:
    """Readmissions among discharges in 120 sites, over-dispersed, with 3 planted outliers."""
    rng = np.random.default_rng(7)
    n = rng.integers(40, 3000, 120)
    p = 1 / (1 + np.exp(-(-2.0 + rng.normal(0, 0.15, 120))))
    p[[3, 50, 99]] = [0.30, 0.04, 0.26]
    return pd.DataFrame({"site_id": [f"S{i:03d}" for i in range(120)], "events": rng.binomial(n, p), "n": n})

