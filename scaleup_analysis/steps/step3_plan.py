"""Step 3 — scale-up plan and rollout: the study's own rollout as a stepped-wedge design.

Sections: the rollout as it happened (sites, regions, waves, comparison sites), the smallest effect
that rollout can detect (Hussey & Hughes 2007 closed form, with the intra-cluster correlation
estimated from the baseline data by REML), how the number of waves would change it, and a
simulation check of the closed form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..i18n import N_
from ..narrative import Text
from ..study import Study, span_text
from ._common import measurement_word, period_words, primary_indicator
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: Power and two-sided test size of the detectable effects.
POWER, ALPHA = 0.8, 0.05
#: Simulated rollouts of the simulation check.
N_SIM = 1000


def _sites(study: Study) -> pd.DataFrame:
    sites = study.tables["sites"]
    if sites["adoption_period"].isna().all():
        tx = Text(study.settings.language)
        raise NotApplicable(tx("no site adopted the innovation during the study."),
                            tx("sites with an adoption period (sites.adoption_period)."))
    return sites


def _cluster_col(study: Study) -> str:
    return "rss_code" if study.settings.rollout_cluster == "region" else "site_id"


def _cluster_word(tx: Text, study: Study, n: int) -> str:
    if study.settings.rollout_cluster == "region":
        return tx.n("{n} region", "{n} regions", n)
    return tx.n("{n} site", "{n} sites", n)


def _cluster_plural(tx: Text, study: Study) -> str:
    return tx("regions") if study.settings.rollout_cluster == "region" else tx("sites")


def _cluster_singular(tx: Text, study: Study) -> str:
    return tx("region") if study.settings.rollout_cluster == "region" else tx("site")


def _design(study: Study):
    from ..rollout.stepped_wedge import rollout_design

    sites = _sites(study)
    periods = study.periods
    col = _cluster_col(study)
    if col == "rss_code":
        clusters = sites.groupby("rss_code", observed=True)["adoption_period"].min().reset_index()
    else:
        clusters = sites[["site_id", "adoption_period"]]
    return rollout_design(clusters, unit=col, cohort="adoption_period", periods=periods)


@section(3, "rollout", N_("The rollout as it happened"))
def rollout(study: Study) -> SectionOutput:
    sites = _sites(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    periods = study.periods
    n_reg = sites["rss_code"].nunique()
    findings = [tx("{s} sites in {r} regions, observed over {p} {units} ({span}).", s=tx.int(len(sites)),
                   r=tx.int(n_reg), p=tx.int(len(periods)), units=w["units"], span=span_text(periods))]
    phase = sites["phase"].astype(str)
    pilot = sites[phase == "pilot"]
    if len(pilot):
        when = sorted(pilot["adoption_period"].dropna().astype(int).unique())
        findings.append(tx.n("{n} pilot site adopted in {unit} {when}.", "{n} pilot sites adopted in {unit} {when}.",
                             len(pilot), unit=w["unit"] if len(when) == 1 else w["units"], when=span_text(when)))
    waves = sites[phase == "scale-up"].groupby("cohort")["adoption_period"].agg(["min", "size"])
    if len(waves):
        findings.append(tx.n("{n} scale-up wave: {list}.", "{n} scale-up waves: {list}.", len(waves),
                             list=tx.join([tx.n("{n} site in {unit} {p}", "{n} sites in {unit} {p}", int(r["size"]),
                                                unit=w["unit"], p=int(r["min"])) for _, r in waves.iterrows()])))
    never = sites[phase == "not-adopted"]
    findings.append(tx.n("{n} site never adopted during the study and can serve as a comparison.",
                         "{n} sites never adopted during the study and can serve as comparisons.", len(never))
                    if len(never) else
                    tx("All {k} sites adopted: comparisons rely on sites that had not yet adopted.", k=len(sites)))
    design = _design(study)
    findings.append(tx("As a stepped-wedge design, the units that switch to the innovation are {c} ({why}).",
                       c=_cluster_word(tx, study, design.n_clusters),
                       why=tx("all sites of a region adopted together") if study.settings.rollout_cluster == "region"
                       else tx("sites of a region adopted at different times")))
    table = sites.groupby(["phase", "cohort"], dropna=False, observed=True).agg(
        sites=("site_id", "size"), regions=("rss_code", "nunique"), adoption_period=("adoption_period", "min"),
    ).reset_index()
    ax = design.plot_schedule()
    ax.set_title(tx("Rollout schedule ({units} x {periods}; shaded = innovation delivered)",
                    units=_cluster_plural(tx, study), periods=w["units"]))
    ax.set_xlabel(w["Unit"])
    ax.set_ylabel(tx("Region") if study.settings.rollout_cluster == "region" else tx("Site"))
    return SectionOutput(findings=findings, tables=[TableOut("03_rollout", table, tx("Sites by phase and wave"))],
                         figures=[FigureOut("03_schedule", ax.figure, brief=design.n_clusters <= 40)],
                         result=design, headline=findings[0],
                         key_figures=[(tx("Sites"), tx.int(len(sites))), (tx("Regions"), tx.int(n_reg)),
                                      (tx("Comparison sites"), tx.int(len(never)))])


def _variance_inputs(study: Study) -> dict:
    """ICC of the primary indicator between clusters at baseline (REML from site-period summaries),
    individual variance and people measured per cluster-period."""
    from ..summarize import mixed_model_from_summary

    code, label = primary_indicator(study)
    s = study.settings
    tx = Text(s.language)
    if not s.baseline:
        raise NotApplicable(tx("the study has no baseline periods to estimate the variation between {units} from.",
                               units=_cluster_plural(tx, study)),
                            tx("[periods] baseline in study.toml, or sites adopting after the first period."))
    oc = study.tables["outcomes"]
    ind = study.tables["indicators"].set_index("indicator_id")
    kind = str(ind.loc[code, "type"])
    d = oc[(oc["indicator_id"] == code) & oc["period"].isin(s.baseline) & (oc["n"] > 0)].copy()
    d = d.merge(study.tables["sites"][["site_id", "rss_code"]], on="site_id")
    col = _cluster_col(study)
    if d[col].nunique() < 3:
        raise NotApplicable(tx("baseline data of {code} come from {k} {units}; the variation between them needs "
                               "at least 3.", code=code, k=d[col].nunique(), units=_cluster_plural(tx, study)),
                            tx("baseline outcomes from three or more units."))
    n = d["n"].astype(float)
    if kind == "proportion":
        total = d["events"].astype(float)
        squares = total
    else:
        total = n * d["mean"].astype(float)
        squares = (n - 1) * d["sd"].astype(float) ** 2 + n * d["mean"].astype(float) ** 2
    summary = pd.DataFrame({col: d[col].to_numpy(), "n": n.to_numpy(), "sp__Intercept__y": total.to_numpy(),
                            "sp__y__y": squares.to_numpy()})
    dummies = []
    for p in sorted(d["period"].unique())[1:]:
        name = f"period_{int(p)}"
        summary[name] = (d["period"] == p).astype(float).to_numpy()
        dummies.append(name)
    formula = "y ~ " + (" + ".join(dummies) if dummies else "1")
    mm = mixed_model_from_summary(summary, formula, group=col)
    vc = mm.variance_components
    tau2 = float(vc.loc[vc["group"] == col, "variance"].iloc[0])
    sigma2 = float(vc.loc[vc["group"] == "Residual", "variance"].iloc[0])
    per_cluster_period = d.groupby([col, "period"])["n"].sum()
    return {"code": code, "label": label, "kind": kind, "icc": tau2 / (tau2 + sigma2), "sigma2": sigma2,
            "tau2": tau2, "m": float(per_cluster_period.median()), "model": mm}


def _effect_scale(tx: Text, study: Study, v: dict) -> tuple[float, str]:
    """Multiplier and unit of an effect on the primary indicator (percentage points for proportions)."""
    if v["kind"] == "proportion":
        return 100.0, tx("percentage points")
    unit = str(study.tables["indicators"].set_index("indicator_id").loc[v["code"], "unit"])
    return 1.0, measurement_word(tx, unit)


@section(3, "detectable_effect", N_("What effect can this rollout detect?"))
def detectable_effect(study: Study) -> SectionOutput:
    from ..rollout.stepped_wedge import stepped_wedge_power

    design = _design(study)
    v = _variance_inputs(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    if design.n_clusters < 2:
        raise NotApplicable(tx("the rollout has a single unit; a stepped-wedge comparison needs two or more."),
                            tx("two or more sites (or regions) in the rollout."))
    res = stepped_wedge_power(design, 1.0, sigma2=v["sigma2"], icc=v["icc"], m=v["m"], alpha=ALPHA, power=POWER)
    r = res.to_frame().iloc[0]
    mde = float(r["detectable_effect"])
    scale, what = _effect_scale(tx, study, v)
    findings = [
        tx("At baseline, {icc} of the variation of {ind} lies between {cl} (intra-cluster correlation, REML, from "
           "{units} {b}); a median of {m} people are measured per {c} and {unit}.",
           icc=tx.pct(v["icc"], 1), ind=v["label"], cl=_cluster_plural(tx, study), units=w["units"],
           unit=w["unit"], b=span_text(study.settings.baseline), m=tx.int(round(v["m"])),
           c=_cluster_singular(tx, study)),
        tx("With this rollout ({c}, {t} {units}), the smallest effect on {ind} detected with {pw} power by a "
           "two-sided {a} test is {mde} {what} ({sd} standard deviations).",
           c=_cluster_word(tx, study, design.n_clusters), t=tx.int(design.n_periods), units=w["units"],
           ind=v["label"], pw=tx.pct(POWER), a=tx.pct(ALPHA), mde=tx.num(scale * mde, tx.digits_for(scale * mde)),
           what=what, sd=tx.num(mde / np.sqrt(v["sigma2"]))),
    ]
    table = pd.DataFrame([{"indicator_id": v["code"], "icc": v["icc"], "sigma2": v["sigma2"], "tau2": v["tau2"],
                           "m": v["m"], "clusters": design.n_clusters, "periods": design.n_periods,
                           "detectable_effect": mde, "power": POWER, "alpha": ALPHA}])
    return SectionOutput(findings=findings, headline=findings[1],
                         key_figures=[(tx("Smallest detectable effect on {ind}", ind=v["label"]),
                                       tx("{mde} {what}", mde=tx.num(scale * mde, tx.digits_for(scale * mde)),
                                          what=what)),
                                      (tx("Intra-cluster correlation"), tx.pct(v["icc"], 1))],
                         tables=[TableOut("03_detectable_effect", table, tx("Inputs and result"))],
                         result={"power": res, "variance": v["model"]},
                         notes=[tx("Hussey & Hughes (2007) model: random {c} intercepts, fixed {unit} effects; the "
                                   "{units} and adoption times are those of the data.",
                                   c=_cluster_singular(tx, study), unit=w["unit"], units=w["units"])])


@section(3, "waves", N_("Fewer or more waves?"))
def waves(study: Study) -> SectionOutput:
    from ..rollout.stepped_wedge import stepped_wedge_design, stepped_wedge_power

    design = _design(study)
    v = _variance_inputs(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    adopting = int((np.nansum(design.treatment, axis=1) > 0).sum())
    if adopting < 3:
        raise NotApplicable(tx("{k} units adopted; comparing numbers of waves needs at least 3.", k=adopting),
                            tx("three or more adopting sites (or regions)."))
    rows = []
    for k in range(2, min(adopting, 6) + 1):
        d = stepped_wedge_design(adopting, k)
        r = stepped_wedge_power(d, 1.0, sigma2=v["sigma2"], icc=v["icc"], m=v["m"], alpha=ALPHA,
                                power=POWER).to_frame().iloc[0]
        rows.append({"waves": k, "periods": d.n_periods, "detectable_effect": float(r["detectable_effect"])})
    table = pd.DataFrame(rows)
    scale, what = _effect_scale(tx, study, v)
    first, last = table.iloc[0], table.iloc[-1]
    findings = [tx("For {n} adopting units with one baseline {unit}, the detectable effect on {ind} goes from {a} {what} "
                   "with {wa} waves ({pa} {units}) to {b} with {wb} waves ({pb} {units}): more waves give more "
                   "before/after contrasts but a longer rollout.", n=tx.int(adopting), unit=w["unit"],
                   units=w["units"], ind=v["label"],
                   a=tx.num(scale * first["detectable_effect"], tx.digits_for(scale * first["detectable_effect"])),
                   what=what, wa=int(first["waves"]), pa=int(first["periods"]),
                   b=tx.num(scale * last["detectable_effect"], tx.digits_for(scale * last["detectable_effect"])),
                   wb=int(last["waves"]), pb=int(last["periods"]))]
    return SectionOutput(findings=findings,
                         tables=[TableOut("03_waves", table, tx("Detectable effect by number of waves"))],
                         result=table)


@section(3, "simulation_check", N_("Checking the power formula by simulation"))
def simulation_check(study: Study) -> SectionOutput:
    from ..rollout.stepped_wedge import stepped_wedge_power, stepped_wedge_power_sim

    design = _design(study)
    v = _variance_inputs(study)
    tx = Text(study.settings.language)
    closed = stepped_wedge_power(design, 1.0, sigma2=v["sigma2"], icc=v["icc"], m=v["m"], alpha=ALPHA, power=POWER)
    mde = float(closed.to_frame().iloc[0]["detectable_effect"])
    sim = stepped_wedge_power_sim(design, mde, sigma2=v["sigma2"], icc=v["icc"], m=v["m"], alpha=ALPHA,
                                  n_sim=N_SIM, seed=study.settings.seed)
    p = float(sim.power)
    mc = float(np.sqrt(POWER * (1 - POWER) / N_SIM))
    agree = abs(p - POWER) <= 3 * mc
    findings = [tx("{n} simulated rollouts with the detectable effect give a power of {p} (closed form {c}; Monte Carlo "
                   "error {mc}): {v}.", n=tx.int(N_SIM), p=tx.pct(p, 1), c=tx.pct(POWER), mc=tx.pct(mc, 1),
                   v=tx("the two agree") if agree else
                   tx("they differ by more than three Monte Carlo errors, so treat the closed form with caution"))]
    return SectionOutput(findings=findings, result=sim, certainty=list(findings))
