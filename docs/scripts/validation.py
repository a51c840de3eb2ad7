"""Compute the validation page of the documentation site from the reference tests.

``make docs`` runs ``python docs/scripts/validation.py --out docs/_generated/validation.md``.

Nothing on the page is written by hand: the script

1. finds the reference fixtures (``tests/reference/<topic>.json``, written by ``ref_<topic>.R``) and
   the R functions each script calls (the ``pkg::fn`` names in it, e.g. ``metafor::rma.uni``);
2. finds the test modules that load them (``load_reference("<topic>")``) and, in those modules, the
   tests that use a fixture (their code, or the code of the fixtures and helpers they use, names a
   fixture); the public functions ``sa.<name>`` a test calls are read from the same code;
3. runs those tests (pytest, in this process) with every numeric comparison recorded:
   ``numpy.testing.assert_allclose`` and ``pytest.approx`` report the value the package computed,
   the reference value and the tolerance the test asserts;
4. keeps the comparisons whose reference values are values of a fixture (verbatim, so a hand-made
   expected value is not mistaken for R's) and writes, per fixture and per public function, the
   number of values compared and the largest relative deviation ``|ours - R| / |R|`` (for reference
   values that are exactly 0, the largest absolute deviation), with the test where it occurs and the
   tolerance asserted there.

A failing reference test fails the script (and so ``make docs``). Runs in well under a minute.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
REFERENCE = TESTS / "reference"


# --------------------------------------------------------------------------------------------------
# 1. fixtures and their R scripts
# --------------------------------------------------------------------------------------------------
def _floats(obj, out: set[float]) -> set[float]:
    """Every non-integer float of a JSON document (the distinctive reference values)."""
    if isinstance(obj, dict):
        for v in obj.values():
            _floats(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _floats(v, out)
    elif isinstance(obj, float) and math.isfinite(obj) and not obj.is_integer():
        out.add(obj)
    return out


def _versions(obj, prefix="") -> dict[str, str]:
    """Version strings stored in a fixture (``R_version``, ``metafor_version``, ``_meta.R``...)."""
    found = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and (k.lower().endswith("version") or (prefix and k == "R")):
                name = "R" if k.lower() in ("r", "r_version") else k.removesuffix("_version")
                found[name] = v.replace("R version ", "").split(" (")[0]
            elif isinstance(v, dict) and k in ("meta", "_meta"):
                found.update(_versions(v, prefix=k))
    return found


#: R functions that the reference scripts call without ``pkg::`` (their package is attached with
#: library()); a call of one of these names is reported as ``pkg::name``.
R_PACKAGES = {
    "metafor": ["rma", "rma.uni", "rma.mv", "escalc", "confint", "predict", "permutest", "leave1out",
                "influence", "blup", "fitstats", "weights"],
    "lme4": ["lmer", "glmer", "fixef", "ranef", "VarCorr", "REMLcrit"],
    "nlme": ["gls"],
    "sandwich": ["NeweyWest", "vcovHC"],
    "psych": ["ICC", "cohen.kappa"],
    "stats": ["lm", "glm", "uniroot", "optim", "cov.wt", "pnorm", "qt"],
}
#: functions whose package depends on the libraries attached (metafor methods vs stats generics)
R_GENERIC = {"confint", "predict", "influence", "weights"}


def r_functions(script: Path) -> list[str]:
    """The R functions a reference script calls: ``pkg::fn`` as written, else by their known package.

    Only model-fitting and estimation functions are listed (data sets, jsonlite, Matrix helpers and
    base-R arithmetic are left out); ``lmer`` is ``lmerTest::lmer`` when the script attaches lmerTest.
    """
    text = script.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # calls, not comments
    attached = set(re.findall(r"library\((\w+)\)", text))
    out: list[str] = []

    def add(name: str) -> None:
        if name not in out:
            out.append(name)

    for pkg, fn in re.findall(r"\b([A-Za-z][A-Za-z0-9.]*)::([A-Za-z_][A-Za-z0-9_.]*[A-Za-z0-9_])", code):
        if pkg not in ("jsonlite", "Matrix"):
            add(f"{pkg}::{fn}" + (" (data)" if fn.startswith("dat.") else ""))
    for pkg, names in R_PACKAGES.items():
        if pkg != "stats" and pkg not in attached:
            continue
        for fn in names:
            if fn in R_GENERIC and pkg == "stats":
                continue
            if re.search(rf"(?<![\w.:$]){re.escape(fn)}\s*\(", code):
                if fn == "lmer" and "lmerTest" in attached:
                    add("lmerTest::lmer")
                else:
                    add(f"{pkg}::{fn}")
    return out


def r_header(script: Path) -> str:
    """The script's header comment (what R computes), without the how-to-run lines."""
    lines = []
    for line in script.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].rstrip()
        if re.match(r"\s*(Run from|Needs )", text):
            continue
        text = re.sub(r"\s*Run from .*$", "", text)
        lines.append(text[1:] if text.startswith(" ") else text)
    return "\n".join(lines).strip("\n")


@dataclass
class Fixture:
    topic: str
    json: Path
    script: Path | None
    values: set[float]
    versions: dict[str, str]
    r_functions: list[str]


def fixtures() -> dict[str, Fixture]:
    out = {}
    for path in sorted(REFERENCE.glob("*.json")):
        topic = path.stem
        data = json.loads(path.read_text(encoding="utf-8"))
        script = REFERENCE / f"ref_{topic}.R"
        out[topic] = Fixture(
            topic=topic,
            json=path,
            script=script if script.exists() else None,
            values=_floats(data, set()),
            versions=_versions(data),
            r_functions=r_functions(script) if script.exists() else [],
        )
    return out


# --------------------------------------------------------------------------------------------------
# 2. the tests that use them
# --------------------------------------------------------------------------------------------------
@dataclass
class TestModule:
    path: Path
    topics: list[str]
    tokens: set[str]  # names that reach a fixture: load_reference, REF, fixture functions...
    sources: dict[str, str]  # module-level function name -> source


def _is_load_reference(node) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == (
        "load_reference"
    )


def reference_modules() -> dict[str, TestModule]:
    mods = {}
    for path in sorted(TESTS.glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        topics = []
        for node in ast.walk(tree):
            if _is_load_reference(node) and node.args and isinstance(node.args[0], ast.Constant):
                if node.args[0].value not in topics:
                    topics.append(node.args[0].value)
        if not topics:
            continue
        tokens = {"load_reference"}
        sources = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(_is_load_reference(n) for n in ast.walk(node.value)):
                tokens |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                sources[node.name] = ast.get_source_segment(text, node) or ""
        # module-level constants derived from a fixture (MA_CELLS = [... REF ...]) and fixture
        # functions that load one reach it too
        changed = True
        while changed:
            changed = False
            for node in tree.body:
                names = []
                if isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                    seg = ast.get_source_segment(text, node.value) or ""
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith(
                    "test_"
                ):
                    names = [node.name]
                    seg = sources[node.name]
                else:
                    continue
                if any(n not in tokens for n in names) and _mentions(seg, tokens):
                    tokens |= set(names)
                    changed = True
        mods[path.name] = TestModule(path=path, topics=topics, tokens=tokens, sources=sources)
    return mods


def _mentions(source: str, names) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", source) for n in names)


def _public_functions() -> set[str]:
    import inspect

    import scaleup_analysis as sa

    return {n for n in sa.__all__ if not n.startswith("_") and inspect.isfunction(getattr(sa, n))}


# --------------------------------------------------------------------------------------------------
# 3. recording the comparisons
# --------------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    nodeid: str
    got: np.ndarray
    ref: np.ndarray
    rtol: float | None
    atol: float | None
    name: str = ""


@dataclass
class Recorder:
    current: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)

    def add(self, got, ref, rtol, atol, name=""):
        if self.current is None:
            return
        try:
            g = np.asarray(got, dtype=float)
            r = np.asarray(ref, dtype=float)
            g, r = np.broadcast_arrays(g, r)
        except (TypeError, ValueError):
            return
        self.comparisons.append(Comparison(self.current, g.ravel().copy(), r.ravel().copy(), rtol, atol, name))


def install_recorders(rec: Recorder) -> None:
    import numpy.testing
    from _pytest import approx as _approx

    original_allclose = numpy.testing.assert_allclose

    def assert_allclose(actual, desired, rtol=1e-7, atol=0, equal_nan=True, err_msg="", verbose=True, **kw):
        rec.add(actual, desired, rtol, atol, str(err_msg))
        return original_allclose(actual, desired, rtol=rtol, atol=atol, equal_nan=equal_nan, err_msg=err_msg,
                                 verbose=verbose, **kw)

    numpy.testing.assert_allclose = assert_allclose

    original_eq = _approx.ApproxScalar.__eq__

    def __eq__(self, actual):  # noqa: N807
        if _approx._as_numpy_array(actual) is None:  # arrays come back here element by element
            rel = self.rel if self.rel is not None else (1e-6 if self.abs is None else None)
            abs_ = self.abs if self.abs is not None else 1e-12
            rec.add(actual, self.expected, rel, abs_)
        return original_eq(self, actual)

    _approx.ApproxScalar.__eq__ = __eq__


def _asserted_bound(frame) -> float | None:
    """The bound of ``assert rel(...) < BOUND`` on the caller's line (a number or a name it can see)."""
    import linecache

    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    m = re.search(r"\brel\(.*\)\s*<=?\s*([A-Za-z_][\w.]*|[0-9.]+(?:e-?\d+)?)", line)
    if not m:
        return None
    token = m.group(1)
    try:
        return float(token)
    except ValueError:
        value = frame.f_locals.get(token, frame.f_globals.get(token))
        return float(value) if isinstance(value, (int, float)) else None


class Plugin:
    """pytest plugin: keeps the tests that use a fixture, and tells the recorder which test runs."""

    def __init__(self, rec: Recorder, modules: dict[str, TestModule]):
        self.rec = rec
        self.modules = modules
        self.selected: dict[str, dict] = {}

    def pytest_collection_modifyitems(self, session, config, items):
        import inspect

        public = _public_functions()
        keep, drop = [], []
        for item in items:
            mod = self.modules.get(item.path.name)
            fn = getattr(item, "function", None)
            if mod is None or fn is None:
                drop.append(item)
                continue
            try:
                source = textwrap.dedent(inspect.getsource(fn))
            except OSError:
                drop.append(item)
                continue
            # the code that runs for this test: its body, the module's fixtures it requests and the
            # module-level helpers it calls (one level)
            code = [source]
            for name in getattr(item, "fixturenames", []):
                if name in mod.sources:
                    code.append(mod.sources[name])
            for name, src in mod.sources.items():
                if not name.startswith("test_") and re.search(rf"\b{re.escape(name)}\s*\(", source):
                    code.append(src)
            text = "\n".join(code)
            if not _mentions(text, mod.tokens):
                drop.append(item)
                continue
            calls = sorted(n for n in public if re.search(rf"\b{re.escape(n)}\s*\(", text))
            self.selected[item.nodeid] = {"module": mod.path.name, "topics": mod.topics, "functions": calls,
                                          "test": item.originalname if hasattr(item, "originalname") else item.name}
            keep.append(item)
        items[:] = keep
        config.hook.pytest_deselected(items=drop)

    def pytest_runtest_call(self, item):
        self.rec.current = item.nodeid
        self._wrap_rel_helper(item.module)

    def _wrap_rel_helper(self, module) -> None:
        """Record the module-level helper ``rel(ours, reference)`` (a relative error) if the module has one."""
        helper = getattr(module, "rel", None)
        if not callable(helper) or getattr(helper, "_recorded", False):
            return
        if getattr(helper, "__module__", None) != module.__name__:
            return
        rec = self.rec

        def rel(a, b, *args, **kwargs):
            rec.add(a, b, _asserted_bound(sys._getframe(1)), None, "rel()")
            return helper(a, b, *args, **kwargs)

        rel._recorded = True
        module.rel = rel

    def pytest_runtest_teardown(self, item):
        self.rec.current = None


# --------------------------------------------------------------------------------------------------
# 4. the page
# --------------------------------------------------------------------------------------------------
@dataclass
class Stat:
    n_tests: set = field(default_factory=set)
    n_values: int = 0
    max_rel: float = 0.0
    max_rel_where: str = ""
    max_rel_tol: str = ""
    n_zero: int = 0
    max_abs0: float = 0.0
    functions: set = field(default_factory=set)

    def add(self, c: Comparison, mask: np.ndarray):
        got, ref = c.got[mask], c.ref[mask]
        self.n_tests.add(c.nodeid)
        self.n_values += int(got.size)
        # values at or below the absolute tolerance of the comparison are compared absolutely
        nonzero = np.abs(ref) > (c.atol or 0.0)
        if nonzero.any():
            rel = np.abs(got[nonzero] - ref[nonzero]) / np.abs(ref[nonzero])
            i = int(np.argmax(rel))
            if rel[i] > self.max_rel or not self.max_rel_where:
                self.max_rel = float(rel[i])
                self.max_rel_where = c.nodeid + (f" ({c.name})" if c.name and c.name != "rel()" else "")
                self.max_rel_tol = _tol(c)
        if (~nonzero).any():
            self.n_zero += int((~nonzero).sum())
            self.max_abs0 = max(self.max_abs0, float(np.max(np.abs(got[~nonzero]))))


def _tol(c: Comparison) -> str:
    if c.name == "rel()":
        return f"rel {c.rtol:.0e}" if c.rtol else "stated in the test"
    parts = []
    if c.rtol:
        parts.append(f"rtol {c.rtol:.0e}")
    if c.atol:
        parts.append(f"atol {c.atol:.0e}")
    return ", ".join(parts) or "exact"


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def _test_link(nodeid: str) -> str:
    return "`" + nodeid.split("::", 1)[-1].replace("|", "\\|") + "`"  # a | would split the table cell


def _r_compact(f: Fixture) -> str:
    """``metafor: rma, escalc; lme4: glmer`` (the R functions of a fixture, by package)."""
    by_pkg: dict[str, list[str]] = {}
    for name in f.r_functions:
        pkg, fn = name.split("::", 1)
        by_pkg.setdefault(pkg, []).append(fn)
    return "; ".join(f"{pkg}: " + ", ".join(f"`{fn}`" for fn in fns) for pkg, fns in by_pkg.items()) or (
        "base R (formulas written out in the script)")


def _r_list(f: Fixture) -> str:
    return ", ".join(f"`{r}`" for r in f.r_functions) or "base R (formulas written out in the script)"


def _zero(st: Stat) -> str:
    return f"{_fmt(st.max_abs0)} ({st.n_zero})" if st.n_zero else "—"


def build(selected: dict, rec: Recorder, fx: dict[str, Fixture]) -> str:
    by_topic: dict[str, Stat] = defaultdict(Stat)
    by_function: dict[tuple[str, str], Stat] = defaultdict(Stat)
    n_recorded = n_kept = 0
    for c in rec.comparisons:
        meta = selected.get(c.nodeid)
        if meta is None:
            continue
        finite = np.isfinite(c.ref) & np.isfinite(c.got)
        n_recorded += int(finite.sum())
        for topic in meta["topics"]:
            if not any(float(r) in fx[topic].values for r in c.ref[finite]):
                continue
            n_kept += int(finite.sum())
            by_topic[topic].add(c, finite)
            by_topic[topic].functions.update(meta["functions"])
            funcs = ", ".join(f"`{f}`" for f in meta["functions"]) or "(helpers of the test module)"
            by_function[(topic, funcs)].add(c, finite)
            break
    measured = {c for st in by_topic.values() for c in st.n_tests}

    lines = [
        "# Validation against R",
        "",
        "Every statistical function is checked against reference values computed in R (metafor, lme4, "
        "lmerTest, psych, nlme, sandwich, or base R where no package exists), stored as JSON fixtures in "
        "`tests/reference/` by the scripts beside them (`tests/reference/ref_<topic>.R`, where the R call "
        "of each value is visible). R is not needed to run the tests: they read the fixtures.",
        "",
        "**This page is computed, not written.** `make docs` runs `docs/scripts/validation.py`, which runs "
        "the tests that use a fixture and records every numeric comparison they make "
        "(`numpy.testing.assert_allclose`, `pytest.approx`, and a test module's `rel(ours, reference)` "
        "helper). It keeps the comparisons whose reference values are values of the fixture, and "
        "reports the **largest relative deviation** |ours − R| / |R| over them, the test where it "
        "occurs and the tolerance that test asserts there (1e-6 relative for closed forms and "
        "meta-analysis, 1e-4 for iterative mixed models; a looser one is explained in the test). "
        "Reference values that are 0 (a variance on its boundary, for example) or within the test's "
        "absolute tolerance of 0 are reported by their largest absolute deviation instead. Known differences from R are listed in "
        "{doc}`/divergences`. Checks against published worked examples and simulation-recovery tests "
        "(a seeded truth inside the confidence interval) are part of the test suite but not of this page.",
        "",
        f"{len(selected)} tests use a fixture; {len(measured)} of them made comparisons measured here, "
        f"on {n_kept:,} values (of the {n_recorded:,} finite values they compared, the others are derived "
        "or hand-computed quantities and invariances). Comparisons written as plain arithmetic "
        "(`abs(ours / ref - 1) < tol`) pass or fail in the test suite but are not measured here.",
        "",
        "## Summary by fixture",
        "",
        "| fixture | package functions checked | against R | values | largest relative deviation "
        "(tolerance asserted there) |",
        "|---|---|---|---:|---:|",
    ]
    for topic, f in fx.items():
        st = by_topic.get(topic)
        ref = f"{{ref}}`{topic}.json <validation-{topic}>`"
        if st is None:
            lines.append(f"| {ref} | not measured (see below) | {_r_compact(f)} | 0 | — |")
            continue
        funcs = ", ".join(f"`{n}`" for n in sorted(st.functions)) or "—"
        lines.append(f"| {ref} | {funcs} | {_r_compact(f)} | {st.n_values:,} | **{_fmt(st.max_rel)}** "
                     f"({st.max_rel_tol}) |")
    lines += ["", "## By fixture and function", ""]
    for topic, f in fx.items():
        rows = sorted((k[1], v) for k, v in by_function.items() if k[0] == topic)
        users = sorted({m["module"] for m in selected.values() if topic in m["topics"]})
        n_using = sum(1 for m in selected.values() if topic in m["topics"])
        n_measured = len(by_topic[topic].n_tests) if topic in by_topic else 0
        lines += [f"(validation-{topic})=", f"### `{topic}.json`", ""]
        facts = [f"R functions: {_r_list(f)}."]
        if f.versions:
            facts.append("Versions: " + ", ".join(f"{k} {v}" for k, v in f.versions.items()) + ".")
        if users:
            facts.append("Tests: " + ", ".join(f"`tests/{u}`" for u in users)
                         + f" ({n_using} use this fixture, {n_measured} measured).")
        lines += [" ".join(facts), ""]
        if f.script is not None:
            lines += [f"::::{{dropdown}} What `tests/reference/{f.script.name}` computes", "```text",
                      r_header(f.script), "```", "::::", ""]
        if not rows:
            lines += ["No comparison with a value of this fixture was measured: its tests compare with "
                      "plain arithmetic.", ""]
            continue
        lines += [
            "| functions called by the tests | tests | values | largest relative deviation | where | "
            "tolerance there | largest absolute deviation near 0 (values) |",
            "|---|---:|---:|---:|---|---|---:|",
        ]
        for funcs, st in rows:
            lines.append(
                f"| {funcs} | {len(st.n_tests)} | {st.n_values:,} | {_fmt(st.max_rel)} | "
                f"{_test_link(st.max_rel_where)} | {st.max_rel_tol} | {_zero(st)} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "_generated" / "validation.md")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw statistics as JSON")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    import pytest

    fx = fixtures()
    modules = reference_modules()
    rec = Recorder()
    install_recorders(rec)
    plugin = Plugin(rec, modules)
    start = time.perf_counter()
    code = pytest.main(
        [*(str(m.path) for m in modules.values()), "-q", "--no-header", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--hypothesis-seed=0",
         "--rootdir", str(ROOT), "-o", "addopts=", "--tb=short"],
        plugins=[plugin],
    )
    elapsed = time.perf_counter() - start
    if code != 0:
        print(f"validation: the reference tests failed (pytest exit code {code})", file=sys.stderr)
        return 1
    page = build(plugin.selected, rec, fx)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(f"validation: {len(plugin.selected)} reference tests in {elapsed:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
