"""The private input-checking helpers of scaleup_analysis._checks (exact message texts).

Expected strings are written out by hand from the documented message formats (CONTRIBUTING.md:
name the table/column, count the offending rows and show the first few); they are not copied from
the code's output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleup_analysis._checks import (
    check_level,
    check_mixed_args,
    fail_rows,
    first_values,
    numeric_column,
    require_columns,
    rows_text,
)
from scaleup_analysis.errors import ScaleupDataError


def test_rows_text_from_frame_series_index_and_labels():
    df = pd.DataFrame({"x": [5, -1, 2, -3]}, index=[10, 11, 12, 13])
    mask = df["x"].to_numpy() < 0
    assert rows_text(df, mask) == "2 row(s) (index 11, 13)"
    assert rows_text(df["x"], mask) == "2 row(s) (index 11, 13)"
    assert rows_text(df.index, mask) == "2 row(s) (index 11, 13)"
    assert rows_text(df.index[mask]) == "2 row(s) (index 11, 13)"
    assert rows_text(["a", "b"]) == "2 row(s) (index 'a', 'b')"
    assert rows_text(df, df["x"] < 0, label="first:") == "2 row(s) (first: 11, 13)"  # boolean Series mask


def test_rows_text_truncates_and_counts_the_rest():
    idx = pd.RangeIndex(12)
    assert rows_text(idx, np.ones(12, bool)) == "12 row(s) (index 0, 1, 2, 3, 4, ... (7 more))"
    assert rows_text(idx, np.ones(12, bool), max_shown=2) == "12 row(s) (index 0, 1, ... (10 more))"
    assert rows_text(idx, np.zeros(12, bool)) == "0 row(s) (index )"


def test_require_columns():
    df = pd.DataFrame({"site_id": ["A"], "period": [1]})
    require_columns(df, "delivery", ["site_id", "period"])  # all present: no error
    with pytest.raises(ScaleupDataError) as exc:
        require_columns(df, "delivery", ["site_id", "reached", "eligible"])
    assert str(exc.value) == (
        "table 'delivery': missing column(s) ['reached', 'eligible']. Available columns: "
        "['site_id', 'period']. Rename the columns or pass their names as keyword arguments "
        "(see docs/data_dictionary.md)."
    )
    with pytest.raises(ScaleupDataError, match=r"^fidelity_ratings: missing column\(s\) \['score'\]\. .* Fix it\.$"):
        require_columns(df, "fidelity_ratings", ["score"], label="fidelity_ratings", hint="Fix it.")
    with pytest.raises(ScaleupDataError, match=r"^table 'sites': expected a pandas DataFrame, got list\.$"):
        require_columns([1, 2], "sites", ["site_id"])
    wide = pd.DataFrame(columns=[f"c{i}" for i in range(25)])
    with pytest.raises(ScaleupDataError, match=r"'c19'\] \.\.\. \(5 more\)\. "):
        require_columns(wide, "wide", ["zz"])


def test_fail_rows():
    df = pd.DataFrame({"n": [3, -1, -2]})
    fail_rows("delivery", "n", "are negative", df, np.zeros(3, bool), "Counts are >= 0.")  # nothing flagged
    with pytest.raises(ScaleupDataError) as exc:
        fail_rows("delivery", "n", "are negative", df, df["n"] < 0, "Counts are >= 0.")
    assert str(exc.value) == "table 'delivery', column 'n': 2 row(s) (first: 1, 2) are negative. Counts are >= 0."


@pytest.mark.parametrize(
    "family, level, reml, fragment",
    [
        ("poisson", 0.95, True, "mixed_model: family must be 'gaussian' or 'binomial', got 'poisson'."),
        ("gaussian", 95, True, "mixed_model: argument 'level' must be a coverage in (0, 1), e.g. 0.95; got 95."),
        ("gaussian", 0.95, "yes", "mixed_model: reml must be True or False, got 'yes'."),
    ],
)
def test_check_mixed_args(family, level, reml, fragment):
    check_mixed_args("mixed_model", "binomial", 0.9, np.bool_(False))  # valid: no error
    with pytest.raises(ScaleupDataError) as exc:
        check_mixed_args("mixed_model", family, level, reml)
    assert str(exc.value) == fragment


def test_first_values():
    assert first_values(np.array([3, 1, 4], dtype=np.int64)) == "3, 1, 4"  # NumPy scalars shown as Python ints
    assert first_values(range(9)) == "0, 1, 2, 3, 4, ... (4 more)"
    assert first_values(["a", "b", "c"], 2) == "'a', 'b', ... (1 more)"
    assert first_values([(1, 2)]) == "(1, 2)"
    assert first_values([]) == ""


def test_numeric_column_messages():
    df = pd.DataFrame({"y": ["1.5", "x", None, "inf", "z"]}, index=[10, 11, 12, 13, 14])
    with pytest.raises(ScaleupDataError) as exc:
        numeric_column(df, "y", "icc: table 'data'", arg="score")
    assert str(exc.value) == (
        "icc: table 'data', column 'y' (argument 'score'): 2 row(s) (first: 11, 14) are not numeric "
        "(values 'x', 'z'). Convert the column to numbers."
    )
    ok = df.loc[[10, 12, 13]]
    with pytest.raises(ScaleupDataError) as exc:
        numeric_column(ok, "y", "table 'data'")
    assert str(exc.value) == "table 'data', column 'y': 1 row(s) (first: 12) are missing. Fill in the values or drop the rows."
    with pytest.raises(ScaleupDataError) as exc:
        numeric_column(ok, "y", "table 'data'", missing=True)
    assert str(exc.value) == "table 'data', column 'y': 1 row(s) (first: 13) are infinite. Correct or drop these rows."
    np.testing.assert_array_equal(numeric_column(ok, "y", "t", missing=True, infinite=True), [1.5, np.nan, np.inf])
    with pytest.raises(ScaleupDataError, match="holds True/False values"):
        numeric_column(pd.DataFrame({"b": [True, False]}), "b", "t", booleans=False)
    np.testing.assert_array_equal(numeric_column(pd.DataFrame({"b": [True, False]}), "b", "t"), [1.0, 0.0])


@pytest.mark.parametrize("level", [0, 1, 95, -0.5, float("nan"), "0.95", True, None])
def test_check_level_rejects(level):
    with pytest.raises(ScaleupDataError) as exc:
        check_level(level, "fn")
    assert str(exc.value) == f"fn: argument 'level' must be a coverage in (0, 1), e.g. 0.95; got {level!r}."


def test_check_level_accepts_and_returns():
    assert check_level(0.95) == 0.95
    assert check_level(np.float64(0.9)) == 0.9


def test_warnings_of_public_functions_point_at_the_callers_line(tmp_path):
    """A warning raised deep inside a public function is shown at the line that called it (the user's
    cell or script), with that line's source, also from ``python -c`` (no file to read)."""
    import subprocess
    import sys

    script = tmp_path / "analysis.py"
    script.write_text("import numpy as np, pandas as pd\nimport scaleup_analysis as sa\n"
                      "d = pd.DataFrame({'yi': [np.nan, 1, 2, 3, 4], 'vi': [0.1] * 5})\n"
                      "res = sa.meta_analysis(d)\n")
    for cmd in ([sys.executable, "-W", "always", str(script)],
                [sys.executable, "-W", "always", "-c", script.read_text()]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        where = f"{script}:4:" if cmd[-1] == str(script) else "<string>:4:"
        assert f"{where} RowsOmittedWarning: meta_analysis(): rows omitted" in p.stderr, p.stderr
        assert "_checks.py" not in p.stderr and "Traceback" not in p.stderr, p.stderr
