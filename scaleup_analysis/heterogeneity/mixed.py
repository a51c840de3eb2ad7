"""Linear and binomial mixed models for site-level heterogeneity (lme4 / lmerTest in Python).

:func:`mixed_model` fits ``y ~ fixed + (random | site)`` with one grouping factor:

* ``family="gaussian"``: REML or ML exactly as ``lme4::lmer`` (profiled deviance, relative covariance
  factor ``Lambda(theta)``), evaluated from per-site cross-products by the shared engine
  :mod:`scaleup_analysis.engines.reml` (cost independent of the number of rows), with
  Satterthwaite denominator degrees of freedom as ``lmerTest``;
* ``family="binomial"`` (logit link, 0/1 outcome or events/trials): Laplace approximation as
  ``lme4::glmer(..., nAGQ = 1)`` (:mod:`scaleup_analysis.engines.laplace`; random intercept, or correlated intercept and slopes), with Wald z
  tests and, for random-intercept models, the median odds ratio.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .._checks import check_matrix_values, check_mixed_args, check_spread, checked_inputs, first_values, rows_text
from .._display import Displayed, num_cell, p_cell, text_table
from .._style import styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..engines.laplace import fit_laplace_glmm
from ..engines.reml import (
    crossprods_from_rows, fit_lmm_from_crossprods, lambda_from_theta, satterthwaite, unstructured_lind,
)
from ..narrative import Text
from ._scale import MAX_ABS, numeric_guard

#: smallest spread (max - min) of a non-constant outcome or design column: the variances of the fit are
#: of the order of its square, and their squares (Satterthwaite's ``V^2``) must stay above the smallest
#: double (the mirror of ``MAX_ABS``)
MIN_SPREAD = 1e-50

__all__ = ["mixed_model", "MixedModelResult"]

_SINGULAR_TOL = 1e-4  # lme4::isSingular default tolerance on theta


# --------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class MixedModelResult(Displayed):
    """Result of :func:`mixed_model`.

    Attributes
    ----------
    fixed : DataFrame
        One row per fixed-effect term: ``estimate, se, statistic, df, pvalue, ci_low, ci_high``
        (``statistic`` is t with Satterthwaite ``df`` for Gaussian models, Wald z with ``df = inf``
        for binomial models).
    variance_components : DataFrame
        As ``as.data.frame(VarCorr(fit))``: ``group, term1, term2, variance, sd, corr`` (variances,
        then covariances with their correlation, then the residual for Gaussian models).
    random_effects : DataFrame
        Conditional modes (BLUPs) per group (e.g. site) and random term with their conditional SDs
        (``ranef(fit, condVar = TRUE)``) and Wald intervals ``estimate -/+ z se`` (``z`` the normal
        ``(1 + level) / 2`` quantile).
    loglik, AIC, BIC : float
        Log-likelihood (REML criterion / -2 for REML fits, as ``logLik()`` in lme4), AIC and BIC.
    sigma2 : float
        Residual variance (``nan`` for binomial models).
    tau2 : float
        Variance of the random intercept (``nan`` if the model has none).
    icc : float
        Random-intercept models only: ``tau2 / (tau2 + sigma2)`` (Gaussian) or the latent-scale
        ``tau2 / (tau2 + pi^2 / 3)`` (binomial); ``nan`` otherwise.
    mor : float
        Binomial random-intercept models: median odds ratio ``exp(sqrt(2 tau2) * qnorm(0.75))``.
    theta : ndarray
        lme4's variance parameters (elements of the relative Cholesky factor).
    """

    family: str
    method: str
    formula: str
    group: str
    re_terms: tuple[str, ...]
    fixed: pd.DataFrame
    vcov: pd.DataFrame
    variance_components: pd.DataFrame
    random_effects: pd.DataFrame
    sigma2: float
    tau2: float
    icc: float
    mor: float
    theta: np.ndarray
    loglik: float
    AIC: float
    BIC: float
    n_obs: int
    n_groups: int
    converged: bool
    singular: bool
    level: float
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table (one row per parameter), in the style of ``broom.mixed::tidy``.

        Columns: ``type`` (``"fixed"`` or ``"ran_pars"``: broom.mixed's ``effect``), ``group``, ``term``, ``estimate``,
        ``se``, ``statistic``, ``df``, ``pvalue``, ``ci_low``, ``ci_high``. Random-effect parameters
        are reported as ``var__term``, ``cov__term1.term2`` and ``var__Residual``.
        """
        fe = self.fixed.reset_index().rename(columns={"index": "term"})
        fe.insert(0, "type", "fixed")
        fe.insert(1, "group", "")
        rows = []
        for r in self.variance_components.itertuples(index=False):
            if r.group == "Residual":
                term = "var__Residual"
            elif r.term2 == "":
                term = f"var__{r.term1}"
            else:
                term = f"cov__{r.term1}.{r.term2}"
            rows.append({"type": "ran_pars", "group": r.group, "term": term, "estimate": r.variance})
        out = pd.concat([fe, pd.DataFrame(rows)], ignore_index=True)
        return out[["type", "group", "term", "estimate", "se", "statistic", "df", "pvalue", "ci_low", "ci_high"]]

    def _repr_fields(self) -> dict:
        out = {"family": self.family, "method": self.method, "formula": self.formula, "group": self.group,
               "n_obs": self.n_obs, "n_groups": self.n_groups, "tau2": self.tau2, "sigma2": self.sigma2,
               "icc": self.icc}
        if np.isfinite(self.mor):
            out["mor"] = self.mor
        return out

    def _summary(self, tx) -> str:
        """The model in the layout of ``summary(lmer(...))``, labels in the report language."""
        random = " + ".join("1" if t == "Intercept" else t for t in self.re_terms)
        model = f"{self.formula} + ({random} | {self.group})"
        head = (tx("Linear mixed model ({method}): {model}", method=self.method, model=model)
                if self.family == "gaussian" else
                tx("Binomial mixed model (logit link, {method}): {model}", method=self.method, model=model))
        lines = [
            head,
            tx("  Observations: {n}   groups ({group}): {g}", n=tx.int(self.n_obs), group=self.group,
               g=tx.int(self.n_groups)),
            tx("  logLik: {ll}   AIC: {aic}   BIC: {bic}", ll=tx.num(self.loglik, 4), aic=tx.num(self.AIC, 4),
               bic=tx.num(self.BIC, 4)),
        ]
        if self.singular:
            lines.append(tx("  Boundary (singular) fit: a variance component is estimated at 0"))
        if not self.converged:
            lines.append(tx("  Warning: the optimiser did not converge"))
        vc_rows = []
        for r in self.variance_components.itertuples(index=False):
            group = tx("Residual") if r.group == "Residual" else str(r.group)
            vc_rows.append([group, str(r.term1), str(r.term2), num_cell(tx, r.variance), num_cell(tx, r.sd),
                            num_cell(tx, r.corr, 2)])
        lines += ["", tx("Random effects:"),
                  text_table([tx("group"), tx("term"), tx("with"), tx("variance"), tx("SD"), tx("correlation")],
                             vc_rows, left=(0, 1, 2))]
        if np.isfinite(self.icc):
            lines.append(tx("  ICC: {v}", v=tx.num(self.icc, 4)))
        if np.isfinite(self.mor):
            lines.append(tx("  Median odds ratio (MOR): {v}", v=tx.num(self.mor, 4)))
        stat = "t" if self.family == "gaussian" else "z"
        level = tx.pct(self.level)
        fe_rows = [[str(term), tx.num(r["estimate"], 4), tx.num(r["se"], 4), tx.num(r["statistic"], 3),
                    tx.num(r["df"], 1) if np.isfinite(r["df"]) else "-", p_cell(tx, r["pvalue"]),
                    tx("[{low}, {high}]", low=tx.num(r["ci_low"], 4), high=tx.num(r["ci_high"], 4))]
                   for term, r in self.fixed.iterrows()]
        lines += ["", tx("Fixed effects:"),
                  text_table([tx("term"), tx("estimate"), tx("SE"), stat, tx("df"), "p", tx("{level} CI", level=level)],
                             fe_rows)]
        return "\n".join(lines)

    @styled
    def plot_caterpillar(self, term: str | None = None, *, sites: pd.DataFrame | None = None, ax=None):
        """Caterpillar plot: the groups' (sites') effects of one random term, ordered, with their intervals.

        Up to 40 groups every group is named on the axis; beyond, the groups are drawn as ordered
        points without per-group labels (the figure stays 8 inches high for 120 sites) and the 5
        lowest and 5 highest are named beside the plot. Points are coloured by where their interval
        lies: above the average (0), below it, or across it; with ``sites`` and at most 8 regions,
        by region instead.

        Parameters
        ----------
        term : str, optional
            Random term (default: the first, usually ``"Intercept"``).
        sites : pandas.DataFrame, optional
            The ``sites`` table (``site_id``, ``rss_code``): names the region of each labelled site
            (``Estrie (05)``) and colours the points by region when there are at most 8 regions.
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        from ._caterpillar import draw_caterpillar

        re = self.random_effects
        term = self.re_terms[0] if term is None else term
        if term not in set(re["term"]):
            raise ScaleupDataError(
                f"plot_caterpillar: term {term!r} is not a random term of this model; "
                f"choose one of {list(self.re_terms)}."
            )
        return draw_caterpillar(re[re["term"] == term].sort_values("estimate", kind="stable"), term=term,
                                group=self.group, method=self.method, level=self.level, sites=sites, ax=ax,
                                tx=Text())


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------
def _parse_re_formula(re_formula: str | None) -> str:
    if re_formula is None:
        return "1"
    if not isinstance(re_formula, str) or not re_formula.strip():
        raise ScaleupDataError(
            f"mixed_model: re_formula must be None, '1' or a string such as '1 + x', got {re_formula!r}."
        )
    s = re_formula.strip()
    if s.startswith("~"):
        s = s[1:].strip()
    if "|" in s:
        raise ScaleupDataError(
            f"mixed_model: re_formula={re_formula!r} must not contain '|': give the grouping column "
            "as group='site' and the random terms as re_formula='1 + x'."
        )
    return s


def _design(data: pd.DataFrame, formula: str, re_formula: str, group: str, trials: str | None):
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"mixed_model: data must be a pandas DataFrame, got {type(data).__name__}.")
    if not isinstance(formula, str) or "~" not in formula:
        raise ScaleupDataError(
            f"mixed_model: formula must be a patsy formula such as 'y ~ x + C(arm)', got {formula!r}."
        )
    for arg, col in (("group", group), ("trials", trials)):
        if col is None and arg == "trials":
            continue
        if not isinstance(col, str) or col not in data.columns:
            cols = ", ".join(map(repr, list(data.columns)[:12]))
            raise ScaleupDataError(
                f"mixed_model: column {col!r} (argument {arg!r}) is not in data. Available columns: {cols}."
            )
    frame = data.reset_index(drop=True)
    try:
        y, X = patsy.dmatrices(formula, frame, NA_action="drop", return_type="dataframe")
        Z = patsy.dmatrix(re_formula, frame, NA_action="drop", return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"mixed_model: cannot build the design from formula={formula!r} / re_formula={re_formula!r}: "
            f"{exc}. Check that every variable is a column of data."
        ) from exc
    if y.shape[1] != 1:
        raise ScaleupDataError(
            f"mixed_model: the outcome of {formula!r} must be one numeric column (got {y.shape[1]} columns; "
            "is it a string column?). For events/trials use family='binomial' with trials='n'."
        )
    keep = frame.index.isin(y.index) & frame.index.isin(Z.index) & frame[group].notna().to_numpy()
    if trials is not None:
        keep &= pd.to_numeric(frame[trials], errors="coerce").notna().to_numpy()
    n_drop = int((~keep).sum())
    if n_drop:
        warnings.warn(
            f"mixed_model: {rows_text(data.index, ~keep)} left out because of missing values in the "
            f"outcome, covariates, {group!r}" + (f" or {trials!r}" if trials else "") + ".",
            RowsOmittedWarning,
            stacklevel=3,
        )
    idx = frame.index[keep]
    yv = y.loc[idx].to_numpy(dtype=float)[:, 0]
    Xm = X.loc[idx]
    Zm = Z.loc[idx]
    g = frame.loc[idx, group]
    tr = None if trials is None else pd.to_numeric(frame.loc[idx, trials]).to_numpy(dtype=float)
    _check_values(yv, Xm, Zm, y.columns[0], data.index[keep])
    return yv, Xm, Zm, g, tr, data.index[keep]


def _check_values(y: np.ndarray, X: pd.DataFrame, Z: pd.DataFrame, outcome: str, index) -> None:
    """Refuse infinite or astronomically large outcome / design values (they overflow the fit), and
    columns whose values differ by less than :data:`MIN_SPREAD` (their squares underflow)."""
    for what, arr, names in (("the outcome", y[:, None], [outcome]), ("the fixed effects", X.to_numpy(float), X.columns),
                             ("the random terms", Z.to_numpy(float), Z.columns)):
        check_matrix_values(arr, names, index, f"mixed_model: table 'data', {what}", max_abs=MAX_ABS)
        if not len(arr):
            continue
        for name, col in zip(names, arr.T):
            check_spread(col, f"mixed_model: table 'data', {what} ({name!r})", f"the {rows_text(index, label='first:')} used",
                         min_spread=MIN_SPREAD, consequence=" and the fit would fail")


# --------------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------------
@checked_inputs
def mixed_model(
    data: pd.DataFrame,
    formula: str,
    group: str,
    re_formula: str | None = None,
    family: str = "gaussian",
    reml: bool = True,
    level: float = 0.95,
    trials: str | None = None,
) -> MixedModelResult:
    """Fit a linear (REML/ML) or binomial (Laplace) mixed model with site random effects.

    Parameters
    ----------
    data : DataFrame
        Long-format data, one row per observation (e.g. patient or site-period).
    formula : str
        Fixed effects as a patsy formula, e.g. ``"y ~ period + C(arm)"``.
    group : str
        Column of the grouping factor (e.g. ``"site_id"``).
    re_formula : str, optional
        Random terms per group: ``None`` or ``"1"`` for a random intercept (lme4 ``(1 | site)``),
        ``"1 + x"`` (or ``"~ 1 + x"``) for correlated random intercept and slope with unstructured
        covariance (lme4 ``(1 + x | site)``), for both families.
    family : {"gaussian", "binomial"}
        ``"binomial"`` uses the logit link; the outcome is 0/1, or a count of events when
        ``trials`` names the column of the number of trials.
    reml : bool
        Gaussian models: REML (default, as ``lmer``) or ML. Ignored for binomial models (Laplace).
    level : float
        Confidence level of the intervals.
    trials : str, optional
        Binomial models: column with the number of trials (the outcome is then the number of events).

    Returns
    -------
    MixedModelResult

    Notes
    -----
    Gaussian models maximise lme4's profiled (RE)ML criterion
    ``ldL2 + ldRX2 + (n - p)(1 + log(2 pi pwrss / (n - p)))`` over ``theta`` (elements of the lower
    Cholesky factor of ``Cov(b_j) / sigma^2``, diagonal >= 0), computed from per-site cross-products
    (Bates et al. 2015), so each evaluation costs O(sites x q^3 + p^3) whatever the number of rows;
    the same fit can be run from per-site summaries alone with
    ``scaleup_analysis.engines.reml.fit_lmm_from_crossprods``. The t tests use Satterthwaite's df as lmerTest: ``2 V^2 / (g' A g)``, with
    ``A = 2 H^{-1}`` from the Hessian ``H`` of the deviance in ``(theta, sigma)`` and ``g`` the gradient
    of the variance ``V`` of the coefficient (Kuznetsova, Brockhoff & Christensen 2017). Binomial
    models maximise the Laplace approximation of ``lme4::glmer(nAGQ = 1)`` over ``(theta, beta)``;
    standard errors come from the Hessian of that deviance (lme4's default ``use.hessian = TRUE``).
    The site effects are conditional modes with conditional SDs, ignoring the uncertainty of the
    fixed effects, as ``ranef(fit, condVar = TRUE)``. A variance estimated at the boundary (theta < 1e-4)
    raises a :class:`~scaleup_analysis.ScaleupWarning` "boundary (singular) fit" as lme4.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
    Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01

    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in linear mixed
    effects models. Journal of Statistical Software 82(13). doi:10.18637/jss.v082.i13

    Merlo J et al. (2006). A brief conceptual tutorial of multilevel analysis in social epidemiology:
    using measures of clustering in multilevel logistic regression. JECH 60(4):290-297.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(1)
    >>> site = np.repeat(np.arange(8), 10)
    >>> data = pd.DataFrame({"site": site, "x": rng.normal(size=80)})
    >>> data["y"] = 1 + 0.5 * data["x"] + rng.normal(size=8)[site] + rng.normal(size=80)
    >>> res = sa.mixed_model(data, "y ~ x", group="site")
    >>> res.fixed.columns.tolist()
    ['estimate', 'se', 'statistic', 'df', 'pvalue', 'ci_low', 'ci_high']
    >>> round(res.icc, 2) > 0
    True
    """
    check_mixed_args("mixed_model", family, level, reml)
    if trials is not None and family != "binomial":
        raise ScaleupDataError("mixed_model: trials= is only used with family='binomial'.")
    ref = _parse_re_formula(re_formula)
    y, X, Z, g, tr, index = _design(data, formula, ref, group, trials)
    n, p = X.shape
    q = Z.shape[1]
    codes, uniq = pd.factorize(g, sort=True)
    G = len(uniq)
    xnames = list(X.columns)
    znames = list(Z.columns)
    if q == 0:
        raise ScaleupDataError(f"mixed_model: re_formula={re_formula!r} gives no random term.")
    if G < 2:
        raise ScaleupDataError(
            f"mixed_model: column {group!r} (argument 'group') has {G} distinct value(s) among the rows "
            "used; a random-effects model needs at least 2 groups (sites)."
        )
    if np.linalg.matrix_rank(X.to_numpy()) < p:
        raise ScaleupDataError(
            f"mixed_model: the fixed-effects design of {formula!r} is rank deficient (collinear or "
            "constant columns among " + ", ".join(xnames) + "). Drop or merge the redundant terms."
        )
    if family == "gaussian" and n <= p + 1:
        raise ScaleupDataError(f"mixed_model: {n} usable rows for {p} fixed effects; need more rows.")
    _check_identifiable(y, X, family, tr, n, G, q, group, formula, re_formula)

    if family == "gaussian":
        with numeric_guard("mixed_model", f"the columns of {formula!r}"):
            fit = _fit_gaussian(y, X, Z, codes, G, reml)
            return gaussian_result(fit, n=n, groups=uniq, xnames=xnames, znames=znames, formula=formula,
                                   group=group, reml=reml, level=level)
    with numeric_guard("mixed_model", f"the columns of {formula!r}"):
        return _fit_binomial(y, X, Z, codes, uniq, tr, index, formula, group, level, xnames, znames)


def _check_identifiable(y, X, family, tr, n, G, q, group, formula, re_formula) -> None:
    """lme4's checks that the variance components can be told apart, and a non-degenerate outcome.

    As ``lmer`` (``check.nobs.vs.nlev`` and ``check.nobs.vs.nRE``, both "stop"): a Gaussian model
    needs fewer groups than rows and fewer random effects (groups x terms) than rows, otherwise the
    group variance and the residual variance are not separately identifiable. ``glmer`` allows as
    many groups (random effects) as rows (its ``allow.n = TRUE``): a binomial row carries its own
    sampling variance.
    """
    outcome = formula.split("~")[0].strip()
    too_many = (G > n or G * q > n) if family == "binomial" else (G >= n or G * q >= n)
    if too_many:
        terms = "(1 | {0})".format(group) if q == 1 else f"({re_formula} | {group})"
        raise ScaleupDataError(
            f"mixed_model: {n} usable row(s) for {G} groups in column {group!r} (argument 'group') and "
            f"{G * q} random effects {terms}: the number of levels of each grouping factor must be < "
            "the number of observations (lme4: check.nobs.vs.nlev / check.nobs.vs.nRE), otherwise the "
            "group variance and the residual variance are not separately identifiable. With one row per "
            "group, fit an ordinary regression, or add rows (e.g. one per period) for each group."
        )
    if family == "binomial":
        m = np.ones_like(y) if tr is None else tr
        if np.all(y <= 0) or np.all(y >= m):
            which = "no event" if np.all(y <= 0) else "only events"
            raise ScaleupDataError(
                f"mixed_model(family='binomial'): the outcome {outcome!r} has {which} in all {n} usable "
                "rows; a logistic model is undefined without both outcomes (its intercept is infinite). "
                "Check the outcome column, or report the proportion directly."
            )
        return
    if np.ptp(y) == 0:
        raise ScaleupDataError(
            f"mixed_model: the outcome {outcome!r} is constant ({first_values(y[:1])} in all {n} usable "
            "rows); its variance components are undefined without variation. Check the outcome column."
        )
    Xa = X.to_numpy(dtype=float)
    beta, *_ = np.linalg.lstsq(Xa, y, rcond=None)
    resid = y - Xa @ beta
    if np.max(np.abs(resid)) <= 1e-10 * np.max(np.abs(y - y.mean())):
        raise ScaleupDataError(
            f"mixed_model: the outcome {outcome!r} is an exact linear function of the fixed effects "
            f"({', '.join(X.columns)}) in all {n} usable rows: no residual variation is left for the "
            "variance components. Check that the outcome is not computed from a covariate."
        )


def _vc_frame(group, znames, T, sigma2):
    """Variance components (as.data.frame(VarCorr)) from the lower factor ``T`` of Cov(b)/sigma^2."""
    cov = sigma2 * (T @ T.T)
    sd = np.sqrt(np.diag(cov))
    rows = [{"group": group, "term1": znames[i], "term2": "", "variance": cov[i, i], "sd": sd[i], "corr": np.nan}
            for i in range(len(znames))]
    for j in range(len(znames)):
        for i in range(j + 1, len(znames)):
            corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
            rows.append({"group": group, "term1": znames[j], "term2": znames[i], "variance": cov[i, j],
                         "sd": np.nan, "corr": corr})
    return rows


def _site_frame(uniq, znames, b, V, level):
    z = stats.norm.ppf(0.5 + level / 2)
    out = []
    for k, name in enumerate(znames):
        se = np.sqrt(np.maximum(V[:, k, k], 0.0))
        out.append(pd.DataFrame({"group": list(uniq), "term": name, "estimate": b[:, k], "se": se,
                                 "ci_low": b[:, k] - z * se, "ci_high": b[:, k] + z * se}))
    return pd.concat(out, ignore_index=True)


def _fit_gaussian(y, X, Z, codes, G, reml):
    """lme4's (RE)ML fit from the rows, through their per-site cross-products."""
    Xa, Za = X.to_numpy(dtype=float), Z.to_numpy(dtype=float)
    ZtZ, ZtX, Zty, XtX, Xty, yty = crossprods_from_rows(y, Xa, Za, codes, G)
    return fit_lmm_from_crossprods(ZtZ, ZtX, Zty, XtX, Xty, yty, y.size, reml=reml)


def gaussian_result(fit, *, n, groups, xnames, znames, formula, group, reml, level, fn="mixed_model"):
    """:class:`MixedModelResult` of a Gaussian fit (:func:`~scaleup_analysis.engines.reml.fit_lmm_from_crossprods`).

    Shared by :func:`mixed_model` (rows) and ``summarize.mixed_model_from_summary`` (per-site
    sums): issues the non-convergence and singular-fit warnings (``fn`` names the caller; the
    warnings point at the caller's caller, so call this directly from the public function) and
    assembles fixed effects with Satterthwaite df, variance components, site effects and the
    information criteria.
    """
    method = "REML" if reml else "ML"
    G, q, p = len(groups), len(znames), len(xnames)
    lind, lower = unstructured_lind(q)
    singular = bool(np.any(fit.theta[np.isfinite(lower)] < _SINGULAR_TOL))
    notes = []
    if not fit.converged:
        warnings.warn(
            f"{fn}: the {method} optimiser did not converge ({fit.message}). Try rescaling "
            "covariates (centre/scale x), simplifying re_formula, or checking for sites with a single row.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if singular:
        warnings.warn(
            f"{fn}: boundary (singular) fit: a variance component is estimated at 0 (or the random "
            "effects are perfectly correlated). Consider simplifying re_formula.",
            ScaleupWarning,
            stacklevel=3,
        )
        notes.append("boundary (singular) fit")
    sigma2 = fit.sigma**2
    se = np.sqrt(np.diag(fit.vcov_beta))
    tval = fit.beta / se
    dfs, _ = satterthwaite(fit)
    pval = 2 * stats.t.sf(np.abs(tval), dfs)
    tq = stats.t.ppf(0.5 + level / 2, dfs)
    fe = pd.DataFrame(
        {"estimate": fit.beta, "se": se, "statistic": tval, "df": dfs, "pvalue": pval,
         "ci_low": fit.beta - tq * se, "ci_high": fit.beta + tq * se},
        index=pd.Index(xnames, name="term"),
    )
    T = lambda_from_theta(fit.theta, lind)
    vc = _vc_frame(group, znames, T, sigma2)
    vc.append({"group": "Residual", "term1": "", "term2": "", "variance": sigma2, "sd": fit.sigma, "corr": np.nan})
    vc = pd.DataFrame(vc)
    b, V = fit.ranef()[0]
    tau2 = float((sigma2 * (T @ T.T))[0, 0]) if znames[0] == "Intercept" else np.nan
    icc = tau2 / (tau2 + sigma2) if (q == 1 and znames == ["Intercept"]) else np.nan
    npar = p + fit.theta.size + 1
    ll = -fit.minus2ll / 2
    return MixedModelResult(
        family="gaussian", method=method, formula=formula, group=group, re_terms=tuple(znames),
        fixed=fe, vcov=pd.DataFrame(fit.vcov_beta, index=xnames, columns=xnames),
        variance_components=vc, random_effects=_site_frame(groups, znames, b, V, level),
        sigma2=sigma2, tau2=tau2, icc=icc, mor=np.nan, theta=fit.theta, loglik=ll,
        AIC=-2 * ll + 2 * npar, BIC=-2 * ll + np.log(n) * npar, n_obs=n, n_groups=G,
        converged=fit.converged, singular=singular, level=level, notes=tuple(notes),
    )


def _separation_direction(Xa: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray | None:
    r"""Direction of (quasi-)complete separation of a binomial outcome by the fixed effects, or None.

    Linear-programming check of Konis (2007): with :math:`s_i = +1` for observations with events
    and :math:`-1` for observations with non-events (a binomial row with both gives both
    constraints), the data are separated iff some :math:`\beta \ne 0` satisfies
    :math:`s_i x_i'\beta \ge 0` for all rows with at least one strict inequality. We maximise
    :math:`\sum_i s_i x_i'\beta` over the box :math:`[-1, 1]^p`; a positive optimum means the
    maximum-likelihood estimate is at infinity along the returned direction.
    """
    from scipy.optimize import linprog

    pos, neg = y > 0, y < m
    S = np.vstack([Xa[pos], -Xa[neg]])
    scale = np.maximum(np.abs(S).max(axis=0), 1e-12)  # column scaling keeps the LP well conditioned
    S = S / scale
    res = linprog(-S.sum(axis=0), A_ub=-S, b_ub=np.zeros(S.shape[0]), bounds=[(-1, 1)] * S.shape[1],
                  method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * S.shape[0]:
        return None
    return res.x / scale


def _fit_binomial(y, X, Z, codes, uniq, tr, index, formula, group, level, xnames, znames):
    Xa, Za = X.to_numpy(dtype=float), Z.to_numpy(dtype=float)
    n, p, G, q = Xa.shape[0], Xa.shape[1], len(uniq), Za.shape[1]
    m = np.ones(n) if tr is None else tr
    bad = ~np.isfinite(y) | (y < 0) | (y > m) | (np.abs(y - np.round(y)) > 1e-8) | (m <= 0) | (
        np.abs(m - np.round(m)) > 1e-8)
    if bad.any():
        what = "0/1 values" if tr is None else "integer events with 0 <= events <= trials (trials > 0, integer)"
        raise ScaleupDataError(
            f"mixed_model(family='binomial'): the outcome of {formula!r} must be {what}; "
            f"{rows_text(index, bad)} are not. Fix these rows"
            + (" or pass trials='n' for events/trials data." if tr is None else ".")
        )
    direction = _separation_direction(Xa, y, m)
    if direction is not None:
        terms = [name for name, d in zip(xnames, direction) if abs(d) > 1e-9]
        warnings.warn(
            f"mixed_model(family='binomial'): the outcome of {formula!r} is (quasi-)completely "
            f"separated by the fixed effects (involving {', '.join(terms)}): some cells have events "
            "only or non-events only, so the maximum-likelihood estimates of these terms are "
            "infinite and the finite values returned, with their standard errors, are not "
            "interpretable. Merge or remove the term, or use a penalised (Firth-type) model.",
            ScaleupWarning,
            stacklevel=3,
        )
    fit = fit_laplace_glmm(y, m, Xa, Za, codes, G)
    theta, beta, vcov = fit.theta, fit.beta, fit.vcov
    singular = bool(np.any(theta[np.isfinite(fit.model.lower)] < _SINGULAR_TOL))
    if not fit.converged:
        warnings.warn(
            f"mixed_model(family='binomial'): the Laplace optimiser did not converge ({fit.message}). Try "
            "rescaling covariates, merging sparse categories, or removing sites without events.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if singular:
        warnings.warn(
            "mixed_model: boundary (singular) fit: a site variance is estimated at 0 (or the random "
            "effects are perfectly correlated). Consider simplifying re_formula.",
            ScaleupWarning,
            stacklevel=3,
        )
    se = np.sqrt(np.diag(vcov))
    zval = beta / se
    zq = stats.norm.ppf(0.5 + level / 2)
    fe = pd.DataFrame(
        {"estimate": beta, "se": se, "statistic": zval, "df": np.inf, "pvalue": 2 * stats.norm.sf(np.abs(zval)),
         "ci_low": beta - zq * se, "ci_high": beta + zq * se},
        index=pd.Index(xnames, name="term"),
    )
    b, V, Lam = fit.ranef()
    vc = pd.DataFrame(_vc_frame(group, znames, Lam, 1.0))
    intercept_only = q == 1 and znames == ["Intercept"]
    tau2 = float((Lam @ Lam.T)[0, 0]) if znames[0] == "Intercept" else np.nan
    ll = -fit.deviance / 2
    npar = p + theta.size
    return MixedModelResult(
        family="binomial", method="Laplace", formula=formula, group=group, re_terms=tuple(znames),
        fixed=fe, vcov=pd.DataFrame(vcov, index=xnames, columns=xnames), variance_components=vc,
        random_effects=_site_frame(uniq, znames, b, V, level), sigma2=np.nan, tau2=tau2,
        icc=tau2 / (tau2 + np.pi**2 / 3) if intercept_only else np.nan,
        mor=float(np.exp(np.sqrt(2 * tau2) * stats.norm.ppf(0.75))) if intercept_only else np.nan,
        theta=theta, loglik=ll, AIC=-2 * ll + 2 * npar, BIC=-2 * ll + np.log(n) * npar,
        n_obs=n, n_groups=G, converged=fit.converged, singular=singular, level=level,
    )
