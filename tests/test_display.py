"""Results that read well: every public result class, built from the small examples of
``result_examples.py``, has

* a short ``repr``: one line of at most 400 characters with the key numbers, no embedded table,
  no ``np.float64(...)``;
* ``summary()`` returning text (never a DataFrame: the table form is ``to_frame()``), in English
  and in French (``summary(language="fr")``), the French one with no English catalogue message
  left in it, and in the language set with ``sa.set_language`` when none is given;
* ``_repr_html_()`` for Jupyter (HTML with the summary).
"""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from result_examples import BUILDERS, built

import scaleup_analysis as sa
from scaleup_analysis._display import MAX_REPR, Displayed
from scaleup_analysis.i18n import _catalogue

CLASSES = sorted(BUILDERS)


@pytest.mark.parametrize("cname", CLASSES)
def test_result_is_displayed(cname):
    assert isinstance(built(cname), Displayed), f"sa.{cname} does not derive from _display.Displayed"


@pytest.mark.parametrize("cname", CLASSES)
def test_repr_is_short(cname):
    text = repr(built(cname))
    assert "\n" not in text, f"repr(sa.{cname}) has several lines:\n{text}"
    assert len(text) <= MAX_REPR, f"repr(sa.{cname}) is {len(text)} characters:\n{text}"
    assert text.startswith(f"{cname}("), text
    for bad in ("np.float64", "np.int64", "DataFrame", "dtype", "Series("):
        assert bad not in text, f"repr(sa.{cname}) contains {bad!r}: {text}"


@lru_cache(maxsize=1)
def _english_phrases() -> dict[str, str]:
    """English messages of several words whose French translation differs."""
    out = {}
    for k, v in _catalogue("fr").items():
        if isinstance(v, str) and v != k and len(re.findall(r"[A-Za-z]{2,}", k)) >= 2 and "{" not in k:
            out[k] = v
    return out


@pytest.mark.parametrize("cname", CLASSES)
def test_summary_is_text_in_both_languages(cname):
    res = built(cname)
    en = res.summary(language="en")
    fr = res.summary(language="fr")
    for lang, text in (("en", en), ("fr", fr)):
        assert isinstance(text, str) and text.strip(), f"sa.{cname}.summary(language={lang!r}) is {type(text)}"
    assert en != fr, f"sa.{cname}.summary() is the same in French and English"
    left = [k for k in _english_phrases() if re.search(rf"(?<![A-Za-z]){re.escape(k)}(?![A-Za-z])", fr)]
    assert not left, f"sa.{cname}.summary(language='fr') contains English messages: {left}"


@pytest.mark.parametrize("cname", CLASSES)
def test_summary_follows_set_language(cname):
    res = built(cname)
    sa.set_language("fr")
    try:
        assert res.summary() == res.summary(language="fr")
    finally:
        sa.set_language("en")
    assert res.summary() == res.summary(language="en")


@pytest.mark.parametrize("cname", CLASSES)
def test_html_display(cname):
    html = built(cname)._repr_html_()
    assert isinstance(html, str) and html.startswith("<div"), html[:80]


def test_set_language_rejects_unknown():
    with pytest.raises(ValueError, match="unknown language 'de'"):
        sa.set_language("de")
