r"""Effects of fidelity-consistent and fidelity-inconsistent adaptations on site x period outcomes.

:func:`adaptation_effects` fits a multilevel (or fixed-effects) model of the outcomes on the
cumulative number of adaptations of each fidelity relation, and an event study around each site's
first fidelity-inconsistent adaptation (:class:`AdaptationEffects`).

References
----------
Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). The FRAME: an expanded framework for
reporting adaptations and modifications to evidence-based interventions. Implementation Science, 14,
58. https://doi.org/10.1186/s13012-019-0898-y

Mundlak, Y. (1978). On the pooling of time series and cross section data. Econometrica, 46(1),
69-85.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._checks import checked_inputs
from .._display import Displayed
from .._style import GREY, NEUTRAL, PALETTE, new_axes, styled, ticks_inside, word
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..i18n import N_
from ..narrative import Text
from ._panel import (
    PANEL_NAMES, REL_COLS, adoption_terms, check_options, cumulative_counts, drop_ramp_up, fit_panel_model,
    site_period_panel,
)
from .frame import validate_adaptations

__all__ = ["adaptation_effects", "AdaptationEffects"]

_TERMS = {"n_consistent": N_("Each fidelity-consistent adaptation"),
          "n_inconsistent": N_("Each fidelity-inconsistent adaptation"),
          "n_unknown": N_("Each adaptation of unknown relation to fidelity")}
_ADOPTION = {"exposure": N_("one effect per period since adoption"), "treatment": N_("one effect")}

@dataclass(frozen=True, repr=False)
class AdaptationEffects(Displayed):
    """Result of :func:`adaptation_effects`.

    Attributes
    ----------
    coef : pandas.DataFrame
        Cumulative-count model: one row per term ``n_consistent``, ``n_inconsistent`` (and
        ``n_unknown``) with ``estimate`` (change in the outcome per additional adaptation of that kind,
        counted from its start period while the site delivers the innovation), ``se``,
        ``statistic``, ``df``, ``pvalue``, ``ci_low``, ``ci_high``.
    event_study : pandas.DataFrame
        One row per ``event_time`` e (periods since the site's first fidelity-inconsistent
        adaptation; e = -1 is the reference, reported as 0; the end points bin everything
        beyond): ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``pvalue``, ``n_sites`` (event sites
        observed at e).
    event_effect : pandas.Series
        Pooled before/after estimate of the first fidelity-inconsistent adaptation (one ``post``
        indicator instead of the post-event dummies): estimate, se, statistic, df, pvalue, ci_low, ci_high.
    n_event_sites : int
        Sites with a fidelity-inconsistent adaptation while delivering.
    inference : {"mixed", "cluster"}
    models : dict
        The fitted models (``"cumulative"``, ``"event_study"``, ``"event_effect"``): MixedModelResult
        or statsmodels results.
    panel : pandas.DataFrame
        The site x period analysis panel: ``site_id``, ``period``, ``y`` (the outcome),
        ``treatment`` (0/1), ``adoption_period`` (inf if never), ``time_since_adoption`` (periods
        since adoption, -1 before), the cumulative counts ``n_consistent``, ``n_inconsistent``,
        ``n_unknown``, ``first_inconsistent_period`` and ``event_time``.
    """

    coef: pd.DataFrame
    event_study: pd.DataFrame
    event_effect: pd.Series
    n_event_sites: int
    inference: str
    adoption_effects: str
    level: float
    models: dict = field(repr=False)
    panel: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy: the cumulative-count coefficients, the pooled event effect and the event-study
        coefficients (``analysis`` column: ``"cumulative"``, ``"event_effect"``, ``"event_study"``)."""
        a = self.coef.reset_index().rename(columns={"index": "term"})
        a.insert(0, "analysis", "cumulative")
        b = self.event_effect.to_frame().T.assign(term="post").reset_index(drop=True)
        b.insert(0, "analysis", "event_effect")
        c = self.event_study.assign(term=lambda d: "e=" + d["event_time"].astype(str)).drop(
            columns=["event_time", "n_sites"])
        c.insert(0, "analysis", "event_study")
        return pd.concat([a, b, c], ignore_index=True)[["analysis", "term", "estimate", "se", "pvalue", "ci_low", "ci_high"]]

    def _repr_fields(self) -> dict:
        out = {f"{term}": float(self.coef.loc[term, "estimate"]) for term in self.coef.index}
        e = self.event_effect
        out.update(event_effect=float(e["estimate"]), event_effect_ci=(float(e["ci_low"]), float(e["ci_high"])),
                   n_event_sites=self.n_event_sites, inference=self.inference)
        return out

    def _summary(self, tx) -> str:
        """Both analyses: the cumulative-count coefficients and the event study."""
        pct = tx.pct(self.level)
        model = (tx("mixed model, site random effects") if self.inference == "mixed"
                 else tx("site fixed effects, cluster-robust SE"))
        adoption = word(tx, _ADOPTION, self.adoption_effects)
        e = self.event_effect
        lines = [
            tx("Adaptation effects ({model}; period fixed effects; the innovation's own effect: {adoption})",
               model=model, adoption=adoption),
            tx("(a) Cumulative number of adaptations (change in the outcome per adaptation, {level} CI):", level=pct),
        ]
        for term, r in self.coef.iterrows():
            lines.append("  " + word(tx, _TERMS, term) + tx.colon() + " "
                         + tx.ci(r["estimate"], r["ci_low"], r["ci_high"], digits=4, level=self.level)
                         + ", " + tx.pvalue(r["pvalue"]))
        lines += [
            "",
            tx("(b) First fidelity-inconsistent adaptation ({sites}): before/after effect {ci}, {p}",
               sites=tx.n("{n} site", "{n} sites", self.n_event_sites),
               ci=tx.ci(e["estimate"], e["ci_low"], e["ci_high"], digits=4, level=self.level),
               p=tx.pvalue(e["pvalue"])),
            tx("Event study (periods since the first fidelity-inconsistent adaptation; -1 is the reference):"),
        ]
        for r in self.event_study.itertuples(index=False):
            value = (tx("reference") if r.event_time == -1
                     else tx.ci(r.estimate, r.ci_low, r.ci_high, digits=4, level=self.level))
            lines.append("  " + tx("{e}: {value} ({sites})", e=tx.signed(r.event_time, 0) if r.event_time else "0",
                                   value=value, sites=tx.n("{n} site", "{n} sites", r.n_sites)))
        return "\n".join(lines)

    @styled
    def plot_event_study(self, *, ylabel: str | None = None, ax=None):
        """Event-study coefficients with CIs against event time; returns the Axes."""
        from matplotlib.lines import Line2D

        tx = Text()
        ax = new_axes(ax, (7.5, 4.2))
        d = self.event_study
        ref = d["event_time"] == -1
        ax.axhline(0, color=NEUTRAL, lw=0.8)
        ax.axvline(-0.5, color=GREY, ls="--", lw=1.0)
        est = d.loc[~ref]
        ax.errorbar(est["event_time"], est["estimate"],
                    yerr=[est["estimate"] - est["ci_low"], est["ci_high"] - est["estimate"]],
                    fmt="o", color=PALETTE[0], ecolor=PALETTE[0], capsize=3, markersize=5)
        ax.plot(d.loc[ref, "event_time"], d.loc[ref, "estimate"], "o", mfc="white", mec=PALETTE[0], ms=5)
        level = tx.pct(self.level)
        ax.legend(handles=[
            Line2D([], [], marker="o", color=PALETTE[0], label=tx("Estimate and {level} CI", level=level)),
            Line2D([], [], marker="o", ls="", mfc="white", mec=PALETTE[0], label=tx("Reference period (-1)")),
            Line2D([], [], color=GREY, ls="--", label=tx("First fidelity-inconsistent adaptation")),
        ], loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_xticks(d["event_time"].tolist())
        ticks_inside(ax, "y")
        ax.set_xlabel(textwrap.fill(tx("Periods since the first fidelity-inconsistent adaptation"), 50))
        ax.set_ylabel(textwrap.fill(tx("Change in outcome (vs. period before)") if ylabel is None else ylabel, 40))
        ax.set_title(tx.n("Event study ({n} site, {level} CI)", "Event study ({n} sites, {level} CI)",
                          self.n_event_sites, level=level))
        return ax


def _check_window(window) -> tuple[int, int]:
    try:
        lo, hi = (int(window[0]), int(window[1]))
    except (TypeError, ValueError, IndexError):
        raise ScaleupDataError(f"argument 'window' = {window!r}: give two integers (lo, hi), e.g. (-3, 3).") from None
    if not (lo <= -2 and hi >= 0):
        raise ScaleupDataError(
            f"argument 'window' = {window!r}: it needs lo <= -2 (at least one pre-event period besides the "
            "reference -1) and hi >= 0."
        )
    return lo, hi


def _with_fidelity_relation(ad: pd.DataFrame) -> pd.DataFrame:
    if "fidelity_relation" not in ad.columns or ad["fidelity_relation"].isna().all():
        raise ScaleupDataError("table 'adaptations': column 'fidelity_relation' is needed (FRAME fidelity relation).")
    return ad


def _event_terms(p: pd.DataFrame, lo: int, hi: int):
    """Add the event-study regressors to the panel: event time ``event_k`` (binned to the window),
    one indicator per event time but -1, the further inconsistent adaptations and ``post``.
    Returns the event-site mask, binned event times, the post indicator and (event time, column) pairs."""
    E = p["first_inconsistent"].to_numpy()
    has = np.isfinite(E) & (p["D"].to_numpy() == 1)
    if not has.any():
        raise ScaleupDataError(
            "table 'adaptations': no site has a fidelity-inconsistent adaptation while delivering the innovation; "
            "the event study needs at least one."
        )
    # event time of the treated periods of event sites (pre-adoption periods are controls: the event
    # can only happen while the innovation is delivered)
    k = np.where(has, p["period"].to_numpy() - np.nan_to_num(E), np.nan)
    kb = np.clip(k, lo, hi)
    post = (has & (k >= 0)).astype(float)
    p["event_k"] = kb
    p["n_inconsistent_further"] = p["n_inconsistent"] - post
    ev_terms = []
    for kk in range(lo, hi + 1):
        if kk == -1:
            continue
        nm = f"event_m{-kk}" if kk < 0 else f"event_p{kk}"
        p[nm] = (has & (kb == kk)).astype(float)
        if p[nm].any():  # an event time without any site-period is reported as NaN
            ev_terms.append((kk, nm))
    return has, kb, post, ev_terms


def _event_study(p, lo, hi, adopt_terms, counts, inference, level, slope):
    """Event study around the first fidelity-inconsistent adaptation and the pooled before/after
    effect: (event-study table, post effect, the two models, number of event sites)."""
    has, kb, post, ev_terms = _event_terms(p, lo, hi)
    others = [c for c in ("n_consistent", "n_unknown") if c in counts]
    further = ["n_inconsistent_further"] if p["n_inconsistent_further"].any() else []
    ev_names = [nm for _, nm in ev_terms]
    fe_ev, m_ev = fit_panel_model(p, adopt_terms + others + further + ev_names, inference, level, slope,
                                  within=others + further + ev_names)
    event_study = _event_study_table(fe_ev, ev_terms, p, has, kb, lo, hi)
    p["post_event"] = post
    fe_post, m_post = fit_panel_model(p, adopt_terms + others + further + ["post_event"], inference, level, slope,
                                      within=others + further + ["post_event"])
    eff = fe_post.loc["post_event"].copy()
    eff.name = "post_event"
    return event_study, eff, m_ev, m_post, int(pd.unique(p.loc[has, "site_id"]).size)


def _event_study_table(fe_ev, ev_terms, p, has, kb, lo, hi) -> pd.DataFrame:
    """One row per event time (-1: the reference, 0), with the event sites observed at it."""
    rows = []
    for kk in range(lo, hi + 1):
        n_s = int(pd.unique(p.loc[has & (kb == kk), "site_id"]).size)
        if kk == -1:
            rows.append((kk, 0.0, 0.0, 0.0, 0.0, math.nan, n_s))
            continue
        nm = dict(ev_terms).get(kk)
        if nm is None:
            rows.append((kk, math.nan, math.nan, math.nan, math.nan, math.nan, n_s))
            continue
        r = fe_ev.loc[nm]
        rows.append((kk, r["estimate"], r["se"], r["ci_low"], r["ci_high"], r["pvalue"], n_s))
    return pd.DataFrame(rows, columns=["event_time", "estimate", "se", "ci_low", "ci_high", "pvalue", "n_sites"])


@checked_inputs
def adaptation_effects(
    data: pd.DataFrame,
    adaptations: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    *,
    indicator: str | None,
    outcome: str = "y",
    site: str = "site_id",
    period: str = "period",
    treatment: str | None = "treated",
    adoption_effects: str = "exposure",
    min_exposure: int = 0,
    window: tuple[int, int] = (-3, 3),
    inference: str = "mixed",
    site_treatment_effects: bool = True,
    level: float = 0.95,
    scheme: str = "FRAME",
) -> AdaptationEffects:
    """Effects of fidelity-consistent and fidelity-inconsistent adaptations on site x period outcomes.

    Parameters
    ----------
    data : pandas.DataFrame
        Either the ``outcomes`` table (site x period x indicator; the rows of ``indicator`` are used:
        their ``mean``, or ``events / n`` for proportions) or patient-level rows such as
        ``encounters`` (column ``outcome``, averaged per site and period).
    adaptations : pandas.DataFrame
        The FRAME-coded adaptations (``site_id``, ``period``, ``fidelity_relation``, ...).
    sites : pandas.DataFrame, optional
        The ``sites`` table (``adoption_period``). Without it, adoption is the first period in which
        the ``treatment`` column of patient-level ``data`` is 1.
    indicator : str or None
        Required: the indicator analysed when ``data`` is the ``outcomes`` table (a code of the
        ``indicators`` table, e.g. ``"HO_Y"``); ``None`` for patient-level ``data``.
    outcome : str, default "y"
        Outcome column of patient-level ``data``.
    site, period, treatment : str
        Column names in ``data`` (``treatment``: the 0/1 column of patient-level data).
    adoption_effects : {"exposure", "treatment"}
        How the innovation's own effect is modelled: one effect per period since adoption (default;
        absorbs ramp-up and drift common to all sites) or a single treatment indicator.
    min_exposure : int, default 0
        Leave out the treated site-periods with fewer than ``min_exposure`` periods since adoption
        (e.g. the ramp-up periods before the innovation reaches full dose). During ramp-up a site's
        own effect is only partly delivered; sites that differ in effect then differ in ramp-up
        shape too, which ``site_treatment_effects`` (constant per site) cannot absorb. Adaptations
        started during those periods still count afterwards.
    window : (int, int), default (-3, 3)
        Event times shown in the event study; earlier / later periods are binned into the end points.
    inference : {"mixed", "cluster"}
        ``"mixed"``: :func:`mixed_model` (REML, Satterthwaite df) with a site random intercept (and a
        random treatment slope if ``site_treatment_effects``); ``"cluster"``: OLS with site and period fixed
        effects and cluster-robust (CR1, by site) standard errors, t with G - 1 df.
    site_treatment_effects : bool, default True
        Let sites differ in the innovation's own effect: a site random slope of the treatment
        indicator (mixed models, lme4 ``(1 + D | site)``) or site x treatment fixed effects
        (``"cluster"``). Without it, sites whose innovation works better by chance and that happen to
        document more adaptations bias the adaptation coefficients.
    level : float
    scheme : {"FRAME", "FRAME-IS"}

    Returns
    -------
    AdaptationEffects

    Notes
    -----
    Counts. :math:`C_{st}, I_{st}, U_{st}` are the numbers of fidelity-consistent, -inconsistent and
    unknown adaptations of site :math:`s` started at or before period :math:`t`; they act only while
    the site delivers the innovation (:math:`D_{st} = 1`), so an adaptation planned before adoption
    counts from the adoption period.

    (a) Cumulative model:

    .. math:: y_{st} = \\alpha_t + u_s + D_{st}(\\eta_{e_{st}} + b_s) + \\beta_C D_{st} C_{st}
              + \\beta_I D_{st} I_{st} + \\beta_U D_{st} U_{st} + \\varepsilon_{st},

    with period effects :math:`\\alpha_t`, site effects :math:`u_s` (random or fixed),
    exposure (time since adoption) effects :math:`\\eta_e` (or one :math:`\\eta`) and, with
    ``site_treatment_effects``, site-specific treatment effects :math:`b_s` (random or fixed).

    (b) Event study around the first fidelity-inconsistent adaptation of site :math:`s` while
    delivering, :math:`E_s`: the same model with :math:`\\beta_I D I` replaced by event-time
    indicators :math:`D_{st} 1[t - E_s = k]` (``window`` end points binned; :math:`k = -1` the
    reference; periods before adoption are not event periods)
    plus the number of *further* inconsistent adaptations :math:`D_{st} I_{st} - 1[t \\ge E_s]`; the
    post-event coefficients then estimate the effect of the first inconsistent adaptation
    :math:`k` periods later and the pre-event ones test for anticipation or pre-trends. The pooled
    before/after effect replaces the post-event indicators by one indicator :math:`1[t \\ge E_s]`.

    With ``inference="mixed"`` the site means of the adaptation regressors (over all periods, and
    over the treated periods times :math:`D_{st}`) are added as covariates (Mundlak, 1978), so that,
    as with fixed effects, the adaptation coefficients come from changes *within* sites: the number
    of adaptations documented per period differs between rollout waves (later waves have fewer
    periods left), and waves may differ in the innovation's effect. ``min_exposure`` set to the
    ramp-up length makes the model exact for :func:`simulate_scaleup` (whose site-specific effects
    are multiplied by the ramp-up).

    Both analyses compare sites and periods, not randomised adaptations: adaptations made *because*
    outcomes were poor (reverse causation) bias the coefficients; inspect the pre-event coefficients.

    References
    ----------
    Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). Implementation Science, 14, 58.

    Mundlak, Y. (1978). On the pooling of time series and cross section data. Econometrica, 46(1),
    69-85.

    Sun, L., & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. Journal of Econometrics, 225(2), 175-199.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=5, n_sites=60, n_periods=10, patients_per_site_period=10)
    >>> t = sim.tables
    >>> res = sa.adaptation_effects(t["outcomes"], t["adaptations"], t["sites"], indicator="HO_Y")
    >>> res.coef.index.tolist()
    ['n_consistent', 'n_inconsistent', 'n_unknown']
    >>> res.event_study["event_time"].tolist()
    [-3, -2, -1, 0, 1, 2, 3]
    """
    check_options(inference, adoption_effects, level)
    lo, hi = _check_window(window)
    ad = _with_fidelity_relation(validate_adaptations(adaptations, scheme=scheme))
    p = site_period_panel(data, sites, indicator, outcome, site, period, treatment, fn="adaptation_effects")
    unknown = ~ad["site_id"].isin(set(p["site_id"]))
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} adaptation(s) of sites without outcome data were left out "
            f"(e.g. site {ad.loc[unknown, 'site_id'].iloc[0]!r}).", RowsOmittedWarning, stacklevel=2)
    p = cumulative_counts(p, ad)
    p = drop_ramp_up(p, min_exposure)
    adopt_terms = adoption_terms(p, adoption_effects)
    counts = [c for _, c in REL_COLS if p[c].any()]
    slope = bool(site_treatment_effects)

    # (a) cumulative counts
    fe, m_cum = fit_panel_model(p, adopt_terms + counts, inference, level, slope, within=counts)

    # (b) event study, and the pooled before/after effect
    event_study, eff, m_ev, m_post, n_event = _event_study(p, lo, hi, adopt_terms, counts, inference, level, slope)
    keep_cols = ["site_id", "period", "y", "D", "adopt", "exposure", *[c for _, c in REL_COLS],
                 "first_inconsistent", "event_k"]
    return AdaptationEffects(
        coef=fe.loc[counts], event_study=event_study, event_effect=eff, n_event_sites=n_event, inference=inference,
        adoption_effects=adoption_effects, level=level,
        models={"cumulative": m_cum, "event_study": m_ev, "event_effect": m_post},
        panel=p[keep_cols].rename(columns=PANEL_NAMES),
    )
