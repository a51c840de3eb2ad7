"""B7: `make report` end to end on the embedded default dataset (run_report into a temp dir)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import REPO, Row, say


def run(smoke: bool = False) -> list[Row]:
    import scaleup_analysis as sa
    from scaleup_analysis.reporting import run_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        if smoke:  # a small dataset instead of the embedded default
            from scaleup_analysis.data.io import write_table_atomic
            from scaleup_analysis.data.manifest import write_manifest

            data.mkdir()
            sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=8, patients_per_site_period=5)
            for name, table in sim.tables.items():
                write_table_atomic(table, data / f"{name}.csv")
            write_manifest(data)
        notebooks = REPO / "notebooks"
        if smoke:  # the first notebook only (each notebook starts a kernel: ~10 s)
            import shutil

            first = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))[0]
            (tmp / "notebooks").mkdir()
            shutil.copy(first, tmp / "notebooks" / first.name)
            notebooks = tmp / "notebooks"
        t0 = time.perf_counter()
        res = run_report(data_dir=data, seed=20261123, out_dir=tmp / "reports",
                         notebooks_dir=notebooks, progress=False)
        t = time.perf_counter() - t0
        n_nb = len(res.seconds)
    case = ("small simulated data" if smoke else "embedded default") + f", {n_nb} notebook(s)"
    row = Row("B7", case, t, goal="< 3 minutes", met=bool(t < 180),
              note="per notebook: " + ", ".join(f"{k} {v}s" for k, v in res.seconds.items()),
              extra={"notebook_seconds": res.seconds})
    say(f"  B7 run_report {t:.1f}s ({row.note})")
    return [row]
