"""Write the API reference pages of the documentation site (called by ``docs/conf.py``).

Every public name ``sa.<name>`` (``scaleup_analysis.__all__``) gets one entry, documented from its
docstring under the name users type (``scaleup_analysis.<name>``). Names are grouped by the module
map of ``README.md`` (the table under "Modules follow the data flow"): a name belongs to the row whose
module contains the module that defines it. A public name defined in a module that the README's map
does not list stops the build with a message saying which row to add, so the map stays true.

Run alone to see the grouping: ``python docs/scripts/api_pages.py OUT_DIR``.
"""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "scaleup_analysis"

#: Public names that are not defined in a module of the README's map, and the page they go on.
EXTRA_GROUPS = {"errors": "Errors and warnings"}
#: Public names that are not documented as API entries (module attributes, not functions/classes).
SKIP = {"__version__"}


@dataclass
class Group:
    step: str  # first cell of the README row ("1. effectiveness")
    modules: list[str]  # second cell, as written ("heterogeneity/", "effect_sizes")
    main: list[str]  # third cell: the names the README lists, in order
    names: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        m = re.match(r"(\d+)\.\s*(.*)", self.step)
        step = f"step{m.group(1)} {m.group(2)}" if m else self.step
        return re.sub(r"[^a-z0-9]+", "_", step.lower()).strip("_")

    @property
    def title(self) -> str:
        step = self.step
        m = re.match(r"(\d+)\.\s*(.*)", step)
        if m:
            return f"Step {m.group(1)}: {m.group(2)}"
        return step[:1].upper() + step[1:]


def readme_groups(readme: Path = ROOT / "README.md") -> list[Group]:
    """The rows of the README's module map (``| step | module | main functions |``)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*step\s*\|\s*module\s*\|", line))
    except StopIteration:
        raise SystemExit("README.md has no module map table ('| step | module | main functions |')")
    groups = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        step, modules, main = cells[0], cells[1], cells[2] if len(cells) > 2 else ""
        groups.append(
            Group(
                step=step,
                modules=re.findall(r"`([^`]+)`", modules),
                main=[n for n in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", main)],
            )
        )
    return groups


def defining_module(sa, name: str) -> str:
    """Module (relative to the package) that defines ``sa.<name>``."""
    obj = getattr(sa, name)
    mod = getattr(obj, "__module__", None)
    if not (isinstance(mod, str) and mod.startswith(PACKAGE + ".")) or not (
        inspect.isfunction(obj) or inspect.isclass(obj)
    ):
        mod = PACKAGE + "." + sa._NAME_TO_MODULE[name]  # constants (e.g. SCHEMAS): where exported from
    return mod[len(PACKAGE) + 1 :]


def _matches(module: str, token: str) -> bool:
    token = token.rstrip("/").replace("/", ".")
    return module == token or module.startswith(token + ".")


def assign(sa) -> tuple[list[Group], dict[str, str]]:
    """Group every public name; returns the groups and {name: module} (fails on unmapped modules)."""
    groups = readme_groups()
    extra = {mod: Group(step=title, modules=[mod], main=[]) for mod, title in EXTRA_GROUPS.items()}
    where: dict[str, str] = {}
    unmapped: dict[str, list[str]] = {}
    for name in sa.__all__:
        if name in SKIP:
            continue
        module = defining_module(sa, name)
        where[name] = module
        candidates = [(len(tok), g) for g in groups for tok in g.modules if _matches(module, tok)]
        if candidates:
            max(candidates, key=lambda c: c[0])[1].names.append(name)
        elif module.split(".")[0] in extra:
            extra[module.split(".")[0]].names.append(name)
        else:
            unmapped.setdefault(module, []).append(name)
    if unmapped:
        detail = "; ".join(f"{mod}: {', '.join(sorted(names))}" for mod, names in sorted(unmapped.items()))
        raise SystemExit(
            "docs: public names defined in modules missing from README.md's module map "
            f"('| step | module | main functions |'): {detail}. Add the module to its row of the map."
        )
    return [g for g in [*groups, *extra.values()] if g.names], where


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def _ordered(group: Group, sa) -> tuple[list[str], list[str], list[str]]:
    """(functions, classes, data) of a group: README's main names first, then alphabetical."""
    rank = {n: i for i, n in enumerate(group.main)}
    key = lambda n: (rank.get(n, len(rank)), n.lower())  # noqa: E731
    kinds: dict[str, list[str]] = {"function": [], "class": [], "exception": [], "data": []}
    for n in group.names:
        kinds[_kind(getattr(sa, n))].append(n)
    return sorted(kinds["function"], key=key), sorted(kinds["class"] + kinds["exception"], key=key), sorted(
        kinds["data"], key=key
    )


def _summary_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def render_group(group: Group, sa, where: dict[str, str]) -> str:
    funcs, classes, data = _ordered(group, sa)
    title = group.title
    mods = ", ".join(f"``{PACKAGE}.{m.rstrip('/').replace('/', '.')}``" for m in group.modules)
    out = [f".. _api-{group.slug}:", "", title, "=" * len(title), "", f".. currentmodule:: {PACKAGE}", ""]
    out += [f"Modules: {mods}. Every name below is importable as ``sa.<name>`` "
            f"(``import {PACKAGE} as sa``).", ""]
    out += [".. autosummary::", "   :nosignatures:", ""]
    out += [f"   {n}" for n in funcs + classes + data]
    out.append("")
    for heading, names in (("Functions", funcs), ("Classes", classes), ("Data", data)):
        if not names:
            continue
        out += [heading, "-" * len(heading), ""]
        for n in names:
            obj = getattr(sa, n)
            kind = _kind(obj)
            if kind == "function":
                out += [f".. autofunction:: {n}", ""]
            elif kind in ("class", "exception"):
                out += [f".. autoclass:: {n}", "   :members:", "   :show-inheritance:" if kind == "exception"
                        else "   :exclude-members: __init__, __new__", ""]
            else:
                out += [f".. autodata:: {n}", "   :annotation:", "",
                        f"   Defined in ``{PACKAGE}.{where[n]}``.", ""]
    return "\n".join(out) + "\n"


def write_api_pages(out_dir: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    import scaleup_analysis as sa

    out_dir.mkdir(parents=True, exist_ok=True)
    groups, where = assign(sa)
    written = []
    index = [
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        f"Every public name of ``{PACKAGE}`` (``sa.__all__``, {sum(len(g.names) for g in groups)} names), "
        "grouped by the module map of the README: the data, then the five steps, then the reports. "
        "Argument, field and column names follow the :doc:`glossary </glossary>`.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 75",
        "",
        "   * - page",
        "     - names",
    ]
    for g in groups:
        funcs, classes, data = _ordered(g, sa)
        index += [f"   * - :doc:`{g.title} <{g.slug}>`", "     - " + ", ".join(
            f":py:obj:`~{PACKAGE}.{n}`" for n in funcs + classes + data)]
    index += ["", ".. toctree::", "   :hidden:", ""] + [f"   {g.slug}" for g in groups] + [""]
    for g in groups:
        path = out_dir / f"{g.slug}.rst"
        path.write_text(render_group(g, sa, where), encoding="utf-8")
        written.append(path)
    (out_dir / "index.rst").write_text("\n".join(index), encoding="utf-8")
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "_generated" / "api"
    for p in write_api_pages(out):
        print(p)
