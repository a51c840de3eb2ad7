"""Fieller's confidence set of a ratio of two correlated estimates.

Used by :mod:`scaleup_analysis.monitoring.voltage` (voltage drop: scaled-up / pilot effect) and
:mod:`scaleup_analysis.sustainment.after_support` (sustainment ratio: effect after / during support).

References
----------
Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical Society
B, 16(2), 175-185.
"""

from __future__ import annotations

import math

__all__ = ["fieller"]


def fieller(a: float, s: float, va: float, vs: float, cas: float, crit: float) -> tuple:
    r"""Fieller confidence set of :math:`\rho = s / a`: ``(type, low, high, root1, root2)``.

    ``a`` and ``s`` are the estimates of the denominator and numerator, ``va``, ``vs`` their variances,
    ``cas`` their covariance and ``crit`` the normal (or t) critical value. The set is :math:`\{\rho : A\rho^2 - 2B\rho + C \le 0\}` with :math:`A = a^2 - c^2 V_a`,
    :math:`B = a s - c^2 C_{as}`, :math:`C = s^2 - c^2 V_s`.
    """
    A = a * a - crit * crit * va
    B = a * s - crit * crit * cas
    C = s * s - crit * crit * vs
    disc = B * B - A * C
    if A > 0:  # the denominator is significantly different from 0: a bounded interval (disc >= 0 then)
        r = math.sqrt(max(disc, 0.0))
        lo, hi = (B - r) / A, (B + r) / A
        return "bounded", lo, hi, lo, hi
    if disc > 0 and A < 0:  # complement of an interval: (-inf, r1] U [r2, inf)
        r = math.sqrt(disc)
        r1, r2 = sorted(((B - r) / A, (B + r) / A))
        return "exclusive", -math.inf, math.inf, r1, r2
    return "unbounded", -math.inf, math.inf, math.nan, math.nan
