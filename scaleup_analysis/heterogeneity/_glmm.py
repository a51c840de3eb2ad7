"""Binomial and Poisson mixed models of :func:`scaleup_analysis.mixed_model` (one grouping factor).

Checks the outcome, warns on separation, fits with :mod:`scaleup_analysis.engines.glmm` (Laplace or
adaptive Gauss-Hermite quadrature) and returns the fields of a ``MixedModelResult``: Wald z tests,
variance components, conditional modes with conditional SDs, the latent-scale ICC (logit: residual
variance pi^2 / 3; probit: 1) and, for random-intercept logit and log models, the median odds ratio
(MOR) or median rate ratio (MRR) ``exp(sqrt(2 tau2) * qnorm(0.75))`` (Merlo et al. 2006).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import rows_text
from ..engines.glmm import fit_glmm, glm_fit
from ..errors import ConvergenceWarning, ScaleupDataError, ScaleupWarning

__all__ = ["fit_glmm_fields", "fixed_table", "check_outcome", "warn_fit", "warn_separation", "separation_direction", "LP_ROWS"]

#: up to this many (merged) rows the separation LP always runs; beyond, only when the GLM fit without
#: random effects does not converge or reaches extreme linear predictors (its cost grows with rows)
LP_ROWS = 50_000

_SINGULAR_TOL = 1e-4  # lme4::isSingular default tolerance on theta


def separation_direction(Xa: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray | None:
    r"""Direction of (quasi-)complete separation of a binomial or Poisson outcome, or None.

    Linear-programming check of Konis (2007): with :math:`s_i = +1` for observations with events
    and :math:`-1` for observations with non-events (a binomial row with both gives both
    constraints; a Poisson row counts as having non-events, ``m = inf``), the data are separated iff
    some :math:`\beta \ne 0` satisfies :math:`s_i x_i'\beta \ge 0` for all rows with at least one
    strict inequality. We maximise :math:`\sum_i s_i x_i'\beta` over the box :math:`[-1, 1]^p`; a
    positive optimum means the maximum-likelihood estimate is at infinity along the returned direction.
    """
    from scipy.optimize import linprog

    pos, neg = y > 0, y < m
    S = np.vstack([Xa[pos], -Xa[neg]])
    scale = np.maximum(np.abs(S).max(axis=0), 1e-12)  # column scaling keeps the LP well conditioned
    S = S / scale
    res = linprog(-S.sum(axis=0), A_ub=-S, b_ub=np.zeros(S.shape[0]), bounds=[(-1, 1)] * S.shape[1],
                  method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * S.shape[0]:
        return None
    return res.x / scale


def check_outcome(y, m, family, formula, index, has_trials) -> None:
    """Refuse outcomes that are not binomial events (0 <= y <= trials, integers) or Poisson counts."""
    if family == "binomial":
        bad = ~np.isfinite(y) | (y < 0) | (y > m) | (np.abs(y - np.round(y)) > 1e-8) | (m <= 0) | (
            np.abs(m - np.round(m)) > 1e-8)
        what = ("0/1 values" if not has_trials else
                "integer events with 0 <= events <= trials (trials > 0, integer)")
        hint = " or pass trials='n' for events/trials data." if not has_trials else "."
    else:
        bad = ~np.isfinite(y) | (y < 0) | (np.abs(y - np.round(y)) > 1e-8)
        what, hint = "non-negative integer counts", "."
    if bad.any():
        raise ScaleupDataError(
            f"mixed_model(family={family!r}): the outcome of {formula!r} must be {what}; "
            f"{rows_text(index, bad)} are not. Fix these rows{hint}"
        )


def fixed_table(beta, vcov, df, level: float, xnames) -> pd.DataFrame:
    """The fixed-effects table: estimate, SE, t (``df`` finite, e.g. Satterthwaite's) or Wald z
    (``df = inf``), p-value and confidence interval."""
    se = np.sqrt(np.diag(np.asarray(vcov, dtype=float)))
    stat = beta / se
    df = np.broadcast_to(np.asarray(df, dtype=float), np.shape(beta))
    dist_sf = np.where(np.isinf(df), stats.norm.sf(np.abs(stat)), stats.t.sf(np.abs(stat), np.where(np.isinf(df), 1, df)))
    q = np.where(np.isinf(df), stats.norm.ppf(0.5 + level / 2), stats.t.ppf(0.5 + level / 2, np.where(np.isinf(df), 1, df)))
    return pd.DataFrame(
        {"estimate": beta, "se": se, "statistic": stat, "df": df, "pvalue": 2 * dist_sf,
         "ci_low": beta - q * se, "ci_high": beta + q * se},
        index=pd.Index(xnames, name="term"),
    )


def warn_fit(fn: str, method: str, converged: bool, message: str, singular: bool, advice: str,
             stacklevel: int, simplify: str = "the random terms") -> None:
    """The warnings of a mixed-model fit: optimiser not converged, boundary (singular) fit (lme4's)."""
    if not converged:
        warnings.warn(f"{fn}: the {method} optimiser did not converge ({message}). Try {advice}.",
                      ConvergenceWarning, stacklevel=stacklevel)
    if singular:
        warnings.warn(
            f"{fn}: boundary (singular) fit: a variance component is estimated at 0 (or the random "
            f"effects are perfectly correlated). Consider simplifying {simplify}.",
            ScaleupWarning,
            stacklevel=stacklevel,
        )


def warn_separation(y, m, offset, Xa, xnames, family, link, formula, stacklevel) -> np.ndarray:
    """Warn when the fixed effects separate the outcome (infinite estimates); see :data:`LP_ROWS`.
    Returns the GLM fit without random effects that this check makes (the start of the mixed model)."""
    n = y.size
    beta, glm_ok, eta_max = glm_fit(y, m, offset, Xa, family, link)
    if n > LP_ROWS and glm_ok and eta_max <= 25:
        return beta
    direction = separation_direction(Xa, y, m if family == "binomial" else np.full(n, np.inf))
    if direction is None:
        return beta
    terms = [name for name, d in zip(xnames, direction) if abs(d) > 1e-9]
    cells = "events only or non-events only" if family == "binomial" else "zero counts only"
    warnings.warn(
        f"mixed_model(family={family!r}): the outcome of {formula!r} is (quasi-)completely "
        f"separated by the fixed effects (involving {', '.join(terms)}): some cells have {cells}, "
        "so the maximum-likelihood estimates of these terms are "
        "infinite and the finite values returned, with their standard errors, are not "
        "interpretable. Merge or remove the term, or use a penalised (Firth-type) model.",
        ScaleupWarning,
        stacklevel=stacklevel,
    )
    return beta


def fit_glmm_fields(y, X, Z, codes, uniq, tr, off, index, formula, group, level, xnames, znames,
                    family="binomial", link="logit", nagq=1) -> dict:
    """Fit and return the keyword arguments of ``MixedModelResult`` (see the module docstring)."""
    Xa, Za = X.to_numpy(dtype=float), Z.to_numpy(dtype=float)
    n, p, G, q = Xa.shape[0], Xa.shape[1], len(uniq), Za.shape[1]
    m = np.ones(n) if tr is None else np.asarray(tr, float)
    offset = np.zeros(n) if off is None else np.asarray(off, float)
    check_outcome(y, m, family, formula, index, tr is not None)
    beta0 = warn_separation(y, m, offset, Xa, xnames, family, link, formula, stacklevel=4)
    fit = fit_glmm(y, m, offset, Xa, Za, codes, G, family=family, link=link, nagq=nagq, beta_start=beta0)
    theta, beta, vcov = fit.theta, fit.beta, fit.vcov
    singular = bool(np.any(theta[np.isfinite(fit.problem.lower_theta)] < _SINGULAR_TOL))
    method = "Laplace" if nagq == 1 else f"AGQ ({nagq} nodes)"
    warn_fit(f"mixed_model(family={family!r})", method, fit.converged, fit.message, singular,
             "rescaling covariates, merging sparse categories, or removing sites without events", stacklevel=4,
             simplify="re_formula")
    fe = fixed_table(beta, vcov, np.inf, level, xnames)
    b, V, Lam = fit.ranef()
    intercept_only = q == 1 and znames == ["Intercept"]
    tau2 = float((Lam @ Lam.T)[0, 0]) if znames[0] == "Intercept" else np.nan
    latent = {"logit": np.pi**2 / 3, "probit": 1.0}.get(link)
    icc = tau2 / (tau2 + latent) if (intercept_only and latent is not None) else np.nan
    mor = (float(np.exp(np.sqrt(2 * tau2) * stats.norm.ppf(0.75)))
           if intercept_only and link in ("logit", "log") else np.nan)
    ll = -fit.deviance / 2
    npar = p + theta.size
    return dict(
        family=family, link=link, method=method, formula=formula, group=group, re_terms=tuple(znames),
        fixed=fe, vcov=pd.DataFrame(vcov, index=xnames, columns=xnames), Lam=Lam, b=b, V=V,
        sigma2=np.nan, tau2=tau2, icc=icc, mor=mor, theta=theta, loglik=ll, AIC=-2 * ll + 2 * npar,
        BIC=-2 * ll + np.log(n) * npar, n_obs=n, n_groups=G, converged=fit.converged, singular=singular,
        level=level, nagq=nagq,
    )
