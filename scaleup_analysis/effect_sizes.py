"""Study- or site-level effect sizes and their sampling variances (metafor's ``escalc``).

:func:`effect_sizes` turns per-study (or per-site) summary data into an effect size ``yi`` and its
sampling variance ``vi``, ready for :func:`scaleup_analysis.meta_analysis`: odds and risk ratios,
risk differences, (standardized) mean differences and ratios of means, single proportions, incidence
rates and their ratios and differences, correlations, and the (standardized) mean change and ratio
of means of paired designs (pre-post measurements, matched pairs). The formulas, the
zero-cell corrections (``add``, ``to``, ``drop00``) and the handling of missing or undefined values
follow ``metafor::escalc()`` (Viechtbauer, 2010) exactly; the test suite checks every value against
metafor to 1e-10 (the bias-corrected correlation ``UCOR`` also against an independent power series,
where metafor's hypergeometric function is inaccurate).
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
_CONTINUOUS = ("SMD", "MD", "ROM")
_PROPORTIONS = ("PR", "PLN", "PLO", "PAS", "PFT")
_RATES = ("IRR", "IRD")
_RATE1 = ("IR", "IRLN")
_CORRELATIONS = ("COR", "UCOR", "ZCOR")
_CHANGE = ("MC", "SMCC", "SMCR", "SMCRH", "ROMC")  # paired designs: two measurements of the same units
_MEASURES = _TWO_BY_TWO + _CONTINUOUS + _PROPORTIONS + _RATES + _RATE1 + _CORRELATIONS + _CHANGE
_VTYPES = {
    "OR": ("LS",),
    "RR": ("LS",),
    "RD": ("LS", "UB", "AV"),
    "SMD": ("LS", "UB", "LS2", "AV"),
    "MD": ("LS", "UB", "HO"),
    "ROM": ("LS", "HO", "AV", "AVHO"),
    "PR": ("LS", "UB", "AV"),
    "PLN": ("LS", "AV"),
    "PLO": ("LS", "AV"),
    "PAS": ("LS",),
    "PFT": ("LS",),
    "IRR": ("LS",),
    "IRD": ("LS",),
    "IR": ("LS",),
    "IRLN": ("LS",),
    "COR": ("LS", "AV"),
    "UCOR": ("LS", "UB", "AV"),
    "ZCOR": ("LS",),
    "MC": ("LS",),
    "SMCC": ("LS", "LS2"),
    "SMCR": ("LS", "LS2"),
    "SMCRH": ("LS",),
    "ROMC": ("LS",),
}
# the arguments (columns) each family of measures reads
_ARGS = {
    **dict.fromkeys(_TWO_BY_TWO, ("ai", "bi", "ci", "di", "n1i", "n2i")),
    **dict.fromkeys(_CONTINUOUS, ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")),
    **dict.fromkeys(_PROPORTIONS, ("xi", "mi", "ni")),
    **dict.fromkeys(_RATES, ("x1i", "t1i", "x2i", "t2i")),
    **dict.fromkeys(_RATE1, ("xi", "ti")),
    **dict.fromkeys(_CORRELATIONS, ("ri", "ni")),
    **dict.fromkeys(_CHANGE, ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri")),
    "SMCR": ("m1i", "m2i", "sd1i", "ni", "ri"),  # standardized by sd1i alone: sd2i is not read (as metafor)
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


# Nodes of the tanh-sinh (double exponential) rule on [0, 1] used by _hyp2f1_aac: t = 1/(1 + exp(-v)),
# v = pi sinh(u), u = -4.5, -4.5 + h, ..., 4.5 (t from 1e-61 to 1 - 1e-61), kept in logs so that t and
# 1 - t near the ends keep full relative precision.
_TS_U = np.arange(-4.5, 4.5 + 1 / 512, 1 / 256)
_TS_V = np.pi * np.sinh(_TS_U)
_TS_LOGT = -np.logaddexp(0.0, -_TS_V)
_TS_LOG1MT = -np.logaddexp(0.0, _TS_V)
_TS_LOGJAC = np.log(np.cosh(_TS_U))


def _hyp2f1_aac(a: float, c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gauss hypergeometric function F(a, a; c; x) for 0 <= x <= 1 and c > 2a; NaN elsewhere.

    metafor's ``.Fcalc`` (gsl's ``hyperg_2F1``) is NA for c <= 2a. Computed from Euler's integral
    F = int_0^1 t^(a-1) (1-t)^(c-a-1) (1 - x t)^(-a) dt / B(a, c - a) by the tanh-sinh rule, the
    normalising beta function being the same rule applied with x = 0 (so that large c loses no
    precision), and 1 - x t written (1 - t) + (1 - x) t. Agrees with the power series to 1e-15
    relative; neither scipy's ``hyp2f1`` (NaN for c > ~100, 1e-3 errors near x = 1) nor gsl's
    (1e-3 errors for x in (0.995, 1) when c - 2a is an integer) is accurate over the whole range.
    Accuracy degrades only for 0 < c - 2a < 0.1 with x near 1 (e.g. UCOR with 4 < ni < 4.2).
    """
    x = np.asarray(x, dtype=float)
    c = np.broadcast_to(np.asarray(c, dtype=float), x.shape)
    out = np.full(x.shape, np.nan)
    ok = np.flatnonzero((c > 2 * a) & (x >= 0) & (x <= 1))  # False for NaN
    omt = np.exp(_TS_LOG1MT)
    t = np.exp(_TS_LOGT)
    for start in range(0, ok.size, 2048):  # bounded memory: 2048 rows x 2305 nodes at a time
        idx = ok[start:start + 2048]
        cc = c[idx][:, None]
        d = (1 - x[idx])[:, None]
        base = a * _TS_LOGT + (cc - a) * _TS_LOG1MT + _TS_LOGJAC
        out[idx] = np.exp(base - a * np.log(omt + d * t)).sum(axis=1) / np.exp(base).sum(axis=1)
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
        if measure == "ROM":
            yi = np.log(m1 / m2)
            cv1, cv2 = s1 / m1, s2 / m2
            if vtype == "LS":
                vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
            elif vtype == "HO":
                vi = sdp**2 / (n1 * m1**2) + sdp**2 / (n2 * m2**2)
            elif vtype == "AV":  # sample-size-weighted mean coefficients of variation, per group
                vi = _wmean(cv1, n1) ** 2 / n1 + _wmean(cv2, n2) ** 2 / n2
            else:  # AVHO: one weighted mean coefficient of variation over both groups
                ok = ~(np.isnan(n1) | np.isnan(n2) | np.isnan(cv1) | np.isnan(cv2))
                cv = (np.sum(n1[ok] * cv1[ok]) + np.sum(n2[ok] * cv2[ok])) / np.sum((n1 + n2)[ok])
                vi = cv**2 * (1 / n1 + 1 / n2)
            return yi, vi, missing
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


def _required(measure: str, given: dict, what: str) -> None:
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): arguments {missing} are required ({what})."
        )


def _add_to_zeros(cols: list, zero: np.ndarray, add: float, to: str) -> list:
    """metafor's continuity correction: ``add`` to every count of the rows ``zero`` flags (only0),
    of all rows (all), of all rows if any row is flagged (if0all), or of none."""
    if to == "all":
        return [x + add for x in cols]
    if to in ("only0", "if0all"):
        if to == "if0all":
            zero = np.full_like(zero, zero.any())
        inc = np.where(zero, add, 0.0)
        return [x + inc for x in cols]
    return cols


def _proportion(df, measure, xi, mi, ni, add, to, vtype):
    if xi is None or (mi is None and ni is None):
        raise ScaleupDataError(
            f"effect_sizes(measure={measure!r}): give 'xi' (the events) and either 'ni' (the sample "
            "size) or 'mi' (the non-events)."
        )
    x = _column(df, "xi", xi, measure)
    m = _column(df, "mi", mi, measure) if mi is not None else None
    n = _column(df, "ni", ni, measure) if ni is not None else None
    if m is not None and n is not None:
        inc = (n != x + m) & ~(np.isnan(n) | np.isnan(x) | np.isnan(m))
        _check(df, inc, f"{ni!r} (ni) differs from {xi!r} + {mi!r}",
               "Give only one of 'mi' and 'ni', or correct the counts.", measure)
    if n is not None:
        _check(df, n <= 0, f"column {ni!r} (ni) has sample sizes <= 0",
               "Sample sizes must be > 0; remove empty samples.", measure)
    if m is None:
        m = n - x
    elif n is not None:
        m = np.where(np.isnan(m), n - x, m)
    if mi is None:
        _check(df, m < 0, f"event counts {xi!r} (xi) exceed the sample size {ni!r} (ni)",
               "Each xi must be between 0 and ni.", measure)
    _check(df, x < 0, f"column {xi!r} (xi) has negative counts", "Counts must be >= 0; fix or remove these rows.",
           measure)
    if mi is not None:
        _check(df, m < 0, f"column {mi!r} (mi) has negative counts",
               "Counts must be >= 0; fix or remove these rows.", measure)
    _check(df, x + m <= 0, f"the sample size {xi!r} + {mi!r} (xi + mi) is 0",
           "Sample sizes must be > 0; remove empty samples.", measure)
    missing = np.isnan(x) | np.isnan(m)
    x, m = _add_to_zeros([x, m], (x == 0) | (m == 0), add, to)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = x + m
        p = x / n
        if measure == "PR":
            yi = p
            if vtype == "UB":
                vi = p * (1 - p) / (n - 1)
            elif vtype == "LS":
                vi = p * (1 - p) / n
            else:  # AV: sample-size-weighted mean proportion over all rows
                q = _wmean(p, n)
                vi = q * (1 - q) / n
        elif measure == "PLN":
            yi = np.log(p)
            vi = 1 / x - 1 / n if vtype == "LS" else 1 / (_wmean(p, n) * n) - 1 / n
        elif measure == "PLO":
            yi = np.log(p / (1 - p))
            if vtype == "LS":
                vi = 1 / x + 1 / m
            else:
                q = _wmean(p, n)
                vi = 1 / (q * n) + 1 / ((1 - q) * n)
        elif measure == "PAS":
            yi = np.arcsin(np.sqrt(p))
            vi = 1 / (4 * n)
        else:  # PFT
            yi = 1 / 2 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
            vi = 1 / (4 * n + 2)
    return yi, vi, missing


def _rates(df, measure, x1i, t1i, x2i, t2i, add, to, drop00):
    given = {"x1i": x1i, "t1i": t1i, "x2i": x2i, "t2i": t2i} if measure in _RATES else {"xi": x1i, "ti": t1i}
    _required(measure, given, "columns holding the events and the person-time of each group")
    c = {k: _column(df, k, v, measure) for k, v in given.items()}
    for arg, col in c.items():
        if arg.startswith("x"):
            _check(df, col < 0, f"column {given[arg]!r} ({arg}) has negative counts",
                   "Counts must be >= 0; fix or remove these rows.", measure)
        else:
            _check(df, col <= 0, f"column {given[arg]!r} ({arg}) has person-times <= 0",
                   "Person-time must be > 0; remove rows without follow-up.", measure)
    missing = np.any(np.isnan(np.vstack(list(c.values()))), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in _RATE1:
            x, t = c["xi"], c["ti"]
            (x,) = _add_to_zeros([x], x == 0, add, to)
            ir = x / t
            if measure == "IR":
                return ir, ir / t, missing
            return np.log(ir), 1 / x, missing
        x1, t1, x2, t2 = c["x1i"], c["t1i"], c["x2i"], c["t2i"]
        if drop00:
            id00 = (x1 == 0) & (x2 == 0)
            x1, x2 = np.where(id00, np.nan, x1), np.where(id00, np.nan, x2)
        x1, x2 = _add_to_zeros([x1, x2], (x1 == 0) | (x2 == 0), add, to)
        ir1, ir2 = x1 / t1, x2 / t2
        if measure == "IRR":
            return np.log(ir1) - np.log(ir2), 1 / x1 + 1 / x2, missing
        return ir1 - ir2, ir1 / t1 + ir2 / t2, missing


def _correlation(df, measure, ri, ni, vtype):
    _required(measure, {"ri": ri, "ni": ni}, "columns holding the correlation and the sample size")
    r = _column(df, "ri", ri, measure)
    n = _column(df, "ni", ni, measure)
    _check(df, np.abs(r) > 1, f"column {ri!r} (ri) has correlations outside [-1, 1]",
           "Correlations must be between -1 and 1.", measure)
    _check(df, n <= 0, f"column {ni!r} (ni) has sample sizes <= 0",
           "Sample sizes must be > 0; remove empty samples.", measure)
    missing = np.isnan(r) | np.isnan(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in ("COR", "UCOR"):
            if measure == "COR":
                yi = r
            else:  # Olkin & Pratt (1958, eq. 2.3); NaN for ni <= 4 (metafor: NA)
                yi = r * _hyp2f1_aac(0.5, (n - 2) / 2, 1 - r**2)
            if vtype == "UB":  # Hedges (1989), exact form; UCOR only
                vi = yi**2 - (1 - (n - 3) / (n - 2) * (1 - r**2) * _hyp2f1_aac(1.0, n / 2, 1 - r**2))
            elif vtype == "LS":
                vi = (1 - yi**2) ** 2 / (n - 1)
            else:  # AV: sample-size-weighted mean (bias-corrected) correlation over all rows
                vi = (1 - _wmean(yi, n) ** 2) ** 2 / (n - 1)
        else:  # ZCOR
            yi = 1 / 2 * np.log((1 + r) / (1 - r))
            vi = 1 / (n - 3)
    return yi, vi, missing


def _change(df, measure, m1i, m2i, sd1i, sd2i, ni, ri, vtype):
    """Mean change and ratio of means of paired designs (metafor's MC, SMCC, SMCR, SMCRH, ROMC)."""
    given = {"m1i": m1i, "m2i": m2i, "sd1i": sd1i, "sd2i": sd2i, "ni": ni, "ri": ri}
    if measure == "SMCR":  # standardized by sd1i alone
        del given["sd2i"]
    _required(measure, given, "columns holding the means and standard deviations of the two measurements, "
              "the sample size and the correlation between the two measurements")
    x = {k: _column(df, k, v, measure) for k, v in given.items()}
    for arg in ("sd1i", "sd2i"):
        if arg in x:
            _check(df, x[arg] < 0, f"column {given[arg]!r} ({arg}) has negative standard deviations",
                   "Standard deviations must be >= 0.", measure)
    _check(df, np.abs(x["ri"]) > 1, f"column {ri!r} (ri) has correlations outside [-1, 1]",
           "The correlation between the two measurements must be between -1 and 1.", measure)
    _check(df, x["ni"] <= 0, f"column {ni!r} (ni) has sample sizes <= 0",
           "Sample sizes must be > 0; remove empty samples.", measure)
    missing = np.any(np.isnan(np.vstack(list(x.values()))), axis=0)
    m1, m2, s1, n, r = x["m1i"], x["m2i"], x["sd1i"], x["ni"], x["ri"]
    s2 = x.get("sd2i")
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "SMCR":  # raw-score standardization (Becker, 1988)
            cmi = _cmi(n - 1)
            di = (m1 - m2) / s1
            yi = cmi * di
            if vtype == "LS":
                vi = 2 * (1 - r) / n + yi**2 / (2 * n)
            else:  # LS2
                vi = cmi**2 * (2 * (1 - r) / n + di**2 / (2 * n))
            return yi, vi, missing
        vardi = s1**2 + s2**2 - 2 * r * s1 * s2  # variance of the change scores
        if measure == "MC":
            return m1 - m2, vardi / n, missing
        if measure == "SMCC":  # change-score standardization (Gibbons et al., 1993)
            cmi = _cmi(n - 1)
            di = (m1 - m2) / np.sqrt(vardi)
            yi = cmi * di
            if vtype == "LS":
                vi = 1 / n + yi**2 / (2 * n)
            else:  # LS2
                vi = cmi**2 * (1 / n + di**2 / (2 * n))
            return yi, vi, missing
        if measure == "SMCRH":  # raw-score standardization, heteroscedastic (Bonett, 2008)
            cmi = _cmi(n - 1)
            yi = cmi * (m1 - m2) / s1
            vi = cmi**2 * (vardi / (s1**2 * (n - 1)) + yi**2 / (2 * (n - 1)))
            return yi, vi, missing
        # ROMC (Lajeunesse, 2011)
        yi = np.log(m1 / m2)
        vi = s1**2 / (n * m1**2) + s2**2 / (n * m2**2) - 2 * r * s1 * s2 / (m1 * m2 * n)
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
        hint = (" (the unbiased variance of a correlation, vtype='UB', goes with the bias-corrected "
                "correlation, measure='UCOR', as in metafor)" if measure == "COR" and vtype == "UB" else "")
        raise ScaleupDataError(
            f"effect_sizes: vtype={vtype!r} is not available for measure {measure!r}; "
            f"choose one of {list(_VTYPES[measure])}{hint}."
        )
    if add is not None and (isinstance(add, bool) or not isinstance(add, (int, float, np.integer, np.floating))
                            or not np.isfinite(add)):
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
    xi: str | None = None,
    mi: str | None = None,
    ni: str | None = None,
    ti: str | None = None,
    x1i: str | None = None,
    t1i: str | None = None,
    x2i: str | None = None,
    t2i: str | None = None,
    ri: str | None = None,
    add: float | None = None,
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
    measure : str
        One of metafor's codes, by input:

        * 2x2 table ``ai, bi, ci, di`` (or ``n1i``, ``n2i``): ``"OR"`` log odds ratio, ``"RR"``
          log risk ratio, ``"RD"`` risk difference;
        * means ``m1i, sd1i, n1i, m2i, sd2i, n2i``: ``"SMD"`` standardized mean difference with
          the exact small-sample correction (Hedges' g), ``"MD"`` raw mean difference, ``"ROM"``
          log ratio of means;
        * one proportion ``xi`` with ``ni`` (or ``mi``): ``"PR"`` raw proportion, ``"PLN"`` log
          proportion, ``"PLO"`` logit, ``"PAS"`` arcsine square root, ``"PFT"`` Freeman-Tukey
          double arcsine;
        * two incidence rates ``x1i, t1i, x2i, t2i``: ``"IRR"`` log incidence rate ratio,
          ``"IRD"`` incidence rate difference; one rate ``xi, ti``: ``"IR"`` incidence rate,
          ``"IRLN"`` log incidence rate;
        * a correlation ``ri`` with ``ni``: ``"COR"`` raw correlation, ``"UCOR"`` bias-corrected
          (unbiased) correlation, ``"ZCOR"`` Fisher's z;
        * a paired design (two measurements of the same ``ni`` units, pre-post or matched pairs)
          ``m1i, m2i, sd1i, sd2i, ni, ri``: ``"MC"`` raw mean change, ``"SMCC"`` standardized mean
          change with change-score standardization, ``"SMCR"`` with raw-score standardization (by
          ``sd1i``; ``sd2i`` is not needed), ``"SMCRH"`` raw-score standardization with
          heteroscedastic variances, ``"ROMC"`` log ratio of means.
    ai, bi, ci, di : str, optional
        Columns of the 2x2 table (``OR``, ``RR``, ``RD``): ``ai``/``bi`` are the events and
        non-events of group 1 (e.g. treatment), ``ci``/``di`` those of group 2 (control).
    n1i, n2i : str, optional
        Group sizes. For 2x2 measures they may replace ``bi``/``di`` (``bi = n1i - ai``), or fill
        the missing values of ``bi``/``di``; where both are given, ``n1i`` must equal ``ai + bi``.
        Required for ``SMD`` and ``MD``.
    m1i, sd1i, m2i, sd2i : str, optional
        Columns of group means and standard deviations (``SMD``, ``MD``, ``ROM``), or of the
        means and standard deviations of the first and second measurement of a paired design
        (``MC``, ``SMCC``, ``SMCR``, ``SMCRH``, ``ROMC``; the change is ``m1i - m2i``).
    xi, mi, ni : str, optional
        Single proportions: events ``xi`` and the sample size ``ni`` or the non-events ``mi``
        (``mi`` may have missing values filled by ``ni - xi``; where both are given, ``ni`` must
        equal ``xi + mi``). ``ni`` is also the sample size of a correlation and of a paired design
        (the number of units measured twice, or of matched pairs).
    ti : str, optional
        Person-time of a single rate (``IR``, ``IRLN``, with events ``xi``).
    x1i, t1i, x2i, t2i : str, optional
        Events and person-time of groups 1 and 2 (``IRR``, ``IRD``).
    ri : str, optional
        Correlation coefficients (``COR``, ``UCOR``, ``ZCOR``), with sample sizes ``ni``; for a
        paired design, the correlation between the two measurements.
    add : float, optional
        Value added to the counts according to ``to`` (ignored for means and correlations).
        Default 0.5, but 0 for ``PAS`` and ``PFT`` (as metafor).
    to : {"only0", "all", "if0all", "none"}, default "only0"
        Which rows get ``add``: only those with a zero count (a zero cell of a 2x2 table, no
        events or only events for a proportion, no events in a group for rates), all of them,
        all of them if any row has a zero count, or none.
    drop00 : bool, default False
        If True, tables with no events in both groups (``ai = ci = 0``) or only events in both
        groups (``bi = di = 0``), and rates with no events in both groups (``x1i = x2i = 0``),
        get a missing ``yi``/``vi``.
    vtype : str, default "LS"
        Sampling-variance estimator. ``"LS"`` (large-sample) for every measure; ``RD`` also
        ``"UB"`` (unbiased) and ``"AV"`` (from the sample-size-weighted mean proportions);
        ``SMD`` also ``"UB"``, ``"LS2"`` (Borenstein et al., 2009) and ``"AV"``; ``MD`` also
        ``"UB"`` (same as ``"LS"``) and ``"HO"`` (pooled variance); ``ROM`` also ``"HO"``,
        ``"AV"`` and ``"AVHO"``; ``PR`` also ``"UB"`` and ``"AV"``; ``PLN``, ``PLO`` and ``COR``
        also ``"AV"``; ``UCOR`` also ``"UB"`` (unbiased, Hedges 1989) and ``"AV"``; ``SMCC`` and
        ``SMCR`` also ``"LS2"``. As metafor 3.8-1, ``COR`` with ``"UB"`` is refused (use ``UCOR``).
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
        counts larger than the group size, ``n1i != ai + bi`` (``ni != xi + mi``), negative SDs,
        group or sample sizes <= 0, person-times <= 0, correlations (``ri``, also between the two
        measurements of a paired design) outside [-1, 1] (the message names the column and the rows).

    Warns
    -----
    ScaleupWarning
        When some ``yi``/``vi`` are missing: a missing input value (the message names the column and
        the rows), a value undefined (0/0) or infinite (set to missing, as metafor does), the
        variance of a correlation with ``ni <= 3``, the bias-corrected correlation with
        ``ni <= 4``, a standardized mean change with ``ni <= 2``. The rows are kept, with NaN, as
        ``metafor::escalc`` keeps them with NA.

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
    :math:`s_p^2 (1/n_1 + 1/n_2)`). ``ROM``: :math:`y = \\log(\\bar x_1/\\bar x_2)`,
    :math:`v = s_1^2/(n_1 \\bar x_1^2) + s_2^2/(n_2 \\bar x_2^2)` (``"HO"``: :math:`s_p` for both SDs;
    ``"AV"``: the sample-size-weighted mean coefficient of variation of each group for
    :math:`s_j/\\bar x_j`; ``"AVHO"``: one weighted mean over both groups) (Hedges, Gurevitch &
    Curtis, 1999).

    Proportions, with :math:`x` events out of :math:`n` (after adding ``add`` to :math:`x` and
    to :math:`n - x` where ``to`` says so) and :math:`p = x/n`: ``PR`` :math:`y = p`,
    :math:`v = p(1-p)/n` (``"UB"``: :math:`n - 1`); ``PLN`` :math:`y = \\log p`,
    :math:`v = 1/x - 1/n`; ``PLO`` :math:`y = \\log(p/(1-p))`, :math:`v = 1/x + 1/(n-x)`
    (``"AV"``: :math:`p` replaced by the sample-size-weighted mean proportion in :math:`v`);
    ``PAS`` :math:`y = \\arcsin\\sqrt{p}`, :math:`v = 1/(4n)`; ``PFT``
    :math:`y = \\tfrac12(\\arcsin\\sqrt{x/(n+1)} + \\arcsin\\sqrt{(x+1)/(n+1)})`,
    :math:`v = 1/(4n+2)` (Freeman & Tukey, 1950).

    Incidence rates, with :math:`x_j` events over person-time :math:`t_j` and
    :math:`r_j = x_j/t_j`: ``IRR`` :math:`y = \\log(r_1/r_2)`, :math:`v = 1/x_1 + 1/x_2`; ``IRD``
    :math:`y = r_1 - r_2`, :math:`v = r_1/t_1 + r_2/t_2`; ``IR`` :math:`y = r`, :math:`v = r/t`;
    ``IRLN`` :math:`y = \\log r`, :math:`v = 1/x`.

    Correlations: ``COR`` :math:`y = r`, :math:`v = (1-r^2)^2/(n-1)` (``"AV"``: the
    sample-size-weighted mean correlation for :math:`r` in :math:`v`); ``ZCOR``
    :math:`y = \\tfrac12\\log\\frac{1+r}{1-r}`, :math:`v = 1/(n-3)` (Fisher, 1921). As in metafor,
    ``vi`` is missing when :math:`n \\le 3` (``yi`` is kept). ``UCOR``:
    :math:`y = r\\,F(\\tfrac12, \\tfrac12; \\tfrac{n-2}{2}; 1-r^2)` (Olkin & Pratt, 1958, eq. 2.3; missing
    for :math:`n \\le 4`), with :math:`v = (1-y^2)^2/(n-1)` (``"LS"``) or the unbiased
    :math:`v = y^2 - 1 + \\frac{n-3}{n-2}(1-r^2)\\,F(1, 1; \\tfrac n2; 1-r^2)` (``"UB"``; Hedges,
    1989, exact form), :math:`F` being Gauss's hypergeometric function. metafor evaluates :math:`F`
    with gsl's ``hyperg_2F1``, which is wrong by up to 1e-2 for :math:`1 - r^2 \\in (0.995, 1)` when
    :math:`n \\ge 8` is even (e.g. :math:`r = 0.05`, :math:`n = 8`: ``yi`` 0.05662 instead of 0.05655);
    here :math:`F` is computed from Euler's integral (tanh-sinh rule) to about 1e-15, so ``UCOR``
    differs from metafor there and agrees elsewhere.

    Paired designs, with :math:`n` units measured twice (means :math:`\\bar x_1, \\bar x_2`, SDs
    :math:`s_1, s_2`, correlation :math:`r`), :math:`s_d^2 = s_1^2 + s_2^2 - 2 r s_1 s_2` the variance
    of the change and :math:`c = c(n-1)`: ``MC`` :math:`y = \\bar x_1 - \\bar x_2`, :math:`v = s_d^2/n`;
    ``SMCC`` :math:`d = (\\bar x_1 - \\bar x_2)/s_d`, :math:`y = c\\,d`, :math:`v = 1/n + y^2/(2n)`
    (``"LS2"``: :math:`c^2 (1/n + d^2/(2n))`) (Gibbons et al., 1993); ``SMCR``
    :math:`d = (\\bar x_1 - \\bar x_2)/s_1`, :math:`y = c\\,d`, :math:`v = 2(1-r)/n + y^2/(2n)`
    (``"LS2"``: :math:`c^2 (2(1-r)/n + d^2/(2n))`) (Becker, 1988; Morris, 2000); ``SMCRH``
    :math:`y = c\\,(\\bar x_1 - \\bar x_2)/s_1`,
    :math:`v = c^2 \\left(s_d^2/(s_1^2 (n-1)) + y^2/(2(n-1))\\right)` (Bonett, 2008); ``ROMC``
    :math:`y = \\log(\\bar x_1/\\bar x_2)`, :math:`v = s_1^2/(n \\bar x_1^2) + s_2^2/(n \\bar x_2^2) -
    2 r s_1 s_2/(n \\bar x_1 \\bar x_2)` (Lajeunesse, 2011). The standardized measures are missing for
    :math:`n \\le 2` (:math:`c(n-1)` undefined). See Morris & DeShon (2002) on choosing among them.

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

    Hedges, L. V., Gurevitch, J., & Curtis, P. S. (1999). The meta-analysis of response ratios in
    experimental ecology. *Ecology*, 80(4), 1150-1156.

    Freeman, M. F., & Tukey, J. W. (1950). Transformations related to the angular and the square
    root. *Annals of Mathematical Statistics*, 21(4), 607-611.

    Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation deduced from a
    small sample. *Metron*, 1, 3-32.

    Olkin, I., & Pratt, J. W. (1958). Unbiased estimation of certain correlation coefficients.
    *Annals of Mathematical Statistics*, 29(1), 201-211.

    Hedges, L. V. (1989). An unbiased correction for sampling error in validity generalization
    studies. *Journal of Applied Psychology*, 74(3), 469-477.

    Becker, B. J. (1988). Synthesizing standardized mean-change measures. *British Journal of
    Mathematical and Statistical Psychology*, 41(2), 257-278.

    Gibbons, R. D., Hedeker, D. R., & Davis, J. M. (1993). Estimation of effect size from a series
    of experiments involving paired comparisons. *Journal of Educational Statistics*, 18(3), 271-279.

    Morris, S. B. (2000). Distribution of the standardized mean change effect size for meta-analysis
    on repeated measures. *British Journal of Mathematical and Statistical Psychology*, 53(1), 17-29.

    Morris, S. B., & DeShon, R. P. (2002). Combining effect size estimates in meta-analysis with
    repeated measures and independent-groups designs. *Psychological Methods*, 7(1), 105-125.

    Bonett, D. G. (2008). Confidence intervals for standardized linear contrasts of means.
    *Psychological Methods*, 13(2), 99-109.

    Lajeunesse, M. J. (2011). On the meta-analysis of response ratios for studies with correlated
    and multi-group designs. *Ecology*, 92(11), 2049-2055.

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
    >>> sites = pd.DataFrame({"reached": [12, 0, 30], "patients": [40, 25, 60]})
    >>> sa.effect_sizes(sites, "PLO", xi="reached", ni="patients")[["yi", "vi"]].round(4)
           yi      vi
    0 -0.8473  0.1190
    1 -3.9318  2.0392
    2  0.0000  0.0667

    Sites measured before and after an implementation (same patients; the correlation between the
    two measurements is ``r``), standardized mean change with raw-score standardization:

    >>> prepost = pd.DataFrame({"post": [7.8, 6.9], "pre": [7.1, 6.5], "sd_pre": [1.2, 1.0],
    ...                         "n": [40, 25], "r": [0.6, 0.7]})
    >>> sa.effect_sizes(prepost, "SMCR", m1i="post", m2i="pre", sd1i="sd_pre", ni="n",
    ...                 ri="r")[["yi", "vi"]].round(4)
           yi      vi
    0  0.5720  0.0241
    1  0.3873  0.0270
    """
    given = dict(ai=ai, bi=bi, ci=ci, di=di, n1i=n1i, n2i=n2i, m1i=m1i, sd1i=sd1i, m2i=m2i, sd2i=sd2i,
                 xi=xi, mi=mi, ni=ni, ti=ti, x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i, ri=ri)
    _check_options(data, measure, to, vtype, add, drop00, yi, vi,
                   {k: v for k, v in given.items() if v is not None})
    # only the arguments of this measure's family are read (as metafor ignores the others)
    inputs = {k: v for k, v in given.items() if v is not None and k in _ARGS[measure]}
    if add is None:  # metafor's default: 1/2, but 0 for the arcsine transformations
        add = 0.0 if measure in ("PAS", "PFT") else 0.5
    small_n = no_ucor = None
    # values beyond double precision (e.g. an SD of 1e300) give infinite yi/vi: set to missing with
    # a warning by _undefined_to_missing, as metafor does, not a raw numpy overflow warning
    with np.errstate(over="ignore"):
        if measure in _TWO_BY_TWO:
            y, v, missing = _two_by_two(data, measure, ai, bi, ci, di, n1i, n2i, float(add), to, bool(drop00),
                                        vtype)
        elif measure in _CONTINUOUS:
            y, v, missing = _continuous(data, measure, m1i, sd1i, n1i, m2i, sd2i, n2i, vtype)
        elif measure in _PROPORTIONS:
            y, v, missing = _proportion(data, measure, xi, mi, ni, float(add), to, vtype)
        elif measure in _RATES:
            y, v, missing = _rates(data, measure, x1i, t1i, x2i, t2i, float(add), to, bool(drop00))
        elif measure in _RATE1:
            y, v, missing = _rates(data, measure, xi, ti, None, None, float(add), to, False)
        elif measure in _CHANGE:
            y, v, missing = _change(data, measure, m1i, m2i, sd1i, sd2i, ni, ri, vtype)
        else:
            y, v, missing = _correlation(data, measure, ri, ni, vtype)
            n_cor = _column(data, "ni", ni, measure)
            # metafor: no sampling variance for ni <= 3 (vi missing, yi kept)
            small_n = n_cor <= 3
            v = np.where(small_n, 0.0, v)
            if measure == "UCOR":  # no bias-corrected correlation for ni <= 4 (yi missing)
                no_ucor = n_cor <= 4
    y, v = _undefined_to_missing(y, v, missing if no_ucor is None else missing | no_ucor, data.index, measure)
    if no_ucor is not None and no_ucor.any():
        warnings.warn(
            f"effect_sizes(measure='UCOR'): the bias-corrected correlation cannot be computed when the sample "
            f"size {ni!r} (ni) is <= 4, in {_rows_text(data.index, no_ucor)}; yi is missing (NaN) there, and so "
            "is vi except with vtype='AV' for ni = 4 (as metafor::escalc). meta_analysis leaves these rows out.",
            ScaleupWarning,
            stacklevel=3,  # effect_sizes < checked_inputs wrapper < caller
        )
    if small_n is not None and small_n.any():
        v = np.where(small_n, np.nan, v)
    if small_n is not None and small_n.any() and no_ucor is None:  # UCOR: said above
        warnings.warn(
            f"effect_sizes(measure={measure!r}): the sampling variance cannot be estimated when the sample "
            f"size {ni!r} (ni) is <= 3, in {_rows_text(data.index, small_n)}; vi is missing (NaN) there, yi "
            "is kept (as metafor::escalc). meta_analysis leaves these rows out.",
            ScaleupWarning,
            stacklevel=3,  # effect_sizes < checked_inputs wrapper < caller
        )
    _warn_missing_inputs(data, inputs, y, v, missing, measure)
    out = data.copy()
    out[yi] = y
    out[vi] = v
    return out

