r"""Exploratory factor analysis of a correlation matrix and the Schmid-Leiman transformation, as psych.

Computes, on a plain correlation matrix, what ``psych::schmid`` (psych 2.2.9) computes on the way to
``psych::omega``: the factor extraction of ``psych::fa`` (``fm = "minres"`` or ``"ml"``), its
varimax rotation (``stats::varimax``), the oblimin rotation of ``GPArotation::oblimin`` (gamma 0,
quartimin, by GPArotation's gradient projection algorithm ``GPFoblq``), the higher-order factor of
the factor correlations and the Schmid-Leiman orthogonalisation. Inputs: a correlation matrix and
the number of factors; outputs: arrays. Raises :class:`~scaleup_analysis.engines.FitError` when an
optimiser fails.

The two iterative steps are run to their optimum rather than to psych's stopping rules (psych's
``optim`` call stops at ``factr = 1e7``, GPArotation at a gradient norm of ``1e-5``): the results
are those of psych run with tight tolerances. The varimax step only provides the starting point of
the oblimin rotation and copies ``stats::varimax`` step by step (tolerance ``1e-5``), so that the
oblimin rotation starts where psych's starts.

Used by :mod:`scaleup_analysis.prom` (``scale_omega``), whose :func:`smc` also serves
``scale_reliability``.

References
----------
Revelle, W. (2022). psych: Procedures for Psychological, Psychometric, and Personality Research
(version 2.2.9): ``fa``, ``schmid``, ``omega``, ``smc``.

Bernaards, C. A., & Jennrich, R. I. (2005). Gradient projection algorithms and software for
arbitrary rotation criteria in factor analysis. Educational and Psychological Measurement, 65(5),
676-696.

Schmid, J., & Leiman, J. M. (1957). The development of hierarchical factor solutions.
Psychometrika, 22(1), 53-61.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from . import FitError

__all__ = ["smc", "fa_extract", "fa", "varimax", "oblimin", "schmid", "PSI_LOWER"]

#: psych's lower bound of a uniqueness in ``fa`` (``optim(..., lower = 0.005)``).
PSI_LOWER = 0.005


def smc(r: np.ndarray) -> np.ndarray:
    """psych::smc: 1 - 1 / diag(R^+), pseudo-inverse (tolerance sqrt(eps)), clamped to [0, 1]."""
    inv = np.linalg.pinv(r, rcond=math.sqrt(np.finfo(float).eps))
    with np.errstate(divide="ignore"):
        out = 1.0 - 1.0 / np.diag(inv)
    return np.clip(out, 0.0, 1.0)


def _top(s: np.ndarray, nf: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``nf`` largest eigenvalues (decreasing) of a symmetric matrix and their eigenvectors."""
    vals, vecs = np.linalg.eigh(s)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def _minres_loadings(psi: np.ndarray, r: np.ndarray, nf: int) -> np.ndarray:
    """psych's ``FAout.wls``: the first ``nf`` principal axes of ``R - diag(psi)``."""
    vals, vecs = _top(r - np.diag(psi), nf)
    return vecs[:, :nf] * np.sqrt(np.maximum(vals[:nf], 0.0))


def _ml_loadings(psi: np.ndarray, r: np.ndarray, nf: int) -> np.ndarray:
    """psych's ``FAout``: ML loadings given the uniquenesses."""
    sc = 1.0 / np.sqrt(psi)
    vals, vecs = _top(r * sc[:, None] * sc[None, :], nf)
    return np.sqrt(psi)[:, None] * vecs[:, :nf] * np.sqrt(np.maximum(vals[:nf] - 1.0, 0.0))


def _minres_fn(psi, r, nf):
    """Unweighted least squares: half the squared residual of ``R - diag(psi)`` after its best
    rank-``nf`` approximation; its gradient is psych's ``FAgr.minres``."""
    vals, vecs = _top(r - np.diag(psi), nf)
    kept = np.maximum(vals[:nf], 0.0)
    resid = np.concatenate([vals[:nf] - kept, vals[nf:]])
    load = vecs[:, :nf] * np.sqrt(kept)
    grad = np.sum(load**2, axis=1) + psi - np.diag(r)
    return 0.5 * float(np.sum(resid**2)), grad


def _ml_fn(psi, r, nf):
    """psych's ``FAfn`` (ML discrepancy) and ``FAgr``."""
    sc = 1.0 / np.sqrt(psi)
    vals, vecs = _top(r * sc[:, None] * sc[None, :], nf)
    e = vals[nf:]
    if np.any(e <= 0):
        return math.inf, np.zeros_like(psi)
    f = -(float(np.sum(np.log(e) - e)) - nf + r.shape[0])
    load = np.sqrt(psi)[:, None] * vecs[:, :nf] * np.sqrt(np.maximum(vals[:nf] - 1.0, 0.0))
    grad = (np.sum(load**2, axis=1) + psi - np.diag(r)) / psi**2
    return f, grad


def _polish(fn, psi: np.ndarray, r: np.ndarray, nf: int, lower: float, upper: float) -> np.ndarray:
    """Newton steps on the stationarity equations of the free uniquenesses (finite-difference
    Jacobian of the gradient), from the quasi-Newton solution, while the gradient decreases: the
    optimum to rounding rather than to the line search's tolerance."""
    _, g = fn(psi, r, nf)
    for _ in range(20):
        free = np.flatnonzero((psi > lower) & (psi < upper))
        worst = float(np.max(np.abs(g[free]))) if len(free) else 0.0
        if worst < 1e-15:
            break
        h = 1e-7
        jac = np.empty((len(free), len(free)))
        for a, i in enumerate(free):
            e = np.zeros_like(psi)
            e[i] = h
            jac[:, a] = (fn(psi + e, r, nf)[1][free] - fn(psi - e, r, nf)[1][free]) / (2 * h)
        try:
            step = np.linalg.solve(jac, g[free])
        except np.linalg.LinAlgError:
            break
        new = psi.copy()
        new[free] = np.clip(psi[free] - step, lower, upper)
        _, g_new = fn(new, r, nf)
        if not np.all(np.isfinite(g_new)) or float(np.max(np.abs(g_new[free]))) >= worst:
            break
        psi, g = new, g_new
    return psi


def fa_extract(r: np.ndarray, nf: int, fm: str) -> tuple[np.ndarray, np.ndarray]:
    """The unrotated factor loadings and uniquenesses of psych's ``fa(r, nf, fm)`` (``fm`` is
    ``"minres"`` or ``"ml"``), uniquenesses bounded to ``[0.005, max(smc, 1)]`` and started at
    ``1 - smc``, optimised to convergence; loadings signed as psych (positive column sums)."""
    s_smc = smc(r)
    start = np.diag(r) - s_smc
    upper = max(float(np.max(s_smc)), 1.0)
    fn = _minres_fn if fm == "minres" else _ml_fn
    start = np.clip(start, PSI_LOWER, upper)
    res = optimize.minimize(fn, start, args=(r, nf), jac=True, method="L-BFGS-B",
                            bounds=[(PSI_LOWER, upper)] * len(start),
                            options={"ftol": 0.0, "gtol": 1e-13, "maxiter": 100000, "maxcor": 20})
    psi = _polish(fn, res.x, r, nf, PSI_LOWER, upper)
    # projected gradient at the bounds: a free coordinate must be stationary
    _, g = fn(psi, r, nf)
    free = (psi > PSI_LOWER + 1e-10) & (psi < upper - 1e-10)
    if not np.all(np.isfinite(psi)) or (free.any() and np.max(np.abs(g[free])) > 1e-6):
        raise FitError(f"the {fm} factor extraction did not converge ({res.message}).")
    load = _minres_loadings(psi, r, nf) if fm == "minres" else _ml_loadings(psi, r, nf)
    signs = np.sign(load.sum(axis=0))
    signs[signs == 0] = 1.0
    load = load * signs
    load[load == 0] = 1e-15
    return load, psi


def varimax(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """``stats::varimax(x)`` (Kaiser normalisation), step by step with R's stopping rule."""
    sc = np.sqrt(np.sum(x**2, axis=1))
    x = x / sc[:, None]
    p, nc = x.shape
    tt = np.eye(nc)
    d = 0.0
    for _ in range(1000):
        z = x @ tt
        b = x.T @ (z**3 - z * (np.sum(z**2, axis=0) / p))
        u, sv, vt = np.linalg.svd(b)
        tt = u @ vt
        dpast, d = d, float(np.sum(sv))
        if d < dpast * (1 + eps):
            break
    return (x @ tt) * sc[:, None]


def _quartimin(lam: np.ndarray) -> tuple[float, np.ndarray]:
    """GPArotation's ``vgQ.oblimin`` with gamma 0 (quartimin): criterion and gradient."""
    l2 = lam**2
    x = l2 @ (1.0 - np.eye(lam.shape[1]))
    return float(np.sum(l2 * x)) / 4.0, lam * x


def oblimin(a: np.ndarray, eps: float = 1e-8, maxit: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """``GPArotation::oblimin(a)`` (``GPFoblq``, gamma 0, no normalisation, start at the identity),
    run until the projected gradient norm is below ``eps`` or, below ``1e-6``, until the line search
    can no longer improve the criterion (rounding). Returns the pattern loadings and the factor
    correlations ``Phi``."""
    tmat = np.eye(a.shape[1])
    al = 1.0
    lam = a @ np.linalg.inv(tmat).T
    f, gq = _quartimin(lam)
    g = -(lam.T @ gq @ np.linalg.inv(tmat)).T
    for _ in range(maxit + 1):
        gp = g - tmat * np.sum(tmat * g, axis=0)
        s = math.sqrt(float(np.sum(gp**2)))
        if s < eps:
            break
        al *= 2.0
        improved = False
        for _ in range(11):
            xm = tmat - al * gp
            tmatt = xm / np.sqrt(np.sum(xm**2, axis=0))
            lamt = a @ np.linalg.inv(tmatt).T
            ft, gqt = _quartimin(lamt)
            if f - ft > 0.5 * s**2 * al:
                improved = True
                break
            al /= 2.0
        if not improved and s < 1e-6:
            break  # at the rounding floor of the criterion
        tmat, f, lam = tmatt, ft, lamt
        g = -(lam.T @ gqt @ np.linalg.inv(tmatt)).T
    else:
        raise FitError(f"the oblimin rotation did not converge in {maxit} iterations (gradient {s:.2g}).")
    return lam, tmat.T @ tmat


def fa(r: np.ndarray, nf: int, fm: str) -> tuple[np.ndarray, np.ndarray]:
    """psych's ``fa(r, nf, fm = fm, rotate = "varimax")``: loadings (varimax when ``nf > 1``,
    columns signed to positive sums and ordered by decreasing sum of squares) and uniquenesses."""
    load, psi = fa_extract(r, nf, fm)
    if nf > 1:
        load = varimax(load)
    signs = np.sign(load.sum(axis=0))
    signs[signs == 0] = 1.0
    load = load * signs
    if nf > 1:
        order = np.argsort(-np.sum(load**2, axis=0), kind="stable")
        load = load[:, order]
    return load, psi


def schmid(r: np.ndarray, nf: int, fm: str) -> dict:
    """psych's ``schmid(r, nf, fm, rotate = "oblimin")`` (``option = "equal"`` for 2 factors).

    Returns ``g`` (general loadings), ``group`` (p x nf group loadings ``F1*`` ...), ``h2``, ``u2``,
    ``p2``, ``oblique`` (pattern), ``phi`` (factor correlations, None for 1 factor), ``gloading``
    (loadings of the oblique factors on the general factor), ``psi`` (uniquenesses of the factor
    extraction) and ``psi_g`` (those of the higher-order extraction, None with fewer than 3 factors).
    """
    orth, psi = fa(r, nf, fm)
    psi_g = None
    if nf == 1:
        fload, phi, gload = orth, None, np.array([1.0])
    else:
        fload, phi = oblimin(orth)
        if nf > 2:
            gl, psi_g = fa(phi, 1, fm)
            gload = gl[:, 0]
        else:
            c = float(phi[0, 1])
            gload = np.array([math.sqrt(abs(c)), math.copysign(1.0, c) * math.sqrt(abs(c)) if c != 0 else 0.0])
    g = fload @ gload
    h2 = np.sum(orth**2, axis=1)
    u2 = np.diag(r) - h2
    uniq2 = np.clip(fload**2 * (1.0 - gload**2), 0.0, None)
    group = np.sign(fload) * np.sqrt(uniq2)
    return {"g": g, "group": group, "h2": h2, "u2": u2, "p2": g**2 / h2, "oblique": fload, "phi": phi,
            "gloading": gload, "psi": psi, "psi_g": psi_g}
