r"""Scale-up potential assessment: instruments as data, scoring, completeness, agreement, profiles.

An *instrument* (ISAT, an ISSaQ-style criteria checklist, PSAT, or your own) is a YAML file (see
``scaleup_analysis/instruments/*.yaml``) holding its identity and citation, its domains and items
(with short labels; a ``wording`` field for licensed item text), the response scale, the scoring
rule, the direction and the interpretation thresholds. :func:`load_instrument` validates such a file,
:func:`list_instruments` lists the shipped ones and :func:`score_assessment` scores the
``assessments`` table (one row per instrument x innovation x rater x item) into domain and overall
scores per rater and across raters, with completeness, inter-rater agreement (Krippendorff's alpha)
and a readiness recommendation.

Instrument file keys
--------------------
``id``, ``name``, ``citation`` (str); ``version``, ``notes`` (optional str);
``level_of_measurement`` (``nominal``, ``ordinal``, ``interval`` or ``ratio``; used for the
agreement); ``scale`` (``min``, ``max``, optional ``labels``: value -> label);
``scoring`` (``mean``, ``sum``, ``share_met`` or ``min``); ``met_at`` (``share_met`` only; a
score >= ``met_at`` counts as met, default ``scale.max``); ``direction`` (``higher_is_better`` or
``lower_is_better``); ``min_answered`` (share of a domain's items that must be answered for a
domain score, in (0, 1], default 0.5); ``thresholds`` (optional: ``source`` = ``instrument`` or
``ours``, ``weak_domain_below``, ``categories``: list of ``{min, label}`` from the highest);
``parts`` (optional: part id -> label); ``domains`` (list of ``{id, label, part}``); ``items``
(list of ``{id, domain, label, wording}``).
"""

from __future__ import annotations

import math
import os
import textwrap
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ._checks import check_draw_count, checked_inputs, numeric_column, rows_text
from ._display import Displayed
from ._style import NEUTRAL, PALETTE, data_text, new_axes, styled, ticks_inside, word
from .errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from .i18n import N_
from .narrative import Text

__all__ = [
    "Instrument",
    "AssessmentScores",
    "load_instrument",
    "list_instruments",
    "score_assessment",
]

_SCORING = ("mean", "sum", "share_met", "min")
_LEVELS = ("nominal", "ordinal", "interval", "ratio")
_DIRECTIONS = ("higher_is_better", "lower_is_better")
#: Words of the instrument's options in summaries (catalogue messages).
_WORDS = {
    "nominal": N_("nominal"), "ordinal": N_("ordinal"), "interval": N_("interval"), "ratio": N_("ratio"),
    "mean": N_("mean of the items"), "sum": N_("sum of the items"), "share_met": N_("share of criteria met"),
    "min": N_("lowest item"), "higher_is_better": N_("higher is better"), "lower_is_better": N_("lower is better"),
    "instrument": N_("thresholds of the instrument"), "ours": N_("our thresholds, documented in the package"),
    "none": N_("no thresholds"),
}


# --------------------------------------------------------------------------------------------
# instruments
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Instrument(Displayed):
    """A validated instrument definition (see :func:`load_instrument`).

    Attributes
    ----------
    id, name, citation, version, notes : str
    metric : str
        Level of measurement of the item scores (Krippendorff's alpha ``metric``).
    scale_min, scale_max : float
    scale_labels : dict
        Score -> label.
    scoring : str
        ``mean``, ``sum``, ``share_met`` or ``min``.
    met_at : float or None
        Threshold of a met criterion (``share_met``).
    direction : str
    min_answered : float
        Share of a domain's items that must be answered for a domain score.
    thresholds : tuple of (float, str)
        Readiness categories ``(min_overall, label)``, highest first (empty if none).
    thresholds_source : str
        ``"instrument"`` or ``"ours"`` (documented by the package), or ``"none"``.
    weak_domain_below : float or None
        Domains scoring below this value are flagged as weak.
    parts : dict
    domains : pandas.DataFrame
        ``domain``, ``label``, ``part``, ``n_items`` in instrument order.
    items : pandas.DataFrame
        ``item_id``, ``domain``, ``label``, ``wording`` in instrument order.
    source : str
        File the definition was read from.
    """

    id: str
    name: str
    citation: str
    version: str
    notes: str
    metric: str
    scale_min: float
    scale_max: float
    scale_labels: dict
    scoring: str
    met_at: float | None
    direction: str
    min_answered: float
    thresholds: tuple
    thresholds_source: str
    weak_domain_below: float | None
    parts: dict
    domains: pd.DataFrame
    items: pd.DataFrame
    source: str

    def to_frame(self) -> pd.DataFrame:
        """Items with their domain label and part."""
        return self.items.merge(
            self.domains[["domain", "part"]].assign(domain_label=self.domains["label"]), on="domain", how="left"
        )

    def _repr_fields(self) -> dict:
        return {"id": self.id, "n_domains": len(self.domains), "n_items": len(self.items),
                "scale": (self.scale_min, self.scale_max), "scoring": self.scoring, "metric": self.metric,
                "direction": self.direction}

    def _summary(self, tx) -> str:
        """The instrument's structure: scale, scoring, domains, readiness thresholds and citation."""
        lines = [
            f"{self.id}: {self.name}",
            "  " + tx("scale {lo} to {hi} ({metric}), scoring: {scoring}, {direction}; {domains}, {items}",
                      lo=tx.num(self.scale_min, _digits(self.scale_min)),
                      hi=tx.num(self.scale_max, _digits(self.scale_max)),
                      metric=word(tx, _WORDS, self.metric), scoring=word(tx, _WORDS, self.scoring),
                      direction=word(tx, _WORDS, self.direction),
                      domains=tx.n("{n} domain", "{n} domains", len(self.domains)),
                      items=tx.n("{n} item", "{n} items", len(self.items))),
        ]
        for r in self.domains.itertuples(index=False):
            part = f"[{r.part}] " if r.part else ""
            lines.append(f"  {part}{r.domain}: {tx(r.label)} ({tx.n('{n} item', '{n} items', r.n_items)})")
        if self.thresholds:
            lines.append("  " + _thresholds_text(self, tx))
        lines.append("  " + tx("Citation: {citation}", citation=self.citation))
        return "\n".join(lines)

    def category(self, overall: float) -> str:
        """Readiness category of an overall score (``"unclassified"`` if NaN or no thresholds)."""
        if overall is None or not np.isfinite(overall) or not self.thresholds:
            return "unclassified"
        for lo, lab in self.thresholds:
            if (overall >= lo) if self.direction == "higher_is_better" else (overall <= lo):
                return lab
        return self.thresholds[-1][1]


def _instrument_dir():
    return resources.files("scaleup_analysis").joinpath("instruments")


def _shipped() -> dict[str, object]:
    out = {}
    for f in sorted(_instrument_dir().iterdir(), key=lambda p: p.name):
        if f.name.endswith((".yaml", ".yml")):
            out[f.name.rsplit(".", 1)[0].lower()] = f
    return out


def _bad(src: str, msg: str) -> ScaleupDataError:
    return ScaleupDataError(f"instrument file {src}: {msg} (see the keys listed in scaleup_analysis.scalability).")


def _num(src, key, v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise _bad(src, f"{key!r} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise _bad(src, f"{key!r} must be finite, got {v!r}")
    return x


def _parse_instrument(data, src: str) -> Instrument:
    if not isinstance(data, dict):
        raise _bad(src, "the file must hold a mapping of keys (id, name, citation, scale, domains, items, ...)")
    for key in ("id", "name", "citation", "scale", "scoring", "domains", "items"):
        if key not in data or data[key] in (None, "", [], {}):
            raise _bad(src, f"required key {key!r} is missing or empty")
    scale = data["scale"]
    if not isinstance(scale, dict) or "min" not in scale or "max" not in scale:
        raise _bad(src, "'scale' must have 'min' and 'max'")
    smin, smax = _num(src, "scale.min", scale["min"]), _num(src, "scale.max", scale["max"])
    if not smax > smin:
        raise _bad(src, f"'scale.max' ({smax:g}) must exceed 'scale.min' ({smin:g})")
    labels = scale.get("labels") or {}
    if not isinstance(labels, dict):
        raise _bad(src, "'scale.labels' must map scores to labels")
    labels = {_num(src, "scale.labels", k): str(v) for k, v in labels.items()}
    scoring = data["scoring"]
    if scoring not in _SCORING:
        raise _bad(src, f"'scoring' must be one of {_SCORING}, got {scoring!r}")
    level = data.get("level_of_measurement", "ordinal")
    if level not in _LEVELS:
        raise _bad(src, f"'level_of_measurement' must be one of {_LEVELS}, got {level!r}")
    direction = data.get("direction", "higher_is_better")
    if direction not in _DIRECTIONS:
        raise _bad(src, f"'direction' must be one of {_DIRECTIONS}, got {direction!r}")
    min_ans = _num(src, "min_answered", data.get("min_answered", 0.5))
    if not 0 < min_ans <= 1:
        raise _bad(src, f"'min_answered' must be in (0, 1], got {min_ans:g}")
    met_at = None
    if scoring == "share_met":
        met_at = _num(src, "met_at", data.get("met_at", smax))
        if not smin < met_at <= smax:
            raise _bad(src, f"'met_at' must lie in ({smin:g}, {smax:g}], got {met_at:g}")
    parts = {str(k): str(v) for k, v in (data.get("parts") or {}).items()}

    doms = data["domains"]
    if not isinstance(doms, list) or not all(isinstance(d, dict) for d in doms):
        raise _bad(src, "'domains' must be a list of {id, label, part}")
    drows = []
    for i, d in enumerate(doms):
        if not d.get("id") or not d.get("label"):
            raise _bad(src, f"domain #{i + 1} needs 'id' and 'label', got {d!r}")
        part = str(d.get("part", ""))
        if parts and part not in parts:
            raise _bad(src, f"domain {d['id']!r} has part {part!r}, not one of 'parts' {list(parts)}")
        drows.append((str(d["id"]), str(d["label"]), part))
    domains = pd.DataFrame(drows, columns=["domain", "label", "part"])
    dup = domains["domain"][domains["domain"].duplicated()].tolist()
    if dup:
        raise _bad(src, f"duplicated domain id(s) {dup}")

    items = data["items"]
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise _bad(src, "'items' must be a list of {id, domain, label, wording}")
    irows = []
    for i, it in enumerate(items):
        if not it.get("id") or not it.get("domain") or not it.get("label"):
            raise _bad(src, f"item #{i + 1} needs 'id', 'domain' and 'label', got {it!r}")
        irows.append((str(it["id"]), str(it["domain"]), str(it["label"]), it.get("wording")))
    items_df = pd.DataFrame(irows, columns=["item_id", "domain", "label", "wording"])
    dup = items_df["item_id"][items_df["item_id"].duplicated()].tolist()
    if dup:
        raise _bad(src, f"duplicated item id(s) {dup[:5]}")
    unknown = sorted(set(items_df["domain"]) - set(domains["domain"]))
    if unknown:
        raise _bad(src, f"item(s) refer to undefined domain(s) {unknown}")
    counts = items_df.groupby("domain").size()
    empty = [d for d in domains["domain"] if d not in counts.index]
    if empty:
        raise _bad(src, f"domain(s) {empty} have no item")
    domains["n_items"] = domains["domain"].map(counts).astype(int)

    thr = data.get("thresholds") or {}
    if not isinstance(thr, dict):
        raise _bad(src, "'thresholds' must be a mapping with 'source', 'categories', 'weak_domain_below'")
    cats = []
    for c in thr.get("categories") or []:
        if not isinstance(c, dict) or "min" not in c or "label" not in c:
            raise _bad(src, f"each threshold category needs 'min' and 'label', got {c!r}")
        cats.append((_num(src, "thresholds.categories.min", c["min"]), str(c["label"])))
    mins = [m for m, _ in cats]
    want = sorted(mins, reverse=(direction == "higher_is_better"))
    if mins != want:
        raise _bad(src, "threshold categories must be listed from the best to the worst score")
    src_thr = str(thr.get("source", "ours" if cats else "none"))
    if src_thr not in ("instrument", "ours", "none"):
        raise _bad(src, f"'thresholds.source' must be 'instrument' or 'ours', got {src_thr!r}")
    weak = thr.get("weak_domain_below")
    weak = None if weak is None else _num(src, "thresholds.weak_domain_below", weak)
    return Instrument(
        id=str(data["id"]),
        name=str(data["name"]),
        citation=" ".join(str(data["citation"]).split()),
        version=str(data.get("version", "")),
        notes=" ".join(str(data.get("notes", "")).split()),
        metric=level,
        scale_min=smin,
        scale_max=smax,
        scale_labels=labels,
        scoring=scoring,
        met_at=met_at,
        direction=direction,
        min_answered=min_ans,
        thresholds=tuple(cats),
        thresholds_source=src_thr,
        weak_domain_below=weak,
        parts=parts,
        domains=domains,
        items=items_df,
        source=src,
    )


def load_instrument(name_or_path) -> Instrument:
    """Load and validate an instrument definition (a shipped one by id, or a YAML file).

    Parameters
    ----------
    name_or_path : str, pathlib.Path or Instrument
        Id of a shipped instrument (``"ISAT"``, ``"ISSaQ"``, ``"PSAT"``; case-insensitive), or the
        path of a YAML file with the keys described in :mod:`scaleup_analysis.scalability`. An
        :class:`Instrument` is returned unchanged.

    Returns
    -------
    Instrument

    Raises
    ------
    ScaleupDataError
        Unknown name, unreadable file, or malformed definition (the message names the file and the
        key at fault).

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> isat = sa.load_instrument("ISAT")
    >>> len(isat.domains), len(isat.items), (isat.scale_min, isat.scale_max), isat.scoring
    (10, 40, (1.0, 4.0), 'mean')
    """
    import yaml

    if isinstance(name_or_path, Instrument):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        raise ScaleupDataError(
            f"argument 'name_or_path' must be an instrument id such as 'ISAT', a YAML file path or an "
            f"Instrument; got a {type(name_or_path).__name__}."
        )
    shipped = _shipped()
    key = str(name_or_path).lower()
    if key in shipped:
        res = shipped[key]
        text, src = res.read_text(encoding="utf-8"), f"<shipped>/{res.name}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ScaleupDataError(
                f"argument 'name_or_path' = {str(name_or_path)!r} is neither a shipped instrument "
                f"({[s.upper() if s != 'issaq' else 'ISSaQ' for s in shipped]}) nor an existing YAML file."
            )
        text, src = path.read_text(encoding="utf-8"), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScaleupDataError(f"instrument file {src}: not valid YAML ({exc}).") from exc
    return _parse_instrument(data, src)


def list_instruments() -> pd.DataFrame:
    """Shipped instruments: ``id``, ``name``, ``n_domains``, ``n_items``, ``scale``, ``scoring``, ``citation``.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sa.list_instruments()[["id", "n_domains", "n_items"]].to_string(index=False)
    '   id  n_domains  n_items\\n ISAT         10       40\\nISSaQ          5       16\\n PSAT          8       40'
    """
    rows = []
    for name in _shipped():
        ins = load_instrument(name)
        rows.append(
            (ins.id, ins.name, len(ins.domains), len(ins.items), f"{ins.scale_min:g}-{ins.scale_max:g}",
             ins.scoring, ins.citation)
        )
    return pd.DataFrame(rows, columns=["id", "name", "n_domains", "n_items", "scale", "scoring", "citation"])


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class AssessmentScores(Displayed):
    """Result of :func:`score_assessment`.

    Attributes
    ----------
    instrument : Instrument
    rater_domain_scores : pandas.DataFrame
        ``innovation``, ``rater``, ``domain``, ``score`` (NaN if too few items answered),
        ``n_answered``, ``n_expected``.
    domain_scores : pandas.DataFrame
        Across raters: ``innovation``, ``domain``, ``part``, ``label``, ``mean``, ``median``,
        ``sd``, ``min``, ``max``, ``n_raters`` (raters with a domain score).
    rater_overall : pandas.DataFrame
        ``innovation``, ``rater``, ``overall``, ``n_domains`` (domains with a score).
    overall : pandas.DataFrame
        Across raters: ``innovation``, ``mean``, ``median``, ``sd``, ``n_raters``, ``rank``
        (1 = best, by ``mean``).
    completeness : pandas.DataFrame
        ``innovation``, ``rater``, ``domain``, ``n_answered``, ``n_expected``, ``share``.
    missing_items : pandas.DataFrame
        ``innovation``, ``rater``, ``domain``, ``item_id``, ``reason`` (``"missing score"`` or
        ``"no row"``) for every expected item without a score.
    agreement : pandas.DataFrame
        ``innovation``, ``estimate``, ``ci_low``, ``ci_high``, ``n_units``, ``n_raters``, ``metric``
        (Krippendorff's alpha over the items, by innovation, and its level of measurement).
    """

    instrument: Instrument
    rater_domain_scores: pd.DataFrame
    domain_scores: pd.DataFrame
    rater_overall: pd.DataFrame
    overall: pd.DataFrame
    completeness: pd.DataFrame
    missing_items: pd.DataFrame
    agreement: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """Domain scores across raters (tidy; one row per innovation x domain)."""
        return self.domain_scores.copy()

    def _repr_fields(self) -> dict:
        ov = self.overall.sort_values("rank", kind="mergesort")
        return {"instrument": self.instrument.id, "n_innovations": len(ov),
                "n_raters": int(self.rater_overall["rater"].nunique()), "overall_mean": [float(v) for v in ov["mean"]],
                "n_missing_items": len(self.missing_items)}

    def _summary(self, tx) -> str:
        """Overall scores and readiness, completeness and agreement."""
        ins = self.instrument
        labels = dict(zip(ins.domains["domain"], ins.domains["label"]))
        lines = [f"{ins.id} ({ins.name}): "
                 + tx("{innovations}, scoring: {scoring}", innovations=tx.n("{n} innovation", "{n} innovations",
                                                                           len(self.overall)),
                      scoring=word(tx, _WORDS, ins.scoring))]
        for r in self.recommendation_table().itertuples(index=False):
            weakest = [d.strip() for d in r.weakest_domains.split(",") if d.strip()]
            readiness = tx("unclassified") if r.readiness == "unclassified" else tx(r.readiness)
            line = tx("#{rank} {innovation}: overall score {mean} (median {median}, {raters}), {readiness}; "
                      "weakest domains: {weakest}; Krippendorff's alpha = {alpha}",
                      rank=r.rank, innovation=str(r.innovation), mean=tx.num(r.overall_mean),
                      median=tx.num(r.overall_median), raters=tx.n("{n} rater", "{n} raters", r.n_raters),
                      readiness=readiness, alpha=tx.num(r.krippendorff_alpha),
                      weakest=tx.join([f"{tx(labels[d])} ({d})" if d in labels else d for d in weakest]))
            lines.append("  " + line)
        n_miss = len(self.missing_items)
        n_exp = int(self.completeness["n_expected"].sum())
        lines.append("  " + tx("Completeness: {answered} of {expected} expected item ratings answered "
                               "({missing} missing)", answered=tx.int(n_exp - n_miss), expected=tx.int(n_exp),
                               missing=tx.int(n_miss)))
        if ins.thresholds:
            lines.append("  " + _thresholds_text(ins, tx))
        return "\n".join(lines)

    def recommendation_table(self, n_weakest: int = 2) -> pd.DataFrame:
        """Per innovation: overall score, rank, readiness category, weakest domains, agreement.

        ``krippendorff_alpha`` is the raters' agreement (see ``agreement``); ``weakest_domains`` lists the ``n_weakest`` domains with the worst mean score across raters;
        ``weak_domains`` those below the instrument's ``weak_domain_below`` threshold. The readiness
        category applies the instrument's thresholds (``Instrument.thresholds``; their source,
        instrument or ours, is ``Instrument.thresholds_source``) to the mean overall score.
        """
        ins = self.instrument
        rows = []
        asc = ins.direction == "higher_is_better"
        for r in self.overall.itertuples(index=False):
            ds = self.domain_scores[self.domain_scores["innovation"] == r.innovation].dropna(subset=["mean"])
            ds = ds.sort_values("mean", ascending=asc, kind="mergesort")
            weakest = ", ".join(ds["domain"].head(n_weakest))
            if ins.weak_domain_below is not None:
                bad = ds["mean"] < ins.weak_domain_below if asc else ds["mean"] > ins.weak_domain_below
                weak = ", ".join(ds["domain"][bad])
            else:
                weak = ""
            ag = self.agreement[self.agreement["innovation"] == r.innovation]
            rows.append(
                {
                    "innovation": r.innovation,
                    "rank": r.rank,
                    "overall_mean": r.mean,
                    "overall_median": r.median,
                    "n_raters": r.n_raters,
                    "readiness": ins.category(r.mean),
                    "weakest_domains": weakest,
                    "weak_domains": weak,
                    "krippendorff_alpha": float(ag["estimate"].iloc[0]) if len(ag) else float("nan"),
                }
            )
        return pd.DataFrame(rows).sort_values("rank", kind="mergesort").reset_index(drop=True)

    @styled
    def plot_profile(self, *, innovations=None, ax=None):
        """Strengths/weaknesses profile (as ISAT Part C): mean domain score per innovation with the
        range across raters (min-max bars), one row per domain (its label from the instrument).

        ``innovations`` lists the innovations to draw, or maps them to the labels shown in the legend
        (``{"chronic_care": "Chronic care coordination"}``). Returns the Axes.
        """
        from matplotlib.lines import Line2D

        tx = Text()
        ins = self.instrument
        if innovations is None:
            inns = {i: str(i) for i in self.overall["innovation"]}
        elif isinstance(innovations, dict):
            inns = {i: str(lab) for i, lab in innovations.items()}
        else:
            inns = {i: str(i) for i in innovations}
        doms = list(ins.domains["domain"])
        labels = [textwrap.fill(data_text(f"{tx(lab)} ({dm})"), 34) for dm, lab in zip(doms, ins.domains["label"])]
        n_lines = sum(lab.count("\n") + 1 for lab in labels)
        created = ax is None
        ax = new_axes(ax, (8.0, min(13.0, 2.4 + 0.2 * n_lines + 0.22 * len(doms) + 0.2 * len(inns))))
        y = np.arange(len(doms), dtype=float)
        markers = ["o", "s", "^", "D", "v", "P", "X"]
        height = 0.6
        for k, (inn, name) in enumerate(inns.items()):
            ds = self.domain_scores[self.domain_scores["innovation"] == inn].set_index("domain").reindex(doms)
            off = (k - (len(inns) - 1) / 2) * height / max(len(inns), 1)
            xerr = np.vstack([ds["mean"] - ds["min"], ds["max"] - ds["mean"]])
            ax.errorbar(ds["mean"], y + off, xerr=xerr, fmt=markers[k % len(markers)], ls="none",
                        color=PALETTE[k % len(PALETTE)], capsize=2, markersize=5, label=data_text(name))
        if ins.weak_domain_below is not None:
            ax.axvline(ins.weak_domain_below, color=NEUTRAL, lw=1.0, ls=":",
                       label=tx("Weak-domain threshold ({value})", value=tx.num(ins.weak_domain_below,
                                                                              _digits(ins.weak_domain_below))))
        ax.set_yticks(y, labels)
        ax.set_ylim(len(doms) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        span = ins.scale_max - ins.scale_min
        ax.set_xlim(ins.scale_min - 0.05 * span, ins.scale_max + 0.05 * span)
        ticks_inside(ax, "x")
        if ins.scoring == "share_met":
            ax.set_xlabel(tx("Domain score: share of criteria met"))
        else:
            ax.set_xlabel(tx("Domain score ({lo} to {hi})", lo=tx.num(ins.scale_min, _digits(ins.scale_min)),
                             hi=tx.num(ins.scale_max, _digits(ins.scale_max))))
        ax.set_ylabel(tx("Domain"))
        ax.set_title(tx("{instrument} profile: mean of the raters (bars: their range)", instrument=ins.id))
        handles, names = ax.get_legend_handles_labels()
        pairs = [(Line2D([], [], marker=h[0].get_marker(), ls="none", color=h[0].get_color()), n)
                 for h, n in zip(handles, names) if isinstance(h, tuple)]  # innovations, then the threshold
        pairs += [(h, n) for h, n in zip(handles, names) if not isinstance(h, tuple)]
        handles, names = [h for h, _ in pairs], [n for _, n in pairs]
        if created:  # under the chart, outside the data
            ax.figure.legend(handles, names, loc="outside lower center", ncols=min(3, len(handles)),
                             title=tx("Innovation"))
        else:
            ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=tx("Innovation"))
        return ax


def _digits(x: float) -> int:
    """Decimals to show a scale bound or threshold: 0 for whole numbers, else up to 2."""
    return 0 if float(x).is_integer() else min(2, len(f"{x:g}".split(".")[-1]))


def _thresholds_text(ins: Instrument, tx) -> str:
    """The readiness categories of ``ins`` and the source of their thresholds, in one line."""
    cmp = ">=" if ins.direction == "higher_is_better" else "<="
    cats = tx.semicolons([f"{cmp} {tx.num(m, _digits(m))}{tx.colon()} {tx(lab)}" for m, lab in ins.thresholds])
    source = word(tx, _WORDS, ins.thresholds_source)
    return tx("Readiness ({source}): {categories}", source=source, categories=cats)


def _domain_score(vals: np.ndarray, n_expected: int, ins: Instrument) -> float:
    if ins.scoring == "mean":
        return float(vals.mean())
    if ins.scoring == "sum":  # prorated to the expected number of items
        return float(vals.mean() * n_expected)
    if ins.scoring == "share_met":
        return float(np.mean(vals >= ins.met_at))
    return float(vals.min())


def _overall(scores: np.ndarray, ins: Instrument, met: int = 0, answered: int = 0) -> float:
    scores = scores[np.isfinite(scores)]
    if ins.scoring == "share_met":
        return met / answered if answered else float("nan")
    if scores.size == 0:
        return float("nan")
    if ins.scoring == "mean":
        return float(scores.mean())
    if ins.scoring == "sum":
        return float(scores.sum())
    return float(scores.min())


def _check_assessment_columns(data, innovation, rater, item, score) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"argument 'data' must be a pandas DataFrame, got {type(data).__name__}.")
    for arg, col in (("innovation", innovation), ("rater", rater), ("item", item), ("score", score)):
        if col not in data.columns:
            raise ScaleupDataError(
                f"data: column {col!r} (argument '{arg}') not found; available: {list(data.columns)}."
            )


def _assessment_ratings(data, ins, innovation, rater, item, score) -> pd.DataFrame:
    """The checked ratings of instrument ``ins``: innovation, rater, item_id, score, domain."""
    df = data
    if "instrument" in df.columns:
        keep = df["instrument"].astype(str).str.lower() == ins.id.lower()
        if not keep.any():
            raise ScaleupDataError(
                f"data: no row has instrument == {ins.id!r} (column 'instrument' holds "
                f"{sorted(df['instrument'].astype(str).unique())[:5]}); pass the matching instrument."
            )
        if (~keep).any():
            warnings.warn(
                f"score_assessment: {int((~keep).sum())} row(s) of other instruments left out.",
                RowsOmittedWarning,
                stacklevel=3,
            )
        df = df[keep]
    for col, arg in ((innovation, "innovation"), (rater, "rater"), (item, "item")):
        miss = df[col].isna().to_numpy()
        if miss.any():
            raise ScaleupDataError(f"data: column {col!r} (argument '{arg}') is missing in {rows_text(df.index, miss, label='first:')}.")
    item_dom = dict(zip(ins.items["item_id"], ins.items["domain"]))
    unknown = ~df[item].astype(str).isin(item_dom).to_numpy()
    if unknown.any():
        vals = sorted(df[item].astype(str)[unknown].unique())[:5]
        raise ScaleupDataError(
            f"data: column {item!r} has item ids not defined by instrument {ins.id} in "
            f"{rows_text(df.index, unknown, label='first:')}, e.g. {vals}; valid ids are listed in "
            f"load_instrument({ins.id!r}).items."
        )
    dup = df.duplicated([innovation, rater, item], keep=False).to_numpy()
    if dup.any():
        raise ScaleupDataError(
            f"data: duplicated (innovation, rater, item) ratings in {rows_text(df.index, dup, label='first:')}; keep one row each."
        )
    if "domain" in df.columns:
        mism = (df["domain"].astype(str) != df[item].astype(str).map(item_dom)).to_numpy() & df["domain"].notna().to_numpy()
        if mism.any():
            raise ScaleupDataError(
                f"data: column 'domain' disagrees with the domain of the item in instrument {ins.id} "
                f"in {rows_text(df.index, mism, label='first:')}; fix the domain or the item id."
            )
    x = numeric_column(df, score, "table 'data'", arg="score", missing=True, infinite=True)
    out = ~np.isnan(x) & ((x < ins.scale_min) | (x > ins.scale_max))  # an infinite score too
    if out.any():
        raise ScaleupDataError(
            f"data: column {score!r} lies outside the {ins.id} scale [{ins.scale_min:g}, {ins.scale_max:g}] in "
            f"{rows_text(df.index, out, label='first:')}; correct these scores (record unanswered items as missing, not 0)."
        )
    d = pd.DataFrame(
        {
            "innovation": df[innovation].to_numpy(),
            "rater": df[rater].astype(str).to_numpy(),
            "item_id": df[item].astype(str).to_numpy(),
            "score": x,
        }
    )
    d["domain"] = d["item_id"].map(item_dom)
    return d


def _completeness(d: pd.DataFrame, ins: Instrument) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every rater of an innovation is expected to rate every item: the full grid (with ``answered``),
    items answered per rater and domain, and the missing items with the reason."""
    pairs = d[["innovation", "rater"]].drop_duplicates()
    full = pairs.merge(ins.items[["item_id", "domain"]], how="cross")
    full = full.merge(d[["innovation", "rater", "item_id", "score"]], on=["innovation", "rater", "item_id"], how="left",
                      indicator=True)
    full["answered"] = np.isfinite(full["score"].to_numpy(float))
    miss = full[~full["answered"]].copy()
    miss["reason"] = np.where(miss["_merge"] == "both", "missing score", "no row")
    missing_items = miss[["innovation", "rater", "domain", "item_id", "reason"]].reset_index(drop=True)
    dom_order = {dm: k for k, dm in enumerate(ins.domains["domain"])}
    comp = (
        full.groupby(["innovation", "rater", "domain"], sort=False)
        .agg(n_answered=("answered", "sum"), n_expected=("answered", "size"))
        .reset_index()
    )
    comp["share"] = comp["n_answered"] / comp["n_expected"]
    comp = comp.assign(_o=comp["domain"].map(dom_order)).sort_values(["innovation", "rater", "_o"]).drop(columns="_o")
    return full, comp.reset_index(drop=True), missing_items


def _rater_domain_scores(ans, comp, ins, min_ans) -> tuple[pd.DataFrame, int]:
    """Score of each rater x domain (NaN with too few items answered) and the number of such NaNs."""
    grp = {k: v["score"].to_numpy(float) for k, v in ans.groupby(["innovation", "rater", "domain"], sort=False)}
    scores, too_few = [], 0
    for r in comp.itertuples(index=False):
        vals = grp.get((r.innovation, r.rater, r.domain), np.array([]))
        if vals.size == 0 or vals.size < min_ans * r.n_expected - 1e-12:
            scores.append(np.nan)
            too_few += 1
        else:
            scores.append(_domain_score(vals, r.n_expected, ins))
    rds = comp[["innovation", "rater", "domain"]].copy()
    rds["score"] = scores
    rds["n_answered"] = comp["n_answered"].to_numpy()
    rds["n_expected"] = comp["n_expected"].to_numpy()
    return rds, too_few


def _overall_scores(rds, ans, ins) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each rater's overall score of each innovation, and their summary and rank per innovation."""
    ro = []
    for (inn, rt), g in rds.groupby(["innovation", "rater"], sort=True):
        met = answered = 0
        if ins.scoring == "share_met":
            a = ans[(ans["innovation"] == inn) & (ans["rater"] == rt)]
            ok = g["domain"][g["score"].notna()]
            a = a[a["domain"].isin(ok)]
            met, answered = int((a["score"] >= ins.met_at).sum()), len(a)
        ro.append((inn, rt, _overall(g["score"].to_numpy(float), ins, met, answered), int(g["score"].notna().sum())))
    rater_overall = pd.DataFrame(ro, columns=["innovation", "rater", "overall", "n_domains"])
    overall = (
        rater_overall.groupby("innovation", sort=True)["overall"]
        .agg(mean="mean", median="median", sd="std", n_raters="count")
        .reset_index()
    )
    overall["rank"] = (
        overall["mean"].rank(ascending=(ins.direction == "lower_is_better"), method="min").astype("Int64")
    )
    return rater_overall, overall


def _rater_agreement(ans, ins, n_boot, seed) -> pd.DataFrame:
    """Krippendorff's alpha of the raters of each innovation (items as units)."""
    from .agreement import krippendorff_alpha

    ag, undefined = [], []
    for inn, g in ans.groupby("innovation", sort=True):
        n_r = g["rater"].nunique()
        row = {"innovation": inn, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
               "n_units": 0, "n_raters": int(n_r), "metric": ins.metric}
        if n_r >= 2:
            with warnings.catch_warnings(record=n_boot > 0):  # with a bootstrap, the second call says them
                warnings.simplefilter("ignore", RowsOmittedWarning)
                try:  # the data can make alpha undefined (no pairable item, no variation): NaN, said below
                    k = krippendorff_alpha(g, "item_id", "rater", "score", metric=ins.metric, n_boot=0)
                except ScaleupDataError as exc:
                    undefined.append(f"{inn!r} ({str(exc).split(': ', 1)[-1]})")
                    k = None
            if k is not None and n_boot > 0:  # a bootstrap too large for memory is the caller's error
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RowsOmittedWarning)
                    k = krippendorff_alpha(g, "item_id", "rater", "score", metric=ins.metric, n_boot=n_boot, seed=seed)
            if k is not None:
                row.update(estimate=k.estimate, ci_low=k.ci_low, ci_high=k.ci_high, n_units=k.n_units)
        ag.append(row)
    if undefined:
        warnings.warn(
            f"score_assessment: the raters' agreement (Krippendorff's alpha) is undefined, left missing, for "
            f"{len(undefined)} innovation(s): {'; '.join(undefined[:3])}{' ...' if len(undefined) > 3 else ''}",
            ScaleupWarning,
            stacklevel=3,
        )
    return pd.DataFrame(ag, columns=["innovation", "estimate", "ci_low", "ci_high", "n_units", "n_raters", "metric"])


@checked_inputs
def score_assessment(
    data: pd.DataFrame,
    instrument="ISAT",
    *,
    innovation: str = "innovation",
    rater: str = "rater_id",
    item: str = "item_id",
    score: str = "score",
    min_answered: float | None = None,
    n_boot: int = 1000,
    seed: int | None = None,
) -> AssessmentScores:
    r"""Score scale-up potential assessments (domain and overall scores, completeness, agreement).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``assessments`` table: one row per innovation x rater x item. If it has an
        ``instrument`` column, only the rows of this instrument are used (others are left out with
        a ``RowsOmittedWarning``); a ``domain`` column, if present, must agree with the instrument.
    instrument : str, pathlib.Path or Instrument, default "ISAT"
        See :func:`load_instrument`.
    innovation, rater, item, score : str
        Column names. Scores are numbers on the instrument's scale (0/1 for checklists); missing
        scores are allowed and reported, never treated as zero.
    min_answered : float, optional
        Share of a domain's items a rater must answer for a domain score (default: the
        instrument's ``min_answered``); below it the domain score is NaN (``ScaleupWarning``).
    n_boot, seed : int
        Bootstrap replicates and seed of the Krippendorff's alpha intervals.

    Returns
    -------
    AssessmentScores

    Raises
    ------
    ScaleupDataError
        Missing columns, unknown items, duplicated ratings, domain mismatch, or scores outside the
        instrument's scale (the message names the rows).

    Notes
    -----
    For each rater :math:`k`, innovation :math:`i` and domain :math:`d` with expected items
    :math:`J_d` and answered items :math:`A \subseteq J_d` (:math:`|A| \ge` ``min_answered``
    :math:`\times |J_d|`), the domain score is, by the instrument's rule: ``mean``
    :math:`\bar x_A`; ``sum`` :math:`|J_d|\,\bar x_A` (prorated sum); ``share_met`` the share of
    answered items with :math:`x \ge` ``met_at``; ``min`` :math:`\min_A x`. The rater's overall
    score is the mean (``mean``), sum (``sum``) or minimum (``min``) of the available domain
    scores, or the share of all answered items met (``share_met``). Across raters, domain and
    overall scores are summarised by their mean, median, sd and range; innovations are ranked by
    the mean overall score. Agreement: Krippendorff's alpha per innovation with the items as units
    (:func:`scaleup_analysis.agreement.krippendorff_alpha`) at the instrument's level of
    measurement.

    References
    ----------
    Milat, A., et al. (2020). Intervention Scalability Assessment Tool. Health Research Policy and
    Systems, 18, 1.
    Luke, D. A., et al. (2014). The Program Sustainability Assessment Tool. Preventing Chronic
    Disease, 11, 130184.
    Krippendorff, K. (2004). Content analysis (2nd ed.). Sage.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> r = pd.DataFrame({"innovation": "X", "rater_id": ["E1"] * 4 + ["E2"] * 4,
    ...                   "item_id": ["A1.1", "A1.2", "A2.1", "A2.2"] * 2,
    ...                   "score": [3, 4, 2, 2, 4, 4, 2, 3]})
    >>> res = sa.score_assessment(r, "ISAT", n_boot=0, min_answered=0.25)
    >>> res.domain_scores.query("domain in ['A1', 'A2']")[["domain", "mean", "n_raters"]].to_string(index=False)
    'domain  mean  n_raters\n    A1 3.750         2\n    A2 2.250         2'
    """
    ins = load_instrument(instrument)
    _check_assessment_columns(data, innovation, rater, item, score)
    min_ans = ins.min_answered if min_answered is None else float(min_answered)
    if not 0 < min_ans <= 1:
        raise ScaleupDataError(f"argument 'min_answered' must be in (0, 1], got {min_answered!r}.")
    d = _assessment_ratings(data, ins, innovation, rater, item, score)
    full, comp, missing_items = _completeness(d, ins)
    ans = full[full["answered"]]
    rds, too_few = _rater_domain_scores(ans, comp, ins, min_ans)
    if too_few:
        warnings.warn(
            f"score_assessment: {too_few} rater x domain score(s) set to NaN because fewer than "
            f"{min_ans:g} of the domain's items were answered (see .completeness and .missing_items).",
            ScaleupWarning,
            stacklevel=2,
        )
    dom = (  # across raters
        rds.groupby(["innovation", "domain"], sort=False)["score"]
        .agg(mean="mean", median="median", sd="std", min="min", max="max", n_raters="count")
        .reset_index()
    )
    dom = dom.merge(ins.domains[["domain", "part", "label"]], on="domain", how="left")
    dom = dom[["innovation", "domain", "part", "label", "mean", "median", "sd", "min", "max", "n_raters"]]
    rater_overall, overall = _overall_scores(rds, ans, ins)
    return AssessmentScores(
        instrument=ins,
        rater_domain_scores=rds.reset_index(drop=True),
        domain_scores=dom,
        rater_overall=rater_overall,
        overall=overall,
        completeness=comp,
        missing_items=missing_items,
        agreement=_rater_agreement(ans, ins, check_draw_count("score_assessment", "n_boot", n_boot), seed),
    )
