"""The ``scaleup`` command line (simulate, validate, report).

References: the written files must load and validate with sa.load_tables and their MANIFEST must pass
GNU ``sha256sum -c`` when available; exit codes follow the documented contract (0 ok, 2 bad data).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from dataclasses import dataclass

import pandas as pd
import pytest
from test_schemas import make_valid_tables

import scaleup_analysis as sa
from scaleup_analysis import cli
from scaleup_analysis.data.schemas import validate_tables


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_for_newcomers(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("simulate", "validate", "report", "docs/data_dictionary.md", "scaleup simulate --out data/raw"):
        assert word in out
    for command, needle in [("simulate", "never overwritten"), ("validate", "scaleup validate data/raw/sites.csv"),
                            ("report", "scaleup report --data")]:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        assert needle in out and "examples:" in out


def test_no_command_prints_help_and_exits_2(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "commands" in err


def test_simulate_with_real_simulator_tiny(tmp_path, capsys):
    out_dir = tmp_path / "raw"
    code, out, err = run(capsys, "simulate", "--out", str(out_dir), "--seed", "3", "--n-sites", "36",
                         "--n-periods", "8", "--patients-per-site-period", "2")
    assert code == 0, err
    assert "Wrote 15 tables, study.toml and a MANIFEST" in out
    names = sorted(p.name for p in out_dir.iterdir())
    assert "MANIFEST" in names and "sites.csv" in names and "encounters.csv" in names
    tables = sa.load_tables(out_dir)  # checks the MANIFEST and every rule
    assert len(tables["sites"]) == 36 and len(tables["encounters"]) == 36 * 8 * 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "MANIFEST"], cwd=out_dir, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    # same seed, same data (to a second, new directory)
    code, _, _ = run(capsys, "simulate", "--out", str(tmp_path / "raw2"), "--seed", "3", "--n-sites", "36",
                     "--n-periods", "8", "--patients-per-site-period", "2")
    assert code == 0
    assert (out_dir / "MANIFEST").read_bytes() == (tmp_path / "raw2" / "MANIFEST").read_bytes()


@dataclass(frozen=True)
class _FakeSim:
    tables: dict
    truth: object = None


def test_simulate_passes_options_and_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    calls = []

    def fake(seed, **kwargs):
        calls.append((seed, kwargs))
        return _FakeSim(make_valid_tables())

    monkeypatch.setattr("scaleup_analysis.data.simulate.simulate_scaleup", fake)
    out_dir = tmp_path / "raw"
    code, out, err = run(capsys, "simulate", "--out", str(out_dir), "--n-sites", "40")
    assert code == 0, err
    assert calls == [(cli.DEFAULT_SEED, {"n_sites": 40})]  # unspecified options keep their defaults
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    code, out, err = run(capsys, "simulate", "--out", str(out_dir))
    assert code == 2 and out == ""
    assert "Refusing to write into" in err and "MANIFEST" in err and "--out" in err
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before  # untouched
    assert len(calls) == 1  # refused before simulating
    # data files without a MANIFEST are also raw data
    other = tmp_path / "other"
    other.mkdir()
    (other / "sites.csv").write_text("x\n", encoding="utf-8")
    code, _, err = run(capsys, "simulate", "--out", str(other))
    assert code == 2 and "sites.csv" in err


def test_simulate_into_an_existing_empty_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("scaleup_analysis.data.simulate.simulate_scaleup",
                        lambda seed, **kw: _FakeSim(make_valid_tables()))
    (tmp_path / "raw").mkdir()
    code, _, err = run(capsys, "simulate", "--out", str(tmp_path / "raw"))
    assert code == 0, err
    assert set(sa.load_tables(tmp_path / "raw")) == set(make_valid_tables())


def test_simulate_never_writes_invalid_tables(tmp_path, capsys, monkeypatch):
    bad = make_valid_tables()
    bad["sites"].loc[0, "rss_code"] = "42"
    monkeypatch.setattr("scaleup_analysis.data.simulate.simulate_scaleup", lambda seed, **kw: _FakeSim(bad))
    code, _, err = run(capsys, "simulate", "--out", str(tmp_path / "raw"))
    assert code == 2 and "sites.rss_code" in err
    assert not (tmp_path / "raw").exists()


def test_bad_option_values_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["simulate", "--n-sites", "many"])
    assert info.value.code == 2
    assert "expected a whole number, got 'many'" in capsys.readouterr().err


def _write_valid_dir(directory):
    directory.mkdir()
    for name, df in validate_tables(make_valid_tables()).items():
        sa.write_table_atomic(df, directory / f"{name}.csv")
    return directory


def test_validate_directory_and_file(tmp_path, capsys):
    d = _write_valid_dir(tmp_path / "raw")
    code, out, err = run(capsys, "validate", str(d))  # no study.toml: French, the default
    assert code == 0, err
    assert "15 tables valides (aucun MANIFEST); aucun study.toml" in out
    assert "outcomes" in out and "12 lignes" in out and "7 colonnes" in out
    code, out, err = run(capsys, "validate", "--lang", "en", str(d))
    assert code == 0, err
    assert "15 tables valid (no MANIFEST); no study.toml" in out
    assert "outcomes" in out and "12 rows" in out and "7 columns" in out
    sa.write_manifest(d)
    code, out, _ = run(capsys, "validate", "--lang", "en", str(d))
    assert code == 0 and "(MANIFEST verified)" in out
    code, out, _ = run(capsys, "validate", "--lang", "en", str(d / "sites.csv"))
    assert code == 0 and "table 'sites' valid (schema only" in out and "3 rows" in out
    code, out, _ = run(capsys, "validate", str(d / "sites.csv"))
    assert code == 0 and "table «\u00a0sites\u00a0» valide (schéma seulement" in out and "3 lignes" in out


def test_validate_reports_errors_on_stderr_with_exit_2(tmp_path, capsys):
    d = _write_valid_dir(tmp_path / "raw")
    sites = pd.read_csv(d / "sites.csv", dtype=str)
    sites.loc[2, "size"] = "big"
    sites.to_csv(d / "sites.csv", index=False)
    code, out, err = run(capsys, "validate", str(d))
    assert code == 2 and out == ""
    assert "sites.size: 1 row with a value that is not a number -- file line 4: 'big'" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "validate", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err


def test_report_calls_run_report_lazily(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_run_report(data_dir, out_dir, *, seed, steps, language, progress, processed_dir, engine, scheduler):
        assert (processed_dir, engine, scheduler) == (None, "duckdb", None)
        seen.update(data_dir=data_dir, seed=seed, out_dir=out_dir, steps=steps)
        return types.SimpleNamespace(ok=not steps, summary=lambda: "SUMMARY",
                                     written_message=lambda out: f"open {out}/index.html")

    fake = types.ModuleType("scaleup_analysis.reporting")
    fake.run_report = fake_run_report
    monkeypatch.setitem(sys.modules, "scaleup_analysis.reporting", fake)
    monkeypatch.setattr(sa, "reporting", fake, raising=False)
    code, out, err = run(capsys, "report", "--data", "d1", "--seed", "7", "--out", "r1")
    assert code == 0, err
    assert seen == {"data_dir": "d1", "seed": 7, "out_dir": "r1", "steps": None}
    assert "SUMMARY" in out and "open r1/index.html" in out
    code, _, _ = run(capsys, "report")  # the embedded example study, the study's own seed
    assert seen == {"data_dir": None, "seed": None, "out_dir": "reports", "steps": None}
    code, _, _ = run(capsys, "report", "--steps", "5,1")
    assert code == 1 and seen["steps"] == (1, 5)  # a failed section makes the exit status 1

    def failing(data_dir, out_dir, **kwargs):
        raise sa.ScaleupDataError("Invalid data: something precise")

    fake.run_report = failing
    code, out, err = run(capsys, "report")
    assert code == 2 and "error: Invalid data: something precise" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["report", "--steps", "7"])
    assert "steps are numbers from 1 to 5" in capsys.readouterr().err
    code, out, err = run(capsys, "report", "--scheduler", "tcp://10.0.0.5:8786")
    assert code == 2 and "--scheduler" in err and "--engine dask" in err


def test_console_entry_point_runs_in_a_real_process(tmp_path):
    # one real process: exit code and stderr as the shell sees them (no traceback)
    proc = subprocess.run([sys.executable, "-m", "scaleup_analysis.cli", "validate", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Directory") and "lacks the required table(s)" in proc.stderr
    assert "Traceback" not in proc.stderr
