"""Interrupted time series (segmented regression) with autocorrelation-robust inference.

Model (Bernal, Cummins & Gasparrini 2017; Wagner et al. 2002)::

    y_t = b0 + b1 t + b2 post_t + b3 (t - T0) post_t [+ seasonal terms] + e_t,   post_t = 1{t >= T0}

``level_change`` = b2 (immediate change at T0, the first post-intervention period) and
``slope_change`` = b3 (change in trend per period). With a control series the model gains a
``treated`` indicator and its interactions and the effects are the differences in level and slope
changes between treated and control series (controlled ITS; Lopez Bernal et al. 2018).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

from .._checks import check_level, check_spread, checked_inputs, first_values, rows_text
from .._display import Displayed, text_table
from .._style import NEUTRAL, OUTSIDE, PALETTE, new_axes, styled, ticks_inside
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..i18n import N_
from ..narrative import Text

#: How the error models are named in summaries.
_ERROR_WORDS = {"newey-west": N_("Newey-West errors"), "ar1": N_("AR(1) errors"), "ols": N_("OLS errors")}

__all__ = ["interrupted_time_series", "ITSResult"]

_ERRORS = ("newey-west", "ar1", "ols")
#: Largest magnitude of a period or outcome value: squares and cross-products must stay finite.
_MAX_ABS = 1e100


def default_maxlags(n: int) -> int:
    """Newey & West (1994) rule of thumb ``floor(4 (n / 100)^(2/9))``."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


# --------------------------------------------------------------------------------------------
# design and fitting
# --------------------------------------------------------------------------------------------
def _design(t, t0, treated=None, seasonality=None, harmonics=1) -> pd.DataFrame:
    t = np.asarray(t, float)
    post = (t >= t0).astype(float)
    since = (t - t0) * post
    X = {"intercept": np.ones_like(t), "time": t}
    if treated is None:
        X["level_change"] = post
        X["slope_change"] = since
    else:
        z = np.asarray(treated, float)
        X["post"] = post
        X["time_since"] = since
        X["treated"] = z
        X["treated_time"] = z * t
        X["level_change"] = z * post
        X["slope_change"] = z * since
    if seasonality is not None:
        for k in range(1, harmonics + 1):
            X[f"sin{k}"] = np.sin(2 * np.pi * k * t / seasonality)
            X[f"cos{k}"] = np.cos(2 * np.pi * k * t / seasonality)
    return pd.DataFrame(X)


def _ar1_corr(t: np.ndarray, rho: float) -> np.ndarray:
    return rho ** np.abs(t[:, None] - t[None, :])


def _fit_ar1(y, X, t, reml=True):
    """GLS with AR(1) errors, corr(e_i, e_j) = rho^|t_i - t_j|; rho by (RE)ML, beta by GLS
    (as ``nlme::gls(..., correlation = corAR1(form = ~ t))``)."""
    n, p = X.shape

    def profile(rho):
        R = _ar1_corr(t, rho)
        L = np.linalg.cholesky(R)
        Xs = np.linalg.solve(L, X)
        ys = np.linalg.solve(L, y)
        XtX = Xs.T @ Xs
        beta = np.linalg.solve(XtX, Xs.T @ ys)
        rss = float(np.sum((ys - Xs @ beta) ** 2))
        logdet_r = 2 * float(np.sum(np.log(np.diag(L))))
        if reml:
            s2 = rss / (n - p)
            ll = -0.5 * ((n - p) * math.log(2 * math.pi * s2) + logdet_r
                         + float(np.linalg.slogdet(XtX)[1]) + (n - p))
        else:
            s2 = rss / n
            ll = -0.5 * (n * math.log(2 * math.pi * s2) + logdet_r + n)
        return ll, beta, XtX, rss

    res = optimize.minimize_scalar(lambda r: -profile(r)[0], bounds=(-0.999, 0.999),
                                   method="bounded", options={"xatol": 1e-10})
    rho = float(res.x)
    ll, beta, XtX, rss = profile(rho)
    s2 = rss / ((n - p) if reml else n)  # nlme's sigma^2: RSS / (n - p) for REML, RSS / n for ML
    cov = s2 * np.linalg.inv(XtX)
    return beta, cov, rho, ll


def _fit(y, X, t, errors, maxlags, series=None):
    """Return (params, cov, df_resid, rho, maxlags)."""
    n, p = X.shape
    if errors == "ar1":
        beta, cov, rho, _ = _fit_ar1(y, X.to_numpy(float), t)
        return beta, cov, n - p, rho, None
    ols = sm.OLS(y, X.to_numpy(float))
    if errors == "ols":
        r = ols.fit()
        return r.params, r.cov_params(), r.df_resid, None, None
    n_series = n if series is None else int(np.max(np.bincount(series)))
    L = default_maxlags(n_series) if maxlags is None else int(maxlags)
    if L >= n_series:
        # lags beyond the series carry no autocovariance but push the Bartlett weights of the observed
        # lags towards 1, which shrinks (and can zero) the HAC variance: refuse them
        raise ScaleupDataError(
            f"interrupted_time_series: maxlags={L} is not below the number of periods in the series "
            f"({n_series}); the Newey-West lag must be at most {n_series - 1}, and is usually much smaller "
            f"(default here floor(4 (n / 100)^(2/9)) = {default_maxlags(n_series)}). Lower 'maxlags' or leave "
            "it at None."
        )
    if series is None:
        r = ols.fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": False})
    else:
        r = ols.fit(cov_type="hac-panel",
                    cov_kwds={"groups": series, "maxlags": L, "use_correction": False})
    return r.params, r.cov_params(), n - p, None, L


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ITSResult(Displayed):
    """Result of :func:`interrupted_time_series`.

    Attributes
    ----------
    level_change, slope_change : float
        Immediate level change at the intervention and change in slope per period (pooled
        random-effects estimates for a multi-unit analysis).
    level_change_se, slope_change_se : float
    coef : pandas.DataFrame
        Coefficient table (term, estimate, se, ci_low, ci_high, pvalue); for several units,
        the pooled level and slope changes with ``tau2`` and ``I2``.
    effects : pandas.DataFrame
        Effect at each horizon h = t - T0: ``estimate`` = level_change + slope_change * h (with
        ``se``, ``ci_low``, ``ci_high``), ``counterfactual``, ``predicted`` and ``relative_effect`` =
        estimate / counterfactual (``relative_effect_se`` and delta-method CI
        ``relative_effect_ci_low``, ``relative_effect_ci_high``).
    fitted : pandas.DataFrame
        ``time``, ``y`` (observed outcome), ``fitted`` and ``counterfactual`` (effect terms set to
        0); ``control`` (1 = control series) with a control series, ``unit`` for several units.
    units : pandas.DataFrame or None
        Per-unit level and slope changes (multi-unit analysis: ``unit``, ``level_change``,
        ``level_change_se``, ``slope_change``, ``slope_change_se``, ``n_obs``,
        ``intervention_time``).
    unit_results : dict
        Per-unit :class:`ITSResult` (multi-unit analysis).
    """

    level_change: float
    slope_change: float
    level_change_se: float
    slope_change_se: float
    coef: pd.DataFrame = field(repr=False)
    effects: pd.DataFrame = field(repr=False)
    fitted: pd.DataFrame = field(repr=False)
    cov: pd.DataFrame | None = field(repr=False)
    errors: str
    maxlags: int | None
    rho: float | None
    n_obs: int
    df_resid: float | None
    level: float
    intervention_time: float | None
    outcome: str = field(repr=False, default="y")
    units: pd.DataFrame | None = field(repr=False, default=None)
    unit_results: dict = field(repr=False, default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Coefficient table (tidy)."""
        return self.coef.copy()

    def _repr_fields(self) -> dict:
        out = {"level_change": self.level_change, "level_change_se": self.level_change_se,
               "slope_change": self.slope_change, "slope_change_se": self.slope_change_se,
               "n_obs": self.n_obs, "errors": self.errors}
        if self.unit_results:
            out["n_units"] = len(self.unit_results)
        else:
            out["intervention_time"] = self.intervention_time
        return out

    def _summary(self, tx) -> str:
        """Level and slope changes with their intervals and p-values."""
        ci = self.coef.set_index("term")
        errors = _ERROR_WORDS.get(self.errors, self.errors)
        details = [tx(errors)]
        if self.maxlags is not None:
            details.append(tx("maximum lag {k}", k=tx.int(self.maxlags)))
        if self.rho is not None:
            details.append(tx("autocorrelation {rho}", rho=tx.num(self.rho, 3)))
        details.append(f"n = {tx.int(self.n_obs)}")
        if self.unit_results:
            details.append(tx.n("{n} unit (random-effects pooled)", "{n} units (random-effects pooled)",
                                len(self.unit_results)))
        lines = [tx("Interrupted time series: {outcome}", outcome=self.outcome) + " (" + "; ".join(details) + ")"]
        if self.intervention_time is not None:
            lines.append("  " + tx("Intervention from period {t}", t=tx.num(self.intervention_time, 0)))
        names = {"level_change": tx("level change"), "slope_change": tx("slope change (per period)")}
        rows = []
        for term in ("level_change", "slope_change"):
            r = ci.loc[term]
            rows.append([names[term], tx.num(r["estimate"], 4), tx.num(r["se"], 4), tx.num(r["ci_low"], 4),
                         tx.num(r["ci_high"], 4), tx.pvalue(r["pvalue"])])
        lines += text_table(["", tx("estimate"), tx("SE"), tx("lower bound"), tx("upper bound"), "p"], rows, left=()).split("\n")
        lines.append("  " + tx("Bounds of {level} confidence intervals.", level=tx.pct(self.level)))
        return "\n".join(lines)

    @styled
    def plot_counterfactual(self, *, unit=None, ax=None):
        """Observed series, fitted segments and the counterfactual (dashed) after the intervention.

        Parameters
        ----------
        unit : optional
            Unit to draw for a multi-unit analysis (default: the first unit).
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        tx = Text()
        outcome = str(self.outcome).replace("$", r"\$")
        if self.unit_results:
            key = unit if unit is not None else next(iter(self.unit_results))
            if key not in self.unit_results:
                raise ScaleupDataError(f"plot_counterfactual: unit {key!r} is not in the analysis.")
            ax = self.unit_results[key].plot_counterfactual(ax=ax)
            ax.set_title(tx("Interrupted time series: {outcome}, unit {unit}", outcome=outcome,
                            unit=str(key).replace("$", r"\$")))
            return ax
        ax = new_axes(ax, (8.0, 3.8))
        f = self.fitted
        treated = f[f["control"] == 0] if "control" in f else f
        t0 = self.intervention_time
        pre = treated[treated["time"] < t0]
        post = treated[treated["time"] >= t0]
        if "control" in f:
            ctrl = f[f["control"] == 1]
            ax.plot(ctrl["time"], ctrl["y"], ls="none", marker="^", color=NEUTRAL, mfc="white",
                    label=tx("Control series (observed)"))
            ax.plot(ctrl["time"], ctrl["fitted"], color=NEUTRAL, lw=1.2, label=tx("Control series (fitted)"))
        ax.plot(treated["time"], treated["y"], ls="none", marker="o", color=PALETTE[0], alpha=0.8,
                label=tx("Observed"))
        ax.plot(pre["time"], pre["fitted"], color=PALETTE[0], lw=1.8, label=tx("Fitted segments"))
        ax.plot(post["time"], post["fitted"], color=PALETTE[0], lw=1.8)
        cf = pd.concat([pre.tail(1), post])
        ax.plot(cf["time"], cf["counterfactual"], color=PALETTE[3], ls="--", lw=1.6,
                label=tx("Counterfactual (no intervention)"))
        line = (pre["time"].max() + t0) / 2 if len(pre) else t0
        ax.axvline(line, color="black", ls=":", lw=1.0,
                   label=tx("Intervention (from period {t})", t=tx.num(t0, 0)))
        ax.set_xlabel(tx("period"))
        ax.set_ylabel(outcome)
        ax.set_title(tx("Interrupted time series: {outcome}", outcome=outcome))
        ax.legend(**OUTSIDE)
        ticks_inside(ax)
        return ax


def _coef_table(names, params, cov, df, level):
    se = np.sqrt(np.diag(cov))
    q = stats.t.ppf(0.5 + level / 2, df)
    tval = params / se
    return pd.DataFrame({
        "term": names, "estimate": params, "se": se,
        "ci_low": params - q * se, "ci_high": params + q * se,
        "pvalue": 2 * stats.t.sf(np.abs(tval), df),
    })


def _single(y, t, t0, treated, errors, maxlags, seasonality, harmonics, level, outcome, horizons):
    if treated is not None:
        order = np.lexsort((t, treated))
        y, t, treated = y[order], t[order], treated[order]
    X = _design(t, t0, treated, seasonality, harmonics)
    n, p = X.shape
    if n <= p:
        raise ScaleupDataError(
            f"interrupted_time_series: {n} observation(s) for {p} coefficients; need more periods."
        )
    pre = t < t0
    if pre.sum() < 2 or (~pre).sum() < 2:
        raise ScaleupDataError(
            f"interrupted_time_series: need at least 2 periods before and 2 from intervention_time "
            f"= {t0} (found {int(pre.sum())} before and {int((~pre).sum())} after)."
        )
    if np.ptp(y) == 0:
        raise ScaleupDataError(
            f"interrupted_time_series: the outcome {outcome!r} is constant ({first_values(y[:1])} in all {n} "
            "periods of the series); there is no level or slope change to estimate and no residual variance. "
            "Check the outcome column."
        )
    series = None if treated is None else treated.astype(int)
    params, cov, df, rho, L = _fit(y, X, t, errors, maxlags, series)
    params, cov = np.asarray(params, float), np.asarray(cov, float)
    coef = _coef_table(list(X.columns), params, cov, df, level)
    # counterfactual: effect terms set to zero
    Xcf = X.copy()
    Xcf[["level_change", "slope_change"]] = 0.0
    fitted = pd.DataFrame({"time": t, "y": y, "fitted": X.to_numpy() @ params,
                           "counterfactual": Xcf.to_numpy() @ params})
    if treated is not None:
        fitted.insert(1, "control", 1 - treated.astype(int))
    # effects at horizons (treated series)
    if horizons is None:
        hs = np.unique(t[t >= t0]) - t0
    else:
        hs = np.asarray(horizons, float)
    th = t0 + hs
    Xh_df = _design(th, t0, None if treated is None else np.ones_like(th), seasonality, harmonics)
    Xh = Xh_df.to_numpy(float, copy=True)
    Xh_df[["level_change", "slope_change"]] = 0.0
    Xh_cf = Xh_df.to_numpy(float)
    A = Xh - Xh_cf
    eff = A @ params
    cf = Xh_cf @ params
    eff_se = np.sqrt(np.einsum("ij,jk,ik->i", A, cov, A))
    G = A / cf[:, None] - (eff / cf**2)[:, None] * Xh_cf  # gradient of effect / counterfactual
    rel_se = np.sqrt(np.einsum("ij,jk,ik->i", G, cov, G))
    q = stats.t.ppf(0.5 + level / 2, df)
    effects = pd.DataFrame({
        "horizon": hs, "time": th, "estimate": eff, "se": eff_se,
        "ci_low": eff - q * eff_se, "ci_high": eff + q * eff_se,
        "counterfactual": cf, "predicted": cf + eff,
        "relative_effect": eff / cf, "relative_effect_se": rel_se,
        "relative_effect_ci_low": eff / cf - q * rel_se, "relative_effect_ci_high": eff / cf + q * rel_se,
    })
    idx = {name: i for i, name in enumerate(X.columns)}
    il, is_ = idx["level_change"], idx["slope_change"]
    return ITSResult(
        level_change=float(params[il]), slope_change=float(params[is_]),
        level_change_se=float(math.sqrt(cov[il, il])), slope_change_se=float(math.sqrt(cov[is_, is_])),
        coef=coef, effects=effects, fitted=fitted,
        cov=pd.DataFrame(cov, index=X.columns, columns=X.columns),
        errors=errors, maxlags=L, rho=rho, n_obs=n, df_resid=float(df), level=level,
        intervention_time=float(t0), outcome=outcome,
    )


def _check_its_options(data, time, outcome, intervention_time, control, unit, errors, seasonality, level,
                       maxlags=None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError("interrupted_time_series: argument 'data' must be a pandas DataFrame.")
    if errors not in _ERRORS:
        raise ScaleupDataError(
            f"interrupted_time_series: errors={errors!r}; use one of {', '.join(_ERRORS)}."
        )
    check_level(level, "interrupted_time_series")
    t0_col = intervention_time if isinstance(intervention_time, str) else None
    for arg, col in {"time": time, "outcome": outcome, "control": control, "unit": unit,
                     "intervention_time": t0_col}.items():
        if col is not None and col not in data.columns:
            raise ScaleupDataError(
                f"interrupted_time_series: column {col!r} (argument '{arg}') is not in data; "
                f"available columns: {list(data.columns)[:10]}."
            )
    if control is not None and errors == "ar1":
        raise ScaleupDataError(
            "interrupted_time_series: errors='ar1' is not available with a control series; "
            "use errors='newey-west' (HAC per series)."
        )
    if seasonality is not None and (not isinstance(seasonality, (int, np.integer)) or seasonality < 2):
        raise ScaleupDataError("interrupted_time_series: 'seasonality' must be an integer >= 2.")
    if maxlags is not None and (isinstance(maxlags, (bool, np.bool_)) or not isinstance(maxlags, (int, np.integer))
                                or maxlags < 0):
        raise ScaleupDataError(
            f"interrupted_time_series: 'maxlags' must be an integer >= 0 (the Newey-West truncation lag) or "
            f"None for the default floor(4 (n / 100)^(2/9)); got {first_values([maxlags], 1)}."
        )


def _check_series(d, time, control, unit) -> None:
    """A 0/1 control column, and one row per series and period."""
    if control is not None:
        vals = set(pd.unique(d[control].dropna()))
        if not vals <= {0, 1, True, False} or d[control].isna().any():
            raise ScaleupDataError(
                f"interrupted_time_series: column {control!r} (argument 'control') must be 0/1 "
                f"(1 = control series); found values {sorted(map(str, vals))[:5]}."
            )
    keys = [unit] if unit is not None else []
    if control is not None:
        keys.append(control)
    dup = d.duplicated(keys + [time], keep=False).to_numpy()
    if dup.any():
        raise ScaleupDataError(
            f"interrupted_time_series: {int(dup.sum())} rows share a period within a series "
            f"(first: {list(d.index[dup][:5])}); aggregate to one row per series and '{time}'."
        )


def _intervention_time(g, intervention_time) -> float:
    """T0 of one unit: the value given, or the unit's single value of the column named."""
    if not isinstance(intervention_time, str):
        return float(intervention_time)
    t0s = pd.unique(g[intervention_time].dropna())
    if len(t0s) != 1:
        raise ScaleupDataError(
            f"interrupted_time_series: column {intervention_time!r} must hold one value per unit; "
            f"found {len(t0s)}."
        )
    return float(t0s[0])


def _pooled(fits: dict, level: float, errors: str, outcome: str) -> ITSResult:
    """Random-effects (DerSimonian-Laird) pooling of the units' level and slope changes with
    :func:`scaleup_analysis.meta_analysis`."""
    from ..heterogeneity.meta import meta_analysis

    units = pd.DataFrame([
        {"unit": k, "level_change": r.level_change, "level_change_se": r.level_change_se,
         "slope_change": r.slope_change, "slope_change_se": r.slope_change_se, "n_obs": r.n_obs,
         "intervention_time": r.intervention_time}
        for k, r in fits.items()
    ])
    rows = []
    pooled = {}
    for term in ("level_change", "slope_change"):
        ma = meta_analysis(pd.DataFrame({"yi": units[term], "vi": units[term + "_se"] ** 2}), method="DL",
                           level=level)
        pooled[term] = (ma.estimate, ma.se)
        rows.append({"term": term, "estimate": ma.estimate, "se": ma.se, "ci_low": ma.ci_low, "ci_high": ma.ci_high,
                     "pvalue": ma.pvalue, "tau2": ma.tau2, "I2": ma.I2, "Q": ma.Q, "k": ma.k})
    fitted = pd.concat([r.fitted.assign(unit=k) for k, r in fits.items()], ignore_index=True)
    effects = pd.concat([r.effects.assign(unit=k) for k, r in fits.items()], ignore_index=True)
    first = next(iter(fits.values()))
    return ITSResult(
        level_change=pooled["level_change"][0], slope_change=pooled["slope_change"][0],
        level_change_se=pooled["level_change"][1], slope_change_se=pooled["slope_change"][1],
        coef=pd.DataFrame(rows), effects=effects, fitted=fitted, cov=None, errors=errors,
        maxlags=first.maxlags, rho=None, n_obs=int(sum(r.n_obs for r in fits.values())),
        df_resid=None, level=level, intervention_time=None, outcome=outcome, units=units,
        unit_results=fits,
    )


@checked_inputs
def interrupted_time_series(
    data: pd.DataFrame,
    time: str,
    outcome: str,
    intervention_time,
    *,
    control: str | None = None,
    unit: str | None = None,
    errors: str = "newey-west",
    maxlags: int | None = None,
    seasonality: int | None = None,
    harmonics: int = 1,
    horizons=None,
    level: float = 0.95,
) -> ITSResult:
    """Segmented regression of an interrupted time series (single, controlled or multi-unit).

    Parameters
    ----------
    data : pandas.DataFrame
        Long format: one row per series and period.
    time : str
        Period column (numeric, e.g. 1..T).
    outcome : str
        Outcome column (e.g. a rate per period).
    intervention_time : float or str
        First period under the intervention (T0), or the name of a column giving it per unit
        (constant within a unit; e.g. ``adoption_period`` for staggered adoption).
    control : str, optional
        0/1 column flagging rows of a control series (1 = control): controlled ITS, the level
        and slope changes are treated-minus-control differences.
    unit : str, optional
        Unit column (e.g. ``"site_id"``): one model per unit, then random-effects
        (DerSimonian-Laird) pooling of the units' level and slope changes with
        :func:`scaleup_analysis.meta_analysis` (``method="DL"``, as ``metafor::rma(method = "DL")``).
    errors : {"newey-west", "ar1", "ols"}
        "newey-west": OLS with Newey-West (Bartlett kernel, no small-sample adjustment) HAC
        covariance (statsmodels; panel version per series with a control); "ar1": generalized
        least squares with AR(1) errors, rho estimated by restricted maximum likelihood (as
        ``nlme::gls(correlation = corAR1(form = ~time))``); "ols": classical OLS.
    maxlags : int, optional
        Newey-West truncation lag; default ``floor(4 (n / 100)^(2/9))`` (Newey & West 1994).
        Must be below the number of periods of a series (a longer lag shrinks the standard errors).
    seasonality : int, optional
        Season length in periods (4 = quarters, 12 = months): adds ``harmonics`` pairs of
        Fourier terms sin(2 pi k t / s), cos(2 pi k t / s) (Bernal et al. 2017).
    harmonics : int
        Number of Fourier pairs for ``seasonality``.
    horizons : sequence of float, optional
        Periods after T0 (0 = first post period) at which to report effects; default: every
        observed post-intervention period.
    level : float
        Confidence level.

    Returns
    -------
    ITSResult

    Notes
    -----
    y_t = b0 + b1 t + b2 P_t + b3 (t - T0) P_t + e_t with P_t = 1{t >= T0}. The effect at
    horizon h is b2 + b3 h, the counterfactual b0 + b1 (T0 + h) (plus seasonal terms), and the
    relative effect their ratio with a delta-method standard error. Confidence intervals use
    the t distribution with n - p degrees of freedom (as ``lmtest::coeftest``). With a control
    series (indicator Z = 1 - control): y = b0 + b1 t + b2 P + b3 (t-T0) P + b4 Z + b5 Z t +
    b6 Z P + b7 Z (t-T0) P; level_change = b6, slope_change = b7.

    References
    ----------
    Bernal JL, Cummins S, Gasparrini A (2017). Interrupted time series regression for the
    evaluation of public health interventions: a tutorial. Int J Epidemiol 46(1): 348-355.
    Newey WK, West KD (1994). Automatic lag selection in covariance matrix estimation.
    Rev Econ Stud 61(4): 631-653.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> t = np.arange(1, 25)
    >>> y = 10 + 0.2 * t - 3 * (t >= 13) + 0.5 * (t - 13) * (t >= 13) + np.tile([0.3, -0.3], 12)
    >>> res = sa.interrupted_time_series(pd.DataFrame({"t": t, "y": y}), "t", "y", 13)
    >>> round(res.level_change, 2), round(res.slope_change, 2)
    (-2.85, 0.5)
    """
    _check_its_options(data, time, outcome, intervention_time, control, unit, errors, seasonality, level, maxlags)
    d = data.copy()
    for col in (time, outcome):
        d[col] = pd.to_numeric(d[col], errors="coerce")
    miss = d[[time, outcome]].isna().any(axis=1).to_numpy()
    if miss.any():
        warnings.warn(
            f"interrupted_time_series: {int(miss.sum())} row(s) with missing or non-numeric "
            f"'{time}'/'{outcome}' left out (first: {list(data.index[miss][:5])}).",
            RowsOmittedWarning, stacklevel=2,
        )
        d = d.loc[~miss]
    for col, arg in ((time, "time"), (outcome, "outcome")):
        v = d[col].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (np.abs(v) > _MAX_ABS)
        if bad.any():
            raise ScaleupDataError(
                f"interrupted_time_series: table 'data', column {col!r} (argument {arg!r}): "
                f"{rows_text(d, bad, label='first:')} are infinite or beyond +/-{_MAX_ABS:g} (values "
                f"{first_values(v[bad])}); correct them, or rescale the column."
            )
        check_spread(v, f"interrupted_time_series: table 'data', column {col!r} (argument {arg!r})",
                     f"the {rows_text(d, label='first:')} used", consequence=", so the standard errors would be 0")
    _check_series(d, time, control, unit)

    def one(g):
        t0 = _intervention_time(g, intervention_time)
        tr = None if control is None else 1 - g[control].astype(int).to_numpy()
        return _single(g[outcome].to_numpy(float), g[time].to_numpy(float), t0, tr, errors,
                       maxlags, seasonality, harmonics, level, outcome, horizons)

    if unit is None:
        return one(d)
    fits = {k: one(g) for k, g in d.groupby(unit, sort=True)}
    if len(fits) < 2:
        raise ScaleupDataError(
            f"interrupted_time_series: column {unit!r} (argument 'unit') has one unit; drop "
            "'unit' for a single series."
        )
    return _pooled(fits, level, errors, outcome)
