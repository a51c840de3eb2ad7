"""The data dictionary (``docs/data_dictionary.md``), rendered from the table specifications.

Every table, column, type, rule, key, foreign key and the required/optional status of each table are
stated once, in the specifications of :mod:`scaleup_analysis.data.schemas`; this module writes them
out as Markdown. ``docs/data_dictionary.md`` is this rendering (a test keeps the two equal);
regenerate it after changing a specification with::

    python -m scaleup_analysis.data.dictionary > docs/data_dictionary.md
"""

from __future__ import annotations

import sys

from .schemas import _CROSS_TABLE_RULES, _SPECS, _Col, _TableSpec, _final_dtype

__all__ = ["render_markdown"]

REGENERATE = "python -m scaleup_analysis.data.dictionary > docs/data_dictionary.md"

_INTRO = f"""\
# Data dictionary

<!-- Generated from the table specifications in scaleup_analysis/data/schemas.py: do not edit by hand.
     Regenerate with `{REGENERATE}`. -->

All tables are tidy and long-format. This page is generated from the table specifications in
`scaleup_analysis/data/schemas.py`, the one place that defines the schemas and which tables are
required.

A data folder holds one file per table, named after the table in any letter case (`sites.csv`,
`Outcomes.CSV`, `delivery.parquet`, `components.xlsx`), or one `.xlsx` workbook with a sheet per table
named after it (other sheets, such as instructions, are ignored), or a mix of both with one source
per table. A file or sheet holding only its header row is an empty template: that table counts as
not given. Blank rows are ignored. CSV files may be separated by commas, semicolons or tabs and use a
decimal point or, with semicolons or tabs, a decimal comma (`1 234,5`); both are detected. They are
read as UTF-8 (with or without a byte-order mark) unless `cp1252` or `latin-1` is declared. The study
file `study.toml` in the same folder holds the settings of the study (among them `separator`,
`decimal` and `encoding` in its `[data]` section), see `scaleup init`.

Loading validates every table against its schema and the rules between tables (foreign keys and the
cross-table rules below). Any problem raises one `ScaleupDataError` that lists them all: missing
required tables, files not recognised or not readable, and for each bad column the table, the number
of bad rows and the first few of them as file lines or sheet rows, with how to fix them. Nothing is
half-loaded: either every table validates or none is returned.

Identifiers are strings. Periods are integers `1..T` (e.g. quarters since the start of the
observation window). An empty cell is a missing value; `Int64` is pandas' nullable integer.
"""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _type_name(col: _Col) -> str:
    dtype = _final_dtype(col)
    return "Int64" if dtype == "Int64" else col.kind


def _check_text(check) -> str:
    text = str(check.error).removeprefix("must be ").replace(" (not inf)", "")
    return text.replace(">=", "≥").replace("<=", "≤")


def _rule(col: _Col) -> str:
    parts = []
    if col.categories:
        parts.append(", ".join(f"`{c}`" for c in col.categories))
    parts.extend(_check_text(c) for c in col.checks)
    if col.references:
        parts.append(f"foreign key → `{col.references}`")
    if col.nullable:
        parts.append("may be empty")
    else:
        parts.append("not empty or blank" if col.kind == "str" and col.nonempty else "not empty")
    return "; ".join(parts)


def _status(spec: _TableSpec) -> str:
    if spec.required:
        return "required"
    return f"optional; when not given, {spec.default} is used" if spec.default else "optional"


def _table_section(spec: _TableSpec) -> list[str]:
    lines = [
        f"## `{spec.name}` — {spec.description}",
        "",
        f"*{_status(spec)[0].upper()}{_status(spec)[1:]}.*",
        "",
        "| column | type | rule | description |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {_type_name(c)} | {_md(_rule(c))} | {_md(c.description)} |" for c in spec.columns]
    if not spec.strict:
        lines.append(f"| other columns | any | kept as they are | {_md(spec.other_columns)} |")
    lines.append("")
    key = ", ".join(f"`{k}`" for k in spec.key)
    if len(spec.key) == 1:
        lines.append(f"Key: {key}, each value appearing once.")
    else:
        lines.append(f"Key: ({key}), each combination appearing once.")
    refs = [c for c in spec.columns if c.references]
    if refs:
        lines += ["", "Foreign keys: " + ", ".join(f"`{c.name}` → `{c.references}`" for c in refs) + "."]
    rules = [r.statement or r.name for r in spec.rules] + list(_CROSS_TABLE_RULES.get(spec.name, ()))
    if rules:
        lines += ["", "Rules:", *(f"- {r}" for r in rules)]
    for note in spec.notes:
        lines += ["", note]
    return lines + [""]


def render_markdown() -> str:
    """The data dictionary as Markdown (the content of ``docs/data_dictionary.md``).

    Returns
    -------
    str
        An introduction (file formats, the workbook, the study file, validation), a summary of the
        tables in data-flow order with their required/optional status, then one section per table:
        each column with its type, rule and meaning, the key, the foreign keys and the rules within
        and across tables.

    Examples
    --------
    >>> from scaleup_analysis.data.dictionary import render_markdown
    >>> text = render_markdown()
    >>> text.splitlines()[0]
    '# Data dictionary'
    >>> "| `sites` | required |" in text
    True
    """
    lines = [_INTRO, "## Tables", "", "| table | status | what it holds |", "|---|---|---|"]
    lines += [f"| `{s.name}` | {_md(_status(s))} | {_md(s.description)} |" for s in _SPECS]
    lines.append("")
    for spec in _SPECS:
        lines += _table_section(spec)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:  # pragma: no cover - exercised by the regeneration command
    sys.stdout.write(render_markdown())


if __name__ == "__main__":  # pragma: no cover
    main()
