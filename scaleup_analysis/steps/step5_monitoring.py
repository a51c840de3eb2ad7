"""Step 5 — monitoring of impacts: the quintuple aim by region, the effect at scale, equity, RE-AIM.

Sections: deleterious effects by region and indicator (change from baseline to follow-up against the
comparison sites, Holm and Benjamini-Hochberg corrections), control charts of flagged regions, the
staggered difference-in-differences (Callaway & Sant'Anna 2021) with the two-way fixed-effects
comparison and Goodman-Bacon decomposition, site variation (mixed model of patient-level data),
heterogeneity of site effects (multilevel meta-analysis), the voltage drop from pilot to scale-up
sites, equity by deprivation quintile and the RE-AIM dimensions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError
from ..i18n import N_
from ..narrative import Text
from ..study import Study, span_text
from ._common import hidden_note, measurement_word, period_words, primary_indicator
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Familywise error rate of the deleterious-effects tests.
ALPHA_HARM = 0.05
#: Largest number of flagged region x indicator pairs drawn as control charts.
MAX_CHARTS = 2


# --------------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------------


def _indicator_type(study: Study, code: str) -> str:
    ind = study.tables["indicators"]
    return str(ind.loc[ind["indicator_id"] == code, "type"].iloc[0])


def _amount(tx: Text, study: Study, code: str, value: float, low: float | None = None,
            high: float | None = None) -> str:
    """A change of indicator ``code`` in its unit: percentage points for proportions."""
    ind = study.tables["indicators"].set_index("indicator_id")
    if _indicator_type(study, code) == "proportion":
        scale, unit = 100.0, tx("percentage points")
    else:
        scale, unit = 1.0, measurement_word(tx, str(ind.loc[code, "unit"]))
    if low is None:
        return tx("{value} {unit}", value=tx.num(scale * value, tx.digits_for(scale * value)), unit=unit)
    d = tx.digits_for(scale * value, scale * low, scale * high)
    return tx("{value} {unit} ({level} CI {low} to {high})", value=tx.num(scale * value, d), unit=unit,
              level=tx.pct(0.95), low=tx.num(scale * low, d), high=tx.num(scale * high, d))


def _windows(study: Study) -> tuple[tuple[int, ...], tuple[int, ...]]:
    s = study.settings
    tx = Text(s.language)
    if not s.baseline:
        raise NotApplicable(tx("the study has no baseline periods (see 'About the data')."),
                            tx("[periods] baseline in study.toml, or sites whose adoption leaves periods before "
                               "the first wave."))
    if not s.followup:
        raise NotApplicable(tx("the study has no follow-up periods (see 'About the data')."),
                            tx("[periods] followup in study.toml, or periods after the last adoption."))
    return s.baseline, s.followup


def _series(study: Study, code: str) -> pd.DataFrame:
    """Site x period values of an indicator (mean, or events / n) with the sites' columns."""
    oc = study.tables["outcomes"]
    d = oc[oc["indicator_id"] == code].copy()
    if _indicator_type(study, code) == "proportion":
        d["value"] = d["events"].astype(float) / d["n"].where(d["n"] > 0)
    else:
        d["value"] = d["mean"].astype(float)
    d = d.dropna(subset=["value"]).merge(study.tables["sites"], on="site_id", how="left")
    d["first_period"] = d["adoption_period"].fillna(0).astype(int)
    return d


def _improves(study: Study, code: str, value: float) -> bool:
    return (value > 0) == (study.indicator_direction(code) == "higher_is_better")


# --------------------------------------------------------------------------------------------------
# quintuple aim: deleterious effects by region
# --------------------------------------------------------------------------------------------------


def _harm(study: Study):
    from ..monitoring.quintuple import change_from_baseline, deleterious_effects, quintuple_aim_panel

    if not study.has("outcomes", "indicators"):
        tx = Text(study.settings.language)
        raise NotApplicable(tx("the study has no outcomes or indicators table."),
                            tx("indicators and their values by site and period (outcomes)."))
    baseline, followup = _windows(study)
    comp = study.settings.comparison
    panel = quintuple_aim_panel(study.tables, comparison=("phase", comp) if comp else None)
    have = sorted(set(panel.to_frame()["period"].astype(int)))
    tx = Text(study.settings.language)
    for window, missing in (
        (baseline, N_("the outcomes table has no value in the baseline periods ({p}); it covers periods {have}.")),
        (followup, N_("the outcomes table has no value in the follow-up periods ({p}); it covers periods {have}.")),
    ):
        if not set(have) & set(window):
            raise NotApplicable(tx(missing, p=span_text(window), have=span_text(have)),
                                tx("outcomes in the baseline and follow-up periods (see 'About the data')."))
    changes = change_from_baseline(panel, baseline_periods=baseline, followup_periods=followup)
    harm = deleterious_effects(changes, contrast="comparison" if comp else "baseline", correction="both",
                               alpha=ALPHA_HARM)
    return panel, changes, harm


@section(5, "deleterious_effects", N_("Quintuple aim: did any region get worse?"))
def deleterious(study: Study) -> SectionOutput:
    panel, changes, harm = _harm(study)
    tx = Text(study.settings.language)
    s = study.settings
    t = harm.to_frame()
    t = t[t["by"] == "region"].copy()
    comp = s.comparison is not None
    est = "improvement_did" if comp else "improvement_change"
    n_tests = int(t[est].notna().sum())
    n_regions = t["unit"].nunique()
    n_ind = t["indicator_id"].nunique()
    w = period_words(tx, study)
    if comp:
        n_comp = int((study.tables["sites"]["phase"] == s.comparison).sum())
        how = tx.n("compared with the change at the {n} comparison site over the same {units} "
                   "(difference-in-differences)", "compared with the change at the {n} comparison sites over "
                   "the same {units} (difference-in-differences)", n_comp, units=w["units"])
    else:
        how = tx("without comparison sites, so province-wide trends are not removed")
    findings = [tx("The change of {k} indicators in {r} regions from baseline ({units} {b}) to follow-up ({units} "
                   "{f}) was {how}; {m} tests, corrected for multiple testing (Holm, familywise error {a}).",
                   k=tx.int(n_ind), r=tx.int(n_regions), units=w["units"], b=span_text(s.baseline),
                   f=span_text(s.followup), how=how, m=tx.int(n_tests), a=tx.num(ALPHA_HARM))]
    flagged = t[t["flagged_holm"]].sort_values("pvalue")
    for r in flagged.itertuples():
        code = r.indicator_id
        worse = -getattr(r, est)
        lo, hi = -getattr(r, f"{est}_ci_high"), -getattr(r, f"{est}_ci_low")
        findings.append(tx("{region}: {ind} got worse by {amount}, Holm-adjusted {p}.",
                           region=study.region_name(r.unit), ind=study.indicator_label(code),
                           amount=_amount(tx, study, code, worse, lo, hi), p=tx.pvalue(r.pvalue_holm)))
    if flagged.empty:
        findings.append(tx("No region got significantly worse on any indicator after the Holm correction."))
    bh_only = t[t["flagged_bh"] & ~t["flagged_holm"]]
    if len(bh_only):
        findings.append(tx.n("The less strict Benjamini-Hochberg correction flags {n} more pair: {list}; a signal to "
                             "watch, not a finding.", "The less strict Benjamini-Hochberg correction flags {n} more "
                             "pairs: {list}; signals to watch, not findings.", len(bh_only),
                             list=tx.join([study.region_name(r.unit) + " – " + study.indicator_label(r.indicator_id)
                                           for r in bh_only.itertuples()])))
    table = pd.DataFrame({
        "rss_code": t["unit"], "region": [study.region_name(u) for u in t["unit"]],
        "indicator_id": t["indicator_id"], "indicator": [study.indicator_label(c) for c in t["indicator_id"]],
        "domain": t["domain"], "n_baseline": t["n_baseline"], "n_followup": t["n_followup"],
        "improvement": t[est], "improvement_ci_low": t[f"{est}_ci_low"], "improvement_ci_high": t[f"{est}_ci_high"],
        "pvalue": t["pvalue"], "pvalue_holm": t["pvalue_holm"], "pvalue_bh": t["pvalue_bh"],
        "flagged": t["flagged_holm"],
    }).sort_values(["pvalue"], kind="mergesort").reset_index(drop=True)
    shown = table[table["flagged"]] if table["flagged"].any() else table.head(5)
    headline = findings[1] if len(flagged) else findings[-1] if not len(bh_only) else findings[-2]
    ax = harm.plot_dashboard(indicator_labels={c: study.indicator_label(c) for c in t["indicator_id"].unique()})
    ax.set_title(tx("Quintuple aim: standardized change by region (▼ = significant worsening)"))
    return SectionOutput(
        findings=findings,
        tables=[TableOut("05_deleterious_effects", table, tx("Every region x indicator, by p-value"), show=False,
                         counts=["n_baseline", "n_followup"]),
                TableOut("05_deleterious_shown", shown,
                         tx("Flagged pairs") if table["flagged"].any() else tx("The five smallest p-values"), show=True,
                         counts=["n_baseline", "n_followup"])],
        figures=[FigureOut("05_quintuple_dashboard", ax.figure, brief=True)],
        result=harm,
        headline=headline,
        key_figures=[(tx("Regions x indicators tested"), tx.int(n_tests)),
                     (tx("Significant worsenings (Holm)"), tx.int(len(flagged)))],
        notes=[tx("Improvement is oriented so that positive = better for every indicator (its direction in the "
                  "indicators table); for proportions it is a difference of proportions.")],
    )


@section(5, "control_charts", N_("Control charts: when did it start?"))
def control_charts(study: Study) -> SectionOutput:
    from ..monitoring.spc import control_chart

    panel, changes, harm = _harm(study)
    tx = Text(study.settings.language)
    t = harm.to_frame()
    flagged = t[(t["by"] == "region") & t["flagged_holm"]].sort_values("pvalue").head(MAX_CHARTS)
    if flagged.empty:
        raise NotApplicable(tx("no region got significantly worse (previous section): a control chart is drawn "
                               "only for a flagged region and indicator."), "")
    s = study.settings
    w = period_words(tx, study)
    periods = sorted(panel.to_frame()["period"].unique())
    if list(s.baseline) != periods[: len(s.baseline)]:
        raise NotApplicable(tx("the baseline periods are not the first periods of the data, so control limits "
                               "cannot be frozen on them."), tx("baseline periods that start at the first period."))
    threshold = s.small_cell_threshold
    findings, figures, tables, notes = [], [], [], []
    for r in flagged.itertuples():
        series = panel.to_frame().query("indicator_id == @r.indicator_id and rss_code == @r.unit").sort_values("period")
        kind = _indicator_type(study, r.indicator_id)
        if kind == "proportion":
            series = series.assign(events=(series["estimate"] * series["n"]).round())
            chart = control_chart(series, value="events", n="n", chart="p", x="period", freeze=len(s.baseline))
        else:
            chart = control_chart(series, value="estimate", chart="i", x="period", freeze=len(s.baseline))
        pts = chart.to_frame()
        after = pts[pts["x"] > max(s.baseline)]
        sign = 1 if study.indicator_direction(r.indicator_id) == "lower_is_better" else -1
        worse_out = after[(after["sigma_signal"]) & (np.sign(after["y"] - after["cl"]) == sign)]
        label = study.indicator_label(r.indicator_id)
        region = study.region_name(r.unit)
        findings.append(tx("{region}, {ind}: with limits from the baseline {units}, {k} of the {n} later {units} fall "
                           "outside the limits on the worse side{first}; the run-chart rules {runs}.",
                           region=region, ind=label, units=w["units"],
                           k=tx.int(len(worse_out)), n=tx.int(len(after)),
                           first=(tx(", the first in {unit} {p}", unit=w["unit"], p=int(worse_out["x"].min()))
                                  if len(worse_out) else ""),
                           runs=tx("signal a sustained shift") if bool(pts["runs_signal"].any())
                           else tx("do not signal a sustained shift")))
        # the people behind each point (and, for a p-chart, with and without the event): small cells
        # are suppressed when the table is saved, with the value and the limits that would reveal them
        # and, among the baseline points, a complement (the centre line is their pooled value)
        by_period = series.set_index("period")
        pts["n"] = pts["x"].map(by_period["n"]).astype("float64")
        counts, values = ["n"], ["y"]
        if kind == "proportion":
            pts["events"] = pts["x"].map(by_period["events"]).astype("float64")
            pts["non_events"] = pts["n"] - pts["events"]
            counts, values = ["n", "events", "non_events"], ["y", "lcl", "ucl"]  # p-chart limits depend on n
        table = TableOut(f"05_control_chart_{r.unit}_{r.indicator_id}", pts, show=False, counts=counts,
                         values=values, by=["baseline"])
        hidden = table.hidden(threshold)  # the figure leaves out what the saved table suppresses
        base = pts["baseline"].to_numpy(dtype=bool)
        if base.sum() == 1 and hidden[base].all():  # the centre line would be the hidden point itself
            notes.append(tx("{region}, {ind}: no control chart is shown, as its limits would come from a single "
                            "baseline point ({unit} {p}) based on fewer than {k} people.", region=region, ind=label,
                            unit=w["unit"], p=int(pts.loc[base, "x"].iloc[0]), k=tx.int(threshold)))
            continue
        ax = chart.plot(hide=hidden, threshold=threshold)
        ax.set_title(tx("{region}: {ind} ({chart}, limits from {units} {b})", region=region,
                        ind=label, chart=tx("p-chart") if kind == "proportion" else tx("I-chart"),
                        units=w["units"], b=span_text(s.baseline)))
        ax.set_xlabel(w["Unit"])
        ax.set_ylabel(tx("Proportion") if kind == "proportion" else label)
        figures.append(FigureOut(f"05_control_chart_{r.unit}_{r.indicator_id}", ax.figure))
        tables.append(table)
        if hidden.any():
            notes.append(hidden_note(tx, tx("{region}, {ind}", region=region, ind=label), hidden.sum(), threshold))
    return SectionOutput(findings=findings, tables=tables, figures=figures, certainty=list(findings), notes=notes)


# --------------------------------------------------------------------------------------------------
# effect at scale: staggered difference-in-differences
# --------------------------------------------------------------------------------------------------


def _did_data(study: Study) -> tuple[pd.DataFrame, str, str]:
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    d = _series(study, code)
    adopters = d.loc[d["first_period"] > 0, "first_period"]
    if adopters.empty:
        raise NotApplicable(tx("no site adopted the innovation during the study."),
                            tx("sites with an adoption period."))
    never = (d["first_period"] == 0).any()
    if not never and adopters.nunique() < 2:
        raise NotApplicable(tx("every site adopted in the same period and none stayed without the innovation, so "
                            "there is no comparison group."),
                            tx("comparison sites that never adopt, or sites adopting at different times."))
    if int(adopters.min()) <= int(d["period"].min()):
        raise NotApplicable(tx("sites adopted in the first period of the data: there is no period before adoption "
                            "to compare with."), tx("outcomes from at least one period before the first adoption."))
    return d, code, label


@section(5, "effect_at_scale", N_("Did the innovation work at scale? (staggered difference-in-differences)"))
def effect_at_scale(study: Study) -> SectionOutput:
    from ..rollout.did import staggered_did

    d, code, label = _did_data(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    try:
        did = staggered_did(d, "value", "site_id", "period", "first_period", control="notyet", n_boot=999,
                            seed=study.settings.seed)
    except ScaleupDataError:
        raise NotApplicable(tx("the sites and periods do not give any usable comparison of adopting and not-yet "
                            "adopting sites."), tx("more sites, or comparison sites observed before and after "
                            "adoption.")) from None
    dyn = did.aggregate("dynamic")
    simple = did.aggregate("simple")
    es = dyn.to_frame()
    pre = es[es["event_time"] < 0].dropna(subset=["band_low"])
    post = es[es["event_time"] >= 0].dropna(subset=["band_low"])
    findings = []
    if len(pre):
        off = pre[(pre["band_low"] > 0) | (pre["band_high"] < 0)]
        findings.append(tx.n("Before adoption, {k} of the {n} estimate differs from zero (95% simultaneous bands): {v}.",
                             "Before adoption, {k} of the {n} estimates differ from zero (95% simultaneous bands): {v}.",
                             len(pre), k=tx.int(len(off)),
                             v=tx("the comparison sites are a credible counterfactual") if off.empty else
                             tx("adopting and comparison sites already differed before adoption, so the effect "
                                "estimates below are doubtful")))
    a = simple.to_frame().iloc[0]
    if a["band_low"] > 0 or a["band_high"] < 0:
        verdict = tx("improved") if _improves(study, code, a["att"]) else tx("worsened")
        findings.append(tx("Averaged over sites and {units} after adoption, the innovation {verdict} {ind} by "
                           "{amount}.", units=w["units"], verdict=verdict, ind=label,
                           amount=_amount(tx, study, code, abs(a["att"]), *sorted(
                               (abs(a["band_low"]) if a["att"] > 0 else abs(a["band_high"]),
                                abs(a["band_high"]) if a["att"] > 0 else abs(a["band_low"]))))))
    else:
        findings.append(tx("Averaged over sites and {units} after adoption, the effect on {ind} is {amount}: not "
                           "clearly different from zero.", units=w["units"], ind=label,
                           amount=_amount(tx, study, code, a["att"], a["band_low"], a["band_high"])))
    if len(post) >= 2:
        first = post.iloc[0]
        last = post.iloc[-1]
        findings.append(tx("By time since adoption: {a} in the first {unit} of delivery, {b} after {e} {units}.",
                           a=_amount(tx, study, code, first["att"], first["band_low"], first["band_high"]),
                           b=_amount(tx, study, code, last["att"], last["band_low"], last["band_high"]),
                           e=int(last["event_time"]), unit=w["unit"], units=w["units"]))
    ax = did.plot_event_study()
    ax.set_title(tx("{ind}: effect by {units} since adoption", ind=label, units=w["units"]), wrap=True)
    return SectionOutput(
        findings=findings,
        tables=[TableOut("05_effect_at_scale", simple.to_frame(), tx("Average effect after adoption")),
                TableOut("05_event_study", es, tx("Event study (Callaway & Sant'Anna, not-yet-treated comparisons)"),
                         show=False)],
        figures=[FigureOut("05_event_study", ax.figure, brief=True)],
        result=did,
        headline=findings[1] if len(pre) else findings[0],
        key_figures=[(tx("Average effect on {ind} after adoption", ind=label),
                      _amount(tx, study, code, a["att"], a["band_low"], a["band_high"]))],
        certainty=findings[:1] if len(pre) else [],
        notes=[tx("Comparisons use sites that had not yet adopted (and comparison sites) at each {unit}; bands are "
                  "simultaneous 95% bands (multiplier bootstrap, clustered by site).", unit=w["unit"])],
    )


@section(5, "twfe_comparison", N_("Why not a simple two-way fixed-effects regression?"))
def twfe_comparison(study: Study) -> SectionOutput:
    from ..rollout.did import bacon_decomposition, staggered_did, twfe_did

    d, code, label = _did_data(study)
    tx = Text(study.settings.language)
    if d["first_period"][d["first_period"] > 0].nunique() < 2:
        raise NotApplicable(tx("all adopting sites adopted in the same period: with a single adoption time the two-way "
                            "fixed-effects estimate has no problematic comparisons to show."), "")
    try:
        twfe = twfe_did(d, "value", "site_id", "period", "first_period")
        bacon = bacon_decomposition(d, "value", "site_id", "period", "first_period")
        cs = staggered_did(d, "value", "site_id", "period", "first_period", control="notyet", n_boot=0,
                           seed=study.settings.seed).aggregate("simple").to_frame().iloc[0]["att"]
    except ScaleupDataError:
        raise NotApplicable(tx("the panel is not balanced enough for the decomposition (every site needs every "
                            "period)."), tx("outcomes of every site in every period.")) from None
    types = bacon.by_type()
    bad = types.loc[types["type"].str.startswith("later vs earlier"), "weight"].sum()
    findings = [tx("The two-way fixed-effects regression gives {twfe}, the staggered estimator {cs}.",
                   twfe=_amount(tx, study, code, twfe.att), cs=_amount(tx, study, code, cs)),
                tx("{w} of the regression's weight comes from comparisons in which sites that had already adopted "
                   "serve as controls; when effects build up over time these comparisons bias it, so the staggered "
                   "estimator is the one to report.", w=tx.pct(bad))]
    return SectionOutput(findings=findings,
                         tables=[TableOut("05_bacon", types, tx("Goodman-Bacon decomposition"))],
                         result={"twfe": twfe, "bacon": bacon})


# --------------------------------------------------------------------------------------------------
# variation between sites and regions
# --------------------------------------------------------------------------------------------------


def site_variance_model(cells: pd.DataFrame):
    """The site-variation model of step 5, ``y ~ treated + C(period)`` with a site random intercept (REML),
    fitted from the per-cell sufficient statistics of the patient-level table.

    ``cells`` holds one row per site x period x treated (``Study.cells("encounters").cells``: counts,
    sums and sums of squares of y, the layout of :func:`scaleup_analysis.summarize`); ``treated`` and
    the period indicators are constant within a cell, so the cross-products of the model follow
    exactly from the cell sums and the fit equals ``mixed_model(encounters, "y ~ treated + C(period)",
    group="site_id")`` on the rows (``treated`` is left out when it takes one value). The fixed effects
    of the periods are named ``period_<p>``. Returns the :class:`~scaleup_analysis.MixedModelResult`
    and the number of rows summarised.
    """
    from ..summarize import mixed_model_from_summary

    periods = sorted(cells["period"].unique())
    dummies = {f"period_{p}": (cells["period"] == p).astype(float) for p in periods[1:]}
    cells = cells.assign(**dummies)
    terms = (["treated"] if cells["treated"].nunique() > 1 else []) + list(dummies)
    formula = "y ~ " + (" + ".join(terms) if terms else "1")
    return mixed_model_from_summary(cells, formula, group="site_id"), int(cells["n"].sum())


@section(5, "site_variation", N_("How much do sites differ? (patient-level outcome)"))
def site_variation(study: Study) -> SectionOutput:
    tx = Text(study.settings.language)
    if not study.has("encounters"):
        raise NotApplicable(tx("the study has no patient-level table (encounters)."),
                            tx("an encounters table: one row per patient and period with the outcome y."))
    cells = study.cells("encounters").cells
    n_sites = cells["site_id"].nunique()
    if n_sites < 3:
        raise NotApplicable(tx.n("patients come from {n} site; a between-site variance needs at least 3.",
                                 "patients come from {n} sites; a between-site variance needs at least 3.", n_sites),
                            tx("patients from three or more sites."))
    mm, n_rows = site_variance_model(cells)
    findings = [tx("{icc} of the variation of the patient-level outcome lies between sites ({n} patients-periods, "
                   "{s} sites; mixed model with a site random intercept and period effects).",
                   icc=tx.pct(mm.icc, 1), n=tx.int(n_rows), s=tx.int(n_sites))]
    if "treated" in mm.fixed.index:
        r = mm.fixed.loc["treated"]
        findings.append(tx("Patients treated at delivering sites differ by {est} on y from the same sites' other "
                           "patients, adjusted for period.", est=tx.ci(r["estimate"], r["ci_low"], r["ci_high"])))
    ax = mm.plot_caterpillar(sites=study.tables.get("sites"))
    ax.set_title(tx("Site effects on the patient-level outcome (95% intervals)"))
    return SectionOutput(findings=findings,
                         key_figures=[(tx("Share of the outcome's variation between sites"), tx.pct(mm.icc, 1))],
                         tables=[TableOut("05_variance_components", mm.variance_components,
                                          tx("Variance components"))],
                         figures=[FigureOut("05_caterpillar", ax.figure)], result=mm)


def _site_effects(study: Study) -> tuple[pd.DataFrame, str, str]:
    from ..monitoring.voltage import site_effects

    tx = Text(study.settings.language)
    code, label = primary_indicator(study)
    if study.settings.comparison is None:
        raise NotApplicable(tx("site effects are measured against comparison sites, and the study has none."),
                            tx("comparison sites (phase \"not-adopted\")."))
    try:
        eff = site_effects(study.tables["outcomes"], study.tables["sites"], code, washin_periods=2,
                           comparison_phase=study.settings.comparison)
    except ScaleupDataError:
        raise NotApplicable(tx("the site effects cannot be estimated: too few periods before or after adoption "
                            "(the first two after adoption are left out while the effect ramps up)."),
                            tx("outcomes over several periods before and after each site's adoption.")) from None
    eff = eff.merge(study.tables["sites"][["site_id", "rss_code"]], on="site_id").dropna(subset=["yi", "vi"])
    if eff.empty:
        raise NotApplicable(tx("no adopting site has outcomes both before its adoption and after the first two "
                            "periods of delivery."), tx("outcomes over several periods before and after adoption."))
    return eff, code, label


@section(5, "effect_heterogeneity", N_("Does the effect differ between regions and sites?"))
def effect_heterogeneity(study: Study) -> SectionOutput:
    from ..heterogeneity.multilevel import multilevel_meta_analysis

    eff, code, label = _site_effects(study)
    tx = Text(study.settings.language)
    n_reg = eff["rss_code"].nunique()
    if len(eff) < 4 or n_reg < 2:
        raise NotApplicable(tx("effects are estimated at {sites} in {regions}; separating region and site "
                               "heterogeneity needs at least 4 sites in 2 regions.",
                               sites=tx.n("{n} site", "{n} sites", len(eff)),
                               regions=tx.n("{n} region", "{n} regions", n_reg)),
                            tx("more adopting sites, in two or more regions."))
    ml = multilevel_meta_analysis(eff, yi="yi", vi="vi", group=["rss_code", "site_id"])
    f = ml.to_frame().set_index("term")
    reg, site = f.loc["sigma2.rss_code"], f.loc["sigma2.site_id"]
    i0 = f.loc["intercept"]
    findings = [tx("Across {k} adopting sites in {r} regions, the average site effect on {ind} is {amount}.",
                   k=tx.int(len(eff)), r=tx.int(n_reg), ind=label,
                   amount=_amount(tx, study, code, i0["estimate"], i0["ci_low"], i0["ci_high"]))]
    if reg["I2"] + site["I2"] < 25:
        findings.append(tx("Site effects vary little beyond chance (I² {a} between the {r} regions, {b} between the "
                           "{k} sites within regions).", a=tx.pct(reg["I2"] / 100), b=tx.pct(site["I2"] / 100),
                           r=tx.int(n_reg), k=tx.int(len(eff))))
    else:
        more = tx("between regions than between sites of a region") if reg["estimate"] > site["estimate"] else \
            tx("between sites of a region than between regions")
        findings.append(tx("The effect varies more {more}: I² {a} between regions, {b} between sites within regions.",
                           more=more, a=tx.pct(reg["I2"] / 100), b=tx.pct(site["I2"] / 100)))
    return SectionOutput(findings=findings, certainty=findings[1:],
                         tables=[TableOut("05_effect_heterogeneity", ml.to_frame(), tx("Multilevel meta-analysis"))],
                         result=ml, thresholds=("I2",))


def _difference_word(tx: Text, study: Study, code: str, pilot: float, difference: float) -> str:
    if _improves(study, code, difference):
        return tx("the scale-up sites did better than the pilots")
    if _improves(study, code, pilot):
        return tx("a voltage drop, the effect is smaller at scale")
    return tx("the scale-up sites did worse than the pilots")


@section(5, "voltage_drop", N_("Voltage drop: did the effect shrink at scale?"))
def voltage_drop(study: Study) -> SectionOutput:
    from ..monitoring.voltage import voltage_drop as _vd

    eff, code, label = _site_effects(study)
    tx = Text(study.settings.language)
    counts = eff["phase"].astype(str).value_counts()
    if counts.get("pilot", 0) < 2 or counts.get("scale-up", 0) < 2:
        raise NotApplicable(tx("site effects are available for {p} pilot and {s} scale-up sites; the comparison "
                               "needs at least 2 of each.", p=counts.get("pilot", 0), s=counts.get("scale-up", 0)),
                            tx("two or more pilot sites and two or more scale-up sites with outcomes."))
    vd = _vd(data=eff, levels=["pilot", "scale-up"])
    r = vd.to_frame().query("model == 'meta_regression'").iloc[0]
    pilot_sig = abs(r["pilot_estimate"]) > 1.96 * r["pilot_se"]
    findings = [tx("Average site effect on {ind}: {p} at the {np} pilot sites, {s} at the {ns} scale-up sites.",
                   ind=label, p=_amount(tx, study, code, r["pilot_estimate"]), np=tx.int(counts["pilot"]),
                   s=_amount(tx, study, code, r["scaled_estimate"]), ns=tx.int(counts["scale-up"]))]
    if not pilot_sig:
        findings.append(tx("The pilot effect itself is not clearly different from zero, so the ratio scale-up / pilot "
                           "is not informative; the difference is {d}.",
                           d=_amount(tx, study, code, r["difference"], r["difference_ci_low"], r["difference_ci_high"])))
    else:
        if r["fieller_type"] == "bounded":
            ci = tx.interval(100 * r["ratio_ci_low_fieller"], 100 * r["ratio_ci_high_fieller"], 0)
            findings.append(tx("Scale-up sites kept {ratio} of the pilot effect (95% CI {ci}%, Fieller).",
                               ratio=tx.pct(r["ratio"]), ci=ci))
        else:
            findings.append(tx("Scale-up sites kept {ratio} of the pilot effect; its confidence interval is unbounded "
                               "(Fieller), too imprecise to say more.", ratio=tx.pct(r["ratio"])))
        if r["difference_ci_high"] < 0 or r["difference_ci_low"] > 0:
            findings.append(tx("The difference between scale-up and pilot sites is {d}: {v}.",
                               d=_amount(tx, study, code, r["difference"], r["difference_ci_low"], r["difference_ci_high"]),
                               v=_difference_word(tx, study, code, r["pilot_estimate"], r["difference"])))
        else:
            findings.append(tx("The difference between scale-up and pilot sites, {d}, is not clearly different from "
                               "zero.", d=_amount(tx, study, code, r["difference"], r["difference_ci_low"],
                                                  r["difference_ci_high"])))
    return SectionOutput(findings=findings, headline=findings[1], certainty=findings[2:],
                         key_figures=[(tx("Share of the pilot effect kept at scale"), tx.pct(r["ratio"]))]
                         if pilot_sig else [],
                         tables=[TableOut("05_voltage_drop", vd.to_frame(), tx("Voltage drop"))],
                         result=vd)


# --------------------------------------------------------------------------------------------------
# equity, RE-AIM
# --------------------------------------------------------------------------------------------------


def _equity_strata(d: pd.DataFrame, baseline, followup) -> tuple[list, int, dict]:
    """Quintiles with at least 2 adopting sites observed in both windows, the number of comparison
    sites observed in both windows, and the adopting sites per quintile (as ``equity_effects``
    counts them: adopted between the windows, outcome in both)."""
    per_site = d.groupby("site_id").agg(adopt=("adoption_period", "first"), q=("deprivation_quintile", "first"))
    before = d[d["period"].isin(baseline)].groupby("site_id")["value"].size()
    after = d[d["period"].isin(followup)].groupby("site_id")["value"].size()
    both = per_site.index.isin(before.index) & per_site.index.isin(after.index)
    adopt = pd.to_numeric(per_site["adopt"], errors="coerce").astype(float)
    treated = both & (adopt > max(baseline)).to_numpy() & (adopt <= min(followup)).to_numpy()
    control = both & (adopt.isna() | (adopt > max(followup))).to_numpy()
    counts = per_site[treated].groupby("q").size().to_dict()
    kept = sorted(q for q, n in counts.items() if n >= 2)
    # the comparison sites that stay when the analysis keeps only those quintiles
    return kept, int((control & per_site["q"].isin(kept).to_numpy()).sum()), counts


@section(5, "equity", N_("Equity: did the scale-up widen or narrow gaps?"))
def equity(study: Study) -> SectionOutput:
    from ..monitoring.equity import equity_effects

    baseline, followup = _windows(study)
    code, label = primary_indicator(study)
    tx = Text(study.settings.language)
    d = _series(study, code)
    kept, n_control, counts = _equity_strata(d, baseline, followup)
    if len(kept) < 2:
        shown = tx.join([f"Q{int(q)}: {n}" for q, n in sorted(counts.items())]) or tx("none")
        raise NotApplicable(tx("fewer than two deprivation quintiles have 2 or more sites that adopted between "
                               "the baseline and the follow-up and were observed in both (adopting sites per "
                               "quintile: {shown}).", shown=shown),
                            tx("at least 2 such adopting sites in each of two or more quintiles."))
    if n_control < 2:
        raise NotApplicable(tx.n("{n} comparison site is observed at both baseline and follow-up in the quintiles "
                                 "with enough adopting sites ({q}); the effect by quintile needs at least 2.",
                                 "{n} comparison sites are observed at both baseline and follow-up in the "
                                 "quintiles with enough adopting sites ({q}); the effect by quintile needs at least 2.",
                                 n_control, q=tx.join([f"Q{int(q)}" for q in kept])),
                            tx("two or more comparison sites with outcomes at baseline and follow-up."))
    dropped = sorted(set(d["deprivation_quintile"].dropna().astype(int)) - set(kept))
    eq = equity_effects(d[d["deprivation_quintile"].isin(kept)], "value", before=list(baseline),
                        after=list(followup), direction=study.indicator_direction(code))
    f = eq.to_frame()
    findings = [tx("Effect on {ind} by deprivation quintile (1 = least deprived): {list}.", ind=label,
                   list=tx.join([f"Q{int(r.stratum)} {_amount(tx, study, code, r.estimate)}" for r in f.itertuples()]))]
    notes = []
    if eq.n_omitted:
        notes.append(tx.n("{n} site is left out of this comparison: it adopted before or during the baseline, between "
                          "the two windows, or has no outcome in one of them.",
                          "{n} sites are left out of this comparison: they adopted before or during the baseline, "
                          "between the two windows, or have no outcome in one of them.", int(eq.n_omitted)))
    if dropped:
        notes.append(tx("Quintile(s) {q} are left out: fewer than 2 sites there adopted between the baseline and "
                        "the follow-up.", q=tx.join([f"Q{q}" for q in dropped])))
    if np.isfinite(eq.trend):
        if eq.trend_ci_low > 0 or eq.trend_ci_high < 0:
            better = _improves(study, code, eq.trend)
            findings.append(tx("Per step towards more deprivation the effect changes by {amount}: the innovation helps "
                               "{who} more.", amount=_amount(tx, study, code, eq.trend, eq.trend_ci_low,
                                                             eq.trend_ci_high),
                               who=tx("more deprived sites") if better else tx("less deprived sites")))
        else:
            findings.append(tx("No clear gradient: per step towards more deprivation the effect changes by {amount}.",
                               amount=_amount(tx, study, code, eq.trend, eq.trend_ci_low, eq.trend_ci_high)))
    if np.isfinite(eq.gap_change):
        clear = eq.gap_change_ci_low > 0 or eq.gap_change_ci_high < 0
        findings.append(tx("The gap between quintiles (slope index of inequality) changed by {amount}{v}.",
                           amount=_amount(tx, study, code, eq.gap_change, eq.gap_change_ci_low, eq.gap_change_ci_high),
                           v="" if clear else tx(", not clearly different from zero")))
    ax = eq.plot_effects()
    ax.set_title(tx("Effect on {ind} by deprivation quintile", ind=label))
    return SectionOutput(findings=findings, tables=[TableOut("05_equity", f, tx("Effect by deprivation quintile"),
                                                             counts=["n_treated", "n_control"])],
                         figures=[FigureOut("05_equity", ax.figure)], result=eq, notes=notes,
                         headline=findings[1] if len(findings) > 1 else "")


@section(5, "reaim", N_("RE-AIM: reach, adoption, implementation, maintenance"))
def reaim_summary(study: Study) -> SectionOutput:
    from ..monitoring.reaim import reaim

    tx = Text(study.settings.language)
    if not study.has("delivery"):
        raise NotApplicable(tx("the study has no delivery table (people eligible and reached, staff trained, cost)."),
                            tx("a delivery table by site and period."))
    threshold = study.settings.small_cell_threshold
    res = reaim(study.tables, threshold=threshold)
    # the table as published (small cells and their complements suppressed): the findings quote it and
    # the figure leaves out what it hides
    table = _suppress_people(study, res.to_frame())
    allr = table[table["region"] == "all"].set_index("measure")
    findings = []
    names = {"reach": tx("reach (eligible people who took part)"),
             "adoption_settings": tx("adoption by sites"), "adoption_staff": tx("staff trained"),
             "maintenance_12m": tx("sites still delivering 12 months after adoption")}
    shares = {m: allr.loc[m] for m in names if m in allr.index and np.isfinite(allr.loc[m, "estimate"])}
    if shares:
        findings.append(tx("RE-AIM across the regions: {list}.",
                           list=tx.join([f"{names[m]} {tx.pct(r['estimate'])}" for m, r in shares.items()])))
        weakest = min(shares, key=lambda m: shares[m]["estimate"])
        findings.append(tx("The weakest RE-AIM dimension is {w} ({v}).", w=names[weakest],
                           v=tx.pct(shares[weakest]["estimate"])))
    if "implementation_cost_per_participant" in allr.index:
        c = allr.loc["implementation_cost_per_participant", "estimate"]
        if np.isfinite(c):
            findings.append(tx("Implementation cost: {c} CAD per participant.", c=tx.num(c, 0)))
    saved = TableOut("05_reaim", table, tx("RE-AIM and Proctor measures by region"), show=False)
    hidden = saved.hidden(threshold)
    fig = res.plot(hide=hidden)
    title = tx("RE-AIM and implementation outcomes by region")
    return SectionOutput(findings=findings,
                         tables=[saved, TableOut("05_reaim_all", table[table["region"] == "all"],
                                                 tx("Province (all regions)"))],
                         figures=[FigureOut("05_reaim", fig)], result=res,
                         notes=[hidden_note(tx, title, hidden.sum(), threshold)] if hidden.any() else [],
                         headline=findings[1] if len(findings) > 1 else "",
                         key_figures=[(names[m][:1].upper() + names[m][1:], tx.pct(r["estimate"]))
                                      for m, r in list(shares.items())[:3]])


def _suppress_people(study: Study, table: pd.DataFrame) -> pd.DataFrame:
    """Small-cell suppression of the rows counting people (``measurement_unit == "individuals"``):
    their numerator, denominator and the people between them (eligible not reached, staff not
    trained...), and of the cost per participant, whose denominator is the people reached; rows
    counting sites or money are published as they are."""
    from ..privacy import suppress_small_cells

    threshold = study.settings.small_cell_threshold
    people = (table["measurement_unit"].astype(str) == "individuals").to_numpy()
    per_person = (table["measure"].astype(str) == "implementation_cost_per_participant").to_numpy()
    if not (people.any() or per_person.any()):
        return table
    parts = []
    if people.any():
        part = table[people].copy()
        for col in ("numerator", "denominator"):
            part[col] = part[col].round().astype("Int64")
        part["_rest"] = part["denominator"] - part["numerator"]
        counts = ["numerator", "denominator", "_rest"] + (["n_excluded"] if "n_excluded" in part else [])
        parts.append(suppress_small_cells(part, counts, ["estimate", "ci_low", "ci_high"], threshold=threshold,
                                          by=["measure"]).drop(columns="_rest"))
    if per_person.any():  # cost / reached: with the cost published, the estimate gives the people reached
        part = table[per_person].copy()
        part["denominator"] = part["denominator"].round().astype("Int64")
        parts.append(suppress_small_cells(part, ["denominator"], ["estimate", "ci_low", "ci_high"],
                                          threshold=threshold, by=["measure"]))
    rest = table[~(people | per_person)].assign(suppressed=False)
    return pd.concat([*parts, rest]).loc[table.index]
