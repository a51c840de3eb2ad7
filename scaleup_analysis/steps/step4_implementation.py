"""Step 4 — implementation: fidelity to the core components, rater reliability, local adaptations.

Sections: the fidelity index by region (adherence, dose, coverage; Carroll et al. 2007), fidelity
drift per site, the reliability of the fidelity ratings (mixed-model ICC, Krippendorff's alpha), the
FRAME-coded adaptations, their association with the primary indicator, and the fidelity
dose-response.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError
from ..i18n import N_
from ..narrative import Text, interpret
from ..study import Study
from ._common import hidden_note, named_list, period_words, primary_indicator, site_period_word
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Fewest rated periods of a site for a drift slope (a line through two points has no error).
MIN_DRIFT_PERIODS = 3
#: Sites named in a sentence before "and k more".
MAX_NAMED = 8

#: FRAME "what was modified" codes as report words.
WHAT_MODIFIED = {
    "content": N_("content"), "context-format": N_("format"), "context-setting": N_("setting"),
    "context-personnel": N_("personnel"), "context-population": N_("population"),
    "training-evaluation": N_("training and evaluation"),
    "implementation-scaleup-activities": N_("implementation and scale-up activities"),
}


def _ratings(study: Study):
    if not study.has("fidelity_ratings", "components"):
        tx = Text(study.settings.language)
        missing = [t for t in ("fidelity_ratings", "components") if not study.has(t)]
        raise NotApplicable(
            tx.n("the study has no {list} table.", "the study has no {list} tables.", len(missing),
                 list=tx.join(missing)),
            tx("a components table (the innovation's components, core or adaptable, with their rating scale) "
               "and a fidelity_ratings table (observed sessions scored by raters on each component)."),
        )
    return study.tables["fidelity_ratings"], study.tables["components"]


def _fidelity(study: Study) -> pd.DataFrame:
    from ..fidelity import fidelity_index

    ratings, components = _ratings(study)
    delivery = study.tables["delivery"] if study.has("delivery") else None
    return fidelity_index(ratings, components, delivery)


@section(4, "fidelity", N_("Fidelity by region"))
def fidelity(study: Study) -> SectionOutput:
    from ..fidelity import fidelity_by, plot_fidelity

    fid = _fidelity(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    rated = fid.dropna(subset=["adherence"])
    ratings, _ = _ratings(study)
    findings = [tx("{sp} of {s} sites were rated: {sess} observed sessions, {r} raters.",
                   sp=site_period_word(tx, len(rated), study), s=tx.int(rated["site_id"].nunique()),
                   sess=tx.int(ratings["session_id"].nunique()), r=tx.int(ratings["rater_id"].nunique()))]
    parts = [("adherence", tx("adherence to the core components"))]
    if study.has("delivery"):
        parts += [("dose", tx("dose (sessions delivered / planned)")),
                  ("coverage", tx("coverage (people reached / eligible)"))]
    means = {col: float(rated[col].mean()) for col, _ in parts if col in rated and rated[col].notna().any()}
    findings.append(tx("Mean {list}.", list=tx.join([f"{label} {tx.pct(means[col])}" for col, label in parts
                                                     if col in means])))
    if len(means) > 1:
        weakest = min(means, key=means.get)
        findings.append(tx("The weakest part of fidelity is {w} ({v}).", w=dict(parts)[weakest],
                           v=tx.pct(means[weakest])))
    value = "fidelity_index" if rated["fidelity_index"].notna().any() else "adherence"
    delivered = rated.dropna(subset=[value])
    bands = delivered["band"].value_counts() if "band" in delivered else pd.Series(dtype=int)
    if value == "fidelity_index" and len(delivered):
        findings.append(tx("Composite fidelity index (mean of adherence, dose and coverage): {hi} high (≥ 80%), "
                           "{mid} moderate and {lo} low (≤ 50%), out of {n}.",
                           hi=site_period_word(tx, int(bands.get("high", 0)), study),
                           mid=tx.int(int(bands.get("moderate", 0))), lo=tx.int(int(bands.get("low", 0))),
                           n=tx.int(len(delivered))))
    threshold = study.settings.small_cell_threshold
    sites = study.tables["sites"]

    def people_table(name: str, table: pd.DataFrame, caption: str = "", **kw) -> TableOut:
        """A table of fidelity measures with the people behind coverage: eligible and reached are
        suppressed below the threshold, with the coverage, exposure, index and band computed from them."""
        table.insert(1, "region", [study.region_name(c) for c in table["rss_code"]])
        return TableOut(name, table, caption, counts=[c for c in ("eligible", "reached") if c in table] or None,
                        values=[c for c in ("coverage", "exposure", "fidelity_index", "band") if c in table] or None,
                        **kw)

    by_region = people_table("04_fidelity_by_region", fidelity_by(fid, by=["rss_code"], sites=sites),
                             tx("Fidelity by region"))
    # the findings quote the table as published: a region whose index is suppressed is not named with it
    order = by_region.published(threshold).dropna(subset=[value]).sort_values(value)
    if len(order) >= 2:
        low, high = order.iloc[0], order.iloc[-1]
        findings.append(tx("Lowest region: {lr} ({lv}); highest: {hr} ({hv}).",
                           lr=study.region_name(low["rss_code"]), lv=tx.pct(low[value]),
                           hr=study.region_name(high["rss_code"]), hv=tx.pct(high[value])))
    # the heatmap's cells (region x period, as plot_fidelity pools them), saved: the figure leaves out what
    # this table suppresses (small cells, and complements within each region and each period)
    heatmap = people_table("04_fidelity_heatmap", fidelity_by(fid, by=["rss_code", "period"], sites=sites),
                           show=False, by=["rss_code", "period"])
    hidden = heatmap.hidden(threshold) if value in (heatmap.values or ()) else np.zeros(len(heatmap.data), bool)
    ax = plot_fidelity(fid, by="region", sites=sites, value=value, hide=hidden, threshold=threshold)
    title = (tx("Composite fidelity index by region and {unit}", unit=w["unit"]) if value == "fidelity_index"
             else tx("Adherence by region and {unit}", unit=w["unit"]))
    ax.set_title(title)
    notes = []
    if hidden.any():

        notes.append(hidden_note(tx, title, hidden.sum(), threshold))
    return SectionOutput(
        headline=" ".join(findings[1:3]),
        key_figures=[(label[:1].upper() + label[1:], tx.pct(means[col])) for col, label in parts if col in means],
        findings=findings,
        tables=[by_region, heatmap],
        figures=[FigureOut("04_fidelity_heatmap", ax.figure, brief=True)],
        result=fid,
        thresholds=("fidelity",),
        notes=notes,
    )


@section(4, "fidelity_drift", N_("Fidelity drift: which sites are slipping?"))
def fidelity_drift(study: Study) -> SectionOutput:
    from ..fidelity import fidelity_drift as _drift

    fid = _fidelity(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    rated = fid.dropna(subset=["adherence"])
    per_site = rated.groupby("site_id")["period"].nunique()
    eligible = per_site[per_site >= MIN_DRIFT_PERIODS]
    if eligible.empty:
        raise NotApplicable(
            tx("no site has adherence ratings in {m} or more {units} (most: {most}).", m=MIN_DRIFT_PERIODS,
               units=w["units"], most=int(per_site.max()) if len(per_site) else 0),
            tx("ratings of the same sites over at least {m} {units}.", m=MIN_DRIFT_PERIODS, units=w["units"]),
        )
    drift = _drift(rated[rated["site_id"].isin(eligible.index)])
    table = drift.to_frame()
    flagged = table[table["flagged"]]
    n = len(table)
    if len(flagged):
        sig = int(table["significant_decline"].sum())
        runs = int(table["run_flag"].sum())
        names = list(flagged.sort_values("estimate" if "estimate" in flagged else "slope")["site_id"].astype(str))
        findings = [tx.n("{n} site with {m} or more rated {units} was examined.",
                         "{n} sites with {m} or more rated {units} were examined.", n, m=MIN_DRIFT_PERIODS,
                         units=w["units"]),
                    tx("{k} show a decline in adherence ({sig} with a significant downward slope, {runs} with {r} or "
                       "more consecutive declines): {list}.", k=tx.int(len(flagged)), sig=tx.int(sig),
                       runs=tx.int(runs), r=drift.run_length, list=named_list(tx, names, MAX_NAMED))]
    else:
        findings = [tx.n("None of the {n} site with {m} or more rated {units} shows a decline in adherence "
                         "(no significant downward slope, no run of {r} consecutive declines).",
                         "None of the {n} sites with {m} or more rated {units} shows a decline in adherence "
                         "(no significant downward slope, no run of {r} consecutive declines).",
                         n, m=MIN_DRIFT_PERIODS, units=w["units"], r=drift.run_length)]
    excluded = int((per_site < MIN_DRIFT_PERIODS).sum())
    notes = []
    if excluded:
        notes.append(tx.n("{n} site with fewer rated {units} is not examined.",
                          "{n} sites with fewer rated {units} are not examined.", excluded, units=w["units"]))
    ax = drift.plot_drift(sites=study.tables["sites"], title=tx("Adherence trend per site (flagged sites highlighted)"))
    return SectionOutput(
        headline=findings[-1],
        key_figures=[(tx("Sites with declining adherence"), tx("{k} of {n}", k=tx.int(len(flagged)), n=tx.int(n)))],
        findings=findings,
        tables=[TableOut("04_fidelity_drift", table, tx("Adherence slope per site"))],
        figures=[FigureOut("04_fidelity_drift", ax.figure)],
        result=drift,
        notes=notes,
    )


@section(4, "rater_reliability", N_("Can we trust the fidelity ratings?"))
def rater_reliability(study: Study) -> SectionOutput:
    from ..agreement import icc_mixed, krippendorff_alpha

    ratings, components = _ratings(study)
    tx = Text(study.settings.language)
    per_session = ratings.groupby("session_id")["rater_id"].nunique()
    if (per_session < 2).all():
        raise NotApplicable(tx("every session was rated by a single rater: reliability cannot be measured."),
                            tx("two or more raters on at least some of the rated sessions."))
    core = components.loc[components["core"].astype(bool), "component_id"]
    first = str(core.iloc[0]) if len(core) else str(components["component_id"].iloc[0])
    c1 = ratings[ratings["component_id"] == first]
    findings = [tx("{s} sessions were rated by {r} raters; {m} of them by two raters or more.",
                   s=tx.int(len(per_session)), r=tx.int(ratings["rater_id"].nunique()),
                   m=tx.int(int((per_session >= 2).sum())))]
    tables = []
    result = {}
    name = components.set_index("component_id").loc[first, "name"]
    if not (c1["session_id"].nunique() >= 2 and c1.groupby("session_id")["rater_id"].nunique().max() >= 2
            and c1["score"].nunique() > 1):
        findings.append(tx("The intra-class correlation of component '{c}' is not computed: it needs two or more "
                           "rated sessions, one of them rated by two raters, and scores that vary.", c=name))
    else:
        ic = icc_mixed(c1, unit="session_id", rater="rater_id", score="score")
        t = ic.table
        single, average = float(t.loc["ICC2", "icc"]), float(t.loc["ICC2k", "icc"])
        findings.append(tx("Component '{c}' (mixed-model ICC, incomplete designs allowed): one rater's score has "
                           "ICC = {s} ({sw}); the mean of a session's raters has ICC = {a} ({aw}).", c=name,
                           s=tx.num(single), sw=interpret("icc", single, tx), a=tx.num(average),
                           aw=interpret("icc", average, tx)))
        consistency = float(t.loc["ICC3", "icc"])
        if consistency - single > 0.05:
            findings.append(tx("Consistency (ICC = {c}) is higher than absolute agreement: some raters are "
                               "systematically more lenient or more severe than others.", c=tx.num(consistency)))
        tables.append(TableOut("04_icc", t.reset_index(), tx("Intra-class correlations of one component")))
        result["icc"] = ic
    units = ratings.assign(unit=ratings["session_id"].astype(str) + "|" + ratings["component_id"].astype(str))
    pairable = units.groupby("unit")["rater_id"].transform("nunique") >= 2
    if units.loc[pairable, "score"].nunique() < 2:
        findings.append(tx("Krippendorff's alpha is not computed: the sessions rated by two raters or more all "
                           "have the same score, and agreement cannot be measured without variation."))
    else:
        alpha = krippendorff_alpha(units, unit="unit", rater="rater_id", score="score", metric="ordinal",
                                   n_boot=1000, seed=study.settings.seed)
        a = alpha.to_frame().iloc[0]
        findings.append(tx("Across all components, Krippendorff's alpha (ordinal) = {a}: {word}.",
                           a=tx.ci(a["estimate"], a["ci_low"], a["ci_high"]),
                           word=interpret("krippendorff", a["estimate"], tx)))
        result["krippendorff"] = alpha
        tables.append(TableOut("04_krippendorff", alpha.to_frame(), tx("Krippendorff's alpha, all components")))
    return SectionOutput(findings=findings, tables=tables, result=result, thresholds=("icc", "krippendorff"),
                         certainty=findings[1:])


def _adaptations(study: Study) -> pd.DataFrame:
    if not study.has("adaptations"):
        tx = Text(study.settings.language)
        raise NotApplicable(tx("the study has no adaptations table."),
                            tx("an adaptations table: one FRAME-coded row per documented adaptation (site, period, "
                               "what was modified, its relation to fidelity, ...)."))
    return study.tables["adaptations"]


@section(4, "adaptations", N_("Which adaptations were made? (FRAME)"))
def adaptations(study: Study) -> SectionOutput:
    from ..adaptation import plot_adaptation_timeline, summarize_adaptations

    ad = _adaptations(study)
    tx = Text(study.settings.language)
    summ = summarize_adaptations(ad, sites=study.tables["sites"])
    n = len(ad)
    rel = ad["fidelity_relation"].astype(str).value_counts()
    findings = [tx.n("{n} adaptation was documented at {s} sites.", "{n} adaptations were documented at {s} sites.",
                     n, s=tx.int(ad["site_id"].nunique()))]
    findings.append(tx("{c} fidelity-consistent, {i} fidelity-inconsistent and {u} of unknown relation to the core "
                       "components.", c=tx.int(int(rel.get("fidelity-consistent", 0))),
                       i=tx.int(int(rel.get("fidelity-inconsistent", 0))), u=tx.int(int(rel.get("unknown", 0)))))
    planned = int(ad["planned"].astype(str).str.startswith("planned").sum())
    findings.append(tx("{p} were planned and {u} unplanned.", p=tx.int(planned), u=tx.int(n - planned)))
    what = ad["what_modified"].astype(str).value_counts()
    word = WHAT_MODIFIED.get(str(what.index[0]), str(what.index[0]))
    findings.append(tx("Most often modified: {w} ({k} of {n}).", w=tx(word), k=tx.int(int(what.iloc[0])),
                       n=tx.int(n)))
    inconsistent = ad[ad["fidelity_relation"].astype(str) == "fidelity-inconsistent"]
    if len(inconsistent):
        findings.append(tx("Sites with a fidelity-inconsistent adaptation: {list}.",
                           list=named_list(tx, sorted(inconsistent["site_id"].astype(str).unique()), MAX_NAMED)))
    ax = plot_adaptation_timeline(ad, sites=study.tables["sites"], n_periods=max(study.periods or [1]))
    ax.set_title(tx("Adaptations per site over time (marker = relation to fidelity)"))
    return SectionOutput(
        key_figures=[(tx("Adaptations documented"), tx.int(n)),
                     (tx("Fidelity-inconsistent adaptations"), tx.int(int(rel.get("fidelity-inconsistent", 0))))],
        findings=findings,
        # counts of adaptations (events at sites), not of people: named so, never suppressed
        tables=[TableOut("04_adaptations_frame", summ.to_frame().rename(columns={"n": "adaptations"}),
                         tx("FRAME summary"), show=False)],
        figures=[FigureOut("04_adaptation_timeline", ax.figure)],
        result=summ,
    )


@section(4, "adaptation_effects", N_("Did adaptations help or harm?"))
def adaptation_effects(study: Study) -> SectionOutput:
    from ..adaptation import adaptation_effects as _effects

    ad = _adaptations(study)
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    counted = ad[ad["fidelity_relation"].astype(str) != "unknown"]
    sites_with = counted["site_id"].nunique()
    if sites_with < 2:
        raise NotApplicable(
            tx.n("{n} site has a fidelity-consistent or -inconsistent adaptation; effects need several.",
                 "{n} sites have a fidelity-consistent or -inconsistent adaptation; effects need several.",
                 sites_with),
            tx("adaptations documented at two or more sites, with outcomes before and after them."),
        )
    try:
        res = _effects(study.tables["outcomes"], ad, study.tables["sites"], indicator=code, min_exposure=2)
    except ScaleupDataError:
        raise NotApplicable(
            tx("the data cannot separate the effect of adaptations from the other changes at the sites (too few "
               "sites, adaptations or periods for the model)."),
            tx("more sites with documented adaptations and several periods of outcomes before and after them."),
        ) from None
    coef = res.to_frame()
    cum = coef[coef["analysis"] == "cumulative"].set_index("term")
    direction = study.indicator_direction(code)
    findings = []
    headline = ""
    words = {"n_consistent": (N_("fidelity-consistent adaptation"), N_("fidelity-consistent adaptations")),
             "n_inconsistent": (N_("fidelity-inconsistent adaptation"), N_("fidelity-inconsistent adaptations")),
             "n_unknown": (N_("adaptation of unknown relation to fidelity"),
                           N_("adaptations of unknown relation to fidelity"))}
    for term, (one, many) in words.items():
        if term not in cum.index or not np.isfinite(cum.loc[term, "estimate"]):
            continue
        r = cum.loc[term]
        est = tx.ci(r["estimate"], r["ci_low"], r["ci_high"])
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            better = (r["estimate"] > 0) == (direction == "higher_is_better")
            if better:
                findings.append(tx("Each {one} goes with better outcomes on {ind}: {est} per adaptation.",
                                   one=tx(one), ind=label, est=est))
            else:
                findings.append(tx("Each {one} goes with worse outcomes on {ind}: {est} per adaptation.",
                                   one=tx(one), ind=label, est=est))
                headline = headline or findings[-1]
        else:
            findings.append(tx("No clear association between {many} and {ind} ({est} per adaptation).",
                               many=tx(many), ind=label, est=est))
    notes = [tx("Model: within-site changes of {ind} on the cumulative number of adaptations, with period and "
                "adoption effects; the first two {units} after adoption are left out while the effect ramps up.",
                ind=label, units=w["units"])]
    figures = []
    if res.event_study is not None and len(res.event_study):
        ax = res.plot_event_study()
        ax.set_title(tx("{ind}: change around a site's first fidelity-inconsistent adaptation", ind=label))
        figures.append(FigureOut("04_adaptation_event_study", ax.figure))
    return SectionOutput(findings=findings, headline=headline,
                         tables=[TableOut("04_adaptation_effects", coef, tx("Adaptation effects"))],
                         figures=figures, result=res, notes=notes)


@section(4, "dose_response", N_("Does more fidelity mean more effect?"))
def dose_response(study: Study) -> SectionOutput:
    from ..adaptation import fidelity_dose_response

    fid = _fidelity(study)
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    rated_sites = fid.dropna(subset=["adherence"])["site_id"].nunique()
    if rated_sites < 3:
        raise NotApplicable(tx.n("{n} site has adherence ratings; a dose-response needs at least 3.",
                                 "{n} sites have adherence ratings; a dose-response needs at least 3.", rated_sites),
                            tx("adherence ratings at three or more sites."))
    try:
        dr = fidelity_dose_response(study.tables["outcomes"], fid, study.tables["sites"], value="adherence",
                                    indicator=code, min_exposure=2)
    except ScaleupDataError:
        raise NotApplicable(
            tx("the data cannot separate the effect of fidelity from the other changes at the sites (too few "
               "sites, rated periods or periods for the model)."),
            tx("adherence ratings and outcomes at more sites and periods."),
        ) from None
    r = dr.to_frame().iloc[0]
    direction = study.indicator_direction(code)
    est = tx.ci(r["estimate"], r["ci_low"], r["ci_high"])
    if r["ci_low"] > 0 or r["ci_high"] < 0:
        better = (r["estimate"] > 0) == (direction == "higher_is_better")
        findings = [tx("Site-periods with higher adherence to the core components have better {ind}: {est} per "
                       "unit of adherence (0 to 1), {p}.", ind=label, est=est, p=tx.pvalue(r["pvalue"]))
                    if better else
                    tx("Site-periods with higher adherence to the core components have worse {ind}: {est} per "
                       "unit of adherence (0 to 1), {p}.", ind=label, est=est, p=tx.pvalue(r["pvalue"]))]
    else:
        findings = [tx("No clear dose-response: {ind} changes by {est} per unit of adherence (0 to 1), {p}.",
                       ind=label, est=est, p=tx.pvalue(r["pvalue"]))]
    findings.append(tx("{n} site-periods of {s} sites were used; adherence is measured with rater error, so this "
                       "slope is probably an underestimate (regression dilution).", n=tx.int(dr.n_obs),
                       s=tx.int(dr.n_sites)))
    figures = []
    if hasattr(dr, "plot_dose_response"):
        ax = dr.plot_dose_response()
        ax.set_title(tx("{ind} and adherence", ind=label))
        figures.append(FigureOut("04_dose_response", ax.figure))
    return SectionOutput(findings=findings, certainty=findings[1:],
                         tables=[TableOut("04_dose_response", dr.to_frame(), tx("Dose-response"))],
                         figures=figures, result=dr)
