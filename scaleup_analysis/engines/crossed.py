"""REML of two crossed random intercepts: ``y = mu + a_unit + b_rater + e`` (lme4's ``REMLcrit``).

Computes the REML fit of a score with crossed unit and rater random intercepts (or the one-way
model without raters): the relative standard deviations ``theta = (sd_unit / sd_e, sd_rater /
sd_e)``, the mean ``mu``, the residual variance and the REML criterion, in lme4's
parameterisation with ``mu`` and sigma^2 profiled out (:class:`CrossedREML`). Inputs: the scores
and integer codes of units and raters; outputs: ``(theta, mu, sigma2, criterion, converged)`` from
:meth:`CrossedREML.fit`. The unit block of the system is diagonal and eliminated first, so one
evaluation costs a dense (raters x raters) Cholesky factor whatever the number of units.

Used by ``agreement.icc_mixed`` (``sa.icc_mixed``: ICCs from REML variance components).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1). https://doi.org/10.18637/jss.v067.i01
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, sparse

__all__ = ["CrossedREML"]


class CrossedREML:
    """REML for y = mu + a_target + b_rater + e with independent normal effects.

    Uses lme4's parameterisation: relative standard deviations theta = (sd_t / sd_e, sd_r / sd_e),
    sigma^2 and mu profiled out, so the REML criterion (lme4's ``REMLcrit``) is

        d(theta) = log|A| + log(X'H^-1 X) + (N - 1) (1 + log(2 pi r2 / (N - 1))),

    with H = I + Z Lambda^2 Z', A = Lambda Z'Z Lambda + I (so |H| = |A|) and r2 the penalised
    residual sum of squares. The target block of A is diagonal and is eliminated first, so the
    cost is that of a dense (n_raters x n_raters) Cholesky factor per evaluation.
    """

    def __init__(self, y: np.ndarray, t_codes: np.ndarray, r_codes: np.ndarray | None):
        self.y = y
        self.N = y.size
        self.t = t_codes
        self.nt = int(t_codes.max()) + 1
        self.n_t = np.bincount(t_codes, minlength=self.nt).astype(float)
        self.r = r_codes
        if r_codes is not None:
            self.nr = int(r_codes.max()) + 1
            self.n_r = np.bincount(r_codes, minlength=self.nr).astype(float)
            self.C = sparse.coo_matrix(
                (np.ones(self.N), (t_codes, r_codes)), shape=(self.nt, self.nr)
            ).toarray()

    def _solve_parts(self, theta, v):
        """Return (H^-1 v for columns of v, log|A|)."""
        th_t = theta[0]
        d1 = th_t**2 * self.n_t + 1.0
        logdet = np.sum(np.log(d1))
        # Z'v blocks
        cols = range(v.shape[1])
        zt_v = np.column_stack([np.bincount(self.t, weights=v[:, j], minlength=self.nt) for j in cols])
        if self.r is None:
            u_t = th_t * zt_v / d1[:, None]
            hv = v - (th_t * u_t)[self.t]
            return hv, logdet
        th_r = theta[1]
        zr_v = np.column_stack([np.bincount(self.r, weights=v[:, j], minlength=self.nr) for j in cols])
        b_mat = th_t * th_r * self.C  # nt x nr
        d2 = th_r**2 * self.n_r + 1.0
        s = np.diag(d2) - b_mat.T @ (b_mat / d1[:, None])
        chol = np.linalg.cholesky(s)
        logdet += 2.0 * np.sum(np.log(np.diag(chol)))
        rhs_t = th_t * zt_v
        rhs_r = th_r * zr_v
        # block elimination of A [u_t; u_r] = [rhs_t; rhs_r]
        g = rhs_r - b_mat.T @ (rhs_t / d1[:, None])
        u_r = np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        u_t = (rhs_t - b_mat @ u_r) / d1[:, None]
        hv = v - (th_t * u_t)[self.t] - (th_r * u_r)[self.r]
        return hv, logdet

    def parts(self, theta):
        theta = np.abs(np.asarray(theta, float))
        v = np.column_stack([self.y, np.ones(self.N)])
        hv, logdet = self._solve_parts(theta, v)
        hy, h1 = hv[:, 0], hv[:, 1]
        xhx = np.sum(h1)  # 1' H^-1 1
        mu = np.sum(hy) / xhx  # 1' H^-1 y / 1' H^-1 1
        r2 = self.y @ hy - mu * np.sum(hy)
        return mu, r2, logdet, xhx

    def deviance(self, theta):
        with np.errstate(all="ignore"):
            _, r2, logdet, xhx = self.parts(theta)
            nu = self.N - 1
            if not (r2 > 0 and xhx > 0):
                return np.inf
            dev = logdet + np.log(xhx) + nu * (1 + np.log(2 * np.pi * r2 / nu))
        return dev if np.isfinite(dev) else np.inf

    def fit(self, start):
        """Minimise the REML criterion over theta (it depends on theta^2 only, so unconstrained
        Nelder-Mead is valid and reaches the boundary theta = 0); a restart from the first optimum
        checks convergence."""
        opts = {"xatol": 1e-8, "fatol": 1e-10, "maxfev": 4000}
        res1 = optimize.minimize(self.deviance, start, method="Nelder-Mead", options=opts)
        res2 = optimize.minimize(self.deviance, res1.x, method="Nelder-Mead", options=opts)
        best = res2 if res2.fun <= res1.fun else res1
        converged = bool(np.isfinite(best.fun) and abs(res1.fun - res2.fun) < 1e-7)
        theta = np.abs(best.x)
        mu, r2, _, _ = self.parts(theta)
        sigma2 = r2 / (self.N - 1)
        return theta, mu, sigma2, float(best.fun), converged
