"""Multilevel (nested random-effects) meta-analysis and meta-regression, as
``metafor::rma.mv(yi, vi, mods = ~ ..., random = ~ 1 | a/b)``.

Effect sizes ``y_i`` with known sampling variances ``v_i`` are nested in levels (e.g. sites within
health regions). The model ``y_i = x_i' beta + u_region + u_site(region) + e_i`` with
``e_i ~ N(0, v_i)`` and one variance ``sigma2_l`` per level is fitted by REML or ML with the same
likelihood core as :func:`scaleup_analysis.mixed_model` (:mod:`scaleup_analysis.engines.reml`): per
outermost cluster ``j``, ``V_j = diag(v_i) + sum_l sigma2_l Z_l Z_l'``, evaluated from weighted
cross-products. The optimum is then polished by Newton steps on the analytic (RE)ML score, so the
variance components are exact to ~1e-12 rather than to the ~1e-8 at which a criterion evaluated in
floating point stops being informative.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats

from .._checks import check_level, checked_inputs, first_values, numeric_column, rows_text
from .._display import Displayed, p_cell, text_table
from .._formula import unaliased
from .._style import GREY, PALETTE, new_axes, styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..engines.reml import CrossprodBlock, Crossprods, deviance, fit_lmm, pls, profile_interval
from ..narrative import Text
from ._scale import check_effect_scale, numeric_guard
from ._text import group_word
from .meta import MetaRegressionResult, _aliased, _check_moderator_values, _design, _formula_from_mods

__all__ = ["multilevel_meta_analysis", "MultilevelMetaResult"]


@dataclass(frozen=True, repr=False)
class MultilevelMetaResult(Displayed):
    """Result of :func:`multilevel_meta_analysis` (names as in metafor's ``rma.mv`` object).

    Attributes
    ----------
    estimate, se, statistic, pvalue, ci_low, ci_high : float
        Pooled effect, its standard error, z (or t) statistic, p-value and confidence interval
        (model without moderators; NaN with moderators: see ``coef``).
    df : float
        Degrees of freedom of the t tests (``k - p``) or ``inf`` for z tests.
    group : tuple of str
        The grouping columns (levels of nesting), outermost first.
    n_units : Series
        Number of units at each level (indexed by the ``group`` columns).
    sigma2 : Series
        Estimated variance at each level, outermost first (indexed by the ``group`` columns);
        residual variances when the model has moderators.
    sigma2_ci : DataFrame
        Profile-likelihood confidence intervals of the variances (``ci_low``, ``ci_high`` per
        level, index ``group``), as ``confint(rma.mv(...))``.
    I2 : Series
        Share (in %) of the total variance due to each level (see Notes of the function).
    typical_v : float
        "Typical" sampling variance ``(k - p) / tr(P)``.
    QE, QE_df, QE_pvalue : float, int, float
        Test for residual heterogeneity (Cochran's Q of the fixed-effects model with the
        moderators, ``k - p`` df) and its p-value.
    loglik, deviance, AIC, BIC, AICc : float
        Fit statistics as ``fitstats()`` (REML or ML).
    formula : str or None
        The moderators (``None`` without moderators).
    p : int
        Number of coefficients.
    coef : DataFrame
        Index ``term`` (``intrcpt`` first); columns estimate, se, statistic, pvalue, ci_low, ci_high.
    vcov : DataFrame
        Covariance matrix of the coefficients.
    QM, QM_df, QM_pvalue : float, tuple, float
        Omnibus test of the moderators (chi-square with ``m`` df, or F with ``(m, k - p)`` df under
        ``test="t"``) of the coefficients ``btt``; NaN without moderators.
    btt : tuple of str
        The coefficients tested by ``QM``.
    sigma2_nomods : Series
        Variance at each level in the model without moderators (same method); NaN without moderators.
    R2, R2_total : Series, float
        Pseudo-R² (%) at each level and for the sum of the levels: proportional reduction of the
        variance relative to the model without moderators, truncated at 0 (NaN without moderators).
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
    formula: str | None = None
    p: int = 1
    coef: pd.DataFrame = field(default=None, repr=False)
    vcov: pd.DataFrame = field(default=None, repr=False)
    QM: float = math.nan
    QM_df: tuple = (0, None)
    QM_pvalue: float = math.nan
    btt: tuple = ()
    QE_df: int = 0
    AICc: float = math.nan
    sigma2_nomods: pd.Series = field(default=None, repr=False)
    R2: pd.Series = field(default=None, repr=False)
    R2_total: float = math.nan
    _design_info: object = field(default=None, repr=False, compare=False)
    _columns: tuple = field(default=(), repr=False, compare=False)
    _aliases: dict = field(default_factory=dict, repr=False, compare=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: the pooled estimate (or one row per coefficient with moderators), then one row per
        level (``sigma2``, its CI, ``I2``, ``n_units``, and ``R2`` with moderators)."""
        lev = pd.DataFrame({"term": [f"sigma2.{l}" for l in self.group], "estimate": self.sigma2.to_numpy(),
                            "ci_low": self.sigma2_ci["ci_low"].to_numpy(),
                            "ci_high": self.sigma2_ci["ci_high"].to_numpy(),
                            "I2": self.I2.to_numpy(), "n_units": self.n_units.to_numpy()})
        if self.formula is None:
            est = pd.DataFrame([{"term": "intercept", "estimate": self.estimate, "se": self.se,
                                 "statistic": self.statistic, "df": self.df, "pvalue": self.pvalue,
                                 "ci_low": self.ci_low, "ci_high": self.ci_high}])
        else:
            est = self.coef.reset_index()
            est.insert(4, "df", self.df)
            lev["R2"] = self.R2.to_numpy()
        return pd.concat([est, lev], ignore_index=True)

    def _repr_fields(self) -> dict:
        out = {"k": self.k, "method": self.method, "group": list(self.group)}
        if self.formula is None:
            out.update(estimate=self.estimate, ci=(self.ci_low, self.ci_high))
        else:
            out.update(formula=self.formula, QM=self.QM, QM_pvalue=self.QM_pvalue)
        out.update(sigma2=[float(v) for v in self.sigma2], I2=[float(v) for v in self.I2])
        if self.formula is not None:
            out["R2"] = [float(v) for v in self.R2]
        return out

    def _summary(self, tx) -> str:
        """The model in the layout of metafor's ``print.rma.mv``, labels in the report language."""
        level = tx.pct(self.level)
        stat = "z" if self.test == "z" else f"t({tx.num(self.df, 0)})"
        mods = self.formula is not None
        levels = " / ".join(self.group)
        if mods:
            lines = [
                tx("Multilevel meta-regression ({method}; k = {k}; levels: {levels})", method=self.method, k=self.k,
                   levels=levels),
                tx("Moderators: {formula}", formula=self.formula),
                tx("  logLik: {ll}   deviance: {dev}   AIC: {aic}   BIC: {bic}   AICc: {aicc}",
                   ll=tx.num(self.loglik, 4), dev=tx.num(self.deviance, 4), aic=tx.num(self.AIC, 4),
                   bic=tx.num(self.BIC, 4), aicc=tx.num(self.AICc, 4)),
            ]
        else:
            lines = [
                tx("Multilevel random-effects meta-analysis ({method}; k = {k}; levels: {levels})",
                   method=self.method, k=self.k, levels=levels),
                tx("  logLik: {ll}   deviance: {dev}   AIC: {aic}   BIC: {bic}", ll=tx.num(self.loglik, 4),
                   dev=tx.num(self.deviance, 4), aic=tx.num(self.AIC, 4), bic=tx.num(self.BIC, 4)),
            ]
        lines += ["", tx("Variance components:")]
        rows = [[f"sigma2.{lev}", tx.num(self.sigma2[lev], 6),
                 tx("[{low}, {high}]", low=tx.num(self.sigma2_ci.loc[lev, "ci_low"], 6),
                    high=tx.num(self.sigma2_ci.loc[lev, "ci_high"], 6)),
                 tx.num(float(np.sqrt(self.sigma2[lev])), 4), tx.int(self.n_units[lev]),
                 tx.pct(self.I2[lev] / 100, 1)] for lev in self.group]
        header = [tx("level"), tx("variance"), tx("{level} CI", level=level), tx("SD"), tx("units"), "I²"]
        if mods:
            header.append(tx("pseudo-R²"))
            for row, lev in zip(rows, self.group):
                row.append(tx.pct(self.R2[lev] / 100, 1) if np.isfinite(self.R2[lev]) else "-")
        lines.append(text_table(header, rows))
        if mods and np.isfinite(self.R2_total):
            lines.append(tx("Pseudo-R² over all levels (variance accounted for by the moderators): {v}",
                            v=tx.pct(self.R2_total / 100, 1)))
        lines += [
            "",
            tx("Test for heterogeneity: QE(df = {df}) = {q}, {p}", df=self.QE_df, q=tx.num(self.QE, 4),
               p=tx.pvalue(self.QE_pvalue)) if not mods else
            tx("Test for residual heterogeneity: QE(df = {df}) = {q}, {p}", df=self.QE_df, q=tx.num(self.QE, 4),
               p=tx.pvalue(self.QE_pvalue)),
        ]
        if mods:
            if self.test == "t":
                dist = tx("F(df1 = {df1}, df2 = {df2})", df1=self.QM_df[0], df2=self.QM_df[1])
            else:
                dist = tx("QM(df = {df})", df=self.QM_df[0])
            lines.append(tx("Test of moderators ({terms}): {dist} = {q}, {p}", terms=", ".join(self.btt), dist=dist,
                            q=tx.num(self.QM, 4), p=tx.pvalue(self.QM_pvalue)))
            rows = [[str(term), tx.num(r["estimate"], 4), tx.num(r["se"], 4), tx.num(r["statistic"], 4),
                     p_cell(tx, r["pvalue"]),
                     tx("[{low}, {high}]", low=tx.num(r["ci_low"], 4), high=tx.num(r["ci_high"], 4))]
                    for term, r in self.coef.iterrows()]
            lines += ["", text_table([tx("term"), tx("estimate"), tx("SE"), stat, "p", tx("{level} CI", level=level)],
                                     rows)]
        else:
            lines += [
                "",
                text_table([tx("estimate"), tx("SE"), stat, "p", tx("{level} CI", level=level)],
                           [[tx.num(self.estimate, 6), tx.num(self.se, 6), tx.num(self.statistic, 4),
                             p_cell(tx, self.pvalue),
                             tx("[{low}, {high}]", low=tx.num(self.ci_low, 6), high=tx.num(self.ci_high, 6))]]),
            ]
        if not self.converged:
            lines.append(tx("  Warning: the optimiser did not converge"))
        return "\n".join(lines)

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predicted average effects with confidence and prediction intervals (metafor ``predict``).

        ``pred = x' b``, ``se = sqrt(x' V_b x)``, CI ``pred +/- crit se`` and prediction interval
        ``pred +/- crit sqrt(se^2 + sum_l sigma2_l)`` (``crit`` from the normal, or from t with
        ``k - p`` df under ``test="t"``). With moderators, ``newdata`` holds their values (one row
        per prediction); without moderators, leave it out for the pooled effect.
        """
        if self.formula is None:
            if newdata is not None:
                raise ScaleupDataError("predict(): the model has no moderators; call predict() without 'newdata'.")
            xn = np.ones((1, 1))
            index = pd.RangeIndex(1)
        else:
            if newdata is None:
                raise ScaleupDataError("predict(): give 'newdata', a DataFrame with the moderator columns.")
            xn = MetaRegressionResult._x_new(self, newdata)
            index = newdata.index
        b = self.coef["estimate"].to_numpy()
        vb = self.vcov.to_numpy()
        pred = xn @ b
        se = np.sqrt(np.einsum("ij,jk,ik->i", xn, vb, xn))
        crit = _critical(self.test, self.df, self.level)
        half_pi = crit * np.sqrt(se**2 + float(self.sigma2.sum()))
        return pd.DataFrame({"pred": pred, "se": se, "ci_low": pred - crit * se, "ci_high": pred + crit * se,
                             "pi_low": pred - half_pi, "pi_high": pred + half_pi}, index=index)

    @styled
    def plot_variance_shares(self, *, title: str | None = None, ax=None):
        """Bar chart of the share of the total variance at each level and of sampling error.

        With moderators the shares are those of the residual variance (what the moderators leave
        unexplained). Returns the matplotlib Axes.
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
        ax.set_ylabel(tx("Share of the total variance (%)") if self.formula is None else
                      tx("Share of the residual variance (%)"))
        ax.set_ylim(0, 108)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(False, axis="x")
        if title is None:
            title = (tx("Heterogeneity by level ({method})", method=self.method) if self.formula is None else
                     tx("Residual heterogeneity by level ({method})", method=self.method))
        ax.set_title(title)
        return ax


def _critical(test: str, df: float, level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2) if test == "z" else stats.t.ppf(0.5 + level / 2, df))


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


def _nested_crossprods(y, v, nested, L, X) -> Crossprods:
    """Weighted (1 / v) cross-products of the nested random-intercept model, one block of outermost
    units per pattern of inner levels, for the REML engine (sigma fixed at 1, known variances v).

    ``X`` should have orthonormal columns (see :func:`_orthonormal`): ``log|X'X| = 0`` is then the
    REML constant and the criterion carries no rounding from an ill-conditioned design."""
    k = y.size
    w = 1.0 / v
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


def _orthonormal(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X = Q R`` with orthonormal ``Q``: the model is fitted on ``Q`` (same fitted values, same
    (RE)ML criterion since ``log|X'V^-1 X| - log|X'X|`` does not change under ``X -> X A``) and the
    coefficients are mapped back with ``R``. An uncentred moderator (a year, ~2000) otherwise puts
    ~1e-9 of rounding noise into the REML criterion."""
    Q, R = np.linalg.qr(X)
    return Q, R


def _clusters(nested, L) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Per outermost unit: its rows and, per level, ``G_l = Z_l Z_l'`` (1 where two rows share the unit)."""
    codes0, _ = pd.factorize(nested[0], sort=True)
    inner = [pd.factorize(nested[l], sort=True)[0] for l in range(L)]
    out = []
    for j in range(int(codes0.max()) + 1):
        rows = np.flatnonzero(codes0 == j)
        out.append((rows, [(c[rows][:, None] == c[rows][None, :]).astype(float) for c in inner]))
    return out


def _score(s2, y, v, X, clusters, reml):
    """Gradient and Hessian of the (RE)ML log-likelihood in the variances ``s2`` (analytic).

    ``g_l = -tr(T G_l)/2 + y'P G_l P y/2``, ``H_lm = tr(T G_l T G_m)/2 - y'P G_l P G_m P y`` with
    ``T = P`` (REML) or ``V^-1`` (ML), ``P = V^-1 - V^-1 X (X'V^-1 X)^-1 X'V^-1`` (Searle, Casella &
    McCulloch 1992, ch. 6), computed per outermost unit (``V`` is block diagonal)."""
    L, p = s2.size, X.shape[1]
    parts = []
    XtViX = np.zeros((p, p))
    XtViy = np.zeros(p)
    for rows, G in clusters:
        V = np.diag(v[rows]) + sum(s * g for s, g in zip(s2, G))
        Vi = np.linalg.inv(V)
        ViX = Vi @ X[rows]
        XtViX += X[rows].T @ ViX
        XtViy += ViX.T @ y[rows]
        parts.append((rows, G, Vi, ViX))
    C = np.linalg.inv(XtViX)
    beta = C @ XtViy
    trVG = np.zeros(L)
    trVGVG = np.zeros((L, L))
    B = np.zeros((L, p, p))
    D = np.zeros((L, L, p, p))
    quad = np.zeros(L)
    uVu = np.zeros((L, L))
    XtViu = np.zeros((L, p))
    for rows, G, Vi, ViX in parts:
        Py = Vi @ (y[rows] - X[rows] @ beta)
        ViG = [Vi @ g for g in G]
        u = [g @ Py for g in G]
        Viu = [Vi @ ul for ul in u]
        for a in range(L):
            trVG[a] += np.trace(ViG[a])
            GViX = G[a] @ ViX
            B[a] += ViX.T @ GViX
            quad[a] += Py @ u[a]
            XtViu[a] += ViX.T @ u[a]
            for b in range(L):
                trVGVG[a, b] += np.sum(ViG[a] * ViG[b].T)
                D[a, b] += GViX.T @ ViG[b] @ ViX  # X'V^-1 G_a V^-1 G_b V^-1 X
                uVu[a, b] += u[a] @ Viu[b]
    trPG = trVG - np.einsum("ij,aji->a", C, B)
    trPGPG = (trVGVG - np.einsum("ij,abji->ab", C, D) - np.einsum("ij,baji->ab", C, D)
              + np.einsum("ij,ajk,kl,bli->ab", C, B, C, B))
    uPu = uVu - XtViu @ C @ XtViu.T
    T1, T2 = (trPG, trPGPG) if reml else (trVG, trVGVG)
    return -T1 / 2 + quad / 2, T2 / 2 - uPu


#: outermost units with more effect sizes than this are not polished (the optimiser's ~1e-8 is kept)
_POLISH_MAX_ROWS = 1500


def _polish(fit, y, v, X, nested, L, reml):
    """Newton steps on the analytic score from the optimiser's variances; returns the fit at the
    polished optimum and whether the score vanishes there (the fit unchanged if the steps stall)."""
    sizes = pd.Series(nested[0]).value_counts()
    if int(sizes.max()) > _POLISH_MAX_ROWS:  # dense V_j of an outermost unit: O(n_j^2) memory, O(n_j^3) time
        return fit, fit.converged
    clusters = _clusters(nested, L)
    s2 = fit.theta**2
    scale = max(float(np.mean(v)), 1e-300)
    dev = fit.minus2ll
    ok = False
    for _ in range(50):
        g, H = _score(s2, y, v, X, clusters, reml)
        free = ~((s2 <= 0) & (g <= 0))
        if not free.any():
            ok = True
            break
        step = np.zeros(L)
        try:
            step[free] = -np.linalg.solve(H[np.ix_(free, free)], g[free])
        except np.linalg.LinAlgError:
            break
        t, moved = 1.0, False
        for _ls in range(30):
            new = np.maximum(s2 + t * step, 0.0)
            dnew = deviance(np.sqrt(new), fit.cp, reml)
            if dnew <= dev + 1e-10 * max(1.0, abs(dev)):
                moved = True
                break
            t *= 0.5
        if not moved:
            break
        change = np.abs(new - s2)
        s2, dev = new, dnew
        if np.all(change <= 1e-12 * np.maximum(s2, 1e-6 * scale)):
            ok = True
            break
    if not ok:
        return fit, fit.converged
    theta = np.sqrt(s2)
    st = pls(theta, fit.cp)
    return dataclasses.replace(fit, theta=theta, beta=st.beta + fit.beta_shift, vcov_beta=np.linalg.inv(st.RXtRX),
                               minus2ll=float(deviance(theta, fit.cp, reml)), state=st, converged=True), True


def _coef_table(beta, vb, test, k, p, level, names) -> pd.DataFrame:
    """Coefficients with z or t (``k - p`` df, rma.mv's ``dfs = "residual"``) tests and CIs."""
    se = np.sqrt(np.diag(vb))
    stat = beta / se
    if test == "z":
        pval = 2 * stats.norm.sf(np.abs(stat))
    else:
        pval = 2 * stats.t.sf(np.abs(stat), k - p)
    crit = _critical(test, k - p, level)
    return pd.DataFrame({"estimate": beta, "se": se, "statistic": stat, "pvalue": pval, "ci_low": beta - crit * se,
                         "ci_high": beta + crit * se}, index=pd.Index(names, name="term"))


def _fit_statistics(fit, reml, y, v, k, p, L) -> dict:
    """Log-likelihood, deviance, AIC, BIC and AICc as metafor's ``fitstats`` (``p + L`` parameters)."""
    ll = -fit.minus2ll / 2
    if reml:
        dev = -2 * ll
        n = k - p
    else:
        ll_sat = float(np.sum(stats.norm.logpdf(y, y, np.sqrt(v))))
        dev = -2 * (ll - ll_sat)
        n = k
    npar = p + L
    nn = max(n, npar + 2)
    return dict(loglik=ll, deviance=dev, AIC=-2 * ll + 2 * npar, BIC=-2 * ll + np.log(n) * npar,
                AICc=-2 * ll + 2 * npar * nn / (nn - npar - 1))


def _btt_columns(btt, names, info, aliases, int_incl) -> list[int]:
    """Indices of the coefficients tested by QM: all but the intercept by default, else those named
    by ``btt`` (coefficient names, or moderators standing for all their coefficients)."""
    p = len(names)
    if btt is None:
        return list(range(1, p)) if int_incl else list(range(p))
    items = [btt] if isinstance(btt, str) else list(btt) if isinstance(btt, (list, tuple)) else None
    if not items or not all(isinstance(b, str) for b in items):
        raise ScaleupDataError(
            f"multilevel_meta_analysis: btt must be a coefficient or moderator name or a list of them; got {btt!r}."
        )
    by_term = {unaliased(t, aliases): [names.index(c) for c in (unaliased(c, aliases) for c in info.column_names[sl])
                                       if c in names]
               for t, sl in info.term_name_slices.items()}
    cols: list[int] = []
    for b in items:
        if b in names:
            idx = [names.index(b)]
        elif by_term.get(b):
            idx = by_term[b]
        else:
            raise ScaleupDataError(
                f"multilevel_meta_analysis: btt names {b!r}, which is neither a coefficient "
                f"({first_values(names, 12)}) nor a moderator of the model."
            )
        cols += [i for i in idx if i not in cols]
    return sorted(cols)


@checked_inputs
def multilevel_meta_analysis(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    group: list[str] | tuple[str, ...] = ("region", "site"),
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    mods=None,
    btt=None,
) -> MultilevelMetaResult:
    """Random-effects meta-analysis or meta-regression with nested levels (e.g. sites within regions).

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
        Wald z tests, or t tests with ``k - p`` df and an F test of the moderators (metafor's
        ``test = "t"`` with its default ``dfs = "residual"``).
    level : float
        Confidence level.
    mods : list of str or str, optional
        Moderators, as in :func:`meta_regression`: a list of columns (numeric columns enter as they
        are, text/categorical/boolean ones are dummy-coded with the first level as reference) or a
        patsy formula such as ``"~ year + C(setting)"`` (code: write it yourself, never build it
        from names found in data). Rows with a missing moderator are left out with a warning.
    btt : str or list of str, optional
        Coefficients tested by the omnibus test ``QM`` (coefficient names, or moderators standing
        for all their coefficients); default: every coefficient but the intercept.

    Returns
    -------
    MultilevelMetaResult

    Notes
    -----
    Marginal model: ``y ~ N(X beta, V)``, ``V = diag(v_i) + sum_l sigma2_l Z_l Z_l'`` (block diagonal
    over the outermost units); ``X`` is a column of ones without moderators. The log-likelihoods are
    metafor's: ML ``-1/2 (k log 2 pi + log|V| + r'V^{-1}r)``; REML adds ``-1/2 log|X'V^{-1}X| + 1/2 log|X'X|``
    and uses ``k - p`` in the first term. The variances found by the optimiser are polished by Newton
    steps on the analytic score ``g_l = -tr(T G_l)/2 + y'P G_l P y/2`` (``G_l = Z_l Z_l'``,
    ``T = P`` for REML, ``V^{-1}`` for ML; Searle, Casella & McCulloch 1992), which locates the optimum
    to ~1e-12 where a comparison of criterion values stops at ~1e-8 (metafor's default and tight
    controls stop 1e-8 to 1e-4 away, see tests/reference/ref_multilevel.R); outermost units of more
    than 1,500 effect sizes keep the optimiser's ~1e-8 (the score uses each unit's dense ``V_j``). ``b = (X'V^{-1}X)^{-1}X'V^{-1}y``
    with covariance ``(X'V^{-1}X)^{-1}``; ``QM = b_S' V_S^{-1} b_S`` over the tested coefficients
    ``S`` (``btt``), chi-square with ``m = |S|`` df, or ``QM / m`` against F(m, k - p) under
    ``test="t"``. ``QE = sum w_i (y_i - x_i' b_FE)^2`` (``w_i = 1 / v_i``, the fixed-effects fit with
    the moderators), ``k - p`` df.

    The share of heterogeneity at each level is the multilevel I2 of Nakagawa & Santos (2012) as given
    in the metafor documentation (Viechtbauer, "I^2 for multilevel and multivariate models"):
    ``I2_l = 100 sigma2_l / (sum_m sigma2_m + v_typ)`` with the typical sampling variance
    ``v_typ = (k - p) / tr(P)``, ``P = W - W X (X'W X)^{-1} X'W``, ``W = diag(1 / v_i)``.

    Pseudo-R² (moderators only). metafor prints no R² for ``rma.mv``; following Konstantopoulos (2011)
    and the metafor tip on pseudo-R² for ``rma.mv`` models, the model without moderators is fitted
    with the same method and, at each level, ``R2_l = 100 max(0, (sigma2_l,0 - sigma2_l) / sigma2_l,0)``
    (0 when ``sigma2_l,0 = 0``), truncated at 0 as metafor's R² of ``rma.uni``; ``R2_total`` is the
    same on the sums ``sum_l sigma2_l``. A level's R² can be 0 while another's is positive:
    moderators measured at one level explain variance at that level.

    The confidence interval of each ``sigma2_l`` is the profile-likelihood interval (the other
    variances re-estimated at each point), bounded by 0, as ``confint(rma.mv(...))``. Fit statistics
    count ``p + L`` parameters (as ``fitstats``): BIC uses ``log(k - p)`` for REML and AICc
    ``n = max(k - p, p + L + 2)`` (``k`` for ML); the ML deviance is ``-2 (logL - logL_saturated)``.

    References
    ----------
    Konstantopoulos S (2011). Fixed effects and variance components estimation in three-level
    meta-analysis. Research Synthesis Methods 2:61-76.

    Nakagawa S, Santos ESA (2012). Methodological issues and advances in biological meta-analysis.
    Evolutionary Ecology 26:1253-1274.

    Searle SR, Casella G, McCulloch CE (1992). Variance Components. Wiley, chapter 6.

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

    A site-level moderator (the sites' volume) and the pseudo-R² at each level:

    >>> data["volume"] = np.tile([0.5, 1.0, 1.5, 2.0], 6)
    >>> data["yi"] = data["yi"] + 0.2 * data["volume"]
    >>> reg = sa.multilevel_meta_analysis(data, group=["region", "site"], mods=["volume"])
    >>> reg.coef.index.tolist()
    ['intrcpt', 'volume']
    >>> list(reg.R2.index), reg.QM_df
    (['region', 'site'], (1, None))
    """
    group = _check_options(data, yi, vi, group, method, test, level)
    if mods is not None and isinstance(mods, (list, tuple)):
        missing_cols = [m for m in mods if not isinstance(m, str) or m not in data.columns]
        if missing_cols:
            raise ScaleupDataError(
                f"multilevel_meta_analysis: table 'data', argument 'mods': no column(s) {first_values(missing_cols)}. "
                f"Available columns: {first_values(data.columns, 20)}."
            )
    y_all, v_all, keep = _usable_rows(data, yi, vi, group)
    omitted = []
    if (~keep).any():
        omitted.append(f"{rows_text(data.index, ~keep)} left out because of missing {yi!r}, {vi!r} or group identifiers")
    if mods is None:
        names, info, raw_cols, aliases, shown, int_incl = ["intrcpt"], None, (), {}, None, True
        Xa = np.ones((int(keep.sum()), 1))
    else:
        formula, aliases, shown = _formula_from_mods(mods)
        X, info, raw_cols, int_incl = _design(_aliased(data.loc[keep], aliases), formula)
        X.columns = [unaliased(c, aliases) for c in X.columns]
        dropped = data.index[keep].difference(X.index, sort=False)
        if len(dropped):
            bad = data.index.isin(dropped)
            omitted.append(f"{rows_text(data.index, bad)} left out because of missing moderator values")
            keep &= ~bad
        names = list(X.columns)
        Xa = X.to_numpy(dtype=float)
        if Xa.shape[1] == 0:
            raise ScaleupDataError("multilevel_meta_analysis: argument 'mods': the model has no coefficients.")
        try:
            _check_moderator_values(X, Xa)
        except ScaleupDataError as exc:
            raise ScaleupDataError(str(exc).replace("meta_regression:", "multilevel_meta_analysis:", 1)) from None
    if omitted:
        warnings.warn(f"multilevel_meta_analysis: {'; '.join(omitted)}.", RowsOmittedWarning, stacklevel=2)
    y, v = y_all[keep], v_all[keep]
    check_effect_scale(data.index[keep], y, v, yi, vi, "multilevel_meta_analysis")
    labs = data.loc[keep, list(group)].astype(str).reset_index(drop=True)
    k, p = Xa.shape
    L = len(group)
    if k < p + 2:
        raise ScaleupDataError(f"multilevel_meta_analysis: {k} usable effect sizes; need at least {p + 2}.")
    norms = np.linalg.norm(Xa, axis=0)
    sv = np.linalg.svd(Xa / np.where(norms > 0, norms, 1.0), compute_uv=False)
    if mods is not None and (np.any(norms == 0) or sv[-1] <= 1e-7 * sv[0]):
        raise ScaleupDataError(
            f"multilevel_meta_analysis: argument 'mods': the moderator matrix ({', '.join(names)}) is not of full "
            f"rank on the {k} usable rows (a moderator is constant or collinear with others). Drop or merge moderators."
        )
    btt_idx = _btt_columns(btt, names, info, aliases, int_incl) if mods is not None else []
    # nested identifiers: level l is identified by the values of levels[0..l]
    nested = [labs.iloc[:, : l + 1].agg("\x1f".join, axis=1) for l in range(L)]
    n_units = pd.Series([int(s.nunique()) for s in nested], index=list(group), name="n_units")
    if n_units.iloc[0] < 2:
        raise ScaleupDataError(
            f"multilevel_meta_analysis: column {group[0]!r} has a single unit; the outermost level needs "
            "at least 2 units."
        )

    reml = method == "REML"
    with numeric_guard("multilevel_meta_analysis", f"columns {yi!r} and {vi!r}"):
        Q, R = _orthonormal(Xa)
        fit, ok = _fit_nested(y, v, Q, nested, L, reml)
        if not ok:
            warnings.warn(
                f"multilevel_meta_analysis: the {method} optimiser did not converge ({fit.message}). Try "
                "method='ML', or check for levels with a single effect size in every unit.",
                ConvergenceWarning,
                stacklevel=2,
            )
        QE = pls(np.zeros(L), fit.cp).pwrss
        sigma2 = fit.theta**2
        if np.any(fit.theta < 1e-4 * np.sqrt(max(float(np.mean(v)), 1e-300))):
            warnings.warn(
                "multilevel_meta_analysis: a variance component is estimated at 0 (boundary); the model "
                "may be simplified by dropping that level.",
                ScaleupWarning,
                stacklevel=2,
            )
        Rinv = linalg.solve_triangular(R, np.eye(p))
        beta = Rinv @ fit.beta
        vb = Rinv @ fit.vcov_beta @ Rinv.T
        w = 1.0 / v
        QtWQ = (Q * w[:, None]).T @ Q
        trP = float(np.sum(w) - np.trace(np.linalg.solve(QtWQ, (Q * (w * w)[:, None]).T @ Q)))
        typical_v = (k - p) / trP
        I2 = 100 * sigma2 / (np.sum(sigma2) + typical_v)
        ci = np.array([profile_interval(fit, l, level) for l in range(L)]) ** 2
        sigma2_ci = pd.DataFrame({"ci_low": ci[:, 0], "ci_high": ci[:, 1]}, index=pd.Index(list(group), name="group"))
        R2 = pd.Series(np.nan, index=list(group), name="R2")
        R2_total = math.nan
        sigma2_0 = pd.Series(np.nan, index=list(group), name="sigma2_nomods")
        if mods is not None and int_incl:
            fit0, _ = _fit_nested(y, v, np.full((k, 1), 1 / np.sqrt(k)), nested, L, reml)
            s0 = fit0.theta**2
            sigma2_0[:] = s0
            with np.errstate(invalid="ignore", divide="ignore"):
                R2[:] = np.where(s0 > 0, 100 * np.maximum(0.0, (s0 - sigma2) / s0), 0.0)
            R2_total = 0.0 if s0.sum() == 0 else 100 * max(0.0, float((s0.sum() - sigma2.sum()) / s0.sum()))
    coef = _coef_table(beta, vb, test, k, p, level, names)
    dfree = np.inf if test == "z" else float(k - p)
    m = len(btt_idx)
    QM, QM_df, QM_p = math.nan, (m, None if test == "z" else k - p), math.nan
    if m:
        sub = beta[btt_idx]
        QM = float(sub @ np.linalg.solve(vb[np.ix_(btt_idx, btt_idx)], sub))
        if test == "z":
            QM_p = float(stats.chi2.sf(QM, m))
        else:
            QM = QM / m
            QM_p = float(stats.f.sf(QM, m, k - p))
    row = coef.iloc[0] if mods is None else pd.Series(math.nan, index=coef.columns)
    return MultilevelMetaResult(
        method=method, test=test, group=group, k=k, n_units=n_units, estimate=float(row["estimate"]),
        se=float(row["se"]), statistic=float(row["statistic"]), df=dfree, pvalue=float(row["pvalue"]),
        ci_low=float(row["ci_low"]), ci_high=float(row["ci_high"]),
        sigma2=pd.Series(sigma2, index=list(group), name="sigma2"), sigma2_ci=sigma2_ci,
        I2=pd.Series(I2, index=list(group), name="I2"), typical_v=typical_v, QE=QE,
        QE_pvalue=float(stats.chi2.sf(QE, k - p)), **_fit_statistics(fit, reml, y, v, k, p, L),
        converged=ok, level=level, formula=shown, p=p, coef=coef,
        vcov=pd.DataFrame(vb, index=coef.index, columns=coef.index), QM=QM, QM_df=QM_df, QM_pvalue=QM_p,
        btt=tuple(names[i] for i in btt_idx), QE_df=k - p, sigma2_nomods=sigma2_0, R2=R2, R2_total=R2_total,
        _design_info=info, _columns=tuple(raw_cols), _aliases=aliases,
    )  # fmt: skip


def _fit_nested(y, v, Q, nested, L, reml):
    """(RE)ML fit of the nested model on the orthonormal design ``Q``, polished on the score."""
    cp = _nested_crossprods(y, v, nested, L, Q)
    # start: split the excess variance equally across levels
    excess = max(float(np.var(y, ddof=1)) - float(np.mean(v)), 0.01 * float(np.var(y, ddof=1)) + 1e-8)
    fit = fit_lmm(cp, reml=reml, theta0=np.full(L, np.sqrt(excess / L)))
    return _polish(fit, y, v, Q, nested, L, reml)
