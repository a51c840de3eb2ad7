r"""Did the effect fade once the scale-up support ended?

:func:`support_withdrawal_effects` compares the effect of the innovation while the sites still receive
external scale-up support (facilitation) with its effect once that support has been withdrawn, on a
unit x period panel of an outcome (e.g. a quality indicator per site-quarter). The effects of the
treated unit-periods are estimated with the imputation estimator of Borusyak, Jaravel & Spiess (2024),
which stays unbiased under staggered adoption and effects that change over time (where a two-way
fixed-effects regression with a "withdrawn" dummy would compare sites with already-treated ones).

References
----------
Borusyak, K., Jaravel, X., & Spiess, J. (2024). Revisiting event-study designs: robust and efficient
estimation. Review of Economic Studies, 91(6), 3253-3285.

Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical
Society B, 16(2), 175-185.

Wiltsey Stirman, S., Kimberly, J., Cook, N., Calloway, A., Castro, F., & Charns, M. (2012). The
sustainability of new programs and innovations: a review of the empirical literature and
recommendations for future research. Implementation Science, 7, 17.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from .._checks import (
    DrawClock,
    check_draw_count,
    check_draw_memory,
    check_level,
    check_magnitude,
    checked_inputs,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
)
from .._display import Displayed, num_cell, text_table
from .._style import NEUTRAL, OUTSIDE, PALETTE, new_axes, numeric_ticks, styled, ticks_inside
from ..errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..i18n import N_
from ..engines.ratio import fieller

__all__ = ["support_withdrawal_effects", "SupportWithdrawalResult"]

_FN = "support_withdrawal_effects"
#: Largest magnitude of an outcome, weight or fidelity value: sums of squares must stay finite.
_MAX_ABS = 1e100
#: Floats held at once by one block of bootstrap resamples (about 200 MB).
_BLOCK_FLOATS = 25_000_000
#: Event times during support and after it: two colours (Okabe-Ito orange and blue, as the event studies of
#: the rollout module) and two markers (grey-scale).
_DURING_STYLE, _AFTER_STYLE = (PALETTE[1], "s"), (PALETTE[0], "o")
_ADVICE = "999 resamples give 95% percentile intervals to about +/-0.01 of their coverage."

#: The rows of the effects table, in order (``fidelity_slope`` only with ``fidelity=``).
_QUANTITIES = ("effect_during", "effect_after", "difference", "sustainment_ratio", "level_change", "slope_change",
            "fidelity_slope")
_QUANTITY_WORDS = {
    "effect_during": N_("effect during support"),
    "effect_after": N_("effect after support"),
    "difference": N_("difference (after - during)"),
    "sustainment_ratio": N_("sustainment ratio (after / during)"),
    "level_change": N_("level change at the end of support"),
    "slope_change": N_("slope change per period after support"),
    "fidelity_slope": N_("effect per unit of fidelity kept (after support)"),
}


# ----------------------------------------------------------------------------------------------
# the panel
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Panel:
    units: np.ndarray  # (n,) unit labels, sorted
    periods: np.ndarray  # (T,) periods, sorted
    u: np.ndarray  # (N,) unit index of each cell
    t: np.ndarray  # (N,) period index of each cell
    pv: np.ndarray  # (N,) period value of each cell
    y: np.ndarray  # (N,) outcome
    w: np.ndarray  # (N,) weight
    untreated: np.ndarray  # (N,) bool
    after: np.ndarray  # (N,) bool: treated and period >= withdrawal
    event_time: np.ndarray  # (N,) period - withdrawal (NaN without withdrawal)
    fidelity: np.ndarray | None  # (N,) or None


def _int_periods(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (np.mod(values, 1) == 0)


def _fail(d: pd.DataFrame, col: str, arg: str, mask, what: str, fix: str) -> None:
    """Raise ``<fn>: table 'data', column '<col>' (argument '<arg>'): N row(s) (first: ...) <what>. <fix>``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        raise ScaleupDataError(f"{_FN}: table 'data', column {col!r} (argument {arg!r}): "
                               f"{rows_text(d, mask, label='first:')} {what}. {fix}")


def _unit_constant(d: pd.DataFrame, unit: str, col: str, arg: str, what: str) -> None:
    """Refuse a per-unit column (cohort, withdrawal) that changes within a unit, naming the rows."""
    v = d[col].astype(float)
    key = v.fillna(-np.inf)
    varying = key.groupby(d[unit], sort=False).transform("nunique").to_numpy() > 1
    if varying.any():
        units = pd.unique(d.loc[varying, unit])
        _fail(d, col, arg, varying, f"differ within their unit (units {first_values(units)})",
              f"It is the unit's {what}: one value, the same on every row of the unit.")


def _prepare(data, outcome, unit, period, cohort, withdrawal, fidelity, weight) -> _Panel:
    for arg, col in (("outcome", outcome), ("unit", unit), ("period", period), ("cohort", cohort),
                     ("withdrawal", withdrawal), ("fidelity", fidelity), ("weight", weight)):
        if col is not None and not isinstance(col, str):
            raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a column name (text), got {col!r}.")
    cols = [c for c in (unit, period, outcome, cohort, withdrawal, fidelity, weight) if c is not None]
    if len(set(cols)) != len(cols):
        raise ScaleupDataError(f"{_FN}: the column arguments must name different columns, got {cols}.")
    require_columns(data, "data", cols, label=f"{_FN}: table 'data'")
    d = data[cols].copy()
    label = f"{_FN}: table 'data'"
    _fail(d, unit, "unit", d[unit].isna(), "are missing", "Every row needs a unit identifier.")
    # periods: whole numbers
    p = numeric_column(d, period, label, arg="period")
    _fail(d, period, "period", ~_int_periods(p), "are not whole numbers",
          "Periods are integers (1, 2, ..., e.g. quarters numbered from the start of the study).")
    d[period] = p.astype(np.int64)
    dup = d.duplicated([unit, period], keep=False).to_numpy()
    if dup.any():
        pairs = d.loc[dup, [unit, period]].drop_duplicates().itertuples(index=False, name=None)
        raise ScaleupDataError(
            f"{_FN}: table 'data', columns {unit!r} and {period!r}: {rows_text(d, dup, label='first:')} share a (unit, "
            f"period) pair (pairs {first_values(list(pairs))}). Keep one row per unit and period (aggregate "
            "duplicates first).")
    # cohort and withdrawal: whole periods or missing, constant within a unit
    for arg, col in (("cohort", cohort), ("withdrawal", withdrawal)):
        v = numeric_column(d, col, label, arg=arg, missing=True, infinite=arg == "withdrawal")
        if arg == "withdrawal":  # +inf: support beyond the panel, as missing
            _fail(d, col, arg, v == -np.inf, "are minus infinity", "Give the first period without support, "
                  "or leave it empty (or +inf) when the support continues beyond the panel.")
            v[v == np.inf] = np.nan
        _fail(d, col, arg, ~np.isnan(v) & ~_int_periods(v), "are not whole periods",
              "Give the period as an integer, or leave it empty.")
        d[col] = v
    if (d[cohort] == 0).any() and (p <= 0).any():
        _fail(d, cohort, "cohort", d[cohort] == 0, "are 0 while the panel has periods <= 0",
              "0 means 'never adopts' only when periods start at 1; leave the cohort of never-adopting units "
              "empty instead.")
    d.loc[d[cohort] == 0, cohort] = np.nan  # 0 = never adopts (docs/glossary.md, R's did)
    _unit_constant(d, unit, cohort, "cohort", "first period delivering the innovation")
    _unit_constant(d, unit, withdrawal, "withdrawal", "first period without external support")
    g = d[cohort].to_numpy(float)
    wd = d[withdrawal].to_numpy(float)
    _fail(d, withdrawal, "withdrawal", ~np.isnan(wd) & np.isnan(g), "have a withdrawal period but no cohort",
          "Support can only be withdrawn from a unit that adopted: give its cohort (first period delivering the "
          "innovation), or leave the withdrawal empty.")
    with np.errstate(invalid="ignore"):
        early = ~np.isnan(wd) & (wd <= g)
    _fail(d, withdrawal, "withdrawal", early, "are not after the unit's cohort",
          f"The withdrawal is the first period WITHOUT support and must be later than {cohort!r} (the first "
          "period delivering the innovation with support).")
    # weights
    if weight is None:
        w = np.ones(len(d))
    else:
        w = numeric_column(d, weight, label, arg="weight")
        check_magnitude(w, d.index, f"{label}, column {weight!r} (argument 'weight')", max_abs=_MAX_ABS)
        _fail(d, weight, "weight", ~(w > 0), "are not positive",
              "Weights are positive numbers (e.g. the number of patients of the unit-period).")
    fid = None
    if fidelity is not None:
        fid = numeric_column(d, fidelity, label, arg="fidelity", missing=True)
        check_magnitude(fid, d.index, f"{label}, column {fidelity!r} (argument 'fidelity')", max_abs=_MAX_ABS)
    # outcome: numbers; missing values are dropped with a warning (the estimator needs no balanced panel)
    y = numeric_column(d, outcome, label, arg="outcome", missing=True)
    check_magnitude(y, d.index, f"{label}, column {outcome!r} (argument 'outcome')", max_abs=_MAX_ABS)
    gone = np.isnan(y)
    if gone.any():
        warnings.warn(
            f"{_FN}: table 'data', column {outcome!r} (argument 'outcome'): {rows_text(d, gone, label='first:')} "
            "have no outcome value and were left out (the imputation estimator does not need a balanced panel).",
            RowsOmittedWarning, stacklevel=3)
    keep = ~gone
    d, y, w, g, wd = d[keep], y[keep], w[keep], g[keep], wd[keep]
    fid = None if fid is None else fid[keep]
    if len(d) == 0:
        raise ScaleupDataError(f"{_FN}: table 'data', column {outcome!r}: no row has an outcome value.")
    ucode, units = pd.factorize(d[unit], sort=True)
    pv = d[period].to_numpy(np.int64).astype(float)
    tcode, periods = pd.factorize(pv, sort=True)
    with np.errstate(invalid="ignore"):
        untreated = np.isnan(g) | (pv < g)
        after = ~untreated & ~np.isnan(wd) & (pv >= wd)
    return _Panel(units=np.asarray(units), periods=np.asarray(periods, dtype=float), u=ucode, t=tcode, pv=pv,
                  y=y, w=w, untreated=untreated, after=after, event_time=pv - wd, fidelity=fid)


# ----------------------------------------------------------------------------------------------
# the imputation engine: unit and period fixed effects on the untreated cells, for many unit weights
# ----------------------------------------------------------------------------------------------
class _Imputer:
    r"""Least-squares fit of :math:`y = \alpha_i + \gamma_t` on the untreated cells, with each unit's
    cells weighted by :math:`c_i w_{it}` (``c`` = how often a unit is drawn in a bootstrap resample:
    drawing a unit twice is the same fit as doubling its weights), for many ``c`` at once.

    Profiling out :math:`\alpha_i = \sum_t c_i W_{it} (y_{it} - \gamma_t) / \sum_t c_i W_{it}` leaves
    the :math:`T \times T` system :math:`M \gamma = b` with
    :math:`M = \sum_i c_i (\mathrm{diag}(W_i) - W_i W_i^\top / r_i)`, :math:`r_i = \sum_t W_{it}` and
    :math:`b = \sum_i c_i (W_i \circ y_i - W_i\, W_i^\top y_i / r_i)`, linear in ``c``. :math:`M` is the
    weighted Laplacian of the graph of periods linked by a unit untreated in both; :math:`\gamma` is
    identified within each connected component up to a constant, fixed by adding
    :math:`\lambda \sum_c v_c v_c^\top` (:math:`v_c` the normalised indicator of component
    :math:`c`), which leaves :math:`M\gamma = b` exact since :math:`b \perp v_c`.
    """

    def __init__(self, P: _Panel):
        n, T = P.units.size, P.periods.size
        m0 = P.untreated
        W = np.zeros((n, T))
        Y = np.zeros((n, T))
        W[P.u[m0], P.t[m0]] = P.w[m0]
        Y[P.u[m0], P.t[m0]] = P.y[m0]
        self.W = W
        self.r = W.sum(axis=1)
        self.h1 = (W * Y).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.inv_r = np.where(self.r > 0, 1.0 / np.where(self.r > 0, self.r, 1.0), 0.0)
        self.hvec = W * Y - W * (self.h1 * self.inv_r)[:, None]
        # one untreated period of each unit (-1: none): a treated cell (i, t) is identified when t is in
        # the component of that period
        self.anchor = np.where(self.r > 0, np.argmax(W > 0, axis=1), -1)
        self.n, self.T = n, T

    def block_size(self, m: int) -> int:
        return max(1, int(_BLOCK_FLOATS // (self.n * self.T + 2 * self.T * self.T + 8 * m + 2 * self.n)))

    def fit(self, C: np.ndarray):
        """``gamma`` (B, T), ``alpha`` (B, n) and the component label of every period (B, T)."""
        T = self.T
        cw = C * self.inv_r  # (B, n)
        M = -np.matmul(self.W.T[None, :, :] * cw[:, None, :], self.W)  # (B, T, T)
        idx = np.arange(T)
        M[:, idx, idx] += C @ self.W
        b = C @ self.hvec
        # components of the periods linked by a unit untreated in both (off-diagonal entries of M);
        # the common case, every linked period linked to every other, needs no graph search
        adj = M != 0
        adj[:, idx, idx] = False
        linked = adj.any(axis=2)
        complete = (adj | ~linked[:, :, None] | ~linked[:, None, :] | np.eye(T, dtype=bool)).all(axis=(1, 2))
        labels = np.where(linked, -1, idx[None, :]).astype(np.int64)  # an unlinked period: its own component
        for k in np.flatnonzero(~complete):
            labels[k] = connected_components(adj[k], directed=False)[1]
        same = labels[:, :, None] == labels[:, None, :]
        proj = same / same.sum(axis=2, keepdims=True)
        diag = M[:, idx, idx]
        lam = np.where(diag > 0, diag, 0.0).sum(axis=1) / np.maximum((diag > 0).sum(axis=1), 1)
        lam = np.where(lam > 0, lam, 1.0)
        gamma = np.linalg.solve(M + lam[:, None, None] * proj, b[:, :, None])[:, :, 0]
        with np.errstate(invalid="ignore"):
            alpha = (self.h1[None, :] - gamma @ self.W.T) * np.where(self.r > 0, self.inv_r, np.nan)[None, :]
        return gamma, alpha, labels

    def identified(self, labels: np.ndarray, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(B, m): the imputed untreated outcome of cell (u, t) is identified (its unit has an untreated
        period in the component of t)."""
        a = self.anchor[u]
        ok = a >= 0
        out = np.zeros((labels.shape[0], u.size), dtype=bool)
        out[:, ok] = labels[:, a[ok]] == labels[:, t[ok]]
        return out


# ----------------------------------------------------------------------------------------------
# the quantities, computed for many resamples at once
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Design:
    """The treated cells that are analysed (imputable) and what each quantity uses of them."""

    u: np.ndarray
    t: np.ndarray
    y: np.ndarray
    w: np.ndarray
    after: np.ndarray  # (m,) bool
    seg: np.ndarray  # (m,) bool: cells of units with a withdrawal (segmented regression, event study)
    e_c: np.ndarray  # (m,) event time minus e0 (0 outside seg)
    e0: float  # weighted mean event time of the after cells (centring, for accuracy)
    G: sparse.csr_matrix  # (m, K) event-time indicator over seg cells
    k_values: np.ndarray  # (K,)
    with_slope: bool
    fid: np.ndarray | None  # (m,) bool: after cells with a fidelity value
    f_c: np.ndarray | None  # (m,) fidelity centred (0 elsewhere)
    F: sparse.csr_matrix | None  # (m, L) indicator of the distinct fidelity values


def _quantities(D: _Design, tau: np.ndarray, om: np.ndarray) -> tuple[dict, np.ndarray]:
    """Every quantity for each row of ``tau`` / ``om`` (B, m): the effect tau of each cell and its
    weight (unit multiplicity x weight). Returns ``{quantity: (B,)}`` and the event-study means (B, K);
    NaN where a quantity cannot be computed in that resample."""
    ot = om * tau
    dur = ~D.after
    with np.errstate(invalid="ignore", divide="ignore"):
        s_d, s_a = om[:, dur].sum(axis=1), om[:, D.after].sum(axis=1)
        during = np.where(s_d > 0, ot[:, dur].sum(axis=1) / s_d, np.nan)
        after = np.where(s_a > 0, ot[:, D.after].sum(axis=1) / s_a, np.nan)
        ratio = after / during
        ratio[~np.isfinite(ratio)] = np.nan
        out = {"effect_during": during, "effect_after": after, "difference": after - during,
               "sustainment_ratio": ratio}
        # event study
        den = (D.G.T @ om.T).T
        es = np.where(den > 0, (D.G.T @ ot.T).T / np.where(den > 0, den, 1.0), np.nan)
        # segmented regression tau ~ 1 + after + after * (t - withdrawal) over seg cells: the intercept is
        # the mean of the seg cells during support, the after cells get their own line in event time
        sd_ = D.seg & dur
        sa_ = D.seg & D.after
        w0 = om[:, sd_].sum(axis=1)
        b0 = np.where(w0 > 0, ot[:, sd_].sum(axis=1) / np.where(w0 > 0, w0, 1.0), np.nan)
        wa = om[:, sa_].sum(axis=1)
        ok = (w0 > 0) & (wa > 0)
        wa1 = np.where(wa > 0, wa, 1.0)
        mt = ot[:, sa_].sum(axis=1) / wa1
        if D.with_slope:
            e = D.e_c[sa_]
            me = om[:, sa_] @ e / wa1
            see = om[:, sa_] @ (e * e) / wa1 - me * me
            set_ = ot[:, sa_] @ e / wa1 - me * mt
            n_k = ((den > 0) & (D.k_values >= 0)[None, :]).sum(axis=1)  # after event times drawn
            ok_s = ok & (n_k >= 2)
            slope = np.where(ok_s, set_ / np.where(ok_s, see, 1.0), np.nan)
            level = np.where(ok_s, mt - slope * (me + D.e0) - b0, np.nan)
        else:  # one event time after the withdrawal: no slope, the level change is the difference of means
            slope = np.full(tau.shape[0], np.nan)
            level = np.where(ok, mt - b0, np.nan)
        out["level_change"], out["slope_change"] = level, slope
        if D.fid is not None:
            f = D.f_c[D.fid]
            of, otf = om[:, D.fid], ot[:, D.fid]
            sw = of.sum(axis=1)
            sw1 = np.where(sw > 0, sw, 1.0)
            mf = of @ f / sw1
            sff = of @ (f * f) / sw1 - mf * mf
            sft = otf @ f / sw1 - mf * (otf.sum(axis=1) / sw1)
            n_f = ((D.F.T @ om.T).T > 0).sum(axis=1)  # distinct fidelity values drawn
            ok_f = (sw > 0) & (n_f >= 2)
            out["fidelity_slope"] = np.where(ok_f, sft / np.where(ok_f, sff, 1.0), np.nan)
    return out, es


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class SupportWithdrawalResult(Displayed):
    r"""Result of :func:`support_withdrawal_effects`.

    Attributes
    ----------
    table : pandas.DataFrame
        The effects table (also :meth:`to_frame`), one row per ``quantity``: ``effect_during``,
        ``effect_after``, ``difference`` (after - during), ``sustainment_ratio`` (after / during),
        ``level_change`` and ``slope_change`` (per period) at the withdrawal and, with ``fidelity=``,
        ``fidelity_slope``; with ``estimate``, ``se`` (bootstrap standard deviation),
        ``ci_low``, ``ci_high`` (percentile bootstrap interval), ``n_cells`` (unit-periods used) and
        ``n_units``.
    event_study : pandas.DataFrame
        Mean effect by ``event_time`` (period - withdrawal; negative = still supported) over the units
        whose support was withdrawn: ``event_time``, ``phase`` (``"during"`` / ``"after"``), ``estimate``,
        ``se``, ``ci_low``, ``ci_high``, ``n_cells``, ``n_units`` and ``n_boot_failed`` (resamples in which
        the event time had no unit-period, or that failed as a whole, left out of its interval).
    effects : pandas.DataFrame
        The effect of every analysed treated unit-period: ``unit``, ``period``, ``phase``, ``event_time``
        (missing for units never withdrawn), ``weight`` and ``estimate`` (:math:`\hat\tau_{it} = y_{it} -
        \hat y_{it}(0)`).
    boot : pandas.DataFrame
        The bootstrap replicates of every quantity (one row per resample; a failed resample is a row of
        NaN).
    outcome : str
    fieller_type : str
        ``"bounded"``, ``"exclusive"`` (the set is :math:`(-\infty, r_1] \cup [r_2, \infty)`: the effect
        during support is not significantly different from 0), ``"unbounded"`` (the whole line) or
        ``"none"`` (no bootstrap).
    ratio_ci_low_fieller, ratio_ci_high_fieller : float
        Fieller interval of the ratio (infinite unless bounded).
    fieller_root1, fieller_root2 : float
        Roots of the Fieller quadratic (the ends of the two half-lines of an ``exclusive`` set).
    level : float
    n_boot, n_boot_failed : int
        Bootstrap resamples, and those in which a quantity of :attr:`table` could not be computed (left
        out of every interval of :attr:`table` and of the Fieller covariance).
    n_excluded : int
        Treated unit-periods whose untreated outcome cannot be imputed, left out (see Notes of
        :func:`support_withdrawal_effects`).
    """

    table: pd.DataFrame = field(repr=False)
    event_study: pd.DataFrame = field(repr=False)
    effects: pd.DataFrame = field(repr=False)
    boot: pd.DataFrame = field(repr=False)
    outcome: str
    fieller_type: str
    ratio_ci_low_fieller: float
    ratio_ci_high_fieller: float
    fieller_root1: float
    fieller_root2: float
    level: float
    n_boot: int
    n_boot_failed: int
    n_excluded: int

    def to_frame(self) -> pd.DataFrame:
        """The effects table (one row per quantity)."""
        return self.table.copy()

    def _value(self, quantity: str) -> float:
        row = self.table.loc[self.table["quantity"] == quantity, "estimate"]
        return float(row.iloc[0]) if len(row) else math.nan

    @property
    def effect_during(self) -> float:
        """Weighted mean effect over the unit-periods delivered with support."""
        return self._value("effect_during")

    @property
    def effect_after(self) -> float:
        """Weighted mean effect over the unit-periods after the support was withdrawn."""
        return self._value("effect_after")

    @property
    def difference(self) -> float:
        """``effect_after - effect_during``."""
        return self._value("difference")

    @property
    def ratio(self) -> float:
        """The sustainment ratio ``effect_after / effect_during`` (1 = sustained, 0 = gone)."""
        return self._value("sustainment_ratio")

    @property
    def level_change(self) -> float:
        """Change of the effect at the withdrawal (segmented regression)."""
        return self._value("level_change")

    @property
    def slope_change(self) -> float:
        """Change of the effect per period after the withdrawal (segmented regression)."""
        return self._value("slope_change")

    @property
    def fidelity_slope(self) -> float:
        """Effect gained per unit of fidelity kept after the withdrawal (NaN without ``fidelity=``)."""
        return self._value("fidelity_slope")

    def _repr_fields(self) -> dict:
        r = self.table.set_index("quantity")
        return {"effect_during": self.effect_during, "effect_after": self.effect_after, "ratio": self.ratio,
                "ratio_ci": (float(r.loc["sustainment_ratio", "ci_low"]), float(r.loc["sustainment_ratio", "ci_high"])),
                "fieller_type": self.fieller_type, "level": self.level, "n_boot": self.n_boot,
                "n_boot_failed": self.n_boot_failed, "n_excluded": self.n_excluded}

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        lines = [tx("Did the effect fade once the scale-up support ended? Imputation estimator "
                    "(Borusyak, Jaravel & Spiess 2024)."),
                 tx("Sustainment ratio: 1 = the effect is fully sustained after the support ends, 0 = it is gone.")]
        t = self.table
        d = tx.digits_for(*t["estimate"].to_numpy(float))
        rows = [[tx(_QUANTITY_WORDS[r.quantity]), num_cell(tx, r.estimate, d), num_cell(tx, r.se, d),
                 num_cell(tx, r.ci_low, d), num_cell(tx, r.ci_high, d), tx.int(r.n_cells), tx.int(r.n_units)]
                for r in t.itertuples(index=False)]
        lines += ["", text_table(["", tx("estimate"), tx("SE"), tx("lower bound"), tx("upper bound"),
                                  tx("unit-periods"), tx("units")], rows)]
        if self.n_boot > 0:
            lines.append(tx("Intervals: {level} percentile intervals of {n} bootstrap resamples of units "
                            "(controls included); SE = standard deviation of the resamples.",
                            level=level, n=tx.int(self.n_boot)))
            if self.n_boot_failed:
                lines.append(tx.n("{n} resample in which a quantity could not be computed was left out.",
                                  "{n} resamples in which a quantity could not be computed were left out.",
                                  self.n_boot_failed))
            if self.fieller_type == "bounded":
                fs = tx("{low} to {high}", low=tx.num(self.ratio_ci_low_fieller, d),
                        high=tx.num(self.ratio_ci_high_fieller, d))
            elif self.fieller_type == "exclusive":
                fs = (f"(-inf, {tx.num(self.fieller_root1, d)}] U [{tx.num(self.fieller_root2, d)}, +inf) "
                      + tx("(unbounded: the effect during support is not significantly different from 0)"))
            else:
                fs = tx("the whole real line (unbounded: the effects are too imprecise)")
            lines.append(tx("{level} CI of the ratio, Fieller (bootstrap covariance of the two effects): {interval}",
                            level=level, interval=fs))
        else:
            lines.append(tx("No bootstrap (n_boot = 0): no standard errors or intervals."))
        if self.n_excluded:
            lines.append(tx.n("{n} treated unit-period was left out: its untreated outcome cannot be imputed "
                              "(its unit has no untreated period, or its period no untreated unit).",
                              "{n} treated unit-periods were left out: their untreated outcome cannot be imputed "
                              "(their unit has no untreated period, or their period no untreated unit).",
                              self.n_excluded))
        es = self.event_study
        if len(es):
            lines += ["", tx("Mean effect by period since the end of support (event time; negative = still "
                             "supported):")]
            de = tx.digits_for(*es["estimate"].to_numpy(float))
            rows = [[str(int(r.event_time)), num_cell(tx, r.estimate, de), num_cell(tx, r.ci_low, de),
                     num_cell(tx, r.ci_high, de), tx.int(r.n_cells), tx.int(r.n_units)]
                    for r in es.itertuples(index=False)]
            lines.append(text_table([tx("event time"), tx("estimate"), tx("lower bound"), tx("upper bound"),
                                     tx("unit-periods"), tx("units")], rows, left=()))
        return "\n".join(lines)

    @styled
    def plot_event_study(self, *, title: str | None = None, xlabel: str | None = None,
                         ylabel: str | None = None, ax=None):
        """Mean effect by period since the end of support, with its pointwise intervals: periods still
        supported and periods after the withdrawal in two colours (and markers), the withdrawal marked by
        a vertical line, no effect by a horizontal one. Returns the matplotlib Axes."""
        from ..narrative import Text

        tx = Text()
        ax = new_axes(ax, (7.5, 4.2))
        es = self.event_study
        x = es["event_time"].to_numpy(float)
        est, lo, hi = (es[c].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
        pre = x < 0
        for mask, (colour, marker), label in ((pre, _DURING_STYLE, tx("During support")),
                                              (~pre, _AFTER_STYLE, tx("After support"))):
            if mask.any():
                has = mask & np.isfinite(lo) & np.isfinite(hi)
                if has.any():
                    ax.errorbar(x[has], est[has], yerr=[est[has] - lo[has], hi[has] - est[has]], fmt="none",
                                ecolor=colour, elinewidth=1.2, capsize=3)
                ax.plot(x[mask], est[mask], marker, color=colour, label=label)
        ax.axvline(-0.5, color=NEUTRAL, lw=1.0, ls=":", label=tx("End of support"))
        ax.axhline(0.0, color=NEUTRAL, lw=0.9, ls="--", label=tx("No effect"))
        numeric_ticks(ax.xaxis, tx, integer=True)
        ax.set_xlabel(tx("Periods since the end of support") if xlabel is None else xlabel)
        ax.set_ylabel(tx("Effect (outcome units)") if ylabel is None else ylabel)
        ax.set_title(tx("Effect during and after the scale-up support") if title is None else title)
        bars = tx("Bars: pointwise {level} interval", level=tx.pct(self.level)) if self.n_boot > 0 else None
        ax.legend(title=bars, **OUTSIDE)
        ticks_inside(ax)
        return ax


# ----------------------------------------------------------------------------------------------
# the function
# ----------------------------------------------------------------------------------------------
def _warn_excluded(P: _Panel, imp: _Imputer, cand: np.ndarray, ok: np.ndarray) -> None:
    bad = cand[~ok]
    if bad.size == 0:
        return
    no_unit = imp.r[P.u[bad]] == 0
    no_period = ~no_unit & (imp.W.sum(axis=0)[P.t[bad]] == 0)
    other = ~no_unit & ~no_period
    parts = []
    if no_unit.any():
        parts.append(f"{no_unit.sum()} belong to {np.unique(P.u[bad][no_unit]).size} unit(s) never observed untreated "
                     f"(units {first_values(P.units[np.unique(P.u[bad][no_unit])])}: adopted in or before their "
                     "first observed period, so their fixed effect cannot be estimated)")
    if no_period.any():
        parts.append(f"{no_period.sum()} in {np.unique(P.t[bad][no_period]).size} period(s) in which no unit is "
                     f"untreated (periods {first_values(P.periods[np.unique(P.t[bad][no_period])].astype(int))}: "
                     "every unit observed had adopted, so the period effect cannot be estimated)")
    if other.any():
        parts.append(f"{other.sum()} whose unit and period are not linked by untreated unit-periods (the untreated "
                     "cells fall into separate groups of units and periods)")
    warnings.warn(
        f"{_FN}: {bad.size} treated unit-period(s) of {np.unique(P.u[bad]).size} unit(s) are left out because "
        f"their untreated outcome cannot be imputed (Borusyak, Jaravel & Spiess 2024: the unit and the period "
        f"need untreated observations): {'; '.join(parts)}.",
        ScaleupWarning, stacklevel=3)


def _design(P: _Panel, cells: np.ndarray) -> _Design:
    after = P.after[cells]
    ev = P.event_time[cells]
    seg = np.isfinite(ev)
    k_values = np.unique(ev[seg]).astype(np.int64)
    kcode = np.searchsorted(k_values, ev[seg])
    m = cells.size
    rows = np.flatnonzero(seg)
    G = sparse.csr_matrix((np.ones(rows.size), (rows, kcode)), shape=(m, k_values.size))
    e_c = np.zeros(m)
    sa = seg & after
    e0 = float(np.average(ev[sa], weights=P.w[cells][sa])) if sa.any() else 0.0
    e_c[seg] = ev[seg] - e0
    with_slope = int((k_values >= 0).sum()) >= 2
    fid = f_c = F = None
    if P.fidelity is not None:
        fv = P.fidelity[cells]
        fid = after & np.isfinite(fv)
        f_c = np.zeros(m)
        if fid.any():
            f_c[fid] = fv[fid] - np.average(fv[fid], weights=P.w[cells][fid])
            vals, code = np.unique(fv[fid], return_inverse=True)
            rows = np.flatnonzero(fid)
            F = sparse.csr_matrix((np.ones(rows.size), (rows, code)), shape=(m, vals.size))
        else:
            F = sparse.csr_matrix((m, 0))
    return _Design(u=P.u[cells], t=P.t[cells], y=P.y[cells], w=P.w[cells], after=after, seg=seg, e_c=e_c,
                   G=G, e0=e0, k_values=k_values, with_slope=with_slope, fid=fid, f_c=f_c, F=F)


def _percentile(vals: np.ndarray, level: float) -> tuple[float, float, float]:
    """(se, low, high) of bootstrap values (finite ones; NaN with fewer than two)."""
    vals = vals[np.isfinite(vals)]
    if vals.size < 2:
        return math.nan, math.nan, math.nan
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(np.std(vals, ddof=1)), float(lo), float(hi)


def _bootstrap(imp: _Imputer, D: _Design, est: dict, names: list, n_boot: int, seed):
    """Cluster bootstrap of units: the quantities (n_boot, len(names)) and event-study means (n_boot, K) of
    every resample (NaN rows for the failed ones) and the failed flags."""
    n = imp.n
    boot = np.full((n_boot, len(names)), np.nan)
    boot_es = np.full((n_boot, D.k_values.size), np.nan)
    failed = np.zeros(n_boot, dtype=bool)
    if not n_boot:
        return boot, boot_es, failed
    check_draw_memory(_FN, "n_boot", n_boot, 8.0 * (n + len(names) + D.k_values.size), _ADVICE)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))  # units in sorted order: row order of data does not matter
    clock = DrawClock(_FN, "n_boot", n_boot, _ADVICE)
    need = [j for j, m in enumerate(names) if np.isfinite(est[m][0])]
    block = imp.block_size(D.u.size)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        B = stop - start
        # how often each unit is drawn: a unit drawn twice is the same fit as its weights doubled
        C = np.bincount((draws[start:stop] + n * np.arange(B)[:, None]).ravel(),
                        minlength=B * n).reshape(B, n).astype(float)
        g_b, a_b, lab_b = imp.fit(C)
        tau = D.y[None, :] - (a_b[:, D.u] + g_b[:, D.t])
        drawn = C[:, D.u] > 0
        bad = (drawn & ~imp.identified(lab_b, D.u, D.t)).any(axis=1)
        vals, es_b = _quantities(D, tau, C[:, D.u] * D.w[None, :])
        block_vals = np.column_stack([vals[m] for m in names])
        bad |= ~np.isfinite(block_vals[:, need]).all(axis=1)
        block_vals[bad] = np.nan
        es_b[bad] = np.nan
        boot[start:stop], boot_es[start:stop], failed[start:stop] = block_vals, es_b, bad
        clock.tick(stop)
    return boot, boot_es, failed


def _tables(D: _Design, est: dict, es_est: np.ndarray, names: list, boot, boot_es, level: float):
    """The effects table and the event-study table."""
    def counts(mask):
        return int(mask.sum()), int(np.unique(D.u[mask]).size)

    every = np.ones_like(D.after)
    used = {"effect_during": ~D.after, "effect_after": D.after, "difference": every, "sustainment_ratio": every,
            "level_change": D.seg, "slope_change": D.seg, "fidelity_slope": D.fid}
    rows = []
    for j, m in enumerate(names):
        se, lo, hi = _percentile(boot[:, j], level)
        no, nu = counts(used[m])
        rows.append({"quantity": m, "estimate": float(est[m][0]), "se": se, "ci_low": lo, "ci_high": hi,
                     "n_cells": no, "n_units": nu})
    es_rows = []
    for j, k in enumerate(D.k_values):
        se, lo, hi = _percentile(boot_es[:, j], level)
        no, nu = counts(D.G[:, [j]].toarray()[:, 0] > 0)
        es_rows.append({"event_time": int(k), "phase": "after" if k >= 0 else "during",
                        "estimate": float(es_est[0, j]), "se": se, "ci_low": lo, "ci_high": hi, "n_cells": no,
                        "n_units": nu, "n_boot_failed": int(boot_es.shape[0] - np.isfinite(boot_es[:, j]).sum())})
    cols = ["event_time", "phase", "estimate", "se", "ci_low", "ci_high", "n_cells", "n_units", "n_boot_failed"]
    return pd.DataFrame(rows), pd.DataFrame(es_rows, columns=cols)


@checked_inputs
def support_withdrawal_effects(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str = "site_id",
    period: str = "period",
    cohort: str = "adoption_period",
    withdrawal: str = "withdrawal_period",
    fidelity: str | None = None,
    weight: str | None = None,
    level: float = 0.95,
    n_boot: int = 999,
    seed=None,
) -> SupportWithdrawalResult:
    r"""Did the innovation's effect fade once the scale-up support (external facilitation) ended?

    Parameters
    ----------
    data : pandas.DataFrame
        A unit x period panel, one row per unit and period (it need not be balanced), e.g. a quality
        indicator per site-quarter.
    outcome : str
        Column of the outcome. Rows without an outcome value are left out with a
        :class:`~scaleup_analysis.errors.RowsOmittedWarning` (the estimator needs no balanced panel);
        text that is not a number is an error.
    unit, period : str
        Columns of the unit (site) and of the period (whole numbers).
    cohort : str
        Column of the unit's first period delivering the innovation (constant within the unit); missing
        or 0 = never adopts (a control).
    withdrawal : str
        Column of the unit's first period WITHOUT external support (constant within the unit); missing
        (or +inf) = the support is not withdrawn within the panel. It must be later than the cohort, and is only
        allowed for units with a cohort. A treated unit-period (period >= cohort) is *during support*
        before the withdrawal, *after support* from it on.
    fidelity : str, optional
        Column of the fidelity index kept in the unit-periods after support (e.g. ``fidelity_index``);
        only its values in the after-support unit-periods are used, missing ones are left out of the
        fidelity slope alone.
    weight : str, optional
        Column of positive weights of the unit-periods (e.g. patients): the weights of the fixed-effects
        fit and of every mean and regression below. Default: equal weights.
    level : float, default 0.95
        Coverage of the intervals.
    n_boot : int, default 999
        Bootstrap resamples of units (0: point estimates only).
    seed : int or numpy Generator, optional
        Seed of :func:`numpy.random.default_rng` for the bootstrap: the same seed gives the same
        intervals (units are taken in sorted order, so the row order of ``data`` does not matter).

    Returns
    -------
    SupportWithdrawalResult
        ``to_frame()``: the effects table; ``event_study``; ``effects`` (every unit-period);
        ``plot_event_study()``.

    Raises
    ------
    ScaleupDataError
        Missing columns, duplicated (unit, period) rows, non-numeric values, periods that are not whole
        numbers, cohort or withdrawal changing within a unit, a withdrawal without a cohort or not after
        it, non-positive weights (each naming the rows); and when the comparison cannot be made: no
        unit-period after support (no support withdrawn within the panel) or none during support, or
        none whose untreated outcome can be imputed.

    Notes
    -----
    **Effects of the treated unit-periods** (imputation estimator, Borusyak, Jaravel & Spiess 2024).
    The model of the untreated outcome, :math:`y_{it}(0) = \alpha_i + \gamma_t + \varepsilon_{it}`, is
    fitted by weighted least squares on the untreated unit-periods only (never-adopters, and adopters
    before their cohort); for every treated unit-period :math:`\hat\tau_{it} = y_{it} - \hat\alpha_i -
    \hat\gamma_t`. A treated unit-period is left out, with a
    :class:`~scaleup_analysis.errors.ScaleupWarning` that counts them, when
    :math:`\hat\alpha_i + \hat\gamma_t` is not identified: its unit is never observed untreated (the
    unit fixed effect needs an untreated period of that unit), its period has no untreated unit (e.g.
    periods after the last cohort when every unit adopts), or, rarely, unit and period are not linked
    by untreated unit-periods.

    **Quantities** (weights :math:`w_{it}`, default 1):

    * ``effect_during`` :math:`= \sum_{D} w\hat\tau / \sum_D w` over the treated unit-periods before the
      withdrawal (:math:`D`), ``effect_after`` the same over those from the withdrawal on (:math:`A`),
      ``difference`` = after - during and the **sustainment ratio** ``sustainment_ratio`` = after / during
      (attribute ``ratio``; 1 = the effect is fully sustained, 0 = it is gone, < 0 = reversed);
    * the event study: the weighted mean of :math:`\hat\tau` by event time :math:`k = t - W_i` (period
      minus withdrawal) over the units whose support was withdrawn, for every :math:`k` observed;
    * the segmented regression :math:`\hat\tau_{it} = \beta_0 + \beta_1 a_{it} + \beta_2 a_{it} (t - W_i)`
      (:math:`a_{it}` = after support) by weighted least squares over the treated unit-periods of the
      units whose support was withdrawn: ``level_change`` :math:`= \beta_1` (the change of the effect at
      the withdrawal) and ``slope_change`` :math:`= \beta_2` (its change per period after it, relative to
      an effect taken as constant during support). With a single event time after the withdrawal the
      slope is not estimable (NaN, with a warning) and ``level_change`` is the difference of the mean
      effects after and during support of these units;
    * with ``fidelity``: ``fidelity_slope``, the slope of the weighted regression of :math:`\hat\tau` on
      fidelity over the after-support unit-periods (effect gained per unit of fidelity kept; an
      association, not a causal effect of fidelity).

    **Inference**: cluster bootstrap of units: ``n_boot`` resamples of the units with replacement
    (controls included; a unit drawn twice counts twice, its weights doubled), the whole estimator
    (fixed-effects fit, imputation, every quantity) refitted on each. ``se`` is the standard deviation
    of the resamples, ``ci_low``, ``ci_high`` their percentile interval. A resample in which a
    quantity of the effects table cannot be computed (no unit-period after support drawn, an imputation
    that the drawn units do not identify, no second event time for the slope) is counted in
    ``n_boot_failed`` and left out of every interval; a row of the event study leaves out the resamples
    without that event time. The ratio also gets a **Fieller** interval (Fieller 1954), the set of
    :math:`\rho` with :math:`(\hat\tau_A - \rho\hat\tau_D)^2 \le z^2 (V_A - 2\rho C_{AD} + \rho^2 V_D)`
    from the bootstrap variances and covariance of the two effects: it is **unbounded** (two
    half-lines or the whole line, ``fieller_type``) whenever the effect during support is not
    significantly different from 0 at ``level``; a ratio of two imprecise effects has no useful interval
    then, and the difference should be reported instead. The percentile interval of the ratio is
    unreliable in that case too.

    The fixed effects of a resample are profiled out: the unit effects have a closed form given the
    period effects, which solve a :math:`T \times T` system linear in the unit multiplicities, so every
    resample of a block is computed with array operations.

    References
    ----------
    Borusyak, K., Jaravel, X., & Spiess, J. (2024). Revisiting event-study designs: robust and
    efficient estimation. Review of Economic Studies, 91(6), 3253-3285.

    Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical
    Society B, 16(2), 175-185.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis.sustainment.after_support as sus
    >>> rng = np.random.default_rng(3)
    >>> rows = []
    >>> for i in range(60):
    ...     cohort = [np.nan, 4, 5, 6][i % 4]
    ...     stop = cohort + 4 if i % 8 != 1 else np.nan
    ...     for t in range(1, 13):
    ...         tau = 0.0 if not t >= cohort else (1.0 if t >= stop else 2.0)
    ...         rows.append((f"S{i:02d}", t, cohort, stop, i + 0.3 * t + tau + rng.normal(0, 0.5)))
    >>> df = pd.DataFrame(rows, columns=["site_id", "period", "adoption_period", "withdrawal_period", "y"])
    >>> res = sus.support_withdrawal_effects(df, outcome="y", n_boot=199, seed=1)
    >>> round(res.effect_during, 2), round(res.effect_after, 2), round(res.ratio, 2)
    (2.05, 1.0, 0.49)
    >>> res.to_frame().set_index("quantity").loc["sustainment_ratio", ["ci_low", "ci_high"]].round(2).tolist()
    [0.41, 0.58]
    >>> res.fieller_type
    'bounded'
    >>> res.to_frame()["quantity"].tolist()
    ['effect_during', 'effect_after', 'difference', 'sustainment_ratio', 'level_change', 'slope_change']
    """
    check_level(level, _FN)
    n_boot = check_draw_count(_FN, "n_boot", n_boot)
    P = _prepare(data, outcome, unit, period, cohort, withdrawal, fidelity, weight)
    treated = np.flatnonzero(~P.untreated)
    if not P.after[treated].any():
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {withdrawal!r} (argument 'withdrawal'): no unit-period after support, "
            "because no adopting unit's support was withdrawn within the panel (the column is empty for every "
            "adopting unit, or its periods come after the last period observed); the effect after support "
            "cannot be estimated, so there is nothing to compare.")
    if P.after[treated].all():
        raise ScaleupDataError(
            f"{_FN}: table 'data': no unit-period during support (every treated unit-period observed is at "
            f"or after its unit's {withdrawal!r}); the effect during support cannot be estimated, so there is "
            "nothing to compare.")
    if not P.untreated.any():
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {cohort!r} (argument 'cohort'): no untreated unit-period (every unit "
            "has adopted from its first observed period and there is no never-adopting unit), so the untreated "
            "outcome cannot be imputed.")
    imp = _Imputer(P)
    n = imp.n
    one = np.ones((1, n))
    gamma, alpha, labels = imp.fit(one)
    ok = imp.identified(labels, P.u[treated], P.t[treated])[0]
    _warn_excluded(P, imp, treated, ok)
    cells = treated[ok]
    for what, mask in (("after", P.after[cells]), ("during", ~P.after[cells])):
        if not mask.any():
            raise ScaleupDataError(
                f"{_FN}: table 'data': no unit-period {what} support whose untreated outcome can be imputed "
                f"(see the warning on the unit-periods left out), so the effect {what} support cannot be "
                "estimated and there is nothing to compare.")
    D = _design(P, cells)
    if not D.with_slope:
        warnings.warn(
            f"{_FN}: the units whose support was withdrawn are observed at a single period since the withdrawal "
            f"(event time {first_values(D.k_values[D.k_values >= 0])}), so the slope change is not estimable "
            "(NaN); the level change is the difference of their mean effects after and during support.",
            ScaleupWarning, stacklevel=3)
    tau0 = D.y - (alpha[0, D.u] + gamma[0, D.t])
    est, es_est = _quantities(D, tau0[None, :], D.w[None, :])
    names = [m for m in _QUANTITIES if m in est]
    if est["effect_during"][0] == 0:
        warnings.warn(
            f"{_FN}: the effect during support is exactly 0, so the ratio after / during is undefined (NaN) and "
            "its Fieller set unbounded; report the difference (after - during) instead.",
            ScaleupWarning, stacklevel=3)
    if fidelity is not None and not np.isfinite(est["fidelity_slope"][0]):
        warnings.warn(
            f"{_FN}: table 'data', column {fidelity!r} (argument 'fidelity'): fewer than two different fidelity "
            "values in the unit-periods after support, so the fidelity slope is not estimable (NaN).",
            ScaleupWarning, stacklevel=3)
    if D.fid is not None:
        gap = D.after & ~D.fid
        if gap.any():
            warnings.warn(
                f"{_FN}: table 'data', column {fidelity!r} (argument 'fidelity'): {gap.sum()} unit-period(s) "
                "after support have no fidelity value and are left out of the fidelity slope (only).",
                RowsOmittedWarning, stacklevel=3)

    boot, boot_es, failed = _bootstrap(imp, D, est, names, n_boot, seed)
    n_failed = int(failed.sum())
    if n_failed:
        warnings.warn(
            f"{_FN}: in {n_failed} of {n_boot} bootstrap resamples a quantity could not be computed (no "
            "unit-period after or during support drawn, an imputation the drawn units do not identify, or a "
            "single event time after the withdrawal for the slope); they are left out of the intervals, "
            "which are therefore conditional on the other resamples.",
            ScaleupWarning, stacklevel=3)
    table, event_study = _tables(D, est, es_est, names, boot, boot_es, level)
    order = np.lexsort((D.t, D.u))
    effects = pd.DataFrame({"unit": P.units[D.u], "period": P.periods[D.t].astype(np.int64),
                            "phase": np.where(D.after, "after", "during"), "event_time": P.event_time[cells],
                            "weight": D.w, "estimate": tau0}).iloc[order].reset_index(drop=True)

    # ---- Fieller interval of the ratio from the bootstrap covariance ------------------------------
    ftype, flo, fhi, r1, r2 = "none", math.nan, math.nan, math.nan, math.nan
    ok_b = ~failed
    if n_boot and ok_b.sum() >= 2:
        V = np.cov(boot[ok_b][:, :2], rowvar=False)
        crit = float(stats.norm.isf((1 - level) / 2))
        ftype, flo, fhi, r1, r2 = fieller(float(est["effect_during"][0]), float(est["effect_after"][0]),
                                           float(V[0, 0]), float(V[1, 1]), float(V[0, 1]), crit)
    return SupportWithdrawalResult(
        table=table, event_study=event_study, effects=effects, boot=pd.DataFrame(boot, columns=names),
        outcome=outcome, fieller_type=ftype, ratio_ci_low_fieller=float(flo), ratio_ci_high_fieller=float(fhi),
        fieller_root1=float(r1), fieller_root2=float(r2), level=float(level), n_boot=int(n_boot),
        n_boot_failed=n_failed, n_excluded=int(treated.size - cells.size))
