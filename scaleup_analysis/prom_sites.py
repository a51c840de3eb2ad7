r"""Patient-reported experience and outcome measures (PREM / PROM): scale scores and site comparisons.

* :func:`score_scale` -- each respondent's scale score: the mean of the items answered (reversed
  items reversed), missing when too few items were answered (the "half rule" of SF-36 and FACT
  scoring); ``psych::scoreItems(..., totals = FALSE, impute = "none")`` when one answer suffices.
* :func:`prem_by_site` -- per unit (site) and/or per stratum of an equity dimension (deprivation
  quintile, rurality): respondents, mean score with its t interval, and, with case-mix
  covariates, the mean adjusted by indirect standardisation from a linear model (as ``lm`` and
  ``predict(..., se.fit = TRUE)``), with small cells suppressed before anything is shown.
  ``result.funnel()`` draws the units' (adjusted) means on a funnel plot.

The internal consistency of a scale is in :mod:`scaleup_analysis.prom` (``scale_reliability``,
``scale_omega``), whose item checks this module shares.

References
----------
Ware, J. E., Snow, K. K., Kosinski, M., & Gandek, B. (1993). SF-36 Health Survey: Manual and
Interpretation Guide. The Health Institute, New England Medical Center (a scale is scored when at
least half of its items are answered, a missing item taking the mean of the answered ones).

Fairclough, D. L., & Cella, D. F. (1996). Functional Assessment of Cancer Therapy (FACT-G):
non-response to individual questions. Quality of Life Research, 5(3), 321-329.

Iezzoni, L. I. (Ed.) (2013). Risk Adjustment for Measuring Health Care Outcomes (4th ed.). Health
Administration Press (indirect standardisation).

Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
(R package version 2.2.9), function ``scoreItems``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from ._checks import (
    check_level,
    check_magnitude,
    check_matrix_values,
    check_spread,
    checked_inputs,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
    short_repr,
)
from ._display import Displayed, num_cell, p_cell, text_table
from ._formula import aliased_frame, formula_parts, unaliased
from ._style import GREY, PALETTE, data_text, new_axes, numeric_ticks, styled
from .errors import RowsOmittedWarning, ScaleupDataError
from .narrative import Text
from .privacy import suppress_small_cells
from .prom import _MAX_ABS, _bound, _names

__all__ = ["score_scale", "prem_by_site", "PremBySite"]

_FN_SCORE = "score_scale()"
_FN = "prem_by_site()"


# ----------------------------------------------------------------------------------------------
# scale scores
# ----------------------------------------------------------------------------------------------
def _answers(data, items, reverse, scale_min, scale_max, fn):
    """The item columns of table 'data' as floats (respondents x items, missing NaN), reversed
    items reversed; the light checks of scoring (no variance or pairwise condition)."""
    items = _names(items, "items", minimum=1, fn=fn)
    require_columns(data, "data", items, label=f"{fn}: table 'data'",
                    hint="Pass the names of the item columns as items=[...].")
    reverse = [] if reverse is None else _names(reverse, "reverse", minimum=0, fn=fn)
    unknown = [r for r in reverse if r not in items]
    if unknown:
        raise ScaleupDataError(f"{fn}: argument 'reverse' names {unknown}, which are not in items={items}; "
                               "reversed items must be items of the scale.")
    lo = None if scale_min is None else _bound(scale_min, "scale_min", fn)
    hi = None if scale_max is None else _bound(scale_max, "scale_max", fn)
    if reverse and (lo is None or hi is None):
        raise ScaleupDataError(f"{fn}: reversing items {reverse} needs scale_min= and scale_max= (the lowest and "
                               "highest possible score, e.g. 1 and 5): a reversed score is "
                               "scale_min + scale_max - score.")
    if lo is not None and hi is not None and not lo < hi:
        raise ScaleupDataError(f"{fn}: scale_min ({lo:g}) must be below scale_max ({hi:g}).")
    where = f"{fn}: table 'data'"
    cols = []
    for it in items:
        x = numeric_column(data, it, where, arg="items", missing=True)
        check_magnitude(x, data.index, f"{where}, column {it!r}", max_abs=_MAX_ABS)
        for bound, bad, what in ((lo, x < (lo if lo is not None else 0), "below scale_min"),
                                 (hi, x > (hi if hi is not None else 0), "above scale_max")):
            if bound is not None and bad.any():
                raise ScaleupDataError(f"{where}, column {it!r}: {rows_text(data, bad, label='first:')} are {what} "
                                       f"= {bound:g} (values {first_values(x[bad])}). Correct the values or the "
                                       "scale range.")
        cols.append((lo + hi) - x if it in reverse else x)
    return np.column_stack(cols), items


def _needed(min_answered, k: int, fn: str) -> int:
    """The number of items a respondent must answer: a share of the ``k`` items (a float in (0, 1],
    rounded up) or a count (a whole number from 1 to ``k``)."""
    if isinstance(min_answered, (bool, np.bool_)) or not isinstance(min_answered, (int, float, np.integer,
                                                                                     np.floating)):
        ok = False
    elif isinstance(min_answered, (int, np.integer)):
        ok = 1 <= min_answered <= k
    else:
        ok = math.isfinite(min_answered) and 0 < min_answered <= 1
    if not ok:
        raise ScaleupDataError(
            f"{fn}: argument 'min_answered' must be a share of the {k} items, a float in (0, 1] (0.5: at least half "
            f"answered), or a whole number of items from 1 to {k}; got {short_repr(min_answered)}.")
    if isinstance(min_answered, (int, np.integer)):
        return int(min_answered)
    return max(1, math.ceil(float(min_answered) * k - 1e-9))


@checked_inputs
def score_scale(
    data: pd.DataFrame,
    *,
    items: Sequence[str],
    reverse: Sequence[str] | None = None,
    scale_min: float | None = None,
    scale_max: float | None = None,
    min_answered: float = 0.5,
) -> pd.Series:
    r"""Each respondent's score on a multi-item scale: the mean of the items answered.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent.
    items : list of str
        The item columns (at least 1), numeric scores; missing answers allowed.
    reverse : list of str, optional
        Items scored in the opposite direction, reversed as ``scale_min + scale_max - score``.
    scale_min, scale_max : float, optional
        Lowest and highest possible score of the response scale; required with ``reverse``. When
        given, a score outside the range is an error.
    min_answered : float or int
        The fewest items a respondent must answer to have a score: a float is a share of the
        items (``0.5``, the default: at least half, rounded up, e.g. 3 of 5), an int a number of
        items (``1``: any answer gives a score, as ``psych::scoreItems``). ``1.0`` (a float) means
        every item.

    Returns
    -------
    pandas.Series
        The scores, named ``scale_score``, with the index of ``data`` (assign it as a column:
        ``data["score"] = sa.score_scale(data, ...)``); missing for a respondent with too few
        items answered.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the rows: a missing item column, a non-numeric or
        infinite score, a score outside ``[scale_min, scale_max]``, a reversed item without the
        range, or a ``min_answered`` that is not a share or a count of the items.

    Notes
    -----
    With :math:`A_i` the items respondent :math:`i` answered (after reversal
    :math:`x \mapsto` ``scale_min + scale_max`` :math:`- x`) and :math:`m` the number required
    (``ceil(min_answered * k)`` for a share of the :math:`k` items),

    .. math:: s_i = \frac{1}{|A_i|}\sum_{j \in A_i} x_{ij} \quad\text{if } |A_i| \ge m,
              \text{ else missing.}

    Taking the mean of the answered items is the same as replacing each missing item by the mean
    of the respondent's other items (the SF-36 "half-scale" rule, Ware et al. 1993; the FACT rule
    of more than half answered, Fairclough & Cella 1996). ``psych::scoreItems(keys, items,
    totals = FALSE, impute = "none", min = scale_min, max = scale_max)`` computes the same mean
    with no minimum (one answer suffices): it equals this function with ``min_answered=1``.
    psych's default ``impute = "median"`` instead replaces a missing item by the item's median
    over respondents, which this function does not do. The scale's internal consistency is given
    by :func:`~scaleup_analysis.scale_reliability` (whose scale score, with every respondent kept,
    is this score with ``min_answered=1``).

    References
    ----------
    Ware, J. E., Snow, K. K., Kosinski, M., & Gandek, B. (1993). SF-36 Health Survey: Manual and
    Interpretation Guide. The Health Institute, New England Medical Center.

    Fairclough, D. L., & Cella, D. F. (1996). Functional Assessment of Cancer Therapy (FACT-G):
    non-response to individual questions. Quality of Life Research, 5(3), 321-329.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"q1": [4, 5, None, 2], "q2": [3, None, None, 2], "q3": [2, 1, 3, None]})
    >>> sa.score_scale(d, items=["q1", "q2", "q3"], reverse=["q3"], scale_min=1, scale_max=5).tolist()
    [3.6666666666666665, 5.0, nan, 2.0]
    """
    fn = _FN_SCORE
    x, items = _answers(data, items, reverse, scale_min, scale_max, fn)
    need = _needed(min_answered, len(items), fn)
    answered = (~np.isnan(x)).sum(axis=1)
    total = np.where(np.isnan(x), 0.0, x).sum(axis=1)
    score = np.full(len(x), np.nan)
    ok = answered >= need
    score[ok] = total[ok] / answered[ok]
    return pd.Series(score, index=data.index, name="scale_score")


# ----------------------------------------------------------------------------------------------
# comparing sites
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class PremBySite(Displayed):
    """Result of :func:`prem_by_site`.

    Attributes
    ----------
    score : str
        The score column.
    unit, by : str or None
        The unit column and the equity-dimension column (``None`` when not given).
    formula : str or None
        The case-mix covariates as a formula (column names of a list, not aliases); ``None``
        without case-mix adjustment.
    overall_mean : float
        Mean score of the respondents used (the target of the adjusted means).
    sigma : float
        Residual standard deviation of the case-mix model (``summary(lm)$sigma``); ``nan``
        without covariates.
    r_squared : float
        Share of the variance of the score explained by the case mix; ``nan`` without covariates.
    df_resid : int
        Residual degrees of freedom of the case-mix model (0 without covariates).
    coef : pandas.DataFrame
        The case-mix model's coefficients as ``summary(lm(...))``: ``term``, ``estimate``,
        ``se``, ``statistic`` (t), ``pvalue``; empty without covariates.
    level : float
    threshold : int
        Smallest number of respondents a published cell may have.
    n_obs : int
        Respondents used (score, unit, stratum and covariates present).
    n_units : int
        Cells of the table (units, strata, or unit x stratum).
    n_omitted : int
        Respondents left out for a missing score, stratum or covariate.
    n_suppressed : int
        Cells suppressed (fewer than ``threshold`` respondents, or hiding such a cell).
    table : pandas.DataFrame
        One row per cell (see :meth:`to_frame`), small cells already blanked.
    casemix : str
        ``"pooled"`` or ``"within"``: how the case-mix coefficients were estimated.
    """

    score: str
    unit: str | None
    by: str | None
    formula: str | None
    overall_mean: float
    sigma: float
    r_squared: float
    df_resid: int
    coef: pd.DataFrame = field(repr=False)
    level: float
    threshold: int
    n_obs: int
    n_units: int
    n_omitted: int
    n_suppressed: int
    table: pd.DataFrame = field(repr=False)
    casemix: str = "pooled"

    def to_frame(self) -> pd.DataFrame:
        """One row per cell: ``unit`` and/or ``stratum``, ``n`` (respondents), ``mean`` (raw
        mean score), ``sd``, ``mean_se`` (``sd / sqrt(n)``), ``mean_ci_low``, ``mean_ci_high``
        (t interval); with covariates ``expected_mean`` (mean of the case-mix model's fitted values
        of the cell's respondents), ``adjusted_mean`` (``overall_mean + mean - expected_mean``),
        ``adjusted_mean_se``, ``adjusted_mean_ci_low``, ``adjusted_mean_ci_high``; and
        ``suppressed`` (the cell's counts and values are blanked)."""
        return self.table.copy()

    def funnel(self, *, adjusted: bool | None = None, **kw):
        """Funnel plot of the units' means: ``sa.institutional_funnel(frame, kind="mean",
        unit="unit", n="n", mean="mean", sd="sd", **kw)`` on the published (not suppressed) units.

        With ``adjusted`` (the default when covariates were given) the frame's ``mean`` is each
        unit's ``adjusted_mean`` and its ``sd`` the model's residual SD ``sigma`` (so the funnel's
        pooled within-unit SD is ``sigma`` and a unit's standard error ``sigma / sqrt(n)``, the
        expected mean taken as fixed); otherwise the raw means and the units' own SDs. Only for a
        table by unit without ``by``. Returns an :class:`~scaleup_analysis.InstitutionalFunnel`;
        draw it with ``.plot()``."""
        from .monitoring.funnel import institutional_funnel

        if self.unit is None or self.by is not None:
            raise ScaleupDataError(f"{_FN}: funnel() compares units: call prem_by_site with unit= and without by= "
                                   "(a funnel of unit x stratum cells would mix two comparisons).")
        if adjusted is None:
            adjusted = self.formula is not None
        if adjusted and self.formula is None:
            raise ScaleupDataError(f"{_FN}: funnel(adjusted=True) needs the case-mix adjusted means: call "
                                   "prem_by_site with covariates=.")
        t = self.table.loc[~self.table["suppressed"]]
        frame = pd.DataFrame({"unit": t["unit"].to_numpy(), "n": t["n"].to_numpy(float),
                              "mean": t["adjusted_mean" if adjusted else "mean"].to_numpy(float),
                              "sd": np.full(len(t), self.sigma) if adjusted else t["sd"].to_numpy(float)})
        return institutional_funnel(frame, kind="mean", unit="unit", n="n", mean="mean", sd="sd", **kw)

    def _repr_fields(self) -> dict:
        out = {"score": self.score, "unit": self.unit, "by": self.by, "n_obs": self.n_obs, "n_units": self.n_units,
               "overall_mean": self.overall_mean, "n_suppressed": self.n_suppressed}
        if self.formula is not None:
            out.update(formula=self.formula, sigma=self.sigma)
        return out

    def _labels(self) -> list[str]:
        keys = [k for k in ("unit", "stratum") if k in self.table]
        return [" / ".join(data_text(r[k]) for k in keys) for r in self.table[keys].to_dict("records")]

    def _summary(self, tx) -> str:
        lines = [tx("Scores of {score}: {n} cells compared, {rows} respondents, overall mean = {mean}.",
                    score=self.score, n=tx.int(self.n_units), rows=tx.int(self.n_obs),
                    mean=tx.num(self.overall_mean, 2))]
        if self.n_omitted:
            lines.append(tx("{n} respondents left out (missing score, stratum or covariate).",
                            n=tx.int(self.n_omitted)))
        if self.formula is not None and self.casemix == "within":
            lines.append(tx("Case-mix adjustment with within-unit coefficients: linear model of {score} {formula} "
                            "with a fixed effect per unit; residual SD = {sigma}, R2 = {r2}.", score=self.score,
                            formula=self.formula, sigma=tx.num(self.sigma, 3), r2=tx.num(self.r_squared, 3)))
        elif self.formula is not None:
            lines.append(tx("Case-mix adjustment (indirect standardisation): linear model of {score} {formula}, "
                            "without the unit; residual SD = {sigma}, R2 = {r2}.", score=self.score,
                            formula=self.formula, sigma=tx.num(self.sigma, 3), r2=tx.num(self.r_squared, 3)))
        if self.n_suppressed:
            lines.append(tx("{n} cells suppressed (fewer than {t} respondents, or hiding such a cell).",
                            n=tx.int(self.n_suppressed), t=tx.int(self.threshold)))
        adj = self.formula is not None
        rows = []
        for label, r in zip(self._labels(), self.table.to_dict("records")):
            if r["suppressed"]:
                rows.append([label, tx("suppressed"), "", ""] if adj else [label, tx("suppressed"), ""])
                continue
            cells = [label, tx.int(r["n"]), tx.ci(r["mean"], r["mean_ci_low"], r["mean_ci_high"], digits=2,
                                                   level=self.level)
                     if r["n"] > 1 else num_cell(tx, r["mean"], 2)]
            if adj:
                cells.append(tx.ci(r["adjusted_mean"], r["adjusted_mean_ci_low"], r["adjusted_mean_ci_high"],
                                   digits=2, level=self.level))
            rows.append(cells)
        header = [tx("compared unit"), tx("n"), tx("raw mean score")] + ([tx("adjusted mean score")] if adj else [])
        lines += ["", text_table(header, rows, left=(0,))]
        if adj:
            crows = [[str(r.term), tx.num(r.estimate, 4), tx.num(r.se, 4), tx.num(r.statistic, 3),
                      p_cell(tx, r.pvalue)] for r in self.coef.itertuples(index=False)]
            lines += ["", tx("Case-mix model:"), text_table([tx("term"), tx("estimate"), tx("SE"), "t", "p"], crows)]
        return "\n".join(lines)

    @styled
    def plot_means(self, *, title: str | None = None, ax=None):
        """Each cell's raw mean score with its interval and, with covariates, its adjusted mean with
        its interval; a vertical line at the overall mean; suppressed cells named but not drawn.
        Returns the Axes."""
        tx = Text()
        t = self.table
        k = len(t)
        adj = self.formula is not None
        ax = new_axes(ax, (7.0, max(2.8, min(9.5, 1.2 + 0.32 * k * (1.4 if adj else 1)))))
        y = np.arange(k)[::-1].astype(float)
        shown = ~t["suppressed"].to_numpy(bool)
        series = [("mean", tx("raw mean score"), PALETTE[0], 0.15 if adj else 0.0)]
        if adj:
            series.append(("adjusted_mean", tx("adjusted mean score (case mix)"), PALETTE[1], -0.15))
        for col, label, colour, dy in series:
            m = t[col].to_numpy(float)
            lo, hi = t[f"{col}_ci_low"].to_numpy(float), t[f"{col}_ci_high"].to_numpy(float)
            ok = shown & np.isfinite(lo) & np.isfinite(hi)
            ax.hlines(y[ok] + dy, lo[ok], hi[ok], color=colour, lw=1.8)
            ax.plot(m[shown], y[shown] + dy, "o" if col == "mean" else "D", color=colour, ms=5, label=label,
                    linestyle="none")
        vals = t[[c for c in t.columns if c.endswith(("mean", "_ci_low", "_ci_high")) and c != "expected_mean"]]
        vals = np.append(vals.to_numpy(float).ravel(), self.overall_mean)
        low, high = np.nanmin(vals), np.nanmax(vals)
        pad = 0.06 * (high - low) if high > low else 0.5
        ax.set_xlim(low - pad, high + pad)
        numeric_ticks(ax.xaxis, tx)
        ax.axvline(self.overall_mean, color=GREY, lw=1.2, linestyle="--", label=tx("overall mean"))
        labels = [lab if s else tx("{cell} (suppressed)", cell=lab) for lab, s in zip(self._labels(), shown)]
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_ylim(-0.7, k - 0.3)
        ax.grid(False, axis="y")
        ax.set_xlabel(tx("Mean score of {score}, {level} interval", score=data_text(self.score),
                         level=tx.pct(self.level)))
        ax.set_title(tx("Patient-reported scores by unit") if title is None else title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize="small", frameon=False)
        return ax


def _design_order(X: pd.DataFrame, rhs: str) -> list[str]:
    """Design columns in R's order: the intercept, then the formula's terms in turn (patsy puts
    categorical terms first)."""
    info = X.design_info
    cols: list[str] = []
    for term in patsy.ModelDesc.from_formula("~ " + rhs).rhs_termlist:
        sl = info.term_name_slices.get(term.name())
        if sl is not None:
            cols += [c for c in info.column_names[sl] if c not in cols]
    return cols + [c for c in X.columns if c not in cols]


def _column(value, arg: str, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a column name of table 'data'"
                               + (" or None" if optional else "") + f"; got {short_repr(value)}.")
    return value


def _threshold(value) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 1
    if not ok:
        raise ScaleupDataError(f"{_FN}: argument 'threshold' must be a whole number >= 1 (the smallest number of "
                               f"respondents a published cell may have, 5 by default); got {short_repr(value)}.")
    return int(value)


def _ols(y: np.ndarray, X: np.ndarray):
    """Least squares by QR: coefficients, the R factor, residual variance and degrees of freedom."""
    q, r = np.linalg.qr(X)
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    df = len(y) - X.shape[1]
    return beta, r, float(resid @ resid) / df, df, X @ beta


@checked_inputs
def prem_by_site(
    data: pd.DataFrame,
    *,
    score: str,
    unit: str | None = "site_id",
    covariates: Sequence[str] | str | None = None,
    by: str | None = None,
    casemix: str = "pooled",
    level: float = 0.95,
    threshold: int = 5,
) -> PremBySite:
    r"""Patient-reported scores by site (and by equity stratum), raw and adjusted for case mix.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per respondent, with the scale score (e.g. from :func:`score_scale`).
    score : str
        The score column (numeric; a missing score leaves the respondent out).
    unit : str or None
        The column of the units compared (sites); ``None`` to compare the strata of ``by`` only.
    covariates : list of str or str, optional
        The case-mix covariates, as :func:`~scaleup_analysis.indirect_standardization`: a list
        of column names (never evaluated as code; text or True/False columns are dummy-coded with
        their first level as reference, as R's ``lm`` does with factors) or a formula string such
        as ``"age + female + C(deprivation_quintile)"``. Without it, raw means only.
    casemix : {"pooled", "within"}
        How the case-mix coefficients are estimated: ``"pooled"``, a model without the unit
        (indirect standardisation, as :func:`~scaleup_analysis.indirect_standardization`);
        ``"within"``, a model with a fixed effect per unit, so that the coefficients come from the
        differences between respondents of the same unit only (the patient-mix adjustment of the
        HCAHPS survey): use it when the units' case mix differs and their performance may too
        (see Notes). Needs ``unit``.
    by : str, optional
        An equity dimension (deprivation quintile, rurality; a column of respondents or of sites):
        the table is given per unit x stratum (or per stratum when ``unit`` is None).
    level : float
        Coverage of the intervals.
    threshold : int
        Smallest number of respondents a published cell may have (5, the CIHI / Statistics Canada
        rule): smaller cells, and the cells that would let them be recovered from the totals, are
        blanked by :func:`~scaleup_analysis.suppress_small_cells`.

    Returns
    -------
    PremBySite
        One row per cell in ``to_frame()``; ``funnel()`` for a funnel plot of the units' means;
        ``plot_means()``.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the rows: a missing column, a non-numeric or
        infinite score, a missing unit, neither ``unit`` nor ``by``, collinear covariates, too few
        respondents for the case-mix model.

    Warns
    -----
    RowsOmittedWarning
        Respondents with a missing score, stratum or covariate are left out of everything (as R's
        ``lm`` with ``na.action = na.omit``).

    Notes
    -----
    For a cell :math:`c` (a unit, a stratum or both) with :math:`n_c` respondents, the raw mean
    :math:`\bar y_c`, the standard deviation :math:`s_c` and the interval
    :math:`\bar y_c \pm t_{1-p/2,\,n_c-1}\, s_c/\sqrt{n_c}` (:math:`p = 1 -` ``level``; R's
    ``t.test``).

    With covariates, the linear model :math:`y = X\beta + \varepsilon` (the case mix, without the
    unit) is fitted by least squares on all :math:`N` respondents, giving the fitted values
    :math:`\hat y`, the residual variance :math:`\hat\sigma^2 = \mathrm{RSS}/(N - p)` and the hat
    matrix :math:`H = X(X'X)^{-1}X'`. The cell's expected mean (what its respondents would score
    with the average performance) and its indirectly standardised mean are

    .. math::

        E_c = \frac{1}{n_c}\sum_{i \in c} \hat y_i = \bar x_c'\hat\beta, \qquad
        A_c = \bar y + (\bar y_c - E_c),

    :math:`\bar y` the overall mean. :math:`\bar y_c - E_c = a_c'(I - H)y` with :math:`a_c` the
    vector of :math:`1/n_c` on the cell's rows, and :math:`\mathbf 1'(I - H) = 0` (the model has
    an intercept), so that whatever the true means (unit effects included), with independent
    errors of variance :math:`\sigma^2`, the exact variance is

    .. math::

        \operatorname{Var}(A_c) = \sigma^2\Bigl(\frac{1}{N} + \frac{1}{n_c}
        - \bar x_c'(X'X)^{-1}\bar x_c\Bigr),

    estimated with :math:`\hat\sigma^2` (conservative when the units do differ, since the model
    without the unit then has larger residuals); :math:`\hat\sigma^2\,\bar x_c'(X'X)^{-1}\bar x_c`
    is ``predict(fit, se.fit = TRUE)$se.fit^2`` at the cell's mean covariates. The interval uses
    :math:`t_{1-p/2,\,N-p}`. Cells are then suppressed (``suppressed``; counts and values blanked)
    with complementary suppression within the whole table, or within each unit and each stratum
    for a unit x stratum table, since the overall mean and the number of respondents are shown.

    The pooled case-mix model has no unit term (indirect standardisation, as
    :func:`~scaleup_analysis.indirect_standardization`): when the case mix differs between units
    that also differ in performance, the fitted coefficients take a part of the unit effects for
    case mix, and the adjusted differences between units are shrunk by about the between-unit
    share of the covariates' variance (the tests measure it on a simulation with known truth).

    With ``casemix="within"`` the model is :math:`y = X\beta + D\gamma + \varepsilon` with
    :math:`D` the indicators of the units (R's ``lm(score ~ covariates + factor(unit))``); with
    :math:`\hat\beta_w` its covariate coefficients (the intercept and the unit effects left
    aside) and :math:`d_c = \bar x_c - \bar x` (the cell's mean covariates minus the overall
    ones), :math:`E_c = \bar y + d_c'\hat\beta_w` and
    :math:`A_c = \bar y_c - d_c'\hat\beta_w`. :math:`A_c = (a_c - Z(Z'Z)^{-1}e_c)'y` with
    :math:`Z = [X\ D]` and :math:`e_c` the vector :math:`d_c` padded with zeros, so
    :math:`\operatorname{Var}(A_c) = \sigma^2(1/n_c - 2\bar z_c'(Z'Z)^{-1}e_c + e_c'(Z'Z)^{-1}e_c)`
    (for a unit, :math:`\sigma^2/n_c + d_c'\operatorname{Var}(\hat\beta_w)d_c`, the unit means
    being uncorrelated with the within-unit coefficients), with :math:`\hat\sigma^2` of that model
    and :math:`t_{1-p/2,\,N-p-u+1}`. ``coef`` then holds the covariate coefficients only.

    References
    ----------
    Iezzoni, L. I. (Ed.) (2013). Risk Adjustment for Measuring Health Care Outcomes (4th ed.).
    Health Administration Press.

    Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Statistics
    in Medicine, 24(8), 1185-1202.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"site_id": list("AAAAAABBBBBBCCCCCC"),
    ...                   "age": [30, 40, 50, 60, 45, 35, 60, 70, 80, 75, 65, 55, 40, 50, 45, 55, 60, 35],
    ...                   "score": [4.0, 3.5, 3.8, 3.0, 4.2, 3.9, 3.1, 2.8, 2.5, 2.9, 3.4, 3.6, 3.7, 3.3, 4.0,
    ...                             3.2, 3.0, 4.1]})
    >>> res = sa.prem_by_site(d, score="score", covariates=["age"])
    >>> res.to_frame()[["unit", "n", "mean", "adjusted_mean", "adjusted_mean_se"]].round(3)
      unit  n   mean  adjusted_mean  adjusted_mean_se
    0    A  6  3.733          3.445             0.095
    1    B  6  3.050          3.500             0.081
    2    C  6  3.550          3.389             0.100
    """
    level = check_level(level, _FN)
    threshold = _threshold(threshold)
    if casemix not in ("pooled", "within"):
        raise ScaleupDataError(f"{_FN}: casemix must be 'pooled' or 'within', got {casemix!r}.")
    if casemix == "within" and (unit is None or covariates is None):
        raise ScaleupDataError(f"{_FN}: casemix='within' estimates the case mix within each unit: it needs unit= "
                               "and covariates=.")
    score = _column(score, "score", optional=False)
    unit = _column(unit, "unit", optional=True)
    by = _column(by, "by", optional=True)
    if unit is None and by is None:
        raise ScaleupDataError(f"{_FN}: give unit= (the sites compared), by= (an equity dimension), or both.")
    if unit is not None and unit == by:
        raise ScaleupDataError(f"{_FN}: unit= and by= name the same column {unit!r}; by= is another dimension.")
    label = f"{_FN}: table 'data'"
    rhs, aliases, shown = (None, {}, None)
    if covariates is not None:
        rhs, aliases, shown = formula_parts(covariates, where=_FN, arg="covariates", outcome="score=",
                                            examples=("age + female + C(deprivation_quintile)", "age + female",
                                                      ["age", "female"]))
    keys = [k for k in (unit, by) if k is not None]
    require_columns(data, "data", list(dict.fromkeys([score, *keys, *aliases])), label=label,
                    hint="Name existing columns in score=, unit=, by=, covariates=.")
    frame = data.reset_index(drop=True)
    if unit is not None and frame[unit].isna().any():
        raise ScaleupDataError(f"{label}, column {unit!r} (argument 'unit'): missing unit in "
                               f"{rows_text(data, frame[unit].isna().to_numpy(), label='first:')}. Every respondent "
                               "must name its unit.")
    y = numeric_column(data, score, label, arg="score", missing=True)
    check_magnitude(y, data.index, f"{label}, column {score!r}", max_abs=1e150)
    complete = ~np.isnan(y)
    if by is not None:
        complete &= frame[by].notna().to_numpy()
    X = None
    if rhs is not None:
        src = aliased_frame(frame, aliases)
        try:
            X0 = patsy.dmatrix("~ " + rhs, src, NA_action="drop", return_type="dataframe", eval_env=0)
        except patsy.PatsyError as exc:
            raise ScaleupDataError(f"{_FN}: cannot build the covariates from {shown!r} on table 'data': {exc}. "
                                   "Check that every name is a column of data (or pass a list of column names)."
                                   ) from None
        complete &= frame.index.isin(X0.index)
    n_omitted = int((~complete).sum())
    if n_omitted:
        warnings.warn(f"{_FN}: {rows_text(data, ~complete, label='first:')} left out because of a missing score"
                      + (", stratum" if by is not None else "") + (" or covariate" if rhs is not None else "")
                      + " (as R's lm, na.action = na.omit).", RowsOmittedWarning, stacklevel=3)
    if not complete.any():
        raise ScaleupDataError(f"{label}: no respondent with a score" + (", a stratum" if by else "")
                               + (" and the covariates" if rhs else "") + "; nothing to compare.")
    yc = y[complete]
    cells = frame.loc[complete, keys].reset_index(drop=True)
    coef = pd.DataFrame(columns=["term", "estimate", "se", "statistic", "pvalue"])
    sigma = r2 = math.nan
    df_resid = 0
    if rhs is not None:
        check_spread(yc, f"{label}, column {score!r}", f"the {len(yc)} respondents used",
                     consequence="the case-mix model has nothing to explain")
        if np.ptp(yc) == 0:
            raise ScaleupDataError(f"{label}, column {score!r}: every respondent has the same score "
                                   f"({first_values(yc[:1])}); there is nothing to adjust for case mix.")
        Xd = patsy.dmatrix("~ " + rhs, src.loc[complete], NA_action="raise", return_type="dataframe", eval_env=0)
        cols = _design_order(Xd, rhs)
        names = [unaliased(c, aliases) for c in cols]
        X = Xd[cols].to_numpy(float)
        check_matrix_values(X, names, data.index[complete], f"{label}, covariate(s)", max_abs=1e100)
        if np.linalg.matrix_rank(X) < X.shape[1]:
            raise ScaleupDataError(f"{label}: the covariates {shown!r} are collinear (a constant or redundant column "
                                   f"among {names}); R's lm would give NA coefficients. Remove the redundant "
                                   "covariate.")
        if len(yc) <= X.shape[1]:
            raise ScaleupDataError(f"{label}: {len(yc)} respondents for {X.shape[1]} coefficients of the case-mix "
                                   "model; it needs more respondents than coefficients.")
        p_cov = X.shape[1]
        if casemix == "within":
            levels = sorted(cells[unit].unique(), key=str)
            if len(levels) < 2:
                raise ScaleupDataError(f"{label}, column {unit!r}: casemix='within' needs at least 2 units.")
            codes = pd.Categorical(cells[unit], categories=levels).codes
            D = np.zeros((len(yc), len(levels) - 1))
            D[codes > 0, codes[codes > 0] - 1] = 1.0
            X = np.hstack([X, D])
            if np.linalg.matrix_rank(X) < X.shape[1]:
                raise ScaleupDataError(f"{label}: a covariate of {shown!r} is constant within every unit (collinear "
                                       "with the unit effects): casemix='within' cannot estimate it. Remove it or use "
                                       "casemix='pooled'.")
            if len(yc) <= X.shape[1]:
                raise ScaleupDataError(f"{label}: {len(yc)} respondents for {X.shape[1]} coefficients of the case-mix "
                                       "model with a unit effect each; it needs more respondents than coefficients.")
        beta, rfac, s2, df_resid, fitted = _ols(yc, X)
        sigma = math.sqrt(s2)
        tss = float(np.sum((yc - yc.mean()) ** 2))
        r2 = 1 - s2 * df_resid / tss if tss > 0 else math.nan
        rinv = np.linalg.inv(rfac)
        se_b = sigma * np.sqrt(np.sum(rinv ** 2, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            tval = beta / se_b
        coef = pd.DataFrame({"term": names, "estimate": beta[:p_cov], "se": se_b[:p_cov],
                             "statistic": tval[:p_cov], "pvalue": 2 * stats.t.sf(np.abs(tval[:p_cov]), df_resid)})
        if casemix == "within":
            coef = coef.iloc[1:].reset_index(drop=True)  # the intercept depends on the reference unit
            xbar_all = X[:, 1:p_cov].mean(axis=0)
    N = len(yc)
    ybar = float(yc.mean())
    out_keys = {"unit": unit, "stratum": by}
    groups = cells.groupby(keys, sort=True, observed=True, dropna=False).indices
    a = 1 - level
    rows = []
    for key, idx in groups.items():
        key = key if isinstance(key, tuple) else (key,)
        n = len(idx)
        v = yc[idx]
        m = float(v.mean())
        sd = float(v.std(ddof=1)) if n > 1 else math.nan
        se = sd / math.sqrt(n)
        half = stats.t.ppf(1 - a / 2, n - 1) * se if n > 1 else math.nan
        row = dict(zip([k for k, c in out_keys.items() if c is not None], key))
        row.update(n=n, mean=m, sd=sd, mean_se=se, mean_ci_low=m - half, mean_ci_high=m + half)
        if X is not None and casemix == "within":
            zbar = X[idx].mean(axis=0)
            d = zbar[1:p_cov] - xbar_all
            shift = float(d @ beta[1:p_cov])
            e_vec = np.zeros(X.shape[1])
            e_vec[1:p_cov] = d
            u = np.linalg.solve(rfac.T, zbar)
            w = np.linalg.solve(rfac.T, e_vec)
            se_a = sigma * math.sqrt(max(0.0, 1.0 / n - 2.0 * float(u @ w) + float(w @ w)))
            ha = stats.t.ppf(1 - a / 2, df_resid) * se_a
            row.update(expected_mean=ybar + shift, adjusted_mean=m - shift, adjusted_mean_se=se_a,
                       adjusted_mean_ci_low=m - shift - ha, adjusted_mean_ci_high=m - shift + ha)
        elif X is not None:
            xbar = X[idx].mean(axis=0)
            e = float(fitted[idx].mean())
            lev = float(np.sum(np.linalg.solve(rfac.T, xbar) ** 2))
            adj = ybar + m - e
            se_a = sigma * math.sqrt(max(0.0, 1.0 / N + 1.0 / n - lev))
            ha = stats.t.ppf(1 - a / 2, df_resid) * se_a
            row.update(expected_mean=e, adjusted_mean=adj, adjusted_mean_se=se_a, adjusted_mean_ci_low=adj - ha,
                       adjusted_mean_ci_high=adj + ha)
        rows.append(row)
    table = pd.DataFrame(rows)
    values = [c for c in table.columns if c not in ("unit", "stratum", "n")]
    margins = None if len(keys) == 1 else ["unit", "stratum"]
    table = suppress_small_cells(table, counts="n", values=values, threshold=threshold, by=margins)
    return PremBySite(
        score=score, unit=unit, by=by, formula=shown, overall_mean=ybar, sigma=sigma, r_squared=r2,
        df_resid=int(df_resid), coef=coef, level=level, threshold=threshold, n_obs=N, n_units=len(table),
        n_omitted=n_omitted, n_suppressed=int(table["suppressed"].sum()), table=table, casemix=casemix)
