r"""Does the effect hold at scale? Site-level effects and the voltage drop.

* :func:`site_effects` -- each adopting site's difference-in-differences effect on one indicator
  (its change from before adoption to after the wash-in, minus the comparison sites' change), with
  its sampling variance: the input of :func:`voltage_drop` and of site-level meta-analyses;
* :func:`voltage_drop` -- the ratio (and difference) of the scaled-up effect to the pilot effect
  (Chambers, Glasgow & Stange, 2013), with Fieller and delta-method confidence intervals, from two
  estimates or from site/study-level effect sizes by phase (subgroup meta-regression with
  :func:`scaleup_analysis.meta_regression`), plus a seeded bootstrap.

References
----------
Chambers, D. A., Glasgow, R. E., & Stange, K. C. (2013). The dynamic sustainability framework.
Implementation Science, 8, 117.

Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical
Society B, 16(2), 175-185.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import (
    DrawClock,
    check_draw_memory,
    check_level,
    check_magnitude,
    checked_inputs,
    fail_rows,
    numeric_column,
    require_columns,
    rows_text,
)
from .._display import Displayed
from ..engines.ratio import fieller
from .._style import NEUTRAL, PALETTE, data_text, new_axes, styled, ticks_inside
from ..errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..i18n import N_

__all__ = ["voltage_drop", "site_effects", "VoltageDropResult"]

#: Largest magnitude of an outcome value (mean, sd, n): squares and variances must stay finite.
_MAX_ABS = 1e100
#: Smallest pilot effect whose square is a normal double (the delta-method SE of the ratio divides by it).
_MIN_SQUARABLE = math.sqrt(sys.float_info.min)

def _ratio_row(a, s, va, vs, cas, crit):
    if a != 0 and abs(a) < _MIN_SQUARABLE:
        # a**2 underflows (|a| below ~1.5e-154): the same delta-method SE, computed as
        # sqrt(numerator) / |a| in Python floats, which overflow to inf (the limit as a -> 0) without
        # a numpy warning; _warn_null_pilot says the ratio is not informative
        a, s, va, vs, cas = (float(x) for x in (a, s, va, vs, cas))
        ratio = s / a
        num = vs - 2 * ratio * cas + ratio * ratio * va if math.isfinite(ratio) else math.inf
        se_r = math.sqrt(num) / abs(a) if num >= 0 else math.nan
    else:
        ratio = s / a if a != 0 else math.nan
        var_r = (vs - 2 * ratio * cas + ratio**2 * va) / a**2 if a != 0 else math.nan
        se_r = math.sqrt(var_r) if var_r >= 0 else math.nan
    if se_r == math.inf:  # an unbounded delta-method interval, also for an infinite ratio
        lo_d, hi_d = -math.inf, math.inf
    else:
        lo_d, hi_d = ratio - crit * se_r, ratio + crit * se_r
    diff = s - a
    se_d = math.sqrt(max(vs + va - 2 * cas, 0.0))
    ftype, flo, fhi, r1, r2 = fieller(a, s, va, vs, cas, crit)
    return {
        "pilot_estimate": a, "pilot_se": math.sqrt(va), "scaled_estimate": s, "scaled_se": math.sqrt(vs),
        "cov": cas, "ratio": ratio, "ratio_se": se_r,
        "ratio_ci_low_delta": lo_d, "ratio_ci_high_delta": hi_d,
        "fieller_type": ftype, "ratio_ci_low_fieller": flo, "ratio_ci_high_fieller": fhi,
        "fieller_root1": r1, "fieller_root2": r2,
        "difference": diff, "difference_se": se_d,
        "difference_ci_low": diff - crit * se_d, "difference_ci_high": diff + crit * se_d,
        "ratio_ci_low_boot": math.nan, "ratio_ci_high_boot": math.nan, "n_boot_failed": 0,
    }  # fmt: skip


@dataclass(frozen=True, eq=False, repr=False)
class VoltageDropResult(Displayed):
    """Result of :func:`voltage_drop`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model x scaled phase: ``model`` (``"estimates"`` for two given estimates;
        ``"meta_regression"``: subgroup meta-regression with a common tau^2; ``"subgroups"``:
        separate random-effects meta-analyses per phase), ``reference`` (pilot phase), ``phase``,
        ``pilot_estimate``, ``pilot_se``, ``scaled_estimate``, ``scaled_se``, ``cov``, ``ratio``,
        ``ratio_se`` (delta method), ``ratio_ci_low_delta``, ``ratio_ci_high_delta``,
        ``fieller_type`` (``bounded``, ``exclusive`` = :math:`(-\\infty, r_1] \\cup [r_2, \\infty)`,
        ``unbounded`` = the whole line), ``ratio_ci_low_fieller``, ``ratio_ci_high_fieller`` (infinite
        unless bounded), ``fieller_root1``, ``fieller_root2``, ``difference`` (scaled - pilot) with
        ``difference_se``, ``difference_ci_low``, ``difference_ci_high``, and the percentile
        bootstrap interval ``ratio_ci_low_boot``, ``ratio_ci_high_boot`` (NaN without bootstrap) and
        ``n_boot_failed``, the resamples whose model could not be fitted (e.g. REML not converging,
        as metafor would stop), left out of the percentile interval.
    phase_effects : pandas.DataFrame or None
        Pooled effect of every phase (model, phase, k, estimate, se, ci_low, ci_high, tau2).
    QM, QM_df, QM_pvalue : float
        Omnibus test of phase differences of the meta-regression (NaN for two estimates).
    meta_regression : MetaRegressionResult or None
    level : float
    n_boot, n_boot_failed : int
        Bootstrap resamples and failed model fits over both models.
    """

    table: pd.DataFrame = field(repr=False)
    phase_effects: pd.DataFrame | None = field(repr=False)
    QM: float
    QM_df: float
    QM_pvalue: float
    level: float
    n_boot: int
    n_boot_failed: int
    meta_regression: object = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The tidy table of ratios and differences."""
        return self.table.copy()

    @property
    def ratio(self) -> float:
        """The (first) voltage-drop ratio of the first model."""
        return float(self.table["ratio"].iloc[0])

    def _repr_fields(self) -> dict:
        t = self.table
        return {"ratio": self.ratio, "ratio_ci_delta": (float(t["ratio_ci_low_delta"].iloc[0]),
                                                       float(t["ratio_ci_high_delta"].iloc[0])),
                "fieller_type": str(t["fieller_type"].iloc[0]), "n_rows": len(t), "QM": self.QM,
                "QM_pvalue": self.QM_pvalue, "level": self.level, "n_boot": self.n_boot,
                "n_boot_failed": self.n_boot_failed}

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        lines = [tx("Voltage drop: effect at scale / pilot effect (1 = no voltage drop, 0 = no effect at scale).")]
        if np.isfinite(self.QM):
            lines.append(tx("Test of phase differences (meta-regression): QM({df}) = {QM}, {p}.",
                            df=tx.int(self.QM_df), QM=tx.num(self.QM, 2), p=tx.pvalue(self.QM_pvalue)))
        if self.phase_effects is not None:
            lines.append(tx("Pooled effect of each phase:"))
            for r in self.phase_effects.itertuples(index=False):
                lines.append("  " + tx("{model}, {phase}: {effect} ({k} effects)", model=_model(r.model, tx),
                                       phase=_phase(r.phase, tx), effect=tx.ci(r.estimate, r.ci_low, r.ci_high,
                                                                               level=self.level), k=tx.int(r.k)))
        for r in self.table.to_dict("records"):
            d = tx.digits_for(r["ratio"], r["ratio_ci_low_delta"], r["ratio_ci_high_delta"])
            if r["fieller_type"] == "bounded":
                fs = tx("{low} to {high}", low=tx.num(r["ratio_ci_low_fieller"], d),
                        high=tx.num(r["ratio_ci_high_fieller"], d))
            elif r["fieller_type"] == "exclusive":
                fs = (f"(-inf, {tx.num(r['fieller_root1'], d)}] U [{tx.num(r['fieller_root2'], d)}, +inf) "
                      + tx("(unbounded: the pilot effect is not significantly different from 0)"))
            else:
                fs = tx("the whole real line (unbounded: the effects are too imprecise)")
            lines += ["", tx("{model}: {phase} vs {reference}: ratio = {ratio}", model=_model(r["model"], tx),
                             phase=_phase(r["phase"], tx), reference=_phase(r["reference"], tx),
                             ratio=tx.num(r["ratio"], d)),
                      "  " + tx("{level} CI, delta method: {low} to {high}", level=level,
                                low=tx.num(r["ratio_ci_low_delta"], d), high=tx.num(r["ratio_ci_high_delta"], d)),
                      "  " + tx("{level} CI, Fieller: {interval}", level=level, interval=fs)]
            if np.isfinite(r["ratio_ci_low_boot"]):
                lines.append("  " + tx("{level} CI, bootstrap: {low} to {high} ({n} resamples, {failed} failed)",
                                       level=level, low=tx.num(r["ratio_ci_low_boot"], d),
                                       high=tx.num(r["ratio_ci_high_boot"], d), n=tx.int(self.n_boot),
                                       failed=tx.int(r["n_boot_failed"])))
            lines.append("  " + tx("difference (at scale - pilot) = {difference}",
                                   difference=tx.ci(r["difference"], r["difference_ci_low"], r["difference_ci_high"],
                                                    level=self.level)))
        return "\n".join(lines)

    @styled
    def plot_ratio(self, *, title: str | None = None, xlabel: str | None = None, ax=None):
        """Ratios with their delta-method (thick), Fieller (thin) and bootstrap (dashed) intervals."""
        from matplotlib.lines import Line2D

        from ..narrative import Text

        tx = Text()
        t = self.table
        ax = new_axes(ax, (9.0, 0.7 * len(t) + 2.0))
        y = np.arange(len(t))[::-1]
        unbounded = False
        for yy, (_, r) in zip(y, t.iterrows()):
            ax.plot([r["ratio_ci_low_delta"], r["ratio_ci_high_delta"]], [yy + 0.12] * 2, color=PALETTE[0], lw=3)
            if r["fieller_type"] == "bounded":
                ax.plot([r["ratio_ci_low_fieller"], r["ratio_ci_high_fieller"]], [yy - 0.08] * 2, color=PALETTE[2],
                        lw=1.2)
            else:
                unbounded = True
                ax.annotate(tx("Fieller: unbounded"), (r["ratio"], yy - 0.3), fontsize=7.5, ha="center",
                            color=PALETTE[2])
            if np.isfinite(r["ratio_ci_low_boot"]):
                ax.plot([r["ratio_ci_low_boot"], r["ratio_ci_high_boot"]], [yy - 0.22] * 2, color=PALETTE[4], lw=1.2,
                        linestyle="--")
            ax.plot(r["ratio"], yy, "o", color="black", zorder=3)
        ax.axvline(1.0, color=NEUTRAL, lw=0.9, linestyle=":")
        ax.axvline(0.0, color=NEUTRAL, lw=0.9)
        ax.set_yticks(y)
        ax.set_yticklabels([tx("{phase} / {reference}", phase=_phase(r["phase"], tx), reference=_phase(r["reference"], tx))
                            + "\n" + _model(r["model"], tx) for _, r in t.iterrows()])
        ax.set_ylim(-0.6, len(t) - 0.4)
        ax.set_xlabel(tx("Ratio of effects: at scale / pilot") if xlabel is None else xlabel)
        ax.set_title(tx("Voltage drop: did the effect shrink at scale?") if title is None else title)
        level = tx.pct(self.level)
        handles = [Line2D([], [], ls="none", marker="o", color="black", label=tx("Ratio")),
                   Line2D([], [], color=PALETTE[0], lw=3, label=tx("{level} CI, delta method", level=level))]
        if (t["fieller_type"] == "bounded").any():
            handles.append(Line2D([], [], color=PALETTE[2], lw=1.2, label=tx("{level} CI, Fieller", level=level)))
        if np.isfinite(t["ratio_ci_low_boot"]).any():
            handles.append(Line2D([], [], color=PALETTE[4], lw=1.2, ls="--",
                                  label=tx("{level} CI, bootstrap", level=level)))
        handles += [Line2D([], [], color=NEUTRAL, lw=0.9, ls=":", label=tx("1 = no voltage drop")),
                    Line2D([], [], color=NEUTRAL, lw=0.9, label=tx("0 = no effect at scale"))]
        legend_title = tx("Fieller unbounded: the pilot effect is too imprecise") if unbounded else None
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1),
                  title=None if legend_title is None else _wrap(legend_title), alignment="left")
        ticks_inside(ax, "x")
        return ax


_MODELS = {"estimates": N_("Two estimates"), "meta_regression": N_("Subgroup meta-regression"),
           "subgroups": N_("Separate meta-analyses")}
_PHASES = {"pilot": N_("pilot"), "scale-up": N_("scale-up"), "scaled": N_("at scale")}


def _model(value, tx) -> str:
    """The model of a row in words."""
    return tx(_MODELS[value]) if value in _MODELS else data_text(value)


def _phase(value, tx) -> str:
    """A phase of the data: the known ones in words, the others as given."""
    return tx(_PHASES[value]) if isinstance(value, str) and value in _PHASES else data_text(value)


def _wrap(text: str, width: int = 30) -> str:
    import textwrap

    return textwrap.fill(text, width)


def _phase_levels(col: pd.Series, levels) -> list:
    present = list(pd.unique(col.dropna()))
    if levels is None:
        if isinstance(col.dtype, pd.CategoricalDtype):
            levels = [c for c in col.cat.categories if c in present]
        else:
            levels = sorted(present, key=str)
            if "pilot" in levels:
                levels = ["pilot"] + [x for x in levels if x != "pilot"]
    levels = list(levels)
    unknown = [x for x in present if x not in levels]
    if unknown:
        raise ScaleupDataError(f"argument 'levels': phase value(s) {unknown} of the data are not listed in {levels}.")
    if len(levels) < 2:
        raise ScaleupDataError(f"argument 'levels': at least two phases are needed (pilot first), got {levels}.")
    return levels


def _from_estimates(pilot, scaled, pilot_se, scaled_se, cov, crit, level) -> VoltageDropResult:
    """The voltage drop of two given estimates."""
    vals = {"pilot": pilot, "scaled": scaled, "pilot_se": pilot_se, "scaled_se": scaled_se, "cov": cov}
    for k, v in vals.items():
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v):
            raise ScaleupDataError(
                f"argument '{k}': a finite number is needed (give pilot, scaled, pilot_se, scaled_se "
                f"and optionally cov), or pass data= with effect sizes by phase; got {v!r}."
            )
    if pilot_se <= 0 or scaled_se <= 0:
        raise ScaleupDataError("arguments 'pilot_se' and 'scaled_se' must be > 0.")
    if cov**2 > pilot_se**2 * scaled_se**2 * (1 + 1e-12):
        raise ScaleupDataError("argument 'cov': |cov| must not exceed pilot_se * scaled_se.")
    row = _ratio_row(float(pilot), float(scaled), float(pilot_se) ** 2, float(scaled_se) ** 2, float(cov), crit)
    table = pd.DataFrame([{"model": "estimates", "reference": "pilot", "phase": "scaled", **row}])
    _warn_null_pilot(table)
    return VoltageDropResult(table=table, phase_effects=None, QM=math.nan, QM_df=math.nan,
                             QM_pvalue=math.nan, level=float(level), n_boot=0, n_boot_failed=0)


def _meta_regression_ratios(mr, lv, phase, crit) -> tuple[list, list]:
    """Pooled effect of every phase and each phase's ratio to the pilot, from the subgroup
    meta-regression (pilot as reference, common tau^2)."""
    for j, name in enumerate(mr.coef.index[1:], start=1):  # patsy keeps the category order
        if not str(name).endswith(f"[T.{lv[j]}]"):
            raise ScaleupDataError(f"internal: unexpected coefficient {name!r} for phase {lv[j]!r}.")
    b = mr.coef["estimate"].to_numpy()
    V = mr.vcov.to_numpy()
    k_by = mr.data[phase].astype(str).value_counts()
    rows, eff = [], []
    eff.append({"model": "meta_regression", "phase": lv[0], "k": int(k_by.get(str(lv[0]), 0)), "estimate": b[0],
                "se": math.sqrt(V[0, 0]), "tau2": mr.tau2})
    for j in range(1, len(lv)):
        a, s = b[0], b[0] + b[j]
        va, vs, cas = V[0, 0], V[0, 0] + V[j, j] + 2 * V[0, j], V[0, 0] + V[0, j]
        eff.append({"model": "meta_regression", "phase": lv[j], "k": int(k_by.get(str(lv[j]), 0)), "estimate": s,
                    "se": math.sqrt(vs), "tau2": mr.tau2})
        rows.append({"model": "meta_regression", "reference": lv[0], "phase": lv[j],
                     **_ratio_row(a, s, va, vs, cas, crit)})
    return rows, eff


def _subgroup_ratios(df, yi, vi, phase, lv, method, level, crit) -> tuple[list, list]:
    """Separate random-effects meta-analyses per phase (independent) and their ratios to the pilot;
    nothing (with a warning) when a phase has too few rows."""
    from ..heterogeneity.meta import meta_analysis

    sub = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        for p_ in lv:
            dd = df[df[phase] == p_]
            try:
                sub[p_] = meta_analysis(dd, yi=yi, vi=vi, method=method, level=level)
            except ScaleupDataError:
                sub[p_] = None
    if not all(r is not None for r in sub.values()):
        small = [p_ for p_, r in sub.items() if r is None]
        warnings.warn(f"voltage_drop(): separate meta-analyses skipped: phase(s) {small} have too few rows.",
                      RowsOmittedWarning, stacklevel=3)
        return [], []
    rows, eff = [], []
    for p_ in lv:
        r = sub[p_]
        eff.append({"model": "subgroups", "phase": p_, "k": r.k, "estimate": r.estimate, "se": r.se,
                    "tau2": r.tau2})
    a0 = sub[lv[0]]
    for p_ in lv[1:]:
        r = sub[p_]
        rows.append({"model": "subgroups", "reference": lv[0], "phase": p_,
                     **_ratio_row(a0.estimate, r.estimate, a0.se**2, r.se**2, 0.0, crit)})
    return rows, eff


def _warn_null_pilot(table: pd.DataFrame) -> None:
    """Say so when a pilot effect is 0 or so close to 0 that its square underflows: the ratio is then
    undefined (NaN) or meaningless (astronomical SE), and the Fieller set unbounded."""
    a = table["pilot_estimate"].to_numpy(dtype=float)
    null = np.abs(a) < _MIN_SQUARABLE
    if null.any():
        i = int(np.flatnonzero(null)[0])
        warnings.warn(
            f"voltage_drop(): the effect of the pilot phase {table['reference'].iloc[i]!r} is "
            f"{a[i]:.3g} (standard error {table['pilot_se'].iloc[i]:.3g}; model(s) "
            f"{sorted(set(table.loc[null, 'model']))}), too close to 0 to divide by: the ratio scaled / pilot is "
            + ("undefined (NaN)" if a[i] == 0 else f"not informative (delta-method SE {table['ratio_se'].iloc[i]:.3g})")
            + (", its Fieller set is the whole line (no roots: NaN)" if table["fieller_type"].iloc[i] == "unbounded"
               else ", its Fieller set is unbounded (two half-lines)")
            + ". Report the difference (scaled - pilot) instead, or check the units of the effect sizes.",
            ScaleupWarning,
            stacklevel=3,
        )


@checked_inputs
def voltage_drop(
    pilot: float | None = None,
    scaled: float | None = None,
    *,
    pilot_se: float | None = None,
    scaled_se: float | None = None,
    cov: float = 0.0,
    data: pd.DataFrame | None = None,
    yi: str = "yi",
    vi: str = "vi",
    phase: str = "phase",
    levels: Sequence | None = None,
    method: str = "REML",
    level: float = 0.95,
    n_boot: int = 0,
    seed=None,
) -> VoltageDropResult:
    r"""Voltage drop: ratio and difference of the scaled-up effect to the pilot (pre-scale) effect.

    Parameters
    ----------
    pilot, scaled : float, optional
        Pilot and scaled-up effect estimates (with ``pilot_se``, ``scaled_se`` and their covariance
        ``cov``, 0 for independent studies). Leave out when ``data`` is given.
    pilot_se, scaled_se, cov : float
    data : pandas.DataFrame, optional
        Site- or study-level effect sizes ``yi`` with sampling variances ``vi`` and a ``phase``
        column: a subgroup meta-regression ``yi ~ phase`` (:func:`scaleup_analysis.meta_regression`,
        common tau^2, pilot phase as reference) gives the pooled effect of every phase, their ratios
        to the pilot and the QM test of phase differences; separate random-effects meta-analyses per
        phase (:func:`scaleup_analysis.meta_analysis`) are reported too (model ``"subgroups"``).
    yi, vi, phase : str
        Columns of ``data``.
    levels : list, optional
        Phase order, pilot (reference) first, e.g. ``["research", "demo", "practice"]``. Default:
        the categories of a categorical column, else sorted values with ``"pilot"`` first.
    method : str, default "REML"
        tau^2 estimator (as :func:`scaleup_analysis.meta_analysis`).
    level : float, default 0.95
    n_boot : int, default 0
        Bootstrap resamples (``data`` only): rows (sites or studies) are resampled with replacement
        within each phase, both models are refitted and the percentile interval of the ratio is
        reported; resamples whose fit fails are left out and counted (``n_boot_failed``).
    seed : int or numpy Generator, optional
        Seed of :func:`numpy.random.default_rng` for the bootstrap.

    Returns
    -------
    VoltageDropResult

    Notes
    -----
    With pilot effect :math:`a`, scaled effect :math:`s`, variances :math:`V_a, V_s`, covariance
    :math:`C_{as}` and the normal quantile :math:`c`, the ratio is :math:`\hat\rho = s/a` and

    * delta method: :math:`SE(\hat\rho) = \sqrt{V_s - 2\hat\rho C_{as} + \hat\rho^2 V_a}\,/\,|a|`,
      interval :math:`\hat\rho \pm c\,SE`;
    * Fieller (1954): the set of :math:`\rho` with :math:`(s - \rho a)^2 \le c^2 (V_s - 2\rho C_{as}
      + \rho^2 V_a)`, i.e. :math:`A\rho^2 - 2B\rho + C \le 0` with :math:`A = a^2 - c^2 V_a`,
      :math:`B = as - c^2 C_{as}`, :math:`C = s^2 - c^2 V_s`. If :math:`A > 0` (the pilot effect is
      significant at the chosen level) it is the bounded interval :math:`(B \mp \sqrt{B^2 - AC})/A`;
      otherwise it is unbounded: the complement of an interval (:math:`B^2 > AC`) or the whole line,
      reported as such (``fieller_type``);
    * difference :math:`s - a` with :math:`SE = \sqrt{V_s + V_a - 2C_{as}}`.

    In the meta-regression :math:`y_i = \beta_0 + \sum_j \beta_j 1[\text{phase}_i = j] + u_i + e_i`,
    :math:`a = \beta_0`, :math:`s_j = \beta_0 + \beta_j`, with variances and covariance from the
    coefficients' covariance matrix (so the difference and its CI are :math:`\beta_j`'s). The
    subgroup model fits each phase separately (independent: :math:`C_{as} = 0`). Normal-theory
    (``test="z"``) inference throughout.

    References
    ----------
    Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical
    Society B, 16(2), 175-185.

    Chambers, D. A., Glasgow, R. E., & Stange, K. C. (2013). The dynamic sustainability framework.
    Implementation Science, 8, 117.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> res = sa.voltage_drop(0.50, 0.30, pilot_se=0.10, scaled_se=0.05)
    >>> r = res.to_frame().iloc[0]
    >>> r[["ratio", "ratio_ci_low_delta", "ratio_ci_high_delta"]].astype(float).round(3).tolist()
    [0.6, 0.294, 0.906]
    >>> r["fieller_type"], r[["ratio_ci_low_fieller", "ratio_ci_high_fieller"]].astype(float).round(3).tolist()
    ('bounded', [0.359, 1.059])
    """
    from ..heterogeneity.meta import meta_regression

    crit = float(stats.norm.isf((1 - check_level(level)) / 2))
    if data is None:
        return _from_estimates(pilot, scaled, pilot_se, scaled_se, cov, crit, level)
    if pilot is not None or scaled is not None:
        raise ScaleupDataError("give either the two estimates (pilot, scaled) or data=, not both.")
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"argument 'data': a pandas DataFrame, got {type(data).__name__}.")
    require_columns(data, "data", [yi, vi, phase])
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ScaleupDataError(f"argument 'n_boot': a non-negative integer, not {n_boot!r}.")
    lv = _phase_levels(data[phase], levels)
    df = data.copy()
    df[phase] = pd.Categorical(df[phase], categories=lv)
    miss = df[phase].isna() & data[phase].notna()
    fail_rows("data", phase, "have values not in 'levels'", df, miss, f"Use one of {lv}.")
    mr = meta_regression(df, yi=yi, vi=vi, mods=[phase], method=method, level=level)
    rows, eff = _meta_regression_ratios(mr, lv, phase, crit)
    sub_rows, sub_eff = _subgroup_ratios(df, yi, vi, phase, lv, method, level, crit)
    table = pd.DataFrame(rows + sub_rows)
    _warn_null_pilot(table)
    phase_effects = pd.DataFrame(eff + sub_eff)
    phase_effects["ci_low"] = phase_effects["estimate"] - crit * phase_effects["se"]
    phase_effects["ci_high"] = phase_effects["estimate"] + crit * phase_effects["se"]
    n_failed = 0
    if n_boot > 0:
        n_failed = _bootstrap(table, mr.data, yi, vi, phase, lv, method, level, n_boot, seed,
                              separate="subgroups" in set(table["model"]))
    return VoltageDropResult(table=table, phase_effects=phase_effects, QM=float(mr.QM),
                             QM_df=float(mr.QM_df[0]), QM_pvalue=float(mr.QM_pvalue), level=float(level),
                             n_boot=int(n_boot), n_boot_failed=n_failed, meta_regression=mr)


def _bootstrap(table, used, yi, vi, phase, lv, method, level, n_boot, seed, separate) -> int:
    """Percentile bootstrap of the ratios (rows resampled within phase); fills ``table`` in place."""
    from ..engines import FitError
    from ..engines.rma import fit_rma

    rng = np.random.default_rng(seed)
    y = used[yi].to_numpy(float)
    v = used[vi].to_numpy(float)
    ph = used[phase].astype(str).to_numpy()
    idx = [np.flatnonzero(ph == str(p_)) for p_ in lv]
    L = len(lv)
    X_full = np.zeros((len(y), L))
    X_full[:, 0] = 1.0
    for j in range(1, L):
        X_full[ph == str(lv[j]), j] = 1.0
    check_draw_memory("voltage_drop()", "n_boot", n_boot, 16.0 * (L - 1),
                      "2,000 resamples give the percentile interval to about +/-0.01 of its coverage.")
    reg = np.full((n_boot, L - 1), np.nan)
    sep = np.full((n_boot, L - 1), np.nan)
    failed = {"meta_regression": 0, "subgroups": 0}
    errors = (FitError, np.linalg.LinAlgError, ValueError, ZeroDivisionError)
    clock = DrawClock("voltage_drop()", "n_boot", n_boot,
                      "2,000 resamples give the percentile interval to about +/-0.01 of its coverage.")
    for bi in range(n_boot):
        clock.tick(bi)
        parts = [rng.choice(ix, size=ix.size, replace=True) for ix in idx]
        take = np.concatenate(parts)
        try:
            f = fit_rma(y[take], v[take], X_full[take], method, "z", level)
            reg[bi] = (f.beta[0] + f.beta[1:]) / f.beta[0]
        except errors:
            failed["meta_regression"] += 1
        if separate:  # the same resample, one random-effects model per phase
            try:
                ests = [fit_rma(y[pt], v[pt], np.ones((pt.size, 1)), method, "z", level).beta[0] for pt in parts]
                sep[bi] = np.array(ests[1:]) / ests[0]
            except errors:
                failed["subgroups"] += 1
    alpha = 1 - level
    for j in range(1, L):
        for model, arr in (("meta_regression", reg), ("subgroups", sep)):
            m = (table["model"] == model) & (table["phase"] == lv[j])
            vals = arr[:, j - 1]
            vals = vals[np.isfinite(vals)]
            if m.any():
                table.loc[m, "n_boot_failed"] = failed[model]
            if m.any() and vals.size:
                table.loc[m, "ratio_ci_low_boot"] = float(np.quantile(vals, alpha / 2))
                table.loc[m, "ratio_ci_high_boot"] = float(np.quantile(vals, 1 - alpha / 2))
    return sum(failed.values())


# --------------------------------------------------------------------------------------------------
# site-level effects (input of voltage_drop and of site-level meta-analyses)
# --------------------------------------------------------------------------------------------------
def _indicator_rows(data, sites, indicator, site, cohort, phase) -> pd.DataFrame:
    """Site-period rows of one indicator with n > 0, their mean and individual SD (a proportion's
    mean is events / n and its SD sqrt(p (1 - p))), merged with the sites' cohort and phase."""
    y = data[data["indicator_id"] == indicator]
    if y.empty:
        raise ScaleupDataError(
            f"site_effects(): table 'outcomes', column 'indicator_id': no row for indicator {indicator!r}; "
            f"available: {sorted(data['indicator_id'].astype(str).unique())}"
        )
    y = y.copy()
    for col in ("n", "mean", "sd", "events"):
        if col in y:
            y[col] = numeric_column(y, col, "site_effects(): table 'outcomes'", missing=True)
            check_magnitude(y[col], y.index, f"site_effects(): table 'outcomes', column {col!r}", max_abs=_MAX_ABS)
    has_mean = "mean" in y and "sd" in y and y["mean"].notna().any()
    has_events = "events" in y and y["events"].notna().any()
    if not has_mean and not has_events:
        raise ScaleupDataError(
            f"site_effects(): table 'outcomes': indicator {indicator!r} has neither 'mean'/'sd' values (a mean "
            "indicator) nor 'events' (a proportion indicator)"
        )
    y = y[y["n"] > 0].copy()
    if not has_mean:  # proportion indicator: mean = events / n, individual variance p (1 - p)
        p_hat = y["events"].astype(float) / y["n"].astype(float)
        y["mean"] = p_hat
        y["sd"] = np.sqrt(p_hat * (1 - p_hat))
    gaps = y[["mean", "sd"]].isna().any(axis=1).to_numpy()
    if gaps.any():
        what = "'mean' or 'sd'" if has_mean else "'events'"
        warnings.warn(
            f"site_effects(): table 'outcomes', indicator {indicator!r}: {rows_text(y, gaps, label='first:')} with "
            f"n > 0 have a missing {what} and were left out; those sites' before / after means use their other "
            "periods.",
            RowsOmittedWarning,
            stacklevel=3,
        )
    y = y[~gaps]
    return y.merge(sites[[site, cohort, phase]], on=site, how="inner")


def _pooled_mean(n, tot, var) -> tuple[float, float, float]:
    """Pooled mean of site-periods (sum of totals over sum of n), its variance and the sum of n."""
    n_sum = float(np.sum(n))
    return float(np.sum(tot)) / n_sum, float(np.sum(var)) / n_sum**2, n_sum


def _did_effect(g, comp, site_cohort, period, washin_periods):
    """(effect, variance, n before, n after) of one adopting site, or None without a period before
    adoption or after the wash-in (at the site or at the comparison sites)."""
    a = int(site_cohort)
    before = g[g[period] < a]
    after = g[g[period] >= a + washin_periods]
    cb = comp.reindex(before[period].unique()).dropna()
    ca = comp.reindex(after[period].unique()).dropna()
    if before.empty or after.empty or cb.empty or ca.empty:
        return None
    m0, v0, n0 = _pooled_mean(before["n"], before["n"] * before["mean"], before["n"] * before["sd"] ** 2)
    m1, v1, n1 = _pooled_mean(after["n"], after["n"] * after["mean"], after["n"] * after["sd"] ** 2)
    c0, w0, _ = _pooled_mean(cb["n"], cb["tot"], cb["var"])
    c1, w1, _ = _pooled_mean(ca["n"], ca["tot"], ca["var"])
    return (m1 - m0) - (c1 - c0), v0 + v1 + w0 + w1, n0, n1


@checked_inputs
def site_effects(
    data: pd.DataFrame,
    sites: pd.DataFrame,
    indicator: str,
    *,
    washin_periods: int = 0,
    comparison_phase: str = "not-adopted",
    site: str = "site_id",
    period: str = "period",
    cohort: str = "adoption_period",
    phase: str = "phase",
) -> pd.DataFrame:
    """Site-level difference-in-differences effects of the innovation on one indicator.

    For each adopting site, the change of its pooled mean from before adoption to the periods after
    the wash-in, minus the same change over the same periods at the comparison sites (pooled).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``outcomes`` table (site × period × indicator; ``n`` and ``mean``, ``sd`` for a mean
        indicator, ``events`` for a proportion indicator).
    sites : pandas.DataFrame
        The ``sites`` table (``adoption_period`` and ``phase``).
    indicator : str
        An indicator id, e.g. ``"HO_Y"``: a ``mean`` indicator (rows with ``mean`` and ``sd``) or a
        ``proportion`` indicator (rows with ``events``; effects are differences of proportions).
    washin_periods : int
        Periods after adoption left out before the "after" window starts (effects that ramp up
        over the first periods of delivery, e.g. ``ramp_periods - 1`` of ``simulate_scaleup``).
    comparison_phase : str
        Value of ``phase`` that marks the comparison (never-adopting) sites.
    site, period, cohort, phase : str
        Column names (``cohort``: the site's adoption period, missing = never adopts).

    Returns
    -------
    pandas.DataFrame
        One row per adopting site: ``site_id``, ``phase``, ``yi`` (effect), ``vi`` (its sampling
        variance), ``n_before``, ``n_after`` (individuals in each window at the site).

    Notes
    -----
    With :math:`\\bar y_{s,W} = \\sum_{t\\in W} n_{st}\\bar y_{st} / \\sum_{t\\in W} n_{st}` the
    pooled mean of site :math:`s` over window :math:`W` (variance
    :math:`\\sum n_{st} sd_{st}^2 / (\\sum n_{st})^2`), and :math:`\\bar c_W` the same for all
    comparison sites pooled, the effect of site :math:`s` adopting in period :math:`A_s` is

    .. math:: y_s = (\\bar y_{s,A} - \\bar y_{s,B}) - (\\bar c_A - \\bar c_B),

    with :math:`B = \\{t < A_s\\}` and :math:`A = \\{t \\ge A_s + w\\}`, and :math:`v_s` the sum of
    the four variances (independent samples in each site-period). For a proportion indicator the
    site-period mean is :math:`p_{st} = e_{st} / n_{st}` and the individual variance
    :math:`p_{st}(1 - p_{st})` takes the place of :math:`sd_{st}^2` (the Wald variance of a difference
    of proportions). Sites with no period in either window are left out with a
    :class:`~scaleup_analysis.errors.RowsOmittedWarning`.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=20)
    >>> es = sa.site_effects(sim.tables["outcomes"], sim.tables["sites"], "HO_Y", washin_periods=2)
    >>> list(es.columns)
    ['site_id', 'phase', 'yi', 'vi', 'n_before', 'n_after']
    """
    require_columns(data, "outcomes", [site, period, "indicator_id", "n"])
    require_columns(sites, "sites", [site, cohort, phase])
    if not isinstance(washin_periods, (int, np.integer)) or washin_periods < 0:
        raise ScaleupDataError(f"site_effects(): washin_periods must be an integer >= 0, got {washin_periods!r}")
    y = _indicator_rows(data, sites, indicator, site, cohort, phase)
    is_comp = y[phase].astype(str) == comparison_phase
    if not is_comp.any():
        raise ScaleupDataError(
            f"site_effects(): table 'sites', column '{phase}': no site with phase {comparison_phase!r}, "
            "so there is no comparison group; pass comparison_phase= naming the comparison sites"
        )
    comp = y[is_comp].assign(tot=lambda d: d["n"] * d["mean"], var=lambda d: d["n"] * d["sd"] ** 2)
    comp = comp.groupby(period)[["n", "tot", "var"]].sum()
    rows, omitted = [], []
    for sid, g in y[~is_comp & y[cohort].notna()].groupby(site, sort=True):
        effect = _did_effect(g, comp, g[cohort].iloc[0], period, washin_periods)
        if effect is None:
            omitted.append(sid)
        else:
            rows.append((sid, str(g[phase].iloc[0]), *effect))
    if omitted:
        warnings.warn(
            f"site_effects(): {len(omitted)} adopting site(s) left out because they have no period "
            f"before adoption or none after the wash-in (or the comparison sites have none): "
            f"{', '.join(map(str, omitted[:5]))}{' ...' if len(omitted) > 5 else ''}",
            RowsOmittedWarning,
            stacklevel=2,
        )
    return pd.DataFrame(rows, columns=[site, "phase", "yi", "vi", "n_before", "n_after"])
