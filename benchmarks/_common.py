"""Shared helpers of the benchmarks: timing, peak memory, peers (Rscript), machine details."""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work"  # gitignored: large generated inputs


@dataclass
class Row:
    """One line of the results table: our time, the peer's time and their ratio."""

    bench: str
    case: str
    ours_s: float
    peer: str = ""
    peer_s: float = float("nan")
    ours_peak_mb: float = float("nan")
    peer_peak_mb: float = float("nan")
    agreement: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """peer time / our time (> 1: we are faster)."""
        return self.peer_s / self.ours_s if self.ours_s > 0 else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def say(msg: str) -> None:
    print(msg, flush=True)


def timed(fn, *args, repeat: int = 1, **kwargs):
    """Best wall time of ``repeat`` calls, the last result and its Python-side peak memory (MB)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return best, out, peak / 2**20


def timed_nomem(fn, *args, repeat: int = 1, **kwargs):
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------------------------------- R peer
def r_available(*packages: str) -> bool:
    if shutil.which("Rscript") is None:
        return False
    libs = "; ".join(f"suppressPackageStartupMessages(library({p}))" for p in packages)
    r = subprocess.run(["Rscript", "-e", libs], capture_output=True, text=True)
    return r.returncode == 0


def run_r(script: str, data: dict | None = None, timeout: int = 3600) -> dict:
    """Run an R script; ``data`` (name -> DataFrame) are written to temp CSVs whose paths the script
    reads from ``args[k]``; the script must write its results as JSON to the path ``out_json``.

    The script sees ``csv_<name>`` variables (paths) and ``out_json``; only the model fit is timed
    inside R (``system.time``), never the CSV reading.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pre = []
        for name, df in (data or {}).items():
            p = Path(tmp) / f"{name}.csv"
            df.to_csv(p, index=False, float_format="%.17g")
            pre.append(f'csv_{name} <- "{p}"')
        out = Path(tmp) / "out.json"
        pre.append(f'out_json <- "{out}"')
        rfile = Path(tmp) / "bench.R"
        rfile.write_text("\n".join(pre) + "\n" + script)
        r = subprocess.run(["Rscript", str(rfile)], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"Rscript failed:\n{r.stderr[-2000:]}")
        return json.loads(out.read_text())


def peak_rss_subprocess(code: str, timeout: int = 3600) -> tuple[dict, float]:
    """Run Python ``code`` in a fresh interpreter; it must print one JSON line last. Returns that
    JSON and the child's peak resident set size in MB (VmHWM of the child's own image)."""
    # VmHWM (peak RSS of this process image) rather than getrusage's ru_maxrss: on Linux ru_maxrss
    # survives fork + exec, so a child of a big parent would report the parent's size
    wrapper = (
        code
        + "\ndef _hwm():\n"
        + "    try:\n"
        + "        for l in open('/proc/self/status'):\n"
        + "            if l.startswith('VmHWM:'):\n"
        + "                return int(l.split()[1]) / 1024.0\n"
        + "    except OSError:\n"
        + "        pass\n"
        + "    import resource\n"
        + "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0\n"
        + "print('__PEAK__', _hwm(), flush=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout,
                       cwd=str(REPO), env={**os.environ, "MPLBACKEND": "Agg"})
    if r.returncode != 0:
        raise RuntimeError(f"subprocess failed:\n{r.stderr[-3000:]}")
    lines = r.stdout.strip().splitlines()
    peak = float(next(l for l in lines if l.startswith("__PEAK__")).split()[1])
    res = json.loads(next(l for l in reversed(lines) if l.startswith("{")))
    return res, peak


# ---------------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    import numpy
    import pandas

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }
    for mod in ("scipy", "statsmodels", "duckdb", "pyarrow", "dask"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional
            pass
    for mod in ("differences", "krippendorff"):
        try:
            from importlib.metadata import version

            info[mod] = version(mod)
        except Exception:  # noqa: BLE001
            pass
    if shutil.which("Rscript"):
        r = subprocess.run(
            ["Rscript", "-e", 'cat(R.version.string); for (p in c("metafor","lme4")) '
             'if (requireNamespace(p, quietly=TRUE)) cat(";", p, as.character(packageVersion(p)))'],
            capture_output=True, text=True,
        )
        info["R"] = r.stdout.strip()
    return info


def peak_rss_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
