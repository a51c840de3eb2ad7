"""The data dictionary docs/data_dictionary.md is the rendering of the table specifications.

Reference: the specifications in scaleup_analysis/data/schemas.py (the one place that states tables,
columns, types, rules and which tables are required). The Markdown file must equal their rendering,
and the rendering must state every table, column, category, foreign key and required status.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from scaleup_analysis.data.dictionary import REGENERATE, render_markdown
from scaleup_analysis.data.schemas import _FOREIGN_KEYS, _SPECS, REQUIRED_TABLES, TABLES

DOC = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"


def test_docs_data_dictionary_is_the_rendering_of_the_specs():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        f"docs/data_dictionary.md is out of date with the table specifications; regenerate it: {REGENERATE}"
    )


def test_regeneration_command_prints_the_rendering():
    out = subprocess.run(
        [sys.executable, "-m", "scaleup_analysis.data.dictionary"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert out == render_markdown()


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## `(\w+)` — ", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_table_column_category_and_foreign_key_is_stated():
    text = render_markdown()
    sections = _sections(text)
    assert list(sections) == list(TABLES)  # data-flow order
    for spec in _SPECS:
        body = sections[spec.name]
        status = "*Required.*" if spec.name in REQUIRED_TABLES else "*Optional"
        assert status in body, spec.name
        rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \|", body, flags=re.M)
        assert [r[0] for r in rows] == [c.name for c in spec.columns], spec.name
        for col, (_, _, rule) in zip(spec.columns, rows):
            assert re.findall(r"`([^`]+)`", rule.split(";")[0]) == list(col.categories) or not col.categories
        assert ("| other columns | any | kept as they are |" in body) == (not spec.strict)
    for child, ccol, parent, pcol in _FOREIGN_KEYS:
        assert f"`{ccol}` → `{parent}.{pcol}`" in sections[child]


def test_required_and_optional_tables_in_the_summary():
    text = render_markdown()
    for table in TABLES:
        status = "required" if table in REQUIRED_TABLES else "optional"
        assert re.search(rf"^\| `{table}` \| {status}", text, flags=re.M), table
    assert "the bundled table of Quebec's 18 health regions" in _sections(text)["regions"]
    # the intro names the accepted inputs and the study file
    for phrase in ("semicolons", "decimal comma", "cp1252", "`.xlsx` workbook", "study.toml",
                   "scaleup init", "empty template"):
        assert phrase in text, phrase
