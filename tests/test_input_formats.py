"""Inputs as Quebec teams have them: French-locale CSV, one workbook, empty templates, stray files.

References: every folder is built here from a valid set of tables (the simulator's, or the small hand
tables of test_schemas.py) written with pandas' own writers in the format under test (``to_csv(sep=";",
decimal=",", encoding="cp1252")``, ``ExcelWriter``); loading it must give back the original tables
(exactly for CSV; to Excel's 15 significant digits for workbooks). Error messages are checked for the
file they name, what is wrong and how to fix it; file lines are counted from the bytes written.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from test_schemas import make_valid_tables

import scaleup_analysis as sa
from scaleup_analysis.data.io import load_table, load_tables, write_table_atomic


@lru_cache(maxsize=1)
def _sim() -> dict[str, pd.DataFrame]:
    return sa.simulate_scaleup(seed=1, n_sites=36, n_periods=8, patients_per_site_period=2).tables


def sim() -> dict[str, pd.DataFrame]:
    return {k: v.copy() for k, v in _sim().items()}


def _french_csv(directory, tables, encoding="cp1252"):
    for name, df in tables.items():
        df.to_csv(directory / f"{name}.csv", sep=";", decimal=",", encoding=encoding, index=False)
    return directory


def _workbook(path, tables, extra_sheets=("Lisez-moi", "Listes")):
    with pd.ExcelWriter(path, engine="openpyxl") as w:
        for sheet in extra_sheets[:1]:
            pd.DataFrame({"Instructions": ["Remplissez une feuille par table.", "Une ligne par site."]}).to_excel(
                w, sheet_name=sheet, index=False)
        for name, df in tables.items():
            df.to_excel(w, sheet_name=name, index=False)
        for sheet in extra_sheets[1:]:
            pd.DataFrame({"rss_code": ["01", "02"]}).to_excel(w, sheet_name=sheet, index=False)
    return path


def _digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _error(call) -> str:
    with pytest.raises(sa.ScaleupDataError) as info:
        call()
    return str(info.value)


# --------------------------------------------------------------------------------------------
# French-locale CSV: ';', decimal comma, Windows-1252
# --------------------------------------------------------------------------------------------


def test_semicolon_decimal_comma_cp1252_folder_loads_equal_to_the_original(tmp_path):
    tables = sim()
    _french_csv(tmp_path, tables)
    before = _digest(tmp_path)
    assert b"Montr\xe9al" in (tmp_path / "regions.csv").read_bytes()  # really Windows-1252
    assert ";" in (tmp_path / "delivery.csv").read_text(encoding="cp1252").splitlines()[1]
    info = load_tables(tmp_path, encoding="cp1252", return_info=True)
    assert list(info.tables) == list(tables)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(info.tables[name], df, check_exact=True, obj=name)  # exact: repr floats
    assert any("decimal comma" in n and "outcomes.csv" in n and "';' (semicolon)" in n for n in info.notes)
    # the same with the format declared instead of detected
    declared = load_tables(tmp_path, separator=";", decimal=",", encoding="windows-1252")
    for name, df in tables.items():
        pd.testing.assert_frame_equal(declared[name], df, check_exact=True, obj=name)
    assert _digest(tmp_path) == before  # the folder is only read


def test_cp1252_file_read_as_utf8_says_how_to_declare_the_encoding(tmp_path):
    _french_csv(tmp_path, sim())
    msg = _error(lambda: load_tables(tmp_path))
    assert "regions.csv' is not valid UTF-8" in msg and "byte offset" in msg
    assert 'encoding = "cp1252" in the [data] section of study.toml' in msg
    assert "could not be read" in msg  # and the other tables are still validated in the same pass


def test_utf8_file_in_a_folder_declared_cp1252_is_read_as_utf8(tmp_path):
    tables = {k: v for k, v in sim().items() if k in ("regions", "sites", "indicators", "outcomes")}
    _french_csv(tmp_path, tables)
    _french_csv(tmp_path, {"regions": tables["regions"]}, encoding="utf-8")  # re-saved as CSV UTF-8
    info = load_tables(tmp_path, encoding="cp1252", return_info=True)
    assert "Montréal" in info.tables["regions"]["name"].tolist()  # never 'MontrÃ©al'
    assert any(n.startswith("regions.csv: read with") and "encoding UTF-8 (not the cp1252 that was set" in n
               for n in info.notes)


def test_thousands_separators_with_decimal_comma_and_text_never_altered(tmp_path):
    text = (
        "site_id;period;sessions_planned;sessions_delivered;eligible;reached;staff_eligible;staff_trained;cost\n"
        "S01;1;10;9;1 200;1\u00a0050;12;10;15\u202f000,5\n"
        "S01;2;10;10;1 200;1 100;12;12;1 234,25\n"
    )
    (tmp_path / "delivery.csv").write_text(text, encoding="utf-8")
    out = load_table(tmp_path / "delivery.csv")
    assert out["eligible"].tolist() == [1200, 1200] and out["reached"].tolist() == [1050, 1100]
    assert out["cost"].tolist() == [15000.5, 1234.25]
    regions = "rss_code;name;settlement_type\n06;Montréal 1 234,5;metropolitan\n"
    (tmp_path / "regions.csv").write_text(regions, encoding="utf-8")
    assert load_table(tmp_path / "regions.csv", decimal=",")["name"].tolist() == ["Montréal 1 234,5"]


def test_tab_separated_and_utf8_bom_are_detected(tmp_path):
    df = make_valid_tables()["components"]
    df.to_csv(tmp_path / "components.csv", sep="\t", index=False, encoding="utf-8-sig")
    out = load_table(tmp_path / "components.csv")
    assert out["weight"].tolist() == [0.7, 0.3] and out["core"].tolist() == [True, False]
    df.to_csv(tmp_path / "components.csv", sep="\t", decimal=",", index=False)
    assert load_table(tmp_path / "components.csv")["weight"].tolist() == [0.7, 0.3]


def test_forced_separator_that_does_not_fit_the_header_names_the_right_one(tmp_path):
    make_valid_tables()["sites"].to_csv(tmp_path / "sites.csv", sep=";", index=False)
    msg = _error(lambda: load_table(tmp_path / "sites.csv", separator=","))
    assert "sites.csv' is not separated by ',' (comma), the separator that was set" in msg
    assert "splits into 1 column(s) at ','" in msg and "9 of them column names of table 'sites'" in msg
    assert "separated by ';' (semicolon): set separator = \";\" in the [data] section of study.toml" in msg


def test_one_field_per_line_holding_semicolons_is_named(tmp_path):
    # a header the loader does not know (French column names): detection falls back to the field count;
    # forcing ',' leaves one field per line that holds ';'
    (tmp_path / "regions.csv").write_text("code;nom;type\n06;Montréal;metropolitan\n", encoding="utf-8")
    msg = _error(lambda: load_table(tmp_path / "regions.csv", separator=","))
    assert "reads as one column per line with the separator ',' (comma) that was set" in msg
    assert "its lines contain ';' (semicolon)" in msg and 'separator = ";" in the [data] section of study.toml' in msg
    # detected, the separator is right and the message is about the column names
    msg = _error(lambda: load_table(tmp_path / "regions.csv"))
    assert "missing columns 'rss_code', 'name', 'settlement_type'" in msg and "unexpected columns 'code'" in msg


def test_header_and_data_lines_with_different_separators(tmp_path):
    (tmp_path / "regions.csv").write_text("rss_code,name,settlement_type\n06;Montréal;metropolitan\n01;BSL;rural\n",
                                          encoding="utf-8")
    msg = _error(lambda: load_table(tmp_path / "regions.csv"))
    assert "regions.csv' mixes separators: its header line is separated by ',' (comma) but every data line by " \
           "';' (semicolon)" in msg


def test_decimal_point_forced_on_decimal_comma_numbers_adds_a_note(tmp_path):
    make_valid_tables()["components"].to_csv(tmp_path / "components.csv", sep=";", decimal=",", index=False)
    msg = _error(lambda: load_table(tmp_path / "components.csv", decimal="."))
    assert "components.weight: 2 rows with a value that is not a number -- file line 2: '0,7'" in msg
    assert "Note: numbers written like '12,5' use a decimal comma, but decimal '.' was set" in msg
    assert 'decimal = "," in the [data] section of study.toml' in msg


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"separator": "|"}, "separator='|' is not supported"),
        ({"decimal": "·"}, "decimal='·' is not supported"),
        ({"separator": ",", "decimal": ","}, "decimal=',' needs a separator other than ','"),
        ({"encoding": "utf-16"}, "encoding='utf-16' is not supported: use 'utf-8'"),
        ({"encoding": "klingon"}, "encoding='klingon' is not supported"),
    ],
)
def test_bad_format_options(tmp_path, kwargs, fragment):
    assert fragment in _error(lambda: load_tables(tmp_path, **kwargs))


def test_error_rows_are_file_lines_despite_blank_lines_and_multiline_fields(tmp_path):
    text = (
        "\n"  # a blank line before the header
        "rss_code;name;settlement_type\n"
        '01;"Bas-Saint-\nLaurent";rural\n'  # a field quoted over two lines
        "\n"
        ";;\n"  # a row of empty cells: ignored
        "6;Montréal;metropolitan\n"  # line 7 of the file
    )
    (tmp_path / "regions.csv").write_bytes(text.encode("utf-8"))
    msg = _error(lambda: load_table(tmp_path / "regions.csv"))
    bad_line = text.split("\n").index("6;Montréal;metropolitan") + 1
    assert bad_line == 7
    assert "regions.rss_code: 1 row with a value that breaks the rule" in msg and f"file line {bad_line}: '6'" in msg


# --------------------------------------------------------------------------------------------
# one workbook, a sheet per table
# --------------------------------------------------------------------------------------------


def test_one_workbook_with_a_sheet_per_table_loads_equal_to_the_original(tmp_path):
    tables = sim()
    _workbook(tmp_path / "étude.xlsx", tables)
    before = _digest(tmp_path)
    info = load_tables(tmp_path, return_info=True)
    assert list(info.tables) == list(tables)
    for name, df in tables.items():
        # Excel keeps 15 significant digits of a number: floats agree to that precision
        pd.testing.assert_frame_equal(info.tables[name], df, check_exact=False, rtol=1e-14, atol=0, obj=name)
    assert info.files["sites"] == tmp_path / "étude.xlsx" and info.sheets["sites"] == "sites"
    assert info.ignored == {
        "sheet 'Lisez-moi' of étude.xlsx": "not named after a table",
        "sheet 'Listes' of étude.xlsx": "not named after a table",
    }
    assert _digest(tmp_path) == before


def test_sheet_names_ignore_case_and_surrounding_blanks(tmp_path):
    t = make_valid_tables()
    with pd.ExcelWriter(tmp_path / "study.xlsx", engine="openpyxl") as w:
        for name in ("regions", "sites", "indicators", "outcomes"):
            t[name].to_excel(w, sheet_name={"sites": " Sites ", "outcomes": "OUTCOMES"}.get(name, name), index=False)
    info = load_tables(tmp_path, return_info=True)
    assert list(info.tables) == ["regions", "sites", "indicators", "outcomes"]
    assert info.sheets == {"regions": "regions", "sites": " Sites ", "indicators": "indicators", "outcomes": "OUTCOMES"}


def test_workbook_errors_name_the_sheet_and_row_and_excel_quirks(tmp_path):
    t = make_valid_tables()
    sites = t["sites"].assign(site_id=[101, 102, 103], rss_code=[6, 1, 17])  # numbers typed into Excel
    outcomes = t["outcomes"].assign(site_id=np.repeat([101, 102, 103], 4))
    regions = t["regions"].assign(rss_code=["06", "01", "17"])
    _workbook(tmp_path / "study.xlsx", {"regions": regions, "sites": sites, "indicators": t["indicators"],
                                         "outcomes": outcomes})
    msg = _error(lambda: load_tables(tmp_path))
    # integer codes read back as text ("101", not "101.0"), but RSS 6 is not '06': today's clear error
    assert f"In table 'sites' (sheet 'sites' of {str(tmp_path / 'study.xlsx')!r})" in msg
    assert "sites.rss_code: 2 rows with rss_code not found in regions.rss_code" in msg
    assert "sheet row 2: '6', sheet row 3: '1'. Fix: correct the code (known values: '01', '06', '17')" in msg
    assert "outcomes.site_id" not in msg  # 101 in outcomes matches 101 in sites
    sites["rss_code"] = ["06", "01", "17"]
    _workbook(tmp_path / "study.xlsx", {"regions": regions, "sites": sites, "indicators": t["indicators"],
                                         "outcomes": outcomes})
    assert load_tables(tmp_path)["sites"]["site_id"].tolist() == ["101", "102", "103"]


def test_workbook_without_table_sheets_is_not_recognised(tmp_path):
    _workbook(tmp_path / "Sites (1).xlsx", {"Feuil1": make_valid_tables()["sites"]}, extra_sheets=())
    msg = _error(lambda: load_tables(tmp_path))
    assert "'Sites (1).xlsx': a workbook without a sheet named after a table (its sheets: 'Feuil1')" in msg
    assert "rename it sites.xlsx" in msg


# --------------------------------------------------------------------------------------------
# empty templates (as `scaleup init` writes them) and two sources for one table
# --------------------------------------------------------------------------------------------


def _templates(directory):
    """Header-only CSV files for every table and a workbook with a header-only sheet per table."""
    from scaleup_analysis.data.schemas import _SPECS

    headers = {s.name: pd.DataFrame(columns=[c.name for c in s.columns]) for s in _SPECS}
    for name, df in headers.items():
        df.to_csv(directory / f"{name}.csv", index=False)
    _workbook(directory / "study.xlsx", headers)
    (directory / "study.toml").write_text('[study]\nname = "test"\n', encoding="utf-8")
    (directory / "README.md").write_text("# Lisez-moi\n", encoding="utf-8")
    (directory / "LISEZMOI.txt").write_text("Remplir les gabarits.\n", encoding="utf-8")
    return directory


def test_empty_templates_count_as_not_given(tmp_path):
    _templates(tmp_path)
    msg = _error(lambda: load_tables(tmp_path))
    assert msg.startswith(f"Directory {str(tmp_path)!r} lacks the required table(s) sites, indicators, outcomes;")
    assert ("  - sites: add sites.csv (or .xlsx or .parquet, or a sheet 'sites' in a workbook); sites.csv and "
            "sheet 'sites' of study.xlsx hold only the header row (an empty template): fill in the rows.") in msg
    # the user fills in the CSV templates of the three required tables
    t = make_valid_tables()
    for name in ("sites", "indicators", "outcomes"):
        t[name].to_csv(tmp_path / f"{name}.csv", index=False)
    info = load_tables(tmp_path, return_info=True)
    assert list(info.tables) == ["regions", "sites", "indicators", "outcomes"]  # regions: bundled
    assert info.defaults == ("regions",)
    assert info.ignored["delivery.csv"] == "an empty template (header row only): table 'delivery' counts as not given"
    assert info.ignored["sheet 'sites' of study.xlsx"].startswith("an empty template")
    assert "study.toml" not in info.ignored and "README.md" not in info.ignored


def test_filled_workbook_beside_csv_templates(tmp_path):
    _templates(tmp_path)
    t = make_valid_tables()
    _workbook(tmp_path / "study.xlsx", t)
    info = load_tables(tmp_path, return_info=True)
    assert set(info.tables) == set(t) and set(info.sheets) == set(t)
    assert all(info.files[name] == tmp_path / "study.xlsx" for name in t)


def test_two_non_empty_sources_for_one_table_name_both(tmp_path):
    t = make_valid_tables()
    for name in ("regions", "sites", "indicators", "outcomes"):
        t[name].to_csv(tmp_path / f"{name}.csv", index=False)
    _workbook(tmp_path / "study.xlsx", {"sites": t["sites"], "delivery": t["delivery"]})
    msg = _error(lambda: load_tables(tmp_path))
    assert "1 table given more than once; nothing was loaded:" in msg
    assert ("sites: given by more than one file or sheet for the same table (sites.csv: 3 rows; sheet 'sites' of "
            "study.xlsx: 3 rows). Keep exactly one") in msg


def test_load_table_of_a_template_says_it_is_empty(tmp_path):
    (tmp_path / "sites.csv").write_text(",".join(make_valid_tables()["sites"].columns) + "\n\n", encoding="utf-8")
    msg = _error(lambda: load_table(tmp_path / "sites.csv"))
    assert f"File {str(tmp_path / 'sites.csv')!r} holds only its header row (an empty template)" in msg


# --------------------------------------------------------------------------------------------
# file names: accepted, not recognised, left alone
# --------------------------------------------------------------------------------------------


def _core(directory, skip=(), names=None):
    t = make_valid_tables()
    for name in ("regions", "sites", "indicators", "outcomes"):
        if name not in skip:
            t[name].to_csv(directory / (names or {}).get(name, f"{name}.csv"), index=False)
    return t


def test_table_file_names_in_any_letter_case(tmp_path):
    _core(tmp_path, names={"outcomes": "Outcomes.CSV", "sites": "SITES.csv"})
    info = load_tables(tmp_path, return_info=True)
    assert info.files["outcomes"] == tmp_path / "Outcomes.CSV"
    assert load_table(tmp_path / "Outcomes.CSV").shape == (12, 7)


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("sites.xls", ["'sites.xls': an Excel 97-2003 workbook (.xls), which is not read",
                       "save it as an Excel Workbook (.xlsx) or as CSV UTF-8 (sites.xlsx or sites.csv)"]),
        ("sites.ods", ["'sites.ods': an OpenDocument spreadsheet (.ods), which is not read"]),
        ("sites.txt", ["'sites.txt': text tables are read from files ending in .csv", "rename it sites.csv"]),
        ("sites.tsv", ["'sites.tsv': text tables are read from files ending in .csv", "rename it sites.csv"]),
        ("site.csv", ["'site.csv': not a table name; did you mean sites.csv? Rename the file"]),
        ("Site.csv", ["'Site.csv': not a table name; did you mean sites.csv?"]),
        ("sites (1).csv", ["'sites (1).csv': not a table name; did you mean sites.csv?"]),
        ("sites - Copie.csv", ["did you mean sites.csv?"]),
        ("sites.csv ", ["'sites.csv ': its name ends with a blank: did you mean sites.csv? Rename the file"]),
        ("sites_2024.parquet", ["'sites_2024.parquet': not a table name; did you mean sites.parquet?"]),
    ],
)
def test_unrecognised_site_files(tmp_path, name, fragments):
    t = _core(tmp_path, skip=("sites",))
    t["sites"].to_csv(tmp_path / name, index=False)
    msg = _error(lambda: load_tables(tmp_path))
    assert msg.startswith(f"Cannot load the data in {str(tmp_path)!r}: 2 problems, listed below; nothing was loaded.")
    assert "lacks the required table(s) sites:\n  - sites: add sites.csv" in msg
    assert "1 file in " in msg and " not recognised:" in msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Outcome.csv", "'Outcome.csv': not a table name; did you mean outcomes.csv?"),
        ("régions.csv", "'régions.csv': not a table name; did you mean regions.csv?"),
        ("composantes.csv", "'composantes.csv': not a table name; did you mean components.csv?"),
        ("data_export.csv", "'data_export.csv': not named after a table: rename it after the table it holds "
                            "(one of regions, sites,"),
    ],
)
def test_unrecognised_files_beside_complete_tables_stop_the_loading(tmp_path, name, fragment):
    _core(tmp_path)
    (tmp_path / name).write_text("a,b\n1,2\n", encoding="utf-8")
    msg = _error(lambda: load_tables(tmp_path))
    assert msg.startswith(f"1 file in {str(tmp_path)!r} not recognised; nothing was loaded:")
    assert fragment in msg


def test_files_left_alone(tmp_path):
    _core(tmp_path)
    for name in ("study.toml", "README.md", "README_fr.md", "LISEZMOI.txt", "notes.md", ".hidden.csv", "~$study.xlsx",
                 "MANIFEST.bak", "protocol.pdf", "notes.txt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "old_sites.csv").write_text("x", encoding="utf-8")
    info = load_tables(tmp_path, return_info=True)
    assert list(info.tables) == ["regions", "sites", "indicators", "outcomes"]
    assert info.ignored == {"MANIFEST.bak": "not a data file", "notes.txt": "not a data file",
                            "protocol.pdf": "not a data file"}


# --------------------------------------------------------------------------------------------
# every problem in one pass
# --------------------------------------------------------------------------------------------


def test_missing_table_unreadable_file_and_schema_error_in_one_message(tmp_path):
    t = _core(tmp_path, skip=("indicators",))
    (tmp_path / "delivery.csv").write_bytes("site_id,period\nS01,Trois-Rivi\xe8res\n".encode("latin-1"))
    sites = t["sites"].assign(size=[1500, -3, 120])
    sites.to_csv(tmp_path / "sites.csv", index=False)
    (tmp_path / "components.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    result = None
    with pytest.raises(sa.ScaleupDataError) as info:
        result = load_tables(tmp_path)
    assert result is None
    msg = str(info.value)
    assert msg.startswith(f"Cannot load the data in {str(tmp_path)!r}: 4 problems, listed below; nothing was loaded.")
    assert f"Directory {str(tmp_path)!r} lacks the required table(s) indicators:" in msg
    assert "1 file in" in msg and "'components.xls': an Excel 97-2003 workbook (.xls)" in msg
    assert "1 file could not be read:" in msg and "delivery.csv' is not valid UTF-8" in msg
    assert "Invalid data: 1 problem in 1 table:" in msg
    assert "sites.size: 1 row with a value that breaks the rule 'size must be > 0' -- file line 3: -3" in msg
    # the children of the missing table are not reported again as "refers to table 'indicators', which is absent"
    assert "which is absent" not in msg


def test_tables_subset_reports_missing_parents_and_uses_the_bundled_regions(tmp_path):
    t = make_valid_tables()
    t["delivery"].to_csv(tmp_path / "delivery.csv", index=False)
    msg = _error(lambda: load_tables(tmp_path, tables=["delivery"]))
    assert "lacks table(s) sites needed to load delivery" in msg
    t["sites"].to_csv(tmp_path / "sites.csv", index=False)
    info = load_tables(tmp_path, tables=["delivery"], return_info=True)
    assert list(info.tables) == ["delivery"] and info.defaults == ()
    assert "regions: not given" in info.notes[0]  # used to check sites.rss_code


def test_loaded_tables_summary_and_frame(tmp_path):
    _core(tmp_path, skip=("regions",))
    make_valid_tables()["evidence"].to_csv(tmp_path / "evidence.csv", sep=";", decimal=",", index=False)
    info = load_tables(tmp_path, return_info=True)
    frame = info.to_frame()
    assert frame.columns.tolist() == ["table", "source", "sheet", "rows", "columns"]
    assert frame.set_index("table").loc["regions", "source"] == "bundled"
    assert frame.set_index("table").loc["evidence", "rows"] == 3
    text = info.summary()
    assert "regions" in text and "bundled" in text
    assert "Note: CSV files read with separator: semicolon, decimal comma: evidence.csv." in text
    assert "virgule décimale" in info.summary(language="fr")
    assert info.tables["evidence"]["setting"].tolist() == ["trial", "routine", "routine"]  # moderator kept
    with pytest.raises(AttributeError):
        info.tables = {}  # frozen


def test_write_table_atomic_output_loads_like_before(tmp_path):
    t = sa.validate_tables(make_valid_tables())
    for name, df in t.items():
        write_table_atomic(df, tmp_path / f"{name}.csv")
    loaded = load_tables(tmp_path)
    for name, df in t.items():
        pd.testing.assert_frame_equal(loaded[name], df, check_exact=True, obj=name)
