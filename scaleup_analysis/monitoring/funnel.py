r"""Funnel plots for comparing institutional performance (Spiegelhalter 2005), with over-dispersion.

:func:`institutional_funnel` compares units (sites, establishments, regions) on one indicator --
a proportion (events / individuals), a rate (events / person-time) or an indirectly standardised
ratio (observed / expected events) -- against a target, with control limits that narrow as the
unit's precision grows, so that a small site is not singled out by chance.

Definitions (Spiegelhalter 2005a, appendix A; 2005b). A unit :math:`i` has indicator
:math:`y_i = r_i / \rho_i` (``r`` events, :math:`\rho` the precision parameter: the number of
individuals, the person-time or the expected events) and the target is :math:`\theta_0` (by default
the pooled value :math:`\sum r / \sum \rho`, or 1 for a ratio).

* **Exact limits** (``limits="exact"``): :math:`r` is binomial :math:`(\rho, \theta_0)` (proportion)
  or Poisson :math:`(\theta_0 \rho)` (rate, ratio). For a tail probability :math:`p`, with
  :math:`r_p` the smallest count with :math:`F(r_p) \ge p`, the limit interpolated between counts is
  :math:`y_p = (r_p - \alpha)/\rho` where :math:`\alpha = (F(r_p) - p) / (F(r_p) - F(r_p - 1))`.
* **Transformed scale** (``transform``): z-scores, over-dispersion and the normal limits are
  computed on :math:`f(y)` with standard error :math:`s_i` at the target: ``"none"``
  (:math:`s^2 = \theta_0(1-\theta_0)/\rho` or :math:`\theta_0/\rho`), ``"arcsine"``
  (:math:`\arcsin\sqrt{y}`, :math:`s = 1/(2\sqrt\rho)`, proportions), ``"sqrt"``
  (:math:`\sqrt{y}`, :math:`s = 1/(2\sqrt\rho)`, rates and ratios: the CQC method) and ``"log"``
  (:math:`\log y`, :math:`s = 1/\sqrt{\theta_0\rho}`: the SHMI method). The z-score is
  :math:`z_i = (f(y_i) - f(\theta_0))/s_i`; normal limits are
  :math:`f^{-1}(f(\theta_0) \pm z_{p} s_i)`, cut at the bounds of the indicator.
* **Over-dispersion** (Spiegelhalter 2005b). The z-scores are Winsorised (``trim_method=
  "winsorize"``: those beyond the ``trim`` and ``1 - trim`` quantiles, R's type 7, are set to those
  quantiles) or truncated (``"truncate"``: those units are left out, as the SHMI). Then
  :math:`\hat\phi = \sum z_i^2 / I` over the :math:`I` units used.
  *Multiplicative*: :math:`\sigma_i = s_i\sqrt{\hat\phi}` when :math:`\hat\phi > 1`.
  *Additive* (random effects, DerSimonian-Laird): with :math:`w_i = 1/s_i^2`,
  :math:`\hat\tau^2 = \max\{0, (I\hat\phi - (I - 1)) / (\sum w_i - \sum w_i^2 / \sum w_i)\}` and
  :math:`\sigma_i = \sqrt{s_i^2 + \hat\tau^2}`. The adjusted limits are
  :math:`f^{-1}(f(\theta_0) \pm z_p \sigma_i)` and the adjusted z-score
  :math:`(f(y_i) - f(\theta_0))/\sigma_i`. When the estimate leaves the limits unchanged
  (:math:`\hat\phi \le 1`, :math:`\hat\tau^2 = 0`) the unadjusted limits are kept.

A unit whose value lies beyond the inner limits (95 % by default) is an *alert*, beyond the outer
ones (99.8 %) an *alarm* (Spiegelhalter 2005b).

References
----------
Spiegelhalter, D. J. (2005a). Funnel plots for comparing institutional performance. Statistics in
Medicine, 24(8), 1185-1202. https://doi.org/10.1002/sim.1970

Spiegelhalter, D. J. (2005b). Handling over-dispersion of performance indicators. Quality and
Safety in Health Care, 14(5), 347-351. https://doi.org/10.1136/qshc.2005.013755

Spiegelhalter, D. J., Sherlaw-Johnson, C., Bardsley, M., Blunt, I., Wood, C., & Grigg, O. (2012).
Statistical methods for healthcare regulation: rating, screening and surveillance. Journal of the
Royal Statistical Society A, 175(1), 1-47.

NHS Digital (2023). Summary Hospital-level Mortality Indicator (SHMI) methodology: log transform,
10 % truncation of the z-scores, additive random-effects adjustment.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_level, check_magnitude, checked_inputs, numeric_column, require_columns, rows_text
from .._display import Displayed
from .._style import GREY, NEUTRAL, OUTSIDE, PALETTE, axis_number, data_text, log_ticks, new_axes, numeric_ticks, styled
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..i18n import N_

__all__ = ["institutional_funnel", "InstitutionalFunnel", "indicator_funnel"]

_FN = "institutional_funnel()"
_KINDS = ("proportion", "rate", "ratio", "mean")
_TRANSFORMS = {"proportion": ("none", "arcsine"), "rate": ("none", "sqrt", "log"), "ratio": ("none", "sqrt", "log"),
               "mean": ("none",)}
_DEFAULT_TRANSFORM = {"proportion": "arcsine", "rate": "sqrt", "ratio": "sqrt", "mean": "none"}
_OVERDISPERSION = ("additive", "multiplicative", "none")
_TRIM_METHODS = ("winsorize", "truncate")
_LIMITS = ("exact", "normal")
#: Signals, from the highest to the lowest value.
SIGNALS = ("above_alarm", "above_alert", "within", "below_alert", "below_alarm")
#: Largest count of events, individuals or person-time accepted (variances stay finite).
_MAX_COUNT = 1e12
#: Largest magnitude of a mean or standard deviation (squares stay finite).
_MAX_ABS_MEAN = 1e100
#: Most units named on the plot (the most extreme adjusted z-scores first).
_MAX_NAMED = 12


# --------------------------------------------------------------------------------------------
# the scale of the indicator
# --------------------------------------------------------------------------------------------
def _f(transform: str, y):
    """The transformation f of the indicator (elementwise)."""
    y = np.asarray(y, float)
    if transform == "arcsine":
        return np.arcsin(np.sqrt(y))
    if transform == "sqrt":
        return np.sqrt(y)
    if transform == "log":
        with np.errstate(divide="ignore"):
            return np.log(y)
    return y


def _f_inverse(transform: str, kind: str, u):
    """The inverse of f, cut at the bounds of the indicator (0 and 1 for a proportion, 0 otherwise)."""
    u = np.asarray(u, float)
    if transform == "arcsine":
        return np.sin(np.clip(u, 0.0, math.pi / 2)) ** 2
    if transform == "sqrt":
        return np.clip(u, 0.0, None) ** 2
    if transform == "log":
        return np.exp(u)
    if kind == "mean":
        return u
    return np.clip(u, 0.0, 1.0) if kind == "proportion" else np.clip(u, 0.0, None)


def _se(transform: str, kind: str, target: float, precision, sd: float = math.nan):
    """Standard error s of f(y) at the target, for units of the given precision (``sd``: the
    within-unit standard deviation of a mean)."""
    rho = np.asarray(precision, float)
    if kind == "mean":
        return sd / np.sqrt(rho)
    if transform in ("arcsine", "sqrt"):
        return 1.0 / (2.0 * np.sqrt(rho))
    if transform == "log":
        return 1.0 / np.sqrt(target * rho)
    if kind == "proportion":
        return np.sqrt(target * (1.0 - target) / rho)
    return np.sqrt(target / rho)


def _exact_limit(kind: str, target: float, precision, p: float):
    """Spiegelhalter's interpolated exact limit at tail probability p (appendix A.1.1)."""
    rho = np.asarray(precision, float)
    if kind == "proportion":
        dist = stats.binom(np.rint(rho).astype(np.int64), target)
    else:
        dist = stats.poisson(target * rho)
    r = dist.ppf(p)
    # ppf is the smallest r with F(r) >= p up to rounding: step to the exact smallest one.
    r = np.where(dist.cdf(r - 1) >= p, r - 1, r)
    r = np.where(dist.cdf(r) < p, r + 1, r)
    f_r, f_prev = dist.cdf(r), dist.cdf(r - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(f_r > f_prev, (f_r - p) / (f_r - f_prev), 0.0)
    y = (r - alpha) / rho
    # below zero events (r_p = 0) the interpolation leaves the indicator's range: cut at its bounds
    return np.clip(y, 0.0, 1.0) if kind == "proportion" else np.clip(y, 0.0, None)


def _limits(kind, transform, target, precision, levels, sigma=None, exact=True, sd=math.nan) -> dict:
    """The four limits (alert/alarm, low/high) at the given precisions, on the indicator's scale.

    ``sigma`` (the over-dispersed standard error on the transformed scale) gives normal limits
    with that spread; without it the limits are exact or normal with the within-unit spread.
    """
    out = {}
    for name, level in zip(("alert", "alarm"), levels):
        lo_p, hi_p = (1 - level) / 2, (1 + level) / 2
        if sigma is None and exact:
            out[f"{name}_low"] = _exact_limit(kind, target, precision, lo_p)
            out[f"{name}_high"] = _exact_limit(kind, target, precision, hi_p)
        else:
            spread = _se(transform, kind, target, precision, sd) if sigma is None else sigma
            z = stats.norm.ppf(hi_p)
            centre = _f(transform, target)
            out[f"{name}_low"] = _f_inverse(transform, kind, centre - z * spread)
            out[f"{name}_high"] = _f_inverse(transform, kind, centre + z * spread)
    return out


def _quantile7(x: np.ndarray, q: float) -> float:
    """R's default quantile (type 7: linear interpolation between order statistics)."""
    return float(np.quantile(x, q, method="linear"))


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class InstitutionalFunnel(Displayed):
    r"""Result of :func:`institutional_funnel` (a funnel plot comparing units on one indicator).

    Attributes
    ----------
    data : pandas.DataFrame
        One row per unit (see :meth:`to_frame`).
    kind : str
        ``"proportion"``, ``"rate"``, ``"ratio"`` or ``"mean"``.
    transform : str
        Scale of the z-scores, of the over-dispersion and of the normal limits.
    target : float
        The target :math:`\theta_0`, on the indicator's natural scale (not multiplied).
    target_given : bool
        True when ``target`` was given, False when it is the pooled value (or 1 for a ratio).
    overdispersion : str
        ``"additive"``, ``"multiplicative"`` or ``"none"``.
    phi : float
        Over-dispersion factor :math:`\hat\phi`, the mean squared (trimmed) z-score.
    phi_df : int
        Degrees of freedom of the approximate :math:`\chi^2` test of no over-dispersion
        (units used, minus one when the target is estimated).
    phi_pvalue : float
        P-value of :math:`I\hat\phi` against :math:`\chi^2_{\text{phi\_df}}` (approximate:
        the z-scores are trimmed and approximately normal).
    tau2 : float
        Between-unit variance :math:`\hat\tau^2` on the transformed scale (additive method;
        computed whatever ``overdispersion`` is).
    adjusted : bool
        True when the limits of :meth:`to_frame` and of the plot are over-dispersion-adjusted
        (``overdispersion`` is not ``"none"`` and the estimate widens them).
    trim, trim_method : float, str
        Share of z-scores Winsorised or truncated at each end before estimating :math:`\phi`.
    n_trimmed : int
        Units whose z-score was Winsorised or truncated.
    limits : str
        ``"exact"`` or ``"normal"``: the unadjusted limits.
    level, alarm_level : float
        Coverage of the inner (alert) and outer (alarm) limits.
    multiplier : float
        Factor applied to the values and limits shown (100 = per cent, 1000 = per 1,000).
    n_units : int
    denominator : str
        The column of :meth:`to_frame` holding each unit's denominator (its precision, the x-axis
        of the funnel): ``"n"`` or ``"expected"``.
    sd : float
        Pooled within-unit standard deviation :math:`\sigma` of a mean (``kind="mean"``; NaN
        otherwise): a unit's mean of :math:`n` values has standard error :math:`\sigma/\sqrt{n}`.
    """

    data: pd.DataFrame
    kind: str
    transform: str
    target: float
    target_given: bool
    overdispersion: str
    phi: float
    phi_df: int
    phi_pvalue: float
    tau2: float
    adjusted: bool
    trim: float
    trim_method: str
    n_trimmed: int
    limits: str
    level: float
    alarm_level: float
    multiplier: float
    n_units: int
    denominator: str
    sd: float = math.nan

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``unit``, ``events``, the denominator (``n`` or ``expected``), ``value``
        (the indicator times ``multiplier``), ``se`` (standard error of f(y) at the target), ``z``,
        ``z_adjusted`` (equal to ``z`` when the limits are not adjusted), ``trimmed`` (its z-score
        was Winsorised or truncated), ``alert_low``, ``alert_high``, ``alarm_low``, ``alarm_high``
        (the limits used, times ``multiplier``) and ``signal`` (``above_alarm``, ``above_alert``,
        ``within``, ``below_alert``, ``below_alarm``)."""
        return self.data.copy()

    def funnel_limits(self, denominator, *, adjusted: bool | None = None) -> pd.DataFrame:
        """The funnel's limits at the given denominators (numbers of individuals, person-time or
        expected events): ``denominator``, ``alert_low``, ``alert_high``, ``alarm_low``,
        ``alarm_high`` (times ``multiplier``). ``adjusted`` (default: as the result) chooses the
        over-dispersion-adjusted limits (normal on the transformed scale with the over-dispersed
        spread, the within-unit spread when none is estimated) or the unadjusted ones (exact or
        normal, as ``limits``); with ``overdispersion="none"`` both are the unadjusted ones."""
        rho = np.atleast_1d(np.asarray(denominator, float))
        if rho.ndim != 1 or not np.all(np.isfinite(rho) & (rho > 0)):
            raise ScaleupDataError("funnel_limits(): denominator must be positive finite numbers.")
        if self.kind == "proportion" and self.limits == "exact" and not np.all(rho == np.rint(rho)):
            raise ScaleupDataError("funnel_limits(): exact binomial limits need whole numbers of individuals.")
        adjusted = (self.adjusted if adjusted is None else bool(adjusted)) and self.overdispersion != "none"
        sigma = _sigma(self.transform, self.kind, self.target, rho, self.overdispersion, self.phi, self.tau2,
                       self.sd) if adjusted else None
        lim = _limits(self.kind, self.transform, self.target, rho, (self.level, self.alarm_level), sigma,
                      self.limits == "exact", self.sd)
        out = pd.DataFrame({"denominator": rho})
        for k, v in lim.items():
            out[k] = v * self.multiplier
        return out

    def _repr_fields(self) -> dict:
        counts = self.data["signal"].value_counts()
        return {"kind": self.kind, "n_units": self.n_units, "target": self.target, "phi": self.phi,
                "tau2": self.tau2, "adjusted": self.adjusted,
                "above_alarm": int(counts.get("above_alarm", 0)), "below_alarm": int(counts.get("below_alarm", 0))}

    def _summary(self, tx) -> str:
        d = self.data
        inner, outer = (tx.pct(lv, 1 if lv * 100 % 1 else 0) for lv in (self.level, self.alarm_level))
        lines = [tx("Funnel plot of {k} units: {indicator}; target {target}{given}.",
                    k=tx.int(self.n_units), indicator=tx(_KIND_LABELS[self.kind]),
                    target=tx.num(self.target * self.multiplier, _digits(self.target * self.multiplier)),
                    given=tx(" (given)") if self.target_given else (
                        tx(" (observed = expected)") if self.kind == "ratio" else tx(" (pooled value)")))]
        lines.append(tx("Limits at {inner} (alert) and {outer} (alarm); {limits}.", inner=inner, outer=outer,
                        limits=tx(_LIMIT_LABELS[self.limits])))
        trim = tx("{share} of the z-scores {how} at each end", share=tx.pct(self.trim),
                  how=tx("Winsorised") if self.trim_method == "winsorize" else tx("truncated"))
        lines.append(tx("Over-dispersion: phi = {phi} ({trim}; test of no over-dispersion: {p}); "
                        "tau2 = {tau2} on the {scale} scale.", phi=tx.num(self.phi, 3), trim=trim,
                        p=tx.pvalue(self.phi_pvalue), tau2=tx.num(self.tau2, _digits(self.tau2)),
                        scale=tx(_TRANSFORM_LABELS[self.transform])))
        if self.adjusted:
            lines.append(tx(_ADJUSTED_LABELS[self.overdispersion]))
        elif self.overdispersion != "none":
            lines.append(tx("No over-dispersion left to adjust for: the limits are not widened."))
        else:
            lines.append(tx("Limits not adjusted for over-dispersion."))
        for signal in SIGNALS:
            if signal == "within":
                continue
            units = d.loc[d["signal"] == signal, "unit"]
            if len(units):
                shown = ", ".join(str(u) for u in units[:10]) + (", ..." if len(units) > 10 else "")
                lines.append("  " + tx(_SIGNAL_LABELS[signal]) + tx.colon() + f" {tx.int(len(units))} ({shown})")
        n_within = int((d["signal"] == "within").sum())
        lines.append("  " + tx(_SIGNAL_LABELS["within"]) + tx.colon() + f" {tx.int(n_within)}")
        return "\n".join(lines)

    @styled
    def plot(self, *, adjusted: bool | None = None, label_units: bool = True, title: str | None = None,
             xlabel: str | None = None, ylabel: str | None = None, hide=None, threshold: int = 5, ax=None):
        """The funnel: each unit's value against its precision, the target and the alert and alarm
        limits; units beyond the alarm limits are named (at most 12, the most extreme first).
        ``adjusted`` chooses the over-dispersion-adjusted or unadjusted limits (default: as the
        result; the signals of the points always follow the result). ``hide`` (one flag per row of
        :meth:`to_frame`, e.g. the ``suppressed`` column of
        :func:`~scaleup_analysis.suppress_small_cells`) leaves units out of the drawing, said in the
        legend with ``threshold``. Returns the Axes."""
        from matplotlib.lines import Line2D

        from ..narrative import Text

        from ..privacy import HIDDEN_MARK, _hidden_label, _hide_mask

        tx = Text()
        ax = new_axes(ax, (7.5, 4.8))
        hidden = _hide_mask(hide, len(self.data), "InstitutionalFunnel.plot")
        d = self.data
        rho = d[self.denominator].to_numpy(float)
        lo, hi = float(rho.min()), float(rho.max())
        # at least a factor 9 on the x-axis, so that the funnel shows when all units are alike in size
        lo, hi = min(lo, hi / 3.0), max(hi, lo * 3.0)
        grid = np.geomspace(max(lo / 1.5, 1e-3 if self.kind != "proportion" else 1.0), hi * 1.15, 300)
        if self.kind == "proportion" and self.limits == "exact":
            grid = np.unique(np.rint(grid))
        lim = self.funnel_limits(grid, adjusted=adjusted)
        ax.plot(grid, lim["alarm_low"], color=PALETTE[3], lw=1.3)
        ax.plot(grid, lim["alarm_high"], color=PALETTE[3], lw=1.3)
        ax.plot(grid, lim["alert_low"], color=PALETTE[1], lw=1.3, ls="--")
        ax.plot(grid, lim["alert_high"], color=PALETTE[1], lw=1.3, ls="--")
        ax.axhline(self.target * self.multiplier, color=NEUTRAL, lw=1)
        colours = {"above_alarm": PALETTE[3], "below_alarm": PALETTE[3], "above_alert": PALETTE[1],
                   "below_alert": PALETTE[1], "within": PALETTE[0]}
        markers = {"above_alarm": "D", "below_alarm": "D", "above_alert": "s", "below_alert": "s", "within": "o"}
        for signal in SIGNALS:
            m = (d["signal"] == signal).to_numpy() & ~hidden
            if m.any():
                ax.scatter(rho[m], d["value"].to_numpy(float)[m], s=22, color=colours[signal],
                           marker=markers[signal], edgecolor="white", linewidth=0.4, zorder=3)
        named = d[d["signal"].isin(["above_alarm", "below_alarm"]).to_numpy() & ~hidden]
        n_hidden = 0
        if label_units and len(named):
            order = named["z_adjusted"].abs().sort_values(ascending=False).index
            n_hidden = max(0, len(order) - _MAX_NAMED)
            for i in order[:_MAX_NAMED]:
                ax.annotate(data_text(d.at[i, "unit"]), (d.at[i, self.denominator], d.at[i, "value"]),
                            textcoords="offset points", xytext=(4, 4), fontsize=7.5)
        ax.set_xlim(grid[0], grid[-1])
        if hi / lo > 20:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            numeric_ticks(ax.xaxis, tx, ticks=log_ticks(grid[0], grid[-1]))
        else:
            numeric_ticks(ax.xaxis, tx)
        y = np.concatenate([d["value"].to_numpy(float)[~hidden], lim["alert_low"], lim["alert_high"]])
        y = y[np.isfinite(y)]
        if y.size:
            span = float(y.max() - y.min()) or 1.0
            ax.set_ylim(y.min() - 0.05 * span, y.max() + 0.08 * span)
        numeric_ticks(ax.yaxis, tx)
        ax.set_xlabel(tx(_PRECISION_LABELS[self.kind]) if xlabel is None else xlabel)
        if ylabel is None:
            ylabel = tx(_VALUE_LABELS[self.kind])
            if self.multiplier == 100:
                ylabel += " (%)"
            elif self.multiplier != 1:
                ylabel += tx(" (per {m})", m=axis_number(tx, self.multiplier))
        ax.set_ylabel(ylabel)
        ax.set_title(tx("Funnel plot: units compared with the target") if title is None else title)
        inner, outer = (tx.pct(lv, 1 if lv * 100 % 1 else 0) for lv in (self.level, self.alarm_level))
        use_adjusted = self.adjusted if adjusted is None else adjusted
        how = tx(" (adjusted for over-dispersion)") if use_adjusted and self.overdispersion != "none" else ""
        handles = [
            Line2D([], [], color=NEUTRAL, label=tx("Target")),
            Line2D([], [], color=PALETTE[1], ls="--", label=tx("{level} limits", level=inner) + how),
            Line2D([], [], color=PALETTE[3], label=tx("{level} limits", level=outer) + how),
            Line2D([], [], color=PALETTE[0], marker="o", ls="", label=tx("Unit within the limits")),
            Line2D([], [], color=PALETTE[1], marker="s", ls="", label=tx("Alert (beyond {level})", level=inner)),
            Line2D([], [], color=PALETTE[3], marker="D", ls="", label=tx("Alarm (beyond {level})", level=outer)),
        ]
        if hidden.any():
            handles.append(Line2D([], [], ls="none", marker=f"${HIDDEN_MARK}$", ms=6, color="black",
                                  label=_hidden_label(tx, int(hidden.sum()), threshold)))
        if n_hidden:
            handles.append(Line2D([], [], color=GREY, ls="", label=tx.n(
                "{n} more unit beyond the alarm limits, not named", "{n} more units beyond the alarm limits, not named",
                n_hidden)))
        for h in handles:
            h.set_label(textwrap.fill(h.get_label(), 30))
        ax.legend(handles=handles, **OUTSIDE)
        return ax


_KIND_LABELS = {"proportion": N_("proportion of individuals with the event"),
                "mean": N_("mean of the values of the individuals"),
                "rate": N_("rate of events per unit of person-time"),
                "ratio": N_("ratio of observed to expected events (indirectly standardised)")}
_LIMIT_LABELS = {"exact": N_("unadjusted limits exact (binomial or Poisson, interpolated)"),
                 "normal": N_("unadjusted limits from the normal approximation")}
_TRANSFORM_LABELS = {"none": N_("original"), "arcsine": N_("arcsine square-root"), "sqrt": N_("square-root"),
                     "log": N_("log")}
_ADJUSTED_LABELS = {"additive": N_("Limits widened for over-dispersion by an additive random effect (tau2)."),
                    "multiplicative": N_("Limits widened for over-dispersion by the factor sqrt(phi).")}
_SIGNAL_LABELS = {"above_alarm": N_("Above the alarm limit"), "above_alert": N_("Above the alert limit only"),
                  "within": N_("Within the limits"), "below_alert": N_("Below the alert limit only"),
                  "below_alarm": N_("Below the alarm limit")}
_PRECISION_LABELS = {"proportion": N_("Number of individuals"), "mean": N_("Number of individuals"),
                     "rate": N_("Person-time"),
                     "ratio": N_("Expected events")}
_VALUE_LABELS = {"proportion": N_("Proportion"), "rate": N_("Rate"), "ratio": N_("Observed / expected"),
                 "mean": N_("Mean value")}


def _digits(*values: float) -> int:
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return int(min(6, max(2, 2 - math.floor(math.log10(min(finite))))))


def _sigma(transform, kind, target, precision, overdispersion, phi, tau2, sd=math.nan):
    s = _se(transform, kind, target, precision, sd)
    if overdispersion == "multiplicative":
        return s * math.sqrt(max(phi, 1.0))
    if overdispersion == "additive":
        return np.sqrt(s * s + tau2)
    return s


# --------------------------------------------------------------------------------------------
# the function
# --------------------------------------------------------------------------------------------
def _choice(value, arg: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ScaleupDataError(f"{_FN}: {arg} must be one of {list(allowed)}, got {value!r}.")
    return value


def _check_options(kind, transform, overdispersion, trim, trim_method, limits, level, alarm_level, multiplier,
                   target):
    kind = _choice(kind, "kind", _KINDS)
    transform = _DEFAULT_TRANSFORM[kind] if transform is None else transform
    transform = _choice(transform, f"transform (for kind={kind!r})", _TRANSFORMS[kind])
    overdispersion = _choice(overdispersion, "overdispersion", _OVERDISPERSION)
    trim_method = _choice(trim_method, "trim_method", _TRIM_METHODS)
    if limits is None:
        limits = "normal" if kind == "mean" else "exact"
    limits = _choice(limits, "limits", _LIMITS)
    if kind == "mean" and limits == "exact":
        raise ScaleupDataError(f"{_FN}: a mean has no exact (binomial or Poisson) limits: use limits='normal'.")
    if isinstance(trim, bool) or not isinstance(trim, (int, float)) or not 0 <= trim < 0.5:
        raise ScaleupDataError(f"{_FN}: trim must be a share in [0, 0.5), e.g. 0.1 (10 % at each end); got {trim!r}.")
    lv = (check_level(level, _FN), check_level(alarm_level, _FN))
    if not lv[0] < lv[1]:
        raise ScaleupDataError(f"{_FN}: alarm_level ({alarm_level!r}) must be above level ({level!r}): the alarm "
                               "limits are the outer ones, e.g. level=0.95, alarm_level=0.998.")
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not (
            math.isfinite(multiplier) and multiplier > 0):
        raise ScaleupDataError(f"{_FN}: multiplier must be a positive number (1, 100, 1000); got {multiplier!r}.")
    if target is not None:
        ok = not isinstance(target, bool) and isinstance(target, (int, float)) and math.isfinite(target)
        if ok and kind != "mean":
            ok = target > 0 and (kind != "proportion" or target < 1)
        if not ok:
            bound = {"proportion": "in (0, 1)", "mean": "finite"}.get(kind, "positive")
            raise ScaleupDataError(f"{_FN}: target must be a number {bound} on the indicator's natural scale "
                                   f"(not multiplied); got {target!r}.")
    return kind, transform, overdispersion, trim_method, limits, lv


def _mean_table(data, mean, sd, n, unit) -> tuple[pd.DataFrame, float]:
    """Per unit: individuals, mean and within-unit sum of squares; and the pooled within-unit SD."""
    label = f"{_FN}: table 'data'"
    require_columns(data, "data", [unit, mean, sd, n], label=label)
    w = numeric_column(data, n, label, arg="n")
    m = numeric_column(data, mean, label, arg="mean", missing=True)
    v = numeric_column(data, sd, label, arg="sd", missing=True)
    for col, values, bound in ((n, w, _MAX_COUNT), (mean, m, _MAX_ABS_MEAN), (sd, v, _MAX_ABS_MEAN)):
        check_magnitude(values, data.index, f"{label}, column {col!r}", max_abs=bound)
    keys = data[unit]
    if keys.isna().any():
        raise ScaleupDataError(f"{label}, column {unit!r} (argument 'unit'): missing unit in "
                               f"{rows_text(data, keys.isna().to_numpy())}. Every row must name its unit.")
    bad = (w < 0) | (w != np.rint(w))
    if bad.any():
        raise ScaleupDataError(f"{label}, column {n!r} (argument 'n'): individuals must be whole numbers >= 0; not "
                               f"in {rows_text(data, bad)}.")
    bad = (w > 0) & np.isnan(m)
    if bad.any():
        raise ScaleupDataError(f"{label}, column {mean!r} (argument 'mean'): missing mean in "
                               f"{rows_text(data, bad)}, which have individuals ({n!r} > 0).")
    bad = (w > 1) & ~(v >= 0)
    if bad.any():
        raise ScaleupDataError(f"{label}, column {sd!r} (argument 'sd'): missing or negative standard deviation in "
                               f"{rows_text(data, bad)}, which have 2 or more individuals.")
    use = w > 0
    d = pd.DataFrame({"unit": keys.to_numpy()[use], "w": w[use], "wm": w[use] * m[use],
                      "ss": np.where(w[use] > 1, (w[use] - 1) * np.nan_to_num(v[use]) ** 2, 0.0), "m": m[use]})
    t = d.groupby("unit", sort=True, observed=True)[["w", "wm", "ss"]].sum()
    t["mean"] = t["wm"] / t["w"]
    # between rows of a unit (e.g. periods) around the unit's mean: part of the within-unit spread
    d["dev"] = d["w"] * (d["m"] - t["mean"].reindex(d["unit"]).to_numpy()) ** 2
    t["ss"] += d.groupby("unit", sort=True, observed=True)["dev"].sum()
    dropped = sorted(set(keys.dropna()) - set(t.index), key=str)
    if dropped:
        raise ScaleupDataError(f"{label}, column {n!r}: unit(s) {dropped[:5]} have no individuals (zero in total); "
                               "leave them out of the comparison.")
    df = t["w"].sum() - len(t)
    if not df > 0 or not t["ss"].sum() > 0:
        raise ScaleupDataError(f"{label}: no spread of the values within units (standard deviations all zero or "
                               "one individual per unit): the funnel's limits cannot be computed.")
    return t.reset_index(), float(math.sqrt(t["ss"].sum() / df))


def _unit_table(data, events, precision, unit, kind) -> pd.DataFrame:
    label = f"{_FN}: table 'data'"
    require_columns(data, "data", [unit, events, precision], label=label)
    r = numeric_column(data, events, label, arg="events")
    rho = numeric_column(data, precision, label, arg="expected" if kind == "ratio" else "n")
    for col, values in ((events, r), (precision, rho)):
        check_magnitude(values, data.index, f"{label}, column {col!r}", max_abs=_MAX_COUNT,
                        consequence="more than any count of events, individuals or person-time",
                        fix="Check these rows or the unit of the column.")
    keys = data[unit]
    if keys.isna().any():
        raise ScaleupDataError(f"{label}, column {unit!r} (argument 'unit'): missing unit in "
                               f"{rows_text(data, keys.isna().to_numpy())}. Every row must name its unit.")
    bad = r < 0
    if bad.any():
        raise ScaleupDataError(f"{label}, column {events!r} (argument 'events'): negative count of events in "
                               f"{rows_text(data, bad)}.")
    bad = rho < 0
    if bad.any():
        arg = "expected" if kind == "ratio" else "n"
        raise ScaleupDataError(f"{label}, column {precision!r} (argument '{arg}'): negative values in "
                               f"{rows_text(data, bad)}.")
    if kind == "proportion":
        whole = (r == np.rint(r)) & (rho == np.rint(rho))
        if not whole.all():
            raise ScaleupDataError(f"{label}: events ({events!r}) and individuals ({precision!r}) must be whole "
                                   f"numbers (counts) for a proportion; not in {rows_text(data, ~whole)}.")
    agg = pd.DataFrame({"unit": keys.to_numpy(), "r": r, "rho": rho}).groupby("unit", sort=True, observed=True)
    t = agg.sum()
    if kind == "proportion":
        over = t["r"] > t["rho"]
        if over.any():
            raise ScaleupDataError(f"{label}: more events ({events!r}) than individuals ({precision!r}) for unit(s) "
                                   f"{list(t.index[over][:5])}.")
    empty = ~(t["rho"] > 0)
    if empty.any():
        raise ScaleupDataError(f"{label}, column {precision!r}: unit(s) {list(t.index[empty][:5])} have no "
                               f"{'expected events' if kind == 'ratio' else 'individuals or person-time'} "
                               "(zero in total); leave them out of the comparison.")
    return t.reset_index()


@checked_inputs
def institutional_funnel(
    data: pd.DataFrame,
    *,
    events: str = "events",
    n: str = "n",
    expected: str | None = None,
    mean: str = "mean",
    sd: str = "sd",
    unit: str = "site_id",
    kind: str = "proportion",
    target: float | None = None,
    transform: str | None = None,
    overdispersion: str = "additive",
    trim: float = 0.1,
    trim_method: str = "winsorize",
    limits: str | None = None,
    level: float = 0.95,
    alarm_level: float = 0.998,
    multiplier: float = 1.0,
) -> InstitutionalFunnel:
    r"""Funnel plot comparing units on one indicator, with over-dispersion (Spiegelhalter 2005).

    Parameters
    ----------
    data : pandas.DataFrame
        One or more rows per unit (several rows of a unit are summed: patient-level rows with a 0/1
        event and ``n = 1``, or site x period rows).
    events : str
        Column of the number of events (the numerator; observed events for a ratio).
    n : str
        Column of the number of individuals (``kind="proportion"``) or of the person-time
        (``kind="rate"``).
    expected : str, optional
        Column of the expected events (``kind="ratio"``; from a case-mix model), instead of ``n``.
    mean, sd : str
        Columns of the mean and standard deviation of the ``n`` values of a row (``kind="mean"``,
        e.g. the ``outcomes`` rows of a ``mean`` indicator).
    unit : str
        Column of the unit compared (site, establishment, region).
    kind : {"proportion", "rate", "ratio", "mean"}
        The indicator: events / individuals, events / person-time, observed / expected (an
        indirectly standardised ratio, target 1), or the mean of a continuous value (a unit's mean
        has standard error :math:`\sigma/\sqrt{n}`, :math:`\sigma` the pooled within-unit
        standard deviation; several rows of a unit are pooled, their spread around the unit's
        mean counting as within-unit spread).
    target : float, optional
        Target :math:`\theta_0` on the natural scale (a proportion in (0, 1), events per unit of
        person-time, or a ratio). Default: the pooled value :math:`\sum r / \sum \rho`, or 1 for
        a ratio.
    transform : {"none", "arcsine", "sqrt", "log"}, optional
        Scale of the z-scores, of the over-dispersion and of the normal limits. Default
        ``"arcsine"`` for a proportion and ``"sqrt"`` for a rate or ratio (variance-stabilising,
        defined at zero events); ``"log"`` with ``trim_method="truncate"`` is the SHMI method.
    overdispersion : {"additive", "multiplicative", "none"}
        How the limits are widened when units vary more than chance allows.
    trim : float
        Share of z-scores Winsorised or truncated at each end before estimating :math:`\phi`
        (0.1 = 10 %).
    trim_method : {"winsorize", "truncate"}
    limits : {"exact", "normal"}, optional
        The unadjusted limits: exact binomial or Poisson (interpolated; the default for counts), or
        normal on the transformed scale (the only ones for a mean).
    level, alarm_level : float
        Coverage of the inner (alert) and outer (alarm) limits.
    multiplier : float
        Factor for the values and limits shown: 100 (per cent), 1000 (per 1,000).

    Returns
    -------
    InstitutionalFunnel

    Notes
    -----
    See the module documentation (:mod:`scaleup_analysis.monitoring.funnel`) for the formulas. The
    precision :math:`\rho` is the number of individuals, the person-time or the expected events.
    With ``transform="log"`` a unit without events has no z-score: the function refuses it (use
    ``"sqrt"``). The over-dispersion is estimated from all units (the usual practice); when the
    target is given, :math:`\hat\phi` measures the spread around that target.

    References
    ----------
    Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Statistics
    in Medicine, 24(8), 1185-1202.

    Spiegelhalter, D. J. (2005). Handling over-dispersion of performance indicators. Quality and
    Safety in Health Care, 14(5), 347-351.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"site_id": ["A", "B", "C", "D", "E", "F"],
    ...                   "events": [12, 30, 9, 41, 20, 3], "n": [100, 210, 95, 250, 160, 60]})
    >>> res = sa.institutional_funnel(d, overdispersion="none")
    >>> round(res.target, 4)
    0.1314
    >>> res.to_frame()[["unit", "value", "alarm_low", "alarm_high", "signal"]].round(3)
      unit  value  alarm_low  alarm_high  signal
    0    A  0.120      0.033       0.240  within
    1    B  0.143      0.062       0.206  within
    2    C  0.095      0.032       0.243  within
    3    D  0.164      0.068       0.199  within
    4    E  0.125      0.053       0.217  within
    5    F  0.050      0.007       0.275  within
    """
    kind, transform, overdispersion, trim_method, limits, lv = _check_options(
        kind, transform, overdispersion, trim, trim_method, limits, level, alarm_level, multiplier, target)
    if kind == "mean":
        return _mean_funnel(data, mean, sd, n, unit, target, overdispersion, trim, trim_method, lv, multiplier)
    if kind == "ratio":
        if expected is None:
            raise ScaleupDataError(f"{_FN}: kind='ratio' needs the column of expected events: expected=...")
        precision = expected
    else:
        if expected is not None:
            raise ScaleupDataError(f"{_FN}: expected= is for kind='ratio'; for a {kind} the denominator is n=...")
        precision = n
    t = _unit_table(data, events, precision, unit, kind)
    r, rho = t["r"].to_numpy(float), t["rho"].to_numpy(float)
    if len(t) < 3:
        raise ScaleupDataError(f"{_FN}: {len(t)} unit(s) in table 'data'; a funnel compares at least 3 units.")
    target_given = target is not None
    if target is None:
        target = 1.0 if kind == "ratio" else float(r.sum() / rho.sum())
        if not (target > 0) or (kind == "proportion" and not target < 1):
            raise ScaleupDataError(f"{_FN}: table 'data' has {'no' if target == 0 else 'only'} events in every unit: "
                                   "the pooled target is 0 or 1 and no unit can differ from it; give target=...")
    y = r / rho
    if transform == "log" and (r == 0).any():
        raise ScaleupDataError(f"{_FN}: transform='log' has no z-score for a unit without events: unit(s) "
                               f"{list(t['unit'][r == 0][:5])}. Use transform='sqrt'.")
    out = pd.DataFrame({"unit": t["unit"], "events": r, "expected" if kind == "ratio" else "n": rho})
    return _finish(out, y, rho, kind, transform, target, target_given, overdispersion, trim, trim_method, limits, lv,
                   multiplier)


def _mean_funnel(data, mean, sd, n, unit, target, overdispersion, trim, trim_method, lv, multiplier):
    t, sigma_w = _mean_table(data, mean, sd, n, unit)
    if len(t) < 3:
        raise ScaleupDataError(f"{_FN}: {len(t)} unit(s) in table 'data'; a funnel compares at least 3 units.")
    rho, y = t["w"].to_numpy(float), t["mean"].to_numpy(float)
    target_given = target is not None
    target = float(np.sum(rho * y) / rho.sum()) if target is None else float(target)
    out = pd.DataFrame({"unit": t["unit"], "n": rho})
    return _finish(out, y, rho, "mean", "none", target, target_given, overdispersion, trim, trim_method, "normal",
                   lv, multiplier, sigma_w)


def _finish(out, y, rho, kind, transform, target, target_given, overdispersion, trim, trim_method, limits, lv,
            multiplier, sd=math.nan) -> InstitutionalFunnel:
    """z-scores, over-dispersion, limits and signals of the units of ``out``."""
    s = _se(transform, kind, target, rho, sd)
    z = (_f(transform, y) - _f(transform, target)) / s
    # trimming, phi and tau2
    if trim > 0:
        lo, hi = _quantile7(z, trim), _quantile7(z, 1 - trim)
    else:
        lo, hi = -np.inf, np.inf
    trimmed = (z < lo) | (z > hi)
    if trim_method == "winsorize":
        zw, w = np.clip(z, lo, hi), 1.0 / s ** 2
    else:
        zw, w = z[~trimmed], 1.0 / s[~trimmed] ** 2
    n_used = zw.size
    phi = float(np.sum(zw ** 2) / n_used)
    phi_df = n_used - (0 if target_given else 1)
    phi_pvalue = float(stats.chi2.sf(n_used * phi, phi_df)) if phi_df > 0 else float("nan")
    denom = w.sum() - (w ** 2).sum() / w.sum()
    tau2 = float(max(0.0, (n_used * phi - (n_used - 1)) / denom)) if denom > 0 else 0.0
    adjusted = (overdispersion == "additive" and tau2 > 0) or (overdispersion == "multiplicative" and phi > 1)
    sigma = _sigma(transform, kind, target, rho, overdispersion, phi, tau2, sd) if adjusted else None
    z_adj = (_f(transform, y) - _f(transform, target)) / sigma if adjusted else z
    lim = _limits(kind, transform, target, rho, lv, sigma, limits == "exact", sd)
    value = y * multiplier
    out = out.assign(value=value, se=s, z=z, z_adjusted=z_adj, trimmed=trimmed)
    for k in ("alert_low", "alert_high", "alarm_low", "alarm_high"):
        out[k] = lim[k] * multiplier
    sig = np.full(len(out), "within", dtype=object)
    sig[value < out["alert_low"].to_numpy()] = "below_alert"
    sig[value > out["alert_high"].to_numpy()] = "above_alert"
    sig[value < out["alarm_low"].to_numpy()] = "below_alarm"
    sig[value > out["alarm_high"].to_numpy()] = "above_alarm"
    out["signal"] = sig
    return InstitutionalFunnel(
        data=out, kind=kind, transform=transform, target=float(target), target_given=target_given,
        overdispersion=overdispersion, phi=phi, phi_df=int(phi_df), phi_pvalue=phi_pvalue, tau2=tau2,
        adjusted=bool(adjusted), trim=float(trim), trim_method=trim_method, n_trimmed=int(trimmed.sum()),
        limits=limits, level=lv[0], alarm_level=lv[1], multiplier=float(multiplier), n_units=len(out),
        denominator=out.columns[2] if kind != "mean" else "n", sd=float(sd))


# --------------------------------------------------------------------------------------------
# the indicators of a study at a governance level
# --------------------------------------------------------------------------------------------
#: Levels of aggregation above the site, and the table holding each site's unit at that level.
_LEVEL_TABLES = {"establishment_id": "establishments", "rss_code": "sites"}


def level_units(tables: Mapping[str, pd.DataFrame], by: str) -> pd.Series:
    """Site -> its unit at level ``by`` (``site_id``, ``establishment_id``, ``rss_code`` or another
    column of ``sites``); sites without one (no row in ``establishments``) are left out."""
    sites = tables["sites"]
    if by == "site_id":
        return pd.Series(sites["site_id"].to_numpy(), index=sites["site_id"].to_numpy(), name=by)
    source = _LEVEL_TABLES.get(by, "sites")
    if source not in tables:
        raise ScaleupDataError(f"indicator_funnel(): by={by!r} needs table {source!r} (which site belongs to which "
                               "establishment); it is not in 'tables'.")
    t = tables[source]
    require_columns(t, source, ["site_id", by], label=f"indicator_funnel(): table {source!r}")
    t = t.dropna(subset=[by])
    return pd.Series(t[by].to_numpy(), index=t["site_id"].to_numpy(), name=by)


@checked_inputs
def indicator_funnel(
    tables: Mapping[str, pd.DataFrame],
    *,
    indicator: str,
    by: str = "site_id",
    periods: Sequence[int] | None = None,
    **options,
) -> InstitutionalFunnel:
    """Funnel plot of one indicator of a study, at the site, establishment or region level.

    The ``outcomes`` rows of ``indicator`` in ``periods`` are summed per unit of ``by`` (a site's
    establishment from table ``establishments``, its region from ``sites``), then compared with
    :func:`institutional_funnel`: ``events`` out of ``n`` for a ``proportion`` indicator (per cent
    when its unit is ``%``), the pooled mean of ``n`` values for a ``mean`` indicator. The
    province is the target (the pooled value of all units).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The study's tables: ``indicators``, ``outcomes``, ``sites`` and, for
        ``by="establishment_id"``, ``establishments``.
    indicator : str
        An ``indicator_id`` of table ``indicators``.
    by : str
        The level: ``"site_id"``, ``"establishment_id"``, ``"rss_code"`` or another column of
        ``sites`` (e.g. ``site_type``).
    periods : sequence of int, optional
        Periods summed (default: all).
    **options
        Passed to :func:`institutional_funnel` (``overdispersion``, ``level``, ``target``, ...).

    Returns
    -------
    InstitutionalFunnel
        Its units are the values of ``by``. Units without individuals in the periods are left out
        (with a :class:`~scaleup_analysis.RowsOmittedWarning`), as are sites without a unit at
        that level.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> t = sa.simulate_scaleup(seed=1).tables
    >>> res = sa.indicator_funnel(t, indicator="HO_EVENT", by="establishment_id", periods=[13, 14, 15, 16])
    >>> res.n_units, res.kind, res.multiplier
    (25, 'proportion', 100.0)
    """
    for name in ("indicators", "outcomes", "sites"):
        if name not in tables:
            raise ScaleupDataError(f"indicator_funnel(): table {name!r} is missing from 'tables'.")
    ind, out = tables["indicators"], tables["outcomes"]
    require_columns(ind, "indicators", ["indicator_id", "type", "unit"], label="indicator_funnel(): table 'indicators'")
    require_columns(out, "outcomes", ["site_id", "period", "indicator_id", "n", "events", "mean", "sd"],
                    label="indicator_funnel(): table 'outcomes'")
    row = ind[ind["indicator_id"] == indicator]
    if row.empty:
        raise ScaleupDataError(f"indicator_funnel(): indicator {indicator!r} is not in table 'indicators' (known: "
                               f"{sorted(map(str, ind['indicator_id']))[:10]}).")
    kind = str(row["type"].iloc[0])
    rows = out[out["indicator_id"] == indicator]
    if periods is not None:
        rows = rows[rows["period"].isin(list(periods))]
    units = level_units(tables, by)
    rows = rows.assign(unit=rows["site_id"].map(units)).dropna(subset=["unit"])
    if rows.empty:
        raise ScaleupDataError(f"indicator_funnel(): table 'outcomes' has no rows of indicator {indicator!r} in the "
                               f"periods asked for with a unit at level {by!r}.")
    totals = rows.groupby("unit", observed=True)["n"].sum()
    empty = totals.index[totals <= 0]
    if len(empty):
        warnings.warn(RowsOmittedWarning(
            f"indicator_funnel(): {len(empty)} unit(s) at level {by!r} without individuals for {indicator!r} in the "
            f"periods asked for are left out: {list(map(str, empty[:5]))}."), stacklevel=3)
        rows = rows[~rows["unit"].isin(empty)]
    if kind == "mean":
        options.setdefault("kind", "mean")
        columns = dict(n="n", mean="mean", sd="sd")
    else:
        options.setdefault("kind", "proportion")
        if str(row["unit"].iloc[0]).strip() == "%":
            options.setdefault("multiplier", 100)
        rows = rows.assign(events=rows["events"].astype("float64"))
        columns = dict(events="events", n="n")
    try:
        return institutional_funnel(rows, unit="unit", **columns, **options)
    except ScaleupDataError as exc:
        # the rows are those of table 'outcomes' (same index): name it, not the internal frame
        text = str(exc).replace(f"{_FN}: ", "indicator_funnel(): ").replace(
            "table 'data'", f"table 'outcomes' (indicator {indicator!r})")
        raise ScaleupDataError(text) from None
