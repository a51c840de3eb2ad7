"""Report sections run, step aside with a reason, or fail without stopping the others; a run whose
notebook stops is published, marked partial, and reported as failed (exit status 1)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import pytest

import scaleup_analysis as sa
from scaleup_analysis import cli
from scaleup_analysis.errors import ConvergenceWarning, RowsOmittedWarning
from scaleup_analysis.reporting import runner
from scaleup_analysis.steps import _section
from scaleup_analysis.steps._section import NotApplicable, SectionOutput, StepReport

SMALL = Path(__file__).parent / "studies" / "small_study"


@pytest.fixture
def study():
    return sa.load_study(SMALL)


@pytest.fixture
def registered(monkeypatch):
    """Register temporary sections of step 1 (removed after the test)."""
    added = {}

    def add(key, fn):
        monkeypatch.setitem(_section.SECTIONS, (1, key), (f"Test section {key}", fn))
        added[key] = fn

    return add


def test_sections_run_step_aside_or_fail_independently(study, registered, tmp_path):
    def boom(st):
        raise KeyError("internal_column_x")

    def aside(st):
        raise NotApplicable("the study has no thing.", "a table of things.")

    def fine(st):
        warnings.warn("meta_regression(): 2 row(s) left out", RowsOmittedWarning)
        return SectionOutput(findings=[f"{len(st.tables['sites'])} sites."])

    registered("boom", boom)
    registered("aside", aside)
    registered("fine", fine)
    rep = StepReport(study, 1, status_dir=tmp_path, display=False)
    a, b, c = rep.run("boom"), rep.run("aside"), rep.run("fine")
    assert (a.status, b.status, c.status) == ("failed", "skipped", "ran")
    assert a.error == "KeyError: 'internal_column_x'" and "\n" not in a.error
    assert b.reason == "the study has no thing." and b.needs == "a table of things."
    assert c.output.findings == ["6 sites."]
    assert c.output.notes == ["Note: 2 row(s) left out"]  # the library's prefix is not report text
    rep.close()
    record = json.loads((tmp_path / "step_1.json").read_text())
    assert record["complete"] and [s["status"] for s in record["sections"]] == ["failed", "skipped", "ran"]
    log = (tmp_path / "step_1.log").read_text()
    assert "Traceback" in log and "internal_column_x" in log  # details go to the log, not the report
    assert "Not run" in b._box_html() and "What would allow it" in b._box_html()
    assert "Failed" in a._box_html() and "other sections of the report are not affected" in a._box_html()


def test_a_model_that_did_not_converge_gives_no_finding(study, registered):
    def unfit(st):
        warnings.warn("mixed_model: the REML optimiser did not converge", ConvergenceWarning)
        return SectionOutput(findings=["an estimate that must not be shown"])

    registered("unfit", unfit)
    sec = StepReport(study, 1, display=False).run("unfit")
    assert sec.status == "skipped" and "did not converge" in sec.reason and sec.output is None


def _broken_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Step 1 — a broken step"),
        nbformat.v4.new_code_cell("data_dir = None\nseed = None\nfigures_dir = tables_dir = status_dir = None",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise RuntimeError('a bug in a notebook')"),
    ]
    nbformat.write(nb, path)
    return path


def test_a_notebook_that_stops_makes_a_partial_report(tmp_path, monkeypatch, capsys):
    broken = _broken_notebook(tmp_path / "01_broken.ipynb")
    real = runner.notebook_paths()
    monkeypatch.setattr(runner, "notebook_paths", lambda: {1: broken, 2: real[2]})
    out = tmp_path / "out"
    code = cli.main(["report", "--data", str(SMALL), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "Step 1 - Evidence of effectiveness: failed (the notebook stopped" in printed
    assert "the report is PARTIAL" in printed
    assert "Step 2 - Scale-up potential: ran" in printed  # the next step still ran
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "This run is partial" in index and "a bug in a notebook" in index
    page = (out / "01_broken.html").read_text(encoding="utf-8")
    assert "This report is partial" in page
    assert "a bug in a notebook" in (out / "run.log").read_text(encoding="utf-8")
