"""Bad-input cases of the rollout, fidelity, adaptation, monitoring, summary and scalability functions
(gathered by ``tests/test_bad_inputs.py``; ``docs/bad_inputs.md`` is generated from them).

Ids start with ``rollout_`` (stepped wedge, staggered DiD, interrupted time series) or ``monitor_``
(fidelity, adaptations, SPC, equity, RE-AIM, voltage drop, summaries, instruments). Per public function
the categories are: wrong type, empty table, one row / one unit, constant values, NaN / inf, extreme
magnitudes and mixed types (a category already covered in ``test_bad_inputs.py`` is not repeated).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from bad_input_support import W, Bad, its_df, sim, sw_design, tbl

import scaleup_analysis as sa

SW = sa.ScaleupWarning


# ----------------------------------------------------------------------------------------------
# small inputs of this area
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _did_panel():
    t = sim()
    y = t["encounters"].groupby(["site_id", "period"], as_index=False)["y"].mean()
    y = y.merge(t["sites"][["site_id", "adoption_period"]], on="site_id")
    return y.assign(adoption_period=y["adoption_period"].fillna(0).astype(int))


def did_panel(**cols):
    return _did_panel().assign(**cols)


def did(fn, d, **kw):
    return getattr(sa, fn)(d, "y", "site_id", "period", "adoption_period", **kw)


def health():
    t = sim()
    o = t["outcomes"].merge(t["sites"], on="site_id")
    return o[o["indicator_id"] == "HO_Y"].reset_index(drop=True)


def sw_frame():
    d = sa.stepped_wedge_design(6, 3).to_frame()
    d = d.loc[d.index.repeat(5)].reset_index(drop=True)
    return d.assign(y=np.random.default_rng(1).normal(size=len(d)) + 0.3 * d["treatment"])


def swa(d):
    return sa.stepped_wedge_analysis(d, "y", "unit", "period", "treatment")


@lru_cache(maxsize=1)
def _fid():
    return sa.fidelity_index(tbl("fidelity_ratings"), tbl("components"), tbl("delivery"))


def fid():
    return _fid().copy()


def fid_set(col, value, row=0):
    d = fid()
    d[col] = d[col].astype(object)
    d.loc[d.index[row], col] = value
    return d


def set_cell(df, col, value, row=0):
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[df.index[row], col] = value
    return df


def outcomes_ho(col, value):
    """The outcomes table with ``col`` set to ``value`` in the first HO_Y row."""
    o = tbl("outcomes")
    return set_cell(o, col, value, row=int(np.flatnonzero(o["indicator_id"] == "HO_Y")[0]))


def ineq_df():
    return pd.DataFrame({"quintile": [1, 2, 3, 4, 5], "events": [10, 12, 15, 18, 20], "n": [100] * 5,
                         "pop": [1000] * 5}).assign(p=lambda d: d["events"] / d["n"])


def ineq(d):
    return sa.inequality(d, "p", "quintile", "pop")


def equity(d):
    return sa.equity_effects(d, "mean", before=[1, 2], after=[7, 8])


def adapt(d):
    return sa.adaptation_effects(d, tbl("adaptations"), tbl("sites"), indicator="HO_Y", inference="cluster")


def dose(d):
    return sa.fidelity_dose_response(d, fid(), tbl("sites"), indicator="HO_Y", inference="cluster")


def reaim_with(delivery):
    return sa.reaim({**sim(), "delivery": delivery})


@lru_cache(maxsize=1)
def _summary():
    return sa.summarize(tbl("encounters"), by=["site_id", "period", "treated"], covariates=[])


def summary(**cols):
    return _summary().assign(**cols)


def encounters(**cols):
    return tbl("encounters").assign(**cols)


def sw_power(**kw):
    kw = {"sigma2": 1.0, "icc": 0.05, "m": 10, **kw}
    return sa.stepped_wedge_power(sw_design(), 0.3, **kw)


def one_site(d, col="site_id"):
    return d[d[col] == d[col].iloc[0]]


E = sa.ScaleupDataError

CASES: list[Bad] = [
    # ------------------------------------------------------------------ the cases of issue 16
    Bad("monitor_fidelity_drift_no_two_periods", "fidelity_drift", "no site observed in two periods (one period only)",
        lambda: sa.fidelity_drift(fid().loc[lambda d: d["period"] == 8]),
        ("no site with a non-missing 'adherence' in 2 or more periods", "no site can be assessed for drift")),
    Bad("monitor_fidelity_drift_short_sites", "fidelity_drift", "sites with fewer than 3 periods (no standard error)",
        lambda: sa.fidelity_drift(fid().loc[lambda d: d["period"] >= 7]),
        ("fewer than 3 periods", "no standard error", "only a run of declines can flag them"), SW),
    Bad("rollout_did_constant_outcome", "staggered_did", "constant outcome (standard errors not estimable)",
        lambda: did("staggered_did", did_panel(y=1.0), n_boot=49, seed=1),
        ("standard error is not estimable", "column 'y' (argument 'outcome') is constant", "(cohort, time)"), SW),
    Bad("rollout_its_maxlags_huge", "interrupted_time_series", "maxlags=10**6 on 24 periods",
        lambda: sa.interrupted_time_series(its_df(), "t", "y", 13, maxlags=10**6),
        ("maxlags=1000000 is not below the number of periods in the series (24)", "at most 23", "default here")),
    Bad("rollout_its_maxlags_negative", "interrupted_time_series", "maxlags=-1",
        lambda: sa.interrupted_time_series(its_df(), "t", "y", 13, maxlags=-1),
        ("'maxlags' must be an integer >= 0", "got -1")),
    Bad("monitor_summarize_empty", "summarize", "empty table (header only)",
        lambda: sa.summarize(tbl("encounters").iloc[:0]), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_summarize_all_missing", "summarize", "every row with a missing outcome",
        lambda: sa.summarize(encounters(y=np.nan)), ("table 'data' has no rows to summarise", "missing value")),
    Bad("rollout_sw_design_huge", "stepped_wedge_design", "10**7 clusters x 10**4 steps (memory)",
        lambda: sa.stepped_wedge_design(10**7, 10**4),
        ("100,010,000,000 cluster-periods", "would need about 1.7 TB of memory", "limit 10,000,000")),
    Bad("rollout_sw_power_sigma2_inf", "stepped_wedge_power", "sigma2 = inf",
        lambda: sw_power(sigma2=np.inf), ("argument 'sigma2'", "must be a finite number in (0, inf)", "got inf")),
    Bad("rollout_sw_power_tau2_nan", "stepped_wedge_power", "tau2 = NaN",
        lambda: sw_power(icc=None, tau2=np.nan), ("argument 'tau2'", "finite number in [0, inf)", "got nan")),
    Bad("rollout_sw_power_icc_nan", "stepped_wedge_power", "icc = NaN",
        lambda: sw_power(icc=np.nan), ("argument 'icc'", "must be a finite number", "got nan")),
    Bad("rollout_sw_power_cp_tau2_inf", "stepped_wedge_power", "cluster_period_tau2 = inf",
        lambda: sw_power(cluster_period_tau2=np.inf), ("argument 'cluster_period_tau2'", "got inf")),
    Bad("rollout_sw_power_sigma2_text", "stepped_wedge_power", "sigma2 given as text",
        lambda: sw_power(sigma2="1"), ("argument 'sigma2'", "got a str")),
    Bad("rollout_sw_power_m_inf", "stepped_wedge_power", "m = inf individuals per cluster-period",
        lambda: sw_power(m=np.inf), ("m (individuals per cluster-period) must be finite",)),
    Bad("rollout_sw_power_m_text", "stepped_wedge_power", "m given as text",
        lambda: sw_power(m="ten"), ("cluster sizes must be numbers", "got a str")),
    Bad("rollout_sw_power_effect_inf", "stepped_wedge_power", "effect = inf",
        lambda: sa.stepped_wedge_power(sw_design(), np.inf, sigma2=1, icc=0.05, m=10),
        ("argument 'effect'", "must be a finite number", "got inf")),
    Bad("rollout_sw_power_target_nan", "stepped_wedge_power", "target power = NaN",
        lambda: sw_power(power=np.nan), ("argument 'power'", "got nan")),
    Bad("rollout_sw_power_sigma2_huge", "stepped_wedge_power", "sigma2 = 1e300",
        lambda: sw_power(sigma2=1e300), ("'sigma2'", "beyond 1e+100", "rescale the outcome")),
    Bad("rollout_sw_power_sigma2_tiny", "stepped_wedge_power", "sigma2 = 1e-300 (detectable effect not resolvable)",
        lambda: sw_power(sigma2=1e-300), ("standard error of the effect is", "too small", "rescale the outcome")),
    Bad("rollout_sw_power_big_design", "stepped_wedge_power", "200 clusters x 200 periods (time)",
        lambda: sa.stepped_wedge_power(sa.stepped_wedge_design(200, 199), 0.3, sigma2=1, icc=0.05, m=10),
        ("200 clusters x 200 periods", "operations per evaluation", "seconds or more")),
    Bad("rollout_sw_power_sim_huge", "stepped_wedge_power_sim", "n_sim = 10**9 (time)",
        lambda: sa.stepped_wedge_power_sim(sw_design(), 0.3, sigma2=1, icc=0.05, m=10, n_sim=10**9),
        ("n_sim=1,000,000,000 replicates", "would take about", "10,000 give a Monte-Carlo standard error")),
    Bad("rollout_sw_power_sim_bool", "stepped_wedge_power_sim", "n_sim = True",
        lambda: sa.stepped_wedge_power_sim(sw_design(), 0.3, sigma2=1, icc=0.05, m=10, n_sim=True),
        ("n_sim must be a positive integer",)),
    Bad("monitor_fidelity_by_empty_by", "fidelity_by", "by = [] (no grouping column)",
        lambda: sa.fidelity_by(fid(), by=[]), ("argument 'by' must name one or more grouping columns", "got none")),
    # ------------------------------------------------------------------ staggered DiD, TWFE, Bacon
    Bad("rollout_did_wrong_type", "staggered_did", "a list instead of a DataFrame",
        lambda: did("staggered_did", [1, 2, 3]), ("must be a pandas DataFrame", "got list")),
    Bad("rollout_did_empty", "staggered_did", "empty table", lambda: did("staggered_did", did_panel().iloc[:0]),
        ("has no rows",)),
    Bad("rollout_did_one_row", "staggered_did", "one row", lambda: did("staggered_did", did_panel().iloc[:1]),
        ("cohort after the last period 1",)),
    Bad("rollout_did_one_unit", "staggered_did", "one unit", lambda: did("staggered_did", one_site(did_panel())),
        ("no never-treated units",)),
    Bad("rollout_did_inf_outcome", "staggered_did", "infinite outcome",
        lambda: did("staggered_did", set_cell(did_panel(), "y", np.inf)), ("missing or infinite in 1 row(s)",)),
    Bad("rollout_did_huge_outcome", "staggered_did", "outcome 1e300",
        lambda: did("staggered_did", did_panel(y=lambda d: d["y"] * 1e300)), ("beyond +/-1e+100", "Rescale the outcome")),
    Bad("rollout_did_text_outcome", "staggered_did", "text in the outcome (mixed types)",
        lambda: did("staggered_did", set_cell(did_panel(), "y", "abc")), ("are not numeric (values 'abc')",)),
    Bad("rollout_twfe_constant_outcome", "twfe_did", "constant outcome (standard error 0)",
        lambda: did("twfe_did", did_panel(y=1.0)), ("standard error is 0", "constant", "p-value are missing"), SW),
    Bad("rollout_twfe_wrong_type", "twfe_did", "a dict instead of a DataFrame", lambda: did("twfe_did", {"y": [1]}),
        ("must be a pandas DataFrame", "got dict")),
    Bad("rollout_twfe_one_unit", "twfe_did", "one unit", lambda: did("twfe_did", one_site(did_panel())),
        ("the treatment does not vary beyond unit and period effects",)),
    Bad("rollout_twfe_inf_outcome", "twfe_did", "infinite outcome",
        lambda: did("twfe_did", set_cell(did_panel(), "y", -np.inf)), ("missing or infinite",)),
    Bad("rollout_twfe_huge_outcome", "twfe_did", "outcome 1e300",
        lambda: did("twfe_did", did_panel(y=1e300)), ("beyond +/-1e+100",)),
    Bad("rollout_twfe_text_outcome", "twfe_did", "text in the outcome",
        lambda: did("twfe_did", set_cell(did_panel(), "y", "n/a")), ("are not numeric",)),
    Bad("rollout_bacon_wrong_type", "bacon_decomposition", "a list instead of a DataFrame",
        lambda: did("bacon_decomposition", [1]), ("must be a pandas DataFrame",)),
    Bad("rollout_bacon_empty", "bacon_decomposition", "empty table",
        lambda: did("bacon_decomposition", did_panel().iloc[:0]), ("has no rows",)),
    Bad("rollout_bacon_one_unit", "bacon_decomposition", "one unit",
        lambda: did("bacon_decomposition", one_site(did_panel())), ("nothing to decompose",)),
    Bad("rollout_bacon_inf_outcome", "bacon_decomposition", "infinite outcome",
        lambda: did("bacon_decomposition", set_cell(did_panel(), "y", np.inf)), ("missing or infinite",)),
    Bad("rollout_bacon_huge_outcome", "bacon_decomposition", "outcome 1e300",
        lambda: did("bacon_decomposition", did_panel(y=1e300)), ("beyond +/-1e+100",)),
    # ------------------------------------------------------------------ interrupted time series
    Bad("rollout_its_wrong_type", "interrupted_time_series", "a list instead of a DataFrame",
        lambda: sa.interrupted_time_series([1, 2], "t", "y", 13), ("argument 'data' must be a pandas DataFrame",)),
    Bad("rollout_its_empty", "interrupted_time_series", "empty table",
        lambda: sa.interrupted_time_series(its_df().iloc[:0], "t", "y", 13), ("table 'data' has no rows", "nothing to analyse")),
    Bad("rollout_its_one_row", "interrupted_time_series", "one period",
        lambda: sa.interrupted_time_series(its_df().iloc[:1], "t", "y", 13), ("1 observation(s) for 4 coefficients",)),
    Bad("rollout_its_constant", "interrupted_time_series", "constant outcome",
        lambda: sa.interrupted_time_series(its_df().assign(y=2.0), "t", "y", 13),
        ("the outcome 'y' is constant", "no level or slope change to estimate")),
    Bad("rollout_its_inf", "interrupted_time_series", "infinite outcome",
        lambda: sa.interrupted_time_series(set_cell(its_df(), "y", np.inf), "t", "y", 13),
        ("column 'y' (argument 'outcome')", "1 row(s) (first: 0)", "infinite")),
    Bad("rollout_its_huge", "interrupted_time_series", "outcome 1e300",
        lambda: sa.interrupted_time_series(its_df().assign(y=lambda d: d["y"] * 1e300), "t", "y", 13),
        ("beyond +/-1e+100", "rescale the column")),
    Bad("rollout_its_text_outcome", "interrupted_time_series", "text in the outcome (row omitted)",
        lambda: sa.interrupted_time_series(set_cell(its_df(), "y", "abc"), "t", "y", 13),
        ("1 row(s) with missing or non-numeric", "left out"), W),
    # ------------------------------------------------------------------ stepped wedge
    Bad("rollout_sw_design_text", "stepped_wedge_design", "n_clusters given as text",
        lambda: sa.stepped_wedge_design("6", 3), ("'n_clusters' must be an integer >= 1", "got '6'")),
    Bad("rollout_sw_power_wrong_design", "stepped_wedge_power", "a DataFrame instead of a design",
        lambda: sa.stepped_wedge_power(sw_frame(), 0.3, sigma2=1, icc=0.05, m=10),
        ("'design' must come from sa.stepped_wedge_design",)),
    Bad("rollout_design_wrong_type", "rollout_design", "a list instead of a DataFrame",
        lambda: sa.rollout_design([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("rollout_design_empty", "rollout_design", "empty sites table",
        lambda: sa.rollout_design(tbl("sites").iloc[:0]), ("table 'data' has no rows", "nothing to analyse")),
    Bad("rollout_design_inf", "rollout_design", "infinite adoption period",
        lambda: sa.rollout_design(set_cell(tbl("sites"), "adoption_period", np.inf)), ("not whole numbers", "inf")),
    Bad("rollout_design_huge", "rollout_design", "adoption period 10**12 (memory)",
        lambda: sa.rollout_design(set_cell(tbl("sites"), "adoption_period", 10**12)),
        ("cluster-periods, which would need about", "not dates or years")),
    Bad("rollout_design_text", "rollout_design", "text adoption period",
        lambda: sa.rollout_design(set_cell(tbl("sites"), "adoption_period", "soon")), ("not whole numbers", "'soon'")),
    Bad("rollout_swa_wrong_type", "stepped_wedge_analysis", "a list instead of a DataFrame",
        lambda: swa([1]), ("argument 'data' must be a pandas DataFrame",)),
    Bad("rollout_swa_empty", "stepped_wedge_analysis", "empty table", lambda: swa(sw_frame().iloc[:0]),
        ("table 'data' has no rows", "nothing to analyse")),
    Bad("rollout_swa_one_cluster", "stepped_wedge_analysis", "one cluster", lambda: swa(one_site(sw_frame(), "unit")),
        ("column 'unit' (argument 'unit')", "at least 2 clusters")),
    Bad("rollout_swa_constant", "stepped_wedge_analysis", "constant outcome", lambda: swa(sw_frame().assign(y=1.0)),
        ("column 'y' (argument 'outcome'): the outcome is constant",)),
    Bad("rollout_swa_inf", "stepped_wedge_analysis", "infinite outcome", lambda: swa(set_cell(sw_frame(), "y", np.inf)),
        ("column 'y' (argument 'outcome')", "are infinite")),
    Bad("rollout_swa_text", "stepped_wedge_analysis", "text in the outcome",
        lambda: swa(set_cell(sw_frame(), "y", "abc")), ("are not numeric (values 'abc')",)),
    # ------------------------------------------------------------------ fidelity
    Bad("monitor_adherence_wrong_type", "session_adherence", "a list instead of the ratings",
        lambda: sa.session_adherence([1], tbl("components")), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_adherence_empty", "session_adherence", "empty ratings table",
        lambda: sa.session_adherence(tbl("fidelity_ratings").iloc[:0], tbl("components")),
        ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_adherence_inf", "session_adherence", "infinite score",
        lambda: sa.session_adherence(set_cell(tbl("fidelity_ratings"), "score", np.inf), tbl("components")),
        ("column 'score'", "are infinite")),
    Bad("monitor_adherence_text", "session_adherence", "text score",
        lambda: sa.session_adherence(set_cell(tbl("fidelity_ratings"), "score", "abc"), tbl("components")),
        ("are not numeric (values 'abc')",)),
    Bad("monitor_fidelity_index_wrong_type", "fidelity_index", "a string instead of the ratings",
        lambda: sa.fidelity_index("ratings.csv", tbl("components")), ("argument 'data' must be a pandas DataFrame", "got str")),
    Bad("monitor_fidelity_index_empty", "fidelity_index", "empty ratings table",
        lambda: sa.fidelity_index(tbl("fidelity_ratings").iloc[:0], tbl("components")),
        ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_fidelity_index_text", "fidelity_index", "text score",
        lambda: sa.fidelity_index(set_cell(tbl("fidelity_ratings"), "score", "x"), tbl("components")),
        ("are not numeric",)),
    Bad("monitor_fidelity_by_wrong_type", "fidelity_by", "a list instead of the index table",
        lambda: sa.fidelity_by([1], ["site_id"]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_fidelity_by_empty", "fidelity_by", "empty index table",
        lambda: sa.fidelity_by(fid().iloc[:0], ["site_id"]), ("table 'data' has no rows",)),
    Bad("monitor_fidelity_by_inf", "fidelity_by", "infinite adherence",
        lambda: sa.fidelity_by(fid_set("adherence", np.inf), ["site_id"]), ("column 'adherence'", "are infinite")),
    Bad("monitor_fidelity_by_text", "fidelity_by", "text adherence",
        lambda: sa.fidelity_by(fid_set("adherence", "abc"), ["site_id"]), ("are not numeric (values 'abc')",)),
    Bad("monitor_fidelity_by_out_of_range", "fidelity_by", "adherence 85 (a percentage)",
        lambda: sa.fidelity_by(fid_set("adherence", 85.0), ["site_id"]), ("is outside [0, 1]", "a proportion")),
    Bad("monitor_fidelity_drift_wrong_type", "fidelity_drift", "a list instead of a DataFrame",
        lambda: sa.fidelity_drift([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_fidelity_drift_empty", "fidelity_drift", "empty table",
        lambda: sa.fidelity_drift(fid().iloc[:0]), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_fidelity_drift_inf", "fidelity_drift", "infinite adherence",
        lambda: sa.fidelity_drift(fid_set("adherence", np.inf)), ("column 'adherence'", "are infinite")),
    Bad("monitor_fidelity_drift_huge", "fidelity_drift", "values 1e300",
        lambda: sa.fidelity_drift(fid().assign(adherence=lambda d: d["adherence"] * 1e300)),
        ("column 'adherence' is beyond +/-1e+100",)),
    Bad("monitor_fidelity_drift_text", "fidelity_drift", "text adherence",
        lambda: sa.fidelity_drift(fid_set("adherence", "abc")), ("are not numeric",)),
    Bad("monitor_plot_fidelity_wrong_type", "plot_fidelity", "a list instead of a DataFrame",
        lambda: sa.plot_fidelity([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_plot_fidelity_inf", "plot_fidelity", "infinite fidelity index",
        lambda: sa.plot_fidelity(fid_set("fidelity_index", np.inf)), ("column 'fidelity_index'", "are infinite")),
    Bad("monitor_plot_fidelity_text", "plot_fidelity", "text fidelity index",
        lambda: sa.plot_fidelity(fid_set("fidelity_index", "abc")), ("are not numeric",)),
    Bad("monitor_classify_inf", "classify_fidelity", "an infinite value",
        lambda: sa.classify_fidelity([0.5, np.inf]), ("1 value(s) outside [0, 1]", "inf")),
    Bad("monitor_classify_text", "classify_fidelity", "a text value (mixed types)",
        lambda: sa.classify_fidelity([0.5, "high"]), ("1 value(s) are not numbers", "'high'")),
    Bad("monitor_classify_table", "classify_fidelity", "a whole DataFrame instead of one column",
        lambda: sa.classify_fidelity(fid()), ("must be one column of proportions", "DataFrame")),
    Bad("monitor_classify_bool", "classify_fidelity", "True/False values",
        lambda: sa.classify_fidelity([True, False]), ("True/False values",)),
    # ------------------------------------------------------------------ adaptations
    Bad("monitor_adaptation_effects_wrong_type", "adaptation_effects", "a list instead of the outcomes",
        lambda: adapt([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_adaptation_effects_empty", "adaptation_effects", "empty outcomes table",
        lambda: adapt(tbl("outcomes").iloc[:0]), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_adaptation_effects_one_site", "adaptation_effects", "outcomes of one site",
        lambda: adapt(one_site(tbl("outcomes"))), ("1 site with an outcome value", "at least 2 sites")),
    Bad("monitor_adaptation_effects_constant", "adaptation_effects", "constant outcome",
        lambda: adapt(tbl("outcomes").assign(mean=5.0)), ("the outcome is constant",)),
    Bad("monitor_adaptation_effects_huge", "adaptation_effects", "outcome 1e300",
        lambda: adapt(tbl("outcomes").assign(mean=lambda d: d["mean"] * 1e300)), ("beyond +/-1e+100",)),
    Bad("monitor_adaptation_effects_text", "adaptation_effects", "text in the outcome",
        lambda: adapt(outcomes_ho("mean", "abc")), ("column 'mean'", "are not numeric (values 'abc')")),
    Bad("monitor_adaptation_effects_inf", "adaptation_effects", "infinite outcome",
        lambda: adapt(outcomes_ho("mean", np.inf)), ("column 'mean'", "are infinite")),
    Bad("monitor_dose_response_wrong_type", "fidelity_dose_response", "a list instead of the outcomes",
        lambda: dose([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_dose_response_one_site", "fidelity_dose_response", "outcomes of one site",
        lambda: dose(one_site(tbl("outcomes"))), ("at least 2 sites",)),
    Bad("monitor_dose_response_constant", "fidelity_dose_response", "constant outcome",
        lambda: dose(tbl("outcomes").assign(mean=5.0)), ("the outcome is constant",)),
    Bad("monitor_dose_response_inf", "fidelity_dose_response", "infinite outcome",
        lambda: dose(outcomes_ho("mean", -np.inf)), ("are infinite",)),
    Bad("monitor_validate_adaptations_wrong_type", "validate_adaptations", "a list instead of a DataFrame",
        lambda: sa.validate_adaptations([1]), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_validate_adaptations_inf_period", "validate_adaptations", "infinite period",
        lambda: sa.validate_adaptations(set_cell(tbl("adaptations"), "period", np.inf)),
        ("column 'period': not an integer >= 1", "(index 0)")),
    Bad("monitor_validate_adaptations_huge_period", "validate_adaptations", "period 1e12",
        lambda: sa.validate_adaptations(set_cell(tbl("adaptations"), "period", 1e12)), ("at most 100,000",)),
    Bad("monitor_validate_adaptations_text_period", "validate_adaptations", "text period",
        lambda: sa.validate_adaptations(set_cell(tbl("adaptations"), "period", "spring")),
        ("column 'period': not an integer >= 1",)),
    Bad("monitor_summarize_adaptations_wrong_type", "summarize_adaptations", "a list instead of a DataFrame",
        lambda: sa.summarize_adaptations([1]), ("must be a pandas DataFrame",)),
    Bad("monitor_summarize_adaptations_inf", "summarize_adaptations", "infinite period",
        lambda: sa.summarize_adaptations(set_cell(tbl("adaptations"), "period", np.inf), sites=tbl("sites")),
        ("column 'period': not an integer >= 1",)),
    Bad("monitor_adaptation_timeline_wrong_type", "plot_adaptation_timeline", "a list instead of a DataFrame",
        lambda: sa.plot_adaptation_timeline([1]), ("must be a pandas DataFrame",)),
    Bad("monitor_adaptation_timeline_inf", "plot_adaptation_timeline", "infinite period",
        lambda: sa.plot_adaptation_timeline(set_cell(tbl("adaptations"), "period", np.inf), sites=tbl("sites")),
        ("column 'period': not an integer >= 1",)),
    Bad("monitor_component_analysis_wrong_type", "component_analysis", "a list instead of a DataFrame",
        lambda: sa.component_analysis([1], components=["a"]), ("must be a pandas DataFrame",)),
    # ------------------------------------------------------------------ equity
    Bad("monitor_inequality_wrong_type", "inequality", "a list instead of a DataFrame",
        lambda: ineq([1]), ("argument 'data' must be a pandas DataFrame",)),
    Bad("monitor_inequality_empty", "inequality", "empty table", lambda: ineq(ineq_df().iloc[:0]),
        ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_inequality_one_row", "inequality", "one group", lambda: ineq(ineq_df().iloc[:1]),
        ("at least 2 groups are needed, got 1 row(s)",)),
    Bad("monitor_inequality_inf", "inequality", "infinite outcome", lambda: ineq(set_cell(ineq_df(), "p", np.inf)),
        ("column 'p' (argument 'outcome')", "are infinite")),
    Bad("monitor_inequality_text", "inequality", "text outcome", lambda: ineq(set_cell(ineq_df(), "p", "abc")),
        ("are not numeric (values 'abc')",)),
    Bad("monitor_equity_wrong_type", "equity_effects", "a list instead of a DataFrame", lambda: equity([1]),
        ("argument 'data' must be a pandas DataFrame",)),
    Bad("monitor_equity_empty", "equity_effects", "empty table", lambda: equity(health().iloc[:0]),
        ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_equity_constant", "equity_effects", "constant outcome", lambda: equity(health().assign(mean=3.0)),
        ("sampling variance of the effect is 0", "constant outcome")),
    Bad("monitor_equity_inf", "equity_effects", "infinite outcome", lambda: equity(set_cell(health(), "mean", np.inf)),
        ("column 'mean' (argument 'outcome')", "are infinite")),
    Bad("monitor_equity_huge", "equity_effects", "outcome 1e300",
        lambda: equity(health().assign(mean=lambda d: d["mean"] * 1e300)), ("column 'mean' (argument 'outcome')", "exceed +/-1e+100", "rescale the column")),
    Bad("monitor_equity_text", "equity_effects", "text outcome", lambda: equity(set_cell(health(), "mean", "abc")),
        ("are not numeric (values 'abc')",)),
    # ------------------------------------------------------------------ RE-AIM
    Bad("monitor_reaim_wrong_type", "reaim", "a list as the delivery table", lambda: reaim_with([1]),
        ("table 'delivery': expected a pandas DataFrame",)),
    Bad("monitor_reaim_empty", "reaim", "empty delivery table", lambda: reaim_with(tbl("delivery").iloc[:0]),
        ("table 'delivery' has no rows",)),
    Bad("monitor_reaim_window_empty", "reaim", "delivery recorded only before the first adoption",
        lambda: reaim_with(tbl("delivery").iloc[:1]), ("default analysis window is empty", "pass periods=")),
    Bad("monitor_reaim_nan", "reaim", "missing count of people reached",
        lambda: reaim_with(set_cell(tbl("delivery"), "reached", np.nan)), ("column 'reached'", "are missing")),
    Bad("monitor_reaim_text", "reaim", "text count of people reached",
        lambda: reaim_with(set_cell(tbl("delivery"), "reached", "abc")), ("are not numeric (values 'abc')",)),
    # ------------------------------------------------------------------ SPC
    Bad("monitor_runs_text", "runs_analysis", "text among the values", lambda: sa.runs_analysis([1, "x", 3]),
        ("argument 'values' must be numeric",)),
    Bad("monitor_runs_inf", "runs_analysis", "an infinite value", lambda: sa.runs_analysis([1.0, np.inf, 3.0]),
        ("1 infinite value(s)", "set them to NaN")),
    Bad("monitor_runs_empty", "runs_analysis", "no values", lambda: sa.runs_analysis([]),
        ("has no non-missing value",)),
    Bad("monitor_runs_constant", "runs_analysis", "a constant series", lambda: sa.runs_analysis([2.0] * 12),
        ("none of the 12 value(s) is off the centre line 2", "no signal is possible"), SW),
    Bad("monitor_runs_one_value", "runs_analysis", "a single value", lambda: sa.runs_analysis([0.4]),
        ("none of the 1 value(s)",), SW),
    Bad("monitor_chart_wrong_type", "control_chart", "a list instead of a DataFrame",
        lambda: sa.control_chart([1], "mean"), ("argument 'data' must be a pandas DataFrame",)),
    Bad("monitor_chart_empty", "control_chart", "empty table",
        lambda: sa.control_chart(health().iloc[:0], "mean"), ("has no rows",)),
    Bad("monitor_chart_one_value", "control_chart", "xbar chart of one observation (no limits)",
        lambda: sa.control_chart(health().iloc[:1], "mean", chart="xbar", x="period", by="rss_code"),
        ("limits of 'xbar' chart could not be computed", "subgroups of 2 or more values"), SW),
    Bad("monitor_chart_inf", "control_chart", "infinite value",
        lambda: sa.control_chart(set_cell(health(), "mean", np.inf), "mean", x="period"),
        ("column 'mean' (argument 'value')", "are infinite")),
    Bad("monitor_chart_huge", "control_chart", "values 1e300",
        lambda: sa.control_chart(health().assign(mean=1e300), "mean", chart="i", x="period"),
        ("exceed +/-1e+100", "rescale the column")),
    # ------------------------------------------------------------------ voltage drop: site effects
    Bad("monitor_site_effects_wrong_type", "site_effects", "a list instead of the outcomes",
        lambda: sa.site_effects([1], tbl("sites"), "HO_Y"), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("monitor_site_effects_empty", "site_effects", "empty outcomes table",
        lambda: sa.site_effects(tbl("outcomes").iloc[:0], tbl("sites"), "HO_Y"), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_site_effects_inf", "site_effects", "infinite mean",
        lambda: sa.site_effects(outcomes_ho("mean", np.inf), tbl("sites"), "HO_Y"), ("column 'mean'", "are infinite")),
    Bad("monitor_site_effects_text", "site_effects", "text mean",
        lambda: sa.site_effects(outcomes_ho("mean", "abc"), tbl("sites"), "HO_Y"), ("are not numeric (values 'abc')",)),
    Bad("monitor_site_effects_huge", "site_effects", "means 1e300",
        lambda: sa.site_effects(tbl("outcomes").assign(mean=lambda d: d["mean"] * 1e300), tbl("sites"), "HO_Y"),
        ("column 'mean'", "exceed +/-1e+100")),
    # ------------------------------------------------------------------ summaries
    Bad("monitor_summarize_wrong_type", "summarize", "a list instead of a DataFrame", lambda: sa.summarize([1]),
        ("data must be a pandas or Dask DataFrame or a file path", "got list")),
    Bad("monitor_summarize_overflow", "summarize", "outcome 1e300 (sums of squares overflow)",
        lambda: sa.summarize(encounters(y=lambda d: d["y"] * 1e300)), ("overflow float64", "Rescale")),
    Bad("monitor_summarize_mixed_keys", "summarize", "site ids mixing numbers and text",
        lambda: sa.summarize(set_cell(tbl("encounters"), "site_id", 1)),
        ("column 'site_id' (argument 'by')", "mixes value types (number, text)", ".astype(str)")),
    Bad("monitor_summarize_duplicated_column", "summarize", "two columns named y",
        lambda: sa.summarize(pd.concat([tbl("encounters"), tbl("encounters")[["y"]]], axis=1)),
        ("table 'data' has duplicated column name(s) 'y' (columns 5 and 9)", "Rename or drop")),
    Bad("monitor_summary_fit_impossible_sums", "mixed_model_from_summary", "a summary with edited sums (constant y'y)",
        lambda: sa.mixed_model_from_summary(summary(sp__y__y=1.0), "y ~ treated"),
        ("sums of column 'y' are impossible", "Pass the output of summarize() unchanged")),
    Bad("monitor_summary_fit_text", "mixed_model_from_summary", "text in a sum column",
        lambda: sa.mixed_model_from_summary(set_cell(_summary(), "sp__y__y", "abc"), "y ~ treated"),
        ("column 'sp__y__y'", "are not numeric (values 'abc')")),
    Bad("monitor_summary_fit_huge", "mixed_model_from_summary", "sums 1e300",
        lambda: sa.mixed_model_from_summary(summary(sp__y__y=lambda d: d["sp__y__y"] * 1e300), "y ~ treated"),
        ("sums beyond +/-1e+250",)),
    Bad("monitor_summary_fit_empty", "mixed_model_from_summary", "empty summary",
        lambda: sa.mixed_model_from_summary(_summary().iloc[:0], "y ~ treated"), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_summary_site_effects_one_row", "site_effects_from_summary", "a one-cell summary",
        lambda: sa.site_effects_from_summary(_summary().iloc[:1], "y ~ treated", "treated"),
        ("no site of the summary (1 site(s)) can estimate 'treated'",)),
    Bad("monitor_summary_site_effects_text", "site_effects_from_summary", "text in a sum column",
        lambda: sa.site_effects_from_summary(set_cell(_summary(), "sp__y__y", "abc"), "y ~ treated", "treated"),
        ("are not numeric",)),
    # ------------------------------------------------------------------ scalability instruments
    Bad("monitor_load_instrument_wrong_type", "load_instrument", "a number instead of a name or path",
        lambda: sa.load_instrument(123), ("argument 'name_or_path' must be an instrument id", "got a int")),
    Bad("monitor_load_instrument_none", "load_instrument", "None", lambda: sa.load_instrument(None),
        ("argument 'name_or_path'", "got a NoneType")),
    Bad("monitor_score_assessment_wrong_type", "score_assessment", "a list instead of a DataFrame",
        lambda: sa.score_assessment([1], "ISAT"), ("argument 'data' must be a pandas DataFrame",)),
    Bad("monitor_score_assessment_empty", "score_assessment", "empty table",
        lambda: sa.score_assessment(tbl("assessments").iloc[:0], "ISAT", n_boot=0), ("table 'data' has no rows", "nothing to analyse")),
    Bad("monitor_score_assessment_inf", "score_assessment", "infinite score",
        lambda: sa.score_assessment(set_cell(tbl("assessments"), "score", np.inf), "ISAT", n_boot=0),
        ("lies outside the ISAT scale [1, 4]", "(first: 0)")),
    Bad("monitor_score_assessment_text", "score_assessment", "text score",
        lambda: sa.score_assessment(set_cell(tbl("assessments"), "score", "abc"), "ISAT", n_boot=0),
        ("are not numeric (values 'abc')",)),
]
