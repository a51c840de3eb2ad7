"""``scaleup_analysis.notebook``: shared notebook set-up."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.data.io import write_table_atomic
from scaleup_analysis.data.manifest import write_manifest


def test_setup_display_sets_options_and_one_line_warnings(capsys):
    saved = warnings.formatwarning, warnings.showwarning
    try:
        with pd.option_context("display.precision", 6, "display.width", 80, "display.max_columns", 20):
            sa.setup_display(precision=2, width=100, max_columns=7)
            assert pd.get_option("display.precision") == 2
            assert pd.get_option("display.width") == 100
            assert pd.get_option("display.max_columns") == 7
        text = warnings.formatwarning("3 rows left out", sa.RowsOmittedWarning, "/tmp/x.py", 1)
        assert text == "RowsOmittedWarning: 3 rows left out\n"  # no file path, one line
        with warnings.catch_warnings(), pd.option_context("display.precision", 6, "display.width", 80):
            warnings.simplefilter("always")
            warnings.showwarning = saved[1]
            sa.setup_display()  # installs the stdout writer inside this context
            warnings.warn("2 sites left out", sa.RowsOmittedWarning)
        out = capsys.readouterr()
        assert out.out == "RowsOmittedWarning: 2 sites left out\n" and out.err == ""  # same stream as print
    finally:
        warnings.formatwarning, warnings.showwarning = saved


def test_load_study_reads_a_folder_and_checks_its_manifest(tmp_path):
    sim = sa.simulate_scaleup(seed=5, n_sites=36, n_periods=8, patients_per_site_period=2)
    for name, table in sim.tables.items():
        write_table_atomic(table, tmp_path / f"{name}.csv")
    write_manifest(tmp_path)
    study = sa.load_study(tmp_path, seed=999)  # the seed overrides the study's
    # the patient-level table is summarised from its file, never loaded whole (issue 19)
    assert set(sim.tables) - {"encounters"} <= set(study.tables) and "encounters" not in study.tables
    assert study.has("encounters") and study.cells().rows == len(sim.tables["encounters"])
    assert study.settings.seed == 999
    pd.testing.assert_frame_equal(study.tables["sites"], sim.tables["sites"], check_dtype=False)
    assert set(study.inputs) == {f"{name}.csv" for name in sim.tables}  # sha256 of every input file
    (tmp_path / "sites.csv").write_text("broken\n")
    with pytest.raises(sa.RawDataChangedError):
        sa.load_study(tmp_path)
