"""Laplace GLMM with several random terms (crossed or nested factors): lme4's ``glmer(nAGQ = 1)``.

Computes the maximum-likelihood fit of a binomial (logit, probit) or Poisson (log, offset) mixed model
whose random part has several terms, ``(1 | site) + (1 | period)`` (crossed), ``(1 | region/site)``
(nested), ``(1 + x || site)`` (uncorrelated): the Laplace deviance
``-2 log f(y | u_hat) + ||u_hat||^2 + log|Lambda' Z' W Z Lambda + I|`` with the conditional modes
``u_hat`` found by penalised Newton iterations (global step halving) on the sparse random-effects
system, factored by :class:`scaleup_analysis.engines.terms.TermsLMM` (first term block diagonal,
the rest through a dense Schur complement), and the working (Fisher) weights at the modes, as
lme4's penalised IRLS; the optimum over ``(theta, beta)`` by the bounded optimiser of :mod:`.reml`
(central-difference derivatives of the deviance: the number of parameters is small), the covariance
of ``beta`` from the Hessian of the deviance (lme4's ``use.hessian = TRUE``) and the conditional modes
with their conditional variances per term (:func:`fit_terms_glmm`, returning a :class:`TermsGLMMFit`).

Families and the row-merging of identical rows are those of :mod:`.glmm` (one grouping factor, exact
gradient, quadrature), which serves models with a single term.

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

from .glmm import DIVERGED, GLMMFamily, diverged, glm_fit, vcov_from_hessian
from .reml import minimize_bounded, num_hessian
from .terms import Term, TermsLMM

__all__ = ["TermsGLMM", "TermsGLMMFit", "fit_terms_glmm"]


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
        row_of = np.repeat(np.arange(n), counts)
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
        del row_of

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
                u, eta, _ = self.modes(theta, beta)
                _, _, w, _ = self.fam.derivatives(eta)
                F = self.factor(theta, w)
                dev = float(-2.0 * np.sum(self.fam.loglik(eta)) + u @ u + F.logdet)
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

    def ranef(self):
        return self.model.ranef(np.r_[self.theta, self.beta])


def fit_terms_glmm(y, trials, offset, X, terms: list[Term], family="binomial", link="logit") -> TermsGLMMFit:
    """Fit the GLMM with several random terms by minimising the Laplace deviance over ``(theta, beta)``."""
    mdl = TermsGLMM(y, trials, offset, X, terms, family, link)
    k, p = mdl.k, mdl.p
    beta0, _, _ = glm_fit(mdl.fam.y, mdl.fam.m, mdl.offset, mdl.X, family, link)
    theta0 = np.where(np.isfinite(mdl.lmm.lower), 1.0, 0.0)
    par, dev, ok, msg = minimize_bounded(mdl.deviance, np.r_[theta0, beta0], mdl.lower)
    H = num_hessian(mdl.deviance, par, r=2)
    vcov = vcov_from_hessian(H, k, p)
    _, eta, _ = mdl.modes(par[:k], par[k:])
    if diverged(mdl.fam, eta):
        ok, msg = False, DIVERGED
    return TermsGLMMFit(theta=par[:k], beta=par[k:], deviance=dev, converged=ok, message=msg, vcov=vcov, model=mdl)
