"""Step 1 — evidence of effectiveness: a meta-analysis of the study's ``evidence`` table.

Sections: the pooled effect and its heterogeneity (random effects, REML, with DerSimonian-Laird as a
sensitivity analysis), small-study effects (funnel plot, Egger's regression test), moderators
(meta-regression with a permutation test), the influence of single studies (leave-one-out, metafor's
influence diagnostics) and active ingredients (component meta-regression). Positive effect sizes
favour the innovation (``docs/data_dictionary.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..i18n import N_
from ..narrative import Text, interpret
from ..study import Study
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Fewest studies for a random-effects meta-analysis (tau2 needs at least 3).
MIN_STUDIES = 3
#: Fewest studies for a test of funnel-plot asymmetry (Sterne et al. 2011, BMJ 343:d4002).
MIN_STUDIES_FUNNEL = 10
#: Significance level of Egger's test (Egger et al. 1997 used 0.10, the test having low power).
EGGER_ALPHA = 0.10


def _evidence(study: Study, minimum: int = MIN_STUDIES) -> pd.DataFrame:
    tx = Text(study.settings.language)
    if not study.has("evidence"):
        raise NotApplicable(
            tx("the study has no evidence table (published or pilot studies of the innovation)."),
            tx("an evidence table (evidence.csv or an 'evidence' sheet) with one row per study: study "
               "(label), yi (effect size, positive = favours the innovation) and vi (its sampling variance)."),
        )
    ev = study.tables["evidence"]
    if len(ev) < minimum:
        raise NotApplicable(
            tx.n("the evidence table holds {n} study; this analysis needs at least {m}.",
                 "the evidence table holds {n} studies; this analysis needs at least {m}.", len(ev), m=minimum),
            tx("at least {m} studies in the evidence table.", m=minimum),
        )
    return ev


def _measure(study: Study) -> str:
    return study.settings.evidence_measure


def _direction(tx: Text, low: float, high: float, est: float) -> str:
    if low > 0:
        return tx("the interval lies above zero: the evidence favours the innovation")
    if high < 0:
        return tx("the interval lies below zero: the evidence shows the innovation doing worse than its comparison")
    return tx("the interval includes zero: the evidence does not show a clear effect in either direction")


def _headline(tx: Text, reml, measure: str) -> str:
    est = tx.ci(reml.estimate, reml.ci_low, reml.ci_high)
    if reml.ci_low > 0:
        return tx("The evidence favours the innovation: over {k} studies, the pooled effect ({measure}) is {est}.",
                  k=tx.int(reml.k), measure=measure, est=est)
    if reml.ci_high < 0:
        return tx("The evidence shows the innovation doing worse than its comparison: over {k} studies, the pooled "
                  "effect ({measure}) is {est}.", k=tx.int(reml.k), measure=measure, est=est)
    return tx("The evidence does not show a clear effect: over {k} studies, the pooled effect ({measure}) is {est}.",
              k=tx.int(reml.k), measure=measure, est=est)


@section(1, "pooled_effect", N_("Pooled effect and heterogeneity"))
def pooled_effect(study: Study) -> SectionOutput:
    from ..heterogeneity.meta import meta_analysis

    ev = _evidence(study)
    tx = Text(study.settings.language)
    reml = meta_analysis(ev, yi="yi", vi="vi", method="REML", slab="study")
    dl = meta_analysis(ev, yi="yi", vi="vi", method="DL", slab="study")
    measure = _measure(study)
    source = f" ({study.settings.evidence_source})" if study.settings.evidence_source else ""
    findings = [
        tx("Across {k} studies{source}, the pooled effect ({measure}) is {est} (random-effects model, REML); "
           "{direction}.",
           k=tx.int(reml.k), source=source, measure=measure,
           est=tx.ci(reml.estimate, reml.ci_low, reml.ci_high, level=reml.level),
           direction=_direction(tx, reml.ci_low, reml.ci_high, reml.estimate)),
        tx("I² = {i2}: {word} between studies (τ² = {tau2}; Q = {q} on {df} degrees of freedom, {p}).",
           i2=tx.pct(reml.I2 / 100), word=interpret("I2", reml.I2, tx), tau2=tx.num(reml.tau2, 4),
           q=tx.num(reml.Q, 1), df=tx.int(reml.Q_df), p=tx.pvalue(reml.Q_pvalue)),
    ]
    if reml.pi_low > 0:
        pi_word = tx("it stays above zero, so a new setting can expect a benefit, possibly smaller than the average")
    elif reml.pi_high < 0:
        pi_word = tx("it stays below zero, so a new setting can expect the innovation to do worse")
    else:
        pi_word = tx("it includes zero, so in some new settings the innovation may bring no benefit")
    findings.append(tx("The 95% prediction interval, the range of effects a new setting could expect, runs from "
                       "{low} to {high}: {word}.", low=tx.num(reml.pi_low), high=tx.num(reml.pi_high),
                       word=pi_word))
    findings.append(tx("Sensitivity: the DerSimonian–Laird estimator gives {est}.",
                       est=tx.ci(dl.estimate, dl.ci_low, dl.ci_high, level=dl.level)))
    pooled = pd.concat({"REML": reml.to_frame(), "DL": dl.to_frame()}).droplevel(1)
    pooled = pooled[["estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "I2", "Q", "Q_pvalue", "k"]]
    pooled.index.name = "method"
    ax = reml.plot_forest()
    ax.set_title(tx("Effect by study: {measure} (REML)", measure=measure))
    return SectionOutput(
        findings=findings,
        tables=[TableOut("01_pooled_effect", pooled.reset_index(), tx("Pooled effect by estimator"))],
        figures=[FigureOut("01_forest", ax.figure, brief=True)],
        result={"REML": reml, "DL": dl},
        thresholds=("I2",),
        headline=_headline(tx, reml, measure),
        key_figures=[(tx("Pooled effect ({measure})", measure=measure),
                      tx.ci(reml.estimate, reml.ci_low, reml.ci_high)),
                     (tx("Studies"), tx.int(reml.k)),
                     (tx("Effect a new setting can expect"), tx.interval(reml.pi_low, reml.pi_high))],
        certainty=[findings[1], findings[2]],
    )


@section(1, "small_study_effects", N_("Small-study effects (funnel plot)"))
def small_study_effects(study: Study) -> SectionOutput:
    from ..heterogeneity.meta import meta_analysis, meta_regression

    ev = _evidence(study, MIN_STUDIES_FUNNEL)
    tx = Text(study.settings.language)
    reml = meta_analysis(ev, yi="yi", vi="vi", method="REML", slab="study")
    data = ev.assign(sei=np.sqrt(ev["vi"].astype(float)))
    egger = meta_regression(data, yi="yi", vi="vi", mods=["sei"], method="REML")
    row = egger.coef.loc["sei"]
    if row["pvalue"] < EGGER_ALPHA:
        side = tx("larger") if row["estimate"] > 0 else tx("smaller")
        finding = tx("Egger's regression test finds an asymmetric funnel plot (slope on the standard error "
                     "{slope}, {p}): less precise studies report {side} effects, which can signal publication "
                     "bias, so the pooled effect may be {bias}.", slope=tx.signed(row["estimate"]),
                     p=tx.pvalue(row["pvalue"]), side=side,
                     bias=tx("overestimated") if row["estimate"] > 0 else tx("underestimated"))
    else:
        finding = tx("Egger's regression test finds no clear asymmetry of the funnel plot (slope on the standard "
                     "error {slope}, {p}, with {k} studies); this does not exclude publication bias, only a strong one.",
                     slope=tx.signed(row["estimate"]), p=tx.pvalue(row["pvalue"]), k=tx.int(reml.k))
    ax = reml.plot_funnel()
    ax.set_title(tx("Funnel plot of the evidence studies"))
    table = egger.coef.reset_index()
    return SectionOutput(
        certainty=[finding],
        findings=[finding],
        tables=[TableOut("01_egger_test", table, tx("Egger's regression test (meta-regression on the standard error)"))],
        figures=[FigureOut("01_funnel", ax.figure)],
        result=egger,
        notes=[tx("Egger's test is read at the {a} level, as its authors advise (low power); it is run only with "
                  "{m} or more studies (Sterne et al. 2011).", a=tx.num(EGGER_ALPHA), m=MIN_STUDIES_FUNNEL)],
    )


@section(1, "moderators", N_("Moderators of the effect"))
def moderators(study: Study) -> SectionOutput:
    from ..heterogeneity.meta import meta_regression

    ev = _evidence(study)
    tx = Text(study.settings.language)
    mods = list(study.settings.evidence_moderators)
    if not mods:
        raise NotApplicable(
            tx("no moderator is named in the study file."),
            tx("the names of columns of the evidence table to test, in study.toml: [evidence] moderators = [\"...\"]."),
        )
    complete = ev.dropna(subset=mods)
    n_coef = 1 + len(mods)
    if len(complete) < n_coef + 2:
        raise NotApplicable(
            tx("{k} studies have every moderator, too few to estimate {c} coefficients and the heterogeneity.",
               k=tx.int(len(complete)), c=n_coef),
            tx("at least {m} studies with the moderators filled in.", m=n_coef + 2),
        )
    mr = meta_regression(ev, yi="yi", vi="vi", mods=mods, method="REML")
    perm = mr.permutation_test(n_perm=1000, seed=study.settings.seed)
    findings = []
    coef = mr.coef.drop(index="intrcpt", errors="ignore")
    pcol = _perm_pvalues(perm)
    for term, row in coef.iterrows():
        sig = row["ci_low"] > 0 or row["ci_high"] < 0
        values = sorted(complete[term].unique()) if term in complete else []
        if len(values) == 2:
            what = tx("{term}: studies with {term} = {b} differ from those with {term} = {a} by {est}",
                      term=str(term), a=str(values[0]), b=str(values[1]),
                      est=tx.ci(row["estimate"], row["ci_low"], row["ci_high"], level=mr.level))
        else:
            what = tx("{term}: each additional unit goes with a change of {est} in the effect", term=str(term),
                      est=tx.ci(row["estimate"], row["ci_low"], row["ci_high"], level=mr.level))
        findings.append(tx(
            "{what}; {verdict} ({p}; permutation test {pp}).", what=what,
            verdict=tx("the interval excludes zero") if sig else tx("the interval includes zero, no clear association"),
            p=tx.pvalue(row["pvalue"]), pp=tx.pvalue(pcol.get(term, float("nan")))))
    findings.append(tx("Together the moderators explain {r2} of the heterogeneity between studies (test of all "
                       "moderators: {p}; permutation test {pp}); {k} studies were used.",
                       r2=tx.pct(mr.R2 / 100) if np.isfinite(mr.R2) else tx("an unknown share"),
                       p=tx.pvalue(mr.QM_pvalue), pp=tx.pvalue(pcol.get("QM", float("nan"))),
                       k=tx.int(mr.k)))
    figures = []
    numeric = [m for m in mods if pd.api.types.is_numeric_dtype(ev[m]) and ev[m].nunique() > 2]
    if numeric:
        ax = mr.plot_bubble(numeric[0])
        ax.set_title(tx("Effect and {m} (bubble size = weight)", m=numeric[0]))
        figures.append(FigureOut("01_bubble", ax.figure))
    return SectionOutput(
        findings=findings,
        tables=[TableOut("01_moderators", mr.coef.reset_index(), tx("Meta-regression coefficients"))],
        figures=figures,
        result={"meta_regression": mr, "permutation": perm},
        notes=[tx("With few studies these are associations between studies, not causal effects of the "
                  "moderators.")],
    )


def _perm_pvalues(perm) -> dict:
    """Permutation p-values by term, and of the test of all moderators under ``"QM"``."""
    table = perm.to_frame()
    col = [c for c in table.columns if "pvalue" in c][0]
    out = {str(k): float(v) for k, v in table[col].items()}
    omnibus = [k for k in out if k.startswith("QM")]
    if omnibus:
        out["QM"] = out[omnibus[0]]
    return out


@section(1, "influence", N_("Does any single study drive the result?"))
def influence(study: Study) -> SectionOutput:
    from ..heterogeneity.meta import meta_analysis

    ev = _evidence(study)
    tx = Text(study.settings.language)
    reml = meta_analysis(ev, yi="yi", vi="vi", method="REML", slab="study")
    infl = reml.influence()
    loo = reml.leave_one_out()
    lo, hi = float(loo["estimate"].min()), float(loo["estimate"].max())
    flagged = [str(s) for s in infl.index[infl["inf"].astype(bool)]]
    findings = [tx("Leaving out one study at a time, the pooled effect stays between {lo} and {hi} "
                   "(all studies: {est}).", lo=tx.num(lo), hi=tx.num(hi), est=tx.num(reml.estimate))]
    sign_change = (loo["ci_low"] <= 0) & (loo["ci_high"] >= 0)
    full_excludes = reml.ci_low > 0 or reml.ci_high < 0
    if flagged:
        parts = []
        for s in flagged:
            parts.append(tx("{s} (without it: {est})", s=s, est=tx.num(float(loo.loc[s, "estimate"]))))
        findings.append(tx.n("{n} study is flagged as influential by metafor's criteria: {list}.",
                             "{n} studies are flagged as influential by metafor's criteria: {list}.",
                             len(flagged), list=tx.join(parts)))
    else:
        findings.append(tx("None of the {k} studies is flagged as influential by metafor's criteria (studentized "
                           "residual, DFFITS, Cook's distance, covariance ratio, hat value).", k=tx.int(reml.k)))
    if full_excludes and sign_change.any():
        which = [str(s) for s in loo.index[sign_change]]
        findings.append(tx.n("Without {list}, the interval of the pooled effect would include zero: the "
                             "conclusion rests on that study.",
                             "Without any one of {list}, the interval of the pooled effect would include zero: "
                             "the conclusion rests on few studies.", len(which), list=tx.join(which)))
    elif full_excludes:
        bound = float(loo["ci_low"].min()) if reml.estimate > 0 else float(loo["ci_high"].max())
        findings.append(tx("The interval excludes zero whichever of the {k} studies is left out (its bound nearest "
                           "to zero is then {b}): the conclusion does not rest on a single study.",
                           k=tx.int(reml.k), b=tx.num(bound, tx.digits_for(bound))))
    table = loo[["estimate", "ci_low", "ci_high", "tau2", "I2"]].join(infl[["cook_d", "inf"]]).reset_index()
    return SectionOutput(
        certainty=findings[1:],
        findings=findings,
        tables=[TableOut("01_leave_one_out", table, tx("Pooled effect without each study"))],
        result={"influence": infl, "leave_one_out": loo},
    )


@section(1, "active_ingredients", N_("Active ingredients (components of the interventions)"))
def active_ingredients(study: Study) -> SectionOutput:
    from ..adaptation import component_analysis

    ev = _evidence(study)
    tx = Text(study.settings.language)
    comps = list(study.settings.evidence_components)
    if not comps:
        raise NotApplicable(
            tx("no component column is named in the study file."),
            tx("0/1 columns of the evidence table saying which components each study's intervention contained, "
               "named in study.toml: [evidence] components = [\"...\"]."),
        )
    if len(ev) < len(comps) + 3:
        raise NotApplicable(
            tx("{k} studies for {c} components: too few to separate the components.", k=tx.int(len(ev)),
               c=len(comps)),
            tx("at least {m} studies in the evidence table.", m=len(comps) + 3),
        )
    res = component_analysis(ev, yi="yi", vi="vi", components=comps, slab="study")
    joint = res.table.query("model == 'joint'")
    findings = []
    for row in joint.itertuples():
        if row.ci_low > 0:
            verdict = tx("associated with larger effects")
        elif row.ci_high < 0:
            verdict = tx("associated with smaller effects")
        else:
            verdict = tx("not clearly associated with the effect")
        findings.append(tx("{c}: {verdict}, {est} when present ({p}).", c=str(row.component), verdict=verdict,
                           est=tx.ci(row.estimate, row.ci_low, row.ci_high), p=tx.pvalue(row.pvalue)))
    findings.append(tx("These are associations between studies (all components in one model, {k} studies), not "
                       "causal effects of components.", k=tx.int(len(ev))))
    return SectionOutput(
        findings=findings,
        tables=[TableOut("01_active_ingredients", joint, tx("Components in one meta-regression"))],
        result=res,
    )
