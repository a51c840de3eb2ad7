"""R's ``uniroot``: the Brent-Dekker zero finder with R's update rules, tolerance and stopping test.

Computes the root of a function on a bracketing interval exactly as R's ``uniroot(f, c(lower,
upper), tol, maxiter)`` (``extendInt = "no"``) does, iterate by iterate, so that the roots agree
with R to rounding. Inputs: a Python function of one float and the interval; output: the root.
Raises :class:`~scaleup_analysis.engines.FitError` when the interval does not bracket a root.

Used by :mod:`.tau2` (Paule-Mandel estimator) and :mod:`.rma` (Q-profile interval of tau^2).

References
----------
Brent, R. P. (1973). Algorithms for Minimization without Derivatives, ch. 4. Prentice-Hall.
"""

from __future__ import annotations

import numpy as np

from . import FitError

__all__ = ["EPS", "UNIROOT_TOL", "r_zeroin", "r_uniroot"]

EPS = np.finfo(float).eps
UNIROOT_TOL = EPS**0.25  # R's uniroot default tolerance


def r_zeroin(f, ax: float, bx: float, fa: float, fb: float, tol: float, maxit: int) -> tuple[float, int]:
    """Brent-Dekker zero finder with the same update rules and stopping test as R's ``zeroin2``.

    Returns ``(root, iterations)``; ``iterations`` is -1 when ``maxit`` was exhausted.
    Algorithm: Brent (1973), *Algorithms for Minimization without Derivatives*, ch. 4, in the
    formulation of Forsythe, Malcolm & Moler (1977) used by R.
    """
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a, 0
    if fb == 0.0:
        return b, 0
    remaining = maxit + 1
    while remaining > 0:
        remaining -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):  # keep b as the best approximation
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * EPS * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, maxit + 1 - remaining
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # secant (linear interpolation)
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                qq = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * qq * (qq - t1) - (b - a) * (t1 - 1.0))
                q = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0.0 else -tol_act
        a, fa = b, fb
        b = b + new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, -1


def r_uniroot(f, lower: float, upper: float, tol: float = UNIROOT_TOL, maxiter: int = 1000) -> float:
    """R's ``uniroot(f, c(lower, upper), tol = tol, maxiter = maxiter)$root`` (``extendInt = "no"``)."""
    f_lower = f(lower)
    f_upper = f(upper)
    if f_lower * f_upper > 0:
        raise FitError("f() values at the end points of the search interval are not of opposite sign")
    root, _ = r_zeroin(f, lower, upper, f_lower, f_upper, tol, maxiter)
    return root
