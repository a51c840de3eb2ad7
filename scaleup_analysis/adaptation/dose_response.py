r"""Fidelity dose-response: does the innovation's effect grow with implementation fidelity?

:func:`fidelity_dose_response` models site x period outcomes with the innovation's effect varying
with the fidelity measure (:class:`DoseResponse`).

References
----------
Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J., & Balain, S. (2007). A conceptual
framework for implementation fidelity. Implementation Science, 2, 40.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._checks import checked_inputs
from .._display import Displayed
from .._style import PALETTE, WORSE, new_axes, styled, ticks_inside
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..narrative import Text
from ._panel import (
    PANEL_NAMES, REL_COLS, adoption_terms, check_min_exposure, check_options, cumulative_counts, drop_ramp_up,
    fit_panel_model, site_period_panel,
)
from .frame import validate_adaptations

__all__ = ["fidelity_dose_response", "DoseResponse"]

@dataclass(frozen=True, repr=False)
class DoseResponse(Displayed):
    """Result of :func:`fidelity_dose_response`.

    Attributes
    ----------
    slope, se, ci_low, ci_high, pvalue, df : float
        Change in the innovation's effect on the outcome per unit of the fidelity measure
        (e.g. from adherence 0.7 to 0.8 the effect changes by ``0.1 * slope``).
    coef : pandas.DataFrame
        The coefficient row (``fidelity``) in the usual columns.
    reference : float
        Fidelity value at which the exposure effects are evaluated (the centring value).
    n_sites, n_obs : int
        Treated sites with a fidelity value, and rows (site-periods) of the model.
    fidelity_level : {"site-period", "site"}
    inference : {"mixed", "cluster"}
    model : object
        MixedModelResult or the cluster-robust OLS summary (dict).
    panel : pandas.DataFrame
        The analysis panel: ``site_id``, ``period``, ``y`` (the outcome), ``treatment`` (0/1),
        ``adoption_period``, ``time_since_adoption``, ``fidelity`` and ``y_net`` (the outcome net of period,
        exposure and adaptation effects).
    """

    slope: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    df: float
    coef: pd.DataFrame
    reference: float
    n_sites: int
    n_obs: int
    fidelity_level: str
    inference: str
    level: float
    model: object = field(repr=False)
    panel: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy one-row table of the dose-response slope."""
        return self.coef.reset_index()

    def _repr_fields(self) -> dict:
        return {"slope": self.slope, "se": self.se, "ci": (self.ci_low, self.ci_high), "pvalue": self.pvalue,
                "reference": self.reference, "n_sites": self.n_sites, "n_obs": self.n_obs,
                "fidelity_level": self.fidelity_level, "inference": self.inference}

    def _summary(self, tx) -> str:
        model = tx("mixed model") if self.inference == "mixed" else tx("fixed effects, cluster-robust SE")
        level = tx("site-period") if self.fidelity_level == "site-period" else tx("site")
        return "\n".join([
            tx("Fidelity dose-response ({level} fidelity, {model}): {sites}, {obs}", level=level, model=model,
               sites=tx.n("{n} treated site", "{n} treated sites", self.n_sites),
               obs=tx.n("{n} site-period", "{n} site-periods", self.n_obs)),
            tx("slope per unit of fidelity = {ci} (SE {se}), {p}; reference fidelity {ref}",
               ci=tx.ci(self.slope, self.ci_low, self.ci_high, digits=4, level=self.level), se=tx.num(self.se, 4),
               p=tx.pvalue(self.pvalue), ref=tx.num(self.reference, 4)),
        ])

    @styled
    def plot_dose_response(self, *, xlabel: str | None = None, ylabel: str | None = None, ax=None):
        """Each treated site's mean outcome change (after minus before adoption, net of period effects)
        against its mean fidelity, with the fitted slope; returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (7.5, 4.5))
        d = self.panel
        pre = d[d["treatment"] == 0].groupby("site_id")["y_net"].mean()
        post = d[d["treatment"] == 1].groupby("site_id").agg(y=("y_net", "mean"), f=("fidelity", "mean"))
        post = post.join(pre.rename("pre"), how="inner").dropna()
        x = post["f"].to_numpy()
        yv = (post["y"] - post["pre"]).to_numpy()
        ax.scatter(x, yv, s=24, color=PALETTE[0], alpha=0.75, edgecolors="white", linewidths=0.5, zorder=3,
                   label=tx("Treated site"))
        if len(x):
            grid = np.linspace(x.min(), x.max(), 50)
            ax.plot(grid, yv.mean() + self.slope * (grid - x.mean()), color=WORSE, lw=1.6,
                    label=tx("Fitted slope: {ci}", ci=tx.ci(self.slope, self.ci_low, self.ci_high, level=self.level)))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ticks_inside(ax)
        xlabel = tx("Fidelity (mean over the site's treated periods)") if xlabel is None else xlabel
        ax.set_xlabel(textwrap.fill(xlabel, 50))
        ax.set_ylabel(textwrap.fill(tx("Outcome change vs. own pre-adoption level") if ylabel is None else ylabel, 40))
        ax.set_title(tx.n("Fidelity dose-response ({n} site)", "Fidelity dose-response ({n} sites)", self.n_sites))
        return ax


def _fidelity_values(fidelity, site, period, value) -> pd.DataFrame:
    """site_id, period and fidelity, one row per site-period."""
    if not isinstance(fidelity, pd.DataFrame):
        raise ScaleupDataError(f"table 'fidelity' must be a pandas DataFrame, got {type(fidelity).__name__}.")
    miss = [c for c in (site, period, value) if c not in fidelity.columns]
    if miss:
        raise ScaleupDataError(
            f"table 'fidelity': missing column(s) {miss}; it needs {site!r}, {period!r} and the fidelity "
            f"column {value!r} (e.g. from sa.fidelity_index(...))."
        )
    f = pd.DataFrame({"site_id": fidelity[site].astype(str).to_numpy(),
                      "period": pd.to_numeric(fidelity[period]).astype(np.int64).to_numpy(),
                      "fidelity": pd.to_numeric(fidelity[value], errors="coerce").to_numpy(dtype=float)})
    if f.duplicated(["site_id", "period"]).any():
        raise ScaleupDataError("table 'fidelity': several rows for one site and period; give one value per site-period.")
    return f


def _effect_modifier_terms(p: pd.DataFrame, sites, effect_modifiers) -> list[str]:
    """Add the treatment x modifier columns to the panel (numeric modifiers centred over the treated
    site-periods, others dummy-coded) and return their names."""
    if sites is None:
        raise ScaleupDataError("argument 'effect_modifiers' needs the 'sites' table (the modifiers are its columns).")
    miss = [c for c in effect_modifiers if c not in sites.columns]
    if miss:
        raise ScaleupDataError(f"table 'sites': no column(s) {miss} (argument 'effect_modifiers').")
    sidx = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
    Dv = p["D"].to_numpy(dtype=float)
    mod_terms = []
    for j, c in enumerate(effect_modifiers):
        v = p["site_id"].map(sidx[c])
        if pd.api.types.is_numeric_dtype(sidx[c]) and not pd.api.types.is_bool_dtype(sidx[c]):
            v = pd.to_numeric(v, errors="coerce").astype(float)
            p[f"mod_{j}"] = np.where(Dv == 1, v - v[Dv == 1].mean(), 0.0)
            mod_terms.append(f"mod_{j}")
        else:
            levels = sorted(v[Dv == 1].astype(str).unique())
            for k, lv in enumerate(levels[1:]):
                p[f"mod_{j}_{k}"] = ((v.astype(str) == lv).to_numpy() & (Dv == 1)).astype(float)
                mod_terms.append(f"mod_{j}_{k}")
    if p[mod_terms].isna().any().any():
        raise ScaleupDataError(f"table 'sites': missing values in the effect modifiers {list(effect_modifiers)}.")
    return mod_terms


def _net_outcome(p, fe, m, terms, mod_terms, inference) -> np.ndarray:
    """The outcome net of period, exposure and adaptation effects (for the plot)."""
    if inference == "mixed":
        pe = m.fixed["estimate"]
        alpha = p["period"].map(lambda t: pe.get(f"C(period)[T.{t}]", 0.0)).to_numpy(dtype=float)
        eta = sum(pe[t] * p[t].to_numpy() for t in terms[:-1] if t not in mod_terms)
    else:
        alpha = p["period"].map(m["period_effects"]).to_numpy(dtype=float)
        eta = sum(fe.loc[t, "estimate"] * p[t].to_numpy() for t in terms[:-1] if t not in mod_terms)
    return p["y"].to_numpy() - alpha - eta


@checked_inputs
def fidelity_dose_response(
    data: pd.DataFrame,
    fidelity: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    *,
    value: str = "fidelity_index",
    indicator: str | None,
    outcome: str = "y",
    site: str = "site_id",
    period: str = "period",
    treatment: str | None = "treated",
    fidelity_level: str = "site-period",
    reference: float | None = None,
    adoption_effects: str = "exposure",
    min_exposure: int = 0,
    effect_modifiers: Sequence[str] = (),
    adaptations: pd.DataFrame | None = None,
    inference: str = "mixed",
    level: float = 0.95,
) -> DoseResponse:
    """Dose-response of the innovation's effect on implementation fidelity.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``outcomes`` table (rows of ``indicator``) or patient-level rows (column ``outcome``),
        as in :func:`adaptation_effects`; untreated site-periods anchor each site's own baseline.
    fidelity : pandas.DataFrame
        One row per treated site and period with ``site_id``, ``period`` and the ``value`` column
        (e.g. the output of :func:`fidelity_index`).
    sites : pandas.DataFrame, optional
        The ``sites`` table (``adoption_period``); see :func:`adaptation_effects`.
    value : str, default "fidelity_index"
        Column of ``fidelity`` holding the fidelity measure (e.g. ``"adherence"``).
    indicator, outcome, site, period, treatment : str
        As in :func:`adaptation_effects` (``indicator`` is required: ``None`` for patient-level
        ``data``).
    fidelity_level : {"site-period", "site"}
        Use each site-period's fidelity, or each site's mean over its treated periods (less
        measurement error, between-site comparison only).
    reference : float, optional
        Centring value of fidelity (default: its mean over the treated site-periods used).
    adoption_effects : {"exposure", "treatment"}
    min_exposure : int, default 0
        Leave out treated site-periods with fewer periods since adoption (ramp-up).
    effect_modifiers : sequence of str, optional
        Columns of ``sites`` whose interaction with the treatment indicator enters the model (the
        effect may differ by them, e.g. ``["phase", "deprivation_quintile"]`` for the voltage drop
        and the equity gradient): numeric columns centred, others dummy-coded. Known modifiers that
        are correlated with fidelity would otherwise confound the dose-response slope.
    adaptations : pandas.DataFrame, optional
        FRAME-coded adaptations: their cumulative counts by fidelity relation (as in
        :func:`adaptation_effects`) enter as covariates, removing the part of the effect that
        adaptations change over time.
    inference : {"mixed", "cluster"}
        ``"mixed"``: site random intercept and random treatment slope (``(1 + D | site)``), REML,
        Satterthwaite df; ``"cluster"``: site and period fixed effects, CR1 cluster-robust SE by site.
    level : float

    Returns
    -------
    DoseResponse

    Notes
    -----
    Model (site :math:`s`, period :math:`t`, treatment :math:`D_{st}`, fidelity :math:`F_{st}`):

    .. math:: y_{st} = \\alpha_t + u_s + D_{st}\\,\\eta_{e_{st}} + \\kappa\\, D_{st}(F_{st} - F_{ref})
              + D_{st} b_s + \\varepsilon_{st}

    (:math:`b_s` random treatment slope in mixed models only). :math:`\\kappa` is the dose-response
    slope: how much larger the effect is where fidelity is higher. It compares sites (and periods)
    that were not randomised to their fidelity; fidelity measured with error (few rated sessions)
    attenuates :math:`\\kappa` towards 0 by the reliability of the fidelity measure.

    References
    ----------
    Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J., & Balain, S. (2007). A conceptual
    framework for implementation fidelity. Implementation Science, 2, 40.

    Durlak, J. A., & DuPre, E. P. (2008). Implementation matters. American Journal of Community
    Psychology, 41, 327-350.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=5, n_sites=60, n_periods=10, patients_per_site_period=10)
    >>> t = sim.tables
    >>> fid = sa.fidelity_index(t["fidelity_ratings"], t["components"])
    >>> res = sa.fidelity_dose_response(t["outcomes"], fid, t["sites"], value="adherence",
    ...                                indicator="HO_Y")
    >>> res.coef.index.tolist()
    ['fidelity']
    """
    check_options(inference, adoption_effects, level)
    if fidelity_level not in ("site-period", "site"):
        raise ScaleupDataError(f"argument 'fidelity_level' = {fidelity_level!r}: choose 'site-period' or 'site'.")
    f = _fidelity_values(fidelity, site, period, value)
    check_min_exposure(min_exposure)
    p = site_period_panel(data, sites, indicator, outcome, site, period, treatment, fn="fidelity_dose_response")
    p = drop_ramp_up(p, min_exposure)
    p = p.merge(f, on=["site_id", "period"], how="left")
    p.loc[p["D"] == 0, "fidelity"] = np.nan
    if fidelity_level == "site":
        p["fidelity"] = p.groupby("site_id")["fidelity"].transform("mean").where(p["D"] == 1)
    drop = (p["D"] == 1) & p["fidelity"].isna()
    if drop.any():
        warnings.warn(
            f"fidelity_dose_response: {int(drop.sum())} treated site-period(s) without a fidelity value "
            f"were left out (e.g. site {p.loc[drop, 'site_id'].iloc[0]!r}, period {int(p.loc[drop, 'period'].iloc[0])}).",
            RowsOmittedWarning, stacklevel=2)
        p = p[~drop].reset_index(drop=True)
    treated_rows = p["D"] == 1
    if treated_rows.sum() < 3 or p.loc[treated_rows, "fidelity"].nunique() < 2:
        raise ScaleupDataError("table 'fidelity': fewer than 3 treated site-periods with distinct fidelity values.")
    ref = float(p.loc[treated_rows, "fidelity"].mean()) if reference is None else float(reference)
    p["fid_c"] = np.where(treated_rows, p["fidelity"] - ref, 0.0)
    mod_terms = _effect_modifier_terms(p, sites, effect_modifiers) if effect_modifiers else []
    count_terms = []
    if adaptations is not None:
        ad = validate_adaptations(adaptations)
        p = cumulative_counts(p, ad)
        count_terms = [c for _, c in REL_COLS if p[c].any()]
    terms = adoption_terms(p, adoption_effects) + mod_terms + count_terms + ["fid_c"]
    fe, m = fit_panel_model(p, terms, inference, level, inference == "mixed")
    r = fe.loc["fid_c"]
    coef = fe.loc[["fid_c"]].rename(index={"fid_c": "fidelity"})
    coef.index.name = "term"
    p["y_net"] = _net_outcome(p, fe, m, terms, mod_terms, inference)
    keep = ["site_id", "period", "y", "D", "adopt", "exposure", "fidelity", "y_net"]
    return DoseResponse(
        slope=float(r["estimate"]), se=float(r["se"]), ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]),
        pvalue=float(r["pvalue"]), df=float(r["df"]), coef=coef, reference=ref,
        n_sites=int(p.loc[treated_rows, "site_id"].nunique()), n_obs=len(p), fidelity_level=fidelity_level,
        inference=inference, level=level, model=m, panel=p[keep].rename(columns=PANEL_NAMES),
    )
