"""Staggered-adoption difference-in-differences: Callaway & Sant'Anna, TWFE and Goodman-Bacon.

When sites adopt an innovation at different times (rollout waves), the classical two-way
fixed-effects (TWFE) regression compares late adopters with early adopters that are already
treated; with effects that grow with exposure this "forbidden comparison" biases the TWFE
estimate, possibly past zero (Goodman-Bacon 2021). This module provides

* :func:`staggered_did` -- group-time average treatment effects ATT(g, t) of Callaway &
  Sant'Anna (2021), following the R package ``did`` (``att_gt`` + ``aggte``): 2x2 comparisons
  with never-treated or not-yet-treated units, outcome-regression / IPW / doubly-robust
  estimation (Sant'Anna & Zhao 2020, as ``DRDID::reg_did_panel``, ``std_ipw_did_panel``,
  ``drdid_panel``), unit-level influence functions, the Rademacher multiplier bootstrap and
  uniform (simultaneous) confidence bands; aggregations via :meth:`StaggeredDiDResult.aggregate`;
* :func:`twfe_did` -- the static or event-study TWFE regression with cluster-robust errors;
* :func:`bacon_decomposition` -- the Goodman-Bacon decomposition of the static TWFE estimate
  into its 2x2 comparisons.

All three take a balanced long-format panel (one row per unit and period).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from .._checks import check_draw_memory, check_level, checked_inputs, first_values, numeric_column
from .._display import Displayed, text_table
from .._style import NEUTRAL, OUTSIDE, PALETTE, new_axes, styled, ticks_inside
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..i18n import N_
from ..narrative import Text
from ._text import POST_COLOUR, POST_MARKER, PRE_COLOUR, PRE_MARKER, band_title, integer_ticks

__all__ = [
    "staggered_did",
    "twfe_did",
    "bacon_decomposition",
    "StaggeredDiDResult",
    "AggregatedDiDResult",
    "TWFEResult",
    "BaconDecomposition",
]

#: Largest magnitude of an outcome value: squares of the influence functions must stay finite.
_MAX_ABS = 1e100
_EPS_SE = np.sqrt(np.finfo(float).eps) * 10  # did: se <= sqrt(.Machine$double.eps)*10 -> NA


# ----------------------------------------------------------------------------------------------
# input checking
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Panel:
    ids: np.ndarray  # (n,) unit identifiers, sorted
    tlist: np.ndarray  # (T,) sorted periods
    Y: np.ndarray  # (n, T) outcome
    g: np.ndarray  # (n,) cohort, 0 = never treated within the panel
    extra: dict  # column -> (n,) time-invariant per-unit values


def _prepare_panel(data, outcome, unit, time, cohort, treatment, *, fn, invariant=()) -> _Panel:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"{fn}: `data` must be a pandas DataFrame in long format, got {type(data).__name__}.")
    if (cohort is None) == (treatment is None):
        raise ScaleupDataError(
            f"{fn}: give exactly one of `cohort` (first treated period, 0/NaN = never treated) "
            "or `treatment` (0/1 indicator per unit and period)."
        )
    cols = [outcome, unit, time, cohort if cohort is not None else treatment, *invariant]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ScaleupDataError(
            f"{fn}: column(s) {missing} not found in `data` (columns: {list(data.columns)}); "
            "pass the right names as keyword arguments."
        )
    d = data[list(dict.fromkeys(cols))].copy()
    if d.empty:
        raise ScaleupDataError(
            f"{fn}: `data` has no rows; pass the long-format panel (one row per {unit!r} and {time!r})."
        )
    if d[unit].isna().any():
        bad = np.flatnonzero(d[unit].isna().to_numpy())
        raise ScaleupDataError(
            f"{fn}: column {unit!r} (unit) is missing in {bad.size} row(s) (first rows: {first_values(d.index[bad])}); "
            "every row needs a unit identifier."
        )
    tvals = pd.to_numeric(d[time], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(tvals.to_numpy(dtype=float)) | (tvals.to_numpy(dtype=float) % 1 != 0))
    if bad.size:
        raise ScaleupDataError(
            f"{fn}: column {time!r} (time) must hold integer periods; {bad.size} row(s) do not "
            f"(first rows: {first_values(d.index[bad])}). Recode periods as integers 1..T."
        )
    d[time] = tvals.astype(np.int64)
    y = numeric_column(d, outcome, f"{fn}: table 'data'", arg="outcome", missing=True, infinite=True)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ScaleupDataError(
            f"{fn}: column {outcome!r} (outcome) is missing or infinite in {bad.size} row(s) "
            f"(first rows: {first_values(d.index[bad])}); a balanced panel is required, so drop those units "
            "entirely or impute their outcomes."
        )
    huge = np.flatnonzero(np.abs(y) > _MAX_ABS)
    if huge.size:
        raise ScaleupDataError(
            f"{fn}: table 'data', column {outcome!r} (argument 'outcome'): {huge.size} row(s) (first: "
            f"{first_values(d.index[huge])}) are beyond +/-{_MAX_ABS:g} (values {first_values(y[huge])}); their "
            "squares overflow. Rescale the outcome (e.g. thousands instead of units)."
        )
    d[outcome] = y
    dup = d.duplicated([unit, time], keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        pairs = d.loc[d.index[rows], [unit, time]].drop_duplicates().itertuples(index=False)
        raise ScaleupDataError(
            f"{fn}: {rows.size} rows share a (unit, time) pair in columns ({unit!r}, {time!r}) "
            f"(first rows: {first_values(d.index[rows])}; pairs: {first_values([tuple(p) for p in pairs])}). "
            "Keep one row per unit and period (aggregate duplicates first)."
        )
    tlist = np.sort(d[time].unique())
    counts = d.groupby(unit, sort=True)[time].size()
    short = counts.index[counts.to_numpy() != tlist.size]
    if len(short):
        raise ScaleupDataError(
            f"{fn}: unbalanced panel: {len(short)} unit(s) in column {unit!r} are not observed in all "
            f"{tlist.size} periods of {time!r} (first units: {first_values(short)}). Drop those units or "
            "complete their series; these estimators need a balanced panel."
        )
    d = d.sort_values([unit, time], kind="mergesort")
    ids = counts.index.to_numpy()
    n, T = ids.size, tlist.size
    Y = d[outcome].to_numpy(dtype=float).reshape(n, T)

    # cohort
    if cohort is not None:
        gv = pd.to_numeric(d[cohort], errors="coerce")
        nonnum = d[cohort].notna() & gv.isna()
        if nonnum.any():
            rows = d.index[nonnum.to_numpy()]
            raise ScaleupDataError(
                f"{fn}: column {cohort!r} (cohort) must be numeric (first treated period); {len(rows)} "
                f"row(s) are not (first rows: {first_values(rows)})."
            )
        G = gv.fillna(0.0).to_numpy(dtype=float).reshape(n, T)
        varying = np.flatnonzero((G != G[:, :1]).any(axis=1))
        if varying.size:
            raise ScaleupDataError(
                f"{fn}: column {cohort!r} (cohort) changes over time within {varying.size} unit(s) "
                f"(first units: {first_values(ids[varying])}); it must be the unit's first treated period, "
                "constant across its rows."
            )
        g = G[:, 0].copy()
        bad = np.flatnonzero((g < 0) | (g % 1 != 0))
        if bad.size:
            raise ScaleupDataError(
                f"{fn}: column {cohort!r} (cohort) must be a positive integer period, or 0/NaN for never "
                f"treated; {bad.size} unit(s) are not (first units: {first_values(ids[bad])})."
            )
    else:
        tr = pd.to_numeric(d[treatment], errors="coerce").to_numpy(dtype=float).reshape(n, T)
        bad = np.flatnonzero(~np.isin(tr, (0.0, 1.0)).all(axis=1))
        if bad.size:
            raise ScaleupDataError(
                f"{fn}: column {treatment!r} (treatment) must be 0/1 without missing values; {bad.size} "
                f"unit(s) violate this (first units: {first_values(ids[bad])})."
            )
        rev = np.flatnonzero((np.diff(tr, axis=1) < 0).any(axis=1))
        if rev.size:
            raise ScaleupDataError(
                f"{fn}: treatment reversal: in column {treatment!r}, {rev.size} unit(s) switch from 1 back "
                f"to 0 (first units: {first_values(ids[rev])}). Staggered adoption needs an absorbing treatment; "
                "code the first adoption period as the cohort, or analyse exits separately."
            )
        ever = tr.any(axis=1)
        g = np.where(ever, tlist[np.argmax(tr, axis=1)], 0).astype(float)
    late = np.flatnonzero(g > tlist[-1])
    if late.size:
        raise ScaleupDataError(
            f"{fn}: column {cohort!r} (cohort): {late.size} unit(s) have a cohort after the last period "
            f"{tlist[-1]} of the panel (first units: {first_values(ids[late])}, cohorts "
            f"{first_values(np.unique(g[late]))}). Recode them as never treated within the panel (0 or NaN), "
            "as R's did does, or extend the panel."
        )
    extra = {}
    for c in invariant:
        v = pd.to_numeric(d[c], errors="coerce").to_numpy(dtype=float).reshape(n, T)
        bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
        if bad.size:
            raise ScaleupDataError(
                f"{fn}: column {c!r} is missing or not numeric for {bad.size} unit(s) (first units: "
                f"{first_values(ids[bad])}); dummy-code categorical covariates and drop incomplete units."
            )
        var = np.flatnonzero((v != v[:, :1]).any(axis=1))
        if var.size:
            raise ScaleupDataError(
                f"{fn}: column {c!r} varies over time within {var.size} unit(s) (first units: "
                f"{first_values(ids[var])}); it must be time-invariant (e.g. its value in the first period)."
            )
        extra[c] = v[:, 0]
    return _Panel(ids=ids, tlist=tlist, Y=Y, g=g, extra=extra)


# ----------------------------------------------------------------------------------------------
# 2x2 estimators with covariates (DRDID, panel data)
# ----------------------------------------------------------------------------------------------
def _logit(X, d, maxit=100, tol=1e-12):
    beta = np.zeros(X.shape[1])
    converged = False
    for _ in range(maxit):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        W = p * (1 - p)
        step = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (d - p))
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            converged = True
            break
    if not converged:
        warnings.warn(
            "staggered_did: the propensity-score logit did not converge in 100 Newton steps "
            "(near-perfect separation?); try fewer covariates or method='reg'.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return 1.0 / (1.0 + np.exp(-(X @ beta)))


def _drdid_2x2(dy, d, X, method):
    """ATT and influence function of one 2x2 comparison (DRDID panel estimators, unit weights)."""
    n1 = d.size
    ctrl = d == 0
    # did's checks before estimation: ATT(g,t) is NA when they fail
    if method in ("dr", "reg"):
        Xc = X[ctrl]
        if Xc.shape[0] == 0 or 1.0 / np.linalg.cond(Xc.T @ Xc, 1) < np.finfo(float).eps:
            return np.nan, None, "not enough comparison units to fit the outcome regression"
    if method in ("dr", "ipw"):
        ps_raw = _logit(X, d)
        if ps_raw.max() >= 0.999:
            return np.nan, None, "overlap violated (estimated propensity score >= 0.999)"
        ps = np.minimum(ps_raw, 1 - 1e-6)
        trim = np.ones(n1)
        trim[ctrl] = ps[ctrl] < 0.995
        Hps = np.linalg.inv(X.T @ ((ps * (1 - ps))[:, None] * X)) * n1
        alr_ps = ((d - ps)[:, None] * X) @ Hps
    if method in ("dr", "reg"):
        XtX = (X[ctrl].T @ X[ctrl]) / n1
        beta = np.linalg.solve(XtX * n1, X[ctrl].T @ dy[ctrl])
        od = X @ beta
        alr_ols = (((1 - d) * (dy - od))[:, None] * X) @ np.linalg.inv(XtX)
    if method == "reg":
        mt = d.mean()
        eta_t = np.mean(d * dy) / mt
        eta_c = np.mean(d * od) / mt
        inf_t = (d * dy - d * eta_t) / mt
        inf_c = (d * od - d * eta_c + alr_ols @ np.mean(d[:, None] * X, axis=0)) / mt
        return eta_t - eta_c, inf_t - inf_c, None
    w_t = trim * d
    w_c = trim * ps * (1 - d) / (1 - ps)
    if method == "ipw":
        eta_t = np.mean(w_t * dy) / np.mean(w_t)
        eta_c = np.mean(w_c * dy) / np.mean(w_c)
        inf_t = (w_t * dy - w_t * eta_t) / np.mean(w_t)
        M2 = np.mean((w_c * (dy - eta_c))[:, None] * X, axis=0)
        inf_c = (w_c * dy - w_c * eta_c + alr_ps @ M2) / np.mean(w_c)
        return eta_t - eta_c, inf_t - inf_c, None
    r = dy - od
    eta_t = np.mean(w_t * r) / np.mean(w_t)
    eta_c = np.mean(w_c * r) / np.mean(w_c)
    inf_t = (w_t * r - w_t * eta_t - alr_ols @ np.mean(w_t[:, None] * X, axis=0)) / np.mean(w_t)
    M2 = np.mean((w_c * (r - eta_c))[:, None] * X, axis=0)
    M3 = np.mean(w_c[:, None] * X, axis=0)
    inf_c = (w_c * r - w_c * eta_c + alr_ps @ M2 - alr_ols @ M3) / np.mean(w_c)
    return eta_t - eta_c, inf_t - inf_c, None


# ----------------------------------------------------------------------------------------------
# multiplier bootstrap
# ----------------------------------------------------------------------------------------------
def _type1_quantile(x, q, axis=0):
    return np.quantile(x, q, axis=axis, method="inverted_cdf")


@dataclass(frozen=True, eq=False)
class _Inference:
    """Cluster structure and (fixed) Rademacher draws shared by att_gt and all aggregations."""

    n: int
    cluster_matrix: object  # sparse (n_clusters, n) summing units into clusters, or None (unit level)
    n_clusters: int
    weights: np.ndarray | None  # (n_boot, n_clusters) Rademacher draws, None = analytic
    level: float

    def cluster_sums(self, inf):
        return inf if self.cluster_matrix is None else np.asarray(self.cluster_matrix @ inf)

    def analytic_se(self, inf):
        S = self.cluster_sums(inf)
        return np.sqrt(np.sum(S**2, axis=0)) / self.n

    def se_and_crit(self, inf):
        """Bootstrap standard errors and uniform critical value (did::mboot); analytic if n_boot=0."""
        inf = np.atleast_2d(np.asarray(inf, dtype=float).T).T
        z = stats.norm.ppf(0.5 + self.level / 2)
        if self.weights is None:
            se = self.analytic_se(inf)
            se[se <= _EPS_SE] = np.nan
            return se, z
        S = self.cluster_sums(inf)
        bres = (self.weights @ S) / np.sqrt(self.n_clusters)  # = sqrt(G) * mean_c(V_bc S_c)
        ok = np.isfinite(bres.sum(axis=0)) & (np.sum(bres**2, axis=0) > _EPS_SE)
        se = np.full(inf.shape[1], np.nan)
        if not ok.any():
            return se, np.nan
        b = bres[:, ok]
        q75, q25 = _type1_quantile(b, 0.75), _type1_quantile(b, 0.25)
        bsig = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
        bsig = np.where(bsig <= _EPS_SE, np.nan, bsig)
        with np.errstate(divide="ignore", invalid="ignore"):
            bT = np.nanmax(np.abs(b / bsig), axis=1) if np.isfinite(bsig).any() else np.full(b.shape[0], np.nan)
        bT = bT[np.isfinite(bT)]
        crit = float(_type1_quantile(bT, self.level)) if bT.size else np.nan
        se[ok] = bsig * np.sqrt(self.n_clusters) / self.n
        se[se <= _EPS_SE] = np.nan
        return se, crit


def _checked_crit(crit, level, what):
    z = stats.norm.ppf(0.5 + level / 2)
    if not np.isfinite(crit):
        warnings.warn(
            f"{what}: the simultaneous critical value is not available (standard errors are NA); "
            "reporting pointwise bands.",
            ScaleupWarning,
            stacklevel=3,
        )
        return z, False
    if crit < z:
        warnings.warn(
            f"{what}: the simultaneous critical value is below the pointwise one; reporting pointwise bands.",
            ScaleupWarning,
            stacklevel=3,
        )
        return z, False
    return crit, True


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
def _errorbar_plot(ax, x, est, lo, hi, pre_mask, *, tx, xlabel, ylabel, title, bars, reference=()):
    """Estimates with their bars as ``did::ggdid``: before adoption and after adoption in two colours
    (and markers), a reference line at 0, the legend beside the axes (its title says what the bars are)."""
    ax = new_axes(ax, (7.5, 4.2))
    x, est, lo, hi = (np.asarray(v, dtype=float) for v in (x, est, lo, hi))
    pre_mask = np.asarray(pre_mask, bool)
    for mask, colour, marker, label in ((pre_mask, PRE_COLOUR, PRE_MARKER, tx("Before adoption")),
                                        (~pre_mask, POST_COLOUR, POST_MARKER, tx("After adoption"))):
        if mask.any():
            ax.errorbar(x[mask], est[mask], yerr=[est[mask] - lo[mask], hi[mask] - est[mask]], fmt=marker,
                        color=colour, ecolor=colour, elinewidth=1.2, capsize=3, label=label)
    if len(reference):
        ax.plot(list(reference), [0.0] * len(reference), ls="none", marker="D", mfc="white", mec=NEUTRAL,
                label=tx("Reference period (set to 0)"))
    ax.axhline(0.0, color=NEUTRAL, lw=0.9, ls="--", label=tx("No effect"))
    integer_ticks(ax.xaxis, np.r_[x, list(reference)], max_ticks=15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title=bars, **OUTSIDE)
    ticks_inside(ax)
    return ax


#: Words of the aggregation kinds (did::aggte's ``type``), in summaries and titles.
_KIND_WORDS = {"simple": N_("simple average"), "dynamic": N_("by time since adoption (event study)"),
               "group": N_("by cohort"), "calendar": N_("by period")}


@dataclass(frozen=True, eq=False, repr=False)
class AggregatedDiDResult(Displayed):
    """An aggregation of ATT(g, t) (``did::aggte``); see :meth:`StaggeredDiDResult.aggregate`.

    Attributes
    ----------
    kind : {"simple", "dynamic", "group", "calendar"}
    overall_att, overall_att_se : float
        Overall summary parameter and its standard error (bootstrap if ``n_boot > 0``).
    overall_att_ci_low, overall_att_ci_high : float
        Pointwise confidence interval (coverage ``level``) of the overall parameter.
    estimates : pandas.DataFrame or None
        One row per event time / cohort / calendar period (``event_time``, ``cohort`` or ``time``)
        with ``att``, ``se``, ``band_low``, ``band_high`` (uniform band); None for ``"simple"``.
    crit_val : float
        Critical value of the bands (simultaneous if ``uniform`` is True, else normal).
    """

    kind: str
    overall_att: float
    overall_att_se: float
    overall_att_ci_low: float
    overall_att_ci_high: float
    estimates: pd.DataFrame | None
    crit_val: float
    uniform: bool
    level: float
    influence: np.ndarray  # (n, K + 1) influence functions of the estimates, overall last

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per estimate, then the overall parameter (``term='overall'``)."""
        key = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}.get(self.kind)
        rows = []
        if self.estimates is not None:
            for r in self.estimates.itertuples(index=False):
                rows.append({"kind": self.kind, "term": f"{key}={getattr(r, key)}", key: getattr(r, key),
                             "att": r.att, "se": r.se, "band_low": r.band_low, "band_high": r.band_high})
        rows.append({"kind": self.kind, "term": "overall", "att": self.overall_att, "se": self.overall_att_se,
                     "band_low": self.overall_att_ci_low, "band_high": self.overall_att_ci_high})
        return pd.DataFrame(rows)

    def _repr_fields(self) -> dict:
        return {"kind": self.kind, "overall_att": self.overall_att, "overall_att_se": self.overall_att_se,
                "ci": (self.overall_att_ci_low, self.overall_att_ci_high),
                "n_estimates": 0 if self.estimates is None else len(self.estimates), "uniform": self.uniform}

    def _summary(self, tx) -> str:
        """Overall parameter and, when present, the disaggregated estimates with their bands."""
        lines = [
            tx("Aggregated ATT ({kind}), Callaway & Sant'Anna (2021)", kind=tx(_KIND_WORDS[self.kind])),
            "  " + tx("Overall ATT: {estimate}; SE {se}",
                      estimate=tx.ci(self.overall_att, self.overall_att_ci_low, self.overall_att_ci_high,
                                     digits=4, level=self.level),
                      se=tx.num(self.overall_att_se, 4)),
        ]
        if self.estimates is not None:
            key = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}[self.kind]
            if self.uniform:
                lines.append("  " + tx("Simultaneous {level} bands (critical value {crit}):",
                                       level=tx.pct(self.level), crit=tx.num(self.crit_val, 3)))
            else:
                lines.append("  " + tx("Pointwise {level} intervals (critical value {crit}):",
                                       level=tx.pct(self.level), crit=tx.num(self.crit_val, 3)))
            head = {"event_time": tx("event time"), "cohort": tx("cohort"), "time": tx("period")}[key]
            rows = [[str(int(getattr(r, key))), tx.num(r.att, 4), tx.num(r.se, 4), tx.num(r.band_low, 4),
                     tx.num(r.band_high, 4)] for r in self.estimates.itertuples(index=False)]
            lines += text_table([head, "ATT", tx("SE"), tx("lower bound"), tx("upper bound")], rows, left=()).split("\n")
        return "\n".join(lines)

    @styled
    def plot(self, *, ax=None):
        """Estimates with their (simultaneous) bands, as ``did::ggdid``: event times before adoption and
        after adoption in two colours, a reference line at 0. Returns the Axes."""
        if self.estimates is None:
            raise ScaleupDataError("aggregate(kind='simple') has a single estimate; plot another kind.")
        tx = Text()
        key = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}[self.kind]
        e = self.estimates
        pre = (e[key].to_numpy() < 0) if self.kind == "dynamic" else np.zeros(len(e), bool)
        xlabel = {"event_time": tx("event time (periods since adoption)"),
                  "cohort": tx("cohort (first period of adoption)"), "time": tx("period")}[key]
        title = {"dynamic": tx("Average effect by time since adoption"), "group": tx("Average effect by cohort"),
                 "calendar": tx("Average effect by period")}[self.kind]
        return _errorbar_plot(ax, e[key], e["att"], e["band_low"], e["band_high"], pre, tx=tx, xlabel=xlabel,
                              ylabel=tx("ATT (outcome units)"), title=title,
                              bars=band_title(tx, self.uniform, self.level))


@dataclass(frozen=True, eq=False, repr=False)
class StaggeredDiDResult(Displayed):
    """Group-time average treatment effects of Callaway & Sant'Anna (2021).

    Attributes
    ----------
    att_gt : pandas.DataFrame
        One row per (``cohort``, period ``time``): ``event_time`` (= time - cohort),
        ``att``, ``se`` and the uniform band ``band_low``, ``band_high``.
    crit_val : float
        Critical value of the bands (bootstrap sup-t if ``n_boot > 0``, else normal quantile).
    n_units : int
        Units used (after dropping units treated in the first period).
    control, method, base_period, anticipation, level, n_boot :
        The options used.
    """

    att_gt: pd.DataFrame
    crit_val: float
    n_units: int
    control: str
    method: str
    base_period: str
    anticipation: int
    level: float
    n_boot: int
    influence: np.ndarray  # (n, K) unit-level influence functions of ATT(g,t), did's scaling
    unit_cohort: np.ndarray  # (n,)
    cohorts: np.ndarray
    periods: np.ndarray
    _inference: _Inference

    # -------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The ATT(g, t) table (a copy of :attr:`att_gt`)."""
        return self.att_gt.copy()

    @property
    def uniform(self) -> bool:
        """True when the bands of :attr:`att_gt` are simultaneous (bootstrap sup-t critical value)."""
        return bool(self.n_boot > 0 and not np.isclose(self.crit_val, stats.norm.ppf(0.5 + self.level / 2)))

    def _repr_fields(self) -> dict:
        return {"n_units": self.n_units, "n_cohorts": len(self.cohorts), "n_periods": len(self.periods),
                "control": self.control, "method": self.method, "n_boot": self.n_boot, "crit_val": self.crit_val}

    def _summary(self, tx) -> str:
        """ATT(g, t) table with the options used."""
        ctrl = tx("never-treated units") if self.control == "never" else tx("not-yet-treated units")
        if self.n_boot:
            se_kind = tx.n("bootstrap standard errors ({n} Rademacher draw)",
                           "bootstrap standard errors ({n} Rademacher draws)", self.n_boot)
        else:
            se_kind = tx("analytic standard errors")
        if self.uniform:
            bands = tx("simultaneous {level} bands, critical value {crit}", level=tx.pct(self.level),
                       crit=tx.num(self.crit_val, 3))
        else:
            bands = tx("pointwise {level} intervals, critical value {crit}", level=tx.pct(self.level),
                       crit=tx.num(self.crit_val, 3))
        lines = [
            tx("Group-time average treatment effects (Callaway & Sant'Anna 2021)"),
            "  " + tx("{n} units; comparison: {control}; estimator: {method}; base period: {base}; "
                      "anticipation: {anticipation}", n=tx.int(self.n_units), control=ctrl, method=self.method,
                      base=tx("varying") if self.base_period == "varying" else tx("universal"),
                      anticipation=tx.int(self.anticipation)),
            "  " + se_kind + "; " + bands,
        ]
        rows = [[str(r.cohort), str(r.time), str(r.event_time), tx.num(r.att, 4), tx.num(r.se, 4),
                 tx.num(r.band_low, 4), tx.num(r.band_high, 4)] for r in self.att_gt.itertuples(index=False)]
        lines += text_table([tx("cohort"), tx("period"), tx("event time"), "ATT", tx("SE"), tx("lower bound"),
                             tx("upper bound")], rows, left=()).split("\n")
        return "\n".join(lines)

    def aggregate(self, kind="group", *, min_e=-np.inf, max_e=np.inf, balance_e=None) -> AggregatedDiDResult:
        """Aggregate ATT(g, t) into summary parameters, as ``did::aggte``.

        Parameters
        ----------
        kind : {"group", "simple", "dynamic", "calendar"}
            Default ``"group"`` as ``did::aggte``. ``"simple"``: average of post-treatment ATT(g, t) weighted by cohort size;
            ``"dynamic"``: event-study theta(e) by event time e = t - g (overall: mean over e >= 0);
            ``"group"``: theta(g), average over each cohort's post-treatment periods (overall:
            cohort-size weighted); ``"calendar"``: theta(t) by period (overall: mean over periods).
        min_e, max_e : float
            Event-time window (``dynamic``); ``max_e`` also caps the post-treatment periods used by
            ``simple`` and ``group``.
        balance_e : int, optional
            ``dynamic`` only: keep cohorts observed for at least ``balance_e`` post-treatment periods
            and event times ``<= balance_e``, so the composition does not change with e.

        Returns
        -------
        AggregatedDiDResult

        Notes
        -----
        Weights are cohort shares P(G = g); their estimation enters the influence function (the
        ``wif`` term of ``did``). Standard errors use the same Rademacher draws as the ATT(g, t)
        (so the result is deterministic given ``seed``); ``did`` draws afresh for each call.
        For ``kind="group"`` the overall influence function uses the corrected ``wif`` of did
        >= 2.1.2 (pull request 223).
        """
        if kind not in ("simple", "dynamic", "group", "calendar"):
            raise ScaleupDataError(f"aggregate: `kind` must be 'simple', 'dynamic', 'group' or 'calendar', got {kind!r}.")
        if balance_e is not None and kind != "dynamic":
            raise ScaleupDataError("aggregate: `balance_e` applies to kind='dynamic' only.")
        tab = self.att_gt
        group = tab["cohort"].to_numpy(dtype=float)
        t = tab["time"].to_numpy(dtype=float)
        att = tab["att"].to_numpy(dtype=float)
        IF = self.influence
        inf = self._inference
        G = self.unit_cohort
        pg_g = np.array([np.mean(G == g) for g in self.cohorts])
        pg = pg_g[np.searchsorted(self.cohorts, group)]

        def need(idx, what):
            bad = idx[~np.isfinite(att[idx])]
            if bad.size:
                cells = [(int(group[i]), int(t[i])) for i in bad]
                raise ScaleupDataError(
                    f"aggregate({kind!r}): ATT(g,t) is NA for {bad.size} cell(s) needed for {what} "
                    f"(first (cohort, time): {first_values(cells)}); see the warnings of staggered_did "
                    "(e.g. reduce `covariates` or use control='notyet')."
                )

        def wif(groups_k, pg_k):
            """did's extra influence-function term for estimated weights P(G=g)/sum P(G=g)."""
            s = pg_k.sum()
            A = (G[:, None] == groups_k[None, :]).astype(float) - pg_k[None, :]
            return A / s - A.sum(axis=1)[:, None] * (pg_k / s**2)[None, :]

        def combine(keep):
            """Cohort-size weighted mean of ATT(g,t) over `keep`, with its influence function."""
            need(keep, "this aggregation")
            w = pg[keep] / pg[keep].sum()
            val = float(np.sum(att[keep] * w))
            f = IF[:, keep] @ w + wif(group[keep], pg[keep]) @ att[keep]
            return val, f

        what = f"aggregate({kind!r})"
        if kind == "simple":
            keep = np.flatnonzero((group <= t) & (t <= group + max_e))
            if keep.size == 0:
                raise ScaleupDataError(f"{what}: no post-treatment ATT(g,t) within max_e={max_e}.")
            val, f = combine(keep)
            se, _ = inf.se_and_crit(f[:, None])
            return self._agg(kind, val, se[0], None, np.nan, False, f[:, None])

        if kind == "dynamic":
            e_cells = t - group
            include = np.ones(t.size, bool)
            eseq = np.unique(e_cells)
            if balance_e is not None:
                first = min(self.periods.min(), self.cohorts.min())
                eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t.max() + first)]
                include = (t.max() - group) >= balance_e
            eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
            if eseq.size == 0:
                raise ScaleupDataError(f"{what}: no event time within [min_e, max_e] = [{min_e}, {max_e}].")
            vals, fs = [], []
            for e in eseq:
                keep = np.flatnonzero((e_cells == e) & include)
                v, f = combine(keep)
                vals.append(v)
                fs.append(f)
            vals = np.array(vals)
            F = np.column_stack(fs)
            epos = eseq >= 0
            if epos.any():
                overall = float(np.mean(vals[epos]))
                fo = F[:, epos].mean(axis=1)
            else:
                overall, fo = np.nan, np.zeros(F.shape[0])
            est = pd.DataFrame({"event_time": eseq.astype(int), "att": vals})
            return self._finish(kind, est, F, overall, fo)

        if kind == "group":
            vals, fs = [], []
            for g in self.cohorts:
                keep = np.flatnonzero((group == g) & (g <= t) & (t <= group + max_e))
                if keep.size == 0:
                    vals.append(np.nan)
                    fs.append(np.zeros(IF.shape[0]))
                    continue
                need(keep, f"cohort {g:g}")
                vals.append(float(np.mean(att[keep])))
                fs.append(IF[:, keep].mean(axis=1))
            vals = np.array(vals)
            F = np.column_stack(fs)
            okg = np.isfinite(vals)
            w = pg_g[okg] / pg_g[okg].sum()
            overall = float(np.sum(vals[okg] * w))
            fo = F[:, okg] @ w + wif(self.cohorts[okg], pg_g[okg]) @ vals[okg]
            est = pd.DataFrame({"cohort": self.cohorts.astype(int), "att": vals})
            return self._finish(kind, est, F, overall, fo)

        # calendar
        tl = np.unique(t)
        tl = tl[tl >= group.min()]
        vals, fs = [], []
        for t1 in tl:
            keep = np.flatnonzero((t == t1) & (group <= t))
            v, f = combine(keep)
            vals.append(v)
            fs.append(f)
        vals = np.array(vals)
        F = np.column_stack(fs)
        overall = float(np.mean(vals))
        fo = F.mean(axis=1)
        est = pd.DataFrame({"time": tl.astype(int), "att": vals})
        return self._finish(kind, est, F, overall, fo)

    def _finish(self, kind, est, F, overall, fo):
        inf = self._inference
        se, crit = inf.se_and_crit(F)
        uniform = False
        if inf.weights is None:
            crit = stats.norm.ppf(0.5 + self.level / 2)
        else:
            crit, uniform = _checked_crit(crit, self.level, f"aggregate({kind!r})")
        est["se"] = se
        est["band_low"] = est["att"] - crit * est["se"]
        est["band_high"] = est["att"] + crit * est["se"]
        se_o, _ = inf.se_and_crit(fo[:, None])
        return self._agg(kind, overall, se_o[0], est, crit, uniform, np.column_stack([F, fo]))

    def _agg(self, kind, val, se, est, crit, uniform, F):
        z = stats.norm.ppf(0.5 + self.level / 2)
        n_na = int((est["se"].isna() & est["att"].notna()).sum()) if est is not None else 0
        if np.isfinite(val) and not np.isfinite(se) or n_na:
            warnings.warn(
                f"aggregate({kind!r}): standard error not estimable (missing) for "
                + ("the overall ATT" if np.isfinite(val) and not np.isfinite(se) else "")
                + (" and " if np.isfinite(val) and not np.isfinite(se) and n_na else "")
                + (f"{n_na} aggregated estimate(s)" if n_na else "")
                + ": the influence function is zero (every unit changes by the same amount, e.g. a constant "
                "outcome); their intervals are missing too.",
                ScaleupWarning, stacklevel=3,
            )
        return AggregatedDiDResult(
            kind=kind, overall_att=val, overall_att_se=float(se), overall_att_ci_low=val - z * se,
            overall_att_ci_high=val + z * se, estimates=est, crit_val=float(crit), uniform=uniform,
            level=self.level, influence=F,
        )

    # -------------------------------------------------------------------------------------
    @styled
    def plot_event_study(self, *, min_e=-np.inf, max_e=np.inf, balance_e=None, ax=None):
        """Event-study plot (dynamic aggregation) with its simultaneous bands, as ``did::ggdid``: event
        times before adoption and after adoption in two colours, a reference line at 0.

        ``min_e``, ``max_e`` and ``balance_e`` go to :meth:`aggregate`. Returns the matplotlib Axes.
        """
        return self.aggregate("dynamic", min_e=min_e, max_e=max_e, balance_e=balance_e).plot(ax=ax)

    @styled
    def plot_att_gt(self, *, ax=None):
        """All ATT(g, t) with their bands, as ``did::ggdid``: one panel per cohort, periods before its
        adoption and after it in two colours, a reference line at 0 and the adoption marked.

        With ``ax`` every cohort is drawn on that Axes (one marker per cohort). Returns the Axes (without
        ``ax``: the first cohort's panel; its figure holds them all).
        """
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        tx = Text()
        tab = self.att_gt
        k = len(self.cohorts)
        pre_label, post_label = tx("Before adoption"), tx("After adoption")
        if ax is not None:
            markers = "osD^v<>ph*"
            width = 0.6 / max(k, 1)
            for i, g in enumerate(self.cohorts):
                sub = tab[tab["cohort"] == g]
                x = sub["time"].to_numpy(dtype=float) + (i - (k - 1) / 2) * width
                y, lo, hi = (sub[c].to_numpy(dtype=float) for c in ("att", "band_low", "band_high"))
                pre = x < g
                for mask, colour in ((pre, PRE_COLOUR), (~pre, POST_COLOUR)):
                    if mask.any():
                        ax.errorbar(x[mask], y[mask], yerr=[y[mask] - lo[mask], hi[mask] - y[mask]],
                                    fmt=markers[i % len(markers)], color=colour, ecolor=colour, capsize=2)
            handles = [Line2D([], [], color=PRE_COLOUR, marker="o", ls="none", label=pre_label),
                       Line2D([], [], color=POST_COLOUR, marker="o", ls="none", label=post_label)]
            handles += [Line2D([], [], color="black", marker=markers[i % len(markers)], ls="none",
                               label=tx("Adopted in period {g}", g=int(g))) for i, g in enumerate(self.cohorts)]
            ax.axhline(0.0, color=NEUTRAL, lw=0.9, ls="--")
            integer_ticks(ax.xaxis, tab["time"])
            ax.set_xlabel(tx("period"))
            ax.set_ylabel(tx("ATT(g, t) (outcome units)"))
            ax.set_title(tx("Group-time average treatment effects"))
            ax.legend(handles=handles, title=band_title(tx, self.uniform, self.level), **OUTSIDE)
            ticks_inside(ax)
            return ax
        ncols = 1 if k <= 5 else 2
        nrows = -(-k // ncols)
        fig, axes = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False, layout="constrained",
                                 figsize=(8.0 if ncols == 1 else 12.0, min(13.5, 1.4 + 1.7 * nrows)))
        panels = axes.ravel()
        for i, g in enumerate(self.cohorts):
            pa = panels[i]
            sub = tab[tab["cohort"] == g]
            x = sub["time"].to_numpy(dtype=float)
            y, lo, hi = (sub[c].to_numpy(dtype=float) for c in ("att", "band_low", "band_high"))
            pre = x < g
            for mask, colour, marker in ((pre, PRE_COLOUR, PRE_MARKER), (~pre, POST_COLOUR, POST_MARKER)):
                if mask.any():
                    pa.errorbar(x[mask], y[mask], yerr=[y[mask] - lo[mask], hi[mask] - y[mask]], fmt=marker,
                                color=colour, ecolor=colour, elinewidth=1.1, capsize=2)
            pa.axhline(0.0, color=NEUTRAL, lw=0.9, ls="--")
            pa.axvline(g - 0.5, color=NEUTRAL, lw=0.9, ls=":")
            pa.set_title(tx("Adopted in period {g}", g=int(g)), loc="left", fontsize=9.5)
            integer_ticks(pa.xaxis, tab["time"])
        for j in range(k, panels.size):  # empty cells of the grid: the panel above shows the period ticks
            panels[j].set_visible(False)
            panels[j - ncols].xaxis.set_tick_params(labelbottom=True)
        handles = [Line2D([], [], color=PRE_COLOUR, marker=PRE_MARKER, ls="none", label=pre_label),
                   Line2D([], [], color=POST_COLOUR, marker=POST_MARKER, ls="none", label=post_label),
                   Line2D([], [], color=NEUTRAL, ls=":", label=tx("Adoption")),
                   Line2D([], [], color=NEUTRAL, ls="--", label=tx("No effect"))]
        fig.legend(handles=handles, title=band_title(tx, self.uniform, self.level), loc="outside lower center",
                   ncols=len(handles))
        for col in range(min(ncols, k)):  # x label under the lowest panel of each column
            panels[col + ncols * ((k - 1 - col) // ncols)].set_xlabel(tx("period"))
        fig.supylabel(tx("ATT(g, t) (outcome units)"), fontsize=10)
        fig.suptitle(tx("Group-time average treatment effects"), fontweight="bold")
        for pa in panels[:k]:
            ticks_inside(pa)
        return panels[0]


# ----------------------------------------------------------------------------------------------
# staggered_did
# ----------------------------------------------------------------------------------------------
def _check_did_options(fn, control, method, base_period, anticipation, n_boot, level) -> None:
    if control not in ("never", "notyet"):
        raise ScaleupDataError(f"{fn}: `control` must be 'never' or 'notyet', got {control!r}.")
    if method not in ("dr", "ipw", "reg"):
        raise ScaleupDataError(f"{fn}: `method` must be 'dr', 'ipw' or 'reg', got {method!r}.")
    if base_period not in ("varying", "universal"):
        raise ScaleupDataError(f"{fn}: `base_period` must be 'varying' or 'universal', got {base_period!r}.")
    if int(anticipation) != anticipation or anticipation < 0:
        raise ScaleupDataError(f"{fn}: `anticipation` must be a non-negative integer, got {anticipation!r}.")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ScaleupDataError(f"{fn}: `n_boot` must be a non-negative integer, got {n_boot!r}.")
    check_level(level, fn)


def _did_sample(P: _Panel, control, anticipation, covariates, fn):
    """Units and periods that can be compared (did's rules; warnings name what is dropped): returns
    the kept units' mask, the periods, outcomes, cohorts, the treated cohorts and the covariates."""
    tlist, Y, g = P.tlist, P.Y, P.g
    keep_units = np.ones(g.size, bool)
    early = (g > 0) & (g <= tlist[0] + anticipation)
    if early.any():
        warnings.warn(
            f"{fn}: dropped {int(early.sum())} unit(s) treated in the first period or within the "
            f"anticipation window (first units: {first_values(P.ids[early])}); they have no pre-treatment period.",
            RowsOmittedWarning,
            stacklevel=3,
        )
        keep_units &= ~early
    glist = np.unique(g[keep_units & (g > 0)])
    if glist.size == 0:
        raise ScaleupDataError(f"{fn}: no unit is treated after the first period; nothing to estimate.")
    has_never = np.any(g[keep_units] == 0)
    if not has_never:
        if control == "never":
            raise ScaleupDataError(
                f"{fn}: no never-treated units (cohort 0/NaN) to serve as comparison; use control='notyet' "
                "(not-yet-treated units as comparison)."
            )
        gmax = glist.max()
        cut = tlist < gmax - anticipation
        warnings.warn(
            f"{fn}: no never-treated units; dropped periods >= {gmax - anticipation:g} "
            f"({int((~cut).sum())} period(s)), cohort {gmax:g} serves only as not-yet-treated comparison.",
            RowsOmittedWarning,
            stacklevel=3,
        )
        tlist, Y = tlist[cut], Y[:, cut]
        glist = glist[glist < gmax]
        if glist.size == 0 or tlist.size < 2:
            raise ScaleupDataError(f"{fn}: too few periods left to compare cohorts; add never-treated units.")
    Y, g = Y[keep_units], g[keep_units]
    X = None
    if covariates:
        X = np.column_stack([np.ones(g.size)] + [P.extra[c][keep_units] for c in covariates])
        if np.linalg.matrix_rank(X) < X.shape[1]:
            raise ScaleupDataError(
                f"{fn}: the covariates {covariates} are collinear (with each other or with the intercept: "
                "a constant column?); drop redundant columns."
            )
    return keep_units, tlist, Y, g, glist, X


def _did_cells(glist, tlist, base_period, anticipation):
    """The (cohort, period) cells: cohort, period index, base-period index, the period up to which a
    not-yet-treated unit compares, and whether the cell is the reference (base = period)."""
    T = tlist.size
    tfac = 0 if base_period == "universal" else 1
    cg, ct, cb, cthr, cref = [], [], [], [], []
    for gg in glist:
        pre_g = np.flatnonzero(tlist + anticipation < gg)[-1]
        for j in range(tfac, T):
            if base_period == "universal":
                b = pre_g
                thr = tlist[max(j, pre_g)]
            else:
                b = j - 1 if tlist[j] < gg else pre_g
                thr = tlist[j]
            cg.append(gg)
            ct.append(j)
            cb.append(b)
            cthr.append(thr)
            cref.append(b == j)
    return map(np.asarray, (cg, ct, cb, cthr, cref))


def _cell_groups(g, cg, ct, cthr, cref, tlist, control, anticipation, fn) -> tuple[np.ndarray, np.ndarray]:
    """Units x cells masks of the treated cohort (D) and of the comparison units (C: never treated, or
    also not yet treated by the cell's period); every cell needs comparison units."""
    n, K = g.size, cg.size
    D = g[:, None] == cg[None, :]
    if control == "never":
        C = np.broadcast_to((g == 0)[:, None], (n, K))
    else:
        C = (g == 0)[:, None] | ((g[:, None] > cthr[None, :] + anticipation) & ~D)
    empty = np.flatnonzero((C.sum(axis=0) == 0) & ~cref)
    if empty.size:
        cells = [(float(cg[k]), int(tlist[ct[k]])) for k in empty]
        raise ScaleupDataError(
            f"{fn}: no comparison units for {empty.size} (cohort, period) cell(s) (first: {first_values(cells)}) "
            f"with control={control!r}; add never-treated units or use control='notyet'."
        )
    return D, C


def _att_cells(dY, D, C, nG, nC, cref, X, method, fn, cg, tlist, ct):
    """ATT(g,t) of every cell and its influence function (n x cells): difference in mean changes
    without covariates, did's 2x2 doubly robust / IPW / regression estimator with them."""
    n, K = D.shape
    att = np.zeros(K)
    IF = np.zeros((n, K))
    skip = cref.copy()
    if method in ("dr", "ipw"):
        # did: overlap check with the preliminary logit; without covariates p = n_G / (n_G + n_C)
        if X is None:
            bad = (nG / (nG + nC) >= 0.999) & ~cref
            for k in np.flatnonzero(bad):
                warnings.warn(
                    f"{fn}: overlap violated for cohort {cg[k]:g} in period {tlist[ct[k]]}; ATT(g,t) set to NA.",
                    ScaleupWarning,
                    stacklevel=3,
                )
            att[bad] = np.nan
            skip |= bad
    if X is None:
        comp = ~skip
        Dm, Cm = D[:, comp], C[:, comp]
        dYc = dY[:, comp]
        muG = np.where(Dm, dYc, 0.0).sum(axis=0) / nG[comp]
        muC = np.where(Cm, dYc, 0.0).sum(axis=0) / nC[comp]
        att[comp] = muG - muC
        IF[:, comp] = n * (
            np.where(Dm, dYc - muG, 0.0) / nG[comp] - np.where(Cm, dYc - muC, 0.0) / nC[comp]
        )
    else:
        for k in np.flatnonzero(~skip):
            idx = D[:, k] | C[:, k]
            try:
                a, f, why = _drdid_2x2(dY[idx, k], D[idx, k].astype(float), X[idx], method)
            except np.linalg.LinAlgError:
                a, f, why = np.nan, None, (
                    "singular covariate matrix (covariates collinear in this comparison, or perfectly "
                    "separating treated from comparison units: try fewer covariates or method='reg')"
                )
            if why is not None:
                warnings.warn(
                    f"{fn}: {why} for cohort {cg[k]:g} in period {tlist[ct[k]]}; ATT(g,t) set to NA.",
                    ScaleupWarning,
                    stacklevel=3,
                )
                att[k] = np.nan
                continue
            att[k] = a
            IF[idx, k] = (n / idx.sum()) * f
    att[cref] = 0.0
    IF[:, ~np.isfinite(att)] = 0.0
    return att, IF


def _att_gt_table(cg, att_t, att, se, crit) -> pd.DataFrame:
    """One row per (cohort, period) cell: ATT(g,t), SE and the (simultaneous) confidence band."""
    table = pd.DataFrame({
        "cohort": cg.astype(np.int64),
        "time": att_t.astype(np.int64),
        "event_time": (att_t - cg).astype(np.int64),
        "att": att,
        "se": se,
    })
    table["band_low"] = table["att"] - crit * table["se"]
    table["band_high"] = table["att"] + crit * table["se"]
    return table


def _did_inference(IF, cluster_codes, n_boot, seed, level, fn):
    """Standard errors and the (simultaneous, with the multiplier bootstrap) critical value."""
    n = IF.shape[0]
    if cluster_codes is not None:
        codes, uniq = pd.factorize(cluster_codes, sort=True)
        n_cl = len(uniq)
        cm = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_cl, n))
    else:
        n_cl, cm = n, None
    weights = None
    if n_boot > 0:
        # the draws (int64, then float) and their products with the influence functions
        check_draw_memory(fn, "n_boot", int(n_boot), 8.0 * (2 * n_cl + IF.shape[1]),
                          "The default n_boot=999 gives bands as in R's did; 9,999 is plenty for a publication.")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        weights = (1.0 - 2.0 * rng.integers(0, 2, size=(int(n_boot), n_cl))).astype(float)
    infr = _Inference(n=n, cluster_matrix=cm, n_clusters=n_cl, weights=weights, level=level)
    se_an = infr.analytic_se(IF)
    zero = ~(se_an > _EPS_SE)
    if weights is None:
        se = np.where(zero, np.nan, se_an)
        crit = stats.norm.ppf(0.5 + level / 2)
    else:
        se_b, crit = infr.se_and_crit(IF)
        se = np.where(zero, np.nan, se_b)
        if not np.isfinite(crit):
            crit = stats.norm.ppf(0.5 + level / 2)
        elif crit >= 7:
            warnings.warn(
                f"{fn}: the simultaneous critical value ({crit:.2f}) is too large to be reliable; "
                "cohorts are probably very small.",
                ScaleupWarning,
                stacklevel=3,
            )
    return se, crit, infr


@checked_inputs
def staggered_did(
    data,
    outcome,
    unit,
    time,
    cohort=None,
    *,
    treatment=None,
    control="never",
    covariates=None,
    method="dr",
    anticipation=0,
    base_period="varying",
    n_boot=999,
    level=0.95,
    seed=None,
    cluster=None,
) -> StaggeredDiDResult:
    """Group-time average treatment effects ATT(g, t) for staggered adoption (Callaway & Sant'Anna).

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long-format panel: one row per unit and period.
    outcome, unit, time : str
        Columns of the outcome, the unit (site) identifier and the integer period.
    cohort : str, optional
        Column with the unit's first treated period (``gname`` of R's ``did``); ``0`` or missing
        means never treated within the panel. Must be constant within a unit. With the package's
        tables, merge ``sites.adoption_period`` onto the outcomes and pass it here (the
        ``sites.cohort`` column is the rollout *wave* number, not a period). Units treated in the
        first period (or within ``anticipation`` of it) have no pre-period and are dropped with a
        :class:`RowsOmittedWarning`, as in ``did``.
    treatment : str, optional
        Instead of ``cohort``: a 0/1 column of treatment status per unit and period; the cohort is
        its first period at 1. Treatment must be absorbing (no switch back to 0).
    control : {"never", "notyet"}
        Comparison units: never treated, or never treated plus not yet treated (``did``'s
        ``"nevertreated"`` / ``"notyettreated"``). With ``"notyet"`` and no never-treated units,
        periods from the last cohort's adoption on are dropped and that cohort only serves as a
        comparison (as ``did``).
    covariates : list of str, optional
        Time-invariant numeric unit covariates for conditional parallel trends (an intercept is
        added); dummy-code categorical ones.
    method : {"dr", "ipw", "reg"}
        Doubly robust (``DRDID::drdid_panel``), normalised IPW (``std_ipw_did_panel``) or outcome
        regression (``reg_did_panel``). Without covariates the three coincide.
    anticipation : int
        Number of periods before adoption in which units may already react.
    base_period : {"varying", "universal"}
        Pre-treatment ATT(g, t) compare t with t - 1 (``"varying"``) or every ATT(g, t) with the
        last period before anticipation, g - anticipation - 1 (``"universal"``; that cell is 0).
    n_boot : int
        Rademacher multiplier-bootstrap draws (``did``'s ``biters``); ``0`` gives analytic
        standard errors and pointwise bands.
    level : float, default 0.95
        Confidence level of the (uniform) bands.
    seed : int or numpy.random.Generator, optional
        Seed of the bootstrap draws (the same draws serve :meth:`StaggeredDiDResult.aggregate`).
    cluster : str, optional
        A time-invariant column to cluster on beyond the unit (e.g. the health region; ``did``'s
        ``clustervars``); the bootstrap then draws one weight per cluster on cluster sums of the
        influence function.

    Returns
    -------
    StaggeredDiDResult
        ``att_gt`` table, influence functions, :meth:`~StaggeredDiDResult.aggregate`,
        :meth:`~StaggeredDiDResult.plot_event_study`, :meth:`~StaggeredDiDResult.plot_att_gt`.

    Raises
    ------
    ScaleupDataError
        Missing columns, duplicate (unit, time) rows, unbalanced panel, treatment reversal, a
        cohort after the last period, no comparison units for a cohort and period.

    Notes
    -----
    For cohort g and period t with base period b (t - 1 before adoption with a varying base,
    else g - anticipation - 1), ATT(g, t) is the 2x2 DiD of the change Y_t - Y_b between cohort g
    and the comparison units C (never treated; or also those with cohort > max(t, b) +
    anticipation). Without covariates,

    .. math:: \\widehat{ATT}(g,t) = \\bar{\\Delta Y}_{G=g} - \\bar{\\Delta Y}_{C},

    with influence function ``psi_i = n [D_i (dY_i - mean_G)/n_G - C_i (dY_i - mean_C)/n_C]``
    (did's scaling: Var = sum(psi^2)/n^2). With covariates, each cell uses the Sant'Anna-Zhao
    (2020) estimators of ``DRDID`` (logit propensity score with did's trimming at 0.995, OLS
    outcome model on the comparison units). Standard errors: ``did::mboot`` -- Rademacher
    multiplier bootstrap of the (cluster-summed) influence functions, IQR-based SE
    ``(q75 - q25)/(z_.75 - z_.25)`` and the sup-t critical value for simultaneous bands.
    All cells are computed with array operations and the bootstrap is one matrix product.

    References
    ----------
    Callaway, B. & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
    periods. Journal of Econometrics, 225(2), 200-230.
    Sant'Anna, P. H. C. & Zhao, J. (2020). Doubly robust difference-in-differences estimators.
    Journal of Econometrics, 219(1), 101-122.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(1)
    >>> site = np.repeat(np.arange(90), 5)
    >>> period = np.tile(np.arange(1, 6), 90)
    >>> wave = np.repeat(np.r_[np.zeros(30), np.full(30, 3), np.full(30, 4)], 5)
    >>> y = period + rng.normal(size=450) + 2.0 * ((wave > 0) & (period >= wave))
    >>> df = pd.DataFrame({"site": site, "period": period, "wave": wave, "y": y})
    >>> res = sa.staggered_did(df, "y", "site", "period", "wave", seed=1, n_boot=199)
    >>> res.att_gt[["cohort", "time", "att"]].round(2).head(3)
       cohort  time   att
    0      3     2  0.10
    1      3     3  2.08
    2      3     4  1.72
    >>> es = res.aggregate("dynamic")
    >>> round(es.overall_att, 2)
    1.77
    """
    fn = "staggered_did"
    _check_did_options(fn, control, method, base_period, anticipation, n_boot, level)
    covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
    if cluster is not None and cluster == unit:
        cluster = None  # did drops idname from clustervars: unit clustering is the default
    inv = list(dict.fromkeys([*covariates, *([cluster] if cluster is not None else [])]))
    P = _prepare_panel(data, outcome, unit, time, cohort, treatment, fn=fn, invariant=inv)
    keep_units, tlist, Y, g, glist, X = _did_sample(P, control, anticipation, covariates, fn)
    n = Y.shape[0]

    # ---- the cells (g, t), their base periods and comparison units --------------------------------
    cg, ct, cb, cthr, cref = _did_cells(glist, tlist, base_period, anticipation)
    D, C = _cell_groups(g, cg, ct, cthr, cref, tlist, control, anticipation, fn)
    att, IF = _att_cells(Y[:, ct] - Y[:, cb], D, C, D.sum(axis=0), C.sum(axis=0), cref, X, method, fn, cg, tlist, ct)

    # ---- inference and the table ------------------------------------------------------------------
    cluster_codes = P.extra[cluster][keep_units] if cluster is not None else None
    se, crit, infr = _did_inference(IF, cluster_codes, n_boot, seed, level, fn)
    na_se = np.isnan(se) & np.isfinite(att)
    if na_se.any():
        cells = [(int(a), int(b)) for a, b in zip(cg[na_se], tlist[ct][na_se], strict=True)]
        constant = bool(np.ptp(Y) == 0)
        warnings.warn(
            f"{fn}: the standard error is not estimable (reported as missing, as R's did) for {int(na_se.sum())} "
            f"of {na_se.size} ATT(g,t) cell(s) (first (cohort, time): {first_values(cells)}): their influence "
            "function is zero, i.e. every unit of the cohort and of its comparison group changes by the same "
            "amount" + (f"; column {outcome!r} (argument 'outcome') is constant." if constant else ".")
            + " Their bands are missing too; check the outcome.",
            ScaleupWarning, stacklevel=2,
        )
    return StaggeredDiDResult(
        att_gt=_att_gt_table(cg, tlist[ct], att, se, crit), crit_val=float(crit), n_units=n, control=control, method=method,
        base_period=base_period, anticipation=int(anticipation), level=level, n_boot=int(n_boot),
        influence=IF, unit_cohort=g, cohorts=glist, periods=tlist, _inference=infr,
    )


# ----------------------------------------------------------------------------------------------
# TWFE
# ----------------------------------------------------------------------------------------------
def _twoway_demean(A):
    """Two-way within transformation of an (n, T, ...) array (balanced panel)."""
    return A - A.mean(axis=1, keepdims=True) - A.mean(axis=0, keepdims=True) + A.mean(axis=(0, 1), keepdims=True)


@dataclass(frozen=True, eq=False, repr=False)
class TWFEResult(Displayed):
    """Two-way fixed-effects DiD regression (unit and period fixed effects).

    Attributes
    ----------
    coef : pandas.DataFrame
        ``term`` (``"treated"``, or ``"e=<k>"`` for event times), ``event_time``, ``estimate``,
        ``se`` (cluster-robust), ``statistic``, ``pvalue`` and the ``ci_low``/``ci_high`` interval.
    att : float
        Static TWFE coefficient (NaN for an event-study fit).
    se : float
    n_obs, n_clusters : int
    event_study : bool
    reference_event_times : tuple
        Event times left out (the reference, -1).
    """

    coef: pd.DataFrame
    att: float
    se: float
    n_obs: int
    n_clusters: int
    event_study: bool
    reference_event_times: tuple
    level: float

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coef.copy()

    def _repr_fields(self) -> dict:
        if self.event_study:
            return {"event_study": True, "n_terms": len(self.coef), "n_obs": self.n_obs,
                    "n_clusters": self.n_clusters, "reference_event_times": list(self.reference_event_times)}
        return {"att": self.att, "se": self.se, "n_obs": self.n_obs, "n_clusters": self.n_clusters}

    def _summary(self, tx) -> str:
        """Coefficient table with the fit's description."""
        if self.event_study:
            head = tx("Two-way fixed-effects DiD (event study); {n} observations, cluster-robust SEs ({k} clusters)",
                      n=tx.int(self.n_obs), k=tx.int(self.n_clusters))
        else:
            head = tx("Two-way fixed-effects DiD (static); {n} observations, cluster-robust SEs ({k} clusters)",
                      n=tx.int(self.n_obs), k=tx.int(self.n_clusters))
        rows = []
        for r in self.coef.itertuples(index=False):
            term = tx("treated") if r.term == "treated" else f"e = {int(r.event_time)}"
            rows.append([term, tx.num(r.estimate, 4), tx.num(r.se, 4), tx.num(r.statistic, 2), tx.pvalue(r.pvalue),
                         tx.num(r.ci_low, 4), tx.num(r.ci_high, 4)])
        lines = [head] + text_table([tx("term"), tx("estimate"), tx("SE"), "z", "p", tx("lower bound"),
                                     tx("upper bound")], rows, left=()).split("\n")
        if self.event_study:
            lines.append("  " + tx("Reference event time(s), set to 0: {e}",
                                   e=", ".join(str(e) for e in self.reference_event_times)))
        return "\n".join(lines)

    @styled
    def plot_event_study(self, *, ax=None):
        """Event-study TWFE coefficients with pointwise intervals (needs ``event_study=True``): event
        times before adoption and after adoption in two colours, the reference period at 0. Returns the
        Axes."""
        if not self.event_study:
            raise ScaleupDataError("plot_event_study: fit twfe_did(..., event_study=True) first.")
        tx = Text()
        c = self.coef
        e = c["event_time"].to_numpy()
        return _errorbar_plot(ax, e, c["estimate"], c["ci_low"], c["ci_high"], e < 0, tx=tx,
                              xlabel=tx("event time (periods since adoption)"),
                              ylabel=tx("coefficient (outcome units)"),
                              title=tx("Two-way fixed-effects event study"),
                              bars=band_title(tx, False, self.level), reference=self.reference_event_times)


@checked_inputs
def twfe_did(data, outcome, unit, time, cohort=None, *, treatment=None, event_study=False, cluster=None,
             level=0.95) -> TWFEResult:
    """Two-way fixed-effects difference-in-differences regression.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long-format panel.
    outcome, unit, time : str
        Outcome, unit identifier and integer period columns.
    cohort : str, optional
        First treated period (0/NaN = never treated); or give ``treatment`` (0/1, absorbing).
    treatment : str, optional
        0/1 treatment column, instead of ``cohort``.
    event_study : bool
        False: ``y_it = a_i + l_t + beta D_it + e_it``. True: one dummy per event time
        ``e = t - g`` of treated units, leaving out e = -1 (and, without never-treated units,
        also the earliest event time, which is otherwise collinear with the fixed effects).
    cluster : str, optional
        Column to cluster on (time-invariant); default the unit.
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    TWFEResult

    Notes
    -----
    Estimated by the two-way within transformation (exact for a balanced panel, Frisch-Waugh-Lovell),
    with the cluster-robust sandwich of statsmodels ``OLS(...).fit(cov_type="cluster")``:
    small-sample factor G/(G-1) (N-1)/(N-K), K counting the unit and period dummies, and
    normal-based p-values and intervals. With heterogeneous effects under staggered adoption the
    static coefficient is a weighted average with possibly negative weights; see
    :func:`bacon_decomposition` and :func:`staggered_did`.

    References
    ----------
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing.
    Journal of Econometrics, 225(2), 254-277.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(2)
    >>> site = np.repeat(np.arange(40), 6)
    >>> period = np.tile(np.arange(1, 7), 40)
    >>> wave = np.repeat(np.r_[np.zeros(20), np.full(10, 3), np.full(10, 5)], 6)
    >>> y = rng.normal(size=240) + 1.5 * ((wave > 0) & (period >= wave))
    >>> df = pd.DataFrame({"site": site, "period": period, "wave": wave, "y": y})
    >>> fit = sa.twfe_did(df, "y", "site", "period", "wave")
    >>> round(fit.att, 2), round(fit.se, 2)
    (1.52, 0.28)
    """
    fn = "twfe_did"
    check_level(level, fn)
    if cluster is not None and cluster == unit:
        cluster = None
    P = _prepare_panel(data, outcome, unit, time, cohort, treatment, fn=fn,
                       invariant=[cluster] if cluster is not None else [])
    tlist, Y, g = P.tlist, P.Y, P.g
    n, T = Y.shape
    treated = g > 0
    Dm = (treated[:, None] & (tlist[None, :] >= g[:, None])).astype(float)
    if not event_study:
        if np.ptp(_twoway_demean(Dm)) == 0:
            raise ScaleupDataError(f"{fn}: the treatment does not vary beyond unit and period effects; nothing to estimate.")
        Xs = Dm[:, :, None]
        names, etimes, refs = ["treated"], [np.nan], ()
    else:
        E = np.where(treated[:, None], tlist[None, :] - g[:, None], np.nan)
        ev = np.unique(E[np.isfinite(E)])
        refs = [-1.0]
        if not np.any(~treated):
            refs.append(ev.min())
        ev = np.array([e for e in ev if e not in refs])
        if ev.size == 0:
            raise ScaleupDataError(f"{fn}: no event time besides the reference period; nothing to estimate.")
        Xs = np.stack([(E == e).astype(float) for e in ev], axis=2)
        names = [f"e={int(e)}" for e in ev]
        etimes, refs = list(ev.astype(int)), tuple(int(r) for r in refs)
    k = Xs.shape[2]
    Xt = _twoway_demean(Xs).reshape(n * T, k)
    yt = _twoway_demean(Y).reshape(n * T)
    XtX = Xt.T @ Xt
    if np.linalg.matrix_rank(XtX) < k:
        raise ScaleupDataError(f"{fn}: the event-time dummies are collinear with the fixed effects; "
                               "check that cohorts differ and the panel has enough periods.")
    bread = np.linalg.inv(XtX)
    beta = bread @ (Xt.T @ yt)
    resid = yt - Xt @ beta
    if cluster is None:
        codes = np.repeat(np.arange(n), T)
    else:
        codes = np.repeat(pd.factorize(P.extra[cluster], sort=True)[0], T)
    n_cl = codes.max() + 1
    scores = np.zeros((n_cl, k))
    np.add.at(scores, codes, Xt * resid[:, None])
    N = n * T
    K = k + n + T - 1
    corr = n_cl / (n_cl - 1) * (N - 1) / (N - K)
    V = bread @ (scores.T @ scores) @ bread * corr
    se = np.sqrt(np.diag(V))
    z = stats.norm.ppf(0.5 + level / 2)
    zero = ~(se > 0)
    if zero.any():
        warnings.warn(
            f"{fn}: the cluster-robust standard error is 0 for {first_values(np.array(names)[zero])}: the residuals "
            "are all 0 (the outcome is fully explained by the unit and period effects, e.g. a constant "
            f"column {outcome!r}); the test statistic and p-value are missing.",
            ScaleupWarning, stacklevel=2,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(zero, np.nan, beta / np.where(zero, 1.0, se))
    coef = pd.DataFrame({
        "term": names, "event_time": etimes, "estimate": beta, "se": se, "statistic": stat,
        "pvalue": 2 * stats.norm.sf(np.abs(stat)), "ci_low": beta - z * se, "ci_high": beta + z * se,
    })
    return TWFEResult(
        coef=coef, att=float(beta[0]) if not event_study else np.nan,
        se=float(se[0]) if not event_study else np.nan, n_obs=N, n_clusters=int(n_cl),
        event_study=bool(event_study), reference_event_times=refs, level=level,
    )


# ----------------------------------------------------------------------------------------------
# Goodman-Bacon decomposition
# ----------------------------------------------------------------------------------------------
#: The 2x2 comparison types (``type`` column) and how they are shown (legend, summary), with their colour and marker.
_BACON_LABELS = {
    "treated vs never treated": (N_("Treated vs never treated"), PALETTE[0], "o"),
    "earlier vs later treated": (N_("Earlier vs later treated"), PALETTE[2], "^"),
    "later vs earlier treated": (N_("Later vs earlier treated"), PALETTE[3], "X"),
    "treated vs always treated": (N_("Treated vs always treated"), PALETTE[4], "s"),
}


@dataclass(frozen=True, eq=False, repr=False)
class BaconDecomposition(Displayed):
    """Goodman-Bacon (2021) decomposition of the static TWFE coefficient.

    Attributes
    ----------
    comparisons : pandas.DataFrame
        One row per 2x2 comparison: ``treated`` and ``control`` cohorts (0 = never treated,
        ``always`` cohorts are treated from the first period), ``type``, the periods used
        (``period_start``, ``period_end``), ``estimate`` (the 2x2 DiD) and ``weight``.
    twfe : float
        The static TWFE coefficient; equals ``sum(weight * estimate)``.
    """

    comparisons: pd.DataFrame
    twfe: float

    def to_frame(self) -> pd.DataFrame:
        """The table of 2x2 comparisons (a copy)."""
        return self.comparisons.copy()

    def by_type(self) -> pd.DataFrame:
        """Total weight and weighted-average estimate by comparison type."""
        c = self.comparisons
        out = c.groupby("type", sort=False).apply(
            lambda s: pd.Series({"weight": s["weight"].sum(),
                                 "estimate": np.sum(s["weight"] * s["estimate"]) / s["weight"].sum()}),
            include_groups=False,
        )
        return out.reset_index()

    def _repr_fields(self) -> dict:
        later = self.comparisons.loc[self.comparisons["type"] == "later vs earlier treated", "weight"].sum()
        return {"twfe": self.twfe, "n_comparisons": len(self.comparisons), "later_vs_earlier_weight": float(later)}

    def _summary(self, tx) -> str:
        """Weights and average estimates by comparison type."""
        rows = [[tx(_BACON_LABELS[r.type][0]), tx.num(r.weight, 4), tx.num(r.estimate, 4)]
                for r in self.by_type().itertuples(index=False)]
        lines = [tx("Goodman-Bacon decomposition of the TWFE coefficient {twfe}", twfe=tx.num(self.twfe, 4))]
        lines += text_table([tx("comparison"), tx("weight"), tx("estimate")], rows, left=()).split("\n")
        lines.append(tx("'Later vs earlier treated' comparisons use already-treated units as controls (biased "
                        "when effects change over time)."))
        return "\n".join(lines)

    @styled
    def plot(self, *, ax=None):
        """2x2 estimates against their weights, one colour and marker per comparison type (legend beside
        the axes), the TWFE coefficient as a dashed line. Returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (8.0, 4.2))
        for typ, sub in self.comparisons.groupby("type", sort=False):
            label, colour, marker = _BACON_LABELS[typ]
            ax.scatter(sub["weight"], sub["estimate"], marker=marker, color=colour, s=36, alpha=0.9,
                       label=tx(label))
        ax.axhline(self.twfe, color=NEUTRAL, ls="--", lw=1.0,
                   label=tx("TWFE estimate = {value}", value=tx.num(self.twfe, 3)))
        ax.set_xlabel(tx("weight in the TWFE estimate"))
        ax.set_ylabel(tx("2x2 DiD estimate (outcome units)"))
        ax.set_title(tx("Goodman-Bacon decomposition"))
        ax.legend(title=tx("Comparison"), **OUTSIDE)
        ticks_inside(ax)
        return ax


def _twfe_coef(Ysub, Dsub):
    yt, dt = _twoway_demean(Ysub), _twoway_demean(Dsub)
    return float(np.sum(yt * dt) / np.sum(dt * dt)), float(np.mean(dt * dt))


@checked_inputs
def bacon_decomposition(data, outcome, unit, time, cohort=None, *, treatment=None) -> BaconDecomposition:
    """Goodman-Bacon (2021) decomposition of the TWFE DiD estimate into 2x2 comparisons.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long-format panel.
    outcome, unit, time : str
        Outcome, unit identifier and integer period columns.
    cohort : str, optional
        First treated period (0/NaN = never treated; at or before the first period = always
        treated); or give ``treatment`` (0/1, absorbing).
    treatment : str, optional
        0/1 treatment column, instead of ``cohort``.

    Returns
    -------
    BaconDecomposition

    Notes
    -----
    With timing groups k (share of units n_k, share of periods treated Dbar_k), the static TWFE
    coefficient is ``sum_s w_s beta_s`` over the 2x2 DiDs (Goodman-Bacon 2021, Theorem 1):
    treated vs never treated (whole panel), earlier vs later treated (periods before the later
    cohort adopts), later vs earlier treated (periods from the earlier cohort's adoption on: the
    already-treated earlier cohort is the control) and, with always-treated units, treated vs
    always treated. Each weight is
    ``(unit share x period share of the 2x2 sample)^2 x Var(two-way demeaned D in it) / Var(two-way
    demeaned D in the panel)``, e.g. ``s_kU = (n_k + n_U)^2 n_kU (1 - n_kU) Dbar_k (1 - Dbar_k) / V^D``.
    Weights sum to one and the weighted sum equals the TWFE coefficient exactly.

    References
    ----------
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing.
    Journal of Econometrics, 225(2), 254-277.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> site = np.repeat(np.arange(30), 6)
    >>> period = np.tile(np.arange(1, 7), 30)
    >>> wave = np.repeat(np.r_[np.zeros(10), np.full(10, 3), np.full(10, 5)], 6)
    >>> exposure = np.where(wave > 0, np.maximum(period - wave + 1, 0), 0)
    >>> df = pd.DataFrame({"site": site, "period": period, "wave": wave, "y": 1.0 * exposure})
    >>> bd = sa.bacon_decomposition(df, "y", "site", "period", "wave")
    >>> round(float(bd.comparisons["weight"].sum()), 6)
    1.0
    >>> bool(np.isclose((bd.comparisons["weight"] * bd.comparisons["estimate"]).sum(), bd.twfe))
    True
    """
    fn = "bacon_decomposition"
    P = _prepare_panel(data, outcome, unit, time, cohort, treatment, fn=fn)
    tlist, Y, g = P.tlist, P.Y, P.g
    n, T = Y.shape
    Dm = ((g[:, None] > 0) & (tlist[None, :] >= g[:, None])).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):  # VD == 0 is refused just below
        beta, VD = _twfe_coef(Y, Dm)
    if VD == 0:
        raise ScaleupDataError(f"{fn}: the treatment does not vary beyond unit and period effects; nothing to decompose.")
    # timing groups: never (0), always (treated from first period), switchers by cohort
    always = (g > 0) & (g <= tlist[0])
    label = np.where(always, -1.0, g)  # -1 codes "always treated"
    groups = np.unique(label)
    switchers = [x for x in groups if x > 0]
    rows = []

    def add(tg, cg_, typ, tcols):
        units = (label == tg) | (label == cg_)
        Ysub = Y[np.ix_(units, tcols)]
        Dsub = Dm[np.ix_(units, tcols)]
        b, v = _twfe_coef(Ysub, Dsub)
        share = (units.sum() / n) * (tcols.sum() / T)
        rows.append({"treated": tg, "control": cg_, "type": typ,
                     "period_start": int(tlist[tcols][0]), "period_end": int(tlist[tcols][-1]),
                     "estimate": b, "weight": share**2 * v / VD})

    allT = np.ones(T, bool)
    for k in switchers:
        if 0.0 in groups:
            add(k, 0.0, "treated vs never treated", allT)
        if -1.0 in groups:
            add(k, -1.0, "treated vs always treated", allT)
        for l_ in switchers:
            if l_ <= k:
                continue
            add(k, l_, "earlier vs later treated", tlist < l_)
            add(l_, k, "later vs earlier treated", tlist >= k)
    comp = pd.DataFrame(rows)
    for c in ("treated", "control"):
        comp[c] = comp[c].map(lambda v: "always" if v == -1.0 else int(v)).astype(object)
    return BaconDecomposition(comparisons=comp, twfe=beta)
