"""The package's import structure, read from the source with ``ast`` (nothing is imported).

* The graph of imports between the modules of ``scaleup_analysis`` has no cycle: an import at
  module level or inside a function (deferred), absolute or relative, counts; ``from pkg import
  name`` points at the submodule ``pkg.name`` when there is one, else at ``pkg``. A cycle is named
  module by module.
* No module imports another package's private name. A name is private when it, or a module on its
  path, starts with ``_`` (``_tau2``, ``_fit``); it belongs to the package that holds it and is
  visible in that package and its subpackages only (so the package-wide helpers
  ``scaleup_analysis._checks``, ``_constants`` and ``_atomic`` are visible everywhere, and
  ``adaptation._panel`` only inside ``adaptation``). Models reach shared numerics through the
  engine layer ``scaleup_analysis.engines``, whose modules are the only ones exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "scaleup_analysis"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
ENGINES = f"{PACKAGE}.engines"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str):
    """(line, imported module, imported names) for every import of ``module`` inside the package."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    here = module if _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield node.lineno, target, tuple(alias.name for alias in node.names)


def _edges(module: str) -> dict[str, int]:
    """Imported module -> first line, for the modules of the package that ``module`` imports."""
    out: dict[str, int] = {}
    for line, target, names in _imports(module):
        targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES] or [target]
        if len(targets) < len(names):  # names that are not submodules come from ``target`` itself
            targets.append(target)
        for t in targets:
            while t not in MODULES and "." in t:  # ``import a.b.c`` of a name inside ``a.b``
                t = t.rpartition(".")[0]
            if t in MODULES and t != module:
                out.setdefault(t, line)
    return out


GRAPH = {m: _edges(m) for m in MODULES}


def _cycles() -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    cycles = []
    for comp in components:  # a shortest cycle through the component's first module, for the message
        members = set(comp)
        start = min(comp)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(GRAPH[v]):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w in members and w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle)
    return cycles


def test_the_graph_is_read():
    assert f"{PACKAGE}.heterogeneity.meta" in MODULES
    assert f"{ENGINES}.rma" in GRAPH[f"{PACKAGE}.heterogeneity.meta"]  # from ..engines.rma import ...
    assert f"{PACKAGE}.adaptation.frame" in GRAPH[f"{PACKAGE}.adaptation"]  # from .frame import ...


def test_no_import_cycle():
    cycles = _cycles()
    described = [
        " -> ".join(f"{a} (line {GRAPH[a][b]})" for a, b in zip(c, c[1:])) + f" -> {c[-1]}" for c in cycles
    ]
    assert not cycles, "import cycle(s) between modules of the package:\n" + "\n".join(described)


def _owner(target: str, name: str | None) -> str | None:
    """The package a private module or name belongs to (None when nothing private is imported)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    if name is not None and name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
        return target if target in MODULES and _is_package(target) else target.rpartition(".")[0]
    return None


def _private_imports(module: str):
    here = module if _is_package(module) else module.rpartition(".")[0]
    for line, target, names in _imports(module):
        for name in names or (None,):
            owner = _owner(target, name)
            if owner is not None and not (here == owner or here.startswith(owner + ".")):
                what = f"{target}.{name}" if name else target
                yield f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports {what} (private to {owner})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not (m == ENGINES or m.startswith(ENGINES + "."))))
def test_no_private_name_of_another_package(module):
    offenders = list(_private_imports(module))
    assert not offenders, "\n".join(offenders)


def test_the_private_name_check_catches_an_offender():
    assert _owner(f"{PACKAGE}.heterogeneity._tau2", "fit_rma") == f"{PACKAGE}.heterogeneity"
    assert _owner(f"{PACKAGE}.heterogeneity.mixed", "_gaussian_result") == f"{PACKAGE}.heterogeneity"
    assert _owner(f"{PACKAGE}._checks", "check_level") == PACKAGE
    assert _owner(f"{PACKAGE}.heterogeneity.meta", "meta_analysis") is None
    assert _owner(PACKAGE, "__version__") is None
