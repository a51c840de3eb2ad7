"""Random- and fixed-effects meta-analysis and meta-regression (metafor's ``rma.uni``).

Two public functions, both taking a long-format :class:`pandas.DataFrame` with one row per study
(or site, region, ...), an effect size column ``yi`` and its sampling variance ``vi``:

* :func:`meta_analysis` -- the intercept-only model (pooled effect, tau^2 with its Q-profile CI,
  I^2, H^2, Q test, prediction interval, influence diagnostics, leave-one-out, forest/funnel plots);
* :func:`meta_regression` -- mixed-effects meta-regression on numeric and categorical moderators
  (coefficient table, residual heterogeneity, pseudo-R^2, omnibus test QM, predictions, permutation
  test, bubble plot).

Every number reproduces metafor 3.8 (``rma()``, ``confint()``, ``predict()``, ``influence()``,
``leave1out()``, ``blup()``, ``permutest()``) run to convergence: tau^2 and the bounds of its
Q-profile CI are the exact optimum and roots (metafor with ``control = list(threshold = 1e-12,
tol = 1e-12, maxiter = 10000)``), not the points where metafor's default stopping rule leaves them;
the tests compare against ``tests/reference/meta.json`` written by ``tests/reference/ref_meta.R``
at 1e-6 relative tolerance (tau^2 at 1e-8).
The estimation engine is :mod:`scaleup_analysis.engines.rma` (tau^2 estimators: :mod:`scaleup_analysis.engines.tau2`).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of Statistical
Software, 36(3), 1-48. https://doi.org/10.18637/jss.v036.i03
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import DrawClock, check_level, checked_inputs, first_values, numeric_column, rows_text
from .._display import Displayed, num_cell, p_cell, text_table
from .._formula import unaliased
from .._style import GREY, NEUTRAL, PALETTE, new_axes, numeric_ticks, styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError
from ..engines import FitError
from ..engines.rma import TESTS, Fit, fit_rma, qprofile_ci
from ..engines.tau2 import ESTIMATORS, METHODS
from ..i18n import N_
from ..narrative import Text
from ._scale import MAX_ABS, check_effect_scale, numeric_guard

__all__ = [
    "meta_analysis",
    "meta_regression",
    "MetaAnalysisResult",
    "MetaRegressionResult",
    "PermutationTestResult",
]


def _random(method: str) -> bool:
    """Random-effects model (False for the fixed-effects model, ``method="FE"``)."""
    return ESTIMATORS[method].random


# --------------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------------
def _check_options(method: str, test: str, level: float) -> None:
    if method not in METHODS:
        raise ScaleupDataError(
            f"argument 'method': unknown tau^2 estimator {method!r}; use one of {', '.join(METHODS)}."
        )
    if test not in TESTS:
        raise ScaleupDataError(
            f"argument 'test': must be 'z' (normal), 't' (t distribution with k - p df) or 'knha' "
            f"(Knapp-Hartung), not {test!r}."
        )
    check_level(level)


def _numeric_column(data: pd.DataFrame, col: str, arg: str) -> pd.Series:
    if col not in data.columns:
        raise ScaleupDataError(
            f"table 'data', argument {arg}={col!r}: no such column. Available columns: "
            f"{first_values(data.columns, 20)}. Pass the name of the column holding the {arg} values."
        )
    x = numeric_column(data, col, "table 'data'", arg=arg, missing=True, infinite=True)
    return pd.Series(x, index=data.index)


def _prepare(data, yi: str, vi: str, slab: str | None, fn: str = "meta_analysis") -> tuple:
    """Validate ``data``; return the boolean mask of usable rows and the omitted-row descriptions."""
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(
            f"argument 'data': expected a pandas DataFrame with one row per study, got {type(data).__name__}."
        )
    y = _numeric_column(data, yi, "yi")
    v = _numeric_column(data, vi, "vi")
    if slab is not None and slab not in data.columns:
        raise ScaleupDataError(f"table 'data', argument slab={slab!r}: no such column.")
    miss = y.isna() | v.isna()
    omitted = []
    if miss.any():
        rows = data.index[miss]
        omitted.append(f"{len(rows)} row(s) with missing {yi!r} or {vi!r} (rows {first_values(rows)})")
    keep = ~miss
    yv, vv = y[keep], v[keep]
    bad_y = yv.index[~np.isfinite(yv.to_numpy())]
    if len(bad_y):
        raise ScaleupDataError(
            f"table 'data', column {yi!r}: {len(bad_y)} row(s) with infinite effect sizes, first rows "
            f"{first_values(bad_y)}. Fix or drop these studies."
        )
    bad_v = vv.index[~(np.isfinite(vv.to_numpy()) & (vv.to_numpy() > 0))]
    if len(bad_v):
        raise ScaleupDataError(
            f"table 'data', column {vi!r}: {len(bad_v)} row(s) with a sampling variance that is not a "
            f"finite positive number, first rows {first_values(bad_v)} (values "
            f"{first_values(vv.loc[bad_v])}). Sampling variances must be > 0 (a variance is the squared "
            "standard error); fix these rows or drop them."
        )
    check_effect_scale(yv.index, yv.to_numpy(), vv.to_numpy(), yi, vi, fn)
    return keep, omitted


def _labels(data: pd.DataFrame, slab: str | None) -> pd.Index:
    # vectorised: labels are built for every row, so they must stay cheap at k = 10^6
    if slab is None:  # the rows' own index labels (a RangeIndex stays a RangeIndex: O(1))
        return data.index.rename("study")
    return pd.Index(data[slab].astype(str).to_numpy(), dtype=object, name=slab)


def _warn_omitted(omitted: list[str], what: str) -> None:
    if omitted:
        warnings.warn(
            f"{what}: rows omitted from the analysis: " + "; ".join(omitted) + ".",
            RowsOmittedWarning,
            stacklevel=3,
        )


def _fit_or_raise(yi, vi, X, method, test, level, int_incl=True, btt=None) -> Fit:
    try:
        fit = fit_rma(yi, vi, X, method, test, level, int_incl=int_incl, btt=btt)
    except FitError as exc:
        raise ScaleupDataError(f"the model could not be fitted: {exc}.") from None
    for msg in fit.warnings:
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return fit


def _try_fit(yi, vi, X, method, test, level, int_incl=True, btt=None) -> Fit | None:
    try:
        return fit_rma(yi, vi, X, method, test, level, int_incl=int_incl, btt=btt)
    except (FitError, np.linalg.LinAlgError, ZeroDivisionError, ValueError):
        return None


#: names of the tau^2 estimators in the summaries (messages of the catalogue)
_ESTIMATOR_LABELS = {
    "FE": N_("fixed-effects (inverse-variance)"), "DL": N_("DerSimonian-Laird"),
    "REML": N_("restricted maximum likelihood"), "ML": N_("maximum likelihood"), "PM": N_("Paule-Mandel"),
    "EB": N_("empirical Bayes"), "HE": N_("Hedges (variance components)"), "SJ": N_("Sidik-Jonkman"),
    "HS": N_("Hunter-Schmidt"), "HSk": N_("Hunter-Schmidt with k/(k - p) correction"),
    "PMM": N_("median-unbiased Paule-Mandel"),
}


def _t_based(test: str) -> bool:
    """Inference with the t and F distributions (k - p df): ``test="t"`` or ``"knha"``."""
    return test in ("t", "knha")


def _estimator_label(tx, method: str) -> str:
    label = _ESTIMATOR_LABELS.get(method)
    return tx(label) if label else ESTIMATORS[method].label


def _fit_stats(fit: Fit) -> dict:
    return fit.fit_stats[fit.estimator.fit_stats]


def _pi_bounds(fit: Fit, x_new: np.ndarray) -> tuple:
    pred = x_new @ fit.beta
    vpred = np.einsum("ij,jk,ik->i", x_new, fit.vb, x_new)
    se = np.sqrt(vpred)
    ci_lb, ci_ub = pred - fit.crit * se, pred + fit.crit * se
    if not fit.estimator.random:
        pi_lb = pi_ub = np.full(len(pred), np.nan)
    else:
        half = fit.crit * np.sqrt(vpred + fit.tau2)
        pi_lb, pi_ub = pred - half, pred + half
    return pred, se, ci_lb, ci_ub, pi_lb, pi_ub


def _influence_frame(fit: Fit, labels: pd.Index, term_names: Sequence[str]) -> pd.DataFrame:
    """Case-deletion diagnostics as metafor ``influence.rma.uni`` (``btt`` = all coefficients)."""
    k, p = fit.k, fit.p
    X, yi, vi = fit.X, fit.yi, fit.vi
    wi = 1.0 / (vi + fit.tau2)
    stxwx = np.linalg.inv(X.T @ (wi[:, None] * X))
    hat = np.einsum("ij,jk,ik->i", X, stxwx, X) * wi
    hat[hat > 1 - 10 * np.finfo(float).eps] = 1.0
    weight = 100 * wi / wi.sum()
    pred_full = X @ fit.beta
    svb = np.linalg.inv(fit.vb)
    det_full = np.linalg.det(fit.vb)
    out = {c: np.full(k, np.nan) for c in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del")}
    dfbs = np.full((k, p), np.nan)
    delpred = np.full(k, np.nan)
    vdelpred = np.full(k, np.nan)
    s2w_del = np.full(k, np.nan)
    failed = 0
    for i in range(k):
        keep = np.arange(k) != i
        res = _try_fit(yi[keep], vi[keep], X[keep], fit.method, fit.test, fit.level, fit.int_incl)
        if res is None:
            failed += 1
            continue
        xi = X[i]
        out["tau2_del"][i] = res.tau2
        out["QE_del"][i] = res.QE
        delpred[i] = xi @ res.beta
        vdelpred[i] = xi @ res.vb @ xi
        s2w_del[i] = res.s2w
        out["dffits"][i] = (pred_full[i] - delpred[i]) / math.sqrt(res.s2w * hat[i] * (res.tau2 + vi[i]))
        vb_del = np.linalg.inv(X.T @ ((1.0 / (vi + res.tau2))[:, None] * X))
        dfb = fit.beta - res.beta
        dfbs[i] = dfb / np.sqrt(res.s2w * np.diag(vb_del))
        out["cook_d"][i] = dfb @ svb @ dfb
        out["cov_r"][i] = np.linalg.det(res.vb) / det_full
    if failed:
        warnings.warn(
            f"influence(): {failed} of {k} leave-one-out refits failed; their diagnostics are NaN.",
            ConvergenceWarning,
            stacklevel=3,
        )
    resid = yi - delpred
    resid[np.abs(resid) < 100 * np.finfo(float).eps] = 0.0
    seresid = np.sqrt(vi * s2w_del + vdelpred + out["tau2_del"] * s2w_del)
    out["rstudent"] = resid / seresid
    frame = pd.DataFrame(out, index=labels)
    frame["hat"] = hat
    frame["weight"] = weight
    for j, name in enumerate(term_names):
        frame[f"dfbs_{name}"] = dfbs[:, j]
    with np.errstate(invalid="ignore"):
        infl = (
            (np.abs(frame["dffits"].to_numpy()) > 3 * math.sqrt(p / (k - p)))
            | (stats.chi2.cdf(frame["cook_d"].to_numpy(), p) > 0.5)
            | (hat > 3 * p / k)
            | (np.abs(dfbs) > 1).any(axis=1)
        )
    frame["inf"] = infl & ~np.isnan(frame["dffits"].to_numpy())
    return frame


# --------------------------------------------------------------------------------------------------
# meta_analysis
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class MetaAnalysisResult(Displayed):
    """Result of :func:`meta_analysis` (names follow metafor).

    Attributes
    ----------
    estimate, se, statistic, pvalue, ci_low, ci_high : float
        Pooled effect, its standard error, z (or t for ``test="t"`` and ``"knha"``) statistic, p-value
        and CI.
    tau2, tau2_se : float
        Between-study variance and its standard error (0 and NaN for ``method="FE"``).
    tau2_ci_low, tau2_ci_high, I2_ci_low, I2_ci_high, H2_ci_low, H2_ci_high : float
        Q-profile confidence interval of tau^2 and the implied intervals for I^2 and H^2.
    I2, H2 : float
        I^2 (percent) and H^2, based on the "typical" within-study variance (metafor's definition).
    Q, Q_df, Q_pvalue : float, int, float
        Cochran's Q test for heterogeneity.
    pi_low, pi_high : float
        Prediction interval for the true effect in a new study (NaN for ``method="FE"``).
    k, method, test, level : int, str, str, float
    loglik, deviance, AIC, BIC, AICc : float
        Fit statistics (restricted likelihood for REML, full likelihood otherwise), as metafor's
        ``fitstats()``.
    weights : pandas.Series
        Percent weight of each study in the pooled estimate.
    """

    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    tau2_se: float
    tau2_ci_low: float
    tau2_ci_high: float
    I2: float
    I2_ci_low: float
    I2_ci_high: float
    H2: float
    H2_ci_low: float
    H2_ci_high: float
    Q: float
    Q_df: int
    Q_pvalue: float
    pi_low: float
    pi_high: float
    k: int
    method: str
    test: str
    level: float
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    weights: pd.Series = field(repr=False)
    yi: pd.Series = field(repr=False)
    vi: pd.Series = field(repr=False)
    data: pd.DataFrame = field(repr=False)
    subgroup: str | None = field(default=None, repr=False)
    _fit: Fit = field(default=None, repr=False, compare=False)

    @property
    def tau(self) -> float:
        """Square root of tau^2."""
        return math.sqrt(self.tau2)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy DataFrame with every scalar result."""
        names = [
            "estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
            "tau2_se", "tau2_ci_low", "tau2_ci_high", "I2", "I2_ci_low", "I2_ci_high", "H2", "H2_ci_low",
            "H2_ci_high", "Q", "Q_df", "Q_pvalue", "k", "method", "test", "level", "loglik", "deviance",
            "AIC", "BIC", "AICc",
        ]  # fmt: skip
        return pd.DataFrame([{n: getattr(self, n) for n in names}])

    def _repr_fields(self) -> dict:
        return {"k": self.k, "method": self.method, "estimate": self.estimate, "ci": (self.ci_low, self.ci_high),
                "tau2": self.tau2, "I2": self.I2}

    def _summary(self, tx) -> str:
        """The result in the layout of metafor's ``print.rma.uni``, labels in the report language."""
        level = tx.pct(self.level)
        random = _random(self.method)
        ci = lambda lo, hi, d=4: tx("{level} CI [{low}, {high}]", level=level, low=tx.num(lo, d),  # noqa: E731
                                    high=tx.num(hi, d))
        head = (tx("Random-effects meta-analysis (k = {k}; estimator: {method}, {label})", k=self.k,
                   method=self.method, label=_estimator_label(tx, self.method)) if random else
                tx("Fixed-effects meta-analysis (k = {k})", k=self.k))
        lines = [head, ""]
        if random:
            lines += [
                tx("tau² (total heterogeneity): {v} (SE = {se}), {ci}", v=tx.num(self.tau2, 4),
                   se=num_cell(tx, self.tau2_se), ci=ci(self.tau2_ci_low, self.tau2_ci_high)),
                tx("tau (square root of tau²): {v}", v=tx.num(self.tau, 4)),
                tx("I² (heterogeneity / total variability): {v}, {ci}", v=tx.pct(self.I2 / 100, 2),
                   ci=ci(self.I2_ci_low, self.I2_ci_high, 2)),
                tx("H² (total variability / sampling variability): {v}, {ci}", v=tx.num(self.H2),
                   ci=ci(self.H2_ci_low, self.H2_ci_high, 2)),
            ]
        else:
            lines += [tx("I² (heterogeneity / total variability): {v}", v=tx.pct(self.I2 / 100, 2)),
                      tx("H² (total variability / sampling variability): {v}", v=tx.num(self.H2))]
        stat = "t" if _t_based(self.test) else "z"
        lines += [
            "",
            tx("Test for heterogeneity: Q(df = {df}) = {q}, {p}", df=self.Q_df, q=tx.num(self.Q, 4),
               p=tx.pvalue(self.Q_pvalue)),
            "",
            text_table(
                [tx("estimate"), tx("SE"), stat, "p", tx("{level} CI", level=level)],
                [[tx.num(self.estimate, 4), tx.num(self.se, 4), tx.num(self.statistic, 4), p_cell(tx, self.pvalue),
                  tx("[{low}, {high}]", low=tx.num(self.ci_low, 4), high=tx.num(self.ci_high, 4))]]),
        ]
        if random:
            lines.append(tx("  {level} prediction interval: [{low}, {high}]", level=level,
                            low=tx.num(self.pi_low, 4), high=tx.num(self.pi_high, 4)))
        if self.test == "knha":
            lines.append(tx("  (Knapp-Hartung adjustment, t distribution with {df} df)", df=self.k - 1))
        elif self.test == "t":
            lines.append(tx("  (t distribution with {df} df, standard errors not adjusted)", df=self.k - 1))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def influence(self) -> pd.DataFrame:
        """Case-deletion diagnostics, one row per study (metafor ``influence()``).

        Columns: ``rstudent`` (externally standardised residual), ``dffits``, ``cook_d`` (Cook's
        distance), ``cov_r`` (covariance ratio), ``tau2_del`` and ``QE_del`` (tau^2 and Q when the study
        is left out), ``hat``, ``weight`` (percent), ``dfbs_intrcpt`` (DFBETAS) and ``inf`` (True when
        metafor flags the study as influential).
        """
        return _influence_frame(self._fit, self.weights.index, ["intrcpt"])

    def leave_one_out(self) -> pd.DataFrame:
        """Results of the model refitted without each study in turn (metafor ``leave1out()``)."""
        f = self._fit
        rows = []
        for i in range(f.k):
            keep = np.arange(f.k) != i
            res = _try_fit(f.yi[keep], f.vi[keep], f.X[keep], f.method, f.test, f.level)
            if res is None:
                rows.append({})
                continue
            rows.append({
                "estimate": res.beta[0], "se": res.se[0], "statistic": res.zval[0], "pvalue": res.pval[0],
                "ci_low": res.ci_lb[0], "ci_high": res.ci_ub[0], "Q": res.QE, "Q_pvalue": res.QE_pvalue,
                "tau2": res.tau2, "I2": res.I2, "H2": res.H2,
            })  # fmt: skip
        cols = ["estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "Q", "Q_pvalue", "tau2", "I2", "H2"]
        return pd.DataFrame(rows, index=self.weights.index, columns=cols)

    def blup(self) -> pd.DataFrame:
        """Best linear unbiased predictions of the study-specific true effects (metafor ``blup()``).

        pred_i = l_i y_i + (1 - l_i) mu, l_i = tau^2 / (tau^2 + v_i); interval uses the model's
        critical value (normal, or t with k - 1 df for ``test="t"`` and ``"knha"``).
        """
        f = self._fit
        li = f.tau2 / (f.tau2 + f.vi)
        pred = li * f.yi + (1 - li) * f.beta[0]
        se = np.sqrt(li * f.vi + (1 - li) ** 2 * f.vb[0, 0])
        return pd.DataFrame(
            {"pred": pred, "se": se, "pi_low": pred - f.crit * se, "pi_high": pred + f.crit * se},
            index=self.weights.index,
        )

    @styled
    def plot_forest(self, *, subgroup: str | None = None, measure: str | None = None, xlabel: str | None = None,
                    title: str | None = None, ax=None):
        """Forest plot in the layout of metafor's ``forest()``.

        Study labels on the left; each study's estimate (square, area growing with its weight) and
        confidence interval in the middle; the columns "estimate [CI]" and "weight" on the right; the
        pooled effect as a diamond on its own row and, for random-effects models, the prediction
        interval as a dotted bar below it; a vertical line at no effect. The figure grows with the
        number of studies up to 14 inches high (rows shrink down to 7 pt text; beyond that the
        study labels are left out and a note says so).

        Parameters
        ----------
        subgroup : str, optional
            Column of the analysed data (e.g. ``"rss_code"``) whose values head groups of studies;
            defaults to the ``subgroup`` given to :func:`meta_analysis`. Region codes (``rss_code``)
            are shown with their names.
        measure : str, optional
            The effect-size measure of ``yi`` (as :func:`~scaleup_analysis.effect_sizes`):
            ``"OR"`` and ``"RR"`` (analysed as logarithms) are shown back-transformed on a log axis
            with the null line at 1; ``"SMD"``, ``"MD"``, ``"RD"`` name the axis.
        xlabel, title : str, optional
            Axis label and title (default: messages of the catalogue, in the report language).
        ax : matplotlib Axes, optional
            Axes to draw on; the text columns are drawn beside it and the legend below the figure,
            so give axes of a figure with constrained layout (``plt.subplots(layout="constrained")``)
            for them to fit. By default a new figure sized to the number of studies.

        Returns
        -------
        matplotlib Axes
            The axes of the estimates.
        """
        from ._forest import draw_forest

        tx = Text()
        subgroup = self.subgroup if subgroup is None else subgroup
        if subgroup is not None and subgroup not in self.data.columns:
            raise ScaleupDataError(f"plot_forest(): subgroup={subgroup!r} is not a column of the analysed data.")
        return draw_forest(self, subgroup=subgroup, xlabel=xlabel, title=title, measure=measure, ax=ax, tx=tx,
                           random=_random(self.method))

    @styled
    def plot_funnel(self, *, xlabel: str | None = None, title: str | None = None, ax=None):
        """Funnel plot: effect sizes against their standard errors (inverted axis), with the pseudo
        confidence region estimate +/- z * SE around the pooled estimate."""
        tx = Text()
        ax = new_axes(ax, (7.5, 4.8))
        f = self._fit
        sei = np.sqrt(f.vi)
        z = float(stats.norm.isf((1 - self.level) / 2))
        smax = sei.max() * 1.05
        level = tx.pct(self.level)
        xs = [self.estimate - z * smax, self.estimate, self.estimate + z * smax]
        ax.fill(xs, [smax, 0, smax], color=GREY, alpha=0.35, lw=0, zorder=0,
                label=tx("Pseudo-confidence region ({level})", level=level))
        ax.plot(xs, [smax, 0, smax], color=NEUTRAL, lw=0.8, linestyle="--")
        ax.axvline(self.estimate, color=PALETTE[3], lw=1.2, label=tx("Pooled effect ({method})", method=self.method))
        ax.scatter(f.yi, sei, color=PALETTE[0], s=20, zorder=3, label=tx("Study"))
        ax.set_ylim(smax, 0)
        numeric_ticks(ax.xaxis, tx)
        numeric_ticks(ax.yaxis, tx)
        ax.set_xlabel(xlabel if xlabel is not None else tx("Effect size"))
        ax.set_ylabel(tx("Standard error"))
        ax.set_title(title if title is not None else tx("Funnel plot ({method}, k = {k})", method=self.method,
                                                        k=tx.int(self.k)))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        return ax


@checked_inputs
def meta_analysis(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    slab: str | None = None,
    subgroup: str | None = None,
) -> MetaAnalysisResult:
    """Fixed- or random-effects meta-analysis of effect sizes (metafor's ``rma.uni``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study (site, region, ...).
    yi, vi : str
        Columns with the effect sizes and their sampling variances (> 0).
    method : {"REML", "FE", "DL", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk"}
        Estimator of the between-study variance tau^2 (FE: fixed-effects model, tau^2 = 0); metafor's
        codes (PMM: median-unbiased Paule-Mandel; HS: Hunter-Schmidt; HSk: Hunter-Schmidt with the
        k/(k - p) correction).
    test : {"z", "t", "knha"}
        Inference for the pooled effect: normal ("z"), t with k - 1 df ("t", the same standard
        error) or Knapp-Hartung ("knha", t with k - 1 df and the adjusted standard error). The
        prediction interval uses the same critical value.
    level : float
        Coverage of confidence and prediction intervals.
    slab : str, optional
        Column with study labels (default: the DataFrame index).
    subgroup : str, optional
        Column whose values head groups of studies in :meth:`MetaAnalysisResult.plot_forest`
        (its default there).

    Returns
    -------
    MetaAnalysisResult

    Raises
    ------
    ScaleupDataError
        Non-numeric columns, non-positive or infinite variances, fewer than 2 studies for a
        random-effects model, or an estimator that cannot be computed.

    Notes
    -----
    Model: y_i = mu + u_i + e_i, u_i ~ N(0, tau^2), e_i ~ N(0, v_i). With w_i = 1/(v_i + tau^2),
    mu_hat = sum w_i y_i / sum w_i, Var(mu_hat) = 1/sum w_i (times the Knapp-Hartung factor
    s^2 = sum w_i (y_i - mu_hat)^2 / (k - 1) for ``test="knha"``). The tau^2 estimators and their
    standard errors are those of metafor: DL (DerSimonian & Laird, 1986), HE (Hedges, 1983), SJ
    (Sidik & Jonkman, 2005, one step from var(y)(k-1)/k), HS ((Q - k)/sum w_i, Hunter & Schmidt,
    1990) and HSk ((k/(k-1) Q - k)/sum w_i, Brannick et al., 2019), with Q the fixed-effects Q and
    w_i = 1/v_i, PM (Paule & Mandel, 1982: Q(tau^2) = k - 1) and PMM (Q(tau^2) = the median of
    chi^2(k - 1), Viechtbauer, 2021), ML/REML/EB
    (Fisher scoring from the truncated HE estimate). The iterative ones are run to the optimum
    (change of tau^2 <= 1e-12; root tolerance 1e-12), where metafor's default stops at a change of
    1e-5 (tau^2 up to ~1e-3 away; metafor with ``control = list(threshold = 1e-12, tol = 1e-12)``
    gives our values).
    Q = sum (y_i - mu_FE)^2 / v_i; I^2 = 100 tau^2/(tau^2 + s^2) and H^2 = (tau^2 + s^2)/s^2 with the
    "typical" sampling variance s^2 = (k - 1) sum w_i / ((sum w_i)^2 - sum w_i^2), w_i = 1/v_i
    (Higgins & Thompson, 2002); for FE, I^2 = max(0, (Q - (k-1))/Q) and H^2 = Q/(k-1). The tau^2 CI is
    the Q-profile interval (Viechtbauer, 2007); the prediction interval is
    mu_hat +/- crit * sqrt(SE^2 + tau^2). Rows with missing ``yi``/``vi`` are omitted with a
    :class:`RowsOmittedWarning`.

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of
    Statistical Software, 36(3). https://doi.org/10.18637/jss.v036.i03

    Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
    Statistics in Medicine, 26(1), 37-52.

    Brannick, M. T., Potter, S. M., Benitez, B., & Morris, S. B. (2019). Bias and precision of
    alternate estimators in meta-analysis: Benefits of blending Schmidt-Hunter and Hedges approaches.
    Organizational Research Methods, 22(2), 490-514.

    Viechtbauer, W. (2021). Median-unbiased estimators for the amount of heterogeneity in
    meta-analysis. European Congress of Methodology, Valencia, Spain.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> data = pd.DataFrame({"yi": [0.10, 0.30, 0.35, 0.65, 0.45, 0.15],
    ...                    "vi": [0.03, 0.03, 0.05, 0.01, 0.05, 0.02]})
    >>> res = sa.meta_analysis(data, method="REML")
    >>> round(res.estimate, 4), round(res.tau2, 4), round(res.I2, 1)
    (0.3463, 0.0331, 56.5)
    >>> round(res.pi_low, 3), round(res.pi_high, 3)
    (-0.062, 0.755)
    """
    _check_options(method, test, level)
    keep, omitted = _prepare(data, yi, vi, slab)
    if subgroup is not None and subgroup not in data.columns:
        raise ScaleupDataError(
            f"table 'data', argument subgroup={subgroup!r}: no such column. Available columns: "
            f"{', '.join(map(repr, data.columns))}. Pass the column that groups the studies in the "
            "forest plot (e.g. 'rss_code'), or leave subgroup=None."
        )
    _warn_omitted(omitted, "meta_analysis()")
    used = data.loc[keep]
    k = len(used)
    random = _random(method)
    if k < 1 or (random and k < 2):
        raise ScaleupDataError(
            f"table 'data': {k} usable row(s); a {'random' if random else 'fixed'}-effects "
            f"meta-analysis needs at least {2 if random else 1} studies with non-missing "
            f"{yi!r} and {vi!r}."
        )
    labels = _labels(used, slab)
    y = used[yi].astype(float).to_numpy()
    v = used[vi].astype(float).to_numpy()
    with numeric_guard("meta_analysis", f"columns {yi!r} and {vi!r}"):
        fit = _fit_or_raise(y, v, np.ones((k, 1)), method, test, level)
        ci = qprofile_ci(fit) if (random and k > 1) else {}
        _, _, _, _, pi_lb, pi_ub = _pi_bounds(fit, np.ones((1, 1)))
    nan = math.nan
    fs = _fit_stats(fit)
    wi = 1.0 / (v + fit.tau2)
    return MetaAnalysisResult(
        estimate=float(fit.beta[0]), se=float(fit.se[0]), statistic=float(fit.zval[0]),
        pvalue=float(fit.pval[0]), ci_low=float(fit.ci_lb[0]), ci_high=float(fit.ci_ub[0]),
        tau2=fit.tau2, tau2_se=fit.se_tau2,
        tau2_ci_low=ci.get("tau2_ci_low", nan), tau2_ci_high=ci.get("tau2_ci_high", nan),
        I2=fit.I2, I2_ci_low=ci.get("I2_ci_low", nan), I2_ci_high=ci.get("I2_ci_high", nan),
        H2=fit.H2, H2_ci_low=ci.get("H2_ci_low", nan), H2_ci_high=ci.get("H2_ci_high", nan),
        Q=fit.QE, Q_df=k - 1, Q_pvalue=fit.QE_pvalue, pi_low=float(pi_lb[0]), pi_high=float(pi_ub[0]),
        k=k, method=method, test=test, level=level, loglik=fs["loglik"], deviance=fs["deviance"],
        AIC=fs["AIC"], BIC=fs["BIC"], AICc=fs["AICc"],
        weights=pd.Series(100 * wi / wi.sum(), index=labels, name="weight"),
        yi=pd.Series(y, index=labels, name="yi"), vi=pd.Series(v, index=labels, name="vi"),
        data=used, subgroup=subgroup, _fit=fit,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# meta_regression
# --------------------------------------------------------------------------------------------------
def _formula_from_mods(mods) -> tuple[str, dict, str]:
    """(patsy formula, aliases, formula shown): a list of column names is never evaluated as code.

    Each moderator column of a list gets a safe alias (``_sa_mod0``, ...) used in the formula that
    patsy evaluates, so a column name from a user's file (``x") + __import__("os")...``) stays a
    name; the coefficients are named back with the columns' own names. A formula string is the
    caller's own code (as in R) and is used as given.
    """
    if isinstance(mods, str):
        f = mods.strip()
        f = f if f.startswith("~") else "~ " + f
        return f, {}, f
    if isinstance(mods, (list, tuple)) and mods and all(isinstance(m, str) for m in mods):
        aliases = {m: f"_sa_mod{i}" for i, m in enumerate(dict.fromkeys(mods))}
        return "~ " + " + ".join(aliases.values()), aliases, "~ " + " + ".join(aliases)
    raise ScaleupDataError(
        "argument 'mods': give a list of moderator column names (e.g. ['ablat', 'alloc']) or a "
        "formula string (e.g. '~ ablat + C(alloc)')."
    )


def _aliased(data: pd.DataFrame, aliases: dict) -> pd.DataFrame:
    """The moderator columns of ``data`` under their safe aliases (the frame patsy reads)."""
    return data[list(aliases)].set_axis(list(aliases.values()), axis=1) if aliases else data


_unaliased = unaliased


def _design(data: pd.DataFrame, formula: str):
    """Model matrix via patsy; returns (X DataFrame with the intercept first as 'intrcpt', design_info,
    kept index, int_incl)."""
    import patsy

    try:
        X = patsy.dmatrix(formula, data, return_type="dataframe", NA_action="drop", eval_env=0)
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"argument 'mods': cannot build the moderator matrix from {formula!r} on table 'data': {exc}. "
            "Check the column names and that categorical moderators are strings or categoricals."
        ) from None
    info = X.design_info
    # patsy puts purely categorical terms first; R keeps the order of the formula: restore it
    desc = patsy.ModelDesc.from_formula(formula)
    cols = []
    for term in desc.rhs_termlist:
        sl = info.term_name_slices.get(term.name())
        if sl is not None:
            cols += info.column_names[sl]
    cols += [c for c in X.columns if c not in cols]
    is_int = [bool(np.all(np.abs(X[c].to_numpy() - 1) < 1e-8)) for c in cols]
    int_incl = any(is_int)
    if int_incl:
        j = is_int.index(True)
        cols = [cols[j]] + [c for i, c in enumerate(cols) if i != j and not is_int[i]]
    X = X[cols]
    if int_incl:
        X = X.rename(columns={cols[0]: "intrcpt"})
    return X, info, cols, int_incl


def _check_moderator_values(X: pd.DataFrame, Xa: np.ndarray) -> None:
    """Refuse infinite or astronomically large moderator values (the design columns ``X``)."""
    for what, bad in (("are infinite", ~np.isfinite(Xa)), (f"exceed +/-{MAX_ABS:g}", np.abs(Xa) > MAX_ABS)):
        with np.errstate(invalid="ignore"):
            rows = bad.any(axis=1)
        if rows.any():
            cols = [c for c, b in zip(X.columns, bad.any(axis=0)) if b]
            raise ScaleupDataError(
                f"meta_regression: table 'data', moderator(s) {first_values(cols)} (argument 'mods'): "
                f"{rows_text(X.index, rows, label='first:')} {what} (values "
                f"{first_values(Xa[rows][:, bad.any(axis=0)].ravel())}). Correct or drop these rows, or "
                "rescale the moderator (e.g. divide it by a power of 10)."
            )


def _resolve_btt(btt, terms: list[str], int_incl: bool) -> np.ndarray:
    """0-based indices of the coefficients tested by QM (metafor's ``btt``; see :func:`meta_regression`)."""
    p = len(terms)
    if btt is None:
        return np.arange(1, p) if (p > 1 and int_incl) else np.arange(p)
    shown = f"{first_values(terms, 20)}"
    if isinstance(btt, str):
        idx = [j for j, t in enumerate(terms) if t == btt] or [j for j, t in enumerate(terms) if btt in t]
        if not idx:
            raise ScaleupDataError(
                f"argument 'btt': no coefficient is named {btt!r} or has it in its name. Coefficients: {shown}."
            )
        return np.asarray(idx)
    if isinstance(btt, (int, np.integer)) and not isinstance(btt, (bool, np.bool_)):
        btt = [btt]
    items = list(btt) if isinstance(btt, (list, tuple, np.ndarray, pd.Index)) else None
    if not items:
        raise ScaleupDataError(
            f"argument 'btt': give term names (a string or a list of strings, e.g. {terms[-1]!r}) or "
            f"positions counted from 1 as in R; got {btt!r}. Coefficients: {shown}."
        )
    if all(isinstance(b, str) for b in items):
        unknown = [b for b in items if b not in terms]
        if unknown:
            raise ScaleupDataError(
                f"argument 'btt': no coefficient(s) named {first_values(unknown)}. Coefficients: {shown}."
            )
        return np.asarray(sorted({terms.index(b) for b in items}))
    if all(isinstance(b, (int, np.integer)) and not isinstance(b, (bool, np.bool_)) for b in items):
        bad = [int(b) for b in items if not 1 <= b <= p]
        if bad:
            raise ScaleupDataError(
                f"argument 'btt': positions {first_values(bad)} are outside 1..{p} (positions count from 1, "
                f"as in R; the intercept is 1). Coefficients: {shown}."
            )
        return np.asarray(sorted({int(b) - 1 for b in items}))
    raise ScaleupDataError(
        f"argument 'btt': give either term names or integer positions (from 1), not a mix: {btt!r}."
    )


@dataclass(frozen=True, eq=False, repr=False)
class PermutationTestResult(Displayed):
    """Result of :meth:`MetaRegressionResult.permutation_test` (metafor ``permutest``).

    Attributes
    ----------
    pvalue : pandas.Series
        Permutation p-value of each coefficient (two-sided, based on ``|z|`` or ``|t|``).
    QM_pvalue : float
        Permutation p-value of the omnibus test of the moderators.
    n_perm : int
        Number of permutations evaluated (all distinct ones when ``exact``).
    exact : bool
    statistic : pandas.Series
        Observed test statistics; ``QM`` the observed omnibus statistic.
    """

    pvalue: pd.Series
    QM_pvalue: float
    n_perm: int
    exact: bool
    statistic: pd.Series
    QM: float
    statistic_perm: pd.DataFrame = field(repr=False)
    QM_perm: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per coefficient plus the omnibus test."""
        out = pd.DataFrame({"statistic": self.statistic, "pvalue_perm": self.pvalue})
        out.loc["QM (omnibus)"] = [self.QM, self.QM_pvalue]
        out.index.name = "term"
        return out

    def _repr_fields(self) -> dict:
        return {"n_perm": self.n_perm, "exact": self.exact, "QM": self.QM, "QM_pvalue": self.QM_pvalue,
                "terms": list(self.pvalue.index)}

    def _summary(self, tx) -> str:
        kind = tx("exact") if self.exact else tx("approximate (random)")
        rows = [[str(t), tx.num(self.statistic[t], 4), p_cell(tx, self.pvalue[t])] for t in self.pvalue.index]
        rows.append([tx("QM (omnibus)"), tx.num(self.QM, 4), p_cell(tx, self.QM_pvalue)])
        return (tx.n("Permutation test ({kind}, {n} permutation)", "Permutation test ({kind}, {n} permutations)",
                     self.n_perm, kind=kind) + "\n"
                + text_table([tx("term"), tx("statistic"), tx("permutation p")], rows))


def _multiset_permutations(codes: np.ndarray):
    """All distinct orderings of ``codes`` (lexicographic next-permutation)."""
    a = sorted(int(c) for c in codes)
    n = len(a)
    while True:
        yield np.array(a)
        i = n - 2
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1 :] = a[i + 1 :][::-1]


@dataclass(frozen=True, eq=False, repr=False)
class MetaRegressionResult(Displayed):
    """Result of :func:`meta_regression` (names follow metafor).

    Attributes
    ----------
    coef : pandas.DataFrame
        Index ``term`` (``intrcpt`` first); columns estimate, se, statistic, pvalue, ci_low, ci_high.
    vcov : pandas.DataFrame
        Covariance matrix of the coefficients.
    tau2, tau2_se : float
        Residual between-study variance and its standard error.
    tau2_ci_low, tau2_ci_high : float
        Q-profile CI of the residual tau^2 (NaN for FE).
    I2, H2 : float
        Residual heterogeneity (percent) and H^2.
    R2 : float
        Pseudo-R^2 (percent): proportional reduction of tau^2 relative to the intercept-only model
        fitted with the same method, truncated at 0 (NaN without an intercept).
    QM, QM_df, QM_pvalue : float, tuple, float
        Omnibus test of the coefficients ``btt`` (chi-square with m df, or F with (m, k - p) df for
        ``test="t"`` and ``"knha"``).
    btt : tuple of str
        The terms tested by QM (default: every coefficient but the intercept).
    QE, QE_df, QE_pvalue : float, int, float
        Test for residual heterogeneity.
    k, p : int
        Studies used and number of coefficients.
    """

    coef: pd.DataFrame
    vcov: pd.DataFrame
    tau2: float
    tau2_se: float
    tau2_ci_low: float
    tau2_ci_high: float
    I2: float
    H2: float
    R2: float
    QM: float
    QM_df: tuple
    QM_pvalue: float
    QE: float
    QE_df: int
    QE_pvalue: float
    k: int
    p: int
    method: str
    test: str
    level: float
    formula: str
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    data: pd.DataFrame = field(repr=False)
    btt: tuple = ()
    _fit: Fit = field(default=None, repr=False, compare=False)
    _design_info: object = field(default=None, repr=False, compare=False)
    _columns: tuple = field(default=(), repr=False, compare=False)
    _aliases: dict = field(default_factory=dict, repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (tidy: one row per term)."""
        return self.coef.reset_index()

    def _repr_fields(self) -> dict:
        return {"k": self.k, "p": self.p, "method": self.method, "formula": self.formula, "tau2": self.tau2,
                "I2": self.I2, "R2": self.R2, "QM": self.QM, "QM_pvalue": self.QM_pvalue}

    def _summary(self, tx) -> str:
        """The result in the layout of metafor's ``print.rma.uni``, labels in the report language."""
        level = tx.pct(self.level)
        random = _random(self.method)
        head = (tx("Mixed-effects meta-regression (k = {k}, p = {p}; estimator: {method})", k=self.k, p=self.p,
                   method=self.method) if random else
                tx("Fixed-effects meta-regression (k = {k}, p = {p})", k=self.k, p=self.p))
        lines = [head, tx("Moderators: {formula}", formula=self.formula), ""]
        if random:
            lines += [
                tx("tau² (residual heterogeneity): {v} (SE = {se}), {level} CI [{low}, {high}]",
                   v=tx.num(self.tau2, 4), se=num_cell(tx, self.tau2_se), level=level,
                   low=num_cell(tx, self.tau2_ci_low), high=num_cell(tx, self.tau2_ci_high)),
                tx("I² (residual heterogeneity / unaccounted variability): {v}", v=tx.pct(self.I2 / 100, 2)),
                tx("H² (unaccounted variability / sampling variability): {v}", v=tx.num(self.H2)),
            ]
        if np.isfinite(self.R2):
            lines.append(tx("R² (amount of heterogeneity accounted for): {v}", v=tx.pct(self.R2 / 100, 2)))
        if _t_based(self.test):
            dist = tx("F(df1 = {df1}, df2 = {df2})", df1=self.QM_df[0], df2=self.QM_df[1])
        else:
            dist = tx("QM(df = {df})", df=self.QM_df[0])
        stat = "t" if _t_based(self.test) else "z"
        default_btt = [str(t) for t in self.coef.index if not (t == "intrcpt" and len(self.coef) > 1)]
        if self.btt and list(self.btt) != default_btt:
            qm_line = tx("Test of moderators ({terms}): {dist} = {q}, {p}", terms=", ".join(self.btt), dist=dist,
                         q=tx.num(self.QM, 4), p=tx.pvalue(self.QM_pvalue))
        else:
            qm_line = tx("Test of moderators: {dist} = {q}, {p}", dist=dist, q=tx.num(self.QM, 4),
                         p=tx.pvalue(self.QM_pvalue))
        rows = [[str(term), tx.num(r["estimate"], 4), tx.num(r["se"], 4), tx.num(r["statistic"], 4),
                 p_cell(tx, r["pvalue"]), tx("[{low}, {high}]", low=tx.num(r["ci_low"], 4), high=tx.num(r["ci_high"], 4))]
                for term, r in self.coef.iterrows()]
        lines += [
            "",
            tx("Test for residual heterogeneity: QE(df = {df}) = {q}, {p}", df=self.QE_df, q=tx.num(self.QE, 4),
               p=tx.pvalue(self.QE_pvalue)),
            qm_line,
            "",
            text_table([tx("term"), tx("estimate"), tx("SE"), stat, "p", tx("{level} CI", level=level)], rows),
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def influence(self) -> pd.DataFrame:
        """Case-deletion diagnostics, one row per study (metafor ``influence()``).

        Same columns as :meth:`MetaAnalysisResult.influence`, with one ``dfbs_<term>`` (DFBETAS)
        column per coefficient; Cook's distance and the covariance ratio use all coefficients.
        """
        return _influence_frame(self._fit, self.data.index, list(self.coef.index))

    def _x_new(self, newdata: pd.DataFrame) -> np.ndarray:
        import patsy

        if not isinstance(newdata, pd.DataFrame):
            raise ScaleupDataError("predict(): 'newdata' must be a pandas DataFrame with the moderator columns.")
        try:
            missing = [c for c in self._aliases if c not in newdata.columns]
            if missing:
                raise patsy.PatsyError(f"no column(s) {', '.join(map(repr, missing))}")
            (xn,) = patsy.build_design_matrices([self._design_info], _aliased(newdata, self._aliases),
                                                return_type="dataframe", NA_action="raise")
        except patsy.PatsyError as exc:
            raise ScaleupDataError(
                f"predict(): cannot build moderators for 'newdata': {exc}. It needs the moderator columns "
                "of the fitted model, without missing values, and only levels seen in the fit."
            ) from None
        return xn[list(self._columns)].to_numpy(dtype=float)

    def predict(self, newdata: pd.DataFrame) -> pd.DataFrame:
        """Predicted average effects for new moderator values, with CI and prediction interval.

        As metafor ``predict(res, newmods=...)``: pred = x' b, se = sqrt(x' V x), CI pred +/- crit*se,
        PI pred +/- crit*sqrt(se^2 + tau^2) (NaN for FE).
        """
        xn = self._x_new(newdata)
        pred, se, cl, cu, pl, pu = _pi_bounds(self._fit, xn)
        return pd.DataFrame(
            {"pred": pred, "se": se, "ci_low": cl, "ci_high": cu, "pi_low": pl, "pi_high": pu},
            index=newdata.index,
        )

    def permutation_test(self, n_perm: int = 1000, seed=None, exact: bool | None = None) -> PermutationTestResult:
        """Permutation test of the moderators (metafor ``permutest``).

        The rows of the moderator matrix are permuted relative to (yi, vi) and the model is refitted
        with the same method and test. p-values are the proportion of permutations whose ``|statistic|``
        (or QM) is at least the observed one minus sqrt(machine eps).

        Parameters
        ----------
        n_perm : int
            Number of random permutations (the first one is the observed data, as in metafor).
        seed : int or numpy Generator, optional
            Seed for :func:`numpy.random.default_rng` (random permutations only).
        exact : bool, optional
            ``True``: enumerate every distinct permutation; ``False``: random permutations;
            ``None`` (default): exact when the number of distinct permutations is <= ``n_perm``
            (metafor's rule).
        """
        f = self._fit
        if not isinstance(n_perm, (int, np.integer)) or n_perm < 2:
            raise ScaleupDataError(f"permutation_test(): 'n_perm' must be an integer >= 2, not {n_perm!r}.")
        _, codes = np.unique(f.X, axis=0, return_inverse=True)
        codes = np.asarray(codes).ravel()
        uniq = np.unique(f.X, axis=0)
        counts = np.bincount(codes)
        n_exact = math.factorial(f.k)
        for c in counts:
            n_exact //= math.factorial(int(c))
        do_exact = bool(exact) or (exact is None and n_exact <= n_perm)
        if do_exact and n_exact > 1_000_000:
            raise ScaleupDataError(
                f"permutation_test(): an exact test needs {n_exact} permutations; use exact=False."
            )

        def refit(Xp):
            return _try_fit(f.yi, f.vi, Xp, f.method, f.test, f.level, f.int_incl, f.btt)

        zs, qs = [], []
        if do_exact:
            clock = DrawClock("permutation_test()", "exact permutations", n_exact,
                              "Use exact=False with n_perm=1000 (p-values to about +/-0.01).")
            for done, perm in enumerate(_multiset_permutations(codes), start=1):
                res = refit(uniq[perm])
                clock.tick(done)
                zs.append(res.zval if res is not None else np.full(f.p, np.nan))
                qs.append(res.QM if res is not None else np.nan)
        else:
            rng = np.random.default_rng(seed)
            zs.append(f.zval)
            qs.append(f.QM)
            attempts = 0
            clock = DrawClock("permutation_test()", "n_perm", n_perm,
                              "1,000 permutations give p-values to about +/-0.01; 10,000 to about +/-0.003.")
            while len(zs) < n_perm:
                attempts += 1
                if attempts > 10 * n_perm:
                    raise ScaleupDataError("permutation_test(): too many permuted models failed to fit.")
                res = refit(f.X[rng.permutation(f.k)])
                clock.tick(attempts)
                if res is None:
                    continue
                zs.append(res.zval)
                qs.append(res.QM)
        zperm = np.vstack(zs)
        qperm = np.asarray(qs, dtype=float)
        tol = np.sqrt(np.finfo(float).eps)
        with np.errstate(invalid="ignore"):
            ok = ~np.isnan(zperm)
            pval = ((np.abs(zperm) >= np.abs(f.zval) - tol) & ok).sum(axis=0) / ok.sum(axis=0)
            qok = ~np.isnan(qperm)
            qp = float(((qperm >= f.QM - tol) & qok).sum() / qok.sum())
        terms = self.coef.index
        return PermutationTestResult(
            pvalue=pd.Series(np.minimum(pval, 1.0), index=terms, name="pvalue_perm"),
            QM_pvalue=qp, n_perm=len(zs), exact=do_exact,
            statistic=pd.Series(f.zval, index=terms, name="statistic"), QM=f.QM,
            statistic_perm=pd.DataFrame(zperm, columns=terms), QM_perm=qperm,
        )  # fmt: skip

    @styled
    def plot_bubble(self, mod: str, *, xlabel: str | None = None, ylabel: str | None = None,
                    title: str | None = None, ax=None):
        """Bubble plot of the effect sizes against moderator ``mod`` (bubble area ~ model weight),
        with the fitted line and its CI band when ``mod`` is a numeric moderator (other moderators held
        at their mean). ``xlabel`` defaults to the moderator's name, ``ylabel`` and ``title`` to
        messages of the catalogue. Returns the matplotlib Axes."""
        if mod not in self.data.columns:
            raise ScaleupDataError(f"plot_bubble(): mod={mod!r} is not a column of the analysed data.")
        tx = Text()
        ax = new_axes(ax, (7.5, 4.8))
        f = self._fit
        w = 1.0 / (f.vi + f.tau2)
        size = 20 + 300 * w / w.max()
        xcol = self.data[mod]
        cols = list(self.coef.index)
        study = tx("Study (area: weight)")
        if pd.api.types.is_numeric_dtype(xcol) and mod in cols:
            x = xcol.to_numpy(dtype=float)
            ax.scatter(x, f.yi, s=size, facecolors=PALETTE[5], edgecolors=PALETTE[0], alpha=0.8, zorder=3,
                       label=study)
            grid = np.linspace(x.min(), x.max(), 100)
            xg = np.tile(f.X.mean(axis=0), (len(grid), 1))
            xg[:, cols.index(mod)] = grid
            pred, _, cl, cu, _, _ = _pi_bounds(f, xg)
            ax.plot(grid, pred, color=PALETTE[3], lw=1.4, label=tx("Fitted effect"))
            ax.fill_between(grid, cl, cu, color=PALETTE[3], alpha=0.15, lw=0,
                            label=tx("{level} CI", level=tx.pct(self.level)))
            numeric_ticks(ax.xaxis, tx)
        else:
            levels = sorted(xcol.astype(str).unique())
            pos = xcol.astype(str).map({lv: i for i, lv in enumerate(levels)}).to_numpy(dtype=float)
            ax.scatter(pos, f.yi, s=size, facecolors=PALETTE[5], edgecolors=PALETTE[0], alpha=0.8, zorder=3,
                       label=study)
            ax.set_xticks(range(len(levels)))
            ax.set_xticklabels([lv.replace("$", r"\$") for lv in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
        ax.axhline(0.0, color="0.35", lw=0.8, label=tx("No effect"))
        numeric_ticks(ax.yaxis, tx)
        ax.set_xlabel(xlabel if xlabel is not None else str(mod).replace("$", r"\$"))
        ax.set_ylabel(ylabel if ylabel is not None else tx("Effect size"))
        ax.set_title(title if title is not None else tx("Meta-regression on {mod} ({method}, k = {k})",
                                                        mod=str(mod).replace("$", r"\$"), method=self.method,
                                                        k=tx.int(self.k)))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), markerscale=0.6)
        return ax


def _r2(fit: Fit) -> float:
    """metafor's pseudo-R^2 (percent) relative to the intercept-only model fitted the same way."""
    if not fit.int_incl or fit.p == 1:
        return math.nan
    k = fit.k
    if not fit.estimator.random:
        # metafor: adjusted R^2 of the weighted least-squares regression, truncated at 0
        if np.var(fit.yi) == 0:
            return 0.0
        w = 1.0 / fit.vi
        fitted = fit.X @ fit.beta
        rss = float(np.sum(w * (fit.yi - fitted) ** 2))
        mss = float(np.sum(w * (fitted - np.sum(w * fitted) / w.sum()) ** 2))
        r2 = mss / (mss + rss)
        adj = 1 - (1 - r2) * (k - 1) / (k - fit.p)
        return max(0.0, 100 * adj)
    res0 = _try_fit(fit.yi, fit.vi, np.ones((k, 1)), fit.method, fit.test, fit.level)
    if res0 is None:
        return math.nan
    if res0.tau2 == 0:
        return 0.0
    return max(0.0, 100 * (res0.tau2 - fit.tau2) / res0.tau2)


@checked_inputs
def meta_regression(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    mods=None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    slab: str | None = None,
    btt=None,
) -> MetaRegressionResult:
    """Meta-regression of effect sizes on study-level moderators (metafor's ``rma.uni(mods = ...)``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study.
    yi, vi : str
        Columns with the effect sizes and their sampling variances (> 0).
    mods : list of str or str
        Moderator columns (numeric columns enter as they are, string/categorical/boolean columns are
        dummy-coded with the first level as reference, as R does), or a patsy formula such as
        ``"~ ablat + C(alloc)"``. An intercept is included unless the formula removes it (``- 1``).
        Column names given as a list are never evaluated (any name is safe, e.g. one read from a
        user's file); a formula string is code, evaluated by patsy: write it yourself, never build
        it from names found in data.
    method : {"REML", "FE", "DL", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk"}
        Estimator of the residual between-study variance (as :func:`meta_analysis`).
    test : {"z", "t", "knha"}
        Normal-theory tests ("z"), t tests with k - p df and an F test for QM ("t", standard errors
        not adjusted), or Knapp-Hartung (the same distributions with adjusted standard errors).
    level : float
        Coverage of the confidence intervals.
    slab : str, optional
        Column with study labels.
    btt : str, list of str or list of int, optional
        The coefficients tested together by the omnibus test QM (metafor's ``btt``); default: all
        but the intercept. Give term names as in :attr:`MetaRegressionResult.coef` (e.g.
        ``["alloc[T.random]", "alloc[T.systematic]"]``), or one string, which selects every term
        whose name contains it (``"alloc"``: all the dummies of a categorical moderator), or
        integer positions (an int or a list) counted from 1 in the coefficient table as in R
        (``[2, 3]``: the second and third coefficients; the intercept is 1). The tested terms are in
        :attr:`MetaRegressionResult.btt` and named in the summary.

    Returns
    -------
    MetaRegressionResult

    Notes
    -----
    Model: y_i = x_i' beta + u_i + e_i, u_i ~ N(0, tau^2), e_i ~ N(0, v_i);
    beta_hat = (X'WX)^{-1} X'W y, W = diag(1/(v_i + tau^2)). QM = b' V^{-1} b over the coefficients
    ``btt`` (default: the non-intercept ones), chi-square with m = len(btt) df, or QM/m against
    F(m, k - p) for ``test="t"`` and ``"knha"``; QE = y'P y with
    P = W_0 - W_0 X (X'W_0 X)^{-1} X'W_0, W_0 = diag(1/v_i).
    R^2 = max(0, (tau^2_0 - tau^2)/tau^2_0) with tau^2_0 from the intercept-only model
    (Raudenbush, 2009). Rows with a missing moderator, ``yi`` or ``vi`` are omitted with a
    :class:`RowsOmittedWarning` (metafor's ``na.omit``).

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of
    Statistical Software, 36(3). https://doi.org/10.18637/jss.v036.i03

    Raudenbush, S. W. (2009). Analyzing effect sizes: Random-effects models. In H. Cooper et al. (Eds.),
    The handbook of research synthesis and meta-analysis (2nd ed., pp. 295-315).

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> data = pd.DataFrame({"yi": [0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.50, 0.20],
    ...                    "vi": [0.03, 0.03, 0.05, 0.01, 0.05, 0.02, 0.04, 0.02],
    ...                    "dose": [1, 2, 2, 4, 3, 1, 3, 2]})
    >>> res = sa.meta_regression(data, mods=["dose"], method="REML")
    >>> res.coef[["estimate", "se"]].round(4)
             estimate      se
    term
    intrcpt   -0.0681  0.1295
    dose       0.1781  0.0472
    >>> round(res.tau2, 4), round(res.R2, 1)
    (0.0, 100.0)
    >>> sub = sa.meta_regression(data, mods=["dose"], btt=["dose"], test="t")
    >>> sub.btt, sub.QM_df, round(sub.QM_pvalue, 4)
    (('dose',), (1, 6), 0.0092)
    """
    _check_options(method, test, level)
    if mods is None:
        raise ScaleupDataError("argument 'mods': give the moderator columns, e.g. mods=['ablat', 'alloc'].")
    if isinstance(mods, (list, tuple)):
        if not isinstance(data, pd.DataFrame):
            _prepare(data, yi, vi, slab)  # raises the DataFrame error
        missing_cols = [m for m in mods if m not in data.columns]
        if missing_cols:
            raise ScaleupDataError(
                f"table 'data', argument 'mods': no column(s) {first_values(missing_cols)}. Available columns: "
                f"{first_values(data.columns, 20)}."
            )
    formula, aliases, shown = _formula_from_mods(mods)
    keep, omitted = _prepare(data, yi, vi, slab, "meta_regression")
    data0 = data.loc[keep]
    X, info, raw_cols, int_incl = _design(_aliased(data0, aliases), formula)
    X.columns = [_unaliased(c, aliases) for c in X.columns]
    dropped = data0.index.difference(X.index, sort=False)
    if len(dropped):
        omitted.append(f"{len(dropped)} row(s) with missing moderator values (rows {first_values(dropped)})")
    _warn_omitted(omitted, "meta_regression()")
    used = data0.loc[X.index]
    k, p = X.shape
    Xa = X.to_numpy(dtype=float)
    if p == 0:
        raise ScaleupDataError("argument 'mods': the model has no coefficients.")
    _check_moderator_values(X, Xa)
    if np.any(np.linalg.eigvalsh(Xa.T @ Xa) <= 1e-7):
        raise ScaleupDataError(
            f"argument 'mods': the moderator matrix ({', '.join(X.columns)}) is not of full rank on the "
            f"{k} usable rows (a moderator is constant or collinear with others). Drop or merge moderators."
        )
    need = p + 1 if _random(method) else p
    if k < need:
        raise ScaleupDataError(
            f"table 'data': {k} usable row(s) but the model estimates {p} coefficient(s)"
            f"{'' if method == 'FE' else ' and tau^2'}; it needs at least {need} studies. Use fewer moderators."
        )
    y = used[yi].astype(float).to_numpy()
    v = used[vi].astype(float).to_numpy()
    btt_idx = _resolve_btt(btt, list(X.columns), int_incl)
    with numeric_guard("meta_regression", f"columns {yi!r}, {vi!r} and the moderators"):
        fit = _fit_or_raise(y, v, Xa, method, test, level, int_incl=int_incl, btt=btt_idx)
        ci = qprofile_ci(fit) if (_random(method) and k > p) else {}
    names = pd.Index(list(X.columns), name="term")
    coef = pd.DataFrame(
        {"estimate": fit.beta, "se": fit.se, "statistic": fit.zval, "pvalue": fit.pval,
         "ci_low": fit.ci_lb, "ci_high": fit.ci_ub},
        index=names,
    )  # fmt: skip
    fs = _fit_stats(fit)
    used = used.copy()
    used.index = _labels(used, slab)
    return MetaRegressionResult(
        coef=coef, vcov=pd.DataFrame(fit.vb, index=names, columns=names), tau2=fit.tau2,
        tau2_se=fit.se_tau2, tau2_ci_low=ci.get("tau2_ci_low", math.nan),
        tau2_ci_high=ci.get("tau2_ci_high", math.nan), I2=fit.I2, H2=fit.H2, R2=_r2(fit), QM=fit.QM,
        QM_df=fit.QM_df, QM_pvalue=fit.QM_pvalue, QE=fit.QE, QE_df=k - p, QE_pvalue=fit.QE_pvalue, k=k,
        p=p, method=method, test=test, level=level, formula=shown, loglik=fs["loglik"],
        deviance=fs["deviance"], AIC=fs["AIC"], BIC=fs["BIC"], AICc=fs["AICc"], data=used,
        btt=tuple(str(X.columns[j]) for j in btt_idx), _fit=fit,
        _design_info=info, _columns=tuple(raw_cols), _aliases=aliases,
    )  # fmt: skip
