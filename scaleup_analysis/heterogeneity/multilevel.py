"""Multilevel (nested random-effects) meta-analysis, as ``metafor::rma.mv(yi, vi, random = ~ 1 | a/b)``.

Effect sizes ``y_i`` with known sampling variances ``v_i`` are nested in levels (e.g. sites within
health regions). The model ``y_i = mu + u_region + u_site(region) + e_i`` with ``e_i ~ N(0, v_i)`` and
one variance ``sigma2_l`` per level is fitted by REML or ML with the same likelihood core as
:func:`scaleup_analysis.mixed_model` (:mod:`scaleup_analysis.engines.reml`): per outermost
cluster ``j``, ``V_j = diag(v_i) + sum_l sigma2_l Z_l Z_l'``, evaluated from weighted cross-products.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_level, checked_inputs, numeric_column, rows_text
from .._display import Displayed, p_cell, text_table
from .._style import GREY, PALETTE, new_axes, styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..engines.reml import CrossprodBlock, Crossprods, fit_lmm, pls, profile_interval
from ..narrative import Text
from ._scale import check_effect_scale, numeric_guard
from ._text import group_word

__all__ = ["multilevel_meta_analysis", "MultilevelMetaResult"]


@dataclass(frozen=True, repr=False)
class MultilevelMetaResult(Displayed):
    """Result of :func:`multilevel_meta_analysis` (names as in metafor's ``rma.mv`` object).

    Attributes
    ----------
    estimate, se, statistic, pvalue, ci_low, ci_high : float
        Pooled effect, its standard error, z (or t) statistic, p-value and confidence interval.
    df : float
        Degrees of freedom of the t test (``k - 1``) or ``inf`` for the z test.
    group : tuple of str
        The grouping columns (levels of nesting), outermost first.
    n_units : Series
        Number of units at each level (indexed by the ``group`` columns).
    sigma2 : Series
        Estimated variance at each level, outermost first (indexed by the ``group`` columns).
    sigma2_ci : DataFrame
        Profile-likelihood confidence intervals of the variances (``ci_low``, ``ci_high`` per
        level, index ``group``), as ``confint(rma.mv(...))``.
    I2 : Series
        Share (in %) of the total variance due to each level (see Notes of the function).
    typical_v : float
        "Typical" sampling variance ``(k - p) / tr(P)``.
    QE, QE_pvalue : float
        Test for residual heterogeneity (Cochran's Q with ``k - 1`` df) and its p-value.
    loglik, deviance, AIC, BIC : float
        Fit statistics as ``fitstats()`` (REML or ML).
    """

    method: str
    test: str
    group: tuple[str, ...]
    k: int
    n_units: pd.Series
    estimate: float
    se: float
    statistic: float
    df: float
    pvalue: float
    ci_low: float
    ci_high: float
    sigma2: pd.Series
    sigma2_ci: pd.DataFrame
    I2: pd.Series
    typical_v: float
    QE: float
    QE_pvalue: float
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    converged: bool
    level: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: the pooled estimate, then one row per level (``sigma2``, ``I2``)."""
        est = pd.DataFrame([{"term": "intercept", "estimate": self.estimate, "se": self.se,
                             "statistic": self.statistic, "df": self.df, "pvalue": self.pvalue,
                             "ci_low": self.ci_low, "ci_high": self.ci_high}])
        lev = pd.DataFrame({"term": [f"sigma2.{l}" for l in self.group], "estimate": self.sigma2.to_numpy(),
                            "ci_low": self.sigma2_ci["ci_low"].to_numpy(),
                            "ci_high": self.sigma2_ci["ci_high"].to_numpy(),
                            "I2": self.I2.to_numpy(), "n_units": self.n_units.to_numpy()})
        return pd.concat([est, lev], ignore_index=True)

    def _repr_fields(self) -> dict:
        return {"k": self.k, "method": self.method, "group": list(self.group), "estimate": self.estimate,
                "ci": (self.ci_low, self.ci_high), "sigma2": [float(v) for v in self.sigma2],
                "I2": [float(v) for v in self.I2]}

    def _summary(self, tx) -> str:
        """The model in the layout of metafor's ``print.rma.mv``, labels in the report language."""
        level = tx.pct(self.level)
        stat = "z" if self.test == "z" else f"t({tx.num(self.df, 0)})"
        lines = [
            tx("Multilevel random-effects meta-analysis ({method}; k = {k}; levels: {levels})", method=self.method,
               k=self.k, levels=" / ".join(self.group)),
            tx("  logLik: {ll}   deviance: {dev}   AIC: {aic}   BIC: {bic}", ll=tx.num(self.loglik, 4),
               dev=tx.num(self.deviance, 4), aic=tx.num(self.AIC, 4), bic=tx.num(self.BIC, 4)),
            "",
            tx("Variance components:"),
        ]
        rows = [[f"sigma2.{lev}", tx.num(self.sigma2[lev], 6),
                 tx("[{low}, {high}]", low=tx.num(self.sigma2_ci.loc[lev, "ci_low"], 6),
                    high=tx.num(self.sigma2_ci.loc[lev, "ci_high"], 6)),
                 tx.num(float(np.sqrt(self.sigma2[lev])), 4), tx.int(self.n_units[lev]),
                 tx.pct(self.I2[lev] / 100, 1)] for lev in self.group]
        lines.append(text_table([tx("level"), tx("variance"), tx("{level} CI", level=level), tx("SD"), tx("units"),
                                 "I²"], rows))
        lines += [
            "",
            tx("Test for heterogeneity: QE(df = {df}) = {q}, {p}", df=self.k - 1, q=tx.num(self.QE, 4),
               p=tx.pvalue(self.QE_pvalue)),
            "",
            text_table([tx("estimate"), tx("SE"), stat, "p", tx("{level} CI", level=level)],
                       [[tx.num(self.estimate, 6), tx.num(self.se, 6), tx.num(self.statistic, 4),
                         p_cell(tx, self.pvalue),
                         tx("[{low}, {high}]", low=tx.num(self.ci_low, 6), high=tx.num(self.ci_high, 6))]]),
        ]
        if not self.converged:
            lines.append(tx("  Warning: the optimiser did not converge"))
        return "\n".join(lines)

    @styled
    def plot_variance_shares(self, *, title: str | None = None, ax=None):
        """Bar chart of the share of the total variance at each level and of sampling error.

        Returns the matplotlib Axes.
        """
        tx = Text()
        ax = new_axes(ax, (6.0, 4.0))
        labels = [group_word(tx, g) for g in self.group] + [tx("Sampling error")]
        vals = [float(v) for v in self.I2.to_numpy()] + [100.0 - float(self.I2.sum())]
        colours = [PALETTE[i % (len(PALETTE) - 1)] for i in range(len(self.group))] + [GREY]
        bars = ax.bar(range(len(vals)), vals, color=colours, width=0.6)
        ax.bar_label(bars, labels=[tx.pct(v / 100, 1) for v in vals], padding=2)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(labels)
        ax.set_ylabel(tx("Share of the total variance (%)"))
        ax.set_ylim(0, 108)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(False, axis="x")
        ax.set_title(title if title is not None else tx("Heterogeneity by level ({method})", method=self.method))
        return ax


def _check_options(data, yi, vi, group, method, test, level) -> tuple:
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(
            f"multilevel_meta_analysis: data must be a pandas DataFrame, got {type(data).__name__}."
        )
    if method not in ("REML", "ML"):
        raise ScaleupDataError(f"multilevel_meta_analysis: method must be 'REML' or 'ML', got {method!r}.")
    if test not in ("z", "t"):
        raise ScaleupDataError(f"multilevel_meta_analysis: test must be 'z' or 't', got {test!r}.")
    check_level(level, "multilevel_meta_analysis")
    if isinstance(group, str) or len(group) < 1:
        raise ScaleupDataError(
            "multilevel_meta_analysis: group must be a list of column names, outermost first, "
            f"e.g. ['region', 'site']; got {group!r}."
        )
    group = tuple(group)
    for arg, col in [("yi", yi), ("vi", vi)] + [("group", c) for c in group]:
        if not isinstance(col, str) or col not in data.columns:
            cols = ", ".join(map(repr, list(data.columns)[:12]))
            raise ScaleupDataError(
                f"multilevel_meta_analysis: column {col!r} (argument {arg!r}) is not in data. "
                f"Available columns: {cols}."
            )
    if len(set(group)) != len(group):
        raise ScaleupDataError(f"multilevel_meta_analysis: group has repeated columns: {group!r}.")
    return group


def _usable_rows(data, yi, vi, group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effect sizes and variances as floats, and the rows with all of yi, vi and the group labels."""
    label = "multilevel_meta_analysis: table 'data'"
    y_all = numeric_column(data, yi, label, arg="yi", missing=True, infinite=True)
    v_all = numeric_column(data, vi, label, arg="vi", missing=True, infinite=True)
    for arg, col, x in (("yi", yi, y_all), ("vi", vi, v_all)):
        if np.isinf(x).any():
            raise ScaleupDataError(
                f"{label}, column {col!r} (argument {arg!r}): {rows_text(data.index, np.isinf(x), label='first:')} "
                "are infinite. Correct or drop these rows."
            )
    bad_v = np.isfinite(v_all) & (v_all <= 0)
    if bad_v.any():
        raise ScaleupDataError(
            f"multilevel_meta_analysis: column {vi!r} (argument 'vi') must be > 0; "
            f"{rows_text(data.index, bad_v)} are not. Check the sampling variances (e.g. zero cells)."
        )
    keep = np.isfinite(y_all) & np.isfinite(v_all)
    for c in group:
        keep &= data[c].notna().to_numpy()
    return y_all, v_all, keep


def _nested_crossprods(y, v, nested, L) -> Crossprods:
    """Weighted (1 / v) cross-products of the nested random-intercept model, one block of outermost
    units per pattern of inner levels, for the REML engine (sigma fixed at 1, known variances v)."""
    k = y.size
    w = 1.0 / v
    X = np.ones((k, 1))
    outer_codes, _ = pd.factorize(nested[0], sort=True)
    order = np.argsort(outer_codes, kind="stable")
    blocks_by_pattern: dict[tuple, list] = {}
    for j in np.unique(outer_codes):
        rows = order[outer_codes[order] == j]
        cols, pattern = [], []
        for l in range(L):
            ids, codes = np.unique(nested[l].to_numpy()[rows], return_inverse=True)
            Zl = np.zeros((rows.size, ids.size))
            Zl[np.arange(rows.size), codes] = 1.0
            cols.append(Zl)
            pattern += [l] * ids.size
        Z = np.hstack(cols)
        wz = Z * w[rows, None]
        blocks_by_pattern.setdefault(tuple(pattern), []).append(
            (wz.T @ Z, wz.T @ X[rows], wz.T @ y[rows])
        )
    blocks = []
    for pattern, items in blocks_by_pattern.items():
        lind = -np.ones((len(pattern), len(pattern)), dtype=int)
        lind[np.diag_indices(len(pattern))] = pattern
        blocks.append(
            CrossprodBlock(
                np.stack([a for a, _, _ in items]), np.stack([b for _, b, _ in items]),
                np.stack([c for _, _, c in items]), lind,
            )
        )
    XtWX = (X * w[:, None]).T @ X
    return Crossprods(
        blocks=tuple(blocks), XtX=XtWX, Xty=(X * w[:, None]).T @ y, yty=float(np.sum(w * y * y)), n=k,
        ntheta=L, lower=np.zeros(L), sigma_fixed=True, logdet_resid=float(np.sum(np.log(v))),
        reml_const=-float(np.linalg.slogdet(X.T @ X)[1]),
    )


def _pooled_inference(fit, test, k, p, level) -> dict:
    """Pooled effect with its z or t test and confidence interval."""
    est = float(fit.beta[0])
    se = float(np.sqrt(fit.vcov_beta[0, 0]))
    stat = est / se
    if test == "z":
        dfree = np.inf
        pval = 2 * stats.norm.sf(abs(stat))
        crit = stats.norm.ppf(0.5 + level / 2)
    else:
        dfree = float(k - p)
        pval = 2 * stats.t.sf(abs(stat), dfree)
        crit = stats.t.ppf(0.5 + level / 2, dfree)
    return dict(estimate=est, se=se, statistic=stat, df=dfree, pvalue=float(pval), ci_low=est - crit * se,
                ci_high=est + crit * se)


def _fit_statistics(fit, reml, y, v, k, p, L) -> dict:
    """Log-likelihood, deviance, AIC and BIC as metafor's ``fitstats``."""
    ll = -fit.minus2ll / 2
    if reml:
        dev = -2 * ll
        npar_log = np.log(k - p)
    else:
        ll_sat = float(np.sum(stats.norm.logpdf(y, y, np.sqrt(v))))
        dev = -2 * (ll - ll_sat)
        npar_log = np.log(k)
    npar = p + L
    return dict(loglik=ll, deviance=dev, AIC=-2 * ll + 2 * npar, BIC=-2 * ll + npar_log * npar)


@checked_inputs
def multilevel_meta_analysis(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    group: list[str] | tuple[str, ...] = ("region", "site"),
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> MultilevelMetaResult:
    """Random-effects meta-analysis with nested levels (e.g. sites within regions).

    Parameters
    ----------
    data : DataFrame
        One row per effect size.
    yi, vi : str
        Columns of the effect sizes and their (known) sampling variances (> 0).
    group : list of str
        Grouping columns of the nested random effects: columns identifying the nested units, outermost first, e.g. ``["region", "site"]`` for
        metafor's ``random = ~ 1 | region/site``. Inner units are identified within their outer
        unit (the same site label in two regions is two sites).
    method : {"REML", "ML"}
        Estimation of the variance components.
    test : {"z", "t"}
        Wald z test, or t test with ``k - 1`` df (metafor's ``test = "t"``).
    level : float
        Confidence level.

    Returns
    -------
    MultilevelMetaResult

    Notes
    -----
    Marginal model: ``y ~ N(mu 1, V)``, ``V = diag(v_i) + sum_l sigma2_l Z_l Z_l'`` (block diagonal
    over the outermost units). The log-likelihoods are metafor's: ML
    ``-1/2 (k log 2 pi + log|V| + r'V^{-1}r)``; REML adds ``-1/2 log|X'V^{-1}X| + 1/2 log|X'X|`` and uses
    ``k - p`` in the first term. The share of heterogeneity at each level is the multilevel I2 of
    Nakagawa & Santos (2012) as given in the metafor documentation (Viechtbauer, "I^2 for multilevel
    and multivariate models"): ``I2_l = 100 sigma2_l / (sum_m sigma2_m + v_typ)`` with the typical
    sampling variance ``v_typ = (k - p) / tr(P)``, ``P = W - W X (X'W X)^{-1} X'W``, ``W = diag(1 / v_i)``.
    ``QE = sum w_i (y_i - mu_FE)^2`` with ``k - p`` df. The confidence interval of each ``sigma2_l``
    is the profile-likelihood interval (the other variances re-estimated at each point), bounded by
    0, as ``confint(rma.mv(...))``. AIC/BIC count ``p + L`` parameters and BIC uses
    ``log(k - p)`` for REML (as ``fitstats``); the ML deviance is ``-2 (logL - logL_saturated)``.

    References
    ----------
    Konstantopoulos S (2011). Fixed effects and variance components estimation in three-level
    meta-analysis. Research Synthesis Methods 2:61-76.

    Nakagawa S, Santos ESA (2012). Methodological issues and advances in biological meta-analysis.
    Evolutionary Ecology 26:1253-1274.

    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal of
    Statistical Software 36(3).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(3)
    >>> region = np.repeat(["01", "02", "03", "04", "05", "06"], 4)
    >>> site = np.tile(["a", "b", "c", "d"], 6)
    >>> vi = np.full(24, 0.02)
    >>> yi = 0.3 + rng.normal(0, 0.2, 6).repeat(4) + rng.normal(0, 0.1, 24) + rng.normal(0, np.sqrt(vi))
    >>> data = pd.DataFrame({"region": region, "site": site, "yi": yi, "vi": vi})
    >>> res = sa.multilevel_meta_analysis(data, yi="yi", vi="vi", group=["region", "site"])
    >>> list(res.sigma2.index)
    ['region', 'site']
    >>> bool(res.ci_low < res.estimate < res.ci_high)
    True
    """
    group = _check_options(data, yi, vi, group, method, test, level)
    y_all, v_all, keep = _usable_rows(data, yi, vi, group)
    if (~keep).any():
        warnings.warn(
            f"multilevel_meta_analysis: {rows_text(data.index, ~keep)} left out because of missing "
            f"{yi!r}, {vi!r} or group identifiers.",
            RowsOmittedWarning,
            stacklevel=2,
        )
    y, v = y_all[keep], v_all[keep]
    check_effect_scale(data.index[keep], y, v, yi, vi, "multilevel_meta_analysis")
    labs = data.loc[keep, list(group)].astype(str).reset_index(drop=True)
    k = y.size
    L = len(group)
    p = 1
    if k < 3:
        raise ScaleupDataError(f"multilevel_meta_analysis: {k} usable effect sizes; need at least 3.")
    # nested identifiers: level l is identified by the values of levels[0..l]
    nested = [labs.iloc[:, : l + 1].agg("\x1f".join, axis=1) for l in range(L)]
    n_units = pd.Series([int(s.nunique()) for s in nested], index=list(group), name="n_units")
    if n_units.iloc[0] < 2:
        raise ScaleupDataError(
            f"multilevel_meta_analysis: column {group[0]!r} has a single unit; the outermost level needs "
            "at least 2 units."
        )

    with numeric_guard("multilevel_meta_analysis", f"columns {yi!r} and {vi!r}"):
        cp = _nested_crossprods(y, v, nested, L)
        reml = method == "REML"
        QE = pls(np.zeros(L), cp).pwrss
        # start: split the excess variance equally across levels
        excess = max(float(np.var(y, ddof=1)) - float(np.mean(v)), 0.01 * float(np.var(y, ddof=1)) + 1e-8)
        fit = fit_lmm(cp, reml=reml, theta0=np.full(L, np.sqrt(excess / L)))
        if not fit.converged:
            warnings.warn(
                f"multilevel_meta_analysis: the {method} optimiser did not converge ({fit.message}). Try "
                "method='ML', or check for levels with a single effect size in every unit.",
                ConvergenceWarning,
                stacklevel=2,
            )
        sigma2 = fit.theta**2
        if np.any(fit.theta < 1e-4 * np.sqrt(max(float(np.mean(v)), 1e-300))):
            warnings.warn(
                "multilevel_meta_analysis: a variance component is estimated at 0 (boundary); the model "
                "may be simplified by dropping that level.",
                ScaleupWarning,
                stacklevel=2,
            )
        w = 1.0 / v
        trP = float(np.sum(w) - np.sum(w * w) / np.sum(w))  # tr(W - W X (X'WX)^-1 X'W) for X = 1
        typical_v = (k - p) / trP
        I2 = 100 * sigma2 / (np.sum(sigma2) + typical_v)
        ci = np.array([profile_interval(fit, l, level) for l in range(L)]) ** 2
        sigma2_ci = pd.DataFrame({"ci_low": ci[:, 0], "ci_high": ci[:, 1]}, index=pd.Index(list(group), name="group"))
    return MultilevelMetaResult(
        method=method, test=test, group=group, k=k, n_units=n_units, **_pooled_inference(fit, test, k, p, level),
        sigma2=pd.Series(sigma2, index=list(group), name="sigma2"), sigma2_ci=sigma2_ci,
        I2=pd.Series(I2, index=list(group), name="I2"), typical_v=typical_v, QE=QE,
        QE_pvalue=float(stats.chi2.sf(QE, k - p)), **_fit_statistics(fit, reml, y, v, k, p, L),
        converged=fit.converged, level=level,
    )
