"""Catalogue of bad inputs across the public API (``import scaleup_analysis as sa``).

Each entry feeds one bad input to one public function and asserts

* the documented exception (:class:`~scaleup_analysis.ScaleupDataError`, or a subclass such as
  :class:`~scaleup_analysis.RawDataChangedError`) or warning (:class:`~scaleup_analysis.RowsOmittedWarning`),
  never a raw Python exception (KeyError, IndexError, LinAlgError ...) nor a silent result;
* that the message names what is wrong (argument / table / column, and the rows where applicable)
  and says how to fix it: every fragment in ``fragments`` must occur in the message.

``docs/bad_inputs.md`` is generated from this list (``python tests/test_bad_inputs.py > docs/bad_inputs.md``)
and a test checks that it is in sync.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_input_support import (W, Bad, bin_df, counts_df, excel_multirow_header, fid_index, its_df, load_dir,
                               meta_df, ml_df, mm_df, only, panel, parquet_other_schema, ratings, reversal_panel,
                               sim, smd_df, sw_design, tbl, tmpdir, workbook_dir, write_file)

import scaleup_analysis as sa

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"

CASES: list[Bad] = [
    # --- data layer: files -------------------------------------------------------------------
    Bad("csv_not_utf8", "load_table", "CSV saved as Latin-1 (non-UTF-8)",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,name,settlement_type\n06,Montréal,metropolitan\n", "latin-1")),
        ("not valid UTF-8", "file line 2", "CSV UTF-8")),
    Bad("csv_misspelt_column", "load_table", "misspelt column name (`nom` for `name`)",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,nom,settlement_type\n06,Montreal,metropolitan\n")),
        ("missing column 'name'", "unexpected column 'nom'", "check the spelling")),
    Bad("csv_unknown_category", "load_table", "category outside its list (`settlement_type`)",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,name,settlement_type\n06,Montreal,megalopolis\n")),
        ("regions.settlement_type", "file line 2", "'megalopolis'", "must be one of")),
    Bad("csv_empty_file", "load_table", "empty file (no header)",
        lambda: sa.load_table(write_file("regions.csv", "")),
        ("is empty", "header line", "regions")),
    Bad("csv_unknown_table", "load_table", "file not named after a table",
        lambda: sa.load_table(write_file("stuff.csv", "a\n1\n")),
        ("'stuff' is not a table name", "Rename the file", "table=")),
    Bad("csv_semicolon_read_as_comma", "load_table", "semicolon-separated CSV read with separator ','",
        lambda: sa.load_table(write_file("regions.csv", "rss_code;name;settlement_type\n06;Montreal;metropolitan\n"),
                              separator=","),
        ("is not separated by ',' (comma)", "separated by ';' (semicolon)",
         'separator = ";" in the [data] section of study.toml')),
    Bad("csv_one_field_per_line", "load_table", "every line one field holding `;` (unknown header, separator ',')",
        lambda: sa.load_table(write_file("regions.csv", "code;nom;type\n06;Montreal;metropolitan\n"), separator=","),
        ("reads as one column per line", "its lines contain ';' (semicolon)", 'separator = ";"')),
    Bad("csv_decimal_point_forced", "load_table", "decimal comma numbers read with decimal '.'",
        lambda: sa.load_table(write_file("components.csv", "component_id;name;core;weight;scale_min;scale_max\n"
                                                           "C1;Plan;TRUE;0,7;0;4\n"), decimal="."),
        ("components.weight", "'0,7'", "use a decimal comma", 'decimal = "," in the [data] section of study.toml')),
    Bad("csv_template_only", "load_table", "table file holding only its header row",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,name,settlement_type\n")),
        ("holds only its header row (an empty template)", "Fill in its rows")),
    Bad("csv_bad_separator_option", "load_table", "separator='|'",
        lambda: sa.load_table(write_file("regions.csv", "rss_code|name\n"), separator="|"),
        ("separator='|' is not supported", "';' (semicolon)")),
    Bad("csv_bad_encoding_option", "load_table", "encoding='utf-16'",
        lambda: sa.load_table(write_file("regions.csv", "x"), encoding="utf-16"),
        ("encoding='utf-16' is not supported", "'cp1252'")),
    Bad("csv_extra_fields", "load_table", "a line with more fields than the header",
        lambda: sa.load_table(write_file("regions.csv", "rss_code,name,settlement_type\n06,Montreal,metropolitan,x\n")),
        ("more fields", "file line 2", "quoted")),
    Bad("excel_multirow_header", "load_table", "Excel sheet with a title row above the header",
        excel_multirow_header, ("multi-row header", "sheet row 2", "Delete the rows above")),
    Bad("parquet_other_schema", "load_table", "Parquet file with a different schema",
        parquet_other_schema, ("missing columns 'rss_code', 'settlement_type'", "unexpected column 'code'")),
    Bad("file_missing", "load_table", "path that does not exist",
        lambda: sa.load_table(tmpdir() / "regions.csv"), ("does not exist", "check the path")),
    Bad("file_bad_suffix", "load_table", "unsupported file type (.txt)",
        lambda: sa.load_table(write_file("regions.txt", "x"), table="regions"),
        ("unsupported file type '.txt'", ".csv, .parquet or .xlsx", "rename it regions.csv")),
    # --- data layer: directories and cross-table rules ---------------------------------------------
    Bad("dir_missing", "load_tables", "data directory that does not exist",
        lambda: sa.load_tables(tmpdir() / "nope"), ("does not exist", "scaleup simulate")),
    Bad("dir_missing_required_table", "load_tables", "required table absent (no outcomes file)",
        lambda: sa.load_tables(write_file("regions.csv", "rss_code,name,settlement_type\n").parent),
        ("lacks the required table(s) sites, indicators, outcomes", "add sites.csv")),
    Bad("dir_two_files_one_table", "load_tables", "sites.csv and sites.parquet in one folder",
        lambda: load_dir(extra=lambda d: sa.write_table_atomic(tbl("sites"), d / "sites.parquet")),
        ("given by more than one file or sheet for the same table", "sites.csv: 36 rows; sites.parquet: 36 rows",
         "Keep exactly one")),
    Bad("dir_csv_and_sheet_filled", "load_tables", "sites.csv and a filled 'sites' sheet of a workbook",
        lambda: load_dir(extra=lambda d: (workbook_dir(sites=tbl("sites")) / "study.xlsx").replace(d / "study.xlsx")),
        ("sites: given by more than one file or sheet", "sheet 'sites' of study.xlsx: 36 rows", "Keep exactly one")),
    Bad("dir_empty_template_required", "load_tables", "required table given as an empty template only",
        lambda: load_dir(only("sites", lambda t: t.iloc[:0])),
        ("lacks the required table(s) sites", "sites.csv holds only the header row (an empty template)")),
    Bad("dir_xls_file", "load_tables", "a table saved as .xls",
        lambda: load_dir(extra=lambda d: (d / "sites.csv").replace(d / "sites.xls")),
        ("lacks the required table(s) sites", "'sites.xls': an Excel 97-2003 workbook (.xls)",
         "save it as an Excel Workbook (.xlsx) or as CSV UTF-8")),
    Bad("dir_ods_file", "load_tables", "a table saved as .ods",
        lambda: load_dir(extra=lambda d: (d / "delivery.csv").replace(d / "delivery.ods")),
        ("'delivery.ods': an OpenDocument spreadsheet (.ods)", "(delivery.xlsx or delivery.csv)")),
    Bad("dir_txt_file", "load_tables", "a table saved as .txt",
        lambda: load_dir(extra=lambda d: (d / "sites.csv").replace(d / "sites.txt")),
        ("'sites.txt': text tables are read from files ending in .csv", "rename it sites.csv")),
    Bad("dir_close_name", "load_tables", "`site.csv` instead of `sites.csv`",
        lambda: load_dir(extra=lambda d: (d / "sites.csv").replace(d / "site.csv")),
        ("lacks the required table(s) sites", "'site.csv': not a table name; did you mean sites.csv?")),
    Bad("dir_accented_name", "load_tables", "`régions.csv` beside the other tables",
        lambda: load_dir(extra=lambda d: (d / "regions.csv").replace(d / "régions.csv")),
        ("1 file in", "not recognised", "'régions.csv': not a table name; did you mean regions.csv?")),
    Bad("dir_trailing_blank", "load_tables", "`sites.csv ` (name ending with a blank)",
        lambda: load_dir(extra=lambda d: (d / "sites.csv").replace(d / "sites.csv ")),
        ("'sites.csv ': its name ends with a blank", "did you mean sites.csv?")),
    Bad("dir_workbook_without_table_sheets", "load_tables", "a workbook whose sheets are not named after tables",
        lambda: load_dir(extra=lambda d: (workbook_dir(Feuil1=tbl("sites")) / "study.xlsx").replace(d / "study.xlsx")),
        ("'study.xlsx': a workbook without a sheet named after a table", "'Lisez-moi', 'Feuil1'",
         "name each sheet after the table it holds")),
    Bad("dir_all_problems_at_once", "load_tables", "missing table, unreadable file and a schema error together",
        lambda: load_dir(only("sites", lambda t: t.assign(size=-t["size"])), extra=lambda d: (
            (d / "indicators.csv").unlink(), (d / "delivery.csv").write_bytes(b"site_id\nTrois-Rivi\xe8res\n"))),
        ("3 problems, listed below; nothing was loaded", "lacks the required table(s) indicators",
         "delivery.csv' is not valid UTF-8", "sites.size: 36 rows")),
    Bad("workbook_sheet_row", "load_tables", "bad RSS code in the 'sites' sheet of a workbook",
        lambda: sa.load_tables(workbook_dir(sites=tbl("sites").assign(rss_code="6"), indicators=tbl("indicators"),
                                            outcomes=tbl("outcomes"))),
        ("In table 'sites' (sheet 'sites' of", "study.xlsx", "sheet row 2: '6'")),
    Bad("dir_unknown_table_arg", "load_tables", "tables= with an unknown table name",
        lambda: sa.load_tables(tmpdir(), tables=["sitez"]), ("unknown table name(s) 'sitez'", "use names from")),
    Bad("raw_file_changed", "load_tables", "raw file edited after its MANIFEST was written",
        lambda: load_dir(manifest=True, extra=lambda d: (d / "regions.csv").write_bytes(
            (d / "regions.csv").read_bytes() + b"\n")),
        ("regions.csv: changed", "Raw data are immutable", "restore the original"), sa.RawDataChangedError),
    Bad("duplicate_site_period", "load_tables", "duplicate (site_id, period) row in delivery",
        lambda: load_dir(only("delivery", lambda t: pd.concat([t, t.iloc[:1]]))),
        ("delivery.(site_id, period)", "file line 2", "each key must appear once")),
    Bad("foreign_key", "load_tables", "site in an unknown health region",
        lambda: load_dir(only("sites", lambda t: t.assign(rss_code=t.rss_code.where(t.index != 0, "99")))),
        ("sites.rss_code", "not found in regions.rss_code", "file line 2", "add the missing row(s)")),
    Bad("region_not_in_bundled_regions", "load_tables", "no regions table, a site in RSS '19'",
        lambda: load_dir(only("sites", lambda t: t.assign(rss_code=t.rss_code.where(t.index != 0, "19"))),
                         extra=lambda d: (d / "regions.csv").unlink()),
        ("sites.rss_code", "not found in regions.rss_code", "file line 2: '19'", "known values: '01', '02'")),
    Bad("reached_gt_eligible", "load_tables", "reached > eligible in delivery",
        lambda: load_dir(only("delivery", lambda t: t.assign(reached=t.reached.where(t.index != 0, t.eligible + 5)))),
        ("delivery.reached/eligible", "file line 2", "reached cannot exceed eligible")),
    Bad("events_gt_n", "load_tables", "events > n in outcomes",
        lambda: load_dir(only("outcomes", lambda t: t.assign(events=t.events.where(t.index != 1, t.n + 1)))),
        ("outcomes.events/n", "file line 3", "events cannot exceed the denominator n")),
    Bad("period_zero", "load_tables", "period 0 (periods are 1..T)",
        lambda: load_dir(only("outcomes", lambda t: t.assign(period=t.period.where(t.index != 0, 0)))),
        ("outcomes.period", "file line 2", "period must be >= 1")),
    Bad("period_not_integer", "load_tables", "non-integer period (2.5)",
        lambda: load_dir(only("delivery", lambda t: t.assign(period=t.period.astype(float).where(t.index != 0, 2.5)))),
        ("delivery.period", "file line 2")),
    Bad("unknown_frame_category", "load_tables", "FRAME category outside the scheme (`planned`)",
        lambda: load_dir(only("adaptations", lambda t: t.assign(planned=t.planned.astype(str).where(t.index != 0, "spontaneous")))),
        ("adaptations.planned", "'spontaneous'", "planned must be one of")),
    Bad("phase_disagrees_with_cohort", "load_tables", "phase 'pilot' for a scale-up cohort",
        lambda: load_dir(only("sites", lambda t: t.assign(phase=t.phase.astype(str).where(~((t.index == 0) & (t.cohort >= 1)), "pilot")))),
        ("sites.cohort/phase", "file line 2", "phase must be 'pilot' when cohort is 0")),
    Bad("missing_column_in_dir", "load_tables", "required column dropped (regions.name)",
        lambda: load_dir(only("regions", lambda t: t.drop(columns="name"))),
        ("regions: missing column 'name'", "check the spelling")),
    Bad("validate_not_dataframe", "validate_table", "a string instead of a DataFrame",
        lambda: sa.validate_table("x", "sites"), ("must be a pandas DataFrame", "sa.load_table")),
    Bad("validate_unknown_table", "validate_table", "unknown table name",
        lambda: sa.validate_table(tbl("sites"), "sitez"), ("Unknown table 'sitez'", "Known tables")),
    Bad("write_bad_suffix", "write_table_atomic", "target with suffix .txt",
        lambda: sa.write_table_atomic(tbl("regions"), tmpdir() / "x.txt"), ("'x.txt'", "must be .csv or .parquet")),
    Bad("write_not_dataframe", "write_table_atomic", "a list instead of a DataFrame",
        lambda: sa.write_table_atomic([1], tmpdir() / "x.csv"), ("argument 'data' must be a pandas DataFrame", "got list")),
    Bad("unknown_dataset", "load_dataset", "unknown bundled dataset",
        lambda: sa.load_dataset("nope"), ("Unknown dataset 'nope'", "baskerville2012")),
    Bad("simulate_too_few_sites", "simulate_scaleup", "n_sites below the minimum",
        lambda: sa.simulate_scaleup(seed=1, n_sites=5), ("'n_sites' = 5", "must be >= 36")),
    Bad("simulate_unknown_argument", "simulate_scaleup", "misspelt keyword (n_site)",
        lambda: sa.simulate_scaleup(seed=1, n_site=50), ("unknown argument(s) 'n_site'", "accepts")),
    # --- effect sizes --------------------------------------------------------------------------
    Bad("es_unknown_measure", "effect_sizes", "unknown measure",
        lambda: sa.effect_sizes(bin_df(), "OOR", ai="a", bi="b", ci="c", di="d"), ("unknown measure 'OOR'", "choose one of")),
    Bad("es_negative_count", "effect_sizes", "negative cell count",
        lambda: sa.effect_sizes(bin_df().assign(a=[-1, 3]), "OR", ai="a", bi="b", ci="c", di="d"),
        ("column 'a' (ai)", "negative counts in 1 row(s) (index 0)", "Counts must be >= 0")),
    Bad("es_events_gt_n", "effect_sizes", "events > group size (ai > n1i)",
        lambda: sa.effect_sizes(counts_df(), "RR", ai="e1", n1i="n1", ci="e2", n2i="n2"),
        ("'e1' (ai) exceed the group size 'n1' (n1i)", "(index 0)", "between 0 and n1i")),
    Bad("es_missing_argument", "effect_sizes", "neither di nor n2i given",
        lambda: sa.effect_sizes(bin_df(), "OR", ai="a", bi="b", ci="c"), ("give either 'di'", "or 'n2i'")),
    Bad("es_misspelt_column", "effect_sizes", "column name that is not in data",
        lambda: sa.effect_sizes(bin_df(), "OR", ai="a", bi="b", ci="c", di="dd"),
        ("column 'dd' (argument 'di') is not in data", "di=...")),
    Bad("es_negative_sd", "effect_sizes", "negative standard deviation",
        lambda: sa.effect_sizes(smd_df(), "SMD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2"),
        ("column 's1' (sd1i)", "(index 0)", "must be >= 0")),
    Bad("es_text_count", "effect_sizes", "non-numeric count ('x')",
        lambda: sa.effect_sizes(bin_df().assign(a=["5", "x"]), "OR", ai="a", bi="b", ci="c", di="d"),
        ("column 'a' (argument 'ai'): 1 row(s) (first: 1) are not numeric", "values 'x'", "Convert the column")),
    Bad("es_bad_to", "effect_sizes", "unknown `to` option",
        lambda: sa.effect_sizes(bin_df(), "OR", ai="a", bi="b", ci="c", di="d", to="some"), ("unknown to='some'", "only0")),
    Bad("es_paired_r_out_of_range", "effect_sizes", "paired design: correlation of the two measurements > 1",
        lambda: sa.effect_sizes(pd.DataFrame({"post": [7.8, 6.9], "pre": [7.1, 6.5], "sd": [1.2, 1.0], "n": [40, 25],
                                              "r": [0.6, 1.3]}), "SMCR", m1i="post", m2i="pre", sd1i="sd", ni="n",
                                ri="r"),
        ("column 'r' (ri)", "outside [-1, 1] in 1 row(s) (index 1)", "between -1 and 1")),
    Bad("es_ucor_small_n", "effect_sizes", "bias-corrected correlation with ni <= 4 (yi missing)",
        lambda: sa.effect_sizes(pd.DataFrame({"r": [0.3, 0.5], "n": [40, 4]}), "UCOR", ri="r", ni="n"),
        ("bias-corrected correlation cannot be computed", "'n' (ni) is <= 4, in 1 row(s) (index 1)"), sa.ScaleupWarning),
    # --- meta-analysis -------------------------------------------------------------------------
    Bad("meta_misspelt_column", "meta_analysis", "yi column not in data",
        lambda: sa.meta_analysis(meta_df(), yi="yy"), ("yi='yy'", "no such column", "Available columns")),
    Bad("meta_missing_yi", "meta_analysis", "missing yi in one row (row omitted)",
        lambda: sa.meta_analysis(meta_df().assign(yi=[np.nan, 1, 2, 3, 4, 5])),
        ("rows omitted", "1 row(s)", "missing 'yi' or 'vi'", "(rows 0)"), W),
    Bad("meta_infinite_vi", "meta_analysis", "infinite sampling variance",
        lambda: sa.meta_analysis(meta_df().assign(vi=[np.inf, .1, .1, .1, .1, .1])),
        ("column 'vi'", "first rows 0", "must be > 0")),
    Bad("meta_negative_vi", "meta_analysis", "negative sampling variance",
        lambda: sa.meta_analysis(meta_df().assign(vi=[-.1, .1, .1, .1, .1, .1])),
        ("column 'vi'", "first rows 0", "values -0.1", "must be > 0")),
    Bad("meta_zero_vi", "meta_analysis", "zero sampling variance",
        lambda: sa.meta_analysis(meta_df().assign(vi=[0, .1, .1, .1, .1, .1])),
        ("column 'vi'", "first rows 0", "must be > 0")),
    Bad("meta_one_site", "meta_analysis", "k = 1 site (random effects)",
        lambda: sa.meta_analysis(meta_df(k=1)), ("1 usable row(s)", "at least 2 studies")),
    Bad("meta_empty", "meta_analysis", "empty DataFrame",
        lambda: sa.meta_analysis(meta_df().iloc[:0]), ("table 'data' has no rows", "nothing to analyse")),
    Bad("meta_text_yi", "meta_analysis", "text effect sizes",
        lambda: sa.meta_analysis(meta_df().assign(yi=list("abcdef"))),
        ("column 'yi'", "6 row(s) (first: 0, 1, 2", "are not numeric", "Convert the column to numbers")),
    Bad("meta_unknown_method", "meta_analysis", "unknown tau2 estimator",
        lambda: sa.meta_analysis(meta_df(), method="REMLL"), ("argument 'method'", "'REMLL'", "use one of FE, DL, REML")),
    Bad("meta_unknown_test", "meta_analysis", "unknown test",
        lambda: sa.meta_analysis(meta_df(), test="t2"), ("argument 'test'", "'z' (normal), 't'", "or 'knha'", "'t2'")),
    Bad("meta_unknown_btt", "meta_regression", "btt names no coefficient",
        lambda: sa.meta_regression(meta_df(k=8), mods=["x"], btt=["dose"]),
        ("argument 'btt'", "no coefficient(s) named 'dose'", "Coefficients: 'intrcpt', 'x'")),
    Bad("meta_btt_position_zero", "meta_regression", "btt position 0 (positions count from 1, as in R)",
        lambda: sa.meta_regression(meta_df(k=8), mods=["x"], btt=[0]),
        ("argument 'btt'", "outside 1..2", "count from 1")),
    Bad("meta_level_one", "meta_analysis", "level = 1",
        lambda: sa.meta_analysis(meta_df(), level=1.0), ("argument 'level'", "in (0, 1)")),
    Bad("meta_level_percent", "meta_analysis", "level = 95 (a percentage)",
        lambda: sa.meta_analysis(meta_df(), level=95), ("argument 'level'", "e.g. 0.95", "got 95")),
    Bad("meta_not_dataframe", "meta_analysis", "a list instead of a DataFrame",
        lambda: sa.meta_analysis([1, 2, 3]), ("argument 'data'", "pandas DataFrame", "got list")),
    Bad("meta_unknown_subgroup", "meta_analysis", "subgroup= column not in data",
        lambda: sa.meta_analysis(meta_df(), subgroup="region"), ("subgroup='region'", "no such column", "subgroup=None")),
    Bad("metareg_unknown_moderator", "meta_regression", "moderator column not in data",
        lambda: sa.meta_regression(meta_df(), mods=["nope"]), ("argument 'mods'", "'nope'", "Available columns")),
    Bad("metareg_missing_moderator", "meta_regression", "missing moderator value (row omitted)",
        lambda: sa.meta_regression(meta_df(k=8).assign(x=[np.nan, 1, 2, 3, 4, 5, 6, 7.]), mods=["x"]),
        ("rows omitted", "1 row(s) with missing moderator values", "(rows 0)"), W),
    Bad("metareg_collinear", "meta_regression", "collinear moderators (x2 = 2 x)",
        lambda: sa.meta_regression(meta_df(k=8).assign(x2=lambda d: 2 * d.x), mods=["x", "x2"]),
        ("argument 'mods'", "not of full rank", "collinear", "Drop or merge moderators")),
    Bad("metareg_more_mods_than_sites", "meta_regression", "3 moderators for 3 sites",
        lambda: sa.meta_regression(meta_df(k=3).assign(x2=[1., 5, 2], x3=[3., 1, 0]), mods=["x", "x2", "x3"]),
        ("not of full rank on the 3 usable rows", "Drop or merge moderators")),
    Bad("metareg_bad_formula", "meta_regression", "formula naming an unknown column",
        lambda: sa.meta_regression(meta_df(), mods="~ nope"), ("argument 'mods'", "'nope'", "Check the column names")),
    # --- agreement -----------------------------------------------------------------------------
    Bad("icc_single_rater", "icc", "a single rater",
        lambda: sa.icc(ratings(r=1), "t", "r", "y"), ("column 'r' has 1 distinct rater", "at least 2 raters")),
    Bad("icc_constant_ratings", "icc", "all ratings equal",
        lambda: sa.icc(ratings().assign(y=3.0), "t", "r", "y"), ("all 24 ratings are equal", "undefined without variation")),
    Bad("icc_duplicate_rating", "icc", "the same (target, rater) rated twice",
        lambda: sa.icc(pd.concat([ratings(), ratings().iloc[:1]]), "t", "r", "y"),
        ("(t, r) pair must appear once", "2 row(s)", "Average repeated ratings")),
    Bad("icc_misspelt_column", "icc", "rater column not in data",
        lambda: sa.icc(ratings(), "t", "rater", "y"), ("column 'rater' given as rater=", "pass the name")),
    Bad("icc_level_zero", "icc", "level = 0",
        lambda: sa.icc(ratings(), "t", "r", "y", level=0), ("'level' must be a coverage in (0, 1)", "got 0")),
    Bad("icc_missing_rating", "icc", "a missing rating",
        lambda: sa.icc(ratings().assign(y=lambda d: d.y.where(d.index != 3)), "t", "r", "y"),
        ("column 'y' (argument 'score')", "1 row(s) (first: 3) are missing", "Fill in the values or drop the rows")),
    Bad("icc_one_unit", "icc", "a single rated unit",
        lambda: sa.icc(ratings(n=1), "t", "r", "y"), ("column 't' has 1 distinct unit", "at least 2 units")),
    Bad("icc_empty", "icc", "empty DataFrame",
        lambda: sa.icc(ratings().iloc[:0], "t", "r", "y"), ("table 'data' has no rows", "nothing to analyse")),
    Bad("icc_mixed_single_rater", "icc_mixed", "a single rater",
        lambda: sa.icc_mixed(ratings(r=1), "t", "r", "y"), ("column 'r' has 1 distinct rater", "at least 2 raters")),
    Bad("kappa_misspelt_column", "cohen_kappa", "rater2 column not in data",
        lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 2], "b": [1, 2]}), "a", "c"), ("column 'c' given as rater2=", "pass the name")),
    Bad("kappa_unknown_weights", "cohen_kappa", "unknown weights",
        lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 2, 1], "b": [1, 2, 2]}), "a", "b", weights="cubic"),
        ("weights must be None, 'linear' or 'quadratic'", "'cubic'")),
    Bad("kappa_constant", "cohen_kappa", "both raters use one category",
        lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 1, 1], "b": [1, 1, 1]}), "a", "b"),
        ("single category", "undefined without variation")),
    Bad("kappa_missing_rating", "cohen_kappa", "a missing rating",
        lambda: sa.cohen_kappa(pd.DataFrame({"a": [1, 2, np.nan, 1], "b": [1, 2, 2, 2]}), "a", "b"),
        ("1 row(s) (first: 2)", "lack a rating in 'a' or 'b'", "sa.krippendorff_alpha")),
    Bad("fleiss_single_rater", "fleiss_kappa", "a single rater",
        lambda: sa.fleiss_kappa(ratings(r=1), "t", "r", "y"), ("single rating", "at least 2 raters")),
    Bad("fleiss_missing_rating", "fleiss_kappa", "a missing rating",
        lambda: sa.fleiss_kappa(ratings().assign(y=lambda d: d.y.where(d.index != 2)), "t", "r", "y"),
        ("column 'y' has missing ratings in 1 row(s) (first: 2)", "sa.krippendorff_alpha")),
    Bad("alpha_unknown_metric", "krippendorff_alpha", "unknown level of measurement (metric)",
        lambda: sa.krippendorff_alpha(ratings(), "t", "r", "y", metric="cardinal"),
        ("metric must be 'nominal', 'ordinal', 'interval' or 'ratio'", "'cardinal'")),
    Bad("alpha_single_rater", "krippendorff_alpha", "a single rater (units omitted, then error)",
        lambda: sa.krippendorff_alpha(ratings(r=1), "t", "r", "y", n_boot=0),
        ("no unit in 't' carries 2 or more values", "at least two raters")),
    Bad("alpha_constant", "krippendorff_alpha", "all ratings equal",
        lambda: sa.krippendorff_alpha(ratings().assign(y=2.0), "t", "r", "y", n_boot=0),
        ("every pairable value in 'y' is the same", "undefined without variation")),
    Bad("alpha_level_out_of_range", "krippendorff_alpha", "level = 1.5",
        lambda: sa.krippendorff_alpha(ratings(), "t", "r", "y", level=1.5), ("'level' must be a coverage in (0, 1)", "1.5")),
    Bad("alpha_negative_n_boot", "krippendorff_alpha", "n_boot = -5",
        lambda: sa.krippendorff_alpha(ratings(), "t", "r", "y", n_boot=-5), ("n_boot must be a non-negative integer",)),
    # --- rollout -------------------------------------------------------------------------------
    Bad("did_misspelt_column", "staggered_did", "time column not in data",
        lambda: sa.staggered_did(panel(), "y", "id", "time", "g", n_boot=0), ("['time'] not found", "pass the right names")),
    Bad("did_duplicate_unit_period", "staggered_did", "duplicate (unit, period) rows",
        lambda: sa.staggered_did(pd.concat([panel(), panel().iloc[:1]]), "y", "id", "t", "g", n_boot=0),
        ("2 rows share a (unit, time) pair", "first rows: 0, 0", "Keep one row per unit and period")),
    Bad("did_non_integer_period", "staggered_did", "non-integer periods",
        lambda: sa.staggered_did(panel().assign(t=lambda d: d.t + 0.5), "y", "id", "t", "g", n_boot=0),
        ("column 't' (time) must hold integer periods", "first rows: 0", "Recode periods as integers")),
    Bad("did_cohort_after_panel", "staggered_did", "cohort after the last period",
        lambda: sa.staggered_did(panel().assign(g=lambda d: d.g.replace(4, 9)), "y", "id", "t", "g", n_boot=0),
        ("cohort after the last period 5", "first units: 0", "Recode them as never treated")),
    Bad("did_no_comparison_units", "staggered_did", "no never-treated unit with control='never'",
        lambda: sa.staggered_did(panel().assign(g=lambda d: d.g.replace(0, 3)), "y", "id", "t", "g", n_boot=0),
        ("no never-treated units", "control='notyet'")),
    Bad("did_treatment_reversal", "staggered_did", "treatment switching back to 0",
        lambda: sa.staggered_did(reversal_panel(), "y", "id", "t", treatment="d", n_boot=0),
        ("treatment reversal", "column 'd'", "first units: 0", "absorbing treatment")),
    Bad("did_missing_outcome", "staggered_did", "missing outcome (balanced panel required)",
        lambda: sa.staggered_did(panel().assign(y=lambda d: d.y.where(d.index != 0)), "y", "id", "t", "g", n_boot=0),
        ("column 'y' (outcome) is missing", "first rows: 0", "drop those units entirely or impute")),
    Bad("did_unbalanced", "staggered_did", "a unit missing one period",
        lambda: sa.staggered_did(panel().drop(index=[3]), "y", "id", "t", "g", n_boot=0),
        ("unbalanced panel", "first units: 0", "complete their series")),
    Bad("did_cohort_varies", "staggered_did", "cohort changing within a unit",
        lambda: sa.staggered_did(panel().assign(g=lambda d: np.where(d.index == 1, d.g + 1, d.g)), "y", "id", "t", "g", n_boot=0),
        ("column 'g' (cohort) changes over time", "first units: 0", "constant across its rows")),
    Bad("did_cohort_and_treatment", "staggered_did", "both cohort= and treatment=",
        lambda: sa.staggered_did(panel(), "y", "id", "t", "g", treatment="g", n_boot=0), ("give exactly one of `cohort`",)),
    Bad("did_unknown_control", "staggered_did", "unknown control group",
        lambda: sa.staggered_did(panel(), "y", "id", "t", "g", control="sometimes", n_boot=0),
        ("`control` must be 'never' or 'notyet'", "'sometimes'")),
    Bad("did_unknown_method", "staggered_did", "unknown estimator",
        lambda: sa.staggered_did(panel(), "y", "id", "t", "g", method="xyz", n_boot=0), ("`method` must be 'dr', 'ipw' or 'reg'",)),
    Bad("did_unknown_covariate", "staggered_did", "covariate not in data",
        lambda: sa.staggered_did(panel(), "y", "id", "t", "g", covariates=["x9"], n_boot=0), ("['x9'] not found",)),
    Bad("twfe_empty", "twfe_did", "empty DataFrame",
        lambda: sa.twfe_did(panel().iloc[:0], "y", "id", "t", "g"), ("table 'data' has no rows", "nothing to analyse")),
    Bad("bacon_text_outcome", "bacon_decomposition", "text outcome",
        lambda: sa.bacon_decomposition(panel().assign(y="a"), "y", "id", "t", "g"),
        ("column 'y' (argument 'outcome'): 150 row(s) (first: 0, 1, 2", "are not numeric (values 'a'")),
    Bad("its_misspelt_outcome", "interrupted_time_series", "outcome column not in data",
        lambda: sa.interrupted_time_series(its_df(), "t", "yy", 12), ("column 'yy' (argument 'outcome') is not in data", "available columns")),
    Bad("its_intervention_outside", "interrupted_time_series", "intervention after the series",
        lambda: sa.interrupted_time_series(its_df(), "t", "y", 99), ("at least 2 periods before and 2 from intervention_time", "found 24 before and 0 after")),
    Bad("its_unknown_errors", "interrupted_time_series", "unknown error structure",
        lambda: sa.interrupted_time_series(its_df(), "t", "y", 12, errors="robust"), ("errors='robust'", "newey-west, ar1, ols")),
    Bad("its_duplicate_period", "interrupted_time_series", "two rows for one period",
        lambda: sa.interrupted_time_series(pd.concat([its_df(), its_df().iloc[:1]]), "t", "y", 12),
        ("2 rows share a period", "first: [0, 0]", "aggregate to one row")),
    Bad("sw_more_steps_than_clusters", "stepped_wedge_design", "5 steps for 3 clusters",
        lambda: sa.stepped_wedge_design(3, 5), ("5 steps for 3 clusters", "each step needs a cluster")),
    Bad("sw_zero_clusters", "stepped_wedge_design", "0 clusters",
        lambda: sa.stepped_wedge_design(0, 2), ("'n_clusters' must be an integer >= 1", "got 0")),
    Bad("sw_power_icc_above_one", "stepped_wedge_power", "icc = 1.5",
        lambda: sa.stepped_wedge_power(sw_design(), 0.3, sigma2=1, icc=1.5, m=10), ("icc must be in [0, 1)",)),
    Bad("sw_power_alpha_zero", "stepped_wedge_power", "alpha = 0",
        lambda: sa.stepped_wedge_power(sw_design(), 0.3, sigma2=1, icc=.05, m=10, alpha=0), ("alpha (the test size) must be in (0, 1)",)),
    Bad("sw_power_unknown_family", "stepped_wedge_power", "unknown outcome distribution",
        lambda: sa.stepped_wedge_power(sw_design(), 0.3, sigma2=1, icc=.05, m=10, family="poisson"),
        ("family='poisson'", "'gaussian' (continuous outcome) or 'binomial'")),
    Bad("sw_power_no_variance", "stepped_wedge_power", "no sigma2 for a continuous outcome",
        lambda: sa.stepped_wedge_power(sw_design(), 0.3, m=10), ("give sigma2 > 0",)),
    Bad("sw_power_zero_cluster_size", "stepped_wedge_power", "m = 0 individuals per cluster-period",
        lambda: sa.stepped_wedge_power(sw_design(), 0.3, sigma2=1, icc=.05, m=0), ("m must be > 0",)),
    Bad("sw_power_p0_above_one", "stepped_wedge_power", "baseline risk p0 = 1.4",
        lambda: sa.stepped_wedge_power(sw_design(), 0.1, icc=.05, m=10, family="binomial", p0=1.4), ("needs p0 in (0, 1)",)),
    Bad("sw_power_sim_zero", "stepped_wedge_power_sim", "n_sim = 0",
        lambda: sa.stepped_wedge_power_sim(sw_design(), 0.3, sigma2=1, icc=.05, m=10, n_sim=0, seed=1),
        ("n_sim must be a positive integer",)),
    Bad("sw_analysis_misspelt", "stepped_wedge_analysis", "treatment column not in data",
        lambda: sa.stepped_wedge_analysis(panel(), "y", "id", "t", "trt"), ("column 'trt' (argument 'treatment') is not in data",)),
    Bad("sw_analysis_treatment_not_binary", "stepped_wedge_analysis", "treatment coded 2",
        lambda: sa.stepped_wedge_analysis(panel().assign(trt=2), "y", "id", "t", "trt"),
        ("column 'trt' (argument 'treatment') must be 0/1", "150 row(s)", "first: [0, 1, 2, 3, 4]")),
    # --- monitoring ----------------------------------------------------------------------------
    Bad("spc_unknown_chart", "control_chart", "unknown chart type",
        lambda: sa.control_chart(its_df(), "y", chart="zz"), ("chart='zz' is not supported", "use one of run, i, mr")),
    Bad("spc_p_without_n", "control_chart", "p chart without denominators",
        lambda: sa.control_chart(its_df(), "y", chart="p"), ("needs a denominator column", "n='<column>'")),
    Bad("spc_misspelt_column", "control_chart", "value column not in data",
        lambda: sa.control_chart(its_df(), "yy"), ("column 'yy' (argument 'value') is not in data",)),
    Bad("spc_text_value", "control_chart", "non-numeric values",
        lambda: sa.control_chart(its_df().assign(y=lambda d: d.y.astype(object).where(d.index != 5, "n/a")), "y"),
        ("column 'y' (argument 'value'): 1 row(s) (first: 5) are not numeric", "values 'n/a'", "Convert the column")),
    Bad("spc_events_gt_n", "control_chart", "events > n on a p chart",
        lambda: sa.control_chart(pd.DataFrame({"t": range(1, 13), "e": [3] * 11 + [12], "n": [10] * 12}), "e", chart="p", n="n", x="t"),
        ("p chart needs 0 <= e <= n", "1 row(s) (first: 11)")),
    Bad("spc_negative_count", "control_chart", "negative count on a c chart",
        lambda: sa.control_chart(pd.DataFrame({"t": range(1, 13), "e": [3] * 11 + [-2]}), "e", chart="c", x="t"),
        ("column 'e' (argument 'value') must be >= 0", "1 row(s) (first: 11)", "Correct those counts")),
    Bad("equity_misspelt_site", "equity_effects", "default site column absent",
        lambda: sa.equity_effects(pd.DataFrame({"y": [1.]}), "y", before=[1], after=[2]),
        ("column 'site_id' (argument 'site') not found", "site=...")),
    Bad("inequality_misspelt_population", "inequality", "population column not in data",
        lambda: sa.inequality(pd.DataFrame({"q": [1, 2, 3], "pop": [10, 10, 10], "y": [.1, .2, .3]}), "y", "q", "popx"),
        ("column 'popx' (argument 'population') not found", "population=...")),
    Bad("inequality_negative_population", "inequality", "negative population",
        lambda: sa.inequality(pd.DataFrame({"q": [1, 2, 3], "pop": [10, -10, 10], "y": [.1, .2, .3]}), "y", "q", "pop", kind="mean"),
        ("column 'pop' (argument 'population') must be > 0", "1 row(s) (first: 1)", "Fix or drop")),
    Bad("inequality_missing_outcome", "inequality", "missing outcome in one group",
        lambda: sa.inequality(pd.DataFrame({"q": [1, 2, 3, 4], "pop": [10] * 4, "y": [.1, np.nan, .3, .4]}), "y", "q", "pop", kind="mean"),
        ("column 'y' (argument 'outcome'): 1 row(s) (first: 1) are missing", "Fill in the values or drop the rows")),
    Bad("its_missing_outcome", "interrupted_time_series", "missing outcome (row omitted)",
        lambda: sa.interrupted_time_series(its_df().assign(y=lambda d: d.y.where(d.index != 3)), "t", "y", 12),
        ("1 row(s) with missing or non-numeric 't'/'y' left out", "(first: [3])"), W),
    Bad("sw_analysis_missing_outcome", "stepped_wedge_analysis", "missing outcome (row omitted)",
        lambda: sa.stepped_wedge_analysis(panel().assign(trt=lambda d: ((d.g > 0) & (d.t >= d.g)).astype(int),
                                                         y=lambda d: d.y.where(d.index != 0)), "y", "id", "t", "trt"),
        ("1 row(s) (index 0) left out", "missing values in the outcome"), W),
    Bad("voltage_missing_yi", "voltage_drop", "missing yi in the phase data (row omitted)",
        lambda: sa.voltage_drop(data=pd.concat([meta_df().assign(phase="pilot"), meta_df(seed=2).assign(phase="scale-up")])
                                .reset_index(drop=True).assign(yi=lambda d: d.yi.where(d.index != 0))),
        ("rows omitted", "1 row(s) with missing 'yi' or 'vi' (rows 0)"), W),
    Bad("fidelity_missing_score", "fidelity_index", "missing rating score",
        lambda: sa.fidelity_index(tbl("fidelity_ratings").assign(score=lambda d: d.score.where(d.index != 0)), tbl("components")),
        ("column 'score': 1 row(s) (first: 0) are missing", "Fill in the values or drop the rows")),
    Bad("inequality_unknown_kind", "inequality", "unknown kind",
        lambda: sa.inequality(pd.DataFrame({"q": [1, 2, 3], "pop": [10, 10, 10], "y": [.1, .2, .3]}), "y", "q", "pop", kind="median"),
        ("argument 'kind' must be one of", "'median'")),
    Bad("quintuple_missing_table", "quintuple_aim_panel", "tables without indicators/outcomes",
        lambda: sa.quintuple_aim_panel({"sites": tbl("sites")}), ("table 'indicators' is missing", "needs 'indicators', 'outcomes' and 'sites'")),
    Bad("baseline_outside_panel", "change_from_baseline", "baseline period not in the panel",
        lambda: sa.change_from_baseline(sa.quintuple_aim_panel(sim(), comparison=("phase", "not-adopted")), baseline_periods=[99], followup_periods=[7]),
        ("argument 'baseline_periods'", "none of [99] is a period of the panel (1-8)")),
    Bad("reaim_missing_table", "reaim", "tables without delivery",
        lambda: sa.reaim({"sites": tbl("sites")}), ("argument 'tables'", "'sites' and 'delivery'")),
    Bad("voltage_no_input", "voltage_drop", "neither estimates nor data",
        lambda: sa.voltage_drop(), ("argument 'pilot'", "or pass data=")),
    Bad("voltage_negative_se", "voltage_drop", "negative standard error",
        lambda: sa.voltage_drop(0.5, 0.3, pilot_se=-0.1, scaled_se=0.1), ("'pilot_se' and 'scaled_se' must be > 0",)),
    Bad("voltage_one_phase", "voltage_drop", "data with a single phase",
        lambda: sa.voltage_drop(data=meta_df().assign(phase="pilot")), ("at least two phases are needed", "['pilot']")),
    # --- fidelity and scale-up potential -------------------------------------------------------
    Bad("fidelity_score_out_of_scale", "fidelity_index", "rating outside its component's scale",
        lambda: sa.fidelity_index(tbl("fidelity_ratings").assign(score=lambda d: d.score.where(d.index != 0, 9.0)), tbl("components")),
        ("column 'score' is outside its component's [scale_min, scale_max]", "(index 0)", "Correct the scores")),
    Bad("fidelity_unknown_component", "fidelity_index", "rating of an unknown component",
        lambda: sa.fidelity_index(tbl("fidelity_ratings").assign(component_id=lambda d: d.component_id.where(d.index != 0, "C99")), tbl("components")),
        ("column 'component_id' refers to components not in the components table", "(index 0)", "Add them")),
    Bad("fidelity_missing_column", "session_adherence", "ratings without a score column",
        lambda: sa.session_adherence(tbl("fidelity_ratings").drop(columns="score"), tbl("components")),
        ("missing column(s) ['score']", "pass their names as keyword arguments")),
    Bad("fidelity_duplicate_rating", "session_adherence", "component rated twice by a rater in a session",
        lambda: sa.session_adherence(pd.concat([tbl("fidelity_ratings"), tbl("fidelity_ratings").iloc[:1]]), tbl("components")),
        ("rated more than once by the same rater in the same session", "(index 0, 0)", "Keep one row per")),
    Bad("fidelity_unknown_weight", "fidelity_index", "weight for an unknown dimension",
        lambda: sa.fidelity_index(tbl("fidelity_ratings"), tbl("components"), weights={"C99": 1.0}),
        ("unknown dimension 'C99'", "choose among ['adherence', 'dose', 'coverage']")),
    Bad("fidelity_bands_reversed", "classify_fidelity", "bands in decreasing order",
        lambda: sa.classify_fidelity([0.2, 0.9], bands=(0.8, 0.5)), ("bands=(0.8, 0.5)", "0 <= low_max < high_min <= 1")),
    Bad("fidelity_by_unknown_column", "fidelity_by", "grouping column not in the index table",
        lambda: sa.fidelity_by(fid_index(), by=("region",)), ("grouping column(s) ['region']", "pass the sites table")),
    Bad("fidelity_drift_level", "fidelity_drift", "level = 2",
        lambda: sa.fidelity_drift(fid_index(), level=2), ("'level' must be a coverage in (0, 1)", "got 2")),
    Bad("isat_score_out_of_scale", "score_assessment", "instrument response outside the scale",
        lambda: sa.score_assessment(tbl("assessments").assign(score=lambda d: d.score.where(d.index != 0, 42.0)), "ISAT", n_boot=0),
        ("column 'score' lies outside the ISAT scale [1, 4]", "(first: 0)", "record unanswered items as missing")),
    Bad("isat_unknown_item", "score_assessment", "item id not in the instrument",
        lambda: sa.score_assessment(tbl("assessments").assign(item_id=lambda d: d.item_id.where(d.index != 0, "Z9.9")), "ISAT", n_boot=0),
        ("column 'item_id' has item ids not defined by instrument ISAT", "(first: 0)", "['Z9.9']")),
    Bad("isat_missing_column", "score_assessment", "responses without a score column",
        lambda: sa.score_assessment(tbl("assessments").drop(columns="score"), "ISAT", n_boot=0),
        ("column 'score' (argument 'score') not found", "available")),
    Bad("unknown_instrument", "load_instrument", "unknown instrument name",
        lambda: sa.load_instrument("XYZ"), ("'XYZ' is neither a shipped instrument", "['ISAT', 'ISSaQ', 'PSAT']")),
    # --- mixed models, multilevel meta-analysis, adaptations, federated summaries ---------------------
    Bad("mixed_unknown_group", "mixed_model", "group column not in data",
        lambda: sa.mixed_model(mm_df(), "y ~ x", group="sitez"), ("column 'sitez' (argument 'group') is not in data", "Available columns")),
    Bad("mixed_unknown_term", "mixed_model", "formula naming an unknown column",
        lambda: sa.mixed_model(mm_df(), "y ~ nope", group="site"), ("'nope'", "Check that every variable is a column of data")),
    Bad("mixed_unknown_family", "mixed_model", "family='negbin'",
        lambda: sa.mixed_model(mm_df(), "y ~ x", group="site", family="negbin"),
        ("family must be 'gaussian', 'binomial' or 'poisson'", "'negbin'")),
    Bad("mixed_unknown_link", "mixed_model", "link='cloglog'",
        lambda: sa.mixed_model(mm_df(), "y ~ x", group="site", family="binomial", link="cloglog"),
        ("link must be one of 'logit', 'probit'", "'cloglog'")),
    Bad("mixed_negative_counts", "mixed_model", "a Poisson outcome with negative counts",
        lambda: sa.mixed_model(mm_df().assign(y=lambda d: np.round(d["y"])), "y ~ x", group="site", family="poisson"),
        ("must be non-negative integer counts", "row(s)")),
    Bad("mixed_bar_no_group", "mixed_model", "random term without a grouping factor: `(1 | )`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | )"), ("names no grouping factor right of the bar", "(1 | site)")),
    Bad("mixed_bar_empty_lhs", "mixed_model", "random term with nothing left of the bar: `( | site)`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + ( | site)"), ("has nothing left of the bar", "(1 | group)")),
    Bad("mixed_bar_unparenthesised", "mixed_model", "bar outside parentheses: `y ~ x | site`",
        lambda: sa.mixed_model(mm_df(), "y ~ x | site"), ("'|' outside parentheses", "'y ~ x + (1 | site)'")),
    Bad("mixed_bar_unclosed", "mixed_model", "unclosed parenthesis: `(1 | site`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | site"), ("unbalanced parentheses", "never closed")),
    Bad("mixed_bar_two_bars", "mixed_model", "two bars in one term: `(1 | site | x)`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | site | x)"), ("must have one bar", "(terms || group)")),
    Bad("mixed_bar_expression_group", "mixed_model", "an expression as grouping factor: `(1 | factor(site))`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | factor(site))"), ("must be column names joined by ':'", "(1 | region/site)")),
    Bad("mixed_bar_unknown_group", "mixed_model", "grouping factor not in data: `(1 | sitez)`",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | sitez)"), ("column 'sitez' (argument 'formula') is not in data", "Available columns")),
    Bad("mixed_bar_and_group", "mixed_model", "random terms in the formula and group= as well",
        lambda: sa.mixed_model(mm_df(), "y ~ x + (1 | site)", group="site"), ("leave group= and re_formula= out",)),
    Bad("mixed_bar_agq_crossed", "mixed_model", "adaptive quadrature with two random terms",
        lambda: sa.mixed_model(mm_df().assign(p=lambda d: d.index % 5), "e ~ x + (1 | site) + (1 | p)", family="binomial",
                               trials="n", nagq=5), ("needs a single random intercept", "nagq=1 (Laplace)")),
    Bad("mixed_binomial_not_binary", "mixed_model", "continuous outcome with family='binomial'",
        lambda: sa.mixed_model(mm_df(), "y ~ x", group="site", family="binomial"),
        ("must be 0/1 values", "80 row(s) (index 0, 1, 2, 3, 4", "trials=")),
    Bad("mixed_events_gt_trials", "mixed_model", "events > trials",
        lambda: sa.mixed_model(mm_df().assign(e=lambda d: d.e.where(d.index != 0, 12)), "e ~ x", group="site", family="binomial", trials="n"),
        ("0 <= events <= trials", "1 row(s) (index 0)", "Fix these rows")),
    Bad("mixed_binomial_separated", "mixed_model", "binomial outcome: sites with x > 0 have events only (separation)",
        lambda: sa.mixed_model(mm_df().assign(b=lambda d: np.where(d.x > 0, 1, d.index % 2), t=lambda d: (d.x > 0) * 1.0),
                               "b ~ t", group="site", family="binomial"),
        ("separated by the fixed effects (involving", "t", "Merge or remove the term"), sa.ScaleupWarning),
    Bad("mixed_missing_outcome", "mixed_model", "missing outcome (row omitted)",
        lambda: sa.mixed_model(mm_df().assign(y=lambda d: d.y.where(d.index != 0)), "y ~ x", group="site"),
        ("1 row(s) (index 0) left out", "missing values in the outcome"), W),
    Bad("mixed_one_site", "mixed_model", "a single site",
        lambda: sa.mixed_model(mm_df().assign(site=1), "y ~ x", group="site"), ("1 distinct value(s)", "at least 2 groups")),
    Bad("mixed_collinear", "mixed_model", "collinear fixed effects",
        lambda: sa.mixed_model(mm_df().assign(x2=lambda d: 2 * d.x), "y ~ x + x2", group="site"),
        ("rank deficient", "Intercept, x, x2", "Drop or merge the redundant terms")),
    Bad("mixed_level", "mixed_model", "level = 2",
        lambda: sa.mixed_model(mm_df(), "y ~ x", group="site", level=2), ("'level' must be a coverage in (0, 1)", "got 2")),
    Bad("multilevel_negative_vi", "multilevel_meta_analysis", "negative sampling variance",
        lambda: sa.multilevel_meta_analysis(ml_df().assign(vi=lambda d: d.vi.where(d.index != 0, -1)), group=("region", "site")),
        ("column 'vi' (argument 'vi') must be > 0", "1 row(s) (index 0)", "Check the sampling variances")),
    Bad("multilevel_unknown_method", "multilevel_meta_analysis", "method='DL'",
        lambda: sa.multilevel_meta_analysis(ml_df(), group=("region", "site"), method="DL"), ("method must be 'REML' or 'ML'", "'DL'")),
    Bad("multilevel_unknown_group", "multilevel_meta_analysis", "group column not in data",
        lambda: sa.multilevel_meta_analysis(meta_df(), group=("region", "site")), ("column 'region' (argument 'group') is not in data",)),
    Bad("multilevel_missing_yi", "multilevel_meta_analysis", "missing yi (row omitted)",
        lambda: sa.multilevel_meta_analysis(ml_df().assign(yi=lambda d: d.yi.where(d.index != 0)), group=("region", "site")),
        ("1 row(s) (index 0) left out", "missing 'yi', 'vi' or group identifiers"), W),
    Bad("frame_unknown_scheme", "frame_scheme", "unknown coding scheme",
        lambda: sa.frame_scheme("FRAMEX"), ("argument 'scheme' = 'FRAMEX'", "choose 'FRAME' or 'FRAME-IS'")),
    Bad("frame_unknown_code", "validate_adaptations", "FRAME code outside the scheme (what_modified)",
        lambda: sa.validate_adaptations(tbl("adaptations").assign(what_modified=lambda d: d.what_modified.astype(str).where(d.index != 0, "colour"))),
        ("column 'what_modified': unknown code 'colour' in 1 row(s) (index 0)", "accepted: content", "sa.frame_scheme")),
    Bad("frame_unknown_nature", "validate_adaptations", "nature of modification outside the scheme",
        lambda: sa.validate_adaptations(tbl("adaptations").assign(nature=lambda d: d.nature.astype(object).where(d.index != 0, "painting"))),
        ("column 'nature': unknown code 'painting'", "(index 0)", "accepted: tailoring")),
    Bad("frame_missing_column", "validate_adaptations", "adaptations without `planned`",
        lambda: sa.validate_adaptations(tbl("adaptations").drop(columns="planned")), ("missing column(s) ['planned']", "Required columns")),
    Bad("adaptations_unknown_field", "summarize_adaptations", "fields= an unknown FRAME field",
        lambda: sa.summarize_adaptations(tbl("adaptations"), fields=["nope"]), ("argument 'fields'", "unknown field(s) ['nope']", "choose among")),
    Bad("components_unknown_column", "component_analysis", "component column not in data",
        lambda: sa.component_analysis(meta_df(), components=["c1"]), ("no column(s) ['c1']", "Available columns")),
    Bad("summarize_unknown_outcome", "summarize", "outcome column not in the source",
        lambda: sa.summarize(tbl("encounters"), outcome="yy"), ("column(s) ['yy'] not found", "Pass the right names")),
    Bad("summarize_negative_threshold", "summarize", "threshold = -1",
        lambda: sa.summarize(tbl("encounters"), threshold=-1), ("threshold must be a non-negative integer", "-1")),
    Bad("summarize_unknown_engine", "summarize", "engine='spark'",
        lambda: sa.summarize(tbl("encounters"), engine="spark"), ("engine must be one of", "'spark'")),
    Bad("summarize_binary_not_01", "summarize", "binary outcome coded 3",
        lambda: sa.summarize(tbl("encounters").assign(event=lambda d: d.event.where(d.index != 0, 3)), binary="event"),
        ("column 'event' (argument 'binary')", "1 row(s) are not (index 0)", "Recode it as 0/1")),
    Bad("summarize_missing_outcome", "summarize", "missing outcome (row omitted)",
        lambda: sa.summarize(tbl("encounters").assign(y=lambda d: d.y.where(d.index != 0))),
        ("1 row(s) of table 'data' left out", "missing values in", "(index 0)"), W),
    Bad("summary_without_group", "mixed_model_from_summary", "summary lacking the site column",
        lambda: sa.mixed_model_from_summary(pd.DataFrame({"a": [1]}), "y ~ treated"),
        ("column 'site_id' (argument 'group') is not in the summary", "Summarise with by=")),
    # --- privacy -------------------------------------------------------------------------------
    Bad("suppress_negative_count", "suppress_small_cells", "negative count",
        lambda: sa.suppress_small_cells(pd.DataFrame({"n": [3, -1]}), counts="n"),
        ("count column 'n'", "(rows 1)", "integers >= 0")),
    Bad("suppress_misspelt_column", "suppress_small_cells", "count column not in the table",
        lambda: sa.suppress_small_cells(pd.DataFrame({"n": [3, 1]}), counts="nn"),
        ("'nn' given in counts= are not in the table", "existing columns")),
    Bad("suppress_threshold_zero", "suppress_small_cells", "threshold = 0",
        lambda: sa.suppress_small_cells(pd.DataFrame({"n": [3, 1]}), counts="n", threshold=0),
        ("threshold=0 is invalid", "integer >= 1")),
    Bad("identifier_column", "check_no_identifiers", "patient-level table with patient_id",
        lambda: sa.check_no_identifiers(tbl("encounters")), ("'patient_id' (column)", "drop the column")),
]


def _area_cases() -> list[Bad]:
    """The cases kept in one file per area, ``tests/bad_cases_<area>.py`` (each defines ``CASES``)."""
    import importlib

    out = []
    for path in sorted(Path(__file__).resolve().parent.glob("bad_cases_*.py")):
        out += importlib.import_module(path.stem).CASES
    return out


CASES += _area_cases()


def test_catalogue_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 60
    assert len({c.function for c in CASES}) >= 30  # spread across the public API


def test_catalogue_functions_are_public():
    for c in CASES:
        assert c.function in sa.__all__, c.function


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if issubclass(case.expected, Warning):
            case.call()
            message = " ".join(str(w.message) for w in record if issubclass(w.category, case.expected))
            assert message, f"no {case.expected.__name__}; warnings: {[str(w.message) for w in record]}"
        else:
            with pytest.raises(case.expected) as info:
                case.call()
            # the exact class, not a raw Python exception wrapped by chance
            assert isinstance(info.value, sa.ScaleupDataError)
            message = str(info.value)
    # no numpy RuntimeWarning, pandas or matplotlib warning reaches the caller, whatever the outcome
    foreign = [f"{w.category.__name__}: {w.message}" for w in record if not issubclass(w.category, sa.ScaleupWarning)]
    assert not foreign, foreign
    missing = [f for f in case.fragments if f not in message]
    assert not missing, f"message lacks {missing}:\n{message}"


# ----------------------------------------------------------------------------------------------
# docs/bad_inputs.md is generated from CASES
# ----------------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    text = _md_escape(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


KNOWN_GAPS = [
    "## Known gaps (inputs that do not give an error or warning)",
    "",
    "- `sa.meta_regression` merges a moderator equal to 1 in every row with the intercept, without a",
    "  warning, exactly as `metafor::rma.uni` does; any other constant moderator is an error.",
]


def catalogue_markdown() -> str:
    lines = [
        "# Catalogue of bad inputs",
        "",
        "Every row is a test case of `tests/test_bad_inputs.py` (generated with",
        "`python tests/test_bad_inputs.py > docs/bad_inputs.md`; a test checks the two agree). Each bad",
        "input must raise the listed error (or warning) whose message contains every excerpt listed:",
        "what is wrong (argument, table, column, rows) and how to fix it. All errors are",
        "`ScaleupDataError` (a `ValueError`) or its subclass `RawDataChangedError`; rows left out of an",
        "analysis give a `RowsOmittedWarning` saying how many and why.",
        "",
        "| # | function | bad input | expected error / warning | message excerpt |",
        "|---|---|---|---|---|",
    ]
    for i, c in enumerate(CASES, start=1):
        excerpt = " … ".join(_md_code(f) for f in c.fragments)
        lines.append(f"| {i} | `sa.{c.function}` | {_md_escape(c.bad_input)} | `{c.expected.__name__}` | {excerpt} |")
    lines += ["", *sweep_markdown(), "", *KNOWN_GAPS]
    return "\n".join(lines) + "\n"


_SHORT = {"wrong_type": "wrong type", "empty": "empty", "one_unit": "one row / unit", "constant": "constant",
          "nan": "NaN", "inf": "inf", "huge": "x 1e300", "tiny": "x 1e-300", "mixed_types": "mixed types",
          "duplicated_column": "duplicated column"}


def sweep_markdown() -> list[str]:
    """The matrix of ``bad_sweep.py``: every public function against every category of bad input."""
    from bad_sweep import CATEGORIES, NO_TABLE, TARGETS

    kinds = [k for t in TARGETS for k in t.expect.values()]
    lines = [
        "## Every public function against every kind of bad input",
        "",
        "Generated from `tests/bad_sweep.py` and checked by `tests/test_bad_input_sweep.py`: each function is",
        "called on a small valid input, then on that input damaged in one way. **error**: a `ScaleupDataError`",
        "naming the argument or the damaged column; **warning**: a result with a `ScaleupWarning` saying what",
        "is degenerate; **result**: a result with no warning and no NaN the valid input did not give. In",
        "every case no raw exception and no numpy, pandas or matplotlib warning reaches the caller.",
        f"{len(kinds)} cases: {kinds.count('error')} errors, {kinds.count('warning')} warnings, "
        f"{kinds.count('result')} results.",
        "",
        "| function | damaged column | " + " | ".join(_SHORT[c] for c in CATEGORIES) + " |",
        "|---|---|" + "---|" * len(CATEGORIES),
    ]
    for t in TARGETS:
        cells = [t.expect.get(c, "n/a") for c in CATEGORIES]
        lines.append(f"| `sa.{t.function}` | `{t.value}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Functions that take no table (their table categories do not apply); the wrong-type case of each:",
        "",
        "| function | why | bad input | message excerpt |",
        "|---|---|---|---|",
    ]
    for n in NO_TABLE:
        excerpt = " … ".join(_md_code(f) for f in n.fragments) if n.fragments else ""
        lines.append(f"| `sa.{n.function}` | {_md_escape(n.reason)} | {_md_escape(n.bad_input)} | {excerpt} |")
    return lines


def test_docs_catalogue_in_sync():
    assert DOC.exists(), "run: python tests/test_bad_inputs.py > docs/bad_inputs.md"
    assert DOC.read_text(encoding="utf-8") == catalogue_markdown(), (
        "docs/bad_inputs.md is out of date; run: python tests/test_bad_inputs.py > docs/bad_inputs.md"
    )


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(catalogue_markdown())
