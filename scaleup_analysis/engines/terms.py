"""Gaussian (RE)ML with several random-effect terms: crossed, nested and uncorrelated (lme4's ``lmer``).

Computes lme4's profiled REML/ML deviance of ``y = X beta + Z b + e`` with ``Z = [Z_1 ... Z_k]``,
one block ``Z_t`` per random term ``(lhs_t | g_t)`` (``q_t`` columns of ``lhs_t`` for each of the
``G_t`` levels of ``g_t``), and ``b = Lambda(theta) u``, ``u ~ N(0, sigma^2 I)``, with
``Lambda = diag(I_{G_1} (x) T_1, ..., I_{G_k} (x) T_k)`` (``T_t`` lower triangular, filled column-wise
from ``theta``, as ``lme4::mkReTrms``); then the optimum ``theta``, the fixed effects and their
covariance, sigma, the conditional modes with their conditional variances and lmerTest's
Satterthwaite df (:class:`TermsLMM`, :func:`fit_terms_lmm`).

Inputs: the fixed-effects design ``X``, the outcome and, per term, the integer level codes, the
number of levels, the ``lhs`` columns and the term's ``theta`` index pattern (:class:`Term`), the
term with most levels first (lme4's order). Cross-products ``Z'WZ``, ``Z'WX``, ``Z'Wy`` are made in
one pass over the rows (sparse ``Z``); each deviance evaluation then costs no more rows.

Factorisation (:meth:`TermsLMM.factor`): ``A = Lambda' Z'WZ Lambda + I`` is split into the first
term (block diagonal: ``G_1`` blocks of ``q_1 x q_1``) and the rest,

* ``L_1 L_1' = A_11`` (batched small Cholesky factors), ``C = L_1^{-1} A_12`` (sparse),
* ``L_2 L_2' = A_22 - C'C`` (the Schur complement, dense),

so ``A = L L'`` with ``L = [[L_1, 0], [C', L_2]]`` and ``log|A| = log|L_1|^2 + log|L_2|^2``. The dense
part has ``m_2 = sum_{t >= 2} G_t q_t`` rows: one evaluation costs ``O(m_2^3)`` plus the sparse
products, fine up to :data:`MAX_DENSE` (= 5000) random effects outside the first term (e.g. 2,000
sites crossed with 20 periods, or 100 regions over 5,000 sites). Larger models are refused. When the
Schur complement falls apart into independent blocks (its pattern is fixed by the design: nested
terms, e.g. ``site:period`` eliminated first and then ``site``, make it diagonal), each block is
factored on its own, so the cost is that of the largest block (1,500 sites x 4 periods x 5 rows with
``(1 | site) + (1 | site:period)``: ~10 s for the fit with its Satterthwaite df). The factor takes
row weights ``W`` (identity for Gaussian models) so that penalised IRLS for GLMMs can reuse it.

The deviance is lme4's (Bates et al. 2015, eqs. 34 and 41), sigma profiled out:

* ML:   ``log|L|^2 + n (1 + log(2 pi pwrss / n))``
* REML: ``log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi pwrss / (n - p)))``

Used by ``heterogeneity.mixed`` (``sa.mixed_model`` with random terms written in the formula).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01

Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). lmerTest package: tests in linear
mixed effects models. Journal of Statistical Software, 82(13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

from . import FitError
from .reml import lambda_from_theta, minimize_bounded, num_hessian, num_jacobian, unstructured_lind

__all__ = ["Term", "TermsFactor", "TermsLMM", "TermsFit", "fit_terms_lmm", "MAX_DENSE"]

#: largest number of random effects outside the first term (the dense Schur complement is m x m)
MAX_DENSE = 5000
#: eigenvalues of the deviance Hessian in (theta, sigma / sigma_hat) at or below this are dropped (lmerTest)
_SATT_EIG_TOL = 1e-8


@dataclass(frozen=True)
class Term:
    """One random term: level codes (0..nlevels-1) per row, its ``q`` design columns, its pattern."""

    codes: np.ndarray  # (n,) int
    nlevels: int
    Z: np.ndarray  # (n, q) float
    lind: np.ndarray  # (q, q) int, local theta indices (-1 structural zero)
    lower: np.ndarray  # (ntheta_t,)

    @classmethod
    def unstructured(cls, codes, nlevels, Z) -> Term:
        """lme4's ``(lhs | g)`` term: unstructured covariance of its ``q`` columns."""
        Z = np.asarray(Z, dtype=float).reshape(len(codes), -1)
        lind, lower = unstructured_lind(Z.shape[1])
        return cls(np.asarray(codes, dtype=np.int64), int(nlevels), Z, lind, lower)

    @property
    def q(self) -> int:
        return int(self.Z.shape[1])


def _block_diagonal(blocks: np.ndarray) -> sparse.csr_matrix:
    """Sparse block-diagonal matrix of the ``(G, q, q)`` array ``blocks``."""
    G, q = blocks.shape[:2]
    return sparse.bsr_matrix((blocks, np.arange(G), np.arange(G + 1)), shape=(G * q, G * q)).tocsr()


def _tri_solve(L: np.ndarray, r: np.ndarray, trans: bool) -> np.ndarray:
    """``L^{-1} r`` or ``L'^{-1} r`` (``L`` lower triangular); LAPACK's general solver is faster for small ``L``."""
    if L.shape[0] <= 300:
        return np.linalg.solve(L.T if trans else L, r)
    return linalg.solve_triangular(L, r, lower=True, trans="T" if trans else "N", check_finite=False)


class TermsFactor:
    """Cholesky factor ``L`` of ``A = Lambda' Z'WZ Lambda + I`` (see the module docstring)."""

    def __init__(self, L1: np.ndarray, C: sparse.csr_matrix, L2: np.ndarray, m1: int):
        self.L1, self.C, self.L2, self.m1 = L1, C, L2, m1
        self.logdet = 2.0 * float(np.sum(np.log(np.diagonal(L1, axis1=1, axis2=2)))) + (
            2.0 * float(np.sum(np.log(np.diag(L2)))) if L2.size else 0.0)

    def forward(self, r: np.ndarray) -> np.ndarray:
        """``L^{-1} r`` (``r``: m or m x k)."""
        r = np.asarray(r, dtype=float)
        vec = r.ndim == 1
        r = r.reshape(r.shape[0], -1)
        G, q = self.L1.shape[:2]
        x1 = np.linalg.solve(self.L1, r[: self.m1].reshape(G, q, -1)).reshape(self.m1, -1)
        out = [x1]
        if self.L2.size:
            x2 = _tri_solve(self.L2, r[self.m1:] - self.C.T @ x1, trans=False)
            out.append(x2)
        x = np.vstack(out)
        return x[:, 0] if vec else x

    def backward(self, x: np.ndarray) -> np.ndarray:
        """``L'^{-1} x``."""
        x = np.asarray(x, dtype=float)
        vec = x.ndim == 1
        x = x.reshape(x.shape[0], -1)
        G, q = self.L1.shape[:2]
        x1 = x[: self.m1]
        out2 = []
        if self.L2.size:
            u2 = _tri_solve(self.L2, x[self.m1:], trans=True)
            x1 = x1 - self.C @ u2
            out2 = [u2]
        u1 = np.linalg.solve(np.swapaxes(self.L1, 1, 2), x1.reshape(G, q, -1)).reshape(self.m1, -1)
        u = np.vstack([u1] + out2)
        return u[:, 0] if vec else u

    def solve(self, r: np.ndarray) -> np.ndarray:
        """``A^{-1} r``."""
        return self.backward(self.forward(r))

    def inverse_diag_blocks(self, sizes: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """Diagonal blocks of ``A^{-1}``: for each term ``(offset, G, q)`` an array ``(G, q, q)``."""
        G1, q1 = self.L1.shape[:2]
        L1inv = np.linalg.inv(self.L1)  # (G1, q1, q1)
        first = np.swapaxes(L1inv, 1, 2) @ L1inv  # (L1^{-1})' L1^{-1}, per level
        out = []
        if self.L2.size:
            m2 = self.L2.shape[0]
            L2inv = linalg.solve_triangular(self.L2, np.eye(m2), lower=True, check_finite=False)
            # columns of L^{-1} for the first term, lower part: -L2^{-1} C' L1^{-1}, by chunks of levels
            Kt = (self.C.T @ _block_diagonal(L1inv)).tocsc()  # C' L1^{-1}
            step = max(1, 4_000_000 // max(m2 * q1, 1))
            for a in range(0, G1, step):
                b = min(G1, a + step)
                M = L2inv @ Kt[:, a * q1: b * q1].toarray()  # (m2, (b-a) q1)
                M = M.reshape(m2, b - a, q1)
                first[a:b] += np.einsum("mgi,mgj->gij", M, M)
        for off, G, q in sizes:
            if off == 0:
                out.append(first)
                continue
            cols = L2inv[:, off - self.m1: off - self.m1 + G * q].reshape(-1, G, q)
            out.append(np.einsum("mgi,mgj->gij", cols, cols))
        return out


@dataclass
class _PLS:
    ldL2: float
    ldRX2: float
    pwrss: float
    beta: np.ndarray
    RXtRX: np.ndarray
    factor: TermsFactor | None = None
    c: np.ndarray | None = None


class TermsLMM:
    """A linear mixed model with several random terms, from its rows (one pass) to deviances.

    Parameters
    ----------
    X : ndarray (n, p)
        Fixed-effects design (full column rank).
    y : ndarray (n,)
        Outcome.
    terms : list of Term
        Random terms, the one with most levels first (lme4's order).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, terms: list[Term]):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        self.terms = list(terms)
        if not self.terms:
            raise FitError("no random term")
        self.sizes, off, th = [], 0, 0
        self.theta_slices = []
        for t in self.terms:
            self.sizes.append((off, t.nlevels, t.q))
            off += t.nlevels * t.q
            k = t.lower.size
            self.theta_slices.append(slice(th, th + k))
            th += k
        self.m = off
        self.m1 = self.terms[0].nlevels * self.terms[0].q
        if self.m - self.m1 > MAX_DENSE:
            raise FitError(
                f"{self.m - self.m1} random effects outside the term with most levels (limit {MAX_DENSE}): "
                "the dense part of the factorisation would be too large"
            )
        self.ntheta = th
        self.lower = np.concatenate([t.lower for t in self.terms])
        self._patterns = [self._lambda_pattern(0, 1), self._lambda_pattern(1, len(self.terms))]
        # sparse Z (n x m), level-major within a term: column off_t + code * q_t + k
        rows, cols, vals = [], [], []
        ridx = np.arange(self.n)
        for (o, _G, q), t in zip(self.sizes, self.terms, strict=True):
            for k in range(q):
                rows.append(ridx)
                cols.append(o + t.codes * q + k)
                vals.append(t.Z[:, k])
        self.Z = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(self.n, self.m)
        )
        # the outcome as its OLS residual divided by its root mean square (accuracy; see reml.fit_lmm)
        self.b_ols = np.linalg.lstsq(self.X, self.y, rcond=None)[0]
        r = self.y - self.X @ self.b_ols
        self.scale = float(np.sqrt(np.mean(r * r))) or 1.0
        self.r = r / self.scale
        self._cp = self.crossprods(None)
        self._components = self._schur_components()

    # ------------------------------------------------------------------ cross-products
    def crossprods(self, weights: np.ndarray | None, y: np.ndarray | None = None) -> dict:
        """``Z'WZ`` (first-term blocks, sparse first x rest, dense rest), ``Z'W[X y]``, ``X'WX``, ..."""
        y = self.r if y is None else np.asarray(y, dtype=float)
        Zw = self.Z if weights is None else sparse.diags(np.asarray(weights, dtype=float)) @ self.Z
        Xw = self.X if weights is None else self.X * np.asarray(weights, dtype=float)[:, None]
        ZtZ = (Zw.T @ self.Z).tocsr()
        m1 = self.m1
        G1, q1 = self.terms[0].nlevels, self.terms[0].q
        t = self.terms[0]
        wv = np.ones(self.n) if weights is None else np.asarray(weights, dtype=float)
        blocks = np.empty((G1, q1, q1))
        for a in range(q1):
            for b in range(a, q1):
                blocks[:, a, b] = blocks[:, b, a] = np.bincount(t.codes, weights=wv * t.Z[:, a] * t.Z[:, b],
                                                                minlength=G1)
        return {
            "Z11": blocks,
            "Z12": ZtZ[:m1, m1:].tocsr(),
            "Z22": ZtZ[m1:, m1:].toarray(),
            "ZtX": np.asarray(Zw.T @ self.X),
            "Zty": np.asarray(Zw.T @ y).ravel(),
            "XtX": Xw.T @ self.X,
            "Xty": Xw.T @ y,
            "yty": float(y @ (y if weights is None else np.asarray(weights, dtype=float) * y)),
        }

    def _schur_components(self) -> list[np.ndarray] | None:
        """Independent blocks of the Schur complement ``A_22 - C'C`` (its sparsity pattern is that
        of ``Z_2'Z_2 + Z_2'Z_1 Z_1'Z_2``, whatever theta): for nested terms (``site:period`` eliminated
        first, then ``site``) it is diagonal. Returns index arrays grouped by block size (each
        ``(n_blocks, size)``), or None when it is one block."""
        from scipy.sparse.csgraph import connected_components

        m2 = self.m - self.m1
        if m2 <= 1:
            return None
        Z12 = abs(self._cp["Z12"])
        pattern = sparse.csr_matrix(self._cp["Z22"] != 0) + (Z12.T @ Z12) + sparse.identity(m2, format="csr")
        k, labels = connected_components(pattern, directed=False)
        if k == 1:
            return None
        order = np.argsort(labels, kind="stable")
        sizes = np.bincount(labels)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        groups: dict[int, list[np.ndarray]] = {}
        for c in range(k):
            groups.setdefault(int(sizes[c]), []).append(order[starts[c]:starts[c + 1]])
        return [np.stack(v) for _, v in sorted(groups.items())]

    # ------------------------------------------------------------------ Lambda
    def term_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """``T_t`` of each term at ``theta``."""
        theta = np.asarray(theta, dtype=float)
        return [lambda_from_theta(theta[s], t.lind) for s, t in zip(self.theta_slices, self.terms, strict=True)]

    def _lambda_pattern(self, first: int, last: int):
        """CSR structure of the block-diagonal ``Lambda`` of terms ``first..last-1`` and, for each
        stored element, its index into ``theta`` extended by a final 0."""
        rows, cols, idx = [], [], []
        if first >= last:
            return sparse.csr_matrix((0, 0)), np.zeros(0, dtype=int)
        base = self.sizes[first][0]
        for t_i in range(first, last):
            off, G, q = self.sizes[t_i]
            t, sl = self.terms[t_i], self.theta_slices[t_i]
            for r in range(q):
                for c in range(q):
                    if t.lind[r, c] >= 0:
                        lev = np.arange(G)
                        rows.append(off - base + lev * q + r)
                        cols.append(off - base + lev * q + c)
                        idx.append(np.full(G, sl.start + t.lind[r, c]))
        size = sum(G * q for _, G, q in self.sizes[first:last])
        if not rows:
            return sparse.csr_matrix((size, size)), np.zeros(0, dtype=int)
        probe = sparse.csr_matrix(
            (np.arange(1, sum(map(len, rows)) + 1, dtype=float), (np.concatenate(rows), np.concatenate(cols))),
            shape=(size, size),
        )
        order = probe.data.astype(int) - 1
        return probe, np.concatenate(idx)[order]

    def _lambda_part(self, theta: np.ndarray, part: int) -> sparse.csr_matrix:
        pat, idx = self._patterns[part]
        out = pat.copy()
        out.data = np.asarray(theta, dtype=float)[idx] if idx.size else out.data
        return out

    def lambda_matrix(self, theta: np.ndarray) -> sparse.csr_matrix:
        """``Lambda(theta)`` (m x m, sparse block diagonal)."""
        return sparse.block_diag([self._lambda_part(theta, 0), self._lambda_part(theta, 1)], format="csr") if (
            len(self.terms) > 1) else self._lambda_part(theta, 0)

    def factor(self, theta: np.ndarray, weights: np.ndarray | None = None, cp: dict | None = None) -> TermsFactor:
        """Factor ``Lambda' Z'WZ Lambda + I`` at ``theta`` for row weights ``W`` (None: identity)."""
        cp = (self._cp if weights is None else self.crossprods(weights)) if cp is None else cp
        Ts = self.term_factors(theta)
        T1 = Ts[0]
        q1 = T1.shape[0]
        A11 = np.swapaxes(T1, 0, 1)[None] @ cp["Z11"] @ T1[None] + np.eye(q1)
        L1 = np.linalg.cholesky(A11)
        m2 = self.m - self.m1
        if m2 == 0:
            return TermsFactor(L1, sparse.csr_matrix((self.m1, 0)), np.zeros((0, 0)), self.m1)
        Lam1, Lam2 = self._lambda_part(theta, 0), self._lambda_part(theta, 1)
        A12 = (Lam1.T @ cp["Z12"] @ Lam2).tocsr()
        C = (_block_diagonal(np.linalg.inv(L1)) @ A12).tocsr()
        A22 = np.asarray(Lam2.T @ (Lam2.T @ cp["Z22"]).T)
        S = A22 + np.eye(m2) - (C.T @ C).toarray()
        if self._components is None:
            L2 = np.linalg.cholesky(S)
        else:  # S is block diagonal up to a permutation: factor each block (no fill-in between them)
            L2 = np.zeros_like(S)
            for idx in self._components:
                sel = (idx[:, :, None], idx[:, None, :])
                L2[sel] = np.linalg.cholesky(S[sel])
        return TermsFactor(L1, C, L2, self.m1)

    # ------------------------------------------------------------------ PLS and deviances
    def pls(self, theta: np.ndarray, keep: bool = False) -> _PLS:
        """Penalised least squares at ``theta`` on the scaled residual outcome."""
        cp = self._cp
        F = self.factor(theta)
        B = np.column_stack([cp["ZtX"], cp["Zty"]])
        rhs = np.vstack([self._lambda_part(theta, 0).T @ B[: self.m1], self._lambda_part(theta, 1).T @ B[self.m1:]])
        c = F.forward(rhs)
        p = self.p
        S = c.T @ c
        RXtRX = cp["XtX"] - S[:p, :p]
        rXy = cp["Xty"] - S[:p, p]
        Rl = np.linalg.cholesky(RXtRX)
        beta = linalg.cho_solve((Rl, True), rXy, check_finite=False)
        pwrss = float(cp["yty"] - S[p, p] - rXy @ beta)
        return _PLS(F.logdet, 2.0 * float(np.sum(np.log(np.diag(Rl)))), pwrss, beta, RXtRX,
                    F if keep else None, c if keep else None)

    def _dev(self, st: _PLS, reml: bool, scale2: float = 1.0) -> float:
        n, p = self.n, self.p
        pw = st.pwrss * scale2
        if reml:
            return st.ldL2 + st.ldRX2 + (n - p) * (1.0 + np.log(2.0 * np.pi * pw / (n - p)))
        return st.ldL2 + n * (1.0 + np.log(2.0 * np.pi * pw / n))

    def deviance(self, theta: np.ndarray, reml: bool = True, scaled: bool = True) -> float:
        """Profiled deviance at ``theta`` (``scaled``: of the residual outcome divided by its RMS)."""
        try:
            st = self.pls(theta)
        except np.linalg.LinAlgError:
            return np.inf
        if st.pwrss <= 0:
            return np.inf
        return float(self._dev(st, reml, 1.0 if scaled else self.scale**2))

    def deviance_varpar(self, varpar: np.ndarray, reml: bool) -> float:
        """Deviance in ``(theta, s)``, ``s`` the residual SD of the scaled outcome (not profiled)."""
        st = self.pls(varpar[:-1])
        s2 = float(varpar[-1]) ** 2
        dev = st.ldL2 + st.pwrss / s2 + self.n * np.log(2.0 * np.pi * s2)
        if reml:
            dev += st.ldRX2 - self.p * np.log(2.0 * np.pi * s2)
        return float(dev)

    def covbeta_varpar(self, varpar: np.ndarray) -> np.ndarray:
        """``s^2 (R_X'R_X)^{-1}`` in ``(theta, s)`` (lmerTest's ``get_covbeta``, scaled outcome)."""
        st = self.pls(varpar[:-1])
        return float(varpar[-1]) ** 2 * np.linalg.inv(st.RXtRX)


@dataclass(frozen=True)
class TermsFit:
    """Result of :func:`fit_terms_lmm` (on the original scale of the outcome)."""

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    vcov_beta: np.ndarray
    minus2ll: float
    reml: bool
    converged: bool
    message: str
    model: TermsLMM

    def ranef(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per term: conditional modes ``(G, q)`` and conditional covariances ``(G, q, q)`` (lme4 ``condVar``)."""
        mdl = self.model
        st = mdl.pls(self.theta, keep=True)
        p = mdl.p
        u = st.factor.backward(st.c[:, p] - st.c[:, :p] @ st.beta) * mdl.scale
        inv_blocks = st.factor.inverse_diag_blocks(mdl.sizes)
        out = []
        for (off, G, q), T, Ainv in zip(mdl.sizes, mdl.term_factors(self.theta), inv_blocks, strict=True):
            b = u[off: off + G * q].reshape(G, q) @ T.T
            V = self.sigma**2 * (T[None] @ Ainv @ T.T[None])
            out.append((b, V))
        return out

    def satterthwaite(self) -> np.ndarray:
        """lmerTest's Satterthwaite df of each fixed effect (see ``engines.reml.satterthwaite``).

        Differentiates the deviance and ``Var(beta)`` in ``(theta, s)`` on the outcome divided by
        ``sigma_hat`` (``s_hat = 1``): the same df as lmerTest's ``(theta, sigma)``, free of the unit.
        """
        mdl = self.model
        s_hat = self.sigma / mdl.scale  # residual SD of the scaled outcome
        # work on the outcome divided by sigma_hat: multiply the scaled residual by 1 / s_hat
        sub = _rescaled(mdl, 1.0 / s_hat)
        vp = np.append(self.theta, 1.0)
        H = num_hessian(lambda v: sub.deviance_varpar(v, self.reml), vp)
        w, V = np.linalg.eigh(H)
        pos = w > _SATT_EIG_TOL
        A = 2.0 * (V[:, pos] / w[pos]) @ V[:, pos].T
        p = mdl.p
        vcov = sub.covbeta_varpar(vp)
        J = num_jacobian(lambda v: sub.covbeta_varpar(v), vp)
        df = np.empty(p)
        for k in range(p):
            g = J[k * p + k, :]
            denom = float(g @ A @ g)
            df[k] = 2.0 * vcov[k, k] ** 2 / denom if denom > 0 else np.inf
        return df


def _rescaled(mdl: TermsLMM, c: float) -> TermsLMM:
    """A shallow copy of ``mdl`` whose (scaled residual) outcome is multiplied by ``c``."""
    new = object.__new__(TermsLMM)
    new.__dict__.update(mdl.__dict__)
    cp = dict(mdl._cp)
    cp["Zty"], cp["Xty"], cp["yty"] = c * cp["Zty"], c * cp["Xty"], c * c * cp["yty"]
    new._cp = cp
    new.r = c * mdl.r
    new.scale = mdl.scale / c
    return new


def fit_terms_lmm(X: np.ndarray, y: np.ndarray, terms: list[Term], reml: bool = True) -> TermsFit:
    """Fit the model by (RE)ML: ``theta`` by :func:`~.reml.minimize_bounded` from lme4's start
    (1 on the diagonals, 0 elsewhere), then ``beta``, ``sigma`` and ``Var(beta)``."""
    mdl = TermsLMM(X, y, terms)
    theta0 = np.where(np.isfinite(mdl.lower), 1.0, 0.0)
    # a line search may try a huge theta where the Schur complement loses positive definiteness: the
    # deviance is then inf and the optimiser backs off (its differences of inf are nan: not an error)
    with np.errstate(invalid="ignore"):
        theta, _, ok, msg = minimize_bounded(lambda th: mdl.deviance(th, reml), theta0, mdl.lower)
    st = mdl.pls(theta)
    n, p = mdl.n, mdl.p
    sigma_s = float(np.sqrt(st.pwrss / (n - p if reml else n)))
    sigma = sigma_s * mdl.scale
    beta = mdl.b_ols + mdl.scale * st.beta
    vcov = sigma**2 * np.linalg.inv(st.RXtRX)
    dev = mdl._dev(st, reml, mdl.scale**2)
    return TermsFit(theta, beta, sigma, vcov, float(dev), reml, ok, msg, mdl)
