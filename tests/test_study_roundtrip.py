"""A team's round trip, through the command line, in folders outside the repository:

``scaleup init`` -> fill in the templates -> ``scaleup validate`` -> ``scaleup report``,

once with the CSV templates filled as a French-locale Excel writes them (semicolon separator,
decimal comma, Windows-1252 encoding declared in study.toml) and once with the workbook filled in
(the CSV templates left empty). The filled tables are those of the hand-built small study; each
report must be complete, leave the study folder byte-identical, and say the same as a report on the
original folder (same findings, same key numbers).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from scaleup_analysis import cli
from scaleup_analysis.scaffold import WORKBOOK_NAME

SMALL = Path(__file__).parent / "studies" / "small_study"

pytestmark = pytest.mark.xdist_group("report_roundtrip")


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _tables() -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(SMALL.glob("*.csv"))}


def _init(tmp_path: Path, capsys) -> Path:
    folder = tmp_path / "mon_etude"
    assert cli.main(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "scaleup validate" in out
    # the study file: the settings of the small study, set by uncommenting the template's lines
    toml = (folder / "study.toml").read_text(encoding="utf-8")
    toml = toml.replace("[study]\n", '[study]\nname = "Chronic care coordination in three regions"\n'
                                     'innovation = "chronic care coordination"\n', 1)
    toml = toml.replace('# unit = "quarter"', 'unit = "quarter"')
    toml = toml.replace('# moderators = ["tailored"]', 'moderators = ["tailored"]')
    toml = toml.replace('# measure = "standardised mean difference"',
                        'measure = "standardised mean difference of HbA1c control"')
    toml = toml.replace('# source = "Systematic review by ... (2024)"',
                        'source = "Six controlled studies of chronic care coordination (invented for this test)"')
    (folder / "study.toml").write_text(toml, encoding="utf-8")
    return folder


def _validate_and_report(folder: Path, out: Path, capsys) -> dict:
    before = _tree(folder)
    assert cli.main(["validate", str(folder)]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    # a new study reports in French (the template's default): the summary too
    assert "study.toml valide" in text and "régions\u00a0: non fournies" in text.lower()
    code = cli.main(["report", "--data", str(folder), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "en échec\u00a0: 0" in captured.out  # the run summary, in the study's language
    assert _tree(folder) == before  # the study folder is never written
    return json.loads((out / "sections.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The report on the original small-study folder, for comparison (in French, the language of a study
    made with ``scaleup init``; the small study's own file asks for English)."""
    base = tmp_path_factory.mktemp("reference")
    shutil.copytree(SMALL, base / "small")
    assert cli.main(["report", "--data", str(base / "small"), "--out", str(base / "out"), "--quiet",
                     "--lang", "fr"]) == 0
    return json.loads((base / "out" / "sections.json").read_text(encoding="utf-8"))


def _same_findings(got: dict, ref: dict) -> None:
    a = {(s["step"], s["key"]): (s["status"], s["findings"]) for s in got["sections"]}
    b = {(s["step"], s["key"]): (s["status"], s["findings"]) for s in ref["sections"]}
    assert a == b


def test_semicolon_decimal_comma_cp1252_round_trip(tmp_path, capsys, reference):
    folder = _init(tmp_path, capsys)
    toml = (folder / "study.toml").read_text(encoding="utf-8")
    (folder / "study.toml").write_text(toml.replace('# encoding = "utf-8"', 'encoding = "cp1252"'),
                                       encoding="utf-8")
    for name, table in _tables().items():
        # what Excel (French Canada) writes with "CSV (separator: semicolon)": ; and decimal commas
        frame = table.copy()
        for col in frame.columns:
            as_num = pd.to_numeric(frame[col], errors="coerce")
            if as_num.notna().all() and frame[col].str.contains(r"\.").any():
                frame[col] = frame[col].str.replace(".", ",", regex=False)
        (folder / f"{name}.csv").write_bytes(frame.to_csv(sep=";", index=False).encode("cp1252"))
    raw = (folder / "sites.csv").read_bytes()
    assert b";" in raw and "Montérégie".encode("cp1252") not in raw  # sites hold codes, not names
    assert b"," in (folder / "evidence.csv").read_bytes()  # decimal commas
    got = _validate_and_report(folder, tmp_path / "rapports", capsys)
    _same_findings(got, reference)


def test_workbook_round_trip(tmp_path, capsys, reference):
    folder = _init(tmp_path, capsys)
    wb = openpyxl.load_workbook(folder / WORKBOOK_NAME)
    for name, table in _tables().items():
        ws = wb[name]
        header = [c.value for c in ws[1]]
        for extra in [c for c in table.columns if c not in header]:  # e.g. a moderator of the evidence
            ws.cell(row=1, column=len(header) + 1, value=extra)
            header.append(extra)
        for i, row in enumerate(table.itertuples(index=False), start=2):
            for j, col in enumerate(header, start=1):
                value = getattr(row, col) if col in table.columns else ""
                if value == "":
                    continue
                try:  # numbers as numbers, as a person typing them would get; codes stay text
                    number = float(value)
                    keep_text = col in ("rss_code", "site_id", "component_id", "item_id", "rater_id")
                    ws.cell(row=i, column=j, value=value if keep_text else (int(number) if number.is_integer()
                                                                             else number))
                except ValueError:
                    ws.cell(row=i, column=j, value=value)
    wb.save(folder / WORKBOOK_NAME)
    got = _validate_and_report(folder, tmp_path / "rapports", capsys)
    _same_findings(got, reference)
