r"""Patient-reported experience and outcome measures (PREM / PROM): internal consistency of a scale.

* :func:`scale_reliability` -- Cronbach's alpha of a multi-item scale (raw and standardized),
  Guttman's lambda 6, the average inter-item correlation, the signal/noise ratio, the Feldt
  confidence interval of alpha, and per item the item-total correlations and alpha if the item is
  deleted; identical to ``psych::alpha()`` (psych 2.2.9) with its default pairwise covariances.
* :func:`scale_omega` -- McDonald's omega total and hierarchical, from a factor analysis of the
  item correlations (minres or ML, oblimin rotation, Schmid-Leiman transformation), with the
  general and group-factor loadings of each item; as ``psych::omega()`` (the numerical engine is
  :mod:`scaleup_analysis.engines.factor`).

References
----------
Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests. Psychometrika, 16(3),
297-334.

Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for coefficient alpha.
Applied Psychological Measurement, 11(1), 93-103.

McDonald, R. P. (1999). Test Theory: A Unified Treatment. Lawrence Erlbaum.

Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
(R package version 2.2.9), functions ``alpha``, ``alpha.ci``, ``smc``, ``omega`` and ``schmid``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import (
    check_level,
    check_magnitude,
    check_spread,
    checked_inputs,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
    short_repr,
)
from ._display import Displayed, num_cell, text_table
from ._style import OUTSIDE, PALETTE, data_text, new_axes, styled
from .engines import FitError
from .engines.factor import PSI_LOWER, schmid
from .engines.factor import smc as _smc
from .errors import ScaleupDataError, ScaleupWarning
from .narrative import Text

__all__ = ["scale_reliability", "ScaleReliability", "scale_omega", "ScaleOmega"]

_FN = "scale_reliability()"
#: Largest magnitude of an item score: squares and covariances must stay finite.
_MAX_ABS = 1e100


@dataclass(frozen=True, eq=False, repr=False)
class ScaleReliability(Displayed):
    """Result of :func:`scale_reliability` (the ``total``, ``feldt``, ``item.stats`` and
    ``alpha.drop`` parts of ``psych::alpha``).

    Attributes
    ----------
    raw_alpha : float
        Cronbach's alpha from the item covariances (psych ``raw_alpha``).
    std_alpha : float
        Standardized alpha, from the item correlations (psych ``std.alpha``).
    G6 : float
        Guttman's lambda 6 from the squared multiple correlations (psych ``G6(smc)``).
    average_r : float
        Average inter-item correlation.
    signal_noise : float
        Signal/noise ratio ``k r / (1 - r)`` (psych ``S/N``); infinite when every correlation is 1.
    raw_alpha_se : float
        Asymptotic standard error of ``raw_alpha`` (psych ``ase``, Duhachek & Iacobucci 2004).
    raw_alpha_ci_low, raw_alpha_ci_high : float
        Feldt confidence interval of ``raw_alpha`` at ``level`` (psych ``alpha.ci``).
    level : float
    mean, sd : float
        Mean and standard deviation of the respondents' scale scores (the mean of the items they
        answered, reversed items reversed).
    n_obs : int
        Respondents (rows of ``data``), the ``n`` of the Feldt interval.
    n_items : int
    n_missing : int
        Missing item responses (cells); with any, covariances are pairwise.
    items : tuple of str
    reverse : tuple of str
        The reversed items.
    scale_min, scale_max : float or None
        The range used to reverse items.
    table : pandas.DataFrame
        One row per item (see :meth:`to_frame`).
    """

    raw_alpha: float
    std_alpha: float
    G6: float
    average_r: float
    signal_noise: float
    raw_alpha_se: float
    raw_alpha_ci_low: float
    raw_alpha_ci_high: float
    level: float
    mean: float
    sd: float
    n_obs: int
    n_items: int
    n_missing: int
    items: tuple = field(repr=False)
    reverse: tuple = field(repr=False)
    scale_min: float | None = field(repr=False)
    scale_max: float | None = field(repr=False)
    table: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``item``, ``reversed``, ``n`` (respondents who answered it),
        ``raw_r`` (correlation of the item with the scale score), ``std_r`` (the same from the
        correlation matrix), ``r_cor`` (corrected for item overlap and reliability: the diagonal of
        the correlation matrix replaced by the squared multiple correlations), ``r_drop``
        (corrected item-total correlation: with the sum of the other items), ``mean``, ``sd``, and
        the scale's statistics without the item: ``raw_alpha_drop``, ``std_alpha_drop``,
        ``G6_drop``, ``average_r_drop``, ``signal_noise_drop`` (psych ``alpha.drop``)."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        return {"raw_alpha": self.raw_alpha, "raw_alpha_ci": (self.raw_alpha_ci_low, self.raw_alpha_ci_high),
                "std_alpha": self.std_alpha, "G6": self.G6, "average_r": self.average_r,
                "n_obs": self.n_obs, "n_items": self.n_items, "n_missing": self.n_missing, "level": self.level}

    def _summary(self, tx) -> str:
        lines = [tx("Internal consistency of a scale of {k} items ({n} respondents).",
                    k=tx.int(self.n_items), n=tx.int(self.n_obs)),
                 tx("Cronbach's alpha (raw) = {alpha}, Feldt interval.",
                    alpha=tx.ci(self.raw_alpha, self.raw_alpha_ci_low, self.raw_alpha_ci_high, digits=3,
                                level=self.level)),
                 tx("Standardized alpha = {std}; Guttman's lambda 6 (smc) = {g6}; average inter-item "
                    "correlation = {r}; signal/noise = {sn}.", std=tx.num(self.std_alpha, 3),
                    g6=tx.num(self.G6, 3), r=tx.num(self.average_r, 3), sn=tx.num(self.signal_noise, 2)),
                 tx("Scale score (mean of the items answered): mean = {mean}, SD = {sd}.",
                    mean=tx.num(self.mean, 2), sd=tx.num(self.sd, 2))]
        if self.reverse:
            lines.append(tx("Reversed items (score -> {low} + {high} - score): {items}.",
                            low=tx.num(self.scale_min, 2), high=tx.num(self.scale_max, 2),
                            items=", ".join(map(str, self.reverse))))
        if self.n_missing:
            lines.append(tx("{n} missing item responses: covariances computed from the pairs of items answered "
                            "(pairwise), as psych::alpha.", n=tx.int(self.n_missing)))
        rows = [[str(r.item) + ("-" if r.reversed else ""), tx.int(r.n), num_cell(tx, r.r_drop, 3),
                 num_cell(tx, r.raw_r, 3), num_cell(tx, r.raw_alpha_drop, 3), num_cell(tx, r.mean, 2),
                 num_cell(tx, r.sd, 2)] for r in self.table.itertuples(index=False)]
        lines += ["", tx("By item:"),
                  text_table([tx("item"), tx("n"), tx("r (corrected)"), tx("r (item-total)"),
                              tx("alpha if deleted"), tx("item mean"), tx("SD")], rows)]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# computations (psych::alpha)
# ----------------------------------------------------------------------------------------------
def _pairwise_cov(x: np.ndarray) -> np.ndarray:
    """R's ``cov(x, use = "pairwise")``: each covariance from the rows where both items are present,
    with the means of those rows."""
    k = x.shape[1]
    present = ~np.isnan(x)
    c = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            both = present[:, i] & present[:, j]
            a, b = x[both, i], x[both, j]
            m = len(a)
            v = float(np.sum((a - a.mean()) * (b - b.mean())) / (m - 1)) if m > 1 else math.nan
            c[i, j] = c[j, i] = v
    return c


def _pairwise_cor(a: np.ndarray, b: np.ndarray) -> float:
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[both], b[both]
    da, db = a - a.mean(), b - b.mean()
    return float(np.sum(da * db) / math.sqrt(np.sum(da * da) * np.sum(db * db)))


def _cov2cor(c: np.ndarray) -> np.ndarray:
    s = 1.0 / np.sqrt(np.diag(c))
    r = c * s[:, None] * s[None, :]
    np.fill_diagonal(r, 1.0)
    return r


def _alpha1(c: np.ndarray, r: np.ndarray) -> dict:
    """psych's ``alpha.1``: the statistics of a set of items from its covariances and correlations."""
    n = c.shape[0]
    sum_c, sum_r = float(c.sum()), float(r.sum())
    tr_c = float(np.trace(c))
    raw = (1 - tr_c / sum_c) * (n / (n - 1))
    std = (1 - n / sum_r) * (n / (n - 1))
    g6 = 1 - (n - float(_smc(r).sum())) / sum_r
    av_r = (sum_r - n) / (n * (n - 1))
    sn = n * av_r / (1 - av_r) if av_r != 1 else math.inf
    cc = c @ c
    q = (2 * n**2 / ((n - 1) ** 2 * sum_c**3)) * (sum_c * (np.trace(cc) + tr_c**2) - 2 * (tr_c * float(cc.sum())))
    return {"raw": raw, "std": std, "G6": g6, "av_r": av_r, "sn": sn, "Q": float(q)}


def _feldt(alpha: float, n_obs: int, n_items: int, level: float) -> tuple[float, float]:
    """psych::alpha.ci (Feldt, Woodruff & Salih 1987), F with n - 1 and (n - 1)(k - 1) df."""
    p = 1 - level
    df1, df2 = n_obs - 1, (n_obs - 1) * (n_items - 1)
    low = 1 - (1 - alpha) * stats.f.ppf(1 - p / 2, df1, df2)
    high = 1 - (1 - alpha) * stats.f.ppf(p / 2, df1, df2)
    return float(low), float(high)


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _names(value, arg: str, *, minimum: int, fn: str = _FN) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) and not isinstance(value, (pd.Index, np.ndarray)):
        raise ScaleupDataError(
            f"{fn}: argument {arg!r} must be a list of column names of table 'data', e.g. "
            f"['q1', 'q2', 'q3']; got {short_repr(value)}."
        )
    names = list(value)
    twice = sorted({short_repr(v) for v in names if names.count(v) > 1})
    if twice:
        raise ScaleupDataError(f"{fn}: argument {arg!r} names {', '.join(twice)} more than once; list each item once.")
    if len(names) < minimum:
        raise ScaleupDataError(
            f"{fn}: argument {arg!r} must name at least {minimum} item columns (the internal consistency of a "
            f"scale compares its items); got {len(names)}."
        )
    return names


def _bound(value, arg: str, fn: str = _FN) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or abs(value) > _MAX_ABS:
        raise ScaleupDataError(
            f"{fn}: argument {arg!r} must be a finite number (the lowest / highest score of the response scale, "
            f"e.g. 1 and 5), needed to reverse items; got {short_repr(value)}."
        )
    return float(value)


def _item_matrix(data, items, reverse, scale_min, scale_max, *, fn: str, minimum: int):
    """The checks shared by the scale functions: the item columns of table 'data' as a float array
    (respondents x items, missing answers NaN, reversed items reversed), the item and reversed-item
    names and the scale range; raises ScaleupDataError naming the column and the rows."""
    items = _names(items, "items", minimum=minimum, fn=fn)
    require_columns(data, "data", items, label=f"{fn}: table 'data'",
                    hint="Pass the names of the item columns as items=[...].")
    reverse = [] if reverse is None else _names(reverse, "reverse", minimum=0, fn=fn)
    unknown = [r for r in reverse if r not in items]
    if unknown:
        raise ScaleupDataError(f"{fn}: argument 'reverse' names {unknown}, which are not in items={items}; "
                               "reversed items must be items of the scale.")
    lo = hi = None
    if reverse or scale_min is not None or scale_max is not None:
        if reverse and (scale_min is None or scale_max is None):
            raise ScaleupDataError(f"{fn}: reversing items {reverse} needs scale_min= and scale_max= (the lowest "
                                   "and highest possible score, e.g. 1 and 5): a reversed score is "
                                   "scale_min + scale_max - score.")
        if scale_min is not None:
            lo = _bound(scale_min, "scale_min", fn)
        if scale_max is not None:
            hi = _bound(scale_max, "scale_max", fn)
        if lo is not None and hi is not None and not lo < hi:
            raise ScaleupDataError(f"{fn}: scale_min ({lo:g}) must be below scale_max ({hi:g}).")
    where = f"{fn}: table 'data'"
    cols = []
    for it in items:
        x = numeric_column(data, it, where, arg="items", missing=True)
        check_magnitude(x, data.index, f"{where}, column {it!r}", max_abs=_MAX_ABS)
        answered = ~np.isnan(x)
        if answered.sum() < 2:
            raise ScaleupDataError(f"{where}, column {it!r}: {int(answered.sum())} respondent(s) answered this item; "
                                   "at least 2 answers are needed to measure its variance. Drop the item from items=.")
        check_spread(x[answered], f"{where}, column {it!r}", f"the {int(answered.sum())} answered rows")
        if np.ptp(x[answered]) == 0:
            raise ScaleupDataError(f"{where}, column {it!r}: every respondent gave the same score "
                                   f"({first_values(x[answered][:1])}); an item with no variance does not measure "
                                   "anything in these data. Drop it from items= (psych::alpha drops it with a warning).")
        if it in reverse:
            for bad, what in ((x < lo, f"are below scale_min = {lo:g}"), (x > hi, f"are above scale_max = {hi:g}")):
                if bad.any():
                    raise ScaleupDataError(
                        f"{where}, column {it!r}: {rows_text(data, bad, label='first:')} {what} (values "
                        f"{first_values(x[bad])}), so the item cannot be reversed as scale_min + scale_max - score. "
                        "Correct the values or the scale range.")
            x = (lo + hi) - x
        cols.append(x)
    x = np.column_stack(cols)
    none = np.isnan(x).all(axis=1)
    if none.any():
        raise ScaleupDataError(f"{where}: {rows_text(data, none, label='first:')} answered none of the items "
                               f"{items}; they have no scale score. Drop these respondents.")
    present = ~np.isnan(x)
    k = len(items)
    for i in range(k):
        for j in range(i + 1, k):
            if (present[:, i] & present[:, j]).sum() < 2:
                raise ScaleupDataError(
                    f"{where}, columns {items[i]!r} and {items[j]!r}: fewer than 2 respondents answered both items, "
                    "so their covariance cannot be estimated (pairwise). Drop one of them from items=.")
    return x, items, reverse, lo, hi


@checked_inputs
def scale_reliability(
    data: pd.DataFrame,
    *,
    items: Sequence[str],
    reverse: Sequence[str] | None = None,
    scale_min: float | None = None,
    scale_max: float | None = None,
    level: float = 0.95,
) -> ScaleReliability:
    r"""Internal consistency of a multi-item scale (Cronbach's alpha and item analysis).

    Gives the same values as ``psych::alpha(data[items], keys = reverse, check.keys = FALSE)``
    (psych 2.2.9, ``use = "pairwise"``), for a PREM / PROM questionnaire or any scale whose score
    is the mean (or sum) of its items.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    items : list of str
        The item columns (at least 2), numeric scores; missing answers allowed.
    reverse : list of str, optional
        Items scored in the opposite direction, reversed as ``scale_min + scale_max - score``
        before anything is computed (psych's ``keys`` with ``check.keys = FALSE``).
    scale_min, scale_max : float, optional
        Lowest and highest possible score of the response scale; required with ``reverse``.
        psych uses the lowest and highest score observed over all the items; they agree whenever
        both ends of the scale were used.
    level : float
        Coverage of the Feldt interval of alpha (psych's ``alpha`` prints 0.95).

    Returns
    -------
    ScaleReliability
        The scale's statistics as attributes; one row per item in ``to_frame()``.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the rows: a missing item column, a non-numeric or
        infinite score, a respondent with no item answered, an item with fewer than 2 answers or no
        variance, two items never answered together by 2 respondents, a reversed item scored outside
        ``[scale_min, scale_max]``.

    Notes
    -----
    With :math:`C` the :math:`k \times k` covariance matrix of the items and :math:`R` their
    correlation matrix (both pairwise: each entry from the respondents who answered both items,
    psych's default ``use = "pairwise"``; missing answers are kept, not imputed, so every
    respondent counts, as in psych),

    .. math::

        \alpha_{raw} = \frac{k}{k-1}\Bigl(1 - \frac{\operatorname{tr} C}{\mathbf 1' C \mathbf 1}\Bigr),
        \qquad
        \alpha_{std} = \frac{k}{k-1}\Bigl(1 - \frac{k}{\mathbf 1' R \mathbf 1}\Bigr),
        \qquad
        \lambda_6 = 1 - \frac{\sum_i (1 - smc_i)}{\mathbf 1' R \mathbf 1},

    (Cronbach 1951), with :math:`smc_i = 1 - 1/(R^{+})_{ii}` the squared multiple correlation of
    item :math:`i` on the others (pseudo-inverse, clamped to [0, 1], psych's ``smc``),
    :math:`\bar r = (\mathbf 1' R \mathbf 1 - k) / (k(k-1))` and :math:`S/N = k\bar r/(1-\bar r)`.
    The Feldt, Woodruff & Salih (1987) interval (psych's ``alpha.ci``) is

    .. math:: \bigl[1 - (1-\alpha) F_{1-p/2}(n-1, (n-1)(k-1)),\; 1 - (1-\alpha) F_{p/2}(n-1, (n-1)(k-1))\bigr]

    with :math:`p = 1 -` ``level`` and :math:`n` the respondents (rows). ``raw_alpha_se`` is psych's
    ``ase``, :math:`\sqrt{Q/n}` with
    :math:`Q = \frac{2k^2}{(k-1)^2 (\mathbf 1'C\mathbf 1)^3}\bigl[\mathbf 1'C\mathbf 1
    (\operatorname{tr}C^2 + (\operatorname{tr}C)^2) - 2\operatorname{tr}C\,\mathbf 1'C^2\mathbf 1\bigr]`.
    Per item: ``raw_r`` is the (pairwise) correlation of the item with the scale score (the mean of
    the items each respondent answered), ``std_r`` :math:`= \sum_j R_{ij}/\sqrt{\mathbf 1'R\mathbf 1}`,
    ``r_cor`` the same with :math:`smc` on the diagonal of :math:`R`, ``r_drop``
    :math:`= \sum_{j\ne i} C_{ij} / \sqrt{C_{ii} \sum_{j,l\ne i} C_{jl}}`, and the ``*_drop``
    columns the statistics of the other :math:`k-1` items. With two items, alpha without one item
    is not defined; psych's convention is kept (``raw_alpha_drop`` :math:`= C_{12}/C_{jj}` with
    :math:`j` the other item, ``std_alpha_drop`` = ``average_r_drop`` :math:`= R_{12}`,
    ``G6_drop`` :math:`= smc_1`).

    References
    ----------
    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests. Psychometrika,
    16(3), 297-334.

    Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for coefficient
    alpha. Applied Psychological Measurement, 11(1), 93-103.

    Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
    (version 2.2.9): ``alpha``, ``alpha.ci``, ``smc``.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"q1": [4, 5, 3, 2, 4, 5], "q2": [3, 5, 4, 2, 3, 4],
    ...                   "q3": [2, 1, 3, 4, 2, 1], "q4": [5, 4, 3, 1, 4, 5]})
    >>> res = sa.scale_reliability(d, items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1, scale_max=5)
    >>> round(res.raw_alpha, 4), round(res.std_alpha, 4)
    (0.93, 0.9363)
    """
    level = check_level(level, _FN)
    x, items, reverse, lo, hi = _item_matrix(data, items, reverse, scale_min, scale_max, fn=_FN, minimum=2)
    return _compute(x, items, reverse, lo, hi, level, data.index)


def _compute(x, items, reverse, lo, hi, level, index) -> ScaleReliability:
    n_obs, k = x.shape
    c = _pairwise_cov(x)
    r = _cov2cor(c)
    if not (np.isfinite(c).all() and np.isfinite(r).all()):  # pragma: no cover - the checks above prevent it
        raise ScaleupDataError(f"{_FN}: table 'data': the item covariances could not be computed.")
    tot = _alpha1(c, r)
    total = np.nanmean(x, axis=1)
    mean_t, sd_t = float(np.mean(total)), float(np.std(total, ddof=1)) if n_obs > 1 else math.nan
    smc = _smc(r)
    std_r = r.sum(axis=0) / math.sqrt(r.sum())
    rc = r.copy()
    np.fill_diagonal(rc, smc)
    r_cor = rc.sum(axis=0) / math.sqrt(rc.sum())
    drops = []
    for i in range(k):
        keep = [j for j in range(k) if j != i]
        if k > 2:
            d = _alpha1(c[np.ix_(keep, keep)], r[np.ix_(keep, keep)])
        else:  # psych's two-item convention
            j = keep[0]
            r12 = float(r[0, 1])
            d = {"raw": float(c[0, 1] / c[j, j]), "std": r12, "G6": float(smc[0]), "av_r": r12,
                 "sn": r12 / (1 - r12) if r12 != 1 else math.inf}
        v_drop = float(c[np.ix_(keep, keep)].sum())
        c_drop = float(c[:, i].sum() - c[i, i])
        d["r_drop"] = c_drop / math.sqrt(c[i, i] * v_drop)
        drops.append(d)
    present = ~np.isnan(x)
    table = pd.DataFrame({
        "item": list(items),
        "reversed": [it in reverse for it in items],
        "n": present.sum(axis=0).astype(int),
        "raw_r": [_pairwise_cor(total, x[:, i]) for i in range(k)],
        "std_r": std_r,
        "r_cor": r_cor,
        "r_drop": [d["r_drop"] for d in drops],
        "mean": np.nanmean(x, axis=0),
        "sd": np.nanstd(x, axis=0, ddof=1),
        "raw_alpha_drop": [d["raw"] for d in drops],
        "std_alpha_drop": [d["std"] for d in drops],
        "G6_drop": [d["G6"] for d in drops],
        "average_r_drop": [d["av_r"] for d in drops],
        "signal_noise_drop": [d["sn"] for d in drops],
    })
    low, high = _feldt(tot["raw"], n_obs, k, level)
    return ScaleReliability(
        raw_alpha=tot["raw"], std_alpha=tot["std"], G6=tot["G6"], average_r=tot["av_r"], signal_noise=tot["sn"],
        raw_alpha_se=math.sqrt(tot["Q"] / n_obs) if tot["Q"] >= 0 else math.nan,
        raw_alpha_ci_low=low, raw_alpha_ci_high=high, level=float(level), mean=mean_t, sd=sd_t,
        n_obs=int(n_obs), n_items=int(k), n_missing=int((~present).sum()), items=tuple(items),
        reverse=tuple(reverse), scale_min=lo, scale_max=hi, table=table,
    )


# ----------------------------------------------------------------------------------------------
# McDonald's omega (psych::omega)
# ----------------------------------------------------------------------------------------------
_FN_OMEGA = "scale_omega()"
_FMS = ("minres", "ml")


@dataclass(frozen=True, eq=False, repr=False)
class ScaleOmega(Displayed):
    """Result of :func:`scale_omega` (``psych::omega``: ``omega_h``, ``omega.tot``, ``omega.lim``,
    ``alpha``, ``G6``, ``ECV``, the ``schmid$sl`` table and ``omega.group``).

    Attributes
    ----------
    omega_h : float
        Omega hierarchical: the share of the scale score's variance due to the general factor
        (psych ``omega_h``).
    omega_total : float
        Omega total: the share due to all common factors (psych ``omega.tot``).
    omega_limited : float
        ``omega_h / omega_total`` (psych ``omega.lim``).
    std_alpha : float
        Cronbach's alpha from the (pairwise) correlation matrix, after psych's flips (psych ``alpha``).
    G6 : float
        Guttman's lambda 6 from the squared multiple correlations (psych ``G6``).
    ECV : float
        Explained common variance of the general factor: its sum of squared loadings over that of
        all the factors of the Schmid-Leiman solution (1 with one factor).
    nfactors : int
        Group factors extracted.
    fm : str
        Factoring method, ``"minres"`` or ``"ml"``.
    heywood : bool
        Whether a uniqueness reached psych's lower bound 0.005 (a Heywood case; a warning says where).
    n_obs : int
        Respondents (rows of ``data``).
    n_items : int
    n_missing : int
        Missing item responses (cells); with any, correlations are pairwise.
    items : tuple of str
    reverse : tuple of str
        The items reversed by the user (``reverse=``).
    flipped : tuple of str
        Items psych's ``omega`` flipped because their general-factor loading was negative.
    scale_min, scale_max : float or None
    subscales : pandas.DataFrame
        psych's ``omega.group``: one row per factor (``factor``: ``g``, ``F1``, ...) with
        ``omega_total``, ``omega_general`` and ``omega_group`` of the items whose largest group
        loading is on that factor (the ``g`` row: the whole scale).
    table : pandas.DataFrame
        One row per item (see :meth:`to_frame`).
    """

    omega_h: float
    omega_total: float
    omega_limited: float
    std_alpha: float
    G6: float
    ECV: float
    nfactors: int
    fm: str
    heywood: bool
    n_obs: int
    n_items: int
    n_missing: int
    items: tuple = field(repr=False)
    reverse: tuple = field(repr=False)
    flipped: tuple = field(repr=False)
    scale_min: float | None = field(repr=False)
    scale_max: float | None = field(repr=False)
    subscales: pd.DataFrame = field(repr=False)
    table: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``item``, ``reversed`` (by ``reverse=``), ``flipped`` (by psych's rule),
        the Schmid-Leiman loadings on the general factor ``g`` and on the group factors ``F1``,
        ``F2``, ... (psych's ``F1*``, ...; all 0 with one factor), the communality ``h2``, the
        uniqueness ``u2 = 1 - h2`` and ``p2 = g^2 / h2``, the share of the communality due to the
        general factor (psych's ``schmid$sl``)."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        return {"omega_h": self.omega_h, "omega_total": self.omega_total, "std_alpha": self.std_alpha,
                "G6": self.G6, "nfactors": self.nfactors, "fm": self.fm, "n_obs": self.n_obs,
                "n_items": self.n_items, "n_missing": self.n_missing}

    def _summary(self, tx) -> str:
        if self.nfactors == 1:
            head = tx("McDonald's omega of a scale of {k} items ({n} respondents): one factor extracted by {fm} (as "
                      "psych::omega with nfactors = 1).", k=tx.int(self.n_items), n=tx.int(self.n_obs), fm=self.fm)
        else:
            head = tx("McDonald's omega of a scale of {k} items ({n} respondents): {f} factors extracted by {fm}, "
                      "oblimin rotation and Schmid-Leiman transformation (as psych::omega).",
                      k=tx.int(self.n_items), n=tx.int(self.n_obs), f=tx.int(self.nfactors), fm=self.fm)
        lines = [head,
                 tx("Omega total = {ot}; omega hierarchical (general factor) = {oh}; standardized alpha = {a}; "
                    "Guttman's lambda 6 = {g6}; explained common variance of the general factor = {ecv}.",
                    ot=tx.num(self.omega_total, 3), oh=tx.num(self.omega_h, 3), a=tx.num(self.std_alpha, 3),
                    g6=tx.num(self.G6, 3), ecv=tx.num(self.ECV, 3))]
        if self.nfactors == 1:
            lines.append(tx("With one factor, omega hierarchical is not meaningful (psych's warning): the general "
                            "factor is the only factor, and omega total is the reliability of the scale score."))
        elif self.nfactors == 2:
            lines.append(tx("With two group factors the general factor is not identified: as psych, its loadings "
                            "on the two factors are set equal (square root of their correlation). Interpret "
                            "omega hierarchical with caution."))
        if self.reverse:
            lines.append(tx("Reversed items (score -> {low} + {high} - score): {items}.",
                            low=tx.num(self.scale_min, 2), high=tx.num(self.scale_max, 2),
                            items=", ".join(map(str, self.reverse))))
        if self.flipped:
            lines.append(tx("Items flipped because their general-factor loading was negative (as psych): {items}.",
                            items=", ".join(map(str, self.flipped))))
        if self.n_missing:
            lines.append(tx("{n} missing item responses: correlations computed from the pairs of items answered "
                            "(pairwise), as psych::omega.", n=tx.int(self.n_missing)))
        if self.heywood:
            lines.append(tx("Heywood case: a uniqueness reached its lower bound (0.005); interpret with caution."))
        groups = [f"F{j + 1}" for j in range(self.nfactors)] if self.nfactors > 1 else []
        rows = [[str(r["item"]) + ("-" if r["reversed"] != r["flipped"] else "")]
                + [num_cell(tx, r[c], 2) for c in ["g", *groups, "h2", "u2", "p2"]]
                for r in self.table.to_dict("records")]
        lines += ["", tx("Schmid-Leiman loadings by item:"),
                  text_table([tx("item"), "g", *[g + "*" for g in groups], "h2", "u2", "p2"], rows)]
        return "\n".join(lines)

    @styled
    def plot_loadings(self, *, title: str | None = None, ax=None):
        """Bars of each item's loadings on the general factor and on the group factors (the
        Schmid-Leiman solution, items from top to bottom in their order); returns the Axes."""
        tx = Text()
        t = self.table
        k, nf = len(t), (self.nfactors if self.nfactors > 1 else 0)
        ax = new_axes(ax, (7.0, min(9.5, max(2.6, 0.3 * k * (1 + 0.25 * nf) + 1.2))))
        y = np.arange(k)[::-1].astype(float)
        cols = ["g"] + [f"F{j + 1}" for j in range(nf)]
        height = 0.8 / len(cols)
        for j, col in enumerate(cols):
            label = (tx("general factor (g)") if col == "g" else tx("group factor {name}", name=col + "*"))
            ax.barh(y + 0.4 - height * (j + 0.5), t[col].to_numpy(float), height=height,
                    color=PALETTE[j % len(PALETTE)], label=label)
        ax.axvline(0.0, color="black", linewidth=0.8)
        low = min(0.0, float(t[cols].to_numpy(float).min()))
        ax.set_xlim(low - 0.05 if low < 0 else 0.0, max(1.0, float(t[cols].to_numpy(float).max()) + 0.02))
        ax.set_yticks(y)
        ax.set_yticklabels([data_text(it) + ("-" if r != f else "")
                            for it, r, f in zip(t["item"], t["reversed"], t["flipped"])])
        ax.set_ylim(-0.6, k - 0.4)
        ax.grid(False, axis="y")
        ax.set_xlabel(tx("Loading (Schmid-Leiman solution)"))
        ax.set_ylabel(tx("Item (-: reversed or flipped)"))
        if title is None:
            title = (tx("Omega total = {ot} (one factor)", ot=tx.num(self.omega_total, 2)) if self.nfactors == 1 else
                     tx("Omega total = {ot}, omega hierarchical = {oh}", ot=tx.num(self.omega_total, 2),
                        oh=tx.num(self.omega_h, 2)))
        ax.set_title(title)
        ax.legend(**OUTSIDE)
        return ax


def _pairwise_cor_matrix(x: np.ndarray) -> np.ndarray:
    """R's ``cor(x, use = "pairwise")``: each correlation from the rows where both items are present."""
    k = x.shape[1]
    r = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            r[i, j] = r[j, i] = _pairwise_cor(x[:, i], x[:, j])
    return r


@checked_inputs
def scale_omega(
    data: pd.DataFrame,
    *,
    items: Sequence[str],
    reverse: Sequence[str] | None = None,
    scale_min: float | None = None,
    scale_max: float | None = None,
    nfactors: int = 1,
    fm: str = "minres",
) -> ScaleOmega:
    r"""McDonald's omega of a multi-item scale (omega total and hierarchical), as ``psych::omega``.

    Gives the values of ``psych::omega(data[items], nfactors, fm = fm, rotate = "oblimin")``
    (psych 2.2.9, GPArotation 2022.10-2) with the factor extraction and the rotation run to their
    optimum, for a PREM / PROM questionnaire or any scale whose score is the mean (or sum) of its
    items. Most such scales are meant to be unidimensional: ``nfactors=1`` (the default here; psych's
    default is 3) gives omega total, the reliability of the scale score under a one-factor model.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    items : list of str
        The item columns (at least 3, and at least ``2 * nfactors + 1``), numeric scores; missing
        answers allowed.
    reverse : list of str, optional
        Items scored in the opposite direction, reversed as ``scale_min + scale_max - score``
        before anything is computed (as :func:`scale_reliability`).
    scale_min, scale_max : float, optional
        Lowest and highest possible score of the response scale; required with ``reverse``.
    nfactors : int
        Number of group factors, 1 to 8. With 2, the general factor is not identified and psych's
        rule (``option = "equal"``) is applied; 3 or more is what the hierarchical model needs.
    fm : {"minres", "ml"}
        Factor extraction: minimum residual (psych's default) or maximum likelihood.

    Returns
    -------
    ScaleOmega
        The scale's coefficients as attributes; one row per item in ``to_frame()``.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the rows: as :func:`scale_reliability`, plus two
        items whose shared answers do not vary (no correlation), too few items for ``nfactors``, an
        unknown ``fm``, or a factor analysis that cannot be fitted.

    Warns
    -----
    ScaleupWarning
        A Heywood case: a uniqueness of the factor extraction (or of the higher-order factor) reached
        psych's lower bound 0.005. With ``fm="minres"`` psych's own values then depend on where its
        optimiser stops and can differ from these in the third decimal.

    Notes
    -----
    As ``psych::omega``: :math:`R` is the pairwise correlation matrix of the items (R's
    ``cor(use = "pairwise")``). ``nfactors`` factors are extracted (``psych::fa``: minres minimises
    the residual sum of squares of :math:`R - \Lambda\Lambda'` over the uniquenesses
    :math:`\psi_i \in [0.005, 1]`, starting from :math:`1 - smc_i`; ML the maximum-likelihood
    discrepancy), rotated by varimax and then by oblimin (gamma 0,
    GPArotation's gradient projection algorithm started at the varimax solution), giving a pattern
    :math:`F` and factor correlations :math:`\Phi`. With 3 or more factors, one factor extracted
    from :math:`\Phi` gives the loadings :math:`\gamma` of the factors on the general factor; with 2,
    :math:`\gamma = (\sqrt{|\phi_{12}|}, \operatorname{sign}(\phi_{12})\sqrt{|\phi_{12}|})`; with 1,
    :math:`\gamma = 1`. The Schmid-Leiman loadings are :math:`g = F\gamma` and
    :math:`F^*_{ij} = \operatorname{sign}(F_{ij}) F_{ij}\sqrt{1 - \gamma_j^2}`, with
    :math:`h^2_i` the communality of the varimax solution and :math:`u^2_i = 1 - h^2_i`. Items with
    a negative :math:`g_i` are flipped (psych's ``flip = TRUE``). Then, with
    :math:`V = \mathbf 1' R \mathbf 1` (after flipping),

    .. math::

        \omega_h = \frac{(\sum_i g_i)^2}{V}, \qquad
        \omega_t = \frac{V - \sum_i u^2_i}{V}, \qquad
        \omega_{lim} = \frac{\omega_h}{\omega_t},

    (McDonald 1999; Zinbarg et al. 2005), ``std_alpha``
    :math:`= \frac{k}{k-1}(1 - k / V)`, ``G6`` :math:`= 1 - \sum_i(1 - smc_i)/V` and ``ECV``
    :math:`= \sum_i g_i^2 / (\sum_i g_i^2 + \sum_{ij} F^{*2}_{ij})`. ``subscales`` computes the
    same three quantities on the items whose largest group loading is on each factor.

    psych stops its optimisers early (``optim``'s default tolerance, GPArotation's ``eps = 1e-5``):
    its printed values can differ from these by about 1e-5 (the tests compare with psych run with
    tight tolerances, at 1e-6).

    References
    ----------
    McDonald, R. P. (1999). Test Theory: A Unified Treatment. Lawrence Erlbaum.

    Zinbarg, R. E., Revelle, W., Yovel, I., & Li, W. (2005). Cronbach's alpha, Revelle's beta, and
    McDonald's omega_h: Their relations with each other and two alternative conceptualizations of
    reliability. Psychometrika, 70(1), 123-133.

    Schmid, J., & Leiman, J. M. (1957). The development of hierarchical factor solutions.
    Psychometrika, 22(1), 53-61.

    Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
    (version 2.2.9): ``omega``, ``schmid``, ``fa``.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"q1": [4, 5, 3, 2, 4, 5, 1, 3], "q2": [3, 4, 4, 2, 5, 3, 2, 2],
    ...                   "q3": [2, 3, 3, 4, 2, 1, 4, 2], "q4": [5, 3, 3, 1, 4, 3, 2, 5]})
    >>> res = sa.scale_omega(d, items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1, scale_max=5)
    >>> round(res.omega_total, 3), round(res.std_alpha, 3)
    (0.823, 0.808)
    """
    fn = _FN_OMEGA
    ok = isinstance(nfactors, (int, np.integer)) and not isinstance(nfactors, (bool, np.bool_))
    if not ok or not 1 <= nfactors <= 8:
        raise ScaleupDataError(f"{fn}: argument 'nfactors' must be a whole number from 1 to 8 (1 for a scale meant to "
                               f"be unidimensional); got {short_repr(nfactors)}.")
    nfactors = int(nfactors)
    if not isinstance(fm, str) or fm not in _FMS:
        raise ScaleupDataError(f"{fn}: argument 'fm' must be 'minres' (minimum residual, psych's default) or 'ml' "
                               f"(maximum likelihood); got {short_repr(fm)}.")
    x, items, reverse, lo, hi = _item_matrix(data, items, reverse, scale_min, scale_max, fn=fn, minimum=3)
    k = len(items)
    if k < 2 * nfactors + 1:
        raise ScaleupDataError(f"{fn}: {nfactors} factors need at least {2 * nfactors + 1} items (2 per factor and "
                               f"one more); items= names {k}. Use fewer factors.")
    present = ~np.isnan(x)
    for i in range(k):
        for j in range(i + 1, k):
            both = present[:, i] & present[:, j]
            if np.ptp(x[both, i]) == 0 or np.ptp(x[both, j]) == 0:
                still = items[i] if np.ptp(x[both, i]) == 0 else items[j]
                raise ScaleupDataError(
                    f"{fn}: table 'data', columns {items[i]!r} and {items[j]!r}: among the {int(both.sum())} "
                    f"respondents who answered both, every answer to {still!r} is the same, so their correlation "
                    "is not defined (pairwise). Drop one of them from items=.")
    r = _pairwise_cor_matrix(x)
    try:
        sl = schmid(r, nfactors, fm)
    except (FitError, np.linalg.LinAlgError) as e:
        raise ScaleupDataError(f"{fn}: table 'data': the {fm} factor analysis of items {items} with {nfactors} "
                               f"factor(s) could not be fitted ({e}). Try fm='minres', fewer factors, or check "
                               "items that are nearly copies of each other.") from None
    low = sl["psi"] <= PSI_LOWER * (1 + 1e-6)
    low_g = sl["psi_g"] is not None and bool(np.any(sl["psi_g"] <= PSI_LOWER * (1 + 1e-6)))
    if low.any() or low_g:
        where = (f"items {[it for it, b in zip(items, low) if b]}" if low.any()
                 else "the higher-order factor (a group factor loading about 1 on the general factor)")
        warnings.warn(f"{fn}: Heywood case in {where}: a uniqueness reached psych's lower bound 0.005. The factor "
                      "solution is at that bound; psych::omega's values then depend on where its optimiser stops "
                      "and can differ from these in the third decimal. Check items that nearly duplicate another, "
                      "or use fewer factors.",
                      ScaleupWarning, stacklevel=2)
    return _compute_omega(x, r, sl, items, reverse, lo, hi, nfactors, fm, bool(low.any() or low_g))


def _compute_omega(x, r, sl, items, reverse, lo, hi, nf, fm, heywood) -> ScaleOmega:
    n_obs, k = x.shape
    key = np.where(sl["g"] < 0, -1.0, 1.0)  # psych's flip
    m = r * key[:, None] * key[None, :]
    g = sl["g"] * key
    group = sl["group"] * key[:, None]
    vt, tr = float(m.sum()), float(np.trace(m))
    uniq = float(sl["u2"].sum())
    gsq = float(g.sum()) ** 2
    ev = np.concatenate([[np.sum(g**2)], np.sum(group**2, axis=0)])
    sub = np.argmax(np.abs(group), axis=1)
    total, general, grp = [(vt - uniq) / vt], [gsq / vt], [math.nan]
    grs = 0.0
    for j in range(nf):
        idx = np.flatnonzero(sub == j)
        if len(idx) == 0:
            total.append(math.nan), general.append(math.nan), grp.append(math.nan)
            continue
        vgr = float(m[np.ix_(idx, idx)].sum())
        gr = float(group[idx, j].sum())
        grs += gr**2
        gi = float(g[idx].sum()) ** 2
        total.append((gr**2 + gi) / vgr), general.append(gi / vgr), grp.append(gr**2 / vgr)
    grp[0] = grs / vt
    names = ["g"] + [f"F{j + 1}" for j in range(nf)]
    table = pd.DataFrame({"item": list(items), "reversed": [it in reverse for it in items], "flipped": key < 0,
                          "g": g})
    for j in range(nf):
        table[f"F{j + 1}"] = group[:, j]
    table["h2"], table["u2"], table["p2"] = sl["h2"], sl["u2"], sl["p2"]
    return ScaleOmega(
        omega_h=gsq / vt, omega_total=(vt - uniq) / vt, omega_limited=gsq / (vt - uniq),
        std_alpha=(vt - tr) / vt * k / (k - 1), G6=(vt + float(_smc(m).sum()) - tr) / vt,
        ECV=float(ev[0] / ev.sum()), nfactors=nf, fm=fm, heywood=heywood, n_obs=int(n_obs), n_items=int(k),
        n_missing=int(np.isnan(x).sum()), items=tuple(items), reverse=tuple(reverse),
        flipped=tuple(it for it, f in zip(items, key < 0) if f), scale_min=lo, scale_max=hi,
        subscales=pd.DataFrame({"factor": names, "omega_total": total, "omega_general": general,
                                  "omega_group": grp}),
        table=table,
    )
