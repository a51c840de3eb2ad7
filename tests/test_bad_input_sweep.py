"""Every public function against every category of bad input (the sweep of ``bad_sweep.py``).

For each (function, category) the outcome written in ``bad_sweep.TARGETS`` must be what happens, and
whatever happens:

* no raw Python exception, and no warning other than the package's own (no numpy ``RuntimeWarning``,
  no pandas or matplotlib warning) reaches the caller;
* an error is a ``ScaleupDataError`` whose message names what was damaged: the argument (wrong
  type), the absence of rows (empty), the damaged column (constant, NaN, inf, extreme magnitudes,
  mixed types) or the duplicated name;
* a result without a warning has no more NaN in its numbers than the result on the valid input.

``docs/bad_inputs.md`` shows the matrix (generated with the rest of the catalogue).
"""

from __future__ import annotations

import inspect
import re

import pytest
from bad_sweep import CATEGORIES, NO_TABLE, TARGETS, baseline_nan, damage, observe

import scaleup_analysis as sa

CASES = [(t, c) for t in TARGETS for c in t.categories()]


def test_every_public_function_is_in_the_sweep():
    functions = {n for n in sa.__all__ if inspect.isfunction(getattr(sa, n))}
    swept = [t.function for t in TARGETS] + [n.function for n in NO_TABLE]
    assert len(swept) == len(set(swept)), "a function is listed twice"
    assert set(swept) == functions, (
        f"not in the sweep: {sorted(functions - set(swept))}; not public: {sorted(set(swept) - functions)}"
    )


def test_every_category_is_decided_for_every_table_function():
    for t in TARGETS:
        assert set(t.expect) | set(t.not_applicable) == set(CATEGORIES), t.function
        assert all(kind in ("error", "warning", "result") for kind in t.expect.values()), t.function


def _names_what_was_damaged(target, category: str, message: str) -> bool:
    if category == "wrong_type" or target.argument == "values":  # values: a series, named by its argument
        return re.search(rf"\b{target.argument}\b", message) is not None
    if category == "empty":
        return any(words in message for words in ("no rows", "0 row", "empty"))
    if category == "one_unit":
        return True  # the function's own reason (one study, one site, one rater ...); checked case by case above
    if category == "duplicated_column":
        return "duplicated column name(s)" in message
    column = (target.mixed or target.key) if category == "mixed_types" else target.value
    # 'size', sites.size or sp__y__y: the name as a word of its own
    return re.search(rf"(?<![\w']){re.escape(column)}(?![\w'])", message) is not None or repr(column) in message


@pytest.mark.parametrize("target,category", CASES, ids=[f"{t.function}-{c}" for t, c in CASES])
def test_sweep(target, category):
    seen = observe(target.call, damage(target, category))
    assert seen.kind != "raw", f"raw exception: {seen.message}"
    assert not seen.foreign_warnings, f"warnings that are not the package's own: {seen.foreign_warnings}"
    assert seen.kind == target.expect[category], f"expected {target.expect[category]}, got {seen.kind}: {seen.message}"
    if seen.kind == "error":
        assert _names_what_was_damaged(target, category, seen.message), seen.message
    if seen.kind == "result" and seen.nan is not None and not target.passthrough:
        assert seen.nan <= (baseline_nan(target.function) or 0), (
            f"{seen.nan} NaN in the result against {baseline_nan(target.function)} on the valid input, and no warning"
        )


@pytest.mark.parametrize("entry", [n for n in NO_TABLE if n.call is not None], ids=lambda n: n.function)
def test_wrong_type_of_functions_without_a_table(entry):
    seen = observe(lambda _: entry.call(), None)
    assert seen.kind == "error", f"expected a ScaleupDataError, got {seen.kind}: {seen.message}"
    assert not seen.foreign_warnings
    missing = [f for f in entry.fragments if f not in seen.message]
    assert not missing, f"message lacks {missing}:\n{seen.message}"
