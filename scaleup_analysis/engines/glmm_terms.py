"""Laplace GLMM with several random terms (crossed or nested factors): lme4's ``glmer(nAGQ = 1)``.

Computes the maximum-likelihood fit of a binomial (logit, probit) or Poisson (log, offset) mixed model
whose random part has several terms, ``(1 | site) + (1 | period)`` (crossed), ``(1 | region/site)``
(nested), ``(1 + x || site)`` (uncorrelated): the Laplace deviance
``-2 log f(y | u_hat) + ||u_hat||^2 + log|Lambda' Z' W Z Lambda + I|`` with the conditional modes
``u_hat`` found by penalised Newton iterations (global step halving) on the sparse random-effects
system, factored by :class:`scaleup_analysis.engines.terms.TermsLMM` (first term block diagonal,
the rest through a dense Schur complement), and the working (Fisher) weights at the modes, as
lme4's penalised IRLS; its exact gradient in ``(theta, beta)`` by implicit differentiation of the
modes (:meth:`TermsGLMM.laplace`: the leverages ``z_i' Lambda A^{-1} Lambda' z_i`` gathered from the
dense ``A^{-1}`` up to :data:`DENSE_INVERSE` random effects, else from forward solves by row chunks);
the optimum by :func:`.glmm.optimize_with_gradient` on standardised covariates, the covariance
of ``beta`` from the Hessian of the deviance (lme4's ``use.hessian = TRUE``) and the conditional modes
with their conditional variances per term (:func:`fit_terms_glmm`, returning a :class:`TermsGLMMFit`).

The families are those of :mod:`.glmm`, which serves models with a single term (merging identical
rows, adaptive quadrature).

Used by ``heterogeneity.mixed`` (``sa.mixed_model(family="binomial" | "poisson")`` with several random
terms in the formula).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .glmm import (
    DIVERGED, GLMMFamily, diverged, glm_fit, grad_hessian, optimize_with_gradient, standardized_design,
    to_original_scale, vcov_from_hessian,
)
from .terms import Term, TermsLMM

__all__ = ["TermsGLMM", "TermsGLMMFit", "fit_terms_glmm", "DENSE_INVERSE"]

#: up to this many random effects the gradient gathers the leverages from a dense A^{-1} (m^2 doubles);
#: beyond, from forward solves over chunks of rows
DENSE_INVERSE = 3000


class TermsGLMM:
    """Laplace deviance of a GLMM with several random terms (see the module docstring)."""

    def __init__(self, y, trials, offset, X, terms: list[Term], family="binomial", link="logit"):
        n = y.size
        m = np.ones(n) if trials is None else np.asarray(trials, float)
        self.fam = GLMMFamily(family, link, np.asarray(y, float), m)
        self.offset = np.zeros(n) if offset is None else np.asarray(offset, float)
        self.X = np.asarray(X, float)
        self.p = self.X.shape[1]
        self.lmm = TermsLMM(self.X, np.asarray(y, float), terms)  # sparse Z, Lambda and the factor
        self.k = self.lmm.ntheta
        self.lower = np.r_[self.lmm.lower, np.full(self.p, -np.inf)]
        self._u = np.zeros(self.lmm.m)
        self._pattern()
        self._derivative_patterns()

    # ------------------------------------------------------------------ weighted cross-products
    def _pattern(self):
        """Precompute, for the weighted cross-products ``Z'WZ``, which row products feed which entry:
        the first term's blocks (per level), the sparse first x rest part and the dense rest."""
        lmm = self.lmm
        Zc = lmm.Z.tocsr()
        m1, m = lmm.m1, lmm.m
        n = Zc.shape[0]
        indptr, cols, vals = Zc.indptr, Zc.indices, Zc.data
        counts = np.diff(indptr)
        # all pairs (j, k) of nonzeros within a row
        starts = indptr[:-1]
        pair_r, pair_j, pair_k = [], [], []
        maxc = int(counts.max()) if n else 0
        for a in range(maxc):
            for b in range(maxc):
                ok = (counts > a) & (counts > b)
                rows = np.flatnonzero(ok)
                pair_r.append(rows)
                pair_j.append(starts[rows] + a)
                pair_k.append(starts[rows] + b)
        pr, pj, pk = (np.concatenate(x) for x in (pair_r, pair_j, pair_k))
        cj, ck = cols[pj], cols[pk]
        prod = vals[pj] * vals[pk]
        t1 = lmm.terms[0]
        q1 = t1.q
        # first-term blocks: both columns in the first term and in the same level
        in11 = (cj < m1) & (ck < m1)
        lev_j, lev_k = cj // q1, ck // q1
        sel = in11 & (lev_j == lev_k)
        self._p11 = (pr[sel], lev_j[sel] * q1 * q1 + (cj[sel] % q1) * q1 + (ck[sel] % q1), prod[sel])
        sel12 = (cj < m1) & (ck >= m1)
        key12 = cj[sel12].astype(np.int64) * (m - m1) + (ck[sel12] - m1)
        uniq12, inv12 = np.unique(key12, return_inverse=True)
        self._p12 = (pr[sel12], inv12.ravel(), prod[sel12], uniq12 // (m - m1) if m > m1 else uniq12,
                     uniq12 % (m - m1) if m > m1 else uniq12)
        sel22 = (cj >= m1) & (ck >= m1)
        self._p22 = (pr[sel22], (cj[sel22] - m1).astype(np.int64) * (m - m1) + (ck[sel22] - m1), prod[sel22])

    def crossprods(self, w):
        """``Z'WZ`` in the layout of :meth:`TermsLMM.factor`'s ``cp`` argument."""
        lmm = self.lmm
        m1, m = lmm.m1, lmm.m
        G1, q1 = lmm.terms[0].nlevels, lmm.terms[0].q
        r, idx, prod = self._p11
        Z11 = np.bincount(idx, weights=w[r] * prod, minlength=G1 * q1 * q1).reshape(G1, q1, q1)
        m2 = m - m1
        r, inv, prod, ri, ci = self._p12
        from scipy import sparse

        data12 = np.bincount(inv, weights=w[r] * prod, minlength=ri.size)
        Z12 = sparse.csr_matrix((data12, (ri, ci)), shape=(m1, m2))
        r, idx, prod = self._p22
        Z22 = np.bincount(idx, weights=w[r] * prod, minlength=m2 * m2).reshape(m2, m2)
        return {"Z11": Z11, "Z12": Z12, "Z22": Z22}

    def _derivative_patterns(self):
        """``D_l = Z dLambda/dtheta_l`` (n x m, sparse) for each theta element: where ``theta_l`` enters."""
        from scipy import sparse

        lmm = self.lmm
        parts = lmm._patterns if len(lmm.terms) > 1 else lmm._patterns[:1]
        self._D = []
        for ell in range(self.k):
            blocks = []
            for pat, idx in parts:
                e = pat.copy()
                e.data = (idx == ell).astype(float) if idx.size else e.data
                blocks.append(e)
            E = sparse.block_diag(blocks, format="csr") if len(blocks) > 1 else blocks[0]
            D = (lmm.Z @ E).tocsr()
            D.eliminate_zeros()
            self._D.append(D)

    def laplace(self, par, gradient=True):
        """Laplace deviance and its exact gradient in ``par = (theta, beta)`` (implicit differentiation of
        the modes, as :meth:`scaleup_analysis.engines.glmm.GLMMProblem.laplace`, on the sparse system:
        the leverages ``z_i' Lambda A^{-1} Lambda' z_i`` come from forward solves by row chunks)."""
        dev = self.deviance(par)
        if not gradient:
            return dev
        if not np.isfinite(dev):
            return np.inf, np.zeros(len(par))
        k = self.k
        theta = np.asarray(par[:k], float)
        u, eta, ZL = self._last
        fam = self.fam
        score, info, w, dw = fam.derivatives(eta)
        F = self._last_factor
        Fh = F if fam.canonical else self.factor(theta, info)
        n, m = ZL.shape
        if m <= DENSE_INVERSE:
            h, trace = self._leverages_dense(theta, F, w)
        else:
            h, trace = self._leverages_chunked(ZL, F, w)
        c = dw * h
        v = Fh.solve(ZL.T @ c)
        t = info * (ZL @ v)
        gbeta = self.X.T @ (-2.0 * score + c - t)
        r = c - t - 2.0 * score
        gtheta = np.array([float(r @ (D @ u)) + float(v @ (D.T @ score)) + trace[ell]
                           for ell, D in enumerate(self._D)])
        return dev, np.r_[gtheta, gbeta]

    def _leverages_dense(self, theta, F, w):
        """Leverages ``h_i = z_i' Lambda A^{-1} Lambda' z_i`` and the traces ``tr(A^{-1} dA/dtheta_l)`` at
        fixed weights, from the dense ``A^{-1}`` gathered at each row's own random-effect columns."""
        lmm = self.lmm
        Ainv = F.solve(np.eye(lmm.m))
        cols, vals = [], []  # per term: each row's columns (n, q_t) and values of z_i' T_t (n, q_t)
        for (off, _G, q), t, T in zip(lmm.sizes, lmm.terms, lmm.term_factors(theta), strict=True):
            cols.append(off + t.codes[:, None] * q + np.arange(q)[None, :])
            vals.append(t.Z @ T)
        C = np.concatenate(cols, axis=1)
        V = np.concatenate(vals, axis=1)
        AV = np.zeros_like(V)  # row i: (A^{-1} Lambda' z_i) at the row's own columns
        for a in range(C.shape[1]):
            for b in range(C.shape[1]):
                AV[:, a] += Ainv[C[:, a], C[:, b]] * V[:, b]
        h = np.einsum("ia,ia->i", V, AV)
        trace = np.zeros(self.k)
        start = 0
        pos = []
        for (_off, _G, q), t, sl in zip(lmm.sizes, lmm.terms, lmm.theta_slices, strict=True):
            for r in range(q):
                for c in range(q):
                    if t.lind[r, c] >= 0:
                        pos.append((sl.start + t.lind[r, c], t.Z[:, r], start + c))
            start += q
        for ell, zr, col in pos:
            trace[ell] += 2.0 * float(np.sum(w * zr * AV[:, col]))
        return h, trace

    def _leverages_chunked(self, ZL, F, w):
        """As :meth:`_leverages_dense` by forward solves over chunks of rows (large random-effect systems)."""
        n, m = ZL.shape
        h = np.empty(n)
        trace = np.zeros(self.k)
        step = max(1, 20_000_000 // max(m, 1))
        for a in range(0, n, step):
            b = min(n, a + step)
            Y = F.forward(ZL[a:b].T.toarray())  # L^{-1} Lambda' Z' for these rows (m x chunk)
            h[a:b] = np.einsum("ki,ki->i", Y, Y)
            P = F.backward(Y)  # A^{-1} Lambda' z_i
            for ell, D in enumerate(self._D):
                Dc = D[a:b].tocoo()
                trace[ell] += 2.0 * float(np.sum(w[a + Dc.row] * Dc.data * P[Dc.col, Dc.row]))
        return h, trace

    def factor(self, theta, w):
        return self.lmm.factor(theta, cp=self.crossprods(w))

    def modes(self, theta, beta):
        """Conditional modes ``u`` (spherical), ``eta`` and the ``Z Lambda`` matrix at ``(theta, beta)``."""
        lmm, fam = self.lmm, self.fam
        ZL = (lmm.Z @ lmm.lambda_matrix(theta)).tocsr()
        eta0 = self.offset + self.X @ beta
        u = self._u.copy()

        def objective(u):
            eta = eta0 + ZL @ u
            return float(np.sum(fam.loglik(eta)) - 0.5 * u @ u), eta

        obj, eta = objective(u)
        for _ in range(200):
            score, info, _, _ = fam.derivatives(eta)
            grad = ZL.T @ score - u
            F = self.factor(theta, info)
            step = F.solve(grad)
            t = 1.0
            for _h in range(50):
                new, eta_new = objective(u + t * step)
                if new >= obj - 1e-13 * abs(obj):
                    break
                t /= 2
            u = u + t * step
            obj, eta = new, eta_new
            if np.max(np.abs(t * step)) < 1e-11 * max(1.0, float(np.max(np.abs(u)))):
                break
        self._u = u
        return u, eta, ZL

    def deviance(self, par):
        """Laplace deviance at ``par = (theta, beta)`` (inf where the modes cannot be computed)."""
        k = self.k
        theta, beta = np.asarray(par[:k], float), np.asarray(par[k:], float)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                u, eta, ZL = self.modes(theta, beta)
                _, _, w, _ = self.fam.derivatives(eta)
                F = self.factor(theta, w)
                dev = float(-2.0 * np.sum(self.fam.loglik(eta)) + u @ u + F.logdet)
                self._last, self._last_factor = (u, eta, ZL), F
        except np.linalg.LinAlgError:
            self._u = np.zeros(self.lmm.m)
            return np.inf
        return dev if np.isfinite(dev) else np.inf

    def ranef(self, par):
        """Per term: conditional modes ``b`` (G_t, q_t) and conditional covariances (G_t, q_t, q_t)."""
        k = self.k
        theta, beta = np.asarray(par[:k], float), np.asarray(par[k:], float)
        u, eta, _ = self.modes(theta, beta)
        _, _, w, _ = self.fam.derivatives(eta)
        F = self.factor(theta, w)
        blocks = F.inverse_diag_blocks(self.lmm.sizes)
        out = []
        for (off, G, q), T, Ainv in zip(self.lmm.sizes, self.lmm.term_factors(theta), blocks, strict=True):
            b = u[off:off + G * q].reshape(G, q) @ T.T
            V = T[None] @ Ainv @ T.T[None]
            out.append((b, V))
        return out


@dataclass(frozen=True)
class TermsGLMMFit:
    """Result of :func:`fit_terms_glmm`."""

    theta: np.ndarray
    beta: np.ndarray
    deviance: float
    converged: bool
    message: str
    vcov: np.ndarray
    model: TermsGLMM
    gamma: np.ndarray  # coefficients of the model's standardised design (``beta = M gamma``)

    def ranef(self):
        return self.model.ranef(np.r_[self.theta, self.gamma])


def fit_terms_glmm(y, trials, offset, X, terms: list[Term], family="binomial", link="logit",
                   beta_start=None) -> TermsGLMMFit:
    """Fit the GLMM with several random terms by minimising the Laplace deviance over ``(theta, beta)``;
    ``beta_start`` as in :func:`.glmm.fit_glmm`."""
    Xs, M = standardized_design(X)
    mdl = TermsGLMM(y, trials, offset, Xs, terms, family, link)
    k, p = mdl.k, mdl.p
    beta0 = (glm_fit(mdl.fam.y, mdl.fam.m, mdl.offset, mdl.X, family, link)[0] if beta_start is None
             else np.linalg.solve(M, np.asarray(beta_start, float)))
    theta0 = np.where(np.isfinite(mdl.lmm.lower), 1.0, 0.0)
    par, ok, msg, H, H_at = optimize_with_gradient(mdl.laplace, mdl.deviance, np.r_[theta0, beta0], mdl.lower)
    dev = mdl.deviance(par)
    if H is None or float(np.max(np.abs(par - H_at) / np.maximum(np.abs(par), 1e-2))) > 1e-6:
        H = grad_hessian(mdl.laplace, par, np.ones(par.size, dtype=bool))
    _, vcov = to_original_scale(H, vcov_from_hessian(H, k, p), k, M)
    _, eta, _ = mdl.modes(par[:k], par[k:])
    if diverged(mdl.fam, eta):
        ok, msg = False, DIVERGED
    return TermsGLMMFit(theta=par[:k], beta=M @ par[k:], deviance=dev, converged=ok, message=msg, vcov=vcov,
                        model=mdl, gamma=par[k:].copy())
