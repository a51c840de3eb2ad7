"""Drawing of the forest plot of :meth:`MetaAnalysisResult.plot_forest` (internal), in the layout of
metafor's ``forest()``: study labels on the left (with the column heading), the estimates with their
confidence intervals in the middle, the columns "estimate [CI]" and "weight" on the right, the pooled
estimate as a diamond on its own row, the prediction interval (random effects) as a dotted bar on the
next row, subgroup headings, and a vertical line at the null effect.

Rows are 0.24 inch high with 9 pt text; with many studies the rows shrink (never below 7 pt text) so
that the figure stays at most 14 inches high; beyond that (about 100 studies) the study labels and
numbers are left out, the studies are ordered by estimate and the axis label says so.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.text import Text as TextArtist
from matplotlib.ticker import NullFormatter
from scipy import stats

from .._style import GREY, PALETTE, SMALL_FONT_SIZE, log_ticks, numeric_ticks, region_labels
from ..i18n import N_
from ._text import REGION_COLUMNS

#: effect measures analysed on the log scale (effect_sizes' OR and RR): drawn back-transformed
LOG_MEASURES = {"OR": N_("Odds ratio"), "RR": N_("Risk ratio")}
#: other measures of effect_sizes, by name (x-axis label)
MEASURE_NAMES = {"SMD": N_("Standardised mean difference"), "MD": N_("Mean difference"),
                 "RD": N_("Risk difference")}
_MAX_HEIGHT = 14.0  # inches
_MARGINS = 1.7  # inches above and below the rows: title, axis, axis label, legend
_ROW = 0.24  # inches per row at the normal text size
_FONT = SMALL_FONT_SIZE + 0.5
_MIN_FONT = 7.0
_GAP = 8.0  # points between columns
_LEADING = 1.25  # row height / font size


def _width_pt(fig, text: str, size: float, weight: str = "normal") -> float:
    """Width of ``text`` drawn at ``size`` points, in points."""
    if not text:
        return 0.0
    artist = TextArtist(0, 0, text, fontsize=size, fontweight=weight)
    artist.set_figure(fig)
    return artist.get_window_extent(fig.canvas.get_renderer()).width * 72.0 / fig.dpi


def _rows(res, subgroup):
    """Body rows from the top: ("header", text, None) and ("study", label, index)."""
    labels = [str(lab).replace("$", r"\$") for lab in res.weights.index]
    if subgroup is None:
        return [("study", labels[i], i) for i in range(res.k)]
    values = res.data[subgroup]
    names = region_labels(values.unique()) if subgroup in REGION_COLUMNS else {}
    key = values.astype(str).to_numpy()
    rows, current = [], None
    for i in np.argsort(key, kind="stable"):
        if key[i] != current:
            current = key[i]
            rows.append(("header", str(names.get(values.iloc[i], current)).replace("$", r"\$"), None))
        rows.append(("study", labels[i], i))
    return rows


def _layout(n_rows: int, ax) -> tuple[float, float, float, bool]:
    """(figure height in inches or 0 for the caller's axes, row height and font size in points,
    whether the studies are labelled)."""
    if ax is not None:  # the caller's axes: fit the text to their height
        row_pt = ax.get_window_extent().height * 72.0 / ax.figure.dpi / max(n_rows, 1)
        size = min(_FONT, row_pt / _LEADING)
        return 0.0, row_pt, max(size, _MIN_FONT), size >= _MIN_FONT
    height = _MARGINS + n_rows * _ROW
    if height <= _MAX_HEIGHT:
        return max(height, 3.0), _ROW * 72.0, _FONT, True
    row_pt = (_MAX_HEIGHT - _MARGINS) / n_rows * 72.0
    size = row_pt / _LEADING
    return _MAX_HEIGHT, row_pt, max(size, _MIN_FONT), size >= _MIN_FONT


def draw_forest(res, *, subgroup, xlabel, title, measure, ax, tx, random: bool):
    """Draw the forest plot of ``res`` (a MetaAnalysisResult); returns the Axes of the estimates."""
    import matplotlib.pyplot as plt

    f = res._fit
    back = measure in LOG_MEASURES
    tr = np.exp if back else (lambda x: x)
    z = float(stats.norm.isf((1 - res.level) / 2))
    sei = np.sqrt(f.vi)
    est, lo, hi = tr(f.yi), tr(f.yi - z * sei), tr(f.yi + z * sei)
    rows = _rows(res, subgroup)
    n_body = len(rows)
    bottom = [("pooled", None)] + ([("pi", None)] if random and np.isfinite(res.pi_low) else [])
    n_rows = n_body + 2 + len(bottom) + 1  # headings, a gap, the pooled rows, a gap
    height, row_pt, size, labelled = _layout(n_rows, ax)
    if not labelled and subgroup is None:  # unlabelled rows read best in order (metafor's order="obs")
        rows = [rows[i] for i in np.argsort(-f.yi, kind="stable")]
    created = ax is None
    if created:
        _, ax = plt.subplots(figsize=(9.0, height), layout="constrained")
    fig = ax.figure

    # y positions: studies n_body..1 from the top, a line at 0, pooled at -1, prediction interval at -2
    ys = {pos: n_body - pos for pos in range(n_body)}
    y_head = n_body + 1.3
    ax.set_ylim(-len(bottom) - 0.7, n_body + 2.0)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.grid(False, axis="y")
    ax.axhline(0.0, color=GREY, lw=0.8)

    wmax = float(res.weights.max())
    for pos, (kind, _, i) in enumerate(rows):
        if kind != "study":
            continue
        y = ys[pos]
        ax.plot([lo[i], hi[i]], [y, y], color=PALETTE[0], lw=1.0, solid_capstyle="butt")
        ax.plot(est[i], y, marker="s", color=PALETTE[0], linestyle="none",
                markersize=min(3 + 6 * math.sqrt(res.weights.iloc[i] / wmax), 0.7 * size + 3, max(0.8 * row_pt, 2)))
    pooled, p_lo, p_hi = tr(res.estimate), tr(res.ci_low), tr(res.ci_high)
    h = 0.32
    ax.fill([p_lo, pooled, p_hi, pooled], [-1, -1 + h, -1, -1 - h], color=PALETTE[3], zorder=3)
    if len(bottom) > 1:
        ax.plot([tr(res.pi_low), tr(res.pi_high)], [-2, -2], color=PALETTE[3], lw=1.4, linestyle=":")
    null = 1.0 if back else 0.0
    ax.axvline(null, color="0.35", lw=0.9, zorder=1)
    if back:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    numeric_ticks(ax.xaxis, tx, ticks=log_ticks(*ax.get_xlim()) if back else None)

    # text columns: left of the axes (labels), right of the axes (estimate [CI], weight)
    level = tx.pct(res.level)
    model = tx("RE model") if random else tx("FE model")
    heads = (tx("Study"), tx("Estimate [{level} CI]", level=level), tx("Weight"))
    ci_text = lambda e, l, u: tx("{estimate} [{low}, {high}]", estimate=tx.num(e), low=tx.num(l),  # noqa: E731
                                 high=tx.num(u))
    left = [(heads[0], y_head, "bold", 0.0)]
    right = [(heads[1], heads[2], y_head, "bold")]
    indent = 6.0 if subgroup is not None else 0.0
    if labelled:
        for pos, (kind, text, i) in enumerate(rows):
            if kind == "header":
                left.append((text, ys[pos], "bold", 0.0))
            else:
                left.append((text, ys[pos], "normal", indent))
                right.append((ci_text(est[i], lo[i], hi[i]), tx.pct(res.weights.iloc[i] / 100, 1), ys[pos],
                              "normal"))
    left.append((model, -1, "bold", 0.0))
    right.append((ci_text(pooled, p_lo, p_hi), tx.pct(1.0, 1), -1, "bold"))
    if len(bottom) > 1:
        left.append((tx("Prediction interval ({level})", level=level), -2, "normal", 0.0))
        right.append((tx("[{low}, {high}]", low=tx.num(tr(res.pi_low)), high=tx.num(tr(res.pi_high))), "", -2,
                      "normal"))
    w_left = max(_width_pt(fig, t, size, wt) + ind for t, _, wt, ind in left)
    w_ci = max(_width_pt(fig, t, size, wt) for t, _, _, wt in right)
    w_w = max(_width_pt(fig, t, size, wt) for _, t, _, wt in right)
    if created:  # the plot keeps about 4 inches; the text columns take what they need
        fig.set_size_inches(min(14.0, 4.2 + (w_left + w_ci + w_w + 4 * _GAP) / 72.0 + 0.4), height)
    where = {"xycoords": ("axes fraction", "data"), "textcoords": "offset points", "va": "center",
             "fontsize": size, "annotation_clip": False}
    for text, y, weight, ind in left:
        ax.annotate(text, (0, y), xytext=(-_GAP - w_left + ind, 0), ha="left", fontweight=weight, **where)
    for ci, w, y, weight in right:
        ax.annotate(ci, (1, y), xytext=(_GAP + w_ci, 0), ha="right", fontweight=weight, **where)
        if w:
            ax.annotate(w, (1, y), xytext=(2 * _GAP + w_ci + w_w, 0), ha="right", fontweight=weight, **where)
    handles = [Line2D([], [], marker="s", color=PALETTE[0], linestyle="-", markeredgecolor=PALETTE[0],
                      markerfacecolor=PALETTE[0], label=tx("Study ({level} CI; size: weight)", level=level)),
               Line2D([], [], marker="D", color=PALETTE[3], linestyle="none", label=tx("Pooled effect"))]
    if len(bottom) > 1:
        handles.append(Line2D([], [], color=PALETTE[3], linestyle=":", lw=1.4,
                              label=tx("Prediction interval ({level})", level=level)))
    handles.append(Line2D([], [], color="0.35", lw=0.9, label=tx("No effect")))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=size)
    if xlabel is None:
        name = LOG_MEASURES.get(measure) or MEASURE_NAMES.get(measure)
        xlabel = tx("{measure} (log scale)", measure=tx(name)) if back else (tx(name) if name else tx("Effect size"))
        if not labelled:
            xlabel += "\n" + textwrap.fill(tx.n("{n} study ordered by estimate: too many rows to label at a readable size "
                                  "(values in yi, vi and weights)", "{n} studies ordered by estimate: too many rows "
                                  "to label at a readable size (values in yi, vi and weights)", res.k), 75)
    ax.set_xlabel(xlabel)
    method = res.method
    ax.set_title(title if title is not None else tx("Effect by study and pooled effect ({method}, k = {k})",
                                                    method=method, k=tx.int(res.k)))
    return ax
