"""Rater agreement: intraclass correlations, Cohen's and Fleiss' kappa, Krippendorff's alpha.

Used to check that fidelity ratings (``fidelity_ratings``) can be trusted before they are analysed:
several raters score the same sessions, and these coefficients say how far the scores agree.

* :func:`icc` -- the six intraclass correlations of Shrout & Fleiss (1979) from the two-way ANOVA
  mean squares of a complete, balanced targets x raters design; identical to
  ``psych::ICC(x, lmer = FALSE)`` (values, F tests and confidence bounds).
* :func:`icc_mixed` -- the same six coefficients from REML variance components of a crossed
  random-effects model (``lme4::lmer(rating ~ 1 + (1|target) + (1|rater))``), for incomplete or
  unbalanced designs.
* :func:`cohen_kappa` -- Cohen's kappa for two raters, unweighted or with linear / quadratic
  weights, with the large-sample standard errors of Fleiss, Cohen & Everitt (1969).
* :func:`fleiss_kappa` -- Fleiss' (1971) kappa for a fixed number of ratings per subject, with the
  standard errors of Fleiss, Nee & Landis (1979).
* :func:`krippendorff_alpha` -- Krippendorff's alpha at the nominal, ordinal, interval and ratio
  levels, any number of raters, missing ratings allowed, with Krippendorff's bootstrap.

Every result carries an interpretation band beside the value (Koo & Li 2016 for ICCs, Landis &
Koch 1977 for kappas, Krippendorff 2004 for alpha). Bands are conventions, not tests: report the
confidence interval too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy import sparse, stats

from ._checks import (
    check_draw_memory,
    check_level,
    check_magnitude,
    check_spread,
    checked_inputs,
    first_values,
    numeric_column,
    rows_text,
    value_kind,
)
from ._display import Displayed, num_cell, p_cell, text_table
from ._style import GREY, NEUTRAL, PALETTE, SEQUENTIAL, new_axes, numeric_ticks, styled
from .engines.crossed import CrossedREML
from .errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from .i18n import N_
from .narrative import Text

__all__ = [
    "icc",
    "icc_mixed",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "ICCResult",
    "ICCMixedResult",
    "KappaResult",
    "FleissKappaResult",
    "KrippendorffResult",
]

_ICC_TYPES = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
_ICC_DESCRIPTIONS = {
    "ICC1": N_("single rater, absolute agreement, one-way random"),
    "ICC2": N_("single rater, absolute agreement, two-way random"),
    "ICC3": N_("single rater, consistency, two-way mixed"),
    "ICC1k": N_("average of k raters, absolute agreement, one-way random"),
    "ICC2k": N_("average of k raters, absolute agreement, two-way random"),
    "ICC3k": N_("average of k raters, consistency, two-way mixed"),
}
#: words of the interpretation bands and measurement levels (result values, translated when shown)
_WORDS = (N_("undefined"), N_("poor"), N_("moderate"), N_("good"), N_("excellent"), N_("slight"), N_("fair"),
          N_("substantial"), N_("almost perfect"), N_("reliable"), N_("tentative conclusions only"),
          N_("unreliable"), N_("nominal"), N_("ordinal"), N_("interval"), N_("ratio"), N_("linear"),
          N_("quadratic"))


# --------------------------------------------------------------------------------------------
# display helpers (summaries and figures)
# --------------------------------------------------------------------------------------------
def _bracket(tx, low: float, high: float, digits: int = 4) -> str:
    return tx("[{low}, {high}]", low=num_cell(tx, low, digits), high=num_cell(tx, high, digits))


# --------------------------------------------------------------------------------------------
# interpretation bands
# --------------------------------------------------------------------------------------------
def _band_icc(value: float) -> str:
    """Koo & Li (2016): < 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good, > 0.9 excellent."""
    if not np.isfinite(value):
        return "undefined"
    if value < 0.5:
        return "poor"
    if value < 0.75:
        return "moderate"
    if value <= 0.9:
        return "good"
    return "excellent"


def _band_kappa(value: float) -> str:
    """Landis & Koch (1977): < 0 poor, 0-0.20 slight, 0.21-0.40 fair, 0.41-0.60 moderate,
    0.61-0.80 substantial, 0.81-1 almost perfect."""
    if not np.isfinite(value):
        return "undefined"
    if value < 0:
        return "poor"
    if value <= 0.20:
        return "slight"
    if value <= 0.40:
        return "fair"
    if value <= 0.60:
        return "moderate"
    if value <= 0.80:
        return "substantial"
    return "almost perfect"


def _band_alpha(value: float) -> str:
    """Krippendorff (2004, p. 241): >= 0.800 reliable, 0.667-0.800 tentative, < 0.667 unreliable."""
    if not np.isfinite(value):
        return "undefined"
    if value >= 0.800:
        return "reliable"
    if value >= 0.667:
        return "tentative conclusions only"
    return "unreliable"


# --------------------------------------------------------------------------------------------
# input checking helpers
# --------------------------------------------------------------------------------------------
def _check_frame(data, columns: dict[str, str], func: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(
            f"{func}: argument 'data' must be a pandas DataFrame in long format, got {type(data).__name__}."
        )
    for arg, col in columns.items():
        if not isinstance(col, str) or col not in data.columns:
            raise ScaleupDataError(
                f"{func}: column {col!r} given as {arg}= is not in data (columns: {list(data.columns)}); "
                f"pass the name of the column holding the {arg}."
            )
    return data


#: largest magnitude of a numeric rating whose squares (sums of squares, squared differences) stay
#: finite in double precision (the smallest spread is _checks.MIN_SPREAD)
_MAX_SCORE = 1e100


def _check_score_scale(y: np.ndarray, score: str, func: str, index) -> None:
    """Refuse numeric ratings whose squares overflow or underflow (the coefficient is unit-free:
    rescaling the column gives the same value)."""
    check_magnitude(y, index, f"{func}: table 'data', column {score!r} (argument 'score')", max_abs=_MAX_SCORE,
                    fix="Check these rows, or rescale the column (the coefficient does not depend on the unit).")
    check_spread(y, f"{func}: table 'data', column {score!r} (argument 'score')", f"the {y.size} ratings",
                 consequence=" (the coefficient does not depend on the unit)")


def _column_kinds(col: pd.Series) -> dict[str, list]:
    """Kinds of the non-missing values of ``col``, each with its first few distinct values."""
    values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col.dropna().unique()
    if pd.api.types.is_bool_dtype(values):
        return {"True/False": list(pd.unique(values))[:3]}
    if pd.api.types.is_numeric_dtype(values):
        return {"number": list(pd.unique(values))[:3]}
    kinds: dict[str, list] = {}
    for v in values:
        found = kinds.setdefault(value_kind(v), [])
        if len(found) < 3:
            found.append(v)
    return kinds


def _check_codes(data: pd.DataFrame, columns: dict[str, str], func: str) -> str | None:
    """Category codes must be of one kind (all numbers or all text ...) and finite; return the kind.

    A code 1 and a code '1' are different categories that cannot be ordered, so codes mixing kinds
    (within a column or between the raters' columns) are refused with examples of each.
    """
    per_col = {arg: _column_kinds(data[col]) for arg, col in columns.items()}
    kinds = {k for found in per_col.values() for k in found}
    if len(kinds) > 1:
        parts = [f"column {columns[arg]!r} ({arg}=) holds " + " and ".join(
                 f"{k} (e.g. {first_values(v, 3)})" for k, v in found.items()) for arg, found in per_col.items()]
        raise ScaleupDataError(
            f"{func}: the codes mix kinds of value: " + "; ".join(parts) + ". A code 1 and a code '1' "
            "would be different categories that cannot be ordered. Give every code one kind, e.g. "
            "data[col] = pd.to_numeric(data[col]) for codes written as text, or data[col].astype(str)."
        )
    kind = kinds.pop() if kinds else None
    if kind == "number":
        for arg, col in columns.items():
            x = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(x).any():
                raise ScaleupDataError(
                    f"{func}: table 'data', column {col!r} ({arg}=): "
                    f"{rows_text(data, np.isinf(x), label='first:')} are infinite; a code must be a "
                    "finite value. Correct or drop these rows."
                )
    return kind


def _check_no_missing_keys(data: pd.DataFrame, cols: dict[str, str], func: str) -> None:
    for arg, col in cols.items():
        bad = data[col].isna()
        if bad.any():
            raise ScaleupDataError(
                f"{func}: data column {col!r} ({arg}=) has missing identifiers in {rows_text(data, bad, label='first:')}; "
                "every row needs one."
            )


def _check_unique_pairs(
    df: pd.DataFrame, a: str, b: str, func: str, codes: tuple[np.ndarray, np.ndarray] | None = None
) -> None:
    """Raise if a (``a``, ``b``) pair occurs more than once (as ``df.duplicated([a, b], keep=False)``).

    ``codes`` optionally gives the non-negative integer codes of both columns (one ``pd.factorize``
    each), aligned with the rows of ``df``, to save factorising them again.
    """
    if codes is None:
        codes = tuple(pd.factorize(df[c], use_na_sentinel=False)[0] for c in (a, b))
    ca, cb = (np.asarray(c, dtype=np.int64) for c in codes)
    if ca.size == 0:
        return
    n_keys = (int(ca.max()) + 1) * (int(cb.max()) + 1)
    key = ca * (int(cb.max()) + 1) + cb  # one int64 per (a, b) pair, in [0, n_keys)
    if n_keys <= max(8 * key.size, 1 << 20):  # dense key space: count by bincount (O(n))
        counts = np.bincount(key, minlength=n_keys)
        if counts.max() > 1:
            raise _duplicate_pairs_error(df, a, b, func, counts[key] > 1)
        return
    key_codes, key_uniq = pd.factorize(key)  # sparse key space: hash the keys
    if key_uniq.size < key.size:
        raise _duplicate_pairs_error(df, a, b, func, np.bincount(key_codes)[key_codes] > 1)


def _duplicate_pairs_error(df: pd.DataFrame, a: str, b: str, func: str, dup: np.ndarray) -> ScaleupDataError:
    return ScaleupDataError(
        f"{func}: each ({a}, {b}) pair must appear once, but {rows_text(df, dup, label='first:')} are "
        "duplicates. Average repeated ratings first or give each rating occasion its own rater id."
    )


# --------------------------------------------------------------------------------------------
# ICC from ANOVA mean squares (Shrout & Fleiss 1979; psych::ICC(lmer = FALSE))
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ICCResult(Displayed):
    """Result of :func:`icc`.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed ``ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k`` with columns ``type`` (description),
        ``icc, statistic, df1, df2, pvalue, ci_low, ci_high, interpretation`` (``statistic``: the
        F statistic on ``df1``, ``df2`` degrees of freedom).
    n_units, n_raters : int
        Design size (units x raters, every cell rated once).
    level : float
        Confidence level of ``ci_low``/``ci_high``.
    ms_units, ms_raters, ms_error, ms_within : float
        Two-way ANOVA mean squares (between units, between raters, residual) and the one-way
        within-target mean square.
    """

    table: pd.DataFrame
    n_units: int
    n_raters: int
    level: float
    ms_units: float
    ms_raters: float
    ms_error: float
    ms_within: float

    @property
    def icc(self) -> pd.Series:
        """Point estimates, indexed ``ICC1`` ... ``ICC3k``."""
        return self.table["icc"]

    def to_frame(self) -> pd.DataFrame:
        """The ICC table (one row per coefficient)."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        return {"n_units": self.n_units, "n_raters": self.n_raters, **self.table["icc"].to_dict()}

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        rows = [[name, num_cell(tx, r["icc"]), _bracket(tx, r["ci_low"], r["ci_high"]), num_cell(tx, r["statistic"], 2),
                 tx.num(r["df1"], 0), tx.num(r["df2"], 0), p_cell(tx, r["pvalue"]), tx(r["interpretation"]),
                 tx(r["type"])] for name, r in self.table.iterrows()]
        return (tx("Intraclass correlations (Shrout & Fleiss 1979): {n} units × {k} raters, {level} confidence "
                   "bounds", n=tx.int(self.n_units), k=tx.int(self.n_raters), level=level) + "\n"
                + text_table([tx("coefficient"), tx("ICC"), tx("{level} CI", level=level), "F", tx("df1"), tx("df2"), "p",
                               tx("interpretation"), tx("form")], rows, left=(0, 7, 8))
                + "\n" + tx("Interpretation bands: Koo & Li (2016)."))

    @styled
    def plot_icc(self, *, title: str | None = None, ax=None):
        """Point estimates with confidence bounds over the Koo & Li (2016) bands; returns the Axes."""
        tx = Text()
        return _plot_icc_table(self.table, ax, title if title is not None else
                               tx("Intraclass correlations ({level} CI)", level=tx.pct(self.level)), tx)


#: Koo & Li (2016) bands of an ICC: (low, high, word), shaded from light to dark
_ICC_BANDS = ((-1.0, 0.5, N_("poor")), (0.5, 0.75, N_("moderate")), (0.75, 0.9, N_("good")),
              (0.9, 1.0, N_("excellent")))


def _plot_icc_table(table: pd.DataFrame, ax, title: str, tx):
    from matplotlib.patches import Patch

    ax = new_axes(ax, (7.5, 3.8))
    y = np.arange(len(table))[::-1]
    shades = ("#FFFFFF", "#EAF2F8", "#CFE2F0", "#A9CBE6")
    handles = []
    for (lo, hi, word), shade in zip(_ICC_BANDS, shades):
        ax.axvspan(lo, hi, color=shade, zorder=0)
        label = (tx("{word} (below {high})", word=tx(word), high=tx.num(hi)) if lo < 0 else
                 tx("{word} ({low} to {high})", word=tx(word), low=tx.num(lo), high=tx.num(hi)))
        handles.append(Patch(facecolor=shade, edgecolor=GREY, label=label))
    est = table["icc"].to_numpy(float)
    if "ci_low" in table:
        lo = est - table["ci_low"].to_numpy(float)
        hi = table["ci_high"].to_numpy(float) - est
        ax.errorbar(est, y, xerr=[lo, hi], fmt="o", color=PALETTE[0], capsize=3)
        point = tx("ICC with its confidence interval")
    else:
        ax.plot(est, y, "o", color=PALETTE[0])
        point = tx("ICC")
    handles.insert(0, Line2D([], [], marker="o", color=PALETTE[0], linestyle="-" if "ci_low" in table else "none",
                             label=point))
    low = min(0.0, float(np.nanmin(table["ci_low"])) if "ci_low" in table else float(np.nanmin(est)))
    ax.set_xlim(low - 0.02 if np.isfinite(low) else -0.02, 1.02)
    ax.set_yticks(y)
    ax.set_yticklabels(table.index)
    ax.grid(False, axis="y")
    numeric_ticks(ax.xaxis, tx)
    ax.set_xlabel(tx("Intraclass correlation"))
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1),
              title=tx("Koo & Li (2016) bands"))
    return ax


def _wide_matrix(data, unit, rater, score, func):
    _check_frame(data, {"unit": unit, "rater": rater, "score": score}, func)
    _check_no_missing_keys(data, {"unit": unit, "rater": rater}, func)
    y = numeric_column(data, score, f"{func}: table 'data'", arg="score")
    _check_score_scale(y, score, func, data.index)
    _check_unique_pairs(data, unit, rater, func)
    return y


def _check_design_size(n_t: int, n_r: int, y: np.ndarray, func: str, unit: str, rater: str, score: str) -> None:
    if n_t < 2:
        raise ScaleupDataError(
            f"{func}: data column {unit!r} has {n_t} distinct unit; at least 2 units are needed "
            "to separate unit variance from rater variance."
        )
    if n_r < 2:
        raise ScaleupDataError(
            f"{func}: data column {rater!r} has {n_r} distinct rater; agreement needs at least 2 raters."
        )
    if np.ptp(y) == 0:
        raise ScaleupDataError(
            f"{func}: table 'data', column {score!r} (argument 'score'): all {y.size} ratings are equal "
            f"({y[0].item()!r}); an ICC is undefined without variation."
        )


def _icc_matrix(data, unit, rater, score, func) -> np.ndarray:
    """The complete units x raters matrix of scores (units and raters in sorted order)."""
    y = _wide_matrix(data, unit, rater, score, func)
    t_codes, t_levels = pd.factorize(data[unit], sort=True)
    r_codes, r_levels = pd.factorize(data[rater], sort=True)
    n, k = len(t_levels), len(r_levels)
    _check_design_size(n, k, y, func, unit, rater, score)
    if y.size != n * k:
        counts = pd.Series(t_codes).value_counts()
        short = t_levels[counts.index[counts < k].to_numpy()]
        raise ScaleupDataError(
            f"{func}: the design is incomplete: {n} units x {k} raters would give {n * k} ratings "
            f"but data has {y.size}; {len(short)} unit(s) lack a rating from some rater (first: "
            f"{short[:5].tolist()}). Use sa.icc_mixed() for incomplete or unbalanced designs, or keep "
            "only units rated by every rater."
        )
    x = np.empty((n, k))
    x[t_codes, r_codes] = y
    return x


def _mean_squares(x: np.ndarray) -> tuple[float, float, float, float]:
    """Two-way ANOVA mean squares of units (rows), raters (columns), error, and within units."""
    n, k = x.shape
    grand = x.mean()
    row_means = x.mean(axis=1)
    col_means = x.mean(axis=0)
    ss_b = k * np.sum((row_means - grand) ** 2)
    ss_j = n * np.sum((col_means - grand) ** 2)
    # the residual sum of squares from the residuals themselves (not ss_t - ss_b - ss_j, whose
    # cancellation leaves +-1e-16 noise when the raters agree perfectly); below the rounding error of
    # the ratings it is exactly 0, so perfect agreement gives F = inf whatever the order of the rows
    resid = x - row_means[:, None] - col_means[None, :] + grand
    ss_e = float(np.sum(resid**2))
    if ss_e <= x.size * (64 * np.finfo(float).eps * max(1.0, float(np.max(np.abs(x))))) ** 2:
        ss_e = 0.0
    df_b, df_j, df_e = n - 1, k - 1, (n - 1) * (k - 1)
    msb, msj, mse = ss_b / df_b, ss_j / df_j, ss_e / df_e
    msw = (ss_j + ss_e) / (df_j + df_e)
    return msb, msj, mse, msw


def _icc_table(msb, msj, mse, msw, n, k, level) -> pd.DataFrame:
    """Shrout & Fleiss's six ICCs with their F tests and McGraw & Wong's intervals."""
    # perfect agreement (MSE = 0) gives infinite F statistics and undefined (NaN) bounds
    def den(*terms):
        """A denominator; 0 when it is 0 up to the rounding of its terms (a cancellation such as
        MSB + (MSJ - MSE)/n leaves +-1e-16 noise that would otherwise give an ICC of +-1e16)."""
        total = float(sum(terms))
        return 0.0 if abs(total) <= 64 * np.finfo(float).eps * sum(abs(float(t)) for t in terms) else total

    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msb - msw) / den(msb, (k - 1) * msw)
        icc2 = (msb - mse) / den(msb, (k - 1) * mse, k * msj / n, -k * mse / n)
        icc3 = (msb - mse) / den(msb, (k - 1) * mse)
        icc1k = (msb - msw) / den(msb)
        icc2k = (msb - mse) / den(msb, msj / n, -mse / n)
        icc3k = (msb - mse) / den(msb)

        f1 = msb / msw
        df1n, df1d = n - 1, n * (k - 1)
        f2 = msb / mse
        df2n, df2d = n - 1, (n - 1) * (k - 1)
        p1 = stats.f.sf(f1, df1n, df1d)
        p2 = stats.f.sf(f2, df2n, df2d)

        alpha = 1 - level
        f1l = f1 / stats.f.ppf(1 - alpha / 2, df1n, df1d)
        f1u = f1 * stats.f.ppf(1 - alpha / 2, df1d, df1n)
        f3l = f2 / stats.f.ppf(1 - alpha / 2, df2n, df2d)
        f3u = f2 * stats.f.ppf(1 - alpha / 2, df2d, df2n)
        ci = {
            "ICC1": ((f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
            "ICC3": ((f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
            "ICC1k": (1 - 1 / f1l, 1 - 1 / f1u),
            "ICC3k": (1 - 1 / f3l, 1 - 1 / f3u),
        }
        # ICC2: Satterthwaite df for the denominator mean square (McGraw & Wong 1996, table 7).
        fj = msj / mse
        vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        fu = stats.f.ppf(1 - alpha / 2, n - 1, v)
        fl = stats.f.ppf(1 - alpha / 2, v, n - 1)
        denom = k * msj + (k * n - k - n) * mse
        l2 = n * (msb - fu * mse) / (fu * denom + n * msb)
        u2 = n * (fl * msb - mse) / (denom + n * fl * msb)
        ci["ICC2"] = (l2, u2)
        ci["ICC2k"] = (l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1)))

    values = dict(zip(_ICC_TYPES, (icc1, icc2, icc3, icc1k, icc2k, icc3k)))
    ftest = {
        "ICC1": (f1, df1n, df1d, p1),
        "ICC1k": (f1, df1n, df1d, p1),
    }
    for name in ("ICC2", "ICC3", "ICC2k", "ICC3k"):
        ftest[name] = (f2, df2n, df2d, p2)
    rows = []
    for name in _ICC_TYPES:
        fval, d1, d2, p = ftest[name]
        rows.append(
            {
                "type": _ICC_DESCRIPTIONS[name],
                "icc": float(values[name]),
                "statistic": float(fval),
                "df1": float(d1),
                "df2": float(d2),
                "pvalue": float(p),
                "ci_low": float(ci[name][0]),
                "ci_high": float(ci[name][1]),
                "interpretation": _band_icc(values[name]),
            }
        )
    return pd.DataFrame(rows, index=pd.Index(_ICC_TYPES, name="coefficient"))


@checked_inputs
def icc(data: pd.DataFrame, unit: str, rater: str, score: str, level: float = 0.95) -> ICCResult:
    """Intraclass correlations of Shrout & Fleiss (1979) for a complete units x raters design.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per (unit, rater) rating.
    unit, rater, score : str
        Columns holding the rated unit (e.g. observed session), the rater, and the numeric rating.
    level : float, default 0.95
        Confidence level of the bounds.

    Returns
    -------
    ICCResult
        ``.to_frame()`` is indexed ``ICC1 ... ICC3k`` with columns ``type, icc, statistic, df1,
        df2, pvalue, ci_low, ci_high, interpretation``.

    Raises
    ------
    ScaleupDataError
        Missing or non-numeric scores, duplicated (unit, rater) pairs, an incomplete design
        (use :func:`icc_mixed`), a single unit or rater, or constant scores.

    Notes
    -----
    With ``n`` units, ``k`` raters and the two-way ANOVA mean squares ``MSB`` (units), ``MSJ``
    (raters), ``MSE`` (residual) and the one-way within-unit mean square
    ``MSW = (SSJ + SSE) / (n (k - 1))``:

    * ICC1  = (MSB - MSW) / (MSB + (k - 1) MSW)
    * ICC2  = (MSB - MSE) / (MSB + (k - 1) MSE + k (MSJ - MSE) / n)
    * ICC3  = (MSB - MSE) / (MSB + (k - 1) MSE)
    * ICC1k = (MSB - MSW) / MSB;  ICC2k = (MSB - MSE) / (MSB + (MSJ - MSE) / n);
      ICC3k = (MSB - MSE) / MSB.

    F tests: ``MSB/MSW`` on (n - 1, n(k - 1)) df for ICC1/ICC1k, ``MSB/MSE`` on (n - 1, (n - 1)(k - 1))
    df otherwise. Confidence bounds are the exact F-based bounds of Shrout & Fleiss (1979) for
    ICC1/ICC3 (and the Spearman-Brown steps for the averages), and Satterthwaite's approximate
    df for ICC2/ICC2k (McGraw & Wong 1996). All values equal ``psych::ICC(x, lmer = FALSE)``
    (psych's default ``lmer = TRUE`` rebuilds these mean squares from lme4 variance components and
    agrees only to the optimizer's tolerance). Interpretation bands (Koo & Li 2016) are applied to
    the point estimate: < 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good, > 0.9 excellent.

    References
    ----------
    Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater
    reliability. Psychological Bulletin, 86(2), 420-428.
    McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass correlation
    coefficients. Psychological Methods, 1(1), 30-46.
    Koo, T. K., & Li, M. Y. (2016). A guideline of selecting and reporting intraclass correlation
    coefficients for reliability research. Journal of Chiropractic Medicine, 15(2), 155-163.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> data = pd.DataFrame([(t, r, v) for t, row in enumerate(sf) for r, v in enumerate(row)],
    ...                   columns=["session", "rater", "score"])
    >>> res = sa.icc(data, unit="session", rater="rater", score="score")
    >>> res.to_frame().loc[["ICC2", "ICC3"], ["icc", "interpretation"]].round(4)
                    icc interpretation
    coefficient
    ICC2         0.2898           poor
    ICC3         0.7148       moderate
    """
    func = "icc"
    check_level(level, func)
    x = _icc_matrix(data, unit, rater, score, func)
    n, k = x.shape
    msb, msj, mse, msw = _mean_squares(x)
    return ICCResult(
        table=_icc_table(msb, msj, mse, msw, n, k, level),
        n_units=n,
        n_raters=k,
        level=level,
        ms_units=float(msb),
        ms_raters=float(msj),
        ms_error=float(mse),
        ms_within=float(msw),
    )


# --------------------------------------------------------------------------------------------
# ICC from REML variance components (crossed random effects; engine: engines.crossed)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ICCMixedResult(Displayed):
    """Result of :func:`icc_mixed`.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed ``ICC1 ... ICC3k`` with columns ``type``, ``icc``, ``interpretation``.
    var_unit, var_rater, var_residual : float
        REML variance components of ``score ~ 1 + (1|unit) + (1|rater)``.
    var_unit_oneway, var_residual_oneway : float
        REML variance components of the one-way model ``score ~ 1 + (1|unit)`` (for ICC1).
    intercept : float
        Estimated mean rating (crossed model).
    k : float
        Number of ratings the average-rater coefficients refer to.
    n_units, n_raters, n_obs : int
        Design size.
    reml_deviance, reml_deviance_oneway : float
        REML criteria at the optimum (lme4's ``REMLcrit``).
    """

    table: pd.DataFrame
    var_unit: float
    var_rater: float
    var_residual: float
    var_unit_oneway: float
    var_residual_oneway: float
    intercept: float
    k: float
    n_units: int
    n_raters: int
    n_obs: int
    reml_deviance: float
    reml_deviance_oneway: float

    @property
    def icc(self) -> pd.Series:
        """Point estimates, indexed ``ICC1`` ... ``ICC3k``."""
        return self.table["icc"]

    def variance_components(self) -> pd.DataFrame:
        """Variance components of both models (tidy)."""
        return pd.DataFrame(
            {
                "model": ["crossed", "crossed", "crossed", "one-way", "one-way"],
                "component": ["unit", "rater", "residual", "unit", "residual"],
                "variance": [
                    self.var_unit, self.var_rater, self.var_residual,
                    self.var_unit_oneway, self.var_residual_oneway,
                ],
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """The ICC table (one row per coefficient)."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        return {"n_obs": self.n_obs, "n_units": self.n_units, "n_raters": self.n_raters, "k": self.k,
                **self.table["icc"].to_dict()}

    def _summary(self, tx) -> str:
        words = {"crossed": tx("crossed"), "one-way": tx("one-way"), "unit": tx("unit"), "rater": tx("rater"),
                 "residual": tx("residual")}
        vc = [[words[r.model], words[r.component], num_cell(tx, r.variance)]
              for r in self.variance_components().itertuples(index=False)]
        rows = [[name, num_cell(tx, r["icc"]), tx(r["interpretation"]), tx(r["type"])] for name, r in self.table.iterrows()]
        return "\n".join([
            tx("Intraclass correlations from REML variance components: {n} ratings of {u} units by {r} raters "
               "(average-rater ICCs for k = {k})", n=tx.int(self.n_obs), u=tx.int(self.n_units),
               r=tx.int(self.n_raters), k=tx.int(self.k) if float(self.k).is_integer() else tx.num(self.k, 2)),
            text_table([tx("model"), tx("component"), tx("variance")], vc, left=(0, 1)),
            "",
            text_table([tx("coefficient"), tx("ICC"), tx("interpretation"), tx("form")], rows, left=(0, 2, 3)),
            tx("Interpretation bands: Koo & Li (2016)."),
        ])

    @styled
    def plot_icc(self, *, title: str | None = None, ax=None):
        """Point estimates over the Koo & Li (2016) bands; returns the Axes."""
        tx = Text()
        return _plot_icc_table(self.table, ax, title if title is not None else
                               tx("Intraclass correlations from variance components"), tx)


@checked_inputs
def icc_mixed(
    data: pd.DataFrame, unit: str, rater: str, score: str, k: float | None = None
) -> ICCMixedResult:
    """Intraclass correlations from REML variance components (incomplete designs allowed).

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per rating; a unit rated by fewer raters has fewer rows.
    unit, rater, score : str
        Columns holding the rated unit, the rater, and the numeric rating.
    k : float, optional
        Number of ratings averaged by the ``ICC1k/ICC2k/ICC3k`` coefficients. Default: the harmonic
        mean of the number of ratings per unit (so ``sigma2_e / k`` is the average error
        variance of the observed unit means; equal to the number of raters when complete).

    Returns
    -------
    ICCMixedResult

    Notes
    -----
    Fits by REML, with the same criterion as ``lme4::lmer``, the crossed model
    ``score ~ 1 + (1|unit) + (1|rater)`` (variances ``s2_t, s2_r, s2_e``) and the one-way model
    ``score ~ 1 + (1|unit)`` (``s1_t, s1_w``), then

    * ICC1 = s1_t / (s1_t + s1_w);  ICC1k = s1_t / (s1_t + s1_w / k)
    * ICC2 = s2_t / (s2_t + s2_r + s2_e);  ICC2k = s2_t / (s2_t + (s2_r + s2_e) / k)
    * ICC3 = s2_t / (s2_t + s2_e);  ICC3k = s2_t / (s2_t + s2_e / k)

    These are the population definitions of Shrout & Fleiss (1979) and McGraw & Wong (1996).
    On a complete balanced design with positive variance estimates, REML equals the ANOVA
    estimators, so the six values equal those of :func:`icc`. They differ from
    ``psych::ICC(lmer = TRUE)``, which plugs the same variance components back into the mean-square
    formulas. No confidence bounds are given (no exact F theory for unbalanced data).

    References
    ----------
    Shrout, P. E., & Fleiss, J. L. (1979). Psychological Bulletin, 86(2), 420-428.
    McGraw, K. O., & Wong, S. P. (1996). Psychological Methods, 1(1), 30-46.
    Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models
    using lme4. Journal of Statistical Software, 67(1).

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> data = pd.DataFrame([(t, r, v) for t, row in enumerate(sf) for r, v in enumerate(row)],
    ...                   columns=["session", "rater", "score"])
    >>> data = data.drop(index=[8, 13, 7])  # three missing cells (session/rater 2/0, 3/1, 1/3)
    >>> res = sa.icc_mixed(data, unit="session", rater="rater", score="score")
    >>> round(res.var_unit, 3), round(res.var_rater, 3), round(res.var_residual, 3)
    (2.082, 6.224, 0.455)
    """
    func = "icc_mixed"
    y = _wide_matrix(data, unit, rater, score, func)
    t_codes, t_levels = pd.factorize(data[unit], sort=True)
    r_codes, r_levels = pd.factorize(data[rater], sort=True)
    n_t, n_r = len(t_levels), len(r_levels)
    _check_design_size(n_t, n_r, y, func, unit, rater, score)
    per_target = np.bincount(t_codes, minlength=n_t)
    if k is None:
        k = float(1.0 / np.mean(1.0 / per_target))
    elif not (np.isfinite(k) and k >= 1):
        raise ScaleupDataError(f"{func}: k must be a number >= 1, got {k!r}.")

    crossed = CrossedREML(y, t_codes, r_codes)
    th2, mu2, s2e, dev2, ok2 = crossed.fit(np.array([0.8, 0.5]))
    oneway = CrossedREML(y, t_codes, None)
    th1, _, s1w, dev1, ok1 = oneway.fit(np.array([0.8]))
    if not (ok1 and ok2):
        warnings.warn(
            f"{func}: the REML optimizer reported non-convergence; check the variance components "
            "(e.g. a rater or target with a single rating) and compare with lme4::lmer.",
            ConvergenceWarning,
            stacklevel=2,
        )
    s2t, s2r = s2e * th2[0] ** 2, s2e * th2[1] ** 2
    s1t = s1w * th1[0] ** 2
    values = {
        "ICC1": s1t / (s1t + s1w),
        "ICC2": s2t / (s2t + s2r + s2e),
        "ICC3": s2t / (s2t + s2e),
        "ICC1k": s1t / (s1t + s1w / k),
        "ICC2k": s2t / (s2t + (s2r + s2e) / k),
        "ICC3k": s2t / (s2t + s2e / k),
    }
    table = pd.DataFrame(
        {
            "type": [_ICC_DESCRIPTIONS[n] for n in _ICC_TYPES],
            "icc": [float(values[n]) for n in _ICC_TYPES],
            "interpretation": [_band_icc(values[n]) for n in _ICC_TYPES],
        },
        index=pd.Index(_ICC_TYPES, name="coefficient"),
    )
    return ICCMixedResult(
        table=table,
        var_unit=float(s2t),
        var_rater=float(s2r),
        var_residual=float(s2e),
        var_unit_oneway=float(s1t),
        var_residual_oneway=float(s1w),
        intercept=float(mu2),
        k=float(k),
        n_units=n_t,
        n_raters=n_r,
        n_obs=int(y.size),
        reml_deviance=float(dev2),
        reml_deviance_oneway=float(dev1),
    )


# --------------------------------------------------------------------------------------------
# Cohen's kappa
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class KappaResult(Displayed):
    """Result of :func:`cohen_kappa`.

    Attributes
    ----------
    kappa : float
        Cohen's kappa (weighted if ``weights`` was given).
    se : float
        Large-sample standard error (Fleiss, Cohen & Everitt 1969), used for the confidence interval.
    se0 : float
        Standard error under H0: kappa = 0 (Fleiss, Cohen & Everitt 1969), used for ``statistic``.
    statistic, pvalue : float
        The z statistic ``kappa / se0`` and its two-sided normal p-value.
    ci_low, ci_high : float
        ``kappa -/+ z_{1-(1-level)/2} * se``.
    po, pe : float
        Observed and chance-expected (weighted) agreement proportions.
    n : int
        Number of rated subjects.
    weights : str or None
        ``None``, ``"linear"`` or ``"quadratic"``.
    level : float
    interpretation : str
        Landis & Koch (1977) band of ``kappa``.
    table : pandas.DataFrame
        Contingency table (rater 1 in rows, rater 2 in columns).
    """

    kappa: float
    se: float
    se0: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    po: float
    pe: float
    n: int
    weights: str | None
    level: float
    interpretation: str
    table: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table of the estimate and its inference."""
        return pd.DataFrame(
            [
                {
                    "measure": "weighted kappa" if self.weights else "kappa",
                    "weights": self.weights or "none",
                    "kappa": self.kappa,
                    "se": self.se,
                    "ci_low": self.ci_low,
                    "ci_high": self.ci_high,
                    "se0": self.se0,
                    "statistic": self.statistic,
                    "pvalue": self.pvalue,
                    "po": self.po,
                    "pe": self.pe,
                    "n": self.n,
                    "interpretation": self.interpretation,
                }
            ]
        )

    def _repr_fields(self) -> dict:
        return {"kappa": self.kappa, "ci": (self.ci_low, self.ci_high), "weights": self.weights, "n": self.n,
                "interpretation": self.interpretation}

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        head = (tx("Cohen's kappa ({weights} weights), n = {n}", weights=tx(self.weights), n=tx.int(self.n))
                if self.weights else tx("Cohen's kappa (unweighted), n = {n}", n=tx.int(self.n)))
        return "\n".join([
            head,
            tx("  kappa = {kappa}  SE = {se}  {level} CI {ci}  ({word}, Landis & Koch 1977)",
               kappa=num_cell(tx, self.kappa), se=num_cell(tx, self.se), level=level,
               ci=_bracket(tx, self.ci_low, self.ci_high), word=tx(self.interpretation)),
            tx("  Test of kappa = 0: SE0 = {se0}, z = {z}, {p}", se0=num_cell(tx, self.se0),
               z=num_cell(tx, self.statistic, 3), p=tx.pvalue(self.pvalue)),
            tx("  Observed agreement po = {po}, chance agreement pe = {pe}", po=num_cell(tx, self.po),
               pe=num_cell(tx, self.pe)),
        ])

    @styled
    def plot_table(self, *, title: str | None = None, ax=None):
        """Heat map of the contingency table (rater 1 in rows, rater 2 in columns, counts annotated,
        sequential colour scale with its colour bar); returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (5.8, 4.6))
        t = self.table.to_numpy(float)
        image = ax.imshow(t, cmap=SEQUENTIAL, vmin=0, vmax=max(float(t.max()), 1.0))
        top = max(float(t.max()), 1.0)
        for i in range(t.shape[0]):
            for j in range(t.shape[1]):
                colour = "white" if t[i, j] < top / 2 else "black"  # cividis: dark low, light high
                ax.text(j, i, tx.int(t[i, j]) if float(t[i, j]).is_integer() else tx.num(t[i, j], 1),
                        ha="center", va="center", color=colour)
        ax.set_xticks(range(t.shape[1]))
        ax.set_xticklabels([str(c).replace("$", r"\$") for c in self.table.columns])
        ax.set_yticks(range(t.shape[0]))
        ax.set_yticklabels([str(c).replace("$", r"\$") for c in self.table.index])
        ax.grid(False)
        ax.spines[:].set_visible(False)
        ax.set_xlabel(tx("Category given by {rater}", rater=str(self.table.columns.name).replace("$", r"\$")))
        ax.set_ylabel(tx("Category given by {rater}", rater=str(self.table.index.name).replace("$", r"\$")))
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
        bar.set_label(tx("Number of rated units"))
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if title is None:
            kappa = tx.num(self.kappa, 3)
            title = (tx("Weighted Cohen's kappa ({weights}) = {kappa}", weights=tx(self.weights), kappa=kappa)
                     if self.weights else tx("Cohen's kappa = {kappa}", kappa=kappa))
        ax.set_title(title)
        return ax


def _kappa_categories(data, rater1, rater2, categories, func, weights=None) -> np.ndarray:
    """The ordered categories: given, those of ordered Categorical columns, or every value either
    rater used (sorted); weighted kappa on text codes needs the order (alphabetical is no order)."""
    kind = _check_codes(data, {"rater1": rater1, "rater2": rater2}, func)
    dtypes = [data[c].dtype for c in (rater1, rater2)]
    ordered = [isinstance(d, pd.CategoricalDtype) and bool(d.ordered) for d in dtypes]
    if categories is None and any(ordered):
        if not all(ordered) or list(dtypes[0].categories) != list(dtypes[1].categories):
            raise ScaleupDataError(
                f"{func}: columns {rater1!r} and {rater2!r} must both be ordered Categoricals with the "
                f"same categories in the same order (got {dtypes[0]} and {dtypes[1]}); or pass "
                "categories=[...] (lowest first)."
            )
        categories = list(dtypes[0].categories)
    if categories is None:
        values = pd.unique(pd.concat([data[rater1].astype(object), data[rater2].astype(object)]))
        if weights is not None and kind != "number":
            shown = sorted(map(str, values))
            raise ScaleupDataError(
                f"{func}: weights={weights!r} need the order of the categories, but columns {rater1!r} and "
                f"{rater2!r} hold {kind or 'non-numeric'} codes ({first_values(shown)}) without an order: sorted "
                f"alphabetically they would read {' < '.join(shown[:5])}. Pass the order with "
                f"categories=[...] (lowest first, e.g. categories={shown[:3]!r} reordered), or make both "
                "columns ordered Categoricals: pd.Categorical(data[col], categories=[...], ordered=True)."
            )
        categories = np.array(sorted(values), dtype=object)
    else:
        categories = np.asarray(list(categories), dtype=object)
        if len(set(categories.tolist())) != len(categories):
            raise ScaleupDataError(f"{func}: categories contains duplicates: {list(categories)}.")
        unknown = ~data[rater1].isin(categories) | ~data[rater2].isin(categories)
        if unknown.any():
            raise ScaleupDataError(
                f"{func}: {rows_text(data, unknown, label='first:')} hold values not listed in categories; add them."
            )
    if len(categories) < 2:
        raise ScaleupDataError(
            f"{func}: both raters used the single category {categories[0]!r} for all {len(data)} "
            "subjects; kappa is undefined without variation."
        )
    return categories


def _kappa_weights(kcat: int, weights) -> np.ndarray:
    """Agreement weights: identity (unweighted), linear or quadratic in the category distance."""
    dist = np.abs(np.subtract.outer(np.arange(kcat), np.arange(kcat))).astype(float)
    if weights is None:
        return np.eye(kcat)
    if weights == "linear":
        return 1.0 - dist / (kcat - 1)
    return 1.0 - dist**2 / (kcat - 1) ** 2


def _weighted_kappa(p, w, n, func) -> tuple[float, float, float, float, float]:
    """Kappa, observed and chance agreement, and Fleiss, Cohen & Everitt's (1969) large-sample SEs
    (and under H0) from the cell proportions ``p`` and agreement weights ``w``."""
    pr, pc = p.sum(axis=1), p.sum(axis=0)
    po = float(np.sum(w * p))
    pe = float(np.sum(w * np.outer(pr, pc)))
    if pe >= 1:
        raise ScaleupDataError(
            f"{func}: chance agreement is 1 (each rater used a single category), so kappa is undefined."
        )
    kappa = (po - pe) / (1 - pe)
    wbar_i = w @ pc  # sum_j p_.j w_ij
    wbar_j = pr @ w  # sum_i p_i. w_ij
    wsum = wbar_i[:, None] + wbar_j[None, :]
    var = (np.sum(p * (w - wsum * (1 - kappa)) ** 2) - (kappa - pe * (1 - kappa)) ** 2) / (n * (1 - pe) ** 2)
    var0 = (np.sum(np.outer(pr, pc) * (w - wsum) ** 2) - pe**2) / (n * (1 - pe) ** 2)
    return kappa, po, pe, float(np.sqrt(max(var, 0.0))), float(np.sqrt(max(var0, 0.0)))


def _kappa_degenerate(data, rater1, rater2, counts, weights) -> str | None:
    """Why kappa is 0 by construction (observed agreement always equals chance agreement), or ``None``.

    Two designs: a rater who gave every subject the same category (any weights), and, unweighted,
    two raters who never used the same category (``po = pe = 0``). In both, kappa is 0 and the
    Fleiss-Cohen-Everitt variances are 0 in exact arithmetic, so the z test is 0/0."""
    for rater, other in ((rater1, rater2), (rater2, rater1)):
        used = pd.unique(data[rater])
        if len(used) == 1:
            return (f"rater {rater!r} gave the same category ({first_values(used)}) to all {len(data)} subjects, "
                    f"so observed and chance agreement are equal whatever rater {other!r} did")
    if weights is None and not np.trace(counts):
        used1, used2 = (first_values(pd.unique(data[r])) for r in (rater1, rater2))
        return (f"the two raters never gave the same category (rater {rater1!r} used {used1}; rater {rater2!r} "
                f"used {used2}), so observed and chance agreement are both 0 (check that both columns use the "
                "same codes)")
    return None


@checked_inputs
def cohen_kappa(
    data: pd.DataFrame,
    rater1: str,
    rater2: str,
    weights: str | None = None,
    level: float = 0.95,
    categories=None,
) -> KappaResult:
    """Cohen's kappa for two raters, unweighted or with linear / quadratic weights.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (e.g. session) rated by both raters.
    rater1, rater2 : str
        Columns holding each rater's category.
    weights : {None, "linear", "quadratic"}
        Disagreement weights by category distance: none (Cohen 1960), linear
        (Cicchetti & Allison 1971) or quadratic (Fleiss & Cohen 1973).
    level : float, default 0.95
        Confidence level.
    categories : sequence, optional
        The ordered categories, lowest first (include ones nobody used). Default: the categories
        of the columns when both are ordered pandas Categoricals, else the sorted union of observed
        values. Weights use the category positions ``0 .. K-1``, so weighted kappa on text codes
        (``"low"``, ``"medium"``, ``"high"``) requires ``categories`` or ordered Categoricals: an
        alphabetical order is no order, and is refused. Codes of both raters must be of one kind
        (numbers or text, not a mix).

    Returns
    -------
    KappaResult

    Warns
    -----
    ScaleupWarning
        When kappa is 0 by construction: a rater gave every subject the same category, or
        (unweighted) the two raters never used the same category. Kappa, its standard errors and
        confidence limits are then exactly 0 and ``statistic`` / ``pvalue`` are NaN (0/0, as in
        ``irr::kappa2``).

    Notes
    -----
    With cell proportions ``p_ij``, margins ``p_i.``, ``p_.j`` and agreement weights
    ``w_ij = 1 - |i - j|^a / (K - 1)^a`` (``a = 1`` linear, ``2`` quadratic, identity if none):
    ``po = sum w_ij p_ij``, ``pe = sum w_ij p_i. p_.j``, ``kappa = (po - pe) / (1 - pe)``.
    Standard errors are the large-sample ones of Fleiss, Cohen & Everitt (1969), with
    ``wbar_i. = sum_j p_.j w_ij`` and ``wbar_.j = sum_i p_i. w_ij``:

    * ``var = [sum p_ij (w_ij - (wbar_i. + wbar_.j)(1 - kappa))^2 - (kappa - pe (1 - kappa))^2]
      / (n (1 - pe)^2)`` (for the confidence interval, as ``psych::cohen.kappa`` reports for the
      unweighted kappa, and SAS PROC FREQ / statsmodels for both);
    * ``var0 = [sum p_i. p_.j (w_ij - (wbar_i. + wbar_.j))^2 - pe^2] / (n (1 - pe)^2)``
      (under H0: kappa = 0, for ``z``).

    psych 2.2.9's ``var.weighted`` uses ``p_j. sum_k w_jk`` in place of ``wbar_.j`` and so differs
    from the published formula for weighted kappa; the weighted estimate itself agrees with psych.

    References
    ----------
    Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and Psychological
    Measurement, 20(1), 37-46.
    Fleiss, J. L., Cohen, J., & Everitt, B. S. (1969). Large sample standard errors of kappa and
    weighted kappa. Psychological Bulletin, 72(5), 323-327.
    Landis, J. R., & Koch, G. G. (1977). The measurement of observer agreement for categorical
    data. Biometrics, 33(1), 159-174.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> data = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3, 2, 1], "b": [1, 2, 2, 2, 3, 2, 2, 1]})
    >>> res = sa.cohen_kappa(data, "a", "b")
    >>> round(res.kappa, 4), res.interpretation
    (0.6098, 'substantial')
    """
    func = "cohen_kappa"
    _check_frame(data, {"rater1": rater1, "rater2": rater2}, func)
    if weights not in (None, "linear", "quadratic"):
        raise ScaleupDataError(
            f"{func}: weights must be None, 'linear' or 'quadratic', got {weights!r}."
        )
    check_level(level, func)
    miss = data[rater1].isna() | data[rater2].isna()
    if miss.any():
        raise ScaleupDataError(
            f"{func}: {rows_text(data, miss, label='first:')} lack a rating in {rater1!r} or {rater2!r}; kappa needs "
            "both raters for every subject. Drop those rows (or use sa.krippendorff_alpha, which "
            "allows missing ratings)."
        )
    if len(data) < 2:
        raise ScaleupDataError(f"{func}: data has {len(data)} row(s); at least 2 rated subjects are needed.")
    categories = _kappa_categories(data, rater1, rater2, categories, func, weights)
    kcat = len(categories)
    cat_index = pd.Index(categories)
    i = cat_index.get_indexer(data[rater1])
    j = cat_index.get_indexer(data[rater2])
    n = len(data)
    counts = np.zeros((kcat, kcat))
    np.add.at(counts, (i, j), 1.0)
    kappa, po, pe, se, se0 = _weighted_kappa(counts / n, _kappa_weights(kcat, weights), n, func)
    degenerate = _kappa_degenerate(data, rater1, rater2, counts, weights)
    if degenerate is not None:
        # exact values: rounding would leave kappa ~ 1e-17 and se0 ~ 1e-9, hence a meaningless z
        kappa, se, se0 = 0.0, 0.0, 0.0
    zq = stats.norm.ppf(1 - (1 - level) / 2)
    z = kappa / se0 if se0 > 0 else np.nan
    pvalue = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    if degenerate is not None:
        warnings.warn(
            f"{func}: {degenerate}; kappa is 0 (po = pe = {po:.4g}) and cannot measure agreement here. Its "
            "standard errors are 0 (confidence interval [0, 0]) and the z statistic and p-value are undefined "
            "(NaN, as 0/0 in irr::kappa2). Report the observed agreement po instead.",
            ScaleupWarning,
            stacklevel=3,
        )
    elif not np.isfinite(z):
        warnings.warn(
            f"{func}: the standard error of kappa under H0 (se0) is 0 for these margins, so the z statistic and "
            "p-value are undefined (NaN, as 0/0 in irr::kappa2).",
            ScaleupWarning,
            stacklevel=3,
        )
    table = pd.DataFrame(
        counts.astype(int),
        index=pd.Index(categories, name=rater1),
        columns=pd.Index(categories, name=rater2),
    )
    return KappaResult(
        kappa=float(kappa), se=se, se0=se0, statistic=float(z), pvalue=pvalue, ci_low=float(kappa - zq * se),
        ci_high=float(kappa + zq * se), po=po, pe=pe, n=n, weights=weights, level=level,
        interpretation=_band_kappa(kappa), table=table,
    )


# --------------------------------------------------------------------------------------------
# Fleiss' kappa
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class FleissKappaResult(Displayed):
    """Result of :func:`fleiss_kappa`.

    Attributes
    ----------
    kappa : float
        Fleiss' (1971) kappa.
    se : float
        Standard error under H0: kappa = 0 (Fleiss, Nee & Landis 1979).
    z, pvalue : float
        The z statistic ``kappa / se`` and its two-sided normal p-value.
    ci_low, ci_high : float
        ``kappa -/+ z_{1-(1-level)/2} * se`` (uses the null standard error; see Notes of
        :func:`fleiss_kappa`).
    per_category : pandas.DataFrame
        Indexed by category: ``share`` (share of all ratings), ``kappa``, ``se``, ``statistic``
        (z), ``pvalue``, ``ci_low``, ``ci_high``, ``interpretation``.
    n_units, n_raters : int
        Units (rated subjects) and ratings per unit.
    po, pe : float
        Mean observed pairwise agreement and chance agreement.
    level : float
    interpretation : str
        Landis & Koch (1977) band of ``kappa``.
    """

    kappa: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    per_category: pd.DataFrame
    n_units: int
    n_raters: int
    po: float
    pe: float
    level: float
    interpretation: str

    def to_frame(self) -> pd.DataFrame:
        """Overall row then one row per category (``category == "overall"`` for the first)."""
        overall = pd.DataFrame(
            [{"category": "overall", "share": 1.0, "kappa": self.kappa, "se": self.se, "statistic": self.statistic,
              "pvalue": self.pvalue, "ci_low": self.ci_low, "ci_high": self.ci_high,
              "interpretation": self.interpretation}]
        )
        per = self.per_category.rename_axis("category").reset_index()
        per["category"] = per["category"].astype(object)
        return pd.concat([overall, per], ignore_index=True)

    def _repr_fields(self) -> dict:
        return {"kappa": self.kappa, "ci": (self.ci_low, self.ci_high), "n_units": self.n_units,
                "n_raters": self.n_raters, "interpretation": self.interpretation}

    def _summary(self, tx) -> str:
        level = tx.pct(self.level)
        rows = [[str(c), tx.pct(r["share"], 1), num_cell(tx, r["kappa"]), num_cell(tx, r["se"]), num_cell(tx, r["statistic"], 3),
                 p_cell(tx, r["pvalue"]), _bracket(tx, r["ci_low"], r["ci_high"]), tx(r["interpretation"])]
                for c, r in self.per_category.iterrows()]
        return "\n".join([
            tx("Fleiss' kappa: {n} units × {k} ratings each", n=tx.int(self.n_units), k=tx.int(self.n_raters)),
            tx("  kappa = {kappa}  SE0 = {se}  z = {z}  {p}  {level} CI {ci}  ({word}, Landis & Koch 1977)",
               kappa=num_cell(tx, self.kappa), se=num_cell(tx, self.se), z=num_cell(tx, self.statistic, 3),
               p=tx.pvalue(self.pvalue), level=level, ci=_bracket(tx, self.ci_low, self.ci_high),
               word=tx(self.interpretation)),
            text_table([tx("category"), tx("share"), "kappa", tx("SE"), "z", "p", tx("{level} CI", level=level),
                         tx("interpretation")], rows, left=(0, 7)),
        ])

    @styled
    def plot_categories(self, *, title: str | None = None, ax=None):
        """Per-category kappas with their intervals (kappa -/+ z SE) and the overall kappa; returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (7.0, 4.0))
        per = self.per_category
        zq = stats.norm.ppf(1 - (1 - self.level) / 2)
        x = np.arange(len(per))
        level = tx.pct(self.level)
        ax.bar(x, per["kappa"], color=PALETTE[5], width=0.6, yerr=zq * per["se"], capsize=3,
               error_kw={"ecolor": NEUTRAL, "lw": 1}, label=tx("Kappa of the category ({level} CI)", level=level))
        ax.axhline(self.kappa, color=PALETTE[3], linestyle="--",
                   label=tx("Overall kappa: {kappa}", kappa=tx.num(self.kappa, 3)))
        ax.axhline(0.0, color="0.35", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([str(c).replace("$", r"\$") for c in per.index])
        ax.grid(False, axis="x")
        numeric_ticks(ax.yaxis, tx)
        ax.set_xlabel(tx("Category"))
        ax.set_ylabel(tx("Fleiss' kappa"))
        ax.set_title(title if title is not None else tx("Fleiss' kappa by category"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        return ax


@checked_inputs
def fleiss_kappa(
    data: pd.DataFrame, unit: str, rater: str, score: str, level: float = 0.95
) -> FleissKappaResult:
    """Fleiss' kappa for several raters assigning nominal categories.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per (unit, rater) rating. Every unit (rated subject) must carry the
        same number ``m >= 2`` of ratings (the raters need not be the same people).
    unit, rater, score : str
        Columns holding the unit, the rater and the category assigned.
    level : float, default 0.95

    Returns
    -------
    FleissKappaResult

    Notes
    -----
    With ``N`` subjects, ``m`` ratings each, ``x_ij`` ratings of subject ``i`` in category ``j``,
    ``p_j = sum_i x_ij / (N m)`` and ``q_j = 1 - p_j``:
    ``po = mean_i (sum_j x_ij^2 - m) / (m (m - 1))``, ``pe = sum_j p_j^2``,
    ``kappa = (po - pe) / (1 - pe)`` (Fleiss 1971). Category kappas
    ``kappa_j = 1 - sum_i x_ij (m - x_ij) / (N m (m - 1) p_j q_j)``.
    Standard errors are those of Fleiss, Nee & Landis (1979) **under the null hypothesis** of no
    agreement beyond chance (as in ``irr::kappam.fleiss``):
    ``se = sqrt(2) / (sum p_j q_j sqrt(N m (m - 1))) * sqrt((sum p_j q_j)^2 - sum p_j q_j (q_j - p_j))``
    and ``se_j = sqrt(2 / (N m (m - 1)))``. They are exact for the z test; the confidence interval
    ``kappa -/+ z se`` reuses the null SE and is only a rough guide when kappa is far from 0.
    Subjects with unequal numbers of ratings: use :func:`krippendorff_alpha`.

    References
    ----------
    Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychological
    Bulletin, 76(5), 378-382.
    Fleiss, J. L., Nee, J. C. M., & Landis, J. R. (1979). Large sample variance of kappa in the
    case of different sets of raters. Psychological Bulletin, 86(5), 974-977.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> rows = [[1, 1, 1], [1, 1, 2], [2, 2, 2], [3, 3, 3], [3, 2, 3], [1, 1, 1]]
    >>> data = pd.DataFrame([(s, r, v) for s, row in enumerate(rows) for r, v in enumerate(row)],
    ...                   columns=["session", "rater", "category"])
    >>> res = sa.fleiss_kappa(data, "session", "rater", "category")
    >>> round(res.kappa, 4), res.interpretation
    (0.6571, 'substantial')
    """
    func = "fleiss_kappa"
    _check_frame(data, {"unit": unit, "rater": rater, "score": score}, func)
    _check_no_missing_keys(data, {"unit": unit, "rater": rater}, func)
    check_level(level, func)
    miss = data[score].isna()
    if miss.any():
        raise ScaleupDataError(
            f"{func}: data column {score!r} has missing ratings in {rows_text(data, miss, label='first:')}; Fleiss' "
            "kappa needs the same number of ratings per subject. Drop the rows and keep subjects "
            "complete, or use sa.krippendorff_alpha (missing ratings allowed)."
        )
    _check_unique_pairs(data, unit, rater, func)
    _check_codes(data, {"score": score}, func)
    s_codes, s_levels = pd.factorize(data[unit], sort=True)
    c_codes, c_levels = pd.factorize(data[score], sort=True)
    n_sub, n_cat = len(s_levels), len(c_levels)
    if n_sub < 2:
        raise ScaleupDataError(f"{func}: data column {unit!r} has {n_sub} unit; at least 2 are needed.")
    x = np.zeros((n_sub, n_cat))
    np.add.at(x, (s_codes, c_codes), 1.0)
    m_i = x.sum(axis=1)
    m = m_i.max()
    if np.any(m_i != m):
        short = s_levels[np.flatnonzero(m_i != m)]
        raise ScaleupDataError(
            f"{func}: every subject needs the same number of ratings, but {len(short)} of {n_sub} "
            f"subjects have fewer than {int(m)} (first: {short[:5].tolist()}). Use "
            "sa.krippendorff_alpha (unequal numbers allowed) or keep complete subjects."
        )
    if m < 2:
        raise ScaleupDataError(f"{func}: each subject has a single rating; at least 2 raters are needed.")
    if n_cat < 2:
        raise ScaleupDataError(
            f"{func}: table 'data', column {score!r} (argument 'score'): all ratings are the single category "
            f"{first_values(c_levels[:1])}; kappa is undefined."
        )
    nm = n_sub * m
    pj = x.sum(axis=0) / nm
    qj = 1 - pj
    po = float(np.mean((np.sum(x**2, axis=1) - m) / (m * (m - 1))))
    pe = float(np.sum(pj**2))
    kappa = (po - pe) / (1 - pe)
    pq = pj * qj
    se = float(
        np.sqrt(2.0) / (pq.sum() * np.sqrt(nm * (m - 1))) * np.sqrt(pq.sum() ** 2 - np.sum(pq * (qj - pj)))
    )
    z = kappa / se
    pvalue = float(2 * stats.norm.sf(abs(z)))
    kappa_j = 1 - np.sum(x * (m - x), axis=0) / (nm * (m - 1) * pq)
    se_j = np.full(n_cat, np.sqrt(2.0 / (nm * (m - 1))))
    z_j = kappa_j / se_j
    zq = stats.norm.ppf(1 - (1 - level) / 2)
    per = pd.DataFrame(
        {
            "share": pj,
            "kappa": kappa_j,
            "se": se_j,
            "statistic": z_j,
            "pvalue": 2 * stats.norm.sf(np.abs(z_j)),
            "ci_low": kappa_j - zq * se_j,
            "ci_high": kappa_j + zq * se_j,
            "interpretation": [_band_kappa(v) for v in kappa_j],
        },
        index=pd.Index(c_levels, name="category"),
    )
    return FleissKappaResult(
        kappa=float(kappa),
        se=se,
        statistic=float(z),
        pvalue=pvalue,
        ci_low=float(kappa - zq * se),
        ci_high=float(kappa + zq * se),
        per_category=per,
        n_units=n_sub,
        n_raters=int(m),
        po=po,
        pe=pe,
        level=level,
        interpretation=_band_kappa(kappa),
    )


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class KrippendorffResult(Displayed):
    """Result of :func:`krippendorff_alpha`.

    Attributes
    ----------
    estimate : float
        Krippendorff's alpha.
    ci_low, ci_high : float
        Bootstrap percentile bounds (``nan`` when ``n_boot == 0``).
    level : float
        Their confidence level.
    metric : str
        Level of measurement: ``nominal``, ``ordinal``, ``interval`` or ``ratio``.
    n_units : int
        Pairable units (with at least 2 values).
    n_pairable : int
        Pairable values ``n..`` (values in pairable units).
    n_units_dropped : int
        Units left out because they carry fewer than 2 values.
    observed_disagreement, expected_disagreement : float
        ``Do`` and ``De`` (alpha = 1 - Do / De).
    coincidence : pandas.DataFrame
        Coincidence matrix ``o_ck`` (values in rows and columns).
    boot : numpy.ndarray
        Sorted bootstrap replicates of alpha (empty when ``n_boot == 0``).
    n_boot, seed
        Bootstrap settings.
    interpretation : str
        Krippendorff (2004) band: >= 0.800 reliable, 0.667-0.800 tentative, < 0.667 unreliable.
    """

    estimate: float
    ci_low: float
    ci_high: float
    level: float
    metric: str
    n_units: int
    n_pairable: int
    n_units_dropped: int
    observed_disagreement: float
    expected_disagreement: float
    coincidence: pd.DataFrame = field(repr=False)
    boot: np.ndarray = field(repr=False)
    n_boot: int
    seed: int | None
    interpretation: str

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table."""
        return pd.DataFrame(
            [
                {
                    "metric": self.metric,
                    "estimate": self.estimate,
                    "ci_low": self.ci_low,
                    "ci_high": self.ci_high,
                    "level": self.level,
                    "n_units": self.n_units,
                    "n_pairable": self.n_pairable,
                    "n_units_dropped": self.n_units_dropped,
                    "interpretation": self.interpretation,
                }
            ]
        )

    def _repr_fields(self) -> dict:
        return {"estimate": self.estimate, "ci": (self.ci_low, self.ci_high), "metric": self.metric,
                "n_units": self.n_units, "n_boot": self.n_boot, "interpretation": self.interpretation}

    def _summary(self, tx) -> str:
        if self.n_boot:
            interval = tx("{level} bootstrap CI {ci} ({n} draws)", level=tx.pct(self.level),
                          ci=_bracket(tx, self.ci_low, self.ci_high), n=tx.int(self.n_boot))
        else:
            interval = tx("no bootstrap")
        return "\n".join([
            tx("Krippendorff's alpha ({metric}) = {alpha}, {interval}", metric=tx(self.metric),
               alpha=num_cell(tx, self.estimate), interval=interval),
            tx("  {u} pairable units, {v} pairable values, {d} unit(s) with fewer than 2 values left out",
               u=tx.int(self.n_units), v=tx.int(self.n_pairable), d=tx.int(self.n_units_dropped)),
            tx("  Do = {do}, De = {de}: {word} (Krippendorff 2004)", do=num_cell(tx, self.observed_disagreement),
               de=num_cell(tx, self.expected_disagreement), word=tx(self.interpretation)),
        ])

    @styled
    def plot_bootstrap(self, *, title: str | None = None, ax=None):
        """Histogram of the bootstrap replicates with alpha, its bounds and the 0.667/0.800
        thresholds; returns the Axes."""
        tx = Text()
        ax = new_axes(ax, (7.5, 4.0))
        if self.boot.size:
            ax.hist(self.boot, bins=40, color=PALETTE[5], edgecolor="white", lw=0.5,
                    label=tx("Bootstrap replicates ({n})", n=tx.int(self.boot.size)))
            ax.axvline(self.ci_low, color=PALETTE[0], linestyle=":", lw=1.4,
                       label=tx("{level} bootstrap interval", level=tx.pct(self.level)))
            ax.axvline(self.ci_high, color=PALETTE[0], linestyle=":", lw=1.4)
        ax.axvline(self.estimate, color=PALETTE[3], linewidth=2,
                   label=tx("Alpha: {alpha}", alpha=tx.num(self.estimate, 3)))
        ax.axvline(0.667, color=NEUTRAL, linestyle="--", lw=1,
                   label=tx("Thresholds {low} and {high} (Krippendorff 2004)", low=tx.num(0.667, 3),
                            high=tx.num(0.8, 3)))
        ax.axvline(0.800, color=NEUTRAL, linestyle="--", lw=1)
        numeric_ticks(ax.xaxis, tx)
        numeric_ticks(ax.yaxis, tx, integer=True)
        ax.set_xlabel(tx("Krippendorff's alpha ({metric})", metric=tx(self.metric)))
        ax.set_ylabel(tx("Bootstrap replicates"))
        ax.set_title(title if title is not None else tx("Krippendorff's alpha: bootstrap distribution"))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        return ax


_DENSE_CELLS = 1 << 22  # krippendorff_alpha: units x values counts held dense up to 4M cells (32 MB)


def _delta2(metric: str, values: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Squared difference function delta^2_ck of Krippendorff (2011)."""
    kv = n_c.size
    if metric == "nominal":
        return 1.0 - np.eye(kv)
    if metric == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        # sum_{g=c}^{k} n_g - (n_c + n_k)/2 for c <= k (symmetric)
        lo = np.minimum.outer(np.arange(kv), np.arange(kv))
        hi = np.maximum.outer(np.arange(kv), np.arange(kv))
        s = cum[hi + 1] - cum[lo] - (n_c[:, None] + n_c[None, :]) / 2.0
        return s**2
    v = values.astype(float)
    diff = np.subtract.outer(v, v)
    if metric == "interval":
        return diff**2
    total = np.add.outer(v, v)  # ratio
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total == 0, 0.0, (diff / np.where(total == 0, 1.0, total)) ** 2)
    return out


def _krippendorff_codes(data, unit, rater, score, metric, func):
    """Rows with a value (a missing rating is absent), and integer codes of units (in order of first
    appearance), raters and values (sorted)."""
    miss = data[score].isna()
    if miss.any():
        warnings.warn(
            f"{func}: {int(miss.sum())} row(s) with a missing value in {score!r} were left out "
            "(a missing rating is simply absent in Krippendorff's alpha).",
            RowsOmittedWarning,
            stacklevel=3,
        )
        data = data.loc[~miss]
    # one factorize per column; codes in order of first appearance (units) as the rest assumes
    u_codes, u_levels = pd.factorize(data[unit], sort=False)
    r_codes, _ = pd.factorize(data[rater], sort=False)
    _check_unique_pairs(data, unit, rater, func, codes=(u_codes, r_codes))
    vals = data[score]
    if metric in ("interval", "ratio"):
        vals = pd.Series(numeric_column(data, score, f"{func}: table 'data'", arg="score"), index=data.index)
        if metric == "interval":
            _check_score_scale(vals.to_numpy(), score, func, data.index)
        if metric == "ratio" and (vals < 0).any():
            raise ScaleupDataError(
                f"{func}: metric='ratio' needs non-negative values, but data column {score!r} has "
                f"{rows_text(data, vals < 0, label='first:')} below 0; use metric='interval'."
            )
    else:
        _check_codes(data, {"score": score}, func)
    try:
        v_codes, v_levels = pd.factorize(vals, sort=True)
    except TypeError as exc:
        raise ScaleupDataError(
            f"{func}: data column {score!r} mixes value types that cannot be ordered ({exc})."
        ) from None
    return u_codes, u_levels, r_codes, v_codes, v_levels


def _coincidences(u_sub, v_sub, n_units, kv) -> tuple[np.ndarray, np.ndarray]:
    """Coincidence matrix o = N' diag(1/(m_u - 1)) N - diag(sum_u n_uc / (m_u - 1)) from the
    units x values counts N, and the number of values m_u of each unit."""
    if n_units * kv <= _DENSE_CELLS:  # few distinct values: dense counts by one bincount
        nuc = np.bincount(u_sub * kv + v_sub, minlength=n_units * kv).reshape(n_units, kv).astype(float)
        mu = nuc.sum(axis=1)
        nw = nuc * (1.0 / (mu - 1.0))[:, None]
        o = nuc.T @ nw
        o[np.diag_indices(kv)] -= nw.sum(axis=0)
    else:  # many units x many distinct values (e.g. continuous ratings): sparse
        nuc = sparse.csr_matrix((np.ones(u_sub.size), (u_sub, v_sub)), shape=(n_units, kv))
        mu = np.asarray(nuc.sum(axis=1)).ravel()
        nw = sparse.diags(1.0 / (mu - 1.0)) @ nuc
        o = (nuc.T @ nw).toarray()
        o[np.diag_indices(kv)] -= np.asarray(nw.sum(axis=0)).ravel()
    return o, mu


def _krippendorff_bootstrap(o, n_tot, d2, d_e, mu, n_raters, n_boot, level, seed) -> tuple[np.ndarray, float, float]:
    """Hayes & Krippendorff's (2007) bootstrap of alpha (KALPHA): replicates, sorted, and the interval."""
    kv = o.shape[0]
    rng = np.random.default_rng(seed)
    iu = np.triu_indices(kv)
    p_cells = np.where(iu[0] == iu[1], o[iu], 2.0 * o[iu]) / n_tot
    d_cells = d2[iu]
    nz = p_cells > 0
    p_cells, d_cells = p_cells[nz] / p_cells[nz].sum(), d_cells[nz]
    q = int(np.count_nonzero(o))
    m_draw = int(min(25 * q, (n_raters - 1) * n_tot / 2.0))
    m_draw = max(m_draw, 1)
    # per draw: the counts (or cell indices) drawn, int64, and the replicate's sum and value
    check_draw_memory("krippendorff_alpha", "n_boot", int(n_boot), 8.0 * (min(p_cells.size, m_draw) + 3),
                      "Hayes & Krippendorff recommend 1,000 to 10,000 draws.")
    if p_cells.size <= m_draw:
        counts = rng.multinomial(m_draw, p_cells, size=n_boot)
        sums = counts @ d_cells
    else:
        idx = rng.choice(p_cells.size, size=(n_boot, m_draw), p=p_cells)
        sums = d_cells[idx].sum(axis=1)
    boot = 1.0 - sums / (m_draw * d_e)
    boot = np.maximum(boot, -1.0)
    # replicates equal to 1 that only reflect a lack of variation (KALPHA 3.0)
    diag_p = np.diag(o) / n_tot
    n_diag = int(np.count_nonzero(diag_p))
    is_one = boot == 1.0
    if n_diag == 1:
        boot[is_one] = 0.0
    else:
        n_pairs = float(np.sum(mu * (mu - 1.0)) / 2.0)
        n_reset = int(np.round(n_boot * np.sum(diag_p**n_pairs)))
        if n_reset:
            boot[np.flatnonzero(is_one)[:n_reset]] = 0.0
    boot = np.sort(boot)
    # order statistics as in KALPHA: trunc(q_lo B) and trunc(q_hi B) + 1 (1-based)
    i_lo = min(max(int(np.floor((1 - level) / 2 * n_boot)), 1), n_boot)
    i_hi = min(int(np.floor((1 + level) / 2 * n_boot)) + 1, n_boot)
    return boot, boot[i_lo - 1], boot[i_hi - 1]


@checked_inputs
def krippendorff_alpha(
    data: pd.DataFrame,
    unit: str,
    rater: str,
    score: str,
    metric: str = "nominal",
    n_boot: int = 1000,
    seed: int | None = None,
    level: float = 0.95,
) -> KrippendorffResult:
    """Krippendorff's alpha for any number of raters, with missing ratings.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format, one row per (unit, rater) value. A unit rated by fewer raters simply has fewer
        rows; rows with a missing value are left out (with a ``RowsOmittedWarning``).
    unit, rater, score : str
        Columns holding the unit (e.g. observed session), the rater and the value assigned.
    metric : {"nominal", "ordinal", "interval", "ratio"}
        Level of measurement, which sets the difference function. Ordinal values are ranked by
        their sort order (pass an ordered ``pandas.Categorical`` for labels such as
        ``"low" < "mid" < "high"``); interval and ratio values must be numeric.
    n_boot : int, default 1000
        Bootstrap replicates (0 to skip the interval).
    seed : int, optional
        Seed of ``numpy.random.default_rng`` for the bootstrap (same seed -> same interval).
    level : float, default 0.95
        Confidence level of the bootstrap interval.

    Returns
    -------
    KrippendorffResult

    Notes
    -----
    Built on the coincidence matrix (Krippendorff 2011): for each pairable unit ``u`` with ``m_u``
    values and ``n_uc`` values equal to ``c``, ``o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)``;
    ``n_c = sum_k o_ck``, ``n.. = sum_c n_c``;
    ``alpha = 1 - (n.. - 1) sum o_ck delta2_ck / sum n_c n_k delta2_ck`` with
    ``delta2 = [c != k]`` (nominal), ``(sum_{g=c}^{k} n_g - (n_c + n_k)/2)^2`` (ordinal),
    ``(c - k)^2`` (interval), ``((c - k)/(c + k))^2`` (ratio).
    Units with fewer than 2 values are not pairable and are dropped (``RowsOmittedWarning``).
    The computation is a (units x values) count product, held dense for few distinct values and
    sparse otherwise, so it scales to many units.

    Bootstrap: Krippendorff's algorithm as implemented in Hayes' KALPHA macro (version 3.0,
    Hayes & Krippendorff 2007). ``De`` is kept fixed; each replicate draws
    ``M = min(25 Q, (m - 1) n.. / 2)`` value pairs with replacement from the distribution
    ``o_ck / n..`` over the cells ``c <= k`` (``Q`` non-zero cells of ``o_ck``, ``m`` raters) and
    is ``1 - sum(delta2 of the drawn pairs) / (M De)`` with
    ``De = sum n_c n_k delta2_ck / (n.. (n.. - 1))``, truncated below at -1. Replicates equal to 1
    that only reflect a lack of variation are reset to 0 (all of them when a single diagonal cell
    of ``o_ck`` is non-zero, otherwise at most ``round(B sum_c (o_cc / n..)^P)`` with ``P`` the
    number of pairs). The bounds are the sorted replicates number ``trunc(B (1 - level)/2)`` and
    ``trunc(B (1 + level)/2) + 1``, as KALPHA prints them. Because of the cap ``25 Q`` on the draws,
    the interval stops narrowing once the data hold more than about ``25 Q`` pairs, so for very
    large data it is conservative.

    References
    ----------
    Krippendorff, K. (2004). Content analysis: An introduction to its methodology (2nd ed.). Sage.
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
    Communication, University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
    Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard reliability measure
    for coding data. Communication Methods and Measures, 1(1), 77-89.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> data = pd.DataFrame({"unit": [1, 1, 2, 2, 3, 3, 3, 4, 4],
    ...                    "rater": ["A", "B", "A", "B", "A", "B", "C", "A", "C"],
    ...                    "code": [1, 1, 2, 2, 3, 3, 1, 1, 1]})
    >>> res = sa.krippendorff_alpha(data, "unit", "rater", "code", metric="nominal", n_boot=0)
    >>> round(res.estimate, 4), res.n_units, res.n_pairable
    (0.6667, 4, 9)
    """
    func = "krippendorff_alpha"
    _check_frame(data, {"unit": unit, "rater": rater, "score": score}, func)
    if metric not in ("nominal", "ordinal", "interval", "ratio"):
        raise ScaleupDataError(
            f"{func}: metric must be 'nominal', 'ordinal', 'interval' or 'ratio', got {metric!r}."
        )
    check_level(level, func)
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
        raise ScaleupDataError(f"{func}: n_boot must be a non-negative integer, got {n_boot!r}.")
    _check_no_missing_keys(data, {"unit": unit, "rater": rater}, func)
    u_codes, u_levels, r_codes, v_codes, v_levels = _krippendorff_codes(data, unit, rater, score, metric, func)
    n_u_all = len(u_levels)
    m_u = np.bincount(u_codes, minlength=n_u_all)
    pairable = m_u >= 2
    n_dropped = int(n_u_all - pairable.sum())
    if n_dropped:
        warnings.warn(
            f"{func}: {n_dropped} unit(s) in {unit!r} with fewer than 2 values are not pairable and "
            f"were left out (first: {u_levels[~pairable][:5].tolist()}).",
            RowsOmittedWarning,
            stacklevel=2,
        )
    keep = pairable[u_codes]
    if keep.sum() == 0:
        raise ScaleupDataError(
            f"{func}: no unit in {unit!r} carries 2 or more values; alpha needs units rated by at "
            "least two raters."
        )
    if pairable.sum() == 1:
        raise ScaleupDataError(
            f"{func}: a single unit in {unit!r} ({first_values(u_levels[pairable][:1])}) carries 2 or more values; alpha "
            "compares the disagreement within units with the disagreement over all values and is 0 by "
            "construction with one unit. Rate at least 2 units by 2 or more raters."
        )
    # re-code to pairable units and used values (codes kept in increasing order, as np.unique would)
    all_kept = n_dropped == 0
    u_sub = u_codes if all_kept else (np.cumsum(pairable) - 1)[u_codes[keep]]
    v_sub_raw = v_codes if all_kept else v_codes[keep]
    used = np.bincount(v_sub_raw, minlength=len(v_levels)) > 0
    v_sub = v_sub_raw if used.all() else (np.cumsum(used) - 1)[v_sub_raw]
    v_levels = np.asarray(v_levels)[used]
    n_units = int(pairable.sum())
    kv = int(used.sum())
    o, mu = _coincidences(u_sub, v_sub, n_units, kv)
    n_c = o.sum(axis=1)
    n_tot = float(n_c.sum())
    numeric_values = v_levels.astype(float) if metric in ("interval", "ratio") else None
    d2 = _delta2(metric, numeric_values if numeric_values is not None else v_levels, n_c)
    d_o = float(np.sum(o * d2) / n_tot)
    d_e = float(np.sum(np.outer(n_c, n_c) * d2) / (n_tot * (n_tot - 1)))
    if kv < 2 or d_e == 0:
        raise ScaleupDataError(
            f"{func}: every pairable value in {score!r} is the same ({first_values(v_levels[:1])}); alpha is "
            "undefined without variation."
        )
    alpha = 1.0 - d_o / d_e
    boot = np.empty(0)
    lo = hi = np.nan
    if n_boot > 0:
        n_raters = int(np.count_nonzero(np.bincount(r_codes[keep])))
        boot, lo, hi = _krippendorff_bootstrap(o, n_tot, d2, d_e, mu, n_raters, n_boot, level, seed)
    labels = pd.Index(v_levels, name="value")
    return KrippendorffResult(
        estimate=float(alpha), ci_low=float(lo), ci_high=float(hi), level=level, metric=metric,
        n_units=int(n_units), n_pairable=int(round(n_tot)), n_units_dropped=n_dropped,
        observed_disagreement=d_o, expected_disagreement=d_e,
        coincidence=pd.DataFrame(o, index=labels, columns=labels.copy()), boot=boot, n_boot=int(n_boot),
        seed=seed, interpretation=_band_alpha(alpha),
    )
