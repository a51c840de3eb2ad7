"""Helpers shared by the step modules: the primary indicator, counts in words."""

from __future__ import annotations

from ..narrative import PERIOD_WORDS, Text
from ..study import Study
from ._section import NotApplicable

__all__ = ["primary_indicator", "site_period_word", "measurement_word", "period_words", "hidden_note", "named_list"]



def period_words(tx: Text, study: Study) -> dict[str, str]:
    """``{"unit": "quarter", "units": "quarters", "Unit": "Quarter"}`` in the report's language."""
    one, many = PERIOD_WORDS[study.settings.period_unit]
    unit, units = tx(one), tx(many)
    return {"unit": unit, "units": units, "Unit": unit[:1].upper() + unit[1:]}


def primary_indicator(study: Study) -> tuple[str, str]:
    """The primary indicator's code and label, or :class:`NotApplicable` when there is none."""
    tx = Text(study.settings.language)
    code = study.settings.primary_indicator
    if code is None or not study.has("outcomes"):
        raise NotApplicable(tx("the study has no indicator to estimate the effect on."),
                            tx("an indicators table and an outcomes table with at least one indicator."))
    if not (study.tables["outcomes"]["indicator_id"] == code).any():
        raise NotApplicable(tx("the outcomes table has no row for the primary indicator {code}.", code=code),
                            tx("outcomes of {code} by site and period, or another [indicators] primary in "
                               "study.toml.", code=code))
    return code, study.indicator_label(code)


def site_period_word(tx: Text, n: int, study: Study) -> str:
    """``"42 site-quarters"`` (``"1 site-quarter"``)."""
    return tx.n("{n} site-{unit}", "{n} site-{units}", n, **{k: v for k, v in period_words(tx, study).items()
                                                                if k != "Unit"})


def measurement_word(tx: Text, unit: str) -> str:
    """The word after a difference of means: the indicator's unit (``CAD``), or "points" for scores.

    >>> measurement_word(Text("en"), "score 0-10"), measurement_word(Text("en"), "CAD")
    ('points', 'CAD')
    """
    return tx("points") if unit.strip().lower().startswith(("score", "points")) else unit


def hidden_note(tx: Text, figure: str, n: int, threshold: int) -> str:
    """What the report says about the values a figure leaves out, as its saved table does."""
    return tx.n("{figure}: {n} value is not drawn, as it is based on fewer than {k} people or would reveal such a "
                "value (small-cell rule).", "{figure}: {n} values are not drawn, as they are based on fewer than {k} "
                "people or would reveal such values (small-cell rule).", int(n), figure=figure, k=tx.int(threshold))


def named_list(tx: Text, names: list, most: int) -> str:
    """The names joined for a sentence ("a, b and c"), at most ``most`` of them ("a, b and 3 more")."""
    names = [str(n) for n in names]
    if len(names) > most:
        return tx("{list} and {k} more", list=", ".join(names[:most]), k=len(names) - most)
    return tx.join(names)
