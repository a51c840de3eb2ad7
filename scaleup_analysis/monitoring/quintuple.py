r"""Quintuple-aim monitoring: region x period panels, change from baseline and deleterious effects.

The *quintuple aim* (health outcomes, user experience, efficiency/cost, team well-being and equity;
Nundy, Cooper & Mate, 2022) is monitored through the ``indicators`` registry and the site x period x
indicator aggregates of ``outcomes`` (see ``docs/data_dictionary.md``). Four functions:

* :func:`quintuple_aim_panel` pools the site aggregates into a region (or subgroup) x period x
  indicator panel with standard errors, and re-expresses every indicator in its *improvement
  direction* (sign flipped for ``lower_is_better``) and on a standardized (effect-size) scale;
* :func:`change_from_baseline` compares follow-up with baseline periods per unit and indicator;
* :func:`deleterious_effects` flags units whose change in the improvement direction is worse than a
  stated threshold (one-sided tests, Holm and/or Benjamini-Hochberg adjusted), and adds the Anhøj
  run-chart signals of each unit's series (:func:`scaleup_analysis.runs_analysis`);
* :func:`plot_dashboard` draws a domains x units heat map with the signals marked.

References
----------
Nundy, S., Cooper, L. A., & Mate, K. S. (2022). The quintuple aim for health care improvement.
JAMA, 327(6), 521-522.

Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of
Statistics, 6(2), 65-70.

Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate. Journal of the Royal
Statistical Society B, 57(1), 289-300.

Anhøj, J., & Olesen, A. V. (2014). Run charts revisited. PLoS ONE, 9(11), e113825.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import (
    check_level, checked_inputs, fail_rows, first_values, numeric_column, require_columns, rows_text,
)
from .._display import Displayed
from .._style import DIVERGING, GREY, MISSING, PALETTE, data_text, new_axes, styled, ticks_inside
from ..errors import ScaleupDataError
from ..i18n import N_
from ._plotting import unit_labels

__all__ = [
    "quintuple_aim_panel",
    "change_from_baseline",
    "deleterious_effects",
    "plot_dashboard",
    "QuintupleAimPanel",
    "ChangeFromBaseline",
    "DeleteriousEffects",
]

DOMAINS = ("health_outcomes", "user_experience", "efficiency_cost", "team_wellbeing", "equity")
_SUFF = ["n", "n_sites", "total", "var_sum", "ss_within", "df_within"]
#: Largest magnitude of a mean or SD, and largest count n, of the outcomes: the sufficient statistics
#: (n * mean, n * sd^2, their sums over sites and periods) must stay finite in double precision.
_MAX_ABS, _MAX_COUNT = 1e100, 1e50


# --------------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------------
def _num(df: pd.DataFrame, table: str, col: str) -> np.ndarray:
    return numeric_column(df, col, f"table '{table}'", missing=True, infinite=True)


def _periods(arg: str, periods) -> list[int]:
    """The distinct periods of ``periods`` (an iterable of whole numbers), sorted."""
    example = f"e.g. {arg}=range(1, 5) or {arg}=[1, 2, 3, 4]"
    if isinstance(periods, (str, bytes)):  # '12' would otherwise be read as the periods 1 and 2
        raise ScaleupDataError(f"argument '{arg}': give the periods as a list or range of integers ({example}), "
                               f"not the text {reprlib.repr(periods)}.")
    try:
        values = list(periods)
        bad = [p for p in values if isinstance(p, (bool, np.bool_)) or float(p) != int(float(p))]
    except (TypeError, ValueError, OverflowError):
        raise ScaleupDataError(
            f"argument '{arg}': give the periods as integers ({example}), not {reprlib.repr(periods)}."
        ) from None
    if bad:
        raise ScaleupDataError(f"argument '{arg}': periods are whole numbers; got {first_values(bad)} ({example}).")
    out = sorted({int(p) for p in values})
    if not out:
        raise ScaleupDataError(f"argument '{arg}': give at least one period.")
    return out


# --------------------------------------------------------------------------------------------------
# pooling (stratified: every site-period is a stratum)
# --------------------------------------------------------------------------------------------------
def _pool(d: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Add the additive sufficient statistics over ``keys`` and derive estimate, se and sd."""
    g = d.groupby(keys, sort=True, observed=True)[_SUFF].sum().reset_index()
    n = g["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = g["total"].to_numpy() / n
        se = np.sqrt(g["var_sum"].to_numpy()) / n
        sd_mean = np.sqrt(g["ss_within"].to_numpy() / g["df_within"].to_numpy())
        sd = np.where(g["type"].astype(str).to_numpy() == "proportion", np.sqrt(np.abs(est * (1 - est))),
                      sd_mean)
    return g.assign(estimate=est, se=se, sd=sd)


@dataclass(frozen=True, eq=False, repr=False)
class QuintupleAimPanel(Displayed):
    """Result of :func:`quintuple_aim_panel`.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per unit (``region`` and, with ``subgroup``, the subgroup column) x ``period`` x
        ``indicator_id`` with ``domain``, ``type``, ``direction``, ``measurement_unit`` (the
        registry's ``unit``, e.g. ``%``), ``n_sites``, ``n``,
        ``estimate`` (pooled rate or mean), ``se``, ``sd`` (individual-level SD), ``sign`` (+1 for
        ``higher_is_better``, -1 for ``lower_is_better``), ``improvement`` (``sign * estimate``) and
        ``std_score`` (``sign * (estimate - reference) / sd_reference``, the indicator's pooled
        value over the whole panel as reference), plus the additive sufficient statistics
        ``total``, ``var_sum``, ``ss_within``, ``df_within`` used to pool cells further.
    region, subgroup : str or None
        Names of the unit columns.
    reference : pandas.DataFrame
        Per indicator: its ``name`` (``indicators`` table; the identifier when the table has no
        names), pooled ``reference`` value and ``sd_reference`` over the whole panel.
    comparison : pandas.DataFrame or None
        With ``comparison=``: the comparison sites pooled over all regions, one row per period x
        indicator (same columns as ``data`` without the unit columns); these sites are *not* in
        ``data``.
    comparison_label : str or None
        Description of the comparison sites, e.g. ``"phase in ['not-adopted']"``.
    """

    data: pd.DataFrame = field(repr=False)
    region: str
    subgroup: str | None
    reference: pd.DataFrame = field(repr=False)
    comparison: pd.DataFrame | None = field(default=None, repr=False)
    comparison_label: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The panel without the internal sufficient statistics."""
        drop = ["total", "var_sum", "ss_within", "df_within"]
        return self.data.drop(columns=drop).copy()

    def _indicator_names(self) -> dict:
        """``{indicator_id: name}`` of the panel's indicators (text from the ``indicators`` table)."""
        ref = self.reference
        names = ref["name"] if "name" in ref.columns else ref["indicator_id"]
        return dict(zip(ref["indicator_id"], names.astype(str)))

    def _repr_fields(self) -> dict:
        d = self.data
        out = {"region": self.region, "subgroup": self.subgroup, "n_units": int(d[self.region].nunique()),
               "n_periods": int(d["period"].nunique()), "n_indicators": int(d["indicator_id"].nunique()),
               "n_rows": len(d)}
        if self.comparison_label is not None:
            out["comparison_label"] = self.comparison_label
        return out

    def _summary(self, tx) -> str:
        d = self.data
        head = tx("Quintuple-aim panel: {units}, periods {first} to {last}, {indicators}.",
                  units=tx.n("{n} region", "{n} regions", d[self.region].nunique()),
                  first=tx.int(d["period"].min()), last=tx.int(d["period"].max()),
                  indicators=tx.n("{n} indicator", "{n} indicators", d["indicator_id"].nunique()))
        lines = [head]
        if self.subgroup:
            lines.append(tx("Subgroups ({column}): {levels}.", column=self.subgroup,
                            levels=tx.join([str(v) for v in sorted(d[self.subgroup].unique(), key=str)])))
        if self.comparison_label is not None:
            lines.append(tx("Comparison sites ({label}) pooled over all regions, kept apart from the regions.",
                            label=self.comparison_label))
        lines.append(tx("Indicators (value pooled over the whole panel, individual-level SD):"))
        names = self._indicator_names()
        for r in self.reference.itertuples(index=False):
            better = tx("higher is better") if r.direction == "higher_is_better" else tx("lower is better")
            digits = _digits(r.reference, r.sd_reference)
            lines.append("  " + tx("{name} ({domain}; {better}): {value}, SD {sd}", name=names[r.indicator_id],
                                   domain=_domain_label(r.domain, tx).lower(), better=better,
                                   value=tx.num(r.reference, digits), sd=tx.num(r.sd_reference, digits)))
        return "\n".join(lines)

    @styled
    def plot_series(self, indicator: str, *, std: bool = False, title: str | None = None,
                    ylabel: str | None = None, ax=None):
        """Time series of one indicator by region; returns the Axes.

        Every region is a thin grey line; the regions pooled together are the thick line, the
        comparison sites (when the panel has them) the dashed line, and the regions with the
        highest and the lowest value at the last period are coloured and named in the legend (18
        regions cannot be told apart by colour). With ``std=True`` the values are standardized
        scores in the improvement direction (SD units, + = better).
        """
        from ..narrative import Text

        tx = Text()
        d = self.data[self.data["indicator_id"] == indicator]
        if d.empty:
            raise ScaleupDataError(f"plot_series(): indicator {indicator!r} is not in the panel.")
        ax = new_axes(ax, (9.0, 4.5))
        ref = self.reference.set_index("indicator_id").loc[indicator]
        sign = 1.0 if ref["direction"] == "higher_is_better" else -1.0

        def values(frame):
            est = frame["estimate"].to_numpy(float)
            return sign * (est - ref["reference"]) / ref["sd_reference"] if std else est

        per_unit = _pool(d, [self.region, "period", "indicator_id", "type"])
        overall = _pool(d, ["period", "indicator_id", "type"])
        units = sorted(per_unit[self.region].unique(), key=str)
        labels = unit_labels(units)
        last = per_unit[per_unit["period"] == per_unit["period"].max()]
        last = last.assign(v=values(last)).dropna(subset=["v"]).sort_values("v")
        highlight = {}
        if len(units) > 1 and len(last) >= 2:
            highlight = {last[self.region].iloc[-1]: (PALETTE[2], tx("Highest at the last period: {unit}",
                                                                      unit=labels[last[self.region].iloc[-1]])),
                         last[self.region].iloc[0]: (PALETTE[4], tx("Lowest at the last period: {unit}",
                                                                     unit=labels[last[self.region].iloc[0]]))}
        first_grey = True
        for u, du in per_unit.groupby(self.region, sort=True):
            if u in highlight:
                continue
            ax.plot(du["period"], values(du), color=GREY, lw=0.9, zorder=1,
                    label=tx("One region") if first_grey else None)
            first_grey = False
        for u, (colour, label) in highlight.items():
            du = per_unit[per_unit[self.region] == u]
            ax.plot(du["period"], values(du), color=colour, lw=1.6, marker="o", ms=3, zorder=2, label=label)
        ax.plot(overall["period"], values(overall), color=PALETTE[0], lw=2.6, zorder=3,
                label=tx("All regions pooled"))
        if self.comparison is not None:
            c = self.comparison[self.comparison["indicator_id"] == indicator]
            if len(c):
                c = _pool(c, ["period", "indicator_id", "type"])
                ax.plot(c["period"], values(c), color="black", ls="--", lw=1.6, zorder=3,
                        label=tx("Comparison sites"))
        name = data_text(self._indicator_names().get(indicator, indicator))
        if ylabel is None:
            if std:
                ylabel = tx("Standardized score (SD units, + = better)")
            elif ref["measurement_unit"] == "%" or d["type"].iloc[0] == "proportion":
                ylabel = tx("Proportion")
            else:
                ylabel = data_text(ref["measurement_unit"])
        ax.set_xlabel(tx("Period"))
        ax.set_ylabel(ylabel)
        ax.set_title(tx("{indicator} by region", indicator=name) if title is None else title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        ticks_inside(ax, "y")
        ticks_inside(ax, "x")
        return ax


#: The quintuple-aim domains in words.
_DOMAIN_LABELS = {"health_outcomes": N_("Health outcomes"), "user_experience": N_("User experience"),
                  "efficiency_cost": N_("Efficiency and cost"), "team_wellbeing": N_("Team well-being"),
                  "equity": N_("Equity")}


def _domain_label(domain: str, tx) -> str:
    return tx(_DOMAIN_LABELS[domain]) if domain in _DOMAIN_LABELS else data_text(domain)


def _digits(*values: float) -> int:
    """Decimals showing the values with about three significant digits (0 to 4)."""
    finite = [abs(float(v)) for v in values if v is not None and np.isfinite(v) and v != 0]
    if not finite:
        return 2
    top = max(finite)
    return int(min(4, max(0, 2 - int(np.floor(np.log10(top))))))


def _panel_indicators(tables, indicators) -> pd.DataFrame:
    """The checked indicator registry (``unit`` renamed ``measurement_unit``), restricted to ``indicators``."""
    ind = tables["indicators"]
    # the registry's measurement unit ('%', 'CAD', ...) is 'measurement_unit' in every result
    names = ind["name"].astype(str) if "name" in ind.columns else ind["indicator_id"].astype(str)
    ind = ind[["indicator_id", "domain", "type", "direction", "unit"]].rename(columns={"unit": "measurement_unit"})
    ind = ind.assign(name=names.to_numpy())
    for c in ("domain", "type", "direction"):
        ind[c] = ind[c].astype(str)
    fail_rows("indicators", "type", "are not 'proportion' or 'mean'", ind,
              ~ind["type"].isin(["proportion", "mean"]).to_numpy(), "Fix the indicator registry.")
    fail_rows("indicators", "direction", "are not 'higher_is_better' or 'lower_is_better'", ind,
              ~ind["direction"].isin(["higher_is_better", "lower_is_better"]).to_numpy(),
              "Fix the indicator registry.")
    fail_rows("indicators", "indicator_id", "are duplicated", ind, ind["indicator_id"].duplicated(keep=False),
              "Keep one row per indicator.")
    if indicators is not None:
        unknown = sorted(set(indicators) - set(ind["indicator_id"]))
        if unknown:
            raise ScaleupDataError(f"argument 'indicators': {unknown} not in table 'indicators'.")
        ind = ind[ind["indicator_id"].isin(list(indicators))]
    return ind


def _site_period_sums(o: pd.DataFrame, period: str) -> pd.DataFrame:
    """Check the counts, events, means and SDs of the outcome rows and add the sufficient statistics
    (total, var_sum, ss_within, df_within) of each site-period; rows with n = 0 are left out."""
    n = _num(o, "outcomes", "n")
    fail_rows("outcomes", "n", "are missing or negative", o, ~(n >= 0), "n must be a count >= 0.")
    ev = _num(o, "outcomes", "events")
    mu = _num(o, "outcomes", "mean")
    sd = _num(o, "outcomes", "sd")
    prop = o["type"].to_numpy() == "proportion"
    use = n > 0
    fail_rows("outcomes", "events", "of proportion indicators are missing, negative or > n", o,
              prop & use & ~((ev >= 0) & (ev <= n)), "Give 0 <= events <= n.")
    fail_rows("outcomes", "mean", "of mean indicators are missing or not finite", o,
              ~prop & use & ~np.isfinite(mu), "Give a finite mean.")
    fail_rows("outcomes", "sd", "of mean indicators are missing or negative (n >= 2)", o,
              ~prop & use & (n >= 2) & ~(sd >= 0), "Give sd >= 0.")
    _check_magnitudes(o, use, prop, n=n, mean=mu, sd=sd)
    sd = np.where(~prop & (n < 2), 0.0, sd)
    # both branches are computed for every row: the unused one (e.g. n * mean of a proportion, n = 0
    # rows) may be NaN, infinite or overflow; the used values are bounded by _check_magnitudes
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = np.where(prop, ev, n * mu)
        var_sum = np.where(prop, ev * (n - ev) / n, n * sd**2)
        ss_within = np.where(prop, 0.0, (n - 1) * sd**2)
    o = o.assign(n=n, n_sites=1.0, total=total, var_sum=var_sum, ss_within=ss_within,
                 df_within=np.where(prop, 0.0, n - 1))[use]
    o[period] = o[period].astype(np.int64)
    return o.rename(columns={period: "period"})


def _check_magnitudes(o: pd.DataFrame, use: np.ndarray, prop: np.ndarray, **columns: np.ndarray) -> None:
    """Refuse counts beyond :data:`_MAX_COUNT` and means or SDs beyond +/-:data:`_MAX_ABS` in the rows
    used (their products, squares and sums would overflow)."""
    for col, v in columns.items():
        applies = use if col == "n" else use & ~prop  # a proportion's mean and sd are not used
        limit = _MAX_COUNT if col == "n" else _MAX_ABS
        with np.errstate(invalid="ignore"):
            big = applies & (np.abs(v) > limit)
        if big.any():
            raise ScaleupDataError(
                f"quintuple_aim_panel: table 'outcomes', column {col!r}: {rows_text(o, big, label='first:')} "
                f"exceed {'' if col == 'n' else '+/-'}{limit:g} (values {first_values(v[big])}); the pooled "
                "totals and variances would overflow. Check these rows (units, a misplaced decimal separator)"
                + (": n is the number of people or events of the site-period." if col == "n" else
                   ", or rescale the indicator (e.g. express it in thousands).")
            )


def _check_panel_inputs(tables, site, period, region, subgroup, comparison) -> tuple[list[str], list, str | None]:
    """Check the tables and the comparison option of :func:`quintuple_aim_panel`; returns the site
    columns to keep, the comparison values and the comparison's label."""
    if not isinstance(tables, Mapping):
        raise ScaleupDataError("argument 'tables': give a dict of DataFrames with 'indicators', 'outcomes', 'sites'.")
    for t in ("indicators", "outcomes", "sites"):
        if t not in tables:
            raise ScaleupDataError(
                f"argument 'tables': table '{t}' is missing; quintuple_aim_panel needs 'indicators', "
                "'outcomes' and 'sites'."
            )
    sites = tables["sites"]
    require_columns(tables["indicators"], "indicators", ["indicator_id", "domain", "type", "direction", "unit"])
    require_columns(tables["outcomes"], "outcomes", [site, period, "indicator_id", "n", "events", "mean", "sd"])
    if len(tables["outcomes"]) == 0:
        raise ScaleupDataError(
            "quintuple_aim_panel: table 'outcomes' (argument 'tables') has no rows (only its column names); "
            "there is nothing to pool. Check the file or the filter that produced it."
        )
    sc = [site, region] + ([subgroup] if subgroup else [])
    comp_vals, comp_label = [], None
    if comparison is not None:
        if not (isinstance(comparison, tuple) and len(comparison) == 2 and isinstance(comparison[0], str)):
            raise ScaleupDataError(
                "argument 'comparison': give (column of sites, value or list of values), e.g. "
                "comparison=('phase', 'not-adopted')."
            )
        require_columns(sites, "sites", [comparison[0]])
        comp_vals = list(comparison[1]) if isinstance(comparison[1], (list, tuple, set)) else [comparison[1]]
        comp_label = f"{comparison[0]} in {comp_vals}"
        sc = sc + ([comparison[0]] if comparison[0] not in sc else [])
    require_columns(sites, "sites", sc)
    return sc, comp_vals, comp_label


def _site_period_rows(tables, ind: pd.DataFrame, sc: list[str], site: str, period: str) -> pd.DataFrame:
    """The outcomes of the panel's indicators with their indicator and site columns, summed by site
    and period (rows naming an unknown indicator or site are errors)."""
    out, sites = tables["outcomes"], tables["sites"]
    o = out[[site, period, "indicator_id", "n", "events", "mean", "sd"]].copy()
    unk = ~o["indicator_id"].isin(tables["indicators"]["indicator_id"]).to_numpy()
    fail_rows("outcomes", "indicator_id", "are not in table 'indicators'", o, unk, "Register the indicators first.")
    o = o[o["indicator_id"].isin(ind["indicator_id"])]
    s = sites[sc].drop_duplicates()
    for c in sc:  # categorical unit columns -> plain values (units are sorted as text downstream)
        if isinstance(s[c].dtype, pd.CategoricalDtype):
            s[c] = s[c].astype(object)
    fail_rows("sites", site, "are duplicated", s, s[site].duplicated(keep=False).to_numpy(), "Keep one row per site.")
    nosite = ~o[site].isin(s[site]).to_numpy()
    fail_rows("outcomes", site, "are not in table 'sites'", o, nosite, "Add the sites or fix the site_id.")
    o = o.assign(_row=o.index).merge(ind, on="indicator_id", how="left").merge(s, on=site, how="left")
    o = o.set_index("_row")
    o.index.name = None
    return _site_period_sums(o, period)


def _split_comparison(o: pd.DataFrame, column: str, values: list, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of the other sites, and the comparison sites pooled by period and indicator."""
    is_comp = o[column].astype(object).isin(values).to_numpy()
    if not is_comp.any():
        raise ScaleupDataError(
            f"argument 'comparison': no site of table 'sites' has {label}; check the column and value(s)."
        )
    if is_comp.all():
        raise ScaleupDataError(f"argument 'comparison': every site has {label}; nothing is left to compare.")
    comp = _pool(o[is_comp], ["period", "indicator_id", "domain", "type", "direction", "measurement_unit"])
    comp["n"] = comp["n"].astype(np.int64)
    comp["n_sites"] = comp["n_sites"].astype(np.int64)
    return o[~is_comp], comp


def _region_panel(o: pd.DataFrame, keys: list[str], ind: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool the rows by ``keys`` (region x period x indicator), with the improvement and the
    standardized score against each indicator's pooled reference; returns (panel rows, reference)."""
    g = _pool(o, keys)
    ref = _pool(o, ["indicator_id", "domain", "type", "direction", "measurement_unit"])
    ref = ref.rename(columns={"estimate": "reference", "sd": "sd_reference"})[
        ["indicator_id", "domain", "direction", "measurement_unit", "reference", "sd_reference"]]
    ref.insert(1, "name", ref["indicator_id"].map(dict(zip(ind["indicator_id"], ind["name"]))))
    g["n"] = g["n"].astype(np.int64)
    g["n_sites"] = g["n_sites"].astype(np.int64)
    g["sign"] = np.where(g["direction"] == "higher_is_better", 1.0, -1.0)
    g["improvement"] = g["sign"] * g["estimate"]
    r = g[["indicator_id"]].merge(ref, on="indicator_id", how="left")
    g["std_score"] = g["sign"] * (g["estimate"] - r["reference"].to_numpy()) / r["sd_reference"].to_numpy()
    return g, ref


@checked_inputs
def quintuple_aim_panel(
    tables: Mapping[str, pd.DataFrame],
    *,
    region: str = "rss_code",
    subgroup: str | None = None,
    comparison: tuple | None = None,
    indicators: Sequence[str] | None = None,
    site: str = "site_id",
    period: str = "period",
) -> QuintupleAimPanel:
    r"""Pool the site x period quintuple-aim indicators into a region x period x indicator panel.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Needs ``indicators``, ``outcomes`` and ``sites`` (``docs/data_dictionary.md``).
    region : str, default "rss_code"
        Column of ``sites`` giving the region of each site.
    subgroup : str, optional
        Another column of ``sites`` (e.g. ``"deprivation_quintile"``, ``"rurality"``); the panel is
        then region x subgroup x period x indicator, and :func:`change_from_baseline` reports both
        regions and subgroups.
    comparison : (str, value or list of values), optional
        Comparison sites, e.g. ``("phase", "not-adopted")``: the sites whose ``sites`` column has
        (one of) the value(s). They are pooled over all regions into a separate comparison series
        (and left out of the regional units) so that :func:`change_from_baseline` can report
        difference-in-differences that remove secular trends.
    indicators : list of str, optional
        Indicators to keep (default: all of ``indicators``).
    site, period : str
        Column names in ``outcomes``/``sites``.

    Returns
    -------
    QuintupleAimPanel

    Notes
    -----
    Every site-period is a stratum (Cochran, 1977). For a proportion indicator, with site-period
    counts :math:`e_i / n_i`, the pooled rate is :math:`\hat p = \sum e_i / \sum n_i` with
    :math:`\widehat{Var}(\hat p) = \sum n_i \hat p_i (1 - \hat p_i) / (\sum n_i)^2`; for a mean
    indicator, :math:`\bar y = \sum n_i \bar y_i / N` with :math:`\widehat{Var}(\bar y) = \sum n_i
    s_i^2 / N^2`. Both are additive, so cells pool further (over periods, subgroups, regions) by
    summing. The individual-level SD is :math:`\sqrt{\hat p(1-\hat p)}` for proportions and the
    pooled within-site SD :math:`\sqrt{\sum (n_i - 1) s_i^2 / \sum (n_i - 1)}` for means. The
    improvement direction multiplies by ``sign`` = -1 for ``lower_is_better`` indicators;
    ``std_score`` is the signed deviation from the indicator's pooled value over the whole panel in
    individual-level SD units (an effect-size scale comparable across indicators). Site-periods with
    ``n = 0`` carry no information and are skipped.

    References
    ----------
    Cochran, W. G. (1977). Sampling techniques (3rd ed.). Wiley (stratified estimation).

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> panel = sa.quintuple_aim_panel(sim.tables)
    >>> panel.to_frame().shape
    (1078, 15)
    >>> panel.to_frame().loc[0, ["rss_code", "indicator_id", "direction"]].tolist()
    ['01', 'EF_COST', 'lower_is_better']
    """
    sc, comp_vals, comp_label = _check_panel_inputs(tables, site, period, region, subgroup, comparison)
    ind = _panel_indicators(tables, indicators)
    o = _site_period_rows(tables, ind, sc, site, period)
    if o.empty:
        raise ScaleupDataError(
            f"quintuple_aim_panel: table 'outcomes' (argument 'tables'): none of its {len(tables['outcomes'])} "
            f"row(s) is usable: no row of the indicator(s) {first_values(ind['indicator_id'])} has n > 0. "
            "Check the column 'n' and the argument 'indicators'."
        )
    keys = [region] + ([subgroup] if subgroup else []) + ["period", "indicator_id", "domain", "type",
                                                          "direction", "measurement_unit"]
    comp = None
    if comparison is not None:
        o, comp = _split_comparison(o, comparison[0], comp_vals, comp_label)
    g, ref = _region_panel(o, keys, ind)
    cols = keys + ["n_sites", "n", "estimate", "se", "sd", "sign", "improvement", "std_score",
                   "total", "var_sum", "ss_within", "df_within"]
    return QuintupleAimPanel(data=g[cols], region=region, subgroup=subgroup, reference=ref, comparison=comp,
                             comparison_label=comp_label)


# --------------------------------------------------------------------------------------------------
# change from baseline
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class ChangeFromBaseline(Displayed):
    """Result of :func:`change_from_baseline`.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per ``by`` level (``"region"`` and, for a panel with a subgroup, ``"subgroup"``) x
        ``unit`` x ``indicator_id``: ``baseline``, ``baseline_se``, ``followup``, ``followup_se``,
        ``change`` (followup - baseline), ``change_se``, ``change_ci_low``, ``change_ci_high``,
        ``improvement_change`` (``sign * change``) with its interval ``improvement_change_ci_low``,
        ``improvement_change_ci_high`` (the change's interval, mirrored for ``lower_is_better``), ``std_change`` (``improvement_change / sd_pooled``), the sample sizes
        and the domain/type/direction of the indicator.
    panel : QuintupleAimPanel
    baseline_periods, followup_periods : tuple of int
    level : float
    """

    data: pd.DataFrame = field(repr=False)
    panel: QuintupleAimPanel = field(repr=False)
    baseline_periods: tuple
    followup_periods: tuple
    level: float

    def to_frame(self) -> pd.DataFrame:
        """The tidy table of changes."""
        return self.data.copy()

    def _repr_fields(self) -> dict:
        d = self.data
        out = {"n_units": int(d.loc[d["by"] == "region", "unit"].nunique()),
               "n_indicators": int(d["indicator_id"].nunique()), "baseline_periods": list(self.baseline_periods),
               "followup_periods": list(self.followup_periods),
               "median_std_change": float(np.nanmedian(d["std_change"])) if d["std_change"].notna().any() else None,
               "level": self.level}
        return out

    def _summary(self, tx) -> str:
        d = self.data
        lines = [tx("Change from baseline ({unit} {baseline}) to follow-up ({unit} {followup}), standardized (SD "
                    "units) in the improvement direction: positive = better, negative = worse.",
                    unit=tx("periods"), baseline=_span(self.baseline_periods, tx),
                    followup=_span(self.followup_periods, tx))]
        if "std_did" in d:
            lines.append(tx("Comparison sites: {label}; see std_did for the change relative to them.",
                            label=self.panel.comparison_label))
        names = self.panel._indicator_names()
        for by, dd in d.groupby("by", sort=False):
            labels = unit_labels(list(dd["unit"].unique()))
            lines += ["", tx("By region:") if by == "region" else tx("By subgroup:")]
            for ind, di in dd.groupby("indicator_id", sort=False):
                di = di.dropna(subset=["std_change"]).sort_values("std_change")
                if di.empty:
                    lines.append("  " + tx("{indicator}: no value.", indicator=names.get(ind, ind)))
                    continue
                lines.append("  " + tx("{indicator}: median {median}; worst {worst} ({w}), best {best} ({b})",
                                       indicator=names.get(ind, ind),
                                       median=tx.signed(float(di["std_change"].median())),
                                       worst=labels[di["unit"].iloc[0]], w=tx.signed(di["std_change"].iloc[0]),
                                       best=labels[di["unit"].iloc[-1]], b=tx.signed(di["std_change"].iloc[-1])))
        return "\n".join(lines)

    @styled
    def plot_dashboard(self, *, by: str = "region", vmax: float | None = None, title: str | None = None,
                       indicator_labels: Mapping | None = None, ax=None):
        """Units x indicators heat map of ``std_change`` (see :func:`plot_dashboard`)."""
        return plot_dashboard(self, by=by, vmax=vmax, title=title, indicator_labels=indicator_labels, ax=ax)


def _span(periods, tx) -> str:
    """``1-3`` or ``1, 3, 5`` (periods as numbers)."""
    ps = sorted(int(p) for p in periods)
    if len(ps) > 1 and ps == list(range(ps[0], ps[-1] + 1)):
        return tx("{first} to {last}", first=tx.int(ps[0]), last=tx.int(ps[-1]))
    return tx.join([tx.int(p) for p in ps])


def _unit_changes(d: pd.DataFrame, col: str, by: str, bp: list[int], fp: list[int], z: float,
                  ind_cols: list[str]) -> pd.DataFrame:
    """Baseline, follow-up and change (with its interval, the improvement and the standardized
    change) of each unit of column ``col`` x indicator."""
    b = _pool(d[d["period"].isin(bp)], [col] + ind_cols)
    f = _pool(d[d["period"].isin(fp)], [col] + ind_cols)
    m = b.merge(f, on=[col] + ind_cols, how="outer", suffixes=("_b", "_f"))
    sign = np.where(m["direction"] == "higher_is_better", 1.0, -1.0)
    change = m["estimate_f"] - m["estimate_b"]
    se = np.sqrt(m["se_f"] ** 2 + m["se_b"] ** 2)
    part = pd.DataFrame({
        "by": by, "unit": m[col].astype(str) if m[col].dtype == object else m[col],
        "indicator_id": m["indicator_id"], "domain": m["domain"], "type": m["type"],
        "direction": m["direction"], "measurement_unit": m["measurement_unit"],
        "n_baseline": m["n_b"], "n_followup": m["n_f"],
        "baseline": m["estimate_b"], "baseline_se": m["se_b"],
        "followup": m["estimate_f"], "followup_se": m["se_f"],
        "change": change, "change_se": se, "change_ci_low": change - z * se,
        "change_ci_high": change + z * se,
        "sign": sign, "improvement_change": sign * change,
        # the interval of the improvement is the change's interval, mirrored when sign = -1
        "improvement_change_ci_low": np.where(sign > 0, change - z * se, -(change + z * se)),
        "improvement_change_ci_high": np.where(sign > 0, change + z * se, -(change - z * se)),
        "sd_pooled": np.sqrt((m["sd_b"] ** 2 + m["sd_f"] ** 2) / 2),
    })  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        part["std_change"] = part["improvement_change"] / part["sd_pooled"]
    part["unit"] = part["unit"].astype(object)
    return part


def _against_comparison(part: pd.DataFrame, comparison: pd.DataFrame, bp: list[int], fp: list[int], z: float,
                        ind_cols: list[str]) -> None:
    """Add to ``part`` the comparison sites' change and the difference in differences (in place)."""
    cb = _pool(comparison[comparison["period"].isin(bp)], ind_cols)
    cf = _pool(comparison[comparison["period"].isin(fp)], ind_cols)
    cm = cb.merge(cf, on=ind_cols, how="outer", suffixes=("_b", "_f"))
    cm = cm.assign(cchange=cm["estimate_f"] - cm["estimate_b"],
                   cse=np.sqrt(cm["se_f"] ** 2 + cm["se_b"] ** 2))
    cm = part[["indicator_id"]].merge(cm[["indicator_id", "cchange", "cse"]], on="indicator_id", how="left")
    part["comparison_change"] = cm["cchange"].to_numpy()
    part["comparison_change_se"] = cm["cse"].to_numpy()
    did = part["change"] - part["comparison_change"]
    did_se = np.sqrt(part["change_se"] ** 2 + part["comparison_change_se"] ** 2)
    part["did"] = did
    part["did_se"] = did_se
    part["did_ci_low"] = did - z * did_se
    part["did_ci_high"] = did + z * did_se
    part["improvement_did"] = part["sign"] * did
    part["improvement_did_ci_low"] = np.where(part["sign"] > 0, part["did_ci_low"], -part["did_ci_high"])
    part["improvement_did_ci_high"] = np.where(part["sign"] > 0, part["did_ci_high"], -part["did_ci_low"])
    with np.errstate(invalid="ignore", divide="ignore"):
        part["std_did"] = part["improvement_did"] / part["sd_pooled"]


def change_from_baseline(
    panel: QuintupleAimPanel,
    *,
    baseline_periods: Iterable[int],
    followup_periods: Iterable[int],
    level: float = 0.95,
) -> ChangeFromBaseline:
    r"""Change of every indicator from baseline to follow-up, per region (and subgroup), with CIs.

    Parameters
    ----------
    panel : QuintupleAimPanel
        From :func:`quintuple_aim_panel`.
    baseline_periods, followup_periods : iterable of int
        Periods pooled as baseline and as follow-up (disjoint), e.g. ``range(1, 6)``.
    level : float, default 0.95
        Coverage of the Wald confidence intervals.

    Returns
    -------
    ChangeFromBaseline
        ``to_frame()`` has one row per unit and indicator (column ``by`` = ``"region"`` or
        ``"subgroup"``, ``unit`` = its value).

    Notes
    -----
    Baseline and follow-up values are the stratified pooled rates/means of
    :func:`quintuple_aim_panel` over the given periods. The change is the difference of two
    independent proportions (or means), :math:`\Delta = \hat\theta_f - \hat\theta_b` with
    :math:`SE = \sqrt{SE_f^2 + SE_b^2}` and the Wald interval :math:`\Delta \pm z_{1-\alpha/2} SE`.
    ``improvement_change`` is :math:`\text{sign}\times\Delta` (positive = better) and ``std_change``
    divides it by the individual-level SD pooled over baseline and follow-up,
    :math:`\sqrt{(s_b^2 + s_f^2)/2}` (a standardized mean difference; for proportions
    :math:`s^2 = \hat p(1-\hat p)`).
    A plain before-after change includes secular trends. When the panel has
    comparison sites (``quintuple_aim_panel(..., comparison=...)``), the table adds their pooled
    change (``comparison_change``, ``comparison_change_se``) and the difference-in-differences
    ``did`` = :math:`\Delta_{unit} - \Delta_{comparison}` with :math:`SE = \sqrt{SE_{unit}^2 +
    SE_{comparison}^2}` (independent samples), its CI, ``improvement_did`` with its CI
    (``improvement_did_ci_low``, ``improvement_did_ci_high``) and ``std_did``.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> panel = sa.quintuple_aim_panel(sim.tables, indicators=["TW_BURNOUT"])
    >>> ch = sa.change_from_baseline(panel, baseline_periods=range(1, 4), followup_periods=range(8, 11))
    >>> ch.to_frame()[["unit", "baseline", "followup", "change"]].head(2).round(3)
      unit  baseline  followup  change
    0   01     0.282     0.269  -0.013
    1   02     0.352     0.241  -0.111
    """
    if not isinstance(panel, QuintupleAimPanel):
        raise ScaleupDataError("argument 'panel': pass the result of sa.quintuple_aim_panel(...).")
    check_level(level)
    bp = _periods("baseline_periods", baseline_periods)
    fp = _periods("followup_periods", followup_periods)
    if set(bp) & set(fp):
        raise ScaleupDataError(
            f"arguments 'baseline_periods' and 'followup_periods' overlap in period(s) "
            f"{sorted(set(bp) & set(fp))}; give disjoint periods."
        )
    d = panel.data
    present = set(d["period"])
    for arg, ps in (("baseline_periods", bp), ("followup_periods", fp)):
        if not set(ps) & present:
            raise ScaleupDataError(f"argument '{arg}': none of {ps} is a period of the panel "
                                   f"({min(present)}-{max(present)}).")
    z = float(stats.norm.isf((1 - level) / 2))
    ind_cols = ["indicator_id", "domain", "type", "direction", "measurement_unit"]
    bys = [("region", panel.region)] + ([("subgroup", panel.subgroup)] if panel.subgroup else [])
    parts = []
    for by, col in bys:
        part = _unit_changes(d, col, by, bp, fp, z, ind_cols)
        if panel.comparison is not None:
            _against_comparison(part, panel.comparison, bp, fp, z, ind_cols)
        parts.append(part)
    data = pd.concat(parts, ignore_index=True)
    return ChangeFromBaseline(data=data, panel=panel, baseline_periods=tuple(bp), followup_periods=tuple(fp),
                              level=float(level))


# --------------------------------------------------------------------------------------------------
# deleterious effects
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class DeleteriousEffects(Displayed):
    """Result of :func:`deleterious_effects`.

    Attributes
    ----------
    tests : pandas.DataFrame
        One row per unit x indicator: the change columns of :class:`ChangeFromBaseline`,
        ``threshold``, ``statistic`` (z), ``pvalue`` (one-sided), ``pvalue_holm``, ``pvalue_bh``,
        ``flagged_holm``, ``flagged_bh``, ``flagged`` (the requested correction; Holm for
        ``"both"``), and, when the panel has the series, the runs-analysis columns ``centre``,
        ``longest_run``, ``longest_run_max``, ``n_crossings``, ``n_crossings_min``, ``runs_signal``,
        ``runs_worse`` (signal with the follow-up median on the worse side of the baseline centre).
    units : pandas.DataFrame
        One row per unit: number of indicators flagged (Holm, BH), ``flagged`` (any indicator
        flagged by the requested correction) and ``n_runs_worse``.
    by, correction, alpha : str, str, float
    """

    tests: pd.DataFrame = field(repr=False)
    units: pd.DataFrame = field(repr=False)
    by: str
    correction: str
    alpha: float
    changes: ChangeFromBaseline = field(repr=False)

    @property
    def flagged_units(self) -> tuple:
        """Units with at least one indicator flagged (requested correction)."""
        return tuple(self.units.loc[self.units["flagged"], "unit"])

    def to_frame(self) -> pd.DataFrame:
        """The per-test table."""
        return self.tests.copy()

    def _repr_fields(self) -> dict:
        t = self.tests
        out = {"by": self.by, "n_tests": len(t), "correction": self.correction, "alpha": self.alpha,
               "n_flagged_holm": int(t["flagged_holm"].sum()), "n_flagged_bh": int(t["flagged_bh"].sum()),
               "flagged_units": list(self.flagged_units)}
        if "runs_worse" in t:
            out["n_runs_worse"] = int(t["runs_worse"].sum())
        return out

    def _summary(self, tx) -> str:
        t = self.tests
        names = self.changes.panel._indicator_names()
        labels = unit_labels(list(t["unit"].unique()))
        method = {"holm": "Holm", "bh": "Benjamini-Hochberg", "both": "Holm (BH)"}[self.correction]
        contrast = t["contrast"].iloc[0] if "contrast" in t and len(t) else "baseline"
        lines = [tx("Deleterious effects by {by}: {tests} ({contrast}), {method} at alpha = {alpha}; {holm} flagged "
                    "after Holm, {bh} after Benjamini-Hochberg.",
                    by=tx("region") if self.by == "region" else tx("subgroup"),
                    tests=tx.n("{n} one-sided test", "{n} one-sided tests", len(t)),
                    contrast=tx("change from baseline") if contrast == "baseline"
                    else tx("difference-in-differences against the comparison sites"),
                    method=method, alpha=tx.num(self.alpha, 2), holm=tx.int(t["flagged_holm"].sum()),
                    bh=tx.int(t["flagged_bh"].sum()))]
        est = "improvement_did" if contrast == "comparison" else "improvement_change"
        fl = t[t["flagged"]].sort_values("pvalue")
        for r in fl.itertuples(index=False):
            row = r._asdict()
            lines.append("  " + tx("{unit}, {indicator}: improvement {estimate}, {p} (Holm {holm}, BH {bh})",
                                   unit=labels[r.unit], indicator=names.get(r.indicator_id, r.indicator_id),
                                   estimate=tx.ci(row[est], row[est + "_ci_low"], row[est + "_ci_high"],
                                                  level=self.changes.level),
                                   p=tx.pvalue(r.pvalue), holm=tx.pvalue(r.pvalue_holm), bh=tx.pvalue(r.pvalue_bh)))
        if "runs_worse" in t:
            rw = t[t["runs_worse"]]
            lines.append(tx.n("{n} run-chart signal in the worse direction", "{n} run-chart signals in the worse "
                              "direction", len(rw)) + (tx.colon() + " " + tx.join(
                                  [f"{labels[r.unit]} – {names.get(r.indicator_id, r.indicator_id)}"
                                   for r in rw.itertuples(index=False)]) if len(rw) else "") + ".")
        return "\n".join(lines)

    @styled
    def plot_dashboard(self, *, vmax: float | None = None, title: str | None = None,
                       indicator_labels: Mapping | None = None, ax=None):
        """Units x indicators heat map with the flags and run signals marked (see :func:`plot_dashboard`)."""
        return plot_dashboard(self, vmax=vmax, title=title, indicator_labels=indicator_labels, ax=ax)


def _check_deleterious_options(changes, correction, by, scale, alpha, contrast) -> None:
    if not isinstance(changes, ChangeFromBaseline):
        raise ScaleupDataError("argument 'changes': pass the result of sa.change_from_baseline(...).")
    if correction not in ("holm", "bh", "both"):
        raise ScaleupDataError(f"argument 'correction': 'holm', 'bh' or 'both', not {correction!r}.")
    if by not in ("region", "subgroup"):
        raise ScaleupDataError(f"argument 'by': 'region' or 'subgroup', not {by!r}.")
    if scale not in ("raw", "standardized"):
        raise ScaleupDataError(f"argument 'scale': 'raw' or 'standardized', not {scale!r}.")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ScaleupDataError(f"argument 'alpha': the test size (error rate) in (0, 1), e.g. 0.05, not {alpha!r}.")
    if contrast not in ("baseline", "comparison"):
        raise ScaleupDataError(f"argument 'contrast': 'baseline' or 'comparison', not {contrast!r}.")
    if contrast == "comparison" and "did" not in changes.data:
        raise ScaleupDataError(
            "argument 'contrast'='comparison': the panel has no comparison sites; build it with "
            "quintuple_aim_panel(..., comparison=('phase', 'not-adopted'))."
        )


def _thresholds(threshold, t: pd.DataFrame) -> np.ndarray:
    """The harm threshold of each row: one number, or a value per indicator (0 for the others)."""
    if isinstance(threshold, Mapping):
        unknown = sorted(set(threshold) - set(t["indicator_id"]))
        if unknown:
            raise ScaleupDataError(f"argument 'threshold': unknown indicator(s) {unknown}.")
        thr = t["indicator_id"].map(lambda i: float(threshold.get(i, 0.0))).to_numpy()
    else:
        try:
            thr = np.full(len(t), float(threshold))
        except (TypeError, ValueError):
            raise ScaleupDataError(f"argument 'threshold': a number or a dict, not {threshold!r}.") from None
    if not np.all(np.isfinite(thr)):
        raise ScaleupDataError("argument 'threshold': thresholds must be finite numbers.")
    return thr


def _runs_in_worse_direction(changes, t: pd.DataFrame, by: str, contrast: str) -> pd.DataFrame:
    """Anhøj runs analysis of each unit x indicator series (on the improvement scale, relative to the
    comparison sites for ``contrast="comparison"``) around its baseline median."""
    from .spc import runs_analysis

    panel = changes.panel
    col = panel.region if by == "region" else panel.subgroup
    ser = _pool(panel.data, [col, "period", "indicator_id", "type"])
    if contrast == "comparison":  # series relative to the comparison sites, period by period
        cser = panel.comparison[["period", "indicator_id", "estimate"]].rename(columns={"estimate": "_c"})
        ser = ser.merge(cser, on=["period", "indicator_id"], how="left")
        ser["estimate"] = ser["estimate"] - ser["_c"]
    sign = dict(zip(t["indicator_id"], t["sign"]))
    bp, fp = set(changes.baseline_periods), set(changes.followup_periods)
    rows = []
    for (u, i), s in ser.groupby([col, "indicator_id"], sort=False, observed=True):
        s = s.sort_values("period")
        vals = sign.get(i, 1.0) * s["estimate"].to_numpy()
        base = vals[s["period"].isin(bp).to_numpy()]
        fol = vals[s["period"].isin(fp).to_numpy()]
        if base.size == 0 or not np.isfinite(np.median(base)):
            continue
        centre = float(np.median(base))
        ra = runs_analysis(vals, centre=centre)
        worse = bool(ra.runs_signal and fol.size and np.median(fol) < centre)
        rows.append({"unit": u, "indicator_id": i, "centre": centre, "longest_run": ra.longest_run,
                     "longest_run_max": ra.longest_run_max, "n_crossings": ra.n_crossings,
                     "n_crossings_min": ra.n_crossings_min, "runs_signal": ra.runs_signal,
                     "runs_worse": worse})
    return pd.DataFrame(rows, columns=["unit", "indicator_id", "centre", "longest_run", "longest_run_max",
                                       "n_crossings", "n_crossings_min", "runs_signal", "runs_worse"])


def _one_sided_tests(t: pd.DataFrame, est, se, thr, alpha: float, correction: str) -> None:
    """Add to ``t`` (in place) the one-sided test of each improvement below its threshold, the Holm and
    Benjamini-Hochberg adjusted p-values and the flags at ``alpha``."""
    from statsmodels.stats.multitest import multipletests

    t["threshold"] = thr
    with np.errstate(invalid="ignore", divide="ignore"):
        zstat = (est - thr) / se
    t["statistic"] = zstat
    t["pvalue"] = stats.norm.cdf(zstat)  # one-sided: improvement below the threshold
    ok = np.isfinite(t["pvalue"].to_numpy())
    for name, meth in (("holm", "holm"), ("bh", "fdr_bh")):
        adj = np.full(len(t), np.nan)
        if ok.any():
            adj[ok] = multipletests(t["pvalue"].to_numpy()[ok], alpha=alpha, method=meth)[1]
        t[f"pvalue_{name}"] = adj
        t[f"flagged_{name}"] = np.nan_to_num(adj, nan=1.0) <= alpha
    t["flagged"] = t["flagged_bh"] if correction == "bh" else t["flagged_holm"]


def _unit_flags(t: pd.DataFrame, runs: bool) -> pd.DataFrame:
    """One row per unit: indicators tested, flagged (Holm, BH, requested correction), run signals."""
    g = t.groupby("unit", sort=True)
    units = pd.DataFrame({
        "n_indicators": g.size(), "n_flagged_holm": g["flagged_holm"].sum(),
        "n_flagged_bh": g["flagged_bh"].sum(), "flagged": g["flagged"].any(),
    })  # fmt: skip
    if runs:
        units["n_runs_worse"] = g["runs_worse"].sum()
    return units.reset_index()


def deleterious_effects(
    changes: ChangeFromBaseline,
    *,
    threshold: float | Mapping[str, float] = 0.0,
    alpha: float = 0.05,
    correction: str = "both",
    by: str = "region",
    scale: str = "raw",
    contrast: str = "baseline",
    runs: bool = True,
) -> DeleteriousEffects:
    r"""Flag regions (or subgroups) whose indicators got worse than a threshold, with multiplicity control.

    Parameters
    ----------
    changes : ChangeFromBaseline
        From :func:`change_from_baseline`.
    threshold : float or dict, default 0
        Harm threshold :math:`\delta` in the improvement direction: a change is deleterious when the
        improvement change is below it (0: any worsening; -0.02: worsening beyond 0.02 tolerated
        as a margin). A dict gives one threshold per ``indicator_id`` (others: 0).
    alpha : float, default 0.05
        Family-wise error rate (Holm) or false discovery rate (BH).
    correction : {"holm", "bh", "both"}
        Which adjustment defines ``flagged`` (``"both"``: both are reported, ``flagged`` is Holm).
    by : {"region", "subgroup"}
        Units tested (``"subgroup"`` needs a panel built with ``subgroup=``).
    scale : {"raw", "standardized"}
        Whether ``threshold`` is in the indicator's units or in ``std_change`` (SD) units.
    contrast : {"baseline", "comparison"}
        Test the change from baseline (``improvement_change``), or the difference-in-differences
        against the comparison sites (``improvement_did``; needs a panel built with ``comparison=``).
    runs : bool, default True
        Add the Anhøj runs analysis of each unit x indicator series (improvement direction) about
        the median of its baseline periods (:func:`scaleup_analysis.runs_analysis`).

    Returns
    -------
    DeleteriousEffects

    Notes
    -----
    For each unit and indicator, with :math:`\Delta^{imp}` the improvement change (or the
    improvement difference-in-differences for ``contrast="comparison"``),
    :math:`H_0: \Delta^{imp} \ge \delta` against
    :math:`H_1: \Delta^{imp} < \delta` with :math:`z = (\Delta^{imp} - \delta)/SE` and
    :math:`p = \Phi(z)`. The family is every unit x indicator test of the call; Holm's step-down and
    the Benjamini-Hochberg step-up adjusted p-values come from
    :func:`statsmodels.stats.multitest.multipletests` (``"holm"``, ``"fdr_bh"``); a test is flagged
    when its adjusted p-value is <= ``alpha``. The runs analysis uses the whole series of the unit
    with the baseline median as (frozen) centre line; ``runs_worse`` requires a signal and a
    follow-up median below the centre (improvement direction). With ``contrast="comparison"`` the
    series is the unit's value minus the comparison sites' value in each period.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> panel = sa.quintuple_aim_panel(sim.tables, indicators=["TW_BURNOUT", "UX_SAT"])
    >>> ch = sa.change_from_baseline(panel, baseline_periods=range(1, 4), followup_periods=range(8, 11))
    >>> res = sa.deleterious_effects(ch, correction="both")
    >>> res.units.head(3)
      unit  n_indicators  n_flagged_holm  n_flagged_bh  flagged  n_runs_worse
    0   01             2               0             0    False             0
    1   02             2               0             0    False             0
    2   03             2               0             0    False             0
    """
    _check_deleterious_options(changes, correction, by, scale, alpha, contrast)
    t = changes.data[changes.data["by"] == by].copy().reset_index(drop=True)
    if t.empty:
        raise ScaleupDataError(
            f"argument 'by'={by!r}: the changes have no {by} rows; build the panel with "
            "quintuple_aim_panel(..., subgroup='<column of sites>') to test subgroups."
        )
    thr = _thresholds(threshold, t)
    if contrast == "comparison":
        est = t["improvement_did"].to_numpy(dtype=float)
        se = t["did_se"].to_numpy(dtype=float)
    else:
        est = t["improvement_change"].to_numpy(dtype=float)
        se = t["change_se"].to_numpy(dtype=float)
    t["contrast"] = contrast
    if scale == "standardized":
        est, se = est / t["sd_pooled"].to_numpy(), se / t["sd_pooled"].to_numpy()
    _one_sided_tests(t, est, se, thr, alpha, correction)
    if runs:
        t = t.merge(_runs_in_worse_direction(changes, t, by, contrast), on=["unit", "indicator_id"], how="left")
        t["runs_signal"] = t["runs_signal"].astype("boolean").fillna(False).astype(bool)
        t["runs_worse"] = t["runs_worse"].astype("boolean").fillna(False).astype(bool)
    return DeleteriousEffects(tests=t, units=_unit_flags(t, runs), by=by, correction=correction, alpha=float(alpha),
                              changes=changes)


# --------------------------------------------------------------------------------------------------
# dashboard
# --------------------------------------------------------------------------------------------------
@styled
def plot_dashboard(changes, *, by: str = "region", vmax: float | None = None, title: str | None = None,
                   indicator_labels: Mapping | None = None, ax=None):
    """Units x indicators heat map of the standardized change, coloured by better / worse.

    One row per region (by name with its code) or subgroup, one column per indicator (its name
    from the ``indicators`` table), the columns grouped by quintuple-aim domain. Each cell is the
    indicator's ``std_change`` (SD units) in its improvement direction, printed in the cell and
    coloured on a diverging scale: blue = better, orange = worse, whatever the direction of the
    indicator (higher or lower is better); cells without a value (no data in a window) are light
    grey. With a :class:`DeleteriousEffects` result tested against the comparison sites
    (``contrast="comparison"``) the cells are ``std_did``, the change relative to those sites; a
    cell is marked ``▼`` when the indicator is flagged as deleterious (requested correction) and
    ``●`` when its series shows a run-chart signal in the worse direction. The colour bar and the
    legend beside the map explain the colours and marks.

    Parameters
    ----------
    changes : ChangeFromBaseline or DeleteriousEffects
    by : {"region", "subgroup"}
        Units shown (for a :class:`ChangeFromBaseline`; a :class:`DeleteriousEffects` uses its own).
    vmax : float, optional
        Colour range is [-vmax, vmax] (default: the largest absolute cell value).
    title : str, optional
    indicator_labels : mapping, optional
        ``{indicator_id: label}`` shown instead of the names of the ``indicators`` table (e.g. the
        study file's labels, in the report's language).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=40, n_periods=10, patients_per_site_period=5)
    >>> panel = sa.quintuple_aim_panel(sim.tables)
    >>> ch = sa.change_from_baseline(panel, baseline_periods=range(1, 4), followup_periods=range(8, 11))
    >>> ax = sa.plot_dashboard(sa.deleterious_effects(ch))
    >>> ax.get_ylabel()
    'Region'
    """
    import textwrap

    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    from ..narrative import Text

    tx = Text()
    harm = isinstance(changes, DeleteriousEffects)
    if harm:
        t, by, panel = changes.tests, changes.by, changes.changes.panel
    elif isinstance(changes, ChangeFromBaseline):
        t, panel = changes.data[changes.data["by"] == by], changes.panel
    else:
        raise ScaleupDataError("plot_dashboard(): pass a ChangeFromBaseline or DeleteriousEffects result.")
    if t.empty:
        raise ScaleupDataError(f"plot_dashboard(): no rows for by={by!r}.")
    relative = harm and "contrast" in t and (t["contrast"] == "comparison").any() and "std_did" in t
    value = "std_did" if relative else "std_change"
    domain_of = dict(zip(t["indicator_id"], t["domain"]))
    rank = {d: i for i, d in enumerate(DOMAINS)}
    indicators = sorted(domain_of, key=lambda i: (rank.get(domain_of[i], len(DOMAINS)), str(domain_of[i]), str(i)))
    units = sorted(t["unit"].unique(), key=str)
    val = t.pivot_table(index="unit", columns="indicator_id", values=value, aggfunc="mean", dropna=False).reindex(
        index=units, columns=indicators)
    M = val.to_numpy(dtype=float)
    n_rows, n_cols = M.shape
    col_w = min(1.25, 8.4 / n_cols)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(min(14.0, 3.2 + col_w * n_cols + 2.6), min(13.5, 3.4 + 0.34 * n_rows)),
                             layout="constrained")
    finite = np.isfinite(M)
    lim = vmax if vmax is not None else (float(np.nanmax(np.abs(M))) if finite.any() else 1.0)
    lim = lim if lim > 0 else 1.0
    cmap = DIVERGING.with_extremes(bad=MISSING)
    im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
    flag = sig = None
    if harm:
        flag = t.pivot_table(index="unit", columns="indicator_id", values="flagged", aggfunc="any").reindex(
            index=units, columns=indicators).fillna(False).to_numpy(dtype=bool)
        if "runs_worse" in t:
            sig = t.pivot_table(index="unit", columns="indicator_id", values="runs_worse", aggfunc="any").reindex(
                index=units, columns=indicators).fillna(False).to_numpy(dtype=bool)
    for i in range(n_rows):
        for j in range(n_cols):
            if not finite[i, j]:  # hatched, so that it cannot be read as a change of 0
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=MISSING, edgecolor=GREY, hatch="///",
                                       lw=0))
                continue
            dark = abs(M[i, j]) > 0.6 * lim
            ax.text(j, i, tx.num(M[i, j], 2), ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "black")
            marks = ("▼" if flag is not None and flag[i, j] else "") + ("●" if sig is not None and sig[i, j] else "")
            if marks:
                ax.text(j + 0.46, i, marks, ha="right", va="center", fontsize=7,
                        color="white" if dark else "black")
    # indicators by name, grouped by domain (headers on top, white gaps between domains)
    names = {**panel._indicator_names(), **dict(indicator_labels or {})}
    width = max(8, int(col_w * 13))
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels([textwrap.fill(data_text(names.get(i, i)), width) for i in indicators], fontsize=8)
    ax.tick_params(axis="x", length=0)
    groups = [(d, [k for k, i in enumerate(indicators) if domain_of[i] == d])
              for d in dict.fromkeys(domain_of[i] for i in indicators)]
    # the domain headers sit in a band above the first row, inside the axes (a title set later
    # by the caller cannot overlap them)
    for d, cols in groups:
        ax.text(float(np.mean(cols)), -0.95, textwrap.fill(_domain_label(d, tx), max(width, int(len(cols) * col_w * 13))),
                ha="center", va="center", fontsize=8.5, fontweight="bold")
        ax.plot([cols[0] - 0.42, cols[-1] + 0.42], [-0.58, -0.58], color="black", lw=0.9, solid_capstyle="butt")
    ax.set_ylim(n_rows - 0.5, -1.45)
    for _, cols in groups[1:]:
        ax.axvline(cols[0] - 0.5, color="white", lw=3)
    labels = unit_labels(units)
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([labels[u] for u in units])
    ax.set_ylabel(tx("Region") if by == "region" else tx("Subgroup"))
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    bar = ax.figure.colorbar(im, ax=ax, location="bottom", shrink=0.45, aspect=30, pad=0.02)
    bar.set_ticks([-lim, 0.0, lim])
    bar.set_ticklabels([tx("{value} worse", value=tx.num(-lim, 2)), "0",
                        tx("{value} better", value=tx.signed(lim, 2))])
    bar.set_label(tx("Change relative to the comparison sites (SD units)") if relative
                  else tx("Standardized change (SD units)"))
    handles = []
    if not finite.all():
        handles.append(Patch(facecolor=MISSING, edgecolor=GREY, hatch="///", label=textwrap.fill(
            tx("No value (no data in a window)"), 28)))
    if flag is not None:
        method = {"holm": "Holm", "bh": "Benjamini-Hochberg", "both": "Holm"}[changes.correction]
        handles.append(Line2D([], [], ls="none", marker="v", color="black",
                              label=textwrap.fill(tx("Significant worsening ({method})", method=method), 26)))
    if sig is not None:
        handles.append(Line2D([], [], ls="none", marker="o", color="black", ms=5,
                              label=textwrap.fill(tx("Run-chart signal in the worse direction"), 26)))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title=textwrap.fill(tx("Blue = better, orange = worse, for every indicator"), 28),
              alignment="left")
    if title is None:
        title = (tx("Change relative to the comparison sites, baseline to follow-up") if relative
                 else tx("Change from baseline to follow-up"))
    ax.set_title(title)
    return ax
