"""Small-cell suppression, identifier checks, and the privacy of a full report.

Truth used:

* hand-worked examples of the documented rule (primary suppression of counts 1..threshold-1;
  complementary suppression so no margin group holds a single hidden cell), derived step by step
  in the comments;
* a disclosure audit by linear programming (scipy ``linprog``): given the published cells and the
  margin totals, the feasible range of a hidden cell must not shrink to a point;
* hypothesis properties on random tables: no group with exactly one hidden cell, primary cells
  always hidden, published counts unchanged, input not modified, row-order invariance;
* the output of a full ``run_report`` (shared with ``tests/test_data_safety.py``): no patient
  identifier anywhere in ``reports/``, no unsuppressed count below 5 in its CSV tables.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import scaleup_analysis as sa

# both files share one (expensive) report run per test process: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("report")
from scaleup_analysis import privacy
from scaleup_analysis.reporting import save_table

THRESHOLD = 5
COUNT_COLUMNS = ("n", "events", "reached", "eligible")


# ----------------------------------------------------------------------------------------------
# suppress_small_cells: primary suppression
# ----------------------------------------------------------------------------------------------
def test_primary_suppression_and_values():
    t = pd.DataFrame({"site": list("ABCDEF"), "n": [0, 1, 4, 5, 6, 100],
                      "rate": [np.nan, 1.0, 0.25, 0.2, 0.5, 0.07]})
    out = sa.suppress_small_cells(t, counts="n", values="rate", complementary=False)
    # counts 1..4 are hidden; 0 (discloses nobody) and >= 5 are published
    assert out["suppressed"].tolist() == [False, True, True, False, False, False]
    assert out["n"].isna().tolist() == [False, True, True, False, False, False]
    assert out["rate"].isna().tolist() == [True, True, True, False, False, False]
    assert out["n"].dtype == "Int64"  # counts stay integers (missing = <NA>)
    assert out.loc[3:, "n"].tolist() == [5, 6, 100]
    assert t["n"].tolist() == [0, 1, 4, 5, 6, 100]  # the input is not modified


def test_threshold_argument_and_any_count_column():
    t = pd.DataFrame({"n": [12, 40, 9], "events": [2, 12, 9]})
    out = sa.suppress_small_cells(t, counts=["n", "events"], threshold=10, complementary=False)
    # n=9 (< 10) and events=2 (< 10) hide their rows
    assert out["suppressed"].tolist() == [True, False, True]
    out3 = sa.suppress_small_cells(t, counts=["n", "events"], threshold=3, complementary=False)
    assert out3["suppressed"].tolist() == [True, False, False]


def test_missing_counts_are_not_suppressed_and_existing_flag_is_kept():
    t = pd.DataFrame({"n": [np.nan, 50.0, 60.0], "suppressed": [False, True, False]})
    out = sa.suppress_small_cells(t, counts="n", complementary=False)
    assert out["suppressed"].tolist() == [False, True, False]  # logical or with the old flag
    assert out["n"].isna().tolist() == [True, False, False]


_CELLS = pd.DataFrame({"region": ["01", "01", "02", "02", "03", "03"], "n": [12, 8, 30, 3, 25, 40],
                       "rate": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})


def test_a_value_without_its_count_is_suppressed_with_a_warning():
    """A rate whose count is missing is of unknown size (maybe 1 person): hidden as a small cell."""
    t = _CELLS.assign(n=[np.nan, 8, 30, 3, 25, 40])
    with pytest.warns(sa.ScaleupWarning) as rec:
        out = sa.suppress_small_cells(t, "n", "rate", by="region")
    (msg,) = [str(w.message) for w in rec]
    assert "count column 'n' is missing in 1 row(s) (index 0)" in msg
    assert "of unknown size and may be small, so their values ('rate') are suppressed" in msg
    # row 0 (unknown) and row 3 (n = 3) are primary; rows 1 and 2 complete their regions
    assert out["suppressed"].tolist() == [True, True, True, True, False, False]
    assert out["rate"].isna().tolist() == [True, True, True, True, False, False]
    assert out.loc[4:, "n"].tolist() == [25, 40] and out.loc[4:, "rate"].tolist() == [0.5, 0.6]


def test_a_missing_count_beside_a_known_one_is_not_applicable():
    t = pd.DataFrame({"n": [40, 50], "events": [np.nan, 20], "mean": [3.2, 0.4]})
    out = sa.suppress_small_cells(t, ["n", "events"], "mean", complementary=False)  # no warning
    assert out["suppressed"].tolist() == [False, False] and out["mean"].tolist() == [3.2, 0.4]


@pytest.mark.parametrize("scale", [1e300, 1e16])
def test_counts_beyond_exact_whole_numbers_are_an_error(scale):
    with pytest.raises(sa.ScaleupDataError) as err:
        sa.suppress_small_cells(_CELLS.assign(n=_CELLS["n"] * scale), "n", "rate", by="region")
    msg = str(err.value)
    assert "count column 'n' has 6 value(s) that are not non-negative whole numbers within range" in msg
    assert "(rows 0, 1, 2, 3, 4, ... (1 more))" in msg and "integers >= 0 and at most 2**53 = 9007199254740992" in msg


def test_check_no_identifiers_refuses_rows_instead_of_a_table():
    with pytest.raises(sa.ScaleupDataError) as err:
        sa.check_no_identifiers([[1, 2], [3, 4]])
    assert "argument 'data' is a list holding lists (positions 0, 1), not a list of column names" in str(err.value)
    with pytest.raises(sa.ScaleupDataError, match=r"argument 'data'\['t'\] is a list holding lists"):
        sa.check_no_identifiers({"t": _CELLS.to_numpy().tolist()})
    assert sa.check_no_identifiers(["region", "n"]) == ["region", "n"]  # a list of names is fine


# ----------------------------------------------------------------------------------------------
# complementary suppression: worked examples
# ----------------------------------------------------------------------------------------------
def test_complementary_one_margin_worked_example():
    # one margin (a grand total of n is published): B (3) is hidden; the total minus A, C, D would
    # reveal it, so the smallest other cell, C (40), is hidden too.
    t = pd.DataFrame({"site": list("ABCD"), "n": [120, 3, 40, 60], "events": [12, 1, 8, 6]})
    out = sa.suppress_small_cells(t, counts=["n", "events"])
    assert out["suppressed"].tolist() == [False, True, True, False]
    assert out.loc[[0, 3], "n"].tolist() == [120, 60]
    nocomp = sa.suppress_small_cells(t, counts=["n", "events"], complementary=False)
    assert nocomp["suppressed"].tolist() == [False, True, False, False]


def test_complementary_prefers_non_zero_cells():
    t = pd.DataFrame({"n": [0, 2, 30, 12]})
    out = sa.suppress_small_cells(t, counts="n")
    # the zero row is not used as a complement: the next-smallest non-zero cell (12) is
    assert out["suppressed"].tolist() == [False, True, False, True]


def region_period_table():
    #        P1  P2  P3
    #   R1    3  20  30
    #   R2   15  25  12
    #   R3   40  10  50
    return pd.DataFrame({"region": ["R1"] * 3 + ["R2"] * 3 + ["R3"] * 3, "period": ["P1", "P2", "P3"] * 3,
                         "n": [3, 20, 30, 15, 25, 12, 40, 10, 50]})


def test_complementary_two_margins_worked_example():
    # Hand derivation of the documented rule, margins by region (rows) then period (columns):
    # primary (R1,P1)=3.  Row R1 holds one hidden cell -> candidates (R1,P2)=20, (R1,P3)=30, none
    # completes a column with a single hidden cell -> smallest: (R1,P2).
    # Column P1 holds one -> candidates (R2,P1)=15, (R3,P1)=40, none completes a row -> (R2,P1).
    # Column P2 holds one -> candidates (R2,P2)=25 (row R2 now has a single hidden cell: completes
    # it) and (R3,P2)=10 (does not) -> (R2,P2). Every row and column now holds 0 or 2 hidden cells:
    # the rectangle R1-R2 x P1-P2.
    out = sa.suppress_small_cells(region_period_table(), counts="n", by=["region", "period"])
    hidden = set(out.loc[out["suppressed"], ["region", "period"]].itertuples(index=False, name=None))
    assert hidden == {("R1", "P1"), ("R1", "P2"), ("R2", "P1"), ("R2", "P2")}


def _feasible_range(table, hidden_mask, target):
    """Min and max of cell ``target`` given published cells, row/column totals and n >= 0 (LP)."""
    rows = pd.factorize(table["region"])[0]
    cols = pd.factorize(table["period"])[0]
    n = table["n"].to_numpy(dtype=float)
    idx = np.flatnonzero(hidden_mask)
    a_eq, b_eq = [], []
    for codes in (rows, cols):
        for g in np.unique(codes):
            members = codes == g
            a_eq.append([1.0 if members[i] else 0.0 for i in idx])
            b_eq.append(n[members].sum() - n[members & ~hidden_mask].sum())  # total - published
    c = np.array([1.0 if i == target else 0.0 for i in idx])
    lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert lo.status == 0 and hi.status == 0
    return lo.fun, -hi.fun


def test_worked_example_passes_a_disclosure_audit():
    t = region_period_table()
    out = sa.suppress_small_cells(t, counts="n", by=["region", "period"])
    lo, hi = _feasible_range(t, out["suppressed"].to_numpy(), target=0)
    # the hidden 3 could be anything in [0, 18] (the smallest hidden neighbour sums bound it):
    # tolerance 1e-9 absolute on an LP over integers given as floats
    assert lo == pytest.approx(0.0, abs=1e-9) and hi == pytest.approx(18.0, abs=1e-9)
    # without complementary suppression the cell is exactly disclosed by its margins
    only_primary = sa.suppress_small_cells(t, counts="n", by=["region", "period"], complementary=False)
    lo, hi = _feasible_range(t, only_primary["suppressed"].to_numpy(), target=0)
    assert lo == pytest.approx(3.0, abs=1e-9) and hi == pytest.approx(3.0, abs=1e-9)


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------
@st.composite
def tables(draw):
    n_r = draw(st.integers(2, 5))
    n_p = draw(st.integers(2, 5))
    counts = draw(st.lists(st.integers(0, 60), min_size=n_r * n_p, max_size=n_r * n_p))
    return pd.DataFrame({"region": np.repeat([f"R{i}" for i in range(n_r)], n_p),
                         "period": np.tile(np.arange(1, n_p + 1), n_r), "n": counts})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.randoms(use_true_random=False))
def test_properties_of_suppression(t, rnd):
    out = sa.suppress_small_cells(t, counts="n", by=["region", "period"])
    n = t["n"].to_numpy()
    hidden = out["suppressed"].to_numpy()
    assert hidden[(n > 0) & (n < THRESHOLD)].all()  # every small cell is hidden
    for dim in ("region", "period"):  # no margin group holds exactly one hidden cell
        per_group = out.groupby(dim)["suppressed"].agg(["sum", "size"])
        assert not ((per_group["sum"] == 1) & (per_group["size"] > 1)).any()
    published = ~hidden
    assert (out.loc[published, "n"].to_numpy() == n[published]).all()
    assert out.loc[hidden, "n"].isna().all()
    # same cells hidden whatever the row order (ties broken by the cell, not the position, when
    # counts differ; with tied counts only the number of hidden cells is invariant)
    perm = list(range(len(t)))
    rnd.shuffle(perm)
    shuffled = sa.suppress_small_cells(t.iloc[perm], counts="n", by=["region", "period"])
    if len(set(n.tolist())) == len(n):
        assert shuffled.sort_index()["suppressed"].tolist() == hidden.tolist()
    for dim in ("region", "period"):
        per_group = shuffled.groupby(dim)["suppressed"].agg(["sum", "size"])
        assert not ((per_group["sum"] == 1) & (per_group["size"] > 1)).any()


# ----------------------------------------------------------------------------------------------
# identifiers
# ----------------------------------------------------------------------------------------------
def test_check_no_identifiers_variants():
    ok = pd.DataFrame({"site_id": ["S1"], "n": [10]})
    assert sa.check_no_identifiers(ok) is ok
    for bad in (pd.DataFrame({"Patient_ID ": ["P0000000001"]}),
                pd.DataFrame({"x": [1]}, index=pd.Index(["P1"], name="patient_id")),
                {"summary": ok, "leak": pd.DataFrame({"patient_id": ["x"]})},
                ["site_id", "patient_id"]):
        with pytest.raises(sa.ScaleupDataError, match="patient identifier"):
            sa.check_no_identifiers(bad)
    with pytest.raises(sa.ScaleupDataError, match="'nam'"):
        sa.check_no_identifiers(pd.DataFrame({"nam": ["123"]}), identifiers=["patient_id", "nam"])
    leak = pd.DataFrame({"who": ["S1", "P0000000042"]})
    sa.check_no_identifiers(leak)  # no identifier column name
    with pytest.raises(sa.ScaleupDataError, match=r"column 'who' holds 1 value\(s\).*rows 1"):
        sa.check_no_identifiers(leak, value_pattern=r"P\d{10}")
    with pytest.raises(sa.ScaleupDataError, match="cannot inspect"):
        sa.check_no_identifiers(42)


# ----------------------------------------------------------------------------------------------
# save_table integration
# ----------------------------------------------------------------------------------------------
def test_save_table_suppresses_and_checks(tmp_path):
    t = pd.DataFrame({"rss_code": ["01", "02", "03"], "eligible": [200, 3, 80], "reached": [50, 1, 20]})
    t["penetration"] = t["reached"] / t["eligible"]
    path = save_table(t, "reach", tmp_path, counts=["eligible", "reached"], values="penetration")
    back = pd.read_csv(path, dtype={"rss_code": str})  # a RangeIndex is not written
    assert back["suppressed"].tolist() == [False, True, True]
    assert back.loc[[1, 2], ["eligible", "reached", "penetration"]].isna().all().all()
    assert back.loc[0, "eligible"] == 200
    assert not list(tmp_path.glob(".*.tmp"))
    # without counts the table is written as is (no flag added)
    plain = pd.read_csv(save_table(t, "plain", tmp_path))
    assert "suppressed" not in plain.columns and plain["eligible"].tolist() == [200, 3, 80]
    # identifiers are refused, also when nothing is written (notebooks under nbval)
    leak = pd.DataFrame({"patient_id": ["P0000000001"], "y": [1.0]})
    for where in (tmp_path, None):
        with pytest.raises(sa.ScaleupDataError, match="patient_id"):
            save_table(leak, "leak", where)
    assert not (tmp_path / "leak.csv").exists()


def test_thresholds_agree_across_the_package():
    assert inspect.signature(sa.suppress_small_cells).parameters["threshold"].default == THRESHOLD
    assert inspect.signature(save_table).parameters["threshold"].default == THRESHOLD
    assert privacy.DEFAULT_THRESHOLD == THRESHOLD
    # the federated summaries flag their small cells with the same default
    assert inspect.signature(sa.summarize).parameters["threshold"].default == THRESHOLD
    assert inspect.signature(sa.reaim).parameters["threshold"].default == THRESHOLD


# ----------------------------------------------------------------------------------------------
# a full report (the run of tests/test_data_safety.py, shared within the test process)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_dir() -> Path:
    from tests.test_data_safety import report_runs

    return Path(report_runs()["reports"])


def test_report_holds_no_patient_identifier(report_dir):
    pattern = re.compile(rb"P\d{10}")
    files = [p for p in report_dir.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = {p.name: pattern.search(p.read_bytes()).group() for p in files if pattern.search(p.read_bytes())}
    assert not leaks, leaks
    assert not list(report_dir.rglob("*patient_id*"))


def test_report_tables_have_no_unsuppressed_small_count(report_dir):
    tables = sorted((report_dir / "tables").glob("*.csv"))
    assert tables
    for path in tables:
        t = pd.read_csv(path)
        assert "patient_id" not in t.columns
        flag = t["suppressed"].astype(bool) if "suppressed" in t.columns else pd.Series(False, index=t.index)
        for col in COUNT_COLUMNS:
            if col in t.columns:
                x = pd.to_numeric(t[col], errors="coerce")
                small = (x > 0) & (x < THRESHOLD) & ~flag
                assert not small.any(), f"{path.name}: column {col!r} rows {list(t.index[small])}"
