"""Bundled datasets.

Reference: tests/reference/ref_datasets.R writes datasets.json from the `metadat` R package
(dat.baskerville2012, dat.landenberger2005: every cell) and sprintf("%02d", 1:18) for the RSS codes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

import scaleup_analysis as sa
from scaleup_analysis.data.datasets import _DATASETS

REF = load_reference("datasets")
DATASETS = ["baskerville2012", "landenberger2005", "quebec_regions"]
METADAT = ["baskerville2012", "landenberger2005"]


def test_grid_every_dataset_and_column_is_in_the_fixture():
    """Grid coverage: (dataset x column) cells of the reference are all present."""
    assert sorted(_DATASETS) == sorted(DATASETS)
    assert sorted(REF) == sorted(["metadat_version", *DATASETS])
    for name in METADAT:
        ref = REF[name]
        assert ref["ncol"] == len(ref["columns"]) == len(ref["data"])
        for col in ref["columns"]:
            assert len(ref["data"][col]) == ref["nrow"], (name, col)
    assert len(REF["quebec_regions"]["rss_code"]) == 18


@pytest.mark.parametrize("name", METADAT)
def test_bundled_data_equal_metadat_cell_by_cell(name):
    ref = REF[name]
    df = sa.load_dataset(name)
    assert df.shape == (ref["nrow"], ref["ncol"])
    assert list(df.columns) == ref["columns"]
    for col in ref["columns"]:
        expected = ref["data"][col]
        got = df[col].tolist()
        assert int(df[col].isna().sum()) == ref["n_missing"][col], (name, col)
        if ref["column_class"][col] == "character":
            assert got == expected, (name, col)
        else:
            # both sides parse the same decimal text: exact up to 1e-12 relative (JSON float printing)
            exp = np.array([np.nan if v is None else v for v in expected], dtype=float)
            np.testing.assert_allclose(np.asarray(got, dtype=float), exp, rtol=1e-12, atol=0, equal_nan=True)
        if ref["column_class"][col] == "integer" and ref["n_missing"][col] == 0:
            assert pd.api.types.is_integer_dtype(df[col].dtype), (name, col)


def test_landenberger_cbt_components_are_yes_no_strings():
    df = sa.load_dataset("landenberger2005")
    cbt = [c for c in df.columns if c.startswith("cbt.")]
    assert len(cbt) == 12
    assert set(np.unique(df[cbt].to_numpy())) == {"yes", "no"}
    assert set(df["program"]) == {"research", "demo", "practice"}


def test_quebec_regions_is_a_valid_regions_table():
    df = sa.load_dataset("quebec_regions")
    assert list(df.columns) == ["rss_code", "name", "settlement_type"]
    assert df["rss_code"].tolist() == REF["quebec_regions"]["rss_code"]  # sprintf("%02d", 1:18) in R
    assert df["rss_code"].map(type).eq(str).all()
    assert df.loc[df["rss_code"] == "06", "name"].item() == "Montréal"
    assert str(df["settlement_type"].dtype) == "category"
    pd.testing.assert_frame_equal(sa.validate_table(df, "regions"), df)


def test_unknown_dataset_lists_the_available_names():
    with pytest.raises(sa.ScaleupDataError, match="Unknown dataset 'baskerville'. Available datasets: "
                       "baskerville2012, landenberger2005, quebec_regions"):
        sa.load_dataset("baskerville")


def test_list_datasets_and_citations():
    tab = sa.list_datasets()
    assert list(tab.columns) == ["name", "description", "n_rows", "citation", "doi"]
    assert tab["name"].tolist() == DATASETS
    assert tab["n_rows"].tolist() == [REF["baskerville2012"]["nrow"], REF["landenberger2005"]["nrow"], 18]
    dois = dict(zip(tab["name"], tab["doi"]))
    # DOIs of the original papers (scaleup_analysis/data/bundled/SOURCES.md)
    assert dois["baskerville2012"] == "10.1370/afm.1312"
    assert dois["landenberger2005"] == "10.1007/s11292-005-3541-7"
    doc = sa.load_dataset.__doc__
    for doi in ("10.1370/afm.1312", "10.1007/s11292-005-3541-7"):
        assert doi in doc
    df = sa.load_dataset("baskerville2012")
    assert df.attrs["doi"] == "10.1370/afm.1312" and "Baskerville" in df.attrs["citation"]
    assert not math.isnan(df["smd"].sum())


def test_each_call_returns_a_fresh_copy():
    a = sa.load_dataset("quebec_regions")
    a.loc[0, "name"] = "changed"
    assert sa.load_dataset("quebec_regions").loc[0, "name"] == "Bas-Saint-Laurent"
