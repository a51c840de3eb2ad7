"""One plotting style for every figure of the package (internal).

Every ``plot_*`` method and plotting function is decorated with :func:`styled`: its figure is drawn
with the package's style (:data:`STYLE`: colour-blind-safe Okabe-Ito palette, fonts of 9-11 pt,
light grid, no top/right spines) and, when the function creates the figure itself (``ax=None``),
with matplotlib's constrained layout, so that titles, tick labels, legends and text columns placed
beside the axes stay inside the figure however it is saved (``fig.savefig(path)`` without
``bbox_inches="tight"`` clips nothing). The report saver writes 300 dpi PNG and SVG
(:func:`scaleup_analysis.reporting.save_figure`).

Colour scales: :data:`SEQUENTIAL` (cividis, readable in greyscale and by colour-blind readers) for
magnitudes, :data:`DIVERGING` (blue = better, orange = worse, Okabe-Ito ends) for signed changes;
:data:`MISSING` is the colour of a cell without a value, always explained in the legend or a note.

Labels are messages of the catalogue (``tx("...")`` with ``tx = Text()``, in the language set with
:func:`scaleup_analysis.set_language`); ``tests/test_figures.py`` draws every plot of every result
and fails on clipped or overlapping text and on a label that is not a catalogue message.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
from matplotlib.colors import LinearSegmentedColormap

__all__ = ["PALETTE", "STYLE", "SEQUENTIAL", "DIVERGING", "MISSING", "GREY", "styled", "new_axes",
           "BETTER", "WORSE", "NEUTRAL", "FONT_SIZE", "SMALL_FONT_SIZE", "region_labels",
           "OUTSIDE", "data_text", "axis_number", "numeric_ticks", "log_ticks", "ticks_inside", "word", "label_gap", "thinned",
           "group_rows"]

#: Okabe & Ito (2008) colour-blind-safe palette: black removed (kept for text), order by contrast.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: Colours with a meaning: an improvement, a deterioration, no signal.
BETTER, WORSE, NEUTRAL = "#0072B2", "#D55E00", "#7F7F7F"
GREY = "#BDBDBD"
#: Colour of a heatmap cell without a value (explained where it is shown).
MISSING = "#F2F2F2"
#: Sequential scale for magnitudes (perceptually uniform, colour-blind safe).
SEQUENTIAL = "cividis"
#: Diverging scale for signed changes: orange (worse) - white - blue (better).
DIVERGING = LinearSegmentedColormap.from_list("scaleup_diverging", [WORSE, "#F4C7A8", "#FFFFFF", "#A6CBE3", BETTER])

FONT_SIZE = 10
SMALL_FONT_SIZE = 8.5

STYLE = {
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.titleweight": "bold",
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": SMALL_FONT_SIZE + 0.5,
    "ytick.labelsize": SMALL_FONT_SIZE + 0.5,
    "legend.fontsize": SMALL_FONT_SIZE + 0.5,
    "legend.title_fontsize": FONT_SIZE,
    "legend.frameon": False,
    "figure.titlesize": FONT_SIZE + 2,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "image.cmap": SEQUENTIAL,
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "savefig.dpi": 300,
    "svg.fonttype": "none",
}


def styled(func):
    """Draw ``func``'s figure in the package style (decorator of plotting functions and methods).

    Tick labels are created lazily, when the figure is drawn (possibly after the function returned),
    so their size is also fixed on every axes of the figure.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE):
            out = func(*args, **kwargs)
        fig = _figure_of(out)
        if fig is not None:
            for ax in fig.axes:
                ax.tick_params(labelsize=STYLE["xtick.labelsize"])
                _decimal_comma(ax)
        return out

    wrapper.styled = True  # tests/test_figures.py checks that every plotting function is styled
    return wrapper


def _decimal_comma(ax) -> None:
    """In French, numbers of matplotlib's default tick labels with a decimal comma (``0,5``) and
    thin-space thousands (``12 345``); a formatter the plot set itself is left alone."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    from .narrative import Text

    tx = Text()
    if tx.lang != "fr":
        return
    for axis in (ax.xaxis, ax.yaxis):
        if type(axis.get_major_formatter()) is ScalarFormatter and axis.get_scale() == "linear":
            axis.set_major_formatter(FuncFormatter(lambda v, _: axis_number(tx, v)))


def _figure_of(out):
    """The figure of what a plotting function returned (an Axes, a Figure, or a tuple of them)."""
    if isinstance(out, (tuple, list)):
        for item in out:
            fig = _figure_of(item)
            if fig is not None:
                return fig
        return None
    if isinstance(out, mpl.figure.Figure):
        return out
    return getattr(out, "figure", None) if isinstance(out, mpl.axes.Axes) else None


def new_axes(ax=None, size: tuple[float, float] = (7.0, 4.5)):
    """``ax``, or the axes of a new figure of ``size`` inches (constrained layout)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def region_labels(codes) -> dict[str, str]:
    """``{code: "Estrie (05)"}`` for the Quebec RSS codes among ``codes`` (bundled ``quebec_regions``
    table); any other code is shown as itself."""
    from .data.datasets import load_dataset

    names = load_dataset("quebec_regions").set_index("rss_code")["name"]
    out = {}
    for code in codes:
        key = str(code)
        out[code] = f"{names[key]} ({key})" if key in names.index else key
    return out


#: Legend beside the axes, never over the data.
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}


def data_text(value) -> str:
    """Text from data shown in a figure as it is: a ``$`` is never read as mathtext."""
    return str(value).replace("$", r"\$")


def axis_number(tx, value: float) -> str:
    """A tick label: the shortest form of ``value`` (``0.5``, ``10``), decimal comma in French."""
    if float(value).is_integer() and abs(value) < 1e15:
        text = tx.int(value)
    else:
        text = f"{value:.6g}"
        text = text.replace(".", ",") if tx.lang == "fr" else text
    return text.replace("-", "\u2212")  # the typographic minus, as matplotlib's own tick labels


def numeric_ticks(axis, tx=None, ticks=None, integer: bool = False) -> None:
    """Numeric ticks of ``axis`` only inside its view limits (a tick label beyond them is not drawn
    but still exists, possibly outside the figure), labelled by :func:`axis_number` in the language
    of ``tx`` (default: the one set with :func:`scaleup_analysis.set_language`); ``ticks`` fixes the
    candidate positions (default: matplotlib's automatic ones, whole numbers if ``integer``)."""
    from matplotlib.ticker import AutoLocator, FuncFormatter, Locator, MaxNLocator

    from .narrative import Text

    tx = Text() if tx is None else tx

    class _Inside(Locator):
        def __init__(self):
            self.base = MaxNLocator(integer=True) if integer else AutoLocator()

        def set_axis(self, axis):
            super().set_axis(axis)
            self.base.set_axis(axis)

        def __call__(self):
            vmin, vmax = sorted(self.axis.get_view_interval())
            eps = 1e-9 * max(abs(vmax - vmin), 1e-300)
            candidates = self.base() if ticks is None else ticks
            return [t for t in candidates if vmin - eps <= t <= vmax + eps]

    axis.set_major_locator(_Inside())
    axis.set_major_formatter(FuncFormatter(lambda v, _: axis_number(tx, v)))


def log_ticks(low: float, high: float) -> list[float]:
    """Candidate ticks of a log axis: 1-2-5 steps, or finer steps when fewer than four fall between
    ``low`` and ``high`` (pass them to :func:`numeric_ticks`)."""
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 7)):
        ticks = [round(m * 10.0**e, 8) for e in range(-6, 7) for m in steps]
        if sum(low <= t <= high for t in ticks) >= 4:
            break
    return ticks


def ticks_inside(ax, which: str = "xy") -> None:
    """Keep only the current ticks of ``ax`` inside its view limits, on the axes ``which`` ("x", "y"
    or "xy"), keeping their labels' formatter; the limits are left as they are."""
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "linear":
            continue
        limits = ax.get_xlim() if name == "x" else ax.get_ylim()
        lo, hi = min(limits), max(limits)
        eps = 1e-9 * max(hi - lo, 1e-300)
        axis.set_ticks([t for t in axis.get_majorticklocs() if lo - eps <= t <= hi + eps])
        (ax.set_xlim if name == "x" else ax.set_ylim)(limits)


def word(tx, words: Mapping, key) -> str:
    """``words[key]`` (a catalogue message) in the reader's language; ``key`` itself when unknown."""
    return tx(words[key]) if key in words else data_text(key)


def label_gap(axes_height_in: float, n_rows: int, fontsize: float = SMALL_FONT_SIZE + 0.5) -> float:
    """Rows between two row labels of ``fontsize`` points so that they do not overlap."""
    row_pt = 72.0 * max(axes_height_in, 0.5) / max(n_rows, 1)
    return 1.4 * fontsize / row_pt


def thinned(n_rows: int, axes_height_in: float) -> list[int]:
    """Rows to label (every k-th) so that the labels of ``n_rows`` rows do not overlap."""
    return list(range(0, n_rows, max(1, math.ceil(label_gap(axes_height_in, n_rows)))))


def group_rows(ax, groups: Sequence, labels: Mapping, *, axes_height_in: float, line: str = "white") -> None:
    """Rows in consecutive blocks of one group (a region): a line between blocks and the group's label
    at the centre of its block (y tick labels); a label too close to the previous one is left out."""
    gap = label_gap(axes_height_in, len(groups))
    ticks, texts, last, start = [], [], -math.inf, 0
    for i in range(1, len(groups) + 1):
        if i < len(groups) and groups[i] == groups[start]:
            continue
        centre = (start + i - 1) / 2
        if centre - last >= gap:
            ticks.append(centre)
            texts.append(labels[groups[start]])
            last = centre
        if i < len(groups):
            ax.axhline(i - 0.5, color=line, lw=1.2, zorder=2)
        start = i
    ax.set_yticks(ticks, texts)
    ax.tick_params(axis="y", length=0)
