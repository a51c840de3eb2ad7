"""Data safety and privacy of the commands that write folders (issue 16).

Truth used:

* two real processes (``scaleup simulate``) started on one output folder: exactly one may report
  success, and the folder then holds exactly the winner's data (its MANIFEST verifies and its
  ``study.toml`` names the winner's seed);
* a real ``kill -9`` of ``scaleup simulate`` while its tables are being written: the target never
  holds part of a dataset, and the next run succeeds and clears what the killed run left;
* a read-only output folder (checked as an unprivileged user when the tests run as root, since root
  writes anywhere) is refused before any work, with a message naming it;
* the reports of two studies (the hand-built small study and the embedded default): every CSV table
  is scanned for counts of people between 1 and 4, including the counts a table implies (events of a
  p-chart = proportion x n). The columns that count people are those of the data dictionary
  (``docs/data_dictionary.md``: outcomes ``n``/``events``, delivery ``eligible``/``reached``/
  ``staff_eligible``/``staff_trained``) and the counts derived from them by the report
  (``n_baseline``, ``n_followup``, RE-AIM numerators and denominators of individuals ...). Counts of
  sites, regions, sessions, raters, studies, adaptations or periods are not counts of the people the
  data describe and are published.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis._atomic import FolderLock, clear_leftovers, publish_folder
from scaleup_analysis.reporting import run_report

ROOT = Path(__file__).resolve().parents[1]
STUDIES = Path(__file__).parent / "studies"
SCALEUP = [sys.executable, "-m", "scaleup_analysis.cli"]
THRESHOLD = 5


def _scaleup(*args, prefix=(), **kwargs) -> subprocess.Popen:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*prefix, *SCALEUP, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True, **kwargs)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------------------------
# two runs on one output folder
# ----------------------------------------------------------------------------------------------
def test_two_simulate_runs_at_once_cannot_both_succeed(tmp_path):
    out = tmp_path / "raw"
    procs = {seed: _scaleup("simulate", "--out", out, "--seed", seed) for seed in (11, 12)}
    results = {seed: (p.wait(timeout=300), *p.communicate()) for seed, p in procs.items()}
    winners = [seed for seed, (rc, _, _) in results.items() if rc == 0]
    assert len(winners) == 1, results
    loser = next(seed for seed in results if seed not in winners)
    rc, _, err = results[loser]
    assert rc == 2 and "Traceback" not in err
    assert ("Another simulate run (process" in err and "is writing" in err) or "already holds raw data" in err, err
    # the folder holds the winner's data, whole
    assert f"seed = {winners[0]}" in (out / "study.toml").read_text()
    sa.check_manifest(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no staging, no lock left


def test_folder_lock_is_exclusive_and_released(tmp_path):
    out = tmp_path / "x"
    with FolderLock(out, "test run"):
        with pytest.raises(sa.ScaleupDataError, match=r"Another test run \(process \d+\) is writing"):
            with FolderLock(out, "test run"):
                pass
    with FolderLock(out, "test run"):  # released on exit
        pass
    assert not (tmp_path / ".x.lock").exists()
    (tmp_path / ".x.lock").write_text(str(_dead_pid()))  # a killed run's lock file
    with FolderLock(out, "test run"):
        pass


# ----------------------------------------------------------------------------------------------
# kill -9 while the dataset is written
# ----------------------------------------------------------------------------------------------
def _kill_mid_write(out: Path) -> int:
    proc = _scaleup("simulate", "--out", out, "--n-sites", 240)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            staged = list(out.parent.glob(f".{out.name}.staging-*"))
            if any(p.suffix == ".csv" for s in staged for p in s.iterdir()):
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.communicate()
    return proc.returncode


@pytest.mark.parametrize("existing", [False, True], ids=["new_folder", "folder_with_readme"])
def test_killed_simulate_leaves_no_half_dataset(tmp_path, existing):
    out = tmp_path / "raw"
    if existing:  # e.g. data/raw of the repository, holding a README
        out.mkdir()
        (out / "README.md").write_text("our raw data\n")
    rc = _kill_mid_write(out)
    assert rc == -signal.SIGKILL, "simulate finished before it could be killed"
    # nothing of the killed run under the target name
    if out.exists():
        assert sorted(p.name for p in out.iterdir()) == (["README.md"] if existing else [])
    else:
        assert not existing
    assert any(".staging-" in p.name for p in tmp_path.iterdir())  # its staging folder was left
    # the next run is not tripped by it, and clears it
    p = _scaleup("simulate", "--out", out, "--n-sites", 36, "--n-periods", 8)
    rc, _, err = p.wait(timeout=300), *p.communicate()
    assert rc == 0, err
    sa.check_manifest(out)
    assert (out / "README.md").exists() == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_interrupted_publication_is_undone_by_the_next_run(tmp_path):
    """A kill between the two renames of publish_folder: the old folder is put back."""
    target = tmp_path / "raw"
    old = tmp_path / f".raw.old-{_dead_pid()}-abc"
    old.mkdir()
    (old / "README.md").write_text("kept\n")
    staging = tmp_path / f".raw.staging-{_dead_pid()}-def"
    staging.mkdir()
    (staging / "sites.csv").write_text("half\n")
    live = tmp_path / f".raw.staging-{os.getpid()}-ghi"  # a live run's staging is left alone
    live.mkdir()
    other = tmp_path / f".raw.v2.old-{_dead_pid()}-jkl"  # another target's leftover is not ours
    other.mkdir()
    clear_leftovers(target)
    assert (target / "README.md").read_text() == "kept\n"
    assert not old.exists() and not staging.exists() and live.exists() and other.exists()
    new = tmp_path / "new"
    new.mkdir()
    (new / "sites.csv").write_text("whole\n")
    publish_folder(new, target, keep=lambda p: True)
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "sites.csv"]
    assert not new.exists() and not list(tmp_path.glob(".raw.old-*"))


# ----------------------------------------------------------------------------------------------
# writing where one cannot
# ----------------------------------------------------------------------------------------------
def test_write_table_atomic_below_a_file(tmp_path):
    (tmp_path / "data").write_text("a file")
    with pytest.raises(sa.ScaleupDataError, match=r"'.*data' is a file, not a folder"):
        sa.write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path / "data" / "raw" / "t.csv")
    assert (tmp_path / "data").read_text() == "a file"


def _unprivileged() -> list[str]:
    """A command prefix that runs as an unprivileged user (root ignores file permissions)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot test file permissions")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import scaleup_analysis"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    if probe.returncode != 0:  # e.g. a pyenv interpreter under /root (make test-matrix), unreadable by 'nobody'
        pytest.skip(f"this interpreter cannot run as an unprivileged user here: {probe.stderr.strip()[:200]}")
    return prefix


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
@pytest.mark.parametrize("command", ["report", "simulate"])
@pytest.mark.parametrize("where", ["parent", "folder"])
def test_read_only_output_is_refused_before_any_work(command, where):
    root = Path(tempfile.mkdtemp(prefix="scaleup_read_only_"))  # reachable by the unprivileged user
    root.chmod(0o755)
    base = root / "base"
    base.mkdir()
    out = base / "out"
    try:
        if where == "folder":  # an existing (previous report's) output folder that is read-only
            out.mkdir()
            (out / "index.html").write_text("previous report\n")
            out.chmod(0o555)
        base.chmod(0o555 if where == "parent" else 0o755)
        args = ["report", "--out", out, "--quiet"] if command == "report" else ["simulate", "--out", out]
        start = time.monotonic()
        p = _scaleup(*args, cwd=root, prefix=_unprivileged())
        rc, _, err = p.wait(timeout=120), *p.communicate()
        assert rc == 2, err
        assert "Traceback" not in err and "PermissionError" not in err
        assert f"--out {str(out)!r} cannot be written" in err and "read-only" in err, err
        assert time.monotonic() - start < 60  # refused at once, not after the notebooks or the simulation
        assert sorted(p.name for p in base.iterdir()) == (["out"] if where == "folder" else [])
        assert where == "parent" or sorted(p.name for p in out.iterdir()) == ["index.html"]
    finally:
        base.chmod(0o755)
        if out.exists():
            out.chmod(0o755)
        shutil.rmtree(root)


# ----------------------------------------------------------------------------------------------
# no small cell in any table a report saves
# ----------------------------------------------------------------------------------------------
#: columns counting people, from the data dictionary and the report's derived tables
PEOPLE = ("n", "events", "non_events", "eligible", "reached", "staff_eligible", "staff_trained",
          "n_baseline", "n_followup", "n_treated", "n_control")


@pytest.fixture(scope="module")
def saved_tables(tmp_path_factory):
    base = tmp_path_factory.mktemp("safety_reports")
    out = {}
    for name, data in (("small_study", STUDIES / "small_study"), ("default", None)):
        res = run_report(data, base / name, language="en", progress=False)
        indicators = (pd.read_csv(data / "indicators.csv") if data is not None
                      else sa.default_study().tables["indicators"])
        out[name] = (res, sorted((base / name / "tables").glob("*.csv")), indicators)
    return out


def _implied_counts(path: Path, table: pd.DataFrame, indicators: pd.DataFrame) -> dict[str, pd.Series]:
    """Counts of people a table gives away without a column: the events and non-events of a p-chart."""
    m = re.match(r"05_control_chart_\d\d_(.+)\.csv$", path.name)
    if not m or {"y", "n"} - set(table.columns):
        return {}
    kind = indicators.set_index("indicator_id").loc[m.group(1), "type"]
    if kind != "proportion":
        return {}
    events = (table["y"] * table["n"]).round()
    return {"events implied by y x n": events, "non-events implied by y x n": table["n"] - events}


def _people_columns(table: pd.DataFrame) -> dict[str, pd.Series]:
    cols = {c: pd.to_numeric(table[c], errors="coerce") for c in PEOPLE if c in table.columns}
    if {"numerator", "denominator", "measurement_unit"} <= set(table.columns):  # RE-AIM: rows counting people
        people = table["measurement_unit"] == "individuals"
        for c in ("numerator", "denominator", "n_excluded"):
            if c in table.columns:
                cols[f"{c} (individuals)"] = pd.to_numeric(table[c], errors="coerce").where(people)
    return cols


@pytest.mark.parametrize("name", ["small_study", "default"])
def test_no_saved_table_shows_a_count_of_one_to_four_people(saved_tables, name):
    res, paths, indicators = saved_tables[name]
    assert res.ok, res.summary()
    assert len(paths) >= 20
    checked, leaks = 0, []
    for path in paths:
        table = pd.read_csv(path)
        for col, x in {**_people_columns(table), **_implied_counts(path, table, indicators)}.items():
            checked += 1
            small = (x >= 1) & (x < THRESHOLD)
            if small.any():
                leaks.append(f"{path.name}: {col} = {x[small].tolist()} (rows {list(table.index[small])})")
    assert checked >= 10  # the scan saw the count columns
    assert not leaks, "\n".join(leaks)


def test_the_small_study_s_control_chart_was_suppressed(saved_tables):
    """The small study's flagged burnout chart had points with 3 and 2 staff reporting burnout."""
    _, paths, _ = saved_tables["small_study"]
    chart = [p for p in paths if p.name.startswith("05_control_chart_")]
    assert chart
    t = pd.read_csv(chart[0])
    assert t["suppressed"].sum() >= 2  # primary and complementary
    assert t.loc[t["suppressed"], ["y", "n", "events", "lcl", "ucl"]].isna().all().all()
    shown = t[~t["suppressed"]]
    assert (shown["events"] >= THRESHOLD).all() and (shown["n"] - shown["events"] >= THRESHOLD).all()
    np.testing.assert_allclose(shown["y"], shown["events"] / shown["n"], rtol=1e-12)


@pytest.mark.parametrize("name", ["small_study", "default"])
def test_no_table_hides_a_single_cell(saved_tables, name):
    """Complementary suppression: no table (or RE-AIM measure) with exactly one hidden row."""
    _, paths, _ = saved_tables[name]
    for path in paths:
        t = pd.read_csv(path)
        if "suppressed" not in t.columns or path.name in ("05_deleterious_shown.csv", "05_reaim_all.csv"):
            continue  # (excerpts of a table checked as a whole)
        groups = t.groupby("measure") if "measure" in t.columns else [("all", t)]
        for key, g in groups:
            hidden = g["suppressed"].astype(bool)
            assert not (hidden.sum() == 1 and len(g) > 1), f"{path.name} {key}: one hidden row"


def test_reports_keep_no_leftover(saved_tables):
    res, _, _ = saved_tables["default"]
    assert sorted(p.name for p in res.out_dir.parent.iterdir()) == ["default", "small_study"]
