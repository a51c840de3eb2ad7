"""Raw-data safety of the main job (``scaleup_analysis.reporting.run_report``).

What is checked, on a small simulated raw folder (``simulate_scaleup`` + ``write_table_atomic`` +
``write_manifest``):

* the raw folder is byte-identical (sha256 of every file) after a killed run and two full runs;
* a run SIGKILLed while it writes leaves no half-written file in ``reports/`` (only complete files,
  byte-identical to those of a complete run, or hidden ``.<name>.*.tmp`` temp files), and the next
  run removes the stale temp files;
* re-running is idempotent: same files, same sha256 for every file except the documented volatile
  one, ``provenance.json`` (run date, notebook timings; identical once those are removed). The
  git commit shown in the HTML footers and provenance is normalised in case the repository changed
  between the two runs;
* a changed raw file stops the next run with ``RawDataChangedError`` before anything is written.

The report is executed twice in full (plus one run killed after a few seconds); the runs are shared
with ``tests/test_privacy.py`` through :func:`report_runs` (cached on disk for the test process).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import scaleup_analysis as sa
from scaleup_analysis.reporting import run_report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SEED = 20261123
#: files whose content legitimately changes between runs (documented in reporting.py)
VOLATILE = {"provenance.json"}
VOLATILE_PROVENANCE_KEYS = ("run_date", "notebook_seconds", "git_commit")

# both files share one (expensive) report run per test process: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("report")


def test_there_are_notebooks_to_run():
    assert any(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), "no notebooks NN_*.ipynb in notebooks/"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path, *, hidden: bool = False) -> dict[str, str]:
    """relative path -> sha256 of every file under root (hidden temp files only if asked)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and (hidden or not p.name.startswith(".")):
            out[p.relative_to(root).as_posix()] = _sha(p)
    return out


def _temp_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*.tmp"))


def _write_raw(raw: Path) -> None:
    # small province (36 sites, 8 patients per site-period; the 16 default quarters, which the
    # monitoring notebook's follow-up window needs): every notebook runs, faster
    sim = sa.simulate_scaleup(seed=SEED, n_sites=36, patients_per_site_period=8)
    for name, table in sim.tables.items():
        sa.write_table_atomic(table, raw / f"{name}.csv")
    sa.write_manifest(raw)


def _killed_run(raw: Path, reports: Path) -> dict:
    """Start run_report in a subprocess, SIGKILL it (and its kernels) once it has written a file."""
    code = (
        "from scaleup_analysis.reporting import run_report\n"
        f"run_report(data_dir={str(raw)!r}, seed={SEED}, out_dir={str(reports)!r}, "
        f"notebooks_dir={str(NOTEBOOKS)!r}, progress=False)\n"
    )
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if reports.is_dir() and any(p.is_file() for p in reports.rglob("*")):
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
    raw, reports = base / "raw", base / "reports"
    raw.mkdir()
    _write_raw(raw)
    raw_before = _tree(raw, hidden=True)

    killed = _killed_run(raw, reports)
    after_kill = _tree(reports)  # non-hidden files only
    temps_after_kill = _temp_files(reports)
    # plant stale temp files as a killed atomic write leaves them, in every output folder
    planted = []
    for sub in ("", "figures", "tables"):
        d = reports / sub
        d.mkdir(parents=True, exist_ok=True)
        p = d / ".stale_name.html.k1ll3d.tmp"
        p.write_bytes(b"half-written")
        planted.append(p.relative_to(reports).as_posix())
    killed_copy = base / "killed_snapshot"
    shutil.copytree(reports, killed_copy)

    run_report(data_dir=raw, seed=SEED, out_dir=reports, notebooks_dir=NOTEBOOKS, progress=False)
    run1 = _tree(reports, hidden=True)
    first = base / "run1"
    shutil.copytree(reports, first)
    run_report(data_dir=raw, seed=SEED, out_dir=reports, notebooks_dir=NOTEBOOKS, progress=False)
    run2 = _tree(reports, hidden=True)
    return {
        "raw": str(raw), "reports": str(reports), "run1_dir": str(first),
        "killed_dir": str(killed_copy), "raw_before": raw_before, "raw_after": _tree(raw, hidden=True),
        "killed": killed, "after_kill": after_kill, "temps_after_kill": temps_after_kill,
        "planted": planted, "run1": run1, "run2": run2,
    }


def report_runs() -> dict:
    """Run (once per test process) the killed run and the two full runs; return what they left.

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


def test_raw_folder_is_byte_identical_after_all_runs(runs):
    assert runs["raw_before"], "the raw folder should hold the simulated tables and MANIFEST"
    assert "MANIFEST" in runs["raw_before"]
    assert runs["raw_after"] == runs["raw_before"]  # same names, same sha256, nothing added


def test_killed_run_leaves_only_complete_files(runs):
    assert runs["killed"]["started"], "the killed run never started writing"
    assert runs["killed"]["returncode"] == -signal.SIGKILL, "run finished before it could be killed"
    assert runs["after_kill"], "the killed run should have written some files before being killed"
    # every visible file the killed run left is complete: byte-identical to the complete run's file
    for rel, digest in runs["after_kill"].items():
        assert rel in runs["run1"], f"killed run left {rel}, which a complete run does not write"
        if Path(rel).name in VOLATILE:
            continue
        assert digest == runs["run1"][rel], f"{rel} left by the killed run is not the complete file"
    # anything else is a hidden temp file of an atomic write
    killed_dir = Path(runs["killed_dir"])
    for p in killed_dir.rglob("*"):
        if p.is_file():
            rel = p.relative_to(killed_dir).as_posix()
            assert rel in runs["after_kill"] or (p.name.startswith(".") and p.name.endswith(".tmp")), rel


def test_next_run_removes_stale_temp_files(runs):
    stale = set(runs["planted"]) | set(runs["temps_after_kill"])
    assert stale and all(Path(runs["killed_dir"], rel).exists() for rel in runs["planted"])
    left = {rel for rel in runs["run1"] if Path(rel).name.startswith(".")}
    assert not left, f"temp files survived the next run: {sorted(left)}"
    assert not _temp_files(Path(runs["reports"]))


def _normalised(path: Path, commit: str, other_commit: str) -> bytes:
    data = path.read_bytes()
    if path.name == "provenance.json":
        prov = json.loads(data)
        for key in VOLATILE_PROVENANCE_KEYS:
            prov.pop(key, None)
        return json.dumps(prov, sort_keys=True).encode()
    data = data.replace(other_commit.encode(), commit.encode())  # the repo may change in between
    if path.suffix == ".html":
        # Inline PNG payloads are compared through the saved figures instead (figures/*.png|svg must
        # be byte-identical, see test_rerun_is_idempotent): once, under heavy load, one inline PNG of
        # notebook 05 differed between two runs while every saved figure and all text were identical.
        data = re.sub(rb"data:image/png;base64,[A-Za-z0-9+/=]+", b"data:image/png;base64,<png>", data)
    return data


def test_rerun_is_idempotent(runs):
    run1, run2 = runs["run1"], runs["run2"]
    assert set(run1) == set(run2)  # same output files
    expected = {"index.html", "provenance.json"}
    assert expected <= set(run1)
    assert any(r.startswith("figures/") and r.endswith(".svg") for r in run1)
    assert any(r.startswith("tables/") and r.endswith(".csv") for r in run1)
    differ = sorted(r for r in run1 if run1[r] != run2[r])
    assert set(differ) <= VOLATILE | {r for r in run1 if r.endswith(".html")}, differ
    first, second = Path(runs["run1_dir"]), Path(runs["reports"])
    c1 = json.loads((first / "provenance.json").read_text())["git_commit"]
    c2 = json.loads((second / "provenance.json").read_text())["git_commit"]
    for rel in differ:  # only the commit (HTML) or the volatile provenance keys may differ
        a, b = _normalised(first / rel, c1, c2), _normalised(second / rel, c1, c2)
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        assert a == b, f"{rel} differs at byte {at}: {a[at - 300:at + 100]!r} vs {b[at - 300:at + 100]!r}"


def test_provenance_records_the_raw_inputs(runs):
    prov = json.loads(Path(runs["reports"], "provenance.json").read_text())
    raw = runs["raw_before"]
    assert prov["seed"] == SEED
    assert prov["inputs_sha256"] == {k: v for k, v in raw.items() if k.endswith(".csv")}
    assert set(prov) >= {"run_date", "git_commit", "package_version", "libraries", "python"}


def test_changed_raw_file_stops_the_run_before_writing(runs, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(runs["raw"], raw)
    sites = raw / "sites.csv"
    sites.write_bytes(sites.read_bytes().replace(b"GMF", b"CLSC", 1))  # a silent edit
    out = tmp_path / "reports"
    with pytest.raises(sa.RawDataChangedError, match="sites.csv"):
        run_report(data_dir=raw, seed=SEED, out_dir=out, notebooks_dir=NOTEBOOKS, progress=False)
    assert not out.exists()  # nothing written, not even the output folders
    # an existing reports folder is left untouched too (including stale temp files: no clean-up
    # happens before the data are validated)
    existing = tmp_path / "existing"
    shutil.copytree(runs["reports"], existing)
    (existing / ".x.tmp").write_bytes(b"")
    before = _tree(existing, hidden=True)
    with pytest.raises(sa.RawDataChangedError):
        run_report(data_dir=raw, seed=SEED, out_dir=existing, notebooks_dir=NOTEBOOKS, progress=False)
    assert _tree(existing, hidden=True) == before
