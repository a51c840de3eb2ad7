r"""How long does a site keep delivering the innovation? Cox proportional-hazards models of de-adoption.

:func:`cox_model` fits the Cox model of the time until a site stops delivering the innovation
("de-adoption"; censored when the site still delivers it at the end of follow-up) on site covariates
(PSAT sustainability score, fidelity, rurality, ...), as ``survival::coxph`` does:

* ties of event times handled by Efron's (default) or Breslow's approximation;
* ``start=``: counting-process data, one row per interval ``(start, time]`` of a site's follow-up,
  for time-varying covariates (support withdrawn at some quarter, ...), as
  ``coxph(Surv(start, stop, event) ~ x)``;
* ``cluster=``: the robust (sandwich) variance of sites clustered in regions, from the grouped
  dfbeta residuals, as ``coxph(..., cluster = rss_code)``, with the robust Wald and score tests;
* ``group=``: a shared gamma frailty of the sites of a group (region), as
  ``coxph(Surv(time, event) ~ x + frailty(rss_code))``: penalised partial likelihood for the
  frailties and, by default, the variance ``theta`` of the frailty chosen by maximising the
  integrated (marginal) likelihood, survival's ``method = "em"``.

The result gives the coefficient table (log hazard ratios and hazard ratios with their intervals),
the likelihood-ratio, Wald and score (log-rank) tests of ``summary(coxph)``, the baseline cumulative
hazard and predicted survival (``survfit(fit, newdata)``) and a forest plot of the hazard ratios.

References
----------
Cox, D. R. (1972). Regression models and life-tables. Journal of the Royal Statistical Society B,
34(2), 187-220.

Efron, B. (1977). The efficiency of Cox's likelihood function for censored data. Journal of the
American Statistical Association, 72(359), 557-565.

Lin, D. Y., & Wei, L. J. (1989). The robust inference for the Cox proportional hazards model.
Journal of the American Statistical Association, 84(408), 1074-1078.

Therneau, T. M., Grambsch, P. M., & Pankratz, V. S. (2003). Penalized survival models and frailty.
Journal of Computational and Graphical Statistics, 12(1), 156-175.

Therneau, T. M., & Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox Model. Springer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import linalg, optimize, stats

from .._checks import (
    check_level,
    check_matrix_values,
    check_spread,
    checked_inputs,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
)
from .._display import Displayed, num_cell, p_cell, text_table
from .._formula import formula_parts, unaliased
from .._style import NEUTRAL, PALETTE, data_text, log_ticks, new_axes, numeric_ticks, styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from .survival import _timefix

__all__ = ["cox_model", "CoxResult"]

_FN = "cox_model"
_TIES = ("efron", "breslow")
#: Newton-Raphson: converged when no coordinate of the Newton step exceeds this, relative to
#: ``1 + |coefficient|`` (the step is then applied: quadratic convergence puts the estimate at the
#: optimum to machine precision).
_STEP_TOL = 1e-10
#: the log-likelihood is "flat" when an iteration changes it by less than this, relative
_FLAT_TOL = 1e-14
_MAX_ITER = 100
#: survival's rule for a coefficient that may be infinite: Newton step > eps and > toler.inf * |coef|
_INF_EPS, _INF_TOLER = 1e-9, math.sqrt(1e-9)
#: frailty groups above which survival approximates the frailty block of the information by its
#: diagonal (``frailty(x, sparse = nclass > 5)``) when it computes the variances
_SPARSE_ABOVE = 5
#: bracket of the frailty variance searched (beyond: reported at the bound with a warning)
_THETA_MIN, _THETA_MAX = 1e-10, 1e6
_MAX_ABS = 1e100
#: the frailty fit holds dense rows x (covariates + groups) matrices: refused beyond this many cells
_MAX_DENSE_CELLS = 25_000_000


# --------------------------------------------------------------------------------------------------
# engine: log partial likelihood, score, information, residuals (Efron / Breslow)
# --------------------------------------------------------------------------------------------------
class _RiskSets:
    """The time order of the data and its tied event times (computed once per data set).

    Rows are sorted by time; ``start`` is the first sorted row of each distinct time, ``uidx`` the
    distinct time of each sorted row. Every event is one "death step" ``k`` at its time, with Efron's
    weight ``f_k = j / d`` (``j = 0..d-1``, ``d`` tied events) or 0 for Breslow.

    With ``entry`` (counting-process data, the start of each row's interval ``(entry, time]``), a row
    is at risk at the distinct time ``u`` when ``entry < u <= time``: the risk-set sums are those of
    the rows with ``time >= u`` less those of the rows with ``entry >= u``. ``entry_order`` sorts the
    (time-sorted) rows by entry, ``leave`` is, for every distinct time, the first of them with
    ``entry >= u`` and ``eidx`` the last distinct time ``<= entry`` of every sorted row (-1: none), so
    that a row's sums over the death steps of its risk sets are those up to its time less those up to
    ``eidx``. Without ``entry`` (all rows at risk from 0) these are None and nothing is subtracted.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, ties: str, entry: np.ndarray | None = None):
        self.order = np.argsort(time, kind="stable")
        t = time[self.order]
        self.event = event[self.order].astype(float)
        self.utime, self.start, self.uidx = np.unique(t, return_index=True, return_inverse=True)
        self.d = np.add.reduceat(self.event, self.start)
        has = self.d > 0
        self.step_u = np.repeat(np.flatnonzero(has), self.d[has].astype(int))
        if ties == "efron":
            pos = np.arange(self.step_u.size) - np.repeat(np.cumsum(self.d[has]) - self.d[has], self.d[has].astype(int))
            self.f = pos / self.d[self.step_u]
        else:
            self.f = np.zeros(self.step_u.size)
        self.n_u = self.utime.size
        self.entry_order = self.leave = self.eidx = None
        if entry is not None:
            en = np.asarray(entry, float)[self.order]
            self.entry_order = np.argsort(en, kind="stable")
            self.leave = np.searchsorted(en[self.entry_order], self.utime, side="left")
            self.eidx = np.searchsorted(self.utime, en, side="right") - 1

    def before_entry(self, a: np.ndarray) -> np.ndarray:
        """Reverse cumulative sums of the rows (time-sorted) with ``entry >= u`` at every distinct
        time ``u``: what leaves the risk set computed from the times alone."""
        a = a[self.entry_order]
        tail = np.zeros((1,) + a.shape[1:])
        return np.concatenate([_revcumsum(a), tail])[self.leave]

    def at_entry(self, cum: np.ndarray) -> np.ndarray:
        """A cumulative sum over the distinct times (``cum[j]``: up to time ``j``) read at the entry of
        every sorted row (0 before the first distinct time)."""
        head = np.zeros((1,) + cum.shape[1:])
        return np.concatenate([head, cum])[self.eidx + 1]


def _revcumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


class _Pieces:
    """Risk-set sums of one linear predictor (sorted rows): everything the derivatives, the
    residuals and the baseline hazard need."""

    def __init__(self, Z: np.ndarray, eta: np.ndarray, rs: _RiskSets):
        self.shift = float(np.max(eta))
        self.eta = eta - self.shift  # the partial likelihood does not depend on a common shift
        self.r = np.exp(self.eta)
        ev = rs.event
        rz = self.r[:, None] * Z
        S0 = _revcumsum(self.r)[rs.start]
        S1 = _revcumsum(rz)[rs.start]
        if rs.leave is not None:  # counting process: rows not yet at risk leave the sums
            S0 = S0 - rs.before_entry(self.r)
            S1 = S1 - rs.before_entry(rz)
        S0D = np.add.reduceat(self.r * ev, rs.start)
        S1D = np.add.reduceat(rz * ev[:, None], rs.start)
        u, f = rs.step_u, rs.f
        self.D = S0[u] - f * S0D[u]
        self.M = (S1[u] - f[:, None] * S1D[u]) / self.D[:, None]
        inv = 1.0 / self.D
        self.A = np.bincount(u, inv, minlength=rs.n_u)  # hazard jump of every distinct time
        self.B = np.bincount(u, f * inv, minlength=rs.n_u)
        # c_i: sum over the death steps whose risk set holds row i of its weight / D
        cumA = np.cumsum(self.A)
        self.c = cumA[rs.uidx] - ev * self.B[rs.uidx]
        if rs.eidx is not None:  # counting process: less the death steps up to the row's entry
            self.c = self.c - rs.at_entry(cumA)
        self.loglik = float(np.sum(ev * self.eta) - np.sum(np.log(self.D)))
        self.score = Z.T @ ev - self.M.sum(axis=0)

    def information(self, Z: np.ndarray) -> np.ndarray:
        w = self.r * self.c
        info = (Z * w[:, None]).T @ Z - self.M.T @ self.M
        return (info + info.T) / 2

    def score_residuals(self, Z: np.ndarray, rs: _RiskSets) -> np.ndarray:
        """Score residuals (Efron's weights for tied events), rows in sorted order."""
        u, ev = rs.step_u, rs.event
        MD = self.M / self.D[:, None]
        per_u = np.zeros((rs.n_u, Z.shape[1]))
        np.add.at(per_u, u, MD)
        cum = np.cumsum(per_u, axis=0)
        fmd = np.zeros_like(per_u)
        np.add.at(fmd, u, rs.f[:, None] * MD)
        mbar = np.zeros_like(per_u)
        np.add.at(mbar, u, self.M)
        mbar /= np.maximum(rs.d, 1)[:, None]
        ui = rs.uidx
        through = cum[ui] - ev[:, None] * fmd[ui]
        if rs.eidx is not None:  # counting process: less the death steps up to the row's entry
            through = through - rs.at_entry(cum)
        return (ev[:, None] * (Z - mbar[ui])
                - self.r[:, None] * (Z * self.c[:, None] - through))

    def cumulative_hazard(self) -> np.ndarray:
        """Breslow / Efron cumulative baseline hazard at every distinct time, for the linear
        predictor as given (``survfit``'s hazard with ``ctype`` matching the ties)."""
        return np.cumsum(self.A) * math.exp(-self.shift)


def _solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    try:
        return linalg.solve(H, g, assume_a="pos")
    except (linalg.LinAlgError, ValueError):
        return np.linalg.lstsq(H, g, rcond=None)[0]


#: survival's ``toler.chol`` (``.Machine$double.eps^0.75``): a pivot below it times the largest
#: diagonal marks a direction as redundant in the generalised Cholesky of :func:`_wald_form`
_TOLER_CHOL = np.finfo(float).eps ** 0.75


def _wald_form(A: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """``(b' A^- b, rank)`` with survival's generalised Cholesky ``A = F D F'`` (``cholesky2`` /
    ``chsolve2``, used by ``coxph.wtest`` and coxph's score test): a column whose pivot is below
    :data:`_TOLER_CHOL` times the largest diagonal is redundant and left out, so that a singular
    matrix (a robust variance from fewer clusters than coefficients) gives the test of the directions
    it can estimate, as in R."""
    m = np.array(A, dtype=float)
    n = m.shape[0]
    eps = max(float(np.max(np.diag(m))) if n else 0.0, 0.0)
    if eps == 0:
        return 0.0, 0
    eps *= _TOLER_CHOL
    L = np.tril((m + m.T) / 2)
    rank = 0
    for i in range(n):
        pivot = L[i, i]
        if not np.isfinite(pivot) or pivot < eps:
            L[i, i] = 0.0
            continue
        rank += 1
        temp = L[i + 1:, i] / pivot
        L[i + 1:, i] = temp
        # rank-one update of the trailing lower triangle
        L[i + 1:, i + 1:] -= np.tril(np.outer(temp, temp) * pivot)
    y = np.array(b, dtype=float)
    for i in range(n):  # F z = b
        y[i] -= y[:i] @ L[i, :i]
    for i in range(n - 1, -1, -1):  # D F' x = z
        y[i] = 0.0 if L[i, i] == 0 else y[i] / L[i, i] - y[i + 1:] @ L[i + 1:, i]
    return float(np.asarray(b, float) @ y), rank


def _inverse(H: np.ndarray) -> np.ndarray:
    try:
        c = linalg.cho_factor(H)
        return linalg.cho_solve(c, np.eye(H.shape[0]))
    except (linalg.LinAlgError, ValueError):
        return np.linalg.pinv(H)


@dataclass
class _Newton:
    x: np.ndarray
    value: float
    grad: np.ndarray
    info: np.ndarray
    iterations: int
    converged: bool
    last_step: np.ndarray


def _newton(fun, x0: np.ndarray) -> _Newton:
    """Maximise ``fun`` (returning value, gradient, information = minus the Hessian) by
    Newton-Raphson with step halving, to the optimum: stop when the Newton step is below
    :data:`_STEP_TOL` (relative) after applying it, or when the value no longer changes
    (:data:`_FLAT_TOL`) while the step does not shrink (monotone likelihood: a coefficient runs to
    infinity)."""
    x = np.asarray(x0, float).copy()
    val, g, H = fun(x)
    step = _solve(H, g) if x.size else x
    flat = 0
    for it in range(1, _MAX_ITER + 1):
        if not x.size:
            return _Newton(x, val, g, H, 0, True, step)
        small = np.all(np.abs(step) <= _STEP_TOL * (1 + np.abs(x)))
        t = 1.0
        for _ in range(60):  # step halving (coxph: halve until the log-likelihood no longer decreases)
            xn = x + t * step
            vn, gn, Hn = fun(xn)
            if np.isfinite(vn) and vn >= val - 1e-13 * (1 + abs(val)):
                break
            t /= 2
        else:
            return _Newton(x, val, g, H, it, False, step)
        change = abs(vn - val)
        x, val, g, H = xn, vn, gn, Hn
        step = _solve(H, g)
        if small:
            return _Newton(x, val, g, H, it, True, step)
        flat = flat + 1 if change <= _FLAT_TOL * (1 + abs(val)) else 0
        if flat >= 3:
            return _Newton(x, val, g, H, it, True, step)
    return _Newton(x, val, g, H, _MAX_ITER, False, step)


# --------------------------------------------------------------------------------------------------
# the fits
# --------------------------------------------------------------------------------------------------
def _cox_fit(X: np.ndarray, rs: _RiskSets, init=None) -> tuple[_Newton, _Pieces]:
    Xs = X[rs.order]

    def fun(b):
        pc = _Pieces(Xs, Xs @ b, rs)
        return pc.loglik, pc.score, pc.information(Xs)

    nw = _newton(fun, np.zeros(X.shape[1]) if init is None else init)
    return nw, _Pieces(Xs, Xs @ nw.x, rs)


def _gammacon(d: np.ndarray, nu: float) -> tuple[float, float]:
    r"""survival:::frailty.gammacon(d, nu) -- the term that turns the penalised partial likelihood
    into the integrated likelihood of a gamma frailty -- and its derivative in ``nu``.

    The derivative is :math:`\sum_g [\sum_{k=1}^{d_g} 1/(\nu + k - 1) - \log(1 + d_g/\nu)]`; for
    large :math:`\nu` (tiny theta) its two terms cancel to :math:`d_g / (2\nu^2) + ...`, so it is then
    summed from its series in :math:`1/\nu` (survival's value switches to :math:`\sum d^2/\nu` for
    :math:`\nu > 10^7 \max d`; the value follows it, the derivative stays the exact one)."""
    d = np.asarray(d, float)
    maxd = float(d.max()) if d.size else 0.0
    if nu > 1e7 * maxd:
        term1 = float(np.sum(d * d)) / nu
    else:
        term1 = float(np.sum(d - nu * np.log1p(d / nu)))
    di = d.astype(int)
    k = np.concatenate([np.arange(1, m + 1) for m in di]) if di.sum() else np.zeros(0)
    dg = np.repeat(d, di)
    term2 = float(np.sum(np.log((nu + k - 1) / (nu + dg))))
    x = 1.0 / nu
    if maxd * x < 1e-4:
        deriv = float(np.sum(x**2 * d / 2 + x**3 * (d - 3 * d**2) / 6 + x**4 * d**2 * (2 * d - 1) / 4))
    else:
        deriv = float(np.sum(1.0 / (nu + k - 1))) - float(np.sum(np.log1p(d / nu)))
    return term1 + term2, deriv


def _exp_minus_1_minus(w: np.ndarray) -> np.ndarray:
    """``exp(w) - 1 - w`` without cancellation for small ``w``."""
    small = np.abs(w) < 1e-3
    series = w * w / 2 * (1 + w / 3 * (1 + w / 4 * (1 + w / 5)))
    return np.where(small, series, np.expm1(w) - w)


@dataclass
class _FrailtyFit:
    theta: float
    beta: np.ndarray
    w: np.ndarray
    newton: _Newton
    pieces: _Pieces
    loglik: float  # unpenalised partial likelihood at the estimates
    c_loglik: float  # integrated likelihood (survival's "I-likelihood")
    slope: float  # d c_loglik / d theta


class _Frailty:
    """Penalised partial likelihood of a shared gamma frailty at a given variance ``theta``
    (survival's ``coxpenal.fit`` with ``frailty.gamma``'s penalty)."""

    def __init__(self, X: np.ndarray, codes: np.ndarray, n_groups: int, rs: _RiskSets):
        self.rs = rs
        self.p = X.shape[1]
        self.G = n_groups
        onehot = np.zeros((X.shape[0], n_groups))
        onehot[np.arange(X.shape[0]), codes] = 1.0
        self.Z = np.hstack([X, onehot])[rs.order]
        self.d = np.bincount(codes, rs.event[np.argsort(rs.order)], minlength=n_groups)
        self.start = np.zeros(self.p + n_groups)

    def fit(self, theta: float, start=None) -> _FrailtyFit:
        p, Z = self.p, self.Z
        nu = 1.0 / theta

        def fun(par):
            pc = _Pieces(Z, Z @ par, self.rs)
            w = par[p:]
            ew = np.exp(w)
            val = pc.loglik - nu * float(np.sum(ew - w))
            grad = pc.score.copy()
            grad[p:] -= nu * (ew - 1)
            info = pc.information(Z)
            info[np.arange(p, p + self.G), np.arange(p, p + self.G)] += nu * ew
            return val, grad, info

        nw = _newton(fun, self.start if start is None else start)
        par = nw.x.copy()
        par[p:] -= math.log(np.mean(np.exp(par[p:])))  # survival's recentring: mean(exp(w)) = 1
        pc = _Pieces(Z, Z @ par, self.rs)
        w = par[p:]
        con, dcon = _gammacon(self.d, nu)
        c_loglik = pc.loglik + nu * float(np.sum(w)) + con
        # envelope theorem: d/dnu of [PPL + nu G + gammacon] at the optimum of (beta, w)
        dnu = -float(np.sum(_exp_minus_1_minus(w))) + dcon
        return _FrailtyFit(theta, par[:p], w, nw, pc, pc.loglik, c_loglik, -dnu / theta**2)

    def variances(self, fit: _FrailtyFit, assign: list[list[int]]) -> dict:
        """survival's ``coxpenal.df``: ``var`` (inverse of the penalised information, with the
        frailty block reduced to its diagonal when there are more than 5 groups, as survival's sparse
        computation), ``var2`` (sandwich ``H^-1 I H^-1``), the frailties' variances ``fvar`` and the
        effective degrees of freedom of every term."""
        p, G = self.p, self.G
        nu = 1.0 / fit.theta
        pen = nu * np.exp(fit.w)
        H = fit.pieces.information(self.Z)
        H[np.arange(p, p + G), np.arange(p, p + G)] += pen
        sparse = G > _SPARSE_ABOVE
        if sparse:
            Hw = np.diag(np.diag(H[p:, p:]))
            H[p:, p:] = Hw
        Hinv = _inverse(H)
        P = np.zeros(p + G)
        P[p:] = pen
        var2_full = Hinv - (Hinv * P) @ Hinv
        C, var2 = Hinv[:p, :p], var2_full[:p, :p]
        fvar = np.diag(Hinv)[p:].copy()
        df_terms = [float(np.trace(np.linalg.solve(C[np.ix_(j, j)], var2[np.ix_(j, j)]))) for j in assign]
        if sparse:
            df_frail = G - float(np.sum(fvar * pen))
            frail_test = float(np.sum(fit.w**2 / fvar))
        else:
            df_frail = float(np.trace(np.linalg.solve(Hinv[p:, p:], var2_full[p:, p:])))
            frail_test = float(fit.w @ np.linalg.solve(Hinv[p:, p:], fit.w))
        return {"var": C, "var2": var2, "fvar": fvar, "df_terms": df_terms, "df_frail": df_frail,
                "frail_test": frail_test, "sparse": sparse}


def _fit_theta(fr: _Frailty, beta0: np.ndarray) -> tuple[_FrailtyFit, bool, str | None]:
    """The variance maximising the integrated likelihood: root of its derivative (computed exactly
    by the envelope theorem) bracketed on log(theta), then Brent's method to machine precision."""
    cache: dict[float, _FrailtyFit] = {}
    last = {"start": np.concatenate([beta0, np.zeros(fr.G)])}

    def at(lt: float) -> _FrailtyFit:
        if lt not in cache:
            f = fr.fit(math.exp(lt), last["start"])
            last["start"] = np.concatenate([f.beta, f.w])
            cache[lt] = f
        return cache[lt]

    lo = hi = 0.0  # log(1)
    if at(0.0).slope > 0:
        while at(hi).slope > 0:
            lo, hi = hi, hi + math.log(4)
            if hi > math.log(_THETA_MAX):
                return at(lo), False, "upper"
    else:
        while at(lo).slope <= 0:
            hi, lo = lo, lo - math.log(4)
            if lo < math.log(_THETA_MIN):
                return None, True, "zero"
    root = optimize.brentq(lambda lt: at(lt).slope, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)
    best = fr.fit(math.exp(root), last["start"])
    return best, True, None


# --------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class CoxResult(Displayed):
    r"""Result of :func:`cox_model`.

    Attributes
    ----------
    coef : pandas.DataFrame
        One row per coefficient: ``term``, ``estimate`` (log hazard ratio), ``se`` (model-based:
        coxph's ``se(coef)``), ``robust_se`` (with ``cluster``), ``se2`` (with ``group``: coxph's
        ``se2``, the sandwich ``H^-1 I H^-1`` of the penalised fit), ``statistic`` (Wald z, with the
        robust SE when there is one), ``pvalue``, ``ci_low``, ``ci_high`` (of the log hazard ratio),
        ``hazard_ratio`` and its interval ``hazard_ratio_ci_low``, ``hazard_ratio_ci_high``.
    vcov : pandas.DataFrame
        Covariance of the estimates used for inference: coxph's ``fit$var`` (robust with ``cluster``).
    naive_vcov : pandas.DataFrame or None
        With ``cluster``: the model-based covariance (coxph's ``fit$naive.var``).
    tests : pandas.DataFrame
        ``test``, ``statistic``, ``df``, ``pvalue`` of the global tests as ``summary(coxph)`` prints
        them: ``likelihood_ratio``, ``wald`` (robust with ``cluster``), ``score`` (log-rank) and, with
        ``cluster``, ``robust_score``; with ``group``: ``likelihood_ratio`` (on survival's effective
        degrees of freedom), ``wald`` (of the covariates, with ``vcov``: coxph's ``fit$wald.test`` with
        more than 5 groups; with at most 5, coxph's also holds the frailty coefficients) and
        ``frailty`` (the frailty term's line of ``print(coxph)``: :math:`\sum_g w_g^2 / var(w_g)` with more
        than 5 groups, :math:`w' V_w^{-1} w` otherwise, on its effective degrees of freedom).
    loglik, loglik_null : float
        Log partial likelihood at the estimates and with every coefficient at 0 (coxph's
        ``fit$loglik``; with ``group``, without the penalty).
    loglik_integrated : float
        With ``group``: the integrated likelihood maximised over ``theta`` (coxph's "I-likelihood",
        ``fit$history[[1]]$c.loglik``); NaN otherwise.
    theta : float
        With ``group``: variance of the gamma frailty; NaN otherwise.
    random_effects : pandas.DataFrame or None
        With ``group``: one row per group: ``group``, ``estimate`` (log frailty, coxph's
        ``fit$frail``), ``se`` (``sqrt(fit$fvar)``), ``hazard_ratio`` (the frailty: the group's hazard
        relative to a group of average frailty), ``n``, ``n_events``.
    n, n_events : int
        Rows used (with ``start``: intervals) and events among them.
    n_clusters, n_groups : int
        Clusters (``cluster``) or frailty groups (``group``); 0 without.
    converged : bool
    method : str or None
        With ``group``: how ``theta`` was chosen, survival's frailty method: ``"em"`` (maximum of the
        integrated likelihood) or ``"fixed"`` (given); None otherwise.
    time, event, start : str or None
        The columns of the fit: end of each row's interval, event, and start of the interval (None:
        every row at risk from 0).
    data : pandas.DataFrame
        The rows used (after dropping rows with missing values).
    """

    formula: str
    time: str
    event: str
    start: str | None
    ties: str
    cluster: str | None
    group: str | None
    level: float
    coef: pd.DataFrame
    vcov: pd.DataFrame
    naive_vcov: pd.DataFrame | None
    tests: pd.DataFrame
    loglik: float
    loglik_null: float
    loglik_integrated: float
    theta: float
    random_effects: pd.DataFrame | None
    n: int
    n_events: int
    n_clusters: int
    n_groups: int
    converged: bool
    method: str | None
    data: pd.DataFrame = field(repr=False)
    _baseline: pd.DataFrame = field(default=None, repr=False)
    _design: object = field(default=None, repr=False)

    # -- tables ----------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coef.copy()

    def baseline_hazard(self) -> pd.DataFrame:
        """Cumulative baseline hazard at every distinct time of the data, for covariates at 0 (and a
        frailty of 1): ``basehaz(fit, centered = FALSE)``. Columns ``time``, ``cumhaz``; with Efron
        ties each tied-event jump is Efron's (``survfit.coxph``'s default for such a fit)."""
        return self._baseline.copy()

    def predict_risk(self, newdata: pd.DataFrame, times) -> pd.DataFrame:
        """Predicted survival and risk of de-adoption at the ``times`` for the covariates of
        ``newdata``: ``survfit(fit, newdata)`` read at those times.

        Parameters
        ----------
        newdata : pandas.DataFrame
            One row per profile, with the covariate columns of the formula.
        times : float or sequence of float
            Horizons (in the units of the ``time`` column) at which to predict.

        Returns
        -------
        pandas.DataFrame
            One row per row of ``newdata`` and time (``newdata``'s index kept): ``time``, ``cumhaz``
            (cumulative hazard), ``survival`` (probability of still delivering the innovation at that
            time: ``exp(-cumhaz)``) and ``risk`` (of de-adoption by then: ``1 - survival``).

        Notes
        -----
        The baseline hazard is a step function of the event times; a time past the last time of the
        data keeps its last value (``summary(survfit(...), times, extend = TRUE)``). With a frailty
        (``group``), the prediction is for a group of average frailty (frailty 1); survival refuses
        ``newdata`` there.
        """
        if not isinstance(newdata, pd.DataFrame):
            raise ScaleupDataError(f"predict_risk: newdata must be a pandas DataFrame, got {type(newdata).__name__}.")
        h = np.atleast_1d(np.asarray(times, dtype=float))
        if h.ndim != 1 or not h.size or not np.all(np.isfinite(h)):
            raise ScaleupDataError(f"predict_risk: times must be finite numbers (horizons), got {times!r}.")
        des = self._design
        X = des.matrix(newdata, "predict_risk: table 'newdata'")
        lp = X @ self.coef["estimate"].to_numpy()
        base = self._baseline
        pos = np.searchsorted(base["time"].to_numpy(), h, side="right") - 1
        H0 = np.where(pos >= 0, base["cumhaz"].to_numpy()[np.maximum(pos, 0)], 0.0)
        cum = np.exp(lp)[:, None] * H0[None, :]
        out = pd.DataFrame({"time": np.tile(h, len(newdata)), "cumhaz": cum.ravel(),
                            "survival": np.exp(-cum.ravel())},
                           index=np.repeat(newdata.index.to_numpy(), h.size))
        out["risk"] = -np.expm1(-out["cumhaz"])
        out.index.name = newdata.index.name
        return out

    # -- display ---------------------------------------------------------------------------------
    def _repr_fields(self) -> dict:
        out = {"formula": self.formula, "ties": self.ties, "n": self.n, "n_events": self.n_events,
               "loglik": self.loglik}
        if self.cluster is not None:
            out["n_clusters"] = self.n_clusters
        if self.group is not None:
            out["theta"] = self.theta
            out["n_groups"] = self.n_groups
        out["converged"] = self.converged
        return out

    def _summary(self, tx) -> str:
        ties = tx("Efron") if self.ties == "efron" else tx("Breslow")
        lines = [tx("Cox proportional-hazards model ({ties} ties): {formula}", ties=ties, formula=self.formula),
                 tx("  n = {n}, events = {events}", n=tx.int(self.n), events=tx.int(self.n_events))]
        if self.cluster is not None:
            lines.append(tx("  Robust (sandwich) standard errors, clusters of '{cluster}': {k}",
                            cluster=self.cluster, k=tx.int(self.n_clusters)))
        if self.group is not None:
            lines.append(tx("  Shared gamma frailty of the groups of '{group}' ({g} groups): variance theta = {theta}",
                            group=self.group, g=tx.int(self.n_groups), theta=tx.num(self.theta, 4)))
            if np.isfinite(self.loglik_integrated):
                lines.append(tx("  Integrated log-likelihood (I-likelihood): {ll}",
                                ll=tx.num(self.loglik_integrated, 2)))
        if not self.converged:
            lines.append(tx("  Warning: the optimiser did not converge"))
        level = tx.pct(self.level)
        robust = "robust_se" in self.coef
        se2 = "se2" in self.coef
        head = [tx("term"), tx("estimate"), tx("SE")] + ([tx("robust SE")] if robust else []) \
            + (["se2"] if se2 else []) + ["z", "p", tx("hazard ratio"), tx("{level} CI", level=level)]
        rows = []
        for r in self.coef.to_dict("records"):
            d = tx.digits_for(r["hazard_ratio"], r["hazard_ratio_ci_low"], r["hazard_ratio_ci_high"], maximum=4)
            rows.append([data_text(r["term"]), num_cell(tx, r["estimate"]), num_cell(tx, r["se"])]
                        + ([num_cell(tx, r["robust_se"])] if robust else [])
                        + ([num_cell(tx, r["se2"])] if se2 else [])
                        + [num_cell(tx, r["statistic"], 2), p_cell(tx, r["pvalue"]), num_cell(tx, r["hazard_ratio"], d),
                           tx("[{low}, {high}]", low=num_cell(tx, r["hazard_ratio_ci_low"], d),
                              high=num_cell(tx, r["hazard_ratio_ci_high"], d))])
        lines += ["", text_table(head, rows)]
        names = {"likelihood_ratio": tx("Likelihood ratio test"), "wald": tx("Wald test"),
                 "score": tx("Score (logrank) test"), "robust_score": tx("Robust score test"),
                 "frailty": tx("Frailty term (penalised)")}
        lines.append("")
        for r in self.tests.to_dict("records"):
            df = tx.num(r["df"], 2) if r["df"] % 1 else tx.int(r["df"])
            lines.append(tx("{test} = {statistic} on {df} df, {p}", test=names[r["test"]],
                            statistic=tx.num(r["statistic"], 2), df=df, p=tx.pvalue(r["pvalue"])))
        if self.cluster is not None:
            lines.append(tx("  (the likelihood ratio and score tests assume independent rows within a cluster; "
                            "the Wald and robust score tests do not)"))
        if self.method == "fixed":
            lines.append(tx("  The frailty variance theta was fixed, not estimated."))
        elif self.method == "em" and self.theta == 0:
            lines.append(tx("  The integrated likelihood is largest at theta = 0: no variation between the groups "
                            "beyond the covariates (the fit is the model without frailty)."))
        return "\n".join(lines)

    @styled
    def plot_hazard_ratios(self, *, title: str | None = None, ax=None):
        """Forest plot of the hazard ratios with their confidence intervals (log axis, line at 1).

        Parameters
        ----------
        title : str, optional
            Title (default: "Hazard ratios of de-adoption").
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        from ..narrative import Text

        tx = Text()
        c = self.coef
        k = len(c)
        ax = new_axes(ax, (7.0, 1.2 + 0.42 * k))
        y = np.arange(k)[::-1]
        hr, lo, hi = (c[col].to_numpy(float) for col in ("hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high"))
        ax.hlines(y, lo, hi, color=PALETTE[0], lw=1.6)
        ax.plot(hr, y, "s", color=PALETTE[0], markersize=6, zorder=3)
        ax.axvline(1.0, color=NEUTRAL, lw=0.9, linestyle=":")
        ax.set_xscale("log")
        finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in (hr, lo, hi)] + [np.array([1.0])])
        low, high = float(finite.min()), float(finite.max())
        ax.set_xlim(low / 1.25, high * 1.25)
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
        numeric_ticks(ax.xaxis, tx, ticks=log_ticks(low / 1.25, high * 1.25))
        ax.set_yticks(y)
        ax.set_yticklabels([data_text(t) for t in c["term"]])
        ax.set_ylim(-0.7, k - 0.3)
        ax.set_xlabel(tx("Hazard ratio of de-adoption ({level} CI, log scale)", level=tx.pct(self.level)))
        ax.set_title(tx("Hazard ratios of de-adoption") if title is None else title)
        return ax


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------
def _formula_parts(formula) -> tuple[str, dict, str]:
    """(right-hand side patsy reads, aliases, formula shown). A list of column names is never
    evaluated as code: each column gets a safe alias (``_sa_cov0``, ...) and the coefficients keep the
    columns' names; a formula string is the caller's own code (as in R) and is used as given."""
    return formula_parts(formula, where=_FN, arg="formula", outcome="time= and event=",
                         examples=("psat_score + fidelity + C(rurality)", "psat_score + C(rurality)",
                                   ["psat_score", "rurality"]))


_unaliased = unaliased


class _Design:
    """The covariate design of a fit, rebuilt for new data (same levels, same columns)."""

    def __init__(self, info, columns: list[str], aliases: dict, names: list[str]):
        self.info = info
        self.columns = columns
        self.aliases = aliases
        self.names = names

    def frame(self, data: pd.DataFrame) -> pd.DataFrame:
        if not self.aliases:
            return data
        return data[list(self.aliases)].set_axis(list(self.aliases.values()), axis=1)

    def matrix(self, data: pd.DataFrame, where: str) -> np.ndarray:
        missing = [c for c in self.aliases if c not in data.columns]
        if missing:
            raise ScaleupDataError(f"{where}: missing column(s) {missing}.")
        try:
            (X,) = patsy.build_design_matrices([self.info], self.frame(data), NA_action="raise",
                                               return_type="dataframe")
        except patsy.PatsyError as exc:
            raise ScaleupDataError(f"{where}: cannot build the covariates of the model: {exc}") from None
        return X[self.columns].to_numpy(float)


def _design(data: pd.DataFrame, formula) -> tuple[pd.DataFrame, dict, str, str]:
    """The covariate matrix patsy builds on ``data`` (rows with a missing covariate dropped: its index
    tells which were kept), the aliases, the formula shown and the formula patsy reads."""
    rhs, aliases, shown = _formula_parts(formula)
    missing = [c for c in aliases if c not in data.columns]
    if missing:
        require_columns(data, "data", list(aliases), label=f"{_FN}: table 'data'",
                        hint="Name existing columns in 'formula'.")
    frame = data.reset_index(drop=True)
    src = frame[list(aliases)].set_axis(list(aliases.values()), axis=1) if aliases else frame
    f = "~ " + rhs
    try:
        X = patsy.dmatrix(f, src, NA_action="drop", return_type="dataframe", eval_env=0)
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"{_FN}: cannot build the covariates from formula {shown!r} on table 'data': {exc}. Check that "
            "every name is a column of data (quote names that are not Python names: Q('ph.ecog'), or pass "
            "a list of column names)."
        ) from None
    return X, aliases, shown, f


def _ordered_columns(X: pd.DataFrame, f: str, aliases: dict, shown: str):
    info = X.design_info
    if "Intercept" not in X.columns:
        raise ScaleupDataError(
            f"{_FN}: formula {shown!r} removes the intercept ('0 +' or '- 1'); a Cox model has none (the "
            "baseline hazard takes its place), and a categorical covariate then needs a reference level. "
            "Remove '0 +' / '- 1'."
        )
    cols, assign = [], []
    for term in patsy.ModelDesc.from_formula(f).rhs_termlist:
        sl = info.term_name_slices.get(term.name())
        if sl is None or term.name() == "Intercept":
            continue
        names = info.column_names[sl]
        if not names:
            continue
        assign.append(list(range(len(cols), len(cols) + len(names))))
        cols += names
    empty = [t.name() for t in patsy.ModelDesc.from_formula(f).rhs_termlist
             if t.name() != "Intercept" and not info.column_names[info.term_name_slices[t.name()]]]
    if empty:
        raise ScaleupDataError(
            f"{_FN}: formula {shown!r}: term(s) {[_unaliased(e, aliases) for e in empty]} give no column (a "
            "categorical covariate with a single category in the rows used?); it cannot be estimated. Remove it."
        )
    return cols, assign, [_unaliased(c, aliases) for c in cols]


def _check_design(Xa: np.ndarray, names: list[str], index) -> None:
    check_matrix_values(Xa, names, index, f"{_FN}: table 'data', covariate(s)", max_abs=_MAX_ABS,
                        fix="Correct or drop these rows, or rescale the covariate.")
    for j, name in enumerate(names):
        col = Xa[:, j]
        if np.ptp(col) == 0:
            raise ScaleupDataError(
                f"{_FN}: table 'data', covariate {name!r} never varies: all {len(col)} rows used have the value "
                f"{first_values([col[0]])}. A Cox model cannot estimate the effect of a constant (the baseline "
                "hazard absorbs it); remove it from the formula."
            )
        check_spread(col, f"{_FN}: table 'data', covariate {name!r}", f"the {len(col)} rows used",
                     consequence=", so its log hazard ratio and information would overflow")
    Xc = Xa - Xa.mean(axis=0)
    scale = np.sqrt((Xc**2).sum(axis=0))
    _, R, piv = linalg.qr(Xc / scale, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int(np.sum(diag > 1e-9 * diag.max()))
    if rank < Xa.shape[1]:
        dropped = [names[j] for j in piv[rank:]]
        raise ScaleupDataError(
            f"{_FN}: table 'data': covariate(s) {first_values(dropped)} are linear combinations of the others in "
            "the rows used (collinear); their effects cannot be separated (coxph would report NA). Remove them "
            "from the formula."
        )


def _event_values(data: pd.DataFrame, event: str) -> np.ndarray:
    s = data[event]
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float).to_numpy()
    e = numeric_column(data, event, f"{_FN}: table 'data'", arg="event", missing=True)
    bad = ~np.isnan(e) & (e != 0) & (e != 1)
    if bad.any():
        hint = ""
        vals = set(np.unique(e[~np.isnan(e)]).tolist())
        if vals <= {1.0, 2.0}:
            hint = " The column looks coded 1 = censored, 2 = event (R's Surv coding): give the column minus 1."
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {event!r} (argument 'event'): {rows_text(data, bad, label='first:')} are "
            f"not 0 or 1 (values {first_values(e[bad])}); the event column is 1 when the site stopped delivering "
            f"the innovation (de-adoption observed) and 0 when it was still delivering it at the end of follow-up "
            f"(censored).{hint}"
        )
    return e


def _time_values(data: pd.DataFrame, time: str) -> np.ndarray:
    t = numeric_column(data, time, f"{_FN}: table 'data'", arg="time", missing=True, booleans=False)
    neg = t < 0
    if np.any(neg):
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {time!r} (argument 'time'): {rows_text(data, neg, label='first:')} are "
            f"negative (values {first_values(t[neg])}); times to de-adoption or censoring are >= 0 (time since "
            "adoption). Correct these rows."
        )
    return t


def _start_values(data: pd.DataFrame, start: str, time: str, t: np.ndarray) -> np.ndarray:
    s = numeric_column(data, start, f"{_FN}: table 'data'", arg="start", missing=True, booleans=False)
    bad = ~np.isnan(s) & ~np.isnan(t) & (s >= t)
    if np.any(bad):
        raise ScaleupDataError(
            f"{_FN}: table 'data', columns {start!r} and {time!r} (arguments 'start' and 'time'): "
            f"{rows_text(data, bad, label='first:')} do not start before they end (start values "
            f"{first_values(s[bad])}, time values {first_values(t[bad])}); each row is the interval (start, time] "
            "of a site's follow-up during which its covariates are constant, with start < time (R's Surv(start, "
            "stop, event)). Correct these rows or drop the empty intervals."
        )
    return s


def _key_column(data: pd.DataFrame, col, arg: str) -> pd.Series:
    if not isinstance(col, str):
        raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a column name, got {col!r}.")
    require_columns(data, "data", [col], label=f"{_FN}: table 'data'",
                    hint=f"Give the column of the {'clusters' if arg == 'cluster' else 'frailty groups'} "
                         f"(e.g. {arg}='rss_code').")
    return data[col]


# --------------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------------
@checked_inputs
def cox_model(
    data: pd.DataFrame,
    formula: str | Sequence[str],
    *,
    time: str = "time",
    event: str = "event",
    start: str | None = None,
    ties: str = "efron",
    cluster: str | None = None,
    group: str | None = None,
    theta: float | None = None,
    level: float = 0.95,
) -> CoxResult:
    r"""Cox proportional-hazards model of the time to de-adoption (``survival::coxph``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per site (or per site and innovation): time, event and covariates. With ``start``,
        one row per interval of a site's follow-up during which its covariates are constant.
    formula : str or list of str
        The covariates: a patsy right-hand side such as ``"psat_score + fidelity + C(rurality)"``
        (``"~ ..."`` accepted; column names that are not Python names are quoted, ``Q('ph.ecog')``),
        or a list of column names (never evaluated as code; text columns become categorical).
        Categorical covariates use treatment contrasts with the first level as reference, as R.
    time : str, default "time"
        Column of the time from adoption to de-adoption or censoring (>= 0); the default is the column
        of :func:`~scaleup_analysis.sustainment.data.deadoption_times`. With ``start``, the end of each
        row's interval (R's ``stop``).
    event : str, default "event"
        Column of the event: 1 = the site stopped delivering the innovation, 0 = still delivering it
        at the end of follow-up (censored). True/False is accepted. With ``start``, the event at the
        end of the row's interval: 0 on every interval of a site but its last.
    start : str, optional
        Column of the start of each row's interval ``(start, time]`` (counting-process data, R's
        ``Surv(start, stop, event)``), for time-varying covariates: a site whose support is withdrawn
        at quarter :math:`w` and followed until :math:`T` has two rows, :math:`(0, w]` with
        ``support_withdrawn = 0`` (event 0) and :math:`(w, T]` with ``support_withdrawn = 1`` (its
        event). Finite and below ``time`` in every row. The rows of a site are not independent
        sites: give the site as ``cluster`` for the robust variance of ``coxph(..., cluster = id)``.
        Default: every row is at risk from 0.
    ties : {"efron", "breslow"}
        Approximation of the partial likelihood for tied event times (coxph's default: Efron).
    cluster : str, optional
        Column of clusters of correlated sites (e.g. ``"rss_code"``): robust (sandwich) variance as
        ``coxph(..., cluster = rss_code)``.
    group : str, optional
        Column of the groups sharing a gamma frailty (a random effect on the hazard, e.g.
        ``"rss_code"``), as ``coxph(Surv(time, event) ~ ... + frailty(rss_code))`` (with ``start``:
        ``Surv(start, time, event)``). Not with ``cluster``.
    theta : float, optional
        With ``group``: a fixed frailty variance (``frailty(g, theta = ...)``); by default it is
        estimated by maximising the integrated likelihood.
    level : float
        Coverage of the confidence intervals.

    Returns
    -------
    CoxResult

    Notes
    -----
    With risk score :math:`r_i = \exp(x_i'\beta)`, risk set :math:`R(t)` (rows with time
    :math:`\ge t`) and :math:`d` events tied at :math:`t`, Efron's log partial likelihood is

    .. math:: \ell(\beta) = \sum_t \Big[\sum_{i \in D(t)} x_i'\beta - \sum_{k=0}^{d-1}
              \log\Big(\sum_{R(t)} r_i - \tfrac{k}{d} \sum_{D(t)} r_i\Big)\Big]

    (Breslow: without the :math:`k/d` term). It is maximised by Newton-Raphson with step halving
    from :math:`\beta = 0`, to the optimum: iterations stop when the Newton step is below
    :math:`10^{-10}(1 + |\beta_j|)` in every coordinate and that step is applied (coxph stops when
    the log-likelihood changes by less than :math:`10^{-9}`, relative: a few :math:`10^{-9}` from the
    optimum). When the log-likelihood stops changing while a coefficient keeps growing (monotone
    likelihood, e.g. a covariate that separates sites with and without events), a
    :class:`~scaleup_analysis.errors.ScaleupWarning` says that the coefficient may be infinite
    (coxph's rule: Newton step > 1e-9 and > :math:`\sqrt{10^{-9}}|\beta_j|`).

    With ``start`` (:math:`s_i`, time :math:`t_i`), a row is at risk only within its interval, as in
    R's ``Surv(start, stop, event)``:

    .. math:: R(t) = \{i : s_i < t \le t_i\},

    and everything follows from these risk sets: the partial likelihood and its derivatives, the score
    (dfbeta) residuals and so the robust variance and robust score test, the frailty fit, and the
    baseline hazard (``survfit`` of a counting-process fit: each jump uses the rows at risk then).
    Splitting a row :math:`(0, t_i]` into :math:`(0, u]` (event 0) and :math:`(u, t_i]` with the same
    covariates leaves the fit unchanged (with ``cluster``: both rows in the row's cluster).

    ``se`` is :math:`\sqrt{\mathrm{diag}\, I(\hat\beta)^{-1}}`. With ``cluster``, the robust
    covariance is :math:`D'D`, :math:`D` the score residuals times :math:`I^{-1}` (dfbeta) summed
    within clusters (Lin & Wei 1989; no small-sample factor, as coxph); z, p-values, intervals and the
    Wald test use it, the likelihood-ratio and score tests do not, and the robust score test is
    :math:`U'(T'T)^{-1}U` with :math:`T` the cluster sums of the score residuals at
    :math:`\beta = 0` -- as ``summary(coxph)`` reports them. With no more clusters than coefficients
    the robust covariance is singular (the cluster sums add to 0): a
    :class:`~scaleup_analysis.errors.ScaleupWarning` says so, and the Wald test leaves the redundant
    directions out, as coxph's generalised Cholesky (``coxph.wtest``) does. With few clusters the
    robust standard errors are too small.

    With ``group``, the log frailties :math:`w_g` enter the linear predictor and the penalised
    partial likelihood :math:`\ell(\beta, w) - \nu \sum_g (e^{w_g} - w_g)`, :math:`\nu = 1/\theta`, is
    maximised for a given :math:`\theta`. :math:`\theta` maximises survival's integrated likelihood
    :math:`\ell(\hat\beta, \hat w) + \nu\sum_g \hat w_g + c(d, \nu)` (``frailty.gammacon``;
    :math:`d_g` the events of group :math:`g`): its derivative in :math:`\theta` is computed exactly
    (envelope theorem) and its root found to machine precision, where survival's "em" search stops
    when the integrated likelihood changes by less than 1e-5 (relative) between two of its trial values
    (up to about :math:`10^{-3}`, relative, from the optimum in :math:`\theta`; its printed
    coefficients belong to the last trial value). As survival, the reported variances use
    the inverse :math:`H^{-1}` of the penalised information (``se``) and :math:`H^{-1} I H^{-1}`
    (``se2``), with the frailty block of :math:`H` reduced to its diagonal when there are more than 5
    groups (survival's sparse computation); the degrees of freedom of the likelihood-ratio test are
    survival's effective ones. If the integrated likelihood is largest at :math:`\theta = 0`, the
    model without frailty is returned with ``theta = 0``. The baseline hazard keeps the frailties in
    the risk scores (survival's ``basehaz`` does so with at most 5 groups, not with more).

    As coxph (``timefix = TRUE``, R's ``aeqSurv``), distinct times closer than
    :math:`\sqrt{\epsilon}` (absolutely, or relative to the mean of the distinct times) are tied, so
    that rounding error in computed times does not split a tie; with ``start``, the start and end
    times are tied together (one set of distinct times, as ``aeqSurv``), and a row whose start and
    end become tied is refused (aeqSurv's "an interval has effective length 0").
    Rows with a missing time, start, event, covariate, cluster or group are left out (as coxph's
    ``na.omit``) with a :class:`~scaleup_analysis.errors.RowsOmittedWarning`.

    References
    ----------
    Therneau, T. M., & Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox Model.
    Springer (chapters 3, 8 and 9).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from scaleup_analysis.sustainment.cox import cox_model
    >>> rng = np.random.default_rng(7)
    >>> sites = pd.DataFrame({"psat_score": rng.uniform(2, 7, 150).round(1),
    ...                       "rss_code": rng.choice(["03", "05", "06", "13"], 150)})
    >>> u = sites["rss_code"].map({"03": -0.6, "05": 0.0, "06": 0.4, "13": 0.2})  # region effects
    >>> t = rng.exponential(1 / (0.1 * np.exp(-0.5 * (sites["psat_score"] - 4.5) + u)))
    >>> sites["quarters"], sites["deadopted"] = np.minimum(np.ceil(t), 12), (t <= 12).astype(int)
    >>> res = cox_model(sites, "psat_score", time="quarters", event="deadopted", cluster="rss_code")
    >>> res.coef[["term", "hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high"]].round(3)
             term  hazard_ratio  hazard_ratio_ci_low  hazard_ratio_ci_high
    0  psat_score         0.649                0.588                 0.716
    >>> res.predict_risk(pd.DataFrame({"psat_score": [3.0, 6.0]}), times=8)["risk"].round(2).tolist()
    [0.77, 0.33]
    >>> fr = cox_model(sites, "psat_score", time="quarters", event="deadopted", group="rss_code")
    >>> round(fr.theta, 3), fr.random_effects["hazard_ratio"].round(2).tolist()
    (0.049, [0.78, 0.96, 1.24, 1.02])

    A time-varying covariate: support withdrawn at quarter ``w`` doubles the hazard; a site withdrawn
    during its follow-up has two rows, (0, w] and (w, T]; the site is the cluster.

    >>> w, e = rng.integers(1, 12, 150), rng.exponential(size=150)
    >>> h = 0.1 * np.exp(-0.5 * (sites["psat_score"].to_numpy() - 4.5))
    >>> t = np.where(e <= h * w, e / h, w + (e - h * w) / (2 * h))
    >>> q, ev, split = np.minimum(np.ceil(t), 12), (t <= 12).astype(int), np.ceil(t) > w
    >>> tv = pd.concat([sites.assign(site=range(150), start=0, stop=np.where(split, w, q), withdrawn=0,
    ...                              deadopted=np.where(split, 0, ev)),
    ...                 sites.assign(site=range(150), start=w, stop=q, withdrawn=1, deadopted=ev)[split]])
    >>> res = cox_model(tv, "psat_score + withdrawn", time="stop", event="deadopted", start="start",
    ...                 cluster="site")
    >>> res.n, res.n_events, res.coef["hazard_ratio"].round(3).tolist()
    (232, 121, [0.627, 1.848])
    """
    if ties not in _TIES:
        raise ScaleupDataError(f"{_FN}: ties must be 'efron' or 'breslow', got {ties!r}.")
    check_level(level, _FN)
    for arg, col in (("time", time), ("event", event)) + ((("start", start),) if start is not None else ()):
        if not isinstance(col, str):
            raise ScaleupDataError(f"{_FN}: argument {arg!r} must be a column name, got {col!r}.")
    require_columns(data, "data", [time, event] + ([start] if start is not None else []),
                    label=f"{_FN}: table 'data'",
                    hint="Give the columns of the time to de-adoption (time=) and of the event (event=)"
                         + (", and of the start of each row's interval (start=)." if start is not None else "."))
    if start is not None and start in (time, event):
        raise ScaleupDataError(
            f"{_FN}: argument 'start' names the column {start!r}, which is also the "
            f"{'time' if start == time else 'event'} column; start= is the column of the start of each row's "
            "interval (start, time]."
        )
    if cluster is not None and group is not None:
        raise ScaleupDataError(
            f"{_FN}: give either cluster= (robust variance) or group= (shared frailty), not both."
        )
    if theta is not None:
        if group is None:
            raise ScaleupDataError(f"{_FN}: theta= is the variance of the frailty of group=; give group= too.")
        if isinstance(theta, bool) or not isinstance(theta, (int, float, np.integer, np.floating)) \
                or not np.isfinite(theta) or theta <= 0:
            raise ScaleupDataError(f"{_FN}: theta must be a positive number (a frailty variance), got {theta!r}.")
    keys = {arg: _key_column(data, col, arg) for arg, col in (("cluster", cluster), ("group", group))
            if col is not None}
    pr = _prepare(data, formula, time, event, keys, ties, start)
    crit = float(stats.norm.isf((1 - level) / 2))
    if group is None:
        fields = _fit_without_frailty(pr, cluster, crit)
    else:
        fields = _fit_with_frailty(pr, group, theta, crit)
    base_pc = _Pieces(np.zeros((pr.n, 0)), fields.pop("eta")[pr.rs.order], pr.rs)
    baseline = pd.DataFrame({"time": pr.rs.utime, "cumhaz": base_pc.cumulative_hazard()})
    return CoxResult(
        formula=pr.shown, time=time, event=event, start=start, ties=ties, cluster=cluster, group=group,
        level=float(level),
        loglik_null=float(pr.null.loglik), n=pr.n, n_events=int(pr.e.sum()),
        method=None if group is None else ("fixed" if theta is not None else "em"),
        data=pr.used, _baseline=baseline, _design=pr.design, **fields,
    )


@dataclass
class _Prepared:
    """The rows used and everything the fits share."""

    used: pd.DataFrame
    shown: str
    names: list[str]
    assign: list[list[int]]
    design: _Design
    Xa: np.ndarray  # covariates as given
    Xc: np.ndarray  # centred (the fits' numerics; the estimates do not depend on it)
    t: np.ndarray
    e: np.ndarray
    s: np.ndarray | None  # start of each row's interval (None: every row from 0)
    keys: dict  # cluster / group values of the rows used
    rs: _RiskSets
    null: _Pieces  # every coefficient at 0

    @property
    def n(self) -> int:
        return len(self.t)

    @property
    def p(self) -> int:
        return self.Xc.shape[1]


def _prepare(data, formula, time, event, keys, ties, start=None) -> _Prepared:
    """Checked time, (start,) event and covariates of the rows without missing values (the others
    left out with a warning, as coxph's ``na.omit``)."""
    t_all = _time_values(data, time)
    e_all = _event_values(data, event)
    s_all = None if start is None else _start_values(data, start, time, t_all)
    X, aliases, shown, f = _design(data, formula)
    keep = np.zeros(len(data), bool)
    keep[X.index.to_numpy()] = True
    keep &= ~np.isnan(t_all) & ~np.isnan(e_all)
    if s_all is not None:
        keep &= ~np.isnan(s_all)
    for s in keys.values():
        keep &= s.notna().to_numpy()
    which = f" or {', '.join(repr(s.name) for s in keys.values())}" if keys else ""
    also = "" if start is None else "start, "
    if not keep.any():
        raise ScaleupDataError(f"{_FN}: table 'data': every row has a missing time, {also}event, covariate{which}; "
                               "nothing to analyse.")
    if not keep.all():
        warnings.warn(
            f"{_FN}: {int((~keep).sum())} of {len(data)} rows left out because of missing values in the time, "
            f"{also}event, covariates{which} ({rows_text(data, ~keep, label='first:')}), as coxph's na.omit.",
            RowsOmittedWarning, stacklevel=3,
        )
    used = data[keep]
    src = used.reset_index(drop=True)
    if aliases:
        src = src[list(aliases)].set_axis(list(aliases.values()), axis=1)
    X = patsy.dmatrix(f, src, NA_action="raise", return_type="dataframe", eval_env=0)
    cols, assign, names = _ordered_columns(X, f, aliases, shown)
    Xa = X[cols].to_numpy(float)
    _check_design(Xa, names, used.index)
    e = e_all[keep]
    if s_all is None:
        t, entry = _timefix(t_all[keep]), None  # coxph: aeqSurv on the rows used
    else:  # aeqSurv ties the start and stop times together
        n_used = int(keep.sum())
        both = _timefix(np.concatenate([s_all[keep], t_all[keep]]))
        entry, t = both[:n_used], both[n_used:]
        empty = np.zeros(len(data), bool)
        empty[np.flatnonzero(keep)[entry >= t]] = True
        if empty.any():
            raise ScaleupDataError(
                f"{_FN}: table 'data', columns {start!r} and {time!r} (arguments 'start' and 'time'): "
                f"{rows_text(data, empty, label='first:')} have a start and a time closer than rounding error "
                f"(values {first_values(s_all[empty])} and {first_values(t_all[empty])}): coxph ties them "
                "(timefix, aeqSurv) and the interval (start, time] becomes empty (aeqSurv's \"an interval has "
                "effective length 0\"). Merge these rows with the next interval of the same site or correct "
                "the times."
            )
    if e.sum() == 0:
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {event!r} (argument 'event'): no event (1) among the {len(used)} rows "
            "used; a Cox model needs at least one observed de-adoption."
        )
    rs = _RiskSets(t, e, ties, entry)
    Xc = Xa - Xa.mean(axis=0)
    return _Prepared(used=used, shown=shown, names=names, assign=assign,
                     design=_Design(X.design_info, cols, aliases, names), Xa=Xa, Xc=Xc, t=t, e=e, s=entry,
                     keys={k: s[keep] for k, s in keys.items()}, rs=rs,
                     null=_Pieces(Xc[rs.order], np.zeros(len(t)), rs))


def _tests_frame(rows) -> pd.DataFrame:
    """``(test, statistic, df[, df of the p-value])`` rows as the ``tests`` table."""
    out = []
    for row in rows:
        name, stat, df = row[:3]
        out.append({"test": name, "statistic": float(stat), "df": float(df),
                    "pvalue": float(stats.chi2.sf(stat, row[3] if len(row) > 3 else df))})
    return pd.DataFrame(out)


def _fit_without_frailty(pr: _Prepared, cluster: str | None, crit: float) -> dict:
    """coxph without penalty: model-based variance, or robust with a cluster (fields of CoxResult)."""
    p, names, rs = pr.p, pr.names, pr.rs
    Xs = pr.Xc[rs.order]
    nw, pc = _cox_fit(pr.Xc, rs)
    beta = nw.x
    var = naive = _inverse(nw.info)
    _warn_infinite(nw, beta, names)
    if not nw.converged:
        warnings.warn(f"{_FN}: Newton-Raphson did not converge in {_MAX_ITER} iterations; the estimates are "
                      "not reliable.", ConvergenceWarning, stacklevel=3)
    score = _wald_form(pr.null.information(Xs), pr.null.score)[0]
    rows = [("likelihood_ratio", 2 * (nw.value - pr.null.loglik), p)]
    n_clusters = 0
    if cluster is not None:
        codes, uniq = pd.factorize(pr.keys["cluster"], sort=True)
        n_clusters = len(uniq)

        def by_cluster(residuals):
            out = np.zeros((n_clusters, p))
            np.add.at(out, codes[rs.order], residuals)
            return out

        D = by_cluster(pc.score_residuals(Xs, rs) @ naive)  # grouped dfbeta residuals
        var = D.T @ D
        T0 = by_cluster(pr.null.score_residuals(Xs, rs))  # score residuals at beta = 0
        rscore = _wald_form(T0.T @ T0, T0.sum(axis=0))[0]
    wald, rank = _wald_form(var, beta)
    if cluster is not None and rank < p:
        warnings.warn(
            f"{_FN}: cluster {cluster!r}: the robust covariance from {n_clusters} clusters has rank {rank} for "
            f"{p} coefficients (the cluster sums of the residuals add to 0, so at most {n_clusters - 1} "
            "directions are estimable); some robust standard errors are underestimated and the robust Wald "
            "test leaves the redundant directions out (as coxph). Use fewer covariates, more clusters, or a "
            "frailty (group=).", ScaleupWarning, stacklevel=3)
    rows += [("wald", wald, p), ("score", score, p)]
    table = {"term": names, "estimate": beta, "se": np.sqrt(np.diag(naive))}
    if cluster is not None:
        rows.append(("robust_score", rscore, p))
        table["robust_se"] = np.sqrt(np.diag(var))
    return {
        "coef": _coef_table(table, beta, np.sqrt(np.diag(var)), crit),
        "vcov": pd.DataFrame(var, index=names, columns=names),
        "naive_vcov": None if cluster is None else pd.DataFrame(naive, index=names, columns=names),
        "tests": _tests_frame(rows), "loglik": float(nw.value), "loglik_integrated": math.nan,
        "theta": math.nan, "random_effects": None, "n_clusters": n_clusters, "n_groups": 0,
        "converged": bool(nw.converged), "eta": pr.Xa @ beta,
    }


def _fit_with_frailty(pr: _Prepared, group: str, theta, crit: float) -> dict:
    """coxph with ``frailty(group)``: penalised fit at the given or estimated theta (fields of CoxResult)."""
    p, names = pr.p, pr.names
    codes, uniq = pd.factorize(pr.keys["group"], sort=True)
    G = len(uniq)
    if G < 2:
        raise ScaleupDataError(
            f"{_FN}: table 'data', column {group!r} (argument 'group'): a single group in the rows used; a "
            "shared frailty needs at least two groups."
        )
    cells = pr.n * (p + G)
    if cells > _MAX_DENSE_CELLS:
        raise ScaleupDataError(
            f"{_FN}: a frailty of {G:,} groups on {pr.n:,} rows needs dense {pr.n:,} x {p + G:,} matrices (about "
            f"{8 * cells / 1e9:.1f} GB each); give a coarser group (e.g. the region, group='rss_code') or use "
            "cluster= for a robust variance instead."
        )
    nw0, _ = _cox_fit(pr.Xc, pr.rs)
    fr = _Frailty(pr.Xc, codes, G, pr.rs)
    if theta is not None:
        best, ok, where = fr.fit(float(theta), np.concatenate([nw0.x, np.zeros(G)])), True, None
    else:
        best, ok, where = _fit_theta(fr, nw0.x)
    if where == "upper":
        warnings.warn(f"{_FN}: the integrated likelihood still increases at theta = {_THETA_MAX:g}; the "
                      "frailty variance is reported at that bound.", ConvergenceWarning, stacklevel=3)
    if best is None:  # theta = 0: the Cox model without frailty, frailties 0
        beta, w = nw0.x, np.zeros(G)
        var = var2 = _inverse(nw0.info)
        fvar = np.zeros(G)
        df_terms, df_frail, frail_test = [float(len(j)) for j in pr.assign], 0.0, 0.0
        loglik = c_loglik = nw0.value
        theta_hat, converged = 0.0, nw0.converged
    else:
        v = fr.variances(best, pr.assign)
        beta, w = best.beta, best.w
        var, var2, fvar = v["var"], v["var2"], v["fvar"]
        df_terms, df_frail, frail_test = v["df_terms"], v["df_frail"], v["frail_test"]
        loglik, c_loglik, theta_hat = best.loglik, best.c_loglik, best.theta
        converged = ok and best.newton.converged
    if not converged:
        warnings.warn(f"{_FN}: the penalised fit did not converge; the estimates are not reliable.",
                      ConvergenceWarning, stacklevel=3)
    se = np.sqrt(np.diag(var))
    df_lr = float(sum(df_terms) + df_frail)
    rows = [("likelihood_ratio", 2 * (loglik - pr.null.loglik), df_lr), ("wald", _wald_form(var, beta)[0], p),
            ("frailty", frail_test, df_frail, max(df_frail, 0.5))]  # printfun: pchisq(test, max(df, 0.5))
    re = pd.DataFrame({"group": uniq, "estimate": w, "se": np.sqrt(fvar), "hazard_ratio": np.exp(w),
                       "n": np.bincount(codes, minlength=G),
                       "n_events": np.bincount(codes, pr.e, minlength=G).astype(int)})
    return {
        "coef": _coef_table({"term": names, "estimate": beta, "se": se, "se2": np.sqrt(np.diag(var2))}, beta, se, crit),
        "vcov": pd.DataFrame(var, index=names, columns=names), "naive_vcov": None, "tests": _tests_frame(rows),
        "loglik": float(loglik), "loglik_integrated": float(c_loglik), "theta": float(theta_hat),
        "random_effects": re, "n_clusters": 0, "n_groups": G, "converged": bool(converged),
        "eta": pr.Xa @ beta + w[codes],
    }


def _coef_table(cols: dict, beta: np.ndarray, se: np.ndarray, crit: float) -> pd.DataFrame:
    out = pd.DataFrame(cols)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = beta / se
        out["statistic"] = z
        out["pvalue"] = stats.chi2.sf(z**2, 1)
        out["ci_low"] = beta - crit * se
        out["ci_high"] = beta + crit * se
        out["hazard_ratio"] = np.exp(beta)
        out["hazard_ratio_ci_low"] = np.exp(out["ci_low"])
        out["hazard_ratio_ci_high"] = np.exp(out["ci_high"])
    return out


def _warn_infinite(nw: _Newton, beta: np.ndarray, names: list[str]) -> None:
    """coxph's warning "Loglik converged before variable ...; coefficient may be infinite"."""
    step = np.abs(nw.last_step)
    infinite = (~np.isfinite(nw.grad)) | ((step > _INF_EPS) & (step > _INF_TOLER * np.abs(beta)))
    if nw.converged and infinite.any():
        which = [names[j] for j in np.flatnonzero(infinite)]
        warnings.warn(
            f"{_FN}: the log partial likelihood converged before the coefficient(s) of {first_values(which)} did "
            "(monotone likelihood: coxph's \"Loglik converged before variable ...\"); the coefficient may be "
            "infinite, e.g. when the covariate separates the sites with and without de-adoption. Its estimate "
            "and standard error are not meaningful: merge categories or remove the covariate.",
            ScaleupWarning, stacklevel=3,
        )
