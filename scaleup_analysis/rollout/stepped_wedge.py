"""Stepped-wedge cluster randomised designs: schedule, power and analysis (Hussey & Hughes 2007).

Model for the mean of cluster i in period j (cross-sectional sampling, m_ij individuals)::

    Ybar_ij = mu + beta_j + theta X_ij + alpha_i + gamma_ij + ebar_ij
    alpha_i ~ N(0, tau2), gamma_ij ~ N(0, cluster_period_tau2), ebar_ij ~ N(0, sigma2 / m_ij)

with fixed period effects beta_j and X_ij = 1 once cluster i has crossed to the intervention.
Var(theta_hat) is the theta element of (sum_i X_i' V_i^-1 X_i)^-1 for the generalised least
squares estimator (V_i = diag(sigma2 / m_ij + cluster_period_tau2) + tau2 J over the observed
periods of cluster i); for a complete design with equal m it equals Hussey & Hughes' closed form.

The analysis (:func:`stepped_wedge_analysis`) fits the same model to individual-level rows as an
lme4-equivalent linear mixed model, with or without the cluster x period effect gamma_ij
(Hooper et al. 2016), on the package's shared REML/ML engine.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from .._checks import (
    bytes_text,
    check_level,
    check_magnitude,
    check_spread,
    checked_inputs,
    duration_text,
    first_values,
    numeric_column,
)
from .._checks import rows_text as _rows_text
from .._display import Displayed
from .._style import MISSING, NEUTRAL, OUTSIDE, PALETTE, new_axes, styled, ticks_inside
from ..narrative import Text
from ._text import integer_ticks

#: Colours of the schedule: a control cluster-period (light) and an exposed one (dark), readable in grey-scale.
_CONTROL_CELL, _EXPOSED_CELL = "#D6E4F0", PALETTE[0]

__all__ = [
    "stepped_wedge_design",
    "rollout_design",
    "stepped_wedge_power",
    "stepped_wedge_power_sim",
    "stepped_wedge_analysis",
    "SteppedWedgeDesign",
    "SteppedWedgePower",
    "SteppedWedgePowerSim",
    "SteppedWedgeAnalysis",
    "hussey_hughes_variance",
]


# --------------------------------------------------------------------------------------------
# design
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class SteppedWedgeDesign(Displayed):
    """Result of :func:`stepped_wedge_design`.

    Attributes
    ----------
    treatment : numpy.ndarray
        Clusters x periods matrix: 0 = control, 1 = exposed, NaN = not observed.
    step : numpy.ndarray
        Step (1..n_steps) at which each cluster crosses over.
    cluster_sizes : numpy.ndarray or None
        Individuals per cluster-period (per cluster, or clusters x periods).
    """

    treatment: np.ndarray = field(repr=False)
    n_clusters: int
    n_periods: int
    n_steps: int
    baseline_periods: int
    clusters_per_step: tuple
    step: np.ndarray = field(repr=False)
    cluster_sizes: np.ndarray | None = field(repr=False, default=None)

    @property
    def complete(self) -> bool:
        """True when every cluster-period is observed."""
        return not np.isnan(self.treatment).any()

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per cluster-period (unit, period, step, treatment, observed)."""
        i, j = np.indices(self.treatment.shape)
        out = pd.DataFrame({
            "unit": i.ravel() + 1, "period": j.ravel() + 1,
            "step": self.step[i.ravel()], "treatment": self.treatment.ravel(),
            "observed": ~np.isnan(self.treatment.ravel()),
        })
        if self.cluster_sizes is not None:
            m = np.broadcast_to(_as_matrix(self.cluster_sizes, self.n_clusters, self.n_periods),
                                self.treatment.shape)
            out["m"] = m.ravel()
        return out

    def _repr_fields(self) -> dict:
        return {"n_clusters": self.n_clusters, "n_periods": self.n_periods, "n_steps": self.n_steps,
                "baseline_periods": self.baseline_periods, "clusters_per_step": list(self.clusters_per_step),
                "complete": self.complete}

    def _summary(self, tx) -> str:
        """The schedule: one line per cluster (0 = control, 1 = intervention, . = not observed)."""
        head = tx("Stepped-wedge design: {clusters}, {steps}, {periods} ({baseline} baseline); clusters per step: "
                  "{per_step}",
                  clusters=tx.n("{n} cluster", "{n} clusters", self.n_clusters),
                  steps=tx.n("{n} step", "{n} steps", self.n_steps),
                  periods=tx.n("{n} period", "{n} periods", self.n_periods),
                  baseline=tx.int(self.baseline_periods),
                  per_step=", ".join(tx.int(c) for c in self.clusters_per_step))
        if self.complete:
            head += "; " + tx("complete")
        else:
            head += "; " + tx.n("incomplete ({n} cluster-period not observed)",
                                "incomplete ({n} cluster-periods not observed)", int(np.isnan(self.treatment).sum()))
        lines = [head, "  " + tx("0 = control, 1 = intervention, . = not observed")]
        width = len(str(self.n_clusters))
        label = tx("cluster")
        for i, row in enumerate(self.treatment):
            lines.append(f"  {label} {i + 1:>{width}}: " + " ".join(
                "." if np.isnan(v) else str(int(v)) for v in row))
        return "\n".join(lines)

    @styled
    def plot_schedule(self, *, ax=None):
        """Clusters x periods grid: control cluster-periods light, exposed ones dark blue, not observed
        hatched (readable in grey-scale); with many clusters only some cluster numbers are shown.
        Returns the Axes."""
        from matplotlib.patches import Patch, Rectangle

        tx = Text()
        height = min(10.0, max(3.4, 1.6 + 0.24 * self.n_clusters))
        ax = new_axes(ax, (min(14.0, max(6.5, 3.2 + 0.5 * self.n_periods)), height))
        edge = 0.8 if self.n_clusters <= 40 else 0.3
        for i, row in enumerate(self.treatment):
            for j, v in enumerate(row):
                if np.isnan(v):
                    kw = dict(facecolor=MISSING, hatch="///", edgecolor=NEUTRAL)
                elif v == 1:
                    kw = dict(facecolor=_EXPOSED_CELL, edgecolor="white")
                else:
                    kw = dict(facecolor=_CONTROL_CELL, edgecolor="white")
                ax.add_patch(Rectangle((j + 0.5, i + 0.5), 1, 1, lw=edge, **kw))
        ax.set_xlim(0.5, self.n_periods + 0.5)
        ax.set_ylim(self.n_clusters + 0.5, 0.5)
        ax.grid(False)
        integer_ticks(ax.xaxis, range(1, self.n_periods + 1), max_ticks=20)
        # one cluster label every `every` rows, so that labels (about 11 pt apart) never overlap
        row_pt = ax.figure.get_size_inches()[1] * 0.75 * 72 / self.n_clusters
        every = next(k for k in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, self.n_clusters)
                     if k * row_pt >= 12.0)
        ax.set_yticks(range(1, self.n_clusters + 1) if every == 1 else range(every, self.n_clusters + 1, every))
        ax.set_xlabel(tx("period"))
        ax.set_ylabel(tx("cluster"))
        ax.set_title(tx("Stepped-wedge schedule ({clusters}, {steps})",
                        clusters=tx.n("{n} cluster", "{n} clusters", self.n_clusters),
                        steps=tx.n("{n} step", "{n} steps", self.n_steps)))
        handles = [Patch(facecolor=_CONTROL_CELL, edgecolor=NEUTRAL, label=tx("Control")),
                   Patch(facecolor=_EXPOSED_CELL, label=tx("Intervention"))]
        if not self.complete:
            handles.append(Patch(facecolor=MISSING, hatch="///", edgecolor=NEUTRAL, label=tx("Not observed")))
        ax.legend(handles=handles, **OUTSIDE)
        return ax


def _as_matrix(m, n_clusters, n_periods):
    try:
        a = np.asarray(m, dtype=float)
    except (TypeError, ValueError):
        raise ScaleupDataError(
            f"cluster sizes must be numbers (a number, a vector of {n_clusters} cluster sizes or a "
            f"{n_clusters} x {n_periods} matrix); got a {type(m).__name__} that is not numeric."
        ) from None
    if a.ndim == 0:
        return np.full((n_clusters, n_periods), float(a))
    if a.shape == (n_clusters,):
        return np.repeat(a[:, None], n_periods, axis=1)
    if a.shape == (n_clusters, n_periods):
        return a
    raise ScaleupDataError(
        f"cluster sizes must be a number, a vector of {n_clusters} cluster sizes or a "
        f"{n_clusters} x {n_periods} matrix; got shape {a.shape}."
    )


#: Largest design (clusters x periods) built: 10 million cluster-periods, about 0.2 GB of arrays.
_MAX_CELLS = 10_000_000
#: Largest work of one GLS evaluation of the power, clusters x (periods + 1)^3 (about a minute).
_MAX_GLS_WORK = 1e9
#: Longest projected run of the simulated power, in seconds.
_MAX_SIM_SECONDS = 600.0
#: Largest variance or effect accepted by the power calculations (their squares must stay finite).
_MAX_MAGNITUDE = 1e100
#: Smallest standard error of the effect handled by the detectable-effect search (absolute tolerance 1e-14).
_MIN_SE = 1e-8


def _check_number(fn: str, name: str, value, *, low: float | None = None, low_open: bool = False,
                  high: float | None = None, high_open: bool = False, optional: bool = True, what: str = ""):
    """``value`` as a finite float within its bounds, else a :class:`ScaleupDataError` naming ``name``."""
    if value is None and optional:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    bounds = ""
    if low is not None or high is not None:
        lo_b = "(" if low_open else "["
        hi_b = ")" if high_open else "]"
        bounds = f" in {lo_b}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}" \
                 + (hi_b if high is not None else ")")
    if ok:
        v = float(value)
        ok = math.isfinite(v) and not (
            (low is not None and (v < low or (low_open and v == low)))
            or (high is not None and (v > high or (high_open and v == high))))
    if ok and abs(float(value)) > _MAX_MAGNITUDE:
        raise ScaleupDataError(
            f"{fn}: argument {name!r}{what} = {float(value):g} is beyond {_MAX_MAGNITUDE:g} in absolute value; "
            "rescale the outcome (e.g. thousands instead of units) so that the numbers stay representable."
        )
    if not ok:
        shown = repr(value) if isinstance(value, (int, float, np.integer, np.floating, type(None))) \
            else f"a {type(value).__name__}"
        raise ScaleupDataError(
            f"{fn}: argument {name!r}{what} must be a finite number{bounds}; got {shown[:80]}."
        )
    return float(value)


def stepped_wedge_design(
    n_clusters: int,
    n_steps: int,
    *,
    clusters_per_step=None,
    baseline_periods: int = 1,
    incomplete=None,
    cluster_sizes=None,
) -> SteppedWedgeDesign:
    """Schedule of a (standard or incomplete) stepped-wedge design.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (e.g. 18 health regions).
    n_steps : int
        Number of steps (groups of clusters crossing over together).
    clusters_per_step : int or sequence of int, optional
        Clusters crossing at each step (must sum to ``n_clusters``). Default: as equal as
        possible, earlier steps taking the remainder.
    baseline_periods : int
        Periods before the first step (all clusters in control). The design has
        ``baseline_periods + n_steps`` periods; clusters of step s are exposed from period
        ``baseline_periods + s`` on.
    incomplete : array-like of bool, optional
        Clusters x periods mask, True = cluster-period not observed (NaN in ``treatment``).
    cluster_sizes : float, sequence or matrix, optional
        Individuals per cluster-period (one number, one per cluster, or clusters x periods);
        used by :func:`stepped_wedge_power` when ``m`` is not given.

    Returns
    -------
    SteppedWedgeDesign

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> d = sa.stepped_wedge_design(6, 3)
    >>> d.treatment.astype(int)
    array([[0, 1, 1, 1],
           [0, 1, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 0, 1],
           [0, 0, 0, 1]])
    """
    for name, v, lo in (("n_clusters", n_clusters, 1), ("n_steps", n_steps, 1),
                        ("baseline_periods", baseline_periods, 0)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise ScaleupDataError(f"stepped_wedge_design: '{name}' must be an integer >= {lo}; got {v!r}.")
    if n_steps > n_clusters:
        raise ScaleupDataError(
            f"stepped_wedge_design: {n_steps} steps for {n_clusters} clusters; each step needs a cluster."
        )
    cells = int(n_clusters) * (int(baseline_periods) + int(n_steps))
    if cells > _MAX_CELLS:
        raise ScaleupDataError(
            f"stepped_wedge_design: {n_clusters:,} clusters x {int(baseline_periods) + int(n_steps):,} periods "
            f"is {cells:,} cluster-periods, which would need {bytes_text(cells * 17.0)} of memory (limit "
            f"{_MAX_CELLS:,} cluster-periods). Check n_clusters and n_steps (a stepped-wedge trial has "
            "tens to hundreds of clusters and a few to a few dozen steps)."
        )
    if clusters_per_step is None:
        q, r = divmod(n_clusters, n_steps)
        cps = [q + (1 if s < r else 0) for s in range(n_steps)]
    elif np.ndim(clusters_per_step) == 0:
        cps = [int(clusters_per_step)] * n_steps
    else:
        cps = [int(c) for c in clusters_per_step]
    if len(cps) != n_steps or sum(cps) != n_clusters or min(cps) < 1:
        raise ScaleupDataError(
            f"stepped_wedge_design: clusters_per_step={cps} must have {n_steps} positive entries "
            f"summing to n_clusters={n_clusters}."
        )
    T = baseline_periods + n_steps
    step = np.repeat(np.arange(1, n_steps + 1), cps)
    trt = (np.arange(1, T + 1)[None, :] >= (baseline_periods + step)[:, None]).astype(float)
    if incomplete is not None:
        mask = np.asarray(incomplete, dtype=bool)
        if mask.shape != trt.shape:
            raise ScaleupDataError(
                f"stepped_wedge_design: 'incomplete' must be a {n_clusters} x {T} boolean mask "
                f"(True = not observed); got shape {mask.shape}."
            )
        empty = np.flatnonzero(mask.all(axis=1))
        if empty.size:
            raise ScaleupDataError(
                f"stepped_wedge_design: 'incomplete' leaves {empty.size} cluster(s) with no observed "
                f"period (first: {list(empty[:5] + 1)}); drop those clusters instead."
            )
        trt[mask] = np.nan
    sizes = None
    if cluster_sizes is not None:
        sizes = _as_matrix(cluster_sizes, n_clusters, T) if np.ndim(cluster_sizes) == 2 else \
            np.asarray(cluster_sizes, dtype=float)
        _as_matrix(sizes, n_clusters, T)  # validates the shape
        if np.any(~(sizes > 0)):
            raise ScaleupDataError("stepped_wedge_design: 'cluster_sizes' must all be > 0.")
    return SteppedWedgeDesign(treatment=trt, n_clusters=n_clusters, n_periods=T, n_steps=n_steps,
                              baseline_periods=baseline_periods, clusters_per_step=tuple(cps),
                              step=step, cluster_sizes=sizes)


@checked_inputs
def rollout_design(
    data: pd.DataFrame,
    *,
    unit: str = "site_id",
    cohort: str = "adoption_period",
    periods=None,
    cluster_sizes=None,
) -> SteppedWedgeDesign:
    """The stepped-wedge design of an observed rollout: which unit switched to the innovation when.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (a site, or a region when whole regions switch together) with its first
        exposed period in ``cohort`` (missing = never exposed during the study).
    unit : str, default "site_id"
        Column identifying the unit (the cluster of the design).
    cohort : str, default "adoption_period"
        Column of the first exposed period (whole numbers; missing = never exposed).
    periods : sequence of int, optional
        The periods of the study, in order (default: ``1`` to the last adoption period).
    cluster_sizes : float, sequence or matrix, optional
        Individuals per cluster-period, as in :func:`stepped_wedge_design`.

    Returns
    -------
    SteppedWedgeDesign
        Clusters ordered by adoption period (never-exposed units last, then by ``unit``):
        ``treatment[i, j] = 1`` when period ``j`` is at or after cluster ``i``'s adoption period.
        Never-exposed units keep 0 in every period (they are controls throughout; ``step`` is 0 for
        them). ``n_steps`` is the number of distinct adoption periods within ``periods``,
        ``baseline_periods`` the number of periods before the first adoption.

    Raises
    ------
    ScaleupDataError
        If a column is missing, ``unit`` is repeated, an adoption period is not a whole number or
        lies outside ``periods``, or no unit adopts.

    Notes
    -----
    Hussey & Hughes' (2007) model and its variance hold for any 0/1 exposure matrix, so the power of
    an observed rollout (staggered waves, never-exposed comparison units) follows from
    :func:`stepped_wedge_power` with this design.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> rollout = pd.DataFrame({"site_id": ["a", "b", "c", "d"], "adoption_period": [2, 3, None, 2]})
    >>> d = sa.rollout_design(rollout, periods=[1, 2, 3, 4])
    >>> d.treatment.astype(int)
    array([[0, 1, 1, 1],
           [0, 1, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 0, 0]])
    >>> d.n_steps, d.baseline_periods, d.clusters_per_step
    (2, 1, (2, 1))
    """
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"rollout_design: data must be a pandas DataFrame, got {type(data).__name__}.")
    missing = [c for c in (unit, cohort) if c not in data.columns]
    if missing:
        raise ScaleupDataError(f"rollout_design: column(s) {', '.join(map(repr, missing))} not in data "
                               f"(columns: {', '.join(map(str, data.columns))}).")
    dup = data[unit][data[unit].duplicated()]
    if len(dup):
        raise ScaleupDataError(f"rollout_design: column {unit!r} repeats {len(dup)} unit(s) "
                               f"({', '.join(map(repr, dup.astype(str).unique()[:5]))}); give one row per unit.")
    adopt = pd.to_numeric(data[cohort], errors="coerce")
    with np.errstate(invalid="ignore"):
        bad = data[cohort].notna() & (adopt.isna() | ~np.isfinite(adopt) | (adopt != np.round(adopt)))
    if bad.any():
        raise ScaleupDataError(f"rollout_design: column {cohort!r} holds values that are not whole numbers in "
                               f"{int(bad.sum())} row(s) (first: {data.loc[bad, cohort].iloc[0]!r}).")
    if adopt.isna().all():
        raise ScaleupDataError(f"rollout_design: no unit has an adoption period in column {cohort!r}.")
    n_per = int(adopt.max()) if periods is None else len(periods) if hasattr(periods, "__len__") else None
    if n_per is not None and n_per * max(len(data), 1) > _MAX_CELLS:
        raise ScaleupDataError(
            f"rollout_design: {len(data):,} units x {n_per:.4g} periods (up to the latest adoption period "
            f"{adopt.max():g} of column {cohort!r}) is {n_per * len(data):.4g} cluster-periods, which would need "
            f"{bytes_text(n_per * len(data) * 17.0)} of memory (limit {_MAX_CELLS:,}). Check the adoption periods "
            "(numbered 1, 2, ... from the first period, not dates or years)."
        )
    per = (list(range(1, int(adopt.max()) + 1)) if periods is None
           else sorted({int(p) for p in periods}))
    outside = sorted({int(a) for a in adopt.dropna() if int(a) not in per})
    if outside:
        raise ScaleupDataError(f"rollout_design: adoption period(s) {outside} of column {cohort!r} are not among "
                               f"the periods {per[0]}..{per[-1]}.")
    order = pd.DataFrame({"unit": data[unit].astype(str).to_numpy(), "a": adopt.to_numpy()})
    order = order.assign(never=order["a"].isna()).sort_values(["never", "a", "unit"], kind="mergesort")
    a = order["a"].to_numpy(dtype=float)
    pv = np.asarray(per, dtype=float)
    with np.errstate(invalid="ignore"):
        trt = (pv[None, :] >= a[:, None]).astype(float)  # NaN adoption -> False -> 0
    cohorts = sorted({int(x) for x in a[~np.isnan(a)]})
    step = np.array([0 if np.isnan(x) else cohorts.index(int(x)) + 1 for x in a], dtype=int)
    cps = tuple(int((step == k).sum()) for k in range(1, len(cohorts) + 1))
    sizes = None if cluster_sizes is None else _as_matrix(cluster_sizes, len(order), len(per))
    return SteppedWedgeDesign(treatment=trt, n_clusters=len(order), n_periods=len(per), n_steps=len(cohorts),
                              baseline_periods=int(sum(p < cohorts[0] for p in per)), clusters_per_step=cps,
                              step=step, cluster_sizes=sizes)


# --------------------------------------------------------------------------------------------
# variance of the treatment effect
# --------------------------------------------------------------------------------------------
def hussey_hughes_variance(X, sigma2_mean: float, tau2: float) -> float:
    """Hussey & Hughes (2007, eq. 8) closed form of Var(theta_hat) for a complete design.

    ``X`` is the clusters x periods 0/1 matrix, ``sigma2_mean`` the variance of a cluster-period
    mean (sigma2 / m) and ``tau2`` the between-cluster variance::

        Var = I s2 (s2 + T tau2) / ((I U - W) s2 + (U^2 + I T U - T W - I V) tau2)

    with U = sum_ij X_ij, W = sum_j (sum_i X_ij)^2, V = sum_i (sum_j X_ij)^2.
    """
    X = np.asarray(X, dtype=float)
    I, T = X.shape
    U = X.sum()
    W = float(np.sum(X.sum(axis=0) ** 2))
    V = float(np.sum(X.sum(axis=1) ** 2))
    s2 = sigma2_mean
    return I * s2 * (s2 + T * tau2) / ((I * U - W) * s2 + (U**2 + I * T * U - T * W - I * V) * tau2)


def _gls_variance(trt, var_mean, tau2) -> float:
    """theta element of (sum_i X_i' V_i^-1 X_i)^-1 (period fixed effects + treatment)."""
    I, T = trt.shape
    info = np.zeros((T + 1, T + 1))
    for i in range(I):
        obs = ~np.isnan(trt[i])
        k = int(obs.sum())
        Xi = np.zeros((k, T + 1))
        Xi[np.arange(k), np.flatnonzero(obs)] = 1.0
        Xi[:, T] = trt[i, obs]
        Vi = np.diag(var_mean[i, obs]) + tau2
        info += Xi.T @ np.linalg.solve(Vi, Xi)
    if np.linalg.matrix_rank(info) < T + 1:
        raise ScaleupDataError(
            "stepped_wedge_power: the treatment effect is not identifiable in this design (a period "
            "has no observed cluster, or treatment is confounded with period)."
        )
    return float(np.linalg.inv(info)[T, T])


def _two_sided_power(effect, se, alpha):
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(abs(effect) / se - z) + stats.norm.cdf(-abs(effect) / se - z))


@dataclass(frozen=True, repr=False)
class SteppedWedgePower(Displayed):
    """Result of :func:`stepped_wedge_power`.

    Attributes
    ----------
    power : float
        Two-sided power ``Phi(|theta|/se - z) + Phi(-|theta|/se - z)`` (Hussey & Hughes 2007).
    se : float
        Standard error of the GLS treatment-effect estimator.
    variance : float
        se**2 from the general GLS form.
    variance_closed_form : float or None
        Hussey & Hughes' closed form (complete designs with equal cluster sizes).
    detectable_effect : float
        Smallest ``|theta|`` detected with probability ``target_power``.
    """

    power: float
    se: float
    variance: float
    variance_closed_form: float | None
    detectable_effect: float
    target_power: float
    effect: float
    alpha: float
    family: str
    sigma2: float
    tau2: float
    cluster_period_tau2: float
    design: SteppedWedgeDesign = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table."""
        d = {k: v for k, v in self.__dict__.items() if k != "design"}
        return pd.DataFrame([d])

    def _repr_fields(self) -> dict:
        return {"power": self.power, "se": self.se, "effect": self.effect, "alpha": self.alpha,
                "detectable_effect": self.detectable_effect, "family": self.family,
                "n_clusters": self.design.n_clusters, "n_periods": self.design.n_periods}

    def _summary(self, tx) -> str:
        """Power and detectable effect with the variances used."""
        family = tx("continuous outcome") if self.family == "gaussian" else tx("binary outcome")
        lines = [
            tx("Stepped-wedge power ({family}; {clusters}, {periods})", family=family,
               clusters=tx.n("{n} cluster", "{n} clusters", self.design.n_clusters),
               periods=tx.n("{n} period", "{n} periods", self.design.n_periods)),
            "  " + tx("Effect {effect}, standard error {se}: power {power} (two-sided test at {alpha}).",
                      effect=tx.num(self.effect, 4), se=tx.num(self.se, 4), power=tx.pct(self.power, 1),
                      alpha=tx.num(self.alpha, 3)),
            "  " + tx("Smallest effect detected with {target} power: {mde}.", target=tx.pct(self.target_power),
                      mde=tx.num(self.detectable_effect, 4)),
            "  " + tx("Variances: individual {sigma2}, between clusters {tau2}, cluster x period {gamma2}.",
                      sigma2=tx.num(self.sigma2, 4), tau2=tx.num(self.tau2, 4),
                      gamma2=tx.num(self.cluster_period_tau2, 4)),
        ]
        return "\n".join(lines)


def _resolve_variances(family, effect, sigma2, icc, tau2, p0, binomial_variance):
    if family not in ("gaussian", "binomial"):
        raise ScaleupDataError(
            f"stepped_wedge_power: family={family!r}; use 'gaussian' (continuous outcome) or 'binomial' "
            "(binary outcome)."
        )
    if family == "binomial":
        if p0 is None or not 0 < p0 < 1:
            raise ScaleupDataError("stepped_wedge_power: family='binomial' needs p0 in (0, 1).")
        if not 0 < p0 + effect < 1:
            raise ScaleupDataError(
                f"stepped_wedge_power: p0 + effect = {p0 + effect:.4g} is not a proportion in (0, 1)."
            )
        if sigma2 is None:
            if binomial_variance == "mean":
                pbar = p0 + effect / 2
            elif binomial_variance == "p0":
                pbar = p0
            else:
                raise ScaleupDataError("stepped_wedge_power: binomial_variance must be 'mean' or 'p0'.")
            sigma2 = pbar * (1 - pbar)
    if sigma2 is None or not sigma2 > 0:
        raise ScaleupDataError(
            "stepped_wedge_power: give sigma2 > 0, the individual-level residual (within-cluster) variance."
        )
    if (tau2 is None) == (icc is None):
        raise ScaleupDataError("stepped_wedge_power: give exactly one of tau2 or icc.")
    if icc is not None:
        if not 0 <= icc < 1:
            raise ScaleupDataError("stepped_wedge_power: icc must be in [0, 1).")
        tau2 = sigma2 * icc / (1 - icc)
    if tau2 < 0:
        raise ScaleupDataError("stepped_wedge_power: tau2 must be >= 0.")
    return float(sigma2), float(tau2)


def stepped_wedge_power(
    design: SteppedWedgeDesign,
    effect: float,
    *,
    sigma2: float | None = None,
    icc: float | None = None,
    tau2: float | None = None,
    m=None,
    alpha: float = 0.05,
    family: str = "gaussian",
    p0: float | None = None,
    power: float | None = None,
    cluster_period_tau2: float = 0.0,
    binomial_variance: str = "mean",
) -> SteppedWedgePower:
    """Power of a stepped-wedge trial (Hussey & Hughes 2007; general GLS form).

    Parameters
    ----------
    design : SteppedWedgeDesign
        From :func:`stepped_wedge_design` (incomplete designs allowed).
    effect : float
        Treatment effect theta (difference in means, or in proportions for ``family="binomial"``).
    sigma2 : float, optional
        Individual-level residual (within-cluster) variance. For ``family="binomial"`` the default
        is pbar (1 - pbar) (see ``binomial_variance``).
    icc : float, optional
        Intracluster correlation tau2 / (tau2 + sigma2); gives tau2 = sigma2 icc / (1 - icc).
    tau2 : float, optional
        Between-cluster variance (give ``tau2`` or ``icc``).
    m : float, sequence or matrix, optional
        Individuals per cluster-period (number, per cluster, or clusters x periods). Default:
        ``design.cluster_sizes``.
    alpha : float
        Two-sided significance level.
    family : {"gaussian", "binomial"}
        Distribution of the outcome: continuous (``"gaussian"``) or binary (``"binomial"``).
    p0 : float, optional
        Control proportion (binary outcomes).
    power : float, optional
        Target power for ``detectable_effect`` (default 0.8).
    cluster_period_tau2 : float
        Variance of a cluster x period random effect (added to each cluster-period mean).
    binomial_variance : {"mean", "p0"}
        ``family="binomial"``: sigma2 = pbar (1 - pbar) with pbar = p0 + effect / 2, the average of the
        control and intervention proportions (as Hussey & Hughes 2007 and swCRTdesign), or
        p0 (1 - p0).

    Returns
    -------
    SteppedWedgePower
        ``power``, ``se``, ``detectable_effect``, ``variance`` and ``variance_closed_form``.

    Notes
    -----
    Var(theta_hat) = [(sum_i X_i' V_i^-1 X_i)^-1]_theta with X_i = [period indicators, X_ij]
    over the observed periods of cluster i and V_i = diag(sigma2 / m_ij + cluster_period_tau2)
    + tau2 J. For a complete design with equal m this equals Hussey & Hughes' (2007) closed
    form (``variance_closed_form``, computed with sigma2 / m + cluster_period_tau2 as the
    cluster-period variance). Power = Phi(``|theta|`` / se - z_{1-alpha/2}) + Phi(-``|theta|`` / se -
    z_{1-alpha/2}).

    References
    ----------
    Hussey MA, Hughes JP (2007). Design and analysis of stepped wedge cluster randomized trials.
    Contemp Clin Trials 28(2): 182-191.
    Hemming K, Haines TP, Chilton PJ, Girling AJ, Lilford RJ (2015). The stepped wedge cluster
    randomised trial: rationale, design, analysis, and reporting. BMJ 350: h391.

    Examples
    --------
    The Hussey & Hughes design used in the swCRTdesign README (24 clusters, 4 steps, 120
    individuals per cluster-period, p0 = 0.05, p1 = 0.035, tau = 0.01):

    >>> import scaleup_analysis as sa
    >>> d = sa.stepped_wedge_design(24, 4)
    >>> res = sa.stepped_wedge_power(d, -0.015, family="binomial", p0=0.05, tau2=0.01**2, m=120)
    >>> round(res.power, 4)
    0.7862
    """
    if not isinstance(design, SteppedWedgeDesign):
        raise ScaleupDataError(
            "stepped_wedge_power: 'design' must come from sa.stepped_wedge_design(...)."
        )
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ScaleupDataError(f"stepped_wedge_power: alpha (the test size) must be in (0, 1), e.g. 0.05; got {alpha!r}.")
    fn = "stepped_wedge_power"
    # every number is finite and in its range before any matrix is built (an infinite variance made the
    # GLS fail with a LinAlgError)
    effect = _check_number(fn, "effect", effect, optional=False, what=" (the treatment effect)")
    _check_number(fn, "sigma2", sigma2, low=0, low_open=True, what=" (the individual-level variance)")
    _check_number(fn, "tau2", tau2, low=0, what=" (the between-cluster variance)")
    _check_number(fn, "icc", icc)  # its range [0, 1) and p0's (0, 1) are checked with the variances
    _check_number(fn, "p0", p0, what=" (the control proportion)")
    _check_number(fn, "cluster_period_tau2", cluster_period_tau2, low=0, optional=False,
                  what=" (the cluster x period variance)")
    target = 0.8 if power is None else _check_number(fn, "power", power, low=alpha, low_open=True, high=1,
                                                       high_open=True, what=" (the target power)")
    if not alpha < target < 1:
        raise ScaleupDataError("stepped_wedge_power: target power must be in (alpha, 1).")
    if cluster_period_tau2 < 0:
        raise ScaleupDataError("stepped_wedge_power: cluster_period_tau2 must be >= 0.")
    work = design.n_clusters * (design.n_periods + 1.0) ** 3
    if work > _MAX_GLS_WORK:
        raise ScaleupDataError(
            f"{fn}: the design has {design.n_clusters:,} clusters x {design.n_periods:,} periods; its GLS variance "
            f"needs about {work:.1e} operations per evaluation (clusters x (periods + 1)^3; limit "
            f"{_MAX_GLS_WORK:.0e}), {duration_text(work * 5e-8)} or more with the detectable effect. Use fewer periods "
            "(e.g. group periods into steps) or fewer clusters."
        )
    if m is None:
        m = design.cluster_sizes
    if m is None:
        raise ScaleupDataError(
            "stepped_wedge_power: give m (individuals per cluster-period) or cluster_sizes in the design."
        )
    M = _as_matrix(m, design.n_clusters, design.n_periods)
    if np.any(~(M[~np.isnan(design.treatment)] > 0)):
        raise ScaleupDataError("stepped_wedge_power: m must be > 0 for every observed cluster-period.")
    if np.any(~np.isfinite(M[~np.isnan(design.treatment)])):
        raise ScaleupDataError("stepped_wedge_power: m (individuals per cluster-period) must be finite.")

    def var_for(eff):
        s2, t2 = _resolve_variances(family, eff, sigma2, icc, tau2, p0, binomial_variance)
        vm = s2 / M + cluster_period_tau2
        return _gls_variance(design.treatment, vm, t2), s2, t2

    variance, s2, t2 = var_for(effect)
    se = math.sqrt(variance)
    if se < _MIN_SE:
        # the detectable effect is searched to an absolute precision of 1e-14: it would be wrong
        raise ScaleupDataError(
            f"{fn}: the standard error of the effect is {se:.3g} (sigma2 = {s2:.3g}, tau2 = {t2:.3g}), too small "
            f"(below {_MIN_SE:g}) for a reliable detectable effect; rescale the outcome (e.g. multiply it by "
            "1000) and give the variances and the effect in the new units."
        )
    closed = None
    obs_m = M[~np.isnan(design.treatment)]
    if design.complete and np.all(obs_m == obs_m[0]):
        closed = float(hussey_hughes_variance(design.treatment, s2 / obs_m[0] + cluster_period_tau2, t2))
    pw = _two_sided_power(effect, se, alpha) if effect != 0 else alpha

    # detectable effect: smallest |theta| with two-sided power = target (same sign as effect)
    sign = -1.0 if effect < 0 else 1.0

    def gap(d):
        v = var_for(sign * d)[0]
        return _two_sided_power(d, math.sqrt(v), alpha) - target

    if family == "gaussian":
        hi = se * (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)) * 2 + 1e-12
    else:
        hi = (1 - p0 - 1e-9) if sign > 0 else (p0 - 1e-9)
    if gap(hi) < 0:
        detectable = float("nan")
    else:
        detectable = float(optimize.brentq(gap, 1e-12, hi, xtol=1e-14, rtol=1e-12))
    return SteppedWedgePower(
        power=pw, se=se, variance=variance, variance_closed_form=closed,
        detectable_effect=detectable, target_power=target, effect=float(effect), alpha=alpha,
        family=family, sigma2=s2, tau2=t2, cluster_period_tau2=float(cluster_period_tau2),
        design=design,
    )


# --------------------------------------------------------------------------------------------
# simulated power (fast path: cluster-period means, GLS with the working variance)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class SteppedWedgePowerSim(Displayed):
    """Result of :func:`stepped_wedge_power_sim`.

    Attributes
    ----------
    power : float
        Proportion of replicates with ``|theta_hat / se|`` > z_{1-alpha/2}.
    power_se : float
        Monte-Carlo standard error of ``power``: sqrt(power (1 - power) / n_sim).
    estimates, se : numpy.ndarray
        Per-replicate estimates and their standard errors.
    """

    power: float
    power_se: float
    n_sim: int
    seed: int | None
    analytic_power: float
    mean_estimate: float
    estimates: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Per-replicate estimates, standard errors and test statistics ``|estimate / se|``."""
        z = np.abs(self.estimates / self.se)
        return pd.DataFrame({"estimate": self.estimates, "se": self.se, "statistic": z})

    def _repr_fields(self) -> dict:
        return {"power": self.power, "power_se": self.power_se, "n_sim": self.n_sim,
                "analytic_power": self.analytic_power, "mean_estimate": self.mean_estimate, "seed": self.seed}

    def _summary(self, tx) -> str:
        """Simulated power with its Monte-Carlo error, next to the analytic power."""
        return tx("Simulated power {power} (Monte-Carlo SE {mcse}, {replicates}; analytic power {analytic}); "
                  "mean estimate {mean}.", power=tx.num(self.power, 3), mcse=tx.num(self.power_se, 3),
                  replicates=tx.n("{n} replicate", "{n} replicates", self.n_sim),
                  analytic=tx.num(self.analytic_power, 3), mean=tx.num(self.mean_estimate, 4))


def stepped_wedge_power_sim(
    design: SteppedWedgeDesign,
    effect: float,
    *,
    sigma2: float | None = None,
    icc: float | None = None,
    tau2: float | None = None,
    m=None,
    alpha: float = 0.05,
    family: str = "gaussian",
    p0: float | None = None,
    cluster_period_tau2: float = 0.0,
    binomial_variance: str = "mean",
    n_sim: int = 1000,
    seed: int | None = None,
    progress: bool = False,
) -> SteppedWedgePowerSim:
    """Simulated power of a stepped-wedge trial (fast path on cluster-period means).

    Each replicate draws cluster effects, cluster-period effects and cluster-period means
    (normal outcomes: Ybar_ij ~ N(theta X_ij + alpha_i + gamma_ij, sigma2 / m_ij); binary
    outcomes: m_ij Bernoulli draws with probability p0 + theta X_ij + alpha_i + gamma_ij,
    clipped to [0, 1]), then estimates theta by GLS with period fixed effects and the working
    covariance of :func:`stepped_wedge_power`, and rejects when ``|theta_hat / se|`` exceeds
    z_{1-alpha/2}. With known variance components and normal outcomes the simulated power
    converges to the analytic power; for binary outcomes it checks the normal approximation.
    Variance components are not re-estimated (use a mixed model on simulated individual data
    for that).

    Parameters
    ----------
    design, effect, sigma2, icc, tau2, m, alpha, family, p0, cluster_period_tau2, binomial_variance
        As in :func:`stepped_wedge_power`.
    n_sim : int
        Number of replicates.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SteppedWedgePowerSim

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> d = sa.stepped_wedge_design(18, 6)
    >>> sim = sa.stepped_wedge_power_sim(d, 0.3, sigma2=1, icc=0.05, m=20, n_sim=200, seed=1)
    >>> 0 <= sim.power <= 1
    True
    """
    if isinstance(n_sim, (bool, np.bool_)) or not isinstance(n_sim, (int, np.integer)) or n_sim < 1:
        raise ScaleupDataError("stepped_wedge_power_sim: n_sim must be a positive integer.")
    ana = stepped_wedge_power(design, effect, sigma2=sigma2, icc=icc, tau2=tau2, m=m, alpha=alpha,
                              family=family, p0=p0, cluster_period_tau2=cluster_period_tau2,
                              binomial_variance=binomial_variance)
    if m is None:
        m = design.cluster_sizes
    M = _as_matrix(m, design.n_clusters, design.n_periods)
    trt = design.treatment
    obs = ~np.isnan(trt)
    I, T = trt.shape
    s2, t2, g2 = ana.sigma2, ana.tau2, ana.cluster_period_tau2
    var_mean = s2 / M + g2
    # GLS weights are the same in every replicate: precompute theta_hat = a' y (per cluster)
    blocks, info = [], np.zeros((T + 1, T + 1))
    for i in range(I):
        o = obs[i]
        k = int(o.sum())
        Xi = np.zeros((k, T + 1))
        Xi[np.arange(k), np.flatnonzero(o)] = 1.0
        Xi[:, T] = trt[i, o]
        Vinv = np.linalg.inv(np.diag(var_mean[i, o]) + t2)
        info += Xi.T @ Vinv @ Xi
        blocks.append(Xi.T @ Vinv)
    cov = np.linalg.inv(info)
    se_theta = math.sqrt(cov[T, T])
    # weights mapping each cluster's observed means to theta_hat
    w = np.zeros((I, T))
    for i in range(I):
        w[i, obs[i]] = (cov[T] @ blocks[i])
    rng = np.random.default_rng(seed)
    x = np.where(obs, trt, 0.0)
    it = range(n_sim)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=n_sim, desc="stepped-wedge power")
    Mi = np.where(obs, M, 1).astype(float)

    def replicate():
        a = rng.normal(0.0, math.sqrt(t2), size=(I, 1))
        g = rng.normal(0.0, math.sqrt(g2), size=(I, T)) if g2 > 0 else 0.0
        if family == "gaussian":
            ybar = effect * x + a + g + rng.normal(size=(I, T)) * np.sqrt(s2 / Mi)
        else:
            p = np.clip(p0 + effect * x + a + g, 0.0, 1.0)
            n_int = np.rint(Mi).astype(np.int64)
            ybar = rng.binomial(n_int, p) / n_int
        return float(np.sum(w * np.where(obs, ybar, 0.0)))

    # the cost: time the first replicates (the same draws, in order), then refuse a run projected to take
    # too long before allocating anything for it
    first = []
    start = time.perf_counter()
    while len(first) < n_sim and (len(first) < 20 or time.perf_counter() - start < 0.05):
        first.append(replicate())
    projected = (time.perf_counter() - start) / len(first) * n_sim
    if projected > _MAX_SIM_SECONDS:
        raise ScaleupDataError(
            f"stepped_wedge_power_sim: n_sim={n_sim:,} replicates of this {I} x {T} design would take "
            f"{duration_text(projected)} (timed on the first {len(first)}; limit {duration_text(_MAX_SIM_SECONDS)}). "
            "Use fewer replicates: 10,000 give a Monte-Carlo standard error of the power below 0.005; "
            "stepped_wedge_power gives the analytic power at once."
        )
    est = np.empty(n_sim)
    est[:len(first)] = first
    for r in it:
        if r >= len(first):
            est[r] = replicate()
    z = stats.norm.ppf(1 - alpha / 2)
    pw = float(np.mean(np.abs(est / se_theta) > z))
    return SteppedWedgePowerSim(
        power=pw, power_se=math.sqrt(pw * (1 - pw) / n_sim), n_sim=int(n_sim), seed=seed,
        analytic_power=ana.power, mean_estimate=float(est.mean()), estimates=est,
        se=np.full(n_sim, se_theta),
    )


# --------------------------------------------------------------------------------------------
# analysis (linear mixed model, Hussey & Hughes 2007; Hooper et al. 2016)
# --------------------------------------------------------------------------------------------
_SINGULAR_TOL = 1e-4  # lme4::isSingular default tolerance on theta


@dataclass(frozen=True, repr=False)
class SteppedWedgeAnalysis(Displayed):
    """Result of :func:`stepped_wedge_analysis`.

    Attributes
    ----------
    estimate, se, df, pvalue, ci_low, ci_high : float
        Treatment effect theta with its Satterthwaite t test (lmerTest).
    tau2, sigma2 : float
        Between-cluster variance and residual (individual-level) variance.
    icc : float
        Within-period intra-cluster correlation ``(tau2 + gamma2) / (tau2 + gamma2 + sigma2)``
        (``tau2 / (tau2 + sigma2)`` for the Hussey & Hughes model).
    gamma2 : float
        Cluster x period variance (0, fixed by the model, when ``cluster_period_re=False``).
    cac : float
        Cluster autocorrelation ``tau2 / (tau2 + gamma2)``: correlation between two period means of
        the same cluster (1, fixed by the model, when ``cluster_period_re=False``; ``nan`` if
        ``tau2 + gamma2 = 0``).
    loglik : float
        Log-likelihood (REML criterion / -2 for REML fits, as ``logLik()`` in lme4).
    singular : bool
        A variance component is estimated at 0 (lme4's ``isSingular``, tolerance 1e-4 on theta).
    fixed : pandas.DataFrame
        Every fixed effect (intercept, period effects ``<period>[T.<level>]``, treatment):
        ``estimate, se, statistic, df, pvalue, ci_low, ci_high`` (Satterthwaite df).
    model : MixedModelResult or None
        The fitted :func:`scaleup_analysis.mixed_model` (``cluster_period_re=False``); ``None`` for
        the model with a cluster x period effect, which is fitted by the shared engine directly.
    """

    estimate: float
    se: float
    df: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    sigma2: float
    icc: float
    level: float
    method: str
    n_obs: int
    n_clusters: int
    gamma2: float
    cac: float
    loglik: float
    cluster_period_re: bool
    n_cluster_periods: int
    singular: bool
    converged: bool
    model: object = field(repr=False)
    cell_means: pd.DataFrame = field(repr=False)
    fixed: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table of the treatment effect and variance components."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("model", "cell_means", "fixed")}
        return pd.DataFrame([d])

    def _repr_fields(self) -> dict:
        return {"estimate": self.estimate, "se": self.se, "ci": (self.ci_low, self.ci_high), "pvalue": self.pvalue,
                "icc": self.icc, "n_clusters": self.n_clusters, "n_obs": self.n_obs,
                "cluster_period_re": self.cluster_period_re}

    def _summary(self, tx) -> str:
        """Treatment effect with its Satterthwaite test and the variance components."""
        model = tx("with cluster x period effect") if self.cluster_period_re else tx("Hussey & Hughes model")
        vc = [f"tau2 = {tx.num(self.tau2, 4)}"]
        if self.cluster_period_re:
            vc.append(f"gamma2 = {tx.num(self.gamma2, 4)}")
        vc += [f"sigma2 = {tx.num(self.sigma2, 4)}", f"{tx('ICC')} = {tx.num(self.icc, 3)}"]
        if self.cluster_period_re:
            vc.append(f"CAC = {tx.num(self.cac, 3)}")
        lines = [
            tx("Stepped-wedge analysis ({model}, {method}; {clusters}, n = {n})", model=model, method=self.method,
               clusters=tx.n("{n} cluster", "{n} clusters", self.n_clusters), n=tx.int(self.n_obs)),
            "  " + tx("Treatment effect: {estimate}; SE {se}, df {df}, {p}",
                      estimate=tx.ci(self.estimate, self.ci_low, self.ci_high, level=self.level),
                      se=tx.num(self.se, 4), df=tx.num(self.df, 1), p=tx.pvalue(self.pvalue)),
            "  " + tx("Variance components: {components}", components=", ".join(vc)),
        ]
        if self.singular:
            lines.append("  " + tx("Boundary (singular) fit: a variance component is estimated at 0."))
        return "\n".join(lines)

    @styled
    def plot_period_means(self, *, ax=None):
        """Mean outcome per period in control and intervention cluster-periods. Returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (7.5, 3.8))
        cm = self.cell_means
        styles = {0: ("o", "-", NEUTRAL, tx("Control cluster-periods")),
                  1: ("s", "--", PALETTE[0], tx("Intervention cluster-periods"))}
        for trt, (marker, ls, colour, label) in styles.items():
            g = cm[cm["treatment"] == trt].groupby("period")["mean"].mean()
            ax.plot(g.index, g.to_numpy(), marker=marker, ls=ls, color=colour, label=label)
        if pd.api.types.is_numeric_dtype(cm["period"]):
            integer_ticks(ax.xaxis, cm["period"].unique())
        ax.set_xlabel(tx("period"))
        ax.set_ylabel(tx("mean outcome"))
        ax.set_title(tx("Stepped wedge: period means by exposure"))
        ax.legend(**OUTSIDE)
        ticks_inside(ax)
        return ax


def _fit_nested(d: pd.DataFrame, names: dict, reml: bool, level: float):
    """Fit y ~ period + treatment + (1 | cluster) + (1 | cluster:period) with the shared engine.

    Grouping by cluster, the random-effect columns of cluster c are ``[1, 1{period = 1}, ...,
    1{period = T}]`` with relative covariance factor ``Lambda = diag(theta_1, theta_2, ..., theta_2)``:
    ``b_c = (a_c, g_c1, ..., g_cT)`` with ``a_c ~ N(0, sigma2 theta_1^2)`` and
    ``g_ct ~ N(0, sigma2 theta_2^2)`` independent, which is exactly lme4's
    ``(1 | cluster) + (1 | cluster:period)`` (the cluster x period levels are nested in clusters,
    so the penalised least-squares system is block-diagonal by cluster; unobserved cluster-periods
    have all-zero columns and contribute nothing to the likelihood).
    """
    from ..engines.reml import CrossprodBlock, Crossprods, crossprods_from_rows, fit_lmm, satterthwaite

    used = d.dropna()
    n_drop = len(d) - len(used)
    if n_drop:
        warnings.warn(
            f"stepped_wedge_analysis: {_rows_text(d.index, d.isna().any(axis=1).to_numpy())} left out "
            f"because of missing values in the outcome {names['outcome']!r}, unit {names['unit']!r}, "
            f"period {names['period']!r} or treatment {names['treatment']!r}.",
            RowsOmittedWarning,
            stacklevel=3,
        )
    y = used["y"].to_numpy(dtype=float)
    cl_codes, cl_uniq = pd.factorize(used["cl"], sort=True)
    per_codes, per_uniq = pd.factorize(used["per"], sort=True)
    G, T, n = len(cl_uniq), len(per_uniq), y.size
    if G < 2:
        raise ScaleupDataError(
            f"stepped_wedge_analysis: column {names['unit']!r} (argument 'unit') has {G} distinct "
            "value(s) among the rows used; the model needs at least 2 clusters."
        )
    n_cp = int(pd.MultiIndex.from_arrays([cl_codes, per_codes]).nunique())
    if n_cp >= n:
        raise ScaleupDataError(
            f"stepped_wedge_analysis: cluster_period_re=True needs several rows per cluster-period "
            f"(individual-level data); the {n} row(s) used form {n_cp} cluster-periods, so the "
            "cluster x period variance cannot be told apart from the residual variance (lme4 stops "
            "with the same error). Pass individual-level rows, or use cluster_period_re=False."
        )
    X = np.column_stack([np.ones(n), (per_codes[:, None] == np.arange(1, T)[None, :]).astype(float),
                         used["trt"].to_numpy(dtype=float)])
    xnames = (["Intercept"] + [f"{names['period']}[T.{lvl}]" for lvl in per_uniq[1:]]
              + [names["treatment"]])
    p = X.shape[1]
    if np.linalg.matrix_rank(X) < p:
        raise ScaleupDataError(
            f"stepped_wedge_analysis: the treatment column {names['treatment']!r} is collinear with the "
            "period effects (e.g. every cluster crosses over in the same period, or no cluster-period "
            "is exposed); the treatment effect is not identifiable in this design."
        )
    if n <= p + 1:
        raise ScaleupDataError(f"stepped_wedge_analysis: {n} usable rows for {p} fixed effects; need more rows.")
    Z = np.column_stack([np.ones(n), (per_codes[:, None] == np.arange(T)[None, :]).astype(float)])
    ZtZ, ZtX, Zty, XtX, Xty, yty = crossprods_from_rows(y, X, Z, cl_codes, G)
    lind = -np.ones((T + 1, T + 1), dtype=int)
    lind[0, 0] = 0
    lind[np.arange(1, T + 1), np.arange(1, T + 1)] = 1
    cp = Crossprods(
        blocks=(CrossprodBlock(ZtZ, ZtX, Zty, lind),), XtX=XtX, Xty=Xty, yty=yty, n=n,
        ntheta=2, lower=np.zeros(2),
    )
    fit = fit_lmm(cp, reml=reml)
    method = "REML" if reml else "ML"
    if not fit.converged:
        warnings.warn(
            f"stepped_wedge_analysis: the {method} optimiser did not converge ({fit.message}). Check "
            "for clusters or periods with very few rows, or try cluster_period_re=False.",
            ConvergenceWarning,
            stacklevel=3,
        )
    at_zero = [nm for nm, t in zip(("tau2 (cluster)", "gamma2 (cluster x period)"), fit.theta, strict=True)
               if t < _SINGULAR_TOL]
    if at_zero:
        warnings.warn(
            "stepped_wedge_analysis: boundary (singular) fit: " + " and ".join(at_zero)
            + " estimated at 0, as lme4's isSingular(). The data show no variation at that level; "
            "the fixed effects remain valid, or refit without that random effect "
            "(cluster_period_re=False when gamma2 = 0).",
            ScaleupWarning,
            stacklevel=3,
        )
    sigma2 = fit.sigma**2
    tau2, gamma2 = sigma2 * fit.theta[0] ** 2, sigma2 * fit.theta[1] ** 2
    se = np.sqrt(np.diag(fit.vcov_beta))
    dfs, _ = satterthwaite(fit)
    tval = fit.beta / se
    tq = stats.t.ppf(0.5 + level / 2, dfs)
    fe = pd.DataFrame(
        {"estimate": fit.beta, "se": se, "statistic": tval, "df": dfs,
         "pvalue": 2 * stats.t.sf(np.abs(tval), dfs), "ci_low": fit.beta - tq * se,
         "ci_high": fit.beta + tq * se},
        index=pd.Index(xnames, name="term"),
    )
    return dict(fe=fe, tau2=float(tau2), gamma2=float(gamma2), sigma2=float(sigma2),
                loglik=-fit.minus2ll / 2, n_obs=n, n_clusters=G, n_cp=n_cp, singular=bool(at_zero),
                converged=bool(fit.converged), used=used)


def _check_outcome_scale(y: pd.Series, outcome: str, label: str) -> None:
    """Refuse outcomes that double precision cannot carry through the REML fit (the bounds of
    :func:`scaleup_analysis.mixed_model`), naming the user's column rather than the model's."""
    from ..heterogeneity.mixed import MAX_ABS, MIN_SPREAD

    values = y.to_numpy(dtype=float)
    check_magnitude(values, y.index, f"{label}, column {outcome!r} (argument 'outcome')", max_abs=MAX_ABS,
                    consequence="the sums of squares of the fit would overflow")
    check_spread(values, f"{label}, column {outcome!r} (argument 'outcome')",
                 f"the {_rows_text(y.index, label='first:')} complete", min_spread=MIN_SPREAD,
                 consequence=" and the fit would fail")


@checked_inputs
def stepped_wedge_analysis(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    period: str,
    treatment: str,
    *,
    cluster_period_re: bool = False,
    reml: bool = True,
    level: float = 0.95,
) -> SteppedWedgeAnalysis:
    """Analyse a cross-sectional stepped-wedge trial with a linear mixed model.

    ``cluster_period_re=False`` (default) fits Hussey & Hughes' model
    ``outcome ~ C(period) + treatment + (1 | cluster)`` with :func:`scaleup_analysis.mixed_model`;
    ``cluster_period_re=True`` adds a cluster x period random effect (Hooper et al. 2016's "nested
    exchangeable" model), as ``lmer(y ~ factor(period) + treatment + (1 | cluster) +
    (1 | cluster:period))``. Both are lme4-equivalent REML or ML fits with Satterthwaite df
    (lmerTest).

    Parameters
    ----------
    data : pandas.DataFrame
        Individual-level rows (one per person and period); with ``cluster_period_re=False``
        cluster-period level rows are also accepted.
    outcome, unit, period, treatment : str
        Column names: the outcome, the cluster (unit of randomisation), the period and the 0/1
        treatment.
    cluster_period_re : bool
        Add the cluster x period random effect ``g_ct`` (needs several rows per cluster-period).
    reml : bool
        REML (default) or ML.
    level : float
        Confidence level.

    Returns
    -------
    SteppedWedgeAnalysis

    Notes
    -----
    The model for individual i of cluster c in period t is::

        y_ict = mu + beta_t + theta X_ct + a_c + g_ct + e_ict
        a_c ~ N(0, tau2),  g_ct ~ N(0, gamma2),  e_ict ~ N(0, sigma2)

    with fixed period effects ``beta_t`` (first period as reference) and ``X_ct = 1`` once cluster c
    has crossed over; ``gamma2 = 0`` in Hussey & Hughes' model. The within-period intra-cluster
    correlation is ``icc = (tau2 + gamma2) / (tau2 + gamma2 + sigma2)`` and the cluster
    autocorrelation (correlation of two period means of a cluster as their size grows)
    ``cac = tau2 / (tau2 + gamma2)``. With the cluster x period effect the (RE)ML criterion of lme4
    is evaluated from per-cluster cross-products by the package's engine: grouping by cluster, the
    random-effect columns ``[1, 1{t = 1}, ..., 1{t = T}]`` have relative covariance factor
    ``diag(theta_1, theta_2, ..., theta_2)``, which is the nested model exactly. The t test of
    ``theta`` uses Satterthwaite's df computed as lmerTest, from the Hessian of the deviance in
    ``(theta_1, theta_2, sigma)``. A variance estimated at 0 (theta < 1e-4, as lme4's
    ``isSingular``) raises a :class:`~scaleup_analysis.ScaleupWarning` "boundary (singular) fit".

    References
    ----------
    Hussey MA, Hughes JP (2007). Design and analysis of stepped wedge cluster randomized trials.
    Contemp Clin Trials 28(2): 182-191.

    Hooper R, Teerenstra S, de Hoop E, Eldridge S (2016). Sample size calculation for stepped wedge
    and other longitudinal cluster randomised trials. Stat Med 35(26): 4718-4728.

    Girling AJ, Hemming K (2016). Statistical efficiency and optimal design for stepped cluster
    studies under linear mixed effects models. Stat Med 35(13): 2149-2166.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = sa.stepped_wedge_design(6, 3).to_frame()
    >>> data = d.loc[d.index.repeat(5)].reset_index(drop=True)
    >>> rng = np.random.default_rng(3)
    >>> data["y"] = 1.0 * data["treatment"] + rng.normal(size=6)[data["unit"] - 1] + rng.normal(size=len(data))
    >>> res = sa.stepped_wedge_analysis(data, "y", "unit", "period", "treatment")
    >>> res.ci_low < res.estimate < res.ci_high
    True
    >>> cp = sa.stepped_wedge_analysis(data, "y", "unit", "period", "treatment",
    ...                                cluster_period_re=True)
    >>> print(f"theta {cp.estimate:.2f} (df {cp.df:.1f}); gamma2 {cp.gamma2:.3f}; CAC {cp.cac:.2f}")
    theta 1.02 (df 14.5); gamma2 0.023; CAC 0.99
    """
    if not isinstance(cluster_period_re, bool | np.bool_):
        raise ScaleupDataError(
            f"stepped_wedge_analysis: cluster_period_re must be True or False, got {cluster_period_re!r}."
        )
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError("stepped_wedge_analysis: argument 'data' must be a pandas DataFrame.")
    check_level(level, "stepped_wedge_analysis")
    for arg, col in {"outcome": outcome, "unit": unit, "period": period,
                     "treatment": treatment}.items():
        if col not in data.columns:
            raise ScaleupDataError(
                f"stepped_wedge_analysis: column {col!r} (argument '{arg}') is not in data; "
                f"available columns: {list(data.columns)[:10]}."
            )
    label = "stepped_wedge_analysis: table 'data'"
    d = pd.DataFrame({"y": numeric_column(data, outcome, label, arg="outcome", missing=True),
                      "cl": data[unit].to_numpy(), "per": data[period].to_numpy(),
                      "trt": numeric_column(data, treatment, label, arg="treatment", missing=True)},
                     index=data.index)
    if not d.notna().all(axis=1).any():
        raise ScaleupDataError(
            f"{label}: no row has all of {[outcome, unit, period, treatment]} "
            + ("(the table is empty)." if len(d) == 0 else "(every row has a missing value).")
            + " Give the cluster-period or individual rows of the trial."
        )
    complete = d.dropna()
    if complete["cl"].nunique() < 2:
        raise ScaleupDataError(
            f"{label}, column {unit!r} (argument 'unit'): {complete['cl'].nunique()} cluster among the "
            f"{len(complete)} complete row(s); the between-cluster variance needs at least 2 clusters."
        )
    if complete["y"].nunique() < 2:
        raise ScaleupDataError(
            f"{label}, column {outcome!r} (argument 'outcome'): the outcome is constant "
            f"({first_values(complete['y'].iloc[:1])} in all {len(complete)} complete rows); no effect or variance "
            "can be estimated. Check the outcome column."
        )
    _check_outcome_scale(complete["y"], outcome, label)
    bad = ~d["trt"].isin([0, 1]) & d["trt"].notna()
    if bad.any():
        raise ScaleupDataError(
            f"stepped_wedge_analysis: column {treatment!r} (argument 'treatment') must be 0/1; "
            f"{int(bad.sum())} row(s) are not (first: {list(d.index[bad][:5])})."
        )
    method = "REML" if reml else "ML"
    if cluster_period_re:
        if not isinstance(reml, bool | np.bool_):
            raise ScaleupDataError(f"stepped_wedge_analysis: reml must be True or False, got {reml!r}.")
        names = {"outcome": outcome, "unit": unit, "period": period, "treatment": treatment}
        r = _fit_nested(d, names, bool(reml), level)
        fe, used = r["fe"], r["used"]
        tau2, gamma2, sigma2 = r["tau2"], r["gamma2"], r["sigma2"]
        n_obs, n_clusters, n_cp = r["n_obs"], r["n_clusters"], r["n_cp"]
        loglik, singular, converged, model = r["loglik"], r["singular"], r["converged"], None
    else:
        from ..heterogeneity.mixed import mixed_model

        model = mixed_model(d, "y ~ C(per) + trt", group="cl", reml=reml, level=level)
        fe = model.fixed.copy()  # mixed_model's coefficient table
        fe.index = pd.Index([treatment if t == "trt" else t.replace("C(per)", period, 1)
                             for t in fe.index], name="term")
        tau2, sigma2, gamma2 = float(model.tau2), float(model.sigma2), 0.0
        used = d.dropna()
        n_obs, n_clusters = int(model.n_obs), int(model.n_groups)
        n_cp = int(used.groupby(["cl", "per"]).ngroups)
        loglik, singular, converged = float(model.loglik), bool(model.singular), bool(model.converged)
    t = fe.loc[treatment]
    cell = (used.groupby(["cl", "per"], sort=True)
            .agg(treatment=("trt", "first"), mean=("y", "mean"), n=("y", "size"))
            .reset_index().rename(columns={"cl": "unit", "per": "period"}))
    between = tau2 + gamma2
    return SteppedWedgeAnalysis(
        estimate=float(t["estimate"]), se=float(t["se"]), df=float(t["df"]),
        pvalue=float(t["pvalue"]), ci_low=float(t["ci_low"]), ci_high=float(t["ci_high"]),
        tau2=tau2, sigma2=sigma2, icc=between / (between + sigma2), level=level, method=method,
        n_obs=n_obs, n_clusters=n_clusters, gamma2=gamma2,
        cac=tau2 / between if between > 0 else float("nan"), loglik=float(loglik),
        cluster_period_re=bool(cluster_period_re), n_cluster_periods=n_cp, singular=singular,
        converged=converged, model=model, cell_means=cell, fixed=fe,
    )
