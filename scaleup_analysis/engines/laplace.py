"""Laplace approximation of a logit GLMM with one grouping factor (lme4's ``glmer(nAGQ = 1)``).

Computes the maximum-likelihood fit of ``logit P(y_i = 1) = x_i' beta + z_i' b_j``,
``b_j = Lambda(theta) u_j``, ``u_j ~ N(0, I)``, with binomial outcomes (``events`` out of
``trials``): the Laplace deviance (:class:`LaplaceGLMM`: conditional modes by penalised Newton per
group), its minimum over ``(theta, beta)`` with the bounded optimiser of :mod:`.reml`, the
covariance of ``beta`` from the numerical Hessian (lme4's ``vcov(use.hessian = TRUE)``) and the
conditional modes with their covariances (:func:`fit_laplace_glmm`, returning a :class:`GLMMFit`).
Inputs are plain arrays: events, trials, the fixed and random design matrices, integer group codes
and the number of groups.

Used by ``heterogeneity.mixed`` (``sa.mixed_model(family="binomial")``, hence
``sa.mixed_model_from_summary(family="binomial")``).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln

from .reml import lambda_from_theta, minimize_bounded, num_hessian, unstructured_lind

__all__ = ["LaplaceGLMM", "GLMMFit", "glm_start", "fit_laplace_glmm"]


class LaplaceGLMM:
    """Laplace deviance of a logit GLMM with one grouping factor, as ``lme4::glmer(nAGQ = 1)``.

    ``deviance(theta, beta) = -2 sum_i log f(y_i | u_hat) + sum_j ||u_hat_j||^2 + sum_j log|L_j|^2``
    with ``u_hat`` the conditional modes (penalised IRLS / Newton per site),
    ``L_j L_j' = Lambda' Z_j' W_j Z_j Lambda + I`` and ``W_j = diag(m_i mu_i (1 - mu_i))`` at the modes.
    """

    def __init__(self, events, trials, X, Z, codes, ngroups):
        self.e, self.m, self.X, self.Z, self.codes, self.G = events, trials, X, Z, codes, ngroups
        self.q = Z.shape[1]
        self.lind, self.lower = unstructured_lind(self.q)
        self.const = gammaln(trials + 1) - gammaln(events + 1) - gammaln(trials - events + 1)

    def _sums(self, w):
        """Per-site Z'WZ (G, q, q) for row weights ``w``."""
        q, Z, c, G = self.q, self.Z, self.codes, self.G
        out = np.empty((G, q, q))
        for a in range(q):
            for b in range(a, q):
                out[:, a, b] = out[:, b, a] = np.bincount(c, weights=w * Z[:, a] * Z[:, b], minlength=G)
        return out

    def _loglik_rows(self, eta):
        # log dbinom(e, m, plogis(eta)) computed stably: e*eta - m*log(1 + exp(eta)) + log C(m, e)
        return self.const + self.e * eta - self.m * np.logaddexp(0.0, eta)

    def modes(self, theta, beta):
        """Conditional modes ``u`` (G, q), fitted probabilities and the factors ``L`` (G, q, q)."""
        Lam = lambda_from_theta(theta, self.lind)
        ZL = self.Z @ Lam  # rows of Z Lambda
        eta0 = self.X @ beta
        c, G, q = self.codes, self.G, self.q
        u = np.zeros((G, q))

        def objective(u):
            eta = eta0 + np.einsum("ik,ik->i", ZL, u[c])
            return np.bincount(c, weights=self._loglik_rows(eta), minlength=G) - 0.5 * np.sum(u * u, axis=1)

        obj = objective(u)
        for _ in range(200):
            eta = eta0 + np.einsum("ik,ik->i", ZL, u[c])
            mu = expit(eta)
            r = self.e - self.m * mu
            grad = np.stack([np.bincount(c, weights=r * ZL[:, k], minlength=G) for k in range(q)], axis=1) - u
            w = self.m * mu * (1 - mu)
            A = np.einsum("ab,gbc,cd->gad", Lam.T, self._sums(w), Lam) + np.eye(q)
            step = np.linalg.solve(A, grad[:, :, None])[:, :, 0]
            t = np.ones(G)
            for _h in range(30):  # step halving per site (the objective is concave; rarely needed)
                new = objective(u + t[:, None] * step)
                bad = new < obj - 1e-12 * np.abs(obj)
                if not bad.any():
                    break
                t = np.where(bad, t / 2, t)
            u = u + t[:, None] * step
            obj = objective(u)
            if np.max(np.abs(t[:, None] * step)) < 1e-12:
                break
        eta = eta0 + np.einsum("ik,ik->i", ZL, u[c])
        mu = expit(eta)
        A = np.einsum("ab,gbc,cd->gad", Lam.T, self._sums(self.m * mu * (1 - mu)), Lam) + np.eye(q)
        return u, eta, np.linalg.cholesky(A), Lam

    def deviance(self, par):
        k = self.lower.size
        theta, beta = np.asarray(par[:k]), np.asarray(par[k:])
        u, eta, L, _ = self.modes(theta, beta)
        ldL2 = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        return float(-2.0 * np.sum(self._loglik_rows(eta)) + np.sum(u * u) + ldL2)


def glm_start(events, trials, X):
    """Logistic-regression (IRLS) estimates of the fixed effects: the start of the Laplace fit."""
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        mu = expit(X @ beta)
        w = trials * mu * (1 - mu)
        z = X @ beta + (events - trials * mu) / np.maximum(w, 1e-12)
        bn = np.linalg.lstsq(X * np.sqrt(w)[:, None], z * np.sqrt(w), rcond=None)[0]
        if np.max(np.abs(bn - beta)) < 1e-10:
            return bn
        beta = bn
    return beta


@dataclass(frozen=True)
class GLMMFit:
    """Result of :func:`fit_laplace_glmm`."""

    theta: np.ndarray
    beta: np.ndarray
    deviance: float  # Laplace deviance (-2 log-likelihood) at the optimum
    converged: bool
    message: str
    vcov: np.ndarray  # covariance of beta (NaN when the Hessian is singular)
    model: LaplaceGLMM

    def ranef(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conditional modes ``b`` (G, q), their conditional covariances (G, q, q) and ``Lambda``."""
        u, _, L, Lam = self.model.modes(self.theta, self.beta)
        b = u @ Lam.T
        K = Lam @ np.swapaxes(np.linalg.inv(L), 1, 2)  # Lambda L^{-T}
        V = K @ np.swapaxes(K, 1, 2)  # conditional covariance Lambda (L L')^{-1} Lambda'
        return b, V, Lam


def fit_laplace_glmm(events, trials, X, Z, codes, ngroups) -> GLMMFit:
    """Fit the logit GLMM by minimising the Laplace deviance over ``(theta, beta)`` (see the module)."""
    lap = LaplaceGLMM(events, trials, X, Z, codes, ngroups)
    k = lap.lower.size
    p = X.shape[1]
    beta0 = glm_start(events, trials, X)
    theta0 = np.where(np.isfinite(lap.lower), 1.0, 0.0)
    lower = np.r_[lap.lower, np.full(p, -np.inf)]
    par, dev, ok, msg = minimize_bounded(lap.deviance, np.r_[theta0, beta0], lower)
    H = num_hessian(lap.deviance, par)
    try:
        vcov = 2.0 * np.linalg.inv(H)[k:, k:]  # lme4 vcov.merMod(use.hessian = TRUE)
        vcov = (vcov + vcov.T) / 2
    except np.linalg.LinAlgError:
        vcov = np.full((p, p), np.nan)
    return GLMMFit(theta=par[:k], beta=par[k:], deviance=dev, converged=ok, message=msg, vcov=vcov, model=lap)
