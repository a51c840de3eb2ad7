"""The content of the feedback cards: what each site (and establishment) is told about itself.

Everything a card says is computed here from the study's own tables, for that unit, in the
feedback window (``[periods] followup`` of the study, or the periods asked for):

* each indicator of the ``indicators`` table: the unit's value against all units of its level in a
  funnel plot (:func:`~scaleup_analysis.indicator_funnel`, Spiegelhalter's limits with an additive
  over-dispersion term), read with the indicator's direction (better / worse than expected);
  its own series over every period with the Anhøj runs rules (:func:`~scaleup_analysis.runs_analysis`);
  the value of its region and establishment when these hold enough other units;
* implementation: the mean fidelity index (step 4's computation) and the reach (``reached`` /
  ``eligible`` of ``delivery``) against the median of the units;
* its documented adaptations (``adaptations``);
* "what improved" and "what needs attention", assembled from the signals above.

Privacy. A card shows no count between 1 and the study's small-cell threshold (``[privacy]
small_cell_threshold``, 5 by default) and no value computed from such a count (the rule of
:func:`~scaleup_analysis.suppress_small_cells`; a point of the trend based on such a count is not
drawn). It names no other site: the other units of the funnel are unlabelled dots, and the value
of the unit's region or establishment is shown only when it pools at least
:data:`MIN_OTHER_UNITS` other sites (otherwise the difference with the card's own value would
give another site's value).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..monitoring.funnel import InstitutionalFunnel, indicator_funnel, level_units
from ..monitoring.spc import runs_analysis
from ..narrative import Text
from ..study import Study

__all__ = ["Card", "IndicatorLine", "build_cards", "indicator_funnels", "feedback_window", "reading", "MIN_OTHER_UNITS"]

#: A region or establishment value is shown on a site's card only when it pools this many other sites.
MIN_OTHER_UNITS = 3
#: Levels of the cards: the site, and the establishment when the study has table ``establishments``.
LEVELS = ("site_id", "establishment_id")


@dataclass
class IndicatorLine:
    """One indicator on one card."""

    code: str
    label: str
    kind: str                   # "proportion" or "mean"
    unit_label: str             # the indicator's unit ("%", "CAD", ...)
    higher_is_better: bool
    value: float | None         # None: suppressed (small cell) or no data in the window
    n: int | None               # individuals behind the value (None when suppressed)
    why_missing: str | None     # "small_cell", "no_data"
    target: float               # the pooled value of all units of the level
    signal: str | None          # funnel signal (above_alarm, ..., within); None when not shown
    reading: str | None         # "better", "worse", "as_expected"
    funnel: InstitutionalFunnel | None
    trend_periods: list = field(default_factory=list)
    trend_values: list = field(default_factory=list)     # None where the point is not drawn
    trend_centre: float | None = None
    trend_shift: str | None = None      # "better" / "worse": the last points sit on one side of the median
    trend_run: int | None = None        # length of that last run
    trend_signal: bool = False          # non-random variation somewhere in the series
    comparisons: list = field(default_factory=list)      # [(label, value)] region / establishment


@dataclass
class Card:
    """The content of one feedback card."""

    level: str                  # "site_id" or "establishment_id"
    unit: str
    title: str
    region: str
    establishment: str | None
    n_sites: int                # sites the unit pools (1 for a site)
    window: list
    indicators: list
    fidelity: float | None
    fidelity_median: float | None
    reach: float | None
    reach_median: float | None
    reach_suppressed: bool
    adaptations: pd.DataFrame
    improved: list
    attention: list


def feedback_window(study: Study, periods=None) -> list[int]:
    """The periods of the feedback: ``periods``, else ``[periods] followup`` of the study, else its
    last four periods; a period not in the data is refused."""
    all_periods = study.periods
    if periods is None:
        periods = list(study.settings.followup) or all_periods[-4:]
    periods = sorted(int(p) for p in periods)
    missing = [p for p in periods if p not in all_periods]
    if missing:
        raise ScaleupDataError(f"feedback: period(s) {missing} are not in the data (periods {all_periods[0]} to "
                               f"{all_periods[-1]}).")
    return periods


def _small(count, k: int) -> bool:
    return count is not None and np.isfinite(count) and 0 < count < k


def _series(o: pd.DataFrame | None, k: int) -> tuple[list, list, list]:
    """A unit's value per period from its ``outcomes`` rows of one indicator (all periods) and, per
    period, whether it may be drawn."""
    if o is None:
        return [], [], []
    rows = []
    for period, g in o.groupby("period", sort=True):
        n = float(g["n"].sum())
        if n <= 0:
            continue
        if g["events"].notna().any():
            ev = float(g["events"].astype("float64").sum())
            value, shown = ev / n, not (_small(ev, k) or _small(n - ev, k) or _small(n, k))
        else:
            value = float((g["n"] * g["mean"]).sum() / n)
            shown = not _small(n, k)
        rows.append((int(period), value, shown))
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _last_run(values: list[float], centre: float) -> tuple[int, int]:
    """Length and side (+1 above, -1 below) of the run of the last points off the centre line."""
    side, length = 0, 0
    for v in reversed(values):
        s = int(np.sign(v - centre))
        if s == 0:
            continue
        if side == 0:
            side = s
        if s != side:
            break
        length += 1
    return length, side


def reading(signal: str, higher_is_better: bool) -> str:
    """``better``, ``worse`` or ``as_expected``: a funnel signal read with the indicator's direction."""
    if signal == "within":
        return "as_expected"
    above = signal.startswith("above")
    return "better" if above == higher_is_better else "worse"


def indicator_funnels(study: Study, level: str, window: list[int]) -> dict[str, InstitutionalFunnel | None]:
    """Indicator -> its funnel at ``level`` over ``window`` (None when it cannot be drawn: fewer than
    3 units with data, or no data in the window)."""
    out = {}
    for code in study.tables["indicators"]["indicator_id"]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RowsOmittedWarning)
                out[code] = indicator_funnel(study.tables, indicator=code, by=level, periods=window)
        except ScaleupDataError:
            out[code] = None
    return out


def _implementation(study: Study, units: pd.Series, window: list[int], k: int) -> tuple[pd.DataFrame, bool]:
    """Per unit of the level: mean fidelity and reach in the window (reach suppressed when small)."""
    from ..steps.step5_sustainment import site_period_fidelity

    out = pd.DataFrame(index=pd.Index(sorted(set(units), key=str), name="unit"))
    fid = site_period_fidelity(study)
    if fid is not None:
        f = fid[fid["period"].isin(window)]
        out["fidelity"] = f.groupby(f["site_id"].map(units))["fidelity"].mean()
    if study.has("delivery"):
        d = study.tables["delivery"]
        d = d[d["period"].isin(window)]
        g = d.groupby(d["site_id"].map(units))[["reached", "eligible"]].sum()
        out["reached"], out["eligible"] = g["reached"], g["eligible"]
        out["reach"] = g["reached"] / g["eligible"].where(g["eligible"] > 0)
        small = g.apply(lambda r: _small(r["reached"], k) or _small(r["eligible"] - r["reached"], k)
                        or _small(r["eligible"], k), axis=1)
        out["reach_suppressed"] = small.reindex(out.index).fillna(False).astype(bool)
    return out, fid is not None


def build_cards(study: Study, *, periods=None) -> list[Card]:
    """The content of every card of the study: one per site, one per establishment (if given)."""
    for name in ("indicators", "outcomes", "sites"):
        if not study.has(name):
            raise ScaleupDataError(f"feedback: the study has no table {name!r}; the cards compare the sites' "
                                   "indicators (tables 'indicators', 'outcomes', 'sites').")
    window = feedback_window(study, periods)
    k = int(study.settings.small_cell_threshold)
    tx = Text(study.settings.language)
    sites = study.tables["sites"]
    est = study.tables.get("establishments")
    est_of = {} if est is None else dict(zip(est["site_id"], est["establishment_id"]))
    est_name = {} if est is None else dict(zip(est["establishment_id"], est["name"]))
    region_of = dict(zip(sites["site_id"], sites["rss_code"]))
    indicators = study.tables["indicators"]
    levels = ["site_id"] + (["establishment_id"] if est is not None and len(est) else [])
    # funnels at every level (the card's own level, and region / establishment comparisons)
    funnels = {lv: indicator_funnels(study, lv, window) for lv in levels + ["rss_code"]}
    maps = {lv: level_units(study.tables, lv) for lv in levels + ["rss_code"]}
    members_of = {lv: m.groupby(m.to_numpy()).groups for lv, m in maps.items()}
    cards = []
    for level in levels:
        units = maps[level]
        # each unit's outcomes rows per indicator, split once (its trends)
        o = study.tables["outcomes"]
        outcome_rows = dict(tuple(o.groupby([o["indicator_id"], o["site_id"].map(units)], sort=False)))
        impl, has_fid = _implementation(study, units, window, k)
        shown_fid = impl["fidelity"].dropna() if "fidelity" in impl else pd.Series(dtype=float)
        shown_reach = impl.loc[~impl["reach_suppressed"], "reach"].dropna() if "reach" in impl else pd.Series(
            dtype=float)
        for unit in sorted(set(units), key=str):
            members = list(members_of[level][unit])
            regions = sorted({str(region_of[s]) for s in members if s in region_of})
            region = ", ".join(study.region_name(r) for r in regions)
            lines = [_indicator_line(study, tx, row, level, unit, outcome_rows, funnels, members_of, est_of,
                                     region_of, k)
                     for row in indicators.itertuples(index=False)]
            fidelity = impl.at[unit, "fidelity"] if "fidelity" in impl and unit in impl.index else np.nan
            reach = impl.at[unit, "reach"] if "reach" in impl and unit in impl.index else np.nan
            reach_suppressed = bool(impl.at[unit, "reach_suppressed"]) if "reach_suppressed" in impl else False
            ad = _adaptations(study, members)
            card = Card(
                level=level, unit=str(unit),
                title=str(unit) if level == "site_id" else str(est_name.get(unit, unit)),
                region=region,
                establishment=(str(est_name.get(est_of.get(unit), "")) or None) if level == "site_id" else None,
                n_sites=len(members), window=window, indicators=lines,
                fidelity=None if not has_fid or not np.isfinite(fidelity) else float(fidelity),
                fidelity_median=float(shown_fid.median()) if len(shown_fid) else None,
                reach=None if reach_suppressed or not np.isfinite(reach) else float(reach),
                reach_median=float(shown_reach.median()) if len(shown_reach) else None,
                reach_suppressed=reach_suppressed, adaptations=ad, improved=[], attention=[])
            card.improved, card.attention = _messages(card)
            cards.append(card)
    return cards


def _indicator_line(study, tx, row, level, unit, outcome_rows, funnels, members_of, est_of, region_of,
                    k) -> IndicatorLine:
    code = row.indicator_id
    higher = study.indicator_direction(code) == "higher_is_better"
    fun = funnels[level].get(code)
    value = n = signal = read = None
    why = "no_data"
    target = np.nan if fun is None else fun.target * fun.multiplier
    if fun is not None:
        f = fun.to_frame().set_index("unit")
        if unit in f.index:
            r = f.loc[unit]
            counts = [r["n"]] + ([r["events"], r["n"] - r["events"]] if "events" in f.columns else [])
            if any(_small(c, k) for c in counts):
                why = "small_cell"
            else:
                value, n, signal, why = float(r["value"]), int(r["n"]), str(r["signal"]), None
                read = reading(signal, higher)
    periods, values, shown = _series(outcome_rows.get((code, unit)), k)
    mult = 1.0 if fun is None else fun.multiplier
    line = IndicatorLine(code=code, label=study.indicator_label(code), kind=str(row.type), unit_label=str(row.unit),
                         higher_is_better=higher, value=value, n=n, why_missing=why, target=float(target),
                         signal=signal, reading=read, funnel=fun)
    if len(values) >= 2:
        line.trend_periods = periods
        line.trend_values = [v * mult if s else None for v, s in zip(values, shown)]
        with warnings.catch_warnings():
            # a constant series has no runs to test: the card then says no change can be read
            warnings.simplefilter("ignore", ScaleupWarning)
            runs = runs_analysis(np.asarray(values, float))
        line.trend_centre = float(runs.centre) * mult
        length, side = _last_run(values, runs.centre)
        line.trend_signal = bool(runs.runs_signal)
        if runs.longest_run_max is not None and length > runs.longest_run_max:
            line.trend_run = length
            line.trend_shift = "better" if (side > 0) == higher else "worse"
    # the region's and establishment's values, when they pool enough other sites
    if level == "site_id":
        shown = []
        for lv, key, label in (("establishment_id", est_of.get(unit), tx("Your establishment")),
                               ("rss_code", region_of.get(unit), tx("Your region"))):
            fz = funnels.get(lv, {}).get(code)
            if key is None or fz is None:
                continue
            pooled = set(members_of[lv].get(key, []))
            others = len(pooled - {unit})
            f = fz.to_frame().set_index("unit")
            if others >= MIN_OTHER_UNITS and key in f.index and pooled not in shown:
                # a region made of one establishment has the same value: shown once
                line.comparisons.append((label, float(f.at[key, "value"])))
                shown.append(pooled)
    return line


def _adaptations(study: Study, members: list) -> pd.DataFrame:
    cols = ["period", "what_modified", "nature", "fidelity_relation", "goal"]
    if not study.has("adaptations"):
        return pd.DataFrame(columns=cols)
    a = study.tables["adaptations"]
    a = a[a["site_id"].isin(members)]
    return a[[c for c in cols if c in a.columns]].sort_values("period").reset_index(drop=True)


def _messages(card: Card) -> tuple[list, list]:
    """(what improved, what needs attention): (kind, indicator line or None, details) records."""
    improved, attention = [], []
    for line in card.indicators:
        if line.reading == "better":
            improved.append(("funnel", line))
        elif line.reading == "worse":
            attention.append(("funnel", line))
        if line.trend_shift == "better":
            improved.append(("trend", line))
        elif line.trend_shift == "worse":
            attention.append(("trend", line))
    if card.fidelity is not None and card.fidelity < 0.5:
        attention.append(("fidelity", None))
    if card.fidelity is not None and card.fidelity >= 0.8:
        improved.append(("fidelity", None))
    if len(card.adaptations) and "fidelity_relation" in card.adaptations:
        if (card.adaptations["fidelity_relation"].astype(str) == "fidelity-inconsistent").any():
            attention.append(("adaptation", None))
    return improved, attention
