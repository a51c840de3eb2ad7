"""Issue 19: patient-level tables read in chunks, summarised once, stored in a processed folder and reused.

Known truths used here: the cells of a patient-level file must equal the cells computed from the same
rows loaded whole into pandas (the loader's own path) whatever the engine and the chunk size; the
messages about bad rows must be those of the loader reading the whole file; a report on a study given
as files must state the same numbers as the report on the same study held in memory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.data import io as dio
from scaleup_analysis.data.patient_level import cells_of_frame, patient_level_cells
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.study import DEFAULT_STUDY_SETTINGS, default_study_file, default_study_tables

SUMS = ["sp__Intercept__y", "sp__y__y"]
COUNTS = ["period", "treated", "n", "events"]


def _study_folder(root: Path, *, seed: int = 5, fmt: str = "parquet", row_group: int = 500, **kw) -> Path:
    """A simulated study folder (tables as CSV, encounters as Parquet or as a French CSV)."""
    kw = {"n_sites": 40, "n_periods": 8, "patients_per_site_period": 12, **kw}
    tables = sa.validate_tables(default_study_tables(seed, **kw))
    folder = root / "study"
    folder.mkdir()
    for name, df in tables.items():
        if name != "encounters":
            dio.write_table_atomic(df, folder / f"{name}.csv")
    enc = tables["encounters"]
    if fmt == "parquet":
        enc.to_parquet(folder / "encounters.parquet", index=False, row_group_size=row_group)
    else:  # semicolons and decimal commas, as Excel writes them in French
        enc.to_csv(folder / "encounters.csv", sep=";", decimal=",", index=False)
    (folder / "study.toml").write_text(default_study_file(seed), encoding="utf-8")
    return folder


def _assert_same_cells(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a["site_id"].tolist() == b["site_id"].tolist()
    for c in COUNTS:
        assert a[c].tolist() == b[c].tolist(), c
    for c in SUMS:  # sums in another order: rounding only
        np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-12, atol=0)


def _whole(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The loader's path: every table read whole into pandas and validated."""
    t = sa.load_tables(folder)
    return t["encounters"], t["sites"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("engine", ["duckdb", "pandas"])
@pytest.mark.parametrize("chunk_rows", [1_000, 10**6])
def test_cells_of_a_file_equal_the_cells_of_the_rows_loaded_whole(tmp_path, fmt, engine, chunk_rows):
    folder = _study_folder(tmp_path, fmt=fmt)
    enc, sites = _whole(folder)
    path = folder / f"encounters.{fmt}"
    fmt_ = dio.csv_format(path, "encounters") if fmt == "csv" else None
    if fmt == "csv":
        assert fmt_["separator"] == ";" and fmt_["decimal"] == ","
    got = patient_level_cells(path, sites=sites, fmt=fmt_, engine=engine, chunk_rows=chunk_rows)
    want = cells_of_frame(enc)
    assert got.rows == want.rows == len(enc) == 40 * 8 * 12
    _assert_same_cells(got.cells, want.cells)
    # and the cells are the sums of the rows (not only equal to another reduction)
    one = enc[(enc.site_id == got.cells.site_id[7]) & (enc.period == got.cells.period[7])
              & (enc.treated == got.cells.treated[7])]
    assert got.cells.n[7] == len(one) and got.cells.events[7] == one.event.sum()
    assert got.cells.sp__y__y[7] == pytest.approx((one.y ** 2).sum(), rel=1e-13)


def _bad_encounters(tmp_path: Path, fmt: str) -> Path:
    """A study whose encounters break rules in several chunks: values, a key repeated across chunks,
    two unknown sites in two chunks, a period beyond the maximum."""
    folder = _study_folder(tmp_path, fmt="parquet", n_sites=36, n_periods=8, patients_per_site_period=2)
    enc = pd.read_parquet(folder / "encounters.parquet")
    (folder / "encounters.parquet").unlink()
    enc["treated"] = enc["treated"].astype(object)
    enc.loc[3, "treated"] = 2
    enc.loc[60, "treated"] = 7
    enc.loc[10, "y"] = np.inf
    enc.loc[25, "site_id"] = "ZZZ"
    enc.loc[100, "site_id"] = "YYY"
    enc.loc[120, "period"] = 20_000
    enc.loc[130, ["patient_id", "period"]] = enc.loc[2, ["patient_id", "period"]].to_numpy()
    if fmt == "csv":
        enc.to_csv(folder / "encounters.csv", index=False)
    else:
        enc["treated"] = enc["treated"].astype("int64")
        enc.to_parquet(folder / "encounters.parquet", index=False, row_group_size=7)
    return folder


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("engine", ["duckdb", "pandas"])
def test_chunked_checks_report_what_the_loader_reports_on_the_whole_file(tmp_path, fmt, engine):
    folder = _bad_encounters(tmp_path, fmt)
    with pytest.raises(ScaleupDataError) as whole:
        sa.load_tables(folder)
    info = dio.load_tables(folder, tables=["sites"], return_info=True)
    path = folder / f"encounters.{fmt}"
    fmt_ = dio.csv_format(path, "encounters") if fmt == "csv" else None
    with pytest.raises(ScaleupDataError) as chunked:
        patient_level_cells(path, sites=info.tables["sites"], fmt=fmt_, engine=engine, chunk_rows=7)
    text = str(chunked.value)
    assert text == str(whole.value)
    for bit in ("treated must be one of: 0, 1", "must be finite", "(2 unknown values)", "that is repeated",
                "must be <= 10000"):
        assert bit in text
    assert ("file line 5: 2" if fmt == "csv" else "row 3: 2") in text


def test_load_study_checks_the_patient_rows_and_says_which(tmp_path):
    folder = _bad_encounters(tmp_path, "csv")
    with pytest.raises(ScaleupDataError, match=r"(?s)encounters\.csv.*file line 12: inf"):
        sa.load_study(folder)


def test_a_study_folder_never_loads_its_patient_level_table(tmp_path):
    folder = _study_folder(tmp_path)
    study = sa.load_study(folder)
    assert "encounters" not in study.tables and study.has("encounters")
    c = study.cells("encounters")
    assert c.rows == 40 * 8 * 12 and not c.reused and c.source == "encounters.parquet"
    assert study.inputs["encounters.parquet"] == sa.data.manifest.sha256_file(folder / "encounters.parquet")
    assert study.periods == list(range(1, 9))


def test_processed_folder_reused_then_rebuilt_when_the_raw_file_changes(tmp_path):
    folder = _study_folder(tmp_path)
    proc = tmp_path / "processed"
    first = sa.load_study(folder, processed=proc).cells()
    assert not first.reused and sorted(p.suffix for p in proc.iterdir()) == [".json", ".parquet"]
    again = sa.load_study(folder, processed=proc).cells()
    assert again.reused and again.key == first.key
    _assert_same_cells(again.cells, first.cells)
    # new raw data: another key, the old entry replaced
    enc = pd.read_parquet(folder / "encounters.parquet")
    enc.iloc[::2].to_parquet(folder / "encounters.parquet", index=False)
    third = sa.load_study(folder, processed=proc).cells()
    assert not third.reused and third.key != first.key and third.rows == len(enc.iloc[::2])
    assert len(list(proc.glob("*.parquet"))) == 1


def test_processed_folder_inside_the_data_folder_is_refused(tmp_path):
    folder = _study_folder(tmp_path)
    with pytest.raises(ScaleupDataError, match="inside the study folder"):
        sa.load_study(folder, processed=folder / "processed")
    with pytest.raises(ScaleupDataError, match="inside the data folder"):
        sa.run_report(folder, tmp_path / "out", processed_dir=folder / "cache", progress=False)
    assert not (folder / "processed").exists() and not (folder / "cache").exists()


def _same_mtime_garbage(path: Path) -> bytes:
    """Overwrite ``path`` with garbage of the same size and modification time; returns the original."""
    st = path.stat()
    original = path.read_bytes()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return original


def _numbers(out: Path) -> dict:
    """What a report states: every section's status and findings, and every table it wrote."""
    sections = json.loads((out / "sections.json").read_text(encoding="utf-8"))["sections"]
    tables = {p.name: pd.read_csv(p) for p in sorted((out / "tables").glob("*.csv"))}
    return {"sections": [(s["key"], s["status"], s.get("findings")) for s in sections], "tables": tables}


def _assert_same_report(a: dict, b: dict, rtol: float = 1e-8) -> None:
    """Same sections and findings (the rounded numbers of the text, exactly), same tables (full
    precision within ``rtol``: sums of the cells taken in another order move the optimum by ~1e-10)."""
    assert a["sections"] == b["sections"]
    assert list(a["tables"]) == list(b["tables"])
    for name, ta in a["tables"].items():
        pd.testing.assert_frame_equal(ta, b["tables"][name], check_exact=False, rtol=rtol, obj=name)


def test_second_report_reads_no_patient_row(tmp_path):
    """The second report on the same data reuses the stored summaries: the patient-level file is
    replaced by garbage of the same size and time, so any read of its rows (or of its bytes, to hash
    them) would fail or change the numbers; the report must run and state the same numbers."""
    folder = _study_folder(tmp_path)
    out = tmp_path / "report"
    first = sa.run_report(folder, out, steps=(5,), progress=False)
    assert first.ok and first.provenance["processed"]["encounters"]["reused"] is False
    before = _numbers(out)
    assert any(k == "site_variation" and s == "ran" for k, s, _ in before["sections"])
    original = _same_mtime_garbage(folder / "encounters.parquet")
    second = sa.run_report(folder, out, steps=(5,), progress=False)
    assert second.ok and second.provenance["processed"]["encounters"]["reused"] is True
    _assert_same_report(_numbers(out), before, rtol=0)
    assert (out / "processed").is_dir()
    # the same garbage with a new time is read, and refused
    os.utime(folder / "encounters.parquet")
    with pytest.raises(ScaleupDataError, match="encounters.parquet"):
        sa.run_report(folder, out, steps=(5,), progress=False)
    (folder / "encounters.parquet").write_bytes(original)


def test_report_on_files_states_the_numbers_of_the_study_in_memory(tmp_path):
    """The embedded study (every table in memory, the patient-level cells computed from the rows) and
    the same study written to a folder with its encounters as Parquet: step 5 reports the same numbers."""
    tables = default_study_tables()
    folder = tmp_path / "study"
    folder.mkdir()
    for name, df in tables.items():
        if name == "encounters":
            df.to_parquet(folder / "encounters.parquet", index=False, row_group_size=5000)
        else:
            dio.write_table_atomic(df, folder / f"{name}.csv")
    (folder / "study.toml").write_text(default_study_file(), encoding="utf-8")
    a = sa.run_report(None, tmp_path / "memory", steps=(5,), progress=False)
    b = sa.run_report(folder, tmp_path / "files", steps=(5,), progress=False)
    assert a.ok and b.ok and "processed" in b.provenance and "processed" not in a.provenance
    _assert_same_report(_numbers(tmp_path / "memory"), _numbers(tmp_path / "files"))
    assert DEFAULT_STUDY_SETTINGS[("study", "simulated")] is True


def test_dask_cluster_gives_the_cells_and_the_messages_of_duckdb(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = _study_folder(tmp_path, row_group=300)
    enc, sites = _whole(folder)
    bad = _bad_encounters(tmp_path / "bad_", "parquet") if (tmp_path / "bad_").mkdir() is None else None
    bad_sites = dio.load_tables(bad, tables=["sites"], return_info=True).tables["sites"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        got = patient_level_cells(folder / "encounters.parquet", sites=sites, engine="dask",
                                  scheduler=cluster.scheduler_address, chunk_rows=1000)
        with pytest.raises(ScaleupDataError) as via_dask:
            patient_level_cells(bad / "encounters.parquet", sites=bad_sites, engine="dask",
                                scheduler=cluster.scheduler_address, chunk_rows=7)
    ref = patient_level_cells(folder / "encounters.parquet", sites=sites, engine="duckdb")
    assert got.rows == ref.rows == len(enc)
    _assert_same_cells(got.cells, ref.cells)
    with pytest.raises(ScaleupDataError) as via_duckdb:
        patient_level_cells(bad / "encounters.parquet", sites=bad_sites, engine="duckdb", chunk_rows=7)
    assert str(via_dask.value) == str(via_duckdb.value)


def test_dask_engine_needs_parquet_and_a_reachable_scheduler(tmp_path, monkeypatch):
    from scaleup_analysis.data import patient_level

    monkeypatch.setattr(patient_level, "_CONNECT_TIMEOUT", "2s")  # nothing listens on port 9: no need to wait 10 s
    folder = _study_folder(tmp_path, fmt="csv")
    sites = dio.load_tables(folder, tables=["sites"], return_info=True).tables["sites"]
    fmt_ = dio.csv_format(folder / "encounters.csv", "encounters")
    with pytest.raises(ScaleupDataError, match="reads Parquet files"):
        patient_level_cells(folder / "encounters.csv", sites=sites, fmt=fmt_, engine="dask")
    shutil.rmtree(folder)
    folder = _study_folder(tmp_path)
    pytest.importorskip("distributed")
    with pytest.raises(ScaleupDataError, match="Cannot reach the Dask scheduler"):
        patient_level_cells(folder / "encounters.parquet", sites=sites, engine="dask",
                            scheduler="tcp://127.0.0.1:9")
    with pytest.raises(ScaleupDataError, match="engine must be one of"):
        patient_level_cells(folder / "encounters.parquet", sites=sites, engine="spark")


def test_load_study_refuses_bad_engine_scheduler_and_folders(tmp_path):
    folder = _study_folder(tmp_path)
    for kw, msg in (({"engine": "spark"}, "engine must be one of"),
                    ({"scheduler": "tcp://h:8786"}, "needs engine='dask'"),
                    ({"reuse_from": "somewhere"}, "list of folder paths"),
                    ({"processed": 3}, "argument 'processed'")):
        with pytest.raises(ScaleupDataError, match=msg):
            sa.load_study(folder, **kw)
