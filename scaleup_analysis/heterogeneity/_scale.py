"""Private checks of the numbers the heterogeneity models can compute with in double precision.

The meta-analysis, multilevel and mixed-model engines form sums of weights ``1/v``, of their
squares and of weighted squares of the effect sizes. Beyond certain magnitudes these overflow
(``1e300 ** 2``), and when one study's weight dwarfs all the others the heterogeneity statistics
(``sum w - sum w^2 / sum w``) lose every significant digit to cancellation. These inputs are refused
before any computation with an error naming the column, the rows and the way out (rescale the
effect sizes, check the units of the variances); :func:`numeric_guard` turns any floating-point
overflow that still happens into the same kind of error instead of a raw ``RuntimeWarning``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from .._checks import first_values, rows_text
from ..errors import ScaleupDataError

__all__: list[str] = []  # private module

#: largest absolute effect size / outcome value, and range of the sampling variances: far beyond any
#: real scale (a cost in cents, a count of people), small enough that squares of weighted values
#: (up to 1e50 ** 4) stay finite in double precision
MAX_ABS = 1e50
VAR_RANGE = (1e-50, 1e50)
#: the largest weight may exceed the sum of all the others by this factor at most: the cancellation
#: in ``sum w - sum w^2 / sum w`` costs about eps * ratio of relative precision (2e-7 at 1e9)
MAX_DOMINANCE = 1e9


def check_effect_scale(index, y: np.ndarray, v: np.ndarray, yi: str, vi: str, fn: str) -> None:
    """Refuse effect sizes / sampling variances that double precision cannot carry through the fit.

    ``index`` labels the rows of ``y`` and ``v`` (the usable rows only, all finite, ``v > 0``).
    """
    index = pd.Index(index)
    big = np.abs(y) > MAX_ABS
    if big.any():
        raise ScaleupDataError(
            f"{fn}: table 'data', column {yi!r} (argument 'yi'): {rows_text(index, big, label='first:')} "
            f"have effect sizes beyond +/-{MAX_ABS:g} (values {first_values(y[big])}); the model's sums "
            "of squares would overflow. Check these rows, or rescale the effect sizes (e.g. express them "
            "in larger units, dividing yi by c and vi by c^2)."
        )
    lo, hi = VAR_RANGE
    out = (v < lo) | (v > hi)
    if out.any():
        raise ScaleupDataError(
            f"{fn}: table 'data', column {vi!r} (argument 'vi'): {rows_text(index, out, label='first:')} "
            f"have sampling variances outside [{lo:g}, {hi:g}] (values {first_values(v[out])}); the "
            "weights 1/vi would overflow in double precision. Check the units (vi is a variance: the "
            "squared standard error, on the scale of yi), or rescale (divide yi by c and vi by c^2)."
        )
    if v.size >= 2:
        w = 1.0 / v
        top = int(np.argmax(w))
        rest = float(np.sum(np.delete(w, top)))
        if rest * MAX_DOMINANCE < w[top]:
            raise ScaleupDataError(
                f"{fn}: table 'data', column {vi!r} (argument 'vi'): the study in row {first_values([index[top]])} "
                f"(vi = {v[top]:.3g}) weighs over {MAX_DOMINANCE:g} times all the other studies together "
                f"(their vi are {first_values(np.delete(v, top))}); the pooled effect is that study's "
                "and the heterogeneity statistics cannot be computed in double precision. Check the "
                "units of vi in that row (a variance, i.e. a squared standard error, not a standard "
                "error or a rounding to 0), or analyse the study on its own."
            )


@contextlib.contextmanager
def numeric_guard(fn: str, what: str):
    """Run a fit with floating-point overflow raised, and report it as a :class:`ScaleupDataError`
    about ``what`` (the data) instead of a raw numpy warning. Division by zero and invalid operations
    keep their meaning in the fits (e.g. Knapp-Hartung with a residual variance of 0 on identical
    studies gives infinite statistics, as in metafor), so they are not trapped here."""
    try:
        with np.errstate(over="raise"):
            yield
    except (FloatingPointError, OverflowError, ZeroDivisionError) as exc:
        raise ScaleupDataError(
            f"{fn}: the fit failed in double precision ({exc}) on {what}; the values are too large, too "
            "small or too far apart to be computed reliably. Check the rows with extreme values, or "
            "rescale the columns (e.g. divide them by a power of 10)."
        ) from None
