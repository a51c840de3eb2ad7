"""B7: `make report` end to end on the embedded default dataset (run_report into a temp dir)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import REPO, Row, say


def run(smoke: bool = False) -> list[Row]:
    from scaleup_analysis.reporting import run_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = None  # the embedded default study
        steps = None
        if smoke:  # the hand-built small study, step 1 only (each notebook starts a kernel)
            data = REPO / "tests" / "studies" / "small_study"
            steps = (1,)
        t0 = time.perf_counter()
        res = run_report(data_dir=data, out_dir=tmp / "reports", steps=steps, progress=False)
        t = time.perf_counter() - t0
        n_nb = len(res.seconds)
    case = ("hand-built small study" if smoke else "embedded default") + f", {n_nb} notebook(s)"
    row = Row("B7", case, t, goal="< 3 minutes", met=bool(t < 180),
              note="per notebook: " + ", ".join(f"{k} {v}s" for k, v in res.seconds.items()),
              extra={"notebook_seconds": res.seconds})
    say(f"  B7 run_report {t:.1f}s ({row.note})")
    return [row]
