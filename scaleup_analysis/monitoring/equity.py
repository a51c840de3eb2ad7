r"""Equity monitoring: summary measures of inequality across ordered groups, and equity effects.

:func:`inequality` summarises how an outcome varies across *ordered* social groups (e.g. the five
deprivation quintiles of the sites, or rurality) from grouped data: the slope and relative indices
of inequality (SII, RII), the concentration index (standard, Erreygers-corrected and Wagstaff-
normalised) and the pairwise rate ratios and differences against a reference group.

:func:`equity_effects` answers "does the scale-up widen or narrow the gap?" from site x period
outcome data: the difference in changes (treated minus comparison sites) in each stratum, a test
of heterogeneity across strata and of a linear trend across ordered strata, and the change of the
SII between a *before* and an *after* window.

Conventions (as WHO HEAT and O'Donnell et al. 2008): groups are placed on a social scale running
from the **most disadvantaged (rank 0)** to the **least disadvantaged (rank 1)**; the fractional
rank (ridit) of a group is the cumulative population share of the groups below it plus half its
own share. A positive SII or concentration index means that the outcome is higher among the less
disadvantaged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_level, check_magnitude, checked_inputs, first_values, numeric_column, rows_text
from .._display import Displayed
from .._style import NEUTRAL, PALETTE, data_text, new_axes, styled, ticks_inside
from ..errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..i18n import N_

__all__ = ["inequality", "Inequality", "equity_effects", "EquityEffects"]

_KINDS = ("proportion", "mean", "rate")
#: Largest magnitude of an outcome value: squares and variances must stay finite.
_MAX_ABS = 1e100


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _need_columns(df, table: str, cols: dict) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ScaleupDataError(f"argument '{table}' must be a pandas DataFrame, got {type(df).__name__}.")
    for arg, col in cols.items():
        if col is not None and col not in df.columns:
            raise ScaleupDataError(
                f"{table}: column {col!r} (argument '{arg}') not found; available columns: "
                f"{list(df.columns)}. Pass the right column name as {arg}=..."
            )


def _numeric(df: pd.DataFrame, table: str, col: str, arg: str, *, positive=False, nonneg=False) -> np.ndarray:
    x = numeric_column(df, col, f"table '{table}'", arg=arg)
    bad = ~(x > 0) if positive else (~(x >= 0) if nonneg else np.zeros(x.size, bool))
    if bad.any():
        rule = "> 0" if positive else ">= 0"
        raise ScaleupDataError(
            f"table '{table}', column {col!r} (argument '{arg}') must be {rule}; "
            f"{rows_text(df.index, bad, label='first:')} violate this. Fix or drop these rows."
        )
    return x


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + check_level(level) / 2))


# --------------------------------------------------------------------------------------------
# inequality
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Inequality(Displayed):
    r"""Result of :func:`inequality` (summary measures of inequality across ordered groups).

    Attributes
    ----------
    strata : pandas.DataFrame
        One row per stratum (social group), ordered from the most to the least disadvantaged:
        ``stratum``, ``population``, ``share``, ``ridit`` (fractional rank), ``value``, ``se``,
        ``ci_low``, ``ci_high``, ``fitted`` (SII line), ``cum_share`` and ``cum_outcome_share``
        (concentration curve ordinates), ``difference``/``difference_se``/``difference_ci_low``/
        ``difference_ci_high`` (stratum minus reference) and ``ratio``/``log_ratio_se``/
        ``ratio_ci_low``/``ratio_ci_high`` (stratum over reference).
    mean : float
        Population-weighted mean of the outcome, :math:`\mu = \sum_j w_j y_j`.
    sii, sii_se, sii_ci_low, sii_ci_high : float
        Slope index of inequality (predicted value at rank 1 minus at rank 0).
    intercept : float
        Predicted value at rank 0 (most disadvantaged end) of the SII line.
    rii_ratio, rii_ratio_ci_low, rii_ratio_ci_high, log_rii_ratio_se : float
        RII as a ratio of predicted values at rank 1 and rank 0 (Pamuk 1985; WHO HEAT).
    rii_mean, rii_mean_se, rii_mean_ci_low, rii_mean_ci_high : float
        RII as SII over the population mean (Mackenbach & Kunst 1997).
    cindex, cindex_se, cindex_ci_low, cindex_ci_high : float
        Standard (relative) concentration index with the Kakwani, Wagstaff & van Doorslaer (1997)
        grouped-data standard error.
    cindex_se_method : str
        ``"kakwani1997"`` (both terms, needs the sample sizes ``n``) or ``"within_group_only"``.
    erreygers, erreygers_se, erreygers_ci_low, erreygers_ci_high : float
        Erreygers (2009) corrected concentration index (NaN without ``bounds``).
    wagstaff, wagstaff_se, wagstaff_ci_low, wagstaff_ci_high : float
        Wagstaff (2005) normalised concentration index (NaN without ``bounds``).
    reference : object
        Reference stratum of the differences and ratios.
    kind, scale, bounds, level, most_disadvantaged, outcome : settings used.
    """

    strata: pd.DataFrame
    mean: float
    sii: float
    sii_se: float
    sii_ci_low: float
    sii_ci_high: float
    intercept: float
    rii_ratio: float
    log_rii_ratio_se: float
    rii_ratio_ci_low: float
    rii_ratio_ci_high: float
    rii_mean: float
    rii_mean_se: float
    rii_mean_ci_low: float
    rii_mean_ci_high: float
    cindex: float
    cindex_se: float
    cindex_ci_low: float
    cindex_ci_high: float
    cindex_se_method: str
    erreygers: float
    erreygers_se: float
    erreygers_ci_low: float
    erreygers_ci_high: float
    wagstaff: float
    wagstaff_se: float
    wagstaff_ci_low: float
    wagstaff_ci_high: float
    reference: object
    kind: str
    scale: float
    bounds: tuple | None
    level: float
    most_disadvantaged: str
    outcome: str = "outcome"

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the summary measures: ``measure``, ``estimate``, ``se``, ``ci_low``, ``ci_high``."""
        rows = [
            ("mean", self.mean, np.nan, np.nan, np.nan),
            ("sii", self.sii, self.sii_se, self.sii_ci_low, self.sii_ci_high),
            ("rii_ratio", self.rii_ratio, self.log_rii_ratio_se, self.rii_ratio_ci_low, self.rii_ratio_ci_high),
            ("rii_mean", self.rii_mean, self.rii_mean_se, self.rii_mean_ci_low, self.rii_mean_ci_high),
            ("cindex", self.cindex, self.cindex_se, self.cindex_ci_low, self.cindex_ci_high),
            ("erreygers", self.erreygers, self.erreygers_se, self.erreygers_ci_low, self.erreygers_ci_high),
            ("wagstaff", self.wagstaff, self.wagstaff_se, self.wagstaff_ci_low, self.wagstaff_ci_high),
        ]
        out = pd.DataFrame(rows, columns=["measure", "estimate", "se", "ci_low", "ci_high"])
        out["se_scale"] = np.where(out["measure"] == "rii_ratio", "log", "natural")
        return out

    def _repr_fields(self) -> dict:
        return {"outcome": self.outcome, "n_strata": len(self.strata), "mean": self.mean, "sii": self.sii,
                "sii_ci": (self.sii_ci_low, self.sii_ci_high), "rii_ratio": self.rii_ratio, "cindex": self.cindex,
                "cindex_ci": (self.cindex_ci_low, self.cindex_ci_high), "level": self.level}

    def _summary(self, tx) -> str:
        g = self.strata
        lines = [tx("Inequality in “{outcome}” across {k} ordered groups (rank 0 = most disadvantaged = {first}); "
                    "{level} confidence intervals.", outcome=self.outcome, k=tx.int(len(g)),
                    first=str(g["stratum"].iloc[0]), level=tx.pct(self.level))]
        for r in self.to_frame().itertuples(index=False):
            if not np.isfinite(r.estimate):
                continue
            label = tx(_MEASURE_LABELS[r.measure])
            if np.isfinite(r.ci_low):
                value = tx.ci(r.estimate, r.ci_low, r.ci_high, digits=_digits(r.estimate, r.ci_low, r.ci_high),
                              level=self.level)
            else:
                value = tx.num(r.estimate, _digits(r.estimate))
            lines.append(f"  {label}{tx.colon()} {value}")
        lines += ["", tx("Each group against the reference group {ref}:", ref=str(self.reference))]
        for r in g.itertuples(index=False):
            d = _digits(r.value, r.difference)
            lines.append("  " + tx("{group}: value {value}, difference {difference}, ratio {ratio}",
                                   group=str(r.stratum), value=tx.num(r.value, d), difference=tx.signed(r.difference, d),
                                   ratio=tx.num(r.ratio, 3)))
        return "\n".join(lines)

    @styled
    def plot_gradient(self, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                      ax=None):
        """Outcome by group (with CIs) at the groups' ridits, and the fitted SII line. Returns the Axes."""
        from matplotlib.lines import Line2D

        from ..narrative import Text

        tx = Text()
        ax = new_axes(ax, (7.5, 4.2))
        g = self.strata
        yerr = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]])
        ax.errorbar(g["ridit"], g["value"], yerr=yerr, fmt="o", color=PALETTE[0], ecolor=PALETTE[0], capsize=3)
        xs = np.array([0.0, 1.0])
        ax.plot(xs, self.intercept + self.sii * xs, "--", color=NEUTRAL)
        for r in g.itertuples(index=False):
            ax.annotate(data_text(r.stratum), (r.ridit, r.value), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel(tx("Social rank (0 = most disadvantaged, 1 = least disadvantaged)") if xlabel is None else xlabel)
        ax.set_ylabel(data_text(self.outcome) if ylabel is None else ylabel)
        ax.set_title(tx("Social gradient and slope index of inequality") if title is None else title)
        level = tx.pct(self.level)
        handles = [
            Line2D([], [], color=PALETTE[0], marker="o", label=tx("Group value ({level} CI)", level=level)),
            Line2D([], [], color=NEUTRAL, ls="--", label=tx("Fitted line: SII = {sii}",
                                                             sii=tx.num(self.sii, _digits(self.sii)))),
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1))
        ticks_inside(ax, "y")
        ticks_inside(ax, "x")
        return ax

    @styled
    def plot_concentration_curve(self, *, title: str | None = None, xlabel: str | None = None,
                                 ylabel: str | None = None, ax=None):
        """Concentration curve (cumulative outcome share vs cumulative population share). Returns the Axes."""
        from ..narrative import Text

        tx = Text()
        import textwrap

        ax = new_axes(ax, (7.5, 4.6))
        g = self.strata
        x = np.concatenate([[0.0], g["cum_share"].to_numpy(float)])
        y = np.concatenate([[0.0], g["cum_outcome_share"].to_numpy(float)])
        ax.plot([0, 1], [0, 1], ":", color=NEUTRAL, label=tx("Line of equality"))
        ax.plot(x, y, "-o", color=PALETTE[0], ms=4, label=textwrap.fill(
            tx("Concentration curve (C = {c})", c=tx.num(self.cindex, _digits(self.cindex))), 22))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(tx("Cumulative population share (most disadvantaged first)") if xlabel is None else xlabel)
        ax.set_ylabel(tx("Cumulative share of the outcome") if ylabel is None else ylabel)
        ax.set_title(tx("Concentration curve") if title is None else title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1))
        return ax


#: Labels of the measures of ``Inequality.to_frame()``.
_MEASURE_LABELS = {
    "mean": N_("Population mean"), "sii": N_("Slope index of inequality (SII)"),
    "rii_ratio": N_("Relative index of inequality (ratio form)"),
    "rii_mean": N_("Relative index of inequality (SII / mean)"), "cindex": N_("Concentration index"),
    "erreygers": N_("Erreygers concentration index"), "wagstaff": N_("Wagstaff concentration index"),
}


def _digits(*values: float) -> int:
    """Decimals showing the values with about three significant digits (2 to 5)."""
    finite = [abs(float(v)) for v in values if v is not None and np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return int(min(5, max(2, 2 - math.floor(math.log10(max(finite)))))) if max(finite) < 1 else 2


def _check_inequality_options(data, outcome, stratum, population, events, n, se, kind, most_disadvantaged, scale):
    """The columns named exist; ``kind``, ``most_disadvantaged`` and ``scale`` are valid."""
    _need_columns(data, "data", {"outcome": outcome, "stratum": stratum, "population": population,
                             "events": events, "n": n, "se": se})
    if kind not in _KINDS:
        raise ScaleupDataError(f"argument 'kind' must be one of {_KINDS}, got {kind!r}.")
    if most_disadvantaged not in ("first", "last"):
        raise ScaleupDataError(f"argument 'most_disadvantaged' must be 'first' or 'last', got {most_disadvantaged!r}.")
    if not (np.isfinite(scale) and scale > 0):
        raise ScaleupDataError(f"argument 'scale' must be a positive number, got {scale!r}.")


def _sorted_strata(data, stratum, most_disadvantaged):
    """``data`` sorted from the most disadvantaged group (one row per group, every group ranked)."""
    if len(data) < 2:
        raise ScaleupDataError(f"data: at least 2 groups are needed, got {len(data)} row(s).")
    if data[stratum].isna().any():
        raise ScaleupDataError(
            f"data: column {stratum!r} (argument 'stratum') has missing values in "
            f"{rows_text(data.index, data[stratum].isna().to_numpy(), label='first:')}; every group needs its rank."
        )
    dup = data[stratum].duplicated(keep=False).to_numpy()
    if dup.any():
        raise ScaleupDataError(
            f"data: column {stratum!r} (argument 'stratum') must identify the groups, but "
            f"{rows_text(data.index, dup, label='first:')} share a value; aggregate to one row per group first."
        )
    try:
        return data.sort_values(stratum, ascending=(most_disadvantaged == "first"), kind="mergesort")
    except TypeError as exc:
        raise ScaleupDataError(f"data: column {stratum!r} (argument 'stratum') must be sortable.") from exc


def _sampling_variances(d, y, outcome, events, n, se, kind, scale) -> np.ndarray:
    """Sampling variance of each group value: from ``se``, or binomial / Poisson from events and n."""
    if se is not None:
        s = _numeric(d, "data", se, "se", nonneg=True)
        return s**2
    if events is not None and n is not None:
        if kind == "mean":
            raise ScaleupDataError("kind='mean' needs the standard errors of the group means: pass se='<column>'.")
        ev = _numeric(d, "data", events, "events", nonneg=True)
        nn = _numeric(d, "data", n, "n", positive=True)
        if kind == "proportion" and (ev > nn).any():
            raise ScaleupDataError(
                f"data: column {events!r} exceeds {n!r} in {rows_text(d.index, ev > nn, label='first:')}; for proportions 0 <= events <= n."
            )
        p = ev / nn
        v = scale**2 * (p * (1 - p) / nn if kind == "proportion" else ev / nn**2)
        bad = ~np.isclose(y, scale * p, rtol=1e-3, atol=1e-12 * scale)
        if bad.any():
            raise ScaleupDataError(
                f"data: column {outcome!r} differs from scale * {events} / {n} (scale = {scale:g}) in "
                f"{rows_text(d.index, bad, label='first:')}; check 'scale' or the columns."
            )
        return v
    raise ScaleupDataError(
        "inequality needs the sampling variance of each group value: pass se='<column>' "
        "(standard errors) or events='<column>' and n='<column>'."
    )


def _outcome_bounds(bounds, kind, scale, y, d, outcome):
    """(min, max) of the outcome for the Erreygers and Wagstaff indices, or None."""
    if bounds is None and kind == "proportion":
        bounds = (0.0, float(scale))
    if bounds is None:
        return None
    lo, hi = (float(bounds[0]), float(bounds[1]))
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ScaleupDataError(f"argument 'bounds' must be (min, max) with min < max, got {bounds!r}.")
    out_of = (y < lo) | (y > hi)
    if out_of.any():
        raise ScaleupDataError(
            f"data: column {outcome!r} lies outside bounds {bounds} in {rows_text(d.index, out_of, label='first:')}."
        )
    return (lo, hi)


def _sii_rii(w, x, y, v, z) -> dict:
    """SII (weighted regression on the ridit), RII in ratio and mean forms, with delta-method SEs."""
    xbar = float(np.sum(w * x))
    mu = float(np.sum(w * y))
    sxx = float(np.sum(w * (x - xbar) ** 2))
    c = w * (x - xbar) / sxx
    b = float(c @ y)
    dd = w - xbar * c
    a = float(dd @ y)
    sii_se = math.sqrt(float(np.sum(c**2 * v)))

    # RII, ratio form (log scale)
    top = a + b
    if a > 0 and top > 0:
        rii_ratio = top / a
        g = (dd + c) / top - dd / a
        lse = math.sqrt(float(np.sum(g**2 * v)))
        rr_lo, rr_hi = rii_ratio * math.exp(-z * lse), rii_ratio * math.exp(z * lse)
    else:
        warnings.warn(
            "inequality: a predicted value at rank 0 or 1 is <= 0, so rii_ratio is undefined (NaN).",
            ScaleupWarning,
            stacklevel=3,
        )
        rii_ratio = lse = rr_lo = rr_hi = float("nan")
    # RII, mean form (natural scale)
    if mu != 0:
        rii_mean = b / mu
        g = c / mu - b * w / mu**2
        rm_se = math.sqrt(float(np.sum(g**2 * v)))
    else:
        rii_mean = rm_se = float("nan")
    return dict(mean=mu, sii=b, sii_se=sii_se, sii_ci_low=b - z * sii_se, sii_ci_high=b + z * sii_se, intercept=a,
                rii_ratio=rii_ratio, log_rii_ratio_se=lse, rii_ratio_ci_low=rr_lo, rii_ratio_ci_high=rr_hi,
                rii_mean=rii_mean, rii_mean_se=rm_se, rii_mean_ci_low=rii_mean - z * rm_se,
                rii_mean_ci_high=rii_mean + z * rm_se)


def _concentration_indices(w, x, y, v, mu, n_tot, bounds, z) -> tuple[dict, np.ndarray]:
    """Concentration index (Kakwani et al. SE; within-group term only without ``n_tot``), Erreygers
    and Wagstaff indices; also returns the concentration-curve ordinates."""
    cindex = 2.0 * float(np.sum(w * y * x)) / mu - 1.0
    q = np.cumsum(w * y) / mu
    qlag = np.concatenate([[0.0], q[:-1]])
    term2 = float(np.sum((w**2) * v * (2 * x - 1 - cindex) ** 2)) / mu**2
    if n_tot is not None:
        aj = (y / mu) * (2 * x - 1 - cindex) + 2 - qlag - q
        term1 = (float(np.sum(w * aj**2)) - (1 + cindex) ** 2) / n_tot
        cse_method = "kakwani1997"
    else:
        term1 = 0.0
        cse_method = "within_group_only"
    c_se = math.sqrt(max(term1 + term2, 0.0))
    gc = mu * cindex  # generalised concentration index = 2 sum w y (x - 1/2)
    dgc = 2 * w * (x - 0.5)
    if bounds is not None:
        lo, hi = bounds
        e_val = 4 * gc / (hi - lo)
        e_se = math.sqrt(float(np.sum((4 * dgc / (hi - lo)) ** 2 * v)))
        P = (hi - mu) * (mu - lo)
        if P > 0:
            w_val = (hi - lo) * gc / P
            gw = (hi - lo) * dgc / P - (hi - lo) * gc * (hi + lo - 2 * mu) * w / P**2
            w_se = math.sqrt(float(np.sum(gw**2 * v)))
        else:
            w_val = w_se = float("nan")
    else:
        e_val = e_se = w_val = w_se = float("nan")
    out = dict(cindex=cindex, cindex_se=c_se, cindex_ci_low=cindex - z * c_se, cindex_ci_high=cindex + z * c_se,
               cindex_se_method=cse_method, erreygers=e_val, erreygers_se=e_se, erreygers_ci_low=e_val - z * e_se,
               erreygers_ci_high=e_val + z * e_se, wagstaff=w_val, wagstaff_se=w_se,
               wagstaff_ci_low=w_val - z * w_se, wagstaff_ci_high=w_val + z * w_se)
    return out, q


def _strata_table(labels, reference, stratum, pop, w, cum, x, y, v, fitted, q, z) -> tuple[pd.DataFrame, object]:
    """One row per group: value with CI, SII line, concentration curve, difference and ratio to the
    reference group (default: the least disadvantaged); returns the table and the reference."""
    if reference is None:
        ref_i = len(labels) - 1
        reference = labels[ref_i]
    else:
        matches = [i for i, lab in enumerate(labels) if lab == reference]
        if not matches:
            raise ScaleupDataError(
                f"argument 'reference' = {reference!r} is not a value of column {stratum!r}; "
                f"choose one of {labels}."
            )
        ref_i = matches[0]
    se_y = np.sqrt(v)
    diff = y - y[ref_i]
    difference_se = np.sqrt(v + v[ref_i])
    difference_se[ref_i] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((y > 0) & (y[ref_i] > 0), y / y[ref_i], np.nan)
        lrse = np.sqrt(v / y**2 + v[ref_i] / y[ref_i] ** 2)
    lrse[ref_i] = 0.0
    strata = pd.DataFrame(
        {
            "stratum": labels,
            "population": pop,
            "share": w,
            "ridit": x,
            "value": y,
            "se": se_y,
            "ci_low": y - z * se_y,
            "ci_high": y + z * se_y,
            "fitted": fitted,
            "cum_share": cum,
            "cum_outcome_share": q,
            "difference": diff,
            "difference_se": difference_se,
            "difference_ci_low": diff - z * difference_se,
            "difference_ci_high": diff + z * difference_se,
            "ratio": ratio,
            "log_ratio_se": lrse,
            "ratio_ci_low": ratio * np.exp(-z * lrse),
            "ratio_ci_high": ratio * np.exp(z * lrse),
        }
    )
    return strata, reference


@checked_inputs
def inequality(
    data: pd.DataFrame,
    outcome: str,
    stratum: str,
    population: str,
    *,
    events: str | None = None,
    n: str | None = None,
    se: str | None = None,
    kind: str = "proportion",
    most_disadvantaged: str = "first",
    reference=None,
    bounds: tuple[float, float] | None = None,
    scale: float = 1,
    level: float = 0.95,
) -> Inequality:
    r"""Slope and relative indices of inequality and concentration indices from grouped data.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per stratum (social group, e.g. deprivation quintile).
    outcome : str
        Column of the group value (a proportion, mean or rate, times ``scale``).
    stratum : str
        Column of the social group (stratum) of each row, giving their order on the social scale
        (numbers, or any sortable labels; the values also name the strata), e.g.
        ``"deprivation_quintile"``.
    population : str
        Column of the group sizes (population or sample counts); their shares weight the groups.
    events, n : str, optional
        Columns of the numbers of events and of the denominators (people for proportions,
        person-time for rates). They give the sampling variance of each group value:
        ``scale^2 p (1 - p) / n`` with ``p = events / n`` (proportion) or ``scale^2 events / n^2``
        (rate, Poisson). ``outcome`` must then equal ``scale * events / n`` (relative tolerance
        1e-3, i.e. up to rounding).
    se : str, optional
        Column of the standard errors of the group values (required for ``kind="mean"``); takes
        precedence over ``events``/``n`` for the variances.
    kind : {"proportion", "mean", "rate"}, default "proportion"
    most_disadvantaged : {"first", "last"}, default "first"
        Whether the first or the last group in the sort order of ``stratum`` is the most
        disadvantaged (``"last"`` for deprivation quintiles 1 = least ... 5 = most deprived).
    reference : optional
        Value of ``stratum`` used as the reference of the group differences and ratios.
        Default: the least disadvantaged group.
    bounds : (float, float), optional
        Bounds (min, max) of the outcome, for the Erreygers and Wagstaff indices. Default
        ``(0, scale)`` for proportions; otherwise those two indices are NaN unless given.
    scale : float, default 1
        Multiplier of the outcome (e.g. 100 for percentages, 1000 for rates per 1000).
    level : float, default 0.95
        Confidence level of all intervals.

    Returns
    -------
    Inequality

    Notes
    -----
    Order the :math:`J` groups from the most disadvantaged (:math:`j = 1`) to the least
    disadvantaged; :math:`w_j` = population share, :math:`x_j = \sum_{k<j} w_k + w_j/2` (ridit,
    fractional rank), :math:`y_j` the group value with sampling variance :math:`v_j`,
    :math:`\mu = \sum_j w_j y_j`, :math:`\bar x = \sum_j w_j x_j = 1/2`.

    * **SII**: weighted least squares of :math:`y_j` on :math:`x_j` with weights :math:`w_j`;
      :math:`\text{SII} = b = \sum_j c_j y_j`, :math:`c_j = w_j (x_j - \bar x)/\sum_k w_k (x_k -
      \bar x)^2`, intercept :math:`a = \mu - b \bar x`. SII = predicted value at rank 1 minus rank
      0. Delta-method (here exact, the SII being linear in the :math:`y_j`) variance
      :math:`\sum_j c_j^2 v_j`, population shares held fixed.
    * **RII, ratio form** (Pamuk 1985; WHO HEAT): ``rii_ratio`` :math:`= (a + b)/a`, predicted value
      at rank 1 over rank 0; CI from the delta method on :math:`\log` RII.
    * **RII, mean form** (Mackenbach & Kunst 1997): ``rii_mean`` :math:`= b/\mu`; CI from the delta
      method on the natural scale (it can be zero or negative, so no log scale).
    * **Concentration index** (Kakwani, Wagstaff & van Doorslaer 1997; O'Donnell et al. 2008,
      eq. 8.6): :math:`C = \frac{2}{\mu}\sum_j w_j y_j x_j - 1 = 2\,\mathrm{cov}_w(y, x)/\mu`.
      Standard error (Kakwani et al. 1997, grouped data):
      :math:`\mathrm{var}(C) = \frac1N\big[\sum_j w_j a_j^2 - (1 + C)^2\big] + \frac{1}{N\mu^2}
      \sum_j w_j \sigma_j^2 (2x_j - 1 - C)^2` with :math:`a_j = \frac{y_j}{\mu}(2x_j - 1 - C) + 2 -
      q_{j-1} - q_j`, :math:`q_j` the concentration-curve ordinate, :math:`N = \sum n_j` and
      :math:`\sigma_j^2/(N w_j) = v_j`. The first term needs the numbers of people ``n``; without
      them, and for rates (``n`` is then person-time), only the second (within-group) term is used
      (``cindex_se_method = "within_group_only"``).
    * **Erreygers** (2009): :math:`E = 4\mu C/(y_{max} - y_{min})`; **Wagstaff** (2005):
      :math:`W = (y_{max} - y_{min})\,\mu C / ((y_{max} - \mu)(\mu - y_{min}))` (``C/(1 - mu)``
      for a proportion). Their SEs are delta-method SEs from the :math:`v_j` with shares fixed (the
      counterpart of the second Kakwani term).
    * **Group differences and ratios** against the reference group :math:`r`:
      :math:`y_j - y_r` (variance :math:`v_j + v_r`) and :math:`y_j / y_r` (CI on the log scale,
      :math:`\mathrm{var} \log = v_j/y_j^2 + v_r/y_r^2`).

    All intervals are Wald intervals with the normal quantile.

    References
    ----------
    Pamuk, E. R. (1985). Social class inequality in mortality from 1921 to 1972 in England and
    Wales. Population Studies, 39(1), 17-31.
    Mackenbach, J. P., & Kunst, A. E. (1997). Measuring the magnitude of socio-economic inequalities
    in health. Social Science & Medicine, 44(6), 757-771.
    Kakwani, N., Wagstaff, A., & van Doorslaer, E. (1997). Socioeconomic inequalities in health:
    measurement, computation, and statistical inference. Journal of Econometrics, 77(1), 87-103.
    Wagstaff, A. (2005). The bounds of the concentration index when the variable of interest is
    binary. Health Economics, 14(4), 429-432.
    Erreygers, G. (2009). Correcting the concentration index. Journal of Health Economics, 28(2),
    504-515.
    O'Donnell, O., van Doorslaer, E., Wagstaff, A., & Lindelow, M. (2008). Analyzing Health Equity
    Using Household Survey Data, ch. 8. World Bank.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"quintile": [1, 2, 3, 4, 5], "pop": [100] * 5,
    ...                   "events": [50, 45, 40, 35, 30], "n": [100] * 5})
    >>> d["p"] = d["events"] / d["n"]
    >>> res = sa.inequality(d, "p", "quintile", "pop", events="events", n="n", most_disadvantaged="last")
    >>> round(res.sii, 3), round(res.rii_ratio, 3), round(res.cindex, 4)
    (0.25, 1.909, 0.1)
    """
    _check_inequality_options(data, outcome, stratum, population, events, n, se, kind, most_disadvantaged, scale)
    z = _z(level)
    d = _sorted_strata(data, stratum, most_disadvantaged)
    y = _numeric(d, "data", outcome, "outcome")
    pop = _numeric(d, "data", population, "population", positive=True)
    v = _sampling_variances(d, y, outcome, events, n, se, kind, scale)
    bounds = _outcome_bounds(bounds, kind, scale, y, d, outcome)

    labels = d[stratum].to_list()
    w = pop / pop.sum()
    cum = np.cumsum(w)
    x = cum - w / 2  # ridit (fractional rank)
    gradient = _sii_rii(w, x, y, v, z)
    # Kakwani's first term needs the numbers of people (not person-time)
    n_tot = float(_numeric(d, "data", n, "n", positive=True).sum()) if n is not None and kind != "rate" else None
    concentration, q = _concentration_indices(w, x, y, v, gradient["mean"], n_tot, bounds, z)
    fitted = gradient["intercept"] + gradient["sii"] * x
    strata, reference = _strata_table(labels, reference, stratum, pop, w, cum, x, y, v, fitted, q, z)
    return Inequality(strata=strata, **gradient, **concentration, reference=reference, kind=kind, scale=float(scale),
                      bounds=bounds, level=level, most_disadvantaged=most_disadvantaged, outcome=outcome)


# --------------------------------------------------------------------------------------------
# equity effects of the innovation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class EquityEffects(Displayed):
    r"""Result of :func:`equity_effects`.

    Attributes
    ----------
    strata : pandas.DataFrame
        One row per stratum, from the least to the most disadvantaged: ``stratum``, ``rank``
        (1 = least disadvantaged), ``n_treated``, ``n_control``, ``change_treated``,
        ``change_control`` (mean change after minus before), ``estimate`` (the effect: difference
        in changes),
        ``se``, ``ci_low``, ``ci_high``, ``mean_before``, ``mean_after`` (all sites), ``share``.
    vcov : pandas.DataFrame
        Covariance matrix of the stratum effects (not diagonal with ``control="pooled"``).
    pooled_effect, pooled_effect_se : float
        Generalised-least-squares common effect across strata.
    Q, Q_df, Q_pvalue : float
        Test of heterogeneity of the effects across strata (chi-square, ``K - 1`` df).
    trend, trend_se, trend_ci_low, trend_ci_high, trend_pvalue : float
        Trend (slope) of the effect per step towards a *more* disadvantaged stratum (GLS on ranks 1..K);
        NaN when ``ordered=False``.
    gap_before, gap_before_se, gap_after, gap_after_se : float
        SII of the stratum mean outcomes (all sites) in the before and after windows.
    gap_change, gap_change_se, gap_change_ci_low, gap_change_ci_high : float
        ``gap_after - gap_before`` (SII of the stratum mean changes).
    interpretation : str
        ``"widened"`` (the change favours the less disadvantaged strata), ``"narrowed"`` or
        ``"no clear change"`` (CI of ``gap_change`` includes 0); see ``direction``.
    control : str
    level : float
    n_omitted : int
        Sites left out (adopted in or before the before window or between the windows, or with
        no data in a window).
    """

    strata: pd.DataFrame
    vcov: pd.DataFrame
    pooled_effect: float
    pooled_effect_se: float
    Q: float
    Q_df: int
    Q_pvalue: float
    trend: float
    trend_se: float
    trend_ci_low: float
    trend_ci_high: float
    trend_pvalue: float
    gap_before: float
    gap_before_se: float
    gap_after: float
    gap_after_se: float
    gap_change: float
    gap_change_se: float
    gap_change_ci_low: float
    gap_change_ci_high: float
    interpretation: str
    control: str
    level: float
    n_omitted: int
    outcome: str = "outcome"
    stratum: str = "stratum"

    def to_frame(self) -> pd.DataFrame:
        """The per-stratum table (``strata``)."""
        return self.strata.copy()

    def _repr_fields(self) -> dict:
        return {"outcome": self.outcome, "stratum": self.stratum, "n_strata": len(self.strata),
                "pooled_effect": self.pooled_effect, "Q": self.Q, "Q_pvalue": self.Q_pvalue, "trend": self.trend,
                "trend_pvalue": self.trend_pvalue, "gap_change": self.gap_change,
                "interpretation": self.interpretation, "n_omitted": self.n_omitted}

    def _summary(self, tx) -> str:
        s = self.strata
        stratum = _stratum_label(self.stratum, tx)
        lines = [tx("Effect of the innovation on “{outcome}” by {stratum} (difference in changes, treated minus "
                    "comparison sites; {control}); {level} confidence intervals.", outcome=self.outcome,
                    stratum=stratum.lower() if self.stratum in _STRATA else stratum,
                    control=tx(_CONTROL[self.control]), level=tx.pct(self.level))]
        d = _digits(*s["estimate"], *s["ci_low"], *s["ci_high"])
        for r in s.itertuples(index=False):
            lines.append("  " + tx("{stratum}: {effect} ({treated} treated, {control} comparison sites)",
                                   stratum=str(r.stratum), effect=tx.ci(r.estimate, r.ci_low, r.ci_high, d,
                                                                        level=self.level),
                                   treated=tx.int(r.n_treated), control=tx.int(r.n_control)))
        se = self.pooled_effect_se
        lines.append(tx("Pooled effect: {effect}.", effect=tx.num(self.pooled_effect, d) + " (" + tx("SE {se}",
                     se=tx.num(se, d)) + ")"))
        lines.append(tx("Heterogeneity across strata: Q = {Q} on {df} df, {p}.", Q=tx.num(self.Q, 2),
                        df=tx.int(self.Q_df), p=tx.pvalue(self.Q_pvalue)))
        if np.isfinite(self.trend):
            dt = _digits(self.trend, self.trend_ci_low, self.trend_ci_high)
            lines.append(tx("Trend per step towards more disadvantage: {trend}, {p}.",
                            trend=tx.ci(self.trend, self.trend_ci_low, self.trend_ci_high, dt, level=self.level),
                            p=tx.pvalue(self.trend_pvalue)))
            dg = _digits(self.gap_before, self.gap_after, self.gap_change)
            lines.append(tx("Gap (slope index of inequality): {before} before, {after} after; change {change}: "
                            "the gap {verdict}.", before=tx.num(self.gap_before, dg), after=tx.num(self.gap_after, dg),
                            change=tx.ci(self.gap_change, self.gap_change_ci_low, self.gap_change_ci_high, dg,
                                         level=self.level),
                            verdict=tx(_GAP_WORDS[self.interpretation]) if self.interpretation in _GAP_WORDS else self.interpretation))
        else:
            lines.append(tx("Unordered strata: no trend test and no gap (slope index of inequality)."))
        if self.n_omitted:
            lines.append(tx.n("{n} site left out (adopted before or between the windows, or without data in a "
                              "window).", "{n} sites left out (adopted before or between the windows, or without "
                              "data in a window).", self.n_omitted))
        return "\n".join(lines)

    @styled
    def plot_effects(self, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                     ax=None):
        """Stratum effects with CIs (least to most disadvantaged) and the pooled effect. Returns the Axes."""
        from ..narrative import Text

        tx = Text()
        ax = new_axes(ax, (7.5, 4.2))
        s = self.strata
        pos = np.arange(len(s))
        yerr = np.vstack([s["estimate"] - s["ci_low"], s["ci_high"] - s["estimate"]])
        ax.errorbar(pos, s["estimate"], yerr=yerr, fmt="s", color=PALETTE[0], ecolor=PALETTE[0], capsize=3,
                    label=tx("Effect in the stratum ({level} CI)", level=tx.pct(self.level)))
        ax.axhline(self.pooled_effect, ls="--", color=NEUTRAL,
                   label=tx("Pooled effect = {value}", value=tx.num(self.pooled_effect,
                                                                     _digits(self.pooled_effect))))
        ax.axhline(0, color="0.7", lw=0.8, label=tx("No effect"))
        ax.set_xticks(pos)
        ax.set_xticklabels([data_text(v) for v in s["stratum"]])
        ax.set_xlim(-0.5, len(s) - 0.5)
        ax.set_xlabel(tx("{stratum} (least to most disadvantaged)", stratum=_stratum_label(self.stratum, tx))
                      if xlabel is None else xlabel)
        ax.set_ylabel(tx("Effect on “{outcome}” (difference in changes)", outcome=data_text(self.outcome))
                      if ylabel is None else ylabel)
        ax.set_title(tx("Effect of the innovation by stratum") if title is None else title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        ticks_inside(ax, "y")
        return ax


_CONTROL = {"pooled": N_("all comparison sites"), "within": N_("comparison sites of the same stratum")}
_GAP_WORDS = {"widened": N_("widened"), "narrowed": N_("narrowed"), "no clear change": N_("did not clearly change")}
_STRATA = {"deprivation_quintile": N_("Deprivation quintile"), "rurality": N_("Rurality")}


def _stratum_label(stratum: str, tx) -> str:
    """The stratum column as words (a known column of ``sites``, else the column name as data)."""
    return tx(_STRATA[stratum]) if stratum in _STRATA else data_text(stratum)


def _gls(e: np.ndarray, V: np.ndarray, X: np.ndarray):
    Vi = np.linalg.inv(V)
    XtVi = X.T @ Vi
    cov = np.linalg.inv(XtVi @ X)
    beta = cov @ XtVi @ e
    resid = e - X @ beta
    return beta, cov, float(resid @ Vi @ resid)


def _check_windows(before, after) -> tuple[list[int], list[int]]:
    before = sorted({int(p) for p in before})
    after = sorted({int(p) for p in after})
    if not before or not after or max(before) >= min(after):
        raise ScaleupDataError(
            f"arguments 'before' = {before} and 'after' = {after}: both must be non-empty and every "
            "before period must precede every after period."
        )
    return before, after


def _site_changes(data, outcome, site, period, cohort, stratum, weight, before, after) -> pd.DataFrame:
    """One row per site: cohort, stratum (and weight), mean outcome before and after, its change and
    the site's ``group``: treated (adopts between the windows), control (never, or after the after
    window) or omitted."""
    d = data[[c for c in (site, period, outcome, cohort, stratum, weight) if c is not None]].copy()
    d[outcome] = numeric_column(d, outcome, "table 'data'", arg="outcome", missing=True)
    check_magnitude(d[outcome], d.index, f"equity_effects: table 'data', column {outcome!r} (argument 'outcome')",
                    max_abs=_MAX_ABS)
    if d[stratum].isna().any():
        raise ScaleupDataError(
            f"data: column {stratum!r} (argument 'stratum') is missing in {rows_text(d.index, d[stratum].isna().to_numpy(), label='first:')}."
        )
    per_site = d.groupby(site, sort=True)
    for col in (cohort, stratum) + ((weight,) if weight else ()):
        nun = per_site[col].nunique(dropna=False)
        if (nun > 1).any():
            bad_sites = list(nun.index[nun > 1][:5])
            raise ScaleupDataError(
                f"data: column {col!r} must be constant within a site, but varies in {int((nun > 1).sum())} "
                f"site(s) (first: {bad_sites})."
            )
    info = per_site[[cohort, stratum] + ([weight] if weight else [])].first()
    gaps = (d[period].isin(before + after) & d[outcome].isna()).to_numpy()
    if gaps.any():
        warnings.warn(
            f"equity_effects: {rows_text(d.index, gaps, label='first:')} of the before/after windows have a missing "
            f"{outcome!r} and were left out; those sites' window means use their other periods.",
            RowsOmittedWarning,
            stacklevel=3,
        )
    pb = d[d[period].isin(before)].groupby(site)[outcome].mean()
    pa = d[d[period].isin(after)].groupby(site)[outcome].mean()
    info["before"] = pb.reindex(info.index)
    info["after"] = pa.reindex(info.index)
    adopt = pd.to_numeric(info[cohort], errors="coerce").astype(float)
    treated = (adopt > max(before)) & (adopt <= min(after))
    ctrl = adopt.isna() | (adopt > max(after))
    has = info["before"].notna() & info["after"].notna()
    info["group"] = np.where(treated, "treated", np.where(ctrl, "control", "omitted"))
    info.loc[~has, "group"] = "omitted"
    info["change"] = info["after"] - info["before"]
    return info


def _strata_order(info, stratum, levels, most_disadvantaged) -> list:
    """The strata from the least to the most disadvantaged."""
    if levels is None:
        levels = sorted(info[stratum].unique().tolist())
    else:
        levels = list(levels)
        unknown = sorted(set(info[stratum]) - set(levels), key=str)
        if unknown:
            raise ScaleupDataError(
                f"data: column {stratum!r} has values {unknown[:5]} not in argument 'levels' = {levels}."
            )
    order = levels if most_disadvantaged == "last" else levels[::-1]  # least -> most disadvantaged
    if len(order) < 2:
        raise ScaleupDataError(f"data: column {stratum!r} has a single stratum; at least 2 are needed.")
    return order


def _stratum_effects(info, order, stratum, control, weight) -> tuple[pd.DataFrame, list, list]:
    """Difference in changes (treated minus comparison sites) in each stratum, with the variances of
    the treated and comparison means, and the stratum means before, after and of the change."""
    inc = info[info["group"] != "omitted"]
    ct = inc[inc["group"] == "control"]["change"]
    rows, var_t, var_c = [], [], []
    for k, lev in enumerate(order):
        sub = inc[inc[stratum] == lev]
        tk = sub[sub["group"] == "treated"]["change"]
        ck = sub[sub["group"] == "control"]["change"] if control == "within" else ct
        if len(tk) < 2 or len(ck) < 2:
            raise ScaleupDataError(
                f"data: stratum {lev!r} of {stratum!r} has {len(tk)} treated and {len(ck)} comparison "
                "site(s) with data in both windows; at least 2 of each are needed (try control='pooled', "
                "wider windows or merging strata)."
            )
        vt, vc = tk.var(ddof=1) / len(tk), ck.var(ddof=1) / len(ck)
        var_t.append(vt)
        var_c.append(vc)
        allk = sub
        rows.append(
            {
                "stratum": lev,
                "rank": k + 1,
                "n_treated": len(tk),
                "n_control": len(ck),
                "change_treated": tk.mean(),
                "change_control": ck.mean(),
                "estimate": tk.mean() - ck.mean(),
                "mean_before": allk["before"].mean(),
                "mean_after": allk["after"].mean(),
                "mean_change": allk["change"].mean(),
                "var_change": allk["change"].var(ddof=1) / len(allk),
                "var_before": allk["before"].var(ddof=1) / len(allk),
                "var_after": allk["after"].var(ddof=1) / len(allk),
                "weight": float(allk[weight].sum()) if weight else float(len(allk)),
            }
        )
    return pd.DataFrame(rows), var_t, var_c


def _trend_and_gap(st, e, V, K, direction, z) -> dict:
    """Linear trend of the effects across ordered strata (GLS) and the SII gap before, after and its
    change, with the interpretation of the change."""
    X = np.column_stack([np.ones(K), np.arange(1, K + 1, dtype=float)])
    b1, c1, _ = _gls(e, V, X)
    slope, sl_se = float(b1[1]), math.sqrt(float(c1[1, 1]))
    sl_p = float(2 * stats.norm.sf(abs(slope / sl_se)))
    # SII over strata ordered from most (rank 0) to least disadvantaged (rank 1)
    w = st["weight"].to_numpy(float)[::-1]
    w = w / w.sum()
    x = np.cumsum(w) - w / 2
    xb = float(np.sum(w * x))
    cvec = w * (x - xb) / float(np.sum(w * (x - xb) ** 2))
    cvec = cvec[::-1]  # back to least -> most order of `st`

    def _sii(col, vcol):
        return float(cvec @ st[col].to_numpy(float)), math.sqrt(float(np.sum(cvec**2 * st[vcol].to_numpy(float))))

    gb, gb_se = _sii("mean_before", "var_before")
    ga, ga_se = _sii("mean_after", "var_after")
    gc, gc_se = _sii("mean_change", "var_change")
    lo_, hi_ = gc - z * gc_se, gc + z * gc_se
    if lo_ > 0 or hi_ < 0:
        favours_advantaged = (gc > 0) == (direction == "higher_is_better")
        interp = "widened" if favours_advantaged else "narrowed"
    else:
        interp = "no clear change"
    return dict(trend=slope, trend_se=sl_se, trend_ci_low=slope - z * sl_se, trend_ci_high=slope + z * sl_se,
                trend_pvalue=sl_p, gap_before=gb, gap_before_se=gb_se, gap_after=ga, gap_after_se=ga_se,
                gap_change=gc, gap_change_se=gc_se, gap_change_ci_low=lo_, gap_change_ci_high=hi_,
                interpretation=interp)


@checked_inputs
def equity_effects(
    data: pd.DataFrame,
    outcome: str,
    *,
    before: Sequence[int],
    after: Sequence[int],
    site: str = "site_id",
    period: str = "period",
    cohort: str = "adoption_period",
    stratum: str = "deprivation_quintile",
    levels: Sequence | None = None,
    most_disadvantaged: str = "last",
    ordered: bool = True,
    weight: str | None = None,
    control: str = "pooled",
    direction: str = "higher_is_better",
    level: float = 0.95,
) -> EquityEffects:
    r"""Effect of the innovation by stratum (deprivation, rurality) and change of the equity gap.

    Parameters
    ----------
    data : pandas.DataFrame
        Site x period rows with the outcome, the site's adoption period (missing = never adopts)
        and its stratum, e.g. ``outcomes`` of one indicator merged with ``sites``.
    outcome : str
        Column of the site-period outcome (e.g. ``"mean"`` for a mean indicator, or a proportion).
    before, after : sequence of int
        Periods of the *before* and *after* windows (``max(before) < min(after)``).
    site, period, cohort, stratum : str
        Column names (``cohort``: the site's adoption period, missing = never adopts).
    levels : sequence, optional
        The strata in order (default: sorted values of ``stratum``).
    most_disadvantaged : {"first", "last"}, default "last"
        Which end of ``levels`` is the most disadvantaged (``"last"`` for deprivation quintiles
        1 = least ... 5 = most deprived, and for rurality ordered urban ... remote).
    ordered : bool, default True
        Whether the strata are ordered (trend test and SII gap); set False for nominal strata.
    weight : str, optional
        Column of site weights (e.g. ``size``) giving the population shares of the strata in the
        SII; default one per site.
    control : {"pooled", "within"}, default "pooled"
        Comparison sites of each stratum: all comparison sites (assumes a counterfactual trend
        common to the strata; stratum effects are then correlated, which the tests account for)
        or only those of the same stratum.
    direction : {"higher_is_better", "lower_is_better"}, default "higher_is_better"
        Direction of the outcome; sets ``interpretation``: the gap *widened* when the change of
        the SII favours the less disadvantaged strata (``gap_change > 0`` for a higher-is-better
        outcome, ``< 0`` for a lower-is-better one) with a CI excluding 0, *narrowed* when it
        favours the more disadvantaged.
    level : float, default 0.95

    Returns
    -------
    EquityEffects

    Notes
    -----
    A site is *treated* if it adopts after the before window and no later than the first after
    period (``max(before) < A_s <= min(after)``), a *comparison* site if it never adopts or adopts
    after the after window; other sites are left out (``RowsOmittedWarning``). Each site's change
    is :math:`\Delta_s = \bar y_{s,after} - \bar y_{s,before}` (means over its observed periods of
    each window). In stratum :math:`k` the effect is the difference in mean changes
    :math:`\hat\theta_k = \bar\Delta_{T,k} - \bar\Delta_{C}` with variance
    :math:`s^2_{T,k}/n_{T,k} + s^2_C/n_C` (sample variances of the changes); the covariance matrix
    :math:`V` of :math:`\hat\theta` has :math:`s^2_C/n_C` off the diagonal for ``control="pooled"``.
    Heterogeneity: :math:`Q = (\hat\theta - 1\hat\theta_0)' V^{-1} (\hat\theta - 1\hat\theta_0)`
    with the GLS pooled effect :math:`\hat\theta_0`, chi-square on :math:`K - 1` df. Trend: GLS
    slope of :math:`\hat\theta_k` on scores :math:`1..K` (1 = least disadvantaged), Wald test.
    Gap: the SII (see :func:`inequality`) of the stratum mean outcomes of all included sites,
    with population shares from ``weight``; ``gap_change`` is the SII of the stratum mean changes,
    i.e. SII after minus SII before, with variance :math:`\sum_k c_k^2 s^2_{\Delta,k}/n_k`.
    Intervals are normal-theory Wald intervals.

    References
    ----------
    Mackenbach, J. P., & Kunst, A. E. (1997). Measuring the magnitude of socio-economic inequalities
    in health. Social Science & Medicine, 44(6), 757-771.
    Pamuk, E. R. (1985). Social class inequality in mortality from 1921 to 1972 in England and
    Wales. Population Studies, 39(1), 17-31.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=3, n_sites=60, patients_per_site_period=10)
    >>> y = sim.tables["outcomes"].query("indicator_id == 'HO_Y'")
    >>> d = y.merge(sim.tables["sites"], on="site_id")
    >>> res = sa.equity_effects(d, "mean", before=[1, 2], after=[14, 15, 16])
    >>> list(res.strata["stratum"])
    [1, 2, 3, 4, 5]
    >>> res.interpretation in ("widened", "narrowed", "no clear change")
    True
    """
    _need_columns(data, "data", {"outcome": outcome, "site": site, "period": period, "cohort": cohort,
                             "stratum": stratum, "weight": weight})
    if direction not in ("higher_is_better", "lower_is_better"):
        raise ScaleupDataError(f"argument 'direction' must be 'higher_is_better' or 'lower_is_better', got {direction!r}.")
    if control not in ("pooled", "within"):
        raise ScaleupDataError(f"argument 'control' must be 'pooled' or 'within', got {control!r}.")
    if most_disadvantaged not in ("first", "last"):
        raise ScaleupDataError(f"argument 'most_disadvantaged' must be 'first' or 'last', got {most_disadvantaged!r}.")
    z = _z(level)
    before, after = _check_windows(before, after)
    info = _site_changes(data, outcome, site, period, cohort, stratum, weight, before, after)
    n_omit = int((info["group"] == "omitted").sum())
    if n_omit:
        warnings.warn(
            f"equity_effects: {n_omit} site(s) left out of the difference in changes (adopted in or "
            f"before the before window or between the windows, or no outcome in a window).",
            RowsOmittedWarning,
            stacklevel=2,
        )
    order = _strata_order(info, stratum, levels, most_disadvantaged)
    K = len(order)
    st, var_t, var_c = _stratum_effects(info, order, stratum, control, weight)
    e = st["estimate"].to_numpy(float)
    V = np.diag(var_t)
    if control == "pooled":
        V = V + var_c[0]
    else:
        V = V + np.diag(var_c)
    zero = ~(np.diag(V) > 0)
    if zero.any():
        raise ScaleupDataError(
            f"equity_effects: the sampling variance of the effect is 0 (or not estimable) in stratum "
            f"{first_values(st['stratum'][zero])}: every site's change in {outcome!r} between the before and after "
            "windows is the same (e.g. a constant outcome), so the strata cannot be weighted or compared. Check "
            "the outcome column."
        )
    se = np.sqrt(np.diag(V))
    st["se"] = se
    st["ci_low"] = e - z * se
    st["ci_high"] = e + z * se
    b0, c0, Q = _gls(e, V, np.ones((K, 1)))  # pooled effect and heterogeneity across strata
    Qdf = K - 1
    if ordered:
        trend = _trend_and_gap(st, e, V, K, direction, z)
    else:
        nan = float("nan")
        trend = dict(trend=nan, trend_se=nan, trend_ci_low=nan, trend_ci_high=nan, trend_pvalue=nan, gap_before=nan,
                     gap_before_se=nan, gap_after=nan, gap_after_se=nan, gap_change=nan, gap_change_se=nan,
                     gap_change_ci_low=nan, gap_change_ci_high=nan, interpretation="not computed (unordered strata)")
    st = st[["stratum", "rank", "n_treated", "n_control", "change_treated", "change_control", "estimate",
             "se", "ci_low", "ci_high", "mean_before", "mean_after", "weight"]].rename(columns={"weight": "share"})
    st["share"] = st["share"] / st["share"].sum()
    return EquityEffects(
        strata=st, vcov=pd.DataFrame(V, index=order, columns=order), pooled_effect=float(b0[0]),
        pooled_effect_se=math.sqrt(float(c0[0, 0])), Q=Q, Q_df=Qdf, Q_pvalue=float(stats.chi2.sf(Q, Qdf)), **trend,
        control=control, level=level, n_omitted=n_omit, outcome=outcome, stratum=stratum,
    )
