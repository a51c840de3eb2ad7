"""Bad-input cases of the data layer (loading, validation, simulation): issue 16, part 1.

Gathered into ``tests/test_bad_inputs.py`` (``CASES``) and ``docs/bad_inputs.md``.
"""

from __future__ import annotations

import os

import pandas as pd
from bad_input_support import E, Bad, load_dir, only, sim, tbl, tmpdir, write_file

import scaleup_analysis as sa

# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def _at(t, row, col, value):
    """``t`` with ``t[col]`` set to ``value`` in row ``row`` (the other rows unchanged)."""
    t = t.copy()
    t[col] = t[col].astype(object)
    t.loc[row, col] = value
    return t


def _as_dates(t):
    """The table with its period column as dates (quarters from 2020), as Parquet or Excel store them."""
    return t.assign(period=pd.Timestamp("2020-01-01") + pd.to_timedelta((t["period"] - 1) * 91, unit="D"))


def _parquet_dates(d):
    (d / "delivery.csv").unlink()
    _as_dates(tbl("delivery")).to_parquet(d / "delivery.parquet")


def _excel_dates():
    p = tmpdir() / "delivery.xlsx"
    _as_dates(tbl("delivery")).to_excel(p, index=False, sheet_name="delivery")
    return sa.load_table(p)


def _excel_repeated_header():
    p = tmpdir() / "regions.xlsx"
    pd.DataFrame([["06", "Montreal", "Laval", "metropolitan"]],
                 columns=["rss_code", "name", "name ", "settlement_type"]).to_excel(p, index=False)
    return sa.load_table(p)


def _replace(name, how):
    def extra(d):
        (d / name).unlink()
        how(d / name)
    return extra


#: blank lines and quoted cells over several lines before the bad row: its record starts on file line 7
MULTILINE_CSV = ('rss_code,name,settlement_type\n\n06,"Mont\nreal",metropolitan\n\n\n'
                 '07,"Out\n\naouais",megalopolis\n')
LONG = "x" * 2_000_000

def _study_dir(mutate_encounters=None, fmt="parquet"):
    """A study folder of the simulated tables with encounters as a file of its own (issue 19)."""
    d = tmpdir()
    for name, table in sim().items():
        if name == "encounters":
            table = table.copy() if mutate_encounters is None else mutate_encounters(table.copy())
            if fmt == "parquet":
                table.to_parquet(d / "encounters.parquet", index=False)
            else:
                table.to_csv(d / "encounters.csv", index=False)
        else:
            sa.write_table_atomic(table, d / f"{name}.csv")
    return d


def _broken_parquet():
    d = _study_dir()
    (d / "encounters.parquet").write_text("patient_id,site_id\n", encoding="utf-8")
    return d


def _dask_on_csv():
    return sa.load_study(_study_dir(fmt="csv"), engine="dask")


CASES: list[Bad] = [
    # --- identifiers with blanks around them -----------------------------------------------------
    Bad("data_key_trailing_blank", "load_tables", "`'S0005 '` (trailing blank) beside `'S0005'` in other tables",
        lambda: load_dir(only("sites", lambda t: _at(t, 4, "site_id", "S0005 "))),
        ("sites.site_id", "blanks before or after it", "file line 6: 'S0005 '",
         "'S0005' and 'S0005 ' would count as two different identifiers", "=TRIM()")),
    Bad("data_key_leading_blank", "validate_table", "`' S0005'` (leading blank) as a key",
        lambda: sa.validate_table(_at(tbl("sites"), 4, "site_id", " S0005"), "sites"),
        ("sites.site_id", "row 4: ' S0005'", "remove the blanks")),
    Bad("data_foreign_key_blank", "validate_tables", "`'S0001 '` as a site of delivery",
        lambda: sa.validate_tables({"sites": tbl("sites"), "delivery": _at(tbl("delivery"), 0, "site_id", "S0001 ")}),
        ("delivery.site_id", "row 0: 'S0001 '", "blanks before or after it")),
    # --- dates as periods --------------------------------------------------------------------------
    Bad("data_period_dates_parquet", "load_tables", "Parquet dates (datetime) as `period`",
        lambda: load_dir(extra=_parquet_dates),
        ("delivery.period", "a date or time where a number is expected", "'2020-01-01'",
         "period numbers 1, 2, ... counted from the study's first period", "convert each date to its period")),
    Bad("data_period_dates_excel", "load_table", "Excel dates as `period`",
        _excel_dates, ("delivery.period", "a date or time where a number is expected", "sheet row 2",
                       "format the cells as Number")),
    Bad("data_period_dates_frame", "validate_table", "datetime column as `period` of a DataFrame",
        lambda: sa.validate_table(_as_dates(tbl("outcomes")), "outcomes"),
        ("outcomes.period", "a date or time", "not dates")),
    Bad("data_number_as_date", "validate_table", "a date among the numbers of `cost`",
        lambda: sa.validate_table(_at(tbl("delivery"), 0, "cost", pd.Timestamp("2021-05-01")), "delivery"),
        ("delivery.cost", "row 0: '2021-05-01'", "holds numbers, not dates")),
    # --- periods beyond the panel ------------------------------------------------------------------
    Bad("data_period_huge", "load_tables", "`period` = 10^12",
        lambda: load_dir(only("delivery", lambda t: _at(t, 0, "period", 10**12))),
        ("delivery.period", "file line 2: 1000000000000", "must be <= 10000", "not a date, a year-month code")),
    Bad("data_adoption_beyond_panel", "load_tables", "`adoption_period` = 999 in a panel of 8 periods",
        lambda: load_dir(only("sites", lambda t: _at(t, 0, "adoption_period", 999))),
        ("sites.adoption_period", "file line 2: 999", "after 8, the last period of the data",
         "leave its adoption_period and cohort empty", "'not-adopted'")),
    Bad("data_adoption_huge", "validate_table", "`adoption_period` = 10^12 (sites alone)",
        lambda: sa.validate_table(_at(tbl("sites"), 0, "adoption_period", 10**12), "sites"),
        ("sites.adoption_period", "must be <= 10000")),
    # --- header-only required tables ---------------------------------------------------------------
    Bad("data_zero_rows_validate_table", "validate_table", "`sites` with its columns but no rows",
        lambda: sa.validate_table(tbl("sites").iloc[:0], "sites"),
        ("sites: no rows (only column names): it is a required table", "fill in its rows")),
    Bad("data_zero_rows_validate_tables", "validate_tables", "`outcomes` with its columns but no rows",
        lambda: sa.validate_tables({"sites": tbl("sites"), "indicators": tbl("indicators"),
                                    "outcomes": tbl("outcomes").iloc[:0]}),
        ("outcomes: no rows", "required table")),
    # --- counts that break a proportion ------------------------------------------------------------
    Bad("data_delivered_gt_planned", "load_tables", "`sessions_delivered` > `sessions_planned` (dose 12.1)",
        lambda: load_dir(only("delivery", lambda t: t.assign(
            sessions_planned=t.sessions_planned.where(t.index != 0, 10),
            sessions_delivered=t.sessions_delivered.where(t.index != 0, 121)))),
        ("delivery.sessions_delivered/sessions_planned", "file line 2: sessions_delivered=121, sessions_planned=10",
         "sessions_delivered cannot exceed sessions_planned")),
    Bad("data_mean_over_zero", "load_tables", "a mean and sd over `n` = 0",
        lambda: load_dir(only("outcomes", lambda t: _at(t, 0, "n", 0))),
        ("outcomes.n/mean/sd", "no mean over n = 0", "file line 2: n=0, mean=", "give the n the mean was computed over")),
    # --- repeated column names ---------------------------------------------------------------------
    Bad("data_repeated_header_csv", "load_table", "CSV header naming `name` twice",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,name,name,settlement_type\n06,a,b,urban\n")),
        ("names a column more than once in its header line", "'name' in columns 2, 3", "distinct name")),
    Bad("data_repeated_header_excel", "load_table", "Excel header naming `name` twice (once with a blank)",
        _excel_repeated_header, ("names a column more than once in sheet row 1", "'name' in columns 2, 3")),
    Bad("data_repeated_columns_frame", "validate_table", "DataFrame with two `name` columns",
        lambda: sa.validate_table(pd.concat([tbl("regions"), tbl("regions")[["name"]]], axis=1), "regions"),
        ("duplicated column name(s) 'name'", "give every column a distinct name")),
    # --- files that are not regular files ----------------------------------------------------------
    Bad("data_dir_folder_named_table", "load_tables", "a folder named `sites.csv`",
        lambda: load_dir(extra=_replace("sites.csv", lambda p: p.mkdir())),
        ("'sites.csv': a folder, not a file", "must be a regular file")),
    Bad("data_dir_symlink_loop", "load_tables", "`sites.csv` a symbolic link to itself",
        lambda: load_dir(extra=_replace("sites.csv", lambda p: os.symlink(p, p))),
        ("'sites.csv': a symbolic link that leads back to itself", "replace it with the file itself")),
    Bad("data_dir_dev_zero", "load_tables", "`sites.csv` a link to `/dev/zero`",
        lambda: load_dir(extra=_replace("sites.csv", lambda p: os.symlink("/dev/zero", p))),
        ("'sites.csv': a symbolic link to '/dev/zero'", "a device")),
    Bad("data_dir_broken_link", "load_tables", "`sites.csv` a link to a file that does not exist",
        lambda: load_dir(extra=_replace("sites.csv", lambda p: os.symlink(p.parent / "gone.csv", p))),
        ("'sites.csv': a symbolic link to", "which does not exist")),
    Bad("data_file_dev_zero", "load_table", "`/dev/zero` as the file",
        lambda: sa.load_table("/dev/zero", table="sites"),
        ("Cannot read '/dev/zero'", "a device", "regular file")),
    Bad("data_file_is_folder", "load_table", "a folder as the file",
        lambda: sa.load_table(tmpdir(), table="sites"), ("a folder, not a file", "path of the table file")),
    Bad("data_file_accented_name", "load_table", "`régions.csv` given to load_table",
        lambda: sa.load_table(write_file("régions.csv", "rss_code,name,settlement_type\n06,a,urban\n")),
        ("'régions' is not a table name (did you mean regions.csv?)",)),
    # --- where and what a message quotes -----------------------------------------------------------
    Bad("data_line_after_blank_and_multiline", "load_table", "bad row after blank lines and multi-line quoted cells",
        lambda: sa.load_table(write_file("regions.csv", MULTILINE_CSV)),
        ("regions.settlement_type", "file line 7: 'megalopolis'")),
    Bad("data_long_value_cut", "load_table", "a 2 MB bad value",
        lambda: sa.load_table(write_file("regions.csv", f"rss_code,name,settlement_type\n06,a,{LONG}\n")),
        ("regions.settlement_type", "file line 2: 'xxx", "… (2000000 characters)")),
    Bad("data_long_column_name_cut", "load_table", "a 2 MB column name",
        lambda: sa.load_table(write_file("regions.csv", f"rss_code,name,settlement_type,{LONG}\n06,a,urban,1\n")),
        ("unexpected column 'xxx", "… (2000000 characters)")),
    # --- impossible sizes --------------------------------------------------------------------------
    Bad("data_simulate_too_large", "simulate_scaleup", "n_sites=10**7 (7.8 billion rows)",
        lambda: sa.simulate_scaleup(n_sites=10**7),
        ("simulation too large", "n_sites=10,000,000", "about 7,840,000,000 rows", "3.1 TB of memory",
         "limit is 20,000,000 rows", "write_encounters_parquet")),
    Bad("data_stream_too_large", "write_encounters_parquet", "n_sites=10**7 streamed",
        lambda: sa.write_encounters_parquet(tmpdir() / "enc.parquet", n_sites=10**7),
        ("simulation too large", "site-period rows", "of memory", "Use fewer sites")),
    # --- patient-level files, checked in chunks (issue 19) --------------------------------------------
    Bad("data_patient_level_bad_rows", "load_study", "`treated` = 2 in a Parquet `encounters` file",
        lambda: sa.load_study(_study_dir(lambda t: _at(t, 3, "treated", 2))),
        ("table 'encounters'", "encounters.parquet", "encounters.treated", "row 3: 2", "must be one of: 0, 1")),
    Bad("data_patient_level_not_parquet", "load_study", "a text file named `encounters.parquet`",
        lambda: sa.load_study(_broken_parquet()),
        ("Cannot read", "encounters.parquet", "complete CSV or Parquet file")),
    Bad("data_patient_level_processed_inside", "load_study", "processed folder inside the study folder",
        lambda: (lambda d: sa.load_study(d, processed=d / "processed"))(_study_dir()),
        ("processed folder", "is inside the study folder", "only read", "outside it")),
    Bad("data_patient_level_engine", "load_study", "engine='spark'",
        lambda: sa.load_study(_study_dir(), engine="spark"), ("engine must be one of", "duckdb, pandas, dask")),
    Bad("data_patient_level_scheduler_without_dask", "load_study", "scheduler without engine='dask'",
        lambda: sa.load_study(_study_dir(), scheduler="tcp://10.0.0.5:8786"), ("scheduler", "needs engine='dask'")),
    Bad("data_patient_level_dask_csv", "load_study", "engine='dask' with `encounters` as a CSV file",
        _dask_on_csv, ("engine='dask' reads Parquet files", "encounters.csv", "COPY", "engine='duckdb'")),
]

assert all(c.expected is E for c in CASES)
