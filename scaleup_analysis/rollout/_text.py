"""Figure helpers shared by the rollout results (internal): the colours of periods before and after
adoption, the title of the bars' legend, integer ticks."""

from __future__ import annotations

from .._style import PALETTE

#: Estimates before adoption (placebo / pre-trend checks) and after adoption (effects), as did::ggdid
#: distinguishes them by colour (Okabe-Ito orange and blue; markers differ too, for grey-scale).
PRE_COLOUR, POST_COLOUR = PALETTE[1], PALETTE[0]
PRE_MARKER, POST_MARKER = "s", "o"


def band_title(tx, uniform: bool, level: float) -> str:
    """Legend title saying what the bars are: simultaneous bands or pointwise intervals."""
    if uniform:
        return tx("Bars: simultaneous {level} band", level=tx.pct(level))
    return tx("Bars: pointwise {level} interval", level=tx.pct(level))


def integer_ticks(axis, values, max_ticks: int = 12) -> None:
    """Integer ticks on ``axis`` (``ax.xaxis``) within the range of ``values``: every value when there
    are few, else round steps (no tick outside the data, where its label would be drawn off the axes)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    vals = np.unique(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
    if vals.size == 0:
        return
    if vals.size <= max_ticks:
        ticks = vals
    else:
        ticks = MaxNLocator(nbins=max_ticks - 2, integer=True).tick_values(vals[0], vals[-1])
        ticks = ticks[(ticks >= vals[0]) & (ticks <= vals[-1])]
    axis.set_ticks(ticks, labels=[str(int(t)) for t in ticks])

