"""Step 2 — scale-up potential: scores of the ``assessments`` table, rater agreement, readiness.

Sections: domain and overall scores of each candidate innovation on its instrument (ISAT, ISSaQ-style
or PSAT; :func:`~scaleup_analysis.score_assessment`), the agreement of the raters (Krippendorff's
alpha over the items) and the recommendation. A readiness category is only given when the raters
agree well enough (alpha at least 0.667, Krippendorff 2004); otherwise the recommendation is to
discuss the ratings first.
"""

from __future__ import annotations

import numpy as np

from ..i18n import N_
from ..narrative import THRESHOLDS, Text, interpret
from ..study import Study
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Krippendorff's alpha below which ratings must be discussed before any readiness judgement.
ALPHA_DISCUSS = THRESHOLDS["krippendorff"].cuts[0]
#: Bootstrap replicates of the overall scores and of alpha.
N_BOOT = 1000


def _scores(study: Study):
    from ..scalability import load_instrument, score_assessment

    tx = Text(study.settings.language)
    if not study.has("assessments"):
        raise NotApplicable(
            tx("the study has no assessments table (ratings of the innovation on a scale-up potential "
               "instrument)."),
            tx("an assessments table: one row per instrument x innovation x rater x item with its score "
               "(e.g. the ISAT, rated by two or more people)."),
        )
    a = study.tables["assessments"]
    instruments = sorted(a["instrument"].unique())
    if len(instruments) > 1:
        raise NotApplicable(
            tx("the assessments table mixes {k} instruments ({list}); this section scores one instrument at "
               "a time.", k=len(instruments), list=", ".join(instruments)),
            tx("one instrument per study, or separate runs per instrument."),
        )
    try:
        instrument = load_instrument(instruments[0])
    except Exception:  # an instrument the package does not ship
        raise NotApplicable(
            tx("the instrument {name} is not one the package knows.", name=instruments[0]),
            tx("the instrument code ISAT, ISSaQ or PSAT in assessments.instrument."),
        ) from None
    return instrument, score_assessment(a, instrument, n_boot=N_BOOT, seed=study.settings.seed)


def _label(study: Study, innovation: str) -> str:
    """A readable name of an innovation code (the study's name for it when it has one)."""
    def key(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    if key(innovation) == key(study.settings.innovation):
        return study.settings.innovation
    label = innovation.replace("_", " ")
    return Text(study.settings.language)(label)  # the embedded example's innovations have translations


#: Innovations of the embedded example study (simulate_scaleup), named in the report's language.
EXAMPLE_INNOVATIONS = (N_("chronic care coordination"), N_("collaborative mental health"), N_("social prescribing"))


def _domain_labels(instrument, tx: Text) -> dict[str, str]:
    """Domain code -> its label in the report's language (instrument labels are catalogue messages)."""
    d = instrument.domains
    return {code: tx(label) for code, label in zip(d["domain"], d["label"])}


@section(2, "scores", N_("Domain and overall scores"))
def scores(study: Study) -> SectionOutput:
    instrument, sc = _scores(study)
    tx = Text(study.settings.language)
    labels = _domain_labels(instrument, tx)
    n_inn = len(sc.overall)
    n_raters = int(sc.overall["n_raters"].max())
    n_items = len(instrument.items) if hasattr(instrument, "items") else int(sc.completeness["n_expected"].max())
    names = [_label(study, i) for i in sc.overall.sort_values("rank")["innovation"]]
    findings = [tx.n("{list} was rated on the {ins} by {r} raters ({items} items in {d} domains).",
                     "{n} innovations ({list}) were rated on the {ins} by {r} raters ({items} items in {d} domains).",
                     n_inn, list=tx.join(names), ins=instrument.id, r=tx.int(n_raters), items=tx.int(n_items),
                     d=tx.int(len(labels)))]
    lo, hi = instrument.scale_min, instrument.scale_max
    for r in sc.overall.sort_values("rank").itertuples():
        ds = sc.domain_scores[sc.domain_scores["innovation"] == r.innovation].dropna(subset=["mean"])
        higher = instrument.direction == "higher_is_better"
        best = ds.sort_values("mean", ascending=not higher, kind="mergesort").iloc[0]
        worst = ds.sort_values("mean", ascending=higher, kind="mergesort").iloc[0]
        findings.append(tx(
            "{inn}: overall score {score} on a {lo}-{hi} scale (raters range from {rlo} to {rhi}); strongest domain "
            "{best} ({bs}), weakest {worst} ({ws}).", inn=_label(study, r.innovation), score=tx.num(r.mean),
            lo=tx.num(lo, 0), hi=tx.num(hi, 0),
            rlo=tx.num(sc.rater_overall.loc[sc.rater_overall["innovation"] == r.innovation, "overall"].min()),
            rhi=tx.num(sc.rater_overall.loc[sc.rater_overall["innovation"] == r.innovation, "overall"].max()),
            best=labels.get(best["domain"], best["domain"]), bs=tx.num(best["mean"]),
            worst=labels.get(worst["domain"], worst["domain"]), ws=tx.num(worst["mean"])))
    n_miss = len(sc.missing_items)
    n_exp = int(sc.completeness["n_expected"].sum())
    if n_miss:
        by_inn = sc.missing_items.groupby("innovation").size()
        findings.append(tx("{ans} of the {exp} expected item ratings were answered; missing answers ({list}) are left "
                           "out of the means, never counted as zero.", ans=tx.int(n_exp - n_miss), exp=tx.int(n_exp),
                           list=tx.join([f"{_label(study, i)}: {tx.int(k)}" for i, k in by_inn.items()])))
    else:
        findings[0] = findings[0][:-1] + tx("; all {exp} item ratings were answered.", exp=tx.int(n_exp))
    ax = sc.plot_profile(innovations={i: _label(study, i) for i in sc.overall["innovation"]})
    ax.set_title(tx("{ins} domain scores (mean of raters; bars = range across raters)", ins=instrument.id))
    ov = sc.overall.sort_values("rank")
    return SectionOutput(
        key_figures=[(tx("Overall score of {inn} (scale {lo}-{hi})", inn=_label(study, r.innovation),
                         lo=tx.num(lo, 0), hi=tx.num(hi, 0)), tx.num(r.mean)) for r in ov.head(3).itertuples()],
        findings=findings,
        tables=[TableOut("02_domain_scores", sc.domain_scores, tx("Domain scores across raters"))],
        figures=[FigureOut("02_profile", ax.figure, brief=True)],
        result=sc,
    )


@section(2, "agreement", N_("Do the raters agree?"))
def agreement(study: Study) -> SectionOutput:
    instrument, sc = _scores(study)
    tx = Text(study.settings.language)
    ag = sc.agreement
    if (ag["n_raters"] < 2).all():
        raise NotApplicable(tx("each innovation was rated by a single rater: agreement cannot be measured."),
                            tx("two or more raters per innovation."))
    findings = []
    for r in ag.itertuples():
        if not np.isfinite(r.estimate):
            findings.append(tx("{inn}: agreement could not be estimated (the raters' scores do not vary).",
                               inn=_label(study, r.innovation)))
            continue
        findings.append(tx("{inn}: Krippendorff's alpha = {a} over {u} items rated by {n} raters: {word}.",
                           inn=_label(study, r.innovation), a=tx.ci(r.estimate, r.ci_low, r.ci_high),
                           u=tx.int(r.n_units), n=tx.int(r.n_raters), word=interpret("krippendorff", r.estimate, tx)))
    return SectionOutput(
        certainty=list(findings),
        findings=findings,
        tables=[TableOut("02_agreement", ag, tx("Krippendorff's alpha by innovation"))],
        result=ag,
        thresholds=("krippendorff",),
    )


@section(2, "recommendation", N_("Recommendation"))
def recommendation(study: Study) -> SectionOutput:
    instrument, sc = _scores(study)
    tx = Text(study.settings.language)
    labels = _domain_labels(instrument, tx)
    rec = sc.recommendation_table()
    rec = rec.assign(readiness=[tx(x) for x in rec["readiness"].astype(str)])
    rec = rec.assign(recommendation=rec["readiness"])
    findings = []
    for i, r in rec.iterrows():
        inn = _label(study, r["innovation"])
        alpha = r["krippendorff_alpha"]
        weak = [labels.get(d.strip(), d.strip()) for d in str(r["weak_domains"]).split(",") if d.strip()]
        if not np.isfinite(alpha) or alpha < ALPHA_DISCUSS:
            n_r = int(r["n_raters"])
            why = (tx("a single rater scored it, and a judgement needs two or more raters who agree") if n_r < 2
                   else tx("their agreement could not be estimated") if not np.isfinite(alpha) else
                   tx("their agreement is too low (alpha = {a}, below {t})", a=tx.num(alpha), t=tx.num(ALPHA_DISCUSS, 3)))
            rec.loc[i, "recommendation"] = tx("discuss the ratings first")
            findings.append(tx("{inn}: no readiness judgement yet, because {why}; the raters' scores give {score} "
                               "overall, and the items they disagree on must be discussed in a consensus meeting "
                               "before deciding.", inn=inn, score=tx.num(r["overall_mean"]), why=why))
            continue
        text = tx("{inn}: {category} (overall score {score}, thresholds {thr}).", inn=inn,
                  category=str(r["readiness"]), score=tx.num(r["overall_mean"]),
                  thr="; ".join(f"≥ {tx.num(m, 1)} {tx(lab)}" for m, lab in instrument.thresholds))
        if weak:
            text += " " + tx.n("Its weak domain ({list}) should be strengthened in the scale-up plan.",
                               "Its weak domains ({list}) should be strengthened in the scale-up plan.",
                               len(weak), list=tx.join(weak))
        findings.append(text)
    notes = [tx("The readiness thresholds are this package's own convention (the instrument defines none); they "
                "are stored in the instrument file, where a team can change them.")
             if instrument.thresholds_source == "ours" else
             tx("The readiness thresholds come from the instrument ({src}).", src=instrument.thresholds_source)]
    return SectionOutput(
        headline=" ".join(findings[:2]),
        findings=findings,
        tables=[TableOut("02_recommendation", rec, tx("Recommendation by innovation"))],
        result=rec,
        thresholds=("krippendorff",),
        notes=notes,
    )
