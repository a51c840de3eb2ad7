"""Loading tables from CSV / Parquet / Excel, all-or-nothing directories, and atomic writes.

References: round trips must reproduce the validated tables exactly (pandas.testing, exact
equality: CSV floats are written with repr and read with float_precision="round_trip"); byte offsets
and file lines in error messages are computed independently from the raw bytes of the file.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from test_schemas import make_valid_tables

import scaleup_analysis as sa
from scaleup_analysis import _atomic
from scaleup_analysis.data.io import atomic_write_bytes, atomic_write_text, load_table, load_tables, write_table_atomic
from scaleup_analysis.data.schemas import validate_tables


@pytest.fixture(scope="module")
def typed_tables():
    return validate_tables(make_valid_tables())


def _write_dir(directory, tables, suffix=".csv"):
    for name, df in tables.items():
        write_table_atomic(df, directory / f"{name}{suffix}")
    return directory


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_every_table(tmp_path, typed_tables, suffix):
    _write_dir(tmp_path, typed_tables, suffix)
    loaded = load_tables(tmp_path)
    assert list(loaded) == list(typed_tables)  # dictionary order
    for name, df in typed_tables.items():
        pd.testing.assert_frame_equal(loaded[name], df, check_exact=True)  # exact: lossless formats
    assert loaded["regions"]["rss_code"].tolist() == ["01", "06", "17"]  # "01" stays "01"


def test_csv_keeps_leading_zeros_and_reads_floats_exactly(tmp_path):
    text = "rss_code,name,settlement_type\n01,Bas-Saint-Laurent,rural\n06,Montréal,metropolitan\n"
    (tmp_path / "regions.csv").write_text(text, encoding="utf-8")
    assert load_table(tmp_path / "regions.csv")["rss_code"].tolist() == ["01", "06"]
    comps = make_valid_tables()["components"].assign(weight=[0.1 + 0.2, 1 / 3])
    write_table_atomic(comps, tmp_path / "components.csv")
    got = load_table(tmp_path / "components.csv")["weight"].to_numpy()
    assert got.tolist() == [0.1 + 0.2, 1 / 3]  # bit-exact round trip of binary floats


def test_csv_with_utf8_bom_is_accepted(tmp_path):
    raw = "\ufeffrss_code,name,settlement_type\n06,Montréal,metropolitan\n".encode()
    (tmp_path / "regions.csv").write_bytes(raw)
    assert list(load_table(tmp_path / "regions.csv").columns) == ["rss_code", "name", "settlement_type"]


def test_non_utf8_csv_names_file_and_byte_offset(tmp_path):
    raw = "rss_code,name,settlement_type\n01,Bas-Saint-Laurent,rural\n06,Montréal,metropolitan\n".encode("latin-1")
    path = tmp_path / "regions.csv"
    path.write_bytes(raw)
    offset = raw.index(b"\xe9")  # the latin-1 'é', computed from the bytes themselves
    with pytest.raises(sa.ScaleupDataError) as info:
        load_table(path)
    msg = str(info.value)
    assert str(path) in msg
    assert f"byte offset {offset}" in msg and "(file line 3)" in msg
    assert 'declare its encoding: encoding = "cp1252" in the [data] section of study.toml' in msg
    assert "re-encode it as UTF-8" in msg and "iconv" in msg
    # declared, the same file loads
    assert load_table(path, encoding="cp1252")["name"].tolist() == ["Bas-Saint-Laurent", "Montréal"]


def test_csv_error_rows_are_file_lines(tmp_path):
    df = make_valid_tables()["delivery"]
    df.loc[2, "reached"] = 999  # > eligible (90)
    df.to_csv(tmp_path / "delivery.csv", index=False)
    with pytest.raises(sa.ScaleupDataError) as info:
        load_table(tmp_path / "delivery.csv")
    msg = str(info.value)
    assert "file line 4: reached=999, eligible=90" in msg
    lines = (tmp_path / "delivery.csv").read_text(encoding="utf-8").splitlines()
    assert ",999," in lines[4 - 1]  # line 4 of the file (1-based) is indeed the bad row


def test_malformed_and_empty_csv(tmp_path):
    (tmp_path / "regions.csv").write_text("rss_code,name,settlement_type\n01,A,rural,extra,cells\n", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match=r"regions.csv' is not a well-formed CSV file: 1 line\(s\) have more "
                       r"fields than the 3 of the header \(file line 2\)"):
        load_table(tmp_path / "regions.csv")
    (tmp_path / "regions.csv").write_text("rss_code,name,settlement_type\n01,A,rural\n02,B,rural,x\n", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match="not a well-formed CSV file: Error tokenizing data. C error: "
                       "Expected 3 fields in line 3, saw 4"):
        load_table(tmp_path / "regions.csv")
    (tmp_path / "sites.csv").write_text("", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match="is empty"):
        load_table(tmp_path / "sites.csv")


def test_excel_round_trip_with_text_ids(tmp_path, typed_tables):
    path = tmp_path / "sites.xlsx"
    typed_tables["sites"].to_excel(path, index=False, engine="openpyxl")
    pd.testing.assert_frame_equal(load_table(path), typed_tables["sites"], check_exact=True)


def test_excel_errors_are_sheet_rows(tmp_path):
    path = tmp_path / "regions.xlsx"
    bad = pd.DataFrame({"rss_code": ["01", "6"], "name": ["A", "B"], "settlement_type": ["rural", "urban"]})
    bad.to_excel(path, index=False, engine="openpyxl")
    with pytest.raises(sa.ScaleupDataError, match=r"regions\.rss_code: 1 row .* sheet row 3: '6'"):
        load_table(path)


def test_excel_multi_row_header_is_detected(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Quebec health regions", None, None])  # a title row above the column names
    ws.append(["(source: MSSS)", None, None])
    ws.append(["rss_code", "name", "settlement_type"])
    ws.append(["01", "Bas-Saint-Laurent", "rural"])
    path = tmp_path / "regions.xlsx"
    wb.save(path)
    with pytest.raises(sa.ScaleupDataError) as info:
        load_table(path)
    msg = str(info.value)
    assert "multi-row header" in msg and "sheet row 3" in msg and "regions.xlsx" in msg
    assert "Delete the rows" in msg


def test_excel_empty_header_cells(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["rss_code", None, "settlement_type"])
    ws.append(["01", "Bas-Saint-Laurent", "rural"])
    wb.save(tmp_path / "regions.xlsx")
    with pytest.raises(sa.ScaleupDataError, match=r"1 empty header cell\(s\) in sheet row 1 \(columns 2\)"):
        load_table(tmp_path / "regions.xlsx")


def test_table_name_from_file_stem_and_bad_names(tmp_path, typed_tables):
    write_table_atomic(typed_tables["regions"], tmp_path / "my_regions.csv")
    with pytest.raises(sa.ScaleupDataError, match="'my_regions' is not a table name.*pass table="):
        load_table(tmp_path / "my_regions.csv")
    pd.testing.assert_frame_equal(load_table(tmp_path / "my_regions.csv", table="regions"), typed_tables["regions"])
    (tmp_path / "regions.json").write_text("{}", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match="unsupported file type '.json'"):
        load_table(tmp_path / "regions.json")
    with pytest.raises(sa.ScaleupDataError, match="does not exist"):
        load_table(tmp_path / "sites.csv")


def test_load_tables_is_all_or_nothing_and_lists_every_problem(tmp_path, typed_tables):
    _write_dir(tmp_path, typed_tables)
    sites = make_valid_tables()["sites"]
    sites.loc[1, "rss_code"] = "19"
    sites.to_csv(tmp_path / "sites.csv", index=False)
    comps = make_valid_tables()["components"]
    comps = comps.astype({"weight": object})
    comps.loc[0, "weight"] = "heavy"
    comps.to_csv(tmp_path / "components.csv", index=False)
    result = None
    with pytest.raises(sa.ScaleupDataError) as info:
        result = load_tables(tmp_path)
    assert result is None  # nothing half-loaded
    msg = str(info.value)
    assert "2 problems in 2 tables; nothing was validated" in msg
    assert f"In table 'sites' ({tmp_path / 'sites.csv'})" in msg
    assert "sites.rss_code: 1 row with rss_code not found in regions.rss_code" in msg and "file line 3: '19'" in msg
    assert "components.weight: 1 row with a value that is not a number -- file line 2: 'heavy'" in msg


def test_load_tables_requires_the_three_core_tables(tmp_path, typed_tables):
    _write_dir(tmp_path, {k: v for k, v in typed_tables.items() if k != "indicators"})
    with pytest.raises(sa.ScaleupDataError, match="lacks the required table\\(s\\) indicators; nothing was loaded:\n"
                       "  - indicators: add indicators.csv"):
        load_tables(tmp_path)


def test_optional_tables_may_be_absent_and_subsets_bring_their_parents(tmp_path, typed_tables):
    core = {k: typed_tables[k] for k in ("regions", "sites", "indicators", "outcomes")}
    _write_dir(tmp_path, core)
    assert list(load_tables(tmp_path)) == ["regions", "sites", "indicators", "outcomes"]
    # every site's rss_code is a Quebec region: without regions.csv, the bundled regions stand in
    (tmp_path / "regions.csv").unlink()
    info = load_tables(tmp_path, return_info=True)
    assert list(info.tables) == ["regions", "sites", "indicators", "outcomes"]
    pd.testing.assert_frame_equal(info.tables["regions"], sa.load_dataset("quebec_regions"), check_like=False)
    assert info.files["regions"] == "bundled" and info.defaults == ("regions",)
    assert info.notes == ("regions: not given, the bundled table of Quebec's 18 health regions was used.",)
    write_table_atomic(typed_tables["regions"], tmp_path / "regions.csv")
    only = load_tables(tmp_path, tables=["outcomes"])  # validated against sites, indicators, regions
    assert list(only) == ["outcomes"]
    with pytest.raises(sa.ScaleupDataError, match="lacks table\\(s\\) components needed to load delivery"):
        write_table_atomic(typed_tables["delivery"], tmp_path / "delivery.csv")
        load_tables(tmp_path, tables=["delivery", "components"])


def test_two_files_for_one_table_and_unknown_files(tmp_path, typed_tables):
    _write_dir(tmp_path, typed_tables)
    (tmp_path / "notes.csv").write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match="1 file in .* not recognised; nothing was loaded:\n"
                       "  - 'notes.csv': not named after a table: rename it after the table it holds"):
        load_tables(tmp_path)
    assert set(load_tables(tmp_path, tables=["sites"])) == {"sites"}  # a subset is not blocked by it
    (tmp_path / "notes.csv").unlink()
    write_table_atomic(typed_tables["sites"], tmp_path / "sites.parquet")
    with pytest.raises(sa.ScaleupDataError, match="sites: given by more than one file or sheet for the same table "
                       "\\(sites.csv: 3 rows; sites.parquet: 3 rows\\). Keep exactly one"):
        load_tables(tmp_path)


def test_load_tables_checks_the_manifest(tmp_path, typed_tables):
    _write_dir(tmp_path, typed_tables)
    sa.write_manifest(tmp_path)
    assert set(load_tables(tmp_path)) == set(typed_tables)
    with (tmp_path / "regions.csv").open("ab") as fh:
        fh.write(b"\n")
    with pytest.raises(sa.RawDataChangedError, match="regions.csv: changed"):
        load_tables(tmp_path)
    assert set(load_tables(tmp_path, check_manifest=False)) == set(typed_tables)


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch, typed_tables):
    target = tmp_path / "outcomes.csv"

    def broken_to_csv(self, path, *args, **kwargs):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("site_id,period,indic")  # half a header ...
        raise OSError("disk full")  # ... then the write fails

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        write_table_atomic(typed_tables["outcomes"], target)
    assert not target.exists()  # no partial file under the target name
    assert _leftovers(tmp_path) == []  # and no temporary file either


def test_interrupted_write_keeps_the_previous_version(tmp_path, monkeypatch, typed_tables):
    target = tmp_path / "sites.parquet"
    write_table_atomic(typed_tables["sites"], target)
    before = target.read_bytes()

    def interrupted(self, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_table_atomic(typed_tables["sites"].iloc[:1], target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_atomic_write_uses_rename_in_same_directory(tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((os.path.dirname(src), os.path.basename(src), dst))
        real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", spy)  # the one module that writes files
    atomic_write_text(tmp_path / "sub" / "a.txt", "é\n")
    assert (tmp_path / "sub" / "a.txt").read_bytes() == "é\n".encode()
    assert calls[0][0] == str(tmp_path / "sub") and calls[0][1].startswith(".a.txt.")
    assert (tmp_path / "sub" / "a.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_bytes_and_bad_arguments(tmp_path):
    p = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    with pytest.raises(sa.ScaleupDataError, match="data must be bytes"):
        atomic_write_bytes(tmp_path / "c.bin", "text")
    with pytest.raises(sa.ScaleupDataError, match="suffix must be .csv or .parquet"):
        write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path / "x.xlsx")
    assert _leftovers(tmp_path) == []


def test_missing_values_round_trip_as_empty_cells(tmp_path, typed_tables):
    path = write_table_atomic(typed_tables["outcomes"], tmp_path / "outcomes.csv")
    second = path.read_text(encoding="utf-8").splitlines()[1]
    assert second == "S01,1,ED_VISITS,50,7,,"  # events given, mean and sd empty
    assert np.isnan(load_table(path)["mean"].iloc[0])


_CHILD = r"""
import sys, numpy as np, pandas as pd
from scaleup_analysis.data.io import write_table_atomic
n = 3_000_000
df = pd.DataFrame({"a": np.arange(n), "b": np.linspace(0, 1, n), "c": np.repeat("site", n)})
print("ready", flush=True)
write_table_atomic(df, sys.argv[1])
"""


def test_kill_during_write_never_leaves_a_partial_target(tmp_path):
    """A real SIGKILL while the table is being written: the target never exists half-written."""
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "encounters.csv"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        tmp = []
        while time.monotonic() < deadline and not target.exists():
            tmp = [p for p in tmp_path.iterdir() if p.name.startswith(".encounters.csv.") and p.stat().st_size > 0]
            if tmp:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
    if target.exists():
        pytest.skip("the write finished before the kill; nothing to check on this machine")
    assert tmp, "the temporary file was never seen"
    assert not target.exists()  # only the hidden temporary file may remain after a hard kill
