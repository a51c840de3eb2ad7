"""Linear, binomial and Poisson mixed models for site-level heterogeneity (lme4 / lmerTest in Python).

:func:`mixed_model` fits ``y ~ fixed + (random | site)`` with one grouping factor, and models
with several random terms written in the formula as lme4 (crossed ``(1 | site) + (1 | period)``,
nested ``(1 | region/site)``, uncorrelated ``(1 + x || site)``; parsed by :mod:`._reterms`, fitted by
:mod:`scaleup_analysis.engines.terms`):

* ``family="gaussian"``: REML or ML exactly as ``lme4::lmer`` (profiled deviance, relative covariance
  factor ``Lambda(theta)``), evaluated from per-site cross-products by the shared engine
  :mod:`scaleup_analysis.engines.reml` (cost independent of the number of rows), with
  Satterthwaite denominator degrees of freedom as ``lmerTest``;
* ``family="binomial"`` (logit or probit link, 0/1 outcome or events/trials) and ``family="poisson"``
  (log link, counts, ``offset`` such as the log of person-time): Laplace approximation as
  ``lme4::glmer(..., nAGQ = 1)`` or adaptive Gauss-Hermite quadrature (``nagq > 1``, one random
  intercept) by :mod:`scaleup_analysis.engines.glmm` (one grouping factor: exact gradient, identical
  rows merged) and :mod:`scaleup_analysis.engines.glmm_terms` (several terms), with Wald z tests and,
  for random-intercept models, the median odds ratio (logit) or median rate ratio (log).
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
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..engines import FitError
from ..engines.glmm import FAMILIES
from ..engines.glmm_terms import fit_terms_glmm
from ..engines.terms import MAX_DENSE, Term, fit_terms_lmm
from ..engines.reml import (
    crossprods_from_rows, fit_lmm_from_crossprods, lambda_from_theta, satterthwaite, unstructured_lind,
)
from ..narrative import Text
from ._glmm import check_outcome, fit_glmm_fields, fixed_table, warn_fit, warn_separation
from ._reterms import ReTerm, has_bars, split_formula
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
def _term_text(znames, group: str) -> str:
    """lme4's writing of a random term from its design columns: ``(1 + x | site)``, ``(0 + x | site)``."""
    lhs = " + ".join("1" if z == "Intercept" else z for z in znames)
    return f"({lhs} | {group})" if "Intercept" in znames else f"(0 + {lhs} | {group})"


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
        ``tau2 / (tau2 + pi^2 / 3)`` (logit) or ``tau2 / (tau2 + 1)`` (probit); ``nan`` otherwise
        (Poisson: no latent residual variance).
    mor : float
        Random-intercept logit models: median odds ratio ``exp(sqrt(2 tau2) * qnorm(0.75))``; log-link
        (Poisson) models: the median rate ratio, same formula (Merlo et al. 2006); ``nan`` otherwise.
    link, nagq : str, int
        Link function (``""`` for Gaussian models) and number of quadrature nodes (1: Laplace).
    theta : ndarray
        lme4's variance parameters (elements of the relative Cholesky factor), term by term in the
        order of ``random_terms``.
    random_terms : tuple of str
        The random terms as lme4 expands and orders them (by decreasing number of levels):
        ``("(1 | cask:batch)", "(1 | batch)")`` for ``(1 | batch/cask)``.
    grpvars, ngrps : tuple
        Grouping factor of each random term and its number of levels (lme4's ``ngrps``). With
        several terms, ``group`` and ``n_groups`` are those of the first term, ``tau2`` and ``icc``
        are ``nan``, and ``random_effects`` has a ``grpvar`` column (lme4's
        ``as.data.frame(ranef(fit))``) naming the grouping factor of each row.
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
    random_terms: tuple[str, ...] = field(default=())
    grpvars: tuple[str, ...] = field(default=())
    ngrps: tuple[int, ...] = field(default=())
    link: str = ""
    nagq: int = 1

    def __post_init__(self):
        if not self.random_terms:  # one grouping factor (group= / re_formula= or one term in the formula)
            object.__setattr__(self, "random_terms", (_term_text(self.re_terms, self.group),))
            object.__setattr__(self, "grpvars", (self.group,))
            object.__setattr__(self, "ngrps", (int(self.n_groups),))

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
        model = self.formula if "|" in self.formula else f"{self.formula} + {self.random_terms[0]}"
        if self.family == "gaussian":
            head = tx("Linear mixed model ({method}): {model}", method=self.method, model=model)
        elif self.family == "poisson":
            head = tx("Poisson mixed model (log link, {method}): {model}", method=self.method, model=model)
        else:
            head = tx("Binomial mixed model ({link} link, {method}): {model}", link=self.link or "logit",
                      method=self.method, model=model)
        if len(set(self.grpvars)) > 1:
            seen = dict(zip(self.grpvars, self.ngrps))
            count = tx("  Observations: {n}   groups: {groups}", n=tx.int(self.n_obs),
                       groups=", ".join(f"{g} {tx.int(k)}" for g, k in seen.items()))
        else:
            count = tx("  Observations: {n}   groups ({group}): {g}", n=tx.int(self.n_obs), group=self.group,
                       g=tx.int(self.n_groups))
        lines = [
            head,
            count,
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
        if np.isfinite(self.mor) and self.family == "poisson":
            lines.append(tx("  Median rate ratio (MRR): {v}", v=tx.num(self.mor, 4)))
        elif np.isfinite(self.mor):
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
    def plot_caterpillar(self, term: str | None = None, *, group: str | None = None, sites: pd.DataFrame | None = None,
                         ax=None):
        """Caterpillar plot: the groups' (sites') effects of one random term, ordered, with their intervals.

        Up to 40 groups every group is named on the axis; beyond, the groups are drawn as ordered
        points without per-group labels (the figure stays 8 inches high for 120 sites) and the 5
        lowest and 5 highest are named beside the plot. Points are coloured by where their interval
        lies: above the average (0), below it, or across it; with ``sites`` and at most 8 regions,
        by region instead.

        Parameters
        ----------
        term : str, optional
            Random term (default: the first of the grouping factor, usually ``"Intercept"``).
        group : str, optional
            Grouping factor, for models with several (default: the first of ``grpvars``, the one
            with most levels), e.g. ``"site"`` or ``"site:period"``.
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
        factors = list(dict.fromkeys(self.grpvars))
        group = factors[0] if group is None else group
        if group not in factors:
            raise ScaleupDataError(
                f"plot_caterpillar: group {group!r} is not a grouping factor of this model; choose one of {factors}."
            )
        if "grpvar" in re.columns:
            re = re[re["grpvar"] == group].drop(columns="grpvar")
        terms = list(dict.fromkeys(re["term"]))
        term = terms[0] if term is None else term
        if term not in terms:
            raise ScaleupDataError(
                f"plot_caterpillar: term {term!r} is not a random term of this model for {group!r}; "
                f"choose one of {terms}."
            )
        return draw_caterpillar(re[re["term"] == term].sort_values("estimate", kind="stable"), term=term,
                                group=group, method=self.method, level=self.level, sites=sites, ax=ax,
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


def _require_columns(data: pd.DataFrame, pairs) -> None:
    """Refuse a ``(column, argument)`` pair whose column is not in ``data``, listing the columns."""
    for col, arg in pairs:
        if not isinstance(col, str) or col not in data.columns:
            cols = ", ".join(map(repr, list(data.columns)[:12]))
            raise ScaleupDataError(
                f"mixed_model: column {col!r} (argument {arg!r}) is not in data. Available columns: {cols}."
            )


def _design(data: pd.DataFrame, formula: str, re_formula: str, group: str, trials: str | None,
            offset: str | None = None):
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"mixed_model: data must be a pandas DataFrame, got {type(data).__name__}.")
    if not isinstance(formula, str) or "~" not in formula:
        raise ScaleupDataError(
            f"mixed_model: formula must be a patsy formula such as 'y ~ x + C(arm)', got {formula!r}."
        )
    _require_columns(data, [(group, "group")] + [(c, a) for c, a in ((trials, "trials"), (offset, "offset"))
                                                 if c is not None])
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
    keep &= _offset_present(frame, offset, data.index)
    n_drop = int((~keep).sum())
    if n_drop:
        warnings.warn(
            f"mixed_model: {rows_text(data.index, ~keep)} left out because of missing values in the "
            f"outcome, covariates, {group!r}" + (f" or {trials!r}" if trials else "")
            + (f" or the offset {offset!r}" if offset else "") + ".",
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
    off = _offset_values(frame, offset, idx, data.index[keep])
    return yv, Xm, Zm, g, tr, off, data.index[keep]


def _offset_present(frame: pd.DataFrame, offset: str | None, index) -> np.ndarray:
    """Rows whose offset is present (all rows without an offset); refuses a non-numeric offset column."""
    if offset is None:
        return np.ones(len(frame), dtype=bool)
    values = pd.to_numeric(frame[offset], errors="coerce")
    bad = values.isna().to_numpy() & frame[offset].notna().to_numpy()
    if bad.any():
        raise ScaleupDataError(
            f"mixed_model: table 'data', column {offset!r} (argument 'offset') must be numeric (the log of "
            f"each row's population or person-time); {rows_text(index, bad)} are not."
        )
    return values.notna().to_numpy()


def _offset_values(frame: pd.DataFrame, offset: str | None, idx, index) -> np.ndarray | None:
    if offset is None:
        return None
    off = pd.to_numeric(frame.loc[idx, offset]).to_numpy(dtype=float)
    check_matrix_values(off[:, None], [offset], index, "mixed_model: table 'data', the offset", max_abs=MAX_ABS)
    return off


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
    group: str | None = None,
    re_formula: str | None = None,
    family: str = "gaussian",
    reml: bool = True,
    level: float = 0.95,
    trials: str | None = None,
    link: str | None = None,
    offset: str | None = None,
    nagq: int = 1,
) -> MixedModelResult:
    """Fit a linear (REML/ML), binomial or Poisson (Laplace / quadrature) mixed model with site random effects.

    Parameters
    ----------
    data : DataFrame
        Long-format data, one row per observation (e.g. patient or site-period).
    formula : str
        Fixed effects as a patsy formula, e.g. ``"y ~ period + C(arm)"``, optionally with lme4's
        random terms in parentheses: ``"y ~ x + (1 | site)"``, ``(1 + x | site)`` (correlated),
        ``(1 + x || site)`` (uncorrelated: ``(1 | site) + (0 + x | site)``), ``(1 | region/site)``
        (nested: ``(1 | region) + (1 | site:region)``), ``(1 | site:period)`` (interaction),
        ``(1 | site) + (1 | period)`` (crossed), for every family. Then leave ``group`` and
        ``re_formula`` out.
    group : str, optional
        Column of the grouping factor (e.g. ``"site_id"``), when the formula has no random term.
    re_formula : str, optional
        Random terms per group: ``None`` or ``"1"`` for a random intercept (lme4 ``(1 | site)``),
        ``"1 + x"`` (or ``"~ 1 + x"``) for correlated random intercept and slope with unstructured
        covariance (lme4 ``(1 + x | site)``), for every family.
    family : {"gaussian", "binomial", "poisson"}
        ``"binomial"``: the outcome is 0/1, or a count of events when ``trials`` names the column of
        the number of trials; ``"poisson"``: the outcome is a count (events per site-quarter, visits),
        usually with ``offset`` the log of the population or person-time at risk.
    reml : bool
        Gaussian models: REML (default, as ``lmer``) or ML. Ignored for binomial and Poisson models
        (maximum likelihood of the Laplace or quadrature approximation).
    level : float
        Confidence level of the intervals.
    trials : str, optional
        Binomial models: column with the number of trials (the outcome is then the number of events).
    link : str, optional
        Binomial models: ``"logit"`` (default) or ``"probit"``; Poisson models: ``"log"``.
    offset : str, optional
        Binomial and Poisson models: column added to the linear predictor with coefficient 1, e.g. the
        log of each row's population for a rate (lme4's ``offset(log(pop))``).
    nagq : int
        Number of adaptive Gauss-Hermite quadrature nodes (lme4's ``nAGQ``): 1 (default) is the Laplace
        approximation; more nodes (e.g. 9 or 25) integrate a single random intercept more accurately.

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
    and Poisson models maximise the Laplace approximation of ``lme4::glmer(nAGQ = 1)`` over
    ``(theta, beta)``, ``-2 log f(y | u) + ||u||^2 + log|Lambda' Z' W Z Lambda + I|`` at the
    conditional modes ``u`` with the working weights ``W`` of penalised IRLS, or with ``nagq > 1`` the
    adaptive Gauss-Hermite approximation of each site's integral (Pinheiro & Bates 1995; one random
    intercept). The exact gradient of the Laplace deviance drives the optimiser and, with one
    grouping factor, rows with identical covariates are merged, so the cost is a few dozen passes over
    the rows (1 million patient rows in about 6 s); standard errors come from the Hessian of the
    deviance (lme4's default ``use.hessian = TRUE``). The log-likelihood is the marginal
    log-likelihood; with ``nagq > 1`` lme4's ``logLik`` leaves out the saturated log-likelihood.
    The site effects are conditional modes with conditional SDs, ignoring the uncertainty of the
    fixed effects, as ``ranef(fit, condVar = TRUE)``. A variance estimated at the boundary (theta < 1e-4)
    raises a :class:`~scaleup_analysis.ScaleupWarning` "boundary (singular) fit" as lme4.

    With several random terms, ``Z = [Z_1 ... Z_k]`` and ``Lambda(theta)`` is block diagonal, one
    unstructured ``T_t`` per term; the terms are ordered as ``lme4::mkReTrms`` (by decreasing number
    of levels) so ``theta`` is ``getME(fit, "theta")``. The deviance is evaluated from
    cross-products by eliminating the term with most levels first (block diagonal) and factoring
    the dense Schur complement of the others, so at most
    :data:`~scaleup_analysis.engines.terms.MAX_DENSE` (5000) random effects may lie outside that
    term (e.g. 2,000 sites crossed with 20 periods; larger models are refused). Satterthwaite's df
    are computed as for one term, from the Hessian of the deviance in all ``(theta, sigma)``.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models using lme4.
    Journal of Statistical Software 67(1). doi:10.18637/jss.v067.i01

    Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package: tests in linear mixed
    effects models. Journal of Statistical Software 82(13). doi:10.18637/jss.v082.i13

    Pinheiro JC, Bates DM (1995). Approximations to the log-likelihood function in the nonlinear
    mixed-effects model. Journal of Computational and Graphical Statistics 4(1):12-35.

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
    >>> data["period"] = np.tile(np.arange(10), 8)
    >>> crossed = sa.mixed_model(data, "y ~ x + (1 | site) + (1 | period)")
    >>> crossed.grpvars, crossed.ngrps
    (('period', 'site'), (10, 8))
    """
    check_mixed_args("mixed_model", family, level, reml, families=("gaussian", "binomial", "poisson"))
    if trials is not None and family != "binomial":
        raise ScaleupDataError("mixed_model: trials= is only used with family='binomial'.")
    link, nagq = _check_glmm_args(family, link, offset, nagq)
    if has_bars(formula):
        if group is not None or re_formula is not None:
            raise ScaleupDataError(
                f"mixed_model: formula {formula!r} writes its random terms with '|'; then leave group= and "
                "re_formula= out (or give them and write the formula without random terms)."
            )
        fixed_formula, bars = split_formula(formula)
        y, X, Zs, gs, tr, off, index = _design_terms(data, formula, fixed_formula, bars, trials, offset)
        if len(bars) > 1:
            if nagq > 1:
                raise ScaleupDataError(
                    f"mixed_model: nagq={nagq} (adaptive quadrature) needs a single random intercept; "
                    f"{formula!r} has {len(bars)} random terms. Use nagq=1 (Laplace)."
                )
            terms, labels, names, znames_t = _order_terms(bars, Zs, gs)
            _check_terms(y, X, terms, names, formula, tr, family)
            if family != "gaussian":
                with numeric_guard("mixed_model", f"the columns of {formula!r}"):
                    return terms_glmm_result(y, tr, off, X, terms, index, family=family, link=link, labels=labels,
                                             names=names, znames=znames_t, formula=formula, level=level)
            with numeric_guard("mixed_model", f"the columns of {formula!r}"):
                try:
                    fit = fit_terms_lmm(X.to_numpy(dtype=float), y, terms, reml=reml)
                except FitError as exc:
                    raise ScaleupDataError(f"mixed_model: cannot fit {formula!r}: {exc}.") from None
                return terms_result(fit, n=y.size, labels=labels, names=names, znames=znames_t,
                                    xnames=list(X.columns), formula=formula, bars=bars, level=level)
        Z, g, group, re_formula = Zs[0], gs[0], bars[0].group, bars[0].lhs
    else:
        if group is None:
            raise ScaleupDataError(
                "mixed_model: name the grouping column (group='site') or write the random terms in the "
                "formula, e.g. 'y ~ x + (1 | site)'."
            )
        ref = _parse_re_formula(re_formula)
        y, X, Z, g, tr, off, index = _design(data, formula, ref, group, trials, offset)
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
    if nagq > 1 and not (q == 1 and znames == ["Intercept"]):
        raise ScaleupDataError(
            f"mixed_model: nagq={nagq} (adaptive quadrature) needs a single random intercept (1 | {group}); "
            f"the random terms are {znames}. Use nagq=1 (Laplace)."
        )
    with numeric_guard("mixed_model", f"the columns of {formula!r}"):
        fields = fit_glmm_fields(y, X, Z, codes, uniq, tr, off, index, formula, group, level, xnames, znames,
                                 family=family, link=link, nagq=nagq)
    Lam, b, V = fields.pop("Lam"), fields.pop("b"), fields.pop("V")
    return MixedModelResult(variance_components=pd.DataFrame(_vc_frame(group, znames, Lam, 1.0)),
                            random_effects=_site_frame(uniq, znames, b, V, level), **fields)


def _check_glmm_args(family, link, offset, nagq) -> tuple[str, int]:
    """The link (default per family), the offset column name and the number of quadrature nodes."""
    if family == "gaussian":
        if link not in (None, "identity"):
            raise ScaleupDataError(f"mixed_model: link={link!r} is for family='binomial' or 'poisson'.")
        if offset is not None:
            raise ScaleupDataError(
                "mixed_model: offset= is used with family='binomial' or 'poisson' (a Gaussian model can take "
                "the offset as a covariate or subtract it from the outcome)."
            )
    else:
        links = FAMILIES[family]
        link = links[0] if link is None else link
        if link not in links:
            raise ScaleupDataError(
                f"mixed_model(family={family!r}): link must be one of {', '.join(map(repr, links))}, got {link!r}."
            )
    if offset is not None and not isinstance(offset, str):
        raise ScaleupDataError(f"mixed_model: offset must be the name of a column, got {offset!r}.")
    if isinstance(nagq, bool) or not isinstance(nagq, int | np.integer) or not 1 <= int(nagq) <= 100:
        raise ScaleupDataError(f"mixed_model: nagq must be an integer from 1 (Laplace) to 100, got {nagq!r}.")
    if family == "gaussian" and nagq != 1:
        raise ScaleupDataError("mixed_model: nagq= (quadrature nodes) is used with family='binomial' or 'poisson'.")
    return ("" if family == "gaussian" else link), int(nagq)


def _design_terms(data, formula: str, fixed: str, bars: list[ReTerm], trials: str | None, offset: str | None = None):
    """Designs of a formula with random terms: outcome, fixed effects, and per term its columns and levels."""
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"mixed_model: data must be a pandas DataFrame, got {type(data).__name__}.")
    factors = list(dict.fromkeys(f for b in bars for f in b.factors))
    _require_columns(data, [(c, "formula") for c in factors]
                     + [(c, a) for c, a in ((trials, "trials"), (offset, "offset")) if c is not None])
    frame = data.reset_index(drop=True)
    try:
        y, X = patsy.dmatrices(fixed, frame, NA_action="drop", return_type="dataframe")
        Zd = [patsy.dmatrix(b.lhs, frame, NA_action="drop", return_type="dataframe") for b in bars]
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"mixed_model: cannot build the design from formula={formula!r}: {exc}. Check that every "
            "variable is a column of data."
        ) from exc
    if y.shape[1] != 1:
        raise ScaleupDataError(
            f"mixed_model: the outcome of {formula!r} must be one numeric column (got {y.shape[1]} columns; "
            "is it a string column?). For events/trials use family='binomial' with trials='n'."
        )
    keep = frame.index.isin(y.index) & frame.index.isin(X.index)
    for z in Zd:
        keep &= frame.index.isin(z.index)
    for f in factors:
        keep &= frame[f].notna().to_numpy()
    if trials is not None:
        keep &= pd.to_numeric(frame[trials], errors="coerce").notna().to_numpy()
    keep &= _offset_present(frame, offset, data.index)
    n_drop = int((~keep).sum())
    if n_drop:
        cols = ", ".join(map(repr, factors + ([trials] if trials else []) + ([offset] if offset else [])))
        warnings.warn(
            f"mixed_model: {rows_text(data.index, ~keep)} left out because of missing values in the "
            f"outcome, the covariates or the grouping columns ({cols}).",
            RowsOmittedWarning,
            stacklevel=3,
        )
    idx = frame.index[keep]
    yv = y.loc[idx].to_numpy(dtype=float)[:, 0]
    Xm = X.loc[idx]
    Zm = [z.loc[idx] for z in Zd]
    gs = []
    for b in bars:
        if len(b.factors) == 1:
            gs.append(frame.loc[idx, b.factors[0]])
        else:  # lme4's interaction a:b, levels "a_value:b_value"
            parts = [frame.loc[idx, f].astype(str) for f in b.factors]
            lab = parts[0]
            for part in parts[1:]:
                lab = lab + ":" + part
            gs.append(lab)
    tr = None if trials is None else pd.to_numeric(frame.loc[idx, trials]).to_numpy(dtype=float)
    allz = pd.concat(Zm, axis=1) if Zm else pd.DataFrame(index=idx)
    _check_values(yv, Xm, allz, y.columns[0], data.index[keep])
    off = _offset_values(frame, offset, idx, data.index[keep])
    return yv, Xm, Zm, gs, tr, off, data.index[keep]


def _order_terms(bars, Zs, gs):
    """Terms in lme4's order (``mkReTrms``: if the numbers of levels ever increase, reverse the
    stable increasing order), with their level labels, lme4's group names and column names."""
    coded = [pd.factorize(g, sort=True) for g in gs]
    nl = [len(u) for _, u in coded]
    order = list(range(len(bars)))
    if any(b > a for a, b in zip(nl, nl[1:])):
        order = list(np.argsort(nl, kind="stable")[::-1])
    terms, labels, names, znames = [], [], [], []
    for i in order:
        codes, uniq = coded[i]
        terms.append(Term.unstructured(codes, len(uniq), Zs[i].to_numpy(dtype=float)))
        labels.append(list(uniq))
        names.append(bars[i].group)
        znames.append(list(Zs[i].columns))
    return terms, labels, names, znames


def _check_terms(y, X, terms, names, formula, tr, family) -> None:
    """lme4's checks for several terms: >= 2 levels per factor, fewer levels than rows
    (check.nobs.vs.nlev) and fewer random effects than rows (check.nobs.vs.nRE) for Gaussian models
    (glmer ignores both), X of full rank."""
    n, p = X.shape
    for t, name in zip(terms, names, strict=True):
        if t.nlevels < 2:
            raise ScaleupDataError(
                f"mixed_model: the grouping factor {name!r} of {formula!r} has {t.nlevels} level among the "
                "rows used; a random effect needs at least 2 groups."
            )
        if t.nlevels >= n and family == "gaussian":  # glmer allows as many levels as rows (allow.n)
            raise ScaleupDataError(
                f"mixed_model: {n} usable row(s) for {t.nlevels} levels of {name!r} in {formula!r}: the "
                "number of levels of each grouping factor must be < the number of observations (lme4: "
                "check.nobs.vs.nlev), otherwise its variance and the residual variance are not separately "
                "identifiable."
            )
    m = sum(t.nlevels * t.q for t in terms)
    if m >= n and family == "gaussian":
        raise ScaleupDataError(
            f"mixed_model: {n} usable row(s) for {m} random effects in {formula!r}: the number of random "
            "effects must be < the number of observations (lme4: check.nobs.vs.nRE). Simplify the random terms."
        )
    if m - terms[0].nlevels * terms[0].q > MAX_DENSE:
        raise ScaleupDataError(
            f"mixed_model: {formula!r} has {m - terms[0].nlevels * terms[0].q} random effects outside its "
            f"term with most levels ({names[0]!r}); the engine handles up to {MAX_DENSE} (a dense "
            "factor of that size). Merge levels or drop a crossed term."
        )
    if np.linalg.matrix_rank(X.to_numpy()) < p:
        raise ScaleupDataError(
            f"mixed_model: the fixed-effects design of {formula!r} is rank deficient (collinear or "
            "constant columns among " + ", ".join(X.columns) + "). Drop or merge the redundant terms."
        )
    if n <= p + 1:
        raise ScaleupDataError(f"mixed_model: {n} usable rows for {p} fixed effects; need more rows.")
    _check_identifiable(y, X, family, tr, n, 1, 1, names[0], formula, None)


def _unique_names(names: list[str]) -> list[str]:
    """lme4's names of the variance components: a repeated factor gets ``.1``, ``.2``, ..."""
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        k = seen.get(nm, 0)
        out.append(nm if k == 0 else f"{nm}.{k}")
        seen[nm] = k + 1
    return out


def terms_result(fit, *, n, labels, names, znames, xnames, formula, bars, level):
    """:class:`MixedModelResult` of a fit with several random terms (:func:`~scaleup_analysis.engines.terms.fit_terms_lmm`).

    Call it directly from the public function (its warnings point at the caller's caller).
    """
    method = "REML" if fit.reml else "ML"
    mdl = fit.model
    singular = bool(np.any(fit.theta[np.isfinite(mdl.lower)] < _SINGULAR_TOL))
    notes = ["boundary (singular) fit"] if singular else []
    warn_fit("mixed_model", method, fit.converged, fit.message, singular,
             "rescaling covariates (centre/scale x) or simplifying the random terms", stacklevel=4)
    sigma2 = fit.sigma**2
    fe = fixed_table(fit.beta, fit.vcov_beta, fit.satterthwaite(), level, xnames)
    terms = _terms_fields(mdl.term_factors(fit.theta), fit.ranef(), labels=labels, names=names, znames=znames,
                          scale=sigma2, level=level)
    terms["variance_components"].loc[len(terms["variance_components"])] = {
        "group": "Residual", "term1": "", "term2": "", "variance": sigma2, "sd": fit.sigma, "corr": np.nan}
    npar = len(xnames) + fit.theta.size + 1
    ll = -fit.minus2ll / 2
    return MixedModelResult(
        family="gaussian", method=method, formula=formula, fixed=fe,
        vcov=pd.DataFrame(fit.vcov_beta, index=xnames, columns=xnames),
        sigma2=sigma2, tau2=np.nan, icc=np.nan, mor=np.nan, theta=fit.theta, loglik=ll,
        AIC=-2 * ll + 2 * npar, BIC=-2 * ll + np.log(n) * npar, n_obs=n,
        converged=fit.converged, singular=singular, level=level, notes=tuple(notes), **terms,
    )


def _terms_fields(Ts, ranef, *, labels, names, znames, scale, level) -> dict:
    """The fields of a :class:`MixedModelResult` that describe several random terms: variance
    components (``scale`` times ``T T'`` per term; lme4's names for a repeated factor), conditional
    modes per grouping factor (with a ``grpvar`` column), the terms as lme4 writes them and the
    number of levels of each factor."""
    vc = []
    for name, zn, T in zip(_unique_names(names), znames, Ts, strict=True):
        vc += _vc_frame(name, zn, T, scale)
    re_parts = []
    for name, lab, zn, (b, V) in zip(names, labels, znames, ranef, strict=True):
        part = _site_frame(lab, zn, b, V, level)
        part.insert(0, "grpvar", name)
        re_parts.append(part)
    return dict(
        group=names[0], re_terms=tuple(dict.fromkeys(z for zn in znames for z in zn)),
        variance_components=pd.DataFrame(vc), random_effects=pd.concat(re_parts, ignore_index=True),
        n_groups=len(labels[0]), random_terms=tuple(_term_text(zn, nm) for zn, nm in zip(znames, names, strict=True)),
        grpvars=tuple(names), ngrps=tuple(len(lab) for lab in labels),
    )


def terms_glmm_result(y, tr, off, X, terms, index, *, family, link, labels, names, znames, formula, level):
    """:class:`MixedModelResult` of a binomial or Poisson model with several random terms (Laplace).

    Call it directly from the public function (its warnings point at the caller's caller).
    """
    Xa = X.to_numpy(dtype=float)
    xnames = list(X.columns)
    n = y.size
    m = np.ones(n) if tr is None else np.asarray(tr, float)
    check_outcome(y, m, family, formula, index, tr is not None)
    beta0 = warn_separation(y, m, np.zeros(n) if off is None else off, Xa, xnames, family, link, formula,
                            stacklevel=4)
    fit = fit_terms_glmm(y, tr, off, Xa, terms, family=family, link=link, beta_start=beta0)
    mdl = fit.model
    singular = bool(np.any(fit.theta[np.isfinite(mdl.lmm.lower)] < _SINGULAR_TOL))
    warn_fit(f"mixed_model(family={family!r})", "Laplace", fit.converged, fit.message, singular,
             "rescaling covariates or simplifying the random terms", stacklevel=4)
    fe = fixed_table(fit.beta, fit.vcov, np.inf, level, xnames)
    terms = _terms_fields(mdl.lmm.term_factors(fit.theta), fit.ranef(), labels=labels, names=names,
                          znames=znames, scale=1.0, level=level)
    npar = len(xnames) + fit.theta.size
    ll = -fit.deviance / 2
    return MixedModelResult(
        family=family, link=link, method="Laplace", formula=formula, fixed=fe,
        vcov=pd.DataFrame(fit.vcov, index=xnames, columns=xnames),
        sigma2=np.nan, tau2=np.nan, icc=np.nan, mor=np.nan, theta=fit.theta, loglik=ll,
        AIC=-2 * ll + 2 * npar, BIC=-2 * ll + np.log(n) * npar, n_obs=n,
        converged=fit.converged, singular=singular, level=level, **terms,
    )


def _check_identifiable(y, X, family, tr, n, G, q, group, formula, re_formula) -> None:
    """lme4's checks that the variance components can be told apart, and a non-degenerate outcome.

    As ``lmer`` (``check.nobs.vs.nlev`` and ``check.nobs.vs.nRE``, both "stop"): a Gaussian model
    needs fewer groups than rows and fewer random effects (groups x terms) than rows, otherwise the
    group variance and the residual variance are not separately identifiable. ``glmer`` allows as
    many groups (random effects) as rows (its ``allow.n = TRUE``): a binomial row carries its own
    sampling variance.
    """
    outcome = formula.split("~")[0].strip()
    too_many = (G > n or G * q > n) if family != "gaussian" else (G >= n or G * q >= n)
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
    if family == "poisson":
        if np.all(y <= 0):
            raise ScaleupDataError(
                f"mixed_model(family='poisson'): the outcome {outcome!r} is 0 in all {n} usable rows; a "
                "Poisson model is undefined without events (its intercept is minus infinity). Check the "
                "outcome column."
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
    notes = ["boundary (singular) fit"] if singular else []
    warn_fit(fn, method, fit.converged, fit.message, singular,
             "rescaling covariates (centre/scale x), simplifying re_formula, or checking for sites with a single row",
             stacklevel=4, simplify="re_formula")
    sigma2 = fit.sigma**2
    fe = fixed_table(fit.beta, fit.vcov_beta, satterthwaite(fit)[0], level, xnames)
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
