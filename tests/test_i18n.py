"""Message catalogues: every report text has its French translation, with the same placeholders.

The English catalogue is the source itself (the ``msgid``); the French one is
``scaleup_analysis/locale/fr.po``. ``python -m scaleup_analysis.i18n`` re-extracts the messages and
merges them into the catalogue; these tests fail when the source and the catalogue drift apart.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import scaleup_analysis as sa
from scaleup_analysis.i18n import extract_messages, gettext, ngettext, placeholders
from scaleup_analysis.narrative import NBSP, NNBSP, Text
from scaleup_analysis.steps import SECTIONS, StepReport

LOCALE = Path(sa.__file__).parent / "locale"


def _catalogue():
    return read_po(io.BytesIO((LOCALE / "fr.po").read_bytes()), locale="fr", domain="scaleup_analysis")


def test_every_message_is_a_literal():
    _, errors = extract_messages()
    assert not errors, "\n".join(errors)


def test_every_message_has_a_french_translation_with_the_same_placeholders():
    messages, _ = extract_messages()
    cat = _catalogue()
    by_id = {(m.id if isinstance(m.id, str) else tuple(m.id)): m for m in cat if m.id}
    missing = [k for k in messages if k not in by_id]
    assert not missing, f"not in locale/fr.po (run python -m scaleup_analysis.i18n): {missing[:10]}"
    obsolete = [k for k in by_id if k not in messages]
    assert not obsolete, f"locale/fr.po holds messages the code no longer uses: {obsolete[:10]}"
    problems = []
    for key, m in by_id.items():
        if m.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        forms = [m.string] if isinstance(key, str) else list(m.string)
        if not all(forms):
            problems.append(f"untranslated: {key!r}")
            continue
        source = [key] if isinstance(key, str) else [key[0], key[1]]
        for src, tr in zip(source, forms):
            # a plural form may leave out {n} (e.g. "the one site"), never add or lose another value
            if placeholders(tr) - {"n"} != placeholders(src) - {"n"}:
                problems.append(f"placeholders differ: {src!r} -> {tr!r}")
    assert not problems, "\n".join(problems[:20])


def test_template_is_up_to_date():
    messages, _ = extract_messages()
    pot = read_po(io.BytesIO((LOCALE / "messages.pot").read_bytes()))
    ids = {(m.id if isinstance(m.id, str) else tuple(m.id)) for m in pot if m.id}
    assert ids == set(messages)


def test_lookup_and_plural_rules():
    assert gettext("Key figures", "fr") == "Chiffres clés"
    assert gettext("Key figures", "en") == "Key figures"
    # French: 0 and 1 are singular; English: 1 is singular
    assert ngettext("{n} site", "{n} sites", 0, "fr") == "{n} site"
    assert ngettext("{n} site", "{n} sites", 0, "en") == "{n} sites"
    assert ngettext("{n} region", "{n} regions", 2, "fr") == "{n} régions"
    with pytest.raises(ValueError, match="unknown report language"):
        Text("de")


def test_french_typography():
    fr = Text("fr")
    assert fr.num(12345.678, 1) == f"12{NNBSP}345,7"
    assert fr.pct(0.583) == f"58{NNBSP}%"
    assert fr.ci(0.5612, 0.4301, 0.6815) == f"0,56 (IC à 95{NNBSP}%{NBSP}: 0,43 à 0,68)"
    assert fr.pvalue(0.0004) == "p < 0,001"
    assert fr.join(["a", "b", "c"]) == "a, b et c"
    assert Text("en").ci(0.5612, 0.4301, 0.6815) == "0.56 (95% CI 0.43 to 0.68)"


#: English words that would betray untranslated text in French findings (data labels of the test
#: study are French or codes, so none of these comes from the data).
ENGLISH = re.compile(r"\b(the|and|with|were|was|which|than|between|after|before|per|only)\b")


def test_french_report_sections_are_in_french():
    study = sa.load_study(Path(__file__).parent / "studies" / "small_study", language="fr")
    texts = []
    for step in range(1, 6):
        rep = StepReport(study, step, display=False)
        for (s, key) in SECTIONS:
            if s != step or key.startswith("test"):
                continue
            sec = rep.run(key)
            texts += [sec.title, sec.reason, sec.needs]
            if sec.output is not None:
                texts += [*sec.output.findings, *sec.output.notes, sec.output.headline, *sec.output.certainty,
                          *(k for k, _ in sec.output.key_figures)]
        texts += list(study.statements())
    # the test study's own labels are English data ("Patients with controlled HbA1c"): leave them out
    labels = [study.indicator_label(c) for c in study.tables["indicators"]["indicator_id"]]
    labels += list(study.tables["components"]["name"]) + list(study.tables["sites"]["site_id"])
    labels += [study.settings.name, study.settings.innovation, study.settings.evidence_measure,
               study.settings.evidence_source]
    leaks = []
    for t in texts:
        for label in labels:
            t = t.replace(label, "")
        if ENGLISH.search(t):
            leaks.append(t)
    assert not leaks, leaks[:5]
