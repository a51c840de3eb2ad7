"""Patient-level tables at province scale: checked in chunks, reduced once, stored and reused.

A study's patient-level table (``encounters``: one row per patient and period) may hold tens of
millions of rows. It is never loaded whole: :func:`patient_level_cells` reads its file (CSV or
Parquet) in chunks of :data:`CHUNK_ROWS` rows, checks every chunk with the rules of the data
dictionary (the same checks and messages as :func:`scaleup_analysis.load_tables`; a repeated key is
looked for over the whole file), and reduces the rows to one row per site x period x treated cell
(:data:`CELLS_BY`) holding the sufficient statistics the analyses need (:func:`scaleup_analysis.summarize`
layout: ``n``, ``sp__Intercept__y`` = sum of y, ``sp__y__y`` = sum of y squared, ``events`` = sum of
``event``). Models that need the rows are fitted from these sums exactly
(:func:`scaleup_analysis.mixed_model_from_summary`).

Engines: ``"duckdb"`` (default) sums the cells with DuckDB's streaming aggregation over the Parquet
file and looks for repeated keys with a spilling hash aggregate (memory bounded); ``"pandas"`` sums the
chunks as they are checked (one reading of the file); ``"dask"`` runs the chunks as tasks of a Dask
cluster (``scheduler=``, the file must be readable at the same path by the workers). All three give
the same cells (sums in another order: 1e-12 relative).

A processed folder (:func:`stored_cells`, :func:`store_cells`) keeps the cells of each file under a
key made of the sha256 of the raw file, the way it was read and the sites it was checked against, so
that a second run on the same data reads the stored cells instead of the patient rows; a change of the
raw file rebuilds them. The sha256 of a file is recomputed only when its size or modification time
differ from those recorded with the stored cells (as git and DVC do), so reusing the cells reads no
byte of the patient-level file. The processed folder is the caller's (a report's own folder, or
``data/processed``), never the study folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError

__all__ = ["PatientCells", "patient_level_cells", "cells_of_frame", "stored_cells", "store_cells",
           "PATIENT_LEVEL_TABLES", "CELLS_BY", "CHUNK_ROWS"]

#: Tables with one row per patient (and period): read in chunks, never loaded whole by a report.
PATIENT_LEVEL_TABLES: tuple[str, ...] = ("encounters",)
#: The cells of the summaries: one row per site x period x treated.
CELLS_BY: tuple[str, ...] = ("site_id", "period", "treated")
#: Rows per chunk when a patient-level file is checked and summarised (checking a chunk of 1M rows
#: takes about 1.1 GB; of 200,000 rows, about 0.25 GB).
CHUNK_ROWS = 200_000
ENGINES = ("duckdb", "pandas", "dask")
#: Parquet row groups up to this size are read whole and cut into chunks (pyarrow's streaming batch
#: reader keeps about 3 MB more per 200,000-row batch read, 0.7 GB over 50 million rows; reading a
#: row group and slicing it keeps the memory flat). Writers' defaults: pyarrow 1,048,576 rows, DuckDB
#: 122,880.
_WHOLE_GROUP_ROWS = 2_000_000
#: Version of the stored layout: a change makes every stored summary stale (rebuilt at the next run).
LAYOUT_VERSION = 1
_CONNECT_TIMEOUT = "10s"  # to reach a Dask scheduler
_DUCKDB_MEMORY = "300MB"  # DuckDB spills to a temporary folder beyond this (the repeated-key search)


@dataclass(frozen=True)
class PatientCells:
    """The per-cell sufficient statistics of a patient-level table and where they came from.

    Attributes
    ----------
    table : str
        The table (``encounters``).
    cells : pandas.DataFrame
        One row per site x period x treated: ``site_id``, ``period``, ``treated``, ``n``,
        ``sp__Intercept__y`` (sum of y), ``sp__y__y`` (sum of y squared), ``events`` (sum of
        ``event``), ``small_cell`` (n < 1 never: every stored cell has a patient).
    rows : int
        Patient rows summarised.
    source : str
        The file name, or ``"in memory"``.
    sha256 : str or None
        sha256 of the raw file (None in memory).
    key : str or None
        Key of the stored summary in the processed folder (None in memory).
    reused : bool
        True when the cells were read from the processed folder (no patient row was read).
    engine : str
        The engine that summarised the rows (``"duckdb"``, ``"pandas"``, ``"dask"``, ``"stored"``).
    fmt : dict or None
        How the CSV file was read (separator, decimal mark, encoding); None for Parquet.
    """

    table: str
    cells: pd.DataFrame = field(repr=False)
    rows: int
    source: str
    sha256: str | None = None
    key: str | None = None
    reused: bool = False
    engine: str = "pandas"
    fmt: dict | None = field(default=None, repr=False)

    @property
    def periods(self) -> list[int]:
        return sorted(int(p) for p in pd.unique(self.cells["period"]))

    @property
    def n_sites(self) -> int:
        return int(self.cells["site_id"].nunique())


# --------------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------------
def _summarize(frame: pd.DataFrame, engine: str = "pandas") -> pd.DataFrame:
    from ..summarize import summarize

    return summarize(frame, by=list(CELLS_BY), outcome="y", covariates=[], binary="event", threshold=1,
                     engine=engine)


def _add_cells(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Cells of several chunks summed into one row per cell (the layout of :func:`summarize`)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=[*CELLS_BY, "n", "sp__Intercept__y", "sp__y__y", "events", "small_cell"])
    both = pd.concat(parts, ignore_index=True).drop(columns="small_cell")
    out = both.groupby(list(CELLS_BY), sort=True, observed=True).sum().reset_index()
    out["small_cell"] = out["n"] < 1
    return _typed(out)


def _typed(cells: pd.DataFrame) -> pd.DataFrame:
    out = cells.copy()
    out["site_id"] = out["site_id"].astype(object)
    for c in ("period", "treated", "n", "events"):
        out[c] = out[c].astype(np.int64)
    for c in ("sp__Intercept__y", "sp__y__y"):
        out[c] = out[c].astype(float)
    out["small_cell"] = out["small_cell"].astype(bool)
    return out.sort_values(list(CELLS_BY), kind="mergesort").reset_index(drop=True)


def cells_of_frame(frame: pd.DataFrame, table: str = "encounters") -> PatientCells:
    """The cells of a validated patient-level table already in memory (the embedded study, or a table
    read from a workbook sheet)."""
    return PatientCells(table, _typed(_summarize(frame)), int(len(frame)), "in memory")


# --------------------------------------------------------------------------------------------------
# reading a file in chunks
# --------------------------------------------------------------------------------------------------
def _n_rows(path: Path) -> int | None:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def _parquet_parts(path: Path, chunk_rows: int) -> list[tuple[int, list[int]]]:
    """(first row, row groups) of each chunk of a Parquet file: whole row groups of about ``chunk_rows``."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    parts, start, groups, rows = [], 0, [], 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= chunk_rows:
            parts.append((start, groups))
            start, groups, rows = start + rows, [], 0
    if groups:
        parts.append((start, groups))
    return parts


def _read_parquet_part(path: Path, groups: list[int]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_groups(groups).to_pandas()


def _chunks(path: Path, table: str, fmt: dict | None, chunk_rows: int):
    """``(frame, first row, lines)`` of each chunk (``lines``: file lines of a CSV, else None)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        start = 0
        for g in range(pf.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            if rows <= _WHOLE_GROUP_ROWS:  # one row group in Arrow memory, converted chunk by chunk
                group = pf.read_row_group(g)
                for off in range(0, rows, chunk_rows):
                    yield group.slice(off, chunk_rows).to_pandas(), start + off, None
                del group
            else:  # a very large row group: streamed (pyarrow's batch reader holds more memory as it goes)
                off = 0
                for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=[g]):
                    yield batch.to_pandas(), start + off, None
                    off += batch.num_rows
            start += rows
        return
    from .io import csv_chunks

    start = 0
    for frame, lines in csv_chunks(path, table, fmt, chunk_rows):
        yield frame.reset_index(drop=True), start, lines
        start += len(frame)


def _unreadable(path: Path, exc: Exception) -> ScaleupDataError:
    return ScaleupDataError(
        f"Cannot read {str(path)!r} ({type(exc).__name__}: {exc}). Check that it is a complete CSV or Parquet "
        "file (export it again), or rewrite it with sa.write_table_atomic(df, path)."
    )


# --------------------------------------------------------------------------------------------------
# checks: the rules of the data dictionary, chunk by chunk
# --------------------------------------------------------------------------------------------------
_UNKNOWN = re.compile(r" \(\d+ unknown values?\)$")


class _Problems:
    """Problems of the chunks merged into problems of the whole table (positions over the file)."""

    def __init__(self, table: str):
        self.table = table
        self.merged: dict[tuple, object] = {}
        self.unknown: dict[str, set] = {}
        self.lines: dict[int, int] = {}  # file line of each row quoted (CSV)

    def add(self, problems, start: int, lines, unknown: dict[str, set]) -> None:
        from .schemas import _MAX_ROWS_SHOWN, _Problem

        for col, vals in unknown.items():
            self.unknown.setdefault(col, set()).update(vals)
        for p in problems:
            what = _UNKNOWN.sub("", p.what) if " not found in " in p.what else p.what
            k = (p.column, what, p.fix, p.table_level)
            have = self.merged.get(k)
            if have is None:
                have = self.merged[k] = _Problem(p.table, p.column, what, p.fix, [], [], p.table_level)
                if p.table_level:
                    continue
            elif p.table_level:
                continue
            room = _MAX_ROWS_SHOWN - len(have.values)
            if room > 0:
                have.values.extend(p.values[:room])
                if lines is not None:
                    for pos in p.positions[:room]:
                        self.lines[start + pos] = int(lines[pos])
            have.positions.extend(start + pos for pos in p.positions)

    def result(self, n_rows: int, source_label: str, kind: str):
        from .schemas import _Source, _TableResult

        problems = []
        for p in self.merged.values():
            if " not found in " in p.what and p.column in self.unknown:
                k = len(self.unknown[p.column])
                p.what += f" ({k} unknown value{'s' if k > 1 else ''})"
            problems.append(p)
        lines = self.lines
        source = _Source(source_label, kind, (lambda pos: lines.get(pos, pos + 2)) if kind == "csv" else None)
        return _TableResult(self.table, None, pd.RangeIndex(n_rows), kind, source, problems)


def _check_chunk(frame: pd.DataFrame, table: str, parents: dict[str, pd.DataFrame]):
    """The problems of one chunk (positions within it), except repeated keys (checked over the whole
    file), and the values of its foreign keys not found in their parent tables."""
    from .schemas import _FOREIGN_KEYS, _check_table, _cross_table, _TableResult

    from .schemas import _finalize

    res = _check_table(frame, table, None)
    res.problems = [p for p in res.problems if not p.what.startswith("a key ")]
    typed = _finalize(res) if res.frame is not None and not res.problems else None
    results = {table: res}
    unknown: dict[str, set] = {}
    for child, ccol, parent, pcol in _FOREIGN_KEYS:
        if child == table and parent in parents:
            par = parents[parent]
            results[parent] = _TableResult(parent, par, par.index, "frame", None)
            if res.frame is not None and ccol in res.frame.columns:
                vals = set(res.frame[ccol].dropna())
                unknown[ccol] = vals - set(par[pcol].dropna())
    _cross_table(results)
    return res.problems, unknown, (typed if not res.problems else None)


def _key_duplicates_duckdb(path: Path, table: str, fmt: dict | None) -> tuple[np.ndarray, list[list]]:
    """Positions (0-based, sorted) of the rows whose key occurs more than once, and the keys of the
    first of them, with DuckDB (a hash aggregate that spills to disk: memory stays bounded)."""
    import duckdb

    from .schemas import _MAX_ROWS_SHOWN, table_spec

    key = list(table_spec(table).key)
    q = ", ".join('"' + k.replace('"', '""') + '"' for k in key)
    con = duckdb.connect(":memory:")
    tmp = tempfile.mkdtemp(prefix="scaleup-duckdb-")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{_DUCKDB_MEMORY}'")
        con.execute(f"SET temp_directory = '{tmp}'")
        con.execute("SET preserve_insertion_order = true")
        p = str(path).replace("'", "''")
        if path.suffix.lower() == ".parquet":
            src = f"(SELECT {q}, file_row_number AS _pos FROM read_parquet('{p}', file_row_number = true))"
        else:
            sep = fmt["separator"].replace("'", "''")
            enc = {"utf-8": "utf-8"}.get(fmt["encoding"], "latin-1")
            # the key as pandas compares it: text trimmed, the period as a number
            src = (f"(SELECT trim(\"{key[0]}\") AS \"{key[0]}\", "
                   + ", ".join(f"TRY_CAST(replace(\"{k}\", ',', '.') AS DOUBLE) AS \"{k}\"" for k in key[1:])
                   + f", row_number() OVER () - 1 AS _pos FROM read_csv('{p}', delim = '{sep}', header = true, "
                   f"all_varchar = true, encoding = '{enc}', parallel = false))")
        con.execute(f"CREATE TEMP TABLE dup AS SELECT {q} FROM {src} GROUP BY ALL HAVING COUNT(*) > 1")
        if con.execute("SELECT COUNT(*) FROM dup").fetchone()[0] == 0:
            return np.zeros(0, dtype=np.int64), []
        rows = con.execute(f"SELECT s._pos, {', '.join('s.' + k for k in key)} FROM {src} s "
                           f"SEMI JOIN dup USING ({q}) ORDER BY s._pos").fetchnumpy()
    finally:
        con.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    pos = np.asarray(rows["_pos"], dtype=np.int64)
    return pos, _shown_keys([[rows[k][i] for k in key] for i in range(min(_MAX_ROWS_SHOWN, len(pos)))])


def _shown_keys(rows: list[list]) -> list[list]:
    """Keys as the loader shows them: the identifier as text, the period as a whole number."""
    out = []
    for r in rows:
        r = [v.item() if isinstance(v, np.generic) else v for v in r]
        out.append(r[:1] + [int(v) if isinstance(v, float) and v.is_integer() else v for v in r[1:]])
    return out


def _key_duplicates_frame(keys: pd.DataFrame) -> tuple[np.ndarray, list[list]]:
    """The same from the key columns of every row, held in memory (the pandas engine)."""
    from .schemas import _MAX_ROWS_SHOWN

    pos = np.flatnonzero(keys.duplicated(keep=False).to_numpy())
    return pos, _shown_keys([list(keys.iloc[i]) for i in pos[:_MAX_ROWS_SHOWN]])


# --------------------------------------------------------------------------------------------------
# the reduction
# --------------------------------------------------------------------------------------------------
def _bar(progress: bool, total: int | None, label: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit=" rows", unit_scale=True, disable=not progress, file=sys.stderr,
                leave=False)


def _release_memory() -> None:
    """Give the memory of a checked chunk back to the system: without it, the allocators' free lists
    fragment and the process grows with the number of chunks (measured: 465 -> 727 MB over 30 chunks of
    200,000 rows; 266 -> 342 MB with it)."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator keeps its own policy
        pass


def _sequential(path, table, fmt, parents, chunk_rows, sum_chunks: bool, collect_keys: bool, progress: bool,
                label: str):
    """Check every chunk; with ``sum_chunks`` sum the cells of the valid ones, with ``collect_keys`` keep
    the key columns of every row (for the repeated-key check without DuckDB)."""
    from .schemas import table_spec

    problems = _Problems(table)
    parts, n, key_parts, unreleased = [], 0, [], 0
    key = list(table_spec(table).key) if collect_keys else None
    try:
        total = _n_rows(path)
    except Exception as exc:  # not a Parquet file (truncated, or something else under that name)
        raise _unreadable(path, exc) from None
    with _bar(progress, total, label) as bar:
        try:
            for frame, start, lines in _chunks(path, table, fmt, chunk_rows):
                found, unknown, typed = _check_chunk(frame, table, parents)
                problems.add(found, start, lines, unknown)
                if sum_chunks and typed is not None:
                    parts.append(_summarize(typed))
                if key is not None and all(k in frame.columns for k in key):
                    key_parts.append(_normal_keys(frame[key]))
                n = start + len(frame)
                bar.update(len(frame))
                unreleased += len(frame)
                del frame, typed
                if unreleased >= CHUNK_ROWS:  # about once per 200,000 rows (a collection costs ~0.1 s)
                    _release_memory()
                    unreleased = 0
        except ScaleupDataError:
            raise
        except Exception as exc:  # a truncated Parquet file, a CSV line with too many fields, ...
            raise _unreadable(path, exc) from None
    keys = pd.concat(key_parts, ignore_index=True) if key_parts else None
    return problems, parts, n, keys


def _normal_keys(keys: pd.DataFrame) -> pd.DataFrame:
    """Keys as the loader compares them: text trimmed, numbers as floats."""
    out = pd.DataFrame({c: keys[c] for c in keys.columns})
    first = out.columns[0]
    out[first] = out[first].astype(str).str.strip()
    for c in out.columns[1:]:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def _raise_problems(problems: _Problems, n_rows: int, label: str, kind: str, dup) -> None:
    from .schemas import _render, key_problem, table_spec

    res = problems.result(n_rows, label, kind)
    pos, shown = dup
    if len(pos):
        res.problems.append(key_problem(problems.table, pos.tolist(), shown))
    # the order of the loader's message: table-level problems, the repeated key, the rules of each column
    # in the order of the columns, then the rules between tables
    order = [c.name for c in table_spec(problems.table).columns]

    def rank(p):
        if p.table_level:
            return (0, 0)
        if p.what.startswith("a key "):
            return (1, 0)
        if " not found in " in p.what:
            return (3, 0)
        return (2, order.index(p.column) if p.column in order else len(order))

    res.problems.sort(key=rank)
    if res.problems:
        n = len(res.problems)
        raise ScaleupDataError(_render([res], f"Invalid data: {n} problem{'s' if n > 1 else ''} in 1 table; "
                                       "nothing was validated."))


def patient_level_cells(
    path: str | os.PathLike,
    table: str = "encounters",
    *,
    sites: pd.DataFrame,
    fmt: dict | None = None,
    engine: str = "duckdb",
    scheduler: str | None = None,
    progress: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> PatientCells:
    """Check a patient-level file chunk by chunk and reduce it to per-cell sufficient statistics.

    Parameters
    ----------
    path : path
        The table's ``.csv`` or ``.parquet`` file (only read).
    table : str
        The table it holds (``encounters``).
    sites : pandas.DataFrame
        The study's validated ``sites`` table (the foreign key ``site_id`` is checked against it).
    fmt : dict, optional
        How a CSV file is written (``separator``, ``decimal``, ``encoding``), as
        :func:`scaleup_analysis.data.io.csv_format` detects it; required for CSV.
    engine : {"duckdb", "pandas", "dask"}
        What sums the cells and looks for repeated keys (see the module docstring).
    scheduler : str, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) for ``engine="dask"``; None starts a
        local cluster.
    progress : bool
        Show the rows read on stderr.
    chunk_rows : int
        Rows per chunk (Parquet: whole row groups of about that many rows).

    Returns
    -------
    PatientCells

    Raises
    ------
    ScaleupDataError
        The rows break the rules of ``docs/data_dictionary.md``: one message lists every problem with
        the file lines (CSV) or rows (Parquet) concerned, as :func:`scaleup_analysis.load_tables`
        does; or the file cannot be read.
    """
    path = Path(path)
    if engine not in ENGINES:
        raise ScaleupDataError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    if not isinstance(chunk_rows, int | np.integer) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ScaleupDataError(f"chunk_rows must be a positive whole number, got {chunk_rows!r}.")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ScaleupDataError(f"{str(path)!r}: a patient-level table is read from a .csv or .parquet file.")
    if suffix == ".csv" and fmt is None:
        raise ScaleupDataError("patient_level_cells: a CSV file needs fmt= (see data.io.csv_format).")
    kind = "csv" if suffix == ".csv" else "frame"
    label = str(path)
    parents = {"sites": sites}
    if engine == "dask":
        if suffix != ".parquet":
            raise ScaleupDataError(
                f"engine='dask' reads Parquet files, which the workers split by row groups; {path.name!r} is a "
                "CSV file. Convert it once (e.g. duckdb -c \"COPY (FROM 'encounters.csv') TO "
                "'encounters.parquet'\") or use engine='duckdb'."
            )
        problems, parts, n, dup = _dask_cells(path, table, parents, chunk_rows, scheduler, progress)
    else:  # a CSV file is summed as it is checked (the same parsing); Parquet by DuckDB afterwards
        problems, parts, n, keys = _sequential(path, table, fmt, parents, chunk_rows,
                                               engine == "pandas" or kind == "csv", engine == "pandas", progress,
                                               f"{table}: checking")
        if engine == "duckdb":
            try:
                dup = _key_duplicates_duckdb(path, table, fmt)
            except Exception as exc:
                raise _unreadable(path, exc) from None
        else:
            dup = _key_duplicates_frame(keys) if keys is not None else (np.zeros(0, dtype=np.int64), [])
    _raise_problems(problems, n, label, kind, dup)
    if n == 0:  # a header-only file (an empty template)
        return PatientCells(table, _add_cells([]), 0, path.name, engine=engine)
    if engine == "duckdb" and kind != "csv":
        from ..summarize import summarize

        cells = _typed(summarize(path, by=list(CELLS_BY), outcome="y", covariates=[], binary="event", threshold=1,
                                 engine="duckdb"))
    else:
        cells = _add_cells(parts)
    return PatientCells(table, cells, int(n), path.name, engine=engine)


# --------------------------------------------------------------------------------------------------
# the "dask" engine: each part of whole Parquet row groups is a task of the cluster that reads, checks
# and sums its rows; the client merges problems and cells. Repeated keys are looked for on the cluster
# (a Dask DataFrame group-by over the key columns); only the rows of repeated keys, if any, come back.
# The workers read the file at the same path as the client. Needs the ``distributed`` extra.
# --------------------------------------------------------------------------------------------------
def _task(path: str, start: int, groups: list[int], table: str, parents: dict[str, pd.DataFrame]):
    """One part, on a worker: its problems (positions within the part), unknown foreign keys, cells and rows."""
    frame = _read_parquet_part(Path(path), groups)
    found, unknown, typed = _check_chunk(frame, table, parents)
    cells = _summarize(typed) if typed is not None else None
    return start, found, unknown, cells, len(frame)


def _dup_positions(path: str, start: int, groups: list[int], key: list[str], dups: pd.DataFrame) -> np.ndarray:
    keys = _normal_keys(_read_parquet_part(Path(path), groups)[key])
    hit = keys.merge(dups.assign(_hit=True), on=key, how="left")["_hit"].fillna(False).to_numpy(dtype=bool)
    return start + np.flatnonzero(hit)


def _client(scheduler: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ScaleupDataError(
            "engine='dask' needs Dask's distributed scheduler: pip install \"scaleup_analysis[distributed]\"."
        ) from None
    if scheduler is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=_CONNECT_TIMEOUT), None
    except (OSError, TimeoutError) as exc:
        raise ScaleupDataError(
            f"Cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc}). Check the address "
            "(e.g. tcp://10.0.0.5:8786) and that `dask scheduler` runs there."
        ) from None


def _dask_cells(path: Path, table: str, parents: dict[str, pd.DataFrame], chunk_rows: int, scheduler: str | None,
               progress: bool):
    """Problems, cells of each part, rows and repeated keys of a Parquet file, computed on a Dask cluster."""
    import dask.dataframe as dd
    from distributed import as_completed

    from .schemas import _MAX_ROWS_SHOWN, table_spec

    key = list(table_spec(table).key)
    try:
        parts = _parquet_parts(path, chunk_rows)
    except Exception as exc:
        raise _unreadable(path, exc) from None
    client, cluster = _client(scheduler)
    problems = _Problems(table)
    cells, n = [], 0
    try:
        futures = [client.submit(_task, str(path), start, groups, table, parents, pure=False)
                   for start, groups in parts]
        results = []
        with _bar(progress, _n_rows(path), f"{table}: checking (dask)") as bar:
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                bar.update(res[4])
        for start, found, unknown, part_cells, rows in sorted(results, key=lambda r: r[0]):
            problems.add(found, start, None, unknown)
            if part_cells is not None:
                cells.append(part_cells)
            n = max(n, start + rows)
        ddf = dd.read_parquet(str(path), columns=key)
        if all(k in ddf.columns for k in key):
            normal = ddf.map_partitions(_normal_keys, meta=_normal_keys(ddf._meta))
            size = normal.groupby(key, dropna=False).size()
            dups = client.compute(size[size > 1]).result().reset_index()[key]
        else:
            dups = pd.DataFrame(columns=key)
        if len(dups):
            pos = np.concatenate(client.gather([client.submit(_dup_positions, str(path), start, groups, key, dups,
                                                              pure=False) for start, groups in parts]))
            pos.sort()
            shown = []
            for p in pos[:_MAX_ROWS_SHOWN]:  # the key of each row shown, read from its own part only
                start, groups = next((s, g) for s, g in reversed(parts) if s <= p)
                keys = _normal_keys(_read_parquet_part(path, groups)[key])
                shown.append(list(keys.iloc[int(p - start)]))
            dup = (pos, _shown_keys(shown))
        else:
            dup = (np.zeros(0, dtype=np.int64), [])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return problems, cells, n, dup


# --------------------------------------------------------------------------------------------------
# the processed folder
# --------------------------------------------------------------------------------------------------
def sites_digest(sites: pd.DataFrame) -> str:
    """sha256 of the sorted site identifiers (the cells were checked against them)."""
    ids = sorted(str(s) for s in pd.unique(sites["site_id"].dropna()))
    return hashlib.sha256("\x1f".join(ids).encode("utf-8")).hexdigest()


def _key(table: str, raw_sha: str, fmt: dict | None, sites: pd.DataFrame) -> str:
    parts = [f"layout {LAYOUT_VERSION}", table, raw_sha, json.dumps(fmt or {}, sort_keys=True), sites_digest(sites)]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"name": path.name, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _records(folder: Path, table: str) -> list[dict]:
    out = []
    for f in sorted(folder.glob(f"{table}-*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("layout") == LAYOUT_VERSION:
            out.append(rec)
    return out


def raw_sha256(path: Path, folders: list[Path], table: str) -> str:
    """sha256 of a raw file, taken from a stored record when the file's name, size and modification time
    match it (no byte of the file read), else computed."""
    from .manifest import sha256_file

    stamp = _stamp(path)
    for folder in folders:
        for rec in _records(folder, table):
            if rec.get("raw") == stamp and isinstance(rec.get("sha256"), str):
                return rec["sha256"]
    return sha256_file(path)


def stored_cells(folders: list[Path], path: Path, table: str, *, fmt: dict | None,
                 sites: pd.DataFrame) -> tuple[PatientCells | None, str, str]:
    """The stored cells of ``path`` in the first of ``folders`` that has them (None if none), with the
    raw file's sha256 and the key."""
    sha = raw_sha256(path, folders, table)
    key = _key(table, sha, fmt, sites)
    for folder in folders:
        f = folder / f"{table}-{key[:16]}.parquet"
        rec_file = f.with_suffix(".json")
        if f.is_file() and rec_file.is_file():
            try:
                rec = json.loads(rec_file.read_text(encoding="utf-8"))
                if rec.get("key") != key:
                    continue
                cells = _typed(pd.read_parquet(f))
            except (OSError, ValueError, KeyError):
                continue  # a damaged entry is rebuilt
            return PatientCells(table, cells, int(rec["rows"]), path.name, sha, key, True, "stored", fmt), sha, key
    return None, sha, key


def store_cells(folder: Path, cells: PatientCells, path: Path) -> Path:
    """Write ``cells`` (with ``cells.key`` and ``cells.sha256`` set) into ``folder``: the cells as Parquet
    and a JSON record (raw file's name, size, time, sha256, rows, engine); both atomically. Entries of
    the same raw file with another key are removed."""
    from .._atomic import atomic_write_bytes, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{cells.table}-{cells.key[:16]}"
    target = folder / f"{stem}.parquet"
    import io as _io

    buf = _io.BytesIO()
    cells.cells.to_parquet(buf, index=False)
    atomic_write_bytes(target, buf.getvalue())
    rec = {"layout": LAYOUT_VERSION, "table": cells.table, "key": cells.key, "sha256": cells.sha256,
           "raw": _stamp(path), "format": cells.fmt, "rows": cells.rows, "cells": int(len(cells.cells)),
           "engine": cells.engine}
    atomic_write_text(target.with_suffix(".json"), json.dumps(rec, indent=1) + "\n")
    for old in _records(folder, cells.table):
        if old.get("raw", {}).get("name") == path.name and old.get("key") != cells.key:
            for suffix in (".parquet", ".json"):
                (folder / f"{cells.table}-{str(old.get('key'))[:16]}{suffix}").unlink(missing_ok=True)
    return target
