"""Narratives: sentences generated from the results of a run, with the thresholds they use.

Every interpretive sentence of a report is built here or in :mod:`scaleup_analysis.steps` from the
numbers of that run, never written as fixed text. :class:`Text` is the one door through which report
text passes: it translates a message through the catalogues of :mod:`scaleup_analysis.i18n` (French
and English) and formats numbers, intervals, p-values, lists and plurals with the typography of the
language (French: decimal comma, thin spaces before ``%`` and between thousands, ``IC à 95 %``).
``THRESHOLDS`` lists every threshold a sentence uses to turn a number into words, with its source;
the reports print the ones they used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .i18n import LANGUAGES, N_, get_language, gettext, ngettext

__all__ = ["Text", "Threshold", "THRESHOLDS", "interpret", "PERIOD_WORDS"]

#: What a period is (``[periods] unit`` of the study file): singular and plural messages.
PERIOD_WORDS = {
    "quarter": (N_("quarter"), N_("quarters")),
    "month": (N_("month"), N_("months")),
    "year": (N_("year"), N_("years")),
    "period": (N_("period"), N_("periods")),
}

#: Narrow no-break space: French thousands separator and space before ``%`` (typographic thin space).
NNBSP = "\u202f"
#: No-break space: French space before ``:``.
NBSP = "\u00a0"


class Text:
    """Language-aware text: translation of a message, then formatting of its values.

    Parameters
    ----------
    lang : str, optional
        Language of the report: ``"fr"`` or ``"en"`` (default: the one set with
        :func:`scaleup_analysis.set_language`).

    Examples
    --------
    >>> from scaleup_analysis.narrative import Text
    >>> tx = Text("en")
    >>> tx.ci(0.5612, 0.4301, 0.6815), tx.pct(0.583), tx.int(12345)
    ('0.56 (95% CI 0.43 to 0.68)', '58%', '12,345')
    >>> fr = Text("fr")
    >>> fr.ci(0.5612, 0.4301, 0.6815) == "0,56 (IC à 95\\u202f%\\u00a0: 0,43 à 0,68)"
    True
    >>> fr.int(12345) == "12\\u202f345", fr.pvalue(0.0312)
    (True, 'p = 0,031')
    >>> tx.n("{n} site", "{n} sites", 1), tx.n("{n} site", "{n} sites", 12)
    ('1 site', '12 sites')
    >>> tx.join(["Estrie (05)", "Laval (13)", "Montréal (06)"]), fr.join(["Estrie (05)", "Laval (13)"])
    ('Estrie (05), Laval (13) and Montréal (06)', 'Estrie (05) et Laval (13)')
    """

    def __init__(self, lang: str | None = None) -> None:
        lang = get_language() if lang is None else lang
        if lang not in LANGUAGES:
            raise ValueError(f"unknown report language {lang!r}; use one of {', '.join(LANGUAGES)}")
        self.lang = lang

    # -- messages ------------------------------------------------------------------------------
    def __call__(self, msgid: str, /, **values) -> str:
        """Translate the message ``msgid`` and fill in its ``{placeholders}``."""
        text = gettext(msgid, self.lang)
        return text.format(**values) if values else text

    def n(self, singular: str, plural: str, count: int, /, **values) -> str:
        """The singular or plural message for ``count`` (available as ``{n}``)."""
        return ngettext(singular, plural, int(count), self.lang).format(n=self.int(count), **values)

    def semicolons(self, items: Sequence[str]) -> str:
        """Items separated by semicolons."""
        return "; ".join(items)

    # -- numbers -------------------------------------------------------------------------------
    def _localise(self, text: str) -> str:
        if self.lang == "fr":
            return text.replace(",", NNBSP).replace(".", ",")
        return text

    def int(self, value: int) -> str:
        """A whole number with thousands separators: ``12,345`` / ``12 345``."""
        return self._localise(f"{int(value):,}")

    def num(self, value: float, digits: int = 2) -> str:
        """A number with ``digits`` decimals (never scientific notation); ``-0.00`` is ``0.00``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self("not estimable")
        if math.isinf(value):
            return self("infinite") if value > 0 else self("minus infinity")
        text = f"{value:,.{digits}f}"
        if text.lstrip("-").strip("0.,") == "":
            text = text.lstrip("-")
        return self._localise(text)

    def signed(self, value: float, digits: int = 2) -> str:
        """A number with its sign: ``+0.40``, ``-1.38``."""
        text = self.num(value, digits)
        return text if text.startswith("-") or text.strip("0.,") == "" else "+" + text

    def pct(self, value: float, digits: int = 0) -> str:
        """A proportion as a percentage: ``0.583`` -> ``58%`` (``58 %`` in French)."""
        return self.num(100 * value, digits) + (NNBSP + "%" if self.lang == "fr" else "%")

    def interval(self, low: float, high: float, digits: int | None = None) -> str:
        """``0.43 to 0.68`` / ``0,43 à 0,68``."""
        d = self.digits_for(low, high) if digits is None else digits
        return self("{low} to {high}", low=self.num(low, d), high=self.num(high, d))

    def ci(self, estimate: float, low: float, high: float, digits: int | None = None,
           level: float = 0.95) -> str:
        """An estimate with its confidence interval: ``0.56 (95% CI 0.43 to 0.68)``.

        With ``digits=None`` the number of decimals is chosen so that no bound of the interval
        is shown as a misleading 0.00 (see :meth:`digits_for`).
        """
        d = self.digits_for(estimate, low, high) if digits is None else digits
        return self("{estimate} ({level} CI {low} to {high})", estimate=self.num(estimate, d),
                    level=self.pct(level), low=self.num(low, d), high=self.num(high, d))

    @staticmethod
    def digits_for(*values: float, minimum: int = 2, maximum: int = 4) -> int:
        """Decimals (``minimum`` to ``maximum``) such that no non-zero value is shown as zero.

        >>> Text.digits_for(0.56, 0.43, 0.68), Text.digits_for(-0.40, -0.81, 0.0065)
        (2, 2)
        >>> Text.digits_for(-0.0123, -0.0244, -0.0001)
        4
        """
        finite = [abs(float(v)) for v in values if v is not None and np.isfinite(v) and v != 0]
        digits = minimum
        while digits < maximum and any(round(v, digits) == 0 for v in finite):
            digits += 1
        return digits

    def pvalue(self, p: float) -> str:
        """``p = 0.031``, ``p < 0.001``."""
        if p is None or math.isnan(p):
            return self("p not available")
        if p < 0.001:
            return "p < " + self.num(0.001, 3)
        return "p = " + (self.num(p, 3) if p < 0.1 else self.num(p, 2))

    def join(self, items: Sequence[str] | Iterable[str]) -> str:
        """``a``, ``a and b``, ``a, b and c`` (``et`` in French)."""
        items = list(items)
        if not items:
            return ""
        if len(items) == 1:
            return items[0]
        return self("{items} and {last}", items=", ".join(items[:-1]), last=items[-1])

    def colon(self) -> str:
        """``:`` with the space French typography puts before it."""
        return NBSP + ":" if self.lang == "fr" else ":"


@dataclass(frozen=True)
class Threshold:
    """A threshold that turns a number into words, with where it comes from (words are messages)."""

    key: str
    what: str
    cuts: tuple[float, ...]
    words: tuple[str, ...]
    source: str

    def word(self, value: float, tx: Text | None = None) -> str:
        """The word for ``value``: ``words[i]`` where ``cuts[i-1] <= value < cuts[i]``."""
        tx = tx or Text("en")
        if value is None or math.isnan(value):
            return tx("not estimable")
        for cut, word in zip(self.cuts, self.words):
            if value < cut:
                return tx(word)
        return tx(self.words[-1])

    def describe(self, tx: Text | None = None) -> str:
        """The rule in one line: ``I²: below 25: little heterogeneity; ...``."""
        tx = tx or Text("en")
        parts = []
        lo = None
        for i, word in enumerate(self.words):
            hi = self.cuts[i] if i < len(self.cuts) else None
            if lo is None:
                parts.append(tx("below {hi}: {word}", hi=tx.num(hi, _decimals(hi)), word=tx(word)))
            elif hi is None:
                parts.append(tx("{lo} or more: {word}", lo=tx.num(lo, _decimals(lo)), word=tx(word)))
            else:
                parts.append(tx("{lo} to below {hi}: {word}", lo=tx.num(lo, _decimals(lo)),
                                hi=tx.num(hi, _decimals(hi)), word=tx(word)))
            lo = hi
        return tx("{what}: {rules} ({source}).", what=tx(self.what), rules=tx.semicolons(parts), source=self.source)


def _decimals(x: float) -> int:
    text = f"{x:g}"
    return len(text.split(".")[1]) if "." in text else 0


THRESHOLDS: dict[str, Threshold] = {
    t.key: t
    for t in (
        Threshold("I2", N_("I² (share of the variability of effects due to real differences, %)"),
                  (25.0, 50.0, 75.0), (N_("little heterogeneity"), N_("low heterogeneity"),
                                       N_("moderate heterogeneity"), N_("high heterogeneity")),
                  "Higgins et al. 2003, BMJ 327:557"),
        Threshold("krippendorff", N_("Krippendorff's alpha"), (0.667, 0.8),
                  (N_("not reliable enough to draw conclusions"),
                   N_("reliable enough for tentative conclusions only"), N_("reliable")),
                  "Krippendorff 2004, Content Analysis, 2nd ed., p. 241"),
        Threshold("icc", N_("Intra-class correlation of ratings"), (0.5, 0.75, 0.9),
                  (N_("poor"), N_("moderate"), N_("good"), N_("excellent")), "Koo & Li 2016, J Chiropr Med 15:155"),
        Threshold("fidelity", N_("Fidelity (0-1)"), (0.5, 0.8), (N_("low"), N_("moderate"), N_("high")),
                  "Borrelli 2011, J Public Health Dent 71:S52"),
        Threshold("smd", N_("Standardised mean difference (absolute value)"), (0.2, 0.5, 0.8),
                  (N_("very small"), N_("small"), N_("moderate"), N_("large")), "Cohen 1988"),
    )
}


def interpret(key: str, value: float, tx: Text | None = None) -> str:
    """The word a threshold gives to ``value`` (in the language of ``tx``).

    Examples
    --------
    >>> from scaleup_analysis.narrative import interpret
    >>> interpret("I2", 19.6), interpret("krippendorff", 0.71)
    ('little heterogeneity', 'reliable enough for tentative conclusions only')
    """
    return THRESHOLDS[key].word(value, tx)


def status_word(tx: Text, status: str) -> str:
    """``ran`` / ``skipped`` / ``failed`` / ``not run`` in the report's language."""
    words = {"ran": N_("ran"), "skipped": N_("not run"), "failed": N_("failed"), "not run": N_("not run")}
    word = words.get(status, status)
    return tx(word)
