"""How result objects show themselves (internal): short ``repr``, text ``summary()``, HTML in Jupyter.

Every public result class derives from :class:`Displayed` (declared ``@dataclass(repr=False)`` so
that the dataclass does not replace the ``repr``) and defines two methods:

``_repr_fields(self) -> dict``
    The key numbers, by attribute name (``{"k": 12, "estimate": 0.56, "ci": (0.43, 0.68)}``): the
    ``repr`` is ``ClassName(k=12, estimate=0.56, ci=[0.43, 0.68])``, one screen at most, numbers to
    four significant digits, never a table.
``_summary(self, tx) -> str``
    The text summary, written with ``tx`` (a :class:`scaleup_analysis.narrative.Text`): every label
    a catalogue message ``tx("...")``, every number formatted by ``tx`` (decimal comma in French).

and inherits ``summary(*, language=None)`` (text, in the language given or the one set with
:func:`scaleup_analysis.set_language`) and ``_repr_html_`` (the summary and the head of
``to_frame()`` when the class has one). ``tests/test_display.py`` checks every public result class.
"""

from __future__ import annotations

import html
import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

__all__ = ["Displayed", "short_value", "text_table", "num_cell", "p_cell"]

#: Longest repr accepted (characters); ``tests/test_display.py`` holds every class to it.
MAX_REPR = 400
_HTML_ROWS = 20


def short_value(value) -> str:
    """A value as it appears in a ``repr``: four significant digits, intervals as ``[low, high]``."""
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.4g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, pd.DataFrame):
        return f"<{value.shape[0]} x {value.shape[1]} table>"
    if isinstance(value, pd.Series):
        return f"<{len(value)} values>"
    if isinstance(value, (tuple, list)):
        items = [short_value(v) for v in value[:6]]
        more = ", ..." if len(value) > 6 else ""
        return "[" + ", ".join(items) + more + "]"
    return repr(value)


class Displayed:
    """Mixin of the result classes: short ``repr``, ``summary(language=)`` and ``_repr_html_``."""

    __slots__ = ()

    def _repr_fields(self) -> dict:  # pragma: no cover - every result class defines it
        raise NotImplementedError

    def _summary(self, tx) -> str:  # pragma: no cover - every result class defines it
        raise NotImplementedError

    def summary(self, *, language: str | None = None) -> str:
        """The result as text, in ``language`` (``"fr"`` or ``"en"``; default: the one set with
        :func:`scaleup_analysis.set_language`)."""
        from .narrative import Text

        return self._summary(Text(language))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={short_value(v)}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({fields})"

    def _repr_html_(self) -> str:
        from .narrative import Text

        tx = Text()
        parts = [f'<div class="scaleup-result"><pre style="white-space: pre-wrap">'
                 f"{html.escape(self._summary(tx))}</pre>"]
        frame = _frame_of(self)
        if frame is not None and len(frame):
            head = frame.head(_HTML_ROWS)
            parts.append(head.to_html(index=False, na_rep="", border=0, float_format=lambda x: f"{x:.4g}"))
            if len(frame) > _HTML_ROWS:
                more = tx.n("{n} more row: see to_frame()", "{n} more rows: see to_frame()",
                            len(frame) - _HTML_ROWS)
                parts.append(f"<p>{html.escape(more)}</p>")
        parts.append("</div>")
        return "".join(parts)


def _frame_of(result) -> pd.DataFrame | None:
    to_frame = getattr(result, "to_frame", None)
    if to_frame is None:
        return None
    try:
        frame = to_frame()
    except TypeError:  # to_frame needs an argument
        return None
    return frame if isinstance(frame, pd.DataFrame) else None


# ----------------------------------------------------------------------------------------------
# cells and aligned tables of the text summaries
# ----------------------------------------------------------------------------------------------
def text_table(header, rows, indent: str = "  ", left=(0,)) -> str:
    """Text cells in aligned columns: the columns whose index is in ``left`` left-aligned, the others
    right-aligned (every cell already formatted, e.g. by ``Text.num``)."""
    table = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join((indent + "  ".join(c.ljust(w) if j in left else c.rjust(w)
                                         for j, (c, w) in enumerate(zip(r, widths)))).rstrip() for r in table)


def num_cell(tx, value, digits: int = 4) -> str:
    """A number as a table cell in the reader's language (``-`` when missing or infinite)."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    return tx.num(value, digits)


def p_cell(tx, p) -> str:
    """A p-value as a table cell: ``0.031``, ``< 0.001`` (decimal comma in French)."""
    if p is None or not math.isfinite(float(p)):
        return "-"
    text = tx.pvalue(p)
    return text[4:] if text.startswith("p = ") else text[2:]
