"""Private input-checking helpers shared by the modules of scaleup_analysis.

One piece of code per idea: the message fragments that name the offending rows of a table
(:func:`rows_text`, ``"3 row(s) (index 0, 4, 7)"``) or the first few values (:func:`first_values`),
each value cut to a readable length (:func:`short_repr`: a 2 MB cell is never echoed in full),
the check that a table is a DataFrame holding the columns an analysis needs
(:func:`require_columns`), the "these rows of this column are wrong" error (:func:`fail_rows`), the
one check of a numeric column (:func:`numeric_column`), of its magnitude (:func:`check_magnitude`) and of
its spread (:func:`check_spread`), the one check of a confidence level
(:func:`check_level`), the argument checks of the two mixed-model fitters
(:func:`check_mixed_args`) and the check, at the boundary of every public function that takes
tables, that no table has a column name twice (:func:`checked_inputs`). Public functions keep
their own wording around these fragments (which table, which argument, how to fix it); see
``CONTRIBUTING.md`` for what a ``ScaleupDataError`` must say.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import sys
import warnings
from collections.abc import Mapping, Sequence

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


#: smallest spread (max - min) of a non-constant numeric column the models accept: squares of
#: differences (residuals, variances, squared rating differences) must stay normal doubles (below
#: ~1e-154 they lose digits, below ~1e-162 they vanish). The mixed models, whose Satterthwaite step
#: squares a variance again, ask for more (1e-50, the mirror of their bound 1e50 on magnitudes).
MIN_SPREAD = 1e-100


def check_spread(values, where: str, rows: str, *, min_spread: float = MIN_SPREAD, consequence: str = "") -> None:
    """Refuse a non-constant column whose values differ by less than ``min_spread``.

    ``where`` starts the message (function, table, column, argument), ``rows`` says which rows were
    used, ``consequence`` what would go wrong (", so the standard errors would be 0"). A constant column
    (spread 0) is left to the caller, whose message says why no variation is a problem there.

    Examples
    --------
    >>> import numpy as np
    >>> from scaleup_analysis._checks import check_spread
    >>> check_spread(np.array([1.0, 2.0]), "demo", "2 rows")  # passes silently
    >>> try:
    ...     check_spread(np.array([1e-300, 2e-300]), "demo: column 'y'", "the 2 rows used")
    ... except ValueError as e:
    ...     print(e)
    demo: column 'y': the values differ by at most 1e-300 across the 2 rows used (values 1e-300, 2e-300); squares of differences this small underflow in double precision. Check the units of the column, or rescale it (e.g. multiply it by a power of 10).
    """
    values = np.asarray(values, dtype=float)
    spread = float(np.ptp(values)) if values.size else 0.0
    if 0 < spread < min_spread:
        raise ScaleupDataError(
            f"{where}: the values differ by at most {spread:.3g} across {rows} (values {first_values(values)}); "
            f"squares of differences this small underflow in double precision{consequence}. Check the units of "
            "the column, or rescale it (e.g. multiply it by a power of 10)."
        )


def check_matrix_values(arr, names, index, where: str, *, max_abs: float,
                        fix: str = "Correct or drop these rows, or rescale the column (e.g. divide it by a power of "
                                   "10).") -> None:
    """Refuse a model matrix (rows x named columns) with infinite values or values beyond ``max_abs``.

    ``where`` starts the message (function, table, what the columns are); the message names the
    offending columns, the first offending rows (labels of ``index``) and their values.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from scaleup_analysis._checks import check_matrix_values
    >>> try:
    ...     check_matrix_values(np.array([[1.0], [np.inf]]), ["x"], pd.RangeIndex(2), "demo: table 'data', covariate(s)",
    ...                         max_abs=1e100)
    ... except ValueError as e:
    ...     print(e)
    demo: table 'data', covariate(s) ('x'): 1 row(s) (first: 1) are infinite (values inf). Correct or drop these rows, or rescale the column (e.g. divide it by a power of 10).
    """
    arr = np.asarray(arr, dtype=float)
    for problem, bad in (("are infinite", ~np.isfinite(arr)), (f"exceed +/-{max_abs:g}", np.abs(arr) > max_abs)):
        with np.errstate(invalid="ignore"):
            rows = bad.any(axis=1)
        if rows.any():
            cols = [c for c, b in zip(names, bad.any(axis=0)) if b]
            raise ScaleupDataError(
                f"{where} ({', '.join(map(repr, cols))}): {rows_text(index, rows, label='first:')} {problem} (values "
                f"{first_values(arr[rows][:, bad.any(axis=0)].ravel())}). {fix}"
            )


def check_magnitude(values, index, where: str, *, max_abs: float,
                    consequence: str = "their squares would overflow in double precision",
                    fix: str = "Check these rows, or rescale the column (e.g. divide it by a power of 10).") -> None:
    """Refuse values beyond +/-``max_abs`` (missing values pass), naming the rows of ``index``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from scaleup_analysis._checks import check_magnitude
    >>> try:
    ...     check_magnitude(np.array([1.0, 1e300]), pd.RangeIndex(2), "demo: column 'y'", max_abs=1e100)
    ... except ValueError as e:
    ...     print(e)
    demo: column 'y': 1 row(s) (first: 1) exceed +/-1e+100 (values 1e+300); their squares would overflow in double precision. Check these rows, or rescale the column (e.g. divide it by a power of 10).
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        big = np.abs(values) > max_abs
    if big.any():
        raise ScaleupDataError(
            f"{where}: {rows_text(index, big, label='first:')} exceed +/-{max_abs:g} (values "
            f"{first_values(values[big])}); {consequence}. {fix}"
        )


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


def check_mixed_args(fn: str, family, level, reml, families=("gaussian", "binomial")) -> None:
    """Check the ``family``, ``level`` and ``reml`` arguments of the mixed-model fitters.

    Shared by :func:`scaleup_analysis.mixed_model` (``families`` adds ``"poisson"``) and
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
    if family not in families:
        names = ", ".join(map(repr, families[:-1])) + f" or {families[-1]!r}"
        raise ScaleupDataError(f"{fn}: family must be {names}, got {family!r}.")
    check_level(level, fn)
    if not isinstance(reml, bool | np.bool_):
        raise ScaleupDataError(f"{fn}: reml must be True or False, got {reml!r}.")


def duplicated_columns_error(df: pd.DataFrame, label: str, fn: str) -> ScaleupDataError | None:
    """The error for a table whose column names are not unique (``None`` when they are).

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import duplicated_columns_error
    >>> df = pd.DataFrame([[1, 2, 3]], columns=["y", "x", "y"])
    >>> print(duplicated_columns_error(df, "table 'data'", "demo"))
    demo: table 'data' has duplicated column name(s) 'y' (columns 1 and 3); each name must occur once. Rename or drop the extra columns (e.g. data.loc[:, ~data.columns.duplicated()]).
    """
    dup = df.columns[df.columns.duplicated(keep=False)]
    if len(dup) == 0:
        return None
    names = list(dict.fromkeys(dup))
    where = "; ".join(
        f"columns {' and '.join(str(i + 1) for i in np.flatnonzero(df.columns == n)[:MAX_SHOWN])}"
        for n in names[:MAX_SHOWN]
    )
    return ScaleupDataError(
        f"{fn}: {label} has duplicated column name(s) {first_values(names)} ({where}); each name must occur "
        "once. Rename or drop the extra columns (e.g. data.loc[:, ~data.columns.duplicated()])."
    )


def value_kind(v) -> str:
    """``"text"``, ``"number"`` (any real number, NumPy's included), ``"True/False"`` or the type name
    of a value."""
    if isinstance(v, (bool, np.bool_)):
        return "True/False"
    if isinstance(v, str):
        return "text"
    if isinstance(v, numbers.Number):
        return "number"
    return type(v).__name__


def mixed_kinds(s: pd.Series) -> tuple[pd.Series, np.ndarray] | None:
    """``(kinds, minority)`` when the non-missing values of an object column are of more than one
    kind (:func:`value_kind`: text and numbers, say), else ``None``. ``minority`` marks, in ``kinds``
    (indexed like ``s``), the values whose kind is not the most common one."""
    if s.dtype != object:
        return None
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty", "integer", "floating", "boolean"):
        return None
    kinds = s.dropna().map(value_kind)
    if kinds.nunique() < 2:
        return None
    return kinds, (kinds != kinds.value_counts().index[0]).to_numpy()


def mixed_types_error(df: pd.DataFrame, label: str, fn: str, arguments=None) -> ScaleupDataError | None:
    """The error for the first column of ``df`` that mixes value kinds (``None`` when none does).

    A column is refused when some values are numbers and others text that could be confused with them
    (``1`` beside ``'S0002'``, or ``3`` beside ``'3'``): as keys they would split one unit in two or
    fail to sort. Words among numbers (``'n/a'`` in a column of scores) are left to the function's
    own check of a numeric column, whose message names the argument and says how to fix it.

    ``arguments`` maps argument names to their values: when a column was named by an argument, the
    message says which (``column 'y' (argument 'value')``).

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import mixed_types_error
    >>> df = pd.DataFrame({"site_id": ["1", "2", 1], "y": [0.5, 0.7, 0.9]})
    >>> print(mixed_types_error(df, "table 'data'", "demo", {"site": "site_id"}))
    demo: table 'data', column 'site_id' (argument 'site') mixes value types (number, text): 1 row(s) (first: 2) hold a number where the others hold text (values 1). If the column holds numbers, correct or remove these values; if it holds identifiers or categories, store every value as text (e.g. data['site_id'].astype(str)): 1 and '1' would otherwise count as two different ones.
    """
    for col in df.columns:
        found = mixed_kinds(df[col]) if isinstance(df[col], pd.Series) else None
        if found is None:
            continue
        kinds, minority = found
        odd_values = df.loc[kinds.index[minority], col]
        if (kinds[minority] == "text").all() and pd.to_numeric(odd_values, errors="coerce").isna().all():
            continue  # words among numbers ('n/a'): the function's own check of a numeric column names them
        named = [a for a, v in (arguments or {}).items()
                 if (isinstance(v, str) and v == col) or (isinstance(v, (list, tuple)) and col in v)]
        arg = f" (argument {named[0]!r})" if named else ""
        said = {"number": "a number", "text": "text"}
        odd, usual = (said.get(k, k) for k in (kinds[minority].value_counts().index[0], kinds[~minority].iloc[0]))
        return ScaleupDataError(
            f"{fn}: {label}, column {col!r}{arg} mixes value types ({', '.join(sorted(kinds.unique()))}): "
            f"{rows_text(kinds, minority, label='first:')} hold {odd} where the others hold {usual} "
            f"(values {first_values(odd_values)}). If the column holds numbers, "
            "correct or remove these values; if it holds identifiers or categories, store every value as text "
            f"(e.g. data[{col!r}].astype(str)): 1 and '1' would otherwise count as two different ones."
        )
    return None


def _warning_at_caller(func, args, kwargs):
    """Call ``func``; the warnings it gives are shown at the caller's line (the user's notebook cell or
    script), not at a line of the package: each is recorded, then given again once the call returns,
    through the caller's warning filters."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    frame = sys._getframe(2)  # the caller of the public function
    registry = frame.f_globals.setdefault("__warningregistry__", {})
    for w in record:
        warnings.warn_explicit(w.message, w.category, frame.f_code.co_filename, frame.f_lineno,
                               module=frame.f_globals.get("__name__"), registry=registry)
    return result


def checked_inputs(func=None, *, mixed_types: bool = True, empty: bool = False):
    """Decorate a public function: an argument annotated as a path (``str | PathLike``) must be a
    text or a path, one annotated as a table (``pd.DataFrame``) a DataFrame; every table it is given (a DataFrame argument, or a DataFrame in a
    mapping of tables) must have unique column names and, unless ``mixed_types`` is False, no column
    mixing text with numbers (site ``1`` and site ``'1'`` would silently be two sites); unless
    ``empty`` is True, the table it analyses (its first argument, or the argument named ``data``)
    must have rows. Otherwise a :class:`ScaleupDataError` names the function, the table, the column
    and the rows before any work is done. ``write_table_atomic`` passes ``mixed_types=False`` (it
    writes what it is given); functions for which no rows is a meaningful input (no adaptations were
    made) pass ``empty=True``.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis._checks import checked_inputs
    >>> @checked_inputs
    ... def total(data, *, tables=None):
    ...     return len(data)
    >>> total(pd.DataFrame({"a": [1, 2]}))
    2
    >>> try:
    ...     total(pd.DataFrame({"a": [1]}), tables={"sites": pd.DataFrame([[1, 2]], columns=["id", "id"])})
    ... except ValueError as e:
    ...     print(e)  # doctest: +ELLIPSIS
    total: table 'sites' (argument 'tables') has duplicated column name(s) 'id' (columns 1 and 2); ...
    """
    if func is None:
        return functools.partial(checked_inputs, mixed_types=mixed_types, empty=empty)
    sig = inspect.signature(func)
    paths = [n for n, p in sig.parameters.items() if "PathLike" in str(p.annotation)]
    frames = [n for n, p in sig.parameters.items() if str(p.annotation).startswith(("pd.DataFrame", "DataFrame"))]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:  # a wrong call: the function's own error says so
            return func(*args, **kwargs)
        bound.apply_defaults()
        for name in paths:
            value = bound.arguments.get(name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ScaleupDataError(
                    f"{func.__name__}: argument {name!r} must be a folder or file path (a text such as "
                    f"'data/raw' or a pathlib.Path), got {type(value).__name__} {short_repr(value)}."
                )
        for name in frames:
            value = bound.arguments.get(name)
            if value is not None and not isinstance(value, pd.DataFrame):
                raise ScaleupDataError(
                    f"{func.__name__}: argument {name!r} must be a pandas DataFrame (a table, e.g. from "
                    f"sa.load_table), got {type(value).__name__}."
                )
        if not empty:
            for name in dict.fromkeys([next(iter(sig.parameters)), "data"]):
                value = bound.arguments.get(name)
                if isinstance(value, pd.DataFrame) and len(value) == 0:
                    raise ScaleupDataError(
                        f"{func.__name__}: table {name!r} has no rows (only its column names); there is nothing to "
                        "analyse. Check the file or the filter that produced it."
                    )
        for name, value in bound.arguments.items():
            tables = [(f"table {name!r}", value)] if isinstance(value, pd.DataFrame) else (
                [(f"table {k!r} (argument {name!r})", v) for k, v in value.items() if isinstance(v, pd.DataFrame)]
                if isinstance(value, Mapping) else [])
            for label, table in tables:
                error = duplicated_columns_error(table, label, func.__name__)
                if error is None and mixed_types:
                    error = mixed_types_error(table, label, func.__name__, bound.arguments)
                if error is not None:
                    raise error
        return _warning_at_caller(func, args, kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------------
# the cost of resampling (bootstrap draws, permutations, simulation replicates)
# ----------------------------------------------------------------------------------------------
#: a resampling run is refused when it is projected to take longer than this, or to hold more memory
MAX_DRAW_SECONDS = 600.0
MAX_DRAW_BYTES = 2e9


def duration_text(seconds: float) -> str:
    """A duration in words: ``"about 3 minutes"``.

    >>> from scaleup_analysis._checks import duration_text
    >>> duration_text(90_000)
    'about 25 hours'
    """
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * size:
            return f"about {seconds / size:,.0f} {unit}"
    return f"about {seconds:,.0f} seconds"


def bytes_text(n: float) -> str:
    """A memory size in words: ``"about 93 GB"``.

    >>> from scaleup_analysis._checks import bytes_text
    >>> bytes_text(1.8e11)
    'about 180 GB'
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"about {n / size:.3g} {unit}"
    return f"{n:,.0f} bytes"


def check_draw_count(fn: str, arg: str, n, *, minimum: int = 0) -> int:
    """``n`` as an int, or a :class:`ScaleupDataError` unless it is a whole number >= ``minimum``."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ScaleupDataError(f"{fn}: argument {arg!r} must be an integer >= {minimum}, got {n!r}.")
    return int(n)


def check_draw_memory(fn: str, arg: str, n: int, bytes_per_draw: float, advice: str) -> None:
    """Refuse ``n`` draws holding ``bytes_per_draw`` each when they exceed :data:`MAX_DRAW_BYTES`.

    >>> from scaleup_analysis._checks import check_draw_memory
    >>> try:
    ...     check_draw_memory("demo", "n_boot", 10**9, 24 * 8, "Use n_boot=999.")
    ... except ValueError as e:
    ...     print(e)
    demo: n_boot=1,000,000,000 draws would hold about 192 GB in memory (limit about 2 GB). Use n_boot=999.
    """
    need = float(n) * bytes_per_draw
    if need > MAX_DRAW_BYTES:
        raise ScaleupDataError(
            f"{fn}: {arg}={n:,} draws would hold {bytes_text(need)} in memory (limit {bytes_text(MAX_DRAW_BYTES)}). "
            f"{advice}"
        )


class DrawClock:
    """Times the first draws of a resampling loop and refuses, with the projection, a run that would
    take longer than :data:`MAX_DRAW_SECONDS`. Call :meth:`tick` after each draw (the draws timed are
    the run's own: nothing is wasted when the run goes on).

    >>> from scaleup_analysis._checks import DrawClock
    >>> clock = DrawClock("demo", "n_perm", 10**12, "Use n_perm=1000.")
    >>> import time
    >>> try:
    ...     for i in range(1, 100):
    ...         time.sleep(0.003)
    ...         clock.tick(i)
    ... except ValueError as e:
    ...     print(str(e)[:48])
    demo: n_perm=1,000,000,000,000 draws would take
    """

    def __init__(self, fn: str, arg: str, n: int, advice: str):
        import time

        self._time = time.perf_counter
        self.fn, self.arg, self.n, self.advice = fn, arg, int(n), advice
        self.start = self._time()
        self.checked = False

    def tick(self, done: int) -> None:
        if self.checked or done <= 0:
            return
        elapsed = self._time() - self.start
        if done < 20 and elapsed < 0.05:
            return
        self.checked = True
        projected = elapsed / done * self.n
        if projected > MAX_DRAW_SECONDS:
            what = f"{self.n:,} {self.arg}" if " " in self.arg else f"{self.arg}={self.n:,} draws"
            raise ScaleupDataError(
                f"{self.fn}: {what} would take {duration_text(projected)} (timed on the first "
                f"{done}; limit {duration_text(MAX_DRAW_SECONDS)}). {self.advice}"
            )
