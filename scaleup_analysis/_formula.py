"""Covariates given as column names or as a formula, made safe for patsy (package-internal).

A list of column names is never evaluated as code: each column gets a safe alias (``_sa_cov0``,
...) in the formula patsy reads, and the design columns are named back with the columns' own names
(:func:`unaliased`). A formula string is the caller's own code (as in R) and is used as given.
Used by ``sustainment.cox`` and ``monitoring.casemix`` (``heterogeneity.meta`` shares
:func:`unaliased`).
"""

from __future__ import annotations

import re

import pandas as pd

from .errors import ScaleupDataError

__all__ = ["formula_parts", "unaliased", "aliased_frame"]


def formula_parts(spec, *, where: str, arg: str = "formula", outcome: str, examples: tuple[str, str, list],
                  prefix: str = "_sa_cov") -> tuple[str, dict, str]:
    """(right-hand side patsy reads, aliases, formula shown) of covariates ``spec``.

    ``spec`` is a formula string without a left-hand side (``"age + C(x)"`` or ``"~ age + C(x)"``)
    or a non-empty list of column names. ``where`` names the caller in error messages, ``arg`` the
    argument, ``outcome`` the arguments that give the outcome instead of a left-hand side, and
    ``examples`` a long and a short formula and a list of names shown in the messages.
    """
    long_example, short_example, list_example = examples
    if isinstance(spec, str):
        lhs, tilde, rhs = spec.partition("~")
        if tilde and lhs.strip():
            raise ScaleupDataError(
                f"{where}: {arg} {spec!r} has a left-hand side; give only the covariates (e.g. "
                f"{long_example!r}): the outcome is given by {outcome}."
            )
        rhs = (rhs if tilde else lhs).strip()
        if not rhs:
            raise ScaleupDataError(f"{where}: {arg} is empty; give the covariates, e.g. {short_example!r}.")
        return rhs, {}, "~ " + rhs
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(m, str) for m in spec):
        aliases = {m: f"{prefix}{i}" for i, m in enumerate(dict.fromkeys(spec))}
        return " + ".join(aliases.values()), aliases, "~ " + " + ".join(aliases)
    raise ScaleupDataError(
        f"{where}: argument {arg!r} must be the covariates as a formula string (e.g. {short_example!r}) "
        f"or a list of column names (e.g. {list_example!r}); got {spec!r}."
    )


def unaliased(name: str, aliases: dict) -> str:
    """A design column name with each alias replaced by its column's name (``_sa_cov1[T.b]`` -> ``x[T.b]``)."""
    for column, alias in sorted(aliases.items(), key=lambda kv: -len(kv[1])):
        name = re.sub(rf"{alias}(?!\d)", lambda _m, c=column: c, name)
    return name


def aliased_frame(data: pd.DataFrame, aliases: dict) -> pd.DataFrame:
    """The covariate columns of ``data`` under their aliases (the frame patsy reads), or ``data``
    itself for a formula string."""
    return data[list(aliases)].set_axis(list(aliases.values()), axis=1) if aliases else data
