r"""How long does delivery last? Non-parametric estimators of the time to de-adoption.

The event studied is *de-adoption*: a site (or any unit) stops delivering the innovation. Each row of
the data is one unit, with the time from the start of its follow-up (adoption, or the end of the
scale-up support) to de-adoption, or to the end of follow-up while it still delivers (censored).

* :func:`kaplan_meier` -- the Kaplan-Meier estimate of the probability of still delivering, with
  Greenwood standard errors, confidence bands, median time and quantiles with their intervals, a risk
  table, and the log-rank test across the cells of ``by`` (R: ``survfit``, ``quantile``,
  ``summary(fit, times =)``, ``survdiff``);
* :func:`cumulative_incidence` -- when units stop for competing reasons (loss of funding, staff
  turnover, replacement by another practice), the Aalen-Johansen probability of having stopped for each
  reason, with infinitesimal-jackknife standard errors (R: multi-state ``survfit``);
* :func:`concordance` -- Harrell's C: does a site characteristic (a readiness score, say) rank sites
  by how long they keep delivering? (R: ``concordance``).

Every number equals R's survival package (Therneau, version 3.5) to rounding error; the tests compare
them (``tests/reference/ref_survival.R``).

References
----------
Kaplan, E. L., & Meier, P. (1958). Nonparametric estimation from incomplete observations. Journal of
the American Statistical Association, 53(282), 457-481.

Aalen, O. O., & Johansen, S. (1978). An empirical transition matrix for non-homogeneous Markov chains
based on censored observations. Scandinavian Journal of Statistics, 5(3), 141-150.

Harrell, F. E., Califf, R. M., Pryor, D. B., Lee, K. L., & Rosati, R. A. (1982). Evaluating the yield
of medical tests. JAMA, 247(18), 2543-2546.

Therneau, T. M. (2024). A Package for Survival Analysis in R. R package version 3.5,
https://CRAN.R-project.org/package=survival (vignettes "compete" and "concordance").

Wiltsey Stirman, S., Kimberly, J., Cook, N., Calloway, A., Castro, F., & Charns, M. (2012). The
sustainability of new programs and innovations: a review of the empirical literature and
recommendations for future research. Implementation Science, 7, 17.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_level, checked_inputs, first_values, numeric_column, require_columns, rows_text
from .._display import Displayed, num_cell, text_table
from .._style import NEUTRAL, OUTSIDE, PALETTE, data_text, new_axes, styled, ticks_inside
from ..errors import ScaleupDataError, ScaleupWarning
from ..i18n import N_

__all__ = [
    "kaplan_meier",
    "cumulative_incidence",
    "concordance",
    "KaplanMeierResult",
    "CumulativeIncidenceResult",
    "ConcordanceResult",
]

#: R's ``sqrt(.Machine$double.eps)``: times closer than this are tied (``aeqSurv``), and a curve
#: within this of a probability is "exactly" at it (``quantile.survfit``, ``print.survfit``).
_TOL = math.sqrt(np.finfo(float).eps)
_CONF_TYPES = {"log": N_("log"), "log-log": N_("log-log"), "plain": N_("plain")}
_LINESTYLES = ("-", "--", "-.", ":")
#: pairs compared at once by :func:`concordance` (memory of one block of the pair matrix)
_PAIR_BLOCK = 4_000_000


# --------------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------------
def _by_columns(by, fn: str) -> list:
    if by is None:
        return []
    cols = [by] if isinstance(by, str) else by
    if not isinstance(cols, (list, tuple)) or not cols or not all(isinstance(c, str) for c in cols):
        raise ScaleupDataError(
            f"{fn}: argument 'by' must be a column name or a list of column names (or None), got {by!r}."
        )
    if len(set(cols)) != len(cols):
        raise ScaleupDataError(f"{fn}: argument 'by' names a column twice: {list(cols)}.")
    return list(cols)


def _value_key(v):
    """Sort key putting numbers (numerically) before texts (alphabetically)."""
    if isinstance(v, (bool, np.bool_)):
        return (0, float(v), "")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (0, float(v), "")
    return (1, 0.0, str(v))


def _facet_index(data: pd.DataFrame, by_cols: list, fn: str) -> tuple[np.ndarray, list]:
    """Index (0, 1, ...) of each row's facet and the facets in order (``"all"`` without ``by``).

    Facets are sorted: by category order for a categorical column, else numbers numerically and texts
    alphabetically (R sorts the levels of its strata the same way for numbers and for ASCII text);
    with several columns, the first varies slowest.
    """
    n = len(data)
    if not by_cols:
        return np.zeros(n, dtype=int), ["all"]
    keys_per_col = []
    for col in by_cols:
        s = data[col]
        miss = s.isna().to_numpy()
        if miss.any():
            raise ScaleupDataError(
                f"{fn}: table 'data', column {col!r} (argument 'by'): {rows_text(data, miss, label='first:')} "
                "are missing, so their facet is unknown. Fill in the values or drop these rows."
            )
        if isinstance(s.dtype, pd.CategoricalDtype):
            rank = {c: i for i, c in enumerate(s.cat.categories)}
            keys_per_col.append([(0, float(rank[v]), "") for v in s.tolist()])
        else:
            keys_per_col.append([_value_key(v) for v in s.tolist()])
    values = [data[c].tolist() for c in by_cols]
    labels = values[0] if len(by_cols) == 1 else list(zip(*values))
    keys = keys_per_col[0] if len(by_cols) == 1 else list(zip(*keys_per_col))
    first = {}
    for k, lab in zip(keys, labels):
        first.setdefault(k, lab)
    order = sorted(first)
    pos = {k: i for i, k in enumerate(order)}
    return np.array([pos[k] for k in keys], dtype=int), [first[k] for k in order]


def _times(data: pd.DataFrame, time: str, fn: str) -> np.ndarray:
    """The ``time`` column as floats >= 0, tied as R's ``aeqSurv`` ties them."""
    t = numeric_column(data, time, f"{fn}: table 'data'", arg="time", booleans=False)
    neg = t < 0
    if neg.any():
        raise ScaleupDataError(
            f"{fn}: table 'data', column {time!r} (argument 'time'): {rows_text(data, neg, label='first:')} are "
            f"negative (values {first_values(t[neg])}). Times run from the start of follow-up (adoption) to "
            "de-adoption or censoring, so they are >= 0; correct these rows."
        )
    return _timefix(t)


def _timefix(t: np.ndarray) -> np.ndarray:
    """R's ``aeqSurv``: distinct times closer than :data:`_TOL` (absolutely, or relative to the mean
    of the distinct times) are replaced by the smallest of them, so that rounding error in
    computed times does not split a tie."""
    y = np.unique(t)
    if y.size < 2:
        return t
    dy = np.diff(y)
    tied = (dy <= _TOL) | (dy / np.mean(np.abs(y)) <= _TOL)
    if not tied.any():
        return t
    cuts = y[np.concatenate([[True], ~tied])]
    return cuts[np.searchsorted(cuts, t, side="right") - 1]


def _events01(data: pd.DataFrame, event: str, fn: str) -> np.ndarray:
    e = numeric_column(data, event, f"{fn}: table 'data'", arg="event")
    bad = (e != 0) & (e != 1)
    if bad.any():
        raise ScaleupDataError(
            f"{fn}: table 'data', column {event!r} (argument 'event'): {rows_text(data, bad, label='first:')} are "
            f"neither 0 nor 1 (values {first_values(e[bad])}). Code 1 for a de-adoption observed and 0 for a unit "
            "still delivering at the end of its follow-up (censored); for several reasons of stopping, use "
            "cumulative_incidence()."
        )
    return e


# --------------------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------------------
def _confint(p: np.ndarray, log_se: np.ndarray, conf_type: str, level: float) -> tuple[np.ndarray, np.ndarray]:
    """R's ``survfit_confint(p, se, logse = TRUE, conf.type, conf.int)``: ``log_se`` is the standard
    error of log(p). Undefined limits (p = 0; p = 0 or 1 for log-log) are NaN, as R's NA."""
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            se2 = log_se * p * z
            return np.maximum(p - se2, 0.0), np.minimum(p + se2, 1.0)
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * log_se
            return np.exp(np.log(xx) - se2), np.minimum(np.exp(np.log(xx) + se2), 1.0)
        xx = np.where((p == 0) | (p == 1), np.nan, p)
        se2 = z * log_se / np.log(xx)
        return np.exp(-np.exp(np.log(-np.log(xx)) - se2)), np.exp(-np.exp(np.log(-np.log(xx)) + se2))


def _km_curve(t: np.ndarray, e: np.ndarray, conf_type: str, level: float) -> dict:
    """Kaplan-Meier curve of one facet, one entry per distinct time (events and censorings)."""
    ut, inv = np.unique(t, return_inverse=True)
    n_event = np.bincount(inv, weights=e, minlength=ut.size)
    n_all = np.bincount(inv, minlength=ut.size).astype(float)
    n_risk = np.cumsum(n_all[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod((n_risk - n_event) / n_risk)
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        log_se = np.sqrt(np.cumsum(term))
        se = surv * log_se
    low, high = _confint(surv, log_se, conf_type, level)
    return {"time": ut, "n_risk": n_risk.astype(int), "n_event": n_event.astype(int),
            "n_censor": (n_all - n_event).astype(int), "estimate": surv, "se": se,
            "log_estimate_se": log_se, "ci_low": low, "ci_high": high}


def _minmin(y: np.ndarray, x: np.ndarray) -> float:
    """The median of ``print.survfit`` (R's ``survmean``): the first time the curve ``y`` is at or
    below 0.5; if it is exactly 0.5 there and drops later, the midpoint to the time it drops."""
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not keep.any():
        return math.nan
    x, y = x[keep], y[keep]
    below = y < y[0]
    if abs(y[0] - 0.5) < _TOL and below.any():
        return float((x[0] + x[np.argmax(below)]) / 2)
    return float(x[0])


def _approx_right(xs: np.ndarray, ys: np.ndarray, v: float) -> float:
    """R's ``approx(xs, ys, v, method = "constant", f = 1)`` (NaN pairs dropped, no extrapolation)."""
    ok = ~np.isnan(xs)
    xs, ys = xs[ok], ys[ok]
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if xs.size == 0 or v < xs[0] or v > xs[-1]:
        return math.nan
    return float(ys[np.searchsorted(xs, v, side="left")])


def _findq(x: np.ndarray, y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's ``survival:::findq``: the times at which the cumulative curve ``y`` (1 - survival, starting
    at 0 at the first ``x``) reaches each of ``probs``, with the midpoint rule for a flat stretch at
    exactly the probability (to the last time when the curve ends there)."""
    if np.all(np.isnan(y)) or np.nanmax(y) < probs.min():
        return np.full(probs.size, np.nan)
    xmax = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()  # first time at each level (NaN counted as a level)
    x, y = x[keep], y[keep]
    idx = np.arange(y.size, dtype=float)
    out = np.empty(probs.size)
    for i, p in enumerate(probs):
        i1 = _approx_right(y + _TOL, idx, p)
        i2 = _approx_right(y - _TOL, idx, p)
        q = (x[int(i1)] + x[int(i2)]) / 2 if not (np.isnan(i1) or np.isnan(i2)) else math.nan
        if p == 0:
            q = x[0]
        if not np.isnan(y[-1]) and abs(p - y[-1]) < _TOL:
            q = (x[int(i1)] + xmax) / 2 if not np.isnan(i1) else math.nan
        out[i] = q
    return out


def _logrank(t: np.ndarray, e: np.ndarray, g: np.ndarray, n_groups: int) -> dict:
    """Log-rank test (R's ``survdiff``, rho = 0): observed and expected events per group, their
    covariance, and the chi-square on the groups with expected events > 0."""
    ut, inv = np.unique(t, return_inverse=True)
    counts = np.zeros((ut.size, n_groups))
    deaths = np.zeros((ut.size, n_groups))
    np.add.at(counts, (inv, g), 1.0)
    np.add.at(deaths, (inv, g), e)
    at_risk = np.cumsum(counts[::-1], axis=0)[::-1]
    n = at_risk.sum(axis=1)
    d = deaths.sum(axis=1)
    expected = (at_risk * (d / n)[:, None]).sum(axis=0)
    observed = deaths.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n * n * (n - 1)), 0.0)
    var = np.diag((w * n) @ at_risk) - at_risk.T @ (w[:, None] * at_risk)
    used = expected > 0
    df = int(used.sum()) - 1
    if df < 1:
        stat = math.nan
        pvalue = math.nan
    else:
        diff = (observed - expected)[used][1:]
        vv = var[np.ix_(used, used)][1:, 1:]
        try:
            stat = float(diff @ np.linalg.solve(vv, diff))
        except np.linalg.LinAlgError:
            stat = float(diff @ np.linalg.pinv(vv) @ diff)
        pvalue = float(stats.chi2.sf(stat, df))
    return {"observed": observed, "expected": expected, "var": var, "statistic": stat,
            "df": df if df >= 1 else math.nan, "pvalue": pvalue}


def _blocks(table: pd.DataFrame, cols: list) -> list:
    """``[(key, rows), ...]`` of the runs of equal ``cols`` values, in table order (a result's table holds
    each facet, or facet x cause, in one run; a facet may be a tuple, which ``groupby`` would unpack)."""
    keys = list(zip(*[table[c].tolist() for c in cols]))
    starts = [k for k in range(len(keys)) if k == 0 or keys[k] != keys[k - 1]] + [len(keys)]
    out = []
    for a, b in zip(starts[:-1], starts[1:]):
        key = keys[a] if len(cols) > 1 else keys[a][0]
        out.append((key, table.iloc[a:b]))
    return out


def _facet_label(facet, figure: bool = True) -> str:
    """A facet as text: in a figure (``figure``: text from the data, never mathtext) or a summary."""
    show = data_text if figure else str
    if isinstance(facet, tuple):
        return ", ".join(show(v) for v in facet)
    return show(facet)


def _time_digits(tx, *values) -> int:
    """Decimals to show times with: none for whole numbers (days, months), else as ``tx.digits_for``."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    if all(v.is_integer() for v in finite):
        return 0
    return tx.digits_for(*finite, minimum=1)


@dataclass(frozen=True, eq=False, repr=False)
class KaplanMeierResult(Displayed):
    """Result of :func:`kaplan_meier`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per facet and distinct time (of a de-adoption or a censoring), as R's ``survfit``:
        ``facet``, ``time``, ``n_risk`` (units still followed and delivering just before ``time``),
        ``n_event`` (de-adoptions at ``time``), ``n_censor`` (units censored at ``time``),
        ``estimate`` (Kaplan-Meier probability of still delivering after ``time``), ``se`` (its
        Greenwood standard error, R's ``summary(fit)$std.err``; NaN once the estimate is 0, as R's
        0 x Inf), ``log_estimate_se`` (standard error of log(estimate), i.e. of the Kaplan-Meier
        cumulative hazard -log(estimate): R's ``fit$std.err``; infinite once the estimate is 0),
        ``ci_low``, ``ci_high`` (R's ``lower``, ``upper``).
    medians : pandas.DataFrame
        One row per facet: ``facet``, ``n`` (units), ``n_event`` (de-adoptions), ``expected``
        (de-adoptions expected under equal survival, the log-rank test's; NaN without ``by``), ``median``
        time to de-adoption with ``median_ci_low``, ``median_ci_high`` (as ``print(survfit)``: NaN when
        the curve, or the confidence limit, never falls to 0.5).
    logrank, logrank_df, logrank_pvalue : float
        Log-rank chi-square statistic of equal survival across the facets, its degrees of freedom and
        p-value (R's ``survdiff``; NaN with fewer than two facets that can be compared).
    level : float
    conf_type : str
        ``"log"``, ``"log-log"`` or ``"plain"``: the scale of the confidence intervals.
    by : list of str or None
        The columns defining the facets.
    """

    table: pd.DataFrame = field(repr=False)
    medians: pd.DataFrame = field(repr=False)
    logrank: float
    logrank_df: float
    logrank_pvalue: float
    level: float
    conf_type: str
    by: list | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tidy table of the curves (one row per facet and distinct time)."""
        return self.table.copy()

    @property
    def facets(self) -> list:
        """The facets (cells of ``by``), in order; ``["all"]`` without ``by``."""
        return list(self.medians["facet"])

    def _repr_fields(self) -> dict:
        m = self.medians
        out = {"n": int(m["n"].sum()), "n_event": int(m["n_event"].sum()), "n_facets": len(m)}
        if len(m) == 1:
            out["median"] = float(m["median"].iloc[0])
            out["median_ci"] = (float(m["median_ci_low"].iloc[0]), float(m["median_ci_high"].iloc[0]))
        else:
            out.update(logrank=self.logrank, logrank_df=self.logrank_df, logrank_pvalue=self.logrank_pvalue)
        out.update(level=self.level, conf_type=self.conf_type)
        return out

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        lines = [tx("Kaplan-Meier estimate of the time to de-adoption (a unit stops delivering the innovation)."),
                 tx("{level} confidence intervals on the {scale} scale.", level=level,
                    scale=tx(_CONF_TYPES[self.conf_type]))]
        rows = []
        for r in self.medians.itertuples(index=False):
            d = _time_digits(tx, r.median, r.median_ci_low, r.median_ci_high)
            rows.append([_facet_label(r.facet, False) if len(self.medians) > 1 else tx("All units"), tx.int(r.n),
                         tx.int(r.n_event), num_cell(tx, r.median, d),
                         tx("{low} to {high}", low=num_cell(tx, r.median_ci_low, d),
                            high=num_cell(tx, r.median_ci_high, d))])
        facet_header = ", ".join(self.by) if self.by else tx("Facet")
        lines.append(text_table([facet_header, tx("Units"), tx("De-adoptions"), tx("Median time"),
                                 tx("{level} CI", level=level)], rows))
        lines.append(tx("'-': not reached (the curve, or its confidence limit, stays above {half} during follow-up).",
                        half=tx.num(0.5, 1)))
        if np.isfinite(self.logrank):
            lines.append(tx("Log-rank test of equal survival across facets: chi-square({df}) = {statistic}, {p}.",
                            df=tx.int(self.logrank_df), statistic=tx.num(self.logrank, 2),
                            p=tx.pvalue(self.logrank_pvalue)))
        elif len(self.medians) > 1:
            lines.append(tx("Log-rank test: not computable (fewer than two facets have units at risk at a "
                            "de-adoption time)."))
        return "\n".join(lines)

    def quantile(self, probs: Sequence[float] = (0.25, 0.5, 0.75)) -> pd.DataFrame:
        """Times by which a share ``probs`` of the units has de-adopted, with confidence intervals.

        As R's ``quantile(fit, probs)``: the first time the curve falls to 1 - p; when it is flat at
        exactly 1 - p, the midpoint of that stretch (up to the last follow-up time when the curve
        ends there, where ``print(survfit)``'s median, in :attr:`medians`, takes the stretch's
        start). The interval is read from the confidence limits of the curve the same way.

        Parameters
        ----------
        probs : sequence of float
            Probabilities of de-adoption, in [0, 1].

        Returns
        -------
        pandas.DataFrame
            ``facet``, ``prob``, ``estimate``, ``ci_low``, ``ci_high`` (NaN where not reached).
        """
        p = np.asarray(probs, dtype=float).ravel()
        if p.size == 0 or not np.all((p >= 0) & (p <= 1)):
            raise ScaleupDataError(
                f"KaplanMeierResult.quantile: 'probs' must be probabilities in [0, 1], got {probs!r}."
            )
        rows = []
        for facet, g in _blocks(self.table, ["facet"]):
            x = np.concatenate([[0.0], g["time"].to_numpy(float)])
            est = _findq(x, np.concatenate([[0.0], 1 - g["estimate"].to_numpy(float)]), p)
            low = _findq(x, np.concatenate([[0.0], 1 - g["ci_low"].to_numpy(float)]), p)
            high = _findq(x, np.concatenate([[0.0], 1 - g["ci_high"].to_numpy(float)]), p)
            for j, pj in enumerate(p):
                rows.append({"facet": facet, "prob": float(pj), "estimate": est[j], "ci_low": low[j],
                             "ci_high": high[j]})
        return pd.DataFrame(rows, columns=["facet", "prob", "estimate", "ci_low", "ci_high"])

    def risk_table(self, times: Sequence[float]) -> pd.DataFrame:
        """Units at risk, de-adoptions and the estimate at given times, per facet.

        As R's ``summary(fit, times = times)``: ``n_risk`` counts the units still followed and
        delivering at ``time`` (followed up to ``time`` or beyond); ``n_event`` and ``n_censor`` count
        the de-adoptions and censorings since the previous time asked for (since 0 for the first);
        ``cum_n_event`` the de-adoptions up to ``time``; ``estimate``, ``se``, ``ci_low``, ``ci_high``
        are the curve's at ``time`` (1, 0, 1, 1 before the facet's first time). Times after a facet's
        last follow-up time are left out for that facet (R's ``extend = FALSE``).

        Parameters
        ----------
        times : sequence of float
            Finite times >= 0 (sorted here).

        Returns
        -------
        pandas.DataFrame
            ``facet``, ``time``, ``n_risk``, ``n_event``, ``n_censor``, ``cum_n_event``, ``estimate``,
            ``se``, ``ci_low``, ``ci_high``.
        """
        tt = np.asarray(times, dtype=float).ravel() if not isinstance(times, (str, bytes)) else np.array([np.nan])
        if tt.size == 0 or not np.all(np.isfinite(tt)) or np.any(tt < 0):
            raise ScaleupDataError(
                "KaplanMeierResult.risk_table: 'times' must be finite times >= 0, got "
                f"{first_values(np.atleast_1d(times))}."
            )
        tt = np.sort(tt)
        cols = ["facet", "time", "n_risk", "n_event", "n_censor", "cum_n_event", "estimate", "se", "ci_low",
                "ci_high"]
        rows = []
        for facet, g in _blocks(self.table, ["facet"]):
            time = g["time"].to_numpy(float)
            pt = tt[tt <= time[-1]]
            i1 = np.searchsorted(time, pt, side="right")  # rows at or before each time
            i2 = np.searchsorted(time, pt, side="left")   # first row at or after
            n_risk = np.append(g["n_risk"].to_numpy(), 0)[i2]
            cum_e = np.concatenate([[0], np.cumsum(g["n_event"].to_numpy())])[i1]
            cum_c = np.concatenate([[0], np.cumsum(g["n_censor"].to_numpy())])[i1]
            pick = {}
            for col, before in (("estimate", 1.0), ("se", 0.0), ("ci_low", 1.0), ("ci_high", 1.0)):
                pick[col] = np.concatenate([[before], g[col].to_numpy(float)])[i1]
            for k in range(pt.size):
                rows.append([facet, pt[k], int(n_risk[k]), int(cum_e[k] - (cum_e[k - 1] if k else 0)),
                             int(cum_c[k] - (cum_c[k - 1] if k else 0)), int(cum_e[k]), pick["estimate"][k],
                             pick["se"][k], pick["ci_low"][k], pick["ci_high"][k]])
        return pd.DataFrame(rows, columns=cols)

    @styled
    def plot_survival(self, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                      ax=None):
        """Kaplan-Meier curves (steps) with their confidence bands and a tick at each censoring.

        One curve per facet (colour and line style), the band of the same colour, the ``+`` marks the
        times at which units were censored (still delivering at the end of their follow-up).
        """
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        from ..narrative import Text

        tx = Text()
        ax = new_axes(ax, (8.0, 4.8))
        facets = self.facets
        handles = []
        for i, (facet, g) in enumerate(_blocks(self.table, ["facet"])):
            colour, style = PALETTE[i % len(PALETTE)], _LINESTYLES[i % len(_LINESTYLES)]
            start = min(0.0, float(g["time"].iloc[0]))
            x = np.concatenate([[start], g["time"].to_numpy(float)])
            y = np.concatenate([[1.0], g["estimate"].to_numpy(float)])
            lo = np.concatenate([[1.0], g["ci_low"].to_numpy(float)])
            hi = np.concatenate([[1.0], g["ci_high"].to_numpy(float)])
            ax.fill_between(x, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)
            ax.step(x, y, where="post", color=colour, linestyle=style, lw=1.6)
            cens = (g["n_censor"] > 0).to_numpy()
            ax.plot(g["time"].to_numpy(float)[cens], g["estimate"].to_numpy(float)[cens], ls="none", marker="+",
                    color=colour, markersize=7, markeredgewidth=1.2)
            label = _facet_label(facet) if len(facets) > 1 else tx("All units")
            handles.append(Line2D([], [], color=colour, lw=1.6, linestyle=style, label=label))
        handles += [Patch(facecolor=NEUTRAL, alpha=0.3, label=tx("{level} CI", level=tx.pct(self.level))),
                    Line2D([], [], ls="none", marker="+", color=NEUTRAL, markersize=7,
                           label=tx("Censored (still delivering at end of follow-up)"))]
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=min(0.0, float(self.table["time"].min())))
        ax.set_xlabel(tx("Time since the start of follow-up") if xlabel is None else xlabel)
        ax.set_ylabel(tx("Probability of still delivering") if ylabel is None else ylabel)
        ax.set_title(tx("Time to de-adoption (Kaplan-Meier)") if title is None else title)
        ax.legend(handles=handles, title=", ".join(data_text(b) for b in self.by) if self.by else None, **OUTSIDE)
        ticks_inside(ax, "xy")
        return ax


@checked_inputs
def kaplan_meier(
    data: pd.DataFrame,
    *,
    time: str = "time",
    event: str = "event",
    by: str | Sequence[str] | None = None,
    level: float = 0.95,
    conf_type: str = "log",
) -> KaplanMeierResult:
    r"""Kaplan-Meier estimate of the time to de-adoption, per facet, with the log-rank test.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (site).
    time : str, default "time"
        Column of the time from the start of follow-up to de-adoption, or to the end of follow-up
        (censoring) for a unit still delivering; finite and >= 0.
    event : str, default "event"
        0/1 column: 1 = de-adoption observed at ``time``, 0 = censored (still delivering then).
    by : str or list of str, optional
        Column(s) whose cells (facets) get their own curve, compared by the log-rank test.
    level : float
        Coverage of the confidence intervals.
    conf_type : {"log", "log-log", "plain"}
        Scale on which the normal interval is built (R's ``conf.type``; ``"log"`` is R's default).

    Returns
    -------
    KaplanMeierResult
        ``.table`` (one row per facet and distinct time), ``.medians``, ``.logrank``,
        ``.logrank_df``, ``.logrank_pvalue``; ``.risk_table(times)``, ``.quantile(probs)``,
        ``.plot_survival()``.

    Notes
    -----
    At the distinct times :math:`t_1 < t_2 < \dots` of a facet, with :math:`n_k` units at risk
    (time :math:`\ge t_k`) and :math:`d_k` de-adoptions at :math:`t_k`,

    .. math:: \hat S(t) = \prod_{t_k \le t} \Bigl(1 - \frac{d_k}{n_k}\Bigr), \qquad
              \widehat{SE}\{\log \hat S(t)\} = \sqrt{\sum_{t_k \le t} \frac{d_k}{n_k (n_k - d_k)}}

    (Greenwood). ``log_estimate_se`` is the second (R's ``survfit()$std.err``, infinite once
    :math:`\hat S = 0`); ``se`` is :math:`\hat S \times` it, the standard error of :math:`\hat S`
    (R's ``summary()$std.err``). With :math:`z = \Phi^{-1}((1 + \text{level})/2)` and
    :math:`s = \widehat{SE}\{\log \hat S\}`, the intervals are :math:`\hat S \exp(\pm z s)` (log;
    upper limit capped at 1), :math:`\hat S^{\exp(\pm z s / \log \hat S)}` (log-log) and
    :math:`\hat S \pm z \hat S s` (plain, clipped to [0, 1]); a limit that is undefined (at
    :math:`\hat S = 0`, and at :math:`\hat S = 1` for log-log) is NaN, as R's NA.

    The median is the first time with :math:`\hat S \le 0.5`, or the midpoint to the next
    de-adoption when :math:`\hat S` is exactly 0.5 there; its interval is where the confidence
    limits fall to 0.5 (Brookmeyer & Crowley 1982), as ``print(survfit)``.

    The log-rank statistic is :math:`(O - E)^\top V^{-1} (O - E)` over the facets but one, with
    :math:`O_j` the de-adoptions of facet :math:`j`, :math:`E_j = \sum_k n_{jk} d_k / n_k` and
    :math:`V_{jl} = \sum_k d_k (n_k - d_k) n_{jk} (n_k \delta_{jl} - n_{lk}) / (n_k^2 (n_k - 1))`,
    on :math:`J - 1` degrees of freedom (facets with :math:`E_j > 0`), as R's ``survdiff``.

    Times closer than :math:`\sqrt{\epsilon} \approx 1.5 \times 10^{-8}` (absolutely, or relative
    to the mean time) are tied first, as R's ``aeqSurv`` (``timefix = TRUE``) does. Every number
    equals R's ``survival`` 3.5 (``tests/reference/ref_survival.R``).

    References
    ----------
    Kaplan, E. L., & Meier, P. (1958). Nonparametric estimation from incomplete observations. Journal
    of the American Statistical Association, 53(282), 457-481.

    Brookmeyer, R., & Crowley, J. (1982). A confidence interval for the median survival time.
    Biometrics, 38(1), 29-41.

    Therneau, T. M., & Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox Model.
    Springer.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis.sustainment.survival import kaplan_meier
    >>> sites = pd.DataFrame({"years": [1, 2, 2, 3, 4, 5, 5, 6],
    ...                       "stopped": [1, 1, 0, 1, 0, 1, 0, 0],
    ...                       "support": ["none", "none", "none", "none", "coach", "coach", "coach", "coach"]})
    >>> km = kaplan_meier(sites, time="years", event="stopped")
    >>> km.to_frame()[["time", "n_risk", "n_event", "n_censor", "estimate", "se"]].round(3)
       time  n_risk  n_event  n_censor  estimate     se
    0   1.0       8        1         0     0.875  0.117
    1   2.0       7        1         1     0.750  0.153
    2   3.0       5        1         0     0.600  0.182
    3   4.0       4        0         1     0.600  0.182
    4   5.0       3        1         1     0.400  0.203
    5   6.0       1        0         1     0.400  0.203
    >>> float(km.medians["median"].iloc[0])
    5.0
    >>> by = kaplan_meier(sites, time="years", event="stopped", by="support")
    >>> round(by.logrank, 3), by.logrank_df
    (5.348, 1)
    """
    fn = "kaplan_meier"
    check_level(level, fn)
    if conf_type not in _CONF_TYPES:
        raise ScaleupDataError(f"{fn}: argument 'conf_type' must be one of {list(_CONF_TYPES)}, got {conf_type!r}.")
    by_cols = _by_columns(by, fn)
    require_columns(data, "data", [time, event, *by_cols], label=f"{fn}: table 'data'",
                    hint="Pass the names of the time, event and by columns as keyword arguments.")
    t = _times(data, time, fn)
    e = _events01(data, event, fn)
    g, facets = _facet_index(data, by_cols, fn)
    parts, med_rows = [], []
    for i, facet in enumerate(facets):
        rows = g == i
        c = _km_curve(t[rows], e[rows], conf_type, level)
        part = pd.DataFrame(c)
        part.insert(0, "facet", pd.Series([facet] * len(part), dtype=object))
        parts.append(part)
        med_rows.append({"facet": facet, "n": int(rows.sum()), "n_event": int(e[rows].sum()),
                         "median": _minmin(c["estimate"], c["time"]),
                         "median_ci_low": _minmin(c["ci_low"], c["time"]),
                         "median_ci_high": _minmin(c["ci_high"], c["time"])})
    table = pd.concat(parts, ignore_index=True)
    medians = pd.DataFrame(med_rows)
    medians.insert(3, "expected", math.nan)
    lr = {"statistic": math.nan, "df": math.nan, "pvalue": math.nan}
    if len(facets) > 1:
        lr = _logrank(t, e, g, len(facets))
        medians["expected"] = lr["expected"]
    medians["facet"] = pd.Series(list(medians["facet"]), dtype=object)
    return KaplanMeierResult(table=table, medians=medians, logrank=lr["statistic"], logrank_df=lr["df"],
                             logrank_pvalue=lr["pvalue"], level=float(level), conf_type=conf_type,
                             by=by_cols or None)


# --------------------------------------------------------------------------------------------------
# competing reasons of de-adoption: Aalen-Johansen
# --------------------------------------------------------------------------------------------------
def _aj_curve(t: np.ndarray, c: np.ndarray, n_causes: int) -> dict:
    """Aalen-Johansen probabilities of each cause (``c``: 0 = censored, 1..K) for one facet, with
    their infinitesimal-jackknife standard errors (R's multi-state ``survfit``)."""
    ut, inv = np.unique(t, return_inverse=True)
    n = t.size
    n_risk = np.cumsum(np.bincount(inv, minlength=ut.size)[::-1])[::-1]
    d_all = np.zeros((ut.size, n_causes))
    ev = c > 0
    np.add.at(d_all, (inv[ev], c[ev] - 1), 1.0)
    p0 = 1.0
    P = np.zeros(n_causes)
    U0 = np.zeros(n)             # influence of each unit on the probability of no de-adoption yet
    U = np.zeros((n, n_causes))  # ... on the cumulative incidence of each cause
    estimate = np.zeros((ut.size, n_causes))
    se = np.zeros((ut.size, n_causes))
    se_k = np.zeros(n_causes)
    for k, tk in enumerate(ut):
        d = d_all[k]
        if d.any():  # a time with censorings only changes nothing
            at_risk = (t >= tk).astype(float)
            nr = float(n_risk[k])
            lam = d / nr
            total = lam.sum()
            here = np.flatnonzero((inv == k) & ev)
            # U_ij += U_i0 lam_j + p0 (dN_ij - Y_i lam_j) / n ;  U_i0 = U_i0 (1 - sum lam) - p0 (dN_i - Y_i sum lam) / n
            U += np.outer(U0, lam) - np.outer(at_risk, p0 * lam / nr)
            U[here, c[here] - 1] += p0 / nr
            U0 = U0 * (1 - total) + at_risk * (p0 * total / nr)
            U0[here] -= p0 / nr
            P = P + p0 * lam
            p0 = p0 * (1 - total)
            se_k = np.sqrt((U ** 2).sum(axis=0))
        estimate[k] = P
        se[k] = se_k
    return {"time": ut, "n_risk": n_risk.astype(int), "estimate": estimate, "se": se,
            "n_event": d_all.astype(int)}


@dataclass(frozen=True, eq=False, repr=False)
class CumulativeIncidenceResult(Displayed):
    """Result of :func:`cumulative_incidence`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per facet, cause and distinct time: ``facet``, ``cause``, ``time``, ``n_risk``
        (units still delivering and followed just before ``time``), ``n_event`` (de-adoptions for that
        cause at ``time``), ``estimate`` (Aalen-Johansen probability of having stopped for that cause
        by ``time``), ``se`` (infinitesimal-jackknife standard error), ``ci_low``, ``ci_high``.
    causes : list
        The causes (values of ``event`` other than ``censored``), in order.
    level : float
    by : list of str or None
    """

    table: pd.DataFrame = field(repr=False)
    causes: list
    level: float
    by: list | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (one row per facet, cause and distinct time)."""
        return self.table.copy()

    @property
    def facets(self) -> list:
        """The facets (cells of ``by``), in order; ``["all"]`` without ``by``."""
        return [key for key, _ in _blocks(self.table, ["facet"])]

    def _final(self) -> pd.DataFrame:
        """The last row of every facet x cause, with the de-adoptions of that cause in ``n_event``."""
        rows = []
        for _, g in _blocks(self.table, ["facet", "cause"]):
            last = g.iloc[-1].copy()
            last["n_event"] = int(g["n_event"].sum())
            rows.append(last)
        return pd.DataFrame(rows)

    def _repr_fields(self) -> dict:
        fin = self._final()
        return {"causes": [str(c) for c in self.causes], "n_facets": len(self.facets),
                "estimate": [float(v) for v in fin["estimate"]], "level": self.level}

    def _summary(self, tx) -> str:
        lines = [tx("Cumulative incidence of de-adoption by cause (Aalen-Johansen), with competing causes."),
                 tx("Probability of having stopped for each cause by the end of follow-up ({level} CI, log scale):",
                    level=tx.pct(self.level))]
        rows = []
        final = self._final()
        d = _time_digits(tx, *final["time"])
        for r in final.itertuples(index=False):
            rows.append([_facet_label(r.facet, False) if len(self.facets) > 1 else tx("All units"), str(r.cause),
                         tx.int(r.n_event), num_cell(tx, r.time, d), num_cell(tx, r.estimate, 3),
                         tx("{low} to {high}", low=num_cell(tx, r.ci_low, 3), high=num_cell(tx, r.ci_high, 3))])
        facet_header = ", ".join(self.by) if self.by else tx("Facet")
        lines.append(text_table([facet_header, tx("Cause"), tx("De-adoptions"), tx("Last time"),
                                 tx("Cumulative incidence"), tx("{level} CI", level=tx.pct(self.level))],
                                rows, left=(0, 1)))
        return "\n".join(lines)

    @styled
    def plot_incidence(self, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                       ax=None):
        """Cumulative incidence curves (steps) with confidence bands: one colour per cause, one line
        style per facet."""
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        from ..narrative import Text

        tx = Text()
        ax = new_axes(ax, (8.0, 4.8))
        facets = self.facets
        handles = []
        blocks = _blocks(self.table, ["facet", "cause"])
        for j in range(len(self.causes)):
            colour = PALETTE[j % len(PALETTE)]
            for i in range(len(facets)):
                (facet, cause), g = blocks[i * len(self.causes) + j]
                style = _LINESTYLES[i % len(_LINESTYLES)]
                x = np.concatenate([[min(0.0, float(g["time"].iloc[0]))], g["time"].to_numpy(float)])
                y = np.concatenate([[0.0], g["estimate"].to_numpy(float)])
                lo = np.concatenate([[0.0], g["ci_low"].to_numpy(float)])
                hi = np.concatenate([[0.0], g["ci_high"].to_numpy(float)])
                ax.fill_between(x, lo, hi, step="post", color=colour, alpha=0.12, linewidth=0)
                ax.step(x, y, where="post", color=colour, linestyle=style, lw=1.6)
                label = data_text(cause) if len(facets) == 1 else f"{data_text(cause)} ({_facet_label(facet)})"
                handles.append(Line2D([], [], color=colour, linestyle=style, lw=1.6, label=label))
        handles.append(Patch(facecolor=NEUTRAL, alpha=0.3, label=tx("{level} CI", level=tx.pct(self.level))))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(tx("Time since the start of follow-up") if xlabel is None else xlabel)
        ax.set_ylabel(tx("Probability of having stopped, by cause") if ylabel is None else ylabel)
        ax.set_title(tx("De-adoption by cause (cumulative incidence)") if title is None else title)
        ax.legend(handles=handles, title=tx("Cause"), **OUTSIDE)
        ticks_inside(ax, "xy")
        return ax


@checked_inputs
def cumulative_incidence(
    data: pd.DataFrame,
    *,
    time: str = "time",
    event: str,
    by: str | Sequence[str] | None = None,
    level: float = 0.95,
    censored=0,
) -> CumulativeIncidenceResult:
    r"""Cumulative incidence of de-adoption for each of several competing causes (Aalen-Johansen).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (site).
    time : str, default "time"
        Column of the time from the start of follow-up to de-adoption or censoring (finite, >= 0).
    event : str
        Column of the cause of de-adoption (numbers or texts, e.g. ``"funding"``, ``"staff"``), or
        ``censored`` for a unit still delivering at the end of its follow-up.
    by : str or list of str, optional
        Column(s) whose cells (facets) get their own curves.
    level : float
        Coverage of the confidence intervals.
    censored : optional
        The value of ``event`` that marks a censored row (0 by default; its text, ``"0"``, also counts).
        With causes written as text, code censoring as text too (``censored="censored"``); ``None``:
        a missing ``event`` marks a censored row (as the ``reason`` column of a table whose reason is
        empty unless the unit stopped).

    Returns
    -------
    CumulativeIncidenceResult
        ``.table`` / ``.to_frame()`` (facet, cause, time, n_risk, n_event, estimate, se, ci_low,
        ci_high), ``.causes``, ``.plot_incidence()``.

    Notes
    -----
    With :math:`n_k` units at risk at the distinct time :math:`t_k` of a facet, :math:`d_{jk}` of
    them stopping for cause :math:`j`, :math:`\lambda_{jk} = d_{jk} / n_k` and
    :math:`\hat S(t) = \prod_{t_k \le t} (1 - \sum_j \lambda_{jk})` (Kaplan-Meier of any cause),

    .. math:: \hat F_j(t) = \sum_{t_k \le t} \hat S(t_{k-1})\, \lambda_{jk} .

    The standard error is the infinitesimal jackknife of R's multi-state ``survfit``: the variance is
    :math:`\sum_i U_{ij}(t)^2`, with the influence of unit :math:`i` updated at each :math:`t_k`
    (:math:`Y_i` = 1 if at risk, :math:`dN_{ij}` = 1 if it stops for cause :math:`j` at :math:`t_k`) by

    .. math:: U_{ij} \leftarrow U_{ij} + U_{i0}\lambda_{jk} + \hat S(t_{k-1}) (dN_{ij} - Y_i \lambda_{jk}) / n_k,
              \quad U_{i0} \leftarrow U_{i0} (1 - \textstyle\sum_j \lambda_{jk})
              - \hat S(t_{k-1}) \sum_j (dN_{ij} - Y_i \lambda_{jk}) / n_k .

    The interval is R's default for multi-state curves, on the log scale:
    :math:`\hat F \exp(\pm z\, SE / \hat F)`, the upper limit capped at 1 (NaN where
    :math:`\hat F = 0`). One minus the Kaplan-Meier estimate is not the cumulative incidence of a cause
    when other causes compete: it counts the units that stopped for another reason as if they could
    still stop for this one (Putter, Fiocco & Geskus 2007). Times are tied as in :func:`kaplan_meier`.

    References
    ----------
    Aalen, O. O., & Johansen, S. (1978). An empirical transition matrix for non-homogeneous Markov
    chains based on censored observations. Scandinavian Journal of Statistics, 5(3), 141-150.

    Putter, H., Fiocco, M., & Geskus, R. B. (2007). Tutorial in biostatistics: competing risks and
    multi-state models. Statistics in Medicine, 26(11), 2389-2430.

    Therneau, T. M., Crowson, C., & Atkinson, E. Multi-state models and competing risks. Vignette
    "compete" of the R package survival.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis.sustainment.survival import cumulative_incidence
    >>> sites = pd.DataFrame({"years": [1, 2, 2, 3, 4, 5, 5, 6],
    ...                       "reason": ["funding", "staff", "none", "funding", "none", "staff", "none", "none"]})
    >>> ci = cumulative_incidence(sites, time="years", event="reason", censored="none")
    >>> ci.causes
    ['funding', 'staff']
    >>> last = ci.to_frame().groupby("cause").tail(1)
    >>> last[["cause", "estimate"]].round(3).values.tolist()
    [['funding', 0.275], ['staff', 0.325]]
    """
    fn = "cumulative_incidence"
    check_level(level, fn)
    by_cols = _by_columns(by, fn)
    require_columns(data, "data", [time, event, *by_cols], label=f"{fn}: table 'data'",
                    hint="Pass the names of the time, event and by columns as keyword arguments.")
    t = _times(data, time, fn)
    ev = data[event]
    miss = ev.isna().to_numpy()
    if censored is None:  # a missing cause marks a unit still delivering
        is_cens = miss
    elif miss.any():
        raise ScaleupDataError(
            f"{fn}: table 'data', column {event!r} (argument 'event'): {rows_text(data, miss, label='first:')} are "
            f"missing. Give the cause of de-adoption, or {censored!r} for a unit still delivering at the end of "
            "its follow-up (censored); if a missing cause means that the unit still delivers, pass censored=None."
        )
    values = ev.tolist()
    if censored is not None:
        is_cens = np.array([v == censored or (isinstance(v, str) and v == str(censored)) for v in values],
                           dtype=bool)
    causes = sorted({v for v, c in zip(values, is_cens) if not c}, key=_value_key)
    if not causes:
        raise ScaleupDataError(
            f"{fn}: table 'data', column {event!r} (argument 'event'): every row is censored ({censored!r}), so "
            "there is no de-adoption to describe. If the causes are coded differently, pass censored= the value "
            "that marks a unit still delivering."
        )
    code = {k: j + 1 for j, k in enumerate(causes)}
    cause_idx = np.array([0 if c else code[v] for v, c in zip(values, is_cens)], dtype=int)
    g, facets = _facet_index(data, by_cols, fn)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    parts = []
    for i, facet in enumerate(facets):
        rows = g == i
        cv = _aj_curve(t[rows], cause_idx[rows], len(causes))
        for j, cause in enumerate(causes):
            p = cv["estimate"][:, j]
            se = cv["se"][:, j]
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where(se == 0, 0.0, se / p)
                xx = np.where(p == 0, np.nan, p)
                low = np.exp(np.log(xx) - z * s)
                high = np.minimum(np.exp(np.log(xx) + z * s), 1.0)
            parts.append(pd.DataFrame({
                "facet": pd.Series([facet] * p.size, dtype=object),
                "cause": pd.Series([cause] * p.size, dtype=object),
                "time": cv["time"], "n_risk": cv["n_risk"], "n_event": cv["n_event"][:, j].astype(int),
                "estimate": p, "se": se, "ci_low": low, "ci_high": high}))
    table = pd.concat(parts, ignore_index=True)
    return CumulativeIncidenceResult(table=table, causes=list(causes), level=float(level), by=by_cols or None)


# --------------------------------------------------------------------------------------------------
# concordance (Harrell's C)
# --------------------------------------------------------------------------------------------------
def _pair_counts(t: np.ndarray, e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per unit, the number of comparable pairs it belongs to that are concordant, discordant, tied
    in the predictor, tied in time (both events) and tied in both (R's ``concordance`` influence
    counts; a pair counts once for each of its two units)."""
    n = t.size
    counts = np.zeros((n, 5))
    ev = np.flatnonzero(e == 1)
    if ev.size == 0:
        return counts
    block = max(1, _PAIR_BLOCK // max(n, 1))
    for start in range(0, ev.size, block):
        i = ev[start:start + block]
        ti, xi = t[i][:, None], x[i][:, None]
        later = (t[None, :] > ti) | ((t[None, :] == ti) & (e[None, :] == 0))
        same = (t[None, :] == ti) & (e[None, :] == 1)
        same[np.arange(i.size), i] = False
        kinds = (later & (xi < x[None, :]), later & (xi > x[None, :]), later & (xi == x[None, :]),
                 same & (xi != x[None, :]), same & (xi == x[None, :]))
        for k, m in enumerate(kinds):
            counts[i, k] += m.sum(axis=1)
            if k < 3:  # the later unit of the pair (a pair tied in time is seen from both of its events)
                counts[:, k] += m.sum(axis=0)
    return counts


@dataclass(frozen=True, eq=False, repr=False)
class ConcordanceResult(Displayed):
    """Result of :func:`concordance`.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : float
        Harrell's C, its infinitesimal-jackknife standard error and normal confidence interval.
    n : int
        Units.
    n_concordant, n_discordant, n_tied_x, n_tied_y, n_tied_xy : int
        Comparable pairs ranked in the direction of ``reverse``, in the opposite one, tied in the
        predictor; pairs of de-adoptions at the same time (not comparable), also tied in the predictor
        (R's ``count``: concordant, discordant, tied.x, tied.y, tied.xy).
    level : float
    reverse : bool
    predictor : str
        The predictor's column.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    n_concordant: int
    n_discordant: int
    n_tied_x: int
    n_tied_y: int
    n_tied_xy: int
    level: float
    reverse: bool
    predictor: str

    def to_frame(self) -> pd.DataFrame:
        """One row: the estimate, its interval and the pair counts."""
        return pd.DataFrame([{k: getattr(self, k) for k in (
            "predictor", "estimate", "se", "ci_low", "ci_high", "n", "n_concordant", "n_discordant", "n_tied_x",
            "n_tied_y", "n_tied_xy", "reverse", "level")}])

    def _repr_fields(self) -> dict:
        return {"estimate": self.estimate, "se": self.se, "ci": (self.ci_low, self.ci_high), "n": self.n,
                "n_concordant": self.n_concordant, "n_discordant": self.n_discordant,
                "n_tied_x": self.n_tied_x, "reverse": self.reverse}

    def _summary(self, tx) -> str:
        lines = [tx("Concordance (Harrell's C) of {predictor} with the time to de-adoption: {estimate}.",
                    predictor=self.predictor,
                    estimate=tx.ci(self.estimate, self.ci_low, self.ci_high, digits=3, level=self.level)),
                 tx("Standard error {se} (infinitesimal jackknife); {half} = no better than chance, {one} = perfect "
                    "ranking.", se=tx.num(self.se, 4), half=tx.num(0.5, 1), one=tx.int(1)),
                 (tx("Higher values of the predictor are read as earlier de-adoption.") if self.reverse else
                  tx("Higher values of the predictor are read as longer delivery.")),
                 tx("Pairs: {c} concordant, {d} discordant, {ties} tied on the predictor (counted 1/2); "
                    "{same_time} pairs of de-adoptions at the same time are not comparable.",
                    c=tx.int(self.n_concordant), d=tx.int(self.n_discordant), ties=tx.int(self.n_tied_x),
                    same_time=tx.int(self.n_tied_y + self.n_tied_xy))]
        return "\n".join(lines)


@checked_inputs
def concordance(
    data: pd.DataFrame,
    *,
    time: str = "time",
    event: str = "event",
    predictor: str,
    reverse: bool = False,
    level: float = 0.95,
) -> ConcordanceResult:
    r"""Harrell's concordance (C) between a predictor and the time to de-adoption.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (site).
    time, event : str, default "time", "event"
        Time to de-adoption or censoring (>= 0) and the 0/1 event column, as in :func:`kaplan_meier`.
    predictor : str
        Numeric column expected to rank the units (a readiness score, a fidelity index...).
    reverse : bool
        False (R's default): higher predictor values are expected with *longer* delivery. True:
        with *earlier* de-adoption (a risk score; then the estimate is 1 - C of ``reverse=False``).
    level : float
        Coverage of the normal confidence interval.

    Returns
    -------
    ConcordanceResult
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``n`` and the pair counts.

    Notes
    -----
    A pair of units is comparable when the earlier time is a de-adoption (a unit censored at the
    same time as another's de-adoption counts as the later one). Among comparable pairs, with
    :math:`c`, :math:`d`, :math:`t_x` the concordant, discordant and predictor-tied ones,

    .. math:: C = \frac{c + t_x / 2}{c + d + t_x} .

    Pairs of de-adoptions at the same time (``n_tied_y``, ``n_tied_xy``) are not comparable. The
    standard error is R's default, the infinitesimal jackknife: with :math:`c_i, d_i, t_{x,i}` the
    comparable pairs unit :math:`i` belongs to, :math:`N = c + d + t_x` and Somers'
    :math:`D = (c - d)/N`,

    .. math:: \widehat{Var}(C) = \frac14 \sum_i \Bigl(\frac{c_i - d_i}{N} - \frac{D}{N} (c_i + d_i + t_{x,i})\Bigr)^2 .

    The interval is :math:`C \pm z\, SE` (normal, not clipped to [0, 1]). Times are tied as in :func:`kaplan_meier`. Equals
    R's ``concordance(Surv(time, event) ~ predictor, reverse = reverse)`` (timewt ``"n"``). All
    pairs are compared (:math:`O(n^2)` time, in blocks).

    References
    ----------
    Harrell, F. E., Califf, R. M., Pryor, D. B., Lee, K. L., & Rosati, R. A. (1982). Evaluating the
    yield of medical tests. JAMA, 247(18), 2543-2546.

    Therneau, T. M., & Atkinson, E. The concordance statistic. Vignette "concordance" of the R
    package survival.

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis.sustainment.survival import concordance
    >>> sites = pd.DataFrame({"years": [1, 2, 2, 3, 4, 5, 5, 6],
    ...                       "stopped": [1, 1, 0, 1, 0, 1, 0, 0],
    ...                       "readiness": [2, 1, 3, 3, 4, 4, 5, 3]})
    >>> c = concordance(sites, time="years", event="stopped", predictor="readiness")
    >>> round(c.estimate, 4), (c.n_concordant, c.n_discordant, c.n_tied_x)
    (0.8684, (16, 2, 1))
    """
    fn = "concordance"
    check_level(level, fn)
    if not isinstance(reverse, (bool, np.bool_)):
        raise ScaleupDataError(f"{fn}: argument 'reverse' must be True or False, got {reverse!r}.")
    require_columns(data, "data", [time, event, predictor], label=f"{fn}: table 'data'",
                    hint="Pass the names of the time, event and predictor columns as keyword arguments.")
    t = _times(data, time, fn)
    e = _events01(data, event, fn)
    x = numeric_column(data, predictor, f"{fn}: table 'data'", arg="predictor")
    counts = _pair_counts(t, e, x)
    total = counts.sum(axis=0) / 2
    c, d, tx_ = total[0], total[1], total[2]
    npair = c + d + tx_
    if npair == 0:
        warnings.warn(f"{fn}: no comparable pair of units (no de-adoption before another unit's time), so the "
                      "concordance is not estimable (NaN).", ScaleupWarning, stacklevel=3)
        est = se = math.nan
    else:
        somer = (c - d) / npair
        dfbeta = (counts[:, 0] - counts[:, 1]) / npair - (somer / npair) * counts[:, :3].sum(axis=1)
        se = math.sqrt(float(np.sum(dfbeta ** 2)) / 4)
        est = (somer + 1) / 2
    if reverse:
        est = 1 - est
        c, d = d, c
    zq = float(stats.norm.ppf(1 - (1 - level) / 2))
    return ConcordanceResult(estimate=float(est), se=float(se), ci_low=float(est - zq * se),
                             ci_high=float(est + zq * se), n=int(t.size), n_concordant=int(round(c)),
                             n_discordant=int(round(d)), n_tied_x=int(round(tx_)),
                             n_tied_y=int(round(total[3])), n_tied_xy=int(round(total[4])), level=float(level),
                             reverse=bool(reverse), predictor=predictor)
