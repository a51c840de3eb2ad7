"""Small-cell suppression and identifier checks for tables that leave the analysis environment.

Aggregated tables (counts, rates, means per site, region or period) can still disclose information
about individuals when a cell is based on very few people. Before a table is published (a report, a
CSV sent to a partner), :func:`suppress_small_cells` blanks the counts and the statistics derived from
them in cells based on fewer than ``threshold`` individuals, and adds *complementary* suppressions so
that a blanked cell cannot be recovered by subtracting the published cells from a published total.
:func:`check_no_identifiers` refuses tables that carry a patient identifier.
:func:`scaleup_analysis.reporting.save_table` applies both.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._checks import checked_inputs, first_values, rows_text
from .errors import ScaleupDataError, ScaleupWarning

__all__ = ["suppress_small_cells", "check_no_identifiers"]

#: Minimum number of individuals a published cell must be based on (CIHI / Statistics Canada rule).
DEFAULT_THRESHOLD = 5

#: Columns that count people wherever they appear in a table a report saves: the columns of the data
#: dictionary that count individuals (outcomes ``n`` and ``events``; delivery ``eligible``, ``reached``,
#: ``staff_eligible``, ``staff_trained``) and the counts derived from them. A report suppresses their
#: small cells even when a section did not declare them.
PEOPLE_COUNT_COLUMNS: tuple[str, ...] = ("n", "events", "non_events", "eligible", "reached", "staff_eligible",
                                         "staff_trained", "n_baseline", "n_followup")

#: Largest count accepted: 2**53, beyond which a float no longer holds every whole number exactly.
_MAX_COUNT = float(2**53)

#: Column names treated as direct patient identifiers (compared case-insensitively).
IDENTIFIER_COLUMNS: tuple[str, ...] = ("patient_id",)


def _as_list(arg: str, value, table: pd.DataFrame, *, allow_empty: bool = False) -> list[str]:
    if value is None:
        return []
    cols = [value] if isinstance(value, str) else list(value)
    if not cols and not allow_empty:
        raise ScaleupDataError(f"suppress_small_cells: {arg}= is empty; give at least one column name.")
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ScaleupDataError(
            f"suppress_small_cells: column(s) {', '.join(map(repr, missing))} given in {arg}= are not in "
            f"the table (columns: {', '.join(map(str, table.columns))}). Pass the names of existing columns."
        )
    return cols


def _count_values(data: pd.DataFrame, count_names: list[str]) -> dict[str, np.ndarray]:
    """The count columns as floats, checked to be non-negative whole numbers (missing allowed)."""
    num = {}
    for c in count_names:
        col = data[c]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise ScaleupDataError(
                f"suppress_small_cells: count column {c!r} has dtype {col.dtype}; counts of individuals "
                "must be numeric (integers). Convert it with pd.to_numeric or pass the right column."
            )
        x = pd.to_numeric(col, errors="coerce").astype("float64")
        bad = x.notna() & ((x < 0) | (x != np.round(x)) | ~np.isfinite(x) | (x > _MAX_COUNT))
        if bad.any():
            rows = data.index[bad.to_numpy()]
            raise ScaleupDataError(
                f"suppress_small_cells: count column {c!r} has {int(bad.sum())} value(s) that are not "
                f"non-negative whole numbers within range (rows {first_values(rows)}): {first_values(x[bad])}. "
                f"Counts of individuals must be integers >= 0 and at most 2**53 = {_MAX_COUNT:.0f} (beyond, a "
                "float no longer holds every whole number); fix or remove those rows."
            )
        num[c] = x.to_numpy()
    return num


def _complementary(hidden: np.ndarray, data: pd.DataFrame, dims: list[str], first: np.ndarray) -> None:
    """Hide more cells (in place) until no margin (a value of one of ``dims``, or the whole table)
    has exactly one hidden cell: the smallest cell of the margin, preferring cells that also
    complete other margins, then non-empty cells."""
    groupings = [np.zeros(len(data), dtype=np.int64)] if not dims else [
        pd.factorize(data[d], sort=True, use_na_sentinel=False)[0] for d in dims
    ]
    size = np.where(np.isnan(first), np.inf, first)
    changed = True
    while changed:
        changed = False
        for gi, codes in enumerate(groupings):
            for g in np.unique(codes):
                members = np.flatnonzero(codes == g)
                if len(members) < 2 or hidden[members].sum() != 1:
                    continue
                candidates = members[~hidden[members]]
                # how many of each candidate's other margin groups it would complete
                fixes = np.zeros(len(candidates))
                for gj, other in enumerate(groupings):
                    if gj != gi:
                        fixes += [hidden[other == other[c]].sum() == 1 for c in candidates]
                key = (candidates, size[candidates], -fixes, size[candidates] == 0)
                pick = candidates[np.lexsort(key)[0]]
                hidden[pick] = True
                changed = True


@checked_inputs(empty=True)
def suppress_small_cells(
    data: pd.DataFrame,
    counts: str | Sequence[str],
    values: str | Sequence[str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    by: str | Sequence[str] | None = None,
    complementary: bool = True,
) -> pd.DataFrame:
    """Blank the cells of a table that are based on fewer than ``threshold`` individuals.

    Each row of the long-format ``data`` is one published cell (e.g. one site x period). A row is
    *primarily suppressed* when any of its ``counts`` columns is between 1 and ``threshold - 1``. Its
    counts and the statistics computed from them (``values``: rates, means, percentages) are
    replaced by missing values and its ``suppressed`` flag is set. With ``complementary=True``,
    further rows are suppressed so the hidden ones cannot be recovered from margin totals (see Notes).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per cell. Not modified.
    counts : str or sequence of str
        Columns holding numbers of individuals (e.g. ``n``, ``events``, ``reached``, ``eligible``);
        they must be non-negative integers up to 2**53 (missing allowed: see Notes).
    values : str or sequence of str, optional
        Columns derived from the counts (rates, proportions, means) blanked together with them.
    threshold : int, default 5
        Smallest publishable count. Counts of 0 are kept (a zero cell discloses nobody).
    by : str or sequence of str, optional
        Margin dimensions: each column listed defines groups of rows whose total may be published
        (``by=["rss_code", "period"]`` for a region x period table with row and column totals).
        ``None`` treats the whole table as one group (a grand total).
    complementary : bool, default True
        Apply complementary suppression within every margin group.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with the blanked counts (nullable ``Int64``), blanked values and a boolean
        column ``suppressed`` (combined with an existing ``suppressed`` column by logical or).

    Raises
    ------
    ScaleupDataError
        If a column is missing, a count is negative, non-integer, beyond 2**53 or not numeric, or
        ``threshold`` is not an integer >= 1.

    Warns
    -----
    ScaleupWarning
        When rows publishing a value have every count missing: they are suppressed (see Notes).

    Notes
    -----
    Rule applied (the minimum-cell-size rule of 5 used by the Canadian Institute for Health
    Information and by Statistics Canada for health tables, with the standard complementary
    suppression of statistical agencies [1]_, [2]_):

    1. *Primary suppression*: every row with a count ``c`` such that ``0 < c < threshold``.
    2. *Complementary suppression*: in each margin group (the rows sharing a value of a ``by``
       column, or the whole table), if exactly one row is suppressed and the group has other rows,
       an unsuppressed row of the group is suppressed too, so that the group total minus the
       published cells does not reveal the hidden one. The row chosen is, in order of preference:
       a row with a non-zero count (a zero is a poor complement), one that also completes another
       margin group holding a single suppressed row (so the pattern closes as a rectangle rather than
       spreading), the smallest count (first of ``counts``), the first in table order. Because a new suppression can leave another group with a single suppressed row,
       the step is repeated over all ``by`` dimensions until no group has exactly one.

    A missing count is not applicable when another count of the row is known (``events`` of a
    continuous indicator beside its ``n``). A row whose counts are *all* missing but which publishes
    a value (a rate without its count) is of unknown size, so it may be small: it is suppressed as a
    primary suppression, with a :class:`ScaleupWarning` naming the rows.

    A group made of a single suppressed row cannot be protected by suppressing other rows: its total
    must not be published either. Relations between columns of the same row (``events`` and
    ``n - events``) are not checked: list both the count and its complement in ``counts`` when
    the complement is published. This heuristic is not an optimal (minimum-loss) cell-suppression
    solver such as tau-Argus and does not audit exact disclosure through combinations of several
    margins (e.g. a suppressed cell that bridges two otherwise separate suppression patterns); it
    guarantees that no margin group contains exactly one suppressed cell.

    References
    ----------
    .. [1] Canadian Institute for Health Information. *Privacy Policy on the Collection, Use,
       Disclosure and Retention of Personal Health Information and De-Identified Data*. Ottawa:
       CIHI; 2010 (minimum cell size of 5 for published aggregate data).
    .. [2] Statistics Canada. *Statistics Canada Quality Guidelines*, section "Disclosure control"
       (primary and complementary cell suppression); and Hundepool A, et al. *Statistical Disclosure
       Control*. Wiley; 2012, chapter 4 (tabular data, secondary suppression).

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> t = pd.DataFrame({"site": ["A", "B", "C", "D"], "n": [120, 3, 40, 60],
    ...                   "events": [12, 1, 8, 6]})
    >>> t["rate"] = t["events"] / t["n"]
    >>> out = sa.suppress_small_cells(t, counts=["n", "events"], values="rate")
    >>> out[["site", "n", "events", "suppressed"]]
      site     n  events  suppressed
    0    A   120      12       False
    1    B  <NA>    <NA>        True
    2    C  <NA>    <NA>        True
    3    D    60       6       False
    """
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(
            f"suppress_small_cells: data must be a pandas DataFrame, got {type(data).__name__}."
        )
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ScaleupDataError(
            f"suppress_small_cells: threshold={threshold!r} is invalid; give an integer >= 1 "
            f"(the default {DEFAULT_THRESHOLD} is the CIHI / Statistics Canada minimum cell size)."
        )
    count_names = _as_list("counts", counts, data)
    value_names = [c for c in _as_list("values", values, data, allow_empty=True) if c not in count_names]
    dims = _as_list("by", by, data, allow_empty=True)
    if data.index.has_duplicates:
        data = data.reset_index(drop=True)
    num = _count_values(data, count_names)

    # a cell whose every count is missing has an unknown size (it may be small): what it publishes is hidden
    unknown = np.logical_and.reduce([np.isnan(x) for x in num.values()])
    if value_names:
        unknown &= data[value_names].notna().any(axis=1).to_numpy()
    else:
        unknown[:] = False
    primary = unknown.copy()
    for x in num.values():
        primary |= (x > 0) & (x < threshold)
    if unknown.any():
        cols = " and ".join(map(repr, count_names))
        warnings.warn(
            f"suppress_small_cells: count column{'s' if len(count_names) > 1 else ''} {cols} "
            f"{'are all' if len(count_names) > 1 else 'is'} missing in {rows_text(data, unknown)}: these cells "
            f"are of unknown size and may be small, so their values ({', '.join(map(repr, value_names))}) are "
            "suppressed as if they were (with complementary suppression). Fill in the counts to publish them.",
            ScaleupWarning,
            stacklevel=3,
        )
    hidden = primary.copy()
    if complementary and len(data) > 1:
        _complementary(hidden, data, dims, num[count_names[0]])

    out = data.copy()
    for c in count_names:
        col = out[c]
        if pd.api.types.is_integer_dtype(col) or (
            pd.api.types.is_float_dtype(col) and np.all(np.isnan(num[c]) | (num[c] == np.round(num[c])))
        ):
            col = col.astype("Int64")
        out[c] = col.mask(hidden)
    for c in value_names:
        out[c] = out[c].mask(hidden)
    prior = out["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in out.columns else False
    out["suppressed"] = hidden | prior
    return out


def _label_names(label) -> list[str]:
    """The names a column label holds: each level of a tuple (MultiIndex) label, bytes decoded,
    anything else as text."""
    if isinstance(label, tuple):
        return [name for part in label for name in _label_names(part)]
    if isinstance(label, (bytes, bytearray)):
        return [bytes(label).decode("utf-8", errors="replace")]
    return [str(label)]


def _axis_names(where: str, labels) -> list[tuple[str, str]]:
    return [(f"{where} {label!r}" if isinstance(label, tuple) else where, name)
            for label in labels for name in _label_names(label)]


def _columns_of(obj, label: str = "argument 'data'") -> list[tuple[str, str]]:
    """(where, column name) pairs of a DataFrame/Series/mapping/sequence of names; the levels of
    MultiIndex labels and non-text labels (numbers, bytes) are included."""
    if isinstance(obj, pd.DataFrame):
        names = _axis_names("column", obj.columns)
        names += _axis_names("column level", [n for n in obj.columns.names if n is not None])
        names += _axis_names("index level", [n for n in obj.index.names if n is not None])
        return names
    if isinstance(obj, pd.Series):
        names = _axis_names("series name", [obj.name]) if obj.name is not None else []
        return names + _axis_names("index level", [n for n in obj.index.names if n is not None])
    if isinstance(obj, Mapping):
        out = []
        for key, value in obj.items():
            out += [(f"{where} of {key!r}", name) for where, name in _columns_of(value, f"{label}[{key!r}]")]
        return out
    if isinstance(obj, (list, tuple, pd.Index)):
        rows = [k for k, v in enumerate(obj) if isinstance(v, (list, dict, set, np.ndarray, pd.Series, pd.DataFrame))]
        if rows:
            raise ScaleupDataError(
                f"check_no_identifiers: {label} is a {type(obj).__name__} holding "
                f"{type(obj[rows[0]]).__name__}s (positions {first_values(rows)}), not a list of column names: "
                "rows of a table carry no column names to check. Pass the table as a DataFrame "
                "(pd.DataFrame(rows, columns=[...])), a mapping of table name to DataFrame, or the list of "
                "column names."
            )
        return _axis_names("name", obj)
    raise ScaleupDataError(
        f"check_no_identifiers: cannot inspect {label}, an object of type {type(obj).__name__}; pass a "
        "DataFrame, a Series, a mapping of table name to DataFrame, or a list of column names."
    )


def _text_columns(frame: pd.DataFrame):
    """(name, values, is_index) of every column (by position, so duplicated labels are all seen)
    and of every index level."""
    for i, label in enumerate(frame.columns):
        yield " / ".join(_label_names(label)), frame.iloc[:, i], False
    for level in range(frame.index.nlevels):
        name = frame.index.names[level]
        values = pd.Series(frame.index.get_level_values(level), index=frame.index)
        if name is None:
            name = "<index>" if frame.index.nlevels == 1 else f"<index level {level}>"
        yield str(name), values, True


def check_no_identifiers(
    data,
    identifiers: Sequence[str] = IDENTIFIER_COLUMNS,
    *,
    value_pattern: str | None = None,
):
    """Raise if a table carries a patient identifier; return it unchanged otherwise.

    Parameters
    ----------
    data : DataFrame, Series, mapping of name to DataFrame, or list of column names
        What is about to be published.
    identifiers : sequence of str, default ``("patient_id",)``
        Column (or index level) names that identify individuals, compared case-insensitively and
        ignoring surrounding spaces.
    value_pattern : str, optional
        A regular expression matched (``re.fullmatch``) against every text value of a DataFrame's
        columns and index, e.g. ``r"P\\d{10}"`` for the pseudonymous ids of the simulated data.

    Returns
    -------
    data
        The input, so the call can be chained.

    Raises
    ------
    ScaleupDataError
        Naming the identifier column(s) found (and, with ``value_pattern``, the column and rows
        holding matching values), and how to fix the table.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> sa.check_no_identifiers(pd.DataFrame({"site_id": ["S1"], "n": [12]})).shape
    (1, 2)
    >>> sa.check_no_identifiers(pd.DataFrame({"patient_id": ["P0000000001"]}))
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.ScaleupDataError: check_no_identifiers: the table holds patient identifier column(s) 'patient_id' (column). ...
    """
    if isinstance(identifiers, str):
        identifiers = [identifiers]
    wanted = {str(i).strip().lower() for i in identifiers}
    found = [(where, name) for where, name in _columns_of(data) if name.strip().lower() in wanted]
    if found:
        listed = ", ".join(f"{name!r} ({where})" for where, name in found)
        raise ScaleupDataError(
            f"check_no_identifiers: the table holds patient identifier column(s) {listed}. Tables that "
            "leave the analysis environment must be aggregated: drop the column (df.drop(columns=...)) "
            "or summarise per site/period before saving."
        )
    if value_pattern is not None:
        rx = re.compile(value_pattern)
        frames = data.items() if isinstance(data, Mapping) else [("table", data)]
        for tname, frame in frames:
            if isinstance(frame, pd.Series):
                frame = frame.to_frame()
            if not isinstance(frame, pd.DataFrame):
                continue
            for cname, col, is_index in _text_columns(frame):
                if not (is_index or pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
                        or isinstance(col.dtype, pd.CategoricalDtype)):
                    continue
                hit = col.astype(object).map(lambda v: bool(pd.notna(v)) and rx.fullmatch(str(v)) is not None
                                             ).to_numpy(dtype=bool)
                if hit.any():
                    raise ScaleupDataError(
                        f"check_no_identifiers: {tname!r} column {cname!r} holds {int(hit.sum())} value(s) "
                        f"matching the identifier pattern {value_pattern!r} (rows "
                        f"{first_values(frame.index[hit])}). Remove or aggregate those values before saving."
                    )
    return data


# --------------------------------------------------------------------------------------------------
# figures: the small cells a table suppresses are not drawn either
# --------------------------------------------------------------------------------------------------
#: Mark drawn where a figure leaves a value out (the same for a small cell and its complements, so
#: that the figure, like the table, does not tell which is which).
HIDDEN_MARK = "×"


def _hide_mask(hide, n_rows: int, where: str) -> np.ndarray:
    """The ``hide=`` argument of a plot method as a boolean array, one flag per row of the result's
    table (``None``: nothing hidden). Missing flags count as hidden."""
    if hide is None:
        return np.zeros(n_rows, dtype=bool)
    if isinstance(hide, pd.DataFrame):
        raise ScaleupDataError(
            f"{where}: hide= must be one flag per row (e.g. the 'suppressed' column of the table), not a DataFrame."
        )
    flags = pd.Series(hide) if not isinstance(hide, pd.Series) else hide
    if len(flags) != n_rows:
        raise ScaleupDataError(
            f"{where}: hide= has {len(flags)} flag(s) but the result has {n_rows} row(s); give one flag per row "
            "of its to_frame(), e.g. suppress_small_cells(result.to_frame(), ...)['suppressed']."
        )
    if not (pd.api.types.is_bool_dtype(flags) or (pd.api.types.is_numeric_dtype(flags)
                                                   and flags.dropna().isin([0, 1]).all())):
        raise ScaleupDataError(f"{where}: hide= must hold True/False flags, got dtype {flags.dtype}.")
    return flags.astype("boolean").fillna(True).to_numpy(dtype=bool)


def _hidden_label(tx, n_hidden: int, threshold: int) -> str:
    """What a figure says about the values it leaves out (legend entry beside :data:`HIDDEN_MARK`)."""
    return tx.n("{n} value not shown (fewer than {k} people, or it would reveal such a value)",
                "{n} values not shown (fewer than {k} people, or they would reveal such a value)",
                int(n_hidden), k=tx.int(threshold))
