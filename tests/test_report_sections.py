"""Report sections run, step aside with a reason, or fail without stopping the others; a run whose
notebook stops is published, marked partial, and reported as failed (exit status 1)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import pandas as pd
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
    # which rows were left out goes to the run log; the report says that some were, in its language
    assert c.output.notes == ["Note: some rows of the data were left out of this analysis (missing or unusable "
                              "values); the run log lists them."]
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


# ----------------------------------------------------------------------------------------------
# studies the hand-built one turns into by removing or changing data: no section may fail
# ----------------------------------------------------------------------------------------------
def _only_required(d: Path) -> None:
    for p in d.glob("*.csv"):
        if p.stem not in ("sites", "indicators", "outcomes"):
            p.unlink()
    (d / "study.toml").write_text("")


def _edit_sites(d: Path, edit) -> None:
    sites = pd.read_csv(d / "sites.csv", dtype=str)
    edit(sites)
    sites.to_csv(d / "sites.csv", index=False)


def _no_comparison(d: Path) -> None:
    sites = pd.read_csv(d / "sites.csv", dtype=str)
    keep = sites.loc[sites["phase"] != "not-adopted", "site_id"]
    for t in ("sites", "outcomes", "delivery", "fidelity_ratings", "adaptations", "establishments"):
        x = pd.read_csv(d / f"{t}.csv", dtype=str)
        x[x["site_id"].isin(keep)].to_csv(d / f"{t}.csv", index=False)


def _all_adopt(period: str):
    def edit(sites):
        m = sites["phase"] != "not-adopted"
        sites.loc[m, ["adoption_period", "cohort", "phase"]] = [period, "1", "scale-up"]
    return lambda d: _edit_sites(d, edit)


def _one_rater(d: Path) -> None:
    r = pd.read_csv(d / "fidelity_ratings.csv", dtype=str)
    r[r["rater_id"] == "R1"].to_csv(d / "fidelity_ratings.csv", index=False)
    a = pd.read_csv(d / "assessments.csv", dtype=str)
    a[a["rater_id"] == "EXP-1"].to_csv(d / "assessments.csv", index=False)


VARIANTS = {
    "only the required tables": (_only_required, {(1, "pooled_effect"), (2, "scores"), (4, "fidelity"),
                                                  (5, "reaim")}),
    "no comparison site": (_no_comparison, {(5, "voltage_drop"), (5, "equity")}),
    "every site adopts at once": (_all_adopt("5"), {(5, "twfe_comparison")}),
    "every site adopts in period 1": (_all_adopt("1"), {(5, "deleterious_effects"), (5, "effect_at_scale"),
                                                        (3, "detectable_effect")}),
    "one region": (lambda d: _edit_sites(d, lambda s: s.__setitem__("rss_code", "05")),
                   {(5, "effect_heterogeneity")}),
    "one rater": (_one_rater, {(2, "agreement"), (4, "rater_reliability")}),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_section_fails_on_a_study_with_less_data(variant, tmp_path):
    import logging
    import shutil

    edit, must_skip = VARIANTS[variant]
    folder = tmp_path / "study"
    shutil.copytree(SMALL, folder)
    edit(folder)
    study = sa.load_study(folder)
    records = {}
    logging.getLogger("scaleup_analysis.report").disabled = True
    try:
        for step in range(1, 6):
            rep = StepReport(study, step, display=False)
            for (s, key) in list(_section.SECTIONS):
                if s == step and not key.startswith("test"):
                    records[(step, key)] = rep.run(key)
    finally:
        logging.getLogger("scaleup_analysis.report").disabled = False
    failed = {k: sec.error for k, sec in records.items() if sec.status == "failed"}
    assert not failed, failed
    for k in must_skip:  # what the change takes away is said, with a reason
        assert records[k].status == "skipped" and records[k].reason, (k, records[k].status)
