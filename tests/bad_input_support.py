"""What the bad-input catalogue is made of (``tests/test_bad_inputs.py`` and the ``bad_cases_*.py``
files it gathers): the :class:`Bad` record and the small inputs the cases call functions with."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

import scaleup_analysis as sa

# ----------------------------------------------------------------------------------------------
# small inputs
# ----------------------------------------------------------------------------------------------
def meta_df(k=6, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"yi": rng.normal(0.5, 0.3, k), "vi": rng.uniform(0.02, 0.1, k),
                         "x": rng.normal(size=k), "site": [f"S{i}" for i in range(k)]})


def ratings(n=8, r=3, seed=2):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"t": np.repeat(np.arange(n), r), "r": np.tile(np.arange(r), n),
                         "y": rng.integers(1, 6, n * r).astype(float)})


def panel(n=30, T=5, seed=3):
    rng = np.random.default_rng(seed)
    coh = rng.choice([0, 3, 4], n)
    return pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n),
                         "g": np.repeat(coh, T), "y": rng.normal(size=n * T)})


def reversal_panel():
    p = panel()
    p["d"] = ((p.g > 0) & (p.t >= p.g)).astype(int)
    first_treated = p.loc[p.g > 0, "id"].iloc[0]
    p.loc[(p.id == first_treated) & (p.t == 5), "d"] = 0
    return p


def its_df():
    t = np.arange(1, 25)
    return pd.DataFrame({"t": t, "y": np.sin(t) + 0.1 * t})


def bin_df():
    return pd.DataFrame({"a": [5, 3], "b": [10, 12], "c": [4, 6], "d": [11, 9]})


def counts_df():
    return pd.DataFrame({"e1": [12, 4], "n1": [10, 20], "e2": [3, 5], "n2": [10, 20]})


def smd_df():
    return pd.DataFrame({"m1": [1.0], "s1": [-1.0], "n1": [10], "m2": [0.0], "s2": [1.0], "n2": [10]})


@lru_cache(maxsize=1)
def sim():
    # without de-adoption (the sweep checks input handling; de-adopted sites would add data warnings)
    return sa.simulate_scaleup(seed=5, n_sites=36, n_periods=8, patients_per_site_period=4,
                               deadoption_rate=0.0, decay_ratio=1.0).tables


def tbl(name):
    return sim()[name].copy()


_ROOT = tempfile.TemporaryDirectory(prefix="bad_inputs_")  # removed when the test process exits


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(dir=_ROOT.name))


def write_file(name, content: bytes | str, encoding="utf-8") -> Path:
    p = tmpdir() / name
    p.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return p


def load_dir(mutate=None, manifest=False, extra=None) -> dict:
    d = tmpdir()
    for name, table in sim().items():
        if mutate is not None:
            table = mutate(name, table.copy())
        sa.write_table_atomic(table, d / f"{name}.csv")
    if manifest:
        sa.write_manifest(d)
    if extra is not None:
        extra(d)
    return sa.load_tables(d)


def only(name, fn):
    return lambda n, t: fn(t) if n == name else t


def excel_multirow_header():
    p = tmpdir() / "regions.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame([["Quebec health regions", None, None], ["rss_code", "name", "settlement_type"],
                      ["06", "Montreal", "metropolitan"]]).to_excel(
            w, index=False, header=False, sheet_name="regions")
    return sa.load_table(p)


def workbook_dir(**sheets):
    """A folder holding one workbook, study.xlsx: an instructions sheet, then the given tables."""
    d = tmpdir()
    with pd.ExcelWriter(d / "study.xlsx") as w:
        pd.DataFrame({"Instructions": ["One sheet per table"]}).to_excel(w, sheet_name="Lisez-moi", index=False)
        for name, table in sheets.items():
            table.to_excel(w, sheet_name=name, index=False)
    return d


def parquet_other_schema():
    p = tmpdir() / "regions.parquet"
    pd.DataFrame({"code": ["06"], "name": ["Montreal"]}).to_parquet(p)
    return sa.load_table(p)


def sw_design():
    return sa.stepped_wedge_design(6, 3)


def fid_index():
    return sa.fidelity_index(tbl("fidelity_ratings"), tbl("components"))


def mm_df(seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"site": np.repeat(np.arange(8), 10), "x": rng.normal(size=80), "y": rng.normal(size=80),
                         "n": 10, "e": rng.integers(0, 10, 80)})


def ml_df():
    return meta_df(k=8).assign(region=list("aabbccdd"))


# ----------------------------------------------------------------------------------------------
# the catalogue
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    id: str
    function: str
    bad_input: str
    call: Callable[[], object]
    fragments: tuple[str, ...]
    expected: type = sa.ScaleupDataError


E, W = sa.ScaleupDataError, sa.RowsOmittedWarning
