"""Random-effect terms written in a model formula, as lme4: ``y ~ x + (1 + x | site) + (1 | region/site)``.

:func:`split_formula` separates the fixed part of a formula (a patsy formula) from its
parenthesised random-effect terms ``(lhs | group)`` and expands them as lme4 does
(``findbars``, ``expandDoubleVerts``, ``expandSlash``):

* ``(lhs || g)`` (uncorrelated) becomes one term per term of ``lhs``: ``(1 + x || g)`` is
  ``(1 | g) + (0 + x | g)``;
* ``(lhs | a/b)`` (nested) becomes ``(lhs | a) + (lhs | a:b)`` — lme4 writes the interaction ``b:a``
  and lists it first: ``(1 | batch/cask)`` gives ``(1 | cask:batch) + (1 | batch)``;
* ``(lhs | a:b)`` groups by the combinations of ``a`` and ``b`` (levels named ``"a_value:b_value"``).

The grouping factors must be columns of the data (plain names); ``lhs`` is a patsy formula of the
random terms (``1``, ``x``, ``1 + x``, ``0 + x``; an intercept is implied as in R).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ScaleupDataError

__all__ = ["ReTerm", "split_formula", "has_bars"]

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$|^`[^`]+`$")


@dataclass(frozen=True)
class ReTerm:
    """One random-effect term ``(lhs | factors[0]:factors[1]:...)``."""

    lhs: str  # patsy formula of the random design, e.g. "1 + x" or "0 + x"
    factors: tuple[str, ...]  # grouping columns; several: their interaction

    @property
    def group(self) -> str:
        """lme4's name of the grouping factor (``"cask:batch"``)."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        return f"({self.lhs} | {self.group})"


def has_bars(formula: str) -> bool:
    """True when the formula contains a ``|`` (random-effect terms written in the formula)."""
    return isinstance(formula, str) and "|" in formula


def _strip_name(name: str) -> str:
    return name[1:-1] if name.startswith("`") and name.endswith("`") else name


def _top_level_plus(s: str) -> list[str]:
    """Split ``s`` at the ``+`` signs outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "+" and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _bar_spans(rhs: str, formula: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the parenthesised groups of ``rhs`` that contain a bar."""
    spans, stack = [], []
    for i, ch in enumerate(rhs):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            if not stack:
                raise ScaleupDataError(f"mixed_model: unbalanced parentheses in formula {formula!r} (a ')' has no '(').")
            start = stack.pop()
            if not stack and "|" in rhs[start:i + 1]:
                spans.append((start, i + 1))
    if stack:
        raise ScaleupDataError(f"mixed_model: unbalanced parentheses in formula {formula!r} (a '(' is never closed).")
    return spans


def _lhs_terms(lhs: str, term: str, formula: str) -> list[str]:
    """The terms of ``lhs`` for ``||``: ``"1"`` first when there is an intercept, then ``"0 + t"``."""
    import patsy

    try:
        desc = patsy.ModelDesc.from_formula(lhs)
    except patsy.PatsyError as exc:
        raise ScaleupDataError(f"mixed_model: cannot read the random term {term} of {formula!r}: {exc}.") from exc
    names = [t.name() for t in desc.rhs_termlist]
    out = ["1"] if "Intercept" in names else []
    out += [f"0 + {n}" for n in names if n != "Intercept"]
    return out


def _parse_bar(text: str, formula: str) -> list[ReTerm]:
    inner = text[1:-1].strip()
    double = "||" in inner
    pieces = inner.split("||") if double else inner.split("|")
    if len(pieces) != 2:
        raise ScaleupDataError(
            f"mixed_model: the random term {text!r} of {formula!r} must have one bar: "
            "(terms | group), e.g. (1 | site) or (1 + x | site), or (terms || group) for uncorrelated terms."
        )
    lhs, rhs = pieces[0].strip(), pieces[1].strip()
    if not lhs:
        raise ScaleupDataError(
            f"mixed_model: the random term {text!r} of {formula!r} has nothing left of the bar; write "
            "(1 | group) for a random intercept."
        )
    if not rhs:
        raise ScaleupDataError(
            f"mixed_model: the random term {text!r} of {formula!r} names no grouping factor right of the "
            "bar; write e.g. (1 | site)."
        )
    # nesting a/b/c -> a, a:b, a:b:c ; interactions a:b
    levels = [s.strip() for s in rhs.split("/")]
    groups: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for lev in levels:
        raw = [s.strip() for s in lev.split(":")]
        names = tuple(_strip_name(s) for s in raw)
        if not all(_NAME.match(s) for s in raw):
            raise ScaleupDataError(
                f"mixed_model: the grouping factor {rhs!r} of the random term {text!r} in {formula!r} must "
                "be column names joined by ':' (interaction) or '/' (nesting), e.g. (1 | site), "
                "(1 | region/site), (1 | site:period)."
            )
        prefix = names + prefix  # lme4's expandSlash writes a/b as b:a
        groups.append(prefix)
    groups = groups[::-1]  # ... and lists the innermost grouping first
    lhs_list = _lhs_terms(lhs, text, formula) if double else [lhs]
    if not lhs_list:
        raise ScaleupDataError(f"mixed_model: the random term {text!r} of {formula!r} has no random effect.")
    return [ReTerm(lh, g) for g in groups for lh in lhs_list]


def split_formula(formula: str) -> tuple[str, list[ReTerm]]:
    """Split ``"y ~ x + (1 | site)"`` into the fixed formula ``"y ~ x"`` and the random terms.

    Raises :class:`ScaleupDataError` for a malformed term (no grouping factor, empty left side,
    ``|`` outside parentheses, unbalanced parentheses).

    Examples
    --------
    >>> fixed, terms = split_formula("y ~ x + (x || site) + (1 | region/site)")
    >>> fixed, [str(t) for t in terms]
    ('y ~ x', ['(1 | site)', '(0 + x | site)', '(1 | site:region)', '(1 | region)'])
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise ScaleupDataError(
            f"mixed_model: formula must be a formula such as 'y ~ x + (1 | site)', got {formula!r}."
        )
    lhs, rhs = formula.split("~", 1)
    spans = _bar_spans(rhs, formula)
    terms: list[ReTerm] = []
    kept = []
    last = 0
    for a, b in spans:
        kept.append(rhs[last:a])
        terms.extend(_parse_bar(rhs[a:b], formula))
        last = b
    kept.append(rhs[last:])
    fixed_rhs = "".join(kept)
    if "|" in fixed_rhs:
        raise ScaleupDataError(
            f"mixed_model: formula {formula!r} has a '|' outside parentheses; write each random term "
            "in parentheses, e.g. 'y ~ x + (1 | site)'."
        )
    parts = [p for p in _top_level_plus(fixed_rhs) if p]
    fixed = f"{lhs.strip()} ~ {' + '.join(parts) if parts else '1'}"
    return fixed, terms
