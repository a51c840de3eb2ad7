r"""Case-mix adjustment: comparing units (sites) fairly on a patient-level outcome.

* :func:`indirect_standardization` -- expected events of each unit from a patient-level case-mix
  model (logistic for a 0/1 outcome, Poisson log-link with person-time for counts) fitted on all
  rows or on reference rows, without the unit; per unit observed / expected (the standardised
  ratio) with its exact Poisson interval, the risk-adjusted rate, O - E and a z-score; the model's
  coefficients as ``summary(glm(...))`` and its c-statistic. ``result.funnel()`` draws the ratios
  on a funnel plot (:func:`~scaleup_analysis.institutional_funnel`, ``kind="ratio"``).
* :func:`reliability_adjusted_values` -- shrunken (empirical-Bayes) unit effects from a logistic
  random-intercept model with the case-mix covariates (:func:`~scaleup_analysis.mixed_model`, as
  ``lme4::glmer``), their reliability, the units' ranks with rank intervals simulated from the
  conditional distributions, and the rankability (van Houwelingen; Lingsma et al. 2010).

The two are separate functions because they answer different questions with different models: the
first is deterministic, fast and closed-form given the GLM (the indicator a funnel plot needs); the
second fits a mixed model and simulates ranks (seeded), and says whether ranking the units is
meaningful at all.

References
----------
Breslow, N. E., & Day, N. E. (1987). Statistical Methods in Cancer Research, Vol. II: The Design and
Analysis of Cohort Studies. IARC (indirect standardisation, exact interval of the SMR).

Iezzoni, L. I. (Ed.) (2013). Risk Adjustment for Measuring Health Care Outcomes (4th ed.). Health
Administration Press.

Lingsma, H. F., Steyerberg, E. W., Eijkemans, M. J. C., Dippel, D. W. J., Scholte op Reimer, W. J. M.,
& van Houwelingen, H. C. (2010). Comparing and ranking hospitals based on outcome: results from The
Netherlands Stroke Survey. QJM, 103(2), 99-108.

van Houwelingen, H. C., Brand, R., & Louis, T. A. (2000). Empirical Bayes methods for monitoring
health care quality. Bookchapter, Leiden University Medical Center.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .._checks import (
    check_draw_count,
    check_level,
    check_matrix_values,
    checked_inputs,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
    short_repr,
)
from .._display import Displayed, num_cell, p_cell, text_table
from .._formula import aliased_frame, formula_parts, unaliased
from .._style import GREY, NEUTRAL, PALETTE, data_text, new_axes, numeric_ticks, styled
from ..errors import ConvergenceWarning, RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from ..narrative import Text

__all__ = ["indirect_standardization", "IndirectStandardization", "reliability_adjusted_values",
           "ReliabilityAdjusted"]

_FN = "indirect_standardization"
_FN_REL = "reliability_adjusted_values"
_FAMILIES = ("binomial", "poisson")
#: largest magnitude of a covariate or person-time value (exp of the linear predictor must stay finite)
_MAX_ABS = 1e100


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class IndirectStandardization(Displayed):
    """Result of :func:`indirect_standardization`.

    Attributes
    ----------
    family : str
        ``"binomial"`` (logistic case-mix model) or ``"poisson"`` (log-link, person-time offset).
    outcome, unit : str
        The outcome and unit columns.
    formula : str
        The case-mix covariates, as a formula (column names of a list, not aliases).
    person_time : str or None
        The person-time column (Poisson), whose log is the model's offset.
    reference : str or None
        The True/False column of the rows the model was fitted on (None: all rows).
    coef : pandas.DataFrame
        The model's coefficients as ``summary.glm``: ``term``, ``estimate``, ``se``, ``statistic``
        (Wald z), ``pvalue``.
    vcov : pandas.DataFrame
        Covariance matrix of the coefficients.
    crude_rate : float
        Crude rate of the model rows: events / rows (binomial) or events / person-time (Poisson);
        the risk-adjusted rates are the ratios times this rate.
    c_statistic : float
        Binomial models: area under the ROC curve of the fitted probabilities on the model rows
        (concordance); ``nan`` for Poisson models.
    deviance, loglik, AIC : float
        Of the case-mix model (R's ``deviance``, ``logLik``, ``AIC``).
    converged : bool
    level : float
    n_obs : int
        Rows used for the expected counts (complete rows).
    n_reference : int
        Rows the model was fitted on (``n_obs`` without ``reference``).
    n_units : int
    n_omitted : int
        Rows left out for a missing outcome, covariate or person-time.
    units : pandas.DataFrame
        One row per unit (see :meth:`to_frame`).
    """

    family: str
    outcome: str
    unit: str
    formula: str
    person_time: str | None
    reference: str | None
    coef: pd.DataFrame = field(repr=False)
    vcov: pd.DataFrame = field(repr=False)
    crude_rate: float
    c_statistic: float
    deviance: float
    loglik: float
    AIC: float
    converged: bool
    level: float
    n_obs: int
    n_reference: int
    n_units: int
    n_omitted: int
    units: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``unit``, ``n`` (patients / rows), ``person_time`` (Poisson only),
        ``events`` (observed, O), ``expected`` (E), ``ratio`` (O/E) with its exact interval
        ``ratio_ci_low``, ``ratio_ci_high``, ``adjusted_rate`` (risk-adjusted rate, ratio x
        ``crude_rate``) with ``adjusted_rate_ci_low``, ``adjusted_rate_ci_high``, ``excess``
        (O - E) and ``z`` ((O - E) / sqrt(V))."""
        return self.units.copy()

    def funnel(self, **kw):
        """Funnel plot of the units' O/E ratios: ``sa.institutional_funnel(self.to_frame(),
        events="events", expected="expected", kind="ratio", unit="unit", **kw)`` (target 1;
        ``overdispersion``, ``level``, ... as there). Returns an
        :class:`~scaleup_analysis.InstitutionalFunnel`; draw it with ``.plot()``."""
        from .funnel import institutional_funnel

        return institutional_funnel(self.to_frame(), events="events", expected="expected", kind="ratio",
                                    unit="unit", **kw)

    def _repr_fields(self) -> dict:
        out = {"family": self.family, "formula": self.formula, "n_obs": self.n_obs, "n_units": self.n_units,
               "crude_rate": self.crude_rate}
        if self.family == "binomial":
            out["c_statistic"] = self.c_statistic
        return out

    def _summary(self, tx) -> str:
        model = (tx("Logistic case-mix model of {outcome} {formula}", outcome=self.outcome, formula=self.formula)
                 if self.family == "binomial" else
                 tx("Poisson case-mix model of {outcome} {formula}, offset log({time})", outcome=self.outcome,
                    formula=self.formula, time=self.person_time))
        lines = [tx("Indirect standardisation of {n} units ({rows} rows).", n=tx.int(self.n_units),
                    rows=tx.int(self.n_obs)), model]
        if self.reference is not None:
            lines.append(tx("Model fitted on the {n} reference rows ({column} true), without the unit.",
                            n=tx.int(self.n_reference), column=self.reference))
        else:
            lines.append(tx("Model fitted on all rows, without the unit."))
        if self.n_omitted:
            lines.append(tx("{n} rows left out (missing outcome, covariate or person-time).",
                            n=tx.int(self.n_omitted)))
        if self.family == "binomial":
            lines.append(tx("c-statistic (area under the ROC curve) = {c}.", c=tx.num(self.c_statistic, 3)))
        lines.append(tx("Crude rate of the model rows = {rate}.", rate=tx.num(self.crude_rate, 4)))
        if not self.converged:
            lines.append(tx("  Warning: the optimiser did not converge"))
        rows = [[str(r.term), tx.num(r.estimate, 4), tx.num(r.se, 4), tx.num(r.statistic, 3), p_cell(tx, r.pvalue)]
                for r in self.coef.itertuples(index=False)]
        lines += ["", tx("Case-mix model:"), text_table([tx("term"), tx("estimate"), tx("SE"), "z", "p"], rows)]
        rows = [[data_text(r.unit), tx.int(r.n), tx.int(r.events), num_cell(tx, r.expected, 1),
                 tx.ci(r.ratio, r.ratio_ci_low, r.ratio_ci_high, digits=2, level=self.level),
                 num_cell(tx, r.adjusted_rate, 3), num_cell(tx, r.z, 2)] for r in self.units.itertuples(index=False)]
        lines += ["", tx("By unit (O/E with its exact Poisson interval, expected counts taken as fixed):"),
                  text_table([tx("compared unit"), tx("n"), tx("observed events"), tx("expected events"), tx("O/E"),
                              tx("adjusted rate"),
                              "z"], rows, left=(0,))]
        return "\n".join(lines)


@dataclass(frozen=True, eq=False, repr=False)
class ReliabilityAdjusted(Displayed):
    """Result of :func:`reliability_adjusted_values`.

    Attributes
    ----------
    outcome, unit, formula : str
    tau2 : float
        Between-unit variance of the random intercept (logit scale).
    rankability : float
        ``tau2 / (tau2 + within_variance)``: the share of the spread of the units' effects that is
        real rather than noise; above 0.7 ranks are informative, below 0.5 they are not (Lingsma et
        al. 2010).
    within_variance : float
        Median over units of the within-unit variance of a unit's effect (its squared standard
        error without shrinkage).
    level : float
    n_draws : int
        Draws from the units' conditional distributions used for the rank intervals.
    n_obs, n_units, n_omitted : int
    model : MixedModelResult
        The fitted random-intercept model (:func:`~scaleup_analysis.mixed_model`).
    units : pandas.DataFrame
        One row per unit (see :meth:`to_frame`).
    """

    outcome: str
    unit: str
    formula: str
    tau2: float
    rankability: float
    within_variance: float
    level: float
    n_draws: int
    n_obs: int
    n_units: int
    n_omitted: int
    model: object = field(repr=False)
    units: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``unit``, ``n``, ``events``, ``estimate`` (conditional mode of the
        unit's effect, log odds against a typical unit with the same patients) with ``se``
        (conditional SD), ``ci_low``, ``ci_high``, ``odds_ratio`` (exp of them) with
        ``odds_ratio_ci_low``, ``odds_ratio_ci_high``, ``within_variance`` (the unit's squared
        standard error without shrinkage), ``reliability`` (``tau2 / (tau2 + within_variance)``,
        the shrinkage factor), ``rank`` (1 = the highest effect, the most events given the case
        mix) with ``rank_ci_low``, ``rank_ci_high`` (simulated)."""
        return self.units.copy()

    def _repr_fields(self) -> dict:
        return {"formula": self.formula, "n_obs": self.n_obs, "n_units": self.n_units, "tau2": self.tau2,
                "rankability": self.rankability, "n_draws": self.n_draws}

    def _summary(self, tx) -> str:
        lines = [tx("Reliability-adjusted unit effects: logistic random-intercept model of {outcome} {formula} "
                    "+ (1 | {unit}), {n} units, {rows} rows.", outcome=self.outcome, formula=self.formula,
                    unit=self.unit, n=tx.int(self.n_units), rows=tx.int(self.n_obs)),
                 tx("Between-unit variance tau2 = {tau2}; median within-unit variance = {w}.",
                    tau2=tx.num(self.tau2, 4), w=tx.num(self.within_variance, 4)),
                 tx("Rankability = {rho} (above 0.7: the ranks are informative; below 0.5: they mostly "
                    "reflect chance).", rho=tx.num(self.rankability, 2))]
        if self.n_omitted:
            lines.append(tx("{n} rows left out (missing outcome, covariate or person-time).",
                            n=tx.int(self.n_omitted)))
        lines.append(tx("Rank intervals from {n} draws of the conditional distributions; rank 1 = the most events "
                        "given the case mix.", n=tx.int(self.n_draws)))
        rows = [[data_text(r.unit), tx.int(r.n), tx.int(r.events),
                 tx.ci(r.odds_ratio, r.odds_ratio_ci_low, r.odds_ratio_ci_high, digits=2, level=self.level),
                 num_cell(tx, r.reliability, 2),
                 tx("{rank} [{low}, {high}]", rank=tx.int(r.rank), low=tx.int(r.rank_ci_low),
                    high=tx.int(r.rank_ci_high))]
                for r in self.units.sort_values("rank", kind="stable").itertuples(index=False)]
        lines += ["", text_table([tx("compared unit"), tx("n"), tx("observed events"), tx("shrunken odds ratio"),
                                  tx("reliability (shrinkage)"),
                                  tx("rank [interval]")], rows, left=(0,))]
        return "\n".join(lines)

    @styled
    def plot_ranks(self, *, title: str | None = None, ax=None):
        """Each unit's rank (point) and rank interval (line), units ordered by rank; units whose
        interval spans most of the ranks are drawn in grey. Returns the Axes."""
        tx = Text()
        d = self.units.sort_values(["rank", "unit"], kind="stable").reset_index(drop=True)
        k = len(d)
        ax = new_axes(ax, (7.0, max(3.0, min(9.0, 0.9 + 0.22 * k))))
        y = np.arange(k)
        wide = (d["rank_ci_high"] - d["rank_ci_low"]).to_numpy(float) >= (k - 1) / 2
        for mask, colour, label in ((~wide, PALETTE[0], tx("rank interval narrower than half the ranks")),
                                    (wide, GREY, tx("rank interval covering half the ranks or more"))):
            if mask.any():
                ax.hlines(y[mask], d["rank_ci_low"][mask], d["rank_ci_high"][mask], color=colour, lw=2.2,
                          label=label)
                ax.scatter(d["rank"][mask], y[mask], color=NEUTRAL if colour == GREY else colour, s=18, zorder=3)
        if k <= 40:
            ax.set_yticks(y)
            ax.set_yticklabels([data_text(u) for u in d["unit"]])
        else:  # too many units to name: the ordered intervals speak for themselves
            ax.set_yticks([])
            ax.set_ylabel(tx("Units, ordered by rank"))
        ax.invert_yaxis()
        ax.set_xlim(0.5, k + 0.5)
        numeric_ticks(ax.xaxis, tx, integer=True)
        ax.set_xlabel(tx("Rank (1 = most events given the case mix), {level} interval", level=tx.pct(self.level)))
        ax.set_title(tx("Ranks of the units, rankability {rho}", rho=tx.num(self.rankability, 2))
                     if title is None else title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), fontsize="small", frameon=False)
        return ax


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------
def _column_arg(value, arg: str, fn: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ScaleupDataError(f"{fn}: argument {arg!r} must be a column name of table 'data'; got "
                               f"{short_repr(value)}.")
    return value


def _ordered(X: pd.DataFrame, rhs: str) -> list[str]:
    """The design columns in R's order: the intercept, then each term of the formula in turn
    (patsy puts categorical terms first)."""
    info = X.design_info
    cols = []
    for term in patsy.ModelDesc.from_formula("~ " + rhs).rhs_termlist:
        sl = info.term_name_slices.get(term.name())
        if sl is not None:
            cols += [c for c in info.column_names[sl] if c not in cols]
    return cols + [c for c in X.columns if c not in cols]


def _prepare(data, fn, outcome, covariates, unit, family, person_time, reference):
    """Checked inputs: the complete rows, their outcome, unit, offset, the design on every complete
    row (built from the model rows' levels) and the model-row mask."""
    outcome = _column_arg(outcome, "outcome", fn)
    unit = _column_arg(unit, "unit", fn)
    person_time = _column_arg(person_time, "person_time", fn, optional=True)
    reference = _column_arg(reference, "reference", fn, optional=True)
    if family not in _FAMILIES:
        raise ScaleupDataError(f"{fn}: family must be one of {list(_FAMILIES)}, got {short_repr(family)}.")
    if family == "binomial" and person_time is not None:
        raise ScaleupDataError(f"{fn}: person_time= is for family='poisson' (events per person-time); a binomial "
                               "outcome is one 0/1 event per row.")
    rhs, aliases, shown = formula_parts(covariates, where=fn, arg="covariates", outcome="outcome=",
                                        examples=("age + female + C(deprivation_quintile)", "age + female",
                                                  ["age", "female"]))
    label = f"{fn}: table 'data'"
    needed = [unit, outcome] + list(aliases) + [c for c in (person_time, reference) if c is not None]
    require_columns(data, "data", list(dict.fromkeys(needed)), label=label,
                    hint="Name existing columns in outcome=, covariates=, unit=, person_time=, reference=.")
    frame = data.reset_index(drop=True)
    keys = frame[unit]
    if keys.isna().any():
        raise ScaleupDataError(f"{label}, column {unit!r} (argument 'unit'): missing unit in "
                               f"{rows_text(data, keys.isna().to_numpy(), label='first:')}. Every row must name its "
                               "unit.")
    y = numeric_column(data, outcome, label, arg="outcome", missing=True)
    ok = np.isnan(y) | ((y == 0) | (y == 1) if family == "binomial" else (y >= 0) & (y == np.floor(y)))
    if not ok.all():
        what = "0 or 1 (the event did not / did happen)" if family == "binomial" else "counts (whole numbers >= 0)"
        raise ScaleupDataError(f"{label}, column {outcome!r} (argument 'outcome'): "
                               f"{rows_text(data, ~ok, label='first:')} are not {what} (values "
                               f"{first_values(y[~ok])}).")
    complete = ~np.isnan(y)
    offset = np.zeros(len(frame))
    if person_time is not None:
        t = numeric_column(data, person_time, label, arg="person_time", missing=True)
        bad = ~np.isnan(t) & ~((t > 0) & (t <= _MAX_ABS))
        if bad.any():
            raise ScaleupDataError(f"{label}, column {person_time!r} (argument 'person_time'): "
                                   f"{rows_text(data, bad, label='first:')} are not positive finite person-time "
                                   f"(values {first_values(t[bad])}); the model's offset is log(person-time).")
        complete &= ~np.isnan(t)
        offset = np.log(np.where(np.isnan(t), 1.0, t))
    ref = np.ones(len(frame), dtype=bool)
    if reference is not None:
        r = frame[reference]
        if pd.api.types.is_bool_dtype(r) and not r.isna().any():
            ref = r.to_numpy(dtype=bool)
        else:
            rv = pd.to_numeric(r, errors="coerce")
            bad = (~rv.isin([0, 1])).to_numpy()
            if bad.any():
                raise ScaleupDataError(f"{label}, column {reference!r} (argument 'reference'): "
                                       f"{rows_text(data, bad, label='first:')} are not True/False (values "
                                       f"{first_values(r[bad])}); it marks the rows the model is fitted on.")
            ref = rv.to_numpy() == 1
    src = aliased_frame(frame, aliases)
    try:
        X0 = patsy.dmatrix("~ " + rhs, src, NA_action="drop", return_type="dataframe", eval_env=0)
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"{fn}: cannot build the covariates from {shown!r} on table 'data': {exc}. Check that every name is "
            "a column of data (or pass a list of column names)."
        ) from None
    complete &= frame.index.isin(X0.index)
    n_omitted = int((~complete).sum())
    if n_omitted:
        warnings.warn(f"{fn}: {rows_text(data, ~complete, label='first:')} left out because of a missing outcome, "
                      "covariate or person-time (as R's glm, na.action = na.omit).", RowsOmittedWarning, stacklevel=3)
    model_rows = complete & ref
    if not model_rows.any():
        raise ScaleupDataError(f"{label}: no complete {'reference ' if reference else ''}row to fit the case-mix "
                               "model on" + (f" (column {reference!r} is never True among the complete rows)."
                                             if reference else "."))
    X_model = patsy.dmatrix("~ " + rhs, src.loc[model_rows], NA_action="raise", return_type="dataframe", eval_env=0)
    try:
        (X_all,) = patsy.build_design_matrices([X_model.design_info], src.loc[complete], NA_action="raise",
                                               return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ScaleupDataError(
            f"{label}: the rows outside the reference have a category of a covariate that no reference row has "
            f"({exc}); the case-mix model cannot give them an expected count. Add such rows to the reference or "
            "merge the category."
        ) from None
    cols = _ordered(X_model, rhs)
    names = [unaliased(c, aliases) for c in cols]
    Xm = X_model[cols].to_numpy(float)
    Xa = X_all[cols].to_numpy(float)
    idx = data.index[complete]
    check_matrix_values(Xa, names, idx, f"{label}, covariate(s)", max_abs=_MAX_ABS)
    if np.linalg.matrix_rank(Xm) < Xm.shape[1]:
        raise ScaleupDataError(f"{label}: the covariates {shown!r} are collinear among the model rows (a constant "
                               f"or redundant column among {names}, or one too small to tell apart from 0); R's glm "
                               "would give NA coefficients. Remove the redundant covariate or rescale it.")
    ym = y[model_rows]
    if family == "binomial" and (ym.min() == ym.max()):
        raise ScaleupDataError(f"{label}, column {outcome!r}: {'no event' if ym.max() == 0 else 'only events'} "
                               "among the model rows; a logistic model needs both outcomes.")
    if family == "poisson" and ym.max() == 0:
        raise ScaleupDataError(f"{label}, column {outcome!r}: no event among the model rows; every expected count "
                               "would be 0.")
    return {"outcome": outcome, "unit": unit, "person_time": person_time, "reference": reference, "shown": shown,
            "names": names, "y": y[complete], "keys": keys[complete].to_numpy(), "offset": offset[complete],
            "time": np.exp(offset[complete]), "X": Xa, "model": model_rows[complete], "n_omitted": n_omitted,
            "index": idx}


def _fit_glm(p, family, fn):
    """The case-mix GLM on the model rows (statsmodels IRLS, tolerance 1e-12, as glm's epsilon)."""
    import statsmodels.api as sm

    m = p["model"]
    fam = sm.families.Binomial() if family == "binomial" else sm.families.Poisson()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sm.GLM(p["y"][m], p["X"][m], family=fam, offset=p["offset"][m]).fit(method="IRLS", tol=1e-12,
                                                                                   maxiter=100)
    mu_model = res.fittedvalues
    separated = family == "binomial" and bool(np.any((mu_model < 1e-10) | (mu_model > 1 - 1e-10)))
    converged = bool(res.converged) and not any("separation" in str(w.message).lower() for w in caught)
    if not converged or separated:
        warnings.warn(f"{fn}: the case-mix model did not converge or fitted probabilities of 0 or 1 occurred "
                      "(a covariate separates the outcomes); its coefficients and the expected counts are "
                      "unreliable. Merge sparse categories or remove the covariate.", ConvergenceWarning,
                      stacklevel=4)
    return res, converged


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, average ranks for ties; fitted values equal to 10
    decimals are ties, so rows sharing a covariate pattern tie whatever the rounding of the fit)."""
    r = stats.rankdata(np.round(p, 10))
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# ----------------------------------------------------------------------------------------------
# indirect standardisation
# ----------------------------------------------------------------------------------------------
@checked_inputs
def indirect_standardization(
    data: pd.DataFrame,
    *,
    outcome: str,
    covariates: Sequence[str] | str,
    unit: str = "site_id",
    family: str = "binomial",
    person_time: str | None = None,
    reference: str | None = None,
    level: float = 0.95,
) -> IndirectStandardization:
    r"""Indirectly standardised ratios (observed / expected) of units from a patient-level case-mix model.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient (or encounter), e.g. the ``encounters`` table.
    outcome : str
        The outcome column: 0/1 (``family="binomial"``) or a count of events (``"poisson"``).
    covariates : list of str or str
        The case-mix covariates: a list of column names (never evaluated as code; text or
        True/False columns are dummy-coded with their first level as reference, as R's ``glm``
        does with factors; numbers enter as they are), or a formula string such as
        ``"age + female + C(deprivation_quintile)"`` (patsy syntax; the caller's own code).
    unit : str
        The column of the units compared (sites).
    family : {"binomial", "poisson"}
        Logistic model of a 0/1 outcome, or Poisson log-linear model of counts.
    person_time : str, optional
        Poisson models: the column of each row's person-time (years, days...), **not its log**;
        the model's offset is ``log(person_time)``. Without it every row has person-time 1.
    reference : str, optional
        A True/False (or 1/0) column: the model is fitted on its True rows only (a reference period,
        the pre-scale-up sites) and predicts every row. Default: all rows.
    level : float
        Coverage of the intervals.

    Returns
    -------
    IndirectStandardization
        Per unit in ``to_frame()``; the model in ``coef``; ``funnel()`` for the funnel plot.

    Raises
    ------
    ScaleupDataError
        Naming table ``'data'``, the column and the rows: a missing column, an outcome that is not
        0/1 (binomial) or a count (Poisson), a person-time that is not positive, a ``reference``
        column that is not True/False, a missing unit, collinear covariates, an outcome without
        both values among the model rows, a category outside the reference rows, a unit whose
        expected count is 0.

    Warns
    -----
    RowsOmittedWarning
        Rows with a missing outcome, covariate or person-time are left out of everything (model,
        observed and expected counts), as R's ``glm`` with its default ``na.action = na.omit``.
    ConvergenceWarning
        The model did not converge or separates the outcomes.

    Notes
    -----
    The case-mix model (without the unit) is fitted by iteratively reweighted least squares
    (statsmodels, tolerance 1e-12: the coefficients agree with ``glm(..., control =
    glm.control(epsilon = 1e-14))`` to 1e-8). For unit :math:`j` with rows :math:`i`, fitted
    probabilities (or rates x person-time) :math:`\hat\mu_i`,

    .. math::

        O_j = \sum_i y_i, \quad E_j = \sum_i \hat\mu_i, \quad SR_j = O_j / E_j,

    the expected count being what the unit's patients would have had with the average (or the
    reference rows') performance. The interval of :math:`SR_j` is the exact (Garwood) Poisson
    interval of :math:`O_j`, :math:`[\chi^2_{p/2}(2O_j)/2,\ \chi^2_{1-p/2}(2O_j+2)/2] / E_j`
    (:math:`p = 1 -` ``level``; lower bound 0 when :math:`O_j = 0`), which treats :math:`E_j` as
    fixed (its sampling error, small when the model rows are many, is ignored). The risk-adjusted
    rate is :math:`SR_j \times` ``crude_rate`` (events per row, or per unit of person-time, of the
    model rows), with the same interval scaled. ``excess`` is :math:`O_j - E_j` and
    :math:`z_j = (O_j - E_j)/\sqrt{V_j}` with :math:`V_j = \sum_i \hat\mu_i(1-\hat\mu_i)`
    (binomial) or :math:`E_j` (Poisson). A unit with no row among the reference rows still gets
    its expected count from its patients' covariates. The c-statistic is the area under the ROC
    curve of the fitted probabilities on the model rows.

    References
    ----------
    Breslow, N. E., & Day, N. E. (1987). Statistical Methods in Cancer Research, Vol. II. IARC,
    ch. 2 (SMR and its exact interval).

    Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Statistics
    in Medicine, 24(8), 1185-1202.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> d = pd.DataFrame({"site_id": list("AAAABBBBCCCC"),
    ...                   "age": [45, 50, 60, 70, 60, 70, 80, 85, 50, 55, 65, 75],
    ...                   "event": [0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0]})
    >>> res = sa.indirect_standardization(d, outcome="event", covariates=["age"])
    >>> res.to_frame()[["unit", "events", "expected", "ratio", "ratio_ci_low", "ratio_ci_high"]].round(3)
      unit  events  expected  ratio  ratio_ci_low  ratio_ci_high
    0    A       1     1.152  0.868         0.022          4.835
    1    B       3     2.375  1.263         0.260          3.691
    2    C       1     1.472  0.679         0.017          3.784
    """
    level = check_level(level, _FN)
    p = _prepare(data, _FN, outcome, covariates, unit, family, person_time, reference)
    res, converged = _fit_glm(p, family, _FN)
    beta = np.asarray(res.params, dtype=float)
    mu = np.exp(p["X"] @ beta + p["offset"])
    if family == "binomial":
        mu = mu / (1.0 + mu)
    y, m = p["y"], p["model"]
    var = mu * (1 - mu) if family == "binomial" else mu
    df = pd.DataFrame({"unit": p["keys"], "n": 1, "person_time": p["time"], "events": y, "expected": mu, "V": var})
    t = df.groupby("unit", sort=True).sum()
    zero = ~(t["expected"] > 0)
    if zero.any():
        raise ScaleupDataError(f"{_FN}: table 'data': unit(s) {first_values(t.index[zero])} have an expected count "
                               "of 0 (no person-time or probabilities that underflow); their ratio is undefined. "
                               "Leave them out.")
    crude = float(y[m].sum() / (p["time"][m].sum() if family == "poisson" else m.sum()))
    a = 1 - level
    O, E = t["events"].to_numpy(float), t["expected"].to_numpy(float)
    low = np.where(O > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(O, 1)) / 2, 0.0) / E
    high = stats.chi2.ppf(1 - a / 2, 2 * (O + 1)) / 2 / E
    units = pd.DataFrame({"unit": t.index.to_numpy(), "n": t["n"].to_numpy(int)})
    if family == "poisson":
        units["person_time"] = t["person_time"].to_numpy(float)
    units = units.assign(events=O.astype(np.int64), expected=E, ratio=O / E, ratio_ci_low=low, ratio_ci_high=high,
                         adjusted_rate=O / E * crude, adjusted_rate_ci_low=low * crude,
                         adjusted_rate_ci_high=high * crude, excess=O - E, z=(O - E) / np.sqrt(t["V"].to_numpy()))
    names = p["names"]
    coef = pd.DataFrame({"term": names, "estimate": beta, "se": np.asarray(res.bse, float),
                         "statistic": np.asarray(res.tvalues, float), "pvalue": np.asarray(res.pvalues, float)})
    vcov = pd.DataFrame(np.asarray(res.cov_params(), float), index=names, columns=names)
    c_stat = _auc(np.asarray(res.fittedvalues, float), y[m]) if family == "binomial" else math.nan
    return IndirectStandardization(
        family=family, outcome=p["outcome"], unit=p["unit"], formula=p["shown"], person_time=p["person_time"],
        reference=p["reference"], coef=coef, vcov=vcov, crude_rate=crude, c_statistic=c_stat,
        deviance=float(res.deviance), loglik=float(res.llf), AIC=float(res.aic), converged=converged, level=level,
        n_obs=int(len(y)), n_reference=int(m.sum()), n_units=int(len(units)), n_omitted=p["n_omitted"],
        units=units)


# ----------------------------------------------------------------------------------------------
# reliability-adjusted (shrunken) values and rankability
# ----------------------------------------------------------------------------------------------
@checked_inputs
def reliability_adjusted_values(
    data: pd.DataFrame,
    *,
    outcome: str,
    covariates: Sequence[str] | str,
    unit: str = "site_id",
    level: float = 0.95,
    n_draws: int = 4000,
    seed=None,
) -> ReliabilityAdjusted:
    r"""Shrunken (empirical-Bayes) unit effects adjusted for case mix, their ranks and rankability.

    Fits the logistic random-intercept model ``outcome ~ covariates + (1 | unit)`` with
    :func:`~scaleup_analysis.mixed_model` (Laplace, as ``lme4::glmer``) and returns each unit's
    conditional mode (its effect shrunk towards the average in proportion to its unreliability), so
    that a small unit is not ranked first or last by chance.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per patient, 0/1 outcome.
    outcome : str
        The 0/1 outcome column.
    covariates : list of str or str
        The case-mix covariates (fixed effects), as in :func:`indirect_standardization`.
    unit : str
        The column of the units (the random intercept's grouping factor).
    level : float
        Coverage of the intervals of the effects and of the ranks.
    n_draws : int
        Draws from the units' conditional distributions for the rank intervals (4000: the
        interval's ends are then stable to about one rank for up to ~100 units).
    seed : int, numpy.random.Generator or None
        Seed of the draws.

    Returns
    -------
    ReliabilityAdjusted

    Raises
    ------
    ScaleupDataError
        As :func:`indirect_standardization` (binomial); also fewer than 2 units.

    Warns
    -----
    RowsOmittedWarning
        Rows with a missing outcome or covariate are left out (as ``glmer``'s ``na.omit``).
    ScaleupWarning
        The between-unit variance is estimated at 0 (singular fit): every effect is shrunk to 0 and
        the units cannot be ranked.

    Notes
    -----
    With :math:`\hat b_j` the conditional mode of unit :math:`j` and :math:`v_j` its conditional
    variance (``ranef(fit, condVar = TRUE)``), the interval is :math:`\hat b_j \pm z_{(1+level)/2}
    \sqrt{v_j}` on the log-odds scale (exp for the odds ratio against a typical unit with the same
    patients); it ignores the uncertainty of the fixed effects and of :math:`\tau^2`, as lme4.
    The within-unit variance of the unit's effect (its squared standard error without shrinkage)
    is the inverse of its Fisher information, :math:`s_j^2 = 1/\sum_{i \in j} \hat\mu_i(1-\hat\mu_i)`
    at the conditional modes; at the Laplace approximation :math:`v_j = (1/s_j^2 + 1/\tau^2)^{-1}`,
    so the reliability (shrinkage factor) :math:`R_j = \tau^2/(\tau^2 + s_j^2) = 1 - v_j/\tau^2`.
    The rankability is :math:`\rho = \tau^2/(\tau^2 + \operatorname{median}_j s_j^2)` (van
    Houwelingen et al. 2000; Lingsma et al. 2010; the within-unit variance is computed from the
    information rather than a fixed-effects fit, so that units without events keep a finite value).
    Ranks: rank 1 is the highest effect (the most events given the case mix; reverse them for a
    desirable outcome). The rank interval holds the ``(1 -/+ level)/2`` quantiles of each unit's
    rank over ``n_draws`` joint draws :math:`b_j \sim N(\hat b_j, v_j)`, independent across units.

    References
    ----------
    Lingsma, H. F., et al. (2010). Comparing and ranking hospitals based on outcome: results from
    The Netherlands Stroke Survey. QJM, 103(2), 99-108.

    van Houwelingen, H. C., Brand, R., & Louis, T. A. (2000). Empirical Bayes methods for monitoring
    health care quality. Leiden University Medical Center.

    Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models
    using lme4. Journal of Statistical Software, 67(1).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import scaleup_analysis as sa
    >>> rng = np.random.default_rng(3)
    >>> site = np.repeat(["A", "B", "C", "D", "E", "F"], 60)
    >>> age = rng.normal(60, 10, site.size)
    >>> u = {"A": -0.8, "B": -0.3, "C": 0.0, "D": 0.2, "E": 0.4, "F": 1.2}
    >>> lp = -1 + 0.03 * (age - 60) + np.array([u[s] for s in site])
    >>> d = pd.DataFrame({"site_id": site, "age": age, "event": rng.binomial(1, 1 / (1 + np.exp(-lp)))})
    >>> res = sa.reliability_adjusted_values(d, outcome="event", covariates=["age"], seed=1)
    >>> res.to_frame().sort_values("rank")["unit"].iloc[0]
    'F'
    """
    from ..heterogeneity.mixed import mixed_model

    level = check_level(level, _FN_REL)
    n_draws = check_draw_count(_FN_REL, "n_draws", n_draws, minimum=100)
    p = _prepare(data, _FN_REL, outcome, covariates, unit, "binomial", None, None)
    keys = p["keys"]
    uniq = np.unique(keys)
    if len(uniq) < 2:
        raise ScaleupDataError(f"{_FN_REL}: table 'data', column {p['unit']!r}: {len(uniq)} unit among the rows used; "
                               "a random-intercept model needs at least 2 units.")
    X = p["X"]
    names = p["names"]
    slopes = [j for j, nm in enumerate(names) if not np.all(X[:, j] == 1.0)]
    frame = pd.DataFrame({f"_sa_x{k}": X[:, j] for k, j in enumerate(slopes)})
    frame["_sa_y"] = p["y"]
    frame["_sa_unit"] = keys
    formula = "_sa_y ~ " + (" + ".join(f"_sa_x{k}" for k in range(len(slopes))) or "1")
    if len(slopes) == len(names):
        formula += " - 1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = mixed_model(frame, formula, group="_sa_unit", family="binomial", level=level)
    for w in caught:
        if issubclass(w.category, ScaleupWarning) and "singular" not in str(w.message):
            warnings.warn(str(w.message).replace("mixed_model", _FN_REL).replace("_sa_unit", p["unit"]), w.category,
                          stacklevel=3)
    if fit.singular:
        warnings.warn(f"{_FN_REL}: boundary (singular) fit: the between-unit variance is estimated at 0, so every "
                      "unit's effect is shrunk to 0 and the units cannot be ranked (rankability 0): their differences "
                      "are compatible with chance given the case mix.", ScaleupWarning, stacklevel=3)
    re = fit.random_effects
    re = re[re["term"] == re["term"].iloc[0]].set_index("group").loc[list(uniq)]
    b, se = re["estimate"].to_numpy(float), re["se"].to_numpy(float)
    tau2 = float(fit.tau2)
    beta = fit.fixed["estimate"].to_numpy(float)
    codes = np.searchsorted(uniq, keys)
    Xf = X[:, slopes] if len(slopes) == len(names) else np.column_stack([np.ones(len(keys)), X[:, slopes]])
    eta = Xf @ beta + b[codes]
    mu = 1.0 / (1.0 + np.exp(-eta))
    info = np.bincount(codes, weights=mu * (1 - mu), minlength=len(uniq))
    within = 1.0 / info
    reliability = tau2 / (tau2 + within)
    med = float(np.median(within))
    rankability = tau2 / (tau2 + med)
    z = stats.norm.ppf(0.5 + level / 2)
    rng = np.random.default_rng(seed)
    G = len(uniq)
    draws = rng.standard_normal((n_draws, G)) * se + b
    ranks = G - np.argsort(np.argsort(draws, axis=1), axis=1)  # 1 = highest
    q = (1 - level) / 2
    rank_low = np.quantile(ranks, q, axis=0, method="inverted_cdf")
    rank_high = np.quantile(ranks, 1 - q, axis=0, method="inverted_cdf")
    point = stats.rankdata(-b, method="min").astype(int)
    n = np.bincount(codes, minlength=G)
    events = np.bincount(codes, weights=p["y"], minlength=G)
    units = pd.DataFrame({"unit": uniq, "n": n, "events": events.astype(np.int64), "estimate": b, "se": se, "ci_low": b - z * se,
                          "ci_high": b + z * se, "odds_ratio": np.exp(b), "odds_ratio_ci_low": np.exp(b - z * se),
                          "odds_ratio_ci_high": np.exp(b + z * se), "within_variance": within,
                          "reliability": reliability, "rank": point, "rank_ci_low": rank_low.astype(int),
                          "rank_ci_high": rank_high.astype(int)})
    return ReliabilityAdjusted(
        outcome=p["outcome"], unit=p["unit"], formula=p["shown"], tau2=tau2, rankability=float(rankability),
        within_variance=med, level=level, n_draws=n_draws, n_obs=int(len(keys)), n_units=G,
        n_omitted=p["n_omitted"], model=fit, units=units)
