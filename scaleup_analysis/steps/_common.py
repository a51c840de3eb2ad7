"""Helpers shared by the step modules: the primary indicator, counts in words."""

from __future__ import annotations

from ..narrative import Text
from ..study import Study
from ._section import NotApplicable

__all__ = ["primary_indicator", "site_period_word", "measurement_word"]


def primary_indicator(study: Study) -> tuple[str, str]:
    """The primary indicator's code and label, or :class:`NotApplicable` when there is none."""
    code = study.settings.primary_indicator
    if code is None or not study.has("outcomes"):
        raise NotApplicable("the study has no indicator to estimate the effect on.",
                            "an indicators table and an outcomes table with at least one indicator.")
    if not (study.tables["outcomes"]["indicator_id"] == code).any():
        raise NotApplicable(f"the outcomes table has no row for the primary indicator {code}.",
                            f"outcomes of {code} by site and period, or another [indicators] primary in study.toml.")
    return code, study.indicator_label(code)


def site_period_word(tx: Text, n: int, unit: str) -> str:
    """``"42 site-quarters"`` (``"1 site-quarter"``)."""
    return tx.n("{n} site-{unit}", "{n} site-{unit}s", n, unit=unit)


def measurement_word(tx: Text, unit: str) -> str:
    """The word after a difference of means: the indicator's unit (``CAD``), or "points" for scores.

    >>> measurement_word(Text("en"), "score 0-10"), measurement_word(Text("en"), "CAD")
    ('points', 'CAD')
    """
    return tx("points") if unit.strip().lower().startswith(("score", "points")) else unit
