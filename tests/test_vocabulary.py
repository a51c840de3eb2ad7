"""One vocabulary: every public name of ``scaleup_analysis`` is listed in ``docs/glossary.md``.

The glossary lists its names in the first column of its tables, each between backticks (see the
convention at the top of ``docs/glossary.md``). The tests below

* (a) read every public signature -- the functions of ``sa.__all__`` and the public methods of every
  public class -- and fail on a parameter name that is not in the glossary, naming function and
  parameter; they also check the glossary's rules that can be read from a signature: the data frame
  comes first and is called ``data``, ``ax`` is the last parameter and keyword-only;
* (b) build every public result object from a small example and check its dataclass fields, public
  properties, ``to_frame()`` columns, the columns of its DataFrame attributes and of its
  DataFrame-returning methods (and those of the public functions that return a DataFrame);
* (c) check that the result classes built in (b) are exactly the public result classes (the frozen
  dataclasses of the public modules, all re-exported as ``sa.<Name>``), so that a new result class
  cannot escape (b).

Column names that are values from the data (user columns, category or term labels becoming columns,
e.g. a contingency table or a covariance matrix) are not vocabulary: they are left out explicitly below,
each with the reason.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ----------------------------------------------------------------------------------------------
# the glossary
# ----------------------------------------------------------------------------------------------
def _first_cells(text: str):
    """First cell of every body row of every Markdown table (header and separator rows skipped)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        if re.fullmatch(r"\s*\|[\s:|-]+\|\s*", line):  # separator row
            continue
        if i + 1 < len(lines) and re.fullmatch(r"\s*\|[\s:|-]+\|\s*", lines[i + 1]):  # header row
            continue
        cells = re.split(r"(?<!\\)\|", line.strip())
        if len(cells) >= 3:
            yield cells[1]


def _listed_names() -> list[str]:
    names = []
    for cell in _first_cells(GLOSSARY.read_text(encoding="utf-8")):
        for token in re.findall(r"`([^`]+)`", cell):
            assert _IDENT.match(token), f"docs/glossary.md: {token!r} in a first column is not a Python name"
            names.append(token)
    return names


@lru_cache(maxsize=1)
def glossary_names() -> frozenset[str]:
    return frozenset(_listed_names())


def test_each_name_is_listed_once():
    """One name, one meaning: a name appears in a single row of the glossary."""
    names = _listed_names()
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"docs/glossary.md lists these names in more than one row: {twice}"


def test_glossary_parses_and_lists_the_core_names():
    names = glossary_names()
    assert len(names) > 200
    assert {"data", "level", "alpha", "pvalue", "metric", "unit", "group", "by", "subgroup", "ax"} <= names
    # names retired by issue 15 must not come back (df, ci, source, units, treated keep other meanings)
    retired = {"p_value", "Q_pval", "trend_pval", "targets", "subjects", "ratings", "count_cols", "value_cols",
               "index_df", "responses", "clustervars", "nobs", "ngroups", "aic", "bic", "QEp", "se_tau2", "mc_se",
               "min_cell", "suppress_threshold", "fidelity_col", "group_order", "indicator_unit", "overall_se",
               "trend_slope", "coefficients", "se_pilot", "se_scaled", "binary_variance", "site_results"}
    assert not retired & names, retired & names


def _unknown(names) -> list[str]:
    known = glossary_names()
    return sorted({n for n in names if n not in known})


# ----------------------------------------------------------------------------------------------
# (a) signatures
# ----------------------------------------------------------------------------------------------
def _public_functions():
    for name in sa.__all__:
        obj = getattr(sa, name)
        if inspect.isfunction(obj):
            yield name, obj


def _public_classes():
    for name in sa.__all__:
        obj = getattr(sa, name)
        if inspect.isclass(obj) and not issubclass(obj, (Exception, Warning)):
            yield name, obj


def _public_methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        func = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        if inspect.isfunction(func):
            yield name, func


def _signatures():
    for name, func in _public_functions():
        yield f"sa.{name}", inspect.signature(func)
    for cname, cls in _public_classes():
        for mname, func in _public_methods(cls):
            params = list(inspect.signature(func).parameters.values())
            if params and params[0].name in ("self", "cls"):
                params = params[1:]
            yield f"sa.{cname}.{mname}", inspect.Signature(params)


SIGNATURES = dict(_signatures())


@pytest.mark.parametrize("where", sorted(SIGNATURES))
def test_parameter_names_are_in_the_glossary(where):
    params = SIGNATURES[where].parameters
    bad = _unknown(p for p in params if params[p].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                                   inspect.Parameter.VAR_POSITIONAL))
    assert not bad, f"{where}: parameter(s) {bad} not in docs/glossary.md"


def test_keyword_arguments_of_simulate_scaleup_are_in_the_glossary():
    # simulate_scaleup(**kwargs): its documented settings are echoed in SimulatedScaleup.params
    bad = _unknown(sim().params)
    assert not bad, f"sa.simulate_scaleup: keyword argument(s) {bad} not in docs/glossary.md"


# first parameters that are not a data frame (rule 1 of the glossary), with what they are
NOT_A_DATA_FRAME = {
    "check_manifest": "directory", "write_manifest": "directory", "load_table": "path",
    "load_tables": "directory", "write_encounters_parquet": "path", "load_dataset": "name",
    "load_instrument": "name_or_path", "simulate_scaleup": "seed",
    "setup_display": "precision", "frame_scheme": "scheme", "classify_fidelity": "values",
    "runs_analysis": "values", "stepped_wedge_design": "n_clusters", "stepped_wedge_power": "design",
    "stepped_wedge_power_sim": "design", "change_from_baseline": "panel", "deleterious_effects": "changes",
    "plot_dashboard": "changes", "quintuple_aim_panel": "tables", "reaim": "tables",
    "validate_tables": "tables", "voltage_drop": "pilot",
    "load_study": "data_dir", "default_study": "seed", "init_study": "directory", "run_report": "data_dir",
}


@pytest.mark.parametrize("name", sorted(n for n, _ in _public_functions()))
def test_the_data_frame_comes_first_and_is_called_data(name):
    params = list(inspect.signature(getattr(sa, name)).parameters)
    if not params:
        return
    expected = NOT_A_DATA_FRAME.get(name, "data")
    assert params[0] == expected, f"sa.{name}: first parameter {params[0]!r}, expected {expected!r}"


def test_ax_is_last_and_keyword_only():
    for where, sig in SIGNATURES.items():
        params = list(sig.parameters.values())
        if "ax" not in sig.parameters:
            continue
        named = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        assert named[-1].name == "ax", f"{where}: 'ax' is not the last parameter"
        assert sig.parameters["ax"].kind is inspect.Parameter.KEYWORD_ONLY, f"{where}: 'ax' is not keyword-only"


# ----------------------------------------------------------------------------------------------
# (b) result objects from small examples
# ----------------------------------------------------------------------------------------------
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


# one builder per public result class (several where options add attributes or columns)
BUILDERS = {
    "MetaAnalysisResult": lambda: sa.meta_analysis(_bask(), yi="smd", vi="vi", subgroup="design"),
    "MetaRegressionResult": lambda: sa.meta_regression(_bask(), yi="smd", vi="vi", mods=["pperf", "design"]),
    "PermutationTestResult": lambda: sa.meta_regression(_bask(), yi="smd", vi="vi", mods=["pperf"]).permutation_test(
        n_perm=30, seed=1),
    "MultilevelMetaResult": lambda: sa.multilevel_meta_analysis(
        _bask().assign(region=lambda d: d["country"], site=lambda d: d.index.astype(str)), yi="smd", vi="vi",
        group=["region", "site"]),
    "MixedModelResult": lambda: sa.mixed_model(sim().tables["encounters"], "y ~ treated", group="site_id",
                                               re_formula="1 + treated"),
    "ICCResult": lambda: sa.icc(_ratings(), "session", "rater", "score"),
    "ICCMixedResult": lambda: sa.icc_mixed(_ratings(), "session", "rater", "score"),
    "KappaResult": lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 2, 3, 1, 2, 3, 1, 2], "b": [1, 2, 3, 1, 3, 3, 2, 2]}),
                                          "a", "b", weights="linear"),
    "FleissKappaResult": lambda: sa.fleiss_kappa(_ratings(), "session", "rater", "score"),
    "KrippendorffResult": lambda: sa.krippendorff_alpha(_ratings(), "session", "rater", "score", metric="ordinal",
                                                        n_boot=20, seed=1),
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
}

# attributes whose columns (or index labels) are values from the data, not vocabulary
DATA_VALUED = {
    ("MetaAnalysisResult", "data"): "the analysed input table (the user's columns)",
    ("MetaRegressionResult", "data"): "the analysed input table (the user's columns)",
    ("MetaRegressionResult", "vcov"): "rows and columns are the model's terms",
    ("MixedModelResult", "vcov"): "rows and columns are the model's terms",
    ("PermutationTestResult", "statistic_perm"): "columns are the model's terms",
    ("KappaResult", "table"): "contingency table: rows and columns are the categories",
    ("KrippendorffResult", "coincidence"): "coincidence matrix: rows and columns are the values",
    ("EquityEffects", "vcov"): "rows and columns are the strata",
    ("ITSResult", "cov"): "rows and columns are the model's terms",
    ("FidelityDrift", "data"): "the site, period and value columns named by the caller",
}
# columns named after a column of the caller's data (the argument's value)
CALLER_NAMED = {
    "QuintupleAimPanel": lambda r: {r.region, r.subgroup},  # region= and subgroup= columns of sites
}
# DataFrame-returning methods called without arguments (plus MetaRegressionResult.predict below)
FRAME_METHODS = ("to_frame", "influence", "leave_one_out", "blup", "variance_components", "by_type",
                 "recommendation_table", "summary")
# public functions returning a DataFrame whose columns the library names
FRAME_FUNCTIONS = {
    "session_adherence": lambda: sa.session_adherence(sim().tables["fidelity_ratings"], sim().tables["components"]),
    "fidelity_index": _fidelity,
    "fidelity_by": lambda: sa.fidelity_by(_fidelity(), sites=sim().tables["sites"]),
    "site_effects": lambda: sa.site_effects(sim().tables["outcomes"], sim().tables["sites"], "HO_Y"),
    "site_effects_from_summary": lambda: sa.site_effects_from_summary(
        sa.summarize(sim().tables["encounters"], by="site_id"), "y ~ treated", term="treated"),
    "frame_scheme": sa.frame_scheme,
    "list_datasets": sa.list_datasets,
    "list_instruments": sa.list_instruments,
}


def _frame_names(frame: pd.DataFrame) -> set[str]:
    cols = [c for c in frame.columns if not str(c).startswith("dfbs_")]  # dfbs_<term>: one per model term
    return {str(c) for c in cols} | {str(n) for n in frame.index.names if n is not None}


def _result_names(cname: str, res) -> dict[str, set[str]]:
    """Names used by a result: where -> names."""
    out = {f"sa.{cname} fields": {f.name for f in dataclasses.fields(res) if not f.name.startswith("_")}}
    out[f"sa.{cname} properties"] = {n for n, m in vars(type(res)).items()
                                     if isinstance(m, property) and not n.startswith("_")}
    for f in dataclasses.fields(res):
        value = getattr(res, f.name)
        if (cname, f.name) in DATA_VALUED:
            continue
        if isinstance(value, pd.DataFrame):
            out[f"sa.{cname}.{f.name} columns"] = _frame_names(value)
        elif isinstance(value, pd.Series) and value.name is not None:
            out[f"sa.{cname}.{f.name} name"] = {str(value.name)}
    for m in FRAME_METHODS:
        if callable(getattr(res, m, None)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = getattr(res, m)()
            if isinstance(value, pd.DataFrame):
                out[f"sa.{cname}.{m}() columns"] = _frame_names(value)
    drop = CALLER_NAMED.get(cname, lambda r: set())(res)
    return {where: names - drop if "fields" not in where else names for where, names in out.items()}


RESULTS = {}


def _built(cname):
    if cname not in RESULTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            RESULTS[cname] = BUILDERS[cname]()
    return RESULTS[cname]


@pytest.mark.parametrize("cname", sorted(BUILDERS))
def test_result_names_are_in_the_glossary(cname):
    res = _built(cname)
    assert type(res) is getattr(sa, cname), f"the builder of {cname} returned {type(res).__name__}"
    problems = {where: _unknown(names) for where, names in _result_names(cname, res).items()}
    problems = {w: b for w, b in problems.items() if b}
    assert not problems, f"names not in docs/glossary.md: {problems}"


def test_extra_result_names_are_in_the_glossary():
    """Names that need an argument or an option to appear."""
    mr = _built("MetaRegressionResult")
    new = pd.DataFrame({"pperf": [1.0, 10.0], "design": ["rct", "rct"]})
    assert not _unknown(_frame_names(mr.predict(new)))
    ev = _built("AdaptationEffects").event_effect
    assert not _unknown(ev.index), _unknown(ev.index)
    vc = _built("MixedModelResult").variance_components
    assert not _unknown(vc.columns)


@pytest.mark.parametrize("name", sorted(FRAME_FUNCTIONS))
def test_frame_function_columns_are_in_the_glossary(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = FRAME_FUNCTIONS[name]()
    bad = _unknown(_frame_names(frame))
    assert not bad, f"sa.{name}(): column(s) {bad} not in docs/glossary.md"


# ----------------------------------------------------------------------------------------------
# (c) every public result class is covered
# ----------------------------------------------------------------------------------------------
def _public_result_classes() -> set[str]:
    found = set()
    for module in sa._EXPORTS:
        mod = importlib.import_module(f"scaleup_analysis.{module}")
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and obj.__module__ == mod.__name__ and not name.startswith("_")
                    and dataclasses.is_dataclass(obj)):
                found.add(name)
    return found


def test_every_public_result_class_is_exported_and_checked():
    public = _public_result_classes()
    not_exported = sorted(n for n in public if n not in sa.__all__)
    assert not not_exported, f"result classes not re-exported from scaleup_analysis: {not_exported}"
    assert set(BUILDERS) == public, (
        f"result classes without a builder in tests/test_vocabulary.py: {sorted(public - set(BUILDERS))}; "
        f"builders of unknown classes: {sorted(set(BUILDERS) - public)}"
    )
