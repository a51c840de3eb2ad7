r"""Patient-reported experience and outcome measures (PREM / PROM): internal consistency of a scale.

* :func:`scale_reliability` -- Cronbach's alpha of a multi-item scale (raw and standardized),
  Guttman's lambda 6, the average inter-item correlation, the signal/noise ratio, the Feldt
  confidence interval of alpha, and per item the item-total correlations and alpha if the item is
  deleted; identical to ``psych::alpha()`` (psych 2.2.9) with its default pairwise covariances.

References
----------
Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests. Psychometrika, 16(3),
297-334.

Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for coefficient alpha.
Applied Psychological Measurement, 11(1), 93-103.

Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
(R package version 2.2.9), functions ``alpha``, ``alpha.ci`` and ``smc``.
"""

from __future__ import annotations

import math
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
from .errors import ScaleupDataError

__all__ = ["scale_reliability", "ScaleReliability"]

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


def _smc(r: np.ndarray) -> np.ndarray:
    """psych::smc: 1 - 1 / diag(R^+), pseudo-inverse (tolerance sqrt(eps)), clamped to [0, 1]."""
    inv = np.linalg.pinv(r, rcond=math.sqrt(np.finfo(float).eps))
    with np.errstate(divide="ignore"):
        smc = 1.0 - 1.0 / np.diag(inv)
    return np.clip(smc, 0.0, 1.0)


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
def _names(value, arg: str, *, minimum: int) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) and not isinstance(value, (pd.Index, np.ndarray)):
        raise ScaleupDataError(
            f"{_FN}: argument {arg!r} must be a list of column names of table 'data', e.g. "
            f"['q1', 'q2', 'q3']; got {short_repr(value)}."
        )
    names = list(value)
    twice = sorted({short_repr(v) for v in names if names.count(v) > 1})
    if twice:
        raise ScaleupDataError(f"{_FN}: argument {arg!r} names {', '.join(twice)} more than once; list each item once.")
    if len(names) < minimum:
        raise ScaleupDataError(
            f"{_FN}: argument {arg!r} must name at least {minimum} item columns (the internal consistency of a "
            f"scale compares its items); got {len(names)}."
        )
    return names


def _bound(value, arg: str) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or abs(value) > _MAX_ABS:
        raise ScaleupDataError(
            f"{_FN}: argument {arg!r} must be a finite number (the lowest / highest score of the response scale, "
            f"e.g. 1 and 5), needed to reverse items; got {short_repr(value)}."
        )
    return float(value)


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
    items = _names(items, "items", minimum=2)
    require_columns(data, "data", items, label=f"{_FN}: table 'data'",
                    hint="Pass the names of the item columns as items=[...].")
    reverse = [] if reverse is None else _names(reverse, "reverse", minimum=0)
    unknown = [r for r in reverse if r not in items]
    if unknown:
        raise ScaleupDataError(f"{_FN}: argument 'reverse' names {unknown}, which are not in items={items}; "
                               "reversed items must be items of the scale.")
    lo = hi = None
    if reverse or scale_min is not None or scale_max is not None:
        if reverse and (scale_min is None or scale_max is None):
            raise ScaleupDataError(f"{_FN}: reversing items {reverse} needs scale_min= and scale_max= (the lowest "
                                   "and highest possible score, e.g. 1 and 5): a reversed score is "
                                   "scale_min + scale_max - score.")
        if scale_min is not None:
            lo = _bound(scale_min, "scale_min")
        if scale_max is not None:
            hi = _bound(scale_max, "scale_max")
        if lo is not None and hi is not None and not lo < hi:
            raise ScaleupDataError(f"{_FN}: scale_min ({lo:g}) must be below scale_max ({hi:g}).")
    where = f"{_FN}: table 'data'"
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
