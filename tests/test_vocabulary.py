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

import pandas as pd
import pytest

import scaleup_analysis as sa
from result_examples import BUILDERS, _fidelity, built, sim

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
    "plot_dashboard": "changes", "quintuple_aim_panel": "tables", "indicator_funnel": "tables", "reaim": "tables",
    "validate_tables": "tables", "voltage_drop": "pilot",
    "load_study": "data_dir", "default_study": "seed", "init_study": "directory", "run_report": "data_dir", "write_feedback": "data_dir",
    "set_language": "language",
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

# attributes whose columns (or index labels) are values from the data, not vocabulary
DATA_VALUED = {
    ("MetaAnalysisResult", "data"): "the analysed input table (the user's columns)",
    ("MetaRegressionResult", "data"): "the analysed input table (the user's columns)",
    ("MetaRegressionResult", "vcov"): "rows and columns are the model's terms",
    ("MixedModelResult", "vcov"): "rows and columns are the model's terms",
    ("MultilevelMetaResult", "vcov"): "rows and columns are the model's terms",
    ("PermutationTestResult", "statistic_perm"): "columns are the model's terms",
    ("KappaResult", "table"): "contingency table: rows and columns are the categories",
    ("KrippendorffResult", "coincidence"): "coincidence matrix: rows and columns are the values",
    ("EquityEffects", "vcov"): "rows and columns are the strata",
    ("ITSResult", "cov"): "rows and columns are the model's terms",
    ("FidelityDrift", "data"): "the site, period and value columns named by the caller",
    ("CoxResult", "data"): "the rows used (the user's columns)",
    ("IndirectStandardization", "vcov"): "rows and columns are the model's terms",
    ("CoxResult", "vcov"): "rows and columns are the model's terms",
    ("CoxResult", "naive_vcov"): "rows and columns are the model's terms",
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


_built = built


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
    ml = _built("MultilevelMetaResult")
    assert not _unknown(_frame_names(ml.predict(pd.DataFrame({"pperf": [1.0, 10.0]}))))
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
