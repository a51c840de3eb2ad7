"""Private engine of the univariate random/fixed-effects meta-analysis (metafor's ``rma.uni``).

The public wrappers live in :mod:`scaleup_analysis.heterogeneity.meta`. Everything here works on plain
NumPy arrays (``yi``, ``vi``, model matrix ``X`` whose first column is the intercept when there is
one) and reproduces metafor 3.8 ``rma.uni`` with its default control settings:

* tau^2 estimators FE, DL, HE, SJ (one step from the start value ``var(yi) (k-1)/k``), PM (root of the
  generalised Q equation), ML, REML and EB (Fisher scoring started at the truncated HE estimate, stopping
  when the change in tau^2 is <= 1e-5, at most 100 iterations, step halving to stay >= 0, and the
  "stuck at a local maximum" check against tau^2 = 0 for ML/REML);
* root finding (PM estimator, Q-profile CI of tau^2) by :func:`r_uniroot`, a re-implementation of the
  Brent-Dekker zero finder used by R's ``uniroot`` (same bracketing, same tolerance eps^0.25, same
  termination test), so that the iterates, and hence the returned roots, agree with R to rounding;
* Wald-type or Knapp-Hartung inference, Q test, I^2/H^2 (based on the "typical" within-study variance),
  log-likelihood based fit statistics.

metafor forms the k x k matrix P = W - W X (X'WX)^{-1} X'W; here every quantity built from it (y'Py,
y'PPy, tr P, tr PP, tr PVPV, ...) is computed in its O(k p^2)-time, O(k p)-memory form (:class:`_Proj`),
the same numbers up to rounding, so that a fit with the Q-profile CI is linear in k (k = 10^6 runs).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of Statistical
Software, 36(3), 1-48. https://doi.org/10.18637/jss.v036.i03
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__: list[str] = []

EPS = np.finfo(float).eps
UNIROOT_TOL = EPS**0.25  # R's uniroot default tolerance
THRESHOLD = 1e-5  # metafor control$threshold (Fisher scoring convergence)
MAXITER = 100  # metafor control$maxiter
METHODS = ("FE", "DL", "REML", "ML", "PM", "EB", "HE", "SJ")
TESTS = ("z", "knha")


class FitError(RuntimeError):
    """The model could not be fitted (non-convergence, bracket failure); message says what to try."""


# --------------------------------------------------------------------------------------------------
# numerical helpers
# --------------------------------------------------------------------------------------------------
def r_mad(x: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 * median(|x - median(x)|)."""
    med = np.median(x)
    return 1.4826 * float(np.median(np.abs(x - med)))


def r_zeroin(f, ax: float, bx: float, fa: float, fb: float, tol: float, maxit: int) -> tuple[float, int]:
    """Brent-Dekker zero finder with the same update rules and stopping test as R's ``zeroin2``.

    Returns ``(root, iterations)``; ``iterations`` is -1 when ``maxit`` was exhausted.
    Algorithm: Brent (1973), *Algorithms for Minimization without Derivatives*, ch. 4, in the
    formulation of Forsythe, Malcolm & Moler (1977) used by R.
    """
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a, 0
    if fb == 0.0:
        return b, 0
    remaining = maxit + 1
    while remaining > 0:
        remaining -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):  # keep b as the best approximation
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, maxit + 1 - remaining
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # secant (linear interpolation)
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                qq = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * qq * (qq - t1) - (b - a) * (t1 - 1.0))
                q = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0.0 else -tol_act
        a, fa = b, fb
        b = b + new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, -1


def r_uniroot(f, lower: float, upper: float, tol: float = UNIROOT_TOL, maxiter: int = 1000) -> float:
    """R's ``uniroot(f, c(lower, upper), tol = tol, maxiter = maxiter)$root`` (``extendInt = "no"``)."""
    f_lower = f(lower)
    f_upper = f(upper)
    if f_lower * f_upper > 0:
        raise FitError("f() values at the end points of the search interval are not of opposite sign")
    root, _ = r_zeroin(f, lower, upper, f_lower, f_upper, tol, maxiter)
    return root


def _design(X: np.ndarray) -> np.ndarray | None:
    """``None`` when X is the single intercept column (the helpers below then skip the products with
    x = 1, which are exact, so results are bit-identical), else X itself."""
    if X.shape[1] == 1 and bool(np.all(X[:, 0] == 1.0)):
        return None
    return X


def _stxwx(X: np.ndarray | None, w: np.ndarray) -> np.ndarray:
    """(X' W X)^{-1} for diagonal W = diag(w), via the QR decomposition of sqrt(W) X (metafor .invcalc).

    O(k p^2) time and O(k p) memory; for a single column it is 1 / sum(w x^2). ``X=None``: intercept.
    """
    if X is None:
        return np.array([[1.0 / float(np.sum(w))]])
    if X.shape[1] == 1:  # element-wise products and pairwise sums (no BLAS call: cheaper for p = 1)
        x = X[:, 0]
        return np.array([[1.0 / float(np.sum(w * x * x))]])
    r = np.linalg.qr(np.sqrt(w)[:, None] * X, mode="r")
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    return rinv @ rinv.T


def _xtdx(X: np.ndarray | None, d: np.ndarray | None) -> np.ndarray:
    """X' diag(d) X (p x p) in O(k p^2) time (``d=None``: X'X; ``X=None``: intercept column)."""
    if X is None:
        return np.array([[float(np.sum(d))]])
    if X.shape[1] == 1:
        x = X[:, 0]
        return np.array([[float(np.sum(x * x if d is None else d * x * x))]])
    return X.T @ (X if d is None else d[:, None] * X)


def _xty(X: np.ndarray | None, u: np.ndarray) -> np.ndarray:
    """X' u (length p)."""
    if X is None:
        return np.array([float(np.sum(u))])
    if X.shape[1] == 1:
        return np.array([float(np.sum(X[:, 0] * u))])
    return X.T @ u


def _xb(X: np.ndarray | None, b: np.ndarray):
    """X b (length k; a scalar for the intercept column, broadcast by the caller)."""
    if X is None:
        return b[0]
    if X.shape[1] == 1:
        return X[:, 0] * b[0]
    return X @ b


class _Proj:
    """The k x k matrix P = W - W X (X'WX)^{-1} X'W of metafor, never formed.

    With W = diag(w), A = X'WX (p x p) and, for a vector y, the weighted least-squares residuals
    r = y - X (A^{-1} X'W y): P y = W r, y'P y = sum(w r^2), y'P P y = sum(w^2 r^2). For diagonal
    D = diag(d), E = diag(e), writing M_d = X' diag(w^2 d) X:

        tr(P)       = sum(w) - tr(A^{-1} X'W^2 X)
        tr(P D P E) = sum(w^2 d e) - 2 tr(A^{-1} X' diag(w^3 d e) X) + tr(A^{-1} M_d A^{-1} M_e)

    (expand P = W - H, H = W X A^{-1} X'W, use tr(H D W E) = tr(W D H E) and cyclic permutation).
    tr(P P) = sum(P * P), tr(P V P V) = sum(PV * t(PV)) and tr(P V P) = sum(PV * P) of ``rma.uni`` are
    the cases d = e = 1, d = e = v and (d, e) = (v, 1). Every quantity costs O(k p^2) time and O(k p)
    memory instead of the O(k^2) memory and O(k^3) time of the dense matrix.
    """

    __slots__ = ("X", "w", "st")

    def __init__(self, X: np.ndarray | None, w: np.ndarray):
        self.X = X
        self.w = w
        self.st = _stxwx(X, w)

    def resid(self, y: np.ndarray) -> np.ndarray:
        """r = y - X beta_hat, beta_hat = (X'WX)^{-1} X'W y (so that P y = w r)."""
        return y - _xb(self.X, self.st @ _xty(self.X, self.w * y))

    def quad(self, y: np.ndarray) -> float:
        """y' P y = sum(w r^2)."""
        r = self.resid(y)
        return float(np.sum(self.w * r * r))

    def quad2(self, y: np.ndarray) -> float:
        """y' P P y = ||P y||^2 = sum(w^2 r^2)."""
        wr = self.w * self.resid(y)
        return float(np.sum(wr * wr))

    def trace(self, d=None) -> float:
        """tr(P D) = sum(w d) - tr(A^{-1} X' diag(w^2 d) X) for D = diag(d) (None: tr(P))."""
        w = self.w
        wd = w if d is None else w * d
        return float(wd.sum()) - float(np.sum(self.st * _xtdx(self.X, wd * w)))

    def tr_pdpe(self, d=None, e=None) -> float:
        """tr(P D P E) for D = diag(d), E = diag(e) (None: identity)."""
        w = self.w
        w2 = w * w
        de = w2 if d is None and e is None else w2 * (1.0 if d is None else d) * (1.0 if e is None else e)
        t1 = float(de.sum())
        t2 = float(np.sum(self.st * _xtdx(self.X, de * w)))
        md = self.st @ _xtdx(self.X, w2 if d is None else w2 * d)
        me = md if e is d else self.st @ _xtdx(self.X, w2 if e is None else w2 * e)
        t3 = float(np.sum(md * me.T))
        return t1 - 2.0 * t2 + t3


def _logdet(a: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(a)
    return float(val)


def q_of_tau2(tau2: float, y: np.ndarray, vi: np.ndarray, X: np.ndarray | None) -> float:
    """Generalised Q statistic y' P(tau2) y = sum w_i r_i^2 (metafor .QE.func without the objective).

    O(k p^2) time, O(k p) memory (see :class:`_Proj`); ``X`` may be ``None`` for the intercept column
    (see :func:`_design`).
    """
    return _Proj(X, 1.0 / (vi + tau2)).quad(y)


# --------------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------------
@dataclass
class Fit:
    """Everything ``rma.uni`` computes for one model (plain arrays; not part of the public API)."""

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    method: str
    test: str
    level: float
    k: int
    p: int
    int_incl: bool
    btt: np.ndarray
    tau2: float
    se_tau2: float
    beta: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    crit: float
    ddf: float
    s2w: float
    QM: float
    QM_df: tuple
    QM_pvalue: float
    QE: float
    QE_pvalue: float
    vt: float
    I2: float
    H2: float
    parms: int
    fit_stats: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def estimate_tau2(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, method: str) -> tuple[float, float, list]:
    """tau^2 and its standard error exactly as metafor ``rma.uni`` (default ``control``)."""
    k, p = X.shape
    Xd = _design(X)
    msgs: list[str] = []
    ymc = yi - yi.mean()
    tau2_min = 0.0
    tau2_max = max(100.0, 10.0 * r_mad(yi) ** 2)
    se_tau2 = math.nan
    if method == "FE":
        return 0.0, math.nan, msgs

    tau2 = math.nan
    if method in ("HE", "ML", "REML", "EB"):
        P = _Proj(Xd, np.ones(k))  # P = I - X (X'X)^{-1} X'
        RSS = P.quad(ymc)
        trPV = P.trace(vi)
        tau2 = (RSS - trPV) / (k - p)
        P_he = P
    if method == "DL":
        wi = 1.0 / vi
        P = _Proj(Xd, wi)
        RSS = P.quad(ymc)
        trP = P.trace()
        tau2 = (RSS - (k - p)) / trP
    if method == "SJ":
        tau2_0 = float(np.var(ymc, ddof=1) * (k - 1) / k)
        wi = 1.0 / (vi + tau2_0)
        P = _Proj(Xd, wi)
        RSS = P.quad(ymc)
        tau2 = tau2_0 * RSS / (k - p)
    if method == "PM":
        target = k - p

        def qfun(t):
            return q_of_tau2(t, ymc, vi, Xd) - target

        if qfun(tau2_min) < 0:
            tau2 = tau2_min
        elif qfun(tau2_max) > 0:
            raise FitError(
                f"the Paule-Mandel equation has no root below tau2_max = {tau2_max:g}; "
                "use another method (e.g. method='REML')"
            )
        else:
            tau2 = r_uniroot(qfun, tau2_min, tau2_max, tol=UNIROOT_TOL, maxiter=MAXITER)
    if method in ("ML", "REML", "EB"):
        tau2 = max(0.0, tau2, tau2_min)
        change = THRESHOLD + 1.0
        it = 0
        while change > THRESHOLD:
            it += 1
            old2 = tau2
            wi = 1.0 / (vi + tau2)
            P = _Proj(Xd, wi)
            if method == "ML":  # (y'PPy - sum(w)) / sum(w^2)
                adj = (P.quad2(ymc) - wi.sum()) / float((wi**2).sum())
            elif method == "REML":  # (y'PPy - tr(P)) / tr(PP)
                adj = (P.quad2(ymc) - P.trace()) / P.tr_pdpe()
            else:  # EB: (y'Py k/(k-p) - k) / sum(w)
                adj = (P.quad(ymc) * k / (k - p) - k) / wi.sum()
            adj = float(adj)
            if math.isnan(adj):
                adj = 0.0
            while tau2 + adj < tau2_min:
                adj /= 2.0
            tau2 = tau2 + adj
            change = abs(old2 - tau2)
            if it > MAXITER:
                raise FitError(
                    f"Fisher scoring for the {method} estimate of tau2 did not converge in {MAXITER} "
                    "iterations (metafor's rma() stops with the same error on such data); "
                    "try method='PM' or method='DL'"
                )
        if method in ("ML", "REML"):
            reml = method == "REML"

            def _ll(t):
                w = 1.0 / (vi + t)
                rss = _Proj(Xd, w).quad(ymc)
                if reml:
                    return (
                        -0.5 * (k - p) * math.log(2 * math.pi)
                        - 0.5 * float(np.sum(np.log(vi + t)))
                        - 0.5 * _logdet(_xtdx(Xd, w))
                        - 0.5 * rss
                    )
                return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + t))) - 0.5 * rss

            if _ll(0.0) - _ll(tau2) > UNIROOT_TOL and tau2 > THRESHOLD:
                msgs.append("Fisher scoring may have got stuck at a local maximum; tau2 set to 0")
                tau2 = 0.0
        wi = 1.0 / (vi + tau2)
        P = _Proj(Xd, wi)

    tau2 = max(tau2_min, float(tau2))
    t0 = max(tau2, 0.0)
    if method == "HE":  # sum(PV * t(PV)) = tr(PVPV)
        se_tau2 = math.sqrt(
            1 / (k - p) ** 2 * (2 * P_he.tr_pdpe(vi, vi) + 4 * t0 * trPV + 2 * t0**2 * (k - p))
        )
    elif method == "DL":  # sum(P * P) = tr(PP)
        se_tau2 = math.sqrt(1 / trP**2 * (2 * (k - p) + 4 * t0 * trP + 2 * t0**2 * P.tr_pdpe()))
    elif method == "SJ":  # sum(PV * t(PV)) = tr(PVPV), sum(PV * P) = tr(PVP), sum(P * P) = tr(PP)
        se_tau2 = math.sqrt(
            tau2_0**2
            / (k - p) ** 2
            * (2 * P.tr_pdpe(vi, vi) + 4 * t0 * P.tr_pdpe(vi, None) + 2 * t0**2 * P.tr_pdpe())
        )
    elif method == "ML":
        se_tau2 = math.sqrt(2 / float(np.sum(wi**2)))
    elif method == "REML":
        se_tau2 = math.sqrt(2 / P.tr_pdpe())
    elif method in ("EB", "PM"):
        wi = 1.0 / (vi + tau2)
        se_tau2 = math.sqrt(2 * k**2 / (k - p) / float(wi.sum()) ** 2)
    return tau2, se_tau2, msgs


def fit_rma(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    int_incl: bool = True,
    btt: np.ndarray | None = None,
) -> Fit:
    """Fit the model y_i = x_i' beta + u_i + e_i, u_i ~ N(0, tau^2), e_i ~ N(0, v_i) as ``rma.uni``."""
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    alpha = 1.0 - level
    if btt is None:
        btt = np.arange(1, p) if (p > 1 and int_incl) else np.arange(p)
    tau2, se_tau2, msgs = estimate_tau2(yi, vi, X, method)

    wi = 1.0 / (vi + tau2)
    Xd = _design(X)
    stXWX = _stxwx(Xd, wi)
    beta = stXWX @ _xty(Xd, wi * yi)
    vb = stXWX
    RSS_f = float(np.sum(wi * (yi - _xb(Xd, beta)) ** 2))
    s2w = 1.0
    if test == "knha":
        s2w = 0.0 if RSS_f <= EPS else RSS_f / (k - p)
        vb = s2w * vb
    ddf = float(k - p) if test == "knha" else math.nan
    m = len(btt)
    try:
        sub = vb[np.ix_(btt, btt)]
        QM = float(beta[btt] @ np.linalg.solve(sub, beta[btt]))
    except np.linalg.LinAlgError:
        QM = math.nan
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    if test == "knha":
        QM = QM / m
        QM_df = (m, k - p)
        QM_pvalue = float(stats.f.sf(QM, m, k - p)) if k - p > 0 else math.nan
        pval = 2 * stats.t.sf(np.abs(zval), ddf) if ddf > 0 else np.full(p, np.nan)
        crit = float(stats.t.isf(alpha / 2, ddf)) if ddf > 0 else math.nan
    else:
        QM_df = (m, None)
        QM_pvalue = float(stats.chi2.sf(QM, m))
        pval = 2 * stats.norm.sf(np.abs(zval))
        crit = float(stats.norm.isf(alpha / 2))
    ci_lb = beta - crit * se
    ci_ub = beta + crit * se

    if k > p:
        P = _Proj(Xd, 1.0 / vi)  # fixed-effects weights
        ymc = yi - yi.mean()
        QE = max(0.0, P.quad(ymc))
        QE_pvalue = float(stats.chi2.sf(QE, k - p))
        vt = (k - p) / P.trace()
        if method == "FE":
            # R: max(0, 100 * (QE - (k-p)) / QE) is max(0, -Inf) = 0 when QE = 0 (identical yi)
            I2 = max(0.0, 100 * (QE - (k - p)) / QE) if QE > 0 else 0.0
            H2 = QE / (k - p)
        else:
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
    else:
        QE, QE_pvalue, I2, H2, vt = 0.0, 1.0, 0.0, 1.0, 0.0

    parms = p + (0 if method == "FE" else 1)
    ll_ml = -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * RSS_f
    ll_reml = (
        -0.5 * (k - p) * math.log(2 * math.pi)
        + 0.5 * _logdet(_xtdx(X, None))
        - 0.5 * float(np.sum(np.log(vi + tau2)))
        - 0.5 * _logdet(_xtdx(Xd, wi))
        - 0.5 * RSS_f
    )
    if k > p:
        dev_ml = -2 * (ll_ml - float(np.sum(stats.norm.logpdf(yi, loc=yi, scale=np.sqrt(vi)))))
    else:
        dev_ml = 0.0
    n_ml = max(k, parms + 2)
    n_reml = max(k - p, parms + 2)
    fit_stats = {
        "ML": {
            "loglik": ll_ml,
            "deviance": dev_ml,
            "AIC": -2 * ll_ml + 2 * parms,
            "BIC": -2 * ll_ml + parms * math.log(k),
            "AICc": -2 * ll_ml + 2 * parms * n_ml / (n_ml - parms - 1),
        },
        "REML": {
            "loglik": ll_reml,
            "deviance": -2 * ll_reml,
            "AIC": -2 * ll_reml + 2 * parms,
            "BIC": -2 * ll_reml + parms * math.log(k - p) if k > p else math.nan,
            "AICc": -2 * ll_reml + 2 * parms * n_reml / (n_reml - parms - 1),
        },
    }
    return Fit(
        yi=yi, vi=vi, X=X, method=method, test=test, level=level, k=k, p=p, int_incl=int_incl,
        btt=np.asarray(btt), tau2=float(tau2), se_tau2=float(se_tau2), beta=beta, vb=vb, se=se,
        zval=zval, pval=np.asarray(pval, dtype=float), ci_lb=ci_lb, ci_ub=ci_ub, crit=crit, ddf=ddf,
        s2w=s2w, QM=QM, QM_df=QM_df, QM_pvalue=QM_pvalue, QE=QE, QE_pvalue=QE_pvalue, vt=vt, I2=I2,
        H2=H2, parms=parms, fit_stats=fit_stats, warnings=msgs,
    )


def qprofile_ci(fit: Fit, level: float | None = None) -> dict:
    """Q-profile confidence interval of tau^2 (and of I^2, H^2), as metafor ``confint.rma.uni``.

    Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
    Statistics in Medicine, 26, 37-52.
    """
    level = fit.level if level is None else level
    alpha = 1.0 - level
    k, p = fit.k, fit.p
    y, vi, X = fit.yi, fit.vi, _design(fit.X)
    tau2_min = min(0.0, fit.tau2)
    tau2_max = max(100.0, fit.tau2 * 10, tau2_min * 10)
    crit_u = float(stats.chi2.isf(alpha / 2, k - p))
    crit_l = float(stats.chi2.ppf(alpha / 2, k - p))
    q_max = q_of_tau2(tau2_max, y, vi, X)
    q_min = q_of_tau2(tau2_min, y, vi, X)
    lb = ub = math.nan
    ci_null = False

    def root(target):
        try:
            return r_uniroot(lambda t: q_of_tau2(t, y, vi, X) - target, tau2_min, tau2_max, maxiter=1000)
        except FitError:
            return math.nan

    if q_min < crit_l:
        lb = ub = tau2_min
        ci_null = tau2_min <= 0
    else:
        ub = tau2_max if q_max > crit_l else root(crit_l)
    if q_max > crit_u:
        lb = ub = tau2_max
    else:
        lb = tau2_min if q_min < crit_u else root(crit_u)
    vt = fit.vt
    return {
        "tau2_ci_low": lb,
        "tau2_ci_high": ub,
        "I2_ci_low": 100 * lb / (vt + lb),
        "I2_ci_high": 100 * ub / (vt + ub),
        "H2_ci_low": lb / vt + 1,
        "H2_ci_high": ub / vt + 1,
        "ci_null": ci_null,
    }
