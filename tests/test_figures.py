"""Figures fit to publish: every plot of the package, drawn in both languages, is checked by reading
the rendered figure (matplotlib's own text extents), not by looking at the code.

For every ``plot*`` method of every public result class (built from the small examples of
``result_examples.py``), every public plotting function, and the plots that must stay readable
with 120 sites (the embedded simulation's size), in French and in English:

* **no clipped text**: the figure is saved as a user would (``fig.savefig(path)``, *without*
  ``bbox_inches="tight"``) and every visible text artist (titles, axis labels, tick labels, legend
  entries, annotations, text columns) lies inside the figure;
* **no overlapping tick labels** on any axis (the 97-120 tiny site labels of a caterpillar);
* **readable**: every text at least 7 pt, no figure taller than 14 inches (the caterpillar was 33);
* **translated**: in French, no text of the figure is an English catalogue message whose French
  translation differs (a label left in English);
* **one style**: every plotting function is decorated with ``_style.styled``.

An AST check complements the rendered one: in the package's plotting code no axis label, title,
legend title or text is a bare English literal; labels go through the catalogue (``tx("...")``).
"""

from __future__ import annotations

import ast
import inspect
import io
import warnings
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text as TextArtist  # noqa: E402
from result_examples import BUILDERS, _fidelity, built, sim  # noqa: E402

import scaleup_analysis as sa  # noqa: E402
from scaleup_analysis.i18n import _catalogue  # noqa: E402

PACKAGE = Path(sa.__file__).resolve().parent
TOLERANCE_PX = 1.0
MIN_FONT_PT = 7.0
MAX_HEIGHT_IN = 14.0
MAX_WIDTH_IN = 14.0

# arguments the plot methods need (the rest use their defaults)
ARGS = {
    ("MetaRegressionResult", "plot_bubble"): {"mod": "pperf"},
    ("QuintupleAimPanel", "plot_series"): {"indicator": "HO_Y"},
    ("ReaimResult", "plot_measure"): {"measure": "reach"},
}


@lru_cache(maxsize=1)
def full_sim():
    """The embedded simulation's size: 120 sites in 18 regions."""
    return sa.simulate_scaleup(seed=1)


def _big_caterpillar():
    t = full_sim().tables
    enc = t["encounters"]
    return sa.mixed_model(enc, "y ~ treated", group="site_id")


def _big_fidelity():
    t = full_sim().tables
    return sa.fidelity_index(t["fidelity_ratings"], t["components"], t["delivery"])


# plots that must stay readable with 120 sites: (name, function drawing on a new figure)
LARGE = {
    "caterpillar_120_sites": lambda: _big_caterpillar().plot_caterpillar(),
    "drift_120_sites": lambda: sa.fidelity_drift(_big_fidelity()).plot_drift(),
    "fidelity_heatmap_120_sites": lambda: sa.plot_fidelity(_big_fidelity(), "site", sites=full_sim().tables["sites"]),
    "fidelity_by_region": lambda: sa.plot_fidelity(_big_fidelity(), "region", sites=full_sim().tables["sites"]),
    "adaptation_timeline_120_sites": lambda: sa.plot_adaptation_timeline(
        full_sim().tables["adaptations"], sites=full_sim().tables["sites"]),
    "dashboard_18_regions": lambda: sa.plot_dashboard(sa.change_from_baseline(
        sa.quintuple_aim_panel(full_sim().tables, comparison=("phase", "not-adopted")),
        baseline_periods=range(1, 4), followup_periods=range(9, 13))),
    "control_chart_p": lambda: sa.control_chart(
        full_sim().tables["outcomes"].query("indicator_id == 'EQ_REACH_Q5'").groupby("period", as_index=False)[
            ["events", "n"]].sum(), "events", chart="p", x="period", n="n").plot(),
}

# public plotting functions (module level), on the small examples
FUNCTIONS = {
    "plot_fidelity": lambda: sa.plot_fidelity(_fidelity(), "site", sites=sim().tables["sites"]),
    "plot_adaptation_timeline": lambda: sa.plot_adaptation_timeline(sim().tables["adaptations"],
                                                                    sites=sim().tables["sites"]),
    "plot_dashboard": lambda: sa.plot_dashboard(built("ChangeFromBaseline")),
}


def _methods():
    out = []
    for cname in sorted(BUILDERS):
        cls = getattr(sa, cname)
        for name in sorted(dir(cls)):
            if name.startswith("plot") and callable(getattr(cls, name)):
                out.append((cname, name))
    return out


METHODS = _methods()


def _draw(case: str, language: str):
    """Draw one plot in ``language`` on a new figure; returns the figure."""
    plt.close("all")
    sa.set_language(language)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if case in LARGE:
                out = LARGE[case]()
            elif case in FUNCTIONS:
                out = FUNCTIONS[case]()
            else:
                cname, method = case.split(".")
                out = getattr(built(cname), method)(**ARGS.get((cname, method), {}))
    finally:
        sa.set_language("en")
    fig = _figure(out)
    assert fig is not None, f"{case}: returned {type(out).__name__}, not an Axes or a Figure"
    return fig


def _figure(out):
    if isinstance(out, matplotlib.figure.Figure):
        return out
    if isinstance(out, matplotlib.axes.Axes):
        return out.figure
    if isinstance(out, (tuple, list)):
        for item in out:
            fig = _figure(item)
            if fig is not None:
                return fig
    if hasattr(out, "flat"):  # array of axes
        return next(iter(out.flat)).figure
    return None


def _texts(fig):
    """Visible, non-empty text artists of ``fig`` with their window extents (after a draw)."""
    renderer = fig.canvas.get_renderer()
    out = []
    for t in fig.findobj(TextArtist):
        if not t.get_visible() or not t.get_text().strip():
            continue
        ax = t.axes
        if ax is not None and not ax.get_visible():
            continue
        if ax is not None and t.get_clip_on() and t.get_clip_box() is not None and not _is_axis_artist(t, ax):
            # a text clipped to the axes (a data label inside the plot) is drawn only where it fits
            bb = t.get_window_extent(renderer)
            if not bb.overlaps(ax.bbox):
                continue
        out.append((t, t.get_window_extent(renderer)))
    return out


def _is_axis_artist(t, ax) -> bool:
    return t in ax.get_xticklabels() or t in ax.get_yticklabels() or t is ax.title


def _check(fig, case: str, language: str) -> list[str]:
    problems = []
    w, h = fig.get_size_inches()
    if h > MAX_HEIGHT_IN or w > MAX_WIDTH_IN:
        problems.append(f"figure is {w:.1f} x {h:.1f} in (at most {MAX_WIDTH_IN} x {MAX_HEIGHT_IN})")
    fig.savefig(io.BytesIO(), format="png", dpi=100)  # as a user saves it: no bbox_inches="tight"
    fbox = fig.bbox
    texts = _texts(fig)
    for t, bb in texts:
        label = t.get_text().replace("\n", " ")[:40]
        if (bb.x0 < fbox.x0 - TOLERANCE_PX or bb.y0 < fbox.y0 - TOLERANCE_PX
                or bb.x1 > fbox.x1 + TOLERANCE_PX or bb.y1 > fbox.y1 + TOLERANCE_PX):
            where = tuple(round(float(v)) for v in bb.extents)
            problems.append(f"text {label!r} is clipped: extent {where} (x0, y0, x1, y1 in pixels) is outside "
                            f"the figure (0, 0, {round(fbox.width)}, {round(fbox.height)})")
        if t.get_fontsize() < MIN_FONT_PT:
            problems.append(f"text {label!r} is {t.get_fontsize():.1f} pt (at least {MIN_FONT_PT})")
    for ax in fig.axes:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            renderer = fig.canvas.get_renderer()
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels
                     if t.get_visible() and t.get_text().strip()]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i][1], boxes[j][1]
                    ox = min(a.x1, b.x1) - max(a.x0, b.x0)
                    oy = min(a.y1, b.y1) - max(a.y0, b.y0)
                    if ox > 1 and oy > 1:
                        problems.append(f"tick labels {boxes[i][0]!r} and {boxes[j][0]!r} overlap")
    if language == "fr":
        english = _untranslated()
        for t, _ in texts:
            text = t.get_text().strip()
            if text in english:
                problems.append(f"text {text!r} is English (its French translation is {english[text]!r})")
    return problems


@lru_cache(maxsize=1)
def _untranslated() -> dict[str, str]:
    """English messages whose French translation differs (a figure in French must not show them)."""
    return {k: v for k, v in _catalogue("fr").items() if isinstance(v, str) and v != k and any(c.isalpha() for c in k)}


CASES = [f"{c}.{m}" for c, m in METHODS] + sorted(FUNCTIONS) + sorted(LARGE)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("case", CASES)
def test_figure_is_fit_to_publish(case, language):
    fig = _draw(case, language)
    try:
        problems = _check(fig, case, language)
    finally:
        plt.close(fig)
    assert not problems, f"{case} ({language}):\n  " + "\n  ".join(dict.fromkeys(problems))


def test_there_are_plots_to_check():
    assert len(METHODS) >= 30, METHODS


# ----------------------------------------------------------------------------------------------
# one style
# ----------------------------------------------------------------------------------------------
def _plotting_callables():
    for cname, method in METHODS:
        yield f"sa.{cname}.{method}", getattr(getattr(sa, cname), method)
    for name in sa.__all__:
        if name.startswith("plot"):
            yield f"sa.{name}", getattr(sa, name)


@pytest.mark.parametrize("name,func", list(_plotting_callables()), ids=lambda x: x if isinstance(x, str) else "")
def test_plotting_function_is_styled(name, func):
    assert getattr(func, "styled", False), f"{name} is not decorated with scaleup_analysis._style.styled"


# ----------------------------------------------------------------------------------------------
# labels come from the catalogue (read from the source)
# ----------------------------------------------------------------------------------------------
LABEL_CALLS = {"set_xlabel", "set_ylabel", "set_title", "suptitle", "supxlabel", "supylabel", "set_label"}
LABEL_KEYWORDS = {"xlabel", "ylabel", "title", "label"}


def _bare_text(node) -> bool:
    """An English literal (or f-string with literal words) shown as is."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return sum(c.isalpha() for c in node.value) >= 2
    if isinstance(node, ast.JoinedStr):
        literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return sum(c.isalpha() for c in literal) >= 2
    return False


def _label_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        args = []
        if name in LABEL_CALLS:
            args = node.args[:1]
        elif name in ("text", "annotate") and isinstance(node.func, ast.Attribute):
            args = node.args[2:3] if name == "text" else node.args[:1]
        if name in LABEL_CALLS | {"text", "annotate", "plot", "scatter", "bar", "barh", "errorbar", "axhline",
                                  "axvline", "fill_between", "legend", "hlines", "vlines", "step", "hist",
                                  "set", "subplots", "imshow", "colorbar", "pie", "Patch", "Line2D"}:
            args += [kw.value for kw in node.keywords if kw.arg in LABEL_KEYWORDS]
        for a in args:
            if _bare_text(a):
                text = a.value if isinstance(a, ast.Constant) else ast.unparse(a)
                out.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}({text!r})")
    return out


def _plot_modules():
    skip = {"steps", "reporting", "notebooks"}
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not skip & set(p.relative_to(PACKAGE).parts)]


def test_figure_labels_come_from_the_catalogue():
    bare = [hit for p in _plot_modules() for hit in _label_literals(p)]
    assert not bare, "labels shown as bare English literals (write tx('...')):\n" + "\n".join(bare)


def test_plot_defaults_are_not_english_literals():
    """A label option (xlabel=, ylabel=, title=) defaults to None (a catalogue message), not to English."""
    bad = []
    for name, func in _plotting_callables():
        for p in inspect.signature(func).parameters.values():
            if p.name in LABEL_KEYWORDS and isinstance(p.default, str) and p.default:
                bad.append(f"{name}({p.name}={p.default!r})")
    assert not bad, bad
