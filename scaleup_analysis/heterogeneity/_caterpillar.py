"""Drawing of the caterpillar plot of :meth:`MixedModelResult.plot_caterpillar` (internal).

Groups (sites) are ordered by their effect, drawn as points with interval bars. Up to
:data:`_LABEL_ALL` groups every group is named on the y axis; beyond, no group is named on the axis
(the figure stays 8 inches high for 120 sites) and the :data:`_N_EXTREMES` lowest and highest are
named beside the plot, their labels spread out and joined to their point by a thin line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .._style import NEUTRAL, PALETTE, SMALL_FONT_SIZE, numeric_ticks, region_labels
from ._text import SITE_COLUMNS, group_word

_LABEL_ALL = 40  # groups named on the axis up to this many
_N_EXTREMES = 5  # lowest and highest groups named beyond it
_ROW = 0.2  # inches per group when every group is named
_MARGINS = 1.7  # inches for the title, the x axis, its label and the legend
_MAX_HEIGHT = 8.0  # inches


def _regions(d: pd.DataFrame, group: str, sites: pd.DataFrame | None) -> pd.Series | None:
    """Region code of each row's group, from the ``sites`` table (None without it)."""
    if sites is None:
        return None
    key = group if group in sites.columns else "site_id"
    if key not in sites.columns or "rss_code" not in sites.columns:
        return None
    mapping = sites.drop_duplicates(key).set_index(key)["rss_code"]
    return d["group"].map(mapping)


def draw_caterpillar(d: pd.DataFrame, *, term: str, group: str, method: str, level: float, sites, ax, tx):
    """Draw the ordered effects ``d`` (columns group, estimate, ci_low, ci_high); returns the Axes."""
    import matplotlib.pyplot as plt

    n = len(d)
    label_all = n <= _LABEL_ALL
    if ax is None:
        height = min(_MAX_HEIGHT, max(3.2, _MARGINS + _ROW * n)) if label_all else _MAX_HEIGHT
        _, ax = plt.subplots(figsize=(7.5 if label_all else 8.5, height), layout="constrained")
    fig = ax.figure
    pos = np.arange(n)
    est = d["estimate"].to_numpy(float)
    low, high = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
    regions = _regions(d, group, sites)
    names = region_labels(sorted(regions.dropna().unique())) if regions is not None else {}
    small = not label_all
    marker = 3.0 if small else 4.5
    handles = []
    if regions is not None and 1 <= len(names) <= len(PALETTE):
        colours = {code: PALETTE[i] for i, code in enumerate(names)}
        colour = regions.map(colours).fillna(NEUTRAL).to_numpy()
        handles = [Line2D([], [], marker="o", linestyle="-", color=colours[c], label=names[c].replace("$", r"\$"))
                   for c in names]
        legend_title = tx("Region")
    else:
        above, below = low > 0, high < 0
        colour = np.where(above, PALETTE[1], np.where(below, PALETTE[0], NEUTRAL))
        handles = [Line2D([], [], marker="o", linestyle="-", color=c, label=lab) for c, lab in (
            (PALETTE[1], tx("Interval above the average")), (NEUTRAL, tx("Interval includes the average")),
            (PALETTE[0], tx("Interval below the average")))]
        legend_title = None
    ax.hlines(pos, low, high, colors=colour, lw=0.8 if small else 1.2, alpha=0.8)
    ax.scatter(est, pos, c=colour, s=marker**2, zorder=3)
    ax.axvline(0.0, color="0.35", lw=0.9, linestyle="--")
    handles.append(Line2D([], [], color="0.35", lw=0.9, linestyle="--", label=tx("Average (0)")))
    ax.set_ylim(-1, n)
    ax.grid(False, axis="y")
    labels = d["group"].astype(str).str.replace("$", r"\$", regex=False).tolist()
    if regions is not None:
        labels = [f"{lab} · {names.get(r, '')}" if isinstance(r, str) and r in names else lab
                  for lab, r in zip(labels, regions)]
    word = group_word(tx, group)
    if label_all:
        ax.set_yticks(pos)
        ax.set_yticklabels(labels)
        ax.set_ylabel(word)
    else:
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        _label_extremes(ax, fig, pos, high, labels, n)
        if group in SITE_COLUMNS:
            ax.set_ylabel(tx.n("{n} site ordered by estimate ({m} lowest and highest named)",
                               "{n} sites ordered by estimate ({m} lowest and highest named)", n,
                               m=_N_EXTREMES))
        else:
            ax.set_ylabel(tx.n("{n} group ({word}) ordered by estimate ({m} lowest and highest named)",
                               "{n} groups ({word}) ordered by estimate ({m} lowest and highest named)", n,
                               word=word, m=_N_EXTREMES))
    numeric_ticks(ax.xaxis, tx)
    pct = tx.pct(level)
    if term == "Intercept":
        ax.set_xlabel(tx("Effect: deviation from the average ({level} interval)", level=pct))
        ax.set_title(tx("Effects by {word} ({method})", word=word.lower(), method=method))
    else:
        ax.set_xlabel(tx("Effect on the slope of {term}: deviation from the average ({level} interval)",
                         term=str(term).replace("$", r"\$"), level=pct))
        ax.set_title(tx("Effects by {word} on {term} ({method})", word=word.lower(),
                        term=str(term).replace("$", r"\$"), method=method))
    columns = 2 if legend_title is None else max(1, min(len(handles), int(fig.get_figwidth() / 2.6)))
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, title=legend_title)
    return ax


def _label_extremes(ax, fig, pos, high, labels, n):
    """Name the lowest and highest groups beside the plot, labels spread at least one line apart."""
    size = SMALL_FONT_SIZE - 0.5
    row_pt = max(ax.get_window_extent().height * 72.0 / fig.dpi / (n + 1), 1e-6)
    step = max(1.0, 1.45 * size / row_pt)  # rows between two labels
    m = min(_N_EXTREMES, n // 2)
    top = [(n - 1 - j, n - 1 - j * step) for j in range(m)]
    bottom = [(j, j * step) for j in range(m)]
    for i, y in top + bottom:
        ax.annotate(labels[i], xy=(high[i], pos[i]), xycoords="data",
                    xytext=(1.02, y), textcoords=("axes fraction", "data"), ha="left", va="center",
                    fontsize=size, annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": NEUTRAL, "lw": 0.5, "shrinkA": 0, "shrinkB": 2})
