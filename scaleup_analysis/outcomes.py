r"""Scale-up outcomes: RE-AIM and Proctor implementation outcomes, and the voltage drop.

* :func:`reaim` -- Reach, Effectiveness, Adoption, Implementation and Maintenance (Glasgow, Vogt &
  Boles, 1999) per region and overall, with Proctor et al.'s (2011) implementation outcomes
  (penetration, acceptability, appropriateness, feasibility from the AIM/IAM/FIM scales of Weiner et
  al., 2017, and implementation cost), from the ``sites`` and ``delivery`` tables (and optional
  individual-level, fidelity, effectiveness and survey tables). Small cells are suppressed.
* :func:`voltage_drop` -- the ratio (and difference) of the scaled-up effect to the pilot effect
  (Chambers, Glasgow & Stange, 2013), with Fieller and delta-method confidence intervals, from two
  estimates or from site/study-level effect sizes by phase (subgroup meta-regression with
  :func:`scaleup_analysis.meta_regression`), plus a seeded bootstrap.

References
----------
Glasgow, R. E., Vogt, T. M., & Boles, S. M. (1999). Evaluating the public health impact of health
promotion interventions: the RE-AIM framework. American Journal of Public Health, 89(9), 1322-1327.

Proctor, E., Silmere, H., Raghavan, R., et al. (2011). Outcomes for implementation research.
Administration and Policy in Mental Health, 38(2), 65-76.

Weiner, B. J., Lewis, C. C., Stanick, C., et al. (2017). Psychometric assessment of three newly
developed implementation outcome measures. Implementation Science, 12, 108.

Chambers, D. A., Glasgow, R. E., & Stange, K. C. (2013). The dynamic sustainability framework.
Implementation Science, 8, 117.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_level, fail_rows, numeric_column, require_columns
from .errors import RowsOmittedWarning, ScaleupDataError

__all__ = ["reaim", "voltage_drop", "site_effects", "ReaimResult", "VoltageDropResult", "wilson_ci"]

OVERALL = "all"
_SCALES = {"AIM": "acceptability", "IAM": "appropriateness", "FIM": "feasibility"}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _num(df: pd.DataFrame, table: str, col: str, *, missing_ok: bool = False) -> np.ndarray:
    return numeric_column(df, col, f"table '{table}'", missing=missing_ok, infinite=True)


def _z(level: float) -> float:
    return float(stats.norm.isf((1 - check_level(level)) / 2))


def wilson_ci(x, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r"""Wilson score interval for a binomial proportion ``x / n`` (vectorised; NaN where ``n = 0``).

    .. math:: \frac{x + z^2/2}{n + z^2} \pm \frac{z\sqrt{n}}{n + z^2}
              \sqrt{\hat p (1 - \hat p) + \frac{z^2}{4n}}

    (Wilson, 1927; Newcombe, 1998, method 3; R's ``prop.test(x, n, correct = FALSE)``).

    Examples
    --------
    >>> from scaleup_analysis.outcomes import wilson_ci
    >>> lo, hi = wilson_ci(81, 263)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.2553, 0.3662)
    """
    z = _z(level)
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (x + z * z / 2) / (n + z * z)
        half = z * np.sqrt(n) / (n + z * z) * np.sqrt(p * (1 - p) + z * z / (4 * n))
    bad = ~(n > 0)
    lo = np.where(bad, np.nan, np.maximum(0.0, centre - half))
    hi = np.where(bad, np.nan, np.minimum(1.0, centre + half))
    return lo, hi


def _std_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Standardized difference of group a vs group b (Austin, 2009): binary or continuous."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 1 or b.size < 1:
        return math.nan
    binary = np.isin(np.concatenate([a, b]), (0.0, 1.0)).all()
    if binary:
        pa, pb = a.mean(), b.mean()
        den = math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
        return (pa - pb) / den if den > 0 else math.nan
    if a.size < 2 or b.size < 2:
        return math.nan
    den = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return (a.mean() - b.mean()) / den if den > 0 else math.nan


# --------------------------------------------------------------------------------------------------
# RE-AIM
# --------------------------------------------------------------------------------------------------
_COLUMNS = ["framework", "dimension", "measure", "region", "estimate", "ci_low", "ci_high", "numerator",
            "denominator", "measurement_unit", "n_excluded", "suppressed"]


@dataclass(frozen=True, eq=False)
class ReaimResult:
    """Result of :func:`reaim`.

    Attributes
    ----------
    table : pandas.DataFrame
        The full (unsuppressed) tidy table: ``framework`` (``RE-AIM``/``Proctor``), ``dimension``,
        ``measure``, ``region`` (``"all"`` = every site), ``estimate``, ``ci_low``, ``ci_high``,
        ``numerator``, ``denominator``, ``measurement_unit`` (``individuals``, ``settings`` or ``CAD``),
        ``n_excluded`` (sites not yet evaluable for maintenance; respondents with too few items for
        the AIM/IAM/FIM scales) and ``suppressed``.
    scale_scores : pandas.DataFrame or None
        One row per respondent and scale: items answered, ``n_missing_items`` and the scale score
        (NaN when fewer than ``min_items`` items were answered).
    periods : tuple of int
        The analysis window of the period-based measures.
    threshold : int
        Smallest publishable count (cells with fewer individuals are ``suppressed``).
    level : float
    """

    table: pd.DataFrame = field(repr=False)
    scale_scores: pd.DataFrame | None = field(repr=False)
    periods: tuple
    threshold: int
    level: float

    def to_frame(self, suppress: bool = True) -> pd.DataFrame:
        """Tidy table; with ``suppress=True`` (default) suppressed cells have their estimate, CI and
        numerator set to NaN (small-cell privacy rule)."""
        t = self.table.copy()
        if suppress:
            t.loc[t["suppressed"], ["estimate", "ci_low", "ci_high", "numerator"]] = np.nan
        return t

    @property
    def measures(self) -> list:
        """Measures present, in table order."""
        return list(dict.fromkeys(self.table["measure"]))

    def summary(self, suppress: bool = True) -> str:
        """Measures x regions table of the estimates (suppressed cells shown as ``<n``)."""
        t = self.to_frame(suppress=suppress)
        txt = t["estimate"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
        txt = txt.where(~(t["suppressed"] & suppress), f"<{self.threshold}")
        tab = t.assign(txt=txt).pivot(index="measure", columns="region", values="txt").reindex(self.measures)
        cols = [c for c in tab.columns if c != OVERALL] + ([OVERALL] if OVERALL in tab.columns else [])
        head = (f"RE-AIM and implementation outcomes (periods {self.periods[0]}-{self.periods[-1]}; "
                f"cells with fewer than {self.threshold} individuals suppressed)")
        return head + "\n" + tab[cols].fillna("").to_string()

    def plot_measure(self, measure: str, *, suppress: bool = True, ax=None):
        """Estimates with CIs of one measure, regions on the vertical axis; returns the Axes."""
        import matplotlib.pyplot as plt

        t = self.to_frame(suppress=suppress)
        d = t[t["measure"] == measure]
        if d.empty:
            raise ScaleupDataError(f"plot_measure(): unknown measure {measure!r}; available: {self.measures}.")
        if ax is None:
            _, ax = plt.subplots(figsize=(4, 0.25 * len(d) + 1.5))
        d = d.sort_values("region", key=lambda s: s.map(lambda r: (r == OVERALL, str(r))))
        y = np.arange(len(d))[::-1]
        ax.hlines(y, d["ci_low"], d["ci_high"], color="0.3", lw=1)
        mk = np.where(d["region"] == OVERALL, "D", "o")
        for yy, x, m in zip(y, d["estimate"], mk):
            ax.plot(x, yy, marker=m, color="black", ms=4, linestyle="none")
        for yy, s in zip(y, d["suppressed"].to_numpy()):
            if s and suppress:
                ax.text(0.0, yy, f" suppressed (<{self.threshold})", va="center", fontsize=6,
                        transform=ax.get_yaxis_transform())
        ax.set_yticks(y)
        ax.set_yticklabels(d["region"].astype(str))
        unit = d["measurement_unit"].iloc[0]
        ax.set_xlabel({"individuals": "proportion / score", "settings": "proportion of settings"}.get(unit, unit))
        ax.set_title(measure, fontsize=9)
        return ax

    def plot(self, measures: Sequence[str] | None = None, fig=None, ncols: int = 4, suppress: bool = True):
        """One panel per measure (regions on the vertical axis); returns the Figure."""
        import matplotlib.pyplot as plt

        measures = list(measures) if measures is not None else self.measures
        n = len(measures)
        ncols = max(1, min(ncols, n))
        nrows = math.ceil(n / ncols)
        n_reg = self.table["region"].nunique()
        if fig is None:
            fig = plt.figure(figsize=(3.2 * ncols, (0.22 * n_reg + 1.2) * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, m in enumerate(measures):
            self.plot_measure(m, ax=axes[k // ncols][k % ncols], suppress=suppress)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.suptitle("RE-AIM and implementation outcomes by region")
        fig.tight_layout()
        return fig


def _row(framework, dimension, measure, region, est, lo, hi, num, den, unit, n_excl=np.nan):
    return dict(framework=framework, dimension=dimension, measure=measure, region=region,
                estimate=float(est), ci_low=float(lo), ci_high=float(hi), numerator=float(num),
                denominator=float(den), measurement_unit=unit, n_excluded=float(n_excl))


def _prop_rows(framework, dimension, measure, num: pd.Series, den: pd.Series, unit, level, n_excl=None):
    lo, hi = wilson_ci(num.to_numpy(float), den.to_numpy(float), level)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = num.to_numpy(float) / den.to_numpy(float)
    out = []
    for i, r in enumerate(num.index):
        ne = np.nan if n_excl is None else n_excl.get(r, 0)
        out.append(_row(framework, dimension, measure, r, est[i], lo[i], hi[i], num.iloc[i], den.iloc[i], unit, ne))
    return out


def _with_all(s: pd.Series) -> pd.Series:
    """Append the overall total (index 'all') to a per-region sum."""
    return pd.concat([s, pd.Series([s.sum()], index=[OVERALL])])


def _mean_ci_rows(framework, dimension, measure, values: pd.Series, groups: pd.Series, unit, level, n_excl=None):
    """Mean with a t interval of ``values`` per group and overall."""
    out = []
    frame = pd.DataFrame({"v": values.to_numpy(float), "g": groups.to_numpy()})
    parts = [(g, d["v"].to_numpy()) for g, d in frame.groupby("g", sort=True)] + [(OVERALL, frame["v"].to_numpy())]
    for g, v in parts:
        v = v[np.isfinite(v)]
        k = v.size
        m = v.mean() if k else np.nan
        if k >= 2:
            half = stats.t.isf((1 - level) / 2, k - 1) * v.std(ddof=1) / math.sqrt(k)
        else:
            half = np.nan
        ne = np.nan if n_excl is None else n_excl.get(g, 0)
        out.append(_row(framework, dimension, measure, g, m, m - half, m + half, np.nan, k, unit, ne))
    return out


def reaim(
    tables: Mapping[str, pd.DataFrame],
    *,
    region: str = "rss_code",
    periods: Iterable[int] | None = None,
    people: pd.DataFrame | None = None,
    participated: str = "participated",
    characteristics: Sequence[str] | None = None,
    effectiveness: pd.DataFrame | None = None,
    fidelity: pd.DataFrame | None = None,
    periods_per_year: int = 4,
    support_periods: int = 4,
    individual_maintenance: pd.DataFrame | None = None,
    scales: pd.DataFrame | None = None,
    respondent: str = "respondent_id",
    scale: str = "scale",
    item: str = "item",
    score: str = "score",
    min_items: int = 4,
    threshold: int = 5,
    level: float = 0.95,
    site: str = "site_id",
    period: str = "period",
) -> ReaimResult:
    r"""RE-AIM dimensions and Proctor's implementation outcomes, per region and overall.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Needs ``sites`` (``site_id``, the ``region`` column, ``adoption_period``) and ``delivery``
        (``site_id``, ``period``, ``sessions_delivered``, ``eligible``, ``reached``,
        ``staff_eligible``, ``staff_trained``, ``cost``), see ``docs/data_dictionary.md``.
    region : str, default "rss_code"
        Column of ``sites`` with the region.
    periods : iterable of int, optional
        Analysis window of reach, adoption (staff), penetration and cost. Default: from the first
        period in which any site adopts to the last period of ``delivery``.
    people : pandas.DataFrame, optional
        Individual-level table of eligible people: ``site_id``, a 0/1 ``participated`` column and the
        ``characteristics`` columns; gives the representativeness of participants.
    participated : str, default "participated"
    characteristics : list of str, optional
        Columns of ``people`` compared between participants and all eligible people (0/1 columns are
        treated as binary).
    effectiveness : pandas.DataFrame, optional
        Effect per region (column ``region``; an ``"all"`` row for the overall effect) with
        ``estimate`` and either ``ci_low``/``ci_high`` or ``se`` (Wald interval), e.g. the
        ``to_frame()`` of a model result.
    fidelity : pandas.DataFrame, optional
        Site x period fidelity, e.g. :func:`scaleup_analysis.fidelity_index` (columns ``site_id``,
        ``period``, ``fidelity_index``).
    periods_per_year : int, default 4
        Periods per year (4 = quarters), to express the 6- and 12-month maintenance horizons.
    support_periods : int, default 4
        Periods of initial implementation support after adoption (the adoption period included).
    individual_maintenance : pandas.DataFrame, optional
        ``site_id``, ``assessed`` and ``maintained`` counts of individuals followed up (e.g. still
        showing the behaviour or benefit at 6 months or more).
    scales : pandas.DataFrame, optional
        AIM/IAM/FIM responses in long format: ``respondent_id``, ``site_id``, ``scale`` (``AIM``,
        ``IAM``, ``FIM``), ``item`` (four items per scale) and ``score`` (1-5, missing allowed).
    respondent, scale, item, score : str
        Column names of ``scales``.
    min_items : int, default 4
        Items needed for a scale score (Weiner et al., 2017: the mean of the four items); respondents
        with fewer answered items are excluded and counted in ``n_excluded``.
    threshold : int, default 5
        Cells with fewer individuals than this are flagged ``suppressed`` (and blanked by
        ``to_frame(suppress=True)``).
    level : float, default 0.95
    site, period : str
        Column names shared by the tables.

    Returns
    -------
    ReaimResult

    Notes
    -----
    Counts are summed over the site-periods of the window (person-periods: someone eligible in two
    periods counts twice, as the ``delivery`` table counts them).

    * **Reach** = reached / eligible over *all* sites of the region (adopting or not). Wilson score
      interval (Wilson, 1927). **Representativeness**: standardized difference of participants vs
      all eligible people, :math:`d = (\bar x_p - \bar x_e)/\sqrt{(s_p^2 + s_e^2)/2}`, or with
      proportions :math:`s^2 = p(1-p)` for 0/1 characteristics (Austin, 2009); no CI; suppressed when
      fewer than ``threshold`` participants or eligible people.
    * **Effectiveness** is taken from ``effectiveness``.
    * **Adoption**: settings with an ``adoption_period`` within the panel / all settings; staff
      trained / staff eligible over the site-periods of adopting sites from adoption on.
    * **Implementation**: fidelity = mean over sites of each site's mean ``fidelity_index`` in the
      window, t interval across sites; cost per participant = total cost / reached.
    * **Maintenance** (setting level): for a site adopting at :math:`A`, initial support ends at
      :math:`E = A + \text{support\_periods} - 1`; the site is maintained at horizon :math:`h` months
      if it delivers sessions (``sessions_delivered > 0``) in period
      :math:`E + \lceil h \cdot \text{periods\_per\_year} / 12 \rceil`; sites whose horizon lies
      beyond the data are excluded (``n_excluded``). Individual level: maintained / assessed.
    * **Proctor**: penetration = reached / eligible over the site-periods of adopting sites from
      adoption on (integration within the settings that deliver); acceptability, appropriateness
      and feasibility = mean of the AIM, IAM, FIM scale scores (mean of the four 1-5 items; Weiner
      et al., 2017) with a t interval; implementation cost = total cost in the window.

    Proportions with ``denominator < threshold`` individuals (and means over fewer
    respondents) are flagged ``suppressed``; setting-level proportions and costs are not
    individual-level and are never suppressed.

    References
    ----------
    Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline covariates
    between treatment groups. Statistics in Medicine, 28(25), 3083-3107.

    Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion. Statistics in
    Medicine, 17(8), 857-872.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> res = sa.reaim(sim.tables)
    >>> res.measures[:4]
    ['reach', 'adoption_settings', 'adoption_staff', 'implementation_cost_per_participant']
    >>> t = res.to_frame()
    >>> t[(t["measure"] == "reach") & (t["region"] == "all")][["estimate", "ci_low", "ci_high"]].round(3)
        estimate  ci_low  ci_high
    18     0.239   0.236    0.242
    """
    z = _z(level)
    if not isinstance(tables, Mapping) or "sites" not in tables or "delivery" not in tables:
        raise ScaleupDataError("argument 'tables': give a dict with at least the 'sites' and 'delivery' tables.")
    for arg, v in (("periods_per_year", periods_per_year), ("support_periods", support_periods),
                   ("min_items", min_items), ("threshold", threshold)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if arg == "threshold" else 1):
            raise ScaleupDataError(f"argument '{arg}': a positive integer, not {v!r}.")
    if min_items > 4:
        raise ScaleupDataError("argument 'min_items': the AIM/IAM/FIM scales have 4 items; use 1-4.")
    sites, dv = tables["sites"], tables["delivery"]
    require_columns(sites, "sites", [site, region, "adoption_period"])
    dcols = ["sessions_delivered", "eligible", "reached", "staff_eligible", "staff_trained", "cost"]
    require_columns(dv, "delivery", [site, period, *dcols])
    s = sites[[site, region, "adoption_period"]].copy()
    fail_rows("sites", site, "are duplicated", s, s[site].duplicated(keep=False), "Keep one row per site.")
    s["adopt"] = _num(s, "sites", "adoption_period", missing_ok=True)
    d = dv[[site, period, *dcols]].copy()
    for c in [period, *dcols]:
        d[c] = _num(d, "delivery", c)
        fail_rows("delivery", c, "are negative", d, d[c] < 0, "Counts and costs must be >= 0.")
    fail_rows("delivery", "reached", "exceed eligible", d, d["reached"] > d["eligible"],
              "Use 0 <= reached <= eligible.")
    fail_rows("delivery", "staff_trained", "exceed staff_eligible", d, d["staff_trained"] > d["staff_eligible"],
              "Use 0 <= staff_trained <= staff_eligible.")
    fail_rows("delivery", site, "are not in table 'sites'", d, ~d[site].isin(s[site]), "Add the sites or fix site_id.")
    fail_rows("delivery", site, "are duplicated (site, period) pairs", d, d.duplicated([site, period], keep=False),
              "Keep one row per site and period.")
    d = d.merge(s, on=site, how="left")
    T = int(d[period].max())
    if periods is None:
        first = s["adopt"].min()
        start = int(first) if np.isfinite(first) else int(d[period].min())
        win = list(range(start, T + 1))
    else:
        try:
            win = sorted({int(p) for p in periods})
        except (TypeError, ValueError):
            raise ScaleupDataError(f"argument 'periods': integers, e.g. range(5, 13), not {periods!r}.") from None
        if not win:
            raise ScaleupDataError("argument 'periods': give at least one period.")
    w = d[d[period].isin(win)]
    delivering = w[np.isfinite(w["adopt"]) & (w[period] >= w["adopt"])]
    regions = sorted(s[region].dropna().unique(), key=str)
    rows: list[dict] = []

    def by_region(frame, col):
        return _with_all(frame.groupby(region)[col].sum().reindex(regions, fill_value=0.0))

    # ---- Reach
    rows += _prop_rows("RE-AIM", "reach", "reach", by_region(w, "reached"), by_region(w, "eligible"),
                       "individuals", level)
    # ---- Representativeness
    if people is not None:
        chars = list(characteristics or [])
        if not chars:
            raise ScaleupDataError("argument 'characteristics': name the columns of 'people' to compare.")
        require_columns(people, "people", [site, participated, *chars])
        pp = people[[site, participated, *chars]].copy()
        part = _num(pp, "people", participated)
        fail_rows("people", participated, "are not 0/1", pp, ~np.isin(part, (0.0, 1.0)), "Code participation as 0/1.")
        pp[participated] = part
        fail_rows("people", site, "are not in table 'sites'", pp, ~pp[site].isin(s[site]), "Fix site_id.")
        for c in chars:
            pp[c] = _num(pp, "people", c, missing_ok=True)
        pp = pp.merge(s[[site, region]], on=site, how="left")
        groups = [(r, pp[pp[region] == r]) for r in regions] + [(OVERALL, pp)]
        for c in chars:
            for r, g in groups:
                x = g[c].to_numpy(float)
                isp = g[participated].to_numpy() == 1
                rows.append(_row("RE-AIM", "reach", f"representativeness[{c}]", r, _std_diff(x[isp], x),
                                 np.nan, np.nan, int(isp.sum()), len(g), "individuals"))
    # ---- Effectiveness
    if effectiveness is not None:
        require_columns(effectiveness, "effectiveness", [region, "estimate"])
        e = effectiveness.copy()
        est = _num(e, "effectiveness", "estimate")
        if {"ci_low", "ci_high"} <= set(e.columns):
            lo, hi = _num(e, "effectiveness", "ci_low"), _num(e, "effectiveness", "ci_high")
        elif "se" in e.columns:
            se = _num(e, "effectiveness", "se")
            lo, hi = est - z * se, est + z * se
        else:
            raise ScaleupDataError("table 'effectiveness': give 'ci_low' and 'ci_high', or 'se'.")
        for r, a, b, c in zip(e[region], est, lo, hi):
            rows.append(_row("RE-AIM", "effectiveness", "effectiveness", r, a, b, c, np.nan, np.nan, "effect"))
    # ---- Adoption
    adopted = s.assign(a=(np.isfinite(s["adopt"]) & (s["adopt"] <= T)).astype(float), one=1.0)
    rows += _prop_rows("RE-AIM", "adoption", "adoption_settings", by_region(adopted, "a"), by_region(adopted, "one"),
                       "settings", level)
    rows += _prop_rows("RE-AIM", "adoption", "adoption_staff", by_region(delivering, "staff_trained"),
                       by_region(delivering, "staff_eligible"), "individuals", level)
    # ---- Implementation
    if fidelity is not None:
        require_columns(fidelity, "fidelity", [site, period, "fidelity_index"])
        f = fidelity[[site, period, "fidelity_index"]].copy()
        f["fidelity_index"] = _num(f, "fidelity", "fidelity_index", missing_ok=True)
        f[period] = _num(f, "fidelity", period)
        fail_rows("fidelity", site, "are not in table 'sites'", f, ~f[site].isin(s[site]), "Fix site_id.")
        f = f[f[period].isin(win)].groupby(site)["fidelity_index"].mean().dropna().rename("fi").reset_index()
        f = f.merge(s[[site, region]], on=site, how="left")
        rows += _mean_ci_rows("RE-AIM", "implementation", "implementation_fidelity", f["fi"], f[region],
                              "settings", level)
    cost, reached = by_region(w, "cost"), by_region(w, "reached")
    for r in cost.index:
        with np.errstate(invalid="ignore", divide="ignore"):
            cpp = cost[r] / reached[r] if reached[r] > 0 else np.nan
        rows.append(_row("RE-AIM", "implementation", "implementation_cost_per_participant", r, cpp, np.nan,
                         np.nan, cost[r], reached[r], "CAD"))
    # ---- Maintenance (settings)
    ad = s[np.isfinite(s["adopt"])].copy()
    ad["end"] = ad["adopt"] + support_periods - 1
    active = d.assign(active=d["sessions_delivered"] > 0).set_index([site, period])["active"]
    for months in (6, 12):
        h = math.ceil(months * periods_per_year / 12)
        target = ad["end"] + h
        evaluable = target <= T
        keys = list(zip(ad[site], target.astype(int)))
        maintained = np.array([bool(active.get(k, False)) for k in keys], dtype=float)
        m = ad.assign(ev=evaluable.astype(float), mt=maintained * evaluable)
        excl = _with_all(m.groupby(region)["ev"].apply(lambda x: float((x == 0).sum())).reindex(regions, fill_value=0))
        rows += _prop_rows("RE-AIM", "maintenance", f"maintenance_{months}m", by_region(m, "mt"), by_region(m, "ev"),
                           "settings", level, n_excl=excl.to_dict())
    if individual_maintenance is not None:
        require_columns(individual_maintenance, "individual_maintenance", [site, "assessed", "maintained"])
        im = individual_maintenance[[site, "assessed", "maintained"]].copy()
        for c in ("assessed", "maintained"):
            im[c] = _num(im, "individual_maintenance", c)
            fail_rows("individual_maintenance", c, "are negative", im, im[c] < 0, "Counts must be >= 0.")
        fail_rows("individual_maintenance", "maintained", "exceed assessed", im, im["maintained"] > im["assessed"],
                  "Use 0 <= maintained <= assessed.")
        fail_rows("individual_maintenance", site, "are not in table 'sites'", im, ~im[site].isin(s[site]),
                  "Fix site_id.")
        im = im.merge(s[[site, region]], on=site, how="left")
        rows += _prop_rows("RE-AIM", "maintenance", "maintenance_individual", by_region(im, "maintained"),
                           by_region(im, "assessed"), "individuals", level)
    # ---- Proctor
    rows += _prop_rows("Proctor", "penetration", "penetration", by_region(delivering, "reached"),
                       by_region(delivering, "eligible"), "individuals", level)
    scores = None
    if scales is not None:
        scores = _scale_scores(scales, s, site, region, respondent, scale, item, score, min_items)
        for sc_name, outcome in _SCALES.items():
            ss = scores[scores[scale] == sc_name]
            if ss.empty:
                continue
            excl = ss[~np.isfinite(ss["scale_score"])].groupby(region).size()
            excl = {**excl.to_dict(), OVERALL: int((~np.isfinite(ss["scale_score"])).sum())}
            rows += _mean_ci_rows("Proctor", outcome, outcome, ss["scale_score"], ss[region], "individuals", level,
                                  n_excl=excl)
    for r in cost.index:
        rows.append(_row("Proctor", "implementation_cost", "implementation_cost", r, cost[r], np.nan, np.nan,
                         cost[r], np.nan, "CAD"))
    table = pd.DataFrame(rows)
    table["region"] = table["region"].astype(object)
    indiv = table["measurement_unit"] == "individuals"
    small = table["denominator"] < threshold
    rep = table["measure"].str.startswith("representativeness")
    small = small | (rep & (table["numerator"] < threshold))
    table["suppressed"] = (indiv & small).to_numpy()
    return ReaimResult(table=table[_COLUMNS], scale_scores=scores, periods=tuple(win),
                       threshold=int(threshold), level=float(level))


def _scale_scores(scales, s, site, region, respondent, scale, item, score, min_items) -> pd.DataFrame:
    t = "scales"
    require_columns(scales, t, [respondent, site, scale, item, score])
    sc = scales[[respondent, site, scale, item, score]].copy()
    sc[score] = _num(sc, t, score, missing_ok=True)
    v = sc[score].to_numpy()
    fail_rows(t, score, "are outside 1-5", sc, np.isfinite(v) & ((v < 1) | (v > 5)),
              "AIM/IAM/FIM items are scored 1-5.")
    fail_rows(t, scale, "are not 'AIM', 'IAM' or 'FIM'", sc, ~sc[scale].isin(list(_SCALES)),
              "Name the scales AIM (acceptability), IAM (appropriateness), FIM (feasibility).")
    fail_rows(t, site, "are not in table 'sites'", sc, ~sc[site].isin(s[site]), "Fix site_id.")
    fail_rows(t, item, "are duplicated (respondent, scale, item) triples", sc,
              sc.duplicated([respondent, scale, item], keep=False), "Keep one answer per item.")
    n_items = sc.groupby([respondent, scale])[item].nunique()
    too_many = n_items[n_items > 4]
    if len(too_many):
        raise ScaleupDataError(
            f"table 'scales', column '{item}': {len(too_many)} respondent-scale pair(s) have more than 4 items "
            f"(first: {list(too_many.index[:3])}). AIM, IAM and FIM have four items each."
        )
    multi = sc.groupby([respondent, scale])[site].nunique()
    if (multi > 1).any():
        raise ScaleupDataError(
            f"table 'scales', column '{site}': {int((multi > 1).sum())} respondent-scale pair(s) have several "
            "sites; give each respondent one site."
        )
    g = sc.groupby([respondent, scale], sort=True)
    out = pd.DataFrame({
        site: g[site].first(),
        "n_items_answered": g[score].count(),
        "score_mean": g[score].mean(),
    }).reset_index()  # fmt: skip
    out["n_missing_items"] = 4 - out["n_items_answered"]
    out["scale_score"] = np.where(out["n_items_answered"] >= min_items, out["score_mean"], np.nan)
    out = out.drop(columns="score_mean").merge(s[[site, region]], on=site, how="left")
    return out


# --------------------------------------------------------------------------------------------------
# voltage drop
# --------------------------------------------------------------------------------------------------
def _fieller(a: float, s: float, va: float, vs: float, cas: float, crit: float) -> tuple:
    r"""Fieller confidence set of :math:`\rho = s / a`: ``(type, low, high, root1, root2)``.

    The set is :math:`\{\rho : A\rho^2 - 2B\rho + C \le 0\}` with :math:`A = a^2 - c^2 V_a`,
    :math:`B = a s - c^2 C_{as}`, :math:`C = s^2 - c^2 V_s`.
    """
    A = a * a - crit * crit * va
    B = a * s - crit * crit * cas
    C = s * s - crit * crit * vs
    disc = B * B - A * C
    if A > 0:  # the pilot effect is significantly different from 0: a bounded interval (disc >= 0 then)
        r = math.sqrt(max(disc, 0.0))
        lo, hi = (B - r) / A, (B + r) / A
        return "bounded", lo, hi, lo, hi
    if disc > 0 and A < 0:  # complement of an interval: (-inf, r1] U [r2, inf)
        r = math.sqrt(disc)
        r1, r2 = sorted(((B - r) / A, (B + r) / A))
        return "exclusive", -math.inf, math.inf, r1, r2
    return "unbounded", -math.inf, math.inf, math.nan, math.nan


def _ratio_row(a, s, va, vs, cas, crit):
    ratio = s / a if a != 0 else math.nan
    var_r = (vs - 2 * ratio * cas + ratio**2 * va) / a**2 if a != 0 else math.nan
    se_r = math.sqrt(var_r) if var_r >= 0 else math.nan
    diff = s - a
    se_d = math.sqrt(max(vs + va - 2 * cas, 0.0))
    ftype, flo, fhi, r1, r2 = _fieller(a, s, va, vs, cas, crit)
    return {
        "pilot_estimate": a, "pilot_se": math.sqrt(va), "scaled_estimate": s, "scaled_se": math.sqrt(vs),
        "cov": cas, "ratio": ratio, "ratio_se": se_r,
        "ratio_ci_low_delta": ratio - crit * se_r, "ratio_ci_high_delta": ratio + crit * se_r,
        "fieller_type": ftype, "ratio_ci_low_fieller": flo, "ratio_ci_high_fieller": fhi,
        "fieller_root1": r1, "fieller_root2": r2,
        "difference": diff, "difference_se": se_d,
        "difference_ci_low": diff - crit * se_d, "difference_ci_high": diff + crit * se_d,
        "ratio_ci_low_boot": math.nan, "ratio_ci_high_boot": math.nan, "n_boot_failed": 0,
    }  # fmt: skip


@dataclass(frozen=True, eq=False)
class VoltageDropResult:
    """Result of :func:`voltage_drop`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model x scaled phase: ``model`` (``"estimates"`` for two given estimates;
        ``"meta_regression"``: subgroup meta-regression with a common tau^2; ``"subgroups"``:
        separate random-effects meta-analyses per phase), ``reference`` (pilot phase), ``phase``,
        ``pilot_estimate``, ``pilot_se``, ``scaled_estimate``, ``scaled_se``, ``cov``, ``ratio``,
        ``ratio_se`` (delta method), ``ratio_ci_low_delta``, ``ratio_ci_high_delta``,
        ``fieller_type`` (``bounded``, ``exclusive`` = :math:`(-\\infty, r_1] \\cup [r_2, \\infty)`,
        ``unbounded`` = the whole line), ``ratio_ci_low_fieller``, ``ratio_ci_high_fieller`` (infinite
        unless bounded), ``fieller_root1``, ``fieller_root2``, ``difference`` (scaled - pilot) with
        ``difference_se``, ``difference_ci_low``, ``difference_ci_high``, and the percentile
        bootstrap interval ``ratio_ci_low_boot``, ``ratio_ci_high_boot`` (NaN without bootstrap) and
        ``n_boot_failed``, the resamples whose model could not be fitted (e.g. REML not converging,
        as metafor would stop), left out of the percentile interval.
    phase_effects : pandas.DataFrame or None
        Pooled effect of every phase (model, phase, k, estimate, se, ci_low, ci_high, tau2).
    QM, QM_df, QM_pvalue : float
        Omnibus test of phase differences of the meta-regression (NaN for two estimates).
    meta_regression : MetaRegressionResult or None
    level : float
    n_boot, n_boot_failed : int
        Bootstrap resamples and failed model fits over both models.
    """

    table: pd.DataFrame = field(repr=False)
    phase_effects: pd.DataFrame | None = field(repr=False)
    QM: float
    QM_df: float
    QM_pvalue: float
    level: float
    n_boot: int
    n_boot_failed: int
    meta_regression: object = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The tidy table of ratios and differences."""
        return self.table.copy()

    @property
    def ratio(self) -> float:
        """The (first) voltage-drop ratio of the first model."""
        return float(self.table["ratio"].iloc[0])

    def summary(self) -> str:
        """Readable summary with the Fieller set spelled out."""
        pct = round(100 * self.level)
        lines = ["Voltage drop: scaled effect / pilot effect"]
        if np.isfinite(self.QM):
            lines.append(f"Test of phase differences (meta-regression): QM(df = {int(self.QM_df)}) = {self.QM:.4f}, "
                         f"p = {self.QM_pvalue:.4g}")
        if self.phase_effects is not None:
            lines += ["", self.phase_effects.to_string(index=False, float_format=lambda x: f"{x:.4f}")]
        for _, r in self.table.iterrows():
            if r["fieller_type"] == "bounded":
                fs = f"[{r['ratio_ci_low_fieller']:.4f}, {r['ratio_ci_high_fieller']:.4f}]"
            elif r["fieller_type"] == "exclusive":
                fs = (f"(-inf, {r['fieller_root1']:.4f}] U [{r['fieller_root2']:.4f}, +inf) (unbounded: "
                      "the pilot effect is not significantly different from 0)")
            else:
                fs = "the whole real line (unbounded: the effects are too imprecise)"
            lines += [
                "",
                f"[{r['model']}] {r['phase']} vs {r['reference']}: ratio = {r['ratio']:.4f}",
                f"  {pct}% CI, delta method: [{r['ratio_ci_low_delta']:.4f}, {r['ratio_ci_high_delta']:.4f}]",
                f"  {pct}% CI, Fieller:      {fs}",
            ]
            if np.isfinite(r["ratio_ci_low_boot"]):
                lines.append(f"  {pct}% CI, bootstrap:    [{r['ratio_ci_low_boot']:.4f}, {r['ratio_ci_high_boot']:.4f}]"
                             f" ({self.n_boot} resamples, {int(r['n_boot_failed'])} failed)")
            lines.append(f"  difference = {r['difference']:.4f}, {pct}% CI [{r['difference_ci_low']:.4f}, "
                         f"{r['difference_ci_high']:.4f}]")
        return "\n".join(lines)

    def plot_ratio(self, *, ax=None):
        """Ratios with their delta-method (thick), Fieller (thin) and bootstrap (dashed) intervals."""
        import matplotlib.pyplot as plt

        t = self.table
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.6 * len(t) + 1.5))
        y = np.arange(len(t))[::-1]
        for yy, (_, r) in zip(y, t.iterrows()):
            ax.plot([r["ratio_ci_low_delta"], r["ratio_ci_high_delta"]], [yy + 0.12] * 2, color="black", lw=2.5)
            if r["fieller_type"] == "bounded":
                ax.plot([r["ratio_ci_low_fieller"], r["ratio_ci_high_fieller"]], [yy - 0.12] * 2, color="0.4", lw=1)
            else:
                ax.annotate(f"Fieller: {r['fieller_type']}", (r["ratio"], yy - 0.25), fontsize=7, ha="center")
            if np.isfinite(r["ratio_ci_low_boot"]):
                ax.plot([r["ratio_ci_low_boot"], r["ratio_ci_high_boot"]], [yy - 0.3] * 2, color="0.5", lw=1,
                        linestyle="--")
            ax.plot(r["ratio"], yy, "o", color="black")
        ax.axvline(1.0, color="0.6", lw=0.8, linestyle=":")
        ax.axvline(0.0, color="0.6", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{r['phase']} / {r['reference']} ({r['model']})" for _, r in t.iterrows()])
        ax.set_xlabel("Ratio of effects (1 = no voltage drop)")
        ax.set_title("Voltage drop (thick: delta method, thin: Fieller, dashed: bootstrap)")
        return ax


def _phase_levels(col: pd.Series, levels) -> list:
    present = list(pd.unique(col.dropna()))
    if levels is None:
        if isinstance(col.dtype, pd.CategoricalDtype):
            levels = [c for c in col.cat.categories if c in present]
        else:
            levels = sorted(present, key=str)
            if "pilot" in levels:
                levels = ["pilot"] + [x for x in levels if x != "pilot"]
    levels = list(levels)
    unknown = [x for x in present if x not in levels]
    if unknown:
        raise ScaleupDataError(f"argument 'levels': phase value(s) {unknown} of the data are not listed in {levels}.")
    if len(levels) < 2:
        raise ScaleupDataError(f"argument 'levels': at least two phases are needed (pilot first), got {levels}.")
    return levels


def voltage_drop(
    pilot: float | None = None,
    scaled: float | None = None,
    *,
    pilot_se: float | None = None,
    scaled_se: float | None = None,
    cov: float = 0.0,
    data: pd.DataFrame | None = None,
    yi: str = "yi",
    vi: str = "vi",
    phase: str = "phase",
    levels: Sequence | None = None,
    method: str = "REML",
    level: float = 0.95,
    n_boot: int = 0,
    seed=None,
) -> VoltageDropResult:
    r"""Voltage drop: ratio and difference of the scaled-up effect to the pilot (pre-scale) effect.

    Parameters
    ----------
    pilot, scaled : float, optional
        Pilot and scaled-up effect estimates (with ``pilot_se``, ``scaled_se`` and their covariance
        ``cov``, 0 for independent studies). Leave out when ``data`` is given.
    pilot_se, scaled_se, cov : float
    data : pandas.DataFrame, optional
        Site- or study-level effect sizes ``yi`` with sampling variances ``vi`` and a ``phase``
        column: a subgroup meta-regression ``yi ~ phase`` (:func:`scaleup_analysis.meta_regression`,
        common tau^2, pilot phase as reference) gives the pooled effect of every phase, their ratios
        to the pilot and the QM test of phase differences; separate random-effects meta-analyses per
        phase (:func:`scaleup_analysis.meta_analysis`) are reported too (model ``"subgroups"``).
    yi, vi, phase : str
        Columns of ``data``.
    levels : list, optional
        Phase order, pilot (reference) first, e.g. ``["research", "demo", "practice"]``. Default:
        the categories of a categorical column, else sorted values with ``"pilot"`` first.
    method : str, default "REML"
        tau^2 estimator (as :func:`scaleup_analysis.meta_analysis`).
    level : float, default 0.95
    n_boot : int, default 0
        Bootstrap resamples (``data`` only): rows (sites or studies) are resampled with replacement
        within each phase, both models are refitted and the percentile interval of the ratio is
        reported; resamples whose fit fails are left out and counted (``n_boot_failed``).
    seed : int or numpy Generator, optional
        Seed of :func:`numpy.random.default_rng` for the bootstrap.

    Returns
    -------
    VoltageDropResult

    Notes
    -----
    With pilot effect :math:`a`, scaled effect :math:`s`, variances :math:`V_a, V_s`, covariance
    :math:`C_{as}` and the normal quantile :math:`c`, the ratio is :math:`\hat\rho = s/a` and

    * delta method: :math:`SE(\hat\rho) = \sqrt{V_s - 2\hat\rho C_{as} + \hat\rho^2 V_a}\,/\,|a|`,
      interval :math:`\hat\rho \pm c\,SE`;
    * Fieller (1954): the set of :math:`\rho` with :math:`(s - \rho a)^2 \le c^2 (V_s - 2\rho C_{as}
      + \rho^2 V_a)`, i.e. :math:`A\rho^2 - 2B\rho + C \le 0` with :math:`A = a^2 - c^2 V_a`,
      :math:`B = as - c^2 C_{as}`, :math:`C = s^2 - c^2 V_s`. If :math:`A > 0` (the pilot effect is
      significant at the chosen level) it is the bounded interval :math:`(B \mp \sqrt{B^2 - AC})/A`;
      otherwise it is unbounded: the complement of an interval (:math:`B^2 > AC`) or the whole line,
      reported as such (``fieller_type``);
    * difference :math:`s - a` with :math:`SE = \sqrt{V_s + V_a - 2C_{as}}`.

    In the meta-regression :math:`y_i = \beta_0 + \sum_j \beta_j 1[\text{phase}_i = j] + u_i + e_i`,
    :math:`a = \beta_0`, :math:`s_j = \beta_0 + \beta_j`, with variances and covariance from the
    coefficients' covariance matrix (so the difference and its CI are :math:`\beta_j`'s). The
    subgroup model fits each phase separately (independent: :math:`C_{as} = 0`). Normal-theory
    (``test="z"``) inference throughout.

    References
    ----------
    Fieller, E. C. (1954). Some problems in interval estimation. Journal of the Royal Statistical
    Society B, 16(2), 175-185.

    Chambers, D. A., Glasgow, R. E., & Stange, K. C. (2013). The dynamic sustainability framework.
    Implementation Science, 8, 117.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> res = sa.voltage_drop(0.50, 0.30, pilot_se=0.10, scaled_se=0.05)
    >>> r = res.to_frame().iloc[0]
    >>> r[["ratio", "ratio_ci_low_delta", "ratio_ci_high_delta"]].astype(float).round(3).tolist()
    [0.6, 0.294, 0.906]
    >>> r["fieller_type"], r[["ratio_ci_low_fieller", "ratio_ci_high_fieller"]].astype(float).round(3).tolist()
    ('bounded', [0.359, 1.059])
    """
    from .heterogeneity.meta import meta_analysis, meta_regression

    crit = _z(level)
    if data is None:
        vals = {"pilot": pilot, "scaled": scaled, "pilot_se": pilot_se, "scaled_se": scaled_se, "cov": cov}
        for k, v in vals.items():
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(v):
                raise ScaleupDataError(
                    f"argument '{k}': a finite number is needed (give pilot, scaled, pilot_se, scaled_se "
                    f"and optionally cov), or pass data= with effect sizes by phase; got {v!r}."
                )
        if pilot_se <= 0 or scaled_se <= 0:
            raise ScaleupDataError("arguments 'pilot_se' and 'scaled_se' must be > 0.")
        if cov**2 > pilot_se**2 * scaled_se**2 * (1 + 1e-12):
            raise ScaleupDataError("argument 'cov': |cov| must not exceed pilot_se * scaled_se.")
        row = _ratio_row(float(pilot), float(scaled), float(pilot_se) ** 2, float(scaled_se) ** 2, float(cov), crit)
        table = pd.DataFrame([{"model": "estimates", "reference": "pilot", "phase": "scaled", **row}])
        return VoltageDropResult(table=table, phase_effects=None, QM=math.nan, QM_df=math.nan,
                                 QM_pvalue=math.nan, level=float(level), n_boot=0, n_boot_failed=0)
    if pilot is not None or scaled is not None:
        raise ScaleupDataError("give either the two estimates (pilot, scaled) or data=, not both.")
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"argument 'data': a pandas DataFrame, got {type(data).__name__}.")
    require_columns(data, "data", [yi, vi, phase])
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ScaleupDataError(f"argument 'n_boot': a non-negative integer, not {n_boot!r}.")
    lv = _phase_levels(data[phase], levels)
    df = data.copy()
    df[phase] = pd.Categorical(df[phase], categories=lv)
    miss = df[phase].isna() & data[phase].notna()
    fail_rows("data", phase, "have values not in 'levels'", df, miss, f"Use one of {lv}.")
    mr = meta_regression(df, yi=yi, vi=vi, mods=[phase], method=method, level=level)
    for j, name in enumerate(mr.coef.index[1:], start=1):  # patsy keeps the category order
        if not str(name).endswith(f"[T.{lv[j]}]"):
            raise ScaleupDataError(f"internal: unexpected coefficient {name!r} for phase {lv[j]!r}.")
    b = mr.coef["estimate"].to_numpy()
    V = mr.vcov.to_numpy()
    used = mr.data
    k_by = used[phase].astype(str).value_counts()
    rows, eff = [], []
    eff.append({"model": "meta_regression", "phase": lv[0], "k": int(k_by.get(str(lv[0]), 0)), "estimate": b[0],
                "se": math.sqrt(V[0, 0]), "tau2": mr.tau2})
    for j in range(1, len(lv)):
        a, s = b[0], b[0] + b[j]
        va, vs, cas = V[0, 0], V[0, 0] + V[j, j] + 2 * V[0, j], V[0, 0] + V[0, j]
        eff.append({"model": "meta_regression", "phase": lv[j], "k": int(k_by.get(str(lv[j]), 0)), "estimate": s,
                    "se": math.sqrt(vs), "tau2": mr.tau2})
        rows.append({"model": "meta_regression", "reference": lv[0], "phase": lv[j],
                     **_ratio_row(a, s, va, vs, cas, crit)})
    # separate random-effects meta-analyses per phase
    sub = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)
        for p_ in lv:
            dd = df[df[phase] == p_]
            try:
                sub[p_] = meta_analysis(dd, yi=yi, vi=vi, method=method, level=level)
            except ScaleupDataError:
                sub[p_] = None
    if all(r is not None for r in sub.values()):
        for p_ in lv:
            r = sub[p_]
            eff.append({"model": "subgroups", "phase": p_, "k": r.k, "estimate": r.estimate, "se": r.se,
                        "tau2": r.tau2})
        a0 = sub[lv[0]]
        for p_ in lv[1:]:
            r = sub[p_]
            rows.append({"model": "subgroups", "reference": lv[0], "phase": p_,
                         **_ratio_row(a0.estimate, r.estimate, a0.se**2, r.se**2, 0.0, crit)})
    else:
        small = [p_ for p_, r in sub.items() if r is None]
        warnings.warn(f"voltage_drop(): separate meta-analyses skipped: phase(s) {small} have too few rows.",
                      RowsOmittedWarning, stacklevel=2)
    table = pd.DataFrame(rows)
    phase_effects = pd.DataFrame(eff)
    phase_effects["ci_low"] = phase_effects["estimate"] - crit * phase_effects["se"]
    phase_effects["ci_high"] = phase_effects["estimate"] + crit * phase_effects["se"]
    n_failed = 0
    if n_boot > 0:
        n_failed = _bootstrap(table, used, yi, vi, phase, lv, method, level, n_boot, seed,
                              separate="subgroups" in set(table["model"]))
    return VoltageDropResult(table=table, phase_effects=phase_effects, QM=float(mr.QM),
                             QM_df=float(mr.QM_df[0]), QM_pvalue=float(mr.QM_pvalue), level=float(level),
                             n_boot=int(n_boot), n_boot_failed=n_failed, meta_regression=mr)


def _bootstrap(table, used, yi, vi, phase, lv, method, level, n_boot, seed, separate) -> int:
    """Percentile bootstrap of the ratios (rows resampled within phase); fills ``table`` in place."""
    from .heterogeneity._tau2 import FitError, fit_rma

    rng = np.random.default_rng(seed)
    y = used[yi].to_numpy(float)
    v = used[vi].to_numpy(float)
    ph = used[phase].astype(str).to_numpy()
    idx = [np.flatnonzero(ph == str(p_)) for p_ in lv]
    L = len(lv)
    X_full = np.zeros((len(y), L))
    X_full[:, 0] = 1.0
    for j in range(1, L):
        X_full[ph == str(lv[j]), j] = 1.0
    reg = np.full((n_boot, L - 1), np.nan)
    sep = np.full((n_boot, L - 1), np.nan)
    failed = {"meta_regression": 0, "subgroups": 0}
    errors = (FitError, np.linalg.LinAlgError, ValueError, ZeroDivisionError)
    for bi in range(n_boot):
        parts = [rng.choice(ix, size=ix.size, replace=True) for ix in idx]
        take = np.concatenate(parts)
        try:
            f = fit_rma(y[take], v[take], X_full[take], method, "z", level)
            reg[bi] = (f.beta[0] + f.beta[1:]) / f.beta[0]
        except errors:
            failed["meta_regression"] += 1
        if separate:  # the same resample, one random-effects model per phase
            try:
                ests = [fit_rma(y[pt], v[pt], np.ones((pt.size, 1)), method, "z", level).beta[0] for pt in parts]
                sep[bi] = np.array(ests[1:]) / ests[0]
            except errors:
                failed["subgroups"] += 1
    alpha = 1 - level
    for j in range(1, L):
        for model, arr in (("meta_regression", reg), ("subgroups", sep)):
            m = (table["model"] == model) & (table["phase"] == lv[j])
            vals = arr[:, j - 1]
            vals = vals[np.isfinite(vals)]
            if m.any():
                table.loc[m, "n_boot_failed"] = failed[model]
            if m.any() and vals.size:
                table.loc[m, "ratio_ci_low_boot"] = float(np.quantile(vals, alpha / 2))
                table.loc[m, "ratio_ci_high_boot"] = float(np.quantile(vals, 1 - alpha / 2))
    return sum(failed.values())


# --------------------------------------------------------------------------------------------------
# site-level effects (input of voltage_drop and of site-level meta-analyses)
# --------------------------------------------------------------------------------------------------
def site_effects(
    data: pd.DataFrame,
    sites: pd.DataFrame,
    indicator: str,
    *,
    washin_periods: int = 0,
    comparison_phase: str = "not-adopted",
    site: str = "site_id",
    period: str = "period",
    cohort: str = "adoption_period",
    phase: str = "phase",
) -> pd.DataFrame:
    """Site-level difference-in-differences effects of the innovation on one indicator.

    For each adopting site, the change of its pooled mean from before adoption to the periods after
    the wash-in, minus the same change over the same periods at the comparison sites (pooled).

    Parameters
    ----------
    data : pandas.DataFrame
        The ``outcomes`` table (site × period × indicator; ``n`` and ``mean``, ``sd`` for a mean
        indicator, ``events`` for a proportion indicator).
    sites : pandas.DataFrame
        The ``sites`` table (``adoption_period`` and ``phase``).
    indicator : str
        An indicator id, e.g. ``"HO_Y"``: a ``mean`` indicator (rows with ``mean`` and ``sd``) or a
        ``proportion`` indicator (rows with ``events``; effects are differences of proportions).
    washin_periods : int
        Periods after adoption left out before the "after" window starts (effects that ramp up
        over the first periods of delivery, e.g. ``ramp_periods - 1`` of ``simulate_scaleup``).
    comparison_phase : str
        Value of ``phase`` that marks the comparison (never-adopting) sites.
    site, period, cohort, phase : str
        Column names (``cohort``: the site's adoption period, missing = never adopts).

    Returns
    -------
    pandas.DataFrame
        One row per adopting site: ``site_id``, ``phase``, ``yi`` (effect), ``vi`` (its sampling
        variance), ``n_before``, ``n_after`` (individuals in each window at the site).

    Notes
    -----
    With :math:`\\bar y_{s,W} = \\sum_{t\\in W} n_{st}\\bar y_{st} / \\sum_{t\\in W} n_{st}` the
    pooled mean of site :math:`s` over window :math:`W` (variance
    :math:`\\sum n_{st} sd_{st}^2 / (\\sum n_{st})^2`), and :math:`\\bar c_W` the same for all
    comparison sites pooled, the effect of site :math:`s` adopting in period :math:`A_s` is

    .. math:: y_s = (\\bar y_{s,A} - \\bar y_{s,B}) - (\\bar c_A - \\bar c_B),

    with :math:`B = \\{t < A_s\\}` and :math:`A = \\{t \\ge A_s + w\\}`, and :math:`v_s` the sum of
    the four variances (independent samples in each site-period). For a proportion indicator the
    site-period mean is :math:`p_{st} = e_{st} / n_{st}` and the individual variance
    :math:`p_{st}(1 - p_{st})` takes the place of :math:`sd_{st}^2` (the Wald variance of a difference
    of proportions). Sites with no period in either window are left out with a
    :class:`~scaleup_analysis.errors.RowsOmittedWarning`.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=20)
    >>> es = sa.site_effects(sim.tables["outcomes"], sim.tables["sites"], "HO_Y", washin_periods=2)
    >>> list(es.columns)
    ['site_id', 'phase', 'yi', 'vi', 'n_before', 'n_after']
    """
    import warnings

    from .errors import RowsOmittedWarning

    require_columns(data, "outcomes", [site, period, "indicator_id", "n"])
    require_columns(sites, "sites", [site, cohort, phase])
    if not isinstance(washin_periods, (int, np.integer)) or washin_periods < 0:
        raise ScaleupDataError(f"site_effects(): washin_periods must be an integer >= 0, got {washin_periods!r}")
    y = data[data["indicator_id"] == indicator]
    if y.empty:
        raise ScaleupDataError(
            f"site_effects(): table 'outcomes', column 'indicator_id': no row for indicator {indicator!r}; "
            f"available: {sorted(data['indicator_id'].astype(str).unique())}"
        )
    has_mean = "mean" in y and "sd" in y and y["mean"].notna().any()
    has_events = "events" in y and y["events"].notna().any()
    if not has_mean and not has_events:
        raise ScaleupDataError(
            f"site_effects(): table 'outcomes': indicator {indicator!r} has neither 'mean'/'sd' values (a mean "
            "indicator) nor 'events' (a proportion indicator)"
        )
    y = y[y["n"] > 0].copy()
    if not has_mean:  # proportion indicator: mean = events / n, individual variance p (1 - p)
        p_hat = y["events"].astype(float) / y["n"].astype(float)
        y["mean"] = p_hat
        y["sd"] = np.sqrt(p_hat * (1 - p_hat))
    y = y.dropna(subset=["mean", "sd"])
    y = y.merge(sites[[site, cohort, phase]], on=site, how="inner")
    is_comp = y[phase].astype(str) == comparison_phase
    if not is_comp.any():
        raise ScaleupDataError(
            f"site_effects(): table 'sites', column '{phase}': no site with phase {comparison_phase!r}, "
            "so there is no comparison group; pass comparison_phase= naming the comparison sites"
        )
    comp = y[is_comp].assign(tot=lambda d: d["n"] * d["mean"], var=lambda d: d["n"] * d["sd"] ** 2)
    comp = comp.groupby(period)[["n", "tot", "var"]].sum()

    def pooled(n, tot, var):
        n_sum = float(np.sum(n))
        return float(np.sum(tot)) / n_sum, float(np.sum(var)) / n_sum**2, n_sum

    rows, omitted = [], []
    for sid, g in y[~is_comp & y[cohort].notna()].groupby(site, sort=True):
        a = int(g[cohort].iloc[0])
        before = g[g[period] < a]
        after = g[g[period] >= a + washin_periods]
        cb = comp.reindex(before[period].unique()).dropna()
        ca = comp.reindex(after[period].unique()).dropna()
        if before.empty or after.empty or cb.empty or ca.empty:
            omitted.append(sid)
            continue
        m0, v0, n0 = pooled(before["n"], before["n"] * before["mean"], before["n"] * before["sd"] ** 2)
        m1, v1, n1 = pooled(after["n"], after["n"] * after["mean"], after["n"] * after["sd"] ** 2)
        c0, w0, _ = pooled(cb["n"], cb["tot"], cb["var"])
        c1, w1, _ = pooled(ca["n"], ca["tot"], ca["var"])
        rows.append((sid, str(g[phase].iloc[0]), (m1 - m0) - (c1 - c0), v0 + v1 + w0 + w1, n0, n1))
    if omitted:
        warnings.warn(
            f"site_effects(): {len(omitted)} adopting site(s) left out because they have no period "
            f"before adoption or none after the wash-in (or the comparison sites have none): "
            f"{', '.join(map(str, omitted[:5]))}{' ...' if len(omitted) > 5 else ''}",
            RowsOmittedWarning,
            stacklevel=2,
        )
    return pd.DataFrame(rows, columns=[site, "phase", "yi", "vi", "n_before", "n_after"])
