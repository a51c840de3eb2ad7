r"""Simulated province-wide scale-up of one primary-care innovation (the embedded default dataset).

:func:`simulate_scaleup` returns every table of ``docs/data_dictionary.md`` (``regions``, ``sites``,
``indicators``, ``outcomes``, ``encounters``, ``delivery``, ``components``, ``fidelity_ratings``,
``adaptations``, ``assessments``) together with the *planted* true values (``truth``), so that each
estimator of the package can be checked against a known answer. :func:`write_encounters_parquet`
streams the same patient-level ``encounters`` site by site into a Parquet file, for benchmark sizes
(tens of millions of rows) that should never sit in memory.

Data-generating process
-----------------------
Indices: region :math:`r` (the 18 RSS), site :math:`s` (in region :math:`r(s)`), period
:math:`t = 1..T`, patient :math:`i`.

**Sites.** Every RSS receives at least two sites; the remaining sites are apportioned (largest
remainder) with weights 4, 3, 2, 1.5, 1 for ``metropolitan``, ``urban``, ``mixed``, ``rural``,
``remote`` regions. A site's ``rurality`` is drawn given its region's ``settlement_type``, its
``deprivation_quintile`` :math:`q_s` given its rurality (rural and remote sites are more deprived),
its ``site_type`` (GMF 50 %, CLSC 25 %, hospital clinic 10 %, community 15 %) and its ``size``
(log-normal, type-specific median).

**Rollout.** ``n_pilot`` pilot sites (cohort 0), one in each of ``n_pilot`` randomly chosen regions,
adopt at ``pilot_period``. The 18 regions are randomly split into :math:`W` waves of nearly equal
size; every other site of a region adopts at its wave's period (cohort :math:`w = 1..W`,
``wave_periods``) except a fraction ``prop_never`` of them, which never adopt (phase
``not-adopted``, ``adoption_period`` and ``cohort`` missing) and serve as never-treated controls.
Every region keeps at least one scale-up site. Adoption is absorbing:
:math:`D_{st} = 1[t \ge A_s]`, exposure :math:`e_{st} = t - A_s`.

**Fidelity.** Six components (``components``): four core ones C1-C4 (rated 0-4, weights 0.35,
0.25, 0.25, 0.15) and two adaptable ones P1-P2 (rated 0-2, weight 0.1). The true proportion of
component :math:`c` delivered at an adopting site-period is

.. math:: p_{stc} = \operatorname{clip}\big(F_s - \rho\,(t - A_s)\,1[s \in \text{drift}]
          + o_c + \nu_{sc},\ 0.05,\ 1\big),

with :math:`F_s \sim N(0.84, 0.08^2)` clipped to [0.4, 0.98], component offsets :math:`o_c`,
:math:`\nu_{sc} \sim N(0, 0.05^2)` and a downward drift of :math:`\rho` = ``drift_rate`` per period
at a random 25 % of adopting sites (``truth.drift_sites``). The true adherence is the weighted mean
over the *core* components, :math:`a_{st} = \sum_{c\,\text{core}} w_c p_{stc} / \sum_{c\,\text{core}}
w_c` (``truth.true_adherence``). Each adopting site-period has ``sessions_rated`` observed sessions,
each rated by 2 or 3 raters (equal chance) drawn from a pool of ``n_raters``; rater :math:`k` scores

.. math:: x = \operatorname{clip}\Big(\operatorname{round}\big(m_c + (M_c - m_c)(p_{stc} +
          \xi) + b_k + \epsilon\big),\ m_c,\ M_c\Big),\quad \xi \sim N(0, 0.05^2),\
          \epsilon \sim N(0, \sigma_{rater}^2),

where :math:`[m_c, M_c]` is the component's scale, :math:`\xi` a session-level deviation and the
planted rater biases :math:`b_k \sim N(0, \text{sd\_rater\_bias}^2)` are centred to sum to zero
(``truth.rater_bias``, in scale points).

**Adaptations.** Each adopting site documents :math:`\text{Poisson}(1.5)` FRAME-coded adaptations,
15 % of them in the period before adoption (``when = pre-implementation``), the others in a uniform
period from :math:`A_s` to :math:`T`; 50 % are fidelity-consistent, 30 % fidelity-inconsistent and
20 % ``unknown``. ``when`` is ``pre-implementation`` before adoption, ``maintenance`` from the
fourth period of exposure on, and ``implementation`` (pilot sites) or ``scale-up`` (scale-up sites)
in between; ``nature`` is filled for ``content`` modifications only (FRAME), mostly ``removing`` or
``shortening`` for fidelity-inconsistent ones. :math:`C_{st}, I_{st}, U_{st}` count the site's
consistent, inconsistent and unknown adaptations started at or before :math:`t`.

**Treatment effect** (on the continuous outcome :math:`y`, for :math:`D_{st} = 1`):

.. math:: \tau_{st} = \lambda(e_{st})\,\big[\delta_{\phi(s)} + 1[\phi(s) = \text{scale-up}]\,
          \beta_{r(s)} + \gamma\,(q_s - 3) + \kappa\,(a_{st} - a_{ref})\big]
          + \beta_C C_{st} + \beta_I I_{st} + \beta_U U_{st},

with :math:`\delta_{pilot}` = ``delta_pilot``, :math:`\delta_{scale} = \delta_{pilot}\times`
``voltage_drop_ratio`` (the planted voltage drop), the ramp-up :math:`\lambda(e) = \min\{1,
(e+1)/L\}` (:math:`L` = ``ramp_periods``), the equity gradient :math:`\gamma` = ``equity_gradient``
(a smaller effect in more deprived sites), the fidelity dose-response :math:`\kappa` =
``fidelity_slope`` around the reference adherence :math:`a_{ref}` = ``adherence_ref`` and the
adaptation effects :math:`\beta_C` = ``beta_consistent`` (>= 0), :math:`\beta_I` =
``beta_inconsistent`` (< 0), :math:`\beta_U = 0`. The regional deviations :math:`\beta_r` (a random
slope, scale-up sites only: pilots are run under the pilot team's conditions) are drawn from
:math:`N(0, \text{sd\_region\_effect}^2)`, except in one *deleterious* region (drawn among the
regions with the most scale-up sites) where :math:`\delta_{scale} + \beta_r` =
``deleterious_effect`` < 0; the other regions' deviations are then shifted so that the deviations
average zero over the full-dose (:math:`e_{st} \ge L - 1`) scale-up site-periods.
:math:`\tau_{st} = 0` when :math:`D_{st} = 0`.

**Patients** (``encounters``; ``patients_per_site_period`` = :math:`m` new patients per
site-period, ``treated`` = :math:`D_{st}` for every patient of the site-period):

.. math:: y_{ist} = \mu + \theta\,(t-1) + \beta_{age}\,\frac{age_i - 50}{10}
          + \beta_{female}\,female_i + u_{r(s)} + u_s + D_{st}\,\tau_{st} + \varepsilon_{ist},

:math:`u_r \sim N(0, \sigma^2_{region})`, :math:`u_s \sim N(0, \sigma^2_{site})`,
:math:`\varepsilon \sim N(0, \sigma^2_{resid})`, age :math:`\sim N(52, 17^2)` rounded and clipped to
[18, 95], :math:`female \sim \text{Bernoulli}(0.52)`. The binary ``event`` (lower is better) follows

.. math:: \operatorname{logit} P(event_{ist} = 1) = \alpha + \beta^{e}_{age}\,\frac{age_i - 50}{10}
          + v_s + \psi\,D_{st},\qquad v_s \sim N(0, \sigma^2_{v}),

with the log odds ratio :math:`\psi` = ``logor_event``. ``truth.icc_site`` =
:math:`(\sigma^2_{region} + \sigma^2_{site}) / (\sigma^2_{region} + \sigma^2_{site} +
\sigma^2_{resid})` is the correlation of :math:`y` between two patients of the same site (given
period, covariates and treatment) and ``truth.icc_region`` = :math:`\sigma^2_{region}` over the same
total.

**Delivery** (one row per site x period; ``sessions_*``, ``reached``, ``staff_trained`` and ``cost``
are 0 before adoption and at never-adopting sites, ``eligible`` and ``staff_eligible`` are counted in
every period): ``eligible`` :math:`\sim` Poisson(size / 50); ``reached`` is the sum of binomial draws
among the eligible from the most deprived quintile (reach probability times ``equity_reach_ratio``)
and the other eligible (reach probability :math:`\operatorname{expit}(\operatorname{logit}(0.35) +
0.4 \min(e, 4))`); ``sessions_planned`` = max(4, round(size / 250)); ``sessions_delivered``
:math:`\sim` Binomial(planned, :math:`0.5 + 0.5 a_{st}`); ``staff_eligible`` is constant per site;
``staff_trained`` :math:`\sim` Binomial(staff_eligible, :math:`\min(0.95, 0.6 + 0.1 e)`); ``cost``
(CAD) = 2500 + 180 x sessions_delivered + 900 x staff_trained in the adoption period, times a
log-normal factor (sd 0.1).

**Outcomes** (one row per site x period x indicator, every site-period):
``HO_Y`` mean/sd/n of :math:`y` and ``HO_EVENT`` events/n of ``event`` (computed from
``encounters``); ``UX_SAT`` satisfied respondents among Binomial(:math:`m`, 0.35) respondents,
:math:`\operatorname{logit} p = \operatorname{logit}(0.72) + w_s + 0.08\,\tau_{st}`,
:math:`w_s \sim N(0, 0.2^2)`; ``EF_COST`` mean/sd/n of the cost per patient (CAD, normal patient
costs with mean :math:`c_s + 3(t-1) - 15\,\lambda(e_{st}) D_{st}` and sd 120, :math:`c_s \sim
N(420, 40^2)`; mean and sd drawn from their exact sampling distributions); ``TW_BURNOUT``
burnt-out staff among ``staff_eligible``, :math:`\operatorname{logit} p = \operatorname{logit}(0.25)
+ z_s + 0.4 D_{st} 1[e_{st} < 2] - 0.2 D_{st} 1[e_{st} \ge 2]
+ 0.8 D_{st} 1[r(s)\ \text{deleterious}]`, :math:`z_s \sim N(0, 0.2^2)`; ``EQ_REACH_Q5`` reached among
the eligible from the most deprived quintile (the same counts as ``delivery``). The deleterious region
is visible in ``HO_Y``, ``UX_SAT`` and ``TW_BURNOUT``.

**Assessments.** Instrument ``ISAT`` (Intervention Scalability Assessment Tool; Milat et al., 2020),
domains A1-A5 and B1-B5 with 4 items each, three candidate innovations and four raters; score =
clip(round(true domain score + rater bias + N(0, 0.5²)), 1, 4) with 3 % missing scores; true domain
scores = innovation level (2.1, 2.6 or 3.1) + U(-0.5, 0.5), clipped to [1, 4] (``truth.assessment_scores``), rater biases ~ N(0, 0.25²)
(``truth.assessment_rater_bias``).

**Sustainment.** Every adopting site receives external facilitation from its adoption period
:math:`A_s` for :math:`L_s` periods, :math:`L_s` uniform on the integers ``support_periods`` :math:`\pm`
``support_spread`` (``support``: one ``facilitation`` spell, ``end_period`` = :math:`W_s = A_s + L_s`,
empty when after :math:`T`). Each adopting site has PSAT
domain scores (8 domains, 1-7) :math:`\text{clip}(\text{round}(4.4 + 0.9\,c_s + N(0, 0.5^2), 2), 1, 7)`,
:math:`c_s \sim N(0, 1)` (``site_assessments``; :math:`P_s` = their mean). The latent time to
de-adoption (periods of delivery since :math:`A_s`) has the piecewise-constant hazard

.. math:: h_s(u) = h_0 \exp\{\beta_P (P_s - 4.4) + \beta_F (F_s - 0.84)\}\,
          \text{HR}_W^{1[u > L_s - 1]},

with :math:`h_0` = ``deadoption_rate``, :math:`\beta_P` = ``deadoption_beta_psat``, :math:`\beta_F`
= ``deadoption_beta_fidelity`` (:math:`F_s` the site's fidelity level at adoption) and
:math:`\text{HR}_W` = ``deadoption_hr_withdrawal`` once the support is withdrawn (from the passage into
the first period without it, :math:`W_s`: a stop observed in period :math:`W_s` or later). A latent time
:math:`u_s` gives the de-adoption period :math:`A_s + \lceil u_s \rceil` (``deadoption.period``) when it
is :math:`\le T`; 60 % of de-adoptions are ``complete`` (from then on :math:`D_{st} = 0`, no delivery
and no effect), the others ``partial`` (the effect is halved); the reason is drawn from fixed
probabilities that differ before and after the withdrawal (``support_ended`` and ``funding_ended``
mostly after). In ``n_decay_regions`` regions drawn at random among the regions other than the
deleterious one (``truth.decay_regions``) the effect
:math:`\tau_{st}` is multiplied by ``decay_ratio`` from :math:`W_s` on.
``truth.site_sustainment`` holds each site's planted covariates, linear predictor and observed time.

**Random numbers.** Everything derives from ``numpy.random.SeedSequence(seed)``: the site-level design
uses ``spawn_key=(0,)``, the patients of the :math:`j`-th site (0-based, in ``sites`` order) use
``spawn_key=(1, j)``, the aggregate outcomes ``(2,)``, the fidelity ratings ``(3,)``, the
assessments ``(4,)`` and the sustainment draws ``(5,)``. The patients of a site therefore do not depend on how the sites are chunked,
which lets :func:`write_encounters_parquet` reproduce ``simulate_scaleup(...).tables["encounters"]``
row for row, and the site-level design does not depend on ``patients_per_site_period``.

References
----------
Chambers, D. A., Glasgow, R. E., & Stange, K. C. (2013). The dynamic sustainability framework.
Implementation Science, 8, 117 (voltage drop).
Milat, A., Lee, K., Conte, K., et al. (2020). Intervention Scalability Assessment Tool. Health Research
Policy and Systems, 18, 1.
Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). The FRAME. Implementation Science, 14, 58.
Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics, 225(2), 200-230 (``att_gt``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._checks import checked_inputs
from .._atomic import atomic_write
from .._constants import DEFAULT_SEED
from .._display import Displayed
from .._style import GREY, NEUTRAL, PALETTE, new_axes, region_labels, styled, ticks_inside
from ..errors import ScaleupDataError
from ..i18n import N_
from ..narrative import Text
from .schemas import _SPEC_BY_NAME, DEADOPTION_EXTENTS, DEADOPTION_REASONS, SUPPORT_KINDS

__all__ = ["simulate_scaleup", "SimulatedScaleup", "ScaleupTruth", "write_encounters_parquet"]

# ----------------------------------------------------------------------------------------------
# Fixed (documented) constants of the data-generating process
# ----------------------------------------------------------------------------------------------
_MU = 50.0  # intercept of y
_TREND = 0.15  # secular trend of y per period
_BETA_AGE = -0.8  # per 10 years of age above 50
_BETA_FEMALE = 1.0
_EVENT_INTERCEPT = math.log(0.15 / 0.85)  # baseline risk 15 %
_EVENT_BETA_AGE = 0.2  # log-odds per 10 years
_BETA_UNKNOWN = 0.0
_SETTLEMENT_WEIGHT = {"metropolitan": 4.0, "urban": 3.0, "mixed": 2.0, "rural": 1.5, "remote": 1.0}
_RURALITY = ("urban", "semi_urban", "rural", "remote")
_RURALITY_PROBS = {
    "metropolitan": (0.85, 0.15, 0.0, 0.0),
    "urban": (0.60, 0.30, 0.10, 0.0),
    "mixed": (0.25, 0.40, 0.35, 0.0),
    "rural": (0.0, 0.25, 0.65, 0.10),
    "remote": (0.0, 0.10, 0.30, 0.60),
}
_QUINTILE_PROBS = {
    "urban": (0.25, 0.22, 0.20, 0.17, 0.16),
    "semi_urban": (0.18, 0.22, 0.22, 0.20, 0.18),
    "rural": (0.12, 0.17, 0.22, 0.25, 0.24),
    "remote": (0.06, 0.10, 0.20, 0.30, 0.34),
}
_Q5_SHARE = (0.08, 0.12, 0.18, 0.26, 0.36)  # share of a site's eligible patients in the most deprived quintile
_SITE_TYPES = ("GMF", "CLSC", "hospital_clinic", "community")
_SITE_TYPE_PROBS = (0.50, 0.25, 0.10, 0.15)
_SITE_SIZE_MEDIAN = {"GMF": 9000.0, "CLSC": 15000.0, "hospital_clinic": 6000.0, "community": 1500.0}
_PHASES = ("pilot", "scale-up", "not-adopted")
_SETTLEMENTS = ("metropolitan", "urban", "mixed", "rural", "remote")

_COMPONENTS = pd.DataFrame(
    {
        "component_id": ["C1", "C2", "C3", "C4", "P1", "P2"],
        "name": [
            "Structured needs assessment",
            "Shared care plan",
            "Self-management coaching",
            "Proactive follow-up",
            "Group education sessions",
            "Community resource navigation",
        ],
        "core": [True, True, True, True, False, False],
        "weight": [0.35, 0.25, 0.25, 0.15, 0.1, 0.1],
        "scale_min": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "scale_max": [4.0, 4.0, 4.0, 4.0, 2.0, 2.0],
    }
)
_COMPONENT_OFFSET = np.array([0.04, 0.0, -0.06, 0.02, -0.10, -0.05])
_SESSION_SD = 0.05

_INDICATORS = pd.DataFrame(
    {
        "indicator_id": ["HO_Y", "HO_EVENT", "UX_SAT", "EF_COST", "TW_BURNOUT", "EQ_REACH_Q5"],
        "name": [
            "Mean primary health outcome score",
            "Avoidable emergency visits",
            "Patients satisfied with care",
            "Cost per patient",
            "Staff reporting burnout",
            "Eligible patients from the most deprived quintile reached",
        ],
        "domain": [
            "health_outcomes",
            "health_outcomes",
            "user_experience",
            "efficiency_cost",
            "team_wellbeing",
            "equity",
        ],
        "type": ["mean", "proportion", "proportion", "mean", "proportion", "proportion"],
        "unit": ["score", "%", "%", "CAD", "%", "%"],
        "direction": [
            "higher_is_better",
            "lower_is_better",
            "higher_is_better",
            "lower_is_better",
            "lower_is_better",
            "higher_is_better",
        ],
    }
)
_DOMAINS = ("health_outcomes", "user_experience", "efficiency_cost", "team_wellbeing", "equity")

# FRAME categories of the adaptations table, in schema order (the code below indexes them by position)
_FRAME = {c.name: c.categories for c in _SPEC_BY_NAME["adaptations"].columns if c.categories}
_WHO = ("program_leader", "clinician", "administrator", "researcher", "community")
_LEVEL = ("individual", "clinic", "organisation", "network", "region")
_NATURE = ("tailoring", "adding", "removing", "shortening")
_GOAL = ("increase_reach", "improve_fit", "reduce_cost", "improve_outcomes")
_REASON = ("sociopolitical", "organizational", "provider", "recipient")

_ISAT_DOMAINS = ("A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4", "B5")
_ISAT_ITEMS_PER_DOMAIN = 4
_INNOVATIONS = ("chronic_care_coordination", "social_prescribing", "collaborative_mental_health")
_ASSESSMENT_RATERS = ("E1", "E2", "E3", "E4")

_TABLE_ORDER = (
    "regions",
    "sites",
    "indicators",
    "outcomes",
    "encounters",
    "delivery",
    "components",
    "fidelity_ratings",
    "adaptations",
    "assessments",
    "support",
    "deadoption",
    "site_assessments",
    "establishments",
)
#: Quebec's public health and social-services establishments by region (Loi 10, 2015): the CISSS and
#: CIUSSS, and the regional bodies of regions 10, 17 and 18. The simulated sites of a region are split
#: among its establishments in site order (no random draw: the other tables do not change).
_ESTABLISHMENTS = {
    "01": ("CISSS du Bas-Saint-Laurent",),
    "02": ("CIUSSS du Saguenay–Lac-Saint-Jean",),
    "03": ("CIUSSS de la Capitale-Nationale",),
    "04": ("CIUSSS de la Mauricie-et-du-Centre-du-Québec",),
    "05": ("CIUSSS de l'Estrie – CHUS",),
    "06": ("CIUSSS de l'Ouest-de-l'Île-de-Montréal", "CIUSSS du Centre-Ouest-de-l'Île-de-Montréal",
           "CIUSSS du Centre-Sud-de-l'Île-de-Montréal", "CIUSSS du Nord-de-l'Île-de-Montréal",
           "CIUSSS de l'Est-de-l'Île-de-Montréal"),
    "07": ("CISSS de l'Outaouais",),
    "08": ("CISSS de l'Abitibi-Témiscamingue",),
    "09": ("CISSS de la Côte-Nord",),
    "10": ("Centre régional de santé et de services sociaux de la Baie-James",),
    "11": ("CISSS de la Gaspésie", "CISSS des Îles"),
    "12": ("CISSS de Chaudière-Appalaches",),
    "13": ("CISSS de Laval",),
    "14": ("CISSS de Lanaudière",),
    "15": ("CISSS des Laurentides",),
    "16": ("CISSS de la Montérégie-Centre", "CISSS de la Montérégie-Est", "CISSS de la Montérégie-Ouest"),
    "17": ("Régie régionale de la santé et des services sociaux du Nunavik",),
    "18": ("Conseil cri de la santé et des services sociaux de la Baie James",),
}


def _establishments(sites: pd.DataFrame) -> pd.DataFrame:
    """Each site's establishment: the sites of a region, in site order, split among its establishments."""
    rows = []
    for code, g in sites.sort_values("site_id").groupby("rss_code", sort=True, observed=True):
        names = _ESTABLISHMENTS.get(str(code), (f"Établissement de la région {code}",))
        for k, part in enumerate(np.array_split(g["site_id"].to_numpy(), len(names))):
            eid = f"E{code}" + (chr(ord("A") + k) if len(names) > 1 else "")
            rows += [(sid, eid, names[k]) for sid in part]
    return pd.DataFrame(rows, columns=["site_id", "establishment_id", "name"])


_ENCOUNTER_COLUMNS = ("patient_id", "site_id", "period", "treated", "y", "event", "age", "female")


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ScaleupTruth(Displayed):
    """Planted (true) values of a :func:`simulate_scaleup` draw; see the module docstring for the model.

    Scalars are floats; tables are tidy DataFrames. ``site_period_effects`` and ``att_gt`` are the
    *realized* effects
    of the draw (exact: no sampling noise), the natural estimands of the rollout estimators.

    Attributes
    ----------
    seed : int
    mu, period_trend, beta_age, beta_female : float
        Fixed part of ``y`` (``beta_age`` per 10 years above 50).
    sigma2_site, sigma2_region, sigma2_resid : float
        Variances of the site and region random intercepts and of the patient residual of ``y``.
    icc_site, icc_region : float
        ``(sigma2_region + sigma2_site) / total`` and ``sigma2_region / total``.
    region_intercepts, site_intercepts : pandas.Series
        Realized random intercepts :math:`u_r` (index ``rss_code``) and :math:`u_s` (index ``site_id``).
    delta_pilot, delta_scale, voltage_drop_ratio : float
        Full-dose effects (reference adherence, quintile 3, no adaptation) in pilot and scale-up sites
        and their ratio.
    att_pilot, att_scale : float
        Realized mean planted effect over the treated site-periods at full dose (exposure >=
        ``ramp_periods - 1``) of the pilot and of the scale-up sites; ``att_scale / att_pilot`` is the
        realized voltage drop of the draw (it differs from ``voltage_drop_ratio`` through the sites'
        deprivation, adherence, adaptations and regional deviations).
    ramp_periods : int
        :math:`L`; the effect reaches full dose at exposure ``L - 1``.
    region_effects : pandas.DataFrame
        ``rss_code``, ``deviation`` (:math:`\\beta_r`), ``effect`` (:math:`\\delta_{scale} + \\beta_r`),
        ``n_scaleup_sites``, ``att`` (mean of :math:`\\tau_{st}` over the region's treated scale-up
        site-periods; NaN without any).
    deleterious_regions : tuple of str
        ``rss_code`` of the region(s) where the scale-up effect is harmful.
    equity_gradient : float
    quintile_effects : pandas.DataFrame
        ``deprivation_quintile``, ``pilot_effect``, ``scale_effect`` (full-dose effects by quintile).
    adherence_ref, fidelity_slope, drift_rate : float
    drift_sites : tuple of str
        Sites whose true adherence drifts down after adoption.
    true_adherence : pandas.DataFrame
        ``site_id``, ``period``, ``adherence`` (core-weighted true adherence) for adopting site-periods.
    true_delivery : pandas.DataFrame
        ``site_id``, ``period``, ``component_id``, ``probability`` (true proportion delivered).
    beta_consistent, beta_inconsistent, beta_unknown : float
        Effect added by each cumulative adaptation of each fidelity relation.
    rater_bias : pandas.Series
        Rater bias in scale points, index ``rater_id`` (sums to zero).
    rater_error_sd, session_sd : float
    event_intercept, event_beta_age, sigma2_site_event, logor_event : float
        Logistic model of ``event``.
    site_period_effects : pandas.DataFrame
        ``site_id``, ``period``, ``effect``: the planted effect :math:`\tau_{st}` on ``y`` of every
        site-period (0 if untreated).
    att_gt : pandas.DataFrame
        ``cohort`` (adoption period, as in :meth:`StaggeredDiDResult.att_gt`), ``wave`` (the
        ``sites.cohort`` rollout wave), ``time``, ``att`` (exact mean of the effect over the
        cohort's sites; 0 before adoption), ``n_sites``.
    equity_reach_ratio : float
        Reach probability of most-deprived eligible patients relative to the others.
    assessment_scores : pandas.DataFrame
        ``innovation``, ``domain``, ``true_score`` (ISAT, 1-4 scale).
    assessment_rater_bias : pandas.Series
    support_periods : int
        Mean periods of external facilitation after adoption (each site's support ends at the
        ``end_period`` of its ``support`` row: ``support_periods`` plus or minus up to
        ``support_spread``).
    deadoption_rate, deadoption_hr_withdrawal, deadoption_beta_psat, deadoption_beta_fidelity : float
        Hazard of de-adoption per period of delivery (see the module docstring).
    decay_ratio : float
        Share of the effect kept after the support is withdrawn, in the ``decay_regions``.
    decay_regions : tuple of str
        ``rss_code`` of the regions whose effect decays after the support is withdrawn.
    site_sustainment : pandas.DataFrame
        One row per adopting site: ``site_id``, ``rss_code``, ``adoption_period``,
        ``withdrawal_period`` (inf = beyond the panel), ``psat_score`` (mean PSAT domain score),
        ``fidelity`` (fidelity level at adoption, :math:`F_s`), ``linear_predictor`` (log hazard ratio
        of the site), ``time`` (periods from adoption to the de-adoption period, or to the last period
        :math:`T` when censored: as :func:`~scaleup_analysis.deadoption_times` computes it),
        ``event`` (1 = de-adopted within the panel), ``extent``.
    sustainment_effects : pandas.DataFrame
        ``quantity`` (``effect_during``, ``effect_after``, ``sustainment_ratio``) and ``value``: the
        exact mean planted effect over the adopted site-periods during and after the support (all
        adopting sites, whether or not they de-adopted) and their ratio.
    """

    seed: int
    mu: float
    period_trend: float
    beta_age: float
    beta_female: float
    sigma2_site: float
    sigma2_region: float
    sigma2_resid: float
    icc_site: float
    icc_region: float
    region_intercepts: pd.Series
    site_intercepts: pd.Series
    delta_pilot: float
    delta_scale: float
    voltage_drop_ratio: float
    att_pilot: float
    att_scale: float
    ramp_periods: int
    region_effects: pd.DataFrame
    deleterious_regions: tuple[str, ...]
    equity_gradient: float
    quintile_effects: pd.DataFrame
    adherence_ref: float
    fidelity_slope: float
    drift_rate: float
    drift_sites: tuple[str, ...]
    true_adherence: pd.DataFrame
    true_delivery: pd.DataFrame
    beta_consistent: float
    beta_inconsistent: float
    beta_unknown: float
    rater_bias: pd.Series
    rater_error_sd: float
    session_sd: float
    event_intercept: float
    event_beta_age: float
    sigma2_site_event: float
    logor_event: float
    site_period_effects: pd.DataFrame
    att_gt: pd.DataFrame
    equity_reach_ratio: float
    assessment_scores: pd.DataFrame
    assessment_rater_bias: pd.Series
    support_periods: int
    deadoption_rate: float
    deadoption_hr_withdrawal: float
    deadoption_beta_psat: float
    deadoption_beta_fidelity: float
    decay_ratio: float
    decay_regions: tuple[str, ...]
    site_sustainment: pd.DataFrame
    sustainment_effects: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the scalar planted parameters (``parameter``, ``value``)."""
        rows = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                rows.append((f.name, float(v)))
        return pd.DataFrame(rows, columns=["parameter", "value"])

    def _repr_fields(self) -> dict:
        return {"seed": self.seed, "delta_pilot": self.delta_pilot, "delta_scale": self.delta_scale,
                "voltage_drop_ratio": self.voltage_drop_ratio, "att_pilot": self.att_pilot,
                "att_scale": self.att_scale, "icc_site": self.icc_site,
                "deleterious_regions": list(self.deleterious_regions)}

    def _summary(self, tx) -> str:
        """The scalar planted parameters (by attribute name) and the deleterious region(s)."""
        frame = self.to_frame()
        width = max(len(tx("parameter")), *(len(p) for p in frame["parameter"]))
        lines = [tx("Planted truth (seed {seed})", seed=self.seed), f"  {tx('parameter'):<{width}}  {tx('value')}"]
        lines += [f"  {p:<{width}}  {tx.num(v, 0 if float(v).is_integer() else 4)}"
                  for p, v in frame.itertuples(index=False)]
        names = region_labels(self.deleterious_regions)
        lines.append(tx("Region(s) where the scale-up effect is harmful: {regions}",
                        regions=tx.join([names[r] for r in self.deleterious_regions])))
        return "\n".join(lines)


#: How the phases of ``sites.phase`` are shown.
_PHASE_WORDS = {"pilot": N_("pilot"), "scale-up": N_("scale-up"), "not-adopted": N_("not adopted")}
#: Colours of the rollout chart: before adoption, delivering (pilot, scale-up), comparison site.
_ROLLOUT_COLOURS = ("#D6E4F0", PALETTE[2], PALETTE[0], GREY)


@dataclass(frozen=True, repr=False)
class SimulatedScaleup(Displayed):
    """A simulated scale-up: every table of the data dictionary plus the planted truth.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``regions``, ``sites``, ``indicators``, ``outcomes``, ``encounters``, ``delivery``,
        ``components``, ``fidelity_ratings``, ``adaptations``, ``assessments`` with exactly the
        columns (and dtypes) of ``docs/data_dictionary.md``; ``encounters`` adds ``age`` and
        ``female``.
    truth : ScaleupTruth
        The planted values.
    params : dict
        The arguments of the call (seed and sizes included).
    """

    tables: dict[str, pd.DataFrame]
    truth: ScaleupTruth
    params: dict[str, Any]

    def to_frame(self) -> pd.DataFrame:
        """One row per table: ``table``, ``n_rows``, ``n_columns``."""
        return pd.DataFrame(
            [(name, len(df), df.shape[1]) for name, df in self.tables.items()],
            columns=["table", "n_rows", "n_columns"],
        )

    def _repr_fields(self) -> dict:
        sites = self.tables["sites"]
        return {"seed": self.params["seed"], "n_sites": len(sites), "n_regions": int(sites["rss_code"].nunique()),
                "n_periods": self.params["n_periods"], "n_tables": len(self.tables)}

    def _summary(self, tx) -> str:
        """The design (sizes, rollout), the deleterious region(s) and the table sizes."""
        sites = self.tables["sites"]
        counts = sites["phase"].value_counts().reindex(list(_PHASES), fill_value=0)
        waves = sites.dropna(subset=["cohort"]).groupby("cohort")["adoption_period"].first()
        names = region_labels(self.truth.deleterious_regions)
        lines = [
            tx("Simulated scale-up (seed {seed}): {sites} in {regions}, {periods}, {patients} per site-period",
               seed=self.params["seed"], sites=tx.n("{n} site", "{n} sites", len(sites)),
               regions=tx.n("{n} region", "{n} regions", sites["rss_code"].nunique()),
               periods=tx.n("{n} period", "{n} periods", int(self.params["n_periods"])),
               patients=tx.n("{n} patient", "{n} patients", int(self.params["patients_per_site_period"]))),
            tx("Sites by phase: {counts}", counts=", ".join(f"{tx(_PHASE_WORDS[k])} {tx.int(v)}"
                                                             for k, v in counts.items())),
            tx("Adoption period by wave: {waves}", waves=", ".join(f"{int(c)}: {int(p)}" for c, p in waves.items())),
            tx("Region(s) where the scale-up effect is harmful: {regions}",
               regions=tx.join([names[r] for r in self.truth.deleterious_regions])),
            "",
        ]
        width = max(len(tx("table")), *(len(t) for t in self.tables))
        lines.append(f"{tx('table'):<{width}}  {tx('rows'):>9}  {tx('columns'):>8}")
        lines += [f"{t:<{width}}  {tx.int(len(df)):>9}  {tx.int(df.shape[1]):>8}" for t, df in self.tables.items()]
        return "\n".join(lines)

    @styled
    def plot_rollout(self, *, ax=None):
        """Treatment status of every site over periods: one row per site, grouped by adoption period (the
        block's label gives the phase and its number of sites) and by region within a block; pilot and
        scale-up sites delivering the innovation in two colours, comparison sites in grey. Returns the Axes."""
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch

        tx = Text()
        sites = self.tables["sites"]
        n = len(sites)
        T = int(self.params["n_periods"])
        ax = new_axes(ax, (9.0, min(9.0, max(4.0, 2.0 + 0.05 * n))))
        adopt = sites["adoption_period"].astype("float64").fillna(np.inf).to_numpy()
        order = np.lexsort((sites["site_id"].astype(str).to_numpy(), sites["rss_code"].astype(str).to_numpy(),
                            adopt))
        adopt, phase = adopt[order], sites["phase"].astype(str).to_numpy()[order]
        periods = np.arange(1, T + 1)
        delivering = periods[None, :] >= adopt[:, None]
        code = np.where(delivering, np.where(phase == "pilot", 1, 2)[:, None], 0)
        code[~np.isfinite(adopt)] = 3
        ax.pcolormesh(np.arange(0.5, T + 1), np.arange(0.5, n + 1), code, cmap=ListedColormap(_ROLLOUT_COLOURS),
                      norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], 4),
                      edgecolors="white" if n <= 40 else "face", linewidth=0.6 if n <= 40 else 0.0)
        for t in range(1, T):  # period boundaries (cells of one site are not outlined when there are many)
            ax.axvline(t + 0.5, color="white", lw=0.6)
        ax.set_xlim(0.5, T + 0.5)
        ax.set_ylim(n + 0.5, 0.5)
        ax.grid(False)
        # one label per block of sites adopting in the same period (never 120 tiny site labels)
        row_pt = ax.figure.get_size_inches()[1] * 0.75 * 72 / n
        ticks, labels, last = [], [], -np.inf
        starts = np.flatnonzero(np.r_[True, adopt[1:] != adopt[:-1]])
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else n
            if i:
                ax.axhline(start + 0.5, color="black", lw=0.8)
            middle = (start + 1 + end) / 2
            if (middle - last) * row_pt < 12:
                continue
            size = tx.n("{n} site", "{n} sites", end - start)
            if not np.isfinite(adopt[start]):
                labels.append(tx("Comparison ({size})", size=size))
            elif phase[start] == "pilot":
                labels.append(tx("Pilot, period {t} ({size})", t=int(adopt[start]), size=size))
            else:
                labels.append(tx("Adoption in period {t} ({size})", t=int(adopt[start]), size=size))
            ticks.append(middle)
            last = middle
        ax.set_yticks(ticks, labels=labels)
        ax.tick_params(axis="y", length=0)
        ax.set_xticks(periods if T <= 20 else periods[(periods % 2) == 0])
        ax.set_xlabel(tx("period (quarter)"))
        ax.set_ylabel(tx("sites by adoption period"))
        ax.set_title(tx.n("Staggered rollout of the {n} site", "Staggered rollout of the {n} sites", n))
        handles = [Patch(facecolor=c, edgecolor=NEUTRAL, label=lab) for c, lab in zip(_ROLLOUT_COLOURS, (
            tx("Not yet delivering"), tx("Delivering (pilot site)"), tx("Delivering (scale-up site)"),
            tx("Comparison site (never adopts)")))]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        return ax

    @styled
    def plot_att(self, *, ax=None):
        """Planted average effect on ``y`` by cohort and period (``truth.att_gt``), one colour and marker
        per cohort; returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (8.0, 4.2))
        markers = ["o", "s", "^", "D", "v", "P"]
        for k, (g, d) in enumerate(self.truth.att_gt.groupby("cohort")):
            wave = int(d["wave"].iloc[0])
            label = (tx("Pilot, period {t}", t=int(g)) if wave == 0 else
                     tx("Adoption in period {t} (wave {w})", t=int(g), w=wave))
            ax.plot(d["time"], d["att"], marker=markers[k % 6], ms=4, color=PALETTE[k % 7], label=label)
        ax.axhline(0, color=NEUTRAL, lw=0.9, ls="--", label=tx("No effect"))
        ax.set_xlabel(tx("period (quarter)"))
        ax.set_ylabel(tx("planted effect on y (score points)"))
        ax.set_title(tx("True average treatment effect by cohort and period"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ticks_inside(ax)
        return ax


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------

_DEFAULTS: dict[str, Any] = dict(
    n_sites=120,
    n_periods=16,
    patients_per_site_period=30,
    n_pilot=6,
    pilot_period=3,
    wave_periods=None,
    prop_never=0.2,
    delta_pilot=5.0,
    voltage_drop_ratio=0.6,
    deleterious_effect=-2.0,
    sd_region_effect=1.0,
    ramp_periods=3,
    equity_gradient=-0.5,
    fidelity_slope=4.0,
    adherence_ref=0.8,
    drift_rate=0.03,
    beta_consistent=0.5,
    beta_inconsistent=-1.0,
    sigma2_site=9.0,
    sigma2_region=4.0,
    sigma2_resid=100.0,
    logor_event=-0.4,
    sigma2_site_event=0.25,
    n_raters=8,
    sd_rater_bias=0.3,
    rater_error_sd=0.4,
    sessions_rated=2,
    equity_reach_ratio=0.7,
    support_periods=6,
    support_spread=2,
    deadoption_rate=0.02,
    deadoption_hr_withdrawal=3.0,
    deadoption_beta_psat=-0.6,
    deadoption_beta_fidelity=-5.0,
    decay_ratio=0.3,
    n_decay_regions=6,
)


def _bad(arg: str, value, rule: str) -> ScaleupDataError:
    return ScaleupDataError(f"argument '{arg}' = {value!r} is invalid: {rule}.")


def _as_int(arg, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _bad(arg, value, "pass an integer")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise _bad(arg, value, f"it must be {rng}")
    return int(value)


def _as_float(arg, value, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _bad(arg, value, "pass a number")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        lo_s = f"{'>' if lo_open else '>='} {lo}" if lo > -math.inf else ""
        hi_s = f"{'<' if hi_open else '<='} {hi}" if hi < math.inf else ""
        raise _bad(arg, value, "it must be a finite number " + " and ".join(s for s in (lo_s, hi_s) if s))
    return v


def _check_params(seed, kwargs: dict) -> dict:
    unknown = sorted(set(kwargs) - set(_DEFAULTS))
    if unknown:
        raise ScaleupDataError(
            f"unknown argument(s) {', '.join(map(repr, unknown))}; the simulation accepts: "
            + ", ".join(sorted(_DEFAULTS))
        )
    p = {**_DEFAULTS, **kwargs}
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _bad("seed", seed, f"pass a non-negative integer (e.g. {DEFAULT_SEED})")
    p["seed"] = int(seed)
    p["n_sites"] = _as_int("n_sites", p["n_sites"], 36)
    T = p["n_periods"] = _as_int("n_periods", p["n_periods"], 4)
    p["patients_per_site_period"] = _as_int("patients_per_site_period", p["patients_per_site_period"], 2)
    p["n_pilot"] = _as_int("n_pilot", p["n_pilot"], 1, 18)
    p["pilot_period"] = _as_int("pilot_period", p["pilot_period"], 2, T)
    if p["wave_periods"] is None:
        waves = list(range(p["pilot_period"] + 3, T - 1, 2))[:4]
        if not waves:
            raise _bad(
                "n_periods", T,
                f"with pilot_period={p['pilot_period']} no scale-up wave fits; use n_periods >= "
                f"{p['pilot_period'] + 5} or pass wave_periods explicitly",
            )
    else:
        try:
            waves = [int(w) for w in p["wave_periods"]]
        except (TypeError, ValueError):
            raise _bad("wave_periods", p["wave_periods"], "pass a sequence of integer periods") from None
        if (
            not waves
            or len(waves) > 18
            or any(b <= a for a, b in zip(waves, waves[1:]))
            or waves[0] <= p["pilot_period"]
            or waves[-1] > T
        ):
            raise _bad(
                "wave_periods", p["wave_periods"],
                f"pass 1-18 strictly increasing periods after pilot_period={p['pilot_period']} and <= "
                f"n_periods={T}",
            )
    p["wave_periods"] = tuple(waves)
    p["prop_never"] = _as_float("prop_never", p["prop_never"], 0.0, 0.8)
    for k in ("delta_pilot", "equity_gradient", "fidelity_slope", "logor_event", "beta_inconsistent",
              "deleterious_effect"):
        p[k] = _as_float(k, p[k])
    p["voltage_drop_ratio"] = _as_float("voltage_drop_ratio", p["voltage_drop_ratio"], 0.0)
    if p["deleterious_effect"] >= 0:
        raise _bad("deleterious_effect", p["deleterious_effect"], "it must be negative (a harmful effect)")
    p["beta_consistent"] = _as_float("beta_consistent", p["beta_consistent"], 0.0)
    if p["beta_inconsistent"] >= 0:
        raise _bad("beta_inconsistent", p["beta_inconsistent"], "it must be negative")
    p["ramp_periods"] = _as_int("ramp_periods", p["ramp_periods"], 1)
    p["adherence_ref"] = _as_float("adherence_ref", p["adherence_ref"], 0.0, 1.0)
    p["drift_rate"] = _as_float("drift_rate", p["drift_rate"], 0.0, 1.0)
    for k in ("sigma2_site", "sigma2_region", "sigma2_site_event", "sd_region_effect", "sd_rater_bias"):
        p[k] = _as_float(k, p[k], 0.0)
    p["sigma2_resid"] = _as_float("sigma2_resid", p["sigma2_resid"], 0.0, lo_open=True)
    p["rater_error_sd"] = _as_float("rater_error_sd", p["rater_error_sd"], 0.0)
    p["n_raters"] = _as_int("n_raters", p["n_raters"], 3, 999)
    p["sessions_rated"] = _as_int("sessions_rated", p["sessions_rated"], 1, 99)
    p["equity_reach_ratio"] = _as_float("equity_reach_ratio", p["equity_reach_ratio"], 0.0, 1.0)
    p["support_periods"] = _as_int("support_periods", p["support_periods"], 1)
    p["support_spread"] = _as_int("support_spread", p["support_spread"], 0, p["support_periods"] - 1)
    p["deadoption_rate"] = _as_float("deadoption_rate", p["deadoption_rate"], 0.0, 10.0)
    p["deadoption_hr_withdrawal"] = _as_float("deadoption_hr_withdrawal", p["deadoption_hr_withdrawal"], 0.0, 100.0,
                                              lo_open=True)
    for k in ("deadoption_beta_psat", "deadoption_beta_fidelity"):
        p[k] = _as_float(k, p[k], -20.0, 20.0)
    p["decay_ratio"] = _as_float("decay_ratio", p["decay_ratio"], -2.0, 2.0)
    p["n_decay_regions"] = _as_int("n_decay_regions", p["n_decay_regions"], 0, 17)
    return p


#: Largest simulation built in memory, in rows of all tables (about 8 GB at its peak); larger
#: patient-level tables are streamed to disk by :func:`write_encounters_parquet`.
MAX_SIMULATED_ROWS = 20_000_000
#: Largest patient-level table :func:`write_encounters_parquet` streams (about 20 minutes, 15 GB of disk).
MAX_STREAMED_ROWS = 1_000_000_000
_PEAK_BYTES_PER_ROW = 400  # measured: ~180 bytes per row of the tables, about twice that while building them
_DISK_BYTES_PER_ROW = 15  # Parquet, compressed
_ROWS_PER_SECOND = 1_000_000  # measured on one core: 0.5-1.2 million rows per second


def _size_text(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes / 1e3:,.1f} kB"


def _time_text(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.0f} seconds"


def _check_size(p: dict, *, streamed: bool = False) -> None:
    """Refuse, before any work, a simulation too large to build (the estimate in the message)."""
    S, T, m = p["n_sites"], p["n_periods"], p["patients_per_site_period"]
    site_periods = S * T * (1 + 6 + 6 * p["sessions_rated"])  # delivery, outcomes, fidelity ratings
    encounters = S * T * m
    sizes = f"n_sites={S:,}, n_periods={T:,}, patients_per_site_period={m:,}"
    in_memory = site_periods if streamed else site_periods + encounters
    if in_memory > MAX_SIMULATED_ROWS:
        what = "site-period rows" if streamed else f"rows ({encounters:,} of them in encounters)"
        raise ScaleupDataError(
            f"simulation too large: {sizes} would build about {in_memory:,} {what}, needing about "
            f"{_size_text(in_memory * _PEAK_BYTES_PER_ROW)} of memory and {_time_text(in_memory / _ROWS_PER_SECOND)}; "
            f"the limit is {MAX_SIMULATED_ROWS:,} rows (about {_size_text(MAX_SIMULATED_ROWS * _PEAK_BYTES_PER_ROW)}). "
            "Use fewer sites, periods or patients"
            + ("." if streamed else "; for a large patient-level table, stream it to disk with "
               "sa.write_encounters_parquet(path, n_sites=..., ...).")
        )
    if streamed and encounters > MAX_STREAMED_ROWS:
        raise ScaleupDataError(
            f"simulation too large: {sizes} would write {encounters:,} encounter rows, about "
            f"{_size_text(encounters * _DISK_BYTES_PER_ROW)} of Parquet in {_time_text(encounters / _ROWS_PER_SECOND)}; "
            f"the limit is {MAX_STREAMED_ROWS:,} rows. Use fewer sites, periods or patients."
        )


# ----------------------------------------------------------------------------------------------
# Design (site and site-period level; small)
# ----------------------------------------------------------------------------------------------


def _load_regions() -> pd.DataFrame:
    """The 18 RSS with ``rss_code``, ``name``, ``settlement_type`` (bundled dataset)."""
    from .datasets import load_dataset

    regions = load_dataset("quebec_regions")[["rss_code", "name", "settlement_type"]].copy()
    regions["settlement_type"] = pd.Categorical(regions["settlement_type"].astype(str), categories=_SETTLEMENTS)
    return regions.sort_values("rss_code", ignore_index=True)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _choice_rows(rng, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


@dataclass(frozen=True)
class _Design:
    p: dict
    regions: pd.DataFrame
    sites: pd.DataFrame
    site_ids: np.ndarray  # object
    region_idx: np.ndarray  # per site, index into regions
    adopt: np.ndarray  # float, inf = never
    cohort: np.ndarray  # int, -1 = never
    quintile: np.ndarray
    size: np.ndarray
    treated: np.ndarray  # (S, T) bool
    exposure: np.ndarray  # (S, T) int (negative before adoption)
    ramp: np.ndarray  # (S, T)
    tau: np.ndarray  # (S, T)
    p_comp: np.ndarray  # (S, T, C), NaN when not treated
    adherence: np.ndarray  # (S, T), NaN when not treated
    u_region: np.ndarray
    u_site: np.ndarray
    v_site: np.ndarray
    deviation: np.ndarray  # per region
    deleterious: int  # region index
    drift: np.ndarray  # bool per site
    adaptations: pd.DataFrame
    sustainment: dict  # support, deadoption, site_assessments tables; per-site truth; decay regions


def _apportion(n_extra: int, weights: np.ndarray) -> np.ndarray:
    quota = n_extra * weights / weights.sum()
    base = np.floor(quota).astype(int)
    rest = n_extra - base.sum()
    order = np.argsort(-(quota - base), kind="stable")
    base[order[:rest]] += 1
    return base


def _make_design(p: dict) -> _Design:
    rng = _rng(p["seed"], 0)
    regions = _load_regions()
    R, S, T = len(regions), p["n_sites"], p["n_periods"]
    settle = regions["settlement_type"].astype(str).to_numpy()

    # --- sites per region (deterministic), site attributes
    w = np.array([_SETTLEMENT_WEIGHT[s] for s in settle])
    n_per = 2 + _apportion(S - 2 * R, w)
    region_idx = np.repeat(np.arange(R), n_per)
    site_ids = np.array([f"S{j + 1:04d}" for j in range(S)], dtype=object)
    rur_probs = np.array([_RURALITY_PROBS[settle[r]] for r in region_idx])
    rurality = _choice_rows(rng, rur_probs)
    q_probs = np.array([_QUINTILE_PROBS[_RURALITY[k]] for k in rurality])
    quintile = _choice_rows(rng, q_probs) + 1
    stype = _choice_rows(rng, np.tile(_SITE_TYPE_PROBS, (S, 1)))
    med = np.array([_SITE_SIZE_MEDIAN[_SITE_TYPES[k]] for k in stype])
    size = np.maximum(50, np.round(med * np.exp(rng.normal(0.0, 0.4, S)))).astype(np.int64)

    # --- rollout: pilots, waves, never-adopters
    pilot_regions = rng.choice(R, size=p["n_pilot"], replace=False)
    is_pilot = np.zeros(S, bool)
    for r in pilot_regions:
        is_pilot[rng.choice(np.flatnonzero(region_idx == r))] = True
    W = len(p["wave_periods"])
    wave_of_region = np.empty(R, int)
    wave_of_region[rng.permutation(R)] = np.arange(R) * W // R + 1
    never = (~is_pilot) & (rng.random(S) < p["prop_never"])
    for r in range(R):  # every region keeps at least one scale-up site
        in_r = region_idx == r
        if not np.any(in_r & ~is_pilot & ~never):
            never[np.flatnonzero(in_r & ~is_pilot)[0]] = False
    if p["prop_never"] > 0 and not never.any():
        cand = np.flatnonzero(~is_pilot)
        counts = np.bincount(region_idx[cand], minlength=R)
        j = next((j for j in cand if counts[region_idx[j]] >= 2), None)
        if j is not None:  # (none only when every region has a single non-pilot site)
            never[j] = True
    cohort = np.where(is_pilot, 0, np.where(never, -1, wave_of_region[region_idx]))
    all_periods = np.array((p["pilot_period"],) + p["wave_periods"], dtype=float)
    adopt = np.where(cohort >= 0, all_periods[np.maximum(cohort, 0)], np.inf)
    scale_up = cohort >= 1

    periods = np.arange(1, T + 1)
    treated = periods[None, :] >= adopt[:, None]
    adopt0 = np.where(np.isfinite(adopt), adopt, 0.0)
    exposure = np.where(np.isfinite(adopt)[:, None], periods[None, :] - adopt0[:, None], -1).astype(np.int64)
    ramp = np.where(treated, np.minimum(1.0, (exposure + 1) / p["ramp_periods"]), 0.0)

    # --- random intercepts
    u_region = rng.normal(0.0, math.sqrt(p["sigma2_region"]), R)
    u_site = rng.normal(0.0, math.sqrt(p["sigma2_site"]), S)
    v_site = rng.normal(0.0, math.sqrt(p["sigma2_site_event"]), S)

    # --- regional deviations of the scale-up effect (one deleterious region)
    delta_scale = p["delta_pilot"] * p["voltage_drop_ratio"]
    n_scale = np.bincount(region_idx[scale_up], minlength=R)
    top = np.flatnonzero(n_scale >= np.sort(n_scale)[-3])  # among the regions with the most scale-up sites
    deleterious = int(rng.choice(top))
    dev = rng.normal(0.0, p["sd_region_effect"], R)
    dev[deleterious] = p["deleterious_effect"] - delta_scale
    others = np.arange(R) != deleterious
    # weights: number of full-dose scale-up site-periods of each region
    full_dose = (treated & (exposure >= p["ramp_periods"] - 1)).sum(axis=1) * scale_up
    n_full = np.bincount(region_idx, weights=full_dose, minlength=R)
    if n_full[others].sum() > 0:
        dev[others] -= (n_full * dev).sum() / n_full[others].sum()

    # --- fidelity: true delivery per component
    adopting = np.isfinite(adopt)
    drift = np.zeros(S, bool)
    ad_idx = np.flatnonzero(adopting)
    drift[rng.choice(ad_idx, size=max(1, round(0.25 * len(ad_idx))), replace=False)] = True
    f0 = np.clip(rng.normal(0.84, 0.08, S), 0.4, 0.98)
    nu = rng.normal(0.0, 0.05, (S, len(_COMPONENTS)))
    level = f0[:, None] - p["drift_rate"] * np.maximum(exposure, 0) * drift[:, None]
    p_comp = np.clip(level[:, :, None] + _COMPONENT_OFFSET[None, None, :] + nu[:, None, :], 0.05, 1.0)
    p_comp = np.where(treated[:, :, None], p_comp, np.nan)
    core = _COMPONENTS["core"].to_numpy()
    wc = _COMPONENTS["weight"].to_numpy()[core]
    adherence = (p_comp[:, :, core] * wc).sum(axis=2) / wc.sum()

    # --- adaptations (FRAME)
    adaptations, counts = _make_adaptations(rng, p, site_ids, adopt, cohort)

    # --- treatment effect
    delta = np.where(cohort == 0, p["delta_pilot"], delta_scale)
    base = (
        delta[:, None]
        + (scale_up * dev[region_idx])[:, None]
        + p["equity_gradient"] * (quintile - 3)[:, None]
        + p["fidelity_slope"] * (np.nan_to_num(adherence) - p["adherence_ref"])
    )
    adapt_eff = (
        p["beta_consistent"] * counts[0] + p["beta_inconsistent"] * counts[1] + _BETA_UNKNOWN * counts[2]
    )
    tau = np.where(treated, ramp * base + adapt_eff, 0.0)

    # --- sustainment: support withdrawal, decay of the effect, de-adoption
    sus = _sustainment(p, site_ids, region_idx, adopt, f0, regions, deleterious)
    after = periods[None, :] >= sus["withdrawal"][:, None]
    decay = np.where(np.isin(region_idx, sus["decay_regions"]), p["decay_ratio"], 1.0)
    tau = np.where(after, tau * decay[:, None], tau)
    stopped = periods[None, :] >= sus["stop"][:, None]
    tau = np.where(stopped & ~sus["complete"][:, None], 0.5 * tau, tau)
    treated = treated & ~(stopped & sus["complete"][:, None])
    tau = np.where(treated, tau, 0.0)
    p_comp = np.where(treated[:, :, None], p_comp, np.nan)
    adherence = np.where(treated, adherence, np.nan)

    cohort_i64 = pd.array(np.where(cohort >= 0, cohort, 0), dtype="Int64")
    cohort_i64[cohort < 0] = pd.NA
    adopt_i64 = pd.array(np.where(adopting, adopt, 0).astype(np.int64), dtype="Int64")
    adopt_i64[~adopting] = pd.NA
    phase = np.where(cohort == 0, "pilot", np.where(cohort > 0, "scale-up", "not-adopted"))
    sites = pd.DataFrame(
        {
            "site_id": site_ids,
            "rss_code": regions["rss_code"].to_numpy()[region_idx],
            "site_type": pd.Categorical(np.array(_SITE_TYPES)[stype], categories=_SITE_TYPES),
            "size": size,
            "rurality": pd.Categorical(np.array(_RURALITY)[rurality], categories=_RURALITY),
            "deprivation_quintile": quintile.astype(np.int64),
            "adoption_period": adopt_i64,
            "cohort": cohort_i64,
            "phase": pd.Categorical(phase, categories=_PHASES),
        }
    )
    sites["rss_code"] = sites["rss_code"].astype(object)
    return _Design(
        p=p, regions=regions, sites=sites, site_ids=site_ids, region_idx=region_idx, adopt=adopt,
        cohort=cohort, quintile=quintile, size=size, treated=treated, exposure=exposure, ramp=ramp,
        tau=tau, p_comp=p_comp, adherence=adherence, u_region=u_region, u_site=u_site, v_site=v_site,
        deviation=dev, deleterious=deleterious, drift=drift, adaptations=adaptations, sustainment=sus,
    )


_PSAT_DOMAINS = (
    "environmental_support", "funding_stability", "partnerships", "organizational_capacity",
    "program_evaluation", "program_adaptation", "communications", "strategic_planning",
)
_PSAT_CENTRE = 4.4  # mean PSAT score of the simulated sites (1-7 scale)
_F0_CENTRE = 0.84  # mean fidelity level at adoption (see the fidelity model)
_COMPLETE_SHARE = 0.6
# reasons of de-adoption (schema order) before and after the facilitation ended
_REASON_PROBS_DURING = np.array([0.05, 0.0, 0.30, 0.25, 0.15, 0.20, 0.05])
_REASON_PROBS_AFTER = np.array([0.20, 0.40, 0.15, 0.10, 0.05, 0.10, 0.0])


def _sustainment(p: dict, site_ids, region_idx, adopt, f0, regions, deleterious: int) -> dict:
    """Support spells, PSAT scores of the sites, de-adoption and the regions whose effect decays."""
    rng = _rng(p["seed"], 5)
    S, T = len(site_ids), p["n_periods"]
    adopting = np.isfinite(adopt)
    capacity = rng.normal(0.0, 1.0, S)
    psat = np.clip(np.round(_PSAT_CENTRE + 0.9 * capacity[:, None] + rng.normal(0.0, 0.5, (S, len(_PSAT_DOMAINS))),
                            2), 1.0, 7.0)
    psat_score = psat.mean(axis=1)
    lp = p["deadoption_beta_psat"] * (psat_score - _PSAT_CENTRE) + p["deadoption_beta_fidelity"] * (f0 - _F0_CENTRE)
    lam = p["deadoption_rate"] * np.exp(lp)
    e = rng.exponential(1.0, S)
    complete = rng.random(S) < _COMPLETE_SHARE
    reason_during = _choice_rows(rng, np.tile(_REASON_PROBS_DURING, (S, 1)))
    reason_after = _choice_rows(rng, np.tile(_REASON_PROBS_AFTER, (S, 1)))
    # the deleterious region keeps its (harmful) effect: the decay regions are drawn among the others
    others = np.delete(np.arange(len(regions)), deleterious)
    decay_regions = np.sort(rng.choice(others, size=min(p["n_decay_regions"], len(others)), replace=False))
    spread = p["support_spread"]
    L = p["support_periods"] + rng.integers(-spread, spread + 1, S)  # periods of facilitation of each site
    withdrawal = np.where(adopting, adopt + L, np.inf)
    # the end of the support acts from the transition into the first period without it: u > L - 1
    B = L - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        latent = np.where(e <= lam * B, e / lam, B + (e - lam * B) / (lam * p["deadoption_hr_withdrawal"]))
    latent = np.where(lam > 0, latent, np.inf)
    stop = np.where(adopting, adopt + np.ceil(latent), np.inf)
    observed = stop <= T
    stop = np.where(observed, stop, np.inf)
    after_w = stop >= withdrawal
    reasons = np.where(after_w, reason_after, reason_during)

    a_idx = np.flatnonzero(adopting)
    end = pd.array(np.where(withdrawal[a_idx] <= T, withdrawal[a_idx], 0).astype(np.int64), dtype="Int64")
    end[withdrawal[a_idx] > T] = pd.NA
    support = pd.DataFrame({
        "site_id": site_ids[a_idx],
        "support": pd.Categorical(["facilitation"] * len(a_idx), categories=SUPPORT_KINDS),
        "start_period": adopt[a_idx].astype(np.int64),
        "end_period": end,
    })
    o_idx = np.flatnonzero(observed)
    deadoption = pd.DataFrame({
        "site_id": site_ids[o_idx],
        "period": stop[o_idx].astype(np.int64),
        "extent": pd.Categorical(np.where(complete[o_idx], "complete", "partial"), categories=DEADOPTION_EXTENTS),
        "reason": pd.Categorical(np.array(DEADOPTION_REASONS)[reasons[o_idx]], categories=DEADOPTION_REASONS),
    })
    D = len(_PSAT_DOMAINS)
    site_assessments = pd.DataFrame({
        "site_id": np.repeat(site_ids[a_idx], D),
        "instrument": "PSAT",
        "domain": np.tile(np.array(_PSAT_DOMAINS, dtype=object), len(a_idx)),
        "score": psat[a_idx].ravel(),
    })
    time = np.where(observed[a_idx], stop[a_idx], T) - adopt[a_idx]
    truth = pd.DataFrame({
        "site_id": site_ids[a_idx],
        "rss_code": regions["rss_code"].to_numpy(dtype=object)[region_idx[a_idx]],
        "adoption_period": adopt[a_idx].astype(np.int64),
        "withdrawal_period": withdrawal[a_idx],
        "psat_score": psat_score[a_idx],
        "fidelity": f0[a_idx],
        "linear_predictor": lp[a_idx],
        "time": time.astype(np.int64),
        "event": observed[a_idx].astype(np.int64),
        "extent": np.where(observed[a_idx], np.where(complete[a_idx], "complete", "partial"), None),
    })
    return {"withdrawal": withdrawal, "stop": stop, "complete": complete & observed, "decay_regions": decay_regions,
            "support": support, "deadoption": deadoption, "site_assessments": site_assessments, "sites": truth}


def _make_adaptations(rng, p, site_ids, adopt, cohort):
    S, T = len(site_ids), p["n_periods"]
    adopting = np.flatnonzero(np.isfinite(adopt))
    n_ad = rng.poisson(1.5, len(adopting))
    site = np.repeat(adopting, n_ad)
    n = len(site)
    a_s = adopt[site].astype(np.int64)
    pre = (rng.random(n) < 0.15) & (a_s > 1)
    post = a_s + np.floor(rng.random(n) * (T - a_s + 1)).astype(np.int64)
    period = np.where(pre, a_s - 1, post)
    rel = _choice_rows(rng, np.tile([0.5, 0.3, 0.2], (n, 1)))
    planned = _choice_rows(rng, np.tile([0.45, 0.35, 0.20], (n, 1)))
    what = _choice_rows(rng, np.tile([0.35, 0.15, 0.10, 0.10, 0.10, 0.10, 0.10], (n, 1)))
    who = rng.integers(0, len(_WHO), n)
    level = rng.integers(0, len(_LEVEL), n)
    # fidelity-inconsistent content changes mostly remove or shorten elements
    nat_p = np.where((rel == 1)[:, None], [0.1, 0.1, 0.4, 0.4], [0.45, 0.35, 0.05, 0.15])
    nature = _choice_rows(rng, nat_p)
    goal = rng.integers(0, len(_GOAL), n)
    reason = rng.integers(0, len(_REASON), n)
    exposure = period - a_s
    when = np.where(period < a_s, 0, np.where(exposure >= 4, 3, np.where(cohort[site] == 0, 1, 2)))
    order = np.lexsort((period, site))
    df = pd.DataFrame(
        {
            "site_id": site_ids[site],
            "period": period.astype(np.int64),
            "when": np.array(_FRAME["when"])[when],
            "planned": np.array(_FRAME["planned"])[planned],
            "who_decided": np.array(_WHO, dtype=object)[who],
            "what_modified": np.array(_FRAME["what_modified"])[what],
            "level": np.array(_LEVEL, dtype=object)[level],
            "nature": np.where(what == 0, np.array(_NATURE, dtype=object)[nature], np.nan),
            "fidelity_relation": np.array(_FRAME["fidelity_relation"])[rel],
            "goal": np.array(_GOAL, dtype=object)[goal],
            "reason": np.array(_REASON, dtype=object)[reason],
        }
    ).iloc[order].reset_index(drop=True)
    df.insert(0, "adaptation_id", np.array([f"AD{k + 1:04d}" for k in range(n)], dtype=object))
    for col in ("when", "planned", "what_modified", "fidelity_relation"):
        df[col] = pd.Categorical(df[col], categories=_FRAME[col])
    df["nature"] = df["nature"].astype(object)
    # cumulative counts by relation: (3, S, T); an adaptation counts from its period on
    counts = np.zeros((3, S, T))
    np.add.at(counts, (rel, site, period - 1), 1.0)
    return df, np.cumsum(counts, axis=2)


# ----------------------------------------------------------------------------------------------
# Patients (per site; the only part that scales with the number of rows)
# ----------------------------------------------------------------------------------------------


def _site_encounters(d: _Design, j: int, m: int) -> dict[str, np.ndarray]:
    p = d.p
    T = p["n_periods"]
    n = T * m
    rng = _rng(p["seed"], 1, j)
    age = np.clip(np.round(rng.normal(52.0, 17.0, n)), 18, 95).astype(np.int64)
    female = (rng.random(n) < 0.52).astype(np.int64)
    eps = rng.normal(0.0, math.sqrt(p["sigma2_resid"]), n)
    u = rng.random(n)
    t_idx = np.repeat(np.arange(T), m)
    treated = d.treated[j, t_idx].astype(np.int64)
    age_c = (age - 50.0) / 10.0
    y = (
        _MU
        + _TREND * t_idx
        + _BETA_AGE * age_c
        + _BETA_FEMALE * female
        + d.u_region[d.region_idx[j]]
        + d.u_site[j]
        + d.tau[j, t_idx]
        + eps
    )
    eta = _EVENT_INTERCEPT + _EVENT_BETA_AGE * age_c + d.v_site[j] + p["logor_event"] * treated
    event = (u < _expit(eta)).astype(np.int64)
    return {"period": t_idx + 1, "treated": treated, "y": y, "event": event, "age": age, "female": female}


def _patient_ids(start: int, n: int):
    """``"P"`` + 10-digit running number (site-major, then period, then patient) as an Arrow array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    num = pc.utf8_lpad(pa.array(np.arange(start, start + n, dtype=np.int64)).cast(pa.string()), 10, "0")
    return pc.binary_join_element_wise("P", num, "")


def _encounter_chunk(d: _Design, js: range, m: int, *, arrow: bool = False) -> dict[str, Any]:
    """Encounters of the consecutive sites ``js``; identifiers as Arrow arrays if ``arrow``."""
    import pyarrow as pa

    n_site = d.p["n_periods"] * m
    parts = [_site_encounters(d, j, m) for j in js]
    out = {k: np.concatenate([pt[k] for pt in parts]) for k in parts[0]}
    pid = _patient_ids(js[0] * n_site, n_site * len(js))
    sid = pa.array(d.site_ids[js.start : js.stop], type=pa.string()).take(np.repeat(np.arange(len(js)), n_site))
    if not arrow:
        pid, sid = pid.to_numpy(zero_copy_only=False), sid.to_numpy(zero_copy_only=False)
    return {"patient_id": pid, "site_id": sid, **out}


# ----------------------------------------------------------------------------------------------
# Other tables
# ----------------------------------------------------------------------------------------------


def _site_period_frame(d: _Design) -> pd.DataFrame:
    S, T = len(d.site_ids), d.p["n_periods"]
    return pd.DataFrame({"site_id": np.repeat(d.site_ids, T), "period": np.tile(np.arange(1, T + 1), S)})


def _delivery_and_outcomes(d: _Design, y_stats: dict[str, np.ndarray]):
    p = d.p
    rng = _rng(p["seed"], 2)
    S, T, m = len(d.site_ids), p["n_periods"], p["patients_per_site_period"]
    tr, e = d.treated, np.maximum(d.exposure, 0)
    adh = np.nan_to_num(d.adherence)

    # delivery
    eligible = rng.poisson(d.size[:, None] / 50.0, (S, T))
    share_q5 = np.array(_Q5_SHARE)[d.quintile - 1]
    elig_q5 = rng.binomial(eligible, share_q5[:, None])
    reach_p = _expit(math.log(0.35 / 0.65) + 0.4 * np.minimum(e, 4)) * tr
    reached_q5 = rng.binomial(elig_q5, reach_p * p["equity_reach_ratio"])
    reached = reached_q5 + rng.binomial(eligible - elig_q5, reach_p)
    planned = np.where(tr, np.maximum(4, np.round(d.size / 250.0)).astype(np.int64)[:, None], 0)
    delivered = rng.binomial(planned, np.clip(0.5 + 0.5 * adh, 0, 1))
    staff_elig = np.maximum(3, rng.poisson(3 + d.size / 1000.0)).astype(np.int64)
    staff_elig = np.broadcast_to(staff_elig[:, None], (S, T))
    trained = rng.binomial(staff_elig, np.where(tr, np.minimum(0.95, 0.6 + 0.1 * e), 0.0))
    noise = np.exp(rng.normal(0.0, 0.1, (S, T)))
    cost = np.where(tr, (2500.0 + 180.0 * delivered + 900.0 * trained * (d.exposure == 0)) * noise, 0.0)
    sp = _site_period_frame(d)
    delivery = sp.assign(
        sessions_planned=planned.ravel().astype(np.int64),
        sessions_delivered=delivered.ravel().astype(np.int64),
        eligible=eligible.ravel().astype(np.int64),
        reached=reached.ravel().astype(np.int64),
        staff_eligible=staff_elig.ravel().astype(np.int64),
        staff_trained=trained.ravel().astype(np.int64),
        cost=cost.ravel().astype(np.float64),
    )

    # outcomes
    w_s = rng.normal(0.0, 0.2, S)
    n_sat = rng.binomial(m, 0.35, (S, T))
    sat = rng.binomial(n_sat, _expit(math.log(0.72 / 0.28) + w_s[:, None] + 0.08 * d.tau))
    c_s = rng.normal(420.0, 40.0, S)
    c_mean = c_s[:, None] + 3.0 * np.arange(T)[None, :] - 15.0 * d.ramp * tr
    cost_mean = c_mean + rng.normal(0.0, 1.0, (S, T)) * 120.0 / math.sqrt(m)
    cost_sd = 120.0 * np.sqrt(rng.chisquare(m - 1, (S, T)) / (m - 1))
    z_s = rng.normal(0.0, 0.2, S)
    delet = (d.region_idx == d.deleterious)[:, None]
    eta_b = (
        math.log(0.25 / 0.75) + z_s[:, None] + tr * (0.4 * (e < 2) - 0.2 * (e >= 2)) + 0.8 * tr * delet
    )
    burn = rng.binomial(staff_elig, _expit(eta_b))

    def block(ind, n, events=None, mean=None, sd=None):
        k = S * T
        return sp.assign(
            indicator_id=ind,
            n=np.asarray(n).ravel().astype(np.int64),
            events=pd.array(np.asarray(events).ravel().astype(np.int64), dtype="Int64")
            if events is not None
            else pd.array([pd.NA] * k, dtype="Int64"),
            mean=np.asarray(mean, dtype=float).ravel() if mean is not None else np.full(k, np.nan),
            sd=np.asarray(sd, dtype=float).ravel() if sd is not None else np.full(k, np.nan),
        )

    n_pat = np.full((S, T), m)
    outcomes = pd.concat(
        [
            block("HO_Y", n_pat, mean=y_stats["mean"], sd=y_stats["sd"]),
            block("HO_EVENT", n_pat, events=y_stats["events"]),
            block("UX_SAT", n_sat, events=sat),
            block("EF_COST", n_pat, mean=cost_mean, sd=cost_sd),
            block("TW_BURNOUT", staff_elig, events=burn),
            block("EQ_REACH_Q5", elig_q5, events=reached_q5),
        ],
        ignore_index=True,
    )
    outcomes = outcomes.sort_values(["site_id", "period", "indicator_id"], ignore_index=True)
    outcomes["indicator_id"] = outcomes["indicator_id"].astype(object)
    return delivery, outcomes


def _fidelity_ratings(d: _Design) -> tuple[pd.DataFrame, pd.Series]:
    p = d.p
    rng = _rng(p["seed"], 3)
    R = p["n_raters"]
    rater_ids = np.array([f"R{k + 1:02d}" for k in range(R)], dtype=object)
    bias = rng.normal(0.0, p["sd_rater_bias"], R)
    bias -= bias.mean()
    s_idx, t_idx = np.nonzero(d.treated)
    K = p["sessions_rated"]
    s_idx, t_idx = np.repeat(s_idx, K), np.repeat(t_idx, K)
    sess_k = np.tile(np.arange(1, K + 1), len(s_idx) // K)
    n_sess = len(s_idx)
    n_r = np.where(rng.random(n_sess) < 0.5, 2, 3)
    pick = np.argsort(rng.random((n_sess, R)), axis=1)[:, :3]
    keep = np.arange(3)[None, :] < n_r[:, None]
    sess_of = np.repeat(np.arange(n_sess), 3).reshape(n_sess, 3)[keep]
    rater_of = pick[keep]
    C = len(_COMPONENTS)
    xi = rng.normal(0.0, _SESSION_SD, (n_sess, C))
    n_rows = len(sess_of)
    err = rng.normal(0.0, p["rater_error_sd"], (n_rows, C))
    lo = _COMPONENTS["scale_min"].to_numpy()
    hi = _COMPONENTS["scale_max"].to_numpy()
    true_p = d.p_comp[s_idx[sess_of], t_idx[sess_of], :] + xi[sess_of]
    raw = lo + (hi - lo) * true_p + bias[rater_of][:, None] + err
    score = np.clip(np.round(raw), lo, hi)
    site = d.site_ids[s_idx[sess_of]]
    period = (t_idx[sess_of] + 1).astype(np.int64)
    session_id = np.array(
        [f"{s}-T{t:02d}-S{k}" for s, t, k in zip(site, period, sess_k[sess_of])], dtype=object
    )
    df = pd.DataFrame(
        {
            "site_id": np.repeat(site, C),
            "session_id": np.repeat(session_id, C),
            "period": np.repeat(period, C),
            "rater_id": np.repeat(rater_ids[rater_of], C),
            "component_id": np.tile(_COMPONENTS["component_id"].to_numpy(dtype=object), n_rows),
            "score": score.ravel().astype(np.float64),
        }
    )
    return df, pd.Series(bias, index=pd.Index(rater_ids, name="rater_id"), name="rater_bias")


def _assessments(p: dict):
    rng = _rng(p["seed"], 4)
    # 4 items per domain, as in scaleup_analysis/instruments/isat.yaml; innovations differ in overall
    # readiness (levels 2.1 / 2.6 / 3.1 in a seeded order) so that their ranking is recoverable.
    n_items = np.full(len(_ISAT_DOMAINS), _ISAT_ITEMS_PER_DOMAIN)
    level = rng.permutation(np.array([2.1, 2.6, 3.1]))
    true = np.clip(level[:, None] + rng.uniform(-0.5, 0.5, (len(_INNOVATIONS), len(_ISAT_DOMAINS))), 1.0, 4.0)
    bias = rng.normal(0.0, 0.25, len(_ASSESSMENT_RATERS))
    rows = []
    for a, inn in enumerate(_INNOVATIONS):
        for k, rater in enumerate(_ASSESSMENT_RATERS):
            for dd, dom in enumerate(_ISAT_DOMAINS):
                for it in range(n_items[dd]):
                    rows.append((inn, rater, dom, f"{dom}.{it + 1}", a, k, dd))
    df = pd.DataFrame(rows, columns=["innovation", "rater_id", "domain", "item_id", "a", "k", "dd"])
    raw = true[df["a"], df["dd"]] + bias[df["k"]] + rng.normal(0.0, 0.5, len(df))
    score = np.clip(np.round(raw), 1.0, 4.0)
    score[rng.random(len(df)) < 0.03] = np.nan
    out = pd.DataFrame(
        {
            "instrument": np.full(len(df), "ISAT", dtype=object),
            "innovation": df["innovation"].astype(object),
            "rater_id": df["rater_id"].astype(object),
            "domain": df["domain"].astype(object),
            "item_id": df["item_id"].astype(object),
            "score": score.astype(np.float64),
        }
    )
    truth = pd.DataFrame(
        {
            "innovation": np.repeat(_INNOVATIONS, len(_ISAT_DOMAINS)).astype(object),
            "domain": np.tile(_ISAT_DOMAINS, len(_INNOVATIONS)).astype(object),
            "true_score": true.ravel(),
        }
    )
    return out, truth, pd.Series(bias, index=pd.Index(_ASSESSMENT_RATERS, name="rater_id"), name="rater_bias")


def _truth(d: _Design, rater_bias, assess_true, assess_bias) -> ScaleupTruth:
    p = d.p
    T = p["n_periods"]
    regions = d.regions
    delta_scale = p["delta_pilot"] * p["voltage_drop_ratio"]
    scale_up = d.cohort >= 1
    tot = p["sigma2_region"] + p["sigma2_site"] + p["sigma2_resid"]
    full = d.treated & (d.exposure >= p["ramp_periods"] - 1)
    att_region = []
    n_scale = np.bincount(d.region_idx[scale_up], minlength=len(regions))
    for r in range(len(regions)):
        mask = (d.region_idx == r) & scale_up
        vals = d.tau[mask][d.treated[mask]]
        att_region.append(_mean_or_nan(vals))
    region_effects = pd.DataFrame(
        {
            "rss_code": regions["rss_code"].to_numpy(dtype=object),
            "deviation": d.deviation,
            "effect": delta_scale + d.deviation,
            "n_scaleup_sites": n_scale.astype(np.int64),
            "att": np.array(att_region),
        }
    )
    q = np.arange(1, 6)
    quintile_effects = pd.DataFrame(
        {
            "deprivation_quintile": q,
            "pilot_effect": p["delta_pilot"] + p["equity_gradient"] * (q - 3),
            "scale_effect": delta_scale + p["equity_gradient"] * (q - 3),
        }
    )
    s_idx, t_idx = np.nonzero(d.treated)
    true_adherence = pd.DataFrame(
        {"site_id": d.site_ids[s_idx], "period": (t_idx + 1).astype(np.int64), "adherence": d.adherence[s_idx, t_idx]}
    )
    C = len(_COMPONENTS)
    true_delivery = pd.DataFrame(
        {
            "site_id": np.repeat(d.site_ids[s_idx], C),
            "period": np.repeat((t_idx + 1).astype(np.int64), C),
            "component_id": np.tile(_COMPONENTS["component_id"].to_numpy(dtype=object), len(s_idx)),
            "probability": d.p_comp[s_idx, t_idx, :].ravel(),
        }
    )
    site_period_effects = _site_period_frame(d).assign(effect=d.tau.ravel())
    rows = []
    all_periods = (p["pilot_period"],) + p["wave_periods"]
    for c in sorted(set(d.cohort[d.cohort >= 0])):
        mask = d.cohort == c
        att = d.tau[mask].mean(axis=0)
        for t in range(T):
            rows.append((all_periods[c], int(c), t + 1, att[t], int(mask.sum())))
    att_gt = pd.DataFrame(rows, columns=["cohort", "wave", "time", "att", "n_sites"])
    return ScaleupTruth(
        seed=p["seed"],
        mu=_MU,
        period_trend=_TREND,
        beta_age=_BETA_AGE,
        beta_female=_BETA_FEMALE,
        sigma2_site=p["sigma2_site"],
        sigma2_region=p["sigma2_region"],
        sigma2_resid=p["sigma2_resid"],
        icc_site=(p["sigma2_region"] + p["sigma2_site"]) / tot,
        icc_region=p["sigma2_region"] / tot,
        region_intercepts=pd.Series(d.u_region, index=pd.Index(regions["rss_code"], name="rss_code"), name="u_region"),
        site_intercepts=pd.Series(d.u_site, index=pd.Index(d.site_ids, name="site_id"), name="u_site"),
        delta_pilot=p["delta_pilot"],
        delta_scale=delta_scale,
        voltage_drop_ratio=p["voltage_drop_ratio"],
        att_pilot=_mean_or_nan(d.tau[full & (d.cohort == 0)[:, None]]),
        att_scale=_mean_or_nan(d.tau[full & scale_up[:, None]]),
        ramp_periods=p["ramp_periods"],
        region_effects=region_effects,
        deleterious_regions=(str(regions["rss_code"].iloc[d.deleterious]),),
        equity_gradient=p["equity_gradient"],
        quintile_effects=quintile_effects,
        adherence_ref=p["adherence_ref"],
        fidelity_slope=p["fidelity_slope"],
        drift_rate=p["drift_rate"],
        drift_sites=tuple(d.site_ids[d.drift]),
        true_adherence=true_adherence,
        true_delivery=true_delivery,
        beta_consistent=p["beta_consistent"],
        beta_inconsistent=p["beta_inconsistent"],
        beta_unknown=_BETA_UNKNOWN,
        rater_bias=rater_bias,
        rater_error_sd=p["rater_error_sd"],
        session_sd=_SESSION_SD,
        event_intercept=_EVENT_INTERCEPT,
        event_beta_age=_EVENT_BETA_AGE,
        sigma2_site_event=p["sigma2_site_event"],
        logor_event=p["logor_event"],
        site_period_effects=site_period_effects,
        att_gt=att_gt,
        equity_reach_ratio=p["equity_reach_ratio"],
        assessment_scores=assess_true,
        assessment_rater_bias=assess_bias,
        support_periods=p["support_periods"],
        deadoption_rate=p["deadoption_rate"],
        deadoption_hr_withdrawal=p["deadoption_hr_withdrawal"],
        deadoption_beta_psat=p["deadoption_beta_psat"],
        deadoption_beta_fidelity=p["deadoption_beta_fidelity"],
        decay_ratio=p["decay_ratio"],
        decay_regions=tuple(regions["rss_code"].to_numpy(dtype=object)[d.sustainment["decay_regions"]]),
        site_sustainment=d.sustainment["sites"],
        sustainment_effects=_sustainment_effects(d),
    )


def _sustainment_effects(d: _Design) -> pd.DataFrame:
    periods = np.arange(1, d.p["n_periods"] + 1)
    adopted = periods[None, :] >= d.adopt[:, None]
    after = periods[None, :] >= d.sustainment["withdrawal"][:, None]
    during = _mean_or_nan(d.tau[adopted & ~after])
    later = _mean_or_nan(d.tau[adopted & after])
    return pd.DataFrame({"quantity": ["effect_during", "effect_after", "sustainment_ratio"],
                         "value": [during, later, later / during if during else math.nan]})


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def simulate_scaleup(seed: int = DEFAULT_SEED, **kwargs: Any) -> SimulatedScaleup:
    r"""Simulate a province-wide scale-up over Quebec's 18 health regions, with known truth.

    Parameters
    ----------
    seed : int, default 20261123
        Seed of ``numpy.random.SeedSequence``; the same seed and arguments give identical tables.
    n_sites : int, default 120
        Number of delivery sites (>= 36: at least two per region).
    n_periods : int, default 16
        Number of (quarterly) periods :math:`T`.
    patients_per_site_period : int, default 30
        New patients per site and period in ``encounters`` (>= 2); the table has
        ``n_sites * n_periods * patients_per_site_period`` rows.
    n_pilot : int, default 6
        Number of pilot sites (cohort 0), in distinct regions.
    pilot_period : int, default 3
        Adoption period of the pilot sites.
    wave_periods : sequence of int, optional
        Adoption periods of the scale-up waves (cohorts 1..W). Default: every second period from
        ``pilot_period + 3`` up to ``n_periods - 2``, at most four waves (6, 8, 10, 12 for T = 16).
    prop_never : float, default 0.2
        Share of non-pilot sites that never adopt (never-treated controls).
    delta_pilot : float, default 5.0
        Full-dose pilot effect on ``y`` (score points; the residual sd is 10 by default).
    voltage_drop_ratio : float, default 0.6
        ``delta_scale / delta_pilot``.
    deleterious_effect : float, default -2.0
        Full-dose scale-up effect in the deleterious region (< 0).
    sd_region_effect : float, default 1.0
        Sd of the regional deviations of the scale-up effect (random slope).
    ramp_periods : int, default 3
        Periods to reach full dose (:math:`\lambda(e) = \min\{1, (e+1)/L\}`).
    equity_gradient : float, default -0.5
        Change in the effect per deprivation quintile above 3.
    fidelity_slope : float, default 4.0
        Change in the effect per unit of true adherence above ``adherence_ref``.
    adherence_ref : float, default 0.8
    drift_rate : float, default 0.03
        Loss of true adherence per period since adoption at the drifting sites.
    beta_consistent, beta_inconsistent : float, default 0.5 and -1.0
        Effect added by each fidelity-consistent (>= 0) or fidelity-inconsistent (< 0) adaptation.
    sigma2_site, sigma2_region, sigma2_resid : float, default 9, 4, 100
        Variance components of ``y``.
    logor_event : float, default -0.4
        Log odds ratio of ``event`` for treated patients.
    sigma2_site_event : float, default 0.25
        Variance of the site random intercept of ``event`` (logit scale).
    n_raters : int, default 8
        Size of the pool of fidelity raters.
    sd_rater_bias, rater_error_sd : float, default 0.3 and 0.4
        Sd of the planted rater biases and of the rating error (scale points).
    sessions_rated : int, default 2
        Observed (rated) sessions per adopting site-period.
    equity_reach_ratio : float, default 0.7
        Reach probability of eligible patients of the most deprived quintile relative to the others.
    support_periods : int, default 6
        Mean periods of external facilitation after adoption.
    support_spread : int, default 2
        Each site's facilitation lasts ``support_periods`` plus a uniform integer in
        [-``support_spread``, ``support_spread``] periods (< ``support_periods``).
    deadoption_rate : float, default 0.02
        Hazard of de-adoption per period while supported, for a site of mean PSAT score and fidelity.
    deadoption_hr_withdrawal : float, default 3.0
        Hazard ratio of de-adoption once the support is withdrawn.
    deadoption_beta_psat, deadoption_beta_fidelity : float, default -0.6 and -5.0
        Log hazard ratios per point of mean PSAT score and per unit of fidelity at adoption.
    decay_ratio : float, default 0.3
        Share of the effect kept after the support is withdrawn, in the decay regions.
    n_decay_regions : int, default 6
        Number of regions (drawn at random, never the deleterious one; at most 17) whose effect decays
        after the withdrawal.

    Returns
    -------
    SimulatedScaleup
        ``tables`` (every table of the data dictionary), ``truth`` (:class:`ScaleupTruth`) and
        ``params``.

    Raises
    ------
    ScaleupDataError
        If an argument is unknown or out of range (the message names it and the allowed range), or
        if the tables would exceed ``MAX_SIMULATED_ROWS`` (20 million) rows: the message gives the
        estimated rows, memory and time (use :func:`write_encounters_parquet` for larger
        patient-level tables).

    Notes
    -----
    The data-generating process (formulas) is given in the docstring of
    :mod:`scaleup_analysis.data.simulate`. ``truth.att_gt`` is the exact mean planted effect of each
    adoption cohort at each period (Callaway & Sant'Anna, 2021, notation); with equal numbers of
    patients per site-period it is the estimand of a cohort-by-period difference-in-differences.

    References
    ----------
    Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
    Journal of Econometrics, 225(2), 200-230.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> sorted(sim.tables)[:4]
    ['adaptations', 'assessments', 'components', 'deadoption']
    >>> len(sim.tables["encounters"])
    2000
    >>> sim.truth.voltage_drop_ratio
    0.6
    >>> sim.truth.region_effects.set_index("rss_code").loc[list(sim.truth.deleterious_regions), "effect"].tolist()
    [-2.0]
    """
    p = _check_params(seed, kwargs)
    _check_size(p)
    d = _make_design(p)
    S, T, m = len(d.site_ids), p["n_periods"], p["patients_per_site_period"]
    enc = _encounter_chunk(d, range(S), m)
    encounters = pd.DataFrame({k: enc[k] for k in _ENCOUNTER_COLUMNS})
    y3 = enc["y"].reshape(S, T, m)
    y_stats = {
        "mean": y3.mean(axis=2),
        "sd": y3.std(axis=2, ddof=1),
        "events": enc["event"].reshape(S, T, m).sum(axis=2),
    }
    delivery, outcomes = _delivery_and_outcomes(d, y_stats)
    ratings, rater_bias = _fidelity_ratings(d)
    assessments, assess_true, assess_bias = _assessments(p)
    indicators = _INDICATORS.copy()
    for col, cats in (
        ("domain", _DOMAINS),
        ("type", ("proportion", "mean")),
        ("direction", ("higher_is_better", "lower_is_better")),
    ):
        indicators[col] = pd.Categorical(indicators[col], categories=cats)
    tables = {
        "regions": d.regions.copy(),
        "sites": d.sites,
        "indicators": indicators,
        "outcomes": outcomes,
        "encounters": encounters,
        "delivery": delivery,
        "components": _COMPONENTS.copy(),
        "fidelity_ratings": ratings,
        "adaptations": d.adaptations,
        "assessments": assessments,
        "support": d.sustainment["support"],
        "deadoption": d.sustainment["deadoption"],
        "site_assessments": d.sustainment["site_assessments"],
        "establishments": _establishments(d.sites),
    }
    truth = _truth(d, rater_bias, assess_true, assess_bias)
    return SimulatedScaleup(tables=tables, truth=truth, params=dict(p))


@checked_inputs
def write_encounters_parquet(
    path: str | os.PathLike,
    *,
    seed: int = DEFAULT_SEED,
    rows_per_group: int = 1_000_000,
    **kwargs: Any,
) -> Path:
    """Stream the simulated ``encounters`` table to a Parquet file, site by site.

    The file holds exactly the rows of ``simulate_scaleup(seed, **kwargs).tables["encounters"]`` (same
    order and values) but is generated in chunks of whole sites (each chunk one Parquet row group of
    at most ``rows_per_group`` rows, or one site if a site alone is larger), so that benchmark sizes
    (50 million rows and more) never sit in memory. The file is written to a temporary name in the
    same folder and renamed when complete (no half-written file under ``path``).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.parquet``); its folder must exist.
    seed : int, default 20261123
    rows_per_group : int, default 1_000_000
        Target number of rows per row group (memory use is proportional to it).
    **kwargs
        ``n_sites``, ``n_periods``, ``patients_per_site_period`` and the other arguments of
        :func:`simulate_scaleup`.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow.parquet as pq
    >>> import scaleup_analysis as sa
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = sa.write_encounters_parquet(pathlib.Path(tmp) / "enc.parquet", seed=1, n_sites=40,
    ...                                     n_periods=10, patients_per_site_period=5, rows_per_group=500)
    ...     meta = pq.ParquetFile(f).metadata
    ...     (meta.num_rows, meta.num_row_groups)
    (2000, 4)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = _check_params(seed, kwargs)
    _check_size(p, streamed=True)
    rows_per_group = _as_int("rows_per_group", rows_per_group, 1)
    path = Path(path)
    if not path.parent.is_dir():
        raise ScaleupDataError(
            f"argument 'path' = {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first."
        )
    d = _make_design(p)
    S, m = len(d.site_ids), p["patients_per_site_period"]
    per_site = p["n_periods"] * m
    sites_per_chunk = max(1, rows_per_group // per_site)
    schema = pa.schema(
        [
            ("patient_id", pa.string()),
            ("site_id", pa.string()),
            ("period", pa.int64()),
            ("treated", pa.int64()),
            ("y", pa.float64()),
            ("event", pa.int64()),
            ("age", pa.int64()),
            ("female", pa.int64()),
        ]
    )

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            for start in range(0, S, sites_per_chunk):
                chunk = _encounter_chunk(d, range(start, min(S, start + sites_per_chunk)), m, arrow=True)
                table = pa.table({k: chunk[k] for k in _ENCOUNTER_COLUMNS}, schema=schema)
                writer.write_table(table, row_group_size=len(table))

    return atomic_write(path, write)
