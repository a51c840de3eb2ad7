"""Data safety of the main job (``scaleup_analysis.reporting.run_report``): transactional reports.

On a copy of the hand-built small study (tests/studies/small_study, with a MANIFEST added):

* the study folder is byte-identical (sha256 of every file, no file added) after a killed run and
  three full runs;
* a run SIGKILLed mid-way publishes nothing: the output folder does not appear (first run) or still
  holds the previous complete report, byte for byte; the next run clears the killed run's staging
  folder and stale lock;
* re-running is idempotent: same files, same bytes, except the documented volatile entries of
  ``provenance.json`` (run date, notebook timings) and the git commit when the repository changed;
* a changed input file stops the next run with ``RawDataChangedError`` before anything is written;
* an output folder inside the data folder, or a folder of other files, is refused before any work;
  a second run on an output that another live run holds is refused with a clear message.

The runs are shared with ``tests/test_privacy.py`` through :func:`report_runs` (cached on disk for
the test process).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import scaleup_analysis as sa
from scaleup_analysis.reporting import notebook_paths, run_report

STUDY = Path(__file__).parent / "studies" / "small_study"
#: files whose content legitimately changes between runs (documented in reporting/runner.py)
VOLATILE = {"provenance.json"}
VOLATILE_PROVENANCE_KEYS = ("run_date", "notebook_seconds", "git_commit")

# expensive report runs shared with tests/test_privacy.py: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("report")


def test_the_package_ships_five_step_notebooks():
    assert sorted(notebook_paths()) == [1, 2, 3, 4, 5]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path, *, hidden: bool = False) -> dict[str, str]:
    """relative path -> sha256 of every file under root (hidden files only if asked)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and (hidden or not p.name.startswith(".")):
            out[p.relative_to(root).as_posix()] = _sha(p)
    return out


def _killed_run(data: Path, reports: Path) -> dict:
    """Start run_report in a subprocess, SIGKILL it (and its kernels) once its staging has files."""
    code = (
        "from scaleup_analysis.reporting import run_report\n"
        f"run_report(data_dir={str(data)!r}, out_dir={str(reports)!r}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            staged = list(reports.parent.glob(f".{reports.name}.staging-*"))
            if any(p.is_file() and p.suffix in (".png", ".html") for s in staged for p in s.rglob("*")):
                started = True
                time.sleep(0.3)  # let it go on writing for a moment, then kill mid-way
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session: the run and its kernels
        proc.wait(timeout=60)
    return {"started": started, "returncode": proc.returncode}


def _build(base: Path) -> dict:
    data, reports = base / "study", base / "reports"
    shutil.copytree(STUDY, data)
    sa.write_manifest(data)
    data_before = _tree(data, hidden=True)

    killed = _killed_run(data, reports)
    after_kill = {"published": reports.exists(),
                  "leftovers": sorted(p.name for p in base.iterdir() if p.name.startswith(".reports"))}
    run_report(data_dir=data, out_dir=reports, progress=False)
    run1 = _tree(reports, hidden=True)
    first = base / "run1"
    shutil.copytree(reports, first)
    leftovers_after_run1 = sorted(p.name for p in base.iterdir() if p.name.startswith(".reports"))

    killed_again = _killed_run(data, reports)  # on top of a complete report
    after_second_kill = _tree(reports, hidden=True)
    run_report(data_dir=data, out_dir=reports, progress=False)
    run2 = _tree(reports, hidden=True)
    return {
        "data": str(data), "reports": str(reports), "run1_dir": str(first),
        "data_before": data_before, "data_after": _tree(data, hidden=True),
        "killed": killed, "after_kill": after_kill, "leftovers_after_run1": leftovers_after_run1,
        "killed_again": killed_again, "after_second_kill": after_second_kill,
        "run1": run1, "run2": run2,
    }


def report_runs() -> dict:
    """Run (once per test process) the killed runs and the full runs; return what they left.

    Cached in a per-process temporary directory so that ``tests/test_privacy.py`` reuses it.
    """
    base = Path(tempfile.gettempdir()) / f"scaleup_report_runs_{os.getpid()}"
    marker = base / "result.json"
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8"))
    if base.exists():  # an earlier attempt in this process failed half-way
        shutil.rmtree(base)
    base.mkdir()
    atexit.register(shutil.rmtree, base, True)
    result = _build(base)
    marker.write_text(json.dumps(result), encoding="utf-8")
    return result


@pytest.fixture(scope="module")
def runs() -> dict:
    return report_runs()


def test_study_folder_is_byte_identical_after_all_runs(runs):
    assert "MANIFEST" in runs["data_before"] and "study.toml" in runs["data_before"]
    assert runs["data_after"] == runs["data_before"]  # same names, same sha256, nothing added


def test_killed_first_run_publishes_nothing(runs):
    assert runs["killed"]["started"], "the killed run never started writing"
    assert runs["killed"]["returncode"] == -signal.SIGKILL, "run finished before it could be killed"
    assert not runs["after_kill"]["published"], "a killed run published a partial report"
    # it left its staging folder and lock; the next run removed both
    assert any(".staging-" in n for n in runs["after_kill"]["leftovers"])
    assert runs["leftovers_after_run1"] == []


def test_killed_run_leaves_the_previous_report_intact(runs):
    assert runs["killed_again"]["returncode"] == -signal.SIGKILL
    assert runs["after_second_kill"] == runs["run1"]  # byte for byte


def _normalised(path: Path, commit: str, other_commit: str) -> bytes:
    data = path.read_bytes()
    if path.name == "provenance.json":
        prov = json.loads(data)
        for key in VOLATILE_PROVENANCE_KEYS:
            prov.pop(key, None)
        return json.dumps(prov, sort_keys=True).encode()
    return data.replace(other_commit.encode(), commit.encode())  # the repo may change in between


def test_rerun_is_idempotent(runs):
    run1, run2 = runs["run1"], runs["run2"]
    assert set(run1) == set(run2)  # same output files
    assert {"index.html", "provenance.json", "sections.json", "run.log"} <= set(run1)
    assert any(r.startswith("figures/") and r.endswith(".svg") for r in run1)
    assert any(r.startswith("tables/") and r.endswith(".csv") for r in run1)
    differ = sorted(r for r in run1 if run1[r] != run2[r])
    first, second = Path(runs["run1_dir"]), Path(runs["reports"])
    c1 = json.loads((first / "provenance.json").read_text())["git_commit"]
    c2 = json.loads((second / "provenance.json").read_text())["git_commit"]
    for rel in differ:  # only the commit (HTML) or the volatile provenance keys may differ
        a, b = _normalised(first / rel, c1, c2), _normalised(second / rel, c1, c2)
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        assert a == b, f"{rel} differs at byte {at}: {a[at - 300:at + 100]!r} vs {b[at - 300:at + 100]!r}"


def test_provenance_records_the_inputs_without_absolute_paths(runs):
    prov = json.loads(Path(runs["reports"], "provenance.json").read_text())
    assert prov["seed"] == 20261123 and prov["data"] == "study"
    expected = {k: v for k, v in runs["data_before"].items() if k.endswith((".csv", ".toml"))}
    assert prov["inputs_sha256"] == expected
    assert set(prov) >= {"run_date", "git_commit", "package_version", "libraries", "python"}
    base = str(Path(runs["reports"]).parent)
    for p in Path(runs["reports"]).rglob("*"):
        if p.is_file() and p.suffix in (".html", ".json", ".csv"):
            assert base not in p.read_text(encoding="utf-8", errors="replace"), p.name


def test_changed_input_stops_the_run_before_writing(runs, tmp_path):
    data = tmp_path / "study"
    shutil.copytree(runs["data"], data)
    sites = data / "sites.csv"
    sites.write_bytes(sites.read_bytes().replace(b"GMF", b"CLSC", 1))  # a silent edit
    out = tmp_path / "reports"
    with pytest.raises(sa.RawDataChangedError, match="sites.csv"):
        run_report(data_dir=data, out_dir=out, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".reports*"))  # nothing written at all
    existing = tmp_path / "existing"
    shutil.copytree(runs["reports"], existing)
    before = _tree(existing, hidden=True)
    with pytest.raises(sa.RawDataChangedError):
        run_report(data_dir=data, out_dir=existing, progress=False)
    assert _tree(existing, hidden=True) == before


def test_output_inside_the_data_folder_is_refused(runs, tmp_path):
    data = tmp_path / "study"
    shutil.copytree(runs["data"], data)
    before = _tree(data, hidden=True)
    for out in (data, data / "reports", data / "a" / "b"):
        with pytest.raises(sa.ScaleupDataError, match="inside the data folder"):
            run_report(data_dir=data, out_dir=out, progress=False)
    assert _tree(data, hidden=True) == before


def test_output_folder_of_other_files_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(sa.ScaleupDataError, match="not a previous report"):
        run_report(data_dir=STUDY, out_dir=out, progress=False)
    assert (out / "thesis.docx").read_bytes() == b"precious"


def test_a_live_run_holds_the_output(tmp_path):
    out = tmp_path / "reports"
    (tmp_path / ".reports.lock").write_text(str(os.getpid()))  # this (live) process holds it
    with pytest.raises(sa.ScaleupDataError, match=re.escape(f"Another report run (process {os.getpid()})")):
        run_report(data_dir=STUDY, out_dir=out, progress=False)
    assert not out.exists()
