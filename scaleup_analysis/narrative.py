"""Narratives: sentences generated from the results of a run, with the thresholds they use.

Every interpretive sentence of a report is built here or in :mod:`scaleup_analysis.steps` from the
numbers of that run, never written as fixed text. :class:`Text` formats numbers, intervals,
p-values, lists and plurals for the language of the report and is the one door through which
report text passes (message catalogues plug in here). ``THRESHOLDS`` lists every threshold a
sentence uses to turn a number into words, with its source; the reports print the ones they used.
"""

from __future__ import annotations

import math

import numpy as np
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Text", "Threshold", "THRESHOLDS", "interpret"]


class Text:
    """Language-aware text: translation of a message, then formatting of its values.

    Parameters
    ----------
    lang : str
        Language of the report (``"en"``).

    Examples
    --------
    >>> from scaleup_analysis.narrative import Text
    >>> tx = Text("en")
    >>> tx("The pooled effect is {est}.", est=tx.ci(0.5612, 0.4301, 0.6815))
    'The pooled effect is 0.56 (95% CI 0.43 to 0.68).'
    >>> tx.n("{n} site", "{n} sites", 1), tx.n("{n} site", "{n} sites", 12)
    ('1 site', '12 sites')
    >>> tx.pvalue(0.00004), tx.pvalue(0.0312)
    ('p < 0.001', 'p = 0.031')
    >>> tx.join(["Estrie (05)", "Laval (13)", "Montréal (06)"])
    'Estrie (05), Laval (13) and Montréal (06)'
    """

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang

    # -- messages ------------------------------------------------------------------------------
    def __call__(self, message: str, **values) -> str:
        """Translate ``message`` and fill in its ``{placeholders}``."""
        return message.format(**values) if values else message

    def n(self, singular: str, plural: str, count: int, **values) -> str:
        """The singular or plural message for ``count`` (available as ``{n}``)."""
        message = singular if int(count) == 1 else plural
        return message.format(n=self.int(count), **values)

    # -- numbers -------------------------------------------------------------------------------
    def int(self, value: int) -> str:
        """A whole number with thousands separators: ``12,345``."""
        return f"{int(value):,}"

    def num(self, value: float, digits: int = 2) -> str:
        """A number with ``digits`` decimals (never scientific notation); ``-0.00`` is ``0.00``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "not estimable"
        if math.isinf(value):
            return "infinite" if value > 0 else "minus infinity"
        text = f"{value:,.{digits}f}"
        if text.lstrip("-").strip("0.,") == "":
            text = text.lstrip("-")
        return text

    def signed(self, value: float, digits: int = 2) -> str:
        """A number with its sign: ``+0.40``, ``-1.38``."""
        text = self.num(value, digits)
        return text if text.startswith("-") or text.strip("0.,") == "" else "+" + text

    def pct(self, value: float, digits: int = 0) -> str:
        """A proportion as a percentage: ``0.583`` -> ``58%``."""
        return self.num(100 * value, digits) + "%"

    def interval(self, low: float, high: float, digits: int | None = None) -> str:
        """``0.43 to 0.68``."""
        d = self.digits_for(low, high) if digits is None else digits
        return f"{self.num(low, d)} to {self.num(high, d)}"

    def ci(self, estimate: float, low: float, high: float, digits: int | None = None,
           level: float = 0.95) -> str:
        """An estimate with its confidence interval: ``0.56 (95% CI 0.43 to 0.68)``.

        With ``digits=None`` the number of decimals is chosen so that no bound of the interval
        is shown as a misleading 0.00 (see :meth:`digits_for`).
        """
        d = self.digits_for(estimate, low, high) if digits is None else digits
        return f"{self.num(estimate, d)} ({self.pct(level)} CI {self.interval(low, high, d)})"

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
            return "p not available"
        if p < 0.001:
            return "p < 0.001"
        return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"

    def join(self, items: Sequence[str] | Iterable[str], word: str = "and") -> str:
        """``a``, ``a and b``, ``a, b and c``."""
        items = list(items)
        if not items:
            return ""
        if len(items) == 1:
            return items[0]
        return ", ".join(items[:-1]) + f" {word} " + items[-1]


@dataclass(frozen=True)
class Threshold:
    """A threshold that turns a number into words, with where it comes from."""

    key: str
    what: str
    cuts: tuple[float, ...]
    words: tuple[str, ...]
    source: str

    def word(self, value: float) -> str:
        """The word for ``value``: ``words[i]`` where ``cuts[i-1] <= value < cuts[i]``."""
        if value is None or math.isnan(value):
            return "not estimable"
        for cut, word in zip(self.cuts, self.words):
            if value < cut:
                return word
        return self.words[-1]

    def describe(self) -> str:
        """The rule in one line: ``I2: < 25% low; 25-50% ...``."""
        parts = []
        lo = None
        for i, word in enumerate(self.words):
            hi = self.cuts[i] if i < len(self.cuts) else None
            if lo is None:
                parts.append(f"below {hi:g}: {word}")
            elif hi is None:
                parts.append(f"{lo:g} or more: {word}")
            else:
                parts.append(f"{lo:g} to below {hi:g}: {word}")
            lo = hi
        return f"{self.what}: " + "; ".join(parts) + f" ({self.source})."


THRESHOLDS: dict[str, Threshold] = {
    t.key: t
    for t in (
        Threshold("I2", "I² (share of the variability of effects due to real differences, %)",
                  (25.0, 50.0, 75.0), ("little heterogeneity", "low heterogeneity",
                                       "moderate heterogeneity", "high heterogeneity"),
                  "Higgins et al. 2003, BMJ 327:557"),
        Threshold("krippendorff", "Krippendorff's alpha", (0.667, 0.8),
                  ("not reliable enough to draw conclusions", "reliable enough for tentative conclusions only",
                   "reliable"), "Krippendorff 2004, Content Analysis, 2nd ed., p. 241"),
        Threshold("icc", "Intra-class correlation of ratings", (0.5, 0.75, 0.9),
                  ("poor", "moderate", "good", "excellent"), "Koo & Li 2016, J Chiropr Med 15:155"),
        Threshold("fidelity", "Fidelity (0-1)", (0.5, 0.8), ("low", "moderate", "high"),
                  "Borrelli 2011, J Public Health Dent 71:S52"),
        Threshold("smd", "Standardised mean difference (absolute value)", (0.2, 0.5, 0.8),
                  ("very small", "small", "moderate", "large"), "Cohen 1988"),
    )
}


def interpret(key: str, value: float) -> str:
    """The word a threshold gives to ``value``.

    Examples
    --------
    >>> from scaleup_analysis.narrative import interpret
    >>> interpret("I2", 19.6), interpret("krippendorff", 0.71)
    ('little heterogeneity', 'reliable enough for tentative conclusions only')
    """
    return THRESHOLDS[key].word(value)
