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
from ..narrative import Text, interpret
from ..study import Study
from ._common import primary_indicator, site_period_word
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Fewest rated periods of a site for a drift slope (a line through two points has no error).
MIN_DRIFT_PERIODS = 3


def _ratings(study: Study):
    if not study.has("fidelity_ratings", "components"):
        missing = [t for t in ("fidelity_ratings", "components") if not study.has(t)]
        raise NotApplicable(
            f"the study has no {' and no '.join(missing)} table.",
            "a components table (the innovation's components, core or adaptable, with their rating scale) "
            "and a fidelity_ratings table (observed sessions scored by raters on each component).",
        )
    return study.tables["fidelity_ratings"], study.tables["components"]


def _fidelity(study: Study) -> pd.DataFrame:
    from ..fidelity import fidelity_index

    ratings, components = _ratings(study)
    delivery = study.tables["delivery"] if study.has("delivery") else None
    return fidelity_index(ratings, components, delivery)


@section(4, "fidelity", "Fidelity by region")
def fidelity(study: Study) -> SectionOutput:
    from ..fidelity import fidelity_by, plot_fidelity

    fid = _fidelity(study)
    tx = Text(study.settings.language)
    unit = study.settings.period_unit
    rated = fid.dropna(subset=["adherence"])
    ratings, _ = _ratings(study)
    findings = [tx("{sp} of {s} sites were rated: {sess} observed sessions, {r} raters.",
                   sp=site_period_word(tx, len(rated), unit), s=tx.int(rated["site_id"].nunique()),
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
        findings.append(tx("The weakest part of fidelity is {w} ({v}).",
                           w=dict(parts)[weakest], v=tx.pct(means[weakest])))
    value = "fidelity_index" if rated["fidelity_index"].notna().any() else "adherence"
    delivered = rated.dropna(subset=[value])
    bands = delivered["band"].value_counts() if "band" in delivered else pd.Series(dtype=int)
    if value == "fidelity_index" and len(delivered):
        findings.append(tx("Composite fidelity index (mean of adherence, dose and coverage): {hi} high (≥ 80%), "
                           "{mid} moderate and {lo} low (≤ 50%), out of {n}.",
                           hi=site_period_word(tx, int(bands.get("high", 0)), unit),
                           mid=tx.int(int(bands.get("moderate", 0))), lo=tx.int(int(bands.get("low", 0))),
                           n=tx.int(len(delivered))))
    by_region = fidelity_by(fid, by=["rss_code"], sites=study.tables["sites"])
    order = by_region.dropna(subset=[value]).sort_values(value)
    if len(order) >= 2:
        low = order.iloc[0]
        high = order.iloc[-1]
        findings.append(tx("Lowest region: {lr} ({lv}); highest: {hr} ({hv}).",
                           lr=study.region_name(low["rss_code"]), lv=tx.pct(low[value]),
                           hr=study.region_name(high["rss_code"]), hv=tx.pct(high[value])))
    by_region.insert(1, "region", [study.region_name(c) for c in by_region["rss_code"]])
    counts = [c for c in ("eligible", "reached") if c in by_region]
    ax = plot_fidelity(fid, by="region", sites=study.tables["sites"], value=value)
    ax.set_title(f"{'Composite fidelity index' if value == 'fidelity_index' else 'Adherence'} by region "
                 f"and {unit}")
    return SectionOutput(
        findings=findings,
        tables=[TableOut("04_fidelity_by_region", by_region, "Fidelity by region",
                         counts=counts or None, values=["coverage"] if "coverage" in by_region and counts else None)],
        figures=[FigureOut("04_fidelity_heatmap", ax.figure)],
        result=fid,
        thresholds=("fidelity",),
    )


@section(4, "fidelity_drift", "Fidelity drift: which sites are slipping?")
def fidelity_drift(study: Study) -> SectionOutput:
    from ..fidelity import fidelity_drift as _drift

    fid = _fidelity(study)
    tx = Text(study.settings.language)
    rated = fid.dropna(subset=["adherence"])
    per_site = rated.groupby("site_id")["period"].nunique()
    eligible = per_site[per_site >= MIN_DRIFT_PERIODS]
    if eligible.empty:
        raise NotApplicable(
            f"no site has adherence ratings in {MIN_DRIFT_PERIODS} or more {study.settings.period_unit}s "
            f"(most: {int(per_site.max()) if len(per_site) else 0}).",
            f"ratings of the same sites over at least {MIN_DRIFT_PERIODS} {study.settings.period_unit}s.",
        )
    drift = _drift(rated[rated["site_id"].isin(eligible.index)])
    table = drift.to_frame()
    flagged = table[table["flagged"]]
    n = len(table)
    if len(flagged):
        sig = int(table["significant_decline"].sum())
        runs = int(table["run_flag"].sum())
        names = list(flagged.sort_values("slope")["site_id"].astype(str))
        shown = tx.join(names[:8]) + (tx(" and {k} more", k=len(names) - 8) if len(names) > 8 else "")
        findings = [tx.n("{n} site with {m} or more rated {unit}s was examined.",
                         "{n} sites with {m} or more rated {unit}s were examined.", n, m=MIN_DRIFT_PERIODS,
                         unit=study.settings.period_unit),
                    tx("{k} show a decline in adherence ({sig} with a significant downward slope, {runs} with {r} or "
                       "more consecutive declines): {list}.", k=tx.int(len(flagged)), sig=tx.int(sig),
                       runs=tx.int(runs), r=drift.run_length, list=shown)]
    else:
        findings = [tx.n("None of the {n} site with {m} or more rated {unit}s shows a decline in adherence "
                         "(no significant downward slope, no run of {r} consecutive declines).",
                         "None of the {n} sites with {m} or more rated {unit}s shows a decline in adherence "
                         "(no significant downward slope, no run of {r} consecutive declines).",
                         n, m=MIN_DRIFT_PERIODS, unit=study.settings.period_unit, r=drift.run_length)]
    excluded = int((per_site < MIN_DRIFT_PERIODS).sum())
    notes = []
    if excluded:
        notes.append(tx.n("{n} site with fewer rated {unit}s is not examined.",
                          "{n} sites with fewer rated {unit}s are not examined.", excluded,
                          unit=study.settings.period_unit))
    ax = drift.plot_drift()
    ax.set_title("Adherence trend per site (flagged sites highlighted)")
    return SectionOutput(
        findings=findings,
        tables=[TableOut("04_fidelity_drift", table, "Adherence slope per site")],
        figures=[FigureOut("04_fidelity_drift", ax.figure)],
        result=drift,
        notes=notes,
    )


@section(4, "rater_reliability", "Can we trust the fidelity ratings?")
def rater_reliability(study: Study) -> SectionOutput:
    from ..agreement import icc_mixed, krippendorff_alpha

    ratings, components = _ratings(study)
    tx = Text(study.settings.language)
    per_session = ratings.groupby("session_id")["rater_id"].nunique()
    if (per_session < 2).all():
        raise NotApplicable("every session was rated by a single rater: reliability cannot be measured.",
                            "two or more raters on at least some of the rated sessions.")
    core = components.loc[components["core"].astype(bool), "component_id"]
    first = str(core.iloc[0]) if len(core) else str(components["component_id"].iloc[0])
    c1 = ratings[ratings["component_id"] == first]
    findings = [tx("{s} sessions were rated by {r} raters; {m} of them by two raters or more.",
                   s=tx.int(len(per_session)), r=tx.int(ratings["rater_id"].nunique()),
                   m=tx.int(int((per_session >= 2).sum())))]
    tables = []
    result = {}
    if c1.groupby("session_id")["rater_id"].nunique().max() >= 2 and c1["score"].nunique() > 1:
        ic = icc_mixed(c1, unit="session_id", rater="rater_id", score="score")
        t = ic.table
        single, average = float(t.loc["ICC2", "icc"]), float(t.loc["ICC2k", "icc"])
        name = components.set_index("component_id").loc[first, "name"]
        findings.append(tx("Component '{c}' (mixed-model ICC, incomplete designs allowed): one rater's score has "
                           "ICC = {s} ({sw}); the mean of a session's raters has ICC = {a} ({aw}).", c=name,
                           s=tx.num(single), sw=interpret("icc", single), a=tx.num(average),
                           aw=interpret("icc", average)))
        consistency = float(t.loc["ICC3", "icc"])
        if consistency - single > 0.05:
            findings.append(tx("Consistency (ICC = {c}) is higher than absolute agreement: some raters are "
                               "systematically more lenient or more severe than others.", c=tx.num(consistency)))
        tables.append(TableOut("04_icc", t.reset_index(), "Intra-class correlations of one component"))
        result["icc"] = ic
    units = ratings.assign(unit=ratings["session_id"].astype(str) + "|" + ratings["component_id"].astype(str))
    alpha = krippendorff_alpha(units, unit="unit", rater="rater_id", score="score", metric="ordinal",
                               n_boot=1000, seed=study.settings.seed)
    a = alpha.to_frame().iloc[0]
    findings.append(tx("Across all components, Krippendorff's alpha (ordinal) = {a}: {word}.",
                       a=tx.ci(a["estimate"], a["ci_low"], a["ci_high"]), word=interpret("krippendorff", a["estimate"])))
    result["krippendorff"] = alpha
    tables.append(TableOut("04_krippendorff", alpha.to_frame(), "Krippendorff's alpha, all components"))
    return SectionOutput(findings=findings, tables=tables, result=result, thresholds=("icc", "krippendorff"))


def _adaptations(study: Study) -> pd.DataFrame:
    if not study.has("adaptations"):
        raise NotApplicable("the study has no adaptations table.",
                            "an adaptations table: one FRAME-coded row per documented adaptation (site, period, "
                            "what was modified, its relation to fidelity, ...).")
    return study.tables["adaptations"]


@section(4, "adaptations", "Which adaptations were made? (FRAME)")
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
    planned = ad["planned"].astype(str).str.startswith("planned").sum()
    findings.append(tx("{p} were planned and {u} unplanned.", p=tx.int(int(planned)), u=tx.int(n - int(planned))))
    what = ad["what_modified"].astype(str).value_counts()
    findings.append(tx("Most often modified: {w} ({k} of {n}).", w=str(what.index[0]).replace("-", " "),
                       k=tx.int(int(what.iloc[0])), n=tx.int(n)))
    inconsistent = ad[ad["fidelity_relation"].astype(str) == "fidelity-inconsistent"]
    if len(inconsistent):
        findings.append(tx("Sites with a fidelity-inconsistent adaptation: {list}.",
                           list=tx.join(sorted(inconsistent["site_id"].astype(str).unique()))))
    ax = plot_adaptation_timeline(ad, sites=study.tables["sites"], n_periods=max(study.periods or [1]))
    ax.set_title("Adaptations per site over time (marker = relation to fidelity)")
    return SectionOutput(
        findings=findings,
        # counts of adaptations (events at sites), not of people: named so, never suppressed
        tables=[TableOut("04_adaptations_frame", summ.to_frame().rename(columns={"n": "adaptations"}),
                         "FRAME summary", show=False)],
        figures=[FigureOut("04_adaptation_timeline", ax.figure)],
        result=summ,
    )


def _effect_model_error(exc: Exception, what: str) -> NotApplicable:
    return NotApplicable(
        f"the data cannot separate {what} from the other changes at the sites (too few sites, "
        f"{'adaptations' if 'adaptation' in what else 'rated periods'} or periods for the model).",
        "more sites with documented adaptations and several periods of outcomes before and after them.",
    )


@section(4, "adaptation_effects", "Did adaptations help or harm?")
def adaptation_effects(study: Study) -> SectionOutput:
    from ..adaptation import adaptation_effects as _effects

    ad = _adaptations(study)
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    counted = ad[ad["fidelity_relation"].astype(str) != "unknown"]
    sites_with = counted["site_id"].nunique()
    if sites_with < 2:
        raise NotApplicable(
            f"{sites_with} site has a fidelity-consistent or -inconsistent adaptation; effects need several.",
            "adaptations documented at two or more sites, with outcomes before and after them.",
        )
    try:
        res = _effects(study.tables["outcomes"], ad, study.tables["sites"], indicator=code, min_exposure=2)
    except ScaleupDataError as exc:
        raise _effect_model_error(exc, "the effect of adaptations") from None
    coef = res.to_frame()
    cum = coef[coef["analysis"] == "cumulative"].set_index("term")
    direction = study.indicator_direction(code)
    findings = []
    words = {"n_consistent": tx("fidelity-consistent"), "n_inconsistent": tx("fidelity-inconsistent"),
             "n_unknown": tx("unknown-relation")}
    for term, word in words.items():
        if term not in cum.index or not np.isfinite(cum.loc[term, "estimate"]):
            continue
        r = cum.loc[term]
        better = (r["estimate"] > 0) == (direction == "higher_is_better")
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            verdict = tx("better outcomes") if better else tx("worse outcomes")
            findings.append(tx("Each {w} adaptation goes with {verdict} on {ind}: {est} per adaptation.",
                               w=word, verdict=verdict, ind=label, est=tx.ci(r["estimate"], r["ci_low"], r["ci_high"])))
        else:
            findings.append(tx("{w} adaptations show no clear association with {ind} ({est} per adaptation).",
                               w=word[:1].upper() + word[1:], ind=label,
                               est=tx.ci(r["estimate"], r["ci_low"], r["ci_high"])))
    findings.append(tx("Model: within-site changes of {ind} on the cumulative number of adaptations, with period "
                       "and adoption effects; the first two {unit}s after adoption are left out while the effect "
                       "ramps up.", ind=label, unit=study.settings.period_unit))
    figures = []
    if res.event_study is not None and len(res.event_study):
        ax = res.plot_event_study()
        ax.set_title(f"{label}: change around a site's first fidelity-inconsistent adaptation")
        figures.append(FigureOut("04_adaptation_event_study", ax.figure))
    return SectionOutput(findings=findings,
                         tables=[TableOut("04_adaptation_effects", coef, "Adaptation effects")],
                         figures=figures, result=res)


@section(4, "dose_response", "Does more fidelity mean more effect?")
def dose_response(study: Study) -> SectionOutput:
    from ..adaptation import fidelity_dose_response

    fid = _fidelity(study)
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    rated_sites = fid.dropna(subset=["adherence"])["site_id"].nunique()
    if rated_sites < 3:
        raise NotApplicable(f"{rated_sites} sites have adherence ratings; a dose-response needs at least 3.",
                            "adherence ratings at three or more sites.")
    try:
        dr = fidelity_dose_response(study.tables["outcomes"], fid, study.tables["sites"], value="adherence",
                                    indicator=code, min_exposure=2)
    except ScaleupDataError as exc:
        raise _effect_model_error(exc, "the effect of fidelity") from None
    r = dr.to_frame().iloc[0]
    direction = study.indicator_direction(code)
    if r["ci_low"] > 0 or r["ci_high"] < 0:
        better = (r["estimate"] > 0) == (direction == "higher_is_better")
        findings = [tx("{sp} with higher adherence to the core components have {verdict} {ind}: {est} per unit of "
                       "adherence (0 to 1), {p}.", sp=tx("Site-periods"),
                       verdict=tx("better") if better else tx("worse"), ind=label,
                       est=tx.ci(r["estimate"], r["ci_low"], r["ci_high"]), p=tx.pvalue(r["pvalue"]))]
    else:
        findings = [tx("No clear dose-response: {ind} changes by {est} per unit of adherence (0 to 1), {p}.",
                       ind=label, est=tx.ci(r["estimate"], r["ci_low"], r["ci_high"]), p=tx.pvalue(r["pvalue"]))]
    findings.append(tx("Adherence is measured with rater error, so this slope is probably an underestimate "
                       "(regression dilution); {n} site-periods of {s} sites were used.", n=tx.int(dr.n_obs),
                       s=tx.int(dr.n_sites)))
    figures = []
    if hasattr(dr, "plot_dose_response"):
        ax = dr.plot_dose_response()
        ax.set_title(f"{label} and adherence")
        figures.append(FigureOut("04_dose_response", ax.figure))
    return SectionOutput(findings=findings, tables=[TableOut("04_dose_response", dr.to_frame(), "Dose-response")],
                         figures=figures, result=dr)
