"""Step 5 — sustainment: does the practice last once the scale-up support ends?

Three sections of the monitoring step, each run only when the study has the data for it:

* ``sustainment``: which sites stopped delivering the innovation, when and why (Kaplan-Meier time to
  de-adoption by rollout wave, reasons as competing risks, de-adoption rates while supported and
  after the external facilitation ended);
* ``sustainment_predictors``: which sites stop (Cox model of the time to de-adoption on the site's
  sustainability assessment and fidelity), and did the assessment made at scale-up predict it
  (concordance, de-adoption by the instrument's capacity categories);
* ``effect_after_support``: did the effect on the primary indicator last once the support ended
  (imputation estimator around the withdrawal, sustainment ratio).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..errors import ScaleupDataError
from ..i18n import N_
from ..narrative import Text
from ..study import Study
from ._common import period_words
from ._section import FigureOut, NotApplicable, SectionOutput, TableOut, section

#: How the reasons of ``deadoption.reason`` read in a sentence.
REASON_WORDS = {
    "funding_ended": N_("dedicated funding ended"),
    "support_ended": N_("external support ended"),
    "staff_turnover": N_("trained staff left"),
    "champion_left": N_("the local champion left"),
    "low_fit": N_("poor fit with the setting"),
    "competing_priorities": N_("competing priorities"),
    "other": N_("other reasons"),
}
#: Fewest adopting sites for a survival curve.
MIN_SITES = 3
#: Fewest de-adoptions for a concordance to be interpreted.
MIN_STOPS_RANKING = 5
#: Fewest de-adoptions per site characteristic in a Cox model (Peduzzi et al. 1995 ask for ten).
EVENTS_PER_TERM = 10


def rate_ratio(x1: int, t1: float, x2: int, t2: float, level: float = 0.95) -> dict:
    """Ratio of two Poisson rates ``(x1 / t1) / (x2 / t2)`` with its exact conditional interval.

    The interval and p-value are those of R's ``poisson.test(c(x1, x2), c(t1, t2))``: given
    ``x1 + x2`` events, ``x1`` is binomial with probability ``p = t1 r / (t1 r + t2)``; the
    Clopper-Pearson bounds of ``p`` are turned into bounds of the ratio ``r = p t2 / ((1 - p) t1)``,
    and the p-value is the two-sided exact binomial test of ``r = 1``.

    >>> r = rate_ratio(10, 100.0, 5, 200.0)
    >>> round(r["estimate"], 6), round(r["ci_low"], 4), round(r["ci_high"], 4)
    (4.0, 1.2457, 14.9146)
    """
    from scipy import stats

    a = 1 - level
    n = x1 + x2
    est = (x1 / t1) / (x2 / t2) if x2 > 0 and t1 > 0 else (math.inf if x1 > 0 else math.nan)
    p_lo = stats.beta.ppf(a / 2, x1, x2 + 1) if x1 > 0 else 0.0
    p_hi = stats.beta.ppf(1 - a / 2, x1 + 1, x2) if x2 > 0 else 1.0
    scale = t2 / t1

    def ratio(p):
        return math.inf if p >= 1 else p / (1 - p) * scale

    pvalue = stats.binomtest(x1, n, t1 / (t1 + t2)).pvalue if n > 0 else math.nan
    return {"estimate": float(est), "ci_low": float(ratio(p_lo)), "ci_high": float(ratio(p_hi)),
            "pvalue": float(pvalue)}


def _times(study: Study) -> pd.DataFrame:
    """One row per adopting site (``deadoption_times``), or NotApplicable."""
    from ..sustainment.data import deadoption_times

    tx = Text(study.settings.language)
    if not study.has("deadoption"):
        raise NotApplicable(tx("the study has no deadoption table: which sites stopped delivering the innovation, "
                               "and when, is not recorded."),
                            tx("a deadoption table: one row per site that stopped delivering the innovation (the "
                               "first period without it, partial or complete, the reason); a site without a row "
                               "is taken as still delivering at the end of the data."))
    periods = study.periods
    if not periods:
        raise NotApplicable(tx("the study has no periods (outcomes, delivery or fidelity ratings by period)."),
                            tx("outcomes or delivery by site and period."))
    t = study.tables
    times = deadoption_times(t["sites"], last_period=max(periods), deadoption=t["deadoption"],
                             support=t.get("support"), site_assessments=t.get("site_assessments"))
    if len(times) < MIN_SITES:
        raise NotApplicable(tx.n("{n} site adopted the innovation; following sites over time needs at least {k}.",
                                 "{n} sites adopted the innovation; following sites over time needs at least {k}.",
                                 len(times), k=MIN_SITES), tx("more adopting sites."))
    return times


def _exposure(times: pd.DataFrame) -> pd.DataFrame:
    """Periods at risk and de-adoptions while supported and after the support ended, per site.

    The ``k``-th period at risk (``k = 1 .. time``) is the transition into period ``adoption_period +
    k``; it is after the support when that period is at or after ``withdrawal_period``.
    """
    s = times["support_time"].to_numpy(dtype=float)  # NaN: never withdrawn within the data
    time = times["time"].to_numpy(dtype=float)
    during = np.where(np.isnan(s), time, np.minimum(time, np.maximum(s - 1, 0)))
    after = time - during
    ev = times["event"].to_numpy() == 1
    ev_after = ev & ~np.isnan(s) & (time >= s)
    return pd.DataFrame({"during": during, "after": after, "event_during": ev & ~ev_after, "event_after": ev_after})


def _split_at_withdrawal(times: pd.DataFrame) -> pd.DataFrame:
    """Counting-process rows ``(start, stop]`` of each site, split where the support ends.

    The ``k``-th period at risk (the passage into period ``adoption_period + k``) is after the support
    when ``k >= support_time``, i.e. on the continuous time scale after ``support_time - 1``: a site whose
    support ended within its follow-up gets a row ``(0, support_time - 1]`` with ``after_support = 0`` and
    a row ``(support_time - 1, time]`` with ``after_support = 1`` carrying its event. Sites followed for 0
    periods are left out (no period at risk).
    """
    rows = []
    for r in times[times["time"] > 0].itertuples(index=False):
        cut = r.support_time - 1 if np.isfinite(r.support_time) else math.inf
        base = {"site_id": r.site_id, "rss_code": getattr(r, "rss_code", None)}
        if cut >= r.time:
            rows.append({**base, "start": 0.0, "stop": float(r.time), "event": r.event, "after_support": 0})
        elif cut <= 0:
            rows.append({**base, "start": 0.0, "stop": float(r.time), "event": r.event, "after_support": 1})
        else:
            rows.append({**base, "start": 0.0, "stop": float(cut), "event": 0, "after_support": 0})
            rows.append({**base, "start": float(cut), "stop": float(r.time), "event": r.event, "after_support": 1})
    return pd.DataFrame(rows, columns=["site_id", "rss_code", "start", "stop", "event", "after_support"])


def _contrasted(split: pd.DataFrame) -> bool:
    """True when, at some de-adoption time, sites still supported and sites no longer supported are both
    at risk (otherwise the end of the support cannot be told apart from the time since adoption)."""
    start, stop, after = (split[c].to_numpy(dtype=float) for c in ("start", "stop", "after_support"))
    for t in np.unique(stop[split["event"].to_numpy() == 1]):
        at_risk = (start < t) & (stop >= t)
        if np.unique(after[at_risk]).size == 2:
            return True
    return False


def _wave_label(tx: Text, wave) -> str:
    """``pilot`` for wave 0, ``wave 2`` for wave 2, in the report's language."""
    return tx("pilot") if int(wave) == 0 else tx("wave {k}", k=int(wave))


def _reason(tx: Text, reason: str) -> str:
    """A reason of ``deadoption.reason`` in words (its code when it is not in the scheme)."""
    if reason not in REASON_WORDS:
        return reason
    words = REASON_WORDS[reason]
    return tx(words)


@section(5, "sustainment", N_("Sustainment: which sites stopped delivering the innovation, when and why?"))
def sustainment(study: Study) -> SectionOutput:
    from ..sustainment.survival import cumulative_incidence, kaplan_meier

    times = _times(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    last = max(study.periods)
    n, k = len(times), int(times["event"].sum())
    complete = int((times["extent"] == "complete").sum())
    findings = []
    if k == 0:
        findings.append(tx.n("By {unit} {last}, none of the {n} site that adopted the innovation had stopped "
                             "delivering it.", "By {unit} {last}, none of the {n} sites that adopted the innovation "
                             "had stopped delivering it.", n, unit=w["unit"], last=last))
    else:
        findings.append(tx.n("By {unit} {last}, {k} of the {n} site that adopted the innovation had stopped "
                             "delivering it ({c} completely, {p} in part).",
                             "By {unit} {last}, {k} of the {n} sites that adopted the innovation had stopped "
                             "delivering it ({c} completely, {p} in part).", n, unit=w["unit"], last=last,
                             k=tx.int(k), c=tx.int(complete), p=tx.int(k - complete)))
    km = kaplan_meier(times)
    curve = km.to_frame()
    followed = curve[curve["n_risk"] >= min(5, n)]
    if k and len(followed):
        row = followed.iloc[-1]
        findings.append(tx("{share} of the sites ({level} CI {low} to {high}) still delivered it {h} {units} after "
                           "adopting it ({m} sites were followed that long).", share=tx.pct(row["estimate"]),
                           level=tx.pct(0.95), low=tx.pct(row["ci_low"]), high=tx.pct(row["ci_high"]),
                           h=tx.int(row["time"]), units=w["units"], m=tx.int(row["n_risk"])))
        med = km.medians.iloc[0]
        if np.isfinite(med["median"]):
            findings.append(tx("Half of the sites had stopped {h} {units} after adopting it.", h=tx.num(med["median"], 0),
                               units=w["units"]))
    waves = times["cohort"].dropna() if "cohort" in times else pd.Series(dtype=float)
    by_wave = None
    if k and waves.nunique() >= 2:
        wave = tx("Rollout wave")
        by_wave = kaplan_meier(times.dropna(subset=["cohort"]).sort_values("cohort", kind="stable")
                               .assign(**{wave: lambda d: [_wave_label(tx, c) for c in d["cohort"]]}), by=wave)
        if np.isfinite(by_wave.logrank_pvalue):
            clear = by_wave.logrank_pvalue < 0.05
            findings.append(tx("Sites of the {k} rollout waves {verb} (log-rank test, {p}).", k=tx.int(waves.nunique()),
                               verb=tx("stopped at different rates") if clear else
                               tx("did not stop at clearly different rates"), p=tx.pvalue(by_wave.logrank_pvalue)))
    tables = []
    if k:
        stops = times[times["event"] == 1]
        reasons = stops["reason"].dropna().astype(str)
        if len(reasons):
            counts = reasons.value_counts()
            findings.append(tx("Reasons given: {list}.", list=tx.join(
                [f"{_reason(tx, r)} ({tx.int(c)})" for r, c in counts.items()])))
        table = (stops.assign(reason=[_reason(tx, str(r)) if isinstance(r, str) else "" for r in stops["reason"]],
                              extent=[tx("partial") if e == "partial" else tx("complete") if e == "complete" else ""
                                      for e in stops["extent"]])
                 .groupby(["reason", "extent"]).size().rename("n_sites").reset_index())
        tables.append(TableOut("05_deadoption_reasons", table, tx("Sites that stopped, by reason and extent")))
        if len(reasons) == len(stops):  # competing reasons: the share that stopped for each by the end of follow-up
            cif = cumulative_incidence(times.assign(reason=times["reason"].astype(object)), event="reason",
                                       censored=None).to_frame()
            end = cif.groupby("cause", sort=False).tail(1)
            tables.append(TableOut("05_deadoption_by_reason", pd.DataFrame({
                "reason": [_reason(tx, str(c)) for c in end["cause"]], "time": end["time"].to_numpy(),
                "estimate": end["estimate"].to_numpy(), "ci_low": end["ci_low"].to_numpy(),
                "ci_high": end["ci_high"].to_numpy()}),
                tx("Cumulative incidence of stopping by reason at the end of follow-up (Aalen-Johansen, competing "
                   "reasons)")))
    notes = []
    withdrawn = times["withdrawal_period"].notna() & (times["withdrawal_period"] <= last)
    if k and withdrawn.any():
        e = _exposure(times)
        x1, t1, x2, t2 = int(e["event_after"].sum()), float(e["after"].sum()), int(e["event_during"].sum()), \
            float(e["during"].sum())
        findings.append(tx.n("The external facilitation ended within the data at {n} site; stops after it ended: {a} "
                             "of {k}.", "The external facilitation ended within the data at {n} sites; stops after it "
                             "ended: {a} of {k}.", int(withdrawn.sum()), a=tx.int(x1), k=tx.int(k)))
        split = _split_at_withdrawal(times)
        if k >= EVENTS_PER_TERM and _contrasted(split):
            # time-varying covariate: sites compared at the same time since adoption, supported or not
            from ..sustainment.cox import cox_model

            n_regions = split["rss_code"].nunique()
            cluster = "rss_code" if n_regions >= 10 else None
            label = tx("After the end of the support")
            cox = cox_model(split.rename(columns={"after_support": label}), [label], start="start", time="stop",
                            event="event", cluster=cluster)
            row = cox.coef.iloc[0]
            hr, lo, hi = row["hazard_ratio"], row["hazard_ratio_ci_low"], row["hazard_ratio_ci_high"]
            verdict = (tx("sites stopped more often once the support ended") if lo > 1 else
                       tx("sites stopped less often once the support ended") if hi < 1 else tx("no clear difference"))
            findings.append(tx("Compared at the same time since adoption, the hazard of stopping after the support "
                               "ended was {ci} times that while supported: {verdict}.",
                               ci=tx.ci(hr, lo, hi), verdict=verdict))
            notes.append(tx("Cox model with the end of the support as a time-varying covariate ({n} sites, {k} "
                            "stops){c}.", n=tx.int(split["site_id"].nunique()), k=tx.int(cox.n_events),
                            c=tx(", standard errors robust to the clustering of sites in {r} regions",
                                 r=tx.int(n_regions)) if cluster else ""))
            tables.append(TableOut("05_sustainment_support_end", cox.to_frame(),
                                   tx("Hazard ratio of stopping after the end of the support (Cox model)"),
                                   show=False))
        elif t1 > 0 and t2 > 0 and x1 + x2 > 0:
            rr = rate_ratio(x1, t1, x2, t2)
            per = 100.0
            rates = tx("{a} stops per 100 site-{units} after the support ended, {b} while supported", units=w["units"],
                       a=tx.num(per * x1 / t1, 1), b=tx.num(per * x2 / t2, 1))
            clear = rr["ci_low"] > 1 or rr["ci_high"] < 1
            verdict = (tx("sites stopped more often once the support ended") if clear and rr["estimate"] > 1 else
                       tx("sites stopped less often once the support ended") if clear else
                       tx("no clear difference"))
            findings.append(tx("{rates}: rate ratio {ci}, {verdict}.", rates=rates, verdict=verdict,
                               ci=tx.ci(rr["estimate"], rr["ci_low"], rr["ci_high"])))
            notes.append(tx("Periods after the support ended are also later periods of delivery: the rate ratio mixes "
                            "the end of the support with the time since adoption."))
    shown = by_wave if by_wave is not None else km
    ax = shown.plot_survival()
    ax.set_title(tx("Sites still delivering the innovation, by {units} since adoption", units=w["units"]), wrap=True)
    xlabel = tx("{units} since adoption", units=w["units"])
    ax.set_xlabel(xlabel[:1].upper() + xlabel[1:])
    # sites, not people: the counts are published as they are (no small-cell rule on numbers of sites)
    medians = shown.medians.rename(columns={"facet": tx("Rollout wave") if shown is by_wave else "facet",
                                            "n": "n_sites", "n_event": "n_stopped"})
    tables.insert(0, TableOut("05_sustainment", medians, tx("Sites followed, stops and median time to de-adoption"),
                              show=bool(k)))
    step = max(1, int(times["time"].max()) // 4)
    at = list(range(0, int(times["time"].max()) + 1, step))
    risk = shown.risk_table(at).rename(columns={"facet": medians.columns[0], "n_risk": "n_sites_followed",
                                                "n_event": "n_stopped", "cum_n_event": "cum_n_stopped"})
    tables.insert(1, TableOut("05_sustainment_at_risk", risk[[c for c in risk.columns if c != "se"]],
                              tx("Sites still followed and share still delivering, by {units} since adoption",
                                 units=w["units"]), show=False))
    return SectionOutput(findings=findings, tables=tables, figures=[FigureOut("05_sustainment", ax.figure, brief=True)],
                         result=km, notes=notes, headline=findings[0],
                         key_figures=[(tx("Sites that stopped delivering the innovation"),
                                       f"{tx.int(k)} / {tx.int(n)}")])


def site_period_fidelity(study: Study) -> pd.DataFrame | None:
    """``site_id``, ``period``, ``fidelity`` (the composite index, else adherence) of the rated site-periods,
    as step 4 computes them; None without fidelity ratings."""
    from .step4_implementation import _fidelity

    if not study.has("fidelity_ratings", "components"):
        return None
    fid = _fidelity(study)
    value = "fidelity_index" if fid["fidelity_index"].notna().any() else "adherence"
    return fid[["site_id", "period", value]].rename(columns={value: "fidelity"})


def _fidelity_at_adoption(study: Study, times: pd.DataFrame) -> pd.Series:
    """Mean fidelity of each site over its first two periods of delivery (NaN without ratings)."""
    fid = site_period_fidelity(study)
    if fid is None:
        return pd.Series(np.nan, index=times.index)
    value = "fidelity"
    start = fid["site_id"].map(dict(zip(times["site_id"], times["adoption_period"])))
    early = fid[(fid["period"] >= start) & (fid["period"] < start + 2)]
    return times["site_id"].map(early.groupby("site_id")[value].mean()).astype(float)


def _hazard_sentence(tx: Text, name: str, per: str, row) -> str:
    """The finding on one Cox coefficient; ``name`` carries its article (``the PSAT score``)."""
    hr, lo, hi = row["hazard_ratio"], row["hazard_ratio_ci_low"], row["hazard_ratio_ci_high"]
    ci = tx.ci(hr, lo, hi)
    if lo > 1:
        return tx("Sites stopped more often as {name} rises: hazard ratio {ci} per {per}.", name=name, ci=ci, per=per)
    if hi < 1:
        return tx("Sites stopped less often as {name} rises: hazard ratio {ci} per {per}.", name=name, ci=ci, per=per)
    return tx("No clear relation between {name} and stopping: hazard ratio {ci} per {per}.", name=name, ci=ci,
              per=per)


@section(5, "sustainment_predictors",
         N_("Which sites stop, and did the sustainability assessment made at scale-up predict it?"))
def sustainment_predictors(study: Study) -> SectionOutput:
    from ..scalability import load_instrument
    from ..sustainment.cox import cox_model
    from ..sustainment.survival import concordance, kaplan_meier

    times = _times(study)
    tx = Text(study.settings.language)
    w = period_words(tx, study)
    k = int(times["event"].sum())
    if k == 0:
        raise NotApplicable(tx("no site stopped delivering the innovation: there is no de-adoption to relate to the "
                               "sites' characteristics."), tx("sites followed until some of them stop."))
    times = times.assign(fidelity=_fidelity_at_adoption(study, times))
    names = {"score": tx("the PSAT sustainability score"), "fidelity": tx("the fidelity of the first two {units}",
                                                                           units=w["units"])}
    labels = {"score": tx("PSAT score (per point)"), "fidelity": tx("Fidelity, first two {units} (per 0.1)",
                                                                     units=w["units"])}
    pers = {"score": tx("point (1-7 scale)"), "fidelity": tx("0.1 of fidelity")}
    available = [c for c in ("score", "fidelity") if c in times and times[c].notna().sum() >= MIN_SITES
                 and times[c].nunique() > 1]
    if not available:
        raise NotApplicable(tx("the study has neither a sustainability assessment of each site nor fidelity ratings "
                               "to relate to de-adoption."),
                            tx("a site_assessments table (e.g. PSAT domain scores of each site at scale-up) or "
                               "fidelity ratings."))
    findings, notes, tables, figures, result = [], [], [], [], None
    n_terms = min(len(available), k // EVENTS_PER_TERM)
    if n_terms == 0:
        notes.append(tx.n("No hazard model: {n} site stopped, and a model needs at least {m} stops per site "
                          "characteristic.", "No hazard model: {n} sites stopped, and a model needs at least {m} "
                          "stops per site characteristic.", k, m=EVENTS_PER_TERM))
    else:
        terms = available[:n_terms]
        d = (times.dropna(subset=terms).assign(fidelity=lambda x: x["fidelity"] * 10)  # per 0.1 of fidelity
             .rename(columns=labels))
        n_regions = d["rss_code"].nunique() if "rss_code" in d else 0
        cluster = "rss_code" if n_regions >= 10 else None
        result = cox_model(d, [labels[t] for t in terms], time="time", event="event", cluster=cluster)
        coef = result.coef.set_index("term")
        for term in terms:
            findings.append(_hazard_sentence(tx, names[term], pers[term], coef.loc[labels[term]]))
        notes.append(tx("Cox model of the time from adoption to de-adoption ({n} sites, {k} stops){c}.",
                        n=tx.int(result.n), k=tx.int(result.n_events),
                        c=tx(", standard errors robust to the clustering of sites in {r} regions",
                             r=tx.int(n_regions)) if cluster else ""))
        if len(available) > n_terms:
            notes.append(tx("Left out of the model for lack of stops ({m} per characteristic): {list}.",
                            m=EVENTS_PER_TERM, list=tx.join([names[c] for c in available[n_terms:]])))
        tables.append(TableOut("05_sustainment_hazards", result.to_frame(),
                               tx("Hazard ratios of de-adoption (Cox model)")))
    if "score" in available:
        scored = times.dropna(subset=["score"])
        c = concordance(scored, predictor="score")
        result = result or c
        if k < MIN_STOPS_RANKING or not (c.se > 0):
            notes.append(tx.n("The concordance of the PSAT score with the time to de-adoption is not interpreted: {n} "
                              "site stopped (at least {m} are needed).", "The concordance of the PSAT score with "
                              "the time to de-adoption is not interpreted: {n} sites stopped (at least {m} are "
                              "needed).", k, m=MIN_STOPS_RANKING))
        elif np.isfinite(c.estimate) and np.isfinite(c.ci_low):
            better = c.ci_low > 0.5
            findings.append(tx("The PSAT score at scale-up ranked the sites by how long they kept delivering with a "
                               "concordance of {ci}: {verdict}.", ci=tx.ci(c.estimate, c.ci_low, c.ci_high),
                               verdict=tx("better than chance (0.5)") if better else
                               tx("not clearly better than chance (0.5)")))
        cats = load_instrument("PSAT").thresholds
        bounds = [m for m, _ in cats]
        label = {i: tx(lab) for i, (_, lab) in enumerate(cats)}
        scored = scored.assign(category=scored["score"].apply(
            lambda v: label[next(i for i, m in enumerate(bounds) if v >= m or i == len(bounds) - 1)]))
        horizon = int(times["time"].median())
        curves = kaplan_meier(scored, by="category").to_frame()
        predicted = None
        if k >= EVENTS_PER_TERM:  # calibration: the risk a Cox model of the score predicts, against the observed
            term = labels["score"]
            model = cox_model(scored.rename(columns={"score": term}), [term], time="time", event="event")
            predicted = model.predict_risk(scored.rename(columns={"score": term})[[term]], horizon)["risk"]
            predicted = pd.Series(predicted.to_numpy(), index=scored.index)
        rows = []
        for i in range(len(cats)):
            cname = label[i]
            in_cat = scored["category"] == cname
            if not in_cat.any():
                continue
            part = curves[(curves["facet"] == cname) & (curves["time"] <= horizon)]
            last = part.iloc[-1] if len(part) else None
            rows.append({"category": cname, "n_sites": int(in_cat.sum()), "n_stopped": int(scored.loc[in_cat, "event"].sum()),
                         "observed": 0.0 if last is None else 1 - last["estimate"],
                         "observed_ci_low": 0.0 if last is None else 1 - last["ci_high"],
                         "observed_ci_high": 0.0 if last is None else 1 - last["ci_low"],
                         "predicted": math.nan if predicted is None else float(predicted[in_cat].mean())})
        calib = pd.DataFrame(rows)
        if predicted is None:
            items = [tx.n("{c} {share} (of {n} site)", "{c} {share} (of {n} sites)", r.n_sites, c=r.category,
                          share=tx.pct(r.observed)) for r in calib.itertuples()]
        else:
            items = [tx.n("{c} {share} (of {n} site; predicted from the score: {pred})",
                          "{c} {share} (of {n} sites; predicted from the score: {pred})", r.n_sites, c=r.category,
                          share=tx.pct(r.observed), pred=tx.pct(r.predicted)) for r in calib.itertuples()]
        findings.append(tx("Share of sites that had stopped {h} {units} after adoption, by the PSAT's capacity "
                           "category: {list}.", h=tx.int(horizon), units=w["units"], list=tx.join(items)))
        if predicted is not None:
            notes.append(tx("Predicted: the mean risk of stopping by {h} {units} that a Cox model of the PSAT score "
                            "gives the sites of the category; observed: the Kaplan-Meier share (calibration).",
                            h=tx.int(horizon), units=w["units"]))
        tables.append(TableOut("05_sustainment_by_psat", calib,
                               tx("De-adoption by PSAT capacity category, observed and predicted")))
    if result is None:
        raise NotApplicable(tx("the site characteristics available cannot be related to de-adoption: too few stops "
                               "for a model and no sustainability assessment of the sites."),
                            tx("more stops, or a site_assessments table."))
    if hasattr(result, "plot_hazard_ratios"):
        ax = result.plot_hazard_ratios()
        ax.set_title(tx("Hazard ratios of de-adoption"))
        figures.append(FigureOut("05_sustainment_hazards", ax.figure))
    return SectionOutput(findings=findings, tables=tables, figures=figures, result=result, notes=notes,
                         headline=findings[0] if findings else "")


#: Fewest adopting sites whose support ended within the data, for the effect after the support.
MIN_WITHDRAWN = 2


@section(5, "effect_after_support", N_("Did the effect last once the scale-up support ended?"))
def effect_after_support(study: Study) -> SectionOutput:
    from ..sustainment.after_support import support_withdrawal_effects
    from ._common import primary_indicator
    from .step5_monitoring import _amount, _improves, _indicator_type, _series

    tx = Text(study.settings.language)
    w = period_words(tx, study)
    if not study.has("support"):
        raise NotApplicable(tx("the study has no support table: when the external support of each site ended is not "
                               "recorded."),
                            tx("a support table: one row per site and kind of support (facilitation, funding, "
                               "champion) with its first and last period."))
    code, label = primary_indicator(study)
    d = _series(study, code)
    spells = study.tables["support"]
    spells = spells[spells["support"].astype(str) == "facilitation"]
    ends = dict(zip(spells["site_id"], pd.to_numeric(spells["end_period"], errors="coerce").astype(float)))
    d["withdrawal_period"] = pd.to_numeric(d["site_id"].map(ends), errors="coerce").astype(float)
    d["adoption_period"] = pd.to_numeric(d["adoption_period"], errors="coerce").astype(float)
    last = d["period"].max()
    per_site = d.drop_duplicates("site_id")
    withdrawn = per_site["withdrawal_period"].notna() & (per_site["withdrawal_period"] <= last) \
        & per_site["adoption_period"].notna()
    if withdrawn.sum() < MIN_WITHDRAWN:
        raise NotApplicable(tx.n("the external facilitation ended within the data at {n} adopting site; comparing the "
                                 "effect during and after the support needs at least {k}.",
                                 "the external facilitation ended within the data at {n} adopting sites; comparing "
                                 "the effect during and after the support needs at least {k}.", int(withdrawn.sum()),
                                 k=MIN_WITHDRAWN),
                            tx("more sites followed after the end of their facilitation (support.end_period)."))
    fidelity = None
    fid = site_period_fidelity(study)
    if fid is not None:
        d = d.merge(fid, how="left", on=["site_id", "period"])
        after = d["period"] >= d["withdrawal_period"]
        if d.loc[after, "fidelity"].notna().sum() >= 3 and d.loc[after, "fidelity"].nunique() > 1:
            d["fidelity"] = d["fidelity"] * 10  # per 0.1 of fidelity
            fidelity = "fidelity"
    d = d.drop(columns=[c for c in ("cohort",) if c in d])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = support_withdrawal_effects(d, outcome="value", cohort="adoption_period", fidelity=fidelity,
                                             seed=study.settings.seed)
    except ScaleupDataError:
        raise NotApplicable(tx("the sites and periods do not allow the effect during and after the support to be "
                               "estimated (adopting sites need periods before adoption, and comparison periods "
                               "without the innovation)."),
                            tx("comparison sites, or sites observed before their adoption.")) from None
    notes = []
    for c in caught:  # the failed resamples are said below in the report's language; other warnings go on
        if not (res.n_boot_failed and "bootstrap resamples" in str(c.message)):
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if res.n_boot_failed:
        notes.append(tx.n("In {n} of the {b} bootstrap resample of sites an effect could not be computed (no site "
                          "followed after its support drawn, or a site that cannot be compared); the intervals "
                          "rest on the other resamples.",
                          "In {n} of the {b} bootstrap resamples of sites an effect could not be computed (no "
                          "site followed after its support drawn, or a site that cannot be compared); the "
                          "intervals rest on the other resamples.", res.n_boot_failed, b=tx.int(res.n_boot)))
    q = res.to_frame().set_index("quantity")

    def amount(name):
        r = q.loc[name]
        return _amount(tx, study, code, r["estimate"], r["ci_low"], r["ci_high"])

    findings = [tx("While supported, the innovation changed {ind} by {a}; once the support had ended, by {b}.",
                   ind=label, a=amount("effect_during"), b=amount("effect_after"))]
    dur, rat = q.loc["effect_during"], q.loc["sustainment_ratio"]
    clear_during = dur["ci_low"] > 0 or dur["ci_high"] < 0
    if clear_during and _improves(study, code, dur["estimate"]):
        if rat["ci_high"] < 1:
            verdict = tx("the effect faded after the support ended")
        elif rat["ci_low"] > 1:
            verdict = tx("the effect grew after the support ended")
        else:
            verdict = tx("no clear fading")
        findings.append(tx("It kept {share} of its effect after the support ({level} CI {low} to {high}): {verdict}.",
                           share=tx.pct(rat["estimate"]), level=tx.pct(0.95), low=tx.pct(rat["ci_low"]),
                           high=tx.pct(rat["ci_high"]), verdict=verdict))
    else:
        findings.append(tx("The effect while supported is not a clear improvement, so the share of it kept after the "
                           "support is not interpreted; the difference after minus during is {d}.",
                           d=amount("difference")))
    if np.isfinite(q.loc["slope_change", "estimate"]):
        findings.append(tx("At the end of the support the effect changed by {a}, then by {b} per {unit}.",
                           a=amount("level_change"), b=amount("slope_change"), unit=w["unit"]))
    if fidelity is not None and "fidelity_slope" in q.index:
        r = q.loc["fidelity_slope"]
        clear = r["ci_low"] > 0 or r["ci_high"] < 0
        findings.append(tx("After the support, each 0.1 of fidelity kept was worth {a}{v}.", a=amount("fidelity_slope"),
                           v="" if clear else tx(", not clearly different from zero")))
    ax = res.plot_event_study(ylabel=tx("Effect on {ind} ({unit})", ind=label, unit=tx("proportion") if
                                        _indicator_type(study, code) == "proportion" else
                                        str(study.tables["indicators"].set_index("indicator_id").loc[code, "unit"])))
    ax.set_title(tx("{ind}: effect by {unit} since the end of the support", ind=label, unit=w["unit"]), wrap=True)
    return SectionOutput(
        findings=findings,
        tables=[TableOut("05_effect_after_support", res.to_frame(), tx("Effect during and after the support")),
                TableOut("05_effect_after_support_event_study", res.event_study,
                         tx("Effect by period since the end of the support"), show=False)],
        figures=[FigureOut("05_effect_after_support", ax.figure, brief=True)], result=res,
        headline=findings[1],
        notes=[tx("Effects are measured against the sites and periods without the innovation (imputation estimator, "
                  "Borusyak, Jaravel & Spiess 2024); intervals from {n} bootstrap resamples of sites.",
                  n=tx.int(res.n_boot)), *notes],
        key_figures=[(tx("Share of the effect kept after the support"), tx.pct(rat["estimate"]))])
