"""Run the scaleup_analysis benchmarks B1..B8 and write benchmarks/results.md.

Usage::

    .venv/bin/python benchmarks/run.py            # full sizes (many minutes; `make bench`)
    .venv/bin/python benchmarks/run.py --smoke    # tiny sizes (seconds): checks that everything runs
    .venv/bin/python benchmarks/run.py --only B1 B4

Each benchmark prints our time, each peer's time and their ratio (peer / ours: > 1 means we are
faster), plus peak memory: Python-side peak (tracemalloc) for in-process runs, or the maximum resident
set size of a subprocess (B6). Peers run only when available (Rscript with metafor / lme4; the
``differences`` and ``krippendorff`` packages) and are otherwise skipped with a printed note.
Large generated inputs go to ``benchmarks/_work/`` (gitignored) and are reused.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import WORK, Row, machine_info, say  # noqa: E402

BENCHMARKS = {
    "B1": ("meta_analysis REML vs metafor / statsmodels; scaling in k", "bench_meta"),
    "B2": ("mixed_model random intercept + slope vs statsmodels / lme4", "bench_mixed"),
    "B3": ("staggered_did vs differences.ATTgt", "bench_did"),
    "B4": ("krippendorff_alpha vs krippendorff", "bench_agreement"),
    "B5": ("stepped_wedge_power_sim, 1,000 replicates", "bench_stepped_wedge"),
    "B6": ("summarize 50M Parquet rows: DuckDB vs pandas", "bench_summarize"),
    "B7": ("make report end to end", "bench_report"),
    "B8": ("mixed_model binomial (Laplace) vs lme4 glmer; 1M rows", "bench_glmm"),
    "B9": ("scaleup report on 1M / 10M / 50M Parquet encounter rows", "bench_report_scale"),
}


def run_one(key: str, smoke: bool) -> list[Row]:
    import importlib

    title, modname = BENCHMARKS[key]
    say(f"{key}: {title}" + (" [smoke]" if smoke else ""))
    t0 = time.perf_counter()
    try:
        rows = importlib.import_module(modname).run(smoke=smoke)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
        traceback.print_exc()
        rows = [Row(key, "FAILED", float("nan"), met=False, note=f"{type(exc).__name__}: {exc}"[:300])]
    say(f"{key}: done in {time.perf_counter() - t0:.1f}s")
    return rows


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e5 else f"{x:,.0f}"
    return str(x)


def table(rows: list[Row]) -> str:
    head = ["bench", "case", "ours (s)", "peer", "peer (s)", "peer/ours", "ours peak MB", "peer peak MB",
            "agreement", "goal", "met", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        cells = [r.bench, r.case, _fmt(r.ours_s), r.peer, _fmt(r.peer_s), _fmt(r.ratio), _fmt(r.ours_peak_mb),
                 _fmt(r.peer_peak_mb), r.agreement, r.goal, met, r.note]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def print_side_by_side(rows: list[Row]) -> None:
    say("")
    say(f"{'bench':5} {'case':45} {'ours s':>9} {'peer':28} {'peer s':>9} {'ratio':>8} {'met':>4}")
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "no")
        say(f"{r.bench:5} {r.case[:45]:45} {_fmt(r.ours_s):>9} {r.peer[:28]:28} {_fmt(r.peer_s):>9} "
            f"{_fmt(r.ratio):>8} {met:>4}")


def write_markdown(rows: list[Row], info: dict, path: Path, smoke: bool, seconds: float) -> None:
    goals = [r for r in rows if r.met is not None]
    met = sum(bool(r.met) for r in goals)
    md = [
        "# Benchmark results" + (" (smoke sizes)" if smoke else ""),
        "",
        f"Written by `benchmarks/run.py` on {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"in {seconds / 60:.1f} min. `peer/ours` > 1 means scaleup_analysis is faster. Peak memory: "
        "tracemalloc peak of the Python-side allocations for in-process runs; for B6 the maximum resident "
        "set size of a fresh subprocess (interpreter and imports included). R times are measured inside "
        "R with `system.time()` around the fit only.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        f"## Results ({met} of {len(goals)} goal rows met)",
        "",
        table(rows),
        "",
        "## Goals",
        "",
        *[f"- {r.bench} {r.case}: {r.goal} -> {'met' if r.met else 'NOT met'}" for r in goals],
        "",
    ]
    path.write_text("\n".join(md), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), results to benchmarks/_work/")
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    ap.add_argument("--out", type=Path, default=None, help="markdown output (default benchmarks/results.md)")
    args = ap.parse_args(argv)
    keys = args.only or list(BENCHMARKS)
    t0 = time.perf_counter()
    info = machine_info()
    say("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    rows: list[Row] = []
    for key in keys:
        rows += run_one(key, args.smoke)
    print_side_by_side(rows)
    WORK.mkdir(exist_ok=True)
    out = args.out or (WORK / "results_smoke.md" if args.smoke else HERE / "results.md")
    write_markdown(rows, info, out, args.smoke, time.perf_counter() - t0)
    (WORK / ("results_smoke.json" if args.smoke else "results.json")).write_text(
        json.dumps({"machine": info, "rows": [r.as_dict() for r in rows]}, indent=1, default=str))
    say(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
