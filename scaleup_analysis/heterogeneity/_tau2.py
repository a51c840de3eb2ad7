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


def _stxwx(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(X' W X)^{-1} for diagonal W = diag(w), via the QR decomposition of sqrt(W) X (metafor .invcalc)."""
    r = np.linalg.qr(np.sqrt(w)[:, None] * X, mode="r")
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    return rinv @ rinv.T


def _pmat(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P = W - W X (X'WX)^{-1} X' W."""
    WX = w[:, None] * X
    return np.diag(w) - WX @ _stxwx(X, w) @ WX.T


def _logdet(a: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(a)
    return float(val)


def q_of_tau2(tau2: float, y: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    """Generalised Q statistic y' P(tau2) y (metafor .QE.func without the objective)."""
    P = _pmat(X, 1.0 / (vi + tau2))
    return float(y @ P @ y)


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
    msgs: list[str] = []
    ymc = yi - yi.mean()
    tau2_min = 0.0
    tau2_max = max(100.0, 10.0 * r_mad(yi) ** 2)
    se_tau2 = math.nan
    if method == "FE":
        return 0.0, math.nan, msgs

    tau2 = math.nan
    if method in ("HE", "ML", "REML", "EB"):
        P = np.eye(k) - X @ _stxwx(X, np.ones(k)) @ X.T
        RSS = float(ymc @ P @ ymc)
        PV = P * vi[None, :]
        trPV = float(np.trace(PV))
        tau2 = (RSS - trPV) / (k - p)
        he = (P, PV, trPV)
    if method == "DL":
        wi = 1.0 / vi
        P = _pmat(X, wi)
        RSS = float(ymc @ P @ ymc)
        trP = float(np.trace(P))
        tau2 = (RSS - (k - p)) / trP
    if method == "SJ":
        tau2_0 = float(np.var(ymc, ddof=1) * (k - 1) / k)
        wi = 1.0 / (vi + tau2_0)
        P = _pmat(X, wi)
        RSS = float(ymc @ P @ ymc)
        PV = P * vi[None, :]
        tau2 = tau2_0 * RSS / (k - p)
    if method == "PM":
        target = k - p

        def qfun(t):
            return q_of_tau2(t, ymc, vi, X) - target

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
            P = _pmat(X, wi)
            if method == "ML":
                PP = P @ P
                adj = (float(ymc @ PP @ ymc) - wi.sum()) / float((wi**2).sum())
            elif method == "REML":
                PP = P @ P
                adj = (float(ymc @ PP @ ymc) - np.trace(P)) / np.trace(PP)
            else:  # EB
                adj = (float(ymc @ P @ ymc) * k / (k - p) - k) / wi.sum()
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
                    "iterations; try method='PM' or method='DL'"
                )
        if method in ("ML", "REML"):
            reml = method == "REML"

            def _ll(t):
                w = 1.0 / (vi + t)
                st = _stxwx(X, w)
                b = st @ (X.T @ (w * ymc))
                rss = float(np.sum(w * (ymc - X @ b) ** 2))
                if reml:
                    return (
                        -0.5 * (k - p) * math.log(2 * math.pi)
                        - 0.5 * float(np.sum(np.log(vi + t)))
                        - 0.5 * _logdet(X.T @ (w[:, None] * X))
                        - 0.5 * rss
                    )
                return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + t))) - 0.5 * rss

            if _ll(0.0) - _ll(tau2) > UNIROOT_TOL and tau2 > THRESHOLD:
                msgs.append("Fisher scoring may have got stuck at a local maximum; tau2 set to 0")
                tau2 = 0.0
        wi = 1.0 / (vi + tau2)
        P = _pmat(X, wi)

    tau2 = max(tau2_min, float(tau2))
    t0 = max(tau2, 0.0)
    if method == "HE":
        P, PV, trPV = he
        se_tau2 = math.sqrt(1 / (k - p) ** 2 * (2 * float(np.sum(PV * PV.T)) + 4 * t0 * trPV + 2 * t0**2 * (k - p)))
    elif method == "DL":
        se_tau2 = math.sqrt(1 / trP**2 * (2 * (k - p) + 4 * t0 * trP + 2 * t0**2 * float(np.sum(P * P))))
    elif method == "SJ":
        se_tau2 = math.sqrt(
            tau2_0**2
            / (k - p) ** 2
            * (2 * float(np.sum(PV * PV.T)) + 4 * t0 * float(np.sum(PV * P)) + 2 * t0**2 * float(np.sum(P * P)))
        )
    elif method == "ML":
        se_tau2 = math.sqrt(2 / float(np.sum(wi**2)))
    elif method == "REML":
        se_tau2 = math.sqrt(2 / float(np.sum(P * P)))
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
    stXWX = _stxwx(X, wi)
    beta = stXWX @ (X.T @ (wi * yi))
    vb = stXWX
    RSS_f = float(np.sum(wi * (yi - X @ beta) ** 2))
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
        w_fe = 1.0 / vi
        P = _pmat(X, w_fe)
        ymc = yi - yi.mean()
        QE = max(0.0, float(ymc @ P @ ymc))
        QE_pvalue = float(stats.chi2.sf(QE, k - p))
        vt = (k - p) / float(np.trace(P))
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
        + 0.5 * _logdet(X.T @ X)
        - 0.5 * float(np.sum(np.log(vi + tau2)))
        - 0.5 * _logdet(X.T @ (wi[:, None] * X))
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
    y, vi, X = fit.yi, fit.vi, fit.X
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
