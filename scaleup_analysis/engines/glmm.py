"""Generalised linear mixed models with one grouping factor: Laplace and adaptive Gauss-Hermite quadrature.

Computes the maximum-likelihood fit of ``g(E[y_i | b]) = offset_i + x_i' beta + z_i' b_j``,
``b_j = Lambda(theta) u_j``, ``u_j ~ N(0, I)``, for binomial outcomes (``events`` out of ``trials``;
logit or probit link) and Poisson counts (log link, offset such as the log of person-time), as
``lme4::glmer``:

* the **Laplace deviance** ``-2 log f(y | u_hat) + ||u_hat||^2 + sum_j log|L_j|^2`` (``nAGQ = 1``), with
  ``u_hat`` the conditional modes found by a Newton iteration per group and
  ``L_j L_j' = Lambda' Z_j' W_j Z_j Lambda + I`` with the GLM working (Fisher) weights
  ``W = m (d mu / d eta)^2 / V(mu)`` at the modes, as lme4's penalised IRLS (for the canonical
  logit and log links they equal the observed information);
* its **exact gradient** in ``(theta, beta)`` (implicit differentiation of the modes, one pass over the
  rows per evaluation, no finite differences over the data), so a quasi-Newton optimiser and a
  Newton polish reach the optimum to ~1e-10 in a few dozen passes; the Hessian for the covariance of
  ``beta`` (lme4's ``vcov(use.hessian = TRUE)``: ``2 H^{-1}`` restricted to ``beta``) is the central
  difference of that gradient;
* **adaptive Gauss-Hermite quadrature** for a single scalar random effect (``nAGQ > 1``): the integral
  over each ``u_j`` evaluated at ``u_hat_j + z_k / L_j`` with the standard-normal Gauss-Hermite rule
  (Pinheiro & Bates 1995; lme4's ``GHrule``), its gradient by central differences.

Rows with identical group, covariates, offset and trials are merged into one binomial/Poisson cell
(sums of events and trials or counts) before fitting when that shrinks the data at least by half; the
log-likelihood constant of the original rows is kept, so deviances and log-likelihoods are those of
the rows as given. Inputs are plain arrays; outputs a :class:`GLMMFit`.

Used by ``heterogeneity.mixed`` (``sa.mixed_model(family="binomial" | "poisson")``).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01

Pinheiro, J. C., & Bates, D. M. (1995). Approximations to the log-likelihood function in the nonlinear
mixed-effects model. Journal of Computational and Graphical Statistics, 4(1), 12-35.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import expit, gammaln, log_ndtr, ndtr

from .reml import halving_step, lambda_from_theta, minimize_bounded, num_hessian, unstructured_lind

__all__ = ["FAMILIES", "GLMMFamily", "GLMMProblem", "GLMMFit", "fit_glmm", "glm_fit", "gauss_hermite_normal",
           "vcov_from_hessian", "diverged", "DIVERGED", "optimize_with_gradient", "grad_hessian",
           "standardized_design", "to_original_scale"]

#: family -> links supported (the first is the default)
FAMILIES = {"binomial": ("logit", "probit"), "poisson": ("log",)}

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


# --------------------------------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------------------------------
class GLMMFamily:
    """Row-wise quantities of a GLM family and link for outcomes ``y`` and trials ``m``.

    For Poisson rows ``m`` multiplies the mean (1 for a row; the number of merged rows of a cell).
    For each linear predictor ``eta``: ``loglik`` (log f(y | eta), the full density with its constant),
    ``score`` (d loglik / d eta), ``info`` (-d^2 loglik / d eta^2, the observed information),
    ``weight`` (the working weight ``m mu_eta^2 / V(mu)``) and ``dweight`` (its derivative in eta).
    """

    def __init__(self, family: str, link: str, y: np.ndarray, m: np.ndarray):
        if family not in FAMILIES or link not in FAMILIES[family]:
            raise ValueError(f"unsupported family/link {family}/{link}")
        self.family, self.link, self.y, self.m = family, link, y, m
        if family == "binomial":
            self.const = gammaln(m + 1) - gammaln(y + 1) - gammaln(m - y + 1)
        else:  # Poisson with mean m exp(eta): m counts merged rows sharing eta (1 for a row)
            self.const = np.where(y > 0, y * np.log(m), 0.0) - gammaln(y + 1)
        self.canonical = link in ("logit", "log")

    def mean(self, eta):
        """Expected outcome per row (events for binomial rows: ``m`` times the probability)."""
        if self.link == "logit":
            return self.m * expit(eta)
        if self.link == "probit":
            return self.m * ndtr(eta)
        return self.m * np.exp(eta)

    def loglik(self, eta):
        y, m = self.y, self.m
        if self.link == "logit":
            return self.const + y * eta - m * np.logaddexp(0.0, eta)
        if self.link == "probit":
            with np.errstate(invalid="ignore"):
                a = np.where(y > 0, y * log_ndtr(eta), 0.0)
                b = np.where(m - y > 0, (m - y) * log_ndtr(-eta), 0.0)
            return self.const + a + b
        return self.const + y * eta - m * np.exp(eta)

    def derivatives(self, eta):
        """``(score, info, weight, dweight)`` per row."""
        y, m = self.y, self.m
        if self.link == "logit":
            p = expit(eta)
            w = m * p * (1 - p)
            return y - m * p, w, w, w * (1 - 2 * p)
        if self.link == "log":
            mu = m * np.exp(eta)
            return y - mu, mu, mu, mu
        # probit: r1 = phi / Phi, r0 = phi / (1 - Phi), computed on the log scale
        lphi = -0.5 * eta * eta - _LOG_SQRT_2PI
        r1 = np.exp(lphi - log_ndtr(eta))
        r0 = np.exp(lphi - log_ndtr(-eta))
        score = y * r1 - (m - y) * r0
        info = y * (eta * r1 + r1 * r1) + (m - y) * (r0 * r0 - eta * r0)
        w = m * r1 * r0
        return score, info, w, w * (r0 - r1 - 2 * eta)


def gauss_hermite_normal(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point Gauss-Hermite rule for the standard normal density
    (weights sum to 1), as lme4's ``GHrule(n)``."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / np.sqrt(2 * np.pi)


# --------------------------------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------------------------------
def _collapse(y, m, offset, X, Z, codes):
    """Merge rows with identical (group, X, Z, offset) into one cell (sums of outcomes and of ``m``):
    the merged arrays, or None when merging would not at least halve the rows."""
    import pandas as pd

    n = y.size
    if n < 64:
        return None
    pattern = np.column_stack([X, Z, offset])
    sample = pattern[:: max(1, n // 4000)]
    n_patterns = pd.DataFrame(sample).drop_duplicates().shape[0]
    ngroups = int(codes.max()) + 1 if codes.size else 0
    if n_patterns >= 0.25 * sample.shape[0] or min(ngroups * n_patterns, n) > 0.5 * n:
        return None
    frame = pd.DataFrame(np.column_stack([codes.astype(float), pattern]))
    inverse = frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy()
    k = int(inverse.max()) + 1
    if k > 0.5 * n:
        return None
    first = np.zeros(k, dtype=np.intp)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)
    ys = np.bincount(inverse, weights=y, minlength=k)
    ms = np.bincount(inverse, weights=m, minlength=k)
    return ys, ms, offset[first], X[first], Z[first], codes[first]


class GLMMProblem:
    """Laplace / AGQ deviance of a GLMM with one grouping factor and its exact gradient.

    Parameters are ``par = (theta, beta)``; ``theta`` holds the lower Cholesky factor of
    ``Cov(b_j)`` column by column (lme4's order), diagonal elements bounded below by 0.
    """

    def __init__(self, y, trials, offset, X, Z, codes, ngroups, family="binomial", link="logit"):
        n = y.size
        self.family_name, self.link = family, link
        m = np.ones(n) if trials is None else np.asarray(trials, float)
        off = np.zeros(n) if offset is None else np.asarray(offset, float)
        # the log-likelihood constant of the rows as given (merging changes the binomial/Poisson constant)
        self.row_const = float(np.sum(GLMMFamily(family, link, y, m).const))
        merged = _collapse(y, m, off, X, Z, codes)
        if merged is not None:
            y, m, off, X, Z, codes = merged
        self.n_rows, self.n_cells = n, y.size
        self.y, self.offset, self.X, self.Z, self.codes, self.G = y, off, X, Z, codes, ngroups
        self.fam = GLMMFamily(family, link, y, m)
        self.const_shift = self.row_const - float(np.sum(self.fam.const))
        self.q = Z.shape[1]
        self.p = X.shape[1]
        self.lind, self.lower_theta = unstructured_lind(self.q)
        self.k = self.lower_theta.size
        # positions (row, col) of each theta element in Lambda
        rows, cols = np.tril_indices(self.q)
        order = np.lexsort((rows, cols))  # column-major order of the lower triangle (lme4's theta order)
        self.theta_pos = list(zip(rows[order], cols[order]))
        self.lower = np.r_[self.lower_theta, np.full(self.p, -np.inf)]
        self.intercept_only_z = self.q == 1 and np.all(Z[:, 0] == 1.0)
        self.zmax = float(np.max(np.abs(Z))) if Z.size else 0.0
        self._u = np.zeros((ngroups, self.q))

    # ------------------------------------------------------------------ per-group sums
    def _gsum(self, w):
        return np.bincount(self.codes, weights=w, minlength=self.G)

    def _zsum(self, w):
        """Per-group Z'w (G, q)."""
        if self.intercept_only_z:
            return self._gsum(w)[:, None]
        return np.stack([self._gsum(w * self.Z[:, a]) for a in range(self.q)], axis=1)

    def _zwz(self, w):
        """Per-group Z'WZ (G, q, q)."""
        q = self.q
        if self.intercept_only_z:
            return self._gsum(w)[:, None, None]
        out = np.empty((self.G, q, q))
        for a in range(q):
            for b in range(a, q):
                out[:, a, b] = out[:, b, a] = self._gsum(w * self.Z[:, a] * self.Z[:, b])
        return out

    def _zu(self, ZL, u):
        """Rows of (Z Lambda) u_j."""
        if self.q == 1:
            return ZL[:, 0] * u[self.codes, 0]
        return np.einsum("ik,ik->i", ZL, u[self.codes])

    # ------------------------------------------------------------------ conditional modes
    def modes(self, theta, beta, u0=None, tol=1e-11):
        """Conditional modes ``u`` (G, q) by Newton's method per group with step halving, and ``eta``."""
        Lam = lambda_from_theta(theta, self.lind)
        ZL = self.Z @ Lam
        eta0 = self.offset + self.X @ beta
        u = (self._u if u0 is None else u0).copy()
        G, q = self.G, self.q
        fam = self.fam

        def objective(u):
            eta = eta0 + self._zu(ZL, u)
            return self._gsum(fam.loglik(eta)) - 0.5 * np.sum(u * u, axis=1), eta

        eta = eta0 + self._zu(ZL, u)
        obj = None  # the objective is evaluated only to guard large steps
        for _ in range(100):
            score, info, _, _ = fam.derivatives(eta)
            grad = self._zsum(score) @ Lam - u  # Lambda' Z' s - u, rows = groups
            H = np.einsum("ba,gbc,cd->gad", Lam, self._zwz(info), Lam) + np.eye(q)
            step = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
            # a Newton step that moves no linear predictor by more than 0.25 is taken as is (the
            # log-likelihoods are concave and smooth there); larger steps are halved per group
            # until the penalised log-likelihood does not decrease
            if float(np.max(np.abs(step @ Lam.T))) * self.zmax > 0.25:
                if obj is None:
                    obj = objective(u)[0]
                t = np.ones(G)
                for _h in range(40):
                    new, eta_new = objective(u + t[:, None] * step)
                    bad = ~(new >= obj - 1e-13 * np.abs(obj))
                    if not bad.any():
                        break
                    t = np.where(bad, t / 2, t)
                step = t[:, None] * step
                u = u + step
                obj, eta = new, eta_new
            else:
                u = u + step
                eta = eta0 + self._zu(ZL, u)
                obj = None
            if np.max(np.abs(step)) < tol * max(1.0, float(np.max(np.abs(u)))):
                break
        self._u = u
        return u, eta, Lam, ZL

    # ------------------------------------------------------------------ Laplace deviance and gradient
    def laplace(self, par, gradient=True):
        """Laplace deviance (and its gradient in ``par``) at ``par = (theta, beta)``; ``inf`` (with a zero
        gradient) where the fitted values overflow, so that the optimiser's line search steps back."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = self._laplace(par, gradient)
        dev = out[0] if gradient else out
        if not np.isfinite(dev) or (gradient and not np.all(np.isfinite(out[1]))):
            return (np.inf, np.zeros(len(par))) if gradient else np.inf
        return out

    def _laplace(self, par, gradient):
        k, q = self.k, self.q
        theta, beta = np.asarray(par[:k], float), np.asarray(par[k:], float)
        u, eta, Lam, ZL = self.modes(theta, beta)
        fam = self.fam
        score, info, w, dw = fam.derivatives(eta)
        M = self._zwz(w)
        A = np.einsum("ba,gbc,cd->gad", Lam, M, Lam) + np.eye(q)
        if q == 1:
            logdet = float(np.sum(np.log(A[:, 0, 0])))
        else:
            sign, ld = np.linalg.slogdet(A)
            logdet = float(np.sum(ld))
        dev = float(-2.0 * np.sum(fam.loglik(eta)) + np.sum(u * u) + logdet) - 2.0 * self.const_shift
        if not gradient:
            return dev
        # gradient by implicit differentiation of the modes (see the module docstring)
        Ainv = np.linalg.inv(A)
        if fam.canonical:
            Hinv = Ainv
        else:
            Hinv = np.linalg.inv(np.einsum("ba,gbc,cd->gad", Lam, self._zwz(info), Lam) + np.eye(q))
        if q == 1:
            h = ZL[:, 0] ** 2 * Ainv[self.codes, 0, 0]
        else:
            h = np.einsum("ia,iab,ib->i", ZL, Ainv[self.codes], ZL)
        c = dw * h  # d log|A| / d eta_i at fixed weights elsewhere
        Cj = self._zsum(c) @ Lam  # Lambda' Z_j' c_j
        v = np.einsum("gab,gb->ga", Hinv, Cj)  # H_j^{-1} C_j
        t = info * self._zu(ZL, v)  # wobs_i * b_i' v_j
        gbeta = self.X.T @ (-2.0 * score + c - t)
        S = self._zsum(score)
        Zc = self._zsum(c)
        Zt = self._zsum(t)
        AinvLM = np.einsum("gab,cb,gcd->gad", Ainv, Lam, M)  # A^{-1} Lambda' M
        gtheta = np.empty(k)
        for ell, (r, col) in enumerate(self.theta_pos):
            gtheta[ell] = np.sum(
                -2.0 * u[:, col] * S[:, r] + 2.0 * AinvLM[:, col, r] + u[:, col] * Zc[:, r]
                + v[:, col] * S[:, r] - u[:, col] * Zt[:, r]
            )
        return dev, np.r_[gtheta, gbeta]

    # ------------------------------------------------------------------ adaptive Gauss-Hermite quadrature
    def agq(self, par, nagq):
        """Deviance by adaptive Gauss-Hermite quadrature with ``nagq`` nodes (scalar random effect)."""
        k = self.k
        theta, beta = np.asarray(par[:k], float), np.asarray(par[k:], float)
        u, eta, Lam, ZL = self.modes(theta, beta)
        fam = self.fam
        _, _, w, _ = fam.derivatives(eta)
        L = np.sqrt(self._gsum(w * ZL[:, 0] ** 2) + 1.0)  # L_j (scalar), weights at the mode
        dev0 = -2.0 * self._gsum(fam.loglik(eta)) + u[:, 0] ** 2  # per group, at the mode
        z, wt = gauss_hermite_normal(nagq)
        sd = 1.0 / L
        eta_base = eta - ZL[:, 0] * u[self.codes, 0]
        terms = np.empty((z.size, self.G))
        for i, (zk, wk) in enumerate(zip(z, wt)):
            uk = u[:, 0] + zk * sd
            dk = -2.0 * self._gsum(fam.loglik(eta_base + ZL[:, 0] * uk[self.codes])) + uk**2
            # log of w_k exp(-(d_k - d_0) / 2 + z_k^2 / 2): the integrand over the normal density
            terms[i] = -0.5 * (dk - dev0) + np.log(wk) + 0.5 * zk * zk
        top = terms.max(axis=0)
        logmult = top + np.log(np.exp(terms - top).sum(axis=0))
        return float(np.sum(dev0) + 2.0 * np.sum(np.log(L)) - 2.0 * np.sum(logmult)) - 2.0 * self.const_shift

    # ------------------------------------------------------------------ modes and their covariances
    def ranef(self, par):
        """Conditional modes ``b`` (G, q), conditional covariances (G, q, q) and ``Lambda`` at ``par``."""
        k, q = self.k, self.q
        theta, beta = np.asarray(par[:k], float), np.asarray(par[k:], float)
        u, eta, Lam, _ = self.modes(theta, beta)
        _, _, w, _ = self.fam.derivatives(eta)
        A = np.einsum("ba,gbc,cd->gad", Lam, self._zwz(w), Lam) + np.eye(q)
        b = u @ Lam.T
        V = Lam @ np.linalg.inv(A) @ Lam.T  # Lambda (L L')^{-1} Lambda'
        return b, V, Lam


# --------------------------------------------------------------------------------------------------
# GLM start
# --------------------------------------------------------------------------------------------------
def glm_fit(y, m, offset, X, family="binomial", link="logit", maxit=60):
    """IRLS fit of the GLM without random effects: ``(beta, converged, max |eta|)``.

    Non-convergence or huge linear predictors flag a possible separation (infinite estimates)."""
    fam = GLMMFamily(family, link, y, m)
    beta = np.zeros(X.shape[1])
    if family == "poisson":
        beta[:] = np.linalg.lstsq(X, np.log(y + 0.5) - offset, rcond=None)[0]
    converged = False
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        for _ in range(maxit):
            eta = offset + X @ beta
            score, _, w, _ = fam.derivatives(eta)
            if not (np.all(np.isfinite(score)) and np.all(np.isfinite(w))):
                break  # fitted values overflow: the estimates run off (separation)
            w = np.maximum(w, 1e-300)
            z = eta - offset + score / w  # working response eta + (y - mu) / mu_eta
            sw = np.sqrt(w)
            bn = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
            if not np.all(np.isfinite(bn)):
                break
            done = np.max(np.abs(bn - beta)) < 1e-9 * max(1.0, float(np.max(np.abs(bn))))
            beta = bn
            if done:
                converged = True
                break
    eta = offset + X @ beta
    return beta, converged, float(np.max(np.abs(eta))) if eta.size else 0.0


# --------------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GLMMFit:
    """Result of :func:`fit_glmm`."""

    theta: np.ndarray
    beta: np.ndarray
    deviance: float  # -2 log-likelihood (Laplace or AGQ) at the optimum
    converged: bool
    message: str
    vcov: np.ndarray  # covariance of beta (NaN when the Hessian is singular)
    hessian: np.ndarray  # Hessian of the deviance in (theta, beta)
    gradient: np.ndarray  # gradient at the optimum (0 on the free coordinates)
    nagq: int
    problem: GLMMProblem
    gamma: np.ndarray  # the coefficients of the problem's standardised design (``beta = M gamma``)

    def ranef(self):
        """Conditional modes ``b`` (G, q), conditional covariances (G, q, q) and ``Lambda``."""
        return self.problem.ranef(np.r_[self.theta, self.gamma])


DIVERGED = ("fitted values numerically 0 or 1 (|linear predictor| > 30): the estimates diverge, as with a "
            "(quasi-)complete separation")


def diverged(fam: GLMMFamily, eta: np.ndarray) -> bool:
    """True when the linear predictor has run off to where fitted probabilities are numerically 0 or 1
    (binomial: |eta| > 30) or fitted rates numerically 0 (Poisson: eta < -30): the maximum-likelihood
    estimates do not exist (separation) and the optimiser stopped somewhere on the way to infinity."""
    if not np.all(np.isfinite(eta)):
        return True
    if fam.family == "binomial":
        return bool(np.max(np.abs(eta)) > 30)
    return bool(np.min(eta) < -30)


def standardized_design(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Xs, M)`` with ``Xs = X M``: every non-constant column centred (when the design has an intercept
    column) and divided by its SD, so that the optimiser sees coefficients of comparable scale (a
    covariate in cm next to one in years would otherwise send its first steps where the fitted
    values overflow); ``beta = M gamma`` maps the coefficients back."""
    X = np.asarray(X, dtype=float)
    p = X.shape[1]
    M = np.eye(p)
    if X.shape[0] < 2:
        return X, M
    const = np.ptp(X, axis=0) == 0
    icpt = [j for j in range(p) if const[j] and np.all(X[:, j] == 1.0)]
    for j in range(p):
        if const[j]:
            continue
        sd = float(np.std(X[:, j]))
        if not sd > 0:
            continue
        M[j, j] = 1.0 / sd
        if icpt:
            M[icpt[0], j] = -float(np.mean(X[:, j])) / sd
    return X @ M, M


def to_original_scale(H: np.ndarray, vcov: np.ndarray, k: int, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hessian in ``(theta, beta)`` and covariance of ``beta`` from those in ``(theta, gamma)``."""
    J = np.eye(H.shape[0])
    J[k:, k:] = np.linalg.inv(M)
    return J.T @ H @ J, M @ vcov @ M.T


def vcov_from_hessian(H: np.ndarray, k: int, p: int) -> np.ndarray:
    """Covariance of ``beta`` from the Hessian of the deviance in ``(theta, beta)``: ``2 H^{-1}``
    restricted to ``beta`` (lme4's ``vcov(use.hessian = TRUE)``); NaN when it is not positive."""
    try:
        vcov = 2.0 * np.linalg.inv(H)[k:, k:]
        vcov = (vcov + vcov.T) / 2
        if not np.all(np.isfinite(vcov)) or np.any(np.diag(vcov) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        vcov = np.full((p, p), np.nan)
    return vcov


def grad_hessian(fun_grad, x, free):
    """Central-difference Hessian of an analytic gradient (symmetrised)."""
    P = x.size
    H = np.zeros((P, P))
    for i in range(P):
        if not free[i]:
            continue
        h = 1e-5 * max(abs(x[i]), 0.1)
        e = np.zeros(P)
        e[i] = h
        gp = fun_grad(x + e)[1]
        gm = fun_grad(x - e)[1]
        H[:, i] = (gp - gm) / (2 * h)
    H = (H + H.T) / 2
    return H


def optimize_with_gradient(fg, fdev, x0, lower):
    """Minimise a deviance with an exact gradient subject to ``x >= lower``: L-BFGS-B, then Newton steps
    on the free coordinates with the central-difference Hessian of the gradient (recomputed only after
    a large step). ``fg(x)`` returns ``(deviance, gradient)``, ``fdev(x)`` the deviance alone.

    Returns ``(x, converged, message, H, H_at)``: the optimum, whether the Newton decrement vanished,
    a message when it did not, and the last Hessian with the point where it was computed.
    """
    # 1) Laplace optimum by L-BFGS-B with the exact gradient
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000, "maxcor": 20})
    x = np.maximum(np.asarray(res.x, float), lower)
    x0 = np.maximum(np.asarray(x0, float), lower)
    if not fdev(x) < fdev(x0):  # L-BFGS-B stalled (e.g. its first step left the region where the
        x = x0                  # modes exist): damped Newton steps below start from x0
    converged, message = False, ""
    # 2) Newton polish on the free coordinates with the Hessian of the exact gradient; the Hessian is
    #    recomputed only after a large step (otherwise its change is of the order of the step)
    H, H_at = None, None
    for _ in range(60):
        f0, g = fg(x)
        at_bound = np.isfinite(lower) & (x - lower < 1e-9)
        # a variance parameter at 0 is a stationary point of the (even) deviance: its gradient is 0
        # there, so probe one-sided steps; leave the bound when the deviance decreases
        moved = False
        for i in np.flatnonzero(at_bound):
            best_f, best_x = f0, None
            for delta in (0.3, 0.1, 0.01, 0.001):
                xt = x.copy()
                xt[i] = lower[i] + delta
                ft = fdev(xt)
                if ft < best_f - 1e-10 * max(1.0, abs(f0)):
                    best_f, best_x = ft, xt
            if best_x is not None:
                x, f0, moved = best_x, best_f, True
        if moved:
            continue
        free = ~(at_bound & (g >= -1e-12 * max(1.0, abs(f0))))
        if not free.any():
            converged = True
            break
        if H is None or float(np.max(np.abs(x - H_at) / np.maximum(np.abs(x), 1e-2))) > 1e-4:
            H, H_at = grad_hessian(fg, x, np.ones(x.size, dtype=bool)), x.copy()
        try:
            wv, V = np.linalg.eigh(H[np.ix_(free, free)])
        except np.linalg.LinAlgError:
            message = "the Hessian could not be decomposed"
            break
        wv = np.maximum(np.abs(wv), 1e-10 * max(1.0, float(np.abs(wv).max())))
        step = np.zeros_like(x)
        step[free] = -(V @ ((V.T @ g[free]) / wv))
        decrement = float(-g @ step)
        if decrement < 1e-16 * max(1.0, abs(f0)):
            converged = True
            break
        xn, _ = halving_step(fdev, x, step, lower, f0)
        if xn is None:  # at the rounding floor of the deviance
            converged = bool(decrement < 1e-9 * max(1.0, abs(f0)))
            break
        dx = float(np.max(np.abs(xn - x) / np.maximum(np.abs(x), 1e-2)))
        x = xn
        if dx < 1e-10:
            converged = True
            break
    else:
        message = "Newton polishing did not settle"
    x = np.where(np.isfinite(lower) & (x - lower < 1e-12), lower, x)
    if not converged and not message:
        message = "the Laplace optimum was not located (gradient not zero)"
    return x, converged, message, H, H_at


def fit_glmm(y, trials, offset, X, Z, codes, ngroups, family="binomial", link="logit", nagq=1,
             beta_start=None) -> GLMMFit:
    """Fit the GLMM by maximising the Laplace (``nagq = 1``) or AGQ likelihood (see the module).

    ``beta_start``: fixed effects to start from (on the scale of ``X``), e.g. the GLM fit without random
    effects when the caller already has it; by default that fit is computed here."""
    Xs, M = standardized_design(X)
    prob = GLMMProblem(y, trials, offset, Xs, Z, codes, ngroups, family, link)
    k, p = prob.k, prob.p
    lower = prob.lower
    theta0 = np.where(np.isfinite(prob.lower_theta), 1.0, 0.0)
    if beta_start is None:
        gamma0 = glm_fit(prob.y, prob.fam.m, prob.offset, prob.X, family, link)[0]
    else:
        gamma0 = np.linalg.solve(M, np.asarray(beta_start, float))
    x0 = np.r_[theta0, gamma0]
    if nagq > 1 and (prob.q != 1):
        raise ValueError("adaptive quadrature needs a single scalar random effect")

    def fg(x):
        return prob.laplace(x)

    x, converged, message, H, H_at = optimize_with_gradient(
        fg, lambda x: prob.laplace(x, gradient=False), x0, lower)

    if nagq > 1:
        def dev_agq(par):
            return prob.agq(par, nagq)

        x, dev, converged, message = minimize_bounded(dev_agq, x, lower, quasi_newton=False)
        H = num_hessian(dev_agq, x)
        grad = np.full(x.size, np.nan)
    else:
        dev, grad = fg(x)
        if H is None or float(np.max(np.abs(x - H_at) / np.maximum(np.abs(x), 1e-2))) > 1e-6:
            H = grad_hessian(fg, x, np.ones(x.size, dtype=bool))
        prob.modes(x[:k], x[k:])  # leave the cached modes at the optimum
    H, vcov = to_original_scale(H, vcov_from_hessian(H, k, p), k, M)
    _, eta, _, _ = prob.modes(x[:k], x[k:])
    if diverged(prob.fam, eta):
        converged, message = False, DIVERGED
    grad = np.r_[grad[:k], np.linalg.solve(M.T, grad[k:])]
    return GLMMFit(theta=x[:k], beta=M @ x[k:], deviance=float(dev), converged=bool(converged), message=message,
                   vcov=vcov, hessian=H, gradient=grad, nagq=int(nagq), problem=prob, gamma=x[k:].copy())
