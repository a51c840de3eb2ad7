"""Notebook support: the set-up every step notebook shares, in one place.

The step notebooks stay thin: they call :func:`setup_display` once (deterministic, readable printed
tables, one-line warnings and inline figures, so ``pytest --nbval`` reproduces stored outputs and the
stored notebooks carry their images), :func:`scaleup_analysis.load_study` for their data and
:class:`scaleup_analysis.StepReport` for their sections.
"""

from __future__ import annotations

import sys
import warnings

import pandas as pd

from .errors import ScaleupDataError

__all__ = ["setup_display"]


def _one_line_warning(message, category, *args, **kwargs) -> str:
    return f"{category.__name__}: {message}\n"


def _show_on_stdout(message, category, filename, lineno, file=None, line=None) -> None:
    # stdout, not stderr: the kernel flushes the two streams independently, so a warning on stderr
    # and a printed table on stdout of the same cell could be stored in either order
    sys.stdout.write(_one_line_warning(message, category))


def setup_display(precision: int = 3, width: int = 120, max_columns: int | None = None) -> None:
    """Set pandas display options and print warnings as one plain line on standard output.

    Warnings then show as ``Category: message`` without the temporary file path of the cell, which
    changes from one kernel to the next, and on the same stream as printed results, so a cell's
    output is always stored in the same order (both matter for ``pytest --nbval`` and for
    reproducible reports). Meant for notebooks; library code never calls it.

    Parameters
    ----------
    precision : int
        Digits shown for floats in printed DataFrames.
    width : int
        Display width in characters.
    max_columns : int, optional
        Columns shown before pandas elides the middle ones (pandas' default when None).

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis.notebook import setup_display
    >>> with pd.option_context("display.precision", 6):
    ...     setup_display(precision=2)
    ...     pd.get_option("display.precision")
    2
    """
    for name, value, least in (("precision", precision, 0), ("width", width, 1), ("max_columns", max_columns, 1)):
        if value is None and name == "max_columns":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ScaleupDataError(f"setup_display: argument {name!r} must be an integer >= {least}, got {value!r}.")
    pd.set_option("display.precision", precision)
    pd.set_option("display.width", width)
    if max_columns is not None:
        pd.set_option("display.max_columns", max_columns)
    warnings.formatwarning = _one_line_warning
    warnings.showwarning = _show_on_stdout
    _inline_figures()


def _inline_figures() -> None:
    """In a Jupyter kernel, draw figures inline whatever ``MPLBACKEND`` says, so that stored
    notebooks and HTML reports carry their images."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.run_line_magic("matplotlib", "inline")
