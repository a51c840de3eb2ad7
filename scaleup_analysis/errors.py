"""Exceptions and warnings raised by scaleup_analysis.

Every error caused by user input is a :class:`ScaleupDataError` (a ``ValueError``) whose
message names the table, the column and the offending rows, and says how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ScaleupDataError",
    "ScaleupWarning",
    "ConvergenceWarning",
    "RowsOmittedWarning",
    "RawDataChangedError",
]


class ScaleupDataError(ValueError):
    """Invalid input data or arguments (names the table, column and rows at fault)."""


class RawDataChangedError(ScaleupDataError):
    """A file in ``data/raw/`` no longer matches the sha256 recorded in its MANIFEST."""


class ScaleupWarning(UserWarning):
    """Base class of the warnings issued by scaleup_analysis."""


class ConvergenceWarning(ScaleupWarning):
    """An iterative estimator did not converge; the message says what to try."""


class RowsOmittedWarning(ScaleupWarning):
    """Rows were left out of an analysis (e.g. missing moderators); the message says how many and why."""
