"""Schemas of the data tables and their validation (one schema per table of the data dictionary).

``SCHEMAS`` maps each table name of ``docs/data_dictionary.md`` to a :class:`pandera.DataFrameSchema`
that states the final column types, ranges, categories, key uniqueness and row-level rules.
:func:`validate_table` checks one table and returns a typed copy; :func:`validate_tables` checks a set
of tables *and* the rules that link them (foreign keys, rating scales, indicator types). Every problem
found is collected (lazy validation) and reported in one :class:`~scaleup_analysis.errors.ScaleupDataError`
whose lines name the table, the column, the number of offending rows, the first few of them (as file
lines when the table came from a CSV file) and how to fix them.

The table specifications below (``_SPECS``: columns, types, rules, keys, foreign keys, which tables are
required, and a description of each table and column) are the single source of truth: the schemas,
``REQUIRED_TABLES``, the loader (:mod:`scaleup_analysis.data.io`) and the data dictionary
``docs/data_dictionary.md`` (rendered by :mod:`scaleup_analysis.data.dictionary`) all derive from them.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from .._checks import short_repr
from ..errors import ScaleupDataError

__all__ = ["SCHEMAS", "validate_table", "validate_tables", "TABLES", "REQUIRED_TABLES", "table_spec"]

#: Number of offending rows quoted in an error message (the count is always given in full).
_MAX_ROWS_SHOWN = 5

# ----------------------------------------------------------------------------------------------
# Column specifications (the single source of truth for both the public schemas and validation)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
    name: str
    kind: str  # "str", "int", "float", "bool", "category"
    description: str = ""  # one line for the data dictionary: what the column means
    nullable: bool = False
    checks: tuple = ()
    categories: tuple[str, ...] = ()
    nonempty: bool = True  # for str columns: blank strings are not allowed
    references: str | None = None  # foreign key "table.column"


@dataclass(frozen=True)
class _Rule:
    """A row-level rule across columns of one table; ``ok(df)`` is True for the rows that pass."""

    name: str
    columns: tuple[str, ...]
    ok: Callable[[pd.DataFrame], pd.Series]
    fix: str
    statement: str = ""  # the rule as the data dictionary states it (default: its name)


@dataclass(frozen=True)
class _TableSpec:
    name: str
    columns: tuple[_Col, ...]
    key: tuple[str, ...]
    rules: tuple[_Rule, ...] = ()
    strict: bool = True  # False: other columns are allowed and kept as they are
    required: bool = False
    description: str = ""  # one line: what the table holds
    other_columns: str = ""  # when not strict: what other columns may hold
    notes: tuple[str, ...] = ()  # further sentences of the data dictionary
    default: str = ""  # when not given: what is used instead (see data.io.load_tables)


def _ge(v):
    return pa.Check.ge(v, error=f"must be >= {v}")


def _gt(v):
    return pa.Check.gt(v, error=f"must be > {v}")


#: Largest period number accepted: periods are numbered 1, 2, ... from the study's first period (a
#: daily panel of 27 years stays below it); dates, year-month codes (202301) and 10**12 do not.
_MAX_PERIOD = 10_000
_PERIOD_CHECK = pa.Check.le(_MAX_PERIOD, error=f"must be <= {_MAX_PERIOD}")
#: What a message adds after a broken check, for the checks whose fix is not obvious.
_CHECK_HINTS = {
    _PERIOD_CHECK.error: "periods are numbered 1, 2, ... from the study's first period (e.g. quarters): "
    "not a date, a year-month code such as 202301, or a number of days",
}


def _between(lo, hi):
    return pa.Check.in_range(lo, hi, error=f"must be between {lo} and {hi}")


def _finite():
    return pa.Check(lambda s: np.isfinite(s.astype("float64")), error="must be finite (not inf)")


def _isin(values):
    return pa.Check.isin(list(values), error="must be one of: " + ", ".join(repr(v) for v in values))


def _nonblank():
    return pa.Check(
        lambda s: pd.Series([bool(str(v).strip()) for v in s.to_numpy()], index=s.index, dtype=bool),
        error="must not be blank",
    )


_RSS_CHECK = pa.Check.str_matches(
    r"^(0[1-9]|1[0-8])$", error="must be a two-digit RSS code '01'-'18' (e.g. '06', not '6')"
)


def _has(df: pd.DataFrame, *cols: str) -> bool:
    return all(c in df.columns for c in cols)


def _le_rule(small: str, big: str, fix: str) -> _Rule:
    def ok(df):
        if not _has(df, small, big):
            return pd.Series(True, index=df.index)
        a = pd.to_numeric(df[small], errors="coerce").astype("float64").to_numpy()
        b = pd.to_numeric(df[big], errors="coerce").astype("float64").to_numpy()
        with np.errstate(invalid="ignore"):
            res = np.isnan(a) | np.isnan(b) | (a <= b)
        return pd.Series(res, index=df.index)

    return _Rule(f"{small} <= {big}", (small, big), ok, fix, f"`{small}` ≤ `{big}`")


def _no_mean_over_zero(df: pd.DataFrame) -> pd.Series:
    if not _has(df, "n", "mean", "sd"):
        return pd.Series(True, index=df.index)
    n = pd.to_numeric(df["n"], errors="coerce").astype("float64").to_numpy()
    empty = df["mean"].isna().to_numpy() & df["sd"].isna().to_numpy()
    return pd.Series((n != 0) | empty, index=df.index)


def _phase_cohort_ok(df: pd.DataFrame) -> pd.Series:
    if not _has(df, "phase", "cohort"):
        return pd.Series(True, index=df.index)
    cohort = pd.to_numeric(df["cohort"], errors="coerce").astype("float64").to_numpy()
    phase = df["phase"].astype("object")
    expected = np.where(np.isnan(cohort), "not-adopted", np.where(cohort == 0, "pilot", "scale-up"))
    return pd.Series((phase.isna().to_numpy()) | (phase.to_numpy() == expected), index=df.index)


def _support_spell_ok(df: pd.DataFrame) -> pd.Series:
    end = pd.to_numeric(df["end_period"], errors="coerce")
    start = pd.to_numeric(df["start_period"], errors="coerce")
    return end.isna() | start.isna() | (end > start)


def _scale_ok(df: pd.DataFrame) -> pd.Series:
    if not _has(df, "scale_min", "scale_max"):
        return pd.Series(True, index=df.index)
    hi = pd.to_numeric(df["scale_max"], errors="coerce").astype("float64").to_numpy()
    lo = pd.to_numeric(df["scale_min"], errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        res = np.isnan(hi) | np.isnan(lo) | (hi > lo)
    return pd.Series(res, index=df.index)


#: Kinds of scale-up support (``support.support``).
SUPPORT_KINDS = ("facilitation", "funding", "champion", "other")
#: Extent of a de-adoption (``deadoption.extent``).
DEADOPTION_EXTENTS = ("partial", "complete")
#: Coding scheme of the reasons of de-adoption (``deadoption.reason``).
DEADOPTION_REASONS = (
    "funding_ended", "support_ended", "staff_turnover", "champion_left", "low_fit", "competing_priorities",
    "other",
)

_S = "str"
_I = "int"
_F = "float"

_SPECS: tuple[_TableSpec, ...] = (
    _TableSpec(
        "regions",
        (
            _Col("rss_code", _S, "code of the health and social-service region (RSS)", checks=(_RSS_CHECK,)),
            _Col("name", _S, "official name of the region"),
            _Col(
                "settlement_type",
                "category",
                "indicative settlement type (used by the simulator only)",
                categories=("metropolitan", "urban", "mixed", "rural", "remote"),
            ),
        ),
        key=("rss_code",),
        description="the health and social-service regions (RSS) of Quebec",
        default="the bundled table of Quebec's 18 health regions",
        notes=(
            "The bundled table is `sa.load_dataset(\"quebec_regions\")`, from `quebec_health_regions.csv` "
            "(see `scaleup_analysis/data/bundled/SOURCES.md`).",
        ),
    ),
    _TableSpec(
        "sites",
        (
            _Col("site_id", _S, "identifier of the site"),
            _Col("rss_code", _S, "health region of the site", references="regions.rss_code"),
            _Col(
                "site_type",
                "category",
                "`GMF` = family-medicine group, `CLSC` = local community service centre",
                categories=("GMF", "CLSC", "hospital_clinic", "community"),
            ),
            _Col("size", _I, "number of patients served or registered", checks=(_gt(0),)),
            _Col("rurality", "category", "rurality of the site's area", categories=("urban", "semi_urban", "rural", "remote")),
            _Col(
                "deprivation_quintile",
                _I,
                "material and social deprivation of the area: 1 = least, 5 = most deprived",
                checks=(_between(1, 5),),
            ),
            _Col(
                "adoption_period",
                _I,
                "first period in which the site delivers the innovation; empty = never adopts within the panel",
                nullable=True,
                checks=(_ge(1), _PERIOD_CHECK),
            ),
            _Col(
                "cohort",
                _I,
                "rollout wave: 0 = pilot, 1, 2, ... = scale-up waves; empty = never adopts",
                nullable=True,
                checks=(_ge(0),),
            ),
            _Col("phase", "category", "phase of the site in the rollout", categories=("pilot", "scale-up", "not-adopted")),
        ),
        key=("site_id",),
        rules=(
            _Rule(
                "phase agrees with cohort",
                ("cohort", "phase"),
                _phase_cohort_ok,
                "phase must be 'pilot' when cohort is 0, 'scale-up' when cohort >= 1 and "
                "'not-adopted' when cohort is missing; correct whichever of the two is wrong",
                "`phase` agrees with `cohort`: `pilot` when cohort is 0, `scale-up` when cohort ≥ 1, "
                "`not-adopted` when cohort is empty",
            ),
        ),
        required=True,
        description="the delivery sites (clinics, family-medicine groups, community organisations)",
    ),
    _TableSpec(
        "indicators",
        (
            _Col("indicator_id", _S, "identifier of the indicator"),
            _Col("name", _S, "name shown in reports"),
            _Col(
                "domain",
                "category",
                "domain of the quintuple aim",
                categories=("health_outcomes", "user_experience", "efficiency_cost", "team_wellbeing", "equity"),
            ),
            _Col(
                "type",
                "category",
                "`proportion`: events out of n; `mean`: mean and sd of n values",
                categories=("proportion", "mean"),
            ),
            _Col("unit", _S, "unit shown in reports, e.g. `%`, `CAD`, `score 0-10`"),
            _Col(
                "direction",
                "category",
                "which direction is an improvement",
                categories=("higher_is_better", "lower_is_better"),
            ),
        ),
        key=("indicator_id",),
        required=True,
        description="the registry of monitored indicators (quintuple aim)",
    ),
    _TableSpec(
        "outcomes",
        (
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("period", _I, "period (e.g. quarter) of the aggregate, counted from 1", checks=(_ge(1), _PERIOD_CHECK)),
            _Col("indicator_id", _S, "the indicator", references="indicators.indicator_id"),
            _Col("n", _I, "denominator: number of individuals or visits", checks=(_ge(0),)),
            _Col("events", _I, "number of events, for `proportion` indicators", nullable=True, checks=(_ge(0),)),
            _Col("mean", _F, "mean, for `mean` indicators", nullable=True, checks=(_finite(),)),
            _Col("sd", _F, "standard deviation, for `mean` indicators", nullable=True, checks=(_ge(0), _finite())),
        ),
        key=("site_id", "period", "indicator_id"),
        rules=(
            _le_rule("events", "n", "events cannot exceed the denominator n; check both counts"),
            _Rule(
                "no mean over n = 0",
                ("n", "mean", "sd"),
                _no_mean_over_zero,
                "a mean or sd needs at least one value: give the n the mean was computed over, or remove "
                "the row (a site and period without data has no row)",
                "`mean` and `sd` are empty when `n` is 0 (a mean over no one does not exist)",
            ),
        ),
        required=True,
        description="aggregates of each indicator by site and period",
    ),
    _TableSpec(
        "encounters",
        (
            _Col("patient_id", _S, "pseudonymous patient identifier (never shown in reports)"),
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("period", _I, "period of the encounter", checks=(_ge(1), _PERIOD_CHECK)),
            _Col(
                "treated",
                _I,
                "1 = the site delivered the innovation to this patient in this period",
                checks=(_isin((0, 1)),),
            ),
            _Col("y", _F, "continuous primary health outcome (higher is better)", checks=(_finite(),)),
            _Col(
                "event",
                _I,
                "binary outcome, e.g. an avoidable emergency visit (lower is better)",
                checks=(_isin((0, 1)),),
            ),
        ),
        key=("patient_id", "period"),
        strict=False,
        description="patient-level records",
        other_columns="covariates, e.g. `age`, `female`",
    ),
    _TableSpec(
        "delivery",
        (
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("period", _I, "the period", checks=(_ge(1), _PERIOD_CHECK)),
            _Col("sessions_planned", _I, "sessions planned", checks=(_ge(0),)),
            _Col("sessions_delivered", _I, "sessions delivered", checks=(_ge(0),)),
            _Col("eligible", _I, "people eligible for the innovation", checks=(_ge(0),)),
            _Col("reached", _I, "eligible people reached", checks=(_ge(0),)),
            _Col("staff_eligible", _I, "staff who should be trained", checks=(_ge(0),)),
            _Col("staff_trained", _I, "staff trained", checks=(_ge(0),)),
            _Col("cost", _F, "implementation cost of the period, in CAD", checks=(_ge(0), _finite())),
        ),
        key=("site_id", "period"),
        rules=(
            _le_rule(
                "sessions_delivered",
                "sessions_planned",
                "sessions_delivered cannot exceed sessions_planned (the dose delivered/planned is a proportion); "
                "check both counts",
            ),
            _le_rule("reached", "eligible", "reached cannot exceed eligible; check both counts"),
            _le_rule(
                "staff_trained", "staff_eligible", "staff_trained cannot exceed staff_eligible; check both counts"
            ),
        ),
        description="what was delivered at each site and period (dose, reach, training, cost)",
    ),
    _TableSpec(
        "components",
        (
            _Col("component_id", _S, "identifier of the component"),
            _Col("name", _S, "name shown in reports"),
            _Col("core", "bool", "`TRUE` = core component (active ingredient), `FALSE` = adaptable periphery"),
            _Col("weight", _F, "weight in the adherence index", checks=(_gt(0), _finite())),
            _Col("scale_min", _F, "lowest score of the fidelity rating scale", checks=(_finite(),)),
            _Col("scale_max", _F, "highest score of the fidelity rating scale", checks=(_finite(),)),
        ),
        key=("component_id",),
        rules=(
            _Rule(
                "scale_max > scale_min",
                ("scale_min", "scale_max"),
                _scale_ok,
                "scale_max must be greater than scale_min (e.g. 0 and 4 for a 0-4 rating scale)",
                "`scale_max` > `scale_min`",
            ),
        ),
        description="the components of the innovation",
    ),
    _TableSpec(
        "fidelity_ratings",
        (
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("session_id", _S, "the observed session or visit"),
            _Col("period", _I, "period of the session", checks=(_ge(1), _PERIOD_CHECK)),
            _Col("rater_id", _S, "the rater"),
            _Col("component_id", _S, "the component rated", references="components.component_id"),
            _Col("score", _F, "fidelity score on the component's rating scale", checks=(_finite(),)),
        ),
        key=("site_id", "session_id", "rater_id", "component_id"),
        description="component-level fidelity ratings of observed sessions",
    ),
    _TableSpec(
        "adaptations",
        (
            _Col("adaptation_id", _S, "identifier of the adaptation"),
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("period", _I, "period in which the adaptation started", checks=(_ge(1), _PERIOD_CHECK)),
            _Col(
                "when",
                "category",
                "FRAME: when the modification occurred",
                categories=("pre-implementation", "implementation", "scale-up", "maintenance"),
            ),
            _Col(
                "planned",
                "category",
                "FRAME: planned or not",
                categories=("planned-proactive", "planned-reactive", "unplanned-reactive"),
            ),
            _Col("who_decided", _S, "e.g. `program_leader`, `clinician`, `administrator`, `researcher`, `community`"),
            _Col(
                "what_modified",
                "category",
                "FRAME: what was modified",
                categories=(
                    "content",
                    "context-format",
                    "context-setting",
                    "context-personnel",
                    "context-population",
                    "training-evaluation",
                    "implementation-scaleup-activities",
                ),
            ),
            _Col("level", _S, "level of delivery, e.g. `individual`, `clinic`, `organisation`, `network`, `region`"),
            # FRAME codes the nature of *content* modifications only: missing for other modifications.
            _Col(
                "nature",
                _S,
                "nature of a content modification (`tailoring`, `adding`, `removing`, `shortening`, ...); "
                "empty for other modifications",
                nullable=True,
            ),
            _Col(
                "fidelity_relation",
                "category",
                "FRAME: relation to fidelity",
                categories=("fidelity-consistent", "fidelity-inconsistent", "unknown"),
            ),
            _Col("goal", _S, "e.g. `increase_reach`, `improve_fit`, `reduce_cost`, `improve_outcomes`"),
            _Col("reason", _S, "e.g. `sociopolitical`, `organizational`, `provider`, `recipient`"),
        ),
        key=("adaptation_id",),
        description="one row per documented adaptation (FRAME)",
        notes=(
            "The full FRAME / FRAME-IS coding scheme (and the validation of `level`, `nature`, `goal` and "
            "`reason`) is in `scaleup_analysis/adaptation.py`.",
        ),
    ),
    _TableSpec(
        "assessments",
        (
            _Col("instrument", _S, "instrument identifier, e.g. `ISAT`"),
            _Col("innovation", _S, "the innovation assessed"),
            _Col("rater_id", _S, "the rater"),
            _Col("domain", _S, "domain of the instrument, e.g. `A1`"),
            _Col("item_id", _S, "item of the instrument"),
            # missing scores are allowed: they are reported, never treated as zero
            _Col(
                "score",
                _F,
                "the rater's score; empty = not answered (reported, never treated as zero)",
                nullable=True,
                checks=(_finite(),),
            ),
        ),
        key=("instrument", "innovation", "rater_id", "item_id"),
        description="responses to a scale-up potential instrument",
    ),
    _TableSpec(
        "evidence",
        (
            _Col("study", _S, "label of the study, e.g. `Smith 2019`"),
            _Col(
                "yi",
                _F,
                "effect size (e.g. standardized mean difference, log odds ratio), on one scale for all rows",
                checks=(_finite(),),
            ),
            _Col("vi", _F, "sampling variance of `yi` (the squared standard error)", checks=(_gt(0), _finite())),
        ),
        key=("study",),
        strict=False,
        description="published or pilot studies of the innovation, for the meta-analysis of step 1",
        other_columns="moderators, e.g. `setting` or indicators of the components each study delivered",
    ),
    _TableSpec(
        "support",
        (
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col(
                "support",
                "category",
                "kind of scale-up support: `facilitation` (external implementation support), `funding`, "
                "`champion` (a local champion in post), `other`",
                categories=SUPPORT_KINDS,
            ),
            _Col("start_period", _I, "first period with this support", checks=(_ge(1), _PERIOD_CHECK)),
            _Col(
                "end_period",
                _I,
                "first period WITHOUT this support (the support ended, the champion left); empty = it "
                "continues beyond the panel",
                nullable=True,
                checks=(_ge(1), _PERIOD_CHECK),
            ),
        ),
        key=("site_id", "support"),
        rules=(
            _Rule(
                "end_period > start_period",
                ("start_period", "end_period"),
                _support_spell_ok,
                "end_period is the first period without the support: it must be after start_period; "
                "leave it empty when the support continues",
                "`end_period` > `start_period` (or empty)",
            ),
        ),
        description="the scale-up support each site received (facilitation, funding, champion), as spells",
        notes=(
            "Sustainment analyses (step 5) take the end of `facilitation` as the date the support was "
            "withdrawn.",
        ),
    ),
    _TableSpec(
        "deadoption",
        (
            _Col("site_id", _S, "the site that stopped delivering the innovation", references="sites.site_id"),
            _Col(
                "period",
                _I,
                "first period in which the site no longer delivered the innovation (in whole or in part)",
                checks=(_ge(1), _PERIOD_CHECK),
            ),
            _Col(
                "extent",
                "category",
                "`complete`: the innovation is no longer delivered; `partial`: core components dropped",
                categories=DEADOPTION_EXTENTS,
            ),
            _Col(
                "reason",
                "category",
                "main reason coded with the scheme of the data dictionary (" + ", ".join(
                    f"`{r}`" for r in DEADOPTION_REASONS) + ")",
                categories=DEADOPTION_REASONS,
            ),
        ),
        key=("site_id",),
        description="de-adoption: one row per site that stopped delivering the innovation (its first stop)",
        notes=(
            "A site without a row still delivered the innovation at the end of the panel (it is censored "
            "at its last period). Reasons: `funding_ended` (dedicated funding stopped), `support_ended` "
            "(external facilitation stopped), `staff_turnover` (trained staff left), `champion_left` (the "
            "local champion left), `low_fit` (poor fit with the setting or the population), "
            "`competing_priorities` (other reforms or emergencies took over), `other`.",
        ),
    ),
    _TableSpec(
        "site_assessments",
        (
            _Col("site_id", _S, "the site assessed", references="sites.site_id"),
            _Col("instrument", _S, "instrument identifier, e.g. `PSAT`"),
            _Col("domain", _S, "domain of the instrument, e.g. `funding_stability`"),
            _Col("score", _F, "domain score of the site (mean of its answered items)", checks=(_finite(),)),
        ),
        key=("site_id", "instrument", "domain"),
        description="domain scores of each site on a sustainability assessment (e.g. PSAT) at scale-up",
        notes=(
            "Used by the sustainment analyses of step 5: does the assessment predict which sites later "
            "stop? Scores are on the instrument's scale (PSAT: 1-7).",
        ),
    ),
    _TableSpec(
        "establishments",
        (
            _Col("site_id", _S, "the site", references="sites.site_id"),
            _Col("establishment_id", _S, "identifier of the establishment the site belongs to, e.g. `CIUSSS-05`"),
            _Col("name", _S, "name of the establishment shown in reports, e.g. `CIUSSS de l'Estrie - CHUS`"),
        ),
        key=("site_id",),
        description="the establishment (CISSS, CIUSSS or other public establishment) each site belongs to",
        notes=(
            "Used by the feedback to teams (`scaleup feedback`) and the comparisons of step 5 to aggregate "
            "indicators site -> establishment -> region (RSS) -> province. Sites without a row are shown at "
            "the site, region and province levels only.",
        ),
    ),
)

_SPEC_BY_NAME: dict[str, _TableSpec] = {s.name: s for s in _SPECS}

#: Table names, in data-flow order.
TABLES: tuple[str, ...] = tuple(s.name for s in _SPECS)
#: Tables that every data directory must hold (the others are optional).
REQUIRED_TABLES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.required)


def table_spec(name: str) -> _TableSpec:
    """The specification of table ``name`` (its columns with their kind, categories and description).

    The single source of the schemas, of ``docs/data_dictionary.md`` and of the templates of
    ``scaleup init``; ``name`` is one of :data:`TABLES`.
    """
    return _SPEC_BY_NAME[name]


def _final_dtype(col: _Col):
    if col.kind == "str":
        return str
    if col.kind == "int":
        return "Int64" if col.nullable else "int64"
    if col.kind == "float":
        return "float64"
    if col.kind == "bool":
        return "bool"
    return pd.CategoricalDtype(list(col.categories), ordered=False)


def _column_checks(col: _Col, *, for_validation: bool) -> list:
    checks = list(col.checks)
    if col.kind == "str" and col.nonempty:
        checks.append(_nonblank())
    if col.kind == "category" and for_validation:
        checks.append(_isin(col.categories))
    return checks


def _build_schema(spec: _TableSpec, *, for_validation: bool) -> pa.DataFrameSchema:
    columns = {
        c.name: pa.Column(
            # validation: dtypes were already enforced by _coerce (no costly per-element dtype check)
            None if for_validation else _final_dtype(c),
            checks=_column_checks(c, for_validation=for_validation),
            nullable=c.nullable,
            coerce=not for_validation,
            required=True,
        )
        for c in spec.columns
    }
    rules = [pa.Check(r.ok, name=r.name, error=r.name, ignore_na=False) for r in spec.rules]
    return pa.DataFrameSchema(
        columns,
        checks=rules,
        strict=spec.strict,
        unique=list(spec.key),
        report_duplicates="all",
        coerce=not for_validation,
        name=spec.name,
        description=f"table '{spec.name}' of docs/data_dictionary.md",
    )


#: Table name -> :class:`pandera.DataFrameSchema` with the final dtypes (coercing), ranges, categories,
#: key uniqueness and row-level rules of ``docs/data_dictionary.md``.
SCHEMAS: dict[str, pa.DataFrameSchema] = {s.name: _build_schema(s, for_validation=False) for s in _SPECS}
_VALIDATION_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    s.name: _build_schema(s, for_validation=True) for s in _SPECS
}

# ----------------------------------------------------------------------------------------------
# Problems and their readable report
# ----------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    table: str
    column: str | None  # None: concerns the whole table
    what: str  # e.g. "must be >= 1"
    fix: str
    positions: list[int] = field(default_factory=list)  # 0-based row positions, sorted
    values: list[str] = field(default_factory=list)  # rendered values, aligned with positions
    table_level: bool = False


@dataclass(frozen=True)
class _Source:
    """Where a table was read from: quoted in messages, with the numbers of its rows there."""

    label: str  # e.g. "/data/sites.csv" or "sheet 'sites' of /data/study.xlsx"
    kind: str  # "csv" (rows are file lines), "excel" (sheet rows) or "frame" (index labels)
    row_number: Callable[[int], int] | None = None  # 0-based row position -> file line / sheet row
    hint: str = ""  # a sentence shown after the table's problems

    def __str__(self) -> str:
        return self.label


def _source_kind(source: Any) -> str:
    if source is None:
        return "frame"
    if isinstance(source, _Source):
        return source.kind
    suffix = Path(str(source)).suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        return "excel"
    return "frame"


def _row_label(pos: int, index: pd.Index, kind: str, row_number: Callable[[int], int] | None = None) -> str:
    if kind in ("csv", "excel"):
        # without a known numbering, line / row 1 is the header and the data follow without gaps
        number = pos + 2 if row_number is None else row_number(pos)
        return f"{'file line' if kind == 'csv' else 'sheet row'} {number}"
    label = index[pos]
    if isinstance(label, np.generic):  # numpy 2 shows np.int64(5) as its repr
        label = label.item()
    return f"row {label!r}"


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return "<missing>"
    return short_repr(v)


def _format_problem(p: _Problem, index: pd.Index, kind: str, row_number: Callable[[int], int] | None = None) -> str:
    where = p.table if p.column is None else f"{p.table}.{p.column}"
    if p.table_level:
        return f"  - {where}: {p.what}. Fix: {p.fix}"
    n = len(p.positions)
    shown = ", ".join(
        f"{_row_label(pos, index, kind, row_number)}: {val}"
        for pos, val in zip(p.positions[:_MAX_ROWS_SHOWN], p.values)
    )
    more = f", ... ({n - _MAX_ROWS_SHOWN} more)" if n > _MAX_ROWS_SHOWN else ""
    rows = "row" if n == 1 else "rows"
    return f"  - {where}: {n} {rows} with {p.what} -- {shown}{more}. Fix: {p.fix}"


@dataclass
class _TableResult:
    table: str
    frame: pd.DataFrame | None  # typed copy (validation dtypes), RangeIndex
    index: pd.Index  # the caller's original index
    kind: str
    source: Any
    problems: list[_Problem] = field(default_factory=list)


def _header(table: str, source: Any) -> str:
    src = f" ({source})" if source is not None else ""
    return f"table '{table}'{src}"


#: Last line of every message about invalid tables.
_SEE_DICTIONARY = "See docs/data_dictionary.md for the expected columns, types and rules of each table."


def _render_tables(results: list[_TableResult]) -> list[str]:
    """The problems of each table: a heading line naming table and source, then one line per problem."""
    lines = []
    for r in results:
        if not r.problems:
            continue
        n = len(r.problems)
        lines.append(f"In {_header(r.table, r.source)}: {n} problem{'s' if n > 1 else ''}")
        row_number = r.source.row_number if isinstance(r.source, _Source) else None
        lines.extend(_format_problem(p, r.index, r.kind, row_number) for p in r.problems)
        if isinstance(r.source, _Source) and r.source.hint:
            lines.append(f"    Note: {r.source.hint}")
    return lines


def _render(results: list[_TableResult], intro: str) -> str:
    return "\n".join([intro, *_render_tables(results), _SEE_DICTIONARY])


# ----------------------------------------------------------------------------------------------
# Step 1: coerce each column to its (nullable) validation dtype, recording values that do not fit
# ----------------------------------------------------------------------------------------------

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _to_str(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return np.nan
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # 3.0 -> "3": an identifier read as a number by a spreadsheet
    if isinstance(v, (np.integer, np.floating)):
        return str(v.item())
    return str(v)


#: Table -> its identifier columns (key, foreign keys and the columns other tables refer to): a blank
#: before or after such a value would make a second identifier ('S0005 ' beside 'S0005').
_IDENTIFIERS: dict[str, frozenset[str]] = {
    spec.name: frozenset(
        [*spec.key, *(c.name for c in spec.columns if c.references)]
        + [c.references.split(".")[1] for other in _SPECS for c in other.columns
           if c.references and c.references.split(".")[0] == spec.name]
    )
    for spec in _SPECS
}


def _padded(table: str, column: str, values: pd.Series) -> _Problem | None:
    """Identifiers with blanks before or after them (blank-only cells are reported as blank)."""
    v = values.to_numpy()
    mask = np.fromiter(
        (isinstance(x, str) and x != x.strip() and bool(x.strip()) for x in v), dtype=bool, count=len(v)
    )
    pos = np.flatnonzero(mask)
    if not len(pos):
        return None
    return _Problem(
        table,
        column,
        "an identifier with blanks before or after it",
        f"remove the blanks: {short_repr(v[pos[0]].strip())} and {short_repr(v[pos[0]])} would count as "
        "two different identifiers (in a spreadsheet, =TRIM() the column and paste the values back)",
        pos.tolist(),
        [_fmt_value(v[i]) for i in pos[:_MAX_ROWS_SHOWN]],
    )


def _is_date(v: Any) -> bool:
    return isinstance(v, (datetime.date, datetime.time, datetime.timedelta, np.datetime64, np.timedelta64))


def _dates(table: str, col: _Col, s: pd.Series) -> _Problem | None:
    """Dates or times in a numeric column (a Parquet or Excel date column, or Excel dates among numbers)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype):
        mask = s.notna().to_numpy()
    elif s.dtype == object:
        mask = np.fromiter((_is_date(v) for v in s.to_numpy()), dtype=bool, count=len(s))
    else:
        return None
    pos = np.flatnonzero(mask)
    if not len(pos):
        return None
    if col.name in ("period", "adoption_period"):
        fix = (
            f"{table}.{col.name} holds period numbers 1, 2, ... counted from the study's first period, "
            "not dates: convert each date to its period, e.g. quarters counted from the first quarter "
            "of the study (in pandas: (d.dt.year - y0) * 4 + (d.dt.quarter - q0) + 1), or in the "
            "spreadsheet format the cells as Number and type the period numbers"
        )
    else:
        fix = (
            f"{table}.{col.name} holds numbers, not dates or times: format the cells as Number "
            "(a spreadsheet may have formatted them as dates) and check the values"
        )
    return _Problem(
        table, col.name, "a date or time where a number is expected", fix, pos.tolist(),
        [_fmt_value(str(s.iloc[i]).removesuffix(" 00:00:00")) for i in pos[:_MAX_ROWS_SHOWN]],
    )


def _as_float(s: pd.Series) -> np.ndarray:
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
        return s.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(s, dtype="float64")


def _coerce(df: pd.DataFrame, spec: _TableSpec) -> tuple[pd.DataFrame, list[_Problem], set]:
    out = df.copy()
    problems: list[_Problem] = []
    bad_cells: set[tuple[str, int]] = set()
    for col in spec.columns:
        if col.name not in out.columns:
            continue
        s = out[col.name]
        raw_missing = s.isna().to_numpy()
        if col.kind in ("str", "category"):
            out[col.name] = pd.Series([_to_str(v) for v in s.to_numpy()], index=s.index, dtype="object")
            if col.name in _IDENTIFIERS[spec.name]:
                p = _padded(spec.name, col.name, out[col.name])
                if p is not None:
                    problems.append(p)
                    bad_cells.update((col.name, i) for i in p.positions)
            continue
        if col.kind in ("int", "float"):
            p = _dates(spec.name, col, s)
            if p is not None:  # read as numbers, dates would be nanoseconds since 1970
                problems.append(p)
                bad_cells.update((col.name, i) for i in p.positions)
                out[col.name] = pd.Series(np.nan, index=s.index, dtype="float64")
                if col.kind == "int":
                    out[col.name] = out[col.name].astype("Int64")
                continue
        if col.kind == "bool":
            if pd.api.types.is_bool_dtype(s.dtype):
                out[col.name] = s.astype("boolean")
                continue
            conv = []
            bad = []
            for v in s.to_numpy():
                if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                    conv.append(pd.NA)
                    bad.append(False)
                    continue
                t = str(v.item() if isinstance(v, np.generic) else v).strip().lower()
                if t in ("1.0",):
                    t = "1"
                if t in ("0.0",):
                    t = "0"
                if t in _TRUE:
                    conv.append(True)
                    bad.append(False)
                elif t in _FALSE:
                    conv.append(False)
                    bad.append(False)
                else:
                    conv.append(pd.NA)
                    bad.append(True)
            out[col.name] = pd.array(conv, dtype="boolean")
            bad_arr = np.asarray(bad)
            if bad_arr.any():
                pos = np.flatnonzero(bad_arr)
                problems.append(
                    _Problem(
                        spec.name,
                        col.name,
                        "a value that is not true/false",
                        "write TRUE or FALSE (true/false, yes/no and 1/0 are also understood)",
                        pos.tolist(),
                        [_fmt_value(s.iloc[i]) for i in pos[:_MAX_ROWS_SHOWN]],
                    )
                )
                bad_cells.update((col.name, int(i)) for i in pos)
            continue
        # numeric columns
        if pd.api.types.is_bool_dtype(s.dtype):
            s = s.astype("Int64")
        num = pd.Series(_as_float(pd.to_numeric(s, errors="coerce")), index=s.index)
        not_number = (~raw_missing) & num.isna().to_numpy()
        if not_number.any():
            pos = np.flatnonzero(not_number)
            problems.append(
                _Problem(
                    spec.name,
                    col.name,
                    "a value that is not a number",
                    f"{spec.name}.{col.name} must hold numbers only: remove text, units, thousands "
                    "separators and comments, and leave a cell empty when the value is unknown"
                    + ("" if col.nullable else " (this column may not be empty)"),
                    pos.tolist(),
                    [_fmt_value(s.iloc[i]) for i in pos[:_MAX_ROWS_SHOWN]],
                )
            )
            bad_cells.update((col.name, int(i)) for i in pos)
        if col.kind == "int":
            vals = num.to_numpy()
            with np.errstate(invalid="ignore"):
                frac = np.isfinite(vals) & (vals != np.round(vals))
                huge = np.abs(vals) >= 2.0**63  # also inf: outside the int64 range
            not_whole = frac | huge
            if not_whole.any():
                pos = np.flatnonzero(not_whole)
                problems.append(
                    _Problem(
                        spec.name,
                        col.name,
                        "a value that is not a whole number",
                        f"{spec.name}.{col.name} holds counts or codes: correct the value to a whole number "
                        "(within +/-9.2e18, the 64-bit integer range)",
                        pos.tolist(),
                        [_fmt_value(s.iloc[i]) for i in pos[:_MAX_ROWS_SHOWN]],
                    )
                )
                bad_cells.update((col.name, int(i)) for i in pos)
            missing = np.isnan(vals) | not_whole
            out[col.name] = pd.arrays.IntegerArray(np.where(missing, 0, vals).astype("int64"), missing)
        else:
            out[col.name] = num.astype("float64")
    return out, problems, bad_cells


# ----------------------------------------------------------------------------------------------
# Step 2: run the pandera schema lazily and translate its failure cases
# ----------------------------------------------------------------------------------------------


def _columns_fix(spec: _TableSpec) -> str:
    return ", ".join(c.name for c in spec.columns)


def key_problem(table: str, positions: list[int], shown: list[list]) -> _Problem:
    """The problem "a key that is repeated": ``positions`` of every row whose key occurs more than once
    (0-based, sorted), ``shown`` the key values of the first of them."""
    key = list(_SPEC_BY_NAME[table].key)
    keytxt = key[0] if len(key) == 1 else "(" + ", ".join(key) + ")"
    values = []
    for row in shown[:_MAX_ROWS_SHOWN]:
        vals = [_fmt_value(v) for v in row]
        values.append(vals[0] if len(vals) == 1 else "(" + ", ".join(vals) + ")")
    return _Problem(
        table,
        keytxt,
        f"a key {keytxt} that is repeated",
        "each key must appear once: remove repeated rows, or correct the identifier "
        "(or the period) of the rows that were meant to differ",
        list(positions),
        values,
    )


def _translate(
    fc: pd.DataFrame, frame: pd.DataFrame, spec: _TableSpec, bad_cells: set
) -> list[_Problem]:
    problems: list[_Problem] = []
    fc = fc.copy()
    schema_cols = {c.name: c for c in spec.columns}
    rules = {r.name: r for r in spec.rules}
    # structural problems first
    missing = [str(v) for v in fc.loc[fc["check"] == "column_in_dataframe", "failure_case"]]
    if missing:
        problems.append(
            _Problem(
                spec.name,
                None,
                "missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(repr(m) for m in missing),
                f"add {'them' if len(missing) > 1 else 'it'} (check the spelling of the header); "
                f"the table needs the columns: {_columns_fix(spec)}",
                table_level=True,
            )
        )
    extra = [str(v) for v in fc.loc[fc["check"] == "column_in_schema", "failure_case"]]
    if extra:
        problems.append(
            _Problem(
                spec.name,
                None,
                "unexpected column" + ("s " if len(extra) > 1 else " ") + ", ".join(short_repr(e) for e in extra),
                f"remove or rename {'them' if len(extra) > 1 else 'it'} (a misspelt column name?); "
                f"the table has exactly the columns: {_columns_fix(spec)}",
                table_level=True,
            )
        )
    # duplicate keys
    dup = fc[fc["check"].isin(["multiple_fields_uniqueness", "field_uniqueness"])]
    pos = []
    if len(dup) and all(k in frame.columns for k in spec.key):  # a missing key column is reported above
        key = list(spec.key)
        # a key cell already reported (e.g. a date as period, read as missing) is not a repeated key
        pos = sorted({int(i) for i in dup["index"].dropna() if not any((k, int(i)) in bad_cells for k in key)})
    if len(dup) and pos:
        problems.append(key_problem(spec.name, pos, [[frame[k].iloc[i] for k in key] for i in pos[:_MAX_ROWS_SHOWN]]))
    handled = {"column_in_dataframe", "column_in_schema", "multiple_fields_uniqueness", "field_uniqueness"}
    rest = fc[~fc["check"].isin(handled)]
    # row-level rules (DataFrame-level checks, reported once per column by pandera)
    for rname, rule in rules.items():
        sub = rest[rest["check"] == rname]
        if not len(sub):
            continue
        pos = sorted({int(i) for i in sub["index"].dropna()})
        if not pos:  # the rule itself could not be evaluated: say so rather than pass silently
            problems.append(
                _Problem(spec.name, "/".join(rule.columns), f"rule '{rname}' could not be checked "
                         f"({_fmt_value(sub['failure_case'].iloc[0])})", rule.fix, table_level=True)
            )
            continue
        values = [
            ", ".join(f"{c}={_fmt_value(frame[c].iloc[i])}" for c in rule.columns) for i in pos[:_MAX_ROWS_SHOWN]
        ]
        problems.append(
            _Problem(spec.name, "/".join(rule.columns), f"values that break the rule '{rname}'", rule.fix, pos, values)
        )
    rest = rest[~rest["check"].isin(list(rules))]
    for (column, check), sub in rest.groupby(["column", "check"], sort=False, dropna=False):
        idx = [int(i) for i in sub["index"].dropna()]
        idx = sorted({i for i in idx if (column, i) not in bad_cells})
        if not idx and sub["index"].notna().any():
            continue  # already reported as not a number / not a whole number
        col = schema_cols.get(column)
        if check == "not_nullable":
            if column in {c for c in spec.key}:
                fix = f"every row needs a {column}: fill it in or remove the row"
            else:
                fix = f"fill in {spec.name}.{column} (this column may not be empty)"
            what = "a missing value (empty cell)"
        elif col is not None and isinstance(check, str) and check.startswith(("must", "dtype", "coerce")):
            if check.startswith(("dtype", "coerce")):
                what = f"a value of the wrong type ({check})"
                fix = f"correct {spec.name}.{column}"
            else:
                what = f"a value that breaks the rule '{column} {check}'"
                fix = f"correct the value: {column} {check}"
                if check in _CHECK_HINTS:
                    fix += f" ({_CHECK_HINTS[check]})"
        else:
            what = f"a value that fails the check {check!r}"
            fix = f"correct {spec.name}.{column}"
        if not idx:
            problems.append(_Problem(spec.name, column, what, fix, table_level=True))
            continue
        problems.append(
            _Problem(
                spec.name,
                column,
                what,
                fix,
                idx,
                [_fmt_value(frame[column].iloc[i]) if column in frame.columns else "?" for i in idx[:_MAX_ROWS_SHOWN]],
            )
        )
    return problems


def _check_table(df: pd.DataFrame, table: str, source: Any) -> _TableResult:
    if table not in _SPEC_BY_NAME:
        raise ScaleupDataError(
            f"Unknown table {table!r}. Known tables: {', '.join(TABLES)} (see docs/data_dictionary.md)."
        )
    if not isinstance(df, pd.DataFrame):
        raise ScaleupDataError(
            f"Table {table!r} must be a pandas DataFrame, got {type(df).__name__}. "
            "Load files with sa.load_table(path)."
        )
    spec = _SPEC_BY_NAME[table]
    kind = _source_kind(source)
    original_index = df.index
    work = df.reset_index(drop=True)
    if work.columns.duplicated().any():
        dups = sorted({str(c) for c in work.columns[work.columns.duplicated()]})
        res = _TableResult(table, None, original_index, kind, source)
        res.problems.append(
            _Problem(table, None, f"duplicated column name(s) {', '.join(map(short_repr, dups))}",
                     "give every column a distinct name", table_level=True)
        )
        return res
    work.columns = [str(c) for c in work.columns]
    if spec.required and not len(work):
        res = _TableResult(table, None, original_index, kind, source)
        res.problems.append(
            _Problem(table, None, "no rows (only column names): it is a required table",
                     f"fill in its rows, one per record (see docs/data_dictionary.md); the analyses need "
                     f"the {table} of the study", table_level=True)
        )
        return res
    coerced, problems, bad_cells = _coerce(work, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandera's own FutureWarnings are not the user's concern
        try:
            _VALIDATION_SCHEMAS[table].validate(coerced, lazy=True, inplace=False)
        except pa.errors.SchemaErrors as exc:
            problems.extend(_translate(exc.failure_cases, coerced, spec, bad_cells))
    problems.sort(key=lambda p: 0 if p.column is None else 1)  # missing/extra columns first
    return _TableResult(table, coerced, original_index, kind, source, problems)


def _finalize(res: _TableResult) -> pd.DataFrame:
    spec = _SPEC_BY_NAME[res.table]
    out = res.frame.copy()
    for col in spec.columns:
        dtype = _final_dtype(col)
        if col.kind == "str":
            out[col.name] = out[col.name].astype("object")
        else:
            out[col.name] = out[col.name].astype(dtype)
    out.index = res.index
    return out


def validate_table(data: pd.DataFrame, table: str, *, source: str | PathLike | None = None) -> pd.DataFrame:
    """Validate one table against its schema and return a typed copy.

    Parameters
    ----------
    data : pandas.DataFrame
        The table, one row per record (long format). It is never modified.
    table : str
        Table name, one of ``regions``, ``sites``, ``indicators``, ``outcomes``, ``encounters``,
        ``delivery``, ``components``, ``fidelity_ratings``, ``adaptations``, ``assessments``,
        ``evidence`` (see ``docs/data_dictionary.md``).
    source : str or path-like, optional
        Where the table came from, quoted in error messages. When it is a ``.csv`` file, offending rows
        are given as file lines (line 1 is the header, so row ``i`` of the frame is line ``i + 2``);
        for ``.xlsx`` as sheet rows; otherwise as index labels of ``data``.

    Returns
    -------
    pandas.DataFrame
        A copy with the columns of the data dictionary converted to their types: identifiers and text
        as ``str`` (object), ``int`` as ``int64``, nullable integers as ``Int64``, ``float64``, ``bool``
        and ``category`` (with the categories of the dictionary). The index of ``data`` is kept. Extra
        columns are an error except in ``encounters`` (covariates) and ``evidence`` (moderators),
        where they are kept unchanged.

    Raises
    ------
    ScaleupDataError
        Listing every problem found: missing or unexpected columns, values that are not numbers,
        missing values where not allowed, values out of range or not in the allowed categories,
        duplicated keys and broken row-level rules (e.g. ``phase`` disagreeing with ``cohort``).
        Each line names the table, the column, the number of offending rows, the first few of them
        with their values, and how to fix them.

    Notes
    -----
    Foreign keys and rules that need a second table (e.g. a site's region, a rating's scale) are
    checked by :func:`validate_tables`. Booleans accept ``True/False``, ``yes/no`` and ``1/0``.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> regions = pd.DataFrame({"rss_code": ["06", "13"], "name": ["Montréal", "Laval"],
    ...                         "settlement_type": ["metropolitan", "metropolitan"]})
    >>> sa.validate_table(regions, "regions").dtypes.astype(str).tolist()
    ['object', 'object', 'category']
    >>> bad = regions.assign(rss_code=["6", "13"])
    >>> sa.validate_table(bad, "regions")
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.ScaleupDataError: Invalid data: 1 problem in table 'regions'.
    ...
    """
    res = _check_table(data, table, _as_source(source))
    if res.problems:
        n = len(res.problems)
        raise ScaleupDataError(
            _render([res], f"Invalid data: {n} problem{'s' if n > 1 else ''} in table '{table}'.")
        )
    return _finalize(res)


# ----------------------------------------------------------------------------------------------
# Cross-table rules
# ----------------------------------------------------------------------------------------------

#: (child table, child column, parent table, parent column), from the ``references`` of the columns.
_FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = tuple(
    (spec.name, col.name, *col.references.split("."))
    for spec in _SPECS
    for col in spec.columns
    if col.references
)

#: Rules that need a second table (checked by :func:`_cross_table`), as the data dictionary states them.
_CROSS_TABLE_RULES: dict[str, tuple[str, ...]] = {
    "outcomes": (
        "the row agrees with the indicator's `type` (table `indicators`): `proportion` rows give `events` "
        "and leave `mean` and `sd` empty; `mean` rows give `mean` and `sd` and leave `events` empty",
    ),
    "fidelity_ratings": (
        "`score` lies within [`scale_min`, `scale_max`] of its component (table `components`)",
    ),
    "deadoption": (
        "the site adopted (its `adoption_period` in table `sites` is given) and `period` is after its "
        "`adoption_period`",
    ),
    "establishments": (
        "each `establishment_id` has one `name` and its sites are in one region (`rss_code` of table "
        "`sites`): an establishment serves one region",
    ),
    "sites": (
        "`adoption_period` is not after the last period of the data (the largest `period` of `outcomes`, "
        "`encounters`, `delivery`, `fidelity_ratings` and `adaptations`): a site that adopts only after "
        "it has `adoption_period` and `cohort` empty and `phase` `not-adopted`",
    ),
}


def _rows_problem(table, column, what, fix, mask: np.ndarray, frame: pd.DataFrame, show) -> _Problem | None:
    pos = np.flatnonzero(mask)
    if not len(pos):
        return None
    return _Problem(table, column, what, fix, pos.tolist(), [show(frame, int(i)) for i in pos[:_MAX_ROWS_SHOWN]])


def _cross_table(results: dict[str, _TableResult], absent_reported: frozenset[str] = frozenset()) -> None:
    """Add the problems of the rules between tables; a parent in ``absent_reported`` is absent for a
    reason already reported (a required table not given, a file that could not be read)."""
    frames = {t: r.frame for t, r in results.items() if r.frame is not None}
    for child, ccol, parent, pcol in _FOREIGN_KEYS:
        if child not in frames or ccol not in frames[child].columns or parent in absent_reported:
            continue
        if parent not in results:
            results[child].problems.append(
                _Problem(
                    child,
                    ccol,
                    f"refers to table '{parent}', which is absent",
                    f"add the '{parent}' table (file {parent}.csv) so that {child}.{ccol} can be checked",
                    table_level=True,
                )
            )
            continue
        if parent not in frames or pcol not in frames[parent].columns:
            continue
        known = set(frames[parent][pcol].dropna())
        vals = frames[child][ccol]
        mask = (vals.notna() & ~vals.isin(known | {k.strip() for k in known if isinstance(k, str)})).to_numpy()
        if mask.any():  # a value with blanks around a known one is reported as such in its own table
            stripped = {k.strip() for k in known if isinstance(k, str)}
            pos = np.flatnonzero(mask)
            mask[pos] = [not (isinstance(v, str) and v.strip() in stripped and v != v.strip())
                         for v in vals.to_numpy()[pos]]
        unknown = sorted(set(vals[mask]))
        sample = ", ".join(short_repr(v) for v in sorted(known)[:5]) + (", ..." if len(known) > 5 else "")
        p = _rows_problem(
            child,
            ccol,
            f"{ccol} not found in {parent}.{pcol} "
            f"({len(unknown)} unknown value{'s' if len(unknown) > 1 else ''})",
            f"correct the code (known values: {sample or 'none'}) or add the missing row(s) to '{parent}'",
            mask,
            frames[child],
            lambda f, i, c=ccol: _fmt_value(f[c].iloc[i]),
        )
        if p:
            results[child].problems.append(p)

    # adoption within the periods of the data
    sites = frames.get("sites")
    periods = [(t, f["period"]) for t, f in frames.items() if t != "sites" and "period" in f.columns]
    periods = [(t, per.max()) for t, per in periods if per.notna().any()]
    if sites is not None and "adoption_period" in sites.columns and periods:
        last = max(int(m) for _, m in periods)
        where = ", ".join(t for t, m in periods if int(m) == last)
        adopt = sites["adoption_period"]
        mask = (adopt.notna() & (adopt.astype("Float64") > last)).to_numpy(dtype=bool, na_value=False)
        p = _rows_problem(
            "sites",
            "adoption_period",
            f"an adoption period after {last}, the last period of the data (in {where})",
            "correct the period; a site that adopts only after the last period of the data does not adopt "
            "within the study: leave its adoption_period and cohort empty and set its phase to "
            "'not-adopted' (see docs/data_dictionary.md)",
            mask,
            sites,
            lambda f, i: _fmt_value(f["adoption_period"].iloc[i]),
        )
        if p:
            results["sites"].problems.append(p)

    # de-adoption after adoption
    stops = frames.get("deadoption")
    if sites is not None and stops is not None and _has(sites, "site_id", "adoption_period") and _has(
            stops, "site_id", "period"):
        adopt = stops["site_id"].map(sites.drop_duplicates("site_id").set_index("site_id")["adoption_period"])
        known = stops["site_id"].isin(set(sites["site_id"])).to_numpy()
        never = known & adopt.isna().to_numpy()
        early = (adopt.notna() & stops["period"].notna()).to_numpy(dtype=bool) & ~never
        early[early] = (stops["period"].to_numpy()[early].astype(float)
                        <= adopt.to_numpy()[early].astype(float))
        for mask, what, fix in (
            (never, "a de-adoption of a site that never adopted (its adoption_period is empty in 'sites')",
             "remove the row, or give the site's adoption_period in 'sites'"),
            (early, "a de-adoption period not after the site's adoption_period",
             "period is the first period in which the site no longer delivered the innovation: it comes after "
             "the adoption period; correct either period"),
        ):
            p = _rows_problem("deadoption", "period", what, fix, mask, stops,
                              lambda f, i: f"site {_fmt_value(f['site_id'].iloc[i])}, period "
                                           f"{_fmt_value(f['period'].iloc[i])}")
            if p:
                results["deadoption"].problems.append(p)

    # an establishment has one name and serves one region
    est = frames.get("establishments")
    if est is not None and _has(est, "site_id", "establishment_id", "name"):
        names = est.groupby("establishment_id", observed=True)["name"].nunique()
        mask = est["establishment_id"].isin(names.index[names > 1]).to_numpy()
        p = _rows_problem("establishments", "name", "several names for one establishment_id",
                          "give every site of an establishment the same name", mask, est,
                          lambda f, i: f"{_fmt_value(f['establishment_id'].iloc[i])}: {_fmt_value(f['name'].iloc[i])}")
        if p:
            results["establishments"].problems.append(p)
        if sites is not None and _has(sites, "site_id", "rss_code"):
            region = est["site_id"].map(sites.drop_duplicates("site_id").set_index("site_id")["rss_code"])
            n_regions = region.groupby(est["establishment_id"]).transform("nunique")
            mask = (n_regions > 1).to_numpy()
            p = _rows_problem("establishments", "establishment_id", "an establishment with sites in several regions",
                              "an establishment (CISSS, CIUSSS) serves one region: check the site's establishment "
                              "or its rss_code in 'sites'", mask, est,
                              lambda f, i, r=region: f"{_fmt_value(f['establishment_id'].iloc[i])} (site "
                                                     f"{_fmt_value(f['site_id'].iloc[i])}, region "
                                                     f"{_fmt_value(r.iloc[i])})")
            if p:
                results["establishments"].problems.append(p)

    # fidelity scores within their component's rating scale
    fr, comp = frames.get("fidelity_ratings"), frames.get("components")
    if (
        fr is not None
        and comp is not None
        and _has(fr, "component_id", "score")
        and _has(comp, "component_id", "scale_min", "scale_max")
    ):
        scales = comp.drop_duplicates("component_id").set_index("component_id")[["scale_min", "scale_max"]]
        lo = fr["component_id"].map(scales["scale_min"])
        hi = fr["component_id"].map(scales["scale_max"])
        score = fr["score"]
        mask = (score.notna() & lo.notna() & hi.notna() & ((score < lo) | (score > hi))).to_numpy()
        p = _rows_problem(
            "fidelity_ratings",
            "score",
            "a score outside its component's rating scale [scale_min, scale_max] (from components)",
            "correct the score, or the component's scale_min/scale_max in 'components'",
            mask,
            fr,
            lambda f, i: f"component_id={_fmt_value(f['component_id'].iloc[i])}, score={_fmt_value(f['score'].iloc[i])}, "
            f"scale=[{_fmt_value(lo.iloc[i])}, {_fmt_value(hi.iloc[i])}]",
        )
        if p:
            results["fidelity_ratings"].problems.append(p)

    # outcomes consistent with the indicator type
    oc, ind = frames.get("outcomes"), frames.get("indicators")
    if oc is not None and ind is not None and _has(oc, "indicator_id", "events", "mean", "sd") and _has(
        ind, "indicator_id", "type"
    ):
        itype = oc["indicator_id"].map(ind.drop_duplicates("indicator_id").set_index("indicator_id")["type"])
        prop = (itype == "proportion").to_numpy()
        mean_t = (itype == "mean").to_numpy()
        ev, mu, sd = oc["events"].isna().to_numpy(), oc["mean"].isna().to_numpy(), oc["sd"].isna().to_numpy()

        def show(f, i):
            return (
                f"indicator_id={_fmt_value(f['indicator_id'].iloc[i])}, events={_fmt_value(f['events'].iloc[i])}, "
                f"mean={_fmt_value(f['mean'].iloc[i])}, sd={_fmt_value(f['sd'].iloc[i])}"
            )

        checks = (
            (
                "events",
                prop & ev,
                "no events although the indicator type is 'proportion'",
                "give the number of events (0 <= events <= n) for proportion indicators",
            ),
            (
                "mean/sd",
                prop & ~(mu & sd),
                "a mean or sd although the indicator type is 'proportion'",
                "leave mean and sd empty for proportion indicators (use events and n)",
            ),
            (
                "mean/sd",
                mean_t & (mu | sd),
                "no mean or no sd although the indicator type is 'mean'",
                "give both mean and sd (and n) for mean indicators",
            ),
            (
                "events",
                mean_t & ~ev,
                "events although the indicator type is 'mean'",
                "leave events empty for mean indicators (use mean, sd and n)",
            ),
        )
        for column, mask, what, fix in checks:
            p = _rows_problem("outcomes", column, what, fix, mask, oc, show)
            if p:
                results["outcomes"].problems.append(p)


def validate_tables(
    tables: Mapping[str, pd.DataFrame], *, source: str | PathLike | Mapping[str, Any] | None = None
) -> dict[str, pd.DataFrame]:
    """Validate a set of tables and the rules that link them; all or nothing.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Table name -> table (names of ``docs/data_dictionary.md``). Inputs are never modified.
    source : str, path-like or mapping, optional
        Where the tables came from, quoted in error messages: a directory, or a mapping from table name
        to its file (CSV files make row numbers file lines, see :func:`validate_table`).

    Returns
    -------
    dict of str to pandas.DataFrame
        The validated, typed copies (see :func:`validate_table`), in the order of ``tables``.

    Raises
    ------
    ScaleupDataError
        One error listing every problem of every table, including the cross-table rules:

        - foreign keys: ``sites.rss_code`` in ``regions``; ``site_id`` of ``outcomes``, ``encounters``,
          ``delivery``, ``fidelity_ratings`` and ``adaptations`` in ``sites``;
          ``outcomes.indicator_id`` in ``indicators``; ``fidelity_ratings.component_id`` in
          ``components``. A table whose parent table is absent is an error;
        - ``fidelity_ratings.score`` within its component's ``[scale_min, scale_max]``;
        - ``outcomes`` consistent with the indicator's ``type``: ``proportion`` rows have ``events``
          and no ``mean``/``sd``; ``mean`` rows have ``mean`` and ``sd`` and no ``events``.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> regions = sa.load_dataset("quebec_regions")
    >>> sites = pd.DataFrame({"site_id": ["S1", "S2"], "rss_code": ["06", "19"],
    ...     "site_type": "GMF", "size": [1200, 800], "rurality": "urban",
    ...     "deprivation_quintile": [3, 5], "adoption_period": [2, None],
    ...     "cohort": [1, None], "phase": ["scale-up", "not-adopted"]})
    >>> sa.validate_tables({"regions": regions, "sites": sites})
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.ScaleupDataError: Invalid data: 1 problem in 1 table; nothing was validated.
    In table 'sites': 1 problem
      - sites.rss_code: 1 row with rss_code not found in regions.rss_code (1 unknown value) -- row 1: '19'. ...
    ...
    """
    results = _check_tables(tables, source)
    bad = [r for r in results.values() if r.problems]
    if bad:
        n = sum(len(r.problems) for r in bad)
        where = "" if source is None or isinstance(source, Mapping) else f" in {source}"
        intro = (
            f"Invalid data{where}: {n} problem{'s' if n > 1 else ''} in {len(bad)} table"
            f"{'s' if len(bad) > 1 else ''}; nothing was validated."
        )
        raise ScaleupDataError(_render(list(results.values()), intro))
    return {t: _finalize(r) for t, r in results.items()}


def _check_tables(
    tables: Mapping[str, pd.DataFrame], source: Any, absent_reported: frozenset[str] = frozenset()
) -> dict[str, _TableResult]:
    """Check each table and the rules between them; the problems are in the results (nothing raised
    for invalid data, only for arguments that are not tables)."""
    if not isinstance(tables, Mapping):
        raise ScaleupDataError(
            f"validate_tables expects a dict of table name -> DataFrame, got {type(tables).__name__}."
        )
    unknown = [t for t in tables if t not in _SPEC_BY_NAME]
    if unknown:
        raise ScaleupDataError(
            f"Unknown table name(s) {', '.join(map(repr, unknown))}. Known tables: {', '.join(TABLES)} "
            "(see docs/data_dictionary.md); rename the file(s) or dict key(s)."
        )
    if isinstance(source, Mapping):
        sources = {t: _as_source(source.get(t)) for t in tables}
    else:
        sources = {t: _as_source(source) for t in tables}
    results = {t: _check_table(df, t, sources[t]) for t, df in tables.items()}
    _cross_table(results, absent_reported)
    return results


def _as_source(source: Any) -> _Source | str | None:
    return source if source is None or isinstance(source, _Source) else str(source)
