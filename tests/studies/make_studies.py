"""Write the two hand-built test studies (not made by ``simulate_scaleup``) as CSV folders.

* ``small_study/`` — a small team's study as the issue "Your own study, a true report" describes
  it: 6 sites in 3 RSS (01 Bas-Saint-Laurent, 05 Estrie, 16 Montérégie), 8 quarters, 3 fidelity
  raters, one innovation rated by 3 experts, 6 published studies as evidence, no patient-level
  table. The innovation raises the share of patients with controlled HbA1c by about 8 points from
  the first quarter of delivery, and staff burnout rises at the one scale-up site of Montérégie.
* ``null_study/`` — 16 sites in 4 RSS, 10 quarters, patient-level encounters, and no effect
  anywhere: every indicator follows the same distribution before and after adoption, at adopting
  and comparison sites alike; the evidence studies are centred on zero.

The CSV files are committed (the tests read them, so they do not depend on a random-number stream);
this script documents how they were made. Run it from the repository root:
``python tests/studies/make_studies.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

ISAT_DOMAINS = ["A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4", "B5"]


def _write(folder: Path, tables: dict[str, pd.DataFrame], study_toml: str) -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
    (folder / "study.toml").write_text(study_toml, encoding="utf-8")


def _outcome_rows(rng, sites, periods, indicators, effect):
    """One row per site x period x indicator; ``effect(site, period, indicator)`` shifts the mean."""
    rows = []
    for s in sites.itertuples():
        base = {ind: rng.normal(0, 1) for ind in indicators["indicator_id"]}
        for t in periods:
            exposed = pd.notna(s.adoption_period) and t >= s.adoption_period
            for ind in indicators.itertuples():
                shift = effect(s, t, ind.indicator_id) if exposed else 0.0
                if ind.indicator_id in ("DIAB_CTRL", "HBA1C"):
                    n = int(rng.integers(40, 90))
                    p = float(np.clip(0.55 + 0.03 * base[ind.indicator_id] + shift, 0.02, 0.98))
                    rows.append((s.site_id, t, ind.indicator_id, n, int(rng.binomial(n, p)), None, None))
                elif ind.indicator_id == "BURNOUT":
                    n = int(rng.integers(10, 25))
                    p = float(np.clip(0.25 + 0.03 * base[ind.indicator_id] + shift, 0.02, 0.98))
                    rows.append((s.site_id, t, ind.indicator_id, n, int(rng.binomial(n, p)), None, None))
                elif ind.indicator_id == "SATISF":
                    n = int(rng.integers(20, 45))
                    mu = 7.2 + 0.3 * base[ind.indicator_id] + shift
                    rows.append((s.site_id, t, ind.indicator_id, n, None,
                                 round(float(mu + rng.normal(0, 1.6 / np.sqrt(n))), 3), round(float(rng.uniform(1.4, 1.8)), 3)))
                elif ind.indicator_id == "COST":
                    n = int(rng.integers(40, 90))
                    mu = 410 + 25 * base[ind.indicator_id] + 2 * t + shift
                    rows.append((s.site_id, t, ind.indicator_id, n, None,
                                 round(float(mu + rng.normal(0, 110 / np.sqrt(n))), 2), round(float(rng.uniform(100, 120)), 2)))
    out = pd.DataFrame(rows, columns=["site_id", "period", "indicator_id", "n", "events", "mean", "sd"])
    out["events"] = out["events"].astype("Int64")
    return out


def _delivery(rng, sites, periods):
    rows = []
    for s in sites.itertuples():
        staff = int(rng.integers(8, 16))
        for t in periods:
            exposed = pd.notna(s.adoption_period) and t >= s.adoption_period
            eligible = int(rng.integers(60, 120))
            planned = 6 if exposed else 0
            delivered = int(rng.binomial(planned, 0.85)) if exposed else 0
            reached = int(rng.binomial(eligible, 0.55)) if exposed else 0
            trained = int(rng.binomial(staff, 0.8)) if exposed else 0
            cost = round(2000 + 150 * delivered + 600 * trained, 2) if exposed else 0.0
            rows.append((s.site_id, t, planned, delivered, eligible, reached, staff, trained, cost))
    return pd.DataFrame(rows, columns=["site_id", "period", "sessions_planned", "sessions_delivered",
                                       "eligible", "reached", "staff_eligible", "staff_trained", "cost"])


def _ratings(rng, sites, periods, components, raters, sessions_per_period=1, bias=(0.0, 0.3, -0.3)):
    rows = []
    for s in sites.itertuples():
        if pd.isna(s.adoption_period):
            continue
        level = rng.uniform(0.65, 0.9)
        for t in periods:
            if t < s.adoption_period:
                continue
            for k in range(1, sessions_per_period + 1):
                session = f"{s.site_id}-Q{t}-{k}"
                true = {c: level + rng.normal(0, 0.08) for c in components["component_id"]}
                for r, b in zip(raters, bias):
                    for c in components.itertuples():
                        x = c.scale_min + (c.scale_max - c.scale_min) * true[c.component_id] + b + rng.normal(0, 0.4)
                        rows.append((s.site_id, session, t, r, c.component_id,
                                     float(np.clip(round(x), c.scale_min, c.scale_max))))
    return pd.DataFrame(rows, columns=["site_id", "session_id", "period", "rater_id", "component_id", "score"])


def _assessments(rng, innovation, raters, domain_level):
    rows = []
    for r_i, r in enumerate(raters):
        for d in ISAT_DOMAINS:
            for i in range(1, 5):
                x = domain_level[d] + rng.normal(0, 0.6) + (0.3 if r_i == 0 else 0.0)
                rows.append(("ISAT", innovation, r, d, f"{d}.{i}", float(np.clip(round(x), 1, 4))))
    return pd.DataFrame(rows, columns=["instrument", "innovation", "rater_id", "domain", "item_id", "score"])


def small_study() -> None:
    rng = np.random.default_rng(20261201)
    sites = pd.DataFrame(
        [
            ("BSL-GMF-Rimouski", "01", "GMF", 9800, "urban", 3, 3, 0, "pilot"),
            ("BSL-CLSC-Matane", "01", "CLSC", 4100, "rural", 4, 5, 1, "scale-up"),
            ("EST-GMF-Sherbrooke", "05", "GMF", 12500, "urban", 2, 3, 0, "pilot"),
            ("EST-Comm-Coaticook", "05", "community", 1900, "rural", 4, 5, 1, "scale-up"),
            ("MON-GMF-Granby", "16", "GMF", 8700, "semi_urban", 3, None, None, "not-adopted"),
            ("MON-Clin-Saint-Hyacinthe", "16", "hospital_clinic", 6300, "semi_urban", 3, 5, 1, "scale-up"),
        ],
        columns=["site_id", "rss_code", "site_type", "size", "rurality", "deprivation_quintile",
                 "adoption_period", "cohort", "phase"],
    )
    sites["adoption_period"] = sites["adoption_period"].astype("Int64")
    sites["cohort"] = sites["cohort"].astype("Int64")
    indicators = pd.DataFrame(
        [
            ("DIAB_CTRL", "Patients with controlled HbA1c", "health_outcomes", "proportion", "%", "higher_is_better"),
            ("SATISF", "Satisfaction with care (0-10)", "user_experience", "mean", "score 0-10", "higher_is_better"),
            ("COST", "Cost per patient followed", "efficiency_cost", "mean", "CAD", "lower_is_better"),
            ("BURNOUT", "Staff reporting burnout", "team_wellbeing", "proportion", "%", "lower_is_better"),
        ],
        columns=["indicator_id", "name", "domain", "type", "unit", "direction"],
    )
    periods = range(1, 9)

    def effect(s, t, ind):
        if ind == "DIAB_CTRL":
            return 0.08
        if ind == "BURNOUT" and s.rss_code == "16":
            return 0.25
        if ind == "SATISF":
            return 0.3
        return 0.0

    outcomes = _outcome_rows(rng, sites, periods, indicators, effect)
    components = pd.DataFrame(
        [("C1", "Needs assessment with the patient", True, 0.5, 0, 4),
         ("C2", "Shared care plan", True, 0.3, 0, 4),
         ("C3", "Telephone follow-up", False, 0.2, 0, 4)],
        columns=["component_id", "name", "core", "weight", "scale_min", "scale_max"],
    )
    adaptations = pd.DataFrame(
        [
            ("AD01", "BSL-GMF-Rimouski", 4, "implementation", "planned-proactive", "program_leader",
             "context-format", "clinic", None, "fidelity-consistent", "improve_fit", "organizational"),
            ("AD02", "BSL-CLSC-Matane", 6, "scale-up", "unplanned-reactive", "clinician", "content",
             "individual", "shortening", "fidelity-inconsistent", "reduce_cost", "organizational"),
            ("AD03", "EST-Comm-Coaticook", 5, "scale-up", "planned-reactive", "community",
             "context-population", "group", None, "fidelity-consistent", "increase_reach",
             "recipient"),
            ("AD04", "MON-Clin-Saint-Hyacinthe", 7, "maintenance", "unplanned-reactive", "clinician",
             "content", "individual", "removing", "fidelity-inconsistent", "reduce_cost", "organizational"),
            ("AD05", "EST-GMF-Sherbrooke", 6, "maintenance", "planned-proactive", "program_leader",
             "training-evaluation", "organisation", None, "unknown", "improve_feasibility", "provider"),
        ],
        columns=["adaptation_id", "site_id", "period", "when", "planned", "who_decided", "what_modified",
                 "level", "nature", "fidelity_relation", "goal", "reason"],
    )
    domain_level = dict(zip(ISAT_DOMAINS, [3.4, 3.1, 2.6, 3.3, 2.4, 2.9, 3.0, 2.2, 2.7, 2.5]))
    assessments = _assessments(rng, "chronic_care_coordination", ["EXP-1", "EXP-2", "EXP-3"], domain_level)
    evidence = pd.DataFrame(
        [("Tremblay 2016", 0.42, 0.031, 1), ("Gagnon 2018", 0.18, 0.022, 0), ("Roy 2019", 0.35, 0.045, 1),
         ("Côté 2020", 0.51, 0.060, 1), ("Bouchard 2021", 0.09, 0.018, 0), ("Gauthier 2022", 0.27, 0.027, 0)],
        columns=["study", "yi", "vi", "tailored"],
    )
    # sustainment (hand-written, no random draw): external facilitation for 4 quarters at the pilots and
    # the Estrie scale-up site, still running at the two others; two sites dropped core components (partial
    # de-adoption: they still deliver, so their delivery and outcomes rows go on)
    support = pd.DataFrame(
        [("BSL-GMF-Rimouski", "facilitation", 3, 7), ("EST-GMF-Sherbrooke", "facilitation", 3, 7),
         ("BSL-CLSC-Matane", "facilitation", 5, None), ("EST-Comm-Coaticook", "facilitation", 5, 8),
         ("MON-Clin-Saint-Hyacinthe", "facilitation", 5, None)],
        columns=["site_id", "support", "start_period", "end_period"],
    ).astype({"end_period": "Int64"})
    deadoption = pd.DataFrame(
        [("BSL-GMF-Rimouski", 8, "partial", "support_ended"), ("EST-Comm-Coaticook", 7, "partial", "staff_turnover")],
        columns=["site_id", "period", "extent", "reason"],
    )
    psat_domains = ["environmental_support", "funding_stability", "partnerships", "organizational_capacity",
                    "program_evaluation", "program_adaptation", "communications", "strategic_planning"]
    psat_level = {"BSL-GMF-Rimouski": 4.1, "EST-GMF-Sherbrooke": 5.6, "BSL-CLSC-Matane": 4.8,
                  "EST-Comm-Coaticook": 3.2, "MON-Clin-Saint-Hyacinthe": 5.0}
    offsets = [0.3, -0.9, 0.4, 0.1, -0.5, 0.2, 0.6, -0.2]
    site_assessments = pd.DataFrame(
        [(site, "PSAT", dom, round(level + off, 2)) for site, level in psat_level.items()
         for dom, off in zip(psat_domains, offsets)],
        columns=["site_id", "instrument", "domain", "score"],
    )
    # each site's establishment (Montérégie's two sites are both in the CISSS de la Montérégie-Est)
    establishments = pd.DataFrame({
        "site_id": sites["site_id"],
        "establishment_id": sites["rss_code"].map({"01": "CISSS-BSL", "05": "CIUSSS-EST", "16": "CISSS-MEST"}),
        "name": sites["rss_code"].map({"01": "CISSS du Bas-Saint-Laurent", "05": "CIUSSS de l'Estrie - CHUS",
                                       "16": "CISSS de la Montérégie-Est"}),
    })
    tables = {
        "sites": sites, "indicators": indicators, "outcomes": outcomes,
        "delivery": _delivery(rng, sites, periods), "components": components,
        "fidelity_ratings": _ratings(rng, sites, periods, components, ["R1", "R2", "R3"]),
        "adaptations": adaptations, "assessments": assessments, "evidence": evidence,
        "support": support, "deadoption": deadoption, "site_assessments": site_assessments,
        "establishments": establishments,
    }
    study = """\
[study]
language = "en"
name = "Chronic care coordination in three regions"
innovation = "chronic care coordination"

[periods]
unit = "quarter"

[evidence]
measure = "standardised mean difference of HbA1c control"
source = "Six controlled studies of chronic care coordination (invented for this test)"
moderators = ["tailored"]
"""
    _write(HERE / "small_study", tables, study)


def null_study() -> None:
    rng = np.random.default_rng(20261202)
    rows = []
    plan = {"02": [4, 4, 7, None], "03": [4, 7, 7, None], "09": [7, 7, None, 4], "11": [4, 7, None, 7]}
    for rss, adopts in plan.items():
        for k, a in enumerate(adopts, start=1):
            cohort = None if a is None else (1 if a == 4 else 2)
            rows.append((f"N{rss}-{k}", rss, ["GMF", "CLSC", "community", "GMF"][k - 1],
                         int(rng.integers(2000, 15000)), ["urban", "semi_urban", "rural", "remote"][k - 1],
                         int(rng.integers(1, 6)), a, cohort, "not-adopted" if a is None else "scale-up"))
    sites = pd.DataFrame(rows, columns=["site_id", "rss_code", "site_type", "size", "rurality",
                                        "deprivation_quintile", "adoption_period", "cohort", "phase"])
    sites["adoption_period"] = sites["adoption_period"].astype("Int64")
    sites["cohort"] = sites["cohort"].astype("Int64")
    indicators = pd.DataFrame(
        [
            ("HBA1C", "Patients reaching their HbA1c target", "health_outcomes", "proportion", "%", "higher_is_better"),
            ("SATISF", "Patient-reported experience (0-10)", "user_experience", "mean", "score 0-10", "higher_is_better"),
            ("COST", "Cost per enrolled patient", "efficiency_cost", "mean", "CAD", "lower_is_better"),
            ("BURNOUT", "Clinicians reporting exhaustion", "team_wellbeing", "proportion", "%", "lower_is_better"),
        ],
        columns=["indicator_id", "name", "domain", "type", "unit", "direction"],
    )
    periods = range(1, 11)
    outcomes = _outcome_rows(rng, sites, periods, indicators, lambda s, t, ind: 0.0)
    enc = []
    pid = 0
    site_u = {s: rng.normal(0, 3) for s in sites["site_id"]}
    for s in sites.itertuples():
        for t in periods:
            treated = int(pd.notna(s.adoption_period) and t >= s.adoption_period)
            for _ in range(10):
                pid += 1
                y = 60 + site_u[s.site_id] + rng.normal(0, 10)
                enc.append((f"P{pid:05d}", s.site_id, t, treated, round(float(y), 3), int(rng.random() < 0.2)))
    encounters = pd.DataFrame(enc, columns=["patient_id", "site_id", "period", "treated", "y", "event"])
    components = pd.DataFrame(
        [("C1", "Needs assessment with the patient", True, 0.6, 0, 4),
         ("C2", "Shared care plan", True, 0.4, 0, 4)],
        columns=["component_id", "name", "core", "weight", "scale_min", "scale_max"],
    )
    adaptations = pd.DataFrame(
        [
            ("N01", "N02-1", 6, "scale-up", "planned-proactive", "program_leader", "context-format", "clinic",
             None, "fidelity-consistent", "improve_fit", "organizational"),
            ("N02", "N03-2", 8, "scale-up", "unplanned-reactive", "clinician", "content", "individual",
             "shortening", "fidelity-inconsistent", "reduce_cost", "organizational"),
            ("N03", "N11-1", 8, "maintenance", "planned-reactive", "community", "context-population",
             "group", None, "fidelity-consistent", "increase_reach", "recipient"),
        ],
        columns=["adaptation_id", "site_id", "period", "when", "planned", "who_decided", "what_modified",
                 "level", "nature", "fidelity_relation", "goal", "reason"],
    )
    domain_level = dict(zip(ISAT_DOMAINS, [2.6] * 10))
    assessments = _assessments(rng, "telehealth_follow_up", ["X1", "X2", "X3"], domain_level)
    ev_vi = rng.uniform(0.01, 0.05, 8)
    evidence = pd.DataFrame({"study": [f"Study {c}" for c in "ABCDEFGH"],
                             "yi": np.round(rng.normal(0, np.sqrt(ev_vi)), 3), "vi": np.round(ev_vi, 4)})
    tables = {
        "sites": sites, "indicators": indicators, "outcomes": outcomes, "encounters": encounters,
        "delivery": _delivery(rng, sites, periods), "components": components,
        "fidelity_ratings": _ratings(rng, sites, periods, components, ["F1", "F2", "F3"]),
        "adaptations": adaptations, "assessments": assessments, "evidence": evidence,
    }
    study = """\
[study]
language = "en"
name = "Telehealth follow-up, four regions (no effect)"
innovation = "telehealth follow-up"

[periods]
unit = "quarter"
"""
    _write(HERE / "null_study", tables, study)


if __name__ == "__main__":
    small_study()
    null_study()
