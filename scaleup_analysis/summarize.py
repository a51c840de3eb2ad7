"""Per-site (or site x period) sufficient statistics, and exact model fits from them.

Province-scale patient-level data (tens of millions of rows) never need to sit in memory, nor leave
the institution that holds them: :func:`summarize` reduces them to one row per cell (e.g. site x
period) holding the counts, sums and cross-products that the linear mixed model, the per-site
regressions and the binomial models need. The summaries of several institutions can be concatenated
and fitted as if the analyst had the rows:

* :func:`mixed_model_from_summary` -- the Gaussian linear mixed model of
  :func:`scaleup_analysis.mixed_model` (REML/ML, random intercept and slopes), from the shared
  REML engine's summary-level entry point (:mod:`scaleup_analysis.engines.reml`);
  ``family="binomial"`` fits the aggregated (events / trials) logit GLMM;
* :func:`site_effects_from_summary` -- per-site regression estimates and their variances (``yi``,
  ``vi``), ready for :func:`scaleup_analysis.meta_analysis`.

Three engines give the same numbers: pandas (in-memory DataFrame), DuckDB (SQL aggregation over a
Parquet or CSV file, streamed with bounded memory; the default for paths) and Dask (a
``dask.dataframe.DataFrame``, e.g. on a ``dask.distributed`` cluster). See ``docs/federated.md``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ._checks import check_mixed_args, checked_inputs, first_values, mixed_kinds, numeric_column, rows_text
from .errors import RowsOmittedWarning, ScaleupDataError

__all__ = ["summarize", "mixed_model_from_summary", "site_effects_from_summary"]

_INTERCEPT = "Intercept"
_SEP = "__"
_MAX_SHOWN = 5
_ENGINES = ("auto", "pandas", "duckdb", "dask")
_CHUNK_ROWS = 2_000_000  # pandas engine reading a file: rows per chunk


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _as_list(arg: str, value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise ScaleupDataError(f"summarize: {arg} must be a column name or a list of names, got {value!r}.") from None
    for v in out:
        if not isinstance(v, str):
            raise ScaleupDataError(f"summarize: {arg} must hold column names (str), got {v!r}.")
    return out


def sp_name(a: str, b: str) -> str:
    """Name of the summary column holding ``sum(a * b)`` (``a``, ``b`` in design order)."""
    return f"sp{_SEP}{a}{_SEP}{b}"


def _design_names(outcome: str | None, covariates: list[str], random: list[str]) -> list[str]:
    """Columns whose pairwise products are summed: Intercept, covariates, extra random terms, outcome."""
    names = [_INTERCEPT]
    for c in [*covariates, *[r for r in random if r not in ("1", _INTERCEPT)]]:
        if c not in names:
            names.append(c)
    if outcome is not None:
        names.append(outcome)
    return names


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` with ``a`` before or equal to ``b`` in design order, except Intercept x Intercept (= n)."""
    out = []
    for i, a in enumerate(names):
        for b in names[i:]:
            if a == _INTERCEPT and b == _INTERCEPT:
                continue
            out.append((a, b))
    return out


def _used_columns(group, numeric, binary) -> list[str]:
    """The columns a summary reads, each once, in order: ``group``, ``numeric``, then ``binary``."""
    return list(dict.fromkeys([*group, *numeric] + ([binary] if binary else [])))


def _is_dask(obj) -> bool:
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------------------------------
def _check_pandas(df: pd.DataFrame, what: str, group, numeric, binary) -> tuple[pd.DataFrame, int, list]:
    """Check columns and types; return the complete rows, the number of incomplete ones and their first labels."""
    cols = _used_columns(group, numeric, binary)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ScaleupDataError(
            f"summarize: column(s) {missing} not found in {what}. Available columns: {first_values(df.columns, 12)}. "
            "Pass the right names as group=, outcome=, covariates=, random= or binary=."
        )
    dup = [c for c in cols if int((df.columns == c).sum()) > 1]
    if dup:
        raise ScaleupDataError(
            f"summarize: column name(s) {dup} occur more than once in {what}; rename or drop the copies "
            "(e.g. data.loc[:, ~data.columns.duplicated()])."
        )
    for g in dict.fromkeys(group):
        s = df[g]
        # infer_dtype is a fast C scan; only a mixed column is looked at value by value
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("mixed", "mixed-integer"):
            found = mixed_kinds(s)
            if found is not None:
                kinds, minority = found
                raise ScaleupDataError(
                    f"summarize: column {g!r} (argument 'by') of {what} mixes value types "
                    f"({', '.join(sorted(kinds.unique()))}): {rows_text(kinds, minority, label='first:')} "
                    f"differ from the others (values {first_values(s.loc[kinds.index[minority]])}), so "
                    "equal-looking keys (1 and '1') would form separate cells. Convert the column to one type, "
                    f"e.g. data[{g!r}].astype(str)."
                )
    for c in _used_columns((), numeric, binary):
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            if not bad.any():  # an all-missing column (e.g. a header-only file): its rows are left out below
                continue
            raise ScaleupDataError(
                f"summarize: column {c!r} of {what} must be numeric; {int(bad.sum())} row(s) are not "
                f"(index {first_values(df.index[bad.to_numpy()])}). Convert or dummy-code it first."
            )
    sub = df[cols]
    keep = sub.notna().all(axis=1).to_numpy()
    n_drop = int((~keep).sum())
    if n_drop:
        sub = sub.loc[keep]
    for c in dict.fromkeys(numeric):
        v = sub[c].to_numpy(dtype=float)
        inf = ~np.isfinite(v)
        if inf.any():
            raise ScaleupDataError(
                f"summarize: column {c!r} of {what} has {int(inf.sum())} infinite value(s) "
                f"(index {first_values(sub.index[inf])}). Fix or remove these rows."
            )
    if binary:
        b = sub[binary].to_numpy(dtype=float)
        bad = (b != 0) & (b != 1)
        if bad.any():
            raise ScaleupDataError(
                f"summarize: column {binary!r} (argument 'binary') of {what} must be 0/1; {int(bad.sum())} "
                f"row(s) are not (index {first_values(sub.index[bad])}). Recode it as 0/1."
            )
    return sub, n_drop, ([] if not n_drop else list(df.index[~keep][:_MAX_SHOWN]))


def _products_frame(sub: pd.DataFrame, group, names, pairs, binary) -> pd.DataFrame:
    """Row-level products to be summed per cell (float64)."""
    vals = {c: sub[c].to_numpy(dtype=float) for c in names if c != _INTERCEPT}
    out = {g: sub[g].to_numpy() for g in group}
    out["n"] = np.ones(len(sub), dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):  # infinite inputs are reported by the caller
        for a, b in pairs:
            out[sp_name(a, b)] = vals[b] if a == _INTERCEPT else vals[a] * vals[b]
    if binary:
        out["events"] = sub[binary].to_numpy(dtype=float)
    return pd.DataFrame(out, index=sub.index)


def _summarize_pandas(chunks, what, group, names, pairs, binary, numeric):
    """Aggregate an iterable of DataFrame chunks (one chunk for an in-memory DataFrame)."""
    parts, n_drop, first = [], 0, []
    for df in chunks:
        sub, nd, fi = _check_pandas(df, what, group, numeric, binary)
        n_drop += nd
        first += fi
        prod = _products_frame(sub, group, names, pairs, binary)
        parts.append(prod.groupby(group, sort=False, observed=True, dropna=True).sum())
    if n_drop:
        where = f" (index {first_values(first)})" if len(parts) == 1 else ""
        warnings.warn(
            f"summarize: {n_drop} row(s) of {what} left out because of missing values in "
            f"{_used_columns(group, numeric, binary)}{where}.",
            RowsOmittedWarning,
            stacklevel=3,
        )
    out = parts[0] if len(parts) == 1 else pd.concat(parts).groupby(level=list(range(len(group))), sort=False).sum()
    return out.reset_index()


def _path_chunks(path: Path, cols: list[str], chunk_rows: int):
    """Read only ``cols`` of a Parquet/CSV file in chunks of about ``chunk_rows`` rows (bounded memory)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        avail = pf.schema_arrow.names
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=[c for c in cols if c in avail]):
            yield batch.to_pandas(strings_to_categorical=True)
    else:
        yield from pd.read_csv(path, usecols=lambda c: c in cols, chunksize=chunk_rows)


def _summarize_dask(ddf, group, names, pairs, binary, numeric):
    cols = _used_columns(group, numeric, binary)
    missing = [c for c in cols if c not in ddf.columns]
    if missing:
        raise ScaleupDataError(
            f"summarize: column(s) {missing} not found in the Dask DataFrame. Available columns: "
            f"{first_values(ddf.columns, 12)}."
        )
    for c in _used_columns((), numeric, binary):
        if not (pd.api.types.is_numeric_dtype(ddf[c].dtype) or pd.api.types.is_bool_dtype(ddf[c].dtype)):
            raise ScaleupDataError(f"summarize: column {c!r} of the Dask DataFrame must be numeric (dtype {ddf[c].dtype}).")
    sub = ddf[cols]
    n_all = sub.map_partitions(len).sum()  # lazy: computed with the aggregation below
    sub = sub.dropna()
    # per-partition product frames, then one tree-reduction groupby
    prod = sub.map_partitions(
        _products_frame, group, names, pairs, binary,
        meta=_products_frame(sub._meta, group, names, pairs, binary),
    )
    agg = prod.groupby(group, sort=False, observed=True, dropna=True).sum()
    extra = {"inf": sum((~np.isfinite(sub[c].astype(float))).sum() for c in numeric)}
    if binary:
        b = sub[binary].astype(float)
        extra["bad"] = ((b != 0) & (b != 1)).sum()
    import dask

    out, n_all, extra = dask.compute(agg, n_all, extra)
    n_used = int(out["n"].sum())
    if int(extra["inf"]):
        raise ScaleupDataError(
            f"summarize: {int(extra['inf'])} infinite value(s) in {numeric} of the Dask DataFrame. Fix or remove them."
        )
    if binary and int(extra["bad"]):
        raise ScaleupDataError(
            f"summarize: column {binary!r} (argument 'binary') of the Dask DataFrame must be 0/1; "
            f"{int(extra['bad'])} row(s) are not. Recode it as 0/1."
        )
    if n_all > n_used:
        warnings.warn(
            f"summarize: {n_all - n_used} row(s) of the Dask DataFrame left out because of missing values in {cols}.",
            RowsOmittedWarning,
            stacklevel=3,
        )
    return out.reset_index()


def _summarize_duckdb(source, what, group, names, pairs, binary, numeric, threads):
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")  # library code never prints
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        if isinstance(source, pd.DataFrame):
            con.register("src_df", source)
            rel = "src_df"
        else:
            p = str(source).replace("'", "''")
            suffix = Path(str(source)).suffix.lower()
            rel = f"read_csv_auto('{p}')" if suffix in (".csv", ".gz", ".txt") else f"read_parquet('{p}')"
        desc = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        types = {r[0]: r[1] for r in desc}
        cols = _used_columns(group, numeric, binary)
        missing = [c for c in cols if c not in types]
        if missing:
            raise ScaleupDataError(
                f"summarize: column(s) {missing} not found in {what}. Available columns: {first_values(types, 12)}. "
                "Pass the right names as group=, outcome=, covariates=, random= or binary=."
            )
        num_types = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "BOOLEAN")
        for c in _used_columns((), numeric, binary):
            t = types[c].upper()
            if not (t in num_types or t.startswith("DECIMAL")):
                if con.execute(f"SELECT COUNT({_quote(c)}) FROM {rel}").fetchone()[0] == 0:
                    continue  # an all-missing column (e.g. a header-only file): no row is used
                raise ScaleupDataError(
                    f"summarize: column {c!r} of {what} must be numeric (DuckDB type {types[c]}). "
                    "Convert or dummy-code it first."
                )
        complete = " AND ".join(f"{_quote(c)} IS NOT NULL" for c in cols)

        def d(c):
            return f"CAST({_quote(c)} AS DOUBLE)"

        # one scan: the aggregation also counts the rows failing the checks (raised afterwards)
        sel = [_quote(g) for g in group] + ["COUNT(*) AS n"]
        for a, b in pairs:
            expr = d(b) if a == _INTERCEPT else f"{d(a)} * {d(b)}"
            sel.append(f"SUM({expr}) AS {_quote(sp_name(a, b))}")
        if binary:
            sel.append(f"SUM({d(binary)}) AS events")
            sel.append(f"COUNT(*) FILTER (WHERE {d(binary)} NOT IN (0, 1)) AS _bad_binary")
        sel.append("COUNT(*) FILTER (WHERE " + " OR ".join(f"isinf({d(c)})" for c in numeric) + ") AS _n_inf")
        gb = ", ".join(_quote(g) for g in group)
        sql = f"SELECT {', '.join(sel)} FROM {rel} WHERE {complete} GROUP BY {gb} ORDER BY {gb}"
        out = con.execute(sql).df()
        n_all = con.execute(f"SELECT COUNT(*) FROM {rel}").fetchone()[0]  # Parquet: from the metadata
        n_inf = int(out.pop("_n_inf").sum())
        if n_inf:
            raise ScaleupDataError(
                f"summarize: {n_inf} row(s) of {what} have infinite values in {numeric}. Fix or remove them."
            )
        if binary:
            bad = int(out.pop("_bad_binary").sum())
            if bad:
                raise ScaleupDataError(
                    f"summarize: column {binary!r} (argument 'binary') of {what} must be 0/1; {bad} row(s) "
                    "are not. Recode it as 0/1."
                )
        n_bad = int(n_all - out["n"].sum())
        if n_bad:
            warnings.warn(
                f"summarize: {n_bad} row(s) of {what} left out because of missing values in {cols}.",
                RowsOmittedWarning,
                stacklevel=3,
            )
    finally:
        con.close()
    return out


# --------------------------------------------------------------------------------------------------
# public: summarize
# --------------------------------------------------------------------------------------------------
def _check_summary_layout(by, outcome, binary, threshold, engine, names) -> None:
    """Options, and column names the summary layout can hold."""
    if not by:
        raise ScaleupDataError("summarize: by must name at least one column, e.g. by=['site_id', 'period'].")
    if outcome is not None and not isinstance(outcome, str):
        raise ScaleupDataError(f"summarize: outcome must be a column name or None, got {outcome!r}.")
    if binary is not None and not isinstance(binary, str):
        raise ScaleupDataError(f"summarize: binary must be a column name or None, got {binary!r}.")
    if outcome is None and binary is None:
        raise ScaleupDataError("summarize: give outcome= (continuous) and/or binary= (0/1 column).")
    if not isinstance(threshold, int | np.integer) or isinstance(threshold, bool) or threshold < 0:
        raise ScaleupDataError(f"summarize: threshold must be a non-negative integer, got {threshold!r}.")
    if engine not in _ENGINES:
        raise ScaleupDataError(f"summarize: engine must be one of {_ENGINES}, got {engine!r}.")
    for c in [*names[1:], *by]:
        if _SEP in c or c in (_INTERCEPT, "n", "events", "small_cell"):
            raise ScaleupDataError(
                f"summarize: column name {c!r} contains '{_SEP}' or is one of 'Intercept', 'n', 'events', "
                "'small_cell', which the summary layout reserves; rename the column."
            )
    overlap = [c for c in names[1:] if c in by]
    if overlap:
        raise ScaleupDataError(
            f"summarize: column(s) {overlap} are both in by and among outcome/covariates/random; "
            "a cell-level covariate belongs in by only."
        )
    if binary is not None and binary in names:
        raise ScaleupDataError(f"summarize: binary={binary!r} is also the outcome or a covariate.")


def _summarize_with(engine, data, by, names, pairs, binary, numeric, threads) -> pd.DataFrame:
    """The per-cell sums computed by the engine chosen (``"auto"``: Dask for a Dask DataFrame, DuckDB
    for a file, pandas otherwise)."""
    is_path = isinstance(data, str | os.PathLike)
    if is_path:
        path = Path(data)
        if not path.exists():
            raise ScaleupDataError(f"summarize: data file {str(path)!r} does not exist.")
        what = f"file {path.name!r}"
    else:
        what = "table 'data'"
    if engine == "auto":
        engine = "dask" if _is_dask(data) else ("duckdb" if is_path else "pandas")
    if engine == "dask":
        if not _is_dask(data):
            raise ScaleupDataError("summarize: engine='dask' needs a dask.dataframe.DataFrame as data.")
        return _summarize_dask(data, by, names, pairs, binary, numeric)
    if _is_dask(data):
        raise ScaleupDataError(f"summarize: a Dask DataFrame needs engine='dask' or 'auto', got {engine!r}.")
    if engine == "duckdb":
        if not (is_path or isinstance(data, pd.DataFrame)):
            raise ScaleupDataError(
                f"summarize: data must be a DataFrame or a file path, got {type(data).__name__}."
            )
        return _summarize_duckdb(data, what, by, names, pairs, binary, numeric, threads)
    if is_path:  # pandas
        cols = _used_columns(by, numeric, binary)
        chunks = _path_chunks(path, cols, _CHUNK_ROWS)
    elif isinstance(data, pd.DataFrame):
        chunks = [data]
    else:
        raise ScaleupDataError(
            f"summarize: data must be a pandas or Dask DataFrame or a file path, got {type(data).__name__}."
        )
    return _summarize_pandas(chunks, what, by, names, pairs, binary, numeric)


@checked_inputs
def summarize(
    data,
    by: str | Sequence[str] = ("site_id", "period"),
    *,
    outcome: str | None = "y",
    covariates: Sequence[str] = ("treated",),
    random: Sequence[str] = ("1",),
    binary: str | None = None,
    threshold: int = 5,
    engine: str = "auto",
    threads: int | None = None,
) -> pd.DataFrame:
    """Per-cell sufficient statistics of patient-level data (for fits without the rows).

    Parameters
    ----------
    data : pandas.DataFrame, dask.dataframe.DataFrame, str or os.PathLike
        Patient-level rows (e.g. the ``encounters`` table), or the path of a ``.parquet`` or
        ``.csv`` file holding them.
    by : str or list of str, default ``("site_id", "period")``
        Columns defining the cells (one output row per combination present). Put cell-level
        covariates here too (e.g. ``["site_id", "period", "treated"]`` when ``treated`` is constant
        within a site-period): they then serve as covariates of the binomial model of
        ``events / n`` and of the fits from summaries.
    outcome : str or None, default "y"
        Continuous outcome column (``None``: counts and, with ``binary``, events only).
    covariates : list of str, default ``("treated",)``
        Numeric row-level columns of the fixed effects (an intercept is always included).
    random : list of str, default ``("1",)``
        Random-effect terms; ``"1"`` is the intercept. Columns not already in ``covariates`` are
        added to the cross-products.
    binary : str, optional
        A 0/1 outcome column: its sum is returned as ``events`` (with ``n`` as denominator).
    threshold : int, default 5
        Smallest publishable count: cells with ``n < threshold`` are flagged ``small_cell = True`` so reports can suppress them
        (the statistics are kept: fits need them).
    engine : {"auto", "pandas", "duckdb", "dask"}
        ``"auto"``: pandas for a DataFrame, DuckDB for a path, Dask for a Dask DataFrame.
        ``"duckdb"`` also accepts a pandas DataFrame; ``"pandas"`` also reads a path, in chunks
        of 2 million rows.
    threads : int, optional
        DuckDB threads (default: DuckDB's, all cores).

    Returns
    -------
    pandas.DataFrame
        One row per cell, sorted by ``by``, with the ``by`` columns, ``n`` (rows used),
        ``sp__<a>__<b>`` = ``sum(a * b)`` for every pair of the design columns
        ``Intercept, covariates..., extra random columns..., outcome`` taken in that order
        (``a`` at or before ``b``; ``sp__Intercept__<b>`` is ``sum(b)``; ``Intercept x Intercept``
        is ``n``), ``events`` (with ``binary``) and ``small_cell``. Hence, with ``W = [1, X, y]``,
        ``W'W`` of each cell is recovered exactly: ``X'X``, ``X'y``, ``y'y`` and, as sub-blocks for
        random columns ``Z`` among them, ``Z'Z``, ``Z'X``, ``Z'y``. Summing rows over cells gives the
        statistics of coarser cells (e.g. per site). The output is a plain DataFrame (not a result
        object) so that it can be written to CSV/Parquet, shared and concatenated.

    Raises
    ------
    ScaleupDataError
        A column is missing or not numeric, ``binary`` is not 0/1, a name contains ``"__"``, or an
        argument is invalid. Rows with a missing value in any used column are left out with a
        :class:`~scaleup_analysis.RowsOmittedWarning` (complete-case analysis, as ``mixed_model``).

    Notes
    -----
    All sums are of float64 products (integers are cast to double), so the three engines agree to
    rounding error (about 1e-15 relative; summation order differs). DuckDB reads only the needed
    columns of a Parquet file and aggregates in a streaming hash aggregate: memory is bounded by the
    number of cells, not rows.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> df = pd.DataFrame({"site_id": ["a", "a", "a", "b", "b"], "treated": [0, 1, 1, 0, 1],
    ...                    "y": [1.0, 2.0, 4.0, 3.0, 5.0]})
    >>> s = sa.summarize(df, by="site_id", covariates=["treated"], threshold=3)
    >>> s[["site_id", "n", "sp__Intercept__y", "sp__treated__y", "sp__y__y", "small_cell"]]
      site_id  n  sp__Intercept__y  sp__treated__y  sp__y__y  small_cell
    0       a  3               7.0             6.0      21.0       False
    1       b  2               8.0             5.0      34.0        True
    """
    by = _as_list("by", by)
    covariates = _as_list("covariates", covariates)
    random = _as_list("random", random)
    names = _design_names(outcome, covariates, random)
    _check_summary_layout(by, outcome, binary, threshold, engine, names)
    pairs = _pairs(names)
    out = _summarize_with(engine, data, by, names, pairs, binary, names[1:], threads)
    what = f"file {Path(data).name!r}" if isinstance(data, str | os.PathLike) else "table 'data'"
    if len(out) == 0:
        raise ScaleupDataError(
            f"summarize: {what} has no rows to summarise (it is empty, or every row has a missing value in "
            f"{_used_columns(by, names[1:], binary)}); an empty summary would read as a study without "
            "patients. Check the table."
        )
    sums = out[[sp_name(a, b) for a, b in pairs]].to_numpy(dtype=float)
    over = ~np.isfinite(sums)
    if over.any():
        hit = [(a, b) for (a, b), o in zip(pairs, over.any(axis=0), strict=True) if o]
        sources = list(dict.fromkeys(x for ab in hit for x in ab if x != _INTERCEPT))
        raise ScaleupDataError(
            f"summarize: the sums of products {[sp_name(a, b) for a, b in hit]} of {what} overflow float64 "
            f"(infinite) in {int(over.any(axis=1).sum())} cell(s): the values of column(s) {first_values(sources)} "
            "are too large in magnitude (squares beyond 1e308). Rescale the column(s) (e.g. thousands instead of "
            "units) before summarising."
        )

    # one layout whatever the engine: sorted cells, integer counts, float sums
    for g in by:
        if isinstance(out[g].dtype, pd.CategoricalDtype):  # pandas engine reading a file in chunks
            out[g] = out[g].astype(out[g].cat.categories.dtype)
        if pd.api.types.is_integer_dtype(out[g]) or pd.api.types.is_bool_dtype(out[g]):
            out[g] = out[g].astype(np.int64)
        elif not pd.api.types.is_numeric_dtype(out[g]):
            out[g] = out[g].astype(object)
    out = out.sort_values(by, kind="mergesort").reset_index(drop=True)
    out["n"] = out["n"].astype(np.int64)
    for a, b in pairs:
        out[sp_name(a, b)] = out[sp_name(a, b)].astype(float)
    if binary:
        out["events"] = np.rint(out["events"].to_numpy(dtype=float)).astype(np.int64)
    out["small_cell"] = out["n"] < int(threshold)
    order = [*by, "n", *(sp_name(a, b) for a, b in pairs)] + (["events"] if binary else []) + ["small_cell"]
    return out[order]


# --------------------------------------------------------------------------------------------------
# reading a summary back
# --------------------------------------------------------------------------------------------------
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _parse_terms(text: str, fn: str, arg: str) -> tuple[list[str], bool]:
    """Plain column names joined by '+' (plus '1', '0' or '-1'); returns (names, intercept)."""
    s = text.strip()
    if s.startswith("~"):
        s = s[1:].strip()
    s = s.replace("-1", "+0").replace("- 1", "+0")
    terms = [t.strip() for t in s.split("+") if t.strip()]
    intercept = "0" not in terms
    names = []
    for t in terms:
        if t in ("0", "1"):
            continue
        if not _NAME_RE.match(t):
            raise ScaleupDataError(
                f"{fn}: {arg} term {t!r} is not a plain column name. From summaries only columns that were "
                "summarised (covariates=) can enter the model: create transformed or dummy columns before "
                "calling summarize()."
            )
        if t not in names:
            names.append(t)
    return names, intercept


def _parse_formula(formula: str, fn: str) -> tuple[str, list[str]]:
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ScaleupDataError(f"{fn}: formula must look like 'y ~ treated + age', got {formula!r}.")
    lhs, rhs = formula.split("~")
    lhs = lhs.strip()
    names, intercept = _parse_terms(rhs, fn, "formula")
    if not intercept:
        raise ScaleupDataError(f"{fn}: models from summaries always include an intercept; remove '0'/'-1' from {formula!r}.")
    return lhs, names


#: Largest magnitude of a sum of products read back from a summary (values up to 1e100, squared, times
#: many rows): the model's cross-products must stay finite.
_MAX_SUM = 1e250


class _Stats:
    """Per-group sums of products read from a summary table (cells summed within each group).

    Besides the summed row-level products ``sp__a__b``, a numeric column ``c`` of the summary that is
    not a statistic (a cell-level covariate, i.e. one of summarize's ``by`` columns such as
    ``treated`` or ``period``) can enter the design: within a cell it is constant, so
    ``sum(c * b) = c * sum(b)`` and ``sum(c * c') = c c' n`` are exact.
    """

    _RESERVED = ("n", "events", "small_cell")

    def __init__(self, summary: pd.DataFrame, group: str, fn: str, arg: str = "group"):
        if not isinstance(summary, pd.DataFrame):
            raise ScaleupDataError(f"{fn}: data must be the DataFrame returned by summarize(), got {type(summary).__name__}.")
        if not isinstance(group, str) or group not in summary.columns:
            raise ScaleupDataError(
                f"{fn}: column {group!r} (argument {arg!r}) is not in the summary. Available columns: "
                f"{first_values(summary.columns, 12)}. Summarise with by=[{group!r}, ...]."
            )
        sp_cols = [c for c in summary.columns if str(c).startswith("sp" + _SEP)]
        if "n" not in summary.columns or not sp_cols:
            raise ScaleupDataError(f"{fn}: summary has no 'n' / 'sp__a__b' columns: pass the output of summarize().")
        label = f"{fn}: table 'data' (a summary)"
        num = pd.DataFrame({c: numeric_column(summary, c, label, missing=True, infinite=True) for c in ["n", *sp_cols]},
                           index=summary.index)
        bad = ~np.isfinite(num.to_numpy(dtype=float)).all(axis=1) | summary[group].isna().to_numpy()
        with np.errstate(invalid="ignore"):
            huge_cells = np.abs(num.to_numpy(dtype=float)) > _MAX_SUM
        huge = huge_cells.any(axis=1)
        if huge.any():
            cols = [c for c, h in zip(num.columns, huge_cells.any(axis=0), strict=True) if h]
            raise ScaleupDataError(
                f"{label}, column(s) {first_values(cols)}: sums beyond +/-{_MAX_SUM:g} in "
                f"{rows_text(summary, huge, label='first:')}; the fit's cross-products would overflow. Rescale "
                "the columns before summarize()."
            )
        if bad.any():
            cols = [c for c, b in zip(num.columns, (~np.isfinite(num.to_numpy(dtype=float))).any(axis=0), strict=True)
                    if b] + ([group] if summary[group].isna().any() else [])
            raise ScaleupDataError(
                f"{label}, column(s) {first_values(cols)}: {rows_text(summary, bad, label='first:')} have a missing "
                f"{group!r} or missing / infinite sums. Remove them or re-run summarize()."
            )
        # each cell's sums must be those of real rows: n * sum(a^2) >= (sum a)^2 (Cauchy-Schwarz)
        for c in sp_cols:
            _, a, b = c.split(_SEP)
            first = "sp" + _SEP + _INTERCEPT + _SEP + a
            if a == b and first in num:
                nn, saa, sa_ = num["n"].to_numpy(float), num[c].to_numpy(float), num[first].to_numpy(float)
                with np.errstate(over="ignore", invalid="ignore"):
                    gap = nn * saa - sa_ ** 2
                    bad = (nn < 0) | (gap < -1e-8 * np.maximum(nn * np.abs(saa), sa_ ** 2))
                if bad.any():
                    raise ScaleupDataError(
                        f"{label}: the sums of column {a!r} are impossible in {rows_text(summary, bad, label='first:')}"
                        f" (n * {c} < {first}^2, or n < 0): they cannot come from real rows. Pass the output of "
                        "summarize() unchanged (sum cells, never edit or average them)."
                    )
        self.codes, self.groups = pd.factorize(summary[group], sort=True)
        self.G = len(self.groups)
        self.cell_n = summary["n"].to_numpy(dtype=float)
        self.n = self._agg(self.cell_n)
        self.cells = {}
        for c in sp_cols:
            _, a, b = c.split(_SEP)
            self.cells[(a, b)] = summary[c].to_numpy(dtype=float)
        self.row_level = {x for k in self.cells for x in k}
        self.cell_level = {
            c for c in summary.columns
            if c not in self._RESERVED and c != group and not str(c).startswith("sp" + _SEP)
            and c not in self.row_level
            and (pd.api.types.is_numeric_dtype(summary[c]) or pd.api.types.is_bool_dtype(summary[c]))
        }
        self.summary = summary
        self.fn = fn
        self._cache = {}

    def _agg(self, v: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes, weights=v, minlength=self.G)

    def has(self, name: str) -> bool:
        return name == _INTERCEPT or name in self.row_level or name in self.cell_level

    def _key(self, c: str) -> np.ndarray:
        v = self.summary[c].to_numpy(dtype=float)
        if not np.isfinite(v).all():
            raise ScaleupDataError(f"{self.fn}: cell-level column {c!r} of the summary has missing values.")
        return v

    def _cell_sum(self, a: str) -> np.ndarray:
        """Per-cell sum of a row-level column (or n for the intercept)."""
        if a == _INTERCEPT:
            return self.cell_n
        return self.cells[(_INTERCEPT, a)]

    def get(self, a: str, b: str) -> np.ndarray:
        key = (a, b) if (a, b) <= (b, a) else (b, a)
        if key in self._cache:
            return self._cache[key]
        for x in (a, b):
            if not self.has(x):
                raise ScaleupDataError(
                    f"{self.fn}: column {x!r} was never summarised. Re-run summarize() with it in outcome=, "
                    "covariates= or random= (row-level) or in by= (cell-level) of summarize()."
                )
        if a == _INTERCEPT and b == _INTERCEPT:
            cell = self.cell_n
        elif (a, b) in self.cells or (b, a) in self.cells:
            cell = self.cells.get((a, b), self.cells.get((b, a)))
        elif a in self.cell_level and b in self.cell_level:
            cell = self._key(a) * self._key(b) * self.cell_n
        elif a in self.cell_level:
            cell = self._key(a) * self._cell_sum(b)
        elif b in self.cell_level:
            cell = self._key(b) * self._cell_sum(a)
        else:
            raise ScaleupDataError(
                f"{self.fn}: the summary has no cross-product of {a!r} and {b!r}. Re-run summarize() with both "
                "in outcome=, covariates= or random=."
            )
        out = self._agg(cell)
        self._cache[key] = out
        return out

    def block(self, rows: list[str], cols: list[str]) -> np.ndarray:
        """Per-group matrix of sums of products, shape (G, len(rows), len(cols))."""
        out = np.empty((self.G, len(rows), len(cols)))
        for i, a in enumerate(rows):
            for j, b in enumerate(cols):
                out[:, i, j] = self.get(a, b)
        return out


# --------------------------------------------------------------------------------------------------
# public: fits from summaries
# --------------------------------------------------------------------------------------------------
@checked_inputs
def mixed_model_from_summary(
    data: pd.DataFrame,
    formula: str,
    group: str = "site_id",
    re_formula: str | None = None,
    family: str = "gaussian",
    reml: bool = True,
    level: float = 0.95,
):
    """Fit :func:`scaleup_analysis.mixed_model` from :func:`summarize` output instead of the rows.

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`summarize` (possibly several institutions' summaries concatenated). Cells
        are summed within ``group``.
    formula : str
        ``"y ~ a + b"`` with plain column names (an intercept is always included). Gaussian: ``y`` is
        the summarised outcome; ``a, b`` are summarised row-level covariates or numeric cell-level
        columns (the ``by`` columns of :func:`summarize`, e.g. ``treated`` when summarised by
        ``["site_id", "period", "treated"]``: constant within a cell, their cross-products follow
        exactly from the cell sums). Binomial: the left side is ``events`` and the right side holds
        cell-level columns only.
    group : str, default "site_id"
        Grouping factor of the random effects (a column of the summary).
    re_formula : str, optional
        Random terms per group, as in :func:`~scaleup_analysis.mixed_model`: ``None`` / ``"1"``
        (random intercept) or ``"1 + treated"`` (correlated intercept and slope); the columns must
        have been summarised.
    family : {"gaussian", "binomial"}
        ``"binomial"`` fits the logit GLMM of ``events`` out of ``n`` per cell (Laplace, as
        ``lme4::glmer(cbind(events, n - events) ~ ...)``) by calling
        :func:`~scaleup_analysis.mixed_model` on the cells.
    reml : bool, default True
        Gaussian models: REML or ML.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    MixedModelResult
        The same result object as :func:`~scaleup_analysis.mixed_model` (fixed effects with
        Satterthwaite df, variance components, site effects, log-likelihood).

    Notes
    -----
    Gaussian: the REML/ML criterion of lme4 depends on the data only through ``n`` and the per-group
    ``Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'y_j`` and the totals ``X'X``, ``X'y``, ``y'y`` (Bates et al. 2015,
    section 3), which are sub-blocks of the summed ``W'W`` of :func:`summarize`. The fit is therefore
    identical to the fit on the rows (same optimiser, same engine: :func:`scaleup_analysis.engines.reml.fit_lmm_from_crossprods`).
    Binomial: when every covariate is constant within a cell, the Bernoulli likelihood of the rows
    and the binomial likelihood of the cells differ only by the constant ``sum log C(n, events)``, so
    the estimates are identical; the log-likelihood (and AIC, BIC) include that constant, as
    ``glmer`` on aggregated data does.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
    Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(1)
    >>> site = np.repeat(np.arange(8), 10)
    >>> df = pd.DataFrame({"site": site, "x": rng.normal(size=80)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(size=8)[site] + rng.normal(size=80)
    >>> s = sa.summarize(df, by="site", covariates=["x"])
    >>> a = sa.mixed_model_from_summary(s, "y ~ x", group="site")
    >>> b = sa.mixed_model(df, "y ~ x", group="site")
    >>> bool(np.allclose(a.fixed["estimate"], b.fixed["estimate"], rtol=1e-8))
    True
    """
    fn = "mixed_model_from_summary"
    check_mixed_args(fn, family, level, reml)
    lhs, xnames = _parse_formula(formula, fn)
    if family == "binomial":
        from .heterogeneity.mixed import mixed_model

        for c in ("events", "n"):
            if not isinstance(data, pd.DataFrame) or c not in data.columns:
                raise ScaleupDataError(f"{fn}: family='binomial' needs the columns 'events' and 'n' (summarize(binary=...)).")
        if lhs != "events":
            raise ScaleupDataError(f"{fn}: with family='binomial' the left side of formula must be 'events', got {lhs!r}.")
        return mixed_model(data, formula, group=group, re_formula=re_formula, family="binomial",
                           level=level, trials="n")

    from .engines.reml import fit_lmm_from_crossprods
    from .heterogeneity.mixed import gaussian_result

    st = _Stats(data, group, fn)
    if not lhs or lhs not in st.row_level:
        raise ScaleupDataError(f"{fn}: outcome {lhs!r} of formula was not summarised (summarize(outcome=...)).")
    re_text = "1" if re_formula is None else re_formula
    if not isinstance(re_text, str) or "|" in re_text:
        raise ScaleupDataError(f"{fn}: re_formula must be None, '1' or a string such as '1 + treated', got {re_formula!r}.")
    zterms, z_int = _parse_terms(re_text, fn, "re_formula")
    xn = [_INTERCEPT, *xnames]
    zn = ([_INTERCEPT] if z_int else []) + zterms
    if not zn:
        raise ScaleupDataError(f"{fn}: re_formula={re_formula!r} gives no random term.")
    G = st.groups.size
    n = int(st.n.sum())
    p = len(xn)
    if G < 2:
        raise ScaleupDataError(f"{fn}: column {group!r} has {G} distinct value(s); a random-effects model needs >= 2 groups.")
    if n <= p + 1:
        raise ScaleupDataError(f"{fn}: {n} rows for {p} fixed effects; need more rows.")
    q = len(zn)
    if G >= n or G * q >= n:  # lme4's check.nobs.vs.nlev / check.nobs.vs.nRE, as mixed_model
        raise ScaleupDataError(
            f"{fn}: the summary counts {n} row(s) of data for {G} groups in column {group!r} (argument 'group') and {G * q} "
            "random effects: the number of levels of each grouping factor must be < the number of observations "
            "(lme4: check.nobs.vs.nlev / check.nobs.vs.nRE), otherwise the group variance and the residual "
            "variance are not separately identifiable. With one row per group, fit an ordinary regression."
        )
    XtXg = st.block(xn, xn)
    XtX = XtXg.sum(axis=0)
    scale = np.sqrt(np.diag(XtX))  # the rank of X'X at unit diagonal: free of the columns' units
    if np.linalg.matrix_rank(XtX / np.outer(scale, scale) if np.all(scale > 0) else XtX) < p:
        raise ScaleupDataError(
            f"{fn}: the fixed-effects design of {formula!r} is rank deficient (collinear or constant columns "
            f"among {xn}). Drop the redundant terms."
        )
    ZtZ = st.block(zn, zn)
    ZtX = st.block(zn, xn)
    Zty = st.block(zn, [lhs])[:, :, 0]
    Xty = st.block(xn, [lhs])[:, :, 0].sum(axis=0)
    yty = float(st.get(lhs, lhs).sum())
    fit = fit_lmm_from_crossprods(ZtZ, ZtX, Zty, XtX, Xty, yty, n, reml=reml)
    return gaussian_result(fit, n=n, groups=st.groups, xnames=xn, znames=zn, formula=formula, group=group,
                            reml=reml, level=level, fn=fn)


@checked_inputs
def site_effects_from_summary(
    data: pd.DataFrame,
    formula: str,
    term: str,
    site: str = "site_id",
) -> pd.DataFrame:
    """Per-site regression estimate of one term and its sampling variance, from summaries.

    Within each site ``j`` the ordinary least-squares fit of ``formula`` gives
    ``beta_j = (X_j'X_j)^{-1} X_j'y_j`` and ``Var(beta_j) = s_j^2 (X_j'X_j)^{-1}`` with
    ``s_j^2 = (y_j'y_j - beta_j'X_j'y_j) / (n_j - p)`` (R's ``coef(lm())`` and ``vcov(lm())``).
    The estimate of ``term`` and its variance are returned as ``yi`` and ``vi``, ready for
    :func:`scaleup_analysis.meta_analysis` (two-stage individual-participant-data meta-analysis).

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`summarize` (cells are summed within ``site``).
    formula : str
        ``"y ~ treated + age"``: the summarised outcome and covariates (row-level, or numeric
        cell-level columns of the summary); an intercept is included.
    term : str
        The covariate whose per-site coefficient is wanted (e.g. ``"treated"``).
    site : str, default "site_id"
        The site column (one regression per site).

    Returns
    -------
    pandas.DataFrame
        One row per site with an estimable coefficient: ``site``, ``n``, ``yi``, ``vi``, ``df``
        (residual df ``n_j - p``). Sites where ``X_j'X_j`` is singular (e.g. never treated) or with
        ``n_j <= p`` are left out with a :class:`~scaleup_analysis.RowsOmittedWarning`.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> df = pd.DataFrame({"site_id": ["a"] * 4 + ["b"] * 4, "treated": [0, 0, 1, 1] * 2,
    ...                    "y": [1.0, 2.0, 4.0, 6.0, 2.0, 3.0, 3.0, 5.0]})
    >>> s = sa.summarize(df, by="site_id", covariates=["treated"])
    >>> sa.site_effects_from_summary(s, "y ~ treated", term="treated")
      site_id  n   yi     vi  df
    0       a  4  3.5  1.250   2
    1       b  4  1.5  1.250   2
    """
    fn = "site_effects_from_summary"
    lhs, xnames = _parse_formula(formula, fn)
    if term not in xnames:
        raise ScaleupDataError(f"{fn}: term {term!r} is not on the right side of {formula!r}.")
    st = _Stats(data, site, fn, arg="site")
    if not lhs or lhs not in st.row_level:
        raise ScaleupDataError(f"{fn}: outcome {lhs!r} of formula was not summarised (summarize(outcome=...)).")
    xn = [_INTERCEPT, *xnames]
    p, k = len(xn), xn.index(term)
    XtX = st.block(xn, xn)
    Xty = st.block(xn, [lhs])[:, :, 0]
    yty = st.get(lhs, lhs)
    nj = st.n
    ok = nj > p
    # estimable sites: X_j'X_j of full rank (checked through its condition number)
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(XtX)
    ok &= np.isfinite(cond) & (cond < 1e12)
    if (~ok).any():
        warnings.warn(
            f"{fn}: {int((~ok).sum())} site(s) left out: {term!r} is not estimable there (constant covariate, "
            f"e.g. never treated, or n <= {p}): {first_values(st.groups[~ok])}.",
            RowsOmittedWarning,
            stacklevel=2,
        )
    if not ok.any():
        raise ScaleupDataError(
            f"{fn}: no site of the summary ({st.G} site(s)) can estimate {term!r}: each needs more than {p} rows "
            "and both values of the term. Check the summary (summarize(..., by=[site, ...]) of the patient rows)."
        )
    A, c, yy, nn = XtX[ok], Xty[ok], yty[ok], nj[ok]
    beta = np.linalg.solve(A, c[:, :, None])[:, :, 0]
    rss = yy - np.einsum("gp,gp->g", beta, c)
    dfr = nn - p
    s2 = rss / dfr
    inv = np.linalg.inv(A)
    out = pd.DataFrame({site: list(st.groups[ok]), "n": nn.astype(np.int64), "yi": beta[:, k],
                        "vi": s2 * inv[:, k, k], "df": dfr.astype(np.int64)})
    return out
