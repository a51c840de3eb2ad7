"""B9: `scaleup report` on a province-scale study, encounters as Parquet (1M / 10M / 50M rows).

The study: 1,000 sites x 20 quarters simulated (every table as CSV, as a team would give them), its
patient-level `encounters` streamed to Parquet by `sa.write_encounters_parquet` (50, 500 and 2,500
patients per site and quarter). Each size: one `scaleup report` in a fresh process (all five steps;
peak = the largest resident set of any process of the run: the report process, the kernels of the
notebooks and, for the pandas engine, nothing else), then a second run on the same data and output
(the processed summaries reused: no patient row read). At 1M rows the report is made twice more,
with the pandas engine and with the DuckDB engine into separate folders, and every number of the two
reports is compared (findings text exactly, tables to 1e-8 relative).
Goal (issue 19): 50M rows under 5 minutes and under 2 GB peak on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import REPO, WORK, Row, say

FULL = (50, 500, 2500)  # patients per site and quarter: 1M, 10M, 50M rows
SMOKE = (2,)
SITES, PERIODS = 1000, 20
SMOKE_SITES, SMOKE_PERIODS = 36, 8

# the wrapper waits for `scaleup report`; RUSAGE_CHILDREN's ru_maxrss is then the largest peak of every
# descendant waited for (the report process and the notebook kernels it started)
CHILD = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run({cmd!r}, capture_output=True, text=True)
t = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
print(json.dumps({{"time": t, "peak": peak, "rc": r.returncode, "err": r.stderr[-2000:]}}))
"""


def _study(root: Path, m: int, n_sites: int, n_periods: int) -> Path:
    import scaleup_analysis as sa
    from scaleup_analysis._constants import DEFAULT_SEED
    from scaleup_analysis.data.io import write_table_atomic
    from scaleup_analysis.study import default_study_file, default_study_tables

    n = n_sites * n_periods * m
    folder = root / f"study_{n}"
    if (folder / "study.toml").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    enc = root / f"encounters_{n}.parquet"
    if not enc.exists():
        say(f"  B9 generating {n:,} encounter rows (once)")
        sa.write_encounters_parquet(enc, seed=DEFAULT_SEED, n_sites=n_sites, n_periods=n_periods,
                                    patients_per_site_period=m)
    # the other tables of the same design (their patient counts from a small draw: the report reads them)
    tables = default_study_tables(DEFAULT_SEED, n_sites=n_sites, n_periods=n_periods, patients_per_site_period=2)
    for name, df in tables.items():
        if name != "encounters":
            write_table_atomic(df, folder / f"{name}.csv")
    os.link(enc, folder / "encounters.parquet")  # the same file, not a copy
    (folder / "study.toml").write_text(default_study_file(DEFAULT_SEED), encoding="utf-8")
    return folder


def _report(data: Path, out: Path, engine: str = "duckdb", steps: str | None = None) -> dict:
    cmd = [str(Path(sys.executable).parent / "scaleup"), "report", "--data", str(data), "--out", str(out),
           "--quiet", "--engine", engine] + (["--steps", steps] if steps else [])
    r = subprocess.run([sys.executable, "-c", CHILD.format(cmd=cmd)], capture_output=True, text=True,
                       cwd=str(REPO), env={**os.environ, "MPLBACKEND": "Agg"})
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if res["rc"] not in (0, 1):
        raise RuntimeError(f"scaleup report failed:\n{res['err']}")
    return res


def _numbers(out: Path) -> dict:
    sections = json.loads((out / "sections.json").read_text(encoding="utf-8"))["sections"]
    return {"sections": [(s["key"], s["status"], s.get("findings")) for s in sections],
            "tables": {p.name: pd.read_csv(p) for p in sorted((out / "tables").glob("*.csv"))}}


def _same(a: dict, b: dict) -> tuple[bool, str]:
    if a["sections"] != b["sections"]:
        return False, "findings differ"
    worst = 0.0
    for name, ta in a["tables"].items():
        tb = b["tables"].get(name)
        if tb is None or list(ta.columns) != list(tb.columns) or len(ta) != len(tb):
            return False, f"table {name} differs in shape"
        for c in ta.columns:
            if pd.api.types.is_numeric_dtype(ta[c]):
                x, y = ta[c].astype(float), tb[c].astype(float)
                d = ((x - y).abs() / y.abs().clip(lower=1e-300)).where(x != y, 0.0).max()
                worst = max(worst, float(d) if d == d else 0.0)
            elif not ta[c].equals(tb[c]):
                return False, f"table {name} column {c} differs"
    return worst <= 1e-8, f"{len(a['sections'])} sections, same findings; {len(a['tables'])} tables, max rel diff {worst:.1e}"


def run(smoke: bool = False) -> list[Row]:
    sizes = SMOKE if smoke else FULL
    steps = "5" if smoke else None  # smoke: the step that reads the patient-level table only
    n_sites, n_periods = (SMOKE_SITES, SMOKE_PERIODS) if smoke else (SITES, PERIODS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp if smoke else WORK
        for m in sizes:
            n = n_sites * n_periods * m
            data = _study(root, m, n_sites, n_periods)
            out = tmp / f"report_{n}"
            first = _report(data, out, steps=steps)
            second = _report(data, out, steps=steps)
            prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
            reused = prov.get("processed", {}).get("encounters", {}).get("reused")
            sections = json.loads((out / "sections.json").read_text(encoding="utf-8"))["sections"]
            ran = sum(s["status"] == "ran" for s in sections)
            failed = sum(s["status"] == "failed" for s in sections)
            say(f"  B9 {n:,} rows: {first['time']:.1f}s, peak {first['peak']:.0f} MB; again {second['time']:.1f}s "
                f"(reused {reused}); {ran} sections ran, {failed} failed")
            goal = "< 5 min and < 2 GB peak on 2 cores" if n == 50_000_000 else "(curve)"
            met = bool(first["time"] < 300 and first["peak"] < 2048) if n == 50_000_000 else None
            rows.append(Row("B9", f"scaleup report, {n:,} encounter rows (Parquet), first run", first["time"],
                            ours_peak_mb=first["peak"], goal=goal, met=met,
                            note=f"{ran} sections ran, {failed} failed; " + ("step 5 only" if smoke else "5 notebooks"),
                            extra={"rows": n, "failed": failed, "reused_second": reused}))
            rows.append(Row("B9", f"scaleup report, {n:,} encounter rows, second run (summaries reused)",
                            second["time"], ours_peak_mb=second["peak"], goal="(report)",
                            note=f"processed summaries reused: {reused}", extra={"rows": n, "reused": reused}))
            if m == sizes[0]:  # every number of the DuckDB report equal to the pandas engine's
                outs = {}
                for engine in ("pandas", "duckdb"):
                    outs[engine] = tmp / f"eq_{engine}"
                    _report(data, outs[engine], engine, steps)
                ok, how = _same(_numbers(outs["pandas"]), _numbers(outs["duckdb"]))
                say(f"  B9 {n:,} rows, pandas vs DuckDB engine: {how}")
                rows.append(Row("B9", f"{n:,} rows: every reported number, DuckDB vs pandas engine", 0.0,
                                agreement=how, goal="equal", met=ok, extra={"equal": ok}))
    return rows
