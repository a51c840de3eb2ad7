"""Statistical process control: runs analysis (Anhøj rules) and Shewhart control charts.

The computations follow the R package qicharts2 (Anhøj 2023) so that a chart drawn here and one
drawn with ``qicharts2::qic()`` carry the same centre line, limits and signals:

* runs analysis: observations on the centre line are ignored ("not useful"); an unusually long run
  (``longest_run > round(log2(n_useful)) + 3``) or unusually few crossings
  (``n_crossings < qbinom(0.05, n_useful - 1, 0.5)``) signal non-random variation;
* Shewhart 3-sigma limits as in Montgomery (2009) and qicharts2 (moving ranges screened at
  3.267 x average moving range, as qicharts2 does by default; c4 for xbar/s charts; per-point
  limits for p/u charts; Laney's P' and U' charts with sigma_z from moving ranges of z-scores).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from .._checks import MAX_SHOWN, check_magnitude, checked_inputs, first_values, numeric_column, rows_text, short_repr
from .._display import Displayed
from .._style import GREY, NEUTRAL, PALETTE, WORSE, styled, ticks_inside
from ..errors import ScaleupDataError, ScaleupWarning
from ..i18n import N_
from ._plotting import unit_labels

__all__ = ["runs_analysis", "control_chart", "RunsAnalysis", "ControlChart"]

#: Largest magnitude of a charted value or denominator: squares (standard deviations) must stay finite.
_MAX_ABS = 1e100

_CHARTS = ("run", "i", "mr", "xbar", "s", "p", "u", "c", "pp", "up")
_NEEDS_N = ("p", "u", "pp", "up")
#: Charts whose limits at a point depend on its subgroup size (hidden with the point by ``plot(hide=)``).
_SIZED_LIMITS = ("p", "u", "pp", "up", "xbar", "s")
#: d2 for subgroups of two (moving range -> sigma), Montgomery (2009) Appendix VI.
_D2 = 1.128
#: D4 for subgroups of two (upper limit of a moving range), Montgomery (2009) Appendix VI.
_D4 = 3.267


# --------------------------------------------------------------------------------------------
# runs analysis
# --------------------------------------------------------------------------------------------
def _crossings_min(n_useful: int) -> int:
    """``qbinom(0.05, n_useful - 1, 0.5)``: smallest k with P(X <= k) >= 0.05, X ~ Bin(n - 1, 1/2)."""
    size = max(n_useful - 1, 0)
    cdf = stats.binom.cdf(np.arange(size + 1), size, 0.5)
    # R's qbinom allows for rounding with a relative fuzz of 64 * DBL_EPSILON
    return int(np.argmax(cdf >= 0.05 * (1 - 64 * np.finfo(float).eps)))


def _longest_run_max(n_useful: int) -> int:
    """``round(log2(n_useful)) + 3`` (Schilling 2012; Anhøj & Olesen 2014)."""
    return int(np.round(math.log2(n_useful))) + 3


@dataclass(frozen=True, repr=False)
class RunsAnalysis(Displayed):
    """Result of :func:`runs_analysis` (field names as in ``summary(qicharts2::qic(...))``).

    Attributes
    ----------
    centre : float
        Centre line the runs are counted against.
    n_obs : int
        Number of observations (missing values included, as in qicharts2).
    n_useful : int
        Observations not on the centre line and not missing.
    longest_run, longest_run_max : int or None
        Longest run of useful observations on the same side of the centre line, and its upper
        prediction limit ``round(log2(n_useful)) + 3``. ``None`` when ``n_useful == 0``.
    n_crossings, n_crossings_min : int or None
        Number of times the series crosses the centre line, and its lower prediction limit
        ``qbinom(0.05, n_useful - 1, 0.5)``. ``None`` when ``n_useful == 0``.
    runs_signal : bool
        ``longest_run > longest_run_max or n_crossings < n_crossings_min``.
    """

    centre: float
    n_obs: int
    n_useful: int
    longest_run: int | None
    longest_run_max: int | None
    n_crossings: int | None
    n_crossings_min: int | None
    runs_signal: bool

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return pd.DataFrame([self.__dict__])

    def _repr_fields(self) -> dict:
        return {"centre": self.centre, "n_obs": self.n_obs, "n_useful": self.n_useful,
                "longest_run": self.longest_run, "longest_run_max": self.longest_run_max,
                "n_crossings": self.n_crossings, "n_crossings_min": self.n_crossings_min,
                "runs_signal": self.runs_signal}

    def _summary(self, tx) -> str:
        if self.n_useful == 0:
            return tx("Runs analysis: no useful observation ({n} observations).", n=tx.int(self.n_obs))
        verdict = tx("non-random variation (runs signal)") if self.runs_signal else tx("no runs signal")
        return tx("Runs analysis about the centre line {centre}: {n} observations, {useful} useful; longest run "
                  "{run} (upper limit {run_max}); {crossings} (lower limit {cross_min}): {verdict}.",
                  centre=tx.num(self.centre, _digits(self.centre)), n=tx.int(self.n_obs),
                  useful=tx.int(self.n_useful), run=tx.int(self.longest_run), run_max=tx.int(self.longest_run_max),
                  crossings=tx.n("{n} crossing", "{n} crossings", self.n_crossings), cross_min=tx.int(self.n_crossings_min), verdict=verdict)


def _digits(*values: float) -> int:
    """Decimals showing every value with about four significant digits (at most 6)."""
    finite = [abs(float(v)) for v in values if v is not None and np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return int(min(6, max(0, 3 - math.floor(math.log10(min(finite))))))


def _runs(y: np.ndarray, cl: np.ndarray) -> dict:
    side = np.sign(y - cl)
    useful = side[np.isfinite(side) & (side != 0)]
    n_useful = int(useful.size)
    out: dict = {"n_obs": int(y.size), "n_useful": n_useful}
    if n_useful == 0:
        out.update(longest_run=None, longest_run_max=None, n_crossings=None,
                   n_crossings_min=None, runs_signal=False)
        return out
    change = np.flatnonzero(useful[1:] != useful[:-1])
    bounds = np.concatenate(([0], change + 1, [n_useful]))
    longest = int(np.max(np.diff(bounds)))
    n_cross = int(change.size)
    lrmax = _longest_run_max(n_useful)
    ncmin = _crossings_min(n_useful)
    out.update(longest_run=longest, longest_run_max=lrmax, n_crossings=n_cross,
               n_crossings_min=ncmin, runs_signal=bool(longest > lrmax or n_cross < ncmin))
    return out


def _series_values(values) -> np.ndarray:
    """The values of :func:`runs_analysis` as a 1-D float array, or an error naming what is wrong: a
    table or nested list (not one series), text (even ``'0.84'``: a number read as text usually means
    a column read wrongly), or objects that are not numbers."""
    try:
        ndim = np.ndim(values)
    except ValueError:  # ragged nested lists
        ndim = 2
    if isinstance(values, pd.DataFrame) or ndim != 1:
        raise ScaleupDataError(
            f"runs_analysis: argument 'values' must be one-dimensional (one series of numbers in time order: a "
            f"list, 1-D array or Series), got a {type(values).__name__} with {ndim} dimension(s). Pass one "
            "column, e.g. data['y']."
        )
    raw = (values if isinstance(values, pd.Series) else pd.Series(values)).reset_index(drop=True)
    text = (False if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw)
            else raw.map(lambda v: isinstance(v, (str, bytes))).to_numpy(bool))
    if np.any(text):
        raise ScaleupDataError(
            f"runs_analysis: argument 'values' must be numeric: {int(text.sum())} value(s) are text, at "
            f"position(s) {first_values(np.flatnonzero(text))} (values {first_values(raw[text])}). Convert them "
            "to numbers (e.g. pd.to_numeric(data['y'])) or set them to NaN (missing)."
        )
    try:
        return pd.to_numeric(raw).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ScaleupDataError(
            "runs_analysis: argument 'values' must be numeric (a list, array or Series of numbers); it holds "
            f"values of type {first_values(sorted({type(v).__name__ for v in raw}))}."
        ) from exc


@checked_inputs
def runs_analysis(values, centre: float | None = None) -> RunsAnalysis:
    """Anhøj runs analysis of a series about its centre line (as qicharts2).

    Parameters
    ----------
    values : array-like of float
        The series in time order (one dimension). Missing values (NaN) are kept as gaps: counted in
        ``n_obs`` but not useful, as in qicharts2, with a :class:`ScaleupWarning` saying where they are.
        Text values (even ``"0.84"``) are an error.
    centre : float, optional
        Centre line. Default: the median of the non-missing values.

    Returns
    -------
    RunsAnalysis
        ``n_obs``, ``n_useful``, ``longest_run``, ``longest_run_max``, ``n_crossings``,
        ``n_crossings_min``, ``runs_signal``.

    Warns
    -----
    ScaleupWarning
        When some values are missing (kept as gaps; the message gives their positions), or when no
        value is off the centre line.

    Notes
    -----
    Observations equal to the centre line neither make nor break a run and are dropped
    (``n_useful`` counts the others). With ``n = n_useful``, the series signals non-random
    variation when the longest run exceeds ``round(log2(n)) + 3`` (Schilling 2012) or when the
    number of crossings is below the 5th percentile of Binomial(n - 1, 0.5) (Chen 2010), the
    "Anhøj rules" (Anhøj & Olesen 2014), exactly as ``qicharts2:::runs.analysis``.

    References
    ----------
    Anhøj J, Olesen AV (2014). Run charts revisited: a simulation study of run chart rules for
    detection of non-random variation in health care processes. PLoS ONE 9(11): e113825.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> ra = sa.runs_analysis([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    >>> ra.longest_run, ra.longest_run_max, ra.n_crossings, ra.n_crossings_min, ra.runs_signal
    (6, 7, 1, 3, True)
    """
    y = _series_values(values)
    if np.isinf(y).any():
        raise ScaleupDataError(
            f"runs_analysis: argument 'values' holds {int(np.isinf(y).sum())} infinite value(s) (first at "
            f"position(s) {first_values(np.flatnonzero(np.isinf(y)))}); correct them or set them to NaN (missing)."
        )
    if not np.isfinite(y).any():
        raise ScaleupDataError(
            f"runs_analysis: argument 'values' has no non-missing value ({y.size} given); a runs analysis needs "
            "a series of observations in time order."
        )
    given_centre = centre
    if centre is None:
        finite = y[np.isfinite(y)]
        centre = float(np.median(finite)) if finite.size else float("nan")
    elif not np.isfinite(centre):
        raise ScaleupDataError("runs_analysis: argument 'centre' must be a finite number or None.")
    res = _runs(y, np.full(y.shape, float(centre)))
    missing = np.isnan(y)
    if missing.any():
        warnings.warn(
            f"runs_analysis: argument 'values' has {int(missing.sum())} missing value(s) of {y.size} (NaN, at "
            f"position(s) {first_values(np.flatnonzero(missing))}); they are kept as gaps in the time order "
            "(counted in n_obs, as qicharts2) but left out of the "
            + ("centre line (the median) and of the " if given_centre is None else "")
            + "runs (n_useful, longest run, crossings). Fill them in or drop them to silence this warning.",
            ScaleupWarning, stacklevel=3,
        )
    if res["n_useful"] == 0:
        warnings.warn(
            f"runs_analysis: none of the {y.size} value(s) is off the centre line {float(centre):g} (constant "
            "series or a single value), so there are no runs to test: no signal is possible, which is not "
            "evidence of a stable process.",
            ScaleupWarning, stacklevel=3,  # runs_analysis < checked_inputs wrapper < caller
        )
    return RunsAnalysis(centre=float(centre), **res)


# --------------------------------------------------------------------------------------------
# control-chart constants
# --------------------------------------------------------------------------------------------
def _c4(n):
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(2.0 / (n - 1)) * np.exp(special.gammaln(n / 2) - special.gammaln((n - 1) / 2))
    return np.where(n > 1, out, np.nan)


def _c5(n):
    return np.sqrt(1 - _c4(n) ** 2)


def _screened_amr(mr: np.ndarray, screen: bool) -> float:
    mr = mr[np.isfinite(mr)]
    if mr.size == 0:
        return float("nan")
    amr = float(np.mean(mr))
    if screen:  # Nelson (1982): drop moving ranges >= 3.267 * AMR, recompute
        mr = mr[mr < _D4 * amr]
        amr = float(np.mean(mr)) if mr.size else float("nan")
    return amr


def _limits(chart: str, d: pd.DataFrame, base: np.ndarray, screen: bool) -> pd.DataFrame:
    """Centre line and 3-sigma limits for one facet x part (columns y, y_sum, y_len, y_mean,
    y_sd, n). Mirrors qicharts2's qic.<chart> helpers."""
    d = d.copy()
    y = d["y"].to_numpy(float)
    n = d["n"].to_numpy(float)
    nan = np.full(len(d), np.nan)
    if chart == "run":
        cl = np.nanmedian(y[base]) if np.isfinite(y[base]).any() else np.nan
        lcl = ucl = nan
    elif chart == "i":
        cl = np.nanmean(y[base])
        amr = _screened_amr(np.abs(np.diff(y[base])), screen)
        sd = amr / _D2
        lcl, ucl = cl - 3 * sd, cl + 3 * sd
    elif chart == "mr":
        y = np.concatenate(([np.nan], np.abs(np.diff(y))))
        d["y"] = y
        cl = np.nanmean(y[base])
        lcl, ucl = 0.0, _D4 * cl
    elif chart in ("xbar", "s"):
        yl = d["y_len"].to_numpy(float)
        ysd = d["y_sd"].to_numpy(float)
        ok = base & np.isfinite(ysd)
        if np.unique(yl).size > 1:  # variable subgroup size: pooled SD (Montgomery 6.31)
            sbar = math.sqrt(np.sum((yl[ok] - 1) * ysd[ok] ** 2) / np.sum(yl[ok] - 1))
        else:  # constant subgroup size: mean SD (Montgomery 6.29)
            sbar = float(np.mean(ysd[ok]))
        if chart == "xbar":
            ym = d["y_mean"].to_numpy(float)
            okm = base & np.isfinite(ym)
            cl = np.sum(yl[okm] * ym[okm]) / np.sum(yl[okm])
            with np.errstate(invalid="ignore", divide="ignore"):
                a3 = np.where(yl > 1, 3 / (_c4(yl) * np.sqrt(yl)), np.nan)
            lcl, ucl = cl - a3 * sbar, cl + a3 * sbar
        else:
            d["y"] = ysd
            cl = sbar
            with np.errstate(invalid="ignore", divide="ignore"):
                k = 3 * _c5(yl) / _c4(yl)
            lcl, ucl = np.maximum(0, 1 - k) * cl, (1 + k) * cl
    elif chart == "c":
        ys = d["y_sum"].to_numpy(float)
        d["y"] = ys
        cl = np.nanmean(ys[base])
        sd = math.sqrt(cl)
        lcl, ucl = max(cl - 3 * sd, 0.0), cl + 3 * sd
    elif chart in ("p", "pp", "u", "up"):
        ys = d["y_sum"].to_numpy(float)
        ok = base & np.isfinite(ys) & np.isfinite(n)
        cl = np.sum(ys[ok]) / np.sum(n[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(cl * (1 - cl) / n) if chart in ("p", "pp") else np.sqrt(cl / n)
            if chart in ("pp", "up"):  # Laney (2002): sigma_z from moving ranges of z-scores
                z = (y[base] - cl) / sd[base]
                sigma_z = _screened_amr(np.abs(np.diff(z)), screen) / _D2
                sd = sd * sigma_z
        lcl, ucl = cl - 3 * sd, cl + 3 * sd
        lcl = np.where(np.isfinite(lcl) & (lcl < 0), 0.0, lcl)
        if chart in ("p", "pp"):
            ucl = np.where(np.isfinite(ucl) & (ucl > 1), 1.0, ucl)
    else:  # pragma: no cover - validated earlier
        raise AssertionError(chart)
    d["cl"] = cl
    d["lcl"] = np.where(np.isfinite(lcl), lcl, np.nan) if np.ndim(lcl) else lcl
    d["ucl"] = np.where(np.isfinite(ucl), ucl, np.nan) if np.ndim(ucl) else ucl
    d[["lcl", "ucl"]] = d[["lcl", "ucl"]].astype(float)
    return d


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ControlChart(Displayed):
    """Result of :func:`control_chart`.

    Attributes
    ----------
    chart : str
        Chart type.
    data : pandas.DataFrame
        One row per plotted point: ``facet``, ``part``, ``x``, ``y``, ``n``, ``cl``, ``lcl``,
        ``ucl``, ``baseline`` (point used to compute the centre and limits), ``sigma_signal``
        (point outside the limits), ``runs_signal`` (runs signal of the point's part).
    runs : pandas.DataFrame
        Runs analysis per facet and part.
    freeze : int or None
    value : str
        Name of the charted column.

    ``summary()`` is the text summary; ``to_frame(kind="parts")`` the table of runs analyses and
    average limits per facet and part (qicharts2's summary).
    """

    chart: str
    data: pd.DataFrame = field(repr=False)
    runs: pd.DataFrame = field(repr=False)
    freeze: int | None
    value: str

    def to_frame(self, kind: str = "points") -> pd.DataFrame:
        """The chart as a table.

        Parameters
        ----------
        kind : {"points", "parts"}, default "points"
            ``"points"``: the tidy point-level table (a copy of ``data``). ``"parts"``: one row per
            facet and part, as ``summary(qicharts2::qic(...))``: runs analysis, average limits
            (``aLCL``, ``CL``, ``aUCL``) and number of points outside the limits (``sigma_signal``).
        """
        if kind == "points":
            return self.data.copy()
        if kind != "parts":
            raise ScaleupDataError(f"ControlChart.to_frame: kind must be 'points' or 'parts', not {kind!r}.")
        rows = []
        for (facet, part), g in self.data.groupby(["facet", "part"], sort=False):
            r = self.runs[(self.runs["facet"] == facet) & (self.runs["part"] == part)].iloc[0]
            rows.append({
                "facet": facet, "part": part, "n_obs": r["n_obs"], "n_useful": r["n_useful"],
                "longest_run": r["longest_run"], "longest_run_max": r["longest_run_max"],
                "n_crossings": r["n_crossings"], "n_crossings_min": r["n_crossings_min"],
                "runs_signal": bool(g["runs_signal"].any()),
                "aLCL": g["lcl"].mean(), "CL": g["cl"].mean(), "aUCL": g["ucl"].mean(),
                "sigma_signal": int(g["sigma_signal"].sum()),
            })
        return pd.DataFrame(rows)

    @property
    def facets(self) -> list:
        return list(pd.unique(self.data["facet"]))

    def _repr_fields(self) -> dict:
        parts = self.data.groupby(["facet", "part"], sort=False)["runs_signal"].any()
        return {"chart": self.chart, "value": self.value, "n_facets": len(self.facets), "n_points": len(self.data),
                "sigma_signal": int(self.data["sigma_signal"].sum()), "runs_signal": int(parts.sum()),
                "freeze": self.freeze}

    def _summary(self, tx) -> str:
        d = self.data
        labels = unit_labels(self.facets)
        lines = [tx("{chart} of “{value}”: {points}, {signals} outside the control limits.",
                    chart=tx(_CHART_NAMES[self.chart]), value=self.value,
                    points=tx.n("{n} point", "{n} points", len(d)),
                    signals=tx.n("{n} point", "{n} points", int(d["sigma_signal"].sum())))]
        if self.freeze is not None:
            lines.append(tx("Centre line and limits computed on the first {n} points of each chart (baseline).",
                            n=tx.int(self.freeze)))
        many_parts = d["part"].max() > 1
        for r in self.to_frame(kind="parts").itertuples(index=False):
            where = [] if r.facet == "all" and len(self.facets) == 1 else [labels[r.facet]]
            if many_parts:
                where.append(tx("part {part}", part=tx.int(r.part)))
            digits = _digits(r.CL, r.aLCL, r.aUCL)
            text = tx("centre line {cl}", cl=tx.num(r.CL, digits))
            if np.isfinite(r.aLCL) or np.isfinite(r.aUCL):
                text += ", " + tx("average limits {low} to {high}", low=tx.num(r.aLCL, digits),
                                  high=tx.num(r.aUCL, digits))
                text += "; " + tx.n("{n} point outside the limits", "{n} points outside the limits", r.sigma_signal)
            if r.n_useful and pd.notna(r.longest_run) and self.chart != "mr":
                runs = tx("runs signal (non-random variation)") if r.runs_signal else tx("no runs signal")
                text += "; " + tx("longest run {run} (upper limit {run_max}), {crossings} (lower limit "
                                  "{cross_min}): {verdict}", run=tx.int(r.longest_run),
                                  run_max=tx.int(r.longest_run_max),
                                  crossings=tx.n("{n} crossing", "{n} crossings", int(r.n_crossings)),
                                  cross_min=tx.int(r.n_crossings_min), verdict=runs)
            lines.append("- " + (", ".join(where) + tx.colon() + " " if where else "") + text + ".")
        return "\n".join(lines)

    @styled
    def plot(self, *, facet=None, ncols: int | None = None, title: str | None = None, xlabel: str | None = None,
             ylabel: str | None = None, hide=None, threshold: int = 5, ax=None):
        """Plot the chart; one panel per facet (small multiples) when the chart is faceted.

        The observed values are joined by a line; points outside the control limits are drawn as
        squares in the signal colour; the centre line of a part with a runs signal is dashed and in
        the signal colour (qicharts2's convention), so the chart reads in grey-scale too; the
        baseline (``freeze``) is shaded. The legend, beside the chart, explains every mark. Facets
        that are Quebec region codes are shown by name with their code.

        Parameters
        ----------
        facet : optional
            Draw only this facet (a value of the ``by`` column).
        ncols : int, optional
            Columns of the small-multiples grid (default: 3, or 4 above 12 facets).
        title, xlabel, ylabel : str, optional
            Labels (default: the chart's name, "Period" and what is plotted: "Proportion" for a p
            chart, "Rate" for a u chart, "Count" for a c chart, "Subgroup mean" for an xbar chart...).
        ax : matplotlib Axes, optional
            Axes to draw on (only for a single facet, or with ``facet=``).
        hide : array-like of bool, optional
            Points not to draw, one flag per row of :meth:`to_frame` (by position), e.g. the
            ``suppressed`` column of :func:`scaleup_analysis.suppress_small_cells` applied to that
            table: small cells and their complements. A hidden point's value, and its limits when
            they depend on the subgroup size (p, u, P', U', xbar and s charts), are left as gaps in
            the lines, marked ``×`` under the axis and counted in the legend. Only the drawing
            changes: the centre line, limits and signals are those computed from every point.
        threshold : int, default 5
            Small-cell threshold quoted in the legend when points are hidden.

        Returns
        -------
        matplotlib Axes, or a numpy array of Axes for small multiples.
        """
        import matplotlib.pyplot as plt

        from ..narrative import Text
        from ..privacy import _hide_mask

        tx = Text()
        hidden = _hide_mask(hide, len(self.data), "ControlChart.plot")
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
            raise ScaleupDataError(f"ControlChart.plot: threshold must be an integer >= 1, got {threshold!r}.")
        facets = self.facets
        if facet is not None:
            if facet not in facets:
                raise ScaleupDataError(
                    f"ControlChart.plot: facet {facet!r} is not in the chart; facets are "
                    f"{facets[:5]}{'...' if len(facets) > 5 else ''}."
                )
            facets = [facet]
        labels = unit_labels(self.facets)
        ylabel = tx(_Y_LABELS[self.chart]) if ylabel is None else ylabel
        xlabel = tx("Period") if xlabel is None else xlabel
        chart_name = tx(_CHART_NAMES[self.chart])
        if len(facets) == 1:
            if ax is None:
                _, ax = plt.subplots(figsize=(8.5, 3.8), layout="constrained")
            handles = self._draw(ax, facets[0], tx, hidden)
            handles += self._hidden_handles(tx, hidden, facets, threshold)
            if title is None:
                title = (labels[facets[0]]) if len(self.facets) > 1 else chart_name
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1))
            return ax
        if ax is not None:
            raise ScaleupDataError(
                "ControlChart.plot: 'ax' can only be given for a single facet; pass facet=... or "
                "leave ax=None to draw small multiples."
            )
        ncols = ncols if ncols is not None else (3 if len(facets) <= 12 else 4)
        nrows = math.ceil(len(facets) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(min(14.0, 3.3 * ncols), min(13.5, 2.3 * nrows + 1.4)),
                                 sharex=True, squeeze=False, layout="constrained")
        handles = {}
        for a, f in zip(axes.flat, facets):
            for h in self._draw(a, f, tx, hidden):
                handles.setdefault(h.get_label(), h)
            a.set_title((labels[f]), fontsize=9)
        for h in self._hidden_handles(tx, hidden, facets, threshold):
            handles[h.get_label()] = h
        ticks_inside(axes.flat[0], "x")  # shared by every panel
        for k, a in enumerate(axes.flat):
            if k >= len(facets):
                a.set_visible(False)
            elif k + ncols >= len(facets):  # no panel below: show the periods
                a.xaxis.set_tick_params(labelbottom=True)
                a.set_xlabel(xlabel)
        fig.suptitle(chart_name if title is None else title)
        fig.supylabel(ylabel)
        fig.legend(handles=list(handles.values()), loc="outside lower center", ncols=min(4, len(handles)))
        return axes

    def _hidden_handles(self, tx, hidden: np.ndarray, facets, threshold: int) -> list:
        """The legend entry of the points left out of the drawn ``facets`` (none when none is)."""
        import textwrap

        from matplotlib.lines import Line2D

        from ..privacy import HIDDEN_MARK, _hidden_label

        k = int(hidden[self.data["facet"].isin(facets).to_numpy()].sum())
        if not k:
            return []
        return [Line2D([], [], ls="none", marker=f"${HIDDEN_MARK}$", ms=6, color="black",
                       label=textwrap.fill(_hidden_label(tx, k, threshold), 30))]

    def _draw(self, ax, facet, tx, hidden: np.ndarray) -> list:
        """Draw one facet on ``ax``, leaving out the ``hidden`` points (gaps); returns the legend
        handles of what was drawn."""
        import textwrap

        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        from ..privacy import HIDDEN_MARK

        rows = (self.data["facet"] == facet).to_numpy()
        g = self.data[rows]
        out = hidden[rows]
        if out.any():  # what a hidden point would reveal is not drawn: its value and its own limits
            g = g.copy()
            g.loc[out, ["y", "lcl", "ucl"] if self.chart in _SIZED_LIMITS else ["y"]] = np.nan
            g.loc[out, "sigma_signal"] = False
            for x in g.loc[out, "x"]:
                ax.text(x, 0.01, HIDDEN_MARK, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                        fontsize=9, color="black")
        handles = [Line2D([], [], color=PALETTE[0], marker="o", ms=3.5, lw=1, label=tx("Observed value"))]
        if self.freeze is not None and not g["baseline"].all():
            base = g[g["baseline"]]
            ax.axvspan(base["x"].min() - 0.5, base["x"].max() + 0.5, color=GREY, alpha=0.35, lw=0, zorder=0)
            handles.append(Patch(color=GREY, alpha=0.35, label=tx("Baseline (limits computed here)")))
        ax.plot(g["x"], g["y"], color=PALETTE[0], marker="o", ms=3.5, lw=1, zorder=2)
        runs_signal = False
        has_limits = False
        for _, p in g.groupby("part", sort=False):
            signal = bool(p["runs_signal"].any())
            runs_signal |= signal
            ax.step(p["x"], p["cl"], where="mid", color=_SIGNAL if signal else "black", ls="--" if signal else "-",
                    lw=1.3, zorder=1)
            if p["ucl"].notna().any():
                has_limits = True
                ax.step(p["x"], p["ucl"], where="mid", color=NEUTRAL, lw=1, zorder=1)
                ax.step(p["x"], p["lcl"], where="mid", color=NEUTRAL, lw=1, zorder=1)
        if not g.groupby("part")["runs_signal"].any().all():
            handles.append(Line2D([], [], color="black", lw=1.3, label=tx("Centre line")))
        if runs_signal:
            handles.append(Line2D([], [], color=_SIGNAL, ls="--", lw=1.3,
                                  label=tx("Centre line, runs signal (non-random variation)")))
        if has_limits:
            handles.append(Line2D([], [], color=NEUTRAL, lw=1, label=tx("Control limits (3 sigma)")))
        sig = g[g["sigma_signal"]]
        if len(sig):
            ax.plot(sig["x"], sig["y"], ls="none", marker="s", ms=6.5, color=_SIGNAL, zorder=3)
            handles.append(Line2D([], [], ls="none", marker="s", ms=6.5, color=_SIGNAL,
                                  label=tx("Outside the control limits")))
        if pd.api.types.is_numeric_dtype(g["x"]):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ticks_inside(ax, "y")
        for h in handles:
            h.set_label(textwrap.fill(h.get_label(), 30))
        return handles


_SIGNAL = WORSE  # colour of the signals (outside the limits, runs signal)
_CHART_NAMES = {
    "run": N_("Run chart"), "i": N_("I chart (individual values)"), "mr": N_("MR chart (moving ranges)"),
    "xbar": N_("Xbar chart (subgroup means)"), "s": N_("S chart (subgroup standard deviations)"),
    "p": N_("P chart (proportions)"), "u": N_("U chart (rates)"), "c": N_("C chart (counts)"),
    "pp": N_("Laney P' chart (proportions)"), "up": N_("Laney U' chart (rates)"),
}
_Y_LABELS = {
    "run": N_("Value"), "i": N_("Value"), "mr": N_("Moving range"), "xbar": N_("Subgroup mean"),
    "s": N_("Subgroup standard deviation"), "p": N_("Proportion"), "pp": N_("Proportion"), "u": N_("Rate"),
    "up": N_("Rate"), "c": N_("Count"),
}


# --------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------
def _check_columns(data, cols: dict):
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError("control_chart: argument 'data' must be a pandas DataFrame.")
    for arg, col in cols.items():
        if col is not None and col not in data.columns:
            raise ScaleupDataError(
                f"control_chart: column {col!r} (argument '{arg}') is not in data; available "
                f"columns: {list(data.columns)[:10]}."
            )


def _check_chart_options(data, value, chart, x, n, subgroup, freeze, part, by) -> list[int]:
    """Check the options; return the sorted phase break points."""
    if chart not in _CHARTS:
        raise ScaleupDataError(
            f"control_chart: chart={chart!r} is not supported; use one of {', '.join(_CHARTS)}."
        )
    _check_columns(data, {"value": value, "x": x, "n": n, "subgroup": subgroup, "by": by})
    if data.empty:
        raise ScaleupDataError("control_chart: table 'data' has no rows; there is nothing to chart.")
    if chart in _NEEDS_N and n is None:
        raise ScaleupDataError(
            f"control_chart: chart={chart!r} needs a denominator column; pass n='<column>'."
        )
    if freeze is not None and part is not None:
        raise ScaleupDataError(
            "control_chart: use either 'freeze' (a baseline) or 'part' (phases), not both."
        )
    if freeze is not None and (not isinstance(freeze, (int, np.integer)) or freeze < 1):
        raise ScaleupDataError("control_chart: 'freeze' must be a positive integer (a number of points).")
    parts = [] if part is None else sorted({int(p) for p in np.atleast_1d(part)})
    if any(p < 1 for p in parts):
        raise ScaleupDataError("control_chart: 'part' break points must be positive point positions.")
    return parts


def _chart_rows(data, value, chart, x, n, subgroup, by) -> pd.DataFrame:
    """One row per observation: value ``v``, denominator ``nn``, ``x``, subgroup ``sg`` and ``facet``."""
    d = pd.DataFrame(index=data.index)
    d["v"] = numeric_column(data, value, "control_chart: table 'data'", arg="value", missing=True)
    d["nn"] = (numeric_column(data, n, "control_chart: table 'data'", arg="n", missing=True)
               if n is not None else np.nan)
    for col, arg, v in ((value, "value", d["v"]), (n, "n", d["nn"])):
        if col is not None:
            check_magnitude(v, data.index, f"control_chart: table 'data', column {col!r} (argument {arg!r})",
                            max_abs=_MAX_ABS)
    if n is not None:
        bad = (d["nn"] < 0).to_numpy()
        if bad.any():
            raise ScaleupDataError(
                f"control_chart: column {n!r} (argument 'n') has negative denominators in "
                f"{rows_text(data, bad, label='first:')}; denominators must be >= 0."
            )
    if chart in ("p", "pp"):
        bad = (d["v"] > d["nn"]).to_numpy() | (d["v"] < 0).to_numpy()
        if bad.any():
            raise ScaleupDataError(
                f"control_chart: p chart needs 0 <= {value} <= {n}; violated in {rows_text(data, bad, label='first:')}."
            )
    if chart in ("c", "u", "up"):
        bad = (d["v"] < 0).to_numpy()
        if bad.any():
            raise ScaleupDataError(
                f"control_chart: {chart} chart counts events, so column {value!r} (argument 'value') "
                f"must be >= 0; negative in {rows_text(data, bad, label='first:')}. Correct those counts."
            )
    d["x"] = data[x].to_numpy() if x is not None else np.arange(1, len(data) + 1)
    d["sg"] = data[subgroup].to_numpy() if subgroup is not None else d["x"].to_numpy()
    d["facet"] = data[by].to_numpy() if by is not None else "all"
    if d["x"].isna().any():
        bad = d["x"].isna().to_numpy()
        raise ScaleupDataError(
            f"control_chart: column {x!r} (argument 'x') has missing values in {rows_text(data, bad, label='first:')}."
        )
    return d


def _subgroup_point(g: pd.DataFrame, has_n: bool) -> pd.Series:
    """The charted point of one subgroup: ratio of sums with a denominator, else the mean."""
    v = g["v"].to_numpy()
    vv = v[np.isfinite(v)]
    nsum = float(np.nansum(g["nn"])) if has_n else np.nan
    ysum = float(vv.sum()) if vv.size else np.nan
    if has_n:
        y = ysum / nsum if nsum > 0 else np.nan
    else:
        y = float(vv.mean()) if vv.size else np.nan
    return pd.Series({
        "x": g["x"].min(), "y": y, "n": nsum, "y_sum": ysum, "y_len": float(vv.size),
        "y_mean": float(vv.mean()) if vv.size else np.nan,
        "y_sd": float(vv.std(ddof=1)) if vv.size > 1 else np.nan,
    })


def _facet_chart(gf, chart, n, parts, freeze, screen_mr, fac) -> tuple[list, list]:
    """Points with limits and runs signals of one facet, one piece per phase; and its runs analyses."""
    pts = (gf.groupby("sg", sort=True)[["v", "nn", "x"]].apply(_subgroup_point, has_n=n is not None)
           .sort_values("x", kind="stable").reset_index(drop=True))
    k = len(pts)
    pos = np.arange(1, k + 1)
    pts["part"] = np.searchsorted(np.array(parts, dtype=int), pos, side="left") + 1
    pts["baseline"] = pos <= freeze if freeze is not None else True
    out, runs = [], []
    for prt, gp in pts.groupby("part", sort=True):
        base = gp["baseline"].to_numpy(bool)
        if not base.any():
            base = np.ones(len(gp), bool)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # too few points or subgroups of one give NaN limits (as qicharts2's NA); control_chart says so
            warnings.simplefilter("ignore", RuntimeWarning)
            lim = _limits(chart, gp, base, screen_mr)
        ra = _runs(lim["y"].to_numpy(float), lim["cl"].to_numpy(float))
        if chart == "mr":
            ra["runs_signal"] = False
        lim["runs_signal"] = ra["runs_signal"]
        lim["facet"] = fac
        runs.append({"facet": fac, "part": int(prt), **ra})
        out.append(lim)
    return out, runs


def _warn_missing_values(data, d: pd.DataFrame, value: str, x: str | None, by: str | None) -> None:
    """Say where the charted column is missing: a period left without any value is a gap (as
    qicharts2 draws it), other missing values are left out of their period's point."""
    missing = d["v"].isna()
    if not missing.any():
        return
    empty = missing.groupby([d["facet"], d["sg"]], sort=False).transform("all").to_numpy(bool)
    gaps = d[empty].groupby(["facet", "sg"], sort=False)["x"].min()

    def at(keys) -> str:
        shown = [(f"x = {short_repr(xv)}" if x is not None else f"point {short_repr(xv)}")
                 + (f" of {by} {short_repr(fac)}" if by is not None else "") for fac, xv in keys]
        more = f", ... ({len(shown) - MAX_SHOWN} more)" if len(shown) > MAX_SHOWN else ""
        return ", ".join(shown[:MAX_SHOWN]) + more

    text = (f"control_chart: table 'data', column {value!r} (argument 'value') has missing values in "
            f"{rows_text(data, missing.to_numpy(), label='first:')}.")
    if len(gaps):
        text += (f" As in qicharts2, a period with no value is drawn as a gap: {len(gaps)} point(s) "
                 f"({at((fac, xv) for (fac, _), xv in gaps.items())}), counted in n_obs of the runs analysis but left "
                 "out of the centre line, the limits and the runs (n_useful).")
    rest = missing.to_numpy(bool) & ~empty
    if rest.any():
        text += (f" {int(rest.sum())} missing value(s) in periods that have other values are left out of their "
                 f"period's point ({at(zip(d.loc[rest, 'facet'], d.loc[rest, 'x']))}).")
    warnings.warn(text + " Fill in the values or drop the rows to silence this warning.",
                  ScaleupWarning, stacklevel=4)  # this helper < control_chart < checked_inputs wrapper < caller


@checked_inputs
def control_chart(
    data: pd.DataFrame,
    value: str,
    chart: str = "run",
    *,
    x: str | None = None,
    n: str | None = None,
    subgroup: str | None = None,
    freeze: int | None = None,
    part=None,
    by: str | None = None,
    screen_mr: bool = True,
) -> ControlChart:
    """Shewhart control chart or run chart with Anhøj runs analysis (as ``qicharts2::qic``).

    Parameters
    ----------
    data : pandas.DataFrame
        Long-format data, one row per observation (several rows per period form a subgroup).
    value : str
        Column with the measure: the value (run/i/mr/xbar/s charts), the count of events
        (c chart) or the numerator (p/pp: events; u/up: counts) with ``n`` the denominator.
    chart : {"run", "i", "mr", "xbar", "s", "p", "u", "c", "pp", "up"}
    x : str, optional
        Period column (the horizontal axis). Default: the row order, one point per row.
    n : str, optional
        Denominator column; required for p, u, pp and up charts. With ``n`` given for a run
        or i chart, the plotted point is ``sum(value) / sum(n)`` per period.
    subgroup : str, optional
        Column defining rational subgroups when they differ from ``x`` (each subgroup is
        plotted at its first ``x``). Default: the rows of one period form one subgroup.
    freeze : int, optional
        Baseline: the number of first points (per facet) used to compute centre and limits;
        later points are judged against them. Cannot be combined with ``part``.
    part : int or list of int, optional
        Break points: a new part (phase) starts after each of these point positions (1-based,
        within each facet); every part gets its own centre, limits and runs analysis.
    by : str, optional
        Column splitting the data into separate charts, one per value (facet), e.g.
        ``"rss_code"``.
    screen_mr : bool, default True
        Screen moving ranges above 3.267 x their average before estimating sigma (I, P', U'
        charts), as qicharts2 does by default (option ``qic.screenedmr``; Nelson 1982).

    Returns
    -------
    ControlChart
        ``.data`` tidy point table (``facet, part, x, y, n, cl, lcl, ucl, baseline,
        sigma_signal, runs_signal``), ``.to_frame(kind="parts")`` (per facet and part, as
        ``summary(qicharts2::qic(...))``), ``.summary()`` (text), ``.plot(ax=None)``.

    Warns
    -----
    ScaleupWarning
        When ``value`` has missing values: a period left without a value is kept as a gap (as in
        qicharts2: counted in ``n_obs``, left out of the centre line, limits and runs), and the
        message gives its ``x``; and when the centre line or limits cannot be computed.

    Notes
    -----
    With baseline points B of a part:

    * run: CL = median(y_B); no limits.
    * i: CL = mean(y_B); sigma = AMR / 1.128 where AMR is the average moving range of y_B,
      recomputed without moving ranges >= 3.267 AMR when ``screen_mr`` (Montgomery 2009, 6.33).
    * mr: y = ``|y_t - y_{t-1}|``; CL = mean; UCL = 3.267 CL; LCL = 0.
    * xbar: CL = sum(n_i xbar_i) / sum(n_i); limits CL +/- 3 s / (c4(n_i) sqrt(n_i)) with s the
      mean subgroup SD (equal sizes) or pooled SD (unequal sizes).
    * s: CL = s; limits B3(n_i) s and B4(n_i) s, B3/B4 = 1 -/+ 3 c5/c4 (B3 floored at 0).
    * p: CL = sum(events_B) / sum(n_B); limits CL +/- 3 sqrt(CL (1 - CL) / n_i) in [0, 1].
    * u: CL = sum(counts_B) / sum(n_B); limits CL +/- 3 sqrt(CL / n_i), LCL >= 0.
    * c: CL = mean(counts_B); limits CL +/- 3 sqrt(CL), LCL >= 0.
    * pp / up (Laney 2002): z_i = (y_i - CL) / sigma_i on the baseline, sigma_z = AMR(z) / 1.128
      (screened as for i), limits CL +/- 3 sigma_i sigma_z.

    A point outside its limits is a ``sigma_signal``; a part whose runs analysis (about its CL,
    over all its points, see :func:`runs_analysis`) signals sets ``runs_signal`` on all its
    points (never for mr charts).

    References
    ----------
    Montgomery DC (2009). Introduction to Statistical Quality Control, 6th ed. Wiley.
    Laney DB (2002). Improved control charts for attributes. Quality Engineering 14(4): 531-537.
    Anhøj J (2023). qicharts2: Quality Improvement Charts. R package.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> data = pd.DataFrame({"period": range(1, 9), "y": [5, 7, 6, 8, 6, 7, 5, 20]})
    >>> cc = sa.control_chart(data, value="y", chart="i", x="period")
    >>> float(cc.data["cl"].iloc[0]), round(float(cc.data["ucl"].iloc[0]), 3)
    (8.0, 12.433)
    >>> bool(cc.data["sigma_signal"].iloc[-1])
    True
    """
    parts = _check_chart_options(data, value, chart, x, n, subgroup, freeze, part, by)
    d = _chart_rows(data, value, chart, x, n, subgroup, by)
    _warn_missing_values(data, d, value, x, by)
    out = []
    runs = []
    for fac, gf in d.groupby("facet", sort=True):
        o, r = _facet_chart(gf, chart, n, parts, freeze, screen_mr, fac)
        out += o
        runs += r
    points = pd.concat(out, ignore_index=True)
    no_limits = points["y"].notna() & (points["cl"].isna() if chart == "run"
                                       else points[["lcl", "ucl"]].isna().all(axis=1))
    if no_limits.any():
        facets = points.loc[no_limits, "facet"].unique()
        warnings.warn(
            f"control_chart: the centre line{'' if chart == 'run' else ' and limits'} of {chart!r} chart could not "
            f"be computed for {int(no_limits.sum())} point(s) of {len(facets)} panel(s) (first: "
            f"{first_values(facets)}): too few points or values in the baseline"
            + (" (an xbar/s chart needs subgroups of 2 or more values)" if chart in ("xbar", "s") else "")
            + "; they are shown without limits and give no signal.",
            ScaleupWarning, stacklevel=3,
        )
    with np.errstate(invalid="ignore"):
        points["sigma_signal"] = ((points["y"] > points["ucl"]) | (points["y"] < points["lcl"])).fillna(False)
    points["sigma_signal"] = points["sigma_signal"].astype(bool)
    points["part"] = points["part"].astype(int)
    if n is None:
        points["n"] = np.nan
    cols = ["facet", "part", "x", "y", "n", "cl", "lcl", "ucl", "baseline", "sigma_signal",
            "runs_signal"]
    return ControlChart(chart=chart, data=points[cols], runs=pd.DataFrame(runs), freeze=freeze,
                        value=value)
