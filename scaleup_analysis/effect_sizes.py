"""Study- or site-level effect sizes and their sampling variances (metafor's ``escalc``).

:func:`effect_sizes` turns per-study (or per-site) summary data into an effect size ``yi`` and its
sampling variance ``vi``, ready for :func:`scaleup_analysis.meta_analysis`. The formulas, the
zero-cell corrections (``add``, ``to``, ``drop00``) and the handling of missing or undefined values
follow ``metafor::escalc()`` (Viechtbauer, 2010) exactly; the test suite checks every value against
metafor to 1e-10.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import gammaln

from .errors import ScaleupDataError, ScaleupWarning
from ._checks import checked_inputs, numeric_column
from ._checks import rows_text as _rows_text

__all__ = ["effect_sizes"]

_TWO_BY_TWO = ("OR", "RR", "RD")
_CONTINUOUS = ("SMD", "MD")
_MEASURES = _TWO_BY_TWO + _CONTINUOUS
_VTYPES = {
    "OR": ("LS",),
    "RR": ("LS",),
    "RD": ("LS", "UB", "AV"),
    "SMD": ("LS", "UB", "LS2", "AV"),
    "MD": ("LS", "UB", "HO"),
}
_TO = ("only0", "all", "if0all", "none")


def _column(df: pd.DataFrame, arg: str, name: str | None, measure: str) -> np.ndarray:
    """Return column ``name`` (passed as argument ``arg``) as a float array with NaN for missing."""
    if not isinstance(name, str):
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): argument {arg!r} must name a column of data, "
            f"got {name!r}. Pass the column name as a string, e.g. {arg}='{arg}'."
        )
    if name not in df.columns:
        cols = ", ".join(map(repr, list(df.columns)[:12]))
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): column {name!r} (argument {arg!r}) is not in data. "
            f"Available columns: {cols}. Pass the right column name as {arg}=..."
        )
    col = df[name]
    if pd.api.types.is_bool_dtype(col) or not (
        pd.api.types.is_numeric_dtype(col) or col.dtype == object
    ):
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): column {name!r} (argument {arg!r}) must be numeric, "
            f"got dtype {col.dtype}. Convert it with pandas.to_numeric()."
        )
    # missing values are allowed: they give a missing yi/vi
    return numeric_column(df, name, f"effect_sizes(measure={measure!r}): table 'data'", arg=arg,
                          missing=True)


def _check(df: pd.DataFrame, mask: np.ndarray, what: str, how: str, measure: str) -> None:
    if mask.any():
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): {what} in {_rows_text(df.index, mask)}. {how}"
        )


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean ignoring missing values (metafor's ``.wmean(x, w, na.rm = TRUE)``)."""
    ok = ~(np.isnan(x) | np.isnan(w))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok]))


def _cmi(mi: np.ndarray) -> np.ndarray:
    """Exact small-sample correction c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)); NaN for m <= 1."""
    out = np.full_like(mi, np.nan, dtype=float)
    ok = mi > 1  # False for NaN
    m = mi[ok]
    out[ok] = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return out


def _two_by_two(df, measure, ai, bi, ci, di, n1i, n2i, add, to, drop00, vtype):
    for arg, cell, n in (("bi", bi, n1i), ("di", di, n2i)):
        if cell is None and n is None:
            grp = "1" if arg == "bi" else "2"
            raise ScaleupDataError(
                f"effect_sizes(measure={measure!r}): give either {arg!r} (the second cell of group "
                f"{grp}) or 'n{grp}i' (the size of group {grp}); both are missing."
            )
    for arg, name in (("ai", ai), ("ci", ci)):
        if name is None:
            raise ScaleupDataError(
                f"effect_sizes(measure={measure!r}): argument {arg!r} (a column of event counts) is "
                "required for this measure."
            )
    a = _column(df, "ai", ai, measure)
    c = _column(df, "ci", ci, measure)
    b = _column(df, "bi", bi, measure) if bi is not None else None
    d = _column(df, "di", di, measure) if di is not None else None
    n1 = _column(df, "n1i", n1i, measure) if n1i is not None else None
    n2 = _column(df, "n2i", n2i, measure) if n2i is not None else None

    # n1i must equal ai + bi where both are given; missing bi are filled with n1i - ai (replmiss)
    for cell_arg, cell, cell_name, ev, ev_name, n, n_arg, n_name in (
        ("bi", b, bi, a, ai, n1, "n1i", n1i),
        ("di", d, di, c, ci, n2, "n2i", n2i),
    ):
        if cell is not None and n is not None:
            inc = (n != ev + cell) & ~(np.isnan(n) | np.isnan(ev) | np.isnan(cell))
            _check(
                df,
                inc,
                f"{n_name!r} ({n_arg}) differs from {ev_name!r} + {cell_name!r}",
                f"Give only one of {cell_arg!r} and {n_arg!r}, or correct the counts.",
                measure,
            )
    if b is None:
        b = n1 - a
    elif n1 is not None:
        b = np.where(np.isnan(b), n1 - a, b)
    if d is None:
        d = n2 - c
    elif n2 is not None:
        d = np.where(np.isnan(d), n2 - c, d)

    names = {"ai": ai, "bi": bi if bi is not None else f"{n1i} - {ai}",
             "ci": ci, "di": di if di is not None else f"{n2i} - {ci}"}
    for arg, x in (("ai", a), ("bi", b), ("ci", c), ("di", d)):
        neg = x < 0  # NaN compares False
        if arg in ("bi", "di") and neg.any() and (bi if arg == "bi" else di) is None:
            ev, n_arg = ("ai", "n1i") if arg == "bi" else ("ci", "n2i")
            _check(df, neg, f"event counts {names[ev]!r} ({ev}) exceed the group size "
                   f"{(n1i if arg == 'bi' else n2i)!r} ({n_arg})",
                   f"Each {ev} must be between 0 and {n_arg}.", measure)
        _check(df, neg, f"column {names[arg]!r} ({arg}) has negative counts",
               "Counts must be >= 0; fix or remove these rows.", measure)

    missing = np.isnan(a) | np.isnan(b) | np.isnan(c) | np.isnan(d)
    if drop00:
        id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        a, b, c, d = (np.where(id00, np.nan, x) for x in (a, b, c, d))

    if to == "all":
        a, b, c, d = a + add, b + add, c + add, d + add
    elif to in ("only0", "if0all"):
        id0 = (a == 0) | (b == 0) | (c == 0) | (d == 0)  # NaN -> False
        if to == "if0all":
            id0 = np.full_like(id0, id0.any())
        inc = np.where(id0, add, 0.0)
        a, b, c, d = a + inc, b + inc, c + inc, d + inc

    with np.errstate(divide="ignore", invalid="ignore"):
        n1 = a + b
        n2 = c + d
        p1 = a / n1
        p2 = c / n2
        if measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        elif measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        else:  # RD
            yi = p1 - p2
            if vtype == "UB":
                vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
            elif vtype == "LS":
                vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
            else:  # AV: sample-size-weighted mean proportions over all studies
                q1 = _wmean(p1, n1)
                q2 = _wmean(p2, n2)
                vi = q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2
    return yi, vi, missing


def _continuous(df, measure, m1i, sd1i, n1i, m2i, sd2i, n2i, vtype):
    given = {"m1i": m1i, "sd1i": sd1i, "n1i": n1i, "m2i": m2i, "sd2i": sd2i, "n2i": n2i}
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): arguments {missing} are required (columns holding "
            "the mean, standard deviation and size of each group)."
        )
    x = {k: _column(df, k, v, measure) for k, v in given.items()}
    for arg in ("sd1i", "sd2i"):
        _check(df, x[arg] < 0, f"column {given[arg]!r} ({arg}) has negative standard deviations",
               "Standard deviations must be >= 0.", measure)
    for arg in ("n1i", "n2i"):
        _check(df, x[arg] <= 0, f"column {given[arg]!r} ({arg}) has group sizes <= 0",
               "Group sizes must be > 0; remove empty groups.", measure)
    m1, s1, n1, m2, s2, n2 = (x[k] for k in given)
    missing = np.any(np.isnan(np.vstack(list(x.values()))), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ni = n1 + n2
        if measure == "MD":
            yi = m1 - m2
            if vtype in ("LS", "UB"):
                vi = s1**2 / n1 + s2**2 / n2
            else:  # HO: pooled (homoscedastic) variance
                mi = ni - 2
                sdp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi
                vi = sdp2 * (1 / n1 + 1 / n2)
            return yi, vi, missing
        mi = ni - 2
        sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
        dd = (m1 - m2) / sdp
        cmi = _cmi(mi)
        yi = cmi * dd
        if vtype == "UB":
            vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * cmi**2)) * yi**2
        elif vtype == "LS":
            vi = 1 / n1 + 1 / n2 + yi**2 / (2 * ni)
        elif vtype == "LS2":
            vi = cmi**2 * (1 / n1 + 1 / n2 + dd**2 / (2 * ni))
        else:  # AV: sample-size-weighted mean of yi over all studies
            vi = 1 / n1 + 1 / n2 + _wmean(yi, ni) ** 2 / (2 * ni)
    return yi, vi, missing


def _check_options(data, measure, to, vtype, add, drop00, yi, vi, inputs: dict) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(
            f"effect_sizes: data must be a pandas DataFrame, got {type(data).__name__}."
        )
    if measure not in _MEASURES:
        raise ScaleupDataError(
            f"effect_sizes: unknown measure {measure!r}; choose one of {list(_MEASURES)}."
        )
    if to not in _TO:
        raise ScaleupDataError(f"effect_sizes: unknown to={to!r}; choose one of {list(_TO)}.")
    if vtype not in _VTYPES[measure]:
        raise ScaleupDataError(
            f"effect_sizes: vtype={vtype!r} is not available for measure {measure!r}; "
            f"choose one of {list(_VTYPES[measure])}."
        )
    if isinstance(add, bool) or not isinstance(add, (int, float, np.integer, np.floating)) or not np.isfinite(add):
        raise ScaleupDataError(f"effect_sizes: add must be a finite number, got {add!r}.")
    if not isinstance(drop00, (bool, np.bool_)):
        raise ScaleupDataError(f"effect_sizes: drop00 must be True or False, got {drop00!r}.")
    if not (isinstance(yi, str) and isinstance(vi, str)) or yi == vi:
        raise ScaleupDataError(
            f"effect_sizes: yi and vi must be two different column names, got {yi!r} and {vi!r}."
        )
    for out_name in (yi, vi):
        clash = [k for k, v in inputs.items() if v == out_name]
        if clash:
            raise ScaleupDataError(
                f"effect_sizes: output column {out_name!r} would overwrite the input column given "
                f"as {clash[0]!r}; choose other names with yi=... / vi=..."
            )


def _undefined_to_missing(y, v, missing, index, measure) -> tuple[np.ndarray, np.ndarray]:
    """metafor: +-Inf or NaN (undefined, e.g. 0/0) in yi or vi -> both missing (infinite values with a
    warning); a missing input (NA) only makes missing what it enters (e.g. a missing mean leaves the
    MD variance defined); a negative variance is missing."""
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    is_inf = np.isinf(y) | np.isinf(v)
    if is_inf.any():
        warnings.warn(
            f"effect_sizes(measure={measure!r}): yi and/or vi are infinite in "
            f"{_rows_text(index, is_inf)}; set to missing (as metafor::escalc). Consider "
            "to='only0' with add > 0 for zero cells.",
            ScaleupWarning,
            stacklevel=4,  # this helper < effect_sizes < checked_inputs wrapper < caller
        )
    undefined = (np.isnan(y) | np.isnan(v)) & ~missing & ~is_inf
    if undefined.any():
        warnings.warn(
            f"effect_sizes(measure={measure!r}): yi and/or vi are undefined (0/0, e.g. an empty group, or a "
            f"group size too small for the variance or the small-sample correction) in "
            f"{_rows_text(index, undefined)}; set to missing (NaN, as metafor::escalc). meta_analysis leaves "
            "these rows out.",
            ScaleupWarning,
            stacklevel=4,
        )
    bad = is_inf | undefined
    return np.where(bad, np.nan, y), np.where(bad | (v < 0), np.nan, v)


def _warn_missing_inputs(data, inputs: dict, y, v, missing, measure) -> None:
    """Warn when a missing input value leaves ``yi`` and/or ``vi`` missing (metafor keeps these rows
    with NA and says nothing; a NaN in the result must say why)."""
    lost = missing & (np.isnan(y) | np.isnan(v))
    if not lost.any():
        return
    parts = [f"column {name!r} (argument {arg!r}) in {_rows_text(data.index, data[name].isna().to_numpy() & lost)}"
             for arg, name in inputs.items() if (data[name].isna().to_numpy() & lost).any()]
    both = bool((np.isnan(y[lost]) & np.isnan(v[lost])).all())
    what = "yi and vi are" if both else "yi and/or vi are"
    warnings.warn(
        f"effect_sizes(measure={measure!r}): table 'data' has missing values in {'; '.join(parts)}, so {what} "
        f"missing (NaN) in {_rows_text(data.index, lost)}, as metafor::escalc gives NA; the rows are kept. Fill "
        "in the values, or drop the rows (meta_analysis leaves rows with a missing yi or vi out).",
        ScaleupWarning,
        stacklevel=4,  # this helper < effect_sizes < checked_inputs wrapper < caller
    )


@checked_inputs
def effect_sizes(
    data: pd.DataFrame,
    measure: str,
    *,
    ai: str | None = None,
    bi: str | None = None,
    ci: str | None = None,
    di: str | None = None,
    n1i: str | None = None,
    n2i: str | None = None,
    m1i: str | None = None,
    sd1i: str | None = None,
    m2i: str | None = None,
    sd2i: str | None = None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    yi: str = "yi",
    vi: str = "vi",
) -> pd.DataFrame:
    """Compute effect sizes and sampling variances, as ``metafor::escalc()``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study (or site, or site x period), wide in the two groups.
    measure : {"OR", "RR", "RD", "SMD", "MD"}
        ``"OR"`` log odds ratio, ``"RR"`` log risk ratio, ``"RD"`` risk difference (from 2x2
        tables); ``"SMD"`` standardized mean difference with the exact small-sample correction
        (Hedges' g), ``"MD"`` raw mean difference (from means, SDs and group sizes).
    ai, bi, ci, di : str, optional
        Columns of the 2x2 table (``OR``, ``RR``, ``RD``): ``ai``/``bi`` are the events and
        non-events of group 1 (e.g. treatment), ``ci``/``di`` those of group 2 (control).
    n1i, n2i : str, optional
        Group sizes. For 2x2 measures they may replace ``bi``/``di`` (``bi = n1i - ai``), or fill
        the missing values of ``bi``/``di``; where both are given, ``n1i`` must equal ``ai + bi``.
        Required for ``SMD`` and ``MD``.
    m1i, sd1i, m2i, sd2i : str, optional
        Columns of group means and standard deviations (``SMD``, ``MD``).
    add : float, default 0.5
        Value added to the cells of 2x2 tables according to ``to`` (ignored for ``SMD``/``MD``).
    to : {"only0", "all", "if0all", "none"}, default "only0"
        Which tables get ``add``: only those with at least one zero cell, all of them, all of them
        if any table has a zero cell, or none.
    drop00 : bool, default False
        If True, tables with no events in both groups (``ai = ci = 0``) or only events in both
        groups (``bi = di = 0``) get a missing ``yi``/``vi``.
    vtype : str, default "LS"
        Sampling-variance estimator. ``"LS"`` (large-sample) for every measure; ``RD`` also
        ``"UB"`` (unbiased) and ``"AV"`` (from the sample-size-weighted mean proportions);
        ``SMD`` also ``"UB"``, ``"LS2"`` (Borenstein et al., 2009) and ``"AV"``; ``MD`` also
        ``"UB"`` (same as ``"LS"``) and ``"HO"`` (pooled variance).
    yi, vi : str, default "yi", "vi"
        Names of the output columns; existing columns of these names are replaced.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` (same index and row order) with float columns ``yi`` and ``vi`` added.

    Raises
    ------
    ScaleupDataError
        Unknown ``measure``/``to``/``vtype``; a missing or non-numeric column; negative counts,
        counts larger than the group size, ``n1i != ai + bi``, negative SDs or group sizes <= 0
        (the message names the column and the rows).

    Warns
    -----
    ScaleupWarning
        When some ``yi``/``vi`` are missing: a missing input value (the message names the column and
        the rows), a value undefined (0/0) or infinite (set to missing, as metafor does). The rows
        are kept, with NaN, as ``metafor::escalc`` keeps them with NA.

    Notes
    -----
    With :math:`p_1 = a/(a+b)` and :math:`p_2 = c/(c+d)` (after adding ``add`` where ``to``
    says so):

    * ``OR``: :math:`y = \\log\\frac{p_1/(1-p_1)}{p_2/(1-p_2)}`, :math:`v = 1/a + 1/b + 1/c + 1/d`;
    * ``RR``: :math:`y = \\log(p_1/p_2)`, :math:`v = 1/a - 1/n_1 + 1/c - 1/n_2`;
    * ``RD``: :math:`y = p_1 - p_2`, :math:`v = p_1(1-p_1)/n_1 + p_2(1-p_2)/n_2` (``"UB"``:
      divide by :math:`n_j - 1`).

    For means, with :math:`m = n_1 + n_2 - 2`, the pooled SD :math:`s_p` and
    :math:`d = (\\bar x_1 - \\bar x_2)/s_p`, the SMD is :math:`g = c(m)\\,d` with the exact
    correction :math:`c(m) = \\Gamma(m/2) / (\\sqrt{m/2}\\,\\Gamma((m-1)/2))` (Hedges, 1981) and
    :math:`v = 1/n_1 + 1/n_2 + g^2/(2(n_1+n_2))` (``"LS"``),
    :math:`1/n_1 + 1/n_2 + (1 - (m-2)/(m\\,c(m)^2))\\,g^2` (``"UB"``),
    :math:`c(m)^2 (1/n_1 + 1/n_2 + d^2/(2(n_1+n_2)))` (``"LS2"``). ``MD``:
    :math:`y = \\bar x_1 - \\bar x_2`, :math:`v = s_1^2/n_1 + s_2^2/n_2` (``"HO"``:
    :math:`s_p^2 (1/n_1 + 1/n_2)`).

    Missing values are handled as in metafor: a missing input makes missing, in that row, what
    is computed from it (no error; for ``MD`` a missing mean leaves ``vi`` defined); values that
    are undefined (0/0, e.g. an empty group with ``to="none"``, or :math:`c(m)` for
    :math:`m \\le 1`) or infinite (e.g. the log odds ratio of a table with a zero cell and
    ``to="none"``) become missing too, and a negative ``vi`` becomes missing. The ``"AV"``
    variances average over all rows, so one infinite ``yi`` (two SDs of zero) makes every ``vi``
    missing, exactly as in metafor.

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
    Statistical Software*, 36(3), 1-48. https://doi.org/10.18637/jss.v036.i03

    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. *Journal of Educational Statistics*, 6(2), 107-128.

    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). *Introduction to
    meta-analysis*. Wiley.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> trials = pd.DataFrame({"tpos": [4, 6, 0], "tneg": [119, 300, 40],
    ...                        "cpos": [11, 29, 3], "cneg": [128, 274, 37]})
    >>> es = sa.effect_sizes(trials, "OR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    >>> es[["yi", "vi"]].round(4)
           yi      vi
    0 -0.9387  0.3571
    1 -1.6662  0.2081
    2 -2.0229  2.3371
    >>> groups = pd.DataFrame({"m1": [55.0], "s1": [47.0], "n1": [155],
    ...                        "m2": [75.0], "s2": [64.0], "n2": [156]})
    >>> sa.effect_sizes(groups, "SMD", m1i="m1", sd1i="s1", n1i="n1",
    ...                 m2i="m2", sd2i="s2", n2i="n2")[["yi", "vi"]].round(4)
           yi      vi
    0 -0.3552  0.0131
    """
    inputs = {k: v for k, v in dict(ai=ai, bi=bi, ci=ci, di=di, n1i=n1i, n2i=n2i, m1i=m1i,
                                      sd1i=sd1i, m2i=m2i, sd2i=sd2i).items() if v is not None}
    _check_options(data, measure, to, vtype, add, drop00, yi, vi, inputs)
    # values beyond double precision (e.g. an SD of 1e300) give infinite yi/vi: set to missing with
    # a warning by _undefined_to_missing, as metafor does, not a raw numpy overflow warning
    with np.errstate(over="ignore"):
        if measure in _TWO_BY_TWO:
            y, v, missing = _two_by_two(data, measure, ai, bi, ci, di, n1i, n2i, float(add), to, bool(drop00),
                                        vtype)
        else:
            y, v, missing = _continuous(data, measure, m1i, sd1i, n1i, m2i, sd2i, n2i, vtype)
    y, v = _undefined_to_missing(y, v, missing, data.index, measure)
    _warn_missing_inputs(data, inputs, y, v, missing, measure)
    out = data.copy()
    out[yi] = y
    out[vi] = v
    return out

