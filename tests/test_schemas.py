"""Schemas of the data tables (docs/data_dictionary.md) and their validation messages.

There are no numerical estimates here: the references are the data dictionary (rendered from the same
table specifications as the schemas, see tests/test_dictionary.py; its documented types are parsed
here and compared with the dtypes validation produces) and hand-built tables whose problems are known
by construction. Every message test checks that the error names the table, the column, the number of
offending rows and the rows themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scaleup_analysis as sa
from scaleup_analysis.data.schemas import REQUIRED_TABLES, SCHEMAS, TABLES, validate_table, validate_tables

DICTIONARY = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"


# --------------------------------------------------------------------------------------------
# a small, valid set of the fourteen tables (imported by test_io.py and test_cli.py)
# --------------------------------------------------------------------------------------------


def make_valid_tables() -> dict[str, pd.DataFrame]:
    """Fourteen small tables that satisfy every rule of docs/data_dictionary.md (raw, untyped)."""
    regions = pd.DataFrame(
        {
            "rss_code": ["01", "06", "17"],
            "name": ["Bas-Saint-Laurent", "Montréal", "Nunavik"],
            "settlement_type": ["rural", "metropolitan", "remote"],
        }
    )
    sites = pd.DataFrame(
        {
            "site_id": ["S01", "S02", "S03"],
            "rss_code": ["06", "01", "17"],
            "site_type": ["GMF", "CLSC", "community"],
            "size": [1500, 800, 120],
            "rurality": ["urban", "rural", "remote"],
            "deprivation_quintile": [2, 4, 5],
            "adoption_period": [1, 2, None],
            "cohort": [0, 1, None],
            "phase": ["pilot", "scale-up", "not-adopted"],
        }
    )
    indicators = pd.DataFrame(
        {
            "indicator_id": ["ED_VISITS", "PROMS"],
            "name": ["Avoidable emergency visits", "Patient-reported health"],
            "domain": ["efficiency_cost", "health_outcomes"],
            "type": ["proportion", "mean"],
            "unit": ["%", "score 0-100"],
            "direction": ["lower_is_better", "higher_is_better"],
        }
    )
    rows = []
    for s in ["S01", "S02", "S03"]:
        for t in (1, 2):
            rows.append({"site_id": s, "period": t, "indicator_id": "ED_VISITS", "n": 50, "events": 7,
                         "mean": np.nan, "sd": np.nan})
            rows.append({"site_id": s, "period": t, "indicator_id": "PROMS", "n": 40, "events": None,
                         "mean": 61.5, "sd": 9.25})
    outcomes = pd.DataFrame(rows)
    encounters = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P3"],
            "site_id": ["S01", "S01", "S02", "S03"],
            "period": [1, 2, 2, 1],
            "treated": [1, 1, 1, 0],
            "y": [55.0, 58.5, 49.0, 60.25],
            "event": [0, 1, 0, 0],
            "age": [64, 64, 71, 38],  # covariate: extra columns are kept in encounters
        }
    )
    delivery = pd.DataFrame(
        {
            "site_id": ["S01", "S01", "S02"],
            "period": [1, 2, 2],
            "sessions_planned": [10, 10, 8],
            "sessions_delivered": [9, 10, 6],
            "eligible": [200, 210, 90],
            "reached": [120, 150, 30],
            "staff_eligible": [12, 12, 6],
            "staff_trained": [10, 12, 3],
            "cost": [15000.0, 9000.5, 7000.0],
        }
    )
    components = pd.DataFrame(
        {
            "component_id": ["C1", "P1"],
            "name": ["Structured self-management plan", "Group format"],
            "core": [True, False],
            "weight": [0.7, 0.3],
            "scale_min": [0.0, 0.0],
            "scale_max": [4.0, 2.0],
        }
    )
    fidelity = pd.DataFrame(
        {
            "site_id": ["S01", "S01", "S01", "S02"],
            "session_id": ["V1", "V1", "V1", "V9"],
            "period": [1, 1, 1, 2],
            "rater_id": ["R1", "R2", "R1", "R1"],
            "component_id": ["C1", "C1", "P1", "C1"],
            "score": [3.0, 4.0, 2.0, 1.0],
        }
    )
    adaptations = pd.DataFrame(
        {
            "adaptation_id": ["A1", "A2"],
            "site_id": ["S01", "S02"],
            "period": [1, 2],
            "when": ["implementation", "scale-up"],
            "planned": ["planned-proactive", "unplanned-reactive"],
            "who_decided": ["clinician", "program_leader"],
            "what_modified": ["content", "context-format"],
            "level": ["clinic", "organisation"],
            "nature": ["shortening", None],
            "fidelity_relation": ["fidelity-consistent", "unknown"],
            "goal": ["improve_fit", "increase_reach"],
            "reason": ["provider", "organizational"],
        }
    )
    assessments = pd.DataFrame(
        {
            "instrument": ["ISAT"] * 3,
            "innovation": ["self-management"] * 3,
            "rater_id": ["R1", "R1", "R2"],
            "domain": ["A1", "A2", "A1"],
            "item_id": ["A1.1", "A2.1", "A1.1"],
            "score": [3.0, np.nan, 2.0],  # missing scores are allowed
        }
    )
    evidence = pd.DataFrame(
        {
            "study": ["Smith 2019", "Tremblay 2021", "Roy 2022"],
            "yi": [0.42, 0.15, -0.05],
            "vi": [0.04, 0.0125, 0.09],
            "setting": ["trial", "routine", "routine"],  # a moderator: extra columns are kept in evidence
        }
    )
    support = pd.DataFrame(
        {
            "site_id": ["S01", "S02", "S01"],
            "support": ["facilitation", "facilitation", "champion"],
            "start_period": [1, 2, 1],
            "end_period": [3, None, 2],  # empty: the support continues beyond the data
        }
    )
    deadoption = pd.DataFrame(
        {"site_id": ["S01"], "period": [3], "extent": ["partial"], "reason": ["support_ended"]}
    )
    site_assessments = pd.DataFrame(
        {
            "site_id": ["S01", "S01", "S02"],
            "instrument": ["PSAT"] * 3,
            "domain": ["funding_stability", "partnerships", "funding_stability"],
            "score": [4.5, 5.0, 3.25],
        }
    )
    establishments = pd.DataFrame(
        {"site_id": ["S01", "S02", "S03"], "establishment_id": ["E06", "E01", "E17"],
         "name": ["CIUSSS A", "CISSS B", "Régie C"]}
    )
    return {
        "regions": regions,
        "sites": sites,
        "indicators": indicators,
        "outcomes": outcomes,
        "encounters": encounters,
        "delivery": delivery,
        "components": components,
        "fidelity_ratings": fidelity,
        "adaptations": adaptations,
        "assessments": assessments,
        "evidence": evidence,
        "support": support,
        "deadoption": deadoption,
        "site_assessments": site_assessments,
        "establishments": establishments,
    }


def _parse_dictionary() -> dict[str, list[tuple[str, str]]]:
    """Table -> [(column, type)] from the markdown tables of docs/data_dictionary.md."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## `(\w+)`", line)
        if m:
            current = m.group(1)
            tables[current] = []
            continue
        m = re.match(r"^\| `(\w+)` \| (\w+) \|", line)
        if m and current is not None:
            tables[current].append((m.group(1), m.group(2)))
    return tables


_DTYPE_OF = {"str": "object", "int": "int64", "Int64": "Int64", "float": "float64", "bool": "bool",
             "category": "category"}


def _error(tables, **kw) -> str:
    with pytest.raises(sa.ScaleupDataError) as info:
        validate_tables(tables, **kw)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# the schemas follow the data dictionary
# --------------------------------------------------------------------------------------------


def test_every_table_has_a_schema_and_the_required_tables_are_the_core_ones():
    assert set(SCHEMAS) == set(TABLES) == set(make_valid_tables())
    assert len(TABLES) == 15
    # regions is optional (the bundled table of Quebec's 18 regions stands in for it)
    assert REQUIRED_TABLES == ("sites", "indicators", "outcomes")


def test_valid_tables_get_the_dictionary_types_and_inputs_are_untouched():
    tables = make_valid_tables()
    before = {k: v.copy() for k, v in tables.items()}
    out = validate_tables(tables)
    spec = _parse_dictionary()
    for table, cols in spec.items():
        for col, typ in cols:
            assert str(out[table][col].dtype) == _DTYPE_OF[typ], (table, col)
        pd.testing.assert_frame_equal(tables[table], before[table])  # inputs never mutated
    # categories are exactly those of the dictionary (docs/data_dictionary.md, sites.phase)
    assert list(out["sites"]["phase"].cat.categories) == ["pilot", "scale-up", "not-adopted"]
    assert out["encounters"]["age"].tolist() == [64, 64, 71, 38]  # covariate kept
    assert out["evidence"]["setting"].tolist() == ["trial", "routine", "routine"]  # moderator kept
    assert out["sites"]["adoption_period"].isna().tolist() == [False, False, True]


def test_schemas_work_standalone_with_pandera():
    raw = make_valid_tables()["sites"].astype({"size": str})
    typed = SCHEMAS["sites"].validate(raw)
    assert str(typed["size"].dtype) == "int64"
    assert str(typed["phase"].dtype) == "category"


def test_index_is_kept_and_rows_reported_by_label():
    sites = make_valid_tables()["sites"]
    sites.index = ["a", "b", "c"]
    out = validate_table(sites, "sites")
    assert list(out.index) == ["a", "b", "c"]
    bad = sites.assign(size=[10, -1, 5])
    with pytest.raises(sa.ScaleupDataError, match=r"sites\.size: 1 row .*row 'b': -1"):
        validate_table(bad, "sites")


# --------------------------------------------------------------------------------------------
# one test per rule: each message names table, column, number of rows and the rows
# --------------------------------------------------------------------------------------------


def test_missing_column():
    t = make_valid_tables()
    t["sites"] = t["sites"].drop(columns="size")
    msg = _error(t)
    assert "table 'sites'" in msg
    assert "missing column 'size'" in msg
    assert "add it" in msg  # how to fix


@pytest.mark.parametrize("table", TABLES)
def test_every_column_is_required(table):
    """Dropping any single column gives a readable error (never a KeyError from a rule or key check)."""
    full = make_valid_tables()[table]
    for col in full.columns:
        if (table, col) in (("encounters", "age"), ("evidence", "setting")):
            continue  # a covariate or moderator, not a dictionary column
        with pytest.raises(sa.ScaleupDataError) as info:
            validate_table(full.drop(columns=col), table)
        assert f"In table '{table}'" in str(info.value)
        assert f"missing column '{col}'" in str(info.value), (table, col)
        assert "repeated" not in str(info.value)  # no spurious duplicate keys on a partial key


def test_extra_column_is_an_error_except_in_encounters_and_evidence():
    t = make_valid_tables()
    t["sites"] = t["sites"].assign(Size=1)
    msg = _error(t)
    assert "sites: unexpected column 'Size'" in msg
    assert "remove or rename" in msg
    t = make_valid_tables()
    out = validate_tables(t)  # encounters carries the extra covariate 'age', evidence the moderator 'setting'
    assert "age" in out["encounters"].columns
    assert out["evidence"].columns.tolist() == ["study", "yi", "vi", "setting"]


def test_evidence_needs_positive_variances_finite_effects_and_one_row_per_study():
    ev = make_valid_tables()["evidence"]
    ev["vi"] = [0.04, 0.0, -0.01]
    ev.loc[0, "yi"] = np.inf
    ev.loc[2, "study"] = "Smith 2019"
    with pytest.raises(sa.ScaleupDataError) as info:
        validate_table(ev, "evidence", source="evidence.csv")
    msg = str(info.value)
    assert "evidence.vi: 2 rows with a value that breaks the rule 'vi must be > 0' -- file line 3: 0.0, " \
           "file line 4: -0.01" in msg
    assert "evidence.yi: 1 row" in msg and "must be finite" in msg and "file line 2: inf" in msg
    assert "evidence.study: 2 rows with a key study that is repeated" in msg


def test_non_numeric_value_in_numeric_column_names_table_column_and_file_lines():
    t = make_valid_tables()
    t["outcomes"] = t["outcomes"].astype({"n": object})
    t["outcomes"].loc[[2, 7], "n"] = ["fifty", "n/a"]
    msg = _error(t, source={"outcomes": "data/raw/outcomes.csv"})
    # rows 2 and 7 of the frame are lines 4 and 9 of the CSV (line 1 is the header)
    assert "In table 'outcomes' (data/raw/outcomes.csv)" in msg
    assert "outcomes.n: 2 rows with a value that is not a number" in msg
    assert "file line 4: 'fifty'" in msg and "file line 9: 'n/a'" in msg
    assert "must hold numbers only" in msg


def test_decimal_in_integer_column():
    t = make_valid_tables()
    t["sites"] = t["sites"].assign(size=[1500, 800.5, 120])
    msg = _error(t)
    assert "sites.size: 1 row with a value that is not a whole number -- row 1: 800.5" in msg


def test_missing_value_where_not_allowed():
    t = make_valid_tables()
    t["delivery"].loc[1, "cost"] = np.nan
    msg = _error(t)
    assert "delivery.cost: 1 row with a missing value (empty cell) -- row 1: <missing>" in msg
    assert "may not be empty" in msg


def test_out_of_range_values():
    t = make_valid_tables()
    t["sites"]["deprivation_quintile"] = [0, 4, 6]
    t["outcomes"]["period"] = 0
    msg = _error(t)
    assert "sites.deprivation_quintile: 2 rows with a value that breaks the rule " in msg
    assert "must be between 1 and 5" in msg and "row 0: 0, row 2: 6" in msg
    assert "outcomes.period: 12 rows" in msg and "must be >= 1" in msg


def test_unknown_category():
    t = make_valid_tables()
    t["sites"].loc[0, "phase"] = "Pilot"
    t["sites"].loc[0, "site_type"] = "gmf"
    msg = _error(t)
    assert "sites.site_type: 1 row" in msg and "must be one of: 'GMF', 'CLSC'" in msg and "'gmf'" in msg
    assert "sites.phase: 1 row" in msg


def test_duplicate_key_names_key_columns_and_rows():
    t = make_valid_tables()
    t["outcomes"] = pd.concat([t["outcomes"], t["outcomes"].iloc[[3]]], ignore_index=True)
    msg = _error(t, source={"outcomes": "outcomes.csv"})
    assert "outcomes.(site_id, period, indicator_id): 2 rows with a key (site_id, period, indicator_id)" in msg
    # frame rows 3 and 12 -> file lines 5 and 14
    assert "file line 5: ('S01', 2, 'PROMS'), file line 14: ('S01', 2, 'PROMS')" in msg
    assert "each key must appear once" in msg


def test_single_column_key():
    t = make_valid_tables()
    t["components"].loc[1, "component_id"] = "C1"
    msg = _error(t)
    assert "components.component_id: 2 rows with a key component_id that is repeated -- row 0: 'C1', row 1: 'C1'" in msg


def test_phase_must_agree_with_cohort():
    t = make_valid_tables()
    t["sites"]["phase"] = ["scale-up", "scale-up", "pilot"]
    msg = _error(t)
    assert "sites.cohort/phase: 2 rows with values that break the rule 'phase agrees with cohort'" in msg
    assert "row 0: cohort=0, phase='scale-up'" in msg and "row 2: cohort=<missing>, phase='pilot'" in msg


@pytest.mark.parametrize(
    ("table", "column", "value", "rule"),
    [
        ("outcomes", "events", 51, "events <= n"),
        ("delivery", "reached", 500, "reached <= eligible"),
        ("delivery", "staff_trained", 99, "staff_trained <= staff_eligible"),
        ("components", "scale_max", -1.0, "scale_max > scale_min"),
    ],
)
def test_row_level_rules(table, column, value, rule):
    t = make_valid_tables()
    t[table].loc[0, column] = value
    msg = _error(t)
    assert f"{table}." in msg and f"1 row with values that break the rule '{rule}'" in msg
    assert f"{column}={value!r}" in msg


def test_rss_code_needs_two_digits():
    t = make_valid_tables()
    t["regions"].loc[0, "rss_code"] = "1"
    msg = _error(t)
    assert "regions.rss_code: 1 row" in msg and "'01'-'18'" in msg and "row 0: '1'" in msg


def test_boolean_column_accepts_yes_no_and_rejects_other_text():
    t = make_valid_tables()
    t["components"]["core"] = ["yes", "no"]
    assert validate_tables(t)["components"]["core"].tolist() == [True, False]
    t["components"]["core"] = ["yes", "maybe"]
    assert "components.core: 1 row with a value that is not true/false -- row 1: 'maybe'" in _error(t)


# --------------------------------------------------------------------------------------------
# cross-table rules
# --------------------------------------------------------------------------------------------


def test_unknown_rss_code_is_reported_with_table_column_and_rows():
    t = make_valid_tables()
    t["sites"]["rss_code"] = ["06", "19", "99"]
    msg = _error(t, source={"sites": "data/raw/sites.csv"})
    assert "sites.rss_code: 2 rows with rss_code not found in regions.rss_code (2 unknown values)" in msg
    assert "file line 3: '19', file line 4: '99'" in msg
    assert "or add the missing row(s) to 'regions'" in msg


def test_outcome_for_unknown_site_and_indicator():
    t = make_valid_tables()
    t["outcomes"].loc[0, "site_id"] = "S99"
    t["outcomes"].loc[1, "indicator_id"] = "NOPE"
    msg = _error(t)
    assert "outcomes.site_id: 1 row with site_id not found in sites.site_id" in msg and "'S99'" in msg
    assert "outcomes.indicator_id: 1 row with indicator_id not found in indicators.indicator_id" in msg


def test_fidelity_rating_for_unknown_component_and_score_outside_scale():
    t = make_valid_tables()
    t["fidelity_ratings"].loc[0, "component_id"] = "C9"
    t["fidelity_ratings"].loc[2, "score"] = 3.0  # P1 is rated 0-2
    msg = _error(t)
    assert "fidelity_ratings.component_id: 1 row with component_id not found in components.component_id" in msg
    assert "fidelity_ratings.score: 1 row with a score outside its component's rating scale" in msg
    assert "row 2: component_id='P1', score=3.0, scale=[0.0, 2.0]" in msg


def test_outcomes_must_match_indicator_type():
    t = make_valid_tables()
    oc = t["outcomes"]
    oc.loc[0, "events"] = None  # proportion without events
    oc.loc[2, "mean"] = 50.0  # proportion with a mean
    oc.loc[1, "sd"] = np.nan  # mean without sd
    oc.loc[3, "events"] = 4  # mean with events
    msg = _error(t)
    assert "outcomes.events: 1 row with no events although the indicator type is 'proportion' -- row 0" in msg
    assert "outcomes.mean/sd: 1 row with a mean or sd although the indicator type is 'proportion' -- row 2" in msg
    assert "outcomes.mean/sd: 1 row with no mean or no sd although the indicator type is 'mean' -- row 1" in msg
    assert "outcomes.events: 1 row with events although the indicator type is 'mean' -- row 3" in msg


def test_child_table_without_its_parent():
    t = make_valid_tables()
    del t["components"]
    msg = _error(t)
    assert "fidelity_ratings.component_id: refers to table 'components', which is absent" in msg


def test_all_problems_of_all_tables_in_one_error_with_counts_and_first_rows_only():
    t = make_valid_tables()
    t["outcomes"]["n"] = -1  # 12 bad rows: all counted, 5 shown
    t["sites"] = t["sites"].drop(columns="rurality")
    t["regions"].loc[2, "name"] = "  "
    msg = _error(t)
    assert msg.startswith("Invalid data: ")
    assert "in 3 tables; nothing was validated." in msg
    assert "outcomes.n: 12 rows with a value that breaks the rule 'n must be >= 0'" in msg
    assert "row 4: -1, ... (7 more)" in msg and "row 5: -1" not in msg
    assert "missing column 'rurality'" in msg
    assert "regions.name: 1 row with a value that breaks the rule 'name must not be blank'" in msg
    # pandera's raw dump is not leaked
    for raw in ("SchemaErrors", "failure_case", "schema_context", "DataFrameSchema"):
        assert raw not in msg


def test_unknown_table_name():
    with pytest.raises(sa.ScaleupDataError, match="Unknown table name.*'site'.*Known tables: regions"):
        validate_tables({"site": make_valid_tables()["sites"]})
    with pytest.raises(sa.ScaleupDataError, match="Unknown table 'patients'"):
        validate_table(pd.DataFrame(), "patients")


def test_empty_optional_tables_are_valid():
    t = {k: (v if k in (*REQUIRED_TABLES, "regions") else v.iloc[0:0]) for k, v in make_valid_tables().items()}
    out = validate_tables(t)
    assert all(len(out[k]) == 0 for k in t if k not in (*REQUIRED_TABLES, "regions"))
    assert str(out["delivery"]["period"].dtype) == "int64"


def test_empty_required_tables_are_an_error():
    t = {k: v.iloc[0:0] for k, v in make_valid_tables().items()}
    with pytest.raises(sa.ScaleupDataError, match="sites: no rows"):
        validate_tables(t)


_REF = None


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(perm_seed=st.integers(0, 2**32 - 1))
def test_property_row_order_does_not_change_the_typed_values(perm_seed):
    """Validation is row-wise: shuffling rows shuffles the output the same way (6 examples: each
    validation of the ten tables costs ~0.3 s)."""
    global _REF
    t = make_valid_tables()
    if _REF is None:
        _REF = validate_tables(t)
    ref = _REF
    rng = np.random.default_rng(perm_seed)
    shuffled = {k: v.iloc[rng.permutation(len(v))] for k, v in t.items()}
    out = validate_tables(shuffled)
    for k in t:
        pd.testing.assert_frame_equal(out[k].sort_index(), ref[k].sort_index())


_NASTY = [None, np.nan, "", " ", "x", -1, 1.5, np.inf, True, "01", 10**20, "NA", 2]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_property_any_bad_cell_gives_a_readable_error_never_a_crash(data):
    """Putting any awkward value in any cell either validates or raises ScaleupDataError (no KeyError,
    TypeError or OverflowError escaping from a check)."""
    tables = make_valid_tables()
    table = data.draw(st.sampled_from(TABLES))
    df = tables[table]
    col = data.draw(st.sampled_from(list(df.columns)))
    row = data.draw(st.integers(0, len(df) - 1))
    value = data.draw(st.sampled_from(_NASTY))
    df = df.astype({col: object})
    df.iloc[row, df.columns.get_loc(col)] = value
    try:
        validate_table(df, table)
    except sa.ScaleupDataError as exc:
        assert f"In table '{table}'" in str(exc)


def test_deadoption_must_follow_adoption_and_support_spells_must_end_after_they_start():
    t = make_valid_tables()
    t["deadoption"] = pd.DataFrame({"site_id": ["S01", "S03"], "period": [1, 2], "extent": ["complete", "partial"],
                                    "reason": ["low_fit", "other"]})
    t["support"].loc[1, "end_period"] = 2  # S02: facilitation from 2, "ended" in 2
    msg = _error(t)
    assert "deadoption.period: 1 row with a de-adoption of a site that never adopted" in msg
    assert "site 'S03', period 2" in msg
    assert "deadoption.period: 1 row with a de-adoption period not after the site's adoption_period" in msg
    assert "site 'S01', period 1" in msg
    assert "end_period > start_period" in msg and "row 1" in msg
    t = make_valid_tables()
    t["deadoption"] = t["deadoption"].assign(reason=["bored"])
    assert "deadoption" in _error(t) and "bored" in _error(t)


def test_row_labels_of_a_numpy_integer_index_read_as_plain_numbers():
    t = make_valid_tables()
    sites = t["sites"].copy()
    sites.index = pd.Index(np.array([10, 20, 30], dtype=np.int64))
    sites.loc[20, "size"] = -5
    msg = _error({**t, "sites": sites})
    assert "row 20" in msg and "np.int64" not in msg


def test_an_establishment_has_one_name_and_serves_one_region():
    tables = make_valid_tables()
    est = tables["establishments"].copy()
    est.loc[1, "establishment_id"] = "E06"      # S02 is in region 01, E06's other site in 06
    with pytest.raises(sa.ScaleupDataError) as e:
        validate_tables({**tables, "establishments": est})
    msg = str(e.value)
    assert "establishments" in msg and "several regions" in msg and "S02" in msg
    est = tables["establishments"].copy()
    est.loc[2, ["establishment_id", "name"]] = ["E06", "Another name"]
    est.loc[2, "site_id"] = "S03"
    with pytest.raises(sa.ScaleupDataError) as e:
        validate_tables({**tables, "establishments": est})
    assert "several names for one establishment_id" in str(e.value)
