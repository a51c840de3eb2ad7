"""metafor's ``rma.uni``: the univariate random/fixed-effects meta-analysis and meta-regression fit.

Computes everything ``rma.uni`` reports for the model y_i = x_i' beta + u_i + e_i,
u_i ~ N(0, tau^2), e_i ~ N(0, v_i), with metafor 3.8 run to convergence (tight ``control``, see
:mod:`.tau2`): tau^2 and its SE (the estimator's entry of
:data:`~scaleup_analysis.engines.tau2.ESTIMATORS`), the coefficients with Wald-type (``test="z"``),
t (``"t"``: t and F distributions with k - p df, unadjusted SEs) or Knapp-Hartung (``"knha"``: the
same distributions, SEs scaled by the weighted residual variance) inference, the omnibus test QM
of the coefficients ``btt``, the Q test of
residual heterogeneity, I^2 and H^2 (based on the "typical" within-study variance), the ML and REML
fit statistics (:func:`fit_rma`, returning a :class:`Fit`), and the Q-profile confidence interval
of tau^2, I^2 and H^2 (:func:`qprofile_ci`). Inputs are plain arrays: ``yi``, ``vi`` and the model
matrix ``X`` whose first column is the intercept when there is one. Raises
:class:`~scaleup_analysis.engines.FitError` when the model cannot be fitted; non-fatal messages are
in ``Fit.warnings``.

Used by ``heterogeneity.meta`` (``sa.meta_analysis``, ``sa.meta_regression`` and their influence
diagnostics, leave-one-out and permutation refits) and ``monitoring.voltage`` (bootstrap refits of
``sa.voltage_drop``).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of Statistical
Software, 36(3), 1-48. https://doi.org/10.18637/jss.v036.i03

Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
Statistics in Medicine, 26, 37-52.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from . import FitError
from .tau2 import ESTIMATORS, MAXITER, TOL, Tau2Estimator, estimate_tau2
from .uniroot import EPS, r_uniroot
from .wls import Projection, design_or_none, inv_xtwx, logdet, q_of_tau2, xb, xtdx, xty

__all__ = ["TESTS", "Fit", "fit_rma", "qprofile_ci"]

#: ``test=`` choices: normal/chi-square ("z"), t/F with k - p df ("t"), and the same with the
#: Knapp-Hartung adjustment of the SEs ("knha"); metafor's ``test=`` codes.
TESTS = ("z", "t", "knha")


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

    @property
    def estimator(self) -> Tau2Estimator:
        """The tau^2 estimator of the fit (its entry of :data:`~scaleup_analysis.engines.tau2.ESTIMATORS`)."""
        return ESTIMATORS[self.method]


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
    Xd = design_or_none(X)
    stXWX = inv_xtwx(Xd, wi)
    beta = stXWX @ xty(Xd, wi * yi)
    vb = stXWX
    RSS_f = float(np.sum(wi * (yi - xb(Xd, beta)) ** 2))
    s2w = 1.0
    if test == "knha":
        s2w = 0.0 if RSS_f <= EPS else RSS_f / (k - p)
        vb = s2w * vb
    ddf = float(k - p) if test in ("t", "knha") else math.nan
    m = len(btt)
    try:
        sub = vb[np.ix_(btt, btt)]
        QM = float(beta[btt] @ np.linalg.solve(sub, beta[btt]))
    except np.linalg.LinAlgError:
        QM = math.nan
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    if test in ("t", "knha"):
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
        P = Projection(Xd, 1.0 / vi)  # fixed-effects weights
        ymc = yi - yi.mean()
        QE = max(0.0, P.quad(ymc))
        QE_pvalue = float(stats.chi2.sf(QE, k - p))
        vt = (k - p) / P.trace()
        if not ESTIMATORS[method].random:
            # R: max(0, 100 * (QE - (k-p)) / QE) is max(0, -Inf) = 0 when QE = 0 (identical yi)
            I2 = max(0.0, 100 * (QE - (k - p)) / QE) if QE > 0 else 0.0
            H2 = QE / (k - p)
        else:
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
    else:
        QE, QE_pvalue, I2, H2, vt = 0.0, 1.0, 0.0, 1.0, 0.0

    parms = p + (1 if ESTIMATORS[method].random else 0)
    ll_ml = -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * RSS_f
    ll_reml = (
        -0.5 * (k - p) * math.log(2 * math.pi)
        + 0.5 * logdet(xtdx(X, None))
        - 0.5 * float(np.sum(np.log(vi + tau2)))
        - 0.5 * logdet(xtdx(Xd, wi))
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
    """Q-profile confidence interval of tau^2 (and of I^2, H^2), as metafor ``confint.rma.uni``
    with a tight root tolerance (``control = list(tol = 1e-12, maxiter = 10000)``; metafor's default
    eps^0.25 leaves a bound up to ~1e-4 away from the root).

    Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
    Statistics in Medicine, 26, 37-52.
    """
    level = fit.level if level is None else level
    alpha = 1.0 - level
    k, p = fit.k, fit.p
    y, vi, X = fit.yi, fit.vi, design_or_none(fit.X)
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
            return r_uniroot(lambda t: q_of_tau2(t, y, vi, X) - target, tau2_min, tau2_max, tol=TOL,
                             maxiter=MAXITER)
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
