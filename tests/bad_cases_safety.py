"""Bad inputs of the data-safety and privacy area: writing where one cannot, identifiers hidden in
MultiIndex or non-text column labels (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bad_input_support import E, Bad, tbl, tmpdir

import scaleup_analysis as sa


def _file_as_folder():
    """A path whose parent is a file: ``<tmp>/sites.csv/out``."""
    d = tmpdir()
    (d / "sites.csv").write_text("not a folder\n")
    return d / "sites.csv"


def _folder_as_file():
    d = tmpdir()
    (d / "regions.csv").mkdir()
    return d / "regions.csv"


def _multiindex_columns():
    cols = pd.MultiIndex.from_tuples([("ids", "patient_id"), ("outcome", "mean")])
    return pd.DataFrame(np.zeros((2, 2)), columns=cols)


CASES: list[Bad] = [
    Bad("safety_write_parent_is_file", "write_table_atomic", "target whose parent folder is a file",
        lambda: sa.write_table_atomic(tbl("regions"), _file_as_folder() / "regions.csv"),
        ("cannot write", "sites.csv", "is a file, not a folder")),
    Bad("safety_write_grandparent_is_file", "write_table_atomic", "target two folders below a file",
        lambda: sa.write_table_atomic(tbl("regions"), _file_as_folder() / "a" / "b" / "regions.csv"),
        ("cannot write", "sites.csv' is a file, not a folder")),
    Bad("safety_write_target_is_folder", "write_table_atomic", "target is an existing folder named regions.csv",
        lambda: sa.write_table_atomic(tbl("regions"), _folder_as_file()),
        ("cannot write the file", "regions.csv", "a folder of that name exists")),
    Bad("safety_manifest_parent_is_file", "write_manifest", "data folder that is a file",
        lambda: sa.write_manifest(_file_as_folder()), ("sites.csv",)),
    Bad("safety_report_out_under_file", "run_report", "--out below a file",
        lambda: sa.run_report(None, _file_as_folder() / "reports", progress=False),
        ("--out", "cannot be created", "sites.csv' is a file, not a folder")),
    Bad("safety_init_under_file", "init_study", "study folder below a file",
        lambda: sa.init_study(_file_as_folder() / "my_study"),
        ("the study folder", "sites.csv' is a file, not a folder")),
    Bad("safety_identifier_multiindex", "check_no_identifiers", "`patient_id` as a level of MultiIndex columns",
        lambda: sa.check_no_identifiers(_multiindex_columns()),
        ("'patient_id' (column ('ids', 'patient_id'))", "drop the column")),
    Bad("safety_identifier_bytes_label", "check_no_identifiers", "`b'patient_id'` (bytes) column label",
        lambda: sa.check_no_identifiers(pd.DataFrame({b"patient_id": ["P0000000001"], 0: [1]})),
        ("'patient_id' (column)",)),
    Bad("safety_identifier_column_axis_name", "check_no_identifiers", "columns axis named `patient_id` (wide table)",
        lambda: sa.check_no_identifiers(pd.DataFrame([[1, 2]], columns=pd.Index(["P1", "P2"], name="patient_id"))),
        ("'patient_id' (column level)",)),
    Bad("safety_identifier_value_in_index_level", "check_no_identifiers",
        "identifier values in the 2nd level of an unnamed MultiIndex",
        lambda: sa.check_no_identifiers(
            pd.DataFrame({"y": [1.0]}, index=pd.MultiIndex.from_tuples([("S1", "P0000000001")])),
            value_pattern=r"P\d{10}"),
        ("'<index level 1>'", "matching the identifier pattern")),
    Bad("safety_identifier_value_duplicated_column", "check_no_identifiers",
        "identifier values in the 2nd of two columns with the same name",
        lambda: sa.check_no_identifiers(pd.DataFrame([["S1", "P0000000001"]], columns=["who", "who"]),
                                        value_pattern=r"P\d{10}"),
        ("column 'who' holds 1 value(s)", "rows 0")),
]
assert all(c.expected is E for c in CASES)
