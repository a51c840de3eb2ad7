"""The univariate tau^2 estimators of metafor's ``rma.uni``, as a table.

Computes the between-study variance tau^2 of the model y_i = x_i' beta + u_i + e_i,
u_i ~ N(0, tau^2), e_i ~ N(0, v_i), and its standard error, as metafor 3.8 ``rma.uni`` run to
convergence (``control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)``): the iterative
estimators stop at the optimum (tau^2 within ~1e-10 of it), not where metafor's default stopping
rules (change of tau^2 <= 1e-5, root tolerance eps^0.25) leave it, up to ~1e-3 relative away.
Input: a :class:`Tau2Problem` (effect sizes ``yi``, sampling variances ``vi``, model matrix ``X``);
output: ``(tau2, se_tau2, messages)``.

:data:`ESTIMATORS` maps each ``method=`` code to a :class:`Tau2Estimator` (name, label for
summaries, estimating function, whether the model is a random-effects one, which likelihood metafor
reports the fit statistics of). Adding an estimator is adding one entry: the public
``method=`` choices (:data:`METHODS`), their labels and the fit all read the table.

* DL, HE, SJ, HS, HSk: closed forms (SJ: one step from the start value ``var(yi) (k-1)/k``; HS:
  Hunter-Schmidt, HSk: with the k/(k-p) correction);
* PM, PMM: root of the generalised Q equation Q(tau^2) = k - p (PM) or = the median of the
  chi-square(k - p) distribution (PMM, median-unbiased), by R's ``uniroot`` (:mod:`.uniroot`) with
  tolerance :data:`TOL`;
* ML, REML, EB: Fisher scoring started at the truncated HE estimate, stopping when the change in
  tau^2 is <= :data:`THRESHOLD` (1e-12), at most :data:`MAXITER` iterations, step halving to stay
  >= 0, and for ML/REML the "stuck at a local maximum" check against tau^2 = 0 (a message is
  returned).

Used by :mod:`.rma` (``fit_rma``), hence by ``sa.meta_analysis``, ``sa.meta_regression``,
``sa.component_analysis``, ``sa.voltage_drop`` and the pooling of ``sa.interrupted_time_series``.

References
----------
Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
random-effects model. Journal of Educational and Behavioral Statistics, 30(3), 261-293.

Hunter, J. E., & Schmidt, F. L. (1990). Methods of meta-analysis: Correcting error and bias in
research findings. Sage (HS).

Viechtbauer, W., Lopez-Lopez, J. A., Sanchez-Meca, J., & Marin-Martinez, F. (2015). A comparison of
procedures to test for moderators in mixed-effects meta-regression models. Psychological Methods,
20(3), 360-374 (HS for mixed-effects models).

Brannick, M. T., Potter, S. M., Benitez, B., & Morris, S. B. (2019). Bias and precision of alternate
estimators in meta-analysis: Benefits of blending Schmidt-Hunter and Hedges approaches.
Organizational Research Methods, 22(2), 490-514 (HSk).

Viechtbauer, W. (2021). Median-unbiased estimators for the amount of heterogeneity in meta-analysis.
European Congress of Methodology, Valencia (PMM).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import FitError
from scipy import stats

from .uniroot import r_uniroot
from .wls import Projection, design_or_none, logdet, q_of_tau2, xtdx

__all__ = ["Tau2Problem", "Tau2Estimator", "ESTIMATORS", "METHODS", "THRESHOLD", "TOL", "MAXITER",
           "estimate_tau2", "r_mad"]

#: Fisher scoring stops when tau^2 changes by at most this (metafor ``control$threshold``; its
#: default 1e-5 stops up to ~1e-3 away from the optimum: see docs/divergences.md).
THRESHOLD = 1e-12
#: tolerance of the root searches (PM, PMM, Q-profile CI) and of the ML/REML check against
#: tau^2 = 0 (metafor ``control$tol``, default eps^0.25 = 1.2e-4).
TOL = 1e-12
#: most iterations of Fisher scoring and of the root searches (metafor ``control$maxiter``, default 100).
MAXITER = 10_000


def r_mad(x: np.ndarray) -> float:
    """R's ``mad()``: 1.4826 * median(|x - median(x)|)."""
    med = np.median(x)
    return 1.4826 * float(np.median(np.abs(x - med)))


@dataclass(frozen=True)
class Tau2Problem:
    """What every estimator sees: the data and metafor's search bounds of tau^2."""

    vi: np.ndarray  # sampling variances (k)
    X: np.ndarray | None  # model matrix (k x p), None for the single intercept column
    k: int
    p: int
    ymc: np.ndarray  # yi - mean(yi) (metafor centres y; the estimators are invariant to it)
    tau2_min: float  # 0 (metafor's control$tau2.min)
    tau2_max: float  # max(100, 10 mad(yi)^2) (metafor's control$tau2.max)

    @classmethod
    def from_arrays(cls, yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> Tau2Problem:
        k, p = X.shape
        return cls(vi=vi, X=design_or_none(X), k=k, p=p, ymc=yi - yi.mean(), tau2_min=0.0,
                   tau2_max=max(100.0, 10.0 * r_mad(yi) ** 2))

    def bounded(self, tau2) -> float:
        """tau^2 kept at or above its lower bound (as a float)."""
        return max(self.tau2_min, float(tau2))

    def se_from_weights(self, tau2: float) -> float:
        """SE of tau^2 of the EB and PM estimators: sqrt(2 k^2 / (k - p) / (sum w)^2)."""
        k, p = self.k, self.p
        wi = 1.0 / (self.vi + tau2)
        return math.sqrt(2 * k**2 / (k - p) / float(wi.sum()) ** 2)


@dataclass(frozen=True)
class Tau2Estimator:
    """One entry of :data:`ESTIMATORS`."""

    name: str  #: metafor's ``method=`` code
    label: str  #: name of the estimator in summaries
    estimate: Callable[[Tau2Problem], tuple[float, float, list]]  #: returns (tau2, se_tau2, messages)
    random: bool = True  #: False for the fixed-effects model (tau^2 = 0, no prediction interval)
    fit_stats: str = "ML"  #: likelihood of the fit statistics reported (metafor: REML for REML only)


# --------------------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------------------
def _fixed_effects(pr: Tau2Problem) -> tuple[float, float, list]:
    return 0.0, math.nan, []


def _dersimonian_laird(pr: Tau2Problem) -> tuple[float, float, list]:
    k, p = pr.k, pr.p
    P = Projection(pr.X, 1.0 / pr.vi)
    RSS = P.quad(pr.ymc)
    trP = P.trace()
    tau2 = pr.bounded((RSS - (k - p)) / trP)
    t0 = max(tau2, 0.0)
    # sum(P * P) = tr(PP)
    se = math.sqrt(1 / trP**2 * (2 * (k - p) + 4 * t0 * trP + 2 * t0**2 * P.tr_pdpe()))
    return tau2, se, []


def _hedges_start(pr: Tau2Problem) -> tuple[Projection, float, float]:
    """The HE estimate (unbounded) with the ordinary least-squares projection and tr(PV)."""
    P = Projection(pr.X, np.ones(pr.k))  # P = I - X (X'X)^{-1} X'
    RSS = P.quad(pr.ymc)
    trPV = P.trace(pr.vi)
    return P, trPV, (RSS - trPV) / (pr.k - pr.p)


def _hedges(pr: Tau2Problem) -> tuple[float, float, list]:
    k, p, vi = pr.k, pr.p, pr.vi
    P, trPV, tau2 = _hedges_start(pr)
    tau2 = pr.bounded(tau2)
    t0 = max(tau2, 0.0)
    # sum(PV * t(PV)) = tr(PVPV)
    se = math.sqrt(1 / (k - p) ** 2 * (2 * P.tr_pdpe(vi, vi) + 4 * t0 * trPV + 2 * t0**2 * (k - p)))
    return tau2, se, []


def _sidik_jonkman(pr: Tau2Problem) -> tuple[float, float, list]:
    k, p, vi = pr.k, pr.p, pr.vi
    tau2_0 = float(np.var(pr.ymc, ddof=1) * (k - 1) / k)
    P = Projection(pr.X, 1.0 / (vi + tau2_0))
    RSS = P.quad(pr.ymc)
    tau2 = pr.bounded(tau2_0 * RSS / (k - p))
    t0 = max(tau2, 0.0)
    # sum(PV * t(PV)) = tr(PVPV), sum(PV * P) = tr(PVP), sum(P * P) = tr(PP)
    se = math.sqrt(
        tau2_0**2 / (k - p) ** 2 * (2 * P.tr_pdpe(vi, vi) + 4 * t0 * P.tr_pdpe(vi, None) + 2 * t0**2 * P.tr_pdpe())
    )
    return tau2, se, []


def _hunter_schmidt(pr: Tau2Problem, corrected: bool = False) -> tuple[float, float, list]:
    """HS: (Q - k) / sum(w); HSk: (k/(k-p) Q - k) / sum(w), w = 1/v, Q the fixed-effects residual Q."""
    k, p = pr.k, pr.p
    wi = 1.0 / pr.vi
    P = Projection(pr.X, wi)
    RSS = P.quad(pr.ymc)
    factor = k / (k - p) if corrected else 1.0
    tau2 = pr.bounded((factor * RSS - k) / float(wi.sum()))
    t0 = max(tau2, 0.0)
    se = factor * math.sqrt(1 / float(wi.sum()) ** 2 * (2 * (k - p) + 4 * t0 * P.trace() + 2 * t0**2 * P.tr_pdpe()))
    return tau2, se, []


def _hunter_schmidt_k(pr: Tau2Problem) -> tuple[float, float, list]:
    return _hunter_schmidt(pr, corrected=True)


def _paule_mandel_median(pr: Tau2Problem) -> tuple[float, float, list]:
    return _paule_mandel(pr, median=True)


def _paule_mandel(pr: Tau2Problem, median: bool = False) -> tuple[float, float, list]:
    target = float(stats.chi2.ppf(0.5, pr.k - pr.p)) if median else pr.k - pr.p

    def qfun(t):
        return q_of_tau2(t, pr.ymc, pr.vi, pr.X) - target

    if qfun(pr.tau2_min) < 0:
        tau2 = pr.tau2_min
    elif qfun(pr.tau2_max) > 0:
        raise FitError(
            f"the {'median-unbiased ' if median else ''}Paule-Mandel equation has no root below "
            f"tau2_max = {pr.tau2_max:g}; "
            "use another method (e.g. method='REML')"
        )
    else:
        tau2 = r_uniroot(qfun, pr.tau2_min, pr.tau2_max, tol=TOL, maxiter=MAXITER)
    tau2 = pr.bounded(tau2)
    return tau2, pr.se_from_weights(tau2), []


# --------------------------------------------------------------------------------------------------
# Fisher scoring (ML, REML, EB)
# --------------------------------------------------------------------------------------------------
def _fisher_scoring(pr: Tau2Problem, name: str, adjustment) -> float:
    """metafor's iterations: ``tau2 += adjustment(P, w)`` from the truncated HE estimate, until the
    change is <= :data:`THRESHOLD` (the optimum, to rounding)."""
    tau2 = max(0.0, _hedges_start(pr)[2], pr.tau2_min)
    change = THRESHOLD + 1.0
    it = 0
    while change > THRESHOLD:
        it += 1
        old2 = tau2
        wi = 1.0 / (pr.vi + tau2)
        adj = float(adjustment(Projection(pr.X, wi), wi))
        if math.isnan(adj):
            adj = 0.0
        while tau2 + adj < pr.tau2_min:
            adj /= 2.0
        tau2 = tau2 + adj
        change = abs(old2 - tau2)
        if it > MAXITER:
            raise FitError(
                f"Fisher scoring for the {name} estimate of tau2 did not converge in {MAXITER} "
                "iterations (metafor's rma() stops with the same error on such data, with its default or "
                "a tight convergence control); "
                "try method='PM' or method='DL'"
            )
    return tau2


def _stuck_at_local_maximum(pr: Tau2Problem, tau2: float, reml: bool) -> tuple[float, list]:
    """metafor's check of an ML/REML estimate against tau^2 = 0 (tau^2 set to 0 if that is better)."""
    k, p, vi = pr.k, pr.p, pr.vi

    def _ll(t):
        w = 1.0 / (vi + t)
        rss = Projection(pr.X, w).quad(pr.ymc)
        if reml:
            return (
                -0.5 * (k - p) * math.log(2 * math.pi)
                - 0.5 * float(np.sum(np.log(vi + t)))
                - 0.5 * logdet(xtdx(pr.X, w))
                - 0.5 * rss
            )
        return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + t))) - 0.5 * rss

    if _ll(0.0) - _ll(tau2) > TOL and tau2 > THRESHOLD:
        return 0.0, ["Fisher scoring may have got stuck at a local maximum; tau2 set to 0"]
    return tau2, []


def _maximum_likelihood(pr: Tau2Problem) -> tuple[float, float, list]:
    # step: (y'PPy - sum(w)) / sum(w^2)
    tau2 = _fisher_scoring(pr, "ML", lambda P, wi: (P.quad2(pr.ymc) - wi.sum()) / float((wi**2).sum()))
    tau2, msgs = _stuck_at_local_maximum(pr, tau2, reml=False)
    wi = 1.0 / (pr.vi + tau2)
    tau2 = pr.bounded(tau2)
    return tau2, math.sqrt(2 / float(np.sum(wi**2))), msgs


def _restricted_maximum_likelihood(pr: Tau2Problem) -> tuple[float, float, list]:
    # step: (y'PPy - tr(P)) / tr(PP)
    tau2 = _fisher_scoring(pr, "REML", lambda P, wi: (P.quad2(pr.ymc) - P.trace()) / P.tr_pdpe())
    tau2, msgs = _stuck_at_local_maximum(pr, tau2, reml=True)
    P = Projection(pr.X, 1.0 / (pr.vi + tau2))
    tau2 = pr.bounded(tau2)
    return tau2, math.sqrt(2 / P.tr_pdpe()), msgs


def _empirical_bayes(pr: Tau2Problem) -> tuple[float, float, list]:
    k, p = pr.k, pr.p
    # step: (y'Py k/(k-p) - k) / sum(w)
    tau2 = pr.bounded(_fisher_scoring(pr, "EB", lambda P, wi: (P.quad(pr.ymc) * k / (k - p) - k) / wi.sum()))
    return tau2, pr.se_from_weights(tau2), []


# --------------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------------
#: tau^2 estimators by ``method=`` code, in metafor's order of presentation.
ESTIMATORS: dict[str, Tau2Estimator] = {
    e.name: e
    for e in (
        Tau2Estimator("FE", "fixed-effects (inverse-variance)", _fixed_effects, random=False),
        Tau2Estimator("DL", "DerSimonian-Laird", _dersimonian_laird),
        Tau2Estimator("REML", "restricted maximum likelihood", _restricted_maximum_likelihood, fit_stats="REML"),
        Tau2Estimator("ML", "maximum likelihood", _maximum_likelihood),
        Tau2Estimator("PM", "Paule-Mandel", _paule_mandel),
        Tau2Estimator("EB", "empirical Bayes", _empirical_bayes),
        Tau2Estimator("HE", "Hedges (variance components)", _hedges),
        Tau2Estimator("SJ", "Sidik-Jonkman", _sidik_jonkman),
        Tau2Estimator("HS", "Hunter-Schmidt", _hunter_schmidt),
        Tau2Estimator("HSk", "Hunter-Schmidt, k/(k-p) correction", _hunter_schmidt_k),
        Tau2Estimator("PMM", "median-unbiased Paule-Mandel", _paule_mandel_median),
    )
}
#: The ``method=`` codes accepted.
METHODS = tuple(ESTIMATORS)


def estimate_tau2(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, method: str) -> tuple[float, float, list]:
    """tau^2, its standard error and messages, as metafor ``rma.uni`` run to convergence (tight ``control``)."""
    return ESTIMATORS[method].estimate(Tau2Problem.from_arrays(yi, vi, X))
