r"""The FRAME / FRAME-IS coding scheme of adaptations, and the validation of an adaptations table.

The ``adaptations`` table (``docs/data_dictionary.md``) documents one adaptation per row, coded with
the Framework for Reporting Adaptations and Modifications-Enhanced (FRAME; Wiltsey Stirman, Baumann
& Miller, 2019) or, for modifications of the *implementation strategies* themselves, with the FRAME-IS
(Miller, Barnett, Baumann, Gutner & Wiltsey Stirman, 2021).

* :func:`frame_scheme` - the coding scheme as data (field, short code, label, group);
* :func:`validate_adaptations` - checks an adaptations table against the scheme (typed copy or one
  :class:`~scaleup_analysis.errors.ScaleupDataError` listing every unknown code, its rows and the
  accepted values).

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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._checks import checked_inputs, require_columns, rows_text
from ..errors import ScaleupDataError
from ..i18n import N_

__all__ = ["frame_scheme", "validate_adaptations"]


_MULTI_SEP = ";"

# ------------------------------------------------------------------------------------------------
# The coding schemes (code, label[, group]); the codes of `when`, `planned`, `what_modified` and
# `fidelity_relation` are those of the `adaptations` schema (scaleup_analysis/data/schemas.py).
# ------------------------------------------------------------------------------------------------
_WHEN = (
    ("pre-implementation", N_("Pre-implementation / planning / pilot")),
    ("implementation", N_("Implementation")),
    ("scale-up", N_("Scale-up")),
    ("maintenance", N_("Maintenance / sustainment")),
)
_PLANNED = (
    ("planned-proactive", N_("Planned / proactive (proactive adaptation)")),
    ("planned-reactive", N_("Planned / reactive (reactive adaptation)")),
    ("unplanned-reactive", N_("Unplanned / reactive (modification)")),
)
_WHO_FRAME = (
    ("political_leader", N_("Political leaders")),
    ("program_leader", N_("Program leader")),
    ("funder", N_("Funder")),
    ("administrator", N_("Administrator")),
    ("program_manager", N_("Program manager")),
    ("developer_purveyor", N_("Intervention developer / purveyor")),
    ("researcher", N_("Researcher")),
    ("intervention_team", N_("Treatment / intervention team")),
    ("clinician", N_("Individual practitioner (clinician, provider)")),
    ("community", N_("Community members")),
    ("recipient", N_("Recipients (patients, clients)")),
)
_WHAT_FRAME = (
    ("content", N_("Content"), "content"),
    ("context-format", N_("Contextual: format"), "context"),
    ("context-setting", N_("Contextual: setting"), "context"),
    ("context-personnel", N_("Contextual: personnel"), "context"),
    ("context-population", N_("Contextual: population"), "context"),
    ("training-evaluation", N_("Training and evaluation"), "training_evaluation"),
    ("implementation-scaleup-activities", N_("Implementation and scale-up activities"), "implementation"),
)
_LEVEL_FRAME = (
    ("individual", N_("Individual recipient")),
    ("group", N_("Cohort / group of recipients")),
    ("practitioner", N_("Individual practitioner")),
    ("clinic", N_("Clinic / unit")),
    ("organisation", N_("Organization")),
    ("network", N_("Network / system / community")),
    ("region", N_("Health region (RSS) - extension: network/system level of a Quebec region")),
)
_NATURE_FRAME = (
    ("tailoring", N_("Tailoring / tweaking / refining")),
    ("packaging", N_("Changes in packaging or materials")),
    ("adding", N_("Adding elements")),
    ("removing", N_("Removing / skipping elements")),
    ("shortening", N_("Shortening / condensing (pacing / timing)")),
    ("lengthening", N_("Lengthening / extending (pacing / timing)")),
    ("substituting", N_("Substituting elements")),
    ("reordering", N_("Reordering of modules or segments")),
    ("integrating_treatment", N_("Integrating another treatment into the intervention")),
    ("integrating_framework", N_("Integrating the intervention into another framework")),
    ("repeating", N_("Repeating elements or modules")),
    ("loosening", N_("Loosening structure")),
    ("drift", N_("Departing from the intervention (drift) without return")),
    ("drift_return", N_("Drift followed by a return to the protocol")),
)
_FIDELITY = (
    ("fidelity-consistent", N_("Fidelity-consistent (core elements preserved)")),
    ("fidelity-inconsistent", N_("Fidelity-inconsistent (core elements altered)")),
    ("unknown", N_("Unknown")),
)
_GOAL_FRAME = (
    ("increase_reach", N_("Increase reach or engagement")),
    ("increase_retention", N_("Increase retention")),
    ("improve_feasibility", N_("Improve feasibility")),
    ("improve_fit", N_("Improve fit with recipients")),
    ("address_culture", N_("Address cultural factors")),
    ("improve_outcomes", N_("Improve effectiveness / outcomes")),
    ("reduce_cost", N_("Reduce cost")),
    ("increase_satisfaction", N_("Increase satisfaction")),
)
_REASON_LEVELS = (
    ("sociopolitical", N_("Sociopolitical")),
    ("organizational", N_("Organization / setting")),
    ("provider", N_("Provider")),
    ("recipient", N_("Recipient")),
)
_SUBREASONS = {
    "sociopolitical": (
        ("laws", N_("Existing laws")),
        ("mandates", N_("Existing mandates")),
        ("policies", N_("Existing policies")),
        ("regulatory", N_("Existing regulatory or compliance requirements")),
        ("political_climate", N_("Political climate")),
        ("funding_policies", N_("Funding policies")),
        ("historical_context", N_("Historical context")),
        ("societal_norms", N_("Societal / cultural norms")),
        ("funding_availability", N_("Funding or resource allocation / availability")),
    ),
    "organizational": (
        ("resources", N_("Available resources (funds, staffing, technology, space)")),
        ("competing_demands", N_("Competing demands or mandates")),
        ("time_constraints", N_("Time constraints")),
        ("service_structure", N_("Service structure")),
        ("location_access", N_("Location / accessibility")),
        ("regulatory", N_("Regulatory / compliance")),
        ("billing", N_("Billing constraints")),
        ("social_context", N_("Social context (culture, climate, leadership support)")),
        ("mission", N_("Mission")),
        ("cultural_norms", N_("Cultural or religious norms")),
    ),
    "provider": (
        ("race", N_("Race")),
        ("ethnicity", N_("Ethnicity")),
        ("gender_sexual_identity", N_("Sexual / gender identity")),
        ("language", N_("First / spoken languages")),
        ("training_skills", N_("Previous training and skills")),
        ("preferences", N_("Preferences")),
        ("clinical_judgment", N_("Clinical judgment")),
        ("cultural_norms", N_("Cultural norms, competency")),
        ("perception", N_("Perception of the intervention")),
    ),
    "recipient": (
        ("race", N_("Race")),
        ("ethnicity", N_("Ethnicity")),
        ("gender_identity", N_("Gender identity")),
        ("sexual_orientation", N_("Sexual orientation")),
        ("access_resources", N_("Access to resources")),
        ("cognitive_capacity", N_("Cognitive capacity")),
        ("physical_capacity", N_("Physical capacity")),
        ("literacy_education", N_("Literacy and education level")),
        ("language", N_("First / spoken languages")),
        ("legal_status", N_("Legal status")),
        ("cultural_norms", N_("Cultural or religious norms")),
        ("comorbidity", N_("Comorbidity / multimorbidity")),
        ("immigration_status", N_("Immigration status")),
        ("crisis", N_("Crisis or emergent circumstances")),
        ("motivation_readiness", N_("Motivation and readiness")),
    ),
}

# FRAME-IS (modifications to implementation strategies)
_WHO_IS = _WHO_FRAME + (("implementation_support", N_("Implementation support (facilitator, champion)")),)
_WHAT_IS = (
    ("content", N_("Content of the strategy"), "content"),
    ("evaluation", N_("Evaluation of the strategy"), "evaluation"),
    ("training", N_("Training of implementers"), "training"),
    ("context-format", N_("Context: format"), "context"),
    ("context-setting", N_("Context: setting"), "context"),
    ("context-personnel", N_("Context: personnel"), "context"),
    ("context-population", N_("Context: population"), "context"),
)
_NATURE_IS = tuple(c for c in _NATURE_FRAME if c[0] not in ("integrating_treatment", "integrating_framework")) + (
    ("integrating_strategy", N_("Integrating another implementation strategy")),
    ("integrating_framework", N_("Integrating the strategy into another framework")),
)
_LEVEL_IS = (
    ("individual", N_("Individual recipient")),
    ("group", N_("Group of recipients")),
    ("practitioner", N_("Individual implementer")),
    ("practitioner_group", N_("Group of implementers")),
    ("clinic", N_("Clinic / unit")),
    ("organisation", N_("Organization")),
    ("network", N_("Network / system / community")),
    ("region", N_("Health region (RSS) - extension: network/system level of a Quebec region")),
)
_GOAL_IS = (
    ("increase_reach", N_("Increase reach")),
    ("increase_adoption", N_("Increase adoption")),
    ("improve_feasibility", N_("Improve feasibility")),
    ("improve_fit", N_("Improve acceptability / appropriateness (fit)")),
    ("increase_fidelity", N_("Increase fidelity")),
    ("improve_sustainability", N_("Improve sustainability")),
    ("address_culture", N_("Address cultural factors")),
    ("improve_outcomes", N_("Improve effectiveness / outcomes")),
    ("reduce_cost", N_("Reduce cost")),
    ("increase_satisfaction", N_("Increase satisfaction")),
)
_REASON_LEVELS_IS = (
    ("sociopolitical", N_("Sociopolitical (macro)")),
    ("organizational", N_("Organization / setting (meso)")),
    ("provider", N_("Implementer / provider (micro)")),
    ("recipient", N_("Recipient (micro)")),
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


#: Largest period number accepted (periods are counted 1..T, not dates or years in days).
_MAX_PERIOD = 100_000


def _identifier_problems(df: pd.DataFrame, scheme: str) -> list[str]:
    """Check (and type, in place) the identifiers and the period; return the problems found."""
    problems: list[str] = []
    for col in ["adaptation_id", "site_id"] + (["strategy"] if scheme == "FRAME-IS" else []):
        bad = _is_blank(df[col])
        if bad.any():
            problems.append(f"  - column '{col}': missing or blank in {rows_text(df.index[bad])}; fill it in.")
        df[col] = df[col].astype(object).where(~bad, None)
        df.loc[~bad, col] = df.loc[~bad, col].astype(str)
    per = pd.to_numeric(df["period"], errors="coerce")
    with np.errstate(invalid="ignore"):
        bad = (per.isna() | ~np.isfinite(per.astype(float)) | (per < 1) | (per != np.floor(per))
               | (per > _MAX_PERIOD)).to_numpy()
    if bad.any():
        problems.append(
            f"  - column 'period': not an integer >= 1 in {rows_text(df.index[bad])}; periods are 1..T "
            f"(at most {_MAX_PERIOD:,})."
        )
    else:
        df["period"] = per.astype(np.int64)
    dup = df["adaptation_id"].duplicated(keep=False).to_numpy() & ~_is_blank(df["adaptation_id"])
    if dup.any():
        problems.append(
            f"  - column 'adaptation_id': duplicated in {rows_text(df.index[dup])}; each adaptation needs a "
            "unique identifier."
        )
    return problems


def _field_problems(df: pd.DataFrame, scheme: str, fld: str) -> list[str]:
    """Check the codes of one coded field; when they are all known, type the column in place
    (categorical in scheme order, or trimmed ``;``-separated codes). Return the problems found."""
    _, multi, _, nullable = _FIELDS[scheme][fld]
    problems = []
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
    return problems


@checked_inputs(empty=True)
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
    problems = _identifier_problems(df, scheme)
    for fld in fields_:
        if fld in df.columns:
            problems += _field_problems(df, scheme, fld)
    if problems:
        raise ScaleupDataError(
            f"table '{table}' does not follow the {scheme} coding scheme ({len(problems)} problem(s)):\n"
            + "\n".join(problems)
            + "\nSee sa.frame_scheme(" + repr(scheme) + ") for every code and its label."
        )
    return df


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
