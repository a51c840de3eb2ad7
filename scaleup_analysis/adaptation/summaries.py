"""Descriptive summaries of FRAME-coded adaptations: counts and shares, and a site x period timeline.

* :func:`summarize_adaptations` - counts and shares by FRAME field, overall, by region and by phase,
  and per site (:class:`AdaptationSummary`);
* :func:`plot_adaptation_timeline` - one row per site, one marker per adaptation at its start
  period, the fidelity relation in grey-scale markers.

References
----------
Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). The FRAME: an expanded framework for
reporting adaptations and modifications to evidence-based interventions. Implementation Science, 14,
58. https://doi.org/10.1186/s13012-019-0898-y
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError
from .frame import (
    _FIELDS, _MULTI_SEP, _REASON_LEVELS, _REASON_LEVELS_IS, _check_sites, _codes, _tokens, _unknown_sites,
    validate_adaptations,
)

__all__ = ["summarize_adaptations", "AdaptationSummary", "plot_adaptation_timeline"]

@dataclass(frozen=True)
class AdaptationSummary:
    """Result of :func:`summarize_adaptations`.

    Attributes
    ----------
    counts : pandas.DataFrame
        Tidy: ``by`` (``"overall"`` or a column of ``sites`` such as ``rss_code`` or ``phase``),
        ``facet`` (its value; ``"all"`` overall), ``field``, ``code``, ``label``, ``n`` (adaptations
        with this code), ``n_adaptations`` (adaptations in the group) and ``share`` = n / n_adaptations.
        Every code of the scheme appears (zero counts included). For multi-valued fields an adaptation
        counts once for each code it mentions, so shares may add up to more than 1. ``reason_level``
        is the level of ``reason`` (sociopolitical, organizational, provider, recipient).
    per_site : pandas.DataFrame
        One row per site (every site of ``sites`` when given): ``n_adaptations``, ``n_consistent``,
        ``n_inconsistent``, ``n_unknown`` and ``first_inconsistent_period`` (missing if none).
    scheme : str
    n_adaptations : int
    """

    counts: pd.DataFrame
    per_site: pd.DataFrame
    scheme: str
    n_adaptations: int

    def to_frame(self) -> pd.DataFrame:
        """The tidy ``counts`` table."""
        return self.counts.copy()

    def summary(self) -> str:
        """Readable overall counts and shares by field."""
        c = self.counts[(self.counts["by"] == "overall") & (self.counts["n"] > 0)]
        lines = [f"{self.n_adaptations} adaptations ({self.scheme}) at {int((self.per_site['n_adaptations'] > 0).sum())} "
                 f"of {len(self.per_site)} sites"]
        for fld, d in c.groupby("field", sort=False):
            lines.append(f"{fld}:")
            for r in d.itertuples(index=False):
                lines.append(f"  {r.code:<40}{r.n:>6}  {100 * r.share:5.1f}%")
        return "\n".join(lines)

    def plot_counts(self, field: str = "fidelity_relation", by: str = "overall", *, ax=None):
        """Horizontal bars of the counts of one field (stacked by facet if ``by`` is not
        ``"overall"``), grey-scale with hatching; returns the Axes."""
        import matplotlib.pyplot as plt

        d = self.counts[(self.counts["field"] == field) & (self.counts["by"] == by)]
        if d.empty:
            raise ScaleupDataError(
                f"plot_counts(): no counts for field={field!r} and by={by!r}; fields: "
                f"{sorted(self.counts['field'].unique())}, by: {sorted(self.counts['by'].unique())}."
            )
        if ax is None:
            _, ax = plt.subplots(figsize=(6, max(2.5, 0.35 * d["code"].nunique() + 1)))
        codes = list(dict.fromkeys(d["code"]))
        pos = np.arange(len(codes))
        left = np.zeros(len(codes))
        hatches = ["", "//", "..", "xx", "\\\\", "--", "++", "oo"]
        greys = ["0.25", "0.55", "0.8", "0.4", "0.7", "0.15", "0.9", "0.6"]
        for k, (g, dg) in enumerate(d.groupby("facet", sort=True)):
            vals = dg.set_index("code")["n"].reindex(codes).fillna(0).to_numpy(dtype=float)
            ax.barh(pos, vals, left=left, color=greys[k % 8], hatch=hatches[(k // 8) % 8], edgecolor="black",
                    linewidth=0.5, label=str(g))
            left += vals
        ax.set_yticks(pos)
        ax.set_yticklabels(codes)
        ax.invert_yaxis()
        ax.set_xlabel("Number of adaptations")
        ax.set_title(f"Adaptations by {field}" + ("" if by == "overall" else f" and {by}"))
        if by != "overall":
            ax.legend(title=by, fontsize="small")
        return ax


def _per_site(ad: pd.DataFrame, site_ids) -> pd.DataFrame:
    rel = ad["fidelity_relation"].astype(object) if "fidelity_relation" in ad else pd.Series(np.nan, index=ad.index)
    out = pd.DataFrame(index=pd.Index(list(site_ids), name="site_id"))
    out["n_adaptations"] = ad.groupby("site_id").size().reindex(out.index).fillna(0).astype(np.int64)
    for name, code in (("n_consistent", "fidelity-consistent"), ("n_inconsistent", "fidelity-inconsistent"),
                       ("n_unknown", "unknown")):
        out[name] = ad[rel == code].groupby("site_id").size().reindex(out.index).fillna(0).astype(np.int64)
    first = ad[rel == "fidelity-inconsistent"].groupby("site_id")["period"].min()
    out["first_inconsistent_period"] = pd.array(first.reindex(out.index), dtype="Int64")
    return out.reset_index()


def summarize_adaptations(
    data: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    fields: Sequence[str] | None = None,
    by: Sequence[str] = ("rss_code", "phase"),
    scheme: str = "FRAME",
) -> AdaptationSummary:
    """Counts and shares of adaptations by FRAME field, overall, by region and by phase.

    Parameters
    ----------
    data : pandas.DataFrame
        The adaptations table (validated with :func:`validate_adaptations` first).
    sites : pandas.DataFrame, optional
        The ``sites`` table: gives the ``by`` columns and the sites without any adaptation (they
        count in ``per_site`` with zero adaptations).
    fields : sequence of str, optional
        FRAME fields to summarize (default: every coded field present, plus ``reason_level``).
    by : sequence of str, default ("rss_code", "phase")
        Columns of ``sites`` to break the counts down by (ignored without ``sites``).
    scheme : {"FRAME", "FRAME-IS"}

    Returns
    -------
    AdaptationSummary

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=3, n_sites=40, n_periods=10, patients_per_site_period=2)
    >>> s = sa.summarize_adaptations(sim.tables["adaptations"], sites=sim.tables["sites"])
    >>> sorted(s.counts["by"].unique())
    ['overall', 'phase', 'rss_code']
    >>> c = s.counts.query("by == 'overall' and field == 'fidelity_relation'")
    >>> int(c["n"].sum()) == s.n_adaptations
    True
    """
    ad = validate_adaptations(data, scheme=scheme)
    fields_all = [f for f in _FIELDS[scheme] if f in ad.columns]
    if fields is None:
        fields = fields_all + (["reason_level"] if "reason" in ad.columns else [])
    else:
        fields = list(fields)
        bad = [f for f in fields if f not in fields_all + ["reason_level"]]
        if bad:
            raise ScaleupDataError(
                f"argument 'fields': unknown field(s) {bad}; choose among {fields_all + ['reason_level']}."
            )
    if "reason" in ad.columns:
        ad["reason_level"] = [
            None if r is None or (isinstance(r, float) and math.isnan(r))
            else _MULTI_SEP.join(dict.fromkeys(t.split(":")[0] for t in _tokens(r)))
            for r in ad["reason"].astype(object)
        ]
    groupings = [("overall", pd.Series("all", index=ad.index))]
    if sites is not None:
        by = list(by)
        _check_sites(sites, ["site_id"] + by)
        _unknown_sites(ad, sites)
        s = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
        for g in by:
            groupings.append((g, ad["site_id"].map(s[g].astype(object)).astype(str)))
        site_ids = s.index
    else:
        site_ids = sorted(ad["site_id"].unique())
    rows = []
    for fld in fields:
        if fld == "reason_level":
            levels = _REASON_LEVELS if scheme == "FRAME" else _REASON_LEVELS_IS
            codes = [(c, lab) for c, lab in levels]
            multi = True
        else:
            codes = [(c, lab) for c, lab, _ in _codes(scheme, fld)]
            multi = _FIELDS[scheme][fld][1]
        vals = ad[fld].astype(object)
        tok = [[] if v is None or (isinstance(v, float) and math.isnan(v)) else (_tokens(v) if multi else [str(v)])
               for v in vals]
        for gname, gser in groupings:
            gv = gser.to_numpy()
            for g in sorted(pd.unique(gv)) if gname != "overall" else ["all"]:
                in_g = gv == g
                n_g = int(in_g.sum())
                cnt: dict[str, int] = {}
                for t, m in zip(tok, in_g):
                    if m:
                        for c in set(t):
                            cnt[c] = cnt.get(c, 0) + 1
                for code, label in codes:
                    n = cnt.get(code, 0)
                    rows.append((gname, str(g), fld, code, label, n, n_g, n / n_g if n_g else math.nan))
    counts = pd.DataFrame(rows, columns=["by", "facet", "field", "code", "label", "n", "n_adaptations", "share"])
    counts["n"] = counts["n"].astype(np.int64)
    counts["n_adaptations"] = counts["n_adaptations"].astype(np.int64)
    per_site = _per_site(ad, site_ids)
    return AdaptationSummary(counts=counts, per_site=per_site, scheme=scheme, n_adaptations=len(ad))


_REL_STYLE = {
    "fidelity-consistent": dict(marker="o", facecolor="0.15", edgecolor="black", label="fidelity-consistent"),
    "fidelity-inconsistent": dict(marker="X", facecolor="white", edgecolor="black", label="fidelity-inconsistent"),
    "unknown": dict(marker="s", facecolor="0.7", edgecolor="0.3", label="unknown"),
}


def plot_adaptation_timeline(
    data: pd.DataFrame,
    *,
    sites: pd.DataFrame | None = None,
    n_periods: int | None = None,
    scheme: str = "FRAME",
    ax=None,
):
    """Timeline of adaptations: one row per site, one marker per adaptation at its start period.

    The fidelity relation is encoded by the marker shape and fill (filled circle: fidelity-consistent;
    open cross: fidelity-inconsistent; grey square: unknown), so the figure reads in grey-scale.
    Several adaptations of a site in one period are spread horizontally. With ``sites`` (columns
    ``site_id`` and ``adoption_period``) every adopting site gets a row, ordered by adoption, and a
    light band shows the periods in which it delivers the innovation.

    Parameters
    ----------
    data : pandas.DataFrame
        The adaptations table.
    sites : pandas.DataFrame, optional
    n_periods : int, optional
        Last period shown (default: the last period with an adaptation).
    scheme : {"FRAME", "FRAME-IS"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=3, n_sites=40, n_periods=10, patients_per_site_period=2)
    >>> ax = sa.plot_adaptation_timeline(sim.tables["adaptations"], sites=sim.tables["sites"])
    >>> ax.get_xlabel()
    'Period (start of the adaptation)'
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ad = validate_adaptations(data, scheme=scheme)
    if "fidelity_relation" not in ad.columns:
        ad["fidelity_relation"] = "unknown"
    ad["fidelity_relation"] = ad["fidelity_relation"].astype(object).fillna("unknown")
    adopt = {}
    if sites is not None:
        _check_sites(sites, ["site_id", "adoption_period"])
        _unknown_sites(ad, sites)
        s = sites.assign(site_id=sites["site_id"].astype(str))
        a = pd.to_numeric(s["adoption_period"], errors="coerce").astype(float)
        keep = a.notna().to_numpy() | s["site_id"].isin(set(ad["site_id"])).to_numpy()
        s, a = s[keep], a[keep]
        order = np.lexsort((s["site_id"].to_numpy(), a.fillna(np.inf).to_numpy()))
        site_order = list(s["site_id"].to_numpy()[order])
        adopt = dict(zip(s["site_id"], a))
    else:
        site_order = sorted(ad["site_id"].unique(), key=lambda x: (ad.loc[ad["site_id"] == x, "period"].min(), x))
    T = int(n_periods) if n_periods is not None else int(max(ad["period"].max() if len(ad) else 1, 1))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(3.0, 0.16 * len(site_order) + 1.2)))
    ypos = {sid: i for i, sid in enumerate(site_order)}
    for sid, y in ypos.items():
        a = adopt.get(sid, np.nan)
        if np.isfinite(a):
            ax.add_patch(Rectangle((a - 0.5, y - 0.4), T - a + 1, 0.8, facecolor="0.92", edgecolor="none", zorder=0))
    ad = ad.sort_values(["site_id", "period", "adaptation_id"])
    k = ad.groupby(["site_id", "period"]).cumcount().to_numpy()
    m = ad.groupby(["site_id", "period"])["period"].transform("size").to_numpy()
    x = ad["period"].to_numpy(dtype=float) + (k - (m - 1) / 2) * 0.22
    y = ad["site_id"].map(ypos).to_numpy(dtype=float)
    rel = ad["fidelity_relation"].to_numpy()
    for code, st in _REL_STYLE.items():
        sel = rel == code
        ax.scatter(x[sel], y[sel], marker=st["marker"], s=36, facecolors=st["facecolor"], edgecolors=st["edgecolor"],
                   linewidths=0.9, label=f"{st['label']} ({int(sel.sum())})", zorder=3)
    ax.set_xlim(0.5, T + 0.5)
    ax.set_ylim(len(site_order) - 0.5, -0.5)
    ax.set_yticks(range(len(site_order)))
    ax.set_yticklabels(site_order, fontsize=6 if len(site_order) > 30 else 8)
    ax.set_xlabel("Period (start of the adaptation)")
    ax.set_ylabel("Site" + (" (ordered by adoption; shaded = delivering)" if adopt else ""))
    ax.set_title("Documented adaptations over time (FRAME fidelity relation)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    return ax
