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

from .._checks import require_columns, rows_text
from ..errors import ScaleupDataError

__all__ = ["frame_scheme", "validate_adaptations"]


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
