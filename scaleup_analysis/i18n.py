"""Message catalogues of the reports: French and English, in gettext ``.po`` files read with Babel.

Every piece of report text is an English message (``msgid``) written in the code as the first
argument of ``tx(...)`` (a :class:`~scaleup_analysis.narrative.Text`), of ``tx.n(singular, plural,
count)`` or of ``N_(...)`` (a marker for text defined at module level, translated when shown). The
French translations live in ``scaleup_analysis/locale/fr.po`` (a standard gettext catalogue that
translators can edit with Poedit or any text editor); English is the identity. Messages use
``{name}`` placeholders, filled in after translation, so a translation may reorder them.

``python -m scaleup_analysis.i18n`` extracts every message of the package (by reading the source
with :mod:`ast`, so only string literals count) into ``locale/messages.pot`` and merges it into
``locale/fr.po`` (new messages are added untranslated, vanished ones are removed);
``tests/test_i18n.py`` fails when a message has no French translation or a translation does not use
the same placeholders.
"""

from __future__ import annotations

import ast
import io
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ._atomic import atomic_write
from .errors import ScaleupDataError

__all__ = ["LANGUAGES", "N_", "gettext", "ngettext", "get_language", "set_language", "extract_messages",
           "update_catalogue"]

#: Report languages; the first is the default of the embedded Quebec study.
LANGUAGES = ("fr", "en")

_DOMAIN = "scaleup_analysis"
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[:!][^}]*)?\}(?!\})")


_CURRENT = {"language": "en"}


def set_language(language: str) -> None:
    """Choose the language of the text the library writes: summaries, figure labels and legends.

    Reports choose theirs from the study (``language`` in ``study.toml``); this sets the language
    of results and figures made directly from Python (English until set).

    Parameters
    ----------
    language : {"fr", "en"}

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sa.set_language("fr"); sa.get_language()
    'fr'
    >>> sa.set_language("en")
    """
    if language not in LANGUAGES:
        raise ScaleupDataError(f"set_language: unknown language {language!r}; use one of {', '.join(LANGUAGES)}.")
    _CURRENT["language"] = language


def get_language() -> str:
    """The language set with :func:`set_language` (``"en"`` until set)."""
    return _CURRENT["language"]


def N_(message: str) -> str:
    """Mark a module-level text for extraction; it is translated where it is shown."""
    return message


@lru_cache(maxsize=None)
def _catalogue(lang: str) -> dict:
    """msgid (str, or the singular of a plural message) -> msgstr (str, or a tuple of forms)."""
    if lang == "en":
        return {}
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}; use one of {', '.join(LANGUAGES)}")
    from babel.messages.pofile import read_po

    text = (resources.files("scaleup_analysis") / "locale" / f"{lang}.po").read_bytes()
    catalog = read_po(io.BytesIO(text), locale=lang, domain=_DOMAIN)
    out = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
        value = tuple(message.string) if isinstance(message.string, (list, tuple)) else message.string
        if value and (not isinstance(value, tuple) or all(value)):
            out[key] = value
    return out


def gettext(message: str, lang: str) -> str:
    """``message`` in ``lang`` (the message itself when no translation exists)."""
    found = _catalogue(lang).get(message)
    return found if isinstance(found, str) else message


def ngettext(singular: str, plural: str, count: int, lang: str) -> str:
    """The singular or plural form of a message for ``count`` in ``lang``."""
    found = _catalogue(lang).get(singular)
    if isinstance(found, tuple) and len(found) >= 2:
        # French (and English) plural rule of the catalogues: n > 1 is plural in French, n != 1 in English
        return found[1] if (count > 1 if lang == "fr" else count != 1) else found[0]
    return singular if int(count) == 1 else plural


# ----------------------------------------------------------------------------------------------
# extraction
# ----------------------------------------------------------------------------------------------


def _callee(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        inner = f.value
        base = inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", "")
        return f"{base}.{f.attr}"
    return ""


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def extract_messages(root: Path | None = None) -> tuple[dict, list[str]]:
    """Every message of the package's source: ``({msgid or (singular, plural): [locations]}, errors)``.

    A message is the literal first argument of ``tx(...)``, ``*.tx(...)`` or ``N_(...)``, or the two
    literal first arguments of ``tx.n(...)``. ``tx(name)`` translates a text marked elsewhere with
    ``N_``; a message built in place (an f-string, a concatenation, a call) is reported in ``errors``:
    its text could not be translated.
    """
    root = Path(__file__).resolve().parent if root is None else Path(root)
    found: dict = {}
    errors: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "notebooks" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root.parent).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _callee(node)
            if name == "self" and path.name == "narrative.py":  # Text's own messages: self("...")
                name = "tx"
            where = f"{rel}:{node.lineno}"
            if name in ("tx", "N_") or name.endswith(".tx"):
                msg = _literal(node.args[0])
                if msg is None:
                    # tx(word) translates a text marked elsewhere with N_(); built text cannot be translated
                    if name == "N_" or isinstance(node.args[0], (ast.JoinedStr, ast.BinOp, ast.Call)):
                        errors.append(f"{where}: {name}() needs a string literal as its message")
                    continue
                found.setdefault(msg, []).append(where)
            elif name.endswith("tx.n") or name == "tx.n" or (name == "self.n" and path.name == "narrative.py"):
                if len(node.args) < 2 or _literal(node.args[0]) is None or _literal(node.args[1]) is None:
                    errors.append(f"{where}: tx.n() needs two string literals (singular, plural)")
                    continue
                found.setdefault((_literal(node.args[0]), _literal(node.args[1])), []).append(where)
    _instrument_messages(root, found)
    return found, errors


def _instrument_messages(root: Path, found: dict) -> None:
    """Domain labels and readiness categories of the shipped instruments are report text too."""
    import yaml

    for path in sorted((root / "instruments").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        where = path.relative_to(root.parent).as_posix()
        labels = [d.get("label") for d in spec.get("domains", [])]
        labels += [c.get("label") for c in (spec.get("thresholds") or {}).get("categories", [])]
        for label in labels:
            if isinstance(label, str) and label:
                found.setdefault(label, []).append(f"{where}:1")


def placeholders(message: str) -> set[str]:
    """The ``{name}`` placeholders of a message."""
    return set(_PLACEHOLDER.findall(message))


def _write_po(path: Path, catalog, **options) -> None:
    from babel.messages.pofile import write_po

    with open(path, "wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, **options)


def update_catalogue(root: Path | None = None) -> tuple[int, int]:
    """Write ``locale/messages.pot`` and merge it into ``locale/fr.po``; returns (added, removed)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent if root is None else Path(root)
    messages, errors = extract_messages(root)
    if errors:
        raise SystemExit("cannot extract:\n" + "\n".join(errors))
    template = Catalog(domain=_DOMAIN, project="scaleup_analysis", fuzzy=False)
    for msgid, where in messages.items():
        template.add(msgid, locations=[(w.rsplit(":", 1)[0], int(w.rsplit(":", 1)[1])) for w in where[:3]],
                     flags=("python-brace-format",))
    locale = root / "locale"
    locale.mkdir(exist_ok=True)
    atomic_write(locale / "messages.pot", lambda tmp: _write_po(tmp, template, omit_header=False))
    po = locale / "fr.po"
    if po.exists():
        with open(po, "rb") as fh:
            fr = read_po(fh, locale="fr", domain=_DOMAIN)
    else:
        fr = Catalog(locale="fr", domain=_DOMAIN, project="scaleup_analysis", fuzzy=False)
    before = {m.id if isinstance(m.id, str) else m.id[0] for m in fr if m.id}
    fr.update(template, no_fuzzy_matching=True)
    fr.obsolete.clear()
    after = {m.id if isinstance(m.id, str) else m.id[0] for m in fr if m.id}
    atomic_write(po, lambda tmp: _write_po(tmp, fr, ignore_obsolete=True))
    _catalogue.cache_clear()
    return len(after - before), len(before - after)


if __name__ == "__main__":  # pragma: no cover - maintenance command
    import sys

    added, removed = update_catalogue()
    sys.stdout.write(f"locale/fr.po: {added} new message(s) to translate, {removed} removed\n")
