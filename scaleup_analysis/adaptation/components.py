r"""Active ingredients: which components of an intervention carry its effect.

:func:`component_analysis` is a meta-regression of study effects on component indicators (joint and
one-component-at-a-time models, with optional permutation tests), computed with
:func:`scaleup_analysis.meta_regression` (:class:`ComponentAnalysis`).

References
----------
Landenberger, N. A., & Lipsey, M. W. (2005). The positive effects of cognitive-behavioral programs for
offenders: a meta-analysis of factors associated with effective treatment. Journal of Experimental
Criminology, 1, 451-476. https://doi.org/10.1007/s11292-005-3541-7
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._checks import checked_inputs, rows_text
from .._display import Displayed
from .._style import NEUTRAL, PALETTE, data_text, new_axes, styled, ticks_inside, word
from ..errors import RowsOmittedWarning, ScaleupDataError
from ..i18n import N_
from ..narrative import Text

__all__ = ["component_analysis", "ComponentAnalysis"]

_YES = {"yes", "y", "true", "t", "1", "1.0", "oui"}
_NO = {"no", "n", "false", "f", "0", "0.0", "non"}
_MODELS = {"joint": N_("joint"), "separate": N_("separate")}


def _indicator(df: pd.DataFrame, col: str, table: str) -> pd.Series:
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    if pd.api.types.is_numeric_dtype(s):
        v = s.astype(float)
        bad = v.notna() & ~v.isin([0.0, 1.0])
    else:
        low = s.astype(object).where(s.isna(), s.astype(str).str.strip().str.lower())
        v = pd.Series(np.where(low.isin(_YES), 1.0, np.where(low.isin(_NO), 0.0, np.nan)), index=s.index)
        bad = s.notna() & v.isna()
    if bad.any():
        raise ScaleupDataError(
            f"table '{table}', column {col!r}: component indicators must be yes/no, True/False or 0/1; "
            f"{rows_text(df.index[bad.to_numpy()])} hold other values (e.g. {s[bad].iloc[0]!r})."
        )
    return v


@dataclass(frozen=True, repr=False)
class ComponentAnalysis(Displayed):
    """Result of :func:`component_analysis`.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: one row per component and model (``"joint"``: all components in one meta-regression;
        ``"separate"``: one meta-regression per component), with ``estimate`` (difference in average
        effect between studies with and without the component), ``se``, ``statistic``, ``pvalue``,
        ``ci_low``, ``ci_high``, ``k_with`` / ``k_without`` (studies with / without it), ``tau2``
        (residual heterogeneity of that model) and ``pvalue_perm`` (permutation p-value, if requested).
    joint : MetaRegressionResult
        The model with all components.
    separate : dict of str to MetaRegressionResult
        One model per component.
    permutation : PermutationTestResult or None
        Permutation test of the joint model.
    method, test : str
    components : tuple of str
    """

    table: pd.DataFrame
    joint: object
    separate: dict
    permutation: object
    method: str
    test: str
    components: tuple
    level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """The tidy ``table``."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        j = self.joint
        return {"k": j.k, "n_components": len(self.components), "method": self.method, "test": self.test,
                "tau2": j.tau2, "QM": j.QM, "QM_pvalue": j.QM_pvalue, "R2": j.R2}

    def _summary(self, tx) -> str:
        """The component coefficients of the joint and separate models, as a table."""
        j = self.joint
        lines = [
            tx("Component analysis ({method}, test = {test}): {k}, {c}", method=self.method, test=self.test,
               k=tx.n("{n} study", "{n} studies", j.k),
               c=tx.n("{n} component", "{n} components", len(self.components))),
            tx("Joint model: tau² = {tau2}, QM = {QM} ({p}), R² = {R2}", tau2=tx.num(j.tau2, 4), QM=tx.num(j.QM, 3),
               p=tx.pvalue(j.QM_pvalue), R2=tx.pct(j.R2 / 100, 1)),
            "",
        ]
        header = [tx("Model"), tx("Component"), tx("Estimate"), tx("SE"), "p",
                  tx("{level} CI", level=tx.pct(self.level)), tx("Studies with / without")]
        perm = self.table["pvalue_perm"].notna().any()
        if perm:
            header.append(tx("p (permutations)"))
        rows = []
        for r in self.table.itertuples(index=False):
            row = [word(tx, _MODELS, r.model), str(r.component), tx.num(r.estimate, 4), tx.num(r.se, 4),
                   tx.pvalue(r.pvalue).removeprefix("p = "), tx.interval(r.ci_low, r.ci_high, 4),
                   f"{tx.int(r.k_with)} / {tx.int(r.k_without)}"]
            if perm:
                row.append(tx.pvalue(r.pvalue_perm).removeprefix("p = "))
            rows.append(row)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        for r in [header, *rows]:
            lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
        return "\n".join(lines)

    @styled
    def plot_components(self, *, model: str = "joint", xlabel: str | None = None, ax=None):
        """Forest-style plot of the component coefficients with their CIs; returns the Axes."""
        from matplotlib.lines import Line2D

        tx = Text()
        d = self.table[self.table["model"] == model]
        if d.empty:
            raise ScaleupDataError(f"plot_components(): model must be 'joint' or 'separate', got {model!r}.")
        ax = new_axes(ax, (7.5, 0.4 * len(d) + 2.0))
        pos = np.arange(len(d))
        ax.errorbar(d["estimate"], pos, xerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]],
                    fmt="s", color=PALETTE[0], ecolor=PALETTE[0], capsize=2, markersize=5)
        ax.axvline(0, color=NEUTRAL, ls="--", lw=1)
        ax.set_yticks(pos, [data_text(c) for c in d["component"]])
        ax.set_ylim(len(d) - 0.5, -0.5)
        ticks_inside(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(tx("Difference in effect (studies with minus without the component)") if xlabel is None
                      else xlabel)
        ax.set_title(tx("Active ingredients ({model} model, {level} CI)", model=word(tx, _MODELS, model),
                        level=tx.pct(self.level)))
        level = tx.pct(self.level)
        ax.legend(handles=[Line2D([], [], marker="s", color=PALETTE[0],
                                  label=tx("Estimate and {level} CI", level=level)),
                           Line2D([], [], color=NEUTRAL, ls="--", label=tx("No difference"))],
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return ax


def _component_frame(data, yi, vi, components, slab) -> tuple[pd.DataFrame, list[str], list[str]]:
    """yi, vi (and slab) with one 0/1 column per component under a safe name ``comp_<j>``; returns
    the frame, the components and their safe names."""
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"table 'data' must be a pandas DataFrame, got {type(data).__name__}.")
    if components is None or isinstance(components, str) or len(components) == 0:
        raise ScaleupDataError(
            "argument 'components': give the list of component indicator columns, e.g. "
            "components=['cbt.angerctrl', 'cbt.intpprbsolv']."
        )
    components = list(components)
    missing = [c for c in [yi, vi, *components] if c not in data.columns]
    if missing:
        raise ScaleupDataError(f"table 'data': no column(s) {missing}. Available columns: {list(data.columns)[:20]}.")
    if len(set(components)) != len(components):
        raise ScaleupDataError("argument 'components': a component is listed twice.")
    safe = [f"comp_{j}" for j in range(len(components))]
    frame = pd.DataFrame({yi: data[yi], vi: data[vi]}, index=data.index)
    if slab is not None:
        frame[slab] = data[slab]
    for c, s in zip(components, safe):
        frame[s] = _indicator(data, c, "data")
        if frame[s].dropna().nunique() < 2:
            raise ScaleupDataError(
                f"table 'data', column {c!r}: the component is present in all or in none of the studies; it "
                "cannot be compared. Drop it from 'components'."
            )
    return frame, components, safe


@checked_inputs
def component_analysis(
    data: pd.DataFrame,
    yi: str = "yi",
    vi: str = "vi",
    components: Sequence[str] | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    n_perm: int | None = None,
    seed=None,
    slab: str | None = None,
) -> ComponentAnalysis:
    """Which components carry the effect? Meta-regression of effects on component indicators.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study (or site) with an effect size, its sampling variance and one indicator
        column per component (yes/no, True/False or 0/1).
    yi, vi : str
        Columns of the effect sizes (e.g. log odds ratios from :func:`effect_sizes`) and variances.
    components : sequence of str
        The component indicator columns.
    method : {"REML", "FE", "DL", "ML", "PM", "EB", "HE", "SJ"}
        Residual heterogeneity estimator (see :func:`meta_regression`).
    test : {"z", "knha"}
    level : float
    n_perm : int, optional
        If given, permutation tests (metafor ``permutest``) of the joint model and of every separate
        model with this many permutations (exact when the distinct permutations are fewer).
    seed : int, optional
        Seed of the permutations.
    slab : str, optional
        Study labels.

    Returns
    -------
    ComponentAnalysis

    Notes
    -----
    Joint model: :math:`y_i = \\beta_0 + \\sum_c \\beta_c x_{ic} + u_i + e_i`, :math:`u_i \\sim
    N(0, \\tau^2)`, :math:`e_i \\sim N(0, v_i)`, with :math:`x_{ic} = 1` if study :math:`i`'s
    programme contains component :math:`c`: :math:`\\beta_c` is the difference in average effect
    associated with the component, holding the other components fixed. Separate models use one
    component at a time (marginal associations, confounded by co-occurring components). Both are
    observational comparisons between studies (meta-regression), not randomised component tests
    (e.g. factorial or dismantling trials). Computed with :func:`meta_regression` (exact against
    metafor's ``rma(yi, vi, mods = ~ ...)``).

    References
    ----------
    Landenberger, N. A., & Lipsey, M. W. (2005). Journal of Experimental Criminology, 1, 451-476.

    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of
    Statistical Software, 36(3).

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> dat = sa.load_dataset("landenberger2005")
    >>> dat = sa.effect_sizes(dat, "OR", ai="n.cbt.non", bi="n.cbt.rec", ci="n.ctrl.non", di="n.ctrl.rec")
    >>> res = sa.component_analysis(dat, components=["cbt.angerctrl", "cbt.intpprbsolv", "cbt.victimimpact"])
    >>> res.table.query("model == 'joint'").set_index("component")["estimate"].round(3)
    component
    cbt.angerctrl       0.491
    cbt.intpprbsolv     0.295
    cbt.victimimpact   -0.524
    Name: estimate, dtype: float64
    """
    from ..heterogeneity.meta import meta_regression

    frame, components, safe = _component_frame(data, yi, vi, components, slab)
    joint = meta_regression(frame, yi=yi, vi=vi, mods=safe, method=method, test=test, level=level, slab=slab)
    perm = joint.permutation_test(n_perm=n_perm, seed=seed) if n_perm is not None else None
    rows = []
    cols = ["estimate", "se", "statistic", "pvalue", "ci_low", "ci_high"]
    used = joint.data
    for c, s in zip(components, safe):
        r = joint.coef.loc[s, cols]
        k_with = int((used[s] == 1).sum())
        rows.append(("joint", c, *r.to_numpy(), k_with, int(len(used) - k_with), joint.tau2,
                     float(perm.pvalue[s]) if perm is not None else math.nan))
    separate = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RowsOmittedWarning)  # already reported by the joint fit
        for j, (c, s) in enumerate(zip(components, safe)):
            m = meta_regression(frame, yi=yi, vi=vi, mods=[s], method=method, test=test, level=level, slab=slab)
            separate[c] = m
            p_s = math.nan
            if n_perm is not None:
                p_s = float(m.permutation_test(n_perm=n_perm, seed=None if seed is None else [seed, j + 1]).pvalue[s])
            k_with = int((m.data[s] == 1).sum())
            rows.append(("separate", c, *m.coef.loc[s, cols].to_numpy(), k_with, int(len(m.data) - k_with), m.tau2, p_s))
    table = pd.DataFrame(rows, columns=["model", "component", *cols, "k_with", "k_without", "tau2", "pvalue_perm"])
    return ComponentAnalysis(table=table, joint=joint, separate=separate, permutation=perm, method=method, test=test,
                             components=tuple(components), level=level)
