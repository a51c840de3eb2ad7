"""A study: a team's data folder, its study file ``study.toml`` and the settings derived from both.

A study folder holds the tables of ``docs/data_dictionary.md`` (one file per table, or one ``.xlsx``
workbook with a sheet per table) and, optionally, a study file ``study.toml`` with the settings of the
study: its name, the language of the reports, the baseline and follow-up periods, the comparison
group, the primary indicator, labels and directions of indicators, the small-cell threshold, the seed
and the steps to run. Every setting is optional: a setting left out is derived from the data by a
stated rule, and the report says which value was used and why ("baseline = periods before the first
scale-up wave (period 6): 1-5").

:func:`load_study` reads and validates both (one :class:`~scaleup_analysis.ScaleupDataError` lists
every problem of the study file and of the tables; nothing is returned when anything is wrong) and
returns a :class:`Study`. Without a folder it returns the embedded default study: a simulated
province-wide scale-up (:func:`~scaleup_analysis.simulate_scaleup`) with, as its evidence of
effectiveness, the 23 studies of practice facilitation of Baskerville et al. (2012).

``SETTINGS`` is the single description of the study file: :func:`study_file_template` renders the
commented ``study.toml`` that ``scaleup init`` writes, and validation reads the same table.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._checks import checked_inputs
from ._display import Displayed
from .errors import ScaleupDataError

__all__ = [
    "Study",
    "StudySettings",
    "load_study",
    "default_study",
    "study_file_template",
    "SETTINGS",
    "STUDY_FILE",
    "DEFAULT_SEED",
]

#: Name of the study file inside a study folder.
STUDY_FILE = "study.toml"

from ._constants import DEFAULT_SEED  # noqa: E402  (the seed of the embedded default study)

#: Steps of a scale-up evaluation (the five report notebooks).
STEPS: dict[int, str] = {
    1: "Evidence of effectiveness",
    2: "Scale-up potential",
    3: "Scale-up plan and rollout",
    4: "Implementation: fidelity and adaptation",
    5: "Monitoring of impacts",
}

_LANGUAGES = ("fr", "en")  # French first: the reports are read by Quebec teams and decision makers
_PERIOD_UNITS = ("quarter", "month", "year", "period")
_DIRECTIONS = ("higher_is_better", "lower_is_better")

# ----------------------------------------------------------------------------------------------
# The study file: one table of settings (validation and template are both generated from it)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setting:
    """One setting of ``study.toml``.

    ``kind`` is one of ``"str"``, ``"int"``, ``"bool"``, ``"ints"`` (list of whole numbers),
    ``"strs"`` (list of text), ``"choice"`` (one of ``choices``) or ``"map"`` (a table of
    text -> text, e.g. indicator code -> label). ``default`` is the value used when the setting is
    absent; None means "derived from the data" and ``derived`` says how.
    """

    section: str
    key: str
    kind: str
    help: str
    example: Any
    default: Any = None
    derived: str = ""
    choices: tuple = ()
    minimum: int | None = None

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"


SETTINGS: tuple[_Setting, ...] = (
    _Setting("study", "name", "str", "Name of the study, shown on every report.",
            "Coordination des soins chroniques en Estrie", derived="the name of the data folder"),
    _Setting("study", "innovation", "str", "The innovation being scaled up, as the reports should name it.",
            "Coordination des soins chroniques", default="the innovation"),
    _Setting("study", "language", "choice", "Language of the reports: \"fr\" (français) or \"en\" (English).",
             "fr", default="fr", choices=_LANGUAGES),
    _Setting("study", "seed", "int", "Seed of every random step (bootstrap, permutations, simulations): "
            "the same seed gives the same report.", DEFAULT_SEED, default=DEFAULT_SEED, minimum=0),
    _Setting("study", "steps", "ints", "Steps of the evaluation to run (1 evidence, 2 scale-up potential, "
            "3 rollout plan, 4 fidelity and adaptation, 5 monitoring).", [1, 2, 3, 4, 5],
            default=(1, 2, 3, 4, 5), choices=tuple(STEPS)),
    _Setting("study", "simulated", "bool", "True only for data made by `scaleup simulate`: every report "
            "then says that the data are simulated.", False, default=False),
    _Setting("data", "separator", "choice", "Separator of the CSV files: \"auto\" detects comma, "
            "semicolon or tab.", ";", default="auto", choices=("auto", ",", ";", "\t")),
    _Setting("data", "decimal", "choice", "Decimal mark of numbers in the CSV files: \"auto\" detects a "
            "decimal comma in semicolon-separated files.", ",", default="auto", choices=("auto", ".", ",")),
    _Setting("data", "encoding", "choice", "Character encoding of the CSV files (Excel on Windows often "
            "writes cp1252).", "utf-8", default="utf-8", choices=("utf-8", "cp1252", "latin-1")),
    _Setting("periods", "unit", "choice", "What one period is (used in labels).", "quarter",
            default="period", choices=_PERIOD_UNITS),
    _Setting("periods", "baseline", "ints", "Periods before the scale-up, used as the baseline of "
            "before/after comparisons.", [1, 2, 3, 4],
            derived="the periods before the first scale-up wave (before the first adoption when no "
            "site has cohort >= 1)", minimum=1),
    _Setting("periods", "followup", "ints", "Periods at full rollout, compared with the baseline.",
            [6, 7, 8], derived="the periods after the last adoption (the last period when the last "
            "adoption is in the last period)", minimum=1),
    _Setting("comparison", "phase", "str", "Value of sites.phase that marks the comparison sites (sites "
            "that do not receive the innovation during the study); write \"none\" for no comparison "
            "group.", "not-adopted",
            derived="\"not-adopted\" when at least one site has that phase, otherwise no comparison group"),
    _Setting("indicators", "primary", "str", "Code (indicators.indicator_id) of the primary health "
            "indicator: the effect of the innovation, adaptations, dose-response and equity are "
            "estimated on it.", "HO_Y",
            derived="the first indicator of the health_outcomes domain in the indicators table"),
    _Setting("indicators.label", "*", "map", "Label shown in reports for an indicator code (default: "
            "indicators.name).", {"HO_Y": "Functional health score"}, default={}),
    _Setting("indicators.direction", "*", "map", "Overrides indicators.direction for an indicator "
            "code: \"higher_is_better\" or \"lower_is_better\".", {"HO_Y": "higher_is_better"},
            default={}, choices=_DIRECTIONS),
    _Setting("privacy", "small_cell_threshold", "int", "Smallest number of people a published table "
            "may show; smaller counts are suppressed.", 5, default=5, minimum=1),
    _Setting("evidence", "measure", "str", "What the effect sizes yi of the evidence table are.",
            "standardised mean difference", default="effect size"),
    _Setting("evidence", "source", "str", "Where the evidence table comes from (a citation).",
            "Systematic review by ... (2024)", default=""),
    _Setting("evidence", "moderators", "strs", "Columns of the evidence table to test as moderators of "
            "the effect (meta-regression).", ["tailored"], default=()),
    _Setting("evidence", "components", "strs", "0/1 columns of the evidence table saying whether a study's "
            "intervention contained a component (active-ingredient analysis).", ["follow_up_calls", "shared_plan"], default=()),
    _Setting("rollout", "cluster", "choice", "Unit that switches to the innovation in the rollout "
            "design: \"region\" or \"site\".", "region",
            derived="\"region\" when all the sites of each region adopted in the same period, "
            "otherwise \"site\"", choices=("region", "site")),
)

_SETTING_BY_NAME: dict[tuple[str, str], _Setting] = {(s.section, s.key): s for s in SETTINGS}
_SECTIONS = tuple(dict.fromkeys(s.section.split(".")[0] for s in SETTINGS))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def study_file_template() -> str:
    """The commented ``study.toml`` that ``scaleup init`` writes: every setting, commented out.

    Each setting is shown with its meaning, its allowed values and what is used when it is left
    out. Uncommenting a line sets it.

    Examples
    --------
    >>> from scaleup_analysis.study import study_file_template
    >>> import tomllib
    >>> parsed = tomllib.loads(study_file_template())  # every setting is commented out
    >>> all(content == {} for content in parsed.values())
    True
    >>> "# baseline = [1, 2, 3, 4]" in study_file_template()
    True
    """
    lines = [
        "# study.toml - settings of a scale-up study (scaleup_analysis).",
        "# Every setting is optional. A setting left out (commented with #) is derived from the data or",
        "# takes its default, and the report states which value was used and why.",
        "# Remove the # in front of a setting to set it. Text goes between double quotes.",
    ]
    current = None
    for s in SETTINGS:
        if s.section != current:
            current = s.section
            lines += ["", f"[{s.section}]" if "." not in s.section else f"# [{s.section}]"]
        if s.kind == "map":
            lines.append(f"# {s.help}")
            for k, v in s.example.items():
                lines.append(f"# {k} = {_toml_value(v)}")
            continue
        lines.append(f"# {s.help}")
        if s.choices and s.kind == "choice":
            lines.append("#   allowed: " + ", ".join(_toml_value(c) for c in s.choices))
        if s.default is not None and s.kind != "map":
            lines.append(f"#   when left out: {_toml_value(s.default)}")
        else:
            lines.append(f"#   when left out: {s.derived}")
        lines.append(f"# {s.key} = {_toml_value(s.example)}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Reading and checking the study file
# ----------------------------------------------------------------------------------------------


def _check_value(s: _Setting, value: Any, problems: list[str], where: str) -> Any:
    def bad(what: str) -> None:
        problems.append(f"  - {where}: {what}")

    if s.kind == "str":
        if not isinstance(value, str) or not value.strip():
            bad(f"must be non-empty text in double quotes, got {value!r}")
            return None
        return value.strip()
    if s.kind == "bool":
        if not isinstance(value, bool):
            bad(f"must be true or false (without quotes), got {value!r}")
            return None
        return value
    if s.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            bad(f"must be a whole number (without quotes), got {value!r}")
            return None
        if s.minimum is not None and value < s.minimum:
            bad(f"must be >= {s.minimum}, got {value}")
            return None
        return value
    if s.kind == "choice":
        if value not in s.choices:
            bad(f"must be one of {', '.join(_toml_value(c) for c in s.choices)}, got {value!r}")
            return None
        return value
    if s.kind in ("ints", "strs"):
        if not isinstance(value, list) or not value:
            bad(f"must be a non-empty list in square brackets, e.g. {_toml_value(s.example)}, got {value!r}")
            return None
        if s.kind == "ints":
            wrong = [v for v in value if isinstance(v, bool) or not isinstance(v, int)]
            if wrong:
                bad(f"must list whole numbers, got {', '.join(repr(v) for v in wrong)}")
                return None
            if s.minimum is not None and any(v < s.minimum for v in value):
                bad(f"values must be >= {s.minimum}, got {value}")
                return None
            if s.choices and any(v not in s.choices for v in value):
                bad(f"values must be among {list(s.choices)}, got {value}")
                return None
            if len(set(value)) != len(value):
                bad(f"lists a value twice: {value}")
                return None
            return tuple(sorted(value))
        wrong = [v for v in value if not isinstance(v, str) or not v.strip()]
        if wrong:
            bad(f"must list non-empty texts in double quotes, got {', '.join(repr(v) for v in wrong)}")
            return None
        return tuple(v.strip() for v in value)
    if s.kind == "map":
        out = {}
        for k, v in value.items():
            if not isinstance(v, str) or not v.strip():
                bad(f"{k}: must be non-empty text in double quotes, got {v!r}")
                continue
            if s.choices and v not in s.choices:
                bad(f"{k}: must be one of {', '.join(_toml_value(c) for c in s.choices)}, got {v!r}")
                continue
            out[str(k)] = v.strip()
        return out
    raise AssertionError(s.kind)  # pragma: no cover - SETTINGS is fixed


def _suggest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_study_file(path: str | os.PathLike) -> dict[tuple[str, str], Any]:
    """Read and check a ``study.toml``; returns ``{(section, key): value}`` of the settings given.

    Raises
    ------
    ScaleupDataError
        Listing every problem: TOML syntax (with line and column), unknown sections or keys (with the
        closest known name), wrong types and values outside the allowed ones.
    """
    p = Path(path)
    try:
        raw_bytes = p.read_bytes()
    except OSError as exc:
        raise ScaleupDataError(f"Cannot read the study file {str(p)!r}: {exc.strerror or exc}.") from None
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScaleupDataError(
            f"The study file {str(p)!r} is not UTF-8 text (byte offset {exc.start}). Save it as UTF-8 "
            "(any text editor, 'Encoding: UTF-8')."
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScaleupDataError(
            f"The study file {str(p)!r} is not valid TOML: {exc}. Text values need double quotes "
            '(name = "My study"), lists square brackets (baseline = [1, 2, 3]), and each setting must '
            "be under its [section]; compare with the template written by `scaleup init`."
        ) from None
    problems: list[str] = []
    values: dict[tuple[str, str], Any] = {}
    for section, content in raw.items():
        if section not in _SECTIONS:
            problems.append(f"  - [{section}]: unknown section{_suggest(section, _SECTIONS)}; "
                            f"sections are {', '.join('[' + x + ']' for x in _SECTIONS)}")
            continue
        if not isinstance(content, dict):
            problems.append(f"  - {section} = ...: settings must be written under a [{section}] heading")
            continue
        for key, value in content.items():
            sub = f"{section}.{key}"
            if (sub, "*") in _SETTING_BY_NAME:  # a sub-table such as [indicators.label]
                s = _SETTING_BY_NAME[(sub, "*")]
                if not isinstance(value, dict):
                    problems.append(f"  - [{sub}]: must be a table of code = \"text\" lines")
                    continue
                checked = _check_value(s, value, problems, f"[{sub}]")
                if checked is not None:
                    values[(sub, "*")] = checked
                continue
            s = _SETTING_BY_NAME.get((section, key))
            if s is None:
                keys = [k for (sec, k) in _SETTING_BY_NAME if sec == section]
                problems.append(f"  - [{section}] {key}: unknown setting{_suggest(key, keys)}; "
                                f"settings of [{section}] are {', '.join(keys)}")
                continue
            checked = _check_value(s, value, problems, s.name)
            if checked is not None:
                values[(section, key)] = checked
    if problems:
        raise ScaleupDataError(
            f"The study file {str(p)!r} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n"
            + "\n".join(problems)
            + "\nSee the commented template written by `scaleup init` for every setting and its allowed values."
        )
    return values


# ----------------------------------------------------------------------------------------------
# Resolved settings
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class StudySettings(Displayed):
    """The settings of a study after derivation: every field has a value.

    ``statements`` says, for each setting that was derived from the data or left at its default,
    which value was used and why; the reports show them.
    """

    name: str
    innovation: str
    language: str
    seed: int
    steps: tuple[int, ...]
    simulated: bool
    period_unit: str
    baseline: tuple[int, ...]
    followup: tuple[int, ...]
    comparison: str | None  # value of sites.phase marking comparison sites; None = no comparison group
    primary_indicator: str | None
    indicator_labels: dict[str, str]
    indicator_directions: dict[str, str]
    small_cell_threshold: int
    evidence_measure: str
    evidence_source: str
    evidence_moderators: tuple[str, ...]
    evidence_components: tuple[str, ...]
    rollout_cluster: str
    separator: str = "auto"
    decimal: str = "auto"
    encoding: str = "utf-8"
    statements: tuple[str, ...] = ()
    given: frozenset = frozenset()

    def to_frame(self) -> pd.DataFrame:
        """One row per setting: ``setting``, ``value`` and ``source`` ("study.toml" or "derived")."""
        rows = []
        for s in SETTINGS:
            if s.kind == "map":
                continue
            attr = _ATTR.get((s.section, s.key))
            value = getattr(self, attr)
            rows.append({"setting": s.name, "value": _show(value),
                         "source": STUDY_FILE if (s.section, s.key) in self.given else "derived"})
        return pd.DataFrame(rows)

    def _repr_fields(self) -> dict:
        return {"name": self.name, "language": self.language, "seed": self.seed, "steps": list(self.steps),
                "period_unit": self.period_unit, "primary_indicator": self.primary_indicator,
                "comparison": self.comparison}

    def _summary(self, tx) -> str:
        """Every setting with its value and where it comes from (the study file or derived)."""
        frame = self.to_frame()
        source = {STUDY_FILE: STUDY_FILE, "derived": tx("derived from the data or default")}
        # "none" and the embedded example's innovations are messages with a translation
        words = {"none": tx("none"), "True": tx("yes"), "False": tx("no")}
        values = [tx(v) if k == "[study] innovation" else words.get(v, v)
                  for k, v in zip(frame["setting"], frame["value"])]
        cut = [v if len(v) <= _VALUE_WIDTH else v[:_VALUE_WIDTH - 1] + "…" for v in values]
        width = max(len(tx("setting")), *(len(v) for v in frame["setting"]))
        vwidth = max(len(tx("value")), *(len(v) for v in cut))
        lines = [tx("Settings of the study {name}", name=repr(self.name)),
                 f"  {tx('setting'):<{width}}  {tx('value'):<{vwidth}}  {tx('source')}"]
        lines += [f"  {k:<{width}}  {v:<{vwidth}}  {source[src]}"
                  for k, v, src in zip(frame["setting"], cut, frame["source"])]
        if cut != values:
            lines.append("  " + tx("Long values are cut at {n} characters: see to_frame().", n=_VALUE_WIDTH))
        return "\n".join(lines)


#: Longest setting value shown in full by ``StudySettings.summary()`` (the table stays readable).
_VALUE_WIDTH = 40

_ATTR = {
    ("study", "name"): "name", ("study", "innovation"): "innovation", ("study", "language"): "language",
    ("study", "seed"): "seed", ("study", "steps"): "steps", ("study", "simulated"): "simulated",
    ("data", "separator"): "separator", ("data", "decimal"): "decimal", ("data", "encoding"): "encoding",
    ("periods", "unit"): "period_unit", ("periods", "baseline"): "baseline",
    ("periods", "followup"): "followup", ("comparison", "phase"): "comparison",
    ("indicators", "primary"): "primary_indicator", ("indicators.label", "*"): "indicator_labels",
    ("indicators.direction", "*"): "indicator_directions",
    ("privacy", "small_cell_threshold"): "small_cell_threshold", ("evidence", "measure"): "evidence_measure",
    ("evidence", "source"): "evidence_source", ("evidence", "moderators"): "evidence_moderators",
    ("evidence", "components"): "evidence_components", ("rollout", "cluster"): "rollout_cluster",
}


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return span_text(value) if value and all(isinstance(v, (int, np.integer)) for v in value) else \
            ", ".join(map(str, value)) or "none"
    return str(value)


def span_text(periods: Sequence[int]) -> str:
    """Periods as compact text: ``(1, 2, 3, 5)`` -> ``"1-3, 5"``.

    Examples
    --------
    >>> from scaleup_analysis.study import span_text
    >>> span_text([1, 2, 3, 5, 7, 8])
    '1-3, 5, 7-8'
    """
    vals = sorted(int(v) for v in periods)
    parts: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        parts.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ", ".join(parts)


def _periods_of(tables: Mapping[str, pd.DataFrame], patient_level: Mapping[str, Any] | None = None) -> list[int]:
    """Periods of the period-level tables, and of the patient-level tables summarised from files."""
    ps: set[int] = set()
    for t in ("outcomes", "delivery", "fidelity_ratings", "encounters"):
        if t in tables and "period" in tables[t]:
            ps.update(int(p) for p in pd.unique(tables[t]["period"].dropna()))
    for cells in (patient_level or {}).values():
        ps.update(cells.periods)
    return sorted(ps)


def _resolve(given: dict[tuple[str, str], Any], tables: Mapping[str, pd.DataFrame],
             folder_name: str, patient_level: Mapping[str, Any] | None = None) -> StudySettings:
    """Derive every setting that ``given`` leaves out; check those given against the data."""
    from .narrative import PERIOD_WORDS, Text

    problems: list[str] = []
    statements: list[str] = []

    def get(section: str, key: str) -> Any:
        return given.get((section, key), _SETTING_BY_NAME[(section, key)].default)

    tx = Text(get("study", "language"))
    name = given.get(("study", "name"), folder_name)
    if ("study", "name") not in given:
        statements.append(tx("Study name: not set in study.toml; the name of the data folder is used ({name}).",
                             name=name))
    sites = tables.get("sites")
    periods = _periods_of(tables, patient_level)
    unit = get("periods", "unit")
    one, many = PERIOD_WORDS[unit]
    w_unit, w_units = tx(one), tx(many)
    adopt = sites["adoption_period"].dropna().astype(int) if sites is not None else pd.Series(dtype=int)

    # baseline and follow-up periods
    if ("periods", "baseline") in given:
        baseline = given[("periods", "baseline")]
    else:
        baseline = ()
        if len(adopt) and periods:
            waves = sites.loc[sites["cohort"].fillna(-1).astype(int) >= 1, "adoption_period"].dropna()
            if len(waves):
                first, rule = int(waves.min()), tx("the first scale-up wave")
            else:
                first, rule = int(adopt.min()), tx("the first adoption")
            baseline = tuple(p for p in periods if p < first)
            if baseline:
                extra = ""
                earlier = adopt[adopt < first]
                if len(earlier):
                    extra = tx.n("; {n} pilot site adopted earlier ({unit} {when})",
                                 "; {n} pilot sites adopted earlier ({unit} {when})", len(earlier),
                                 unit=w_unit, when=span_text(sorted(set(earlier))))
                statements.append(tx("Baseline: not set in study.toml; the {units} before {rule} ({unit} {first}) "
                                     "are used: {span}{extra}.", units=w_units, rule=rule, unit=w_unit, first=first,
                                     span=span_text(baseline), extra=extra))
            else:
                statements.append(tx("Baseline: not set in study.toml, and no {unit} precedes {rule} ({unit} "
                                     "{first}): before/after comparisons are not possible unless [periods] "
                                     "baseline is set.", unit=w_unit, rule=rule, first=first))
        else:
            statements.append(tx("Baseline: not set in study.toml, and no site has an adoption period: "
                                 "before/after comparisons are not possible unless [periods] baseline is set."))
    if ("periods", "followup") in given:
        followup = given[("periods", "followup")]
    else:
        followup = ()
        if len(adopt) and periods:
            last = int(adopt.max())
            followup = tuple(p for p in periods if p > last)
            if followup:
                statements.append(tx("Follow-up: not set in study.toml; the {units} after the last adoption "
                                     "({unit} {last}) are used: {span}.", units=w_units, unit=w_unit, last=last,
                                     span=span_text(followup)))
            elif last in periods:
                followup = (last,)
                statements.append(tx("Follow-up: not set in study.toml; the last adoption is in the last {unit} "
                                     "({last}), which is used alone as the follow-up.", unit=w_unit, last=last))
    for label, ps in (("baseline", baseline), ("followup", followup)):
        if ("periods", label) in given and periods:
            outside = [p for p in ps if p not in periods]
            if outside:
                problems.append(f"  - [periods] {label}: {unit}(s) {span_text(outside)} do not occur in the "
                                f"data (its {unit}s are {span_text(periods)})")
    if baseline and followup and set(baseline) & set(followup):
        problems.append(f"  - [periods]: baseline ({span_text(baseline)}) and followup "
                        f"({span_text(followup)}) overlap; a period is either before or after")
    elif baseline and followup and max(baseline) > min(followup):
        problems.append(f"  - [periods]: baseline ({span_text(baseline)}) must come before followup "
                        f"({span_text(followup)})")

    # comparison group
    phases = set(sites["phase"].dropna().astype(str)) if sites is not None else set()
    if ("comparison", "phase") in given:
        comparison = given[("comparison", "phase")]
        if comparison.lower() == "none":
            comparison = None
        elif comparison not in phases:
            problems.append(f"  - [comparison] phase: no site has phase {comparison!r} (phases in sites: "
                            f"{', '.join(sorted(phases)) or 'none'}); write \"none\" for no comparison group")
    else:
        comparison = "not-adopted" if "not-adopted" in phases else None
        if comparison:
            n_comp = int((sites["phase"] == comparison).sum())
            statements.append(tx.n("Comparison group: not set in study.toml; the one site that never adopted "
                                   "(phase \"not-adopted\") is used.",
                                   "Comparison group: not set in study.toml; the {n} sites that never adopted "
                                   "(phase \"not-adopted\") are used.", n_comp))
        else:
            statements.append(tx("Comparison group: no site is without the innovation (phase \"not-adopted\"), "
                                 "so changes are compared with the baseline only, without correction for "
                                 "province-wide trends."))

    # indicators
    ind = tables.get("indicators")
    codes = list(ind["indicator_id"]) if ind is not None else []
    if ("indicators", "primary") in given:
        primary = given[("indicators", "primary")]
        if primary not in codes:
            problems.append(f"  - [indicators] primary: {primary!r} is not an indicator_id of the indicators "
                            f"table{_suggest(primary, codes)} (codes: {', '.join(codes[:8])}"
                            f"{', ...' if len(codes) > 8 else ''})")
    else:
        primary = None
        if ind is not None and len(ind):
            health = ind[ind["domain"].astype(str) == "health_outcomes"]
            chosen = health if len(health) else ind
            primary = str(chosen["indicator_id"].iloc[0])
            label = given.get(("indicators.label", "*"), {}).get(primary) or ind.set_index("indicator_id").loc[primary, "name"]
            statements.append(tx("Primary indicator: not set in study.toml; the first indicator of the "
                                 "health_outcomes domain is used: {code} ({label}).", code=primary, label=label)
                              if len(health) else
                              tx("Primary indicator: not set in study.toml; no indicator is in the "
                                 "health_outcomes domain, so the first indicator is used: {code} ({label}).",
                                 code=primary, label=label))
    for key in ("indicators.label", "indicators.direction"):
        for code in given.get((key, "*"), {}):
            if code not in codes:
                problems.append(f"  - [{key}] {code}: not an indicator_id of the indicators table"
                                f"{_suggest(code, codes)}")

    # evidence columns
    ev = tables.get("evidence")
    for key in ("moderators", "components"):
        cols = given.get(("evidence", key), ())
        if cols and ev is None:
            problems.append(f"  - [evidence] {key}: set, but there is no evidence table")
        elif cols:
            missing = [c for c in cols if c not in ev.columns]
            if missing:
                problems.append(f"  - [evidence] {key}: column(s) {', '.join(map(repr, missing))} are not in "
                                f"the evidence table (its columns: {', '.join(map(str, ev.columns))})")

    # rollout cluster
    if ("rollout", "cluster") in given:
        cluster = given[("rollout", "cluster")]
    else:
        cluster = "site"
        if sites is not None and len(adopt):
            adopters = sites.dropna(subset=["adoption_period"])
            same = adopters.groupby("rss_code", observed=True)["adoption_period"].nunique().le(1).all()
            whole = not sites[sites["rss_code"].isin(adopters["rss_code"])]["adoption_period"].isna().any()
            if same and whole and adopters["rss_code"].nunique() >= 2:
                cluster = "region"
        statements.append(tx("Rollout unit: not set in study.toml; all the sites of each region adopted in the "
                             "same period, so regions are the units of the rollout design.") if cluster == "region"
                          else tx("Rollout unit: not set in study.toml; sites of a region adopted at different "
                                  "times (or never), so sites are the units of the rollout design."))
    if problems:
        raise ScaleupDataError(
            f"The settings of {STUDY_FILE} do not fit the data ({len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''}):\n" + "\n".join(problems)
        )
    return StudySettings(
        name=name, innovation=get("study", "innovation"), language=get("study", "language"),
        seed=get("study", "seed"), steps=tuple(get("study", "steps")), simulated=get("study", "simulated"),
        period_unit=unit, baseline=tuple(baseline), followup=tuple(followup), comparison=comparison,
        primary_indicator=primary, indicator_labels=dict(given.get(("indicators.label", "*"), {})),
        indicator_directions=dict(given.get(("indicators.direction", "*"), {})),
        small_cell_threshold=get("privacy", "small_cell_threshold"),
        evidence_measure=get("evidence", "measure"), evidence_source=get("evidence", "source"),
        evidence_moderators=tuple(get("evidence", "moderators")),
        evidence_components=tuple(get("evidence", "components")), rollout_cluster=cluster,
        separator=get("data", "separator"), decimal=get("data", "decimal"), encoding=get("data", "encoding"),
        statements=tuple(statements), given=frozenset(given),
    )


# ----------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Study(Displayed):
    """A study ready to analyse: validated tables, resolved settings and where the data came from.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        Validated tables (``docs/data_dictionary.md``); ``regions`` is the bundled table of Quebec's
        18 RSS when the study did not give one.
    settings : StudySettings
    folder : pathlib.Path or None
        The data folder; None for the embedded default study.
    inputs : dict of str to str
        File name -> sha256 of every input file read (empty for the embedded default).
    notes : tuple of str
        Plain-language statements about the data (tables taken from defaults, files ignored).
    patient_level : dict of str to PatientCells
        Patient-level tables given as files (``encounters``): never loaded into ``tables``, they are
        checked in chunks and reduced to per-cell sufficient statistics
        (:mod:`scaleup_analysis.data.patient_level`); :meth:`cells` returns them.
    """

    tables: dict[str, pd.DataFrame] = field(repr=False)
    settings: StudySettings = field(repr=False)
    folder: Path | None = None
    inputs: dict[str, str] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()
    patient_level: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.settings.name

    def has(self, *names: str) -> bool:
        """True when every named table is present and has at least one row (a patient-level table
        summarised from its file counts)."""
        return all((n in self.tables and len(self.tables[n]) > 0)
                   or (n in self.patient_level and self.patient_level[n].rows > 0) for n in names)

    def cells(self, table: str = "encounters"):
        """The per-cell sufficient statistics of a patient-level table
        (:class:`~scaleup_analysis.data.patient_level.PatientCells`: one row per site x period x
        treated), from its file's summary or, for a table in memory, computed from its rows."""
        from .data.patient_level import cells_of_frame

        if table in self.patient_level:
            return self.patient_level[table]
        if table in self.tables:
            return cells_of_frame(self.tables[table], table)
        raise ScaleupDataError(f"the study has no table {table!r}.")

    def indicator_label(self, code: str) -> str:
        """The label of an indicator: ``[indicators.label]`` of the study file, else its name."""
        if code in self.settings.indicator_labels:
            return self.settings.indicator_labels[code]
        ind = self.tables.get("indicators")
        if ind is not None:
            row = ind.loc[ind["indicator_id"] == code, "name"]
            if len(row):
                return str(row.iloc[0])
        return str(code)

    def indicator_direction(self, code: str) -> str:
        """``higher_is_better`` or ``lower_is_better`` (the study file overrides the table)."""
        if code in self.settings.indicator_directions:
            return self.settings.indicator_directions[code]
        ind = self.tables["indicators"]
        return str(ind.loc[ind["indicator_id"] == code, "direction"].iloc[0])

    def region_name(self, code: str) -> str:
        """``"Estrie (05)"``: the region's name from the regions table, with its code."""
        reg = self.tables.get("regions")
        if reg is not None:
            row = reg.loc[reg["rss_code"] == code, "name"]
            if len(row):
                return f"{row.iloc[0]} ({code})"
        return str(code)

    @property
    def periods(self) -> list[int]:
        """Every period present in the period-level tables, sorted."""
        return _periods_of(self.tables, self.patient_level)

    def statements(self) -> tuple[str, ...]:
        """What the reports must say about the data and the derived settings."""
        from .narrative import Text

        tx = Text(self.settings.language)
        lead = ()
        if self.settings.simulated:
            lead = (tx("The data of this study are simulated (made by `scaleup simulate` or the embedded "
                       "default): they illustrate the methods and say nothing about a real programme."),)
        return tuple(s[:1].upper() + s[1:] for s in lead + self.notes + self.settings.statements)

    def _repr_fields(self) -> dict:
        sites = self.tables.get("sites")
        return {"name": self.name, "language": self.settings.language, "n_tables": len(self.tables),
                "n_sites": 0 if sites is None else len(sites), "n_periods": len(self.periods),
                "simulated": self.settings.simulated}

    def _summary(self, tx) -> str:
        """The study in a few lines: name, innovation, data, periods, steps; the tables and their rows."""
        st = self.settings
        sites = self.tables.get("sites")
        n_regions = 0 if sites is None or "rss_code" not in sites else sites["rss_code"].nunique()
        lines = [
            tx("Study: {name}", name=st.name),
            "  " + tx("Innovation: {innovation}", innovation=tx(st.innovation)),
            "  " + tx("Data: {where}", where=str(self.folder) if self.folder is not None
                      else tx("the embedded default study")),
            "  " + tx("Report language: {language}", language=tx("French") if st.language == "fr" else tx("English")),
            "  " + tx("{sites} in {regions}; periods {periods}", sites=tx.n("{n} site", "{n} sites",
                                                                           0 if sites is None else len(sites)),
                      regions=tx.n("{n} region", "{n} regions", n_regions), periods=span_text(self.periods) or "-"),
            "  " + tx("Steps: {steps}", steps=", ".join(str(s) for s in st.steps)),
        ]
        if st.simulated:
            lines.append("  " + tx("The data are simulated."))
        width = max((len(t) for t in self.tables), default=0)
        lines.append("  " + tx("Tables:"))
        lines += [f"    {t:<{width}}  {tx.n('{n} row', '{n} rows', len(df))}" for t, df in self.tables.items()]
        lines += [f"    {t:<{width}}  {tx.n('{n} row', '{n} rows', c.rows)} ({tx('summarised from {file}', file=c.source)})"
                  for t, c in self.patient_level.items()]
        return "\n".join(lines)


def _evidence_from_baskerville() -> pd.DataFrame:
    from .data.datasets import load_dataset

    b = load_dataset("baskerville2012")
    ev = pd.DataFrame({
        "study": b["author"].astype(str) + " " + b["year"].astype(str),
        "yi": b["smd"].astype(float),
        "vi": b["se"].astype(float) ** 2,
    })
    for col in ("tailor", "pperf", "design", "score", "meet", "hours", "intensity"):
        if col in b.columns:
            ev[col] = b[col].to_numpy()
    # two studies share "author year": make the labels unique as the key requires
    dup = ev["study"].duplicated(keep=False)
    ev.loc[dup, "study"] = ev.loc[dup, "study"] + ev.loc[dup].groupby("study").cumcount().map(
        lambda i: " " + "abcdefghij"[i])
    return ev


#: Settings of the embedded default study (and of the study file ``scaleup simulate`` writes).
DEFAULT_STUDY_SETTINGS: dict[tuple[str, str], Any] = {
    ("study", "name"): "Mise à l'échelle simulée dans les 18 régions du Québec (exemple intégré)",
    ("study", "innovation"): "coordination des soins chroniques",
    ("study", "simulated"): True,
    ("periods", "unit"): "quarter",
    ("evidence", "measure"): "différence de moyennes standardisée (DMS) de l'adoption des lignes directrices",
    ("evidence", "source"): ("Baskerville, Liddy et Hogg (2012), Annals of Family Medicine 10(1):63-74 : 23 "
                             "études contrôlées de la facilitation de pratique en soins primaires"),
    ("evidence", "moderators"): ("tailor", "pperf"),
    ("indicators.label", "*"): {
        "HO_Y": "Score moyen de santé des patients",
        "HO_EVENT": "Visites évitables à l'urgence",
        "UX_SAT": "Patients satisfaits des soins",
        "EF_COST": "Coût par patient",
        "TW_BURNOUT": "Personnel en épuisement professionnel",
        "EQ_REACH_Q5": "Patients admissibles du quintile le plus défavorisé rejoints",
    },
}


def default_study_tables(seed: int = DEFAULT_SEED, **simulate_kwargs: Any) -> dict[str, pd.DataFrame]:
    """Tables of the embedded default study: a simulated scale-up plus a real evidence table.

    The one way the default dataset is built, used by :func:`default_study`, ``scaleup simulate``
    and the report runner.
    """
    from .data.simulate import simulate_scaleup

    tables = dict(simulate_scaleup(seed=seed, **simulate_kwargs).tables)
    tables["evidence"] = _evidence_from_baskerville()
    return tables


def default_study_file(seed: int = DEFAULT_SEED) -> str:
    """The ``study.toml`` of the embedded default study (written by ``scaleup simulate``)."""
    lines = ["# study.toml of a study simulated by `scaleup simulate` (scaleup_analysis).",
             "# Settings that are not written here are derived from the data; see `scaleup init` for all."]
    current = None
    given = dict(DEFAULT_STUDY_SETTINGS)
    given[("study", "seed")] = int(seed)
    for s in SETTINGS:
        if (s.section, s.key) not in given:
            continue
        if s.section != current:
            current = s.section
            lines += ["", f"[{s.section}]"]
        value = given[(s.section, s.key)]
        if s.kind == "map":
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        else:
            lines.append(f"{s.key} = {_toml_value(list(value) if isinstance(value, tuple) else value)}")
    return "\n".join(lines) + "\n"


def default_study(seed: int = DEFAULT_SEED, *, language: str | None = None) -> Study:
    """The embedded default study (simulated province-wide scale-up, real evidence table).

    Examples
    --------
    >>> from scaleup_analysis.study import default_study
    >>> study = default_study(seed=1)
    >>> study.settings.simulated, study.settings.baseline, study.settings.followup
    (True, (1, 2, 3, 4, 5), (13, 14, 15, 16))
    """
    from .data.schemas import validate_tables

    tables = validate_tables(default_study_tables(seed))
    given = dict(DEFAULT_STUDY_SETTINGS)
    given[("study", "seed")] = int(seed)
    if language is not None:
        given[("study", "language")] = language
    settings = _resolve(given, tables, "embedded example")
    return Study(tables=tables, settings=settings, folder=None, inputs={}, notes=())


@checked_inputs
def load_study(data_dir: str | os.PathLike | None = None, *, seed: int | None = None,
               language: str | None = None, processed: str | os.PathLike | None = None,
               reuse_from: Sequence = (), engine: str = "duckdb",
               scheduler: str | None = None, progress: bool = False) -> Study:
    """Load a study folder (tables and ``study.toml``), or the embedded default study.

    Parameters
    ----------
    data_dir : path, optional
        The study folder. None = the embedded default study (:func:`default_study`). The folder is
        only read, never written.
    seed : int, optional
        Overrides ``[study] seed`` of the study file.
    language : {"fr", "en"}, optional
        Overrides ``[study] language`` of the study file (the language of the reports).
    processed : path, optional
        Processed folder (outside the study folder): the per-cell summaries of the patient-level
        tables (``encounters``) are read from it when it holds those of the same raw file, else
        computed from the file and written into it (:mod:`scaleup_analysis.data.patient_level`).
        None: computed and kept in memory only.
    reuse_from : list of paths
        Further processed folders whose summaries may be reused (only read).
    engine : {"duckdb", "pandas", "dask"}
        Engine that summarises a patient-level file when no stored summary is reused.
    scheduler : str, optional
        Address of the Dask scheduler for ``engine="dask"`` (None: a local cluster).
    progress : bool
        Show the rows read from a patient-level file on stderr.

    Returns
    -------
    Study

    Raises
    ------
    ScaleupDataError
        Listing every problem found: in the study file (syntax, unknown settings, wrong values), in
        the tables (missing required tables, unrecognised files, schema and cross-table rules), and
        between the two (e.g. baseline periods that do not occur in the data). The rows of a
        patient-level file are checked once the other tables are valid (they are checked against
        ``sites``).

    Notes
    -----
    A patient-level table given as its own ``.csv`` or ``.parquet`` file is never loaded into
    ``Study.tables``: its rows are read in chunks, checked, and summarised per site x period x
    treated (``Study.cells``); with a processed folder, a second load of the same raw file reads the
    stored summary and not the file.
    """
    if language is not None and language not in _LANGUAGES:
        raise ScaleupDataError(f"language must be one of {', '.join(_LANGUAGES)}, got {language!r}.")
    from .data.patient_level import ENGINES

    if engine not in ENGINES:
        raise ScaleupDataError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    if scheduler is not None and (engine != "dask" or not isinstance(scheduler, str)):
        raise ScaleupDataError(f"scheduler is the address of a Dask scheduler (text, e.g. 'tcp://10.0.0.5:8786') "
                               f"and needs engine='dask'; got scheduler={scheduler!r}, engine={engine!r}.")
    if isinstance(reuse_from, str | os.PathLike) or not all(isinstance(p, str | os.PathLike) for p in reuse_from):
        raise ScaleupDataError(f"reuse_from must be a list of folder paths, got {reuse_from!r}.")
    if data_dir is None:
        return default_study(DEFAULT_SEED if seed is None else seed, language=language)
    from .data.io import load_tables
    from .data.manifest import sha256_file

    folder = Path(data_dir)
    if not folder.is_dir():
        raise ScaleupDataError(
            f"Study folder {str(folder)!r} does not exist (or is not a folder). Create one with "
            "`scaleup init FOLDER` and fill in its tables."
        )
    study_file = folder / STUDY_FILE
    given = read_study_file(study_file) if study_file.is_file() else {}
    if seed is not None:
        given[("study", "seed")] = int(seed)
    if language is not None:
        given[("study", "language")] = language

    def opt(key: str) -> Any:
        return given.get(("data", key), _SETTING_BY_NAME[("data", key)].default)

    from .data.patient_level import PATIENT_LEVEL_TABLES

    out_folders = [Path(p) for p in ([processed] if processed is not None else []) + list(reuse_from)]
    for p in out_folders:
        if _within(p, folder):
            raise ScaleupDataError(
                f"The processed folder {str(p)!r} is inside the study folder {str(folder)!r}, which is only read: "
                "choose a processed folder outside it (e.g. the report's folder)."
            )
    loaded = load_tables(folder, separator=opt("separator"), decimal=opt("decimal"),
                         encoding=opt("encoding"), return_info=True, defer=PATIENT_LEVEL_TABLES)
    tables = dict(loaded.tables)
    patient_level = _patient_level(loaded, tables, opt, out_folders, processed, engine, scheduler, progress)
    settings = _resolve(given, tables, folder.resolve().name, patient_level)
    inputs = {}
    for path in sorted(set(p for p in loaded.files.values() if isinstance(p, Path))):
        inputs[path.name] = sha256_file(path)
    for t, path in loaded.deferred.items():
        if t in patient_level:
            inputs[path.name] = patient_level[t].sha256
    if study_file.is_file():
        inputs[STUDY_FILE] = sha256_file(study_file)
    notes = _loading_notes(loaded, settings.language, study_file.is_file())
    return Study(tables=tables, settings=settings, folder=folder, inputs=inputs, notes=notes,
                 patient_level=patient_level)


def _within(child: Path, parent: Path) -> bool:
    c, p = child.resolve(), parent.resolve()
    return c == p or p in c.parents


def _patient_level(loaded, tables, opt, folders: list[Path], processed, engine: str, scheduler, progress: bool):
    """Summaries of the patient-level files (stored ones reused, others computed and, with a processed
    folder, stored)."""
    from dataclasses import replace

    from .data.io import csv_format
    from .data.patient_level import patient_level_cells, store_cells, stored_cells

    out = {}
    for t, path in loaded.deferred.items():
        fmt = None
        if path.suffix.lower() == ".csv":
            fmt = csv_format(path, t, separator=opt("separator"), decimal=opt("decimal"), encoding=opt("encoding"))
        cells, sha, key = stored_cells(folders, path, t, fmt=fmt, sites=tables["sites"])
        if cells is None:
            cells = patient_level_cells(path, t, sites=tables["sites"], fmt=fmt, engine=engine, scheduler=scheduler,
                                        progress=progress)
            cells = replace(cells, sha256=sha, key=key, fmt=fmt)
            if processed is not None:
                store_cells(Path(processed), cells, path)
        if cells.rows:  # a header-only file is an empty template: the table counts as not given
            out[t] = cells
    return out


def _loading_notes(loaded, language: str, has_study_file: bool) -> tuple[str, ...]:
    """What a report says about how the folder was read (tables from defaults, CSV formats)."""
    from .data.io import reading_notes
    from .narrative import Text

    tx = Text(language)
    notes = []
    if not has_study_file:
        notes.append(tx("No study.toml in the data folder: every setting is derived from the data or takes its "
                        "default (`scaleup init` writes a commented template)."))
    notes += reading_notes(loaded, tx)
    return tuple(notes)
