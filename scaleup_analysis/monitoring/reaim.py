r"""RE-AIM and Proctor's implementation outcomes of a scale-up, per region and overall.

:func:`reaim` -- Reach, Effectiveness, Adoption, Implementation and Maintenance (Glasgow, Vogt &
Boles, 1999) per region and overall, with Proctor et al.'s (2011) implementation outcomes
(penetration, acceptability, appropriateness, feasibility from the AIM/IAM/FIM scales of Weiner et
al., 2017, and implementation cost), from the ``sites`` and ``delivery`` tables (and optional
individual-level, fidelity, effectiveness and survey tables). Small cells are suppressed.
:func:`wilson_ci` is the Wilson score interval of its proportions.

References
----------
Glasgow, R. E., Vogt, T. M., & Boles, S. M. (1999). Evaluating the public health impact of health
promotion interventions: the RE-AIM framework. American Journal of Public Health, 89(9), 1322-1327.

Proctor, E., Silmere, H., Raghavan, R., et al. (2011). Outcomes for implementation research.
Administration and Policy in Mental Health, 38(2), 65-76.

Weiner, B. J., Lewis, C. C., Stanick, C., et al. (2017). Psychometric assessment of three newly
developed implementation outcome measures. Implementation Science, 12, 108.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import MAX_SHOWN, check_level, checked_inputs, fail_rows, first_values, numeric_column, require_columns
from .._display import Displayed
from .._style import PALETTE, data_text, new_axes, styled, ticks_inside
from ..errors import ScaleupDataError, ScaleupWarning
from ..i18n import N_
from ._plotting import unit_labels

__all__ = ["reaim", "ReaimResult", "wilson_ci"]

OVERALL = "all"
_SCALES = {"AIM": "acceptability", "IAM": "appropriateness", "FIM": "feasibility"}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _num(df: pd.DataFrame, table: str, col: str, *, missing_ok: bool = False) -> np.ndarray:
    return numeric_column(df, col, f"table '{table}'", missing=missing_ok, infinite=True)


def _z(level: float) -> float:
    return float(stats.norm.isf((1 - check_level(level)) / 2))


def wilson_ci(x, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r"""Wilson score interval for a binomial proportion ``x / n`` (vectorised; NaN where ``n = 0``).

    .. math:: \frac{x + z^2/2}{n + z^2} \pm \frac{z\sqrt{n}}{n + z^2}
              \sqrt{\hat p (1 - \hat p) + \frac{z^2}{4n}}

    (Wilson, 1927; Newcombe, 1998, method 3; R's ``prop.test(x, n, correct = FALSE)``).

    Examples
    --------
    >>> from scaleup_analysis.monitoring.reaim import wilson_ci
    >>> lo, hi = wilson_ci(81, 263)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.2553, 0.3662)
    """
    z = _z(level)
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (x + z * z / 2) / (n + z * z)
        half = z * np.sqrt(n) / (n + z * z) * np.sqrt(p * (1 - p) + z * z / (4 * n))
    bad = ~(n > 0)
    lo = np.where(bad, np.nan, np.maximum(0.0, centre - half))
    hi = np.where(bad, np.nan, np.minimum(1.0, centre + half))
    return lo, hi


def _std_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Standardized difference of group a vs group b (Austin, 2009): binary or continuous."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 1 or b.size < 1:
        return math.nan
    binary = np.isin(np.concatenate([a, b]), (0.0, 1.0)).all()
    if binary:
        pa, pb = a.mean(), b.mean()
        den = math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
        return (pa - pb) / den if den > 0 else math.nan
    if a.size < 2 or b.size < 2:
        return math.nan
    den = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return (a.mean() - b.mean()) / den if den > 0 else math.nan


# --------------------------------------------------------------------------------------------------
# RE-AIM
# --------------------------------------------------------------------------------------------------
_COLUMNS = ["framework", "dimension", "measure", "region", "estimate", "ci_low", "ci_high", "numerator",
            "denominator", "measurement_unit", "n_excluded", "suppressed"]


@dataclass(frozen=True, eq=False, repr=False)
class ReaimResult(Displayed):
    """Result of :func:`reaim`.

    Attributes
    ----------
    table : pandas.DataFrame
        The full (unsuppressed) tidy table: ``framework`` (``RE-AIM``/``Proctor``), ``dimension``,
        ``measure``, ``region`` (``"all"`` = every site), ``estimate``, ``ci_low``, ``ci_high``,
        ``numerator``, ``denominator``, ``measurement_unit`` (``individuals``, ``settings`` or ``CAD``),
        ``n_excluded`` (sites not yet evaluable for maintenance, or without delivery records;
        respondents with too few items for the AIM/IAM/FIM scales) and ``suppressed``.
    scale_scores : pandas.DataFrame or None
        One row per respondent and scale: items answered, ``n_missing_items`` and the scale score
        (NaN when fewer than ``min_items`` items were answered).
    periods : tuple of int
        The analysis window of the period-based measures.
    threshold : int
        Smallest publishable count (cells with fewer individuals are ``suppressed``).
    level : float
    """

    table: pd.DataFrame = field(repr=False)
    scale_scores: pd.DataFrame | None = field(repr=False)
    periods: tuple
    threshold: int
    level: float

    def to_frame(self, suppress: bool = True) -> pd.DataFrame:
        """Tidy table; with ``suppress=True`` (default) suppressed cells have their estimate, CI and
        numerator set to NaN (small-cell privacy rule)."""
        t = self.table.copy()
        if suppress:
            t.loc[t["suppressed"], ["estimate", "ci_low", "ci_high", "numerator"]] = np.nan
        return t

    @property
    def measures(self) -> list:
        """Measures present, in table order."""
        return list(dict.fromkeys(self.table["measure"]))

    def _repr_fields(self) -> dict:
        t = self.table
        reach = t[(t["measure"] == "reach") & (t["region"] == OVERALL)]["estimate"]
        return {"n_measures": len(self.measures), "n_regions": int((t["region"].drop_duplicates() != OVERALL).sum()),
                "periods": [self.periods[0], self.periods[-1]], "reach": float(reach.iloc[0]) if len(reach) else None,
                "n_suppressed": int(t["suppressed"].sum()), "threshold": self.threshold, "level": self.level}

    def summary(self, suppress: bool = True, *, language: str | None = None) -> str:
        """The measures as text: overall value, range across regions, suppressed cells (``<n``).

        Parameters
        ----------
        suppress : bool, default True
            Leave out the values of small cells (fewer than ``threshold`` individuals), counted
            and shown as ``<threshold``.
        language : {"fr", "en"}, optional
            Default: the language set with :func:`scaleup_analysis.set_language`.
        """
        from ..narrative import Text

        return self._summary(Text(language), suppress=suppress)

    def _summary(self, tx, suppress: bool = True) -> str:
        t = self.to_frame(suppress=suppress)
        regions = [r for r in dict.fromkeys(t["region"]) if r != OVERALL]
        labels = unit_labels(regions)
        lines = [tx("RE-AIM and implementation outcomes, periods {first} to {last}; cells with fewer than {k} "
                    "individuals are suppressed (shown as <{k}).", first=tx.int(self.periods[0]),
                    last=tx.int(self.periods[-1]), k=tx.int(self.threshold))]
        for m in self.measures:
            d = t[t["measure"] == m]
            unit = d["measurement_unit"].iloc[0]
            fmt = (lambda v: tx.int(round(v))) if unit == "CAD" else (lambda v: tx.num(v, 3))
            text = _measure_label(m, tx) + tx.colon() + " "
            overall = d[d["region"] == OVERALL]
            if len(overall) and np.isfinite(overall["estimate"].iloc[0]):
                r = overall.iloc[0]
                value = (tx.ci(r["estimate"], r["ci_low"], r["ci_high"], 3, level=self.level)
                         if np.isfinite(r["ci_low"]) else fmt(r["estimate"]))
                text += tx("all regions {value}", value=value)
            elif len(overall) and suppress and bool(overall["suppressed"].iloc[0]):
                text += tx("all regions <{k}", k=tx.int(self.threshold))
            else:
                text += tx("all regions: not estimable")
            reg = d[(d["region"] != OVERALL) & np.isfinite(d["estimate"])].sort_values("estimate")
            if len(reg) >= 2:
                text += "; " + tx("by region from {low} ({low_region}) to {high} ({high_region})",
                                  low=fmt(reg["estimate"].iloc[0]), low_region=labels[reg["region"].iloc[0]],
                                  high=fmt(reg["estimate"].iloc[-1]), high_region=labels[reg["region"].iloc[-1]])
            n_small = int((d["suppressed"] & suppress).sum())
            if n_small:
                text += "; " + tx.n("{n} region <{k}", "{n} regions <{k}", n_small, k=tx.int(self.threshold))
            lines.append("  " + text)
        return "\n".join(lines)

    def _drawn(self, suppress: bool, hide) -> pd.DataFrame:
        """The table as the plots draw it: the estimate and CI of every hidden cell (flagged
        ``suppressed`` when ``suppress``, or flagged in ``hide``) blanked, in the column ``hidden``."""
        from ..privacy import _hide_mask

        out = _hide_mask(hide, len(self.table), "ReaimResult.plot")
        t = self.to_frame(suppress=False)
        if suppress:
            out = out | t["suppressed"].to_numpy(dtype=bool)
        t["hidden"] = out
        t.loc[t["hidden"], ["estimate", "ci_low", "ci_high", "numerator"]] = np.nan
        return t

    @styled
    def plot_measure(self, measure: str, *, suppress: bool = True, title: str | None = None,
                     xlabel: str | None = None, hide=None, ax=None):
        """Estimates with CIs of one measure, regions (by name) on the vertical axis; returns the Axes.

        Regions are dots, all regions together a diamond. A cell left out is marked ``×`` at the
        left of its row, its value not drawn: with ``suppress=True`` the cells with fewer than
        ``threshold`` individuals, and the cells flagged in ``hide`` (one flag per row of
        :meth:`to_frame`, by position, e.g. the ``suppressed`` column of
        :func:`scaleup_analysis.suppress_small_cells` applied to that table, which also flags the
        complementary suppressions).
        """
        return self._plot_measure(measure, self._drawn(suppress, hide), title=title, xlabel=xlabel, ax=ax)

    def _plot_measure(self, measure: str, t: pd.DataFrame, *, title=None, xlabel=None, ax=None):
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        from ..narrative import Text
        from ..privacy import HIDDEN_MARK

        tx = Text()
        d = t[t["measure"] == measure]
        if d.empty:
            raise ScaleupDataError(f"plot_measure(): unknown measure {measure!r}; available: {self.measures}.")
        own = ax is None
        ax = new_axes(ax, (8.0, 0.24 * len(d) + 1.6))
        d = d.sort_values("region", key=lambda s: s.map(lambda r: (r == OVERALL, str(r))))
        y = np.arange(len(d))[::-1]
        overall = (d["region"] == OVERALL).to_numpy()
        ax.hlines(y, d["ci_low"], d["ci_high"], color=PALETTE[0], lw=1.2)
        ax.plot(d["estimate"].to_numpy()[~overall], y[~overall], "o", color=PALETTE[0], ms=4.5)
        ax.plot(d["estimate"].to_numpy()[overall], y[overall], "D", color="black", ms=5.5)
        for yy, hidden in zip(y, d["hidden"].to_numpy()):
            if hidden:
                ax.text(0.01, yy, HIDDEN_MARK, va="center", ha="left", fontsize=8.5, color="black",
                        transform=ax.get_yaxis_transform())
        labels = unit_labels([r for r in d["region"] if r != OVERALL])
        ax.set_yticks(y)
        ax.set_yticklabels([tx("All regions") if r == OVERALL else labels[r] for r in d["region"]])
        ax.set_ylim(-0.7, len(d) - 0.3)
        unit = d["measurement_unit"].iloc[0]
        if not np.isfinite(d["estimate"]).any():
            ax.text(0.5, 0.5, tx("No value to show"), transform=ax.transAxes, ha="center", va="center",
                    fontsize=8.5, color="black", bbox={"facecolor": "white", "edgecolor": "none"})
            ax.set_xticks([])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3 if unit == "CAD" else 4))
        if unit == "CAD":
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: tx.int(round(v))))
        ticks_inside(ax, "x")
        ax.set_xlabel(_axis_label(measure, unit, tx) if xlabel is None else xlabel)
        ax.set_title(_measure_label(measure, tx) if title is None else title, fontsize=9.5)
        if own:  # in plot() the figure's legend explains the marks
            ax.legend(handles=self._handles(tx, int(d["hidden"].sum())), loc="upper left",
                      bbox_to_anchor=(1.01, 1))
        return ax

    def _handles(self, tx, n_hidden: int) -> list:
        """Legend entries of the marks of the plots (``n_hidden`` cells left out)."""
        from matplotlib.lines import Line2D

        from ..privacy import HIDDEN_MARK, _hidden_label

        handles = [Line2D([], [], color=PALETTE[0], marker="o", ms=4.5,
                          label=tx("Region ({level} CI)", level=tx.pct(self.level))),
                   Line2D([], [], color="black", marker="D", ms=5.5, ls="none", label=tx("All regions"))]
        if n_hidden:
            handles.append(Line2D([], [], ls="none", marker=f"${HIDDEN_MARK}$", ms=6, color="black",
                                  label=_hidden_label(tx, n_hidden, self.threshold)))
        return handles

    @styled
    def plot(self, measures: Sequence[str] | None = None, fig=None, ncols: int = 4, suppress: bool = True, *,
             title: str | None = None, hide=None):
        """One panel per measure (regions, by name, on the shared vertical axis); returns the Figure.

        Cells left out (``suppress``, ``hide``) are marked ``×`` and counted in the legend, as in
        :meth:`plot_measure`.
        """
        import matplotlib.pyplot as plt

        from ..narrative import Text

        tx = Text()
        drawn = self._drawn(suppress, hide)
        measures = list(measures) if measures is not None else self.measures
        n = len(measures)
        ncols = max(1, min(ncols, n))
        nrows = math.ceil(n / ncols)
        n_reg = self.table["region"].nunique()
        if fig is None:
            fig = plt.figure(figsize=(min(14.0, 2.9 + 2.75 * ncols), min(13.5, (0.19 * n_reg + 1.1) * nrows + 1.2)),
                             layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        for k, m in enumerate(measures):
            a = axes[k // ncols][k % ncols]
            self._plot_measure(m, drawn, ax=a)
            if k % ncols:
                a.tick_params(axis="y", labelleft=False)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.suptitle(tx("RE-AIM and implementation outcomes by region") if title is None else title)
        handles = self._handles(tx, int(drawn.loc[drawn["measure"].isin(measures), "hidden"].sum()))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        return fig


_MEASURES = {
    "reach": N_("Reach"), "effectiveness": N_("Effectiveness"), "adoption_settings": N_("Adoption (settings)"),
    "adoption_staff": N_("Adoption (staff trained)"), "implementation_fidelity": N_("Implementation: fidelity"),
    "implementation_cost_per_participant": N_("Implementation: cost per participant"),
    "maintenance_6m": N_("Maintenance at 6 months (settings)"), "maintenance_12m": N_("Maintenance at 12 months (settings)"),
    "maintenance_individual": N_("Maintenance (individuals)"), "penetration": N_("Penetration"),
    "acceptability": N_("Acceptability (AIM)"), "appropriateness": N_("Appropriateness (IAM)"),
    "feasibility": N_("Feasibility (FIM)"), "implementation_cost": N_("Implementation cost"),
}


def _measure_label(measure: str, tx) -> str:
    """A measure of the table in words."""
    if measure in _MEASURES:
        return tx(_MEASURES[measure])
    if measure.startswith("representativeness[") and measure.endswith("]"):
        return tx("Representativeness: {characteristic}", characteristic=data_text(measure[len("representativeness["):-1]))
    return data_text(measure)


def _axis_label(measure: str, unit: str, tx) -> str:
    """What the horizontal axis of a measure shows."""
    if unit == "CAD":
        return tx("Canadian dollars")
    if measure.startswith("representativeness["):
        return tx("Standardized difference")
    if measure == "effectiveness":
        return tx("Effect")
    if measure in ("acceptability", "appropriateness", "feasibility"):
        return tx("Mean score (1 to 5)")
    if measure == "implementation_fidelity":
        return tx("Fidelity index (0 to 1)")
    return tx("Proportion of settings") if unit == "settings" else tx("Proportion")


def _row(framework, dimension, measure, region, est, lo, hi, num, den, unit, n_excl=np.nan):
    return dict(framework=framework, dimension=dimension, measure=measure, region=region,
                estimate=float(est), ci_low=float(lo), ci_high=float(hi), numerator=float(num),
                denominator=float(den), measurement_unit=unit, n_excluded=float(n_excl))


def _prop_rows(framework, dimension, measure, num: pd.Series, den: pd.Series, unit, level, n_excl=None):
    lo, hi = wilson_ci(num.to_numpy(float), den.to_numpy(float), level)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = num.to_numpy(float) / den.to_numpy(float)
    out = []
    for i, r in enumerate(num.index):
        ne = np.nan if n_excl is None else n_excl.get(r, 0)
        out.append(_row(framework, dimension, measure, r, est[i], lo[i], hi[i], num.iloc[i], den.iloc[i], unit, ne))
    return out


def _with_all(s: pd.Series) -> pd.Series:
    """Append the overall total (index 'all') to a per-region sum."""
    return pd.concat([s, pd.Series([s.sum()], index=[OVERALL])])


def _mean_ci_rows(framework, dimension, measure, values: pd.Series, groups: pd.Series, unit, level, n_excl=None):
    """Mean with a t interval of ``values`` per group and overall."""
    out = []
    frame = pd.DataFrame({"v": values.to_numpy(float), "g": groups.to_numpy()})
    parts = [(g, d["v"].to_numpy()) for g, d in frame.groupby("g", sort=True)] + [(OVERALL, frame["v"].to_numpy())]
    for g, v in parts:
        v = v[np.isfinite(v)]
        k = v.size
        m = v.mean() if k else np.nan
        if k >= 2:
            half = stats.t.isf((1 - level) / 2, k - 1) * v.std(ddof=1) / math.sqrt(k)
        else:
            half = np.nan
        ne = np.nan if n_excl is None else n_excl.get(g, 0)
        out.append(_row(framework, dimension, measure, g, m, m - half, m + half, np.nan, k, unit, ne))
    return out


def _check_reaim_options(tables, periods_per_year, support_periods, min_items, threshold) -> None:
    if not isinstance(tables, Mapping) or "sites" not in tables or "delivery" not in tables:
        raise ScaleupDataError("argument 'tables': give a dict with at least the 'sites' and 'delivery' tables.")
    for arg, v in (("periods_per_year", periods_per_year), ("support_periods", support_periods),
                   ("min_items", min_items), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if arg == "threshold" else 1):
            raise ScaleupDataError(f"argument '{arg}': a positive integer, not {v!r}.")
    if min_items > 4:
        raise ScaleupDataError("argument 'min_items': the AIM/IAM/FIM scales have 4 items; use 1-4.")


def _sites_and_delivery(tables, site, region, period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The checked ``sites`` (with the numeric adoption period ``adopt``) and ``delivery`` tables,
    delivery merged with the sites."""
    sites, dv = tables["sites"], tables["delivery"]
    require_columns(sites, "sites", [site, region, "adoption_period"])
    dcols = ["sessions_delivered", "eligible", "reached", "staff_eligible", "staff_trained", "cost"]
    require_columns(dv, "delivery", [site, period, *dcols])
    for name, t in (("sites", sites), ("delivery", dv)):
        if len(t) == 0:
            raise ScaleupDataError(
                f"table {name!r} has no rows; RE-AIM needs the sites and their delivery records (an empty table "
                "would give reach and adoption of 0 instead of unknown)."
            )
    s = sites[[site, region, "adoption_period"]].copy()
    fail_rows("sites", site, "are duplicated", s, s[site].duplicated(keep=False), "Keep one row per site.")
    s["adopt"] = _num(s, "sites", "adoption_period", missing_ok=True)
    d = dv[[site, period, *dcols]].copy()
    for c in [period, *dcols]:
        d[c] = _num(d, "delivery", c)
        fail_rows("delivery", c, "are negative", d, d[c] < 0, "Counts and costs must be >= 0.")
    fail_rows("delivery", "reached", "exceed eligible", d, d["reached"] > d["eligible"],
              "Use 0 <= reached <= eligible.")
    fail_rows("delivery", "staff_trained", "exceed staff_eligible", d, d["staff_trained"] > d["staff_eligible"],
              "Use 0 <= staff_trained <= staff_eligible.")
    fail_rows("delivery", site, "are not in table 'sites'", d, ~d[site].isin(s[site]), "Add the sites or fix site_id.")
    fail_rows("delivery", site, "are duplicated (site, period) pairs", d, d.duplicated([site, period], keep=False),
              "Keep one row per site and period.")
    return s, d.merge(s, on=site, how="left")


def _analysis_window(periods, s, d, period, T) -> list[int]:
    """The periods of the analysis window (default: first adoption to the last period)."""
    if periods is None:
        first = s["adopt"].min()
        start = int(first) if np.isfinite(first) else int(d[period].min())
        if start > T:
            raise ScaleupDataError(
                f"table 'delivery', column {period!r}: the last period recorded ({T}) precedes the first adoption "
                f"(period {start} in table 'sites'), so the default analysis window is empty. Add the delivery "
                "records after adoption, or pass periods=... ."
            )
        return list(range(start, T + 1))
    try:
        win = sorted({int(p) for p in periods})
    except (TypeError, ValueError):
        raise ScaleupDataError(f"argument 'periods': integers, e.g. range(5, 13), not {periods!r}.") from None
    if not win:
        raise ScaleupDataError("argument 'periods': give at least one period.")
    return win


def _representativeness_rows(people, s, site, region, regions, participated, characteristics) -> list[dict]:
    chars = list(characteristics or [])
    if not chars:
        raise ScaleupDataError("argument 'characteristics': name the columns of 'people' to compare.")
    require_columns(people, "people", [site, participated, *chars])
    pp = people[[site, participated, *chars]].copy()
    part = _num(pp, "people", participated)
    fail_rows("people", participated, "are not 0/1", pp, ~np.isin(part, (0.0, 1.0)), "Code participation as 0/1.")
    pp[participated] = part
    fail_rows("people", site, "are not in table 'sites'", pp, ~pp[site].isin(s[site]), "Fix site_id.")
    for c in chars:
        pp[c] = _num(pp, "people", c, missing_ok=True)
    pp = pp.merge(s[[site, region]], on=site, how="left")
    groups = [(r, pp[pp[region] == r]) for r in regions] + [(OVERALL, pp)]
    rows = []
    for c in chars:
        for r, g in groups:
            x = g[c].to_numpy(float)
            isp = g[participated].to_numpy() == 1
            rows.append(_row("RE-AIM", "reach", f"representativeness[{c}]", r, _std_diff(x[isp], x),
                             np.nan, np.nan, int(isp.sum()), len(g), "individuals"))
    return rows


def _effectiveness_rows(effectiveness, region, z) -> list[dict]:
    require_columns(effectiveness, "effectiveness", [region, "estimate"])
    e = effectiveness.copy()
    est = _num(e, "effectiveness", "estimate")
    if {"ci_low", "ci_high"} <= set(e.columns):
        lo, hi = _num(e, "effectiveness", "ci_low"), _num(e, "effectiveness", "ci_high")
    elif "se" in e.columns:
        se = _num(e, "effectiveness", "se")
        lo, hi = est - z * se, est + z * se
    else:
        raise ScaleupDataError("table 'effectiveness': give 'ci_low' and 'ci_high', or 'se'.")
    return [_row("RE-AIM", "effectiveness", "effectiveness", r, a, b, c, np.nan, np.nan, "effect")
            for r, a, b, c in zip(e[region], est, lo, hi)]


def _fidelity_rows(fidelity, s, site, region, period, win, level) -> list[dict]:
    require_columns(fidelity, "fidelity", [site, period, "fidelity_index"])
    f = fidelity[[site, period, "fidelity_index"]].copy()
    f["fidelity_index"] = _num(f, "fidelity", "fidelity_index", missing_ok=True)
    f[period] = _num(f, "fidelity", period)
    fail_rows("fidelity", site, "are not in table 'sites'", f, ~f[site].isin(s[site]), "Fix site_id.")
    f = f[f[period].isin(win)].groupby(site)["fidelity_index"].mean().dropna().rename("fi").reset_index()
    f = f.merge(s[[site, region]], on=site, how="left")
    return _mean_ci_rows("RE-AIM", "implementation", "implementation_fidelity", f["fi"], f[region], "settings", level)


def _maintenance_rows(s, d, site, region, regions, period, T, support_periods, periods_per_year, level):
    """Setting-level maintenance at 6 and 12 months after the end of initial support."""
    ad = s[np.isfinite(s["adopt"])].copy()
    ad["end"] = ad["adopt"] + support_periods - 1
    active = d.assign(active=d["sessions_delivered"] > 0).set_index([site, period])["active"]
    recorded = ad[site].isin(d[site]).to_numpy()  # a site without any delivery record is unknown, not stopped
    rows = []
    for months in (6, 12):
        h = math.ceil(months * periods_per_year / 12)
        target = ad["end"] + h
        evaluable = (target <= T) & recorded
        keys = list(zip(ad[site], target.astype(int)))
        maintained = np.array([bool(active.get(k, False)) for k in keys], dtype=float)
        m = ad.assign(ev=evaluable.astype(float), mt=maintained * evaluable)
        excl = _with_all(m.groupby(region)["ev"].apply(lambda x: float((x == 0).sum())).reindex(regions, fill_value=0))
        rows += _prop_rows("RE-AIM", "maintenance", f"maintenance_{months}m", _by_region(m, "mt", region, regions),
                           _by_region(m, "ev", region, regions), "settings", level, n_excl=excl.to_dict())
    return rows


def _individual_maintenance_rows(individual_maintenance, s, site, region, regions, level) -> list[dict]:
    require_columns(individual_maintenance, "individual_maintenance", [site, "assessed", "maintained"])
    im = individual_maintenance[[site, "assessed", "maintained"]].copy()
    for c in ("assessed", "maintained"):
        im[c] = _num(im, "individual_maintenance", c)
        fail_rows("individual_maintenance", c, "are negative", im, im[c] < 0, "Counts must be >= 0.")
    fail_rows("individual_maintenance", "maintained", "exceed assessed", im, im["maintained"] > im["assessed"],
              "Use 0 <= maintained <= assessed.")
    fail_rows("individual_maintenance", site, "are not in table 'sites'", im, ~im[site].isin(s[site]),
              "Fix site_id.")
    im = im.merge(s[[site, region]], on=site, how="left")
    return _prop_rows("RE-AIM", "maintenance", "maintenance_individual", _by_region(im, "maintained", region, regions),
                      _by_region(im, "assessed", region, regions), "individuals", level)


def _scale_rows(scores, scale, region, level) -> list[dict]:
    """Acceptability, appropriateness and feasibility: mean AIM, IAM and FIM scale scores."""
    rows = []
    for sc_name, outcome in _SCALES.items():
        ss = scores[scores[scale] == sc_name]
        if ss.empty:
            continue
        excl = ss[~np.isfinite(ss["scale_score"])].groupby(region).size()
        excl = {**excl.to_dict(), OVERALL: int((~np.isfinite(ss["scale_score"])).sum())}
        rows += _mean_ci_rows("Proctor", outcome, outcome, ss["scale_score"], ss[region], "individuals", level,
                              n_excl=excl)
    return rows


def _by_region(frame, col, region, regions) -> pd.Series:
    """Sum of ``col`` per region (every region, 0 when absent) and overall."""
    return _with_all(frame.groupby(region)[col].sum().reindex(regions, fill_value=0.0))


def _sites_delivery_window(tables, site, region, period, periods):
    """The checked sites and delivery tables, the last period, the analysis window and the regions."""
    s, d = _sites_and_delivery(tables, site, region, period)
    T = int(d[period].max())
    return s, d, T, _analysis_window(periods, s, d, period, T), sorted(s[region].dropna().unique(), key=str)


def _delivery_rows(s, d, T, win, period, region, regions, level) -> dict[str, list[dict]]:
    """The measures counted from ``sites`` and ``delivery`` over the window: reach, adoption
    (settings, staff), cost per participant, penetration and implementation cost."""
    w = d[d[period].isin(win)]
    delivering = w[np.isfinite(w["adopt"]) & (w[period] >= w["adopt"])]

    def by_region(frame, col):
        return _by_region(frame, col, region, regions)

    adopted = s.assign(a=(np.isfinite(s["adopt"]) & (s["adopt"] <= T)).astype(float), one=1.0)
    cost, reached = by_region(w, "cost"), by_region(w, "reached")
    cost_pp = []
    for r in cost.index:
        with np.errstate(invalid="ignore", divide="ignore"):
            cpp = cost[r] / reached[r] if reached[r] > 0 else np.nan
        cost_pp.append(_row("RE-AIM", "implementation", "implementation_cost_per_participant", r, cpp, np.nan,
                            np.nan, cost[r], reached[r], "CAD"))
    return {
        "reach": _prop_rows("RE-AIM", "reach", "reach", by_region(w, "reached"), by_region(w, "eligible"),
                            "individuals", level),
        "adoption": (
            _prop_rows("RE-AIM", "adoption", "adoption_settings", by_region(adopted, "a"), by_region(adopted, "one"),
                       "settings", level)
            + _prop_rows("RE-AIM", "adoption", "adoption_staff", by_region(delivering, "staff_trained"),
                         by_region(delivering, "staff_eligible"), "individuals", level)
        ),
        "cost_per_participant": cost_pp,
        "penetration": _prop_rows("Proctor", "penetration", "penetration", by_region(delivering, "reached"),
                                  by_region(delivering, "eligible"), "individuals", level),
        "implementation_cost": [_row("Proctor", "implementation_cost", "implementation_cost", r, cost[r], np.nan,
                                     np.nan, cost[r], np.nan, "CAD") for r in cost.index],
    }


#: Why a measure has no value (NaN estimate) when nothing was counted (denominator 0 or no value).
_UNDEFINED = {
    "reach": "no eligible people in the window (eligible = 0)",
    "penetration": "no eligible people at the adopting sites from their adoption on",
    "adoption_staff": "no staff eligible at the adopting sites from their adoption on",
    "implementation_cost_per_participant": "nobody reached in the window (cost / 0 participants)",
    "maintenance_6m": "no adopting site", "maintenance_12m": "no adopting site",
    "maintenance_individual": "nobody assessed",
    "implementation_fidelity": "no site with a fidelity value in the window",
    "acceptability": "no respondent with a scale score", "appropriateness": "no respondent with a scale score",
    "feasibility": "no respondent with a scale score",
    "effectiveness": "no estimate in table 'effectiveness'",
}


def _regions_text(regions) -> str:
    shown = ["all (overall)" if r == OVERALL else repr(r) for r in regions]
    more = f", ... ({len(shown) - MAX_SHOWN} more)" if len(shown) > MAX_SHOWN else ""
    return f"{len(shown)} region(s) ({', '.join(shown[:MAX_SHOWN])}{more})"


def _warn_sites_without_delivery(s: pd.DataFrame, d: pd.DataFrame, site: str) -> None:
    """Sites of ``sites`` with no delivery record count in no delivery measure: say so."""
    missing = ~s[site].isin(d[site])
    if missing.any():
        warnings.warn(
            f"reaim: table 'delivery' has no record for {int(missing.sum())} of the {len(s)} site(s) of table "
            f"'sites' (first: {first_values(s.loc[missing, site])}): they add nothing to reach, staff adoption, "
            "penetration or costs, and are not evaluable for maintenance (counted in n_excluded); they still "
            "count in the adoption of settings (from table 'sites'). Add their delivery records (zeros for "
            "periods without delivery) or leave them out of table 'sites'.",
            ScaleupWarning, stacklevel=4,
        )


def _warn_undefined(table: pd.DataFrame) -> None:
    """One warning listing, measure by measure, the regions whose value is undefined (NaN) and why.

    Not listed: NaN that the table itself explains: every unit excluded and counted in ``n_excluded``
    (sites whose maintenance horizon lies beyond the data, respondents with too few items), and the
    columns a measure does not have (no CI for costs and representativeness, no numerator for means)."""
    parts = []
    est, lo = table["estimate"].to_numpy(float), table["ci_low"].to_numpy(float)
    explained = (table["n_excluded"] > 0).to_numpy() & ~(table["denominator"] > 0).to_numpy()
    for measure, g in table[np.isnan(est) & ~explained].groupby("measure", sort=False):
        why = _UNDEFINED.get(measure, "standardized difference undefined (no participant or eligible person "
                                      "with a value, or no variation)" if measure.startswith("representativeness")
                             else "nothing to compute it from")
        parts.append(f"{measure} in {_regions_text(g['region'])}: {why}")
    means = table["measure"].isin(["implementation_fidelity", "acceptability", "appropriateness", "feasibility"])
    single = table[means.to_numpy() & ~np.isnan(est) & np.isnan(lo)]
    for measure, g in single.groupby("measure", sort=False):
        parts.append(f"the confidence interval of {measure} in {_regions_text(g['region'])}: a single value, no t "
                     "interval")
    if parts:
        warnings.warn(
            "reaim: some values are undefined (NaN) for lack of data: " + "; ".join(parts) + ".",
            ScaleupWarning, stacklevel=4,
        )


def _flag_small_cells(table: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """``suppressed``: individual-level cells with a denominator (or, for representativeness, a
    numerator) below ``threshold``."""
    table["region"] = table["region"].astype(object)
    indiv = table["measurement_unit"] == "individuals"
    small = table["denominator"] < threshold
    rep = table["measure"].str.startswith("representativeness")
    small = small | (rep & (table["numerator"] < threshold))
    table["suppressed"] = (indiv & small).to_numpy()
    return table[_COLUMNS]


@checked_inputs
def reaim(
    tables: Mapping[str, pd.DataFrame],
    *,
    region: str = "rss_code",
    periods: Iterable[int] | None = None,
    people: pd.DataFrame | None = None,
    participated: str = "participated",
    characteristics: Sequence[str] | None = None,
    effectiveness: pd.DataFrame | None = None,
    fidelity: pd.DataFrame | None = None,
    periods_per_year: int = 4,
    support_periods: int = 4,
    individual_maintenance: pd.DataFrame | None = None,
    scales: pd.DataFrame | None = None,
    respondent: str = "respondent_id",
    scale: str = "scale",
    item: str = "item",
    score: str = "score",
    min_items: int = 4,
    threshold: int = 5,
    level: float = 0.95,
    site: str = "site_id",
    period: str = "period",
) -> ReaimResult:
    r"""RE-AIM dimensions and Proctor's implementation outcomes, per region and overall.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Needs ``sites`` (``site_id``, the ``region`` column, ``adoption_period``) and ``delivery``
        (``site_id``, ``period``, ``sessions_delivered``, ``eligible``, ``reached``,
        ``staff_eligible``, ``staff_trained``, ``cost``), see ``docs/data_dictionary.md``.
    region : str, default "rss_code"
        Column of ``sites`` with the region.
    periods : iterable of int, optional
        Analysis window of reach, adoption (staff), penetration and cost. Default: from the first
        period in which any site adopts to the last period of ``delivery``.
    people : pandas.DataFrame, optional
        Individual-level table of eligible people: ``site_id``, a 0/1 ``participated`` column and the
        ``characteristics`` columns; gives the representativeness of participants.
    participated : str, default "participated"
    characteristics : list of str, optional
        Columns of ``people`` compared between participants and all eligible people (0/1 columns are
        treated as binary).
    effectiveness : pandas.DataFrame, optional
        Effect per region (column ``region``; an ``"all"`` row for the overall effect) with
        ``estimate`` and either ``ci_low``/``ci_high`` or ``se`` (Wald interval), e.g. the
        ``to_frame()`` of a model result.
    fidelity : pandas.DataFrame, optional
        Site x period fidelity, e.g. :func:`scaleup_analysis.fidelity_index` (columns ``site_id``,
        ``period``, ``fidelity_index``).
    periods_per_year : int, default 4
        Periods per year (4 = quarters), to express the 6- and 12-month maintenance horizons.
    support_periods : int, default 4
        Periods of initial implementation support after adoption (the adoption period included).
    individual_maintenance : pandas.DataFrame, optional
        ``site_id``, ``assessed`` and ``maintained`` counts of individuals followed up (e.g. still
        showing the behaviour or benefit at 6 months or more).
    scales : pandas.DataFrame, optional
        AIM/IAM/FIM responses in long format: ``respondent_id``, ``site_id``, ``scale`` (``AIM``,
        ``IAM``, ``FIM``), ``item`` (four items per scale) and ``score`` (1-5, missing allowed).
    respondent, scale, item, score : str
        Column names of ``scales``.
    min_items : int, default 4
        Items needed for a scale score (Weiner et al., 2017: the mean of the four items); respondents
        with fewer answered items are excluded and counted in ``n_excluded``.
    threshold : int, default 5
        Cells with fewer individuals than this are flagged ``suppressed`` (and blanked by
        ``to_frame(suppress=True)``).
    level : float, default 0.95
    site, period : str
        Column names shared by the tables.

    Returns
    -------
    ReaimResult

    Warns
    -----
    ScaleupWarning
        When sites of ``sites`` have no delivery record (they count in no delivery measure and are
        not evaluable for maintenance), and when values are undefined for lack of data (a region with
        nobody eligible, nobody reached, no fidelity value; a mean over one site has no t interval),
        naming the measures and regions. A maintenance value is NaN without a warning when every
        site is counted in ``n_excluded`` (its horizon lies beyond the data).

    Notes
    -----
    Counts are summed over the site-periods of the window (person-periods: someone eligible in two
    periods counts twice, as the ``delivery`` table counts them).

    * **Reach** = reached / eligible over *all* sites of the region (adopting or not). Wilson score
      interval (Wilson, 1927). **Representativeness**: standardized difference of participants vs
      all eligible people, :math:`d = (\bar x_p - \bar x_e)/\sqrt{(s_p^2 + s_e^2)/2}`, or with
      proportions :math:`s^2 = p(1-p)` for 0/1 characteristics (Austin, 2009); no CI; suppressed when
      fewer than ``threshold`` participants or eligible people.
    * **Effectiveness** is taken from ``effectiveness``.
    * **Adoption**: settings with an ``adoption_period`` within the panel / all settings; staff
      trained / staff eligible over the site-periods of adopting sites from adoption on.
    * **Implementation**: fidelity = mean over sites of each site's mean ``fidelity_index`` in the
      window, t interval across sites; cost per participant = total cost / reached.
    * **Maintenance** (setting level): for a site adopting at :math:`A`, initial support ends at
      :math:`E = A + \text{support\_periods} - 1`; the site is maintained at horizon :math:`h` months
      if it delivers sessions (``sessions_delivered > 0``) in period
      :math:`E + \lceil h \cdot \text{periods\_per\_year} / 12 \rceil` (a period without a record
      counts as no session); sites whose horizon lies beyond the data, and sites without any delivery
      record, are excluded (``n_excluded``). Individual level: maintained / assessed.
    * **Proctor**: penetration = reached / eligible over the site-periods of adopting sites from
      adoption on (integration within the settings that deliver); acceptability, appropriateness
      and feasibility = mean of the AIM, IAM, FIM scale scores (mean of the four 1-5 items; Weiner
      et al., 2017) with a t interval; implementation cost = total cost in the window.

    Proportions with ``denominator < threshold`` individuals (and means over fewer
    respondents) are flagged ``suppressed``; setting-level proportions and costs are not
    individual-level and are never suppressed.

    References
    ----------
    Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline covariates
    between treatment groups. Statistics in Medicine, 28(25), 3083-3107.

    Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion. Statistics in
    Medicine, 17(8), 857-872.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> res = sa.reaim(sim.tables)
    >>> res.measures[:4]
    ['reach', 'adoption_settings', 'adoption_staff', 'implementation_cost_per_participant']
    >>> t = res.to_frame()
    >>> t[(t["measure"] == "reach") & (t["region"] == "all")][["estimate", "ci_low", "ci_high"]].round(3)
        estimate  ci_low  ci_high
    18     0.236   0.233    0.239
    """
    z = _z(level)
    _check_reaim_options(tables, periods_per_year, support_periods, min_items, threshold)
    s, d, T, win, regions = _sites_delivery_window(tables, site, region, period, periods)
    _warn_sites_without_delivery(s, d, site)
    counted = _delivery_rows(s, d, T, win, period, region, regions, level)
    rows = [  # in the order of the table: RE-AIM, then Proctor (the optional tables are checked in this order)
        *counted["reach"],
        *(_representativeness_rows(people, s, site, region, regions, participated, characteristics)
          if people is not None else []),
        *(_effectiveness_rows(effectiveness, region, z) if effectiveness is not None else []),
        *counted["adoption"],
        *(_fidelity_rows(fidelity, s, site, region, period, win, level) if fidelity is not None else []),
        *counted["cost_per_participant"],
        *_maintenance_rows(s, d, site, region, regions, period, T, support_periods, periods_per_year, level),
        *(_individual_maintenance_rows(individual_maintenance, s, site, region, regions, level)
          if individual_maintenance is not None else []),
        *counted["penetration"],
    ]
    scores = None
    if scales is not None:
        scores = _scale_scores(scales, s, site, region, respondent, scale, item, score, min_items)
        rows += _scale_rows(scores, scale, region, level)
    rows += counted["implementation_cost"]
    table = _flag_small_cells(pd.DataFrame(rows), threshold)
    _warn_undefined(table)
    return ReaimResult(table=table, scale_scores=scores, periods=tuple(win), threshold=int(threshold),
                       level=float(level))


def _scale_scores(scales, s, site, region, respondent, scale, item, score, min_items) -> pd.DataFrame:
    t = "scales"
    require_columns(scales, t, [respondent, site, scale, item, score])
    sc = scales[[respondent, site, scale, item, score]].copy()
    sc[score] = _num(sc, t, score, missing_ok=True)
    v = sc[score].to_numpy()
    fail_rows(t, score, "are outside 1-5", sc, np.isfinite(v) & ((v < 1) | (v > 5)),
              "AIM/IAM/FIM items are scored 1-5.")
    fail_rows(t, scale, "are not 'AIM', 'IAM' or 'FIM'", sc, ~sc[scale].isin(list(_SCALES)),
              "Name the scales AIM (acceptability), IAM (appropriateness), FIM (feasibility).")
    fail_rows(t, site, "are not in table 'sites'", sc, ~sc[site].isin(s[site]), "Fix site_id.")
    fail_rows(t, item, "are duplicated (respondent, scale, item) triples", sc,
              sc.duplicated([respondent, scale, item], keep=False), "Keep one answer per item.")
    n_items = sc.groupby([respondent, scale])[item].nunique()
    too_many = n_items[n_items > 4]
    if len(too_many):
        raise ScaleupDataError(
            f"table 'scales', column '{item}': {len(too_many)} respondent-scale pair(s) have more than 4 items "
            f"(first: {list(too_many.index[:3])}). AIM, IAM and FIM have four items each."
        )
    multi = sc.groupby([respondent, scale])[site].nunique()
    if (multi > 1).any():
        raise ScaleupDataError(
            f"table 'scales', column '{site}': {int((multi > 1).sum())} respondent-scale pair(s) have several "
            "sites; give each respondent one site."
        )
    g = sc.groupby([respondent, scale], sort=True)
    out = pd.DataFrame({
        site: g[site].first(),
        "n_items_answered": g[score].count(),
        "score_mean": g[score].mean(),
    }).reset_index()  # fmt: skip
    out["n_missing_items"] = 4 - out["n_items_answered"]
    out["scale_score"] = np.where(out["n_items_answered"] >= min_items, out["score_mean"], np.nan)
    out = out.drop(columns="score_mean").merge(s[[site, region]], on=site, how="left")
    return out
