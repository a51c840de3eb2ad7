"""Private input-checking helpers shared by the modules of scaleup_analysis.

One piece of code per idea: the message fragments that name the offending rows of a table
(:func:`rows_text`, ``"3 row(s) (index 0, 4, 7)"``) or the first few values (:func:`first_values`),
each value cut to a readable length (:func:`short_repr`: a 2 MB cell is never echoed in full),
the check that a table is a DataFrame holding the columns an analysis needs
(:func:`require_columns`), the "these rows of this column are wrong" error (:func:`fail_rows`), the
one check of a numeric column (:func:`numeric_column`), the one check of a confidence level
(:func:`check_level`) and the argument checks of the two mixed-model fitters
(:func:`check_mixed_args`). Public functions keep
their own wording around these fragments (which table, which argument, how to fix it); see
``CONTRIBUTING.md`` for what a ``ScaleupDataError`` must say.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ScaleupDataError

__all__: list[str] = []  # private module: nothing re-exported

MAX_SHOWN = 5
#: Longest value quoted in a message, in characters (longer ones are cut and end with "…").
MAX_VALUE_CHARS = 60


def short_repr(value, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to at most ``limit`` characters, ending with ``…`` and the full length.

    NumPy scalars are shown as Python ones. Used wherever a message quotes a value from the data,
    so that a 2 MB cell (or column name) is never echoed in full.

    Examples
    --------
    >>> import numpy as np
    >>> from scaleup_analysis._checks import short_repr
    >>> short_repr(np.int64(3))
    '3'
    >>> short_repr("x" * 2_000_000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… (2000000 characters)"
    """
    text = repr(value.item() if isinstance(value, np.generic) else value)
    if len(text) <= limit:
        return text
    n = len(value) if isinstance(value, str) else len(text)
    return f"{text[:limit - 1]}… ({n} characters)"


def rows_text(obj, mask=None, max_shown: int = MAX_SHOWN, *, label: str = "index") -> str:
    """Describe offending rows: ``"N row(s) (index a, b, ... (k more))"``.

    Parameters
    ----------
    obj : DataFrame, Series, Index or sequence
        Where the row labels come from (a DataFrame's or Series' index, or the labels themselves).
    mask : array-like of bool, optional
        Which rows are at fault; ``None`` means every label of ``obj``.
    max_shown : int
        How many labels to list before ``... (k more)``.
    label : str
        Word before the labels, e.g. ``"index"`` or ``"first:"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import rows_text
    >>> df = pd.DataFrame({"x": range(8)})
    >>> rows_text(df, df["x"] > 0)
    '7 row(s) (index 1, 2, 3, 4, 5, ... (2 more))'
    >>> rows_text(df, df["x"] == 3, label="first:")
    '1 row(s) (first: 3)'
    """
    labels = obj.index if isinstance(obj, (pd.DataFrame, pd.Series)) else obj
    if mask is not None:
        labels = pd.Index(labels)[np.asarray(mask, dtype=bool)]
    labels = labels if isinstance(labels, pd.Index) else list(labels)
    n = len(labels)
    shown = ", ".join(short_repr(b) for b in list(labels[:max_shown]))
    more = f", ... ({n - max_shown} more)" if n > max_shown else ""
    return f"{n} row(s) ({label} {shown}{more})"


def first_values(values, k: int = MAX_SHOWN) -> str:
    """The first ``k`` of ``values`` as ``"a, b, ... (n more)"`` (NumPy scalars shown as Python ones,
    long values cut by :func:`short_repr`).

    Examples
    --------
    >>> import numpy as np
    >>> from scaleup_analysis._checks import first_values
    >>> first_values(np.arange(8))
    '0, 1, 2, 3, 4, ... (3 more)'
    >>> first_values(["x", "y"])
    "'x', 'y'"
    """
    values = list(values)
    shown = ", ".join(short_repr(v) for v in values[:k])
    return shown + (f", ... ({len(values) - k} more)" if len(values) > k else "")


def require_columns(
    df,
    table: str,
    cols: Sequence[str],
    *,
    label: str | None = None,
    hint: str = "Rename the columns or pass their names as keyword arguments (see docs/data_dictionary.md).",
) -> None:
    """Raise :class:`ScaleupDataError` unless ``df`` is a DataFrame holding every column in ``cols``.

    The messages start with ``label`` (default ``"table '<table>'"``) and read
    ``<label>: expected a pandas DataFrame, got <type>.`` or
    ``<label>: missing column(s) ['a', 'b']. Available columns: ['x', ...]. <hint>``.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import require_columns
    >>> require_columns(pd.DataFrame({"a": [1]}), "sites", ["a"])  # passes silently
    >>> try:
    ...     require_columns(pd.DataFrame({"a": [1]}), "sites", ["a", "b"], hint="Rename it.")
    ... except ValueError as e:
    ...     print(e)
    table 'sites': missing column(s) ['b']. Available columns: ['a']. Rename it.
    """
    label = f"table '{table}'" if label is None else label
    if not isinstance(df, pd.DataFrame):
        raise ScaleupDataError(f"{label}: expected a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        shown = list(df.columns)[:20]
        more = f" ... ({len(df.columns) - 20} more)" if len(df.columns) > 20 else ""
        raise ScaleupDataError(
            f"{label}: missing column(s) {missing}. Available columns: {shown}{more}. {hint}"
        )


def fail_rows(table: str, col: str, what: str, df: pd.DataFrame, mask, fix: str) -> None:
    """Raise ``table '<table>', column '<col>': N row(s) (first: ...) <what>. <fix>`` if any ``mask``.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import fail_rows
    >>> df = pd.DataFrame({"n": [3, -1]})
    >>> try:
    ...     fail_rows("delivery", "n", "are negative", df, df["n"] < 0, "Counts are >= 0.")
    ... except ValueError as e:
    ...     print(e)
    table 'delivery', column 'n': 1 row(s) (first: 1) are negative. Counts are >= 0.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        raise ScaleupDataError(
            f"table '{table}', column '{col}': {rows_text(df, mask, label='first:')} {what}. {fix}"
        )


def numeric_column(
    df: pd.DataFrame,
    col: str,
    label: str,
    *,
    arg: str | None = None,
    missing: bool = False,
    infinite: bool = False,
    booleans: bool = True,
) -> np.ndarray:
    """The values of column ``col`` of ``df`` as floats, or a :class:`ScaleupDataError` naming the rows.

    Text that is not a number is always an error; missing values are an error unless ``missing``
    is True (they stay NaN), infinite values unless ``infinite`` is True, True/False columns
    unless ``booleans`` is True. Messages read
    ``<label>, column '<col>' (argument '<arg>'): N row(s) (first: ...) are not numeric (values ...). <fix>``.

    Parameters
    ----------
    df : pandas.DataFrame
    col : str
        The column (it must exist: check with :func:`require_columns` first).
    label : str
        Start of the message: the function and/or table, e.g. ``"icc: table 'data'"``.
    arg : str, optional
        The argument that named the column.
    missing, infinite, booleans : bool
        Whether missing values, infinite values and a boolean column are accepted.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import numeric_column
    >>> df = pd.DataFrame({"y": ["1.5", "2", None, "x"]})
    >>> numeric_column(df.iloc[:2], "y", "demo").tolist()
    [1.5, 2.0]
    >>> try:
    ...     numeric_column(df, "y", "demo: table 'data'", arg="outcome", missing=True)
    ... except ValueError as e:
    ...     print(e)
    demo: table 'data', column 'y' (argument 'outcome'): 1 row(s) (first: 3) are not numeric (values 'x'). Convert the column to numbers.
    """
    where = f"{label}, column {col!r}" + (f" (argument {arg!r})" if arg else "")
    s = df[col]
    if not booleans and pd.api.types.is_bool_dtype(s):
        raise ScaleupDataError(f"{where}: holds True/False values; give numbers.")
    conv = pd.to_numeric(s, errors="coerce")
    bad = (conv.isna() & s.notna()).to_numpy()
    if bad.any():
        raise ScaleupDataError(
            f"{where}: {rows_text(df, bad, label='first:')} are not numeric (values "
            f"{first_values(s[bad])}). Convert the column to numbers."
        )
    x = conv.to_numpy(dtype=float, na_value=np.nan)
    for ok, mask, what, fix in (
        (missing, np.isnan(x), "are missing", "Fill in the values or drop the rows."),
        (infinite, np.isinf(x), "are infinite", "Correct or drop these rows."),
    ):
        if not ok and mask.any():
            raise ScaleupDataError(f"{where}: {rows_text(df, mask, label='first:')} {what}. {fix}")
    return x


def check_level(level, fn: str | None = None) -> float:
    """Return ``level`` if it is a coverage in (0, 1), else raise :class:`ScaleupDataError`.

    The one check of a confidence / prediction level (see ``docs/glossary.md``: ``level`` is
    always a coverage such as 0.95, never a test size).

    Examples
    --------
    >>> from scaleup_analysis._checks import check_level
    >>> check_level(0.9)
    0.9
    >>> try:
    ...     check_level(95, "icc")
    ... except ValueError as e:
    ...     print(e)
    icc: argument 'level' must be a coverage in (0, 1), e.g. 0.95; got 95.
    """
    ok = isinstance(level, (float, int, np.floating, np.integer)) and not isinstance(level, (bool, np.bool_))
    if not (ok and 0 < level < 1):
        prefix = f"{fn}: " if fn else ""
        raise ScaleupDataError(f"{prefix}argument 'level' must be a coverage in (0, 1), e.g. 0.95; got {level!r}.")
    return level


def check_mixed_args(fn: str, family, level, reml) -> None:
    """Check the ``family``, ``level`` and ``reml`` arguments of the mixed-model fitters.

    Shared by :func:`scaleup_analysis.mixed_model` and
    :func:`scaleup_analysis.mixed_model_from_summary`; messages start with ``fn``.

    Examples
    --------
    >>> from scaleup_analysis._checks import check_mixed_args
    >>> check_mixed_args("mixed_model", "gaussian", 0.95, True)  # passes silently
    >>> try:
    ...     check_mixed_args("mixed_model", "poisson", 0.95, True)
    ... except ValueError as e:
    ...     print(e)
    mixed_model: family must be 'gaussian' or 'binomial', got 'poisson'.
    """
    if family not in ("gaussian", "binomial"):
        raise ScaleupDataError(f"{fn}: family must be 'gaussian' or 'binomial', got {family!r}.")
    check_level(level, fn)
    if not isinstance(reml, bool | np.bool_):
        raise ScaleupDataError(f"{fn}: reml must be True or False, got {reml!r}.")
