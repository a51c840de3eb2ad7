"""Step 5, feedback to the teams: how do the sites (and establishments) compare on each indicator?

The province-level view behind the feedback cards (``scaleup feedback``): for each indicator of the
study, a funnel plot of the sites over the follow-up periods (Spiegelhalter's limits with an
additive over-dispersion term, :func:`~scaleup_analysis.indicator_funnel`), read with the
indicator's direction, and the same at the establishment level when the study says which
establishment each site belongs to. Every sentence is built from that run's funnels.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from ..i18n import N_
from ..narrative import Text
from ..study import Study, span_text
from ..feedback.cards import feedback_window, indicator_funnels, reading
from ._common import hidden_note, named_list, period_words, primary_indicator
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section


#: Units named in a finding at most (the saved table lists them all).
MAX_NAMED = 6


def _funnels(study: Study, by: str, window: list[int]) -> dict:
    return {code: f for code, f in indicator_funnels(study, by, window).items() if f is not None}


@section(5, "site_comparison", N_("Feedback to the teams: how do the sites compare on each indicator?"))
def site_comparison(study: Study) -> SectionOutput:
    tx = Text(study.settings.language)
    if not study.has("indicators", "outcomes", "sites"):
        raise NotApplicable(tx("the study has no outcomes by site."),
                            tx("the tables indicators, outcomes and sites."))
    window = feedback_window(study)
    funnels = _funnels(study, "site_id", window)
    if not funnels:
        raise NotApplicable(tx("fewer than 3 sites have outcomes in the follow-up periods: there is nothing to "
                               "compare."), tx("outcomes of 3 or more sites in the follow-up periods."))
    k = int(study.settings.small_cell_threshold)
    w = period_words(tx, study)
    rows, findings = [], []
    n_sites = max(f.n_units for f in funnels.values())
    findings.append(tx("Each site is compared with all sites on {n} indicators over {units} {span} (funnel plots: "
                       "95 % and 99.8 % limits, widened for the usual variation between sites; {s} sites).",
                       n=tx.int(len(funnels)), units=w["units"], span=span_text(window), s=tx.int(n_sites)))
    worse_sites: set = set()
    for code, fun in funnels.items():
        higher = study.indicator_direction(code) == "higher_is_better"
        f = fun.to_frame()
        readings = [reading(s, higher) for s in f["signal"]]
        alarm = f["signal"].str.endswith("alarm").to_numpy()
        worse = [u for u, r, a in zip(f["unit"], readings, alarm) if r == "worse" and a]
        better = [u for u, r, a in zip(f["unit"], readings, alarm) if r == "better" and a]
        worse_sites.update(worse)
        label = study.indicator_label(code)
        if worse or better:
            parts = []
            if worse:
                parts.append(tx.n("{n} site worse than expected ({list})", "{n} sites worse than expected ({list})",
                                  len(worse), list=named_list(tx, worse, MAX_NAMED)))
            if better:
                parts.append(tx.n("{n} site better than expected ({list})", "{n} sites better than expected ({list})",
                                  len(better), list=named_list(tx, better, MAX_NAMED)))
            findings.append(tx("{indicator}: {parts}, beyond the 99.8 % limits.", indicator=label,
                               parts=tx.join(parts)))
        for r, rd in zip(f.itertuples(index=False), readings):
            rows.append({"indicator_id": code, "indicator": label, "site_id": r.unit,
                         "n": r.n, "events": getattr(r, "events", np.nan),
                         "value": r.value, "target": fun.target * fun.multiplier,
                         "alarm_low": r.alarm_low, "alarm_high": r.alarm_high, "signal": r.signal, "reading": rd})
    table = pd.DataFrame(rows)
    table["non_events"] = table["n"] - table["events"]
    if not worse_sites and len(findings) == 1:
        findings.append(tx("None of the {s} sites lies beyond the 99.8 % limits on any of the {n} indicators: the "
                           "sites differ no more than their usual variation allows.", s=tx.int(n_sites),
                           n=tx.int(len(funnels))))
    alerts = int((table["signal"].str.endswith("alert")).sum())
    pairs = len(table)
    findings.append(tx("Beyond the 95 % limits only (alerts): {n} of {m} site x indicator pairs; about 1 in 20 "
                       "falls there by chance, so an alert alone is a prompt to look, not a finding.",
                       n=tx.int(alerts), m=tx.int(pairs)))
    # the funnel of the primary indicator, the sites whose counts are small left out (as in the table)
    code, label = primary_indicator(study)
    code = code if code in funnels else next(iter(funnels))
    label = study.indicator_label(code)
    prim = table[table["indicator_id"] == code].reset_index(drop=True)
    counts = ["n", "events", "non_events"] if prim["events"].notna().any() else ["n"]
    shown = TableOut(f"05_site_comparison_{code}", prim, show=False, counts=counts, values=["value"])
    hidden = shown.hidden(k)
    ax = funnels[code].plot(hide=hidden, threshold=k)
    ax.set_title(textwrap.fill(tx("{indicator}: sites compared (funnel plot, {units} {span})", indicator=label,
                                  units=w["units"], span=span_text(window)), 60))
    notes = [tx("Each site's own card (its position, trend, fidelity, reach and adaptations, with no other site "
                "named) is written by `scaleup feedback`.")]
    if hidden.any():
        notes.append(hidden_note(tx, label, hidden.sum(), k))
    key = [(tx("Sites worse than expected on at least one indicator (99.8 % limits)"),
            f"{tx.int(len(worse_sites))} / {tx.int(n_sites)}")]
    levels = []
    if study.has("establishments"):
        est = study.tables["establishments"]
        levels.append(("establishment_id", dict(zip(est["establishment_id"], est["name"]))))
    regions = sorted(study.tables["sites"]["rss_code"].dropna().unique())
    levels.append(("rss_code", {r: study.region_name(r) for r in regions}))
    for by, names in levels:
        found = _worse_units(study, by, window)
        if found is not None:
            n_units, worse = found
            findings.append(_level_sentence(tx, by, n_units, [names.get(u, u) for u in sorted(worse, key=str)]))
    return SectionOutput(
        findings=findings,
        tables=[TableOut("05_site_comparison", table, tx("Every site x indicator: value, limits and reading"),
                         show=False, counts=["n", "events", "non_events"], values=["value"], by=["indicator_id"]),
                shown],
        figures=[FigureOut(f"05_funnel_{code}", ax.figure, brief=True)],
        result=funnels, notes=notes, headline=findings[1],
        key_figures=key)


def _level_sentence(tx: Text, by: str, n_units: int, worse: list) -> str:
    """The finding at the establishment or region level."""
    k, n, names = tx.int(n_units), len(worse), named_list(tx, worse, MAX_NAMED)
    if by == "establishment_id":
        if not worse:
            return tx("At the establishment level ({k} establishments compared), none is worse than expected on "
                      "any indicator.", k=k)
        return tx.n("At the establishment level ({k} establishments compared), {n} is worse than expected on at "
                    "least one indicator: {list}.", "At the establishment level ({k} establishments compared), {n} "
                    "are worse than expected on at least one indicator: {list}.", n, k=k, list=names)
    if not worse:
        return tx("At the region level ({k} regions compared), none is worse than expected on any indicator.", k=k)
    return tx.n("At the region level ({k} regions compared), {n} is worse than expected on at least one indicator: "
                "{list}.", "At the region level ({k} regions compared), {n} are worse than expected on at least one "
                "indicator: {list}.", n, k=k, list=names)


def _worse_units(study: Study, by: str, window: list[int]) -> tuple[int, set] | None:
    """(units compared, units beyond the alarm limits on the worse side of at least one indicator) at
    level ``by``; None when no indicator can be compared at that level."""
    funnels = _funnels(study, by, window)
    if not funnels:
        return None
    worse = set()
    for code, fun in funnels.items():
        higher = study.indicator_direction(code) == "higher_is_better"
        f = fun.to_frame()
        worse.update(u for u, s in zip(f["unit"], f["signal"]) if s.endswith("alarm") and reading(s, higher) == "worse")
    return max(f.n_units for f in funnels.values()), worse
