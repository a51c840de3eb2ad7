r"""Risk-adjusted monitoring of each site, patient by patient: Bernoulli CUSUM and VLAD.

:func:`risk_adjusted_cusum` follows a 0/1 outcome (death, readmission, avoidable emergency visit)
of each unit's successive patients against the probability a risk model predicts for each of them,
so that a site treating sicker patients is not flagged for its case mix:

* the **risk-adjusted Bernoulli CUSUM** of Steiner, Cook, Farewell & Treasure (2000): a sequential
  log-likelihood-ratio test of the odds ratio ``odds_ratio_null`` (:math:`R_0`, default 1: the
  outcome as predicted) against ``odds_ratio`` (:math:`R_A`: 2 looks for a doubling of the odds, a
  deterioration; 1/2 for a halving, an improvement; both for the usual two-sided display), with
  its control limit ``h`` given or chosen for a target in-control average run length ``arl0`` (in
  patients) for each unit's own risk mix, by the Markov-chain approximation of Steiner et al. (2000);
* the **VLAD** (variable life-adjusted display, Lovegrove et al. 1997), the running sum of
  expected minus observed outcomes (``risk - outcome``): with deaths, the "statistical lives saved".

References
----------
Steiner, S. H., Cook, R. J., Farewell, V. T., & Treasure, T. (2000). Monitoring surgical performance
using risk-adjusted cumulative sum charts. Biostatistics, 1(4), 441-452.
https://doi.org/10.1093/biostatistics/1.4.441

Brook, D., & Evans, D. A. (1972). An approach to the probability distribution of cusum run length.
Biometrika, 59(3), 539-549.

Lovegrove, J., Valencia, O., Treasure, T., Sherlaw-Johnson, C., & Gallivan, S. (1997). Monitoring
the results of cardiac surgery by variable life-adjusted display. The Lancet, 350(9085), 1128-1130.

Reynolds, M. R., & Stoumbos, Z. G. (1999). A CUSUM chart for monitoring a proportion when
inspecting continuously. Journal of Quality Technology, 31(1), 87-108.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from .._checks import checked_inputs, first_values, numeric_column, require_columns, rows_text, short_repr
from .._display import Displayed, num_cell, text_table
from .._style import BETTER, NEUTRAL, PALETTE, WORSE, styled, ticks_inside
from ..errors import ScaleupDataError
from ._plotting import unit_labels

__all__ = ["risk_adjusted_cusum", "RiskAdjustedCusum"]

_FN = "risk_adjusted_cusum()"
#: States of the Markov chain on [0, h] (grid step h / _N_STATES) for the reported run lengths.
_N_STATES = 1000
#: Coarser chain used to bracket the limit before the final steps on the fine chain.
_N_STATES_COARSE = 250
#: Largest in-control run length a limit may be chosen for (patients).
_MAX_ARL0 = 1e7
#: Directions of the two one-sided charts (values of the ``direction`` column).
_DIRECTIONS = {"upper": "deterioration", "lower": "improvement"}


# ----------------------------------------------------------------------------------------------
# the chart and its run lengths
# ----------------------------------------------------------------------------------------------
def _llr_weights(risk, odds_ratio: float, odds_ratio_null: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """CUSUM weights of an outcome 1 and of an outcome 0 (Steiner et al. 2000, equation 2.1).

    ``W = y log(R_A / R_0) - log((1 - p + R_A p) / (1 - p + R_0 p))``, computed with ``log1p``.
    """
    p = np.asarray(risk, dtype=float)
    den = np.log1p(p * (odds_ratio - 1.0)) - np.log1p(p * (odds_ratio_null - 1.0))
    return math.log(odds_ratio / odds_ratio_null) - den, -den


def _outcome_probability(risk: np.ndarray, odds_ratio: float) -> np.ndarray:
    """Probability of the outcome when its odds are ``odds_ratio`` times the model's odds."""
    return odds_ratio * risk / (1.0 - risk + odds_ratio * risk)


def _run_length(h: float, risk: np.ndarray, odds_ratio: float, odds_ratio_null: float, odds_ratio_true: float,
                n_states: int = _N_STATES) -> float:
    """Average run length from S = 0 of the CUSUM testing ``odds_ratio`` with limit ``h`` when the
    outcomes have odds ``odds_ratio_true`` times the model's and the patients' risks are drawn from
    the empirical distribution of ``risk`` (Markov chain on the grid ``i h / n_states``).

    The state ``n_states`` stands for the values just below ``h``. A step ``s + W`` that falls
    between two grid points sends its probability to both, in proportion to the distance (linear
    interpolation of the run-length function: the mean step is kept exactly); a step below 0 goes
    to 0, a step at or above ``h`` is a signal. The transition probabilities depend on the grid
    offset only, so ``I - Q`` is banded and solved in ``O(n_states x bandwidth^2)``.
    """
    values, counts = np.unique(risk, return_counts=True)
    share = counts / counts.sum()
    w1, w0 = _llr_weights(values, odds_ratio, odds_ratio_null)
    q = _outcome_probability(values, odds_ratio_true)
    m = n_states
    # a step of h or more signals from every state, one of -h or less returns every state to 0
    steps = np.clip(np.concatenate([w1, w0]) / (h / n_states), -m - 1.0, m + 1.0)
    prob = np.concatenate([share * q, share * (1.0 - q)])
    low = np.floor(steps)
    frac = steps - low
    low = low.astype(np.int64)
    first, last = int(low.min()), int(low.max()) + 1
    size = last - first + 1
    g_low = np.bincount(low - first, weights=prob * (1.0 - frac), minlength=size)
    g_high = np.bincount(low + 1 - first, weights=prob * frac, minlength=size)
    g = g_low + g_high
    lb, ub = max(0, -first), max(0, last)
    ab = np.zeros((lb + ub + 1, m + 1))  # ab[ub + i - j, j] = (I - Q)[i, j]
    for o in range(first, last + 1):
        # rows i = j - o in [0, m]; targets 1 <= j <= m - 1 get both parts, j = m only the part
        # interpolated from below h (a step reaching exactly h or more is a signal)
        j0, j1 = max(1, o), min(m - 1, m + o)
        if j0 <= j1:
            ab[ub - o, j0:j1 + 1] -= g[o - first]
        if 0 <= m - o <= m:
            ab[ub - o, m] -= g_high[o - first]
    below = np.cumsum(g)  # below[k]: probability of an offset <= first + k
    for i in range(min(m, lb) + 1):  # falling to 0 or below: state 0
        k = -i - first
        if k >= 0:
            ab[ub + i, 0] -= below[min(k, size - 1)]
    ab[ub, :] += 1.0
    if min(lb, ub) * (lb + ub) > (m + 1) ** 2 // 3:  # a wide band: LAPACK's blocked dense LU is faster
        offsets = np.arange(m + 1)[None, :] - np.arange(m + 1)[:, None] - first  # (j - i) - first
        inside = (offsets >= 0) & (offsets < size)
        q = np.where(inside, g[np.clip(offsets, 0, size - 1)], 0.0)
        q[:, m] = np.where(inside[:, m], g_high[np.clip(offsets[:, m], 0, size - 1)], 0.0)
        q[:, 0] = below[np.clip(-np.arange(m + 1) - first, -1, size - 1)] * (-np.arange(m + 1) - first >= 0)
        return float(np.linalg.solve(np.eye(m + 1) - q, np.ones(m + 1))[0])
    if lb <= ub:  # LAPACK's banded LU costs about n kl (kl + ku): keep the narrow band below the diagonal
        return float(linalg.solve_banded((lb, ub), ab, np.ones(m + 1), check_finite=False)[0])
    # ARL from 0 = e0' (I - Q)^-1 1 = 1' x with (I - Q)' x = e0: the transposed band has kl = ub
    abt = np.zeros_like(ab)
    for o in range(-lb, ub + 1):  # (I - Q)[i, i + o] sits at ab[ub - o, i + o] and at abt[lb + o, i]
        if o >= 0:
            abt[lb + o, : m + 1 - o] = ab[ub - o, o:]
        else:
            abt[lb + o, -o:] = ab[ub - o, : m + 1 + o]
    e0 = np.zeros(m + 1)
    e0[0] = 1.0
    return float(linalg.solve_banded((ub, lb), abt, e0, check_finite=False).sum())


def _limit_for(arl0: float, risk: np.ndarray, odds_ratio: float, odds_ratio_null: float) -> tuple[float, float]:
    """The limit h whose in-control run length is ``arl0``: root of log ARL(h) - log arl0 on a coarse
    chain (Brent), then again on the fine chain near it; returns h and its in-control run length."""
    def f(h, n):
        return math.log(_run_length(h, risk, odds_ratio, odds_ratio_null, odds_ratio_null, n)) - math.log(arl0)

    w1, w0 = _llr_weights(np.unique(risk), odds_ratio, odds_ratio_null)
    top = float(max(w1.max(), w0.max()))
    lo = 1e-2 * top
    if f(lo, _N_STATES_COARSE) > 0:
        raise ScaleupDataError(
            f"{_FN}: argument 'arl0' = {arl0:g} is below the smallest in-control run length this chart can have "
            f"with these risks (about {math.exp(f(lo, _N_STATES_COARSE)) * arl0:.3g} patients); ask for a longer "
            "run length (e.g. arl0=1000) or give limit= directly.")
    hi = max(2.0 * top, 1.0)
    while f(hi, _N_STATES_COARSE) < 0:
        lo, hi = hi, 2.0 * hi
    h0 = optimize.brentq(f, lo, hi, args=(_N_STATES_COARSE,), xtol=1e-10, rtol=1e-10)
    # the fine chain moves the root by about 1e-3: bracket it there and solve again (Brent). For
    # discrete weights the run length is a step function of h: the root is where it crosses arl0
    f0 = f(h0, _N_STATES)
    if f0 == 0:
        return h0, arl0
    step = 0.002 * h0 * (1 if f0 < 0 else -1)
    h1 = h0 + step
    f1 = f(h1, _N_STATES)
    while (f1 < 0) == (f0 < 0):
        h0, f0 = h1, f1
        step *= 2
        h1 = max(h0 + step, 0.5 * h0)
        f1 = f(h1, _N_STATES)
    h = optimize.brentq(f, min(h0, h1), max(h0, h1), args=(_N_STATES,), xtol=1e-7 * h0, rtol=1e-12)
    return h, arl0 * math.exp(f(h, _N_STATES))


def _chart(w: np.ndarray, h: float, reset: bool) -> tuple[np.ndarray, np.ndarray]:
    """``S_t = max(0, S_{t-1} + W_t)``, a signal when ``S_t >= h`` (then ``S_t`` restarts at 0 for
    the next patient when ``reset``); returns the values and the signals."""
    s = np.empty(w.size)
    signal = np.zeros(w.size, dtype=bool)
    prev = 0.0
    for t, wt in enumerate(w):
        cur = max(0.0, prev + wt)
        s[t] = cur
        if cur >= h:
            signal[t] = reset or not (t > 0 and s[t - 1] >= h)
            prev = 0.0 if reset else cur
        else:
            prev = cur
    return s, signal


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class RiskAdjustedCusum(Displayed):
    """Result of :func:`risk_adjusted_cusum`.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per patient, units in order and patients in time order (see :meth:`to_frame`).
    signals : pandas.DataFrame
        One row per signal: ``unit``, ``time``, ``row``, ``position``, ``direction``
        (``"deterioration"``: the upper chart, odds higher than predicted; ``"improvement"``: the
        lower chart), ``cusum`` (the chart's value, >= ``limit``) and ``limit``.
    units : pandas.DataFrame
        One row per unit: ``unit``, ``n_obs``, ``n_events`` (outcomes 1), ``expected`` (sum of the
        risks), ``vlad`` (``expected - n_events`` at the end), and per chart ``limit_upper`` /
        ``limit_lower`` (h), ``arl0_upper`` / ``arl0_lower`` (in-control average run length at h, in
        patients), ``arl1_upper`` / ``arl1_lower`` (the same when the odds are ``odds_ratio`` times
        the predicted odds), ``n_signals_upper`` / ``n_signals_lower`` and ``first_signal_upper`` /
        ``first_signal_lower`` (``time`` of the first signal; missing when none). Columns of a chart
        not drawn are missing (NaN, 0 signals).
    odds_ratio_upper, odds_ratio_lower : float or None
        :math:`R_A` of the upper (deterioration) and lower (improvement) charts; None when not drawn.
    odds_ratio_null : float
        :math:`R_0`, the in-control odds ratio.
    arl0 : tuple of float or None
        Target in-control run lengths (upper, lower) the limits were chosen for; None when the
        limits were given.
    reset : bool
        Whether a chart restarts at 0 after a signal.
    outcome, risk, unit, time : str or None
        The columns used.
    n_obs, n_units : int
    """

    data: pd.DataFrame = field(repr=False)
    signals: pd.DataFrame = field(repr=False)
    units: pd.DataFrame = field(repr=False)
    odds_ratio_upper: float | None
    odds_ratio_lower: float | None
    odds_ratio_null: float
    arl0: tuple | None
    reset: bool
    outcome: str
    risk: str
    unit: str | None
    time: str | None
    n_obs: int
    n_units: int

    def to_frame(self, kind: str = "data") -> pd.DataFrame:
        """A table of the result.

        Parameters
        ----------
        kind : {"data", "signals", "units"}
            ``"data"`` (default): one row per patient: ``unit``, ``time`` (missing when no time
            column was given), ``row`` (label of the row of ``data``), ``position`` (rank of the
            patient in the unit's time order, from 1), ``outcome``, ``risk``, ``llr_upper`` /
            ``llr_lower`` (the CUSUM weight :math:`W_t` of the patient in each chart),
            ``cusum_upper`` (>= 0) / ``cusum_lower`` (<= 0: the lower chart is drawn downward),
            ``signal_upper`` / ``signal_lower``, and ``vlad`` (running sum of ``risk - outcome``).
            ``"signals"``: :attr:`signals`; ``"units"``: :attr:`units`.
        """
        tables = {"data": self.data, "signals": self.signals, "units": self.units}
        if kind not in tables:
            raise ScaleupDataError(f"RiskAdjustedCusum.to_frame: kind must be 'data', 'signals' or 'units', "
                                   f"not {short_repr(kind)}.")
        return tables[kind].copy()

    def _charts(self) -> list[str]:
        return [c for c, r in (("upper", self.odds_ratio_upper), ("lower", self.odds_ratio_lower)) if r is not None]

    def _repr_fields(self) -> dict:
        out = {"n_units": self.n_units, "n_obs": self.n_obs}
        for c in self._charts():
            out[f"odds_ratio_{c}"] = getattr(self, f"odds_ratio_{c}")
            out[f"n_signals_{c}"] = int(self.units[f"n_signals_{c}"].sum())
        out["reset"] = self.reset
        return out

    def _summary(self, tx) -> str:
        labels = unit_labels(list(self.units["unit"]))
        lines = [tx("Risk-adjusted CUSUM of “{outcome}” (risk: “{risk}”): {units}, {patients}; {events} observed, "
                    "{expected} expected.", outcome=self.outcome, risk=self.risk,
                    units=tx.n("{n} unit", "{n} units", self.n_units),
                    patients=tx.n("{n} patient", "{n} patients", self.n_obs),
                    events=tx.int(self.units["n_events"].sum()), expected=tx.num(self.units["expected"].sum(), 1))]
        for c in self._charts():
            ratio = getattr(self, f"odds_ratio_{c}")
            what = (tx("Deterioration chart (odds of the outcome {ratio} times the predicted odds)", ratio=tx.num(ratio, 2))
                    if c == "upper" else
                    tx("Improvement chart (odds of the outcome {ratio} times the predicted odds)", ratio=tx.num(ratio, 2)))
            u = self.units
            signalled = u[u[f"n_signals_{c}"] > 0]
            if self.arl0 is not None:
                arl0 = self.arl0[0 if c == "upper" else 1]
                limit = tx("limit h chosen per unit for an in-control average run length of {arl0} patients "
                           "(h from {low} to {high})", arl0=tx.int(round(arl0)),
                           low=tx.num(u[f"limit_{c}"].min(), 2), high=tx.num(u[f"limit_{c}"].max(), 2))
            elif round(u[f"arl0_{c}"].min()) == round(u[f"arl0_{c}"].max()):
                limit = tx("limit h = {h}, in-control average run length {arl0} patients",
                           h=tx.num(u[f"limit_{c}"].iloc[0], 2), arl0=tx.int(round(u[f"arl0_{c}"].min())))
            else:
                limit = tx("limit h = {h}, in-control average run length from {low} to {high} patients",
                           h=tx.num(u[f"limit_{c}"].iloc[0], 2), low=tx.int(round(u[f"arl0_{c}"].min())),
                           high=tx.int(round(u[f"arl0_{c}"].max())))
            lines.append(what + tx.colon() + " " + limit + "; "
                         + tx.n("{n} unit signalled", "{n} units signalled", len(signalled)) + ".")
        rows = []
        for r in self.units.itertuples(index=False):
            cells = [labels[r.unit], tx.int(r.n_obs), tx.int(r.n_events), num_cell(tx, r.expected, 1),
                     num_cell(tx, r.vlad, 1)]
            for c in self._charts():
                n = getattr(r, f"n_signals_{c}")
                first = getattr(r, f"first_signal_{c}")
                cells += [num_cell(tx, getattr(r, f"limit_{c}"), 2), tx.int(n),
                          "-" if n == 0 or first is None or (isinstance(first, float) and math.isnan(first))
                          else str(first)]
            rows.append(cells)
        head = [tx("monitored unit"), tx("n patients"), tx("observed outcomes"), tx("expected outcomes"),
                tx("VLAD at the end")]
        for c in self._charts():
            head += ([tx("h, deterioration"), tx("signals, deterioration"), tx("first signal, deterioration")]
                     if c == "upper" else
                     [tx("h, improvement"), tx("signals, improvement"), tx("first signal, improvement")])
        lines += ["", tx("By unit (VLAD: expected minus observed outcomes, > 0 means fewer than predicted):"),
                  text_table(head, rows)]
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------
    # figures
    # ------------------------------------------------------------------------------------------
    def _units_to_draw(self, unit, where: str) -> list:
        units = list(self.units["unit"])
        if unit is None:
            return units
        wanted = list(unit) if isinstance(unit, (list, tuple, np.ndarray, pd.Index, pd.Series)) else [unit]
        unknown = [u for u in wanted if u not in units]
        if unknown or not wanted:
            raise ScaleupDataError(f"{where}: unit {first_values(unknown or wanted)} is not a unit of the chart; "
                                   f"units are {first_values(units)}.")
        return wanted

    def _grid(self, units, title, ax, where: str, ncols, size=(8.5, 4.0)):
        import matplotlib.pyplot as plt

        if len(units) == 1:
            if ax is None:
                _, ax = plt.subplots(figsize=size, layout="constrained")
            return ax.figure, np.array([ax])
        if ax is not None:
            raise ScaleupDataError(f"{where}: 'ax' can only be given for a single unit; pass unit=... or leave "
                                   "ax=None to draw small multiples.")
        ncols = ncols if ncols is not None else (3 if len(units) <= 12 else 4)
        nrows = math.ceil(len(units) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(min(14.0, 3.4 * ncols), min(13.5, 2.4 * nrows + 1.5)),
                                 sharex=False, squeeze=False, layout="constrained")
        for k, a in enumerate(axes.flat):
            if k >= len(units):
                a.set_visible(False)
        return fig, axes

    @styled
    def plot_cusum(self, *, unit=None, ncols: int | None = None, title: str | None = None, ax=None):
        """Plot the CUSUM of one unit, or of several as small multiples.

        The upper (deterioration) chart is drawn upward and the lower (improvement) chart downward,
        against the patient's position in the unit's time order; the control limits ``h`` are
        dashed lines, the signals squares (upper) and triangles (lower), so the chart reads in
        grey-scale too. The legend is beside the chart (below the small multiples).

        Parameters
        ----------
        unit : optional
            A unit or a list of units to draw (default: every unit).
        ncols : int, optional
            Columns of the small-multiples grid (default 3, or 4 above 12 units).
        title : str, optional
        ax : matplotlib Axes, optional
            Axes to draw on (a single unit only).

        Returns
        -------
        matplotlib Axes, or a numpy array of Axes for small multiples.
        """
        from matplotlib.lines import Line2D

        from ..narrative import Text

        tx = Text()
        where = "RiskAdjustedCusum.plot_cusum"
        units = self._units_to_draw(unit, where)
        fig, axes = self._grid(units, title, ax, where, ncols)
        labels = unit_labels(list(self.units["unit"]))
        for a, u in zip(axes.flat, units):
            g = self.data[self.data["unit"] == u]
            row = self.units[self.units["unit"] == u].iloc[0]
            x = g["position"].to_numpy()
            for c, colour, marker in (("upper", WORSE, "s"), ("lower", BETTER, "v")):
                if getattr(self, f"odds_ratio_{c}") is None:
                    continue
                y = g[f"cusum_{c}"].to_numpy()
                h = float(row[f"limit_{c}"]) * (1 if c == "upper" else -1)
                a.step(x, y, where="post", color=colour, lw=1.2, zorder=2)
                a.axhline(h, color=colour, ls="--", lw=1, zorder=1)
                s = g[g[f"signal_{c}"]]
                a.plot(s["position"], s[f"cusum_{c}"], ls="none", marker=marker, ms=6.5, color=colour,
                       markeredgecolor="black", markeredgewidth=0.6, zorder=3)
            a.axhline(0, color=NEUTRAL, lw=0.8, zorder=1)
            if len(units) > 1:
                a.set_title(labels[u], fontsize=9)
            ticks_inside(a, "y")
        handles = []
        for c, colour, marker in (("upper", WORSE, "s"), ("lower", BETTER, "v")):
            ratio = getattr(self, f"odds_ratio_{c}")
            if ratio is None:
                continue
            name = (tx("CUSUM, deterioration (odds ratio {ratio})", ratio=tx.num(ratio, 2)) if c == "upper"
                    else tx("CUSUM, improvement (odds ratio {ratio}), drawn downward", ratio=tx.num(ratio, 2)))
            handles += [Line2D([], [], color=colour, lw=1.2, label=name),
                        Line2D([], [], color=colour, ls="--", lw=1, label=tx("Control limit h")),
                        Line2D([], [], color=colour, ls="none", marker=marker, ms=6.5, markeredgecolor="black",
                               markeredgewidth=0.6, label=tx("Signal (the chart restarts at 0)") if self.reset
                               else tx("Signal of the chart"))]
        for h in handles:
            h.set_label(textwrap.fill(h.get_label(), 30))
        xlabel, ylabel = tx("Patient (in time order)"), tx("CUSUM (log-likelihood ratio)")
        default_title = tx("Risk-adjusted CUSUM")
        if len(units) == 1:
            a = axes.flat[0]
            a.set_xlabel(xlabel)
            a.set_ylabel(ylabel)
            a.set_title(title if title is not None else
                        (labels[units[0]] if self.n_units > 1 else default_title))
            a.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1))
            return a
        self._below(fig, axes, units, default_title if title is None else title, xlabel, ylabel, handles,
                    per_row=3)
        return axes

    @staticmethod
    def _below(fig, axes, units, title, xlabel, ylabel, handles, per_row) -> None:
        """Titles, the x label under the bottom panel of each column, and the legend below the grid
        (one row per chart: matplotlib fills a legend column by column)."""
        ncols = axes.shape[1]
        for k, a in enumerate(axes.flat):
            if k < len(units) and k + ncols >= len(units):
                a.set_xlabel(xlabel)
        fig.suptitle(title)
        fig.supylabel(ylabel)
        rows = max(1, math.ceil(len(handles) / per_row))
        ordered = [handles[r * per_row + c] for c in range(per_row) for r in range(rows) if r * per_row + c < len(handles)]
        fig.legend(handles=ordered, loc="outside lower center", ncols=min(per_row, len(handles)))

    @styled
    def plot_vlad(self, *, unit=None, ncols: int | None = None, title: str | None = None, ax=None):
        """Plot the VLAD (expected minus observed outcomes, cumulated) of one unit or several.

        A rising line means fewer outcomes than the risk model predicts (with deaths: lives saved),
        a falling one more. Signals of the CUSUM are marked on the line (squares: deterioration,
        triangles: improvement).

        Parameters
        ----------
        unit : optional
            A unit or a list of units to draw (default: every unit).
        ncols : int, optional
            Columns of the small-multiples grid.
        title : str, optional
        ax : matplotlib Axes, optional
            Axes to draw on (a single unit only).

        Returns
        -------
        matplotlib Axes, or a numpy array of Axes for small multiples.
        """
        from matplotlib.lines import Line2D

        from ..narrative import Text

        tx = Text()
        where = "RiskAdjustedCusum.plot_vlad"
        units = self._units_to_draw(unit, where)
        fig, axes = self._grid(units, title, ax, where, ncols)
        labels = unit_labels(list(self.units["unit"]))
        marks = []
        for a, u in zip(axes.flat, units):
            g = self.data[self.data["unit"] == u]
            x = np.concatenate([[0], g["position"].to_numpy()])
            y = np.concatenate([[0.0], g["vlad"].to_numpy()])
            a.step(x, y, where="post", color=PALETTE[0], lw=1.2, zorder=2)
            a.axhline(0, color=NEUTRAL, lw=0.8, zorder=1)
            for c, colour, marker in (("upper", WORSE, "s"), ("lower", BETTER, "v")):
                if getattr(self, f"odds_ratio_{c}") is None:
                    continue
                s = g[g[f"signal_{c}"]]
                if len(s):
                    marks.append(c)
                a.plot(s["position"], s["vlad"], ls="none", marker=marker, ms=6.5, color=colour,
                       markeredgecolor="black", markeredgewidth=0.6, zorder=3)
            if len(units) > 1:
                a.set_title(labels[u], fontsize=9)
            ticks_inside(a, "y")
        handles = [Line2D([], [], color=PALETTE[0], lw=1.2, label=tx("Expected minus observed outcomes"))]
        for c, colour, marker in (("upper", WORSE, "s"), ("lower", BETTER, "v")):
            if c in marks:
                handles.append(Line2D([], [], color=colour, ls="none", marker=marker, ms=6.5, markeredgecolor="black",
                                      markeredgewidth=0.6,
                                      label=tx("CUSUM signal, deterioration") if c == "upper"
                                      else tx("CUSUM signal, improvement")))
        for h in handles:
            h.set_label(textwrap.fill(h.get_label(), 30))
        xlabel, ylabel = tx("Patient (in time order)"), tx("Cumulative expected minus observed")
        default_title = tx("Variable life-adjusted display (VLAD)")
        if len(units) == 1:
            a = axes.flat[0]
            a.set_xlabel(xlabel)
            a.set_ylabel(ylabel)
            a.set_title(title if title is not None else
                        (labels[units[0]] if self.n_units > 1 else default_title))
            a.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1))
            return a
        self._below(fig, axes, units, default_title if title is None else title, xlabel, ylabel, handles,
                    per_row=len(handles))
        return axes


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _positive(value, arg: str, what: str) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(value) or value <= 0:
        raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a positive finite number ({what}); "
                               f"got {short_repr(value)}.")
    return float(value)


def _pair(value, arg: str) -> list:
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) not in (1, 2):
            raise ScaleupDataError(f"{_FN}: argument {arg!r} takes one number or two (upper chart, lower chart); "
                                   f"got {len(items)} values.")
        return items
    return [value]


def _odds_ratios(odds_ratio, odds_ratio_null) -> tuple[float, float | None, float | None]:
    r0 = _positive(odds_ratio_null, "odds_ratio_null", "the in-control odds ratio, usually 1")
    ratios = [_positive(r, "odds_ratio", "the odds ratio to detect, e.g. 2 or 0.5") for r in _pair(odds_ratio,
                                                                                                   "odds_ratio")]
    upper = [r for r in ratios if r > r0]
    lower = [r for r in ratios if r < r0]
    if len(upper) + len(lower) != len(ratios) or len(upper) > 1 or len(lower) > 1:
        raise ScaleupDataError(
            f"{_FN}: argument 'odds_ratio' must be above odds_ratio_null = {r0:g} (a deterioration chart, e.g. 2), "
            f"below it (an improvement chart, e.g. 0.5), or one of each (both charts, e.g. (2, 0.5)); got "
            f"{short_repr(odds_ratio)}.")
    return r0, (upper[0] if upper else None), (lower[0] if lower else None)


def _per_chart(value, arg: str, charts: list[str], what: str, minimum: float = 0.0) -> dict:
    items = _pair(value, arg)
    if len(items) == 2 and len(charts) == 1:
        raise ScaleupDataError(f"{_FN}: argument {arg!r} gives two values but only the {charts[0]} chart is drawn "
                               "(odds_ratio has one value); give one.")
    vals = [_positive(v, arg, what) for v in items]
    for v in vals:
        if v <= minimum:
            raise ScaleupDataError(f"{_FN}: argument {arg!r} must be above {minimum:g} ({what}); got {v:g}.")
    if len(vals) == 1:
        vals = vals * len(charts)
    return dict(zip(charts, vals))


def _time_order(data: pd.DataFrame, time: str) -> np.ndarray:
    """Sortable keys of the time column (numbers, dates or text of one kind), or an error."""
    s = data[time]
    bad = s.isna().to_numpy()
    if bad.any():
        raise ScaleupDataError(f"{_FN}: table 'data', column {time!r} (argument 'time'): "
                               f"{rows_text(data, bad, label='first:')} are missing. Every patient needs a time "
                               "to be placed in the order of the chart; fill them in or drop the rows.")
    try:
        return pd.Series(s).rank(method="min").to_numpy()
    except TypeError as exc:
        raise ScaleupDataError(f"{_FN}: table 'data', column {time!r} (argument 'time'): the values cannot be put "
                               f"in order (values {first_values(s.unique()[:5])}); use numbers, dates or text of "
                               "one kind.") from exc


@checked_inputs
def risk_adjusted_cusum(
    data: pd.DataFrame,
    *,
    outcome: str = "event",
    risk: str = "risk",
    unit: str | None = "site_id",
    time: str | None = "period",
    odds_ratio=2.0,
    odds_ratio_null: float = 1.0,
    limit=None,
    arl0=None,
    reset: bool = True,
) -> RiskAdjustedCusum:
    r"""Risk-adjusted Bernoulli CUSUM and VLAD of each unit's patients (Steiner et al. 2000).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient (e.g. the ``encounters`` table with a ``risk`` column added).
    outcome : str
        The 0/1 outcome column (1 = the adverse outcome: death, readmission, avoidable emergency
        visit). True/False is accepted. For a desirable outcome, chart its complement.
    risk : str
        The predicted probability of the outcome for the patient, strictly between 0 and 1, from a
        risk model fitted elsewhere (on a reference period or on all units), e.g. a logistic
        regression on age, sex and comorbidities.
    unit : str or None
        Column of the unit (one chart per unit, e.g. per site); None: one chart of every row.
    time : str or None
        Column giving the order in time (period, date, time stamp: numbers, dates or text that sorts
        in time order). Patients with the same time are kept in the order of the rows of ``data``
        (stable sort). None: the order of the rows.
    odds_ratio : float or pair of float
        :math:`R_A`, the change in the odds of the outcome the chart is tuned to detect: above
        ``odds_ratio_null`` for the upper (deterioration) chart, e.g. 2 (odds doubled); below it for
        the lower (improvement) chart, e.g. 0.5; a pair such as ``(2, 0.5)`` draws both, the usual
        two-sided display (upper chart upward, lower chart downward).
    odds_ratio_null : float
        :math:`R_0`, the odds ratio when the unit performs as predicted (default 1).
    limit : float or pair of float, optional
        The control limit :math:`h` (> 0) of each chart (one number: the same for both; a pair:
        upper, lower). Default: chosen per unit and chart for ``arl0``.
    arl0 : float or pair of float, optional
        Target in-control average run length in patients (the mean number of patients between
        false alarms when the unit performs as predicted), used to choose ``limit`` for each unit's
        own risk mix; default 1000 when ``limit`` is not given. Cannot be given with ``limit``.
    reset : bool
        True (default): after a signal the chart restarts at 0 with the next patient (Steiner et
        al. 2000; R's ``cusum::racusum(reset = TRUE)``), so later signals are new evidence. False:
        the chart goes on from its value; a signal is then the first patient of each spell at or
        above ``h``.

    Returns
    -------
    RiskAdjustedCusum
        ``to_frame()`` one row per patient (weights, chart values, signals, VLAD);
        ``to_frame("signals")`` the signals by unit and time; ``to_frame("units")`` the limits,
        in- and out-of-control run lengths and counts per unit; ``summary()``, ``plot_cusum()``,
        ``plot_vlad()``.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the first rows: a missing column, an outcome that
        is not 0/1, a risk outside (0, 1), missing values, a time that cannot be sorted; and
        arguments out of range (``odds_ratio`` equal to ``odds_ratio_null``, ``limit`` <= 0,
        ``limit`` and ``arl0`` both given, an ``arl0`` too short for the chart).

    Notes
    -----
    For patient :math:`t` of a unit, with outcome :math:`y_t` and predicted risk :math:`p_t`, the
    weight is the log-likelihood ratio of :math:`R_A` against :math:`R_0` (Steiner et al. 2000,
    eq. 2.1)

    .. math:: W_t = y_t \log\frac{R_A}{R_0} - \log\frac{1 - p_t + R_A p_t}{1 - p_t + R_0 p_t},

    and the chart is :math:`S_t = \max(0, S_{t-1} + W_t)`, :math:`S_0 = 0`, signalling when
    :math:`S_t \ge h`. The lower chart is the same with :math:`R_A < R_0`; it is reported and drawn
    as :math:`-S_t` (downward), and signals at :math:`-h`. The VLAD is
    :math:`\sum_{s \le t} (p_s - y_s)`.

    **Run lengths and the limit.** The average run length (ARL: patients until a signal, starting
    from 0) is computed for each unit with the patients' risks drawn at random from that unit's own
    risks (their empirical distribution), by the Markov-chain approximation of Brook & Evans (1972)
    as Steiner et al. (2000, appendix) do: :math:`[0, h]` is cut into 1000 steps of :math:`h/1000`;
    a transition :math:`S + W` that falls between two grid points is shared between them in
    proportion to the distance (linear interpolation, which keeps the mean step exact; below 0 it
    goes to 0, at or above :math:`h` it is a signal); the ARL solves
    :math:`(I - Q)\,L = \mathbf 1`. In control the outcome has probability :math:`R_0 p/(1 - p + R_0
    p)` (``arl0_*``), out of control :math:`R_A p / (1 - p + R_A p)` (``arl1_*``). With ``arl0`` the
    limit is the root of :math:`\log \mathrm{ARL}_0(h) = \log` ``arl0`` (Brent's method on a
    250-step chain, then again on the 1000-step chain near that root, to :math:`10^{-7} h`; for
    discrete weights the run length is a step function of :math:`h`, so the reported ``arl0_*`` may
    differ from ``arl0`` by about :math:`10^{-5}` relative). Accuracy: on lattices of weights
    whose exact chain is known (constant risk with :math:`\log 2/\log(1+p)` an integer) the
    relative error is below :math:`10^{-4}`; with mixed risks the 1000-step value differs from a
    3000-step one by less than :math:`10^{-3}` (:math:`2 \times 10^{-3}` with risks as small as 0.001), and both agree with simulated run lengths within
    their Monte Carlo error (``tests/test_cusum.py``). The ARL treats the risk model as exact: an
    estimated model widens the spread of the real in-control run length (Gandy & Kvaløy 2013).
    Each one-sided chart has its own ``arl0``; the two-sided display signals sooner (its in-control
    ARL is about :math:`1/(1/\mathrm{ARL}_{upper} + 1/\mathrm{ARL}_{lower})`).

    References
    ----------
    Steiner, S. H., Cook, R. J., Farewell, V. T., & Treasure, T. (2000). Monitoring surgical
    performance using risk-adjusted cumulative sum charts. Biostatistics, 1(4), 441-452.

    Brook, D., & Evans, D. A. (1972). An approach to the probability distribution of cusum run
    length. Biometrika, 59(3), 539-549.

    Lovegrove, J., Valencia, O., Treasure, T., Sherlaw-Johnson, C., & Gallivan, S. (1997).
    Monitoring the results of cardiac surgery by variable life-adjusted display. The Lancet,
    350(9085), 1128-1130.

    Gandy, A., & Kvaløy, J. T. (2013). Guaranteed conditional performance of control charts via
    bootstrap methods. Scandinavian Journal of Statistics, 40(4), 647-668.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"site_id": ["A"] * 6, "period": [1, 1, 2, 2, 3, 3],
    ...                   "event": [0, 1, 1, 0, 1, 1], "risk": [0.1, 0.2, 0.1, 0.3, 0.2, 0.1]})
    >>> res = sa.risk_adjusted_cusum(d, limit=1.2)
    >>> res.to_frame()["cusum_upper"].round(3).tolist()
    [0.0, 0.511, 1.109, 0.846, 1.357, 0.598]
    >>> res.to_frame("signals")[["unit", "time", "direction"]].values.tolist()
    [['A', 3, 'deterioration']]
    """
    r0, ra_up, ra_low = _odds_ratios(odds_ratio, odds_ratio_null)
    charts = [c for c, r in (("upper", ra_up), ("lower", ra_low)) if r is not None]
    if not isinstance(reset, (bool, np.bool_)):
        raise ScaleupDataError(f"{_FN}: argument 'reset' must be True or False, got {short_repr(reset)}.")
    if limit is not None and arl0 is not None:
        raise ScaleupDataError(f"{_FN}: give either limit= (the control limit h) or arl0= (the in-control run "
                               "length it is chosen for), not both.")
    limits = _per_chart(limit, "limit", charts, "the control limit h, e.g. 4.5") if limit is not None else None
    targets = None
    if limits is None:
        targets = _per_chart(1000.0 if arl0 is None else arl0, "arl0", charts,
                             "an in-control average run length in patients, e.g. 1000", minimum=1.0)
        for v in targets.values():
            if v > _MAX_ARL0:
                raise ScaleupDataError(f"{_FN}: argument 'arl0' = {v:g} is beyond {_MAX_ARL0:g} patients; ask for "
                                       "a shorter in-control run length.")
    cols = [c for c in (outcome, risk, unit, time) if c is not None]
    for arg, col in (("outcome", outcome), ("risk", risk), ("unit", unit), ("time", time)):
        if col is not None and not isinstance(col, str):
            raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a column name (text), got {short_repr(col)}.")
    require_columns(data, "data", cols, label=f"{_FN}: table 'data'",
                    hint="Pass the column names as outcome=, risk=, unit= and time=.")
    where = f"{_FN}: table 'data'"
    y = numeric_column(data, outcome, where, arg="outcome")
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise ScaleupDataError(f"{where}, column {outcome!r} (argument 'outcome'): {rows_text(data, bad, label='first:')} "
                               f"are not 0 or 1 (values {first_values(y[bad])}). The CUSUM follows a binary outcome "
                               "(1 = the event); recode the column.")
    p = numeric_column(data, risk, where, arg="risk")
    bad = ~((p > 0) & (p < 1))
    if bad.any():
        raise ScaleupDataError(f"{where}, column {risk!r} (argument 'risk'): {rows_text(data, bad, label='first:')} "
                               f"are not strictly between 0 and 1 (values {first_values(p[bad])}). The risk is the "
                               "predicted probability of the outcome; a risk of exactly 0 or 1 makes an outcome "
                               "impossible or certain (clip the model's predictions, e.g. to [1e-6, 1 - 1e-6]).")
    if unit is not None:
        u = data[unit]
        bad = u.isna().to_numpy()
        if bad.any():
            raise ScaleupDataError(f"{where}, column {unit!r} (argument 'unit'): {rows_text(data, bad, label='first:')} "
                                   "are missing. Every patient must belong to a unit; fill them in or drop the rows.")
        units_all = u.to_numpy()
    else:
        units_all = np.full(len(data), "all", dtype=object)
    order_key = _time_order(data, time) if time is not None else np.arange(len(data), dtype=float)
    times = data[time].to_numpy() if time is not None else np.full(len(data), np.nan)
    frame = pd.DataFrame({"unit": units_all, "key": order_key, "pos": np.arange(len(data))})
    try:
        unit_values = pd.unique(frame["unit"])
        unit_values = sorted(unit_values)
    except TypeError:  # pragma: no cover - mixed kinds are refused by checked_inputs
        unit_values = list(pd.unique(frame["unit"]))
    pieces, signals, rows = [], [], []
    for uv in unit_values:
        idx = frame.index[(frame["unit"] == uv).to_numpy()]
        sub = frame.loc[idx].sort_values("key", kind="stable")
        ix = sub["pos"].to_numpy()
        yy, pp = y[ix], p[ix]
        piece = pd.DataFrame({"unit": uv, "time": times[ix], "row": data.index[ix], "position": np.arange(1, ix.size + 1),
                              "outcome": yy.astype(int), "risk": pp})
        info = {"unit": uv, "n_obs": int(ix.size), "n_events": int(yy.sum()), "expected": float(pp.sum()),
                "vlad": float(np.sum(pp - yy))}
        for c in ("upper", "lower"):
            ra = ra_up if c == "upper" else ra_low
            if ra is None:
                piece[f"llr_{c}"] = np.nan
                piece[f"cusum_{c}"] = np.nan
                piece[f"signal_{c}"] = False
                info.update({f"limit_{c}": np.nan, f"arl0_{c}": np.nan, f"arl1_{c}": np.nan,
                             f"n_signals_{c}": 0, f"first_signal_{c}": None})
                continue
            w1, w0 = _llr_weights(pp, ra, r0)
            w = np.where(yy == 1, w1, w0)
            if limits is not None:
                h, arl_in = limits[c], _run_length(limits[c], pp, ra, r0, r0)
            else:
                h, arl_in = _limit_for(targets[c], pp, ra, r0)
            s, sig = _chart(w, h, reset)
            sign = 1.0 if c == "upper" else -1.0
            piece[f"llr_{c}"] = w
            piece[f"cusum_{c}"] = sign * s + 0.0
            piece[f"signal_{c}"] = sig
            info.update({f"limit_{c}": float(h), f"arl0_{c}": arl_in,
                         f"arl1_{c}": _run_length(h, pp, ra, r0, ra), f"n_signals_{c}": int(sig.sum()),
                         f"first_signal_{c}": piece.loc[sig, "time"].iloc[0] if sig.any() else None})
            for k in np.flatnonzero(sig):
                signals.append({"unit": uv, "time": piece["time"].iloc[k], "row": piece["row"].iloc[k],
                                "position": int(k + 1), "direction": _DIRECTIONS[c],
                                "cusum": float(piece[f"cusum_{c}"].iloc[k]), "limit": float(h)})
        piece["vlad"] = np.cumsum(pp - yy)
        pieces.append(piece)
        rows.append(info)
    table = pd.concat(pieces, ignore_index=True)
    sig_cols = ["unit", "time", "row", "position", "direction", "cusum", "limit"]
    sig_table = pd.DataFrame(signals, columns=sig_cols)
    if len(sig_table):
        sig_table = sig_table.sort_values(["time", "unit", "position"] if time is not None else ["unit", "position"],
                                          kind="stable").reset_index(drop=True)
    units_table = pd.DataFrame(rows)
    for c in ("first_signal_upper", "first_signal_lower"):  # times as given (a period stays an int)
        units_table[c] = pd.Series([r[c] for r in rows], dtype=object)
    units_table = units_table[["unit", "n_obs", "n_events", "expected", "vlad",
                               "limit_upper", "arl0_upper", "arl1_upper", "n_signals_upper", "first_signal_upper",
                               "limit_lower", "arl0_lower", "arl1_lower", "n_signals_lower", "first_signal_lower"]]
    return RiskAdjustedCusum(
        data=table, signals=sig_table, units=units_table, odds_ratio_upper=ra_up, odds_ratio_lower=ra_low,
        odds_ratio_null=r0, arl0=None if targets is None else (targets.get("upper"), targets.get("lower")),
        reset=bool(reset), outcome=outcome, risk=risk, unit=unit, time=time, n_obs=int(len(table)),
        n_units=len(units_table),
    )
