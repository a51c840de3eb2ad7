r"""Adaptations: the FRAME / FRAME-IS coding scheme, summaries, effects and active ingredients.

The ``adaptations`` table (``docs/data_dictionary.md``) documents one adaptation per row, coded with
the Framework for Reporting Adaptations and Modifications-Enhanced (FRAME; Wiltsey Stirman, Baumann
& Miller, 2019) or, for modifications of the *implementation strategies* themselves, with the FRAME-IS
(Miller, Barnett, Baumann, Gutner & Wiltsey Stirman, 2021). This module provides

* :func:`frame_scheme` - the coding scheme as data (field, short code, label, group);
* :func:`validate_adaptations` - checks an adaptations table against the scheme (typed copy or one
  :class:`~scaleup_analysis.errors.ScaleupDataError` listing every unknown code, its rows and the
  accepted values);
* :func:`summarize_adaptations` and :func:`plot_adaptation_timeline` - counts and shares by FRAME
  field, region and phase, and a site x period timeline;
* :func:`adaptation_effects` - a multilevel model of site x period outcomes on the cumulative number
  of fidelity-consistent and fidelity-inconsistent adaptations, and an event study around each site's
  first fidelity-inconsistent adaptation;
* :func:`fidelity_dose_response` - the outcome (treatment effect) on the fidelity index;
* :func:`component_analysis` - which components of an intervention carry its effect (meta-regression
  of study effects on component indicators: "active ingredients").

Codes are our own short, stable, lower-case identifiers (e.g. ``"tailoring"``); each has the FRAME
label. Multiple answers are allowed where FRAME allows several (who participated, goal, reason,
nature) and are written separated by ``";"`` (e.g. ``"improve_fit;reduce_cost"``). A reason may be
coded at the level only (``"organizational"``) or with its FRAME sub-reason
(``"organizational:time_constraints"``).

References
----------
Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). The FRAME: an expanded framework for
reporting adaptations and modifications to evidence-based interventions. Implementation Science, 14,
58. https://doi.org/10.1186/s13012-019-0898-y

Miller, C. J., Barnett, M. L., Baumann, A. A., Gutner, C. A., & Wiltsey Stirman, S. (2021). The
FRAME-IS: a framework for documenting modifications to implementation strategies in healthcare.
Implementation Science, 16, 36. https://doi.org/10.1186/s13012-021-01105-3

Landenberger, N. A., & Lipsey, M. W. (2005). The positive effects of cognitive-behavioral programs for
offenders: a meta-analysis of factors associated with effective treatment. Journal of Experimental
Criminology, 1, 451-476. https://doi.org/10.1007/s11292-005-3541-7
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_level, require_columns, rows_text
from .errors import RowsOmittedWarning, ScaleupDataError

__all__ = [
    "frame_scheme",
    "validate_adaptations",
    "summarize_adaptations",
    "AdaptationSummary",
    "plot_adaptation_timeline",
    "adaptation_effects",
    "AdaptationEffects",
    "fidelity_dose_response",
    "DoseResponse",
    "component_analysis",
    "ComponentAnalysis",
]

_MULTI_SEP = ";"

# ------------------------------------------------------------------------------------------------
# The coding schemes (code, label[, group]); the codes of `when`, `planned`, `what_modified` and
# `fidelity_relation` are those of the `adaptations` schema (scaleup_analysis/data/schemas.py).
# ------------------------------------------------------------------------------------------------
_WHEN = (
    ("pre-implementation", "Pre-implementation / planning / pilot"),
    ("implementation", "Implementation"),
    ("scale-up", "Scale-up"),
    ("maintenance", "Maintenance / sustainment"),
)
_PLANNED = (
    ("planned-proactive", "Planned / proactive (proactive adaptation)"),
    ("planned-reactive", "Planned / reactive (reactive adaptation)"),
    ("unplanned-reactive", "Unplanned / reactive (modification)"),
)
_WHO_FRAME = (
    ("political_leader", "Political leaders"),
    ("program_leader", "Program leader"),
    ("funder", "Funder"),
    ("administrator", "Administrator"),
    ("program_manager", "Program manager"),
    ("developer_purveyor", "Intervention developer / purveyor"),
    ("researcher", "Researcher"),
    ("intervention_team", "Treatment / intervention team"),
    ("clinician", "Individual practitioner (clinician, provider)"),
    ("community", "Community members"),
    ("recipient", "Recipients (patients, clients)"),
)
_WHAT_FRAME = (
    ("content", "Content", "content"),
    ("context-format", "Contextual: format", "context"),
    ("context-setting", "Contextual: setting", "context"),
    ("context-personnel", "Contextual: personnel", "context"),
    ("context-population", "Contextual: population", "context"),
    ("training-evaluation", "Training and evaluation", "training_evaluation"),
    ("implementation-scaleup-activities", "Implementation and scale-up activities", "implementation"),
)
_LEVEL_FRAME = (
    ("individual", "Individual recipient"),
    ("group", "Cohort / group of recipients"),
    ("practitioner", "Individual practitioner"),
    ("clinic", "Clinic / unit"),
    ("organisation", "Organization"),
    ("network", "Network / system / community"),
    ("region", "Health region (RSS) - extension: network/system level of a Quebec region"),
)
_NATURE_FRAME = (
    ("tailoring", "Tailoring / tweaking / refining"),
    ("packaging", "Changes in packaging or materials"),
    ("adding", "Adding elements"),
    ("removing", "Removing / skipping elements"),
    ("shortening", "Shortening / condensing (pacing / timing)"),
    ("lengthening", "Lengthening / extending (pacing / timing)"),
    ("substituting", "Substituting elements"),
    ("reordering", "Reordering of modules or segments"),
    ("integrating_treatment", "Integrating another treatment into the intervention"),
    ("integrating_framework", "Integrating the intervention into another framework"),
    ("repeating", "Repeating elements or modules"),
    ("loosening", "Loosening structure"),
    ("drift", "Departing from the intervention (drift) without return"),
    ("drift_return", "Drift followed by a return to the protocol"),
)
_FIDELITY = (
    ("fidelity-consistent", "Fidelity-consistent (core elements preserved)"),
    ("fidelity-inconsistent", "Fidelity-inconsistent (core elements altered)"),
    ("unknown", "Unknown"),
)
_GOAL_FRAME = (
    ("increase_reach", "Increase reach or engagement"),
    ("increase_retention", "Increase retention"),
    ("improve_feasibility", "Improve feasibility"),
    ("improve_fit", "Improve fit with recipients"),
    ("address_culture", "Address cultural factors"),
    ("improve_outcomes", "Improve effectiveness / outcomes"),
    ("reduce_cost", "Reduce cost"),
    ("increase_satisfaction", "Increase satisfaction"),
)
_REASON_LEVELS = (
    ("sociopolitical", "Sociopolitical"),
    ("organizational", "Organization / setting"),
    ("provider", "Provider"),
    ("recipient", "Recipient"),
)
_SUBREASONS = {
    "sociopolitical": (
        ("laws", "Existing laws"),
        ("mandates", "Existing mandates"),
        ("policies", "Existing policies"),
        ("regulatory", "Existing regulatory or compliance requirements"),
        ("political_climate", "Political climate"),
        ("funding_policies", "Funding policies"),
        ("historical_context", "Historical context"),
        ("societal_norms", "Societal / cultural norms"),
        ("funding_availability", "Funding or resource allocation / availability"),
    ),
    "organizational": (
        ("resources", "Available resources (funds, staffing, technology, space)"),
        ("competing_demands", "Competing demands or mandates"),
        ("time_constraints", "Time constraints"),
        ("service_structure", "Service structure"),
        ("location_access", "Location / accessibility"),
        ("regulatory", "Regulatory / compliance"),
        ("billing", "Billing constraints"),
        ("social_context", "Social context (culture, climate, leadership support)"),
        ("mission", "Mission"),
        ("cultural_norms", "Cultural or religious norms"),
    ),
    "provider": (
        ("race", "Race"),
        ("ethnicity", "Ethnicity"),
        ("gender_sexual_identity", "Sexual / gender identity"),
        ("language", "First / spoken languages"),
        ("training_skills", "Previous training and skills"),
        ("preferences", "Preferences"),
        ("clinical_judgment", "Clinical judgment"),
        ("cultural_norms", "Cultural norms, competency"),
        ("perception", "Perception of the intervention"),
    ),
    "recipient": (
        ("race", "Race"),
        ("ethnicity", "Ethnicity"),
        ("gender_identity", "Gender identity"),
        ("sexual_orientation", "Sexual orientation"),
        ("access_resources", "Access to resources"),
        ("cognitive_capacity", "Cognitive capacity"),
        ("physical_capacity", "Physical capacity"),
        ("literacy_education", "Literacy and education level"),
        ("language", "First / spoken languages"),
        ("legal_status", "Legal status"),
        ("cultural_norms", "Cultural or religious norms"),
        ("comorbidity", "Comorbidity / multimorbidity"),
        ("immigration_status", "Immigration status"),
        ("crisis", "Crisis or emergent circumstances"),
        ("motivation_readiness", "Motivation and readiness"),
    ),
}

# FRAME-IS (modifications to implementation strategies)
_WHO_IS = _WHO_FRAME + (("implementation_support", "Implementation support (facilitator, champion)"),)
_WHAT_IS = (
    ("content", "Content of the strategy", "content"),
    ("evaluation", "Evaluation of the strategy", "evaluation"),
    ("training", "Training of implementers", "training"),
    ("context-format", "Context: format", "context"),
    ("context-setting", "Context: setting", "context"),
    ("context-personnel", "Context: personnel", "context"),
    ("context-population", "Context: population", "context"),
)
_NATURE_IS = tuple(c for c in _NATURE_FRAME if c[0] not in ("integrating_treatment", "integrating_framework")) + (
    ("integrating_strategy", "Integrating another implementation strategy"),
    ("integrating_framework", "Integrating the strategy into another framework"),
)
_LEVEL_IS = (
    ("individual", "Individual recipient"),
    ("group", "Group of recipients"),
    ("practitioner", "Individual implementer"),
    ("practitioner_group", "Group of implementers"),
    ("clinic", "Clinic / unit"),
    ("organisation", "Organization"),
    ("network", "Network / system / community"),
    ("region", "Health region (RSS) - extension: network/system level of a Quebec region"),
)
_GOAL_IS = (
    ("increase_reach", "Increase reach"),
    ("increase_adoption", "Increase adoption"),
    ("improve_feasibility", "Improve feasibility"),
    ("improve_fit", "Improve acceptability / appropriateness (fit)"),
    ("increase_fidelity", "Increase fidelity"),
    ("improve_sustainability", "Improve sustainability"),
    ("address_culture", "Address cultural factors"),
    ("improve_outcomes", "Improve effectiveness / outcomes"),
    ("reduce_cost", "Reduce cost"),
    ("increase_satisfaction", "Increase satisfaction"),
)
_REASON_LEVELS_IS = (
    ("sociopolitical", "Sociopolitical (macro)"),
    ("organizational", "Organization / setting (meso)"),
    ("provider", "Implementer / provider (micro)"),
    ("recipient", "Recipient (micro)"),
)

# field -> (codes, multi-valued?, required?, nullable?)
_FIELDS = {
    "FRAME": {
        "when": (_WHEN, False, True, False),
        "planned": (_PLANNED, False, True, False),
        "who_decided": (_WHO_FRAME, True, True, False),
        "what_modified": (_WHAT_FRAME, False, True, False),
        "level": (_LEVEL_FRAME, True, True, False),
        "nature": (_NATURE_FRAME, True, True, True),
        "fidelity_relation": (_FIDELITY, False, True, False),
        "goal": (_GOAL_FRAME, True, True, False),
        "reason": (None, True, True, False),  # levels and level:sub-reason
    },
    "FRAME-IS": {
        "when": (_WHEN, False, False, True),
        "planned": (_PLANNED, False, False, True),
        "who_decided": (_WHO_IS, True, False, True),
        "what_modified": (_WHAT_IS, False, True, False),
        "level": (_LEVEL_IS, True, False, True),
        "nature": (_NATURE_IS, True, True, True),
        "fidelity_relation": (_FIDELITY, False, False, True),
        "goal": (_GOAL_IS, True, True, False),
        "reason": (None, True, True, False),
    },
}
_SCHEMES = tuple(_FIELDS)
_CATEGORY_FIELDS = ("when", "planned", "what_modified", "fidelity_relation")


def _check_scheme(scheme: str) -> str:
    if scheme not in _FIELDS:
        raise ScaleupDataError(f"argument 'scheme' = {scheme!r}: choose 'FRAME' or 'FRAME-IS'.")
    return scheme


def _reason_codes(scheme: str) -> list[tuple[str, str, str]]:
    levels = _REASON_LEVELS if scheme == "FRAME" else _REASON_LEVELS_IS
    out = []
    for lv, label in levels:
        out.append((lv, label, lv))
        for sub, sl in _SUBREASONS[lv]:
            out.append((f"{lv}:{sub}", f"{label}: {sl}", lv))
    return out


def _codes(scheme: str, fld: str) -> list[tuple[str, str, str]]:
    """(code, label, group) of one field."""
    codes = _FIELDS[scheme][fld][0]
    if codes is None:
        return _reason_codes(scheme)
    return [(c[0], c[1], c[2] if len(c) > 2 else "") for c in codes]


def frame_scheme(scheme: str = "FRAME") -> pd.DataFrame:
    """The FRAME or FRAME-IS coding scheme as a tidy table.

    Parameters
    ----------
    scheme : {"FRAME", "FRAME-IS"}
        FRAME (Wiltsey Stirman et al., 2019) codes adaptations of the intervention; FRAME-IS
        (Miller et al., 2021) codes modifications of implementation strategies (a ``strategy``
        column names the strategy modified).

    Returns
    -------
    pandas.DataFrame
        One row per accepted code: ``field`` (column of the adaptations table), ``code`` (short
        code to write in the table), ``label`` (FRAME wording), ``group`` (``what_modified``: content
        / context / training-evaluation / implementation; ``reason``: the level of the reason),
        ``multiple`` (several codes may be given, separated by ``";"``), ``required`` (the column
        must be present and filled; ``nature`` may be missing, e.g. for non-content modifications).

    Notes
    -----
    The codes of ``when``, ``planned``, ``what_modified`` (FRAME) and ``fidelity_relation`` are those
    of the ``adaptations`` table schema. ``level`` adds ``region`` (a Quebec health region, a
    network/system level) to FRAME's levels of delivery. FRAME-IS replaces "integrating another
    treatment" by "integrating another implementation strategy", splits training and evaluation, and
    adds implementation outcomes to the goals (adoption, fidelity, sustainability).

    References
    ----------
    Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). Implementation Science, 14, 58.
    Miller, C. J., Barnett, M. L., Baumann, A. A., Gutner, C. A., & Wiltsey Stirman, S. (2021).
    Implementation Science, 16, 36.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> s = sa.frame_scheme("FRAME")
    >>> s.loc[s["field"] == "planned", "code"].tolist()
    ['planned-proactive', 'planned-reactive', 'unplanned-reactive']
    >>> int((s["field"] == "nature").sum())
    14
    """
    scheme = _check_scheme(scheme)
    rows = []
    for fld, (_, multi, required, nullable) in _FIELDS[scheme].items():
        for code, label, group in _codes(scheme, fld):
            rows.append((fld, code, label, group, multi, required and not nullable))
    return pd.DataFrame(rows, columns=["field", "code", "label", "section", "multiple", "required"])


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------
def _is_blank(s: pd.Series) -> np.ndarray:
    return (s.isna() | s.astype(str).str.strip().eq("")).to_numpy()


def _tokens(value) -> list[str]:
    return [t.strip() for t in str(value).split(_MULTI_SEP) if t.strip()]


def validate_adaptations(data: pd.DataFrame, scheme: str = "FRAME", table: str = "adaptations") -> pd.DataFrame:
    """Check an adaptations table against the FRAME or FRAME-IS coding scheme.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per adaptation with ``adaptation_id``, ``site_id``, ``period`` and the coded fields
        of :func:`frame_scheme` (FRAME-IS also needs ``strategy``, the implementation strategy that
        was modified; its optional fields ``when``, ``planned``, ``who_decided``, ``level`` and
        ``fidelity_relation`` may be absent or missing).
    scheme : {"FRAME", "FRAME-IS"}
    table : str
        Name of the table in error messages.

    Returns
    -------
    pandas.DataFrame
        A typed copy: identifiers as strings, ``period`` as int64, the single-valued coded fields
        (``when``, ``planned``, ``what_modified``, ``fidelity_relation``) as categoricals whose
        categories are the scheme's codes in FRAME order, the multi-valued fields as trimmed strings.

    Raises
    ------
    ScaleupDataError
        Listing every problem at once: a missing column, missing identifiers or codes, a period that
        is not an integer >= 1, a duplicated ``adaptation_id``, and, for each field, every unknown
        code with the rows where it occurs and the accepted codes.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> df = pd.DataFrame({"adaptation_id": ["A1"], "site_id": ["S1"], "period": [3],
    ...     "when": ["implementation"], "planned": ["planned-proactive"], "who_decided": ["clinician"],
    ...     "what_modified": ["content"], "level": ["clinic"], "nature": ["shortening"],
    ...     "fidelity_relation": ["fidelity-inconsistent"], "goal": ["improve_feasibility"],
    ...     "reason": ["organizational:time_constraints"]})
    >>> sa.validate_adaptations(df)["nature"].tolist()
    ['shortening']
    >>> df.loc[0, "nature"] = "cutting"
    >>> try:
    ...     sa.validate_adaptations(df)
    ... except sa.ScaleupDataError as e:
    ...     print(str(e).splitlines()[1].split(";")[0])
      - column 'nature': unknown code 'cutting' in 1 row(s) (index 0)
    """
    scheme = _check_scheme(scheme)
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"table '{table}' must be a pandas DataFrame, got {type(data).__name__}.")
    fields_ = _FIELDS[scheme]
    need = ["adaptation_id", "site_id", "period"] + (["strategy"] if scheme == "FRAME-IS" else [])
    need += [f for f, (_, _, req, _) in fields_.items() if req]
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ScaleupDataError(
            f"table '{table}' ({scheme}): missing column(s) {missing}. Required columns: {need}; "
            "see sa.frame_scheme() for the codes of each field."
        )
    df = data.copy()
    problems: list[str] = []
    for col in ["adaptation_id", "site_id"] + (["strategy"] if scheme == "FRAME-IS" else []):
        bad = _is_blank(df[col])
        if bad.any():
            problems.append(f"  - column '{col}': missing or blank in {rows_text(df.index[bad])}; fill it in.")
        df[col] = df[col].astype(object).where(~bad, None)
        df.loc[~bad, col] = df.loc[~bad, col].astype(str)
    per = pd.to_numeric(df["period"], errors="coerce")
    bad = (per.isna() | (per < 1) | (per != np.floor(per))).to_numpy()
    if bad.any():
        problems.append(
            f"  - column 'period': not an integer >= 1 in {rows_text(df.index[bad])}; periods are 1..T."
        )
    else:
        df["period"] = per.astype(np.int64)
    dup = df["adaptation_id"].duplicated(keep=False).to_numpy() & ~_is_blank(df["adaptation_id"])
    if dup.any():
        problems.append(
            f"  - column 'adaptation_id': duplicated in {rows_text(df.index[dup])}; each adaptation needs a "
            "unique identifier."
        )
    for fld, (_, multi, required, nullable) in fields_.items():
        if fld not in df.columns:
            continue
        accepted = [c for c, _, _ in _codes(scheme, fld)]
        acc_set = set(accepted)
        col = df[fld]
        blank = _is_blank(col)
        if blank.any() and not nullable:
            problems.append(
                f"  - column '{fld}': missing in {rows_text(df.index[blank])}; code every adaptation "
                f"(accepted: {', '.join(accepted)})."
            )
        unknown: dict[str, list] = {}
        clean = []
        for idx, v, b in zip(df.index, col.tolist(), blank):
            if b:
                clean.append(None)
                continue
            toks = _tokens(v) if multi else [str(v).strip()]
            if not multi and _MULTI_SEP in str(v):
                unknown.setdefault(str(v), []).append(idx)
            for t in toks:
                if t not in acc_set:
                    unknown.setdefault(t, []).append(idx)
            clean.append(_MULTI_SEP.join(toks) if multi else toks[0])
        for code, idxs in unknown.items():
            hint = " (one code only in this field)" if _MULTI_SEP in code else ""
            problems.append(
                f"  - column '{fld}': unknown code {code!r} in {rows_text(idxs)}{hint}; accepted: "
                + ", ".join(accepted)
                + ("" if not multi else f" (several allowed, separated by '{_MULTI_SEP}')")
                + "."
            )
        if not unknown:
            if fld in _CATEGORY_FIELDS:
                df[fld] = pd.Categorical(clean, categories=accepted)
            else:
                df[fld] = pd.Series(clean, index=df.index, dtype=object)
    if problems:
        raise ScaleupDataError(
            f"table '{table}' does not follow the {scheme} coding scheme ({len(problems)} problem(s)):\n"
            + "\n".join(problems)
            + "\nSee sa.frame_scheme(" + repr(scheme) + ") for every code and its label."
        )
    return df


# ------------------------------------------------------------------------------------------------
# summaries
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdaptationSummary:
    """Result of :func:`summarize_adaptations`.

    Attributes
    ----------
    counts : pandas.DataFrame
        Tidy: ``by`` (``"overall"`` or a column of ``sites`` such as ``rss_code`` or ``phase``),
        ``facet`` (its value; ``"all"`` overall), ``field``, ``code``, ``label``, ``n`` (adaptations
        with this code), ``n_adaptations`` (adaptations in the group) and ``share`` = n / n_adaptations.
        Every code of the scheme appears (zero counts included). For multi-valued fields an adaptation
        counts once for each code it mentions, so shares may add up to more than 1. ``reason_level``
        is the level of ``reason`` (sociopolitical, organizational, provider, recipient).
    per_site : pandas.DataFrame
        One row per site (every site of ``sites`` when given): ``n_adaptations``, ``n_consistent``,
        ``n_inconsistent``, ``n_unknown`` and ``first_inconsistent_period`` (missing if none).
    scheme : str
    n_adaptations : int
    """

    counts: pd.DataFrame
    per_site: pd.DataFrame
    scheme: str
    n_adaptations: int

    def to_frame(self) -> pd.DataFrame:
        """The tidy ``counts`` table."""
        return self.counts.copy()

    def summary(self) -> str:
        """Readable overall counts and shares by field."""
        c = self.counts[(self.counts["by"] == "overall") & (self.counts["n"] > 0)]
        lines = [f"{self.n_adaptations} adaptations ({self.scheme}) at {int((self.per_site['n_adaptations'] > 0).sum())} "
                 f"of {len(self.per_site)} sites"]
        for fld, d in c.groupby("field", sort=False):
            lines.append(f"{fld}:")
            for r in d.itertuples(index=False):
                lines.append(f"  {r.code:<40}{r.n:>6}  {100 * r.share:5.1f}%")
        return "\n".join(lines)

    def plot_counts(self, field: str = "fidelity_relation", by: str = "overall", *, ax=None):
        """Horizontal bars of the counts of one field (stacked by facet if ``by`` is not
        ``"overall"``), grey-scale with hatching; returns the Axes."""
        import matplotlib.pyplot as plt

        d = self.counts[(self.counts["field"] == field) & (self.counts["by"] == by)]
        if d.empty:
            raise ScaleupDataError(
                f"plot_counts(): no counts for field={field!r} and by={by!r}; fields: "
                f"{sorted(self.counts['field'].unique())}, by: {sorted(self.counts['by'].unique())}."
            )
        if ax is None:
            _, ax = plt.subplots(figsize=(6, max(2.5, 0.35 * d["code"].nunique() + 1)))
        codes = list(dict.fromkeys(d["code"]))
        pos = np.arange(len(codes))
        left = np.zeros(len(codes))
        hatches = ["", "//", "..", "xx", "\\\\", "--", "++", "oo"]
        greys = ["0.25", "0.55", "0.8", "0.4", "0.7", "0.15", "0.9", "0.6"]
        for k, (g, dg) in enumerate(d.groupby("facet", sort=True)):
            vals = dg.set_index("code")["n"].reindex(codes).fillna(0).to_numpy(dtype=float)
            ax.barh(pos, vals, left=left, color=greys[k % 8], hatch=hatches[(k // 8) % 8], edgecolor="black",
                    linewidth=0.5, label=str(g))
            left += vals
        ax.set_yticks(pos)
        ax.set_yticklabels(codes)
        ax.invert_yaxis()
        ax.set_xlabel("Number of adaptations")
        ax.set_title(f"Adaptations by {field}" + ("" if by == "overall" else f" and {by}"))
        if by != "overall":
            ax.legend(title=by, fontsize="small")
        return ax


def _check_sites(sites: pd.DataFrame, need: Sequence[str], arg: str = "sites") -> pd.DataFrame:
    require_columns(sites, arg, need, hint=f"It needs {list(need)}.")
    dup = sites["site_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise ScaleupDataError(
            f"table '{arg}', column 'site_id': duplicated in {rows_text(sites.index[dup])}; one row per site."
        )
    return sites


def _unknown_sites(ad: pd.DataFrame, sites: pd.DataFrame, table: str = "adaptations") -> None:
    bad = ~ad["site_id"].isin(set(sites["site_id"].astype(str))).to_numpy()
    if bad.any():
        raise ScaleupDataError(
            f"table '{table}', column 'site_id': {rows_text(ad.index[bad])} name sites absent from table "
            f"'sites' (e.g. {ad['site_id'][bad].iloc[0]!r}); add them to 'sites' or correct the identifiers."
        )


def _per_site(ad: pd.DataFrame, site_ids) -> pd.DataFrame:
    rel = ad["fidelity_relation"].astype(object) if "fidelity_relation" in ad else pd.Series(np.nan, index=ad.index)
    out = pd.DataFrame(index=pd.Index(list(site_ids), name="site_id"))
    out["n_adaptations"] = ad.groupby("site_id").size().reindex(out.index).fillna(0).astype(np.int64)
    for name, code in (("n_consistent", "fidelity-consistent"), ("n_inconsistent", "fidelity-inconsistent"),
                       ("n_unknown", "unknown")):
        out[name] = ad[rel == code].groupby("site_id").size().reindex(out.index).fillna(0).astype(np.int64)
    first = ad[rel == "fidelity-inconsistent"].groupby("site_id")["period"].min()
    out["first_inconsistent_period"] = pd.array(first.reindex(out.index), dtype="Int64")
    return out.reset_index()


def summarize_adaptations(
    data: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    fields: Sequence[str] | None = None,
    by: Sequence[str] = ("rss_code", "phase"),
    scheme: str = "FRAME",
) -> AdaptationSummary:
    """Counts and shares of adaptations by FRAME field, overall, by region and by phase.

    Parameters
    ----------
    data : pandas.DataFrame
        The adaptations table (validated with :func:`validate_adaptations` first).
    sites : pandas.DataFrame, optional
        The ``sites`` table: gives the ``by`` columns and the sites without any adaptation (they
        count in ``per_site`` with zero adaptations).
    fields : sequence of str, optional
        FRAME fields to summarize (default: every coded field present, plus ``reason_level``).
    by : sequence of str, default ("rss_code", "phase")
        Columns of ``sites`` to break the counts down by (ignored without ``sites``).
    scheme : {"FRAME", "FRAME-IS"}

    Returns
    -------
    AdaptationSummary

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=3, n_sites=40, n_periods=10, patients_per_site_period=2)
    >>> s = sa.summarize_adaptations(sim.tables["adaptations"], sites=sim.tables["sites"])
    >>> sorted(s.counts["by"].unique())
    ['overall', 'phase', 'rss_code']
    >>> c = s.counts.query("by == 'overall' and field == 'fidelity_relation'")
    >>> int(c["n"].sum()) == s.n_adaptations
    True
    """
    ad = validate_adaptations(data, scheme=scheme)
    fields_all = [f for f in _FIELDS[scheme] if f in ad.columns]
    if fields is None:
        fields = fields_all + (["reason_level"] if "reason" in ad.columns else [])
    else:
        fields = list(fields)
        bad = [f for f in fields if f not in fields_all + ["reason_level"]]
        if bad:
            raise ScaleupDataError(
                f"argument 'fields': unknown field(s) {bad}; choose among {fields_all + ['reason_level']}."
            )
    if "reason" in ad.columns:
        ad["reason_level"] = [
            None if r is None or (isinstance(r, float) and math.isnan(r))
            else _MULTI_SEP.join(dict.fromkeys(t.split(":")[0] for t in _tokens(r)))
            for r in ad["reason"].astype(object)
        ]
    groupings = [("overall", pd.Series("all", index=ad.index))]
    if sites is not None:
        by = list(by)
        _check_sites(sites, ["site_id"] + by)
        _unknown_sites(ad, sites)
        s = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
        for g in by:
            groupings.append((g, ad["site_id"].map(s[g].astype(object)).astype(str)))
        site_ids = s.index
    else:
        site_ids = sorted(ad["site_id"].unique())
    rows = []
    for fld in fields:
        if fld == "reason_level":
            levels = _REASON_LEVELS if scheme == "FRAME" else _REASON_LEVELS_IS
            codes = [(c, lab) for c, lab in levels]
            multi = True
        else:
            codes = [(c, lab) for c, lab, _ in _codes(scheme, fld)]
            multi = _FIELDS[scheme][fld][1]
        vals = ad[fld].astype(object)
        tok = [[] if v is None or (isinstance(v, float) and math.isnan(v)) else (_tokens(v) if multi else [str(v)])
               for v in vals]
        for gname, gser in groupings:
            gv = gser.to_numpy()
            for g in sorted(pd.unique(gv)) if gname != "overall" else ["all"]:
                in_g = gv == g
                n_g = int(in_g.sum())
                cnt: dict[str, int] = {}
                for t, m in zip(tok, in_g):
                    if m:
                        for c in set(t):
                            cnt[c] = cnt.get(c, 0) + 1
                for code, label in codes:
                    n = cnt.get(code, 0)
                    rows.append((gname, str(g), fld, code, label, n, n_g, n / n_g if n_g else math.nan))
    counts = pd.DataFrame(rows, columns=["by", "facet", "field", "code", "label", "n", "n_adaptations", "share"])
    counts["n"] = counts["n"].astype(np.int64)
    counts["n_adaptations"] = counts["n_adaptations"].astype(np.int64)
    per_site = _per_site(ad, site_ids)
    return AdaptationSummary(counts=counts, per_site=per_site, scheme=scheme, n_adaptations=len(ad))


_REL_STYLE = {
    "fidelity-consistent": dict(marker="o", facecolor="0.15", edgecolor="black", label="fidelity-consistent"),
    "fidelity-inconsistent": dict(marker="X", facecolor="white", edgecolor="black", label="fidelity-inconsistent"),
    "unknown": dict(marker="s", facecolor="0.7", edgecolor="0.3", label="unknown"),
}


def plot_adaptation_timeline(
    data: pd.DataFrame,
    *,
    sites: pd.DataFrame | None = None,
    n_periods: int | None = None,
    scheme: str = "FRAME",
    ax=None,
):
    """Timeline of adaptations: one row per site, one marker per adaptation at its start period.

    The fidelity relation is encoded by the marker shape and fill (filled circle: fidelity-consistent;
    open cross: fidelity-inconsistent; grey square: unknown), so the figure reads in grey-scale.
    Several adaptations of a site in one period are spread horizontally. With ``sites`` (columns
    ``site_id`` and ``adoption_period``) every adopting site gets a row, ordered by adoption, and a
    light band shows the periods in which it delivers the innovation.

    Parameters
    ----------
    data : pandas.DataFrame
        The adaptations table.
    sites : pandas.DataFrame, optional
    n_periods : int, optional
        Last period shown (default: the last period with an adaptation).
    scheme : {"FRAME", "FRAME-IS"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=3, n_sites=40, n_periods=10, patients_per_site_period=2)
    >>> ax = sa.plot_adaptation_timeline(sim.tables["adaptations"], sites=sim.tables["sites"])
    >>> ax.get_xlabel()
    'Period (start of the adaptation)'
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ad = validate_adaptations(data, scheme=scheme)
    if "fidelity_relation" not in ad.columns:
        ad["fidelity_relation"] = "unknown"
    ad["fidelity_relation"] = ad["fidelity_relation"].astype(object).fillna("unknown")
    adopt = {}
    if sites is not None:
        _check_sites(sites, ["site_id", "adoption_period"])
        _unknown_sites(ad, sites)
        s = sites.assign(site_id=sites["site_id"].astype(str))
        a = pd.to_numeric(s["adoption_period"], errors="coerce").astype(float)
        keep = a.notna().to_numpy() | s["site_id"].isin(set(ad["site_id"])).to_numpy()
        s, a = s[keep], a[keep]
        order = np.lexsort((s["site_id"].to_numpy(), a.fillna(np.inf).to_numpy()))
        site_order = list(s["site_id"].to_numpy()[order])
        adopt = dict(zip(s["site_id"], a))
    else:
        site_order = sorted(ad["site_id"].unique(), key=lambda x: (ad.loc[ad["site_id"] == x, "period"].min(), x))
    T = int(n_periods) if n_periods is not None else int(max(ad["period"].max() if len(ad) else 1, 1))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(3.0, 0.16 * len(site_order) + 1.2)))
    ypos = {sid: i for i, sid in enumerate(site_order)}
    for sid, y in ypos.items():
        a = adopt.get(sid, np.nan)
        if np.isfinite(a):
            ax.add_patch(Rectangle((a - 0.5, y - 0.4), T - a + 1, 0.8, facecolor="0.92", edgecolor="none", zorder=0))
    ad = ad.sort_values(["site_id", "period", "adaptation_id"])
    k = ad.groupby(["site_id", "period"]).cumcount().to_numpy()
    m = ad.groupby(["site_id", "period"])["period"].transform("size").to_numpy()
    x = ad["period"].to_numpy(dtype=float) + (k - (m - 1) / 2) * 0.22
    y = ad["site_id"].map(ypos).to_numpy(dtype=float)
    rel = ad["fidelity_relation"].to_numpy()
    for code, st in _REL_STYLE.items():
        sel = rel == code
        ax.scatter(x[sel], y[sel], marker=st["marker"], s=36, facecolors=st["facecolor"], edgecolors=st["edgecolor"],
                   linewidths=0.9, label=f"{st['label']} ({int(sel.sum())})", zorder=3)
    ax.set_xlim(0.5, T + 0.5)
    ax.set_ylim(len(site_order) - 0.5, -0.5)
    ax.set_yticks(range(len(site_order)))
    ax.set_yticklabels(site_order, fontsize=6 if len(site_order) > 30 else 8)
    ax.set_xlabel("Period (start of the adaptation)")
    ax.set_ylabel("Site" + (" (ordered by adoption; shaded = delivering)" if adopt else ""))
    ax.set_title("Documented adaptations over time (FRAME fidelity relation)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    return ax


# ------------------------------------------------------------------------------------------------
# active ingredients: component analysis
# ------------------------------------------------------------------------------------------------
_YES = {"yes", "y", "true", "t", "1", "1.0", "oui"}
_NO = {"no", "n", "false", "f", "0", "0.0", "non"}


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


@dataclass(frozen=True)
class ComponentAnalysis:
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

    def summary(self) -> str:
        """Readable table of the component coefficients (joint and separate models)."""
        t = self.table.copy()
        lines = [
            f"Component analysis ({self.method}, test={self.test}): k = {self.joint.k} studies, "
            f"{len(self.components)} components",
            f"joint model: tau2 = {self.joint.tau2:.4f}, QM = {self.joint.QM:.3f} (p = {self.joint.QM_pvalue:.4g}), "
            f"R2 = {self.joint.R2:.1f}%",
            "",
            t.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
        ]
        return "\n".join(lines)

    def plot_components(self, *, model: str = "joint", xlabel: str = "Difference in effect (with - without)", ax=None):
        """Forest-style plot of the component coefficients with their CIs; returns the Axes."""
        import matplotlib.pyplot as plt

        d = self.table[self.table["model"] == model]
        if d.empty:
            raise ScaleupDataError(f"plot_components(): model must be 'joint' or 'separate', got {model!r}.")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(d) + 1.5))
        pos = np.arange(len(d))
        ax.errorbar(d["estimate"], pos, xerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]],
                    fmt="s", color="black", ecolor="0.4", capsize=2, markersize=4)
        ax.axvline(0, color="0.6", ls="--", lw=1)
        ax.set_yticks(pos)
        ax.set_yticklabels(d["component"])
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(f"Active ingredients ({model} model, {round(100 * self.level)}% CI)")
        return ax


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
    from .heterogeneity.meta import meta_regression

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


# ------------------------------------------------------------------------------------------------
# site x period panel shared by adaptation_effects and fidelity_dose_response
# ------------------------------------------------------------------------------------------------
_REL_COLS = (("fidelity-consistent", "n_consistent"), ("fidelity-inconsistent", "n_inconsistent"),
             ("unknown", "n_unknown"))
# names of the panel's model variables in the public ``panel`` attribute (docs/glossary.md)
_PANEL_NAMES = {"D": "treatment", "adopt": "adoption_period", "exposure": "time_since_adoption",
                "first_inconsistent": "first_inconsistent_period", "event_k": "event_time"}


def _panel(data, sites, indicator, outcome, site, period, treatment, table="data") -> pd.DataFrame:
    """Site x period outcome panel: site_id, period, y, D (0/1), adopt (float, inf never), exposure."""
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"table '{table}' must be a pandas DataFrame, got {type(data).__name__}.")
    for arg, col in (("site", site), ("period", period)):
        if col not in data.columns:
            raise ScaleupDataError(f"table '{table}': no column {col!r} (argument {arg!r}).")
    if "indicator_id" in data.columns:  # the outcomes table
        if indicator is None:
            raise ScaleupDataError(
                f"table '{table}' is the outcomes table: name the indicator analysed with indicator=..., "
                f"one of {sorted(data['indicator_id'].astype(str).unique())[:10]}."
            )
        d = data[data["indicator_id"].astype(str) == str(indicator)]
        if d.empty:
            raise ScaleupDataError(
                f"table '{table}' (outcomes): no row with indicator_id == {indicator!r} (argument 'indicator'); "
                f"available: {sorted(data['indicator_id'].astype(str).unique())[:10]}."
            )
        mean = pd.to_numeric(d["mean"], errors="coerce") if "mean" in d else pd.Series(np.nan, index=d.index)
        if mean.notna().all():
            val = mean
        else:
            val = pd.to_numeric(d["events"], errors="coerce") / pd.to_numeric(d["n"], errors="coerce")
        p = pd.DataFrame({"site_id": d[site].astype(str).to_numpy(), "period": d[period].to_numpy(),
                          "y": val.to_numpy(dtype=float)})
        if p.duplicated(["site_id", "period"]).any():
            raise ScaleupDataError(
                f"table '{table}' (outcomes): several rows per site and period for indicator {indicator!r}."
            )
        tr = None
    else:  # patient- or site-period-level rows: averaged per site-period
        ycol = outcome or "y"
        if ycol not in data.columns:
            raise ScaleupDataError(f"table '{table}': no outcome column {ycol!r} (argument 'outcome').")
        cols = {"y": pd.to_numeric(data[ycol], errors="coerce")}
        if treatment is not None and treatment in data.columns:
            cols["D"] = pd.to_numeric(data[treatment], errors="coerce")
        d = pd.DataFrame({"site_id": data[site].astype(str).to_numpy(), "period": data[period].to_numpy(),
                          **{k: v.to_numpy() for k, v in cols.items()}})
        g = d.groupby(["site_id", "period"], sort=True)
        p = g["y"].mean().reset_index()
        tr = g["D"].max().reset_index() if "D" in d else None
    bad = p["y"].isna().to_numpy()
    if bad.any():
        warnings.warn(f"{bad.sum()} site-period(s) without an outcome value were left out.", RowsOmittedWarning,
                      stacklevel=3)
        p = p[~bad]
    p["period"] = pd.to_numeric(p["period"]).astype(np.int64)
    if sites is not None:
        _check_sites(sites, ["site_id", "adoption_period"])
        s = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
        unknown = ~p["site_id"].isin(s.index)
        if unknown.any():
            raise ScaleupDataError(
                f"table '{table}': {int(unknown.sum())} row(s) name sites absent from table 'sites' (e.g. "
                f"{p.loc[unknown, 'site_id'].iloc[0]!r}); add them to 'sites'."
            )
        adopt = pd.to_numeric(s["adoption_period"], errors="coerce").astype(float).fillna(np.inf)
        p["adopt"] = p["site_id"].map(adopt).to_numpy(dtype=float)
    elif tr is not None:
        first = tr[tr["D"] == 1].groupby("site_id")["period"].min().astype(float)
        p["adopt"] = p["site_id"].map(first).fillna(np.inf).to_numpy(dtype=float)
    else:
        raise ScaleupDataError(
            "adoption periods are unknown: pass the 'sites' table (column 'adoption_period') or, with "
            "patient-level data, the name of the 0/1 treatment column as treated='treated'."
        )
    p["D"] = (p["period"] >= p["adopt"]).astype(np.int64)
    p["exposure"] = np.where(p["D"] == 1, p["period"] - np.where(np.isfinite(p["adopt"]), p["adopt"], 0), -1).astype(
        np.int64
    )
    return p.reset_index(drop=True)


def _cumulative_counts(p: pd.DataFrame, ad: pd.DataFrame) -> pd.DataFrame:
    """Add n_consistent, n_inconsistent, n_unknown (adaptations started at or before t, counted while
    the site delivers the innovation) and first_inconsistent (period it acts, NaN if none)."""
    rel = ad["fidelity_relation"].astype(object)
    for code, col in _REL_COLS:
        a = ad[rel == code]
        cnt = np.zeros(len(p))
        if len(a):
            by_site = {s: np.sort(g["period"].to_numpy()) for s, g in a.groupby("site_id")}
            for i, (s, t) in enumerate(zip(p["site_id"].to_numpy(), p["period"].to_numpy())):
                arr = by_site.get(s)
                if arr is not None:
                    cnt[i] = np.searchsorted(arr, t, side="right")
        p[col] = cnt * p["D"].to_numpy()
    first = ad[rel == "fidelity-inconsistent"].groupby("site_id")["period"].min().astype(float)
    f = p["site_id"].map(first).to_numpy(dtype=float)
    p["first_inconsistent"] = np.where(np.isfinite(f), np.maximum(f, p["adopt"].to_numpy()), np.nan)
    return p


def _adoption_terms(p: pd.DataFrame, adoption_effects: str) -> list[str]:
    if adoption_effects == "treatment":
        p["treated_"] = p["D"].astype(float)
        return ["treated_"]
    names = []
    for e in sorted(p.loc[p["D"] == 1, "exposure"].unique()):
        nm = f"exposure_{int(e)}"
        p[nm] = ((p["D"] == 1) & (p["exposure"] == e)).astype(float)
        names.append(nm)
    return names


def _fit(p: pd.DataFrame, terms: list[str], inference: str, level: float, random_slope: bool,
         within: Sequence[str] = ()) -> tuple:
    """Fit y ~ C(period) + terms with site effects; return (coef table, model object).

    ``within``: terms whose coefficients must come from within-site variation only; mixed models get
    their site means (Mundlak 1978: mean over all rows and mean over treated rows x D) as covariates.
    """
    formula = "y ~ C(period) + " + " + ".join(terms)
    if inference == "mixed":
        from .heterogeneity.mixed import mixed_model

        extra = []
        if within:
            p = p.copy()
            D = p["D"].to_numpy(dtype=float)
            for j, t in enumerate(within):
                m_all = p.groupby("site_id")[t].transform("mean").to_numpy(dtype=float)
                tr_mean = p[t].where(p["D"] == 1).groupby(p["site_id"]).transform("mean").fillna(0.0)
                for nm, v in ((f"mundlak_{j}", m_all), (f"mundlak_d{j}", tr_mean.to_numpy(dtype=float) * D)):
                    if np.ptp(v) > 0:
                        p[nm] = v
                        extra.append(nm)
            # drop site-mean columns that are collinear with the rest of the design
            if extra:
                import patsy

                X = patsy.dmatrix("~ C(period) + " + " + ".join(terms), p, return_type="dataframe").to_numpy()
                keep = []
                for nm in extra:
                    A_ = np.column_stack([X, p[keep].to_numpy(dtype=float)]) if keep else X
                    v = p[nm].to_numpy(dtype=float)
                    b = np.linalg.lstsq(A_.T @ A_, A_.T @ v, rcond=None)[0]
                    resid = v - A_ @ b
                    if resid @ resid > 1e-10 * (v @ v):  # not a linear combination of the design
                        keep.append(nm)
                extra = keep
            formula = formula + "".join(f" + {nm}" for nm in extra)
        re = "1 + D" if random_slope else "1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RowsOmittedWarning)
            m = mixed_model(p, formula, group="site_id", re_formula=re, reml=True, level=level)
        fe = m.fixed
        return fe, m
    # OLS with period and site fixed effects (and site x treatment effects), CR1 cluster-robust by site
    codes, _ = pd.factorize(p["site_id"], sort=True)
    G = int(codes.max()) + 1
    per = pd.factorize(p["period"], sort=True)[0]
    n = len(p)
    blocks = [np.eye(G)[codes], np.eye(int(per.max()) + 1)[per][:, 1:], p[terms].to_numpy(dtype=float)]
    if random_slope:  # site-specific treatment effects: D x site, the first adopting site as reference
        D = p["D"].to_numpy(dtype=float)
        adopters = np.unique(codes[D == 1])
        if adopters.size > 1:
            blocks.append((np.eye(G)[codes][:, adopters[1:]]) * D[:, None])
    X = np.hstack(blocks)
    yv = p["y"].to_numpy(dtype=float)
    # pseudo-inverse of X'X from its eigen-decomposition (rank-deficient designs allowed)
    w, Q = np.linalg.eigh(X.T @ X)
    pos = w > w.max() * X.shape[1] * np.finfo(float).eps * 10
    XtX_inv = (Q[:, pos] / w[pos]) @ Q[:, pos].T
    beta = XtX_inv @ (X.T @ yv)
    e = yv - X @ beta
    K = int(pos.sum())
    score = np.zeros((G, X.shape[1]))
    np.add.at(score, codes, X * e[:, None])
    V = XtX_inv @ (score.T @ score) @ XtX_inv * (G / (G - 1)) * ((n - 1) / (n - K))
    idx = slice(G + int(per.max()), G + int(per.max()) + len(terms))
    est, se = beta[idx], np.sqrt(np.diag(V)[idx])
    dfree = G - 1
    t = est / se
    q = stats.t.ppf(0.5 + level / 2, dfree)
    fe = pd.DataFrame({"estimate": est, "se": se, "statistic": t, "df": float(dfree),
                       "pvalue": 2 * stats.t.sf(np.abs(t), dfree), "ci_low": est - q * se, "ci_high": est + q * se},
                      index=pd.Index(terms, name="term"))
    n_per = int(per.max()) + 1
    period_effects = pd.Series(np.r_[0.0, beta[G : G + n_per - 1]], index=np.sort(p["period"].unique()))
    m = {"coef": fe, "n_obs": n, "n_clusters": G, "rank": K, "vcov_type": "CR1", "period_effects": period_effects}
    return fe, m


@dataclass(frozen=True)
class AdaptationEffects:
    """Result of :func:`adaptation_effects`.

    Attributes
    ----------
    coef : pandas.DataFrame
        Cumulative-count model: one row per term ``n_consistent``, ``n_inconsistent`` (and
        ``n_unknown``) with ``estimate`` (change in the outcome per additional adaptation of that kind,
        counted from its start period while the site delivers the innovation), ``se``,
        ``statistic``, ``df``, ``pvalue``, ``ci_low``, ``ci_high``.
    event_study : pandas.DataFrame
        One row per ``event_time`` e (periods since the site's first fidelity-inconsistent
        adaptation; e = -1 is the reference, reported as 0; the end points bin everything
        beyond): ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``pvalue``, ``n_sites`` (event sites
        observed at e).
    event_effect : pandas.Series
        Pooled before/after estimate of the first fidelity-inconsistent adaptation (one ``post``
        indicator instead of the post-event dummies): estimate, se, statistic, df, pvalue, ci_low, ci_high.
    n_event_sites : int
        Sites with a fidelity-inconsistent adaptation while delivering.
    inference : {"mixed", "cluster"}
    models : dict
        The fitted models (``"cumulative"``, ``"event_study"``, ``"event_effect"``): MixedModelResult
        or statsmodels results.
    panel : pandas.DataFrame
        The site x period analysis panel: ``site_id``, ``period``, ``y`` (the outcome),
        ``treatment`` (0/1), ``adoption_period`` (inf if never), ``time_since_adoption`` (periods
        since adoption, -1 before), the cumulative counts ``n_consistent``, ``n_inconsistent``,
        ``n_unknown``, ``first_inconsistent_period`` and ``event_time``.
    """

    coef: pd.DataFrame
    event_study: pd.DataFrame
    event_effect: pd.Series
    n_event_sites: int
    inference: str
    adoption_effects: str
    level: float
    models: dict = field(repr=False)
    panel: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy: the cumulative-count coefficients, the pooled event effect and the event-study
        coefficients (``analysis`` column: ``"cumulative"``, ``"event_effect"``, ``"event_study"``)."""
        a = self.coef.reset_index().rename(columns={"index": "term"})
        a.insert(0, "analysis", "cumulative")
        b = self.event_effect.to_frame().T.assign(term="post").reset_index(drop=True)
        b.insert(0, "analysis", "event_effect")
        c = self.event_study.assign(term=lambda d: "e=" + d["event_time"].astype(str)).drop(
            columns=["event_time", "n_sites"])
        c.insert(0, "analysis", "event_study")
        return pd.concat([a, b, c], ignore_index=True)[["analysis", "term", "estimate", "se", "pvalue", "ci_low", "ci_high"]]

    def summary(self) -> str:
        """Readable summary of both analyses."""
        pct = round(100 * self.level)
        lines = [
            f"Adaptation effects ({'mixed model, site random effects' if self.inference == 'mixed' else 'site fixed effects, cluster-robust SE'}; "
            f"period fixed effects; adoption effects: {self.adoption_effects})",
            f"(a) cumulative number of adaptations (per adaptation, {pct}% CI):",
            self.coef.to_string(float_format=lambda x: f"{x:.4f}"),
            "",
            f"(b) first fidelity-inconsistent adaptation ({self.n_event_sites} sites): before/after effect "
            f"{self.event_effect['estimate']:.4f} [{self.event_effect['ci_low']:.4f}, {self.event_effect['ci_high']:.4f}]",
            self.event_study.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
        ]
        return "\n".join(lines)

    def plot_event_study(self, *, ylabel: str = "Change in outcome (vs. period before)", ax=None):
        """Event-study coefficients with CIs against event time; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        d = self.event_study
        ax.errorbar(d["event_time"], d["estimate"], yerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]],
                    fmt="o", color="black", ecolor="0.45", capsize=3, markersize=5)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(-0.5, color="0.6", ls="--", lw=0.8)
        ax.set_xlabel("Periods since the first fidelity-inconsistent adaptation")
        ax.set_ylabel(ylabel)
        ax.set_title(f"Event study ({self.n_event_sites} sites, {round(100 * self.level)}% CI)")
        return ax


def _check_common(inference, adoption_effects, level):
    if inference not in ("mixed", "cluster"):
        raise ScaleupDataError(f"argument 'inference' = {inference!r}: choose 'mixed' or 'cluster'.")
    if adoption_effects not in ("exposure", "treatment"):
        raise ScaleupDataError(
            f"argument 'adoption_effects' = {adoption_effects!r}: choose 'exposure' (one effect per period "
            "since adoption) or 'treatment' (a single treatment indicator)."
        )
    check_level(level)


def adaptation_effects(
    data: pd.DataFrame,
    adaptations: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    *,
    indicator: str | None,
    outcome: str = "y",
    site: str = "site_id",
    period: str = "period",
    treatment: str | None = "treated",
    adoption_effects: str = "exposure",
    min_exposure: int = 0,
    window: tuple[int, int] = (-3, 3),
    inference: str = "mixed",
    site_treatment_effects: bool = True,
    level: float = 0.95,
    scheme: str = "FRAME",
) -> AdaptationEffects:
    """Effects of fidelity-consistent and fidelity-inconsistent adaptations on site x period outcomes.

    Parameters
    ----------
    data : pandas.DataFrame
        Either the ``outcomes`` table (site x period x indicator; the rows of ``indicator`` are used:
        their ``mean``, or ``events / n`` for proportions) or patient-level rows such as
        ``encounters`` (column ``outcome``, averaged per site and period).
    adaptations : pandas.DataFrame
        The FRAME-coded adaptations (``site_id``, ``period``, ``fidelity_relation``, ...).
    sites : pandas.DataFrame, optional
        The ``sites`` table (``adoption_period``). Without it, adoption is the first period in which
        the ``treatment`` column of patient-level ``data`` is 1.
    indicator : str or None
        Required: the indicator analysed when ``data`` is the ``outcomes`` table (a code of the
        ``indicators`` table, e.g. ``"HO_Y"``); ``None`` for patient-level ``data``.
    outcome : str, default "y"
        Outcome column of patient-level ``data``.
    site, period, treatment : str
        Column names in ``data`` (``treatment``: the 0/1 column of patient-level data).
    adoption_effects : {"exposure", "treatment"}
        How the innovation's own effect is modelled: one effect per period since adoption (default;
        absorbs ramp-up and drift common to all sites) or a single treatment indicator.
    min_exposure : int, default 0
        Leave out the treated site-periods with fewer than ``min_exposure`` periods since adoption
        (e.g. the ramp-up periods before the innovation reaches full dose). During ramp-up a site's
        own effect is only partly delivered; sites that differ in effect then differ in ramp-up
        shape too, which ``site_treatment_effects`` (constant per site) cannot absorb. Adaptations
        started during those periods still count afterwards.
    window : (int, int), default (-3, 3)
        Event times shown in the event study; earlier / later periods are binned into the end points.
    inference : {"mixed", "cluster"}
        ``"mixed"``: :func:`mixed_model` (REML, Satterthwaite df) with a site random intercept (and a
        random treatment slope if ``site_treatment_effects``); ``"cluster"``: OLS with site and period fixed
        effects and cluster-robust (CR1, by site) standard errors, t with G - 1 df.
    site_treatment_effects : bool, default True
        Let sites differ in the innovation's own effect: a site random slope of the treatment
        indicator (mixed models, lme4 ``(1 + D | site)``) or site x treatment fixed effects
        (``"cluster"``). Without it, sites whose innovation works better by chance and that happen to
        document more adaptations bias the adaptation coefficients.
    level : float
    scheme : {"FRAME", "FRAME-IS"}

    Returns
    -------
    AdaptationEffects

    Notes
    -----
    Counts. :math:`C_{st}, I_{st}, U_{st}` are the numbers of fidelity-consistent, -inconsistent and
    unknown adaptations of site :math:`s` started at or before period :math:`t`; they act only while
    the site delivers the innovation (:math:`D_{st} = 1`), so an adaptation planned before adoption
    counts from the adoption period.

    (a) Cumulative model:

    .. math:: y_{st} = \\alpha_t + u_s + D_{st}(\\eta_{e_{st}} + b_s) + \\beta_C D_{st} C_{st}
              + \\beta_I D_{st} I_{st} + \\beta_U D_{st} U_{st} + \\varepsilon_{st},

    with period effects :math:`\\alpha_t`, site effects :math:`u_s` (random or fixed),
    exposure (time since adoption) effects :math:`\\eta_e` (or one :math:`\\eta`) and, with
    ``site_treatment_effects``, site-specific treatment effects :math:`b_s` (random or fixed).

    (b) Event study around the first fidelity-inconsistent adaptation of site :math:`s` while
    delivering, :math:`E_s`: the same model with :math:`\\beta_I D I` replaced by event-time
    indicators :math:`D_{st} 1[t - E_s = k]` (``window`` end points binned; :math:`k = -1` the
    reference; periods before adoption are not event periods)
    plus the number of *further* inconsistent adaptations :math:`D_{st} I_{st} - 1[t \\ge E_s]`; the
    post-event coefficients then estimate the effect of the first inconsistent adaptation
    :math:`k` periods later and the pre-event ones test for anticipation or pre-trends. The pooled
    before/after effect replaces the post-event indicators by one indicator :math:`1[t \\ge E_s]`.

    With ``inference="mixed"`` the site means of the adaptation regressors (over all periods, and
    over the treated periods times :math:`D_{st}`) are added as covariates (Mundlak, 1978), so that,
    as with fixed effects, the adaptation coefficients come from changes *within* sites: the number
    of adaptations documented per period differs between rollout waves (later waves have fewer
    periods left), and waves may differ in the innovation's effect. ``min_exposure`` set to the
    ramp-up length makes the model exact for :func:`simulate_scaleup` (whose site-specific effects
    are multiplied by the ramp-up).

    Both analyses compare sites and periods, not randomised adaptations: adaptations made *because*
    outcomes were poor (reverse causation) bias the coefficients; inspect the pre-event coefficients.

    References
    ----------
    Wiltsey Stirman, S., Baumann, A. A., & Miller, C. J. (2019). Implementation Science, 14, 58.

    Mundlak, Y. (1978). On the pooling of time series and cross section data. Econometrica, 46(1),
    69-85.

    Sun, L., & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. Journal of Econometrics, 225(2), 175-199.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=5, n_sites=60, n_periods=10, patients_per_site_period=10)
    >>> t = sim.tables
    >>> res = sa.adaptation_effects(t["outcomes"], t["adaptations"], t["sites"], indicator="HO_Y")
    >>> res.coef.index.tolist()
    ['n_consistent', 'n_inconsistent', 'n_unknown']
    >>> res.event_study["event_time"].tolist()
    [-3, -2, -1, 0, 1, 2, 3]
    """
    _check_common(inference, adoption_effects, level)
    try:
        lo, hi = (int(window[0]), int(window[1]))
    except (TypeError, ValueError, IndexError):
        raise ScaleupDataError(f"argument 'window' = {window!r}: give two integers (lo, hi), e.g. (-3, 3).") from None
    if not (lo <= -2 and hi >= 0):
        raise ScaleupDataError(
            f"argument 'window' = {window!r}: it needs lo <= -2 (at least one pre-event period besides the "
            "reference -1) and hi >= 0."
        )
    ad = validate_adaptations(adaptations, scheme=scheme)
    if "fidelity_relation" not in ad.columns or ad["fidelity_relation"].isna().all():
        raise ScaleupDataError("table 'adaptations': column 'fidelity_relation' is needed (FRAME fidelity relation).")
    p = _panel(data, sites, indicator, outcome, site, period, treatment)
    unknown = ~ad["site_id"].isin(set(p["site_id"]))
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} adaptation(s) of sites without outcome data were left out "
            f"(e.g. site {ad.loc[unknown, 'site_id'].iloc[0]!r}).", RowsOmittedWarning, stacklevel=2)
    p = _cumulative_counts(p, ad)
    if isinstance(min_exposure, bool) or not isinstance(min_exposure, (int, np.integer)) or min_exposure < 0:
        raise ScaleupDataError(f"argument 'min_exposure' = {min_exposure!r}: give an integer >= 0.")
    if min_exposure > 0:
        p = p[(p["D"] == 0) | (p["exposure"] >= min_exposure)].reset_index(drop=True)
    adopt_terms = _adoption_terms(p, adoption_effects)
    counts = [c for _, c in _REL_COLS if p[c].any()]
    slope = bool(site_treatment_effects)
    fe, m_cum = _fit(p, adopt_terms + counts, inference, level, slope, within=counts)
    coef = fe.loc[counts]

    # (b) event study
    E = p["first_inconsistent"].to_numpy()
    has = np.isfinite(E) & (p["D"].to_numpy() == 1)
    n_event = int(pd.unique(p.loc[has, "site_id"]).size)
    if n_event == 0:
        raise ScaleupDataError(
            "table 'adaptations': no site has a fidelity-inconsistent adaptation while delivering the innovation; "
            "the event study needs at least one."
        )
    # event time of the treated periods of event sites (pre-adoption periods are controls: the event
    # can only happen while the innovation is delivered)
    k = np.where(has, p["period"].to_numpy() - np.nan_to_num(E), np.nan)
    kb = np.clip(k, lo, hi)
    post = (has & (k >= 0)).astype(float)
    p["event_k"] = kb
    p["n_inconsistent_further"] = p["n_inconsistent"] - post
    ev_terms = []
    for kk in range(lo, hi + 1):
        if kk == -1:
            continue
        nm = f"event_m{-kk}" if kk < 0 else f"event_p{kk}"
        p[nm] = (has & (kb == kk)).astype(float)
        if p[nm].any():  # an event time without any site-period is reported as NaN
            ev_terms.append((kk, nm))
    others = [c for c in ("n_consistent", "n_unknown") if c in counts]
    further = ["n_inconsistent_further"] if p["n_inconsistent_further"].any() else []
    ev_names = [nm for _, nm in ev_terms]
    fe_ev, m_ev = _fit(p, adopt_terms + others + further + ev_names, inference, level, slope,
                       within=others + further + ev_names)
    rows = []
    for kk in range(lo, hi + 1):
        n_s = int(pd.unique(p.loc[has & (kb == kk), "site_id"]).size)
        if kk == -1:
            rows.append((kk, 0.0, 0.0, 0.0, 0.0, math.nan, n_s))
            continue
        nm = dict(ev_terms).get(kk)
        if nm is None:
            rows.append((kk, math.nan, math.nan, math.nan, math.nan, math.nan, n_s))
            continue
        r = fe_ev.loc[nm]
        rows.append((kk, r["estimate"], r["se"], r["ci_low"], r["ci_high"], r["pvalue"], n_s))
    event_study = pd.DataFrame(rows, columns=["event_time", "estimate", "se", "ci_low", "ci_high", "pvalue", "n_sites"])
    p["post_event"] = post
    fe_post, m_post = _fit(p, adopt_terms + others + further + ["post_event"], inference, level, slope,
                           within=others + further + ["post_event"])
    eff = fe_post.loc["post_event"].copy()
    eff.name = "post_event"
    keep_cols = ["site_id", "period", "y", "D", "adopt", "exposure", *[c for _, c in _REL_COLS],
                 "first_inconsistent", "event_k"]
    return AdaptationEffects(
        coef=coef, event_study=event_study, event_effect=eff, n_event_sites=n_event, inference=inference,
        adoption_effects=adoption_effects, level=level,
        models={"cumulative": m_cum, "event_study": m_ev, "event_effect": m_post},
        panel=p[keep_cols].rename(columns=_PANEL_NAMES),
    )


# ------------------------------------------------------------------------------------------------
# fidelity dose-response
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DoseResponse:
    """Result of :func:`fidelity_dose_response`.

    Attributes
    ----------
    slope, se, ci_low, ci_high, pvalue, df : float
        Change in the innovation's effect on the outcome per unit of the fidelity measure
        (e.g. from adherence 0.7 to 0.8 the effect changes by ``0.1 * slope``).
    coef : pandas.DataFrame
        The coefficient row (``fidelity``) in the usual columns.
    reference : float
        Fidelity value at which the exposure effects are evaluated (the centring value).
    n_sites, n_obs : int
        Treated sites with a fidelity value, and rows (site-periods) of the model.
    fidelity_level : {"site-period", "site"}
    inference : {"mixed", "cluster"}
    model : object
        MixedModelResult or the cluster-robust OLS summary (dict).
    panel : pandas.DataFrame
        The analysis panel: ``site_id``, ``period``, ``y`` (the outcome), ``treatment`` (0/1),
        ``adoption_period``, ``time_since_adoption``, ``fidelity`` and ``y_net`` (the outcome net of period,
        exposure and adaptation effects).
    """

    slope: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    df: float
    coef: pd.DataFrame
    reference: float
    n_sites: int
    n_obs: int
    fidelity_level: str
    inference: str
    level: float
    model: object = field(repr=False)
    panel: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy one-row table of the dose-response slope."""
        return self.coef.reset_index()

    def summary(self) -> str:
        """Readable summary."""
        return (
            f"Fidelity dose-response ({self.fidelity_level} fidelity, "
            f"{'mixed model' if self.inference == 'mixed' else 'fixed effects, cluster-robust SE'}): "
            f"{self.n_sites} treated sites, {self.n_obs} site-periods\n"
            f"slope per unit of fidelity = {self.slope:.4f} (SE {self.se:.4f}), {round(100 * self.level)}% CI "
            f"[{self.ci_low:.4f}, {self.ci_high:.4f}], p = {self.pvalue:.4g}; reference fidelity {self.reference:.4f}"
        )

    def plot_dose_response(
        self, *, xlabel: str = "Fidelity", ylabel: str = "Outcome change vs. own pre-adoption level", ax=None
    ):
        """Each treated site's mean outcome change (after minus before adoption, net of period effects)
        against its mean fidelity, with the fitted slope; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4.5))
        d = self.panel
        pre = d[d["treatment"] == 0].groupby("site_id")["y_net"].mean()
        post = d[d["treatment"] == 1].groupby("site_id").agg(y=("y_net", "mean"), f=("fidelity", "mean"))
        post = post.join(pre.rename("pre"), how="inner").dropna()
        x = post["f"].to_numpy()
        yv = (post["y"] - post["pre"]).to_numpy()
        ax.scatter(x, yv, s=22, facecolors="0.75", edgecolors="black", linewidths=0.6, zorder=3)
        if len(x):
            grid = np.linspace(x.min(), x.max(), 50)
            ax.plot(grid, yv.mean() + self.slope * (grid - x.mean()), color="black", lw=1.2,
                    label=f"slope {self.slope:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]")
            ax.legend(fontsize="small")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"Fidelity dose-response ({self.n_sites} sites)")
        return ax


def fidelity_dose_response(
    data: pd.DataFrame,
    fidelity: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    *,
    value: str = "fidelity_index",
    indicator: str | None,
    outcome: str = "y",
    site: str = "site_id",
    period: str = "period",
    treatment: str | None = "treated",
    fidelity_level: str = "site-period",
    reference: float | None = None,
    adoption_effects: str = "exposure",
    min_exposure: int = 0,
    effect_modifiers: Sequence[str] = (),
    adaptations: pd.DataFrame | None = None,
    inference: str = "mixed",
    level: float = 0.95,
) -> DoseResponse:
    """Dose-response of the innovation's effect on implementation fidelity.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``outcomes`` table (rows of ``indicator``) or patient-level rows (column ``outcome``),
        as in :func:`adaptation_effects`; untreated site-periods anchor each site's own baseline.
    fidelity : pandas.DataFrame
        One row per treated site and period with ``site_id``, ``period`` and the ``value`` column
        (e.g. the output of :func:`fidelity_index`).
    sites : pandas.DataFrame, optional
        The ``sites`` table (``adoption_period``); see :func:`adaptation_effects`.
    value : str, default "fidelity_index"
        Column of ``fidelity`` holding the fidelity measure (e.g. ``"adherence"``).
    indicator, outcome, site, period, treatment : str
        As in :func:`adaptation_effects` (``indicator`` is required: ``None`` for patient-level
        ``data``).
    fidelity_level : {"site-period", "site"}
        Use each site-period's fidelity, or each site's mean over its treated periods (less
        measurement error, between-site comparison only).
    reference : float, optional
        Centring value of fidelity (default: its mean over the treated site-periods used).
    adoption_effects : {"exposure", "treatment"}
    min_exposure : int, default 0
        Leave out treated site-periods with fewer periods since adoption (ramp-up).
    effect_modifiers : sequence of str, optional
        Columns of ``sites`` whose interaction with the treatment indicator enters the model (the
        effect may differ by them, e.g. ``["phase", "deprivation_quintile"]`` for the voltage drop
        and the equity gradient): numeric columns centred, others dummy-coded. Known modifiers that
        are correlated with fidelity would otherwise confound the dose-response slope.
    adaptations : pandas.DataFrame, optional
        FRAME-coded adaptations: their cumulative counts by fidelity relation (as in
        :func:`adaptation_effects`) enter as covariates, removing the part of the effect that
        adaptations change over time.
    inference : {"mixed", "cluster"}
        ``"mixed"``: site random intercept and random treatment slope (``(1 + D | site)``), REML,
        Satterthwaite df; ``"cluster"``: site and period fixed effects, CR1 cluster-robust SE by site.
    level : float

    Returns
    -------
    DoseResponse

    Notes
    -----
    Model (site :math:`s`, period :math:`t`, treatment :math:`D_{st}`, fidelity :math:`F_{st}`):

    .. math:: y_{st} = \\alpha_t + u_s + D_{st}\\,\\eta_{e_{st}} + \\kappa\\, D_{st}(F_{st} - F_{ref})
              + D_{st} b_s + \\varepsilon_{st}

    (:math:`b_s` random treatment slope in mixed models only). :math:`\\kappa` is the dose-response
    slope: how much larger the effect is where fidelity is higher. It compares sites (and periods)
    that were not randomised to their fidelity; fidelity measured with error (few rated sessions)
    attenuates :math:`\\kappa` towards 0 by the reliability of the fidelity measure.

    References
    ----------
    Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J., & Balain, S. (2007). A conceptual
    framework for implementation fidelity. Implementation Science, 2, 40.

    Durlak, J. A., & DuPre, E. P. (2008). Implementation matters. American Journal of Community
    Psychology, 41, 327-350.

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sim = sa.simulate_scaleup(seed=5, n_sites=60, n_periods=10, patients_per_site_period=10)
    >>> t = sim.tables
    >>> fid = sa.fidelity_index(t["fidelity_ratings"], t["components"])
    >>> res = sa.fidelity_dose_response(t["outcomes"], fid, t["sites"], value="adherence",
    ...                                indicator="HO_Y")
    >>> res.coef.index.tolist()
    ['fidelity']
    """
    _check_common(inference, adoption_effects, level)
    if fidelity_level not in ("site-period", "site"):
        raise ScaleupDataError(f"argument 'fidelity_level' = {fidelity_level!r}: choose 'site-period' or 'site'.")
    if not isinstance(fidelity, pd.DataFrame):
        raise ScaleupDataError(f"table 'fidelity' must be a pandas DataFrame, got {type(fidelity).__name__}.")
    miss = [c for c in (site, period, value) if c not in fidelity.columns]
    if miss:
        raise ScaleupDataError(
            f"table 'fidelity': missing column(s) {miss}; it needs {site!r}, {period!r} and the fidelity "
            f"column {value!r} (e.g. from sa.fidelity_index(...))."
        )
    f = pd.DataFrame({"site_id": fidelity[site].astype(str).to_numpy(),
                      "period": pd.to_numeric(fidelity[period]).astype(np.int64).to_numpy(),
                      "fidelity": pd.to_numeric(fidelity[value], errors="coerce").to_numpy(dtype=float)})
    if f.duplicated(["site_id", "period"]).any():
        raise ScaleupDataError("table 'fidelity': several rows for one site and period; give one value per site-period.")
    if isinstance(min_exposure, bool) or not isinstance(min_exposure, (int, np.integer)) or min_exposure < 0:
        raise ScaleupDataError(f"argument 'min_exposure' = {min_exposure!r}: give an integer >= 0.")
    p = _panel(data, sites, indicator, outcome, site, period, treatment)
    if min_exposure > 0:
        p = p[(p["D"] == 0) | (p["exposure"] >= min_exposure)].reset_index(drop=True)
    p = p.merge(f, on=["site_id", "period"], how="left")
    p.loc[p["D"] == 0, "fidelity"] = np.nan
    if fidelity_level == "site":
        p["fidelity"] = p.groupby("site_id")["fidelity"].transform("mean").where(p["D"] == 1)
    drop = (p["D"] == 1) & p["fidelity"].isna()
    if drop.any():
        warnings.warn(
            f"fidelity_dose_response: {int(drop.sum())} treated site-period(s) without a fidelity value "
            f"were left out (e.g. site {p.loc[drop, 'site_id'].iloc[0]!r}, period {int(p.loc[drop, 'period'].iloc[0])}).",
            RowsOmittedWarning, stacklevel=2)
        p = p[~drop].reset_index(drop=True)
    treated_rows = p["D"] == 1
    if treated_rows.sum() < 3 or p.loc[treated_rows, "fidelity"].nunique() < 2:
        raise ScaleupDataError("table 'fidelity': fewer than 3 treated site-periods with distinct fidelity values.")
    ref = float(p.loc[treated_rows, "fidelity"].mean()) if reference is None else float(reference)
    p["fid_c"] = np.where(treated_rows, p["fidelity"] - ref, 0.0)
    mod_terms = []
    if effect_modifiers:
        if sites is None:
            raise ScaleupDataError("argument 'effect_modifiers' needs the 'sites' table (the modifiers are its columns).")
        miss = [c for c in effect_modifiers if c not in sites.columns]
        if miss:
            raise ScaleupDataError(f"table 'sites': no column(s) {miss} (argument 'effect_modifiers').")
        sidx = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
        Dv = p["D"].to_numpy(dtype=float)
        for j, c in enumerate(effect_modifiers):
            v = p["site_id"].map(sidx[c])
            if pd.api.types.is_numeric_dtype(sidx[c]) and not pd.api.types.is_bool_dtype(sidx[c]):
                v = pd.to_numeric(v, errors="coerce").astype(float)
                p[f"mod_{j}"] = np.where(Dv == 1, v - v[Dv == 1].mean(), 0.0)
                mod_terms.append(f"mod_{j}")
            else:
                levels = sorted(v[Dv == 1].astype(str).unique())
                for k, lv in enumerate(levels[1:]):
                    p[f"mod_{j}_{k}"] = ((v.astype(str) == lv).to_numpy() & (Dv == 1)).astype(float)
                    mod_terms.append(f"mod_{j}_{k}")
        if p[mod_terms].isna().any().any():
            raise ScaleupDataError(f"table 'sites': missing values in the effect modifiers {list(effect_modifiers)}.")
    count_terms = []
    if adaptations is not None:
        ad = validate_adaptations(adaptations)
        p = _cumulative_counts(p, ad)
        count_terms = [c for _, c in _REL_COLS if p[c].any()]
    terms = _adoption_terms(p, adoption_effects) + mod_terms + count_terms + ["fid_c"]
    fe, m = _fit(p, terms, inference, level, inference == "mixed")
    r = fe.loc["fid_c"]
    coef = fe.loc[["fid_c"]].rename(index={"fid_c": "fidelity"})
    coef.index.name = "term"
    # outcome net of period effects (for the plot)
    if inference == "mixed":
        pe = m.fixed["estimate"]
        alpha = p["period"].map(lambda t: pe.get(f"C(period)[T.{t}]", 0.0)).to_numpy(dtype=float)
        eta = sum(pe[t] * p[t].to_numpy() for t in terms[:-1] if t not in mod_terms)
    else:
        alpha = p["period"].map(m["period_effects"]).to_numpy(dtype=float)
        eta = sum(fe.loc[t, "estimate"] * p[t].to_numpy() for t in terms[:-1] if t not in mod_terms)
    # the plot shows the outcome net of period, exposure and adaptation effects
    p["y_net"] = p["y"].to_numpy() - alpha - eta
    keep = ["site_id", "period", "y", "D", "adopt", "exposure", "fidelity", "y_net"]
    return DoseResponse(
        slope=float(r["estimate"]), se=float(r["se"]), ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]),
        pvalue=float(r["pvalue"]), df=float(r["df"]), coef=coef, reference=ref,
        n_sites=int(p.loc[treated_rows, "site_id"].nunique()), n_obs=len(p), fidelity_level=fidelity_level,
        inference=inference, level=level, model=m, panel=p[keep].rename(columns=_PANEL_NAMES),
    )
