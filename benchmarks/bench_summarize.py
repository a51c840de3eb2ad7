"""B6: summarize 50M patient rows from Parquet -- DuckDB vs pandas groupby (peak RSS per subprocess)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import WORK, Row, peak_rss_subprocess, say

FULL = dict(n_sites=1000, n_periods=20, patients_per_site_period=2500)  # 50,000,000 rows
SMOKE = dict(n_sites=40, n_periods=8, patients_per_site_period=25)  # 8,000 rows
KW = dict(by=["site_id", "period"], outcome="y", covariates=["treated", "age", "female"], binary="event")

CHILD = r"""
import json, time, warnings
import scaleup_analysis as sa
warnings.simplefilter("ignore")
kw = json.loads({kw!r})
t0 = time.perf_counter()
out = sa.summarize({path!r}, engine={engine!r}, **kw)
t = time.perf_counter() - t0
out.to_parquet({out!r})
print(json.dumps({{"time": t, "cells": len(out), "rows": int(out["n"].sum())}}))
"""


def input_file(smoke: bool, folder: Path | None = None) -> tuple[Path, int]:
    """The Parquet input, generated once (full size: benchmarks/_work/, reused if present)."""
    import scaleup_analysis as sa
    from scaleup_analysis._constants import DEFAULT_SEED

    params = SMOKE if smoke else FULL
    n = params["n_sites"] * params["n_periods"] * params["patients_per_site_period"]
    folder = folder or WORK
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"encounters_{n}.parquet"
    if not path.exists():
        say(f"  B6 generating {n:,} rows into {path} (once) ...")
        t0 = time.perf_counter()
        sa.write_encounters_parquet(path, seed=DEFAULT_SEED, **params)
        say(f"  B6 generated in {time.perf_counter() - t0:.1f}s")
    return path, n


def run(smoke: bool = False) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, n = input_file(smoke, tmp if smoke else None)
        res, peak, outs = {}, {}, {}
        for engine in ("duckdb", "pandas"):
            out = tmp / f"{engine}.parquet"
            code = CHILD.format(kw=json.dumps(KW), path=str(path), engine=engine, out=str(out))
            res[engine], peak[engine] = peak_rss_subprocess(code)
            outs[engine] = pd.read_parquet(out)
            say(f"  B6 {engine}: {res[engine]['time']:.2f}s, peak RSS {peak[engine]:.0f} MB")
        a, b = outs["duckdb"], outs["pandas"]
        num = [c for c in a.columns if c.startswith("sp__")]
        rel = float(np.max(np.abs(a[num].to_numpy() - b[num].to_numpy()) / np.maximum(np.abs(b[num].to_numpy()), 1e-300)))
        same = bool(a[["site_id", "period"]].equals(b[["site_id", "period"]]) and (a["n"] == b["n"]).all()
                    and (a["events"] == b["events"]).all())
        row = Row("B6", f"{n:,} rows Parquet -> {res['duckdb']['cells']:,} cells", res["duckdb"]["time"],
                  "pandas engine", res["pandas"]["time"], peak["duckdb"], peak["pandas"],
                  agreement=f"same cells/n/events: {same}; max rel diff of sums {rel:.1e}",
                  goal="peak RSS < 2 GB and faster than pandas",
                  extra={"rel": rel, "same_counts": same, "rows": n})
        row.met = bool(peak["duckdb"] < 2048 and row.ratio > 1)
        row.note = "peak = max RSS of the whole child process (interpreter + imports included)"
    return [row]
