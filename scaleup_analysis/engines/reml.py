"""Gaussian (RE)ML from cross-products: the likelihood core of linear mixed models (lme4's PLS).

Computes the (RE)ML fit of ``y = X beta + Z b + e`` with one or more blocks of clusters, each with
its own relative covariance factor ``Lambda(theta)``: the optimum ``theta``, the fixed effects and
their covariance, sigma (or a known residual variance, meta-analysis), the conditional modes, the
Satterthwaite denominator df of lmerTest and profile-likelihood intervals of ``theta``. Inputs are
per-cluster sufficient statistics only (a :class:`Crossprods`), so a fit never needs the rows; the
bounded optimiser (:func:`minimize_bounded`) and numerical derivatives (:func:`num_hessian`,
:func:`num_jacobian`) are shared with :mod:`.laplace`.

Used by ``heterogeneity.mixed`` (``sa.mixed_model``, Gaussian), ``heterogeneity.multilevel``
(``sa.multilevel_meta_analysis``), ``rollout.stepped_wedge`` (``sa.stepped_wedge_analysis``),
``summarize`` (``sa.mixed_model_from_summary``) and :mod:`.laplace`.

The Gaussian likelihood is evaluated from per-cluster sufficient statistics only
(``Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'y_j`` for each cluster ``j`` and the totals ``X'X``, ``X'y``,
``y'y``, ``n``), following the penalised least squares (PLS) formulation of lme4
(Bates, Maechler, Bolker & Walker 2015, section 3). With the relative covariance factor
``Lambda_j(theta)`` of cluster ``j`` (random effects ``b_j = Lambda_j u_j``, ``u_j ~ N(0, sigma^2 I)``):

* ``L_j L_j' = Lambda_j' Z_j'Z_j Lambda_j + I``                       (q_j x q_j Cholesky factor)
* ``[R_ZX,j | c_u,j] = L_j^{-1} Lambda_j' [Z_j'X_j | Z_j'y_j]``
* ``R_X'R_X = X'X - sum_j R_ZX,j' R_ZX,j``;  ``beta = (R_X'R_X)^{-1}(X'y - sum_j R_ZX,j' c_u,j)``
* ``pwrss = y'y - sum_j c_u,j'c_u,j - beta'(X'y - sum_j R_ZX,j' c_u,j)``   (= ||r||^2 + ||u||^2)

so one evaluation costs O(clusters x q^3 + p^3) whatever the number of rows. The profiled
deviances are lme4's (sigma profiled out)

* ML:   ``ldL2 + n (1 + log(2 pi pwrss / n))``
* REML: ``ldL2 + ldRX2 + (n - p)(1 + log(2 pi pwrss / (n - p)))``

with ``ldL2 = log|L|^2`` and ``ldRX2 = log|R_X|^2``. With known heteroscedastic residual
variances (meta-analysis) the cross-products are weighted by ``1 / v_i`` and ``sigma = 1`` is fixed:
``-2 logL = n log(2 pi) + sum log v_i + ldL2 + pwrss`` (+ ``ldRX2 - p log(2 pi)`` for REML), which is
the marginal likelihood of ``y ~ N(X beta, diag(v) + Z G Z')`` by the Woodbury identity.

:func:`fit_lmm_from_crossprods` is the summary-level entry point (fit from per-site cross-products
shared by institutions).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01

Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). lmerTest package: tests in linear
mixed effects models. Journal of Statistical Software, 82(13).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize

__all__ = [
    "CrossprodBlock", "Crossprods", "PLSState", "LMMFit", "lambda_from_theta", "unstructured_lind",
    "crossprods_from_rows", "pls", "deviance", "deviance_varpar", "covbeta_varpar", "num_jacobian", "num_hessian",
    "minimize_bounded", "residualize", "fit_lmm", "fit_lmm_from_crossprods", "satterthwaite", "profile_interval",
]

_LOG2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------------------------------
# data structures
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossprodBlock:
    """Clusters sharing one random-effects structure (same ``q`` and same ``Lambda`` pattern).

    ``lind[r, c]`` is the index into ``theta`` of ``Lambda[r, c]`` (``-1`` for a structural zero).
    """

    ZtZ: np.ndarray  # (G, q, q)
    ZtX: np.ndarray  # (G, q, p)
    Zty: np.ndarray  # (G, q)
    lind: np.ndarray  # (q, q) int


@dataclass(frozen=True)
class Crossprods:
    """Sufficient statistics of a Gaussian linear mixed model."""

    blocks: tuple[CrossprodBlock, ...]
    XtX: np.ndarray  # (p, p)
    Xty: np.ndarray  # (p,)
    yty: float
    n: int
    ntheta: int
    lower: np.ndarray  # (ntheta,) lower bounds of theta (0 for diagonal elements, -inf otherwise)
    sigma_fixed: bool = False  # True: residual variances known (weights 1/v_i), sigma = 1
    logdet_resid: float = 0.0  # sum(log v_i) when sigma_fixed
    reml_const: float = 0.0  # added to the REML -2 logL (metafor adds -log|X'X|)

    @property
    def p(self) -> int:
        return int(self.XtX.shape[0])


@dataclass
class PLSState:
    """Result of one PLS evaluation at ``theta``."""

    theta: np.ndarray
    ldL2: float
    ldRX2: float
    pwrss: float
    beta: np.ndarray
    RXtRX: np.ndarray
    L: list = field(default_factory=list)  # per block (G, q, q)
    C: list = field(default_factory=list)  # per block (G, q, p + 1)
    Lam: list = field(default_factory=list)  # per block (q, q)


def lambda_from_theta(theta: np.ndarray, lind: np.ndarray) -> np.ndarray:
    """Relative covariance factor of one cluster from ``theta`` and its index pattern."""
    ext = np.append(np.asarray(theta, dtype=float), 0.0)
    return ext[np.where(lind < 0, ext.size - 1, lind)]


def unstructured_lind(q: int) -> tuple[np.ndarray, np.ndarray]:
    """lme4's pattern for ``(1 + x | g)``: lower-triangular ``T`` filled column-wise.

    Returns ``lind`` (q x q) and the lower bounds of theta (0 on the diagonal).
    """
    lind = -np.ones((q, q), dtype=int)
    lower = []
    k = 0
    for c in range(q):
        for r in range(c, q):
            lind[r, c] = k
            lower.append(0.0 if r == c else -np.inf)
            k += 1
    return lind, np.array(lower)


def crossprods_from_rows(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    codes: np.ndarray,
    ngroups: int,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-cluster cross-products (one grouping factor) from row-level arrays.

    Returns ``ZtZ (G,q,q), ZtX (G,q,p), Zty (G,q), XtX (p,p), Xty (p,), yty``.
    """
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    q, p = Z.shape[1], X.shape[1]
    Zw = Z * w[:, None]
    ZtZ = np.empty((ngroups, q, q))
    for a in range(q):
        for b in range(a, q):
            s = np.bincount(codes, weights=Zw[:, a] * Z[:, b], minlength=ngroups)
            ZtZ[:, a, b] = s
            ZtZ[:, b, a] = s
    ZtX = np.empty((ngroups, q, p))
    for a in range(q):
        for b in range(p):
            ZtX[:, a, b] = np.bincount(codes, weights=Zw[:, a] * X[:, b], minlength=ngroups)
    Zty = np.empty((ngroups, q))
    for a in range(q):
        Zty[:, a] = np.bincount(codes, weights=Zw[:, a] * y, minlength=ngroups)
    Xw = X * w[:, None]
    return ZtZ, ZtX, Zty, Xw.T @ X, Xw.T @ y, float(np.sum(w * y * y))


# --------------------------------------------------------------------------------------------------
# PLS evaluation and deviances
# --------------------------------------------------------------------------------------------------
def pls(theta: np.ndarray, cp: Crossprods, keep: bool = False) -> PLSState:
    """Solve the penalised least-squares problem at ``theta`` from the cross-products."""
    theta = np.asarray(theta, dtype=float)
    p = cp.p
    S = np.zeros((p + 1, p + 1))
    ldL2 = 0.0
    st = PLSState(theta, 0.0, 0.0, 0.0, np.zeros(p), np.zeros((p, p)))
    for blk in cp.blocks:
        Lam = lambda_from_theta(theta, blk.lind)
        q = Lam.shape[0]
        A = Lam.T @ blk.ZtZ @ Lam + np.eye(q)
        L = np.linalg.cholesky(A)
        rhs = Lam.T @ np.concatenate([blk.ZtX, blk.Zty[:, :, None]], axis=2)
        C = np.linalg.solve(L, rhs)  # batched (numpy gufunc); L is lower triangular
        S += np.einsum("gqa,gqb->ab", C, C)
        ldL2 += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        if keep:
            st.L.append(L)
            st.C.append(C)
            st.Lam.append(Lam)
    RXtRX = cp.XtX - S[:p, :p]
    rXy = cp.Xty - S[:p, p]
    Rl = np.linalg.cholesky(RXtRX)
    beta = linalg.cho_solve((Rl, True), rXy, check_finite=False)
    st.ldL2 = ldL2
    st.ldRX2 = 2.0 * float(np.sum(np.log(np.diag(Rl))))
    st.pwrss = float(cp.yty - S[p, p] - rXy @ beta)
    st.beta = beta
    st.RXtRX = RXtRX
    return st


def _minus2ll_from_state(st: PLSState, cp: Crossprods, reml: bool) -> float:
    n, p = cp.n, cp.p
    if cp.sigma_fixed:
        if reml:
            return (n - p) * _LOG2PI + cp.logdet_resid + st.ldL2 + st.ldRX2 + st.pwrss + cp.reml_const
        return n * _LOG2PI + cp.logdet_resid + st.ldL2 + st.pwrss
    if reml:
        nmp = n - p
        return st.ldL2 + st.ldRX2 + nmp * (1.0 + np.log(2.0 * np.pi * st.pwrss / nmp))
    return st.ldL2 + n * (1.0 + np.log(2.0 * np.pi * st.pwrss / n))


def deviance(theta: np.ndarray, cp: Crossprods, reml: bool) -> float:
    """Profiled deviance (-2 log-likelihood, sigma profiled unless fixed) at ``theta``."""
    try:
        st = pls(theta, cp)
    except np.linalg.LinAlgError:
        return np.inf
    if not cp.sigma_fixed and st.pwrss <= 0:
        return np.inf
    return float(_minus2ll_from_state(st, cp, reml))


def deviance_varpar(varpar: np.ndarray, cp: Crossprods, reml: bool) -> float:
    """Deviance as a function of ``(theta, sigma)`` (lmerTest's ``devfun_vp``), not profiled."""
    theta, sigma = np.asarray(varpar[:-1]), float(varpar[-1])
    st = pls(theta, cp)
    s2 = sigma * sigma
    dev = st.ldL2 + st.pwrss / s2 + cp.n * np.log(2.0 * np.pi * s2)
    if reml:
        dev += st.ldRX2 - cp.p * np.log(2.0 * np.pi * s2)
    return float(dev)


def covbeta_varpar(varpar: np.ndarray, cp: Crossprods) -> np.ndarray:
    """``sigma^2 (R_X'R_X)^{-1}`` as a function of ``(theta, sigma)`` (lmerTest's ``get_covbeta``)."""
    st = pls(np.asarray(varpar[:-1]), cp)
    return float(varpar[-1]) ** 2 * np.linalg.inv(st.RXtRX)


# --------------------------------------------------------------------------------------------------
# numerical derivatives (central differences + Richardson extrapolation, as numDeriv's genD)
# --------------------------------------------------------------------------------------------------
def _steps(x: np.ndarray, d: float = 0.1, eps: float = 1e-4, zero_tol: float = 1.8e-5) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.where(np.abs(x) < zero_tol, eps, d * np.abs(x))


def _richardson(estimates: list[np.ndarray]) -> np.ndarray:
    """Extrapolate central-difference estimates made with steps h, h/2, h/4, ..."""
    a = [np.asarray(e, dtype=float) for e in estimates]
    m = 1
    while len(a) > 1:
        f = 4.0**m
        a = [(f * a[i + 1] - a[i]) / (f - 1.0) for i in range(len(a) - 1)]
        m += 1
    return a[0]


def num_jacobian(fun, x: np.ndarray, r: int = 4) -> np.ndarray:
    """Jacobian of a vector function (rows: outputs, columns: inputs)."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x)
    cols = []
    for i in range(x.size):
        ests = []
        for k in range(r):
            h = h0[i] / 2.0**k
            e = np.zeros_like(x)
            e[i] = h
            ests.append((np.ravel(fun(x + e)) - np.ravel(fun(x - e))) / (2.0 * h))
        cols.append(_richardson(ests))
    return np.column_stack(cols)


def num_hessian(fun, x: np.ndarray, r: int = 4) -> np.ndarray:
    """Hessian of a scalar function by central differences with Richardson extrapolation."""
    x = np.asarray(x, dtype=float)
    k = x.size
    h0 = _steps(x)
    f0 = fun(x)
    H = np.zeros((k, k))
    for i in range(k):
        ests = []
        for m in range(r):
            h = h0[i] / 2.0**m
            e = np.zeros(k)
            e[i] = h
            ests.append((fun(x + e) - 2.0 * f0 + fun(x - e)) / (h * h))
        H[i, i] = _richardson(ests)
        for j in range(i):
            ests = []
            for m in range(r):
                hi, hj = h0[i] / 2.0**m, h0[j] / 2.0**m
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i] = hi
                ej[j] = hj
                v = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                    4.0 * hi * hj
                )
                ests.append(v)
            H[i, j] = H[j, i] = _richardson(ests)
    return H


def _fd_grad_hess(fun, x: np.ndarray, h: np.ndarray, free: np.ndarray):
    """Plain central-difference gradient and Hessian over the free coordinates (for Newton steps)."""
    idx = np.flatnonzero(free)
    k = idx.size
    f0 = fun(x)
    g = np.zeros(k)
    H = np.zeros((k, k))
    fp = np.zeros(k)
    fm = np.zeros(k)
    for a, i in enumerate(idx):
        e = np.zeros_like(x)
        e[i] = h[i]
        fp[a], fm[a] = fun(x + e), fun(x - e)
        g[a] = (fp[a] - fm[a]) / (2 * h[i])
        H[a, a] = (fp[a] - 2 * f0 + fm[a]) / h[i] ** 2
    for a, i in enumerate(idx):
        for b in range(a):
            j = idx[b]
            ei = np.zeros_like(x)
            ej = np.zeros_like(x)
            ei[i] = h[i]
            ej[j] = h[j]
            H[a, b] = H[b, a] = (
                fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return f0, g, H


def halving_step(fun, x: np.ndarray, step: np.ndarray, lower: np.ndarray, f0: float, tries: int = 30):
    """Backtracking along ``step`` from ``x`` (halving, kept ``>= lower``) until ``fun`` is not above
    ``f0`` (to rounding, 1e-12 relative): ``(new x, its value)``, or ``(None, None)`` when no halving
    helped (the deviance is at its rounding floor along this direction)."""
    t = 1.0
    for _ in range(tries):
        xn = np.maximum(x + t * step, lower)
        fn = fun(xn)
        if fn <= f0 + 1e-12 * max(1.0, abs(f0)):
            return xn, fn
        t *= 0.5
    return None, None


def minimize_bounded(fun, x0: np.ndarray, lower: np.ndarray, newton_steps: int = 30, quasi_newton: bool = True):
    """Minimise ``fun`` subject to ``x >= lower``: L-BFGS-B, then Newton polishing.

    The polishing uses central-difference gradients and Hessians on the coordinates that are not
    held at their bound, with step halving, so that the optimum is located to ~1e-8 relative
    (tighter than lme4's and metafor's own optimisers). Returns ``(x, fun(x), converged, message)``.
    """
    x0 = np.asarray(x0, dtype=float)
    if quasi_newton:
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        res = optimize.minimize(
            fun, x0, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000}
        )
        x = np.maximum(np.asarray(res.x, dtype=float), lower)
    else:  # warm start close to the optimum: Newton polishing only
        x = np.maximum(x0.copy(), lower)
    fx = fun(x)
    if not np.isfinite(fx):
        return x, fx, False, "the optimiser did not reach a finite deviance"
    converged = False
    for _ in range(newton_steps):
        # steps on the scale of the parameter vector (a near-zero off-diagonal theta needs an absolute step)
        h = 1e-4 * np.maximum(np.abs(x), max(0.1 * float(np.max(np.abs(x))), 1e-3))
        at_bound = np.isfinite(lower) & (x - lower < 1e-10)
        # coordinates at their bound stay there if the one-sided slope points outwards
        free = np.ones(x.size, dtype=bool)
        for i in np.flatnonzero(at_bound):
            e = np.zeros_like(x)
            e[i] = h[i]
            if fun(x + e) >= fx:
                free[i] = False
            else:
                x[i] = lower[i] + h[i]  # leave the bound and let Newton work
        if not free.any():
            converged = True
            break
        h = 1e-4 * np.maximum(np.abs(x), max(0.1 * float(np.max(np.abs(x))), 1e-3))
        # symmetric differences need x - h feasible for the deviance (negative theta is fine for
        # lme4's parametrisation, which is symmetric in the sign of the diagonal)
        f0, g, H = _fd_grad_hess(fun, x, h, free)
        try:
            w, V = np.linalg.eigh(H)
        except np.linalg.LinAlgError:
            break
        if np.any(w <= 0):
            w = np.maximum(np.abs(w), 1e-8 * max(1.0, np.abs(w).max()))
        step = -(V @ ((V.T @ g) / w))
        full = np.zeros_like(x)
        full[free] = step
        xn, fn = halving_step(fun, x, full, lower, f0)
        if xn is None:  # at the noise floor of the deviance: accept if the Newton decrement is tiny
            decrement = 0.5 * float(-g @ step)
            converged = bool(decrement < max(1e-6, 1e-12 * abs(f0)))
            break
        dx = np.max(np.abs(xn - x) / np.maximum(np.abs(x), 1e-3))
        x, fx = xn, fn
        if dx < 1e-7:
            converged = True
            break
    else:
        converged = False
    x = np.where(np.isfinite(lower) & (x - lower < 1e-12), lower, x)
    return x, fun(x), converged, "" if converged else "Newton polishing did not settle"


# --------------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LMMFit:
    """Low-level result of :func:`fit_lmm`."""

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    vcov_beta: np.ndarray
    minus2ll: float  # -2 logL (REML or ML) at the optimum
    reml: bool
    converged: bool
    message: str
    state: PLSState
    cp: Crossprods  # cross-products of the OLS-residualised outcome (see residualize)
    beta_shift: np.ndarray  # beta = (GLS coefficients on cp) + beta_shift

    def ranef(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Conditional modes ``b_j = Lambda_j u_j`` and conditional covariances per block.

        Conditional covariance: ``sigma^2 Lambda_j (L_j L_j')^{-1} Lambda_j'`` (lme4 ``condVar``).
        """
        out = []
        st = pls(self.theta, self.cp, keep=True)
        p = self.cp.p
        for L, C, Lam in zip(st.L, st.C, st.Lam, strict=True):
            rhs = C[:, :, p] - C[:, :, :p] @ st.beta  # st.beta: coefficients on the residualised outcome
            u = np.linalg.solve(np.swapaxes(L, 1, 2), rhs[:, :, None])[:, :, 0]
            b = u @ Lam.T
            Linv = np.linalg.inv(L)
            K = Lam @ np.swapaxes(Linv, 1, 2)  # Lambda L^{-T}
            V = self.sigma**2 * (K @ np.swapaxes(K, 1, 2))
            out.append((b, V))
        return out


def residualize(cp: Crossprods) -> tuple[Crossprods, np.ndarray]:
    """Replace ``y`` by its (weighted) OLS residual ``r = y - X b_ols`` in the cross-products.

    Exact algebra (``Z'r = Z'y - Z'X b``, ``X'r = X'y - X'X b``, ``r'r = y'y - b'X'y``) done once,
    so that each deviance evaluation no longer subtracts quantities of the size of ``y'y`` (large
    when the outcome has a large mean, e.g. 1000 + noise): theta, pwrss and the deviance are
    unchanged, the fixed effects are shifted back by ``b_ols``. Returns the new cross-products and
    ``b_ols``.
    """
    b = np.linalg.solve(cp.XtX, cp.Xty)
    blocks = tuple(
        CrossprodBlock(blk.ZtZ, blk.ZtX, blk.Zty - blk.ZtX @ b, blk.lind) for blk in cp.blocks
    )
    Xty_r = cp.Xty - cp.XtX @ b
    yty_r = float(cp.yty - b @ cp.Xty)  # = y'y - 2 b'X'y + b'X'X b since X'X b = X'y
    out = Crossprods(
        blocks=blocks, XtX=cp.XtX, Xty=Xty_r, yty=yty_r, n=cp.n, ntheta=cp.ntheta, lower=cp.lower,
        sigma_fixed=cp.sigma_fixed, logdet_resid=cp.logdet_resid, reml_const=cp.reml_const,
    )
    return out, b


def _scale_outcome(cp: Crossprods, c: float) -> Crossprods:
    """Cross-products of the outcome ``c y``: ``Z'y`` and ``X'y`` times ``c``, ``y'y`` times ``c^2``."""
    blocks = tuple(CrossprodBlock(blk.ZtZ, blk.ZtX, c * blk.Zty, blk.lind) for blk in cp.blocks)
    return Crossprods(
        blocks=blocks, XtX=cp.XtX, Xty=c * cp.Xty, yty=c * c * cp.yty, n=cp.n, ntheta=cp.ntheta, lower=cp.lower,
        sigma_fixed=cp.sigma_fixed, logdet_resid=cp.logdet_resid, reml_const=cp.reml_const,
    )


def fit_lmm(cp: Crossprods, reml: bool = True, theta0: np.ndarray | None = None) -> LMMFit:
    """Fit a Gaussian LMM by (RE)ML from its cross-products (see the module docstring).

    The outcome is first replaced by its OLS residual (:func:`residualize`) for numerical accuracy;
    the returned fixed effects are those of the original outcome. With an estimated residual
    variance, ``theta`` is optimised on that residual divided by its root mean square: ``theta`` is
    relative to ``sigma`` and the deviance only shifts by ``(n - p) log c^2`` (``n`` for ML) when the
    outcome is multiplied by ``c``, so the optimum is the same, but the optimiser's stopping rules
    (relative to the size of the deviance) then see the same numbers whatever the unit of the outcome.
    """
    cp, b_ols = residualize(cp)
    if theta0 is None:
        theta0 = np.where(np.isfinite(cp.lower), 1.0, 0.0) if not cp.sigma_fixed else np.full(cp.ntheta, 0.1)
    rms = float(np.sqrt(cp.yty / cp.n)) if cp.yty > 0 else 0.0
    cp_opt = _scale_outcome(cp, 1.0 / rms) if not cp.sigma_fixed and 0.0 < rms < np.inf else cp
    fun = lambda th: deviance(th, cp_opt, reml)  # noqa: E731
    theta, dev, ok, msg = minimize_bounded(fun, theta0, cp.lower)
    if cp_opt is not cp:
        dev = deviance(theta, cp, reml)
    st = pls(theta, cp)
    n, p = cp.n, cp.p
    if cp.sigma_fixed:
        sigma = 1.0
    else:
        sigma = float(np.sqrt(st.pwrss / (n - p if reml else n)))
    vcov = sigma**2 * np.linalg.inv(st.RXtRX)
    return LMMFit(theta, st.beta + b_ols, sigma, vcov, float(dev), reml, ok, msg, st, cp, b_ols)


def fit_lmm_from_crossprods(
    ZtZ: np.ndarray,
    ZtX: np.ndarray,
    Zty: np.ndarray,
    XtX: np.ndarray,
    Xty: np.ndarray,
    yty: float,
    n: int,
    reml: bool = True,
) -> LMMFit:
    """Fit ``y = X beta + Z_j b_j + e`` (one grouping factor, unstructured ``Cov(b_j)``) from summaries.

    Parameters
    ----------
    ZtZ, ZtX, Zty : arrays of shape (G, q, q), (G, q, p), (G, q)
        Per-cluster cross-products of the random-effects design ``Z_j`` with itself, with the
        fixed-effects design ``X_j`` and with the outcome ``y_j``.
    XtX, Xty : arrays of shape (p, p) and (p,), or (G, p, p) and (G, p)
        Totals (or per-cluster values, which are summed).
    yty : float or array of shape (G,)
        Total (or per-cluster) sum of squared outcomes.
    n : int
        Number of rows.
    reml : bool
        REML (default) or ML.
    """
    ZtZ = np.asarray(ZtZ, dtype=float)
    q = ZtZ.shape[1]
    XtX = np.asarray(XtX, dtype=float)
    Xty = np.asarray(Xty, dtype=float)
    if XtX.ndim == 3:
        XtX = XtX.sum(axis=0)
    if Xty.ndim == 2:
        Xty = Xty.sum(axis=0)
    lind, lower = unstructured_lind(q)
    cp = Crossprods(
        blocks=(CrossprodBlock(ZtZ, np.asarray(ZtX, dtype=float), np.asarray(Zty, dtype=float), lind),),
        XtX=XtX,
        Xty=Xty,
        yty=float(np.sum(yty)),
        n=int(n),
        ntheta=lower.size,
        lower=lower,
    )
    return fit_lmm(cp, reml=reml)


#: eigenvalues of the deviance Hessian in ``(theta, sigma / sigma_hat)`` at or below this are dropped
#: (lmerTest's ``tol = 1e-8``, applied in units that do not depend on the outcome's unit)
_SATT_EIG_TOL = 1e-8


def satterthwaite(fit: LMMFit) -> tuple[np.ndarray, np.ndarray]:
    """Satterthwaite denominator df for each fixed effect, as lmerTest (Kuznetsova et al. 2017).

    ``df_k = 2 V_kk^2 / (g_k' A g_k)`` with ``A = 2 H^{-1}`` (``H``: Hessian of the deviance in the
    variance parameters, restricted to its positive eigenvalues) and ``g_k`` the gradient of
    ``V_kk = [sigma^2 (R_X'R_X)^{-1}]_kk`` with respect to them. Returns ``(df, eigvals)``, the
    eigenvalues of ``H`` in ``(theta, sigma / sigma_hat)``.

    Notes
    -----
    lmerTest differentiates in ``(theta, sigma)``; we differentiate in ``(theta, s)`` with
    ``s = sigma / sigma_hat``, i.e. on the outcome divided by ``sigma_hat`` (so ``s_hat = 1`` and
    ``V`` is divided by ``sigma_hat^2``). ``g' H^{-1} g`` is unchanged by this reparametrisation and
    ``df`` is homogeneous of degree 0 in ``V``, so these are lmerTest's df, but the numbers the
    numerical derivatives and the eigenvalue cut-off see no longer depend on the unit of the outcome.
    In ``(theta, sigma)`` they do: numDeriv's absolute step ``1e-4`` for ``|sigma| < 1.8e-5`` swamps a
    small ``sigma`` (df -> 0, p -> 1), and lmerTest's absolute cut-off ``1e-8`` on the eigenvalues
    drops the ``sigma`` direction (curvature ``~ 4 (n - p) / sigma^2``) when ``sigma`` is large
    (df far too large). ``theta`` is relative to ``sigma``, and the unit of a fixed-effect covariate
    only rescales ``V_kk`` and ``g_k`` together, so the df do not depend on the units of the outcome
    or of the fixed-effect covariates. (The ``theta`` of a random slope carries the inverse unit of
    its covariate; there, as in lmerTest, the cut-off is in that unit.) A coefficient whose ``V_kk``
    does not vary along any retained direction gets ``df = inf`` (lmerTest's ``Inf``).
    """
    s_hat = float(fit.sigma)
    if not 0.0 < s_hat < np.inf:  # known residual variances (sigma = 1) or a degenerate fit
        s_hat = 1.0
    cp = _scale_outcome(fit.cp, 1.0 / s_hat)
    vp = np.append(fit.theta, fit.sigma / s_hat)
    H = num_hessian(lambda v: deviance_varpar(v, cp, fit.reml), vp)
    w, V = np.linalg.eigh(H)
    pos = w > _SATT_EIG_TOL
    A = 2.0 * (V[:, pos] / w[pos]) @ V[:, pos].T
    p = cp.p
    vcov = covbeta_varpar(vp, cp)  # V / sigma_hat^2
    J = num_jacobian(lambda v: covbeta_varpar(v, cp), vp)  # (p*p, nvarpar)
    df = np.empty(p)
    for k in range(p):
        g = J[k * p + k, :]
        denom = float(g @ A @ g)
        df[k] = 2.0 * vcov[k, k] ** 2 / denom if denom > 0 else np.inf
    return df, w


def profile_interval(fit: LMMFit, idx: int, level: float) -> tuple[float, float]:
    """Profile-likelihood interval of ``theta[idx]`` (other components re-estimated at each point).

    The bounds solve ``dev_prof(theta_idx) = dev_hat + qchisq(level, 1)`` with ``dev`` the (RE)ML
    deviance of the fit; the lower bound is 0 when the profile stays below the target down to 0.
    """
    from scipy import stats

    cp, reml = fit.cp, fit.reml
    target = fit.minus2ll + float(stats.chi2.ppf(level, 1))
    others = np.array([i for i in range(cp.ntheta) if i != idx], dtype=int)

    warm = {"x": np.maximum(fit.theta[others], 1e-3)}

    def prof(t: float) -> float:
        if others.size == 0:
            return deviance(np.array([t]), cp, reml)

        def f(sub):
            th = np.empty(cp.ntheta)
            th[idx] = t
            th[others] = sub
            return deviance(th, cp, reml)

        x, val, ok, _ = minimize_bounded(f, warm["x"], cp.lower[others], newton_steps=30, quasi_newton=False)
        if not ok:  # fall back on the full optimiser
            x, val, _, _ = minimize_bounded(f, warm["x"], cp.lower[others])
        warm["x"] = np.maximum(x, 1e-3)
        return float(val)

    th_hat = float(fit.theta[idx])
    g = lambda t: prof(t) - target  # noqa: E731
    if th_hat <= 0 or g(0.0) <= 0:
        lo = 0.0
    else:
        lo = optimize.brentq(g, 0.0, th_hat, xtol=1e-12, rtol=1e-12)
    hi_b = max(2.0 * th_hat, 1e-3)
    for _ in range(60):
        if g(hi_b) > 0:
            break
        hi_b *= 2.0
    hi = optimize.brentq(g, max(th_hat, 0.0), hi_b, xtol=1e-12, rtol=1e-12)
    return lo, hi
