"""Descriptive summaries of FRAME-coded adaptations: counts and shares, and a site x period timeline.

* :func:`summarize_adaptations` - counts and shares by FRAME field, overall, by region and by phase,
  and per site (:class:`AdaptationSummary`);
* :func:`plot_adaptation_timeline` - one row per site (grouped by region), one marker per adaptation
  at its start period, the fidelity relation in colour and shape.

References
----------
Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). The FRAME: an expanded framework for
reporting adaptations and modifications to evidence-based interventions. Implementation Science, 14,
58. https://doi.org/10.1186/s13012-019-0898-y
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .._checks import checked_inputs
from .._display import Displayed
from .._style import BETTER, GREY, NEUTRAL, PALETTE, SEQUENTIAL, SMALL_FONT_SIZE, WORSE, data_text, group_rows, new_axes, region_labels, styled, thinned, ticks_inside
from ..errors import ScaleupDataError
from ..i18n import N_
from ..narrative import Text
from .frame import (
    _FIELDS, _MULTI_SEP, _REASON_LEVELS, _REASON_LEVELS_IS, _SUBREASONS, _check_sites, _codes, _tokens,
    _unknown_sites, validate_adaptations,
)

__all__ = ["summarize_adaptations", "AdaptationSummary", "plot_adaptation_timeline"]

#: Names of the FRAME fields (columns of the adaptations table) in figures and summaries.
_FIELD_NAMES = {
    "when": N_("When the adaptation was made"),
    "planned": N_("Planned or unplanned"),
    "who_decided": N_("Who decided"),
    "what_modified": N_("What was modified"),
    "level": N_("Level of delivery"),
    "nature": N_("Nature of the adaptation"),
    "fidelity_relation": N_("Relation to fidelity"),
    "goal": N_("Goal"),
    "reason": N_("Reason"),
    "reason_level": N_("Level of the reason"),
}
#: Names of the ``by`` columns and of the phases of the ``sites`` table.
_BY_NAMES = {"rss_code": N_("region"), "phase": N_("phase")}
_PHASE_NAMES = {"pilot": N_("pilot"), "scale-up": N_("scale-up"), "not-adopted": N_("not adopted")}


def _field_name(tx, fld: str) -> str:
    return tx(_FIELD_NAMES[fld]) if fld in _FIELD_NAMES else data_text(fld.replace("_", " "))


def _code_label(tx, scheme: str, fld: str, code: str) -> str:
    """The FRAME label of ``code`` of field ``fld`` in the reader's language (the code if unknown)."""
    levels = dict(_REASON_LEVELS if scheme == "FRAME" else _REASON_LEVELS_IS)
    if fld in ("reason", "reason_level"):
        level, _, sub = str(code).partition(":")
        if level not in levels:
            return data_text(code)
        if not sub:
            return tx(levels[level])
        subs = dict(_SUBREASONS.get(level, ()))
        return tx(levels[level]) + tx.colon() + " " + (tx(subs[sub]) if sub in subs else data_text(sub))
    labels = {c: lab for c, lab, _ in _codes(scheme, fld)} if fld in _FIELDS[scheme] else {}
    return tx(labels[code]) if code in labels else data_text(code)


def _facet_labels(tx, by: str, facets) -> dict:
    """Legend labels of the facets of ``by``: region names, phase words, else the values."""
    if by == "rss_code":
        return {f: data_text(v) for f, v in region_labels(list(facets)).items()}
    if by == "phase":
        return {f: tx(_PHASE_NAMES[f]) if f in _PHASE_NAMES else data_text(f) for f in facets}
    return {f: data_text(f) for f in facets}


@dataclass(frozen=True, repr=False)
class AdaptationSummary(Displayed):
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

    def _repr_fields(self) -> dict:
        ps = self.per_site
        rel = self.counts[(self.counts["by"] == "overall") & (self.counts["field"] == "fidelity_relation")]
        out = {"scheme": self.scheme, "n_adaptations": self.n_adaptations,
               "n_sites": len(ps), "n_sites_with_adaptations": int((ps["n_adaptations"] > 0).sum())}
        for code, name in (("fidelity-consistent", "n_consistent"), ("fidelity-inconsistent", "n_inconsistent")):
            if len(rel):
                out[name] = int(rel.loc[rel["code"] == code, "n"].sum())
        return out

    def _summary(self, tx) -> str:
        """Overall counts and shares by field."""
        c = self.counts[(self.counts["by"] == "overall") & (self.counts["n"] > 0)]
        ps = self.per_site
        lines = [tx.n("{n} adaptation ({scheme}) documented at {k} of {m} sites",
                      "{n} adaptations ({scheme}) documented at {k} of {m} sites", self.n_adaptations,
                      scheme=self.scheme, k=tx.int(int((ps["n_adaptations"] > 0).sum())), m=tx.int(len(ps)))]
        for fld, d in c.groupby("field", sort=False):
            lines.append(_field_name(tx, fld) + tx.colon())
            for r in d.itertuples(index=False):
                label = _code_label(tx, self.scheme, fld, r.code)
                lines.append(f"  {label:<48}{tx.int(r.n):>6}  {tx.pct(r.share, 1):>7}")
        return "\n".join(lines)

    @styled
    def plot_counts(self, field: str = "fidelity_relation", by: str = "overall", *, ax=None):
        """Horizontal bars of the counts of one field, labelled with the FRAME labels (stacked by
        facet, one colour per facet, if ``by`` is not ``"overall"``); returns the Axes."""
        from matplotlib.patches import Patch

        tx = Text()
        d = self.counts[(self.counts["field"] == field) & (self.counts["by"] == by)]
        if d.empty:
            raise ScaleupDataError(
                f"plot_counts(): no counts for field={field!r} and by={by!r}; fields: "
                f"{sorted(self.counts['field'].unique())}, by: {sorted(self.counts['by'].unique())}."
            )
        codes = list(dict.fromkeys(d["code"]))
        if len(codes) > 15:  # long code lists (reasons, natures): the codes used only
            used = d.groupby("code", sort=False)["n"].sum()
            codes = [c for c in codes if used[c] > 0] or codes[:15]
        facets = sorted(d["facet"].unique())
        names = _facet_labels(tx, by, facets)
        by_name = tx(_BY_NAMES[by]) if by in _BY_NAMES else data_text(by)
        what = _field_name(tx, field)
        if len(facets) > len(PALETTE):  # too many facets to stack: a table of counts, facet x code
            return self._count_table(d, codes, facets, names, field, by_name, what, ax, tx)
        labels = [textwrap.fill(_code_label(tx, self.scheme, field, c), 34) for c in codes]
        n_lines = sum(lab.count("\n") + 1 for lab in labels)
        ax = new_axes(ax, (7.0, min(13.0, max(2.8, 0.24 * n_lines + 0.25 * len(codes) + 1.4))))
        pos = np.arange(len(codes))
        left = np.zeros(len(codes))
        handles = []
        for k, g in enumerate(facets):
            vals = d[d["facet"] == g].set_index("code")["n"].reindex(codes).fillna(0).to_numpy(dtype=float)
            colour = PALETTE[0] if by == "overall" else PALETTE[k]
            ax.barh(pos, vals, left=left, color=colour, edgecolor="white", linewidth=0.6)
            handles.append(Patch(facecolor=colour, edgecolor="white", label=names[g]))
            left += vals
        for p, total in zip(pos, left):
            ax.annotate(tx.int(int(total)), (total, p), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=SMALL_FONT_SIZE)
        ax.set_xlim(0, max(1.0, left.max()) * 1.12)
        ticks_inside(ax, "x")
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(tx("Number of adaptations"))
        if by == "overall":
            ax.set_title(tx("Adaptations: {field}", field=what))
        else:
            ax.set_title(tx("Adaptations: {field}, by {by}", field=what, by=by_name))
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      title=by_name[:1].upper() + by_name[1:])
        return ax

    def _count_table(self, d, codes, facets, names, field, by_name, what, ax, tx):
        """Counts of many facets (regions): one row per facet, one column per code, counts written."""
        mat = d.pivot_table(index="facet", columns="code", values="n", aggfunc="sum").reindex(
            index=facets, columns=codes).fillna(0).to_numpy(dtype=float)
        labels = [textwrap.fill(_code_label(tx, self.scheme, field, c), 14) for c in codes]
        ax = new_axes(ax, (min(14.0, 3.6 + 1.05 * len(codes)), min(13.0, 1.8 + 0.3 * len(facets))))
        im = ax.imshow(mat, aspect="auto", cmap=SEQUENTIAL, vmin=0, vmax=max(1.0, mat.max()), interpolation="nearest")
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, tx.int(int(v)), ha="center", va="center", fontsize=SMALL_FONT_SIZE,
                    color="black" if v > 0.6 * max(1.0, mat.max()) else "white")
        ax.set_xticks(range(len(codes)), labels)
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(facets)), [names[f] for f in facets])
        ax.grid(False)
        ax.tick_params(length=0)
        ax.set_title(tx("Adaptations: {field}, by {by}", field=what, by=by_name))
        ax.figure.colorbar(im, ax=ax, shrink=0.8, ticks=MaxNLocator(integer=True)).set_label(
            tx("Number of adaptations"))
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


@checked_inputs
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

    Raises
    ------
    ScaleupDataError
        When ``data`` has no adaptations (no shares can be computed), or does not follow the
        coding scheme (see :func:`validate_adaptations`).

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
    if ad.empty:
        raise ScaleupDataError(
            "summarize_adaptations: table 'data' holds no adaptations, so there are no adaptations to summarise "
            "(every share would be 0/0). If no site adapted the programme, report that directly; otherwise check "
            "the file or the filter that produced the table."
        )
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


#: Marker and colour of each fidelity relation in the timeline (shape and colour: readable in grey-scale).
_REL_STYLE = {
    "fidelity-consistent": dict(marker="o", color=BETTER, label=N_("Fidelity-consistent")),
    "fidelity-inconsistent": dict(marker="X", color=WORSE, label=N_("Fidelity-inconsistent")),
    "unknown": dict(marker="s", color=NEUTRAL, label=N_("Relation to fidelity unknown")),
}
_DELIVERING = "#EBEBEB"


@checked_inputs(empty=True)
@styled
def plot_adaptation_timeline(
    data: pd.DataFrame,
    *,
    sites: pd.DataFrame | None = None,
    n_periods: int | None = None,
    scheme: str = "FRAME",
    region: str = "rss_code",
    ax=None,
):
    """Timeline of adaptations: one row per site, one marker per adaptation at its start period.

    The fidelity relation is encoded by the marker's colour and shape (blue circle:
    fidelity-consistent; orange cross: fidelity-inconsistent; grey square: unknown), explained in a
    legend beside the chart. Several adaptations of a site in one period are spread horizontally.
    With ``sites`` (columns ``site_id`` and ``adoption_period``) every adopting site gets a row,
    ordered by adoption, and a light band shows the periods in which it delivers the innovation;
    when ``sites`` also has the ``region`` column the rows are grouped by region and labelled with
    the region's name (the site ids are then shown on the right only when there are at most 40
    rows).

    Parameters
    ----------
    data : pandas.DataFrame
        The adaptations table.
    sites : pandas.DataFrame, optional
    n_periods : int, optional
        Last period shown (default: the last period with an adaptation).
    scheme : {"FRAME", "FRAME-IS"}
    region : str, default "rss_code"
        Region column of ``sites``.
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
    from matplotlib.patches import Patch, Rectangle

    tx = Text()
    ad = validate_adaptations(data, scheme=scheme)
    if "fidelity_relation" not in ad.columns:
        ad["fidelity_relation"] = "unknown"
    ad["fidelity_relation"] = ad["fidelity_relation"].astype(object).fillna("unknown")
    adopt, groups = {}, None
    if sites is not None:
        _check_sites(sites, ["site_id", "adoption_period"])
        _unknown_sites(ad, sites)
        s = sites.assign(site_id=sites["site_id"].astype(str))
        a = pd.to_numeric(s["adoption_period"], errors="coerce").astype(float)
        keep = a.notna().to_numpy() | s["site_id"].isin(set(ad["site_id"])).to_numpy()
        s, a = s[keep], a[keep]
        keys = [s["site_id"].to_numpy(), a.fillna(np.inf).to_numpy()]
        if region in s.columns:
            reg = s[region].astype(object).where(s[region].notna(), "").astype(str).to_numpy()
            keys += [reg, reg == ""]
        order = np.lexsort(keys)
        site_order = list(s["site_id"].to_numpy()[order])
        adopt = dict(zip(s["site_id"], a))
        if region in s.columns:
            groups = list(reg[order])
    else:
        site_order = sorted(ad["site_id"].unique(), key=lambda x: (ad.loc[ad["site_id"] == x, "period"].min(), x))
    T = int(n_periods) if n_periods is not None else int(max(ad["period"].max() if len(ad) else 1, 1))
    n_rows = len(site_order)
    created = ax is None
    ax = new_axes(ax, (9.0, min(13.0, max(3.5, 2.2 + (0.09 if n_rows > 60 else 0.16) * n_rows))))
    axes_height = ax.figure.get_size_inches()[1] * ax.get_position().height
    ypos = {sid: i for i, sid in enumerate(site_order)}
    for sid, y in ypos.items():
        a = adopt.get(sid, np.nan)
        if np.isfinite(a):
            ax.add_patch(Rectangle((a - 0.5, y - 0.45), T - a + 1, 0.9, facecolor=_DELIVERING, edgecolor="none",
                                   zorder=0))
    ad = ad.sort_values(["site_id", "period", "adaptation_id"])
    k = ad.groupby(["site_id", "period"]).cumcount().to_numpy()
    m = ad.groupby(["site_id", "period"])["period"].transform("size").to_numpy()
    x = ad["period"].to_numpy(dtype=float) + (k - (m - 1) / 2) * 0.22
    y = ad["site_id"].map(ypos).to_numpy(dtype=float)
    rel = ad["fidelity_relation"].to_numpy()
    size = 30 if n_rows <= 60 else 22
    for code, st in _REL_STYLE.items():
        sel = rel == code
        ax.scatter(x[sel], y[sel], marker=st["marker"], s=size, color=st["color"], edgecolors="white",
                   linewidths=0.4, label=f"{tx(st['label'])} ({tx.int(int(sel.sum()))})", zorder=3)
    ax.set_xlim(0.5, T + 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ticks_inside(ax, "x")
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(tx("Period (start of the adaptation)"))
    if groups is not None:
        names = region_labels([g for g in dict.fromkeys(groups) if g != ""])
        names[""] = tx("No region")
        group_rows(ax, groups, {g: data_text(n) for g, n in names.items()}, axes_height_in=axes_height,
                    line=GREY)
        ax.set_ylabel(tx("Region (one row per site, ordered by adoption)"))
        if n_rows <= 40:
            right = ax.secondary_yaxis("right")
            shown = thinned(n_rows, axes_height)
            right.set_yticks(shown, [data_text(site_order[i]) for i in shown])
            right.tick_params(length=0)
            right.set_ylabel(tx("Site"))
    else:
        shown = thinned(n_rows, axes_height)
        ax.set_yticks(shown, [data_text(site_order[i]) for i in shown])
        ax.set_ylabel(tx("Site (ordered by adoption)") if adopt else tx("Site"))
    ax.set_title(tx("Documented adaptations over time, by relation to fidelity"))
    handles, _ = ax.get_legend_handles_labels()
    if adopt:
        handles.append(Patch(facecolor=_DELIVERING, edgecolor="none", label=tx("Site delivering the innovation")))
    if created:  # under the chart, outside the data
        ax.figure.legend(handles=handles, loc="outside lower center", ncols=2, title=tx("Adaptations"))
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=tx("Adaptations"),
                  alignment="left")
    return ax
