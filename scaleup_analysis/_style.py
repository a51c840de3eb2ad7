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

import matplotlib as mpl
from matplotlib.colors import LinearSegmentedColormap

__all__ = ["PALETTE", "STYLE", "SEQUENTIAL", "DIVERGING", "MISSING", "GREY", "styled", "new_axes",
           "BETTER", "WORSE", "NEUTRAL", "FONT_SIZE", "SMALL_FONT_SIZE", "region_labels"]

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
        return out

    wrapper.styled = True  # tests/test_figures.py checks that every plotting function is styled
    return wrapper


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
