"""The ``"dask"`` engine of :func:`scaleup_analysis.data.patient_level.patient_level_cells`.

The Parquet file is split into parts of whole row groups; each part is a task of the cluster that
reads its rows, checks them with the rules of the data dictionary and sums its cells; the client
merges the problems and the cells. Repeated keys are looked for on the cluster too (a Dask DataFrame
group-by over the key columns); only the rows of repeated keys, if any, come back to the client.
The workers must read the file at the same path as the client (a shared or copied folder).
Needs the ``distributed`` extra: ``pip install "scaleup_analysis[distributed]"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError


def _task(path: str, start: int, groups: list[int], table: str, parents: dict[str, pd.DataFrame]):
    """One part, on a worker: its problems (positions within the part), unknown foreign keys, cells and rows."""
    from .patient_level import _check_chunk, _read_parquet_part, _summarize

    frame = _read_parquet_part(Path(path), groups)
    found, unknown, typed = _check_chunk(frame, table, parents)
    cells = _summarize(typed) if typed is not None else None
    return start, found, unknown, cells, len(frame)


def _dup_positions(path: str, start: int, groups: list[int], key: list[str], dups: pd.DataFrame) -> np.ndarray:
    from .patient_level import _normal_keys, _read_parquet_part

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
        return Client(scheduler, timeout="20s"), None
    except (OSError, TimeoutError) as exc:
        raise ScaleupDataError(
            f"Cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc}). Check the address "
            "(e.g. tcp://10.0.0.5:8786) and that `dask scheduler` runs there."
        ) from None


def dask_cells(path: Path, table: str, parents: dict[str, pd.DataFrame], chunk_rows: int, scheduler: str | None,
               progress: bool):
    """Problems, cells of each part, rows and repeated keys of a Parquet file, computed on a Dask cluster."""
    import dask.dataframe as dd
    from distributed import as_completed

    from .patient_level import _bar, _n_rows, _normal_keys, _parquet_parts, _Problems, _read_parquet_part, _shown_keys
    from .schemas import _MAX_ROWS_SHOWN, table_spec

    from .patient_level import _unreadable

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
