"""Tests of scaleup_analysis.effect_sizes against metafor::escalc (tests/reference/ref_escalc.R).

The reference is metafor 3.8-1 ``escalc()`` on a grid of data sets x measures x options (every cell of
tests/reference/escalc.json), except for the bias-corrected correlation ``UCOR`` in the region where
metafor's ``gsl::hyperg_2F1`` is inaccurate: there the reference is the power series of 2F1 summed in R
(``ucor_gsl`` in the JSON), and the test also records how far metafor is from it.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError, ScaleupWarning
from tests.conftest import load_reference

REF = load_reference("escalc")
# Tolerance required by the issue: 1e-10 relative; absolute 1e-13 for values that are ~0
# (e.g. a risk difference of exactly 0, where R and numpy may differ in the last bit).
RTOL, ATOL = 1e-10, 1e-13

TABLES = ("landenberger", "bcg", "zerocells")
MEANS = ("normand1999", "curtis1998", "continuous_edge")
PROPORTIONS = ("pritz1997", "debruin2009", "prop_edge")
PROP_VTYPES = {"PR": ("LS", "UB", "AV"), "PLN": ("LS", "AV"), "PLO": ("LS", "AV"), "PAS": ("LS",), "PFT": ("LS",)}
RATES = ("hart1999", "rate_edge")
CORRELATIONS = ("molloy2014", "cor_edge")
TO = ("only0", "all", "if0all", "none")
PAIRED = ("lehmann2018", "prepost_sim", "change_edge")
CHANGE_VTYPES = {"MC": ("LS",), "SMCC": ("LS", "LS2"), "SMCR": ("LS", "LS2"), "SMCRH": ("LS",), "ROMC": ("LS",)}


def _dataset(name: str) -> pd.DataFrame:
    cols = REF["datasets"][name]
    return pd.DataFrame({k: [np.nan if v is None else v for v in vals] if k != "study" else vals
                         for k, vals in cols.items()})


def _compute(cell: dict) -> pd.DataFrame:
    d = _dataset(cell["dataset"])
    kw = dict(add=cell["add"], to=cell["to"], drop00=cell["drop00"], vtype=cell["vtype"])
    if cell["add"] is None:  # metafor's default add (1/2; 0 for PAS and PFT), to and vtype
        kw = dict(drop00=cell["drop00"])
    if cell["input"] == "cells":
        cols = dict(ai="ai", bi="bi", ci="ci", di="di")
    elif cell["input"] == "n":
        d["n1i"] = d["ai"] + d["bi"]
        d["n2i"] = d["ci"] + d["di"]
        cols = dict(ai="ai", n1i="n1i", ci="ci", n2i="n2i")
    elif cell["input"] == "cells_partial_n":
        d["n1i"] = d["ai"] + d["bi"]
        d["n2i"] = d["ci"] + d["di"]
        # same rows as R's seq(1, k, by = 3) / seq(2, k, by = 3) (1-based)
        d.loc[d.index[0::3], "bi"] = np.nan
        d.loc[d.index[1::3], "di"] = np.nan
        cols = dict(ai="ai", bi="bi", ci="ci", di="di", n1i="n1i", n2i="n2i")
    elif cell["input"] == "xn":
        cols = dict(xi="xi", ni="ni")
    elif cell["input"] == "xm":
        d["mi"] = d["ni"] - d["xi"]
        cols = dict(xi="xi", mi="mi")
    elif cell["input"] == "xm_partial_n":
        d["mi"] = d["ni"] - d["xi"]
        d.loc[d.index[0::3], "mi"] = np.nan  # R's seq(1, k, by = 3)
        cols = dict(xi="xi", mi="mi", ni="ni")
    elif cell["input"] == "rates":
        cols = dict(x1i="x1i", t1i="t1i", x2i="x2i", t2i="t2i")
    elif cell["input"] == "rate1":  # group 1 alone, as metafor's xi = x1i, ti = t1i
        cols = dict(xi="x1i", ti="t1i")
    elif cell["input"] == "cor":
        cols = dict(ri="ri", ni="ni")
    elif cell["input"] == "paired":
        cols = dict(m1i="m1i", m2i="m2i", sd1i="sd1i", sd2i="sd2i", ni="ni", ri="ri")
    elif cell["input"] == "paired_no_sd2i":  # SMCR reads sd1i only
        cols = dict(m1i="m1i", m2i="m2i", sd1i="sd1i", ni="ni", ri="ri")
    else:  # means
        cols = dict(m1i="m1i", sd1i="sd1i", n1i="n1i", m2i="m2i", sd2i="sd2i", n2i="n2i")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleupWarning)  # R's Inf -> NA warning is suppressed too
        return sa.effect_sizes(d, cell["measure"], **cols, **kw)


def _cell_id(c: dict) -> str:
    return "-".join(str(c[k]) for k in ("dataset", "input", "measure", "to", "add", "drop00", "vtype"))


def _as_float(x):
    return np.array([np.nan if v is None else v for v in x], dtype=float)


@pytest.mark.parametrize("cell", REF["cells"], ids=_cell_id)
def test_matches_metafor_escalc(cell):
    out = _compute(cell)
    for col in ("yi", "vi"):
        expected = _as_float(cell[col])
        got = out[col].to_numpy(dtype=float)
        # missing in exactly the same rows as metafor, equal elsewhere (rtol 1e-10, atol 1e-13)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=col)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=col)


def test_reference_grid_is_complete():
    have = {(c["dataset"], c["input"], c["measure"], c["to"], c["add"], c["drop00"], c["vtype"])
            for c in REF["cells"]}
    expected = set()
    for ds, m, to, add, drop00 in itertools.product(
        TABLES, ("OR", "RR", "RD"), ("only0", "all", "if0all", "none"), (0.5, 0), (True, False)
    ):
        for vt in (("LS", "UB", "AV") if m == "RD" else ("LS",)):
            expected.add((ds, "cells", m, to, add, drop00, vt))
    for ds, m, inp in itertools.product(TABLES, ("OR", "RR", "RD"), ("n", "cells_partial_n")):
        expected.add((ds, inp, m, "only0", 0.5, False, "LS"))
    for ds in MEANS:
        for vt in ("LS", "UB", "LS2", "AV"):
            expected.add((ds, "means", "SMD", "only0", 0.5, False, vt))
        for vt in ("LS", "UB", "HO"):
            expected.add((ds, "means", "MD", "only0", 0.5, False, vt))
    # issue 18: single proportions (add None = metafor's default add, to and vtype)
    for ds, (m, vts) in itertools.product(PROPORTIONS, PROP_VTYPES.items()):
        for to, add, vt in itertools.product(TO, (0.5, 0), vts):
            expected.add((ds, "xn", m, to, add, False, vt))
        for inp in ("xn", "xm", "xm_partial_n"):
            expected.add((ds, inp, m, "only0", None, False, "LS"))
    # incidence rates: two groups (IRR, IRD) and group 1 alone (IR, IRLN)
    for ds, to, add in itertools.product(RATES, TO, (0.5, 0)):
        for m, drop00 in itertools.product(("IRR", "IRD"), (True, False)):
            expected.add((ds, "rates", m, to, add, drop00, "LS"))
        for m in ("IR", "IRLN"):
            expected.add((ds, "rate1", m, to, add, False, "LS"))
    # correlations
    for ds in CORRELATIONS:
        for m, vt in (("COR", "LS"), ("COR", "AV"), ("ZCOR", "LS")):
            expected.add((ds, "cor", m, "only0", 0.5, False, vt))
    # log ratio of means
    for ds in MEANS + ("rom_edge",):
        for vt in ("LS", "HO", "AV", "AVHO"):
            expected.add((ds, "means", "ROM", "only0", 0.5, False, vt))
    # issue 18, second part: paired designs (and SMCR without sd2i), bias-corrected correlation
    for ds, (m, vts) in itertools.product(PAIRED, CHANGE_VTYPES.items()):
        for vt in vts:
            expected.add((ds, "paired", m, "only0", 0.5, False, vt))
    for ds, vt in itertools.product(PAIRED, CHANGE_VTYPES["SMCR"]):
        expected.add((ds, "paired_no_sd2i", "SMCR", "only0", 0.5, False, vt))
    for ds, vt in itertools.product(CORRELATIONS + ("ucor_edge",), ("LS", "UB", "AV")):
        expected.add((ds, "cor", "UCOR", "only0", 0.5, False, vt))
    assert expected <= have, sorted(expected - have)
    assert len(REF["cells"]) == len(have) == len(expected) == 694  # no duplicated or unexpected cells


def test_new_reference_datasets_exercise_the_edge_cases():
    # zero events, only events, missing counts; zero counts in one and both rate groups; ni <= 3 and
    # |r| = 1 for correlations; zero and negative means for the log ratio of means
    p = _dataset("prop_edge")
    assert (p.xi == 0).sum() >= 2 and (p.xi == p.ni).sum() >= 1 and p[["xi", "ni"]].isna().any(axis=1).sum() >= 2
    r = _dataset("rate_edge")
    assert ((r.x1i == 0) & (r.x2i == 0)).sum() >= 1 and ((r.x1i == 0) ^ (r.x2i == 0)).sum() >= 2
    c = _dataset("cor_edge")
    assert (c.ni <= 3).sum() >= 2 and (c.ri.abs() == 1).sum() == 2 and c.ri.isna().sum() == 1
    o = _dataset("rom_edge")
    assert (o.m2i == 0).sum() == 1 and (np.sign(o.m1i) * np.sign(o.m2i) < 0).sum() >= 1
    # paired designs: r = +-1 and 0, ni of 1, 2 and 3 (c(ni - 1) undefined for ni <= 2), missing sd2i, ri
    # and m1i, a zero mean and means of opposite signs (ROMC), sd1i = 0 (SMCR, SMCRH)
    k = _dataset("change_edge")
    assert {1.0, -1.0, 0.0} <= set(k.ri) and {1.0, 2.0, 3.0} <= set(k.ni)
    assert k.sd2i.isna().sum() == k.ri.isna().sum() == k.m1i.isna().sum() == 1
    assert (k.m2i == 0).sum() == 1 and (np.sign(k.m1i) * np.sign(k.m2i) < 0).sum() == 1 and (k.sd1i == 0).sum() == 1
    assert ((k.ri == 1) & (k.sd1i == k.sd2i)).sum() == 1  # change scores with an SD of 0
    # UCOR: ni = 4 and 3 (no bias-corrected r), 5 (smallest defined), fractional, large; r = 0, 1
    u = _dataset("ucor_edge")
    assert {3.0, 4.0, 4.5, 5.0, 5000.0} <= set(u.ni) and {0.0, 1.0} <= set(u.ri)
    assert len(_dataset("lehmann2018")) == 12 and len(_dataset("prepost_sim")) == 15


def test_reference_exercises_zero_cells_and_missing_values():
    # the grid is only informative if zero-cell handling and NA propagation really occur in it
    z = _dataset("zerocells")
    cells = z[["ai", "bi", "ci", "di"]]
    assert ((cells == 0).any(axis=1)).sum() >= 5
    assert (((z.ai == 0) & (z.ci == 0)) | ((z.bi == 0) & (z.di == 0))).sum() >= 2  # double zeros
    assert cells.isna().any(axis=1).sum() >= 1
    assert (_dataset("landenberger")[["ai", "bi", "ci", "di"]] > 0).all().all()


def test_landenberger_in_reference_is_the_bundled_csv():
    bundled = Path(sa.__file__).parent / "data" / "bundled" / "landenberger2005_cbt_offenders.csv"
    raw = pd.read_csv(bundled)
    ref = _dataset("landenberger")
    for ref_col, col in (("ai", "n.cbt.non"), ("bi", "n.cbt.rec"), ("ci", "n.ctrl.non"),
                         ("di", "n.ctrl.rec")):
        np.testing.assert_array_equal(ref[ref_col].to_numpy(), raw[col].to_numpy(dtype=float))


def test_bundled_dataset_with_its_own_column_names():
    raw = pd.read_csv(Path(sa.__file__).parent / "data" / "bundled" / "landenberger2005_cbt_offenders.csv")
    out = sa.effect_sizes(raw, "OR", ai="n.cbt.non", bi="n.cbt.rec", ci="n.ctrl.non", di="n.ctrl.rec")
    ref = next(c for c in REF["cells"] if (c["dataset"], c["input"], c["measure"], c["to"], c["add"],
                                           c["drop00"]) == ("landenberger", "cells", "OR", "only0", 0.5, False))
    np.testing.assert_allclose(out["yi"], _as_float(ref["yi"]), rtol=RTOL)  # rtol 1e-10
    np.testing.assert_allclose(out["vi"], _as_float(ref["vi"]), rtol=RTOL)  # rtol 1e-10
    assert list(out.columns[:-2]) == list(raw.columns)


def test_returns_copy_keeps_index_and_does_not_mutate():
    d = _dataset("bcg").set_index("study")
    before = d.copy()
    out = sa.effect_sizes(d, "RR", ai="ai", bi="bi", ci="ci", di="di", yi="logrr", vi="var")
    pd.testing.assert_frame_equal(d, before)
    assert out.index.equals(d.index)
    assert {"logrr", "var"} <= set(out.columns) and "yi" not in out.columns


# 'zerocells' has a missing 'ai' (row 6): its warning is checked in test_missing_input_*
@pytest.mark.filterwarnings("ignore:effect_sizes.*has missing values in column:scaleup_analysis.errors.ScaleupWarning")
def test_row_order_invariance():
    d = _dataset("zerocells")
    perm = np.random.default_rng(1).permutation(len(d))
    a = sa.effect_sizes(d, "OR", ai="ai", bi="bi", ci="ci", di="di", to="if0all")
    b = sa.effect_sizes(d.iloc[perm], "OR", ai="ai", bi="bi", ci="ci", di="di", to="if0all")
    pd.testing.assert_frame_equal(a.iloc[perm], b)  # exact: same arithmetic per row


def test_add_and_to_do_not_affect_means_measures():
    d = _dataset("normand1999")
    cols = dict(m1i="m1i", sd1i="sd1i", n1i="n1i", m2i="m2i", sd2i="sd2i", n2i="n2i")
    a = sa.effect_sizes(d, "SMD", **cols)
    b = sa.effect_sizes(d, "SMD", **cols, add=3.0, to="all", drop00=True)
    pd.testing.assert_frame_equal(a, b)


# 'zerocells' has a missing 'ai' (row 6): its warning is checked in test_missing_input_*
@pytest.mark.filterwarnings("ignore:effect_sizes.*has missing values in column:scaleup_analysis.errors.ScaleupWarning")
def test_nullable_integer_counts_with_missing():
    d = _dataset("zerocells")
    d_int = d.copy()
    for c in ("ai", "bi", "ci", "di"):
        d_int[c] = d_int[c].astype("Int64")
    a = sa.effect_sizes(d, "RR", ai="ai", bi="bi", ci="ci", di="di")
    b = sa.effect_sizes(d_int, "RR", ai="ai", bi="bi", ci="ci", di="di")
    np.testing.assert_array_equal(a["yi"].to_numpy(), b["yi"].to_numpy())
    assert np.isnan(b.loc[d["ai"].isna(), "yi"]).all()


def test_infinite_values_warn_and_become_missing():
    d = pd.DataFrame({"a": [0, 5], "b": [10, 5], "c": [3, 5], "d": [7, 5]})
    with pytest.warns(ScaleupWarning, match="infinite in 1 row"):
        out = sa.effect_sizes(d, "OR", ai="a", bi="b", ci="c", di="d", to="none")
    assert np.isnan(out.loc[0, "yi"]) and np.isnan(out.loc[0, "vi"])
    assert out.loc[1, "yi"] == 0.0  # log(1) exactly


_BINARY = pd.DataFrame({"study": ["A", "B", "C", "D"], "a": [5, 3, 8, 6], "b": [10, 12, 9, 11],
                        "c": [4, 6, 5, 7], "d": [11, 9, 12, 10]})


def test_missing_input_keeps_the_row_missing_with_a_warning():
    d = _BINARY.assign(a=[np.nan, 3, 8, 6])
    with pytest.warns(ScaleupWarning) as rec:
        out = sa.effect_sizes(d, "OR", ai="a", bi="b", ci="c", di="d")
    (msg,) = [str(w.message) for w in rec]
    assert "table 'data' has missing values in column 'a' (argument 'ai') in 1 row(s) (index 0)" in msg
    assert "yi and vi are missing (NaN) in 1 row(s) (index 0), as metafor::escalc gives NA" in msg
    assert np.isnan(out.loc[0, "yi"]) and np.isnan(out.loc[0, "vi"])
    # the other rows are those of the complete table, bit for bit
    full = sa.effect_sizes(_BINARY, "OR", ai="a", bi="b", ci="c", di="d")
    pd.testing.assert_frame_equal(out.iloc[1:].drop(columns="a"), full.iloc[1:].drop(columns="a"))
    np.testing.assert_allclose(out.loc[1, "yi"], np.log(3 * 9 / (12 * 6)), rtol=1e-12)  # log OR


def test_missing_mean_leaves_vi_defined_and_says_so():
    d = pd.DataFrame({"m1": [np.nan, 2.0], "s1": [1.0, 1.0], "n1": [5, 5], "m2": [0.0, 1.0], "s2": [1.0, 1.0],
                      "n2": [5, 5]})
    with pytest.warns(ScaleupWarning, match=r"column 'm1' \(argument 'm1i'\) in 1 row\(s\) \(index 0\), so yi "
                                            r"and/or vi"):
        out = sa.effect_sizes(d, "MD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2")
    assert np.isnan(out.loc[0, "yi"]) and out.loc[0, "vi"] == pytest.approx(0.4, rel=1e-12)  # 1/5 + 1/5


def test_undefined_values_warn_and_become_missing():
    # one subject per group: m = n1 + n2 - 2 = 0, the small-sample correction c(m) is undefined
    d = pd.DataFrame({"m1": [1.0, 2.0], "s1": [1.0, 1.0], "n1": [1, 5], "m2": [0.0, 1.0], "s2": [1.0, 1.0],
                      "n2": [1, 5]})
    with pytest.warns(ScaleupWarning, match=r"undefined \(0/0.*in 1 row\(s\) \(index 0\); set to missing"):
        out = sa.effect_sizes(d, "SMD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2")
    assert np.isnan(out.loc[0, "yi"]) and np.isnan(out.loc[0, "vi"]) and np.isfinite(out.loc[1, "yi"])


def test_complete_input_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sa.effect_sizes(_BINARY, "OR", ai="a", bi="b", ci="c", di="d")
    assert out[["yi", "vi"]].notna().all().all()


def test_empty_table_is_an_error():
    with pytest.raises(ScaleupDataError, match="effect_sizes: table 'data' has no rows"):
        sa.effect_sizes(_BINARY.iloc[:0], "OR", ai="a", bi="b", ci="c", di="d")


def test_hedges_g_correction_factor_closed_form():
    # c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)); m = 4 -> Gamma(2)/(sqrt(2) Gamma(1.5))
    # = 1/(sqrt(2) * sqrt(pi)/2) = sqrt(2/pi). One group of 3 vs 3, SD 1 each, mean diff 1: d = 1.
    d = pd.DataFrame({"m1": [1.0], "s1": [1.0], "n1": [3], "m2": [0.0], "s2": [1.0], "n2": [3]})
    out = sa.effect_sizes(d, "SMD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2")
    g = np.sqrt(2 / np.pi)
    assert out.loc[0, "yi"] == pytest.approx(g, rel=1e-12)  # closed form, 1e-12 relative
    assert out.loc[0, "vi"] == pytest.approx(1 / 3 + 1 / 3 + g**2 / 12, rel=1e-12)


def test_module_import_does_not_break_sa_effect_sizes():
    import scaleup_analysis.effect_sizes  # noqa: F401  (sets sa.effect_sizes to the module)

    d = pd.DataFrame({"a": [1], "b": [2], "c": [3], "d": [4]})
    out = sa.effect_sizes(d, "RD", ai="a", bi="b", ci="c", di="d")
    assert out.loc[0, "yi"] == pytest.approx(1 / 3 - 3 / 7, rel=1e-12)


# ---------------------------------------------------------------- invalid input
COUNTS = pd.DataFrame({"a": [1, 2, -1, 4], "b": [5, 6, 7, 8], "c": [1, 1, 1, 1], "d": [2, 2, 2, 2]})
PROPS = pd.DataFrame({"x": [3, -2, 5, 4], "n": [10, 12, 20, 20]})
RATES_DF = pd.DataFrame({"x1": [3, 2, 5, 4], "t1": [100.0, 0.0, 80.0, -5.0], "x2": [1, 6, -1, 2],
                         "t2": [90.0, 95.0, 70.0, 60.0]})
CORS = pd.DataFrame({"r": [0.2, 1.2, -0.4, -1.01], "n": [30, 40, 0, 25]})
MEANS_DF = pd.DataFrame({"m1": [1.0, 2.0], "s1": [1.0, -0.5], "n1": [10, 0],
                         "m2": [0.0, 1.0], "s2": [1.0, 1.0], "n2": [10, 12]})


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sa.effect_sizes(COUNTS, "XYZ", ai="a", bi="b", ci="c", di="d"), "unknown measure 'XYZ'"),
        (lambda: sa.effect_sizes(COUNTS, "OR", ai="a", bi="b", ci="c", di="d", to="some"), "unknown to="),
        (lambda: sa.effect_sizes(COUNTS, "OR", ai="a", bi="b", ci="c", di="d", vtype="UB"), "vtype='UB'"),
        (lambda: sa.effect_sizes(COUNTS, "OR", ai="a", bi="zz", ci="c", di="d"), "column 'zz' .argument 'bi'"),
        (lambda: sa.effect_sizes(COUNTS, "OR", ai="a", ci="c", di="d"), "either 'bi'"),
        (lambda: sa.effect_sizes(COUNTS, "OR", ai="a", bi="b", ci="c", di="d"),
         r"column 'a' \(ai\) has negative counts in 1 row\(s\) \(index 2\)"),
        (lambda: sa.effect_sizes(COUNTS.assign(n1=[6, 9, 6, 12]), "OR", ai="b", bi="a", ci="c", di="d", n1i="n1"),
         r"'n1' \(n1i\) differs from 'b' \+ 'a' in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(COUNTS.assign(n1=[6, 1, 6, 12]), "OR", ai="b", n1i="n1", ci="c", di="d"),
         r"exceed the group size 'n1' \(n1i\) in 2 row\(s\) \(index 1, 2\)"),
        (lambda: sa.effect_sizes(COUNTS.assign(a=["1", "x", "3", "4"]), "OR", ai="a", bi="b", ci="c", di="d"),
         r"column .a. \(argument .ai.\): 1 row\(s\) \(first: 1\) are not numeric"),
        (lambda: sa.effect_sizes(COUNTS.assign(a=[True] * 4), "OR", ai="a", bi="b", ci="c", di="d"), "must be numeric"),
        (lambda: sa.effect_sizes(MEANS_DF, "SMD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2"),
         r"'s1' \(sd1i\) has negative standard deviations in 1 row"),
        (lambda: sa.effect_sizes(MEANS_DF.assign(s1=1.0), "MD", m1i="m1", sd1i="s1", n1i="n1", m2i="m2",
                                 sd2i="s2", n2i="n2"), r"'n1' \(n1i\) has group sizes <= 0 in 1 row"),
        (lambda: sa.effect_sizes(MEANS_DF, "SMD", m1i="m1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2"), "sd1i"),
        (lambda: sa.effect_sizes(COUNTS.abs(), "OR", ai="a", bi="b", ci="c", di="d", yi="a"), "overwrite"),
        (lambda: sa.effect_sizes(COUNTS.abs(), "OR", ai="a", bi="b", ci="c", di="d", add=np.inf), "add must"),
        (lambda: sa.effect_sizes(COUNTS.values, "OR", ai="a", bi="b", ci="c", di="d"), "DataFrame"),
        # issue 18 measures
        (lambda: sa.effect_sizes(PROPS, "PLO", xi="x", ni="n"),
         r"effect_sizes\(measure='PLO'\): column 'x' \(xi\) has negative counts in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PROPS.assign(x=[3, 2, 30, 4]), "PR", xi="x", ni="n"),
         r"event counts 'x' \(xi\) exceed the sample size 'n' \(ni\) in 1 row\(s\) \(index 2\)"),
        (lambda: sa.effect_sizes(PROPS.assign(x=[3, 2, 5, 4], m=[7, 10, 6, 16]), "PR", xi="x", mi="m", ni="n"),
         r"'n' \(ni\) differs from 'x' \+ 'm' in 1 row\(s\) \(index 2\)"),
        (lambda: sa.effect_sizes(PROPS.assign(x=[3, 2, 5, 4], m=[7, -1, 15, 16]), "PFT", xi="x", mi="m"),
         r"column 'm' \(mi\) has negative counts in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PROPS.assign(x=[3, 0, 5, 4], n=[10, 0, 20, 20]), "PAS", xi="x", ni="n"),
         r"column 'n' \(ni\) has sample sizes <= 0 in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PROPS.assign(x=[3, 0, 5, 4], m=[1, 0, 2, 2]), "PAS", xi="x", mi="m"),
         r"the sample size 'x' \+ 'm' \(xi \+ mi\) is 0 in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PROPS, "PR", xi="x"), "either 'ni'"),
        (lambda: sa.effect_sizes(PROPS.abs(), "PAS", xi="x", ni="n", vtype="AV"), "vtype='AV' is not available"),
        (lambda: sa.effect_sizes(RATES_DF, "IRR", x1i="x1", t1i="t1", x2i="x2", t2i="t2"),
         r"effect_sizes\(measure='IRR'\): column 't1' \(t1i\) has person-times <= 0 in 2 row\(s\) \(index 1, 3\)"),
        (lambda: sa.effect_sizes(RATES_DF.assign(t1=1.0), "IRD", x1i="x1", t1i="t1", x2i="x2", t2i="t2"),
         r"column 'x2' \(x2i\) has negative counts in 1 row\(s\) \(index 2\)"),
        (lambda: sa.effect_sizes(RATES_DF.assign(t1=1.0), "IRR", x1i="x1", t1i="t1", x2i="x2"), r"\['t2i'\]"),
        (lambda: sa.effect_sizes(RATES_DF, "IRLN", xi="x1", ti="t1"),
         r"column 't1' \(ti\) has person-times <= 0 in 2 row\(s\) \(index 1, 3\)"),
        (lambda: sa.effect_sizes(CORS, "ZCOR", ri="r", ni="n"),
         r"effect_sizes\(measure='ZCOR'\): column 'r' \(ri\) has correlations outside \[-1, 1\] in 2 row\(s\) "
         r"\(index 1, 3\)"),
        (lambda: sa.effect_sizes(CORS.assign(r=0.1), "COR", ri="r", ni="n"),
         r"column 'n' \(ni\) has sample sizes <= 0 in 1 row\(s\) \(index 2\)"),
        (lambda: sa.effect_sizes(CORS.assign(r=0.1, n=20), "COR", ri="r", ni="n", vtype="UB"), "vtype='UB'"),
        (lambda: sa.effect_sizes(MEANS_DF.assign(s1=1.0, n1=10), "ROM", m1i="m1", sd1i="s1", n1i="n1", m2i="m2",
                                 sd2i="s2", n2i="n2", vtype="LS2"), "vtype='LS2' is not available"),
    ],
)
def test_invalid_input_raises_scaleup_data_error(call, match):
    with pytest.raises(ScaleupDataError, match=match):
        call()


# ---------------------------------------------------------------- invariances (hypothesis)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_count = st.integers(min_value=0, max_value=500)


@settings(max_examples=60, deadline=None)
@given(a=_count, b=_count, c=_count, d=_count, add=st.sampled_from([0.5, 1.0]),
       to=st.sampled_from(["only0", "all", "if0all"]))
def test_swapping_groups_negates_or_rr_rd(a, b, c, d, add, to):
    # the zero-cell rules treat the four cells symmetrically, so swapping the two groups negates
    # log OR, log RR and RD and leaves their variances unchanged (1e-12 relative, 1e-12 absolute)
    fwd = pd.DataFrame({"a": [a], "b": [b], "c": [c], "d": [d]})
    for m in ("OR", "RR", "RD"):
        x = sa.effect_sizes(fwd, m, ai="a", bi="b", ci="c", di="d", add=add, to=to)
        y = sa.effect_sizes(fwd, m, ai="c", bi="d", ci="a", di="b", add=add, to=to)
        np.testing.assert_allclose(y["yi"], -x["yi"], rtol=1e-12, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(y["vi"], x["vi"], rtol=1e-12, atol=1e-12, equal_nan=True)
    # swapping events and non-events negates the log odds ratio
    x = sa.effect_sizes(fwd, "OR", ai="a", bi="b", ci="c", di="d", add=add, to=to)
    z = sa.effect_sizes(fwd, "OR", ai="b", bi="a", ci="d", di="c", add=add, to=to)
    np.testing.assert_allclose(z["yi"], -x["yi"], rtol=1e-12, atol=1e-12, equal_nan=True)


_pos = st.floats(min_value=0.1, max_value=100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(m1=st.floats(-50, 50), m2=st.floats(-50, 50), s1=_pos, s2=_pos,
       n1=st.integers(2, 300), n2=st.integers(2, 300), k=st.floats(0.01, 1000))
def test_smd_is_scale_free_and_md_scales(m1, m2, s1, s2, n1, n2, k):
    d = pd.DataFrame({"m1": [m1], "s1": [s1], "n1": [n1], "m2": [m2], "s2": [s2], "n2": [n2]})
    dk = d.assign(m1=k * m1, m2=k * m2, s1=k * s1, s2=k * s2)
    cols = dict(m1i="m1", sd1i="s1", n1i="n1", m2i="m2", sd2i="s2", n2i="n2")
    for vt in ("LS", "UB", "LS2"):
        a = sa.effect_sizes(d, "SMD", vtype=vt, **cols)
        b = sa.effect_sizes(dk, "SMD", vtype=vt, **cols)
        # units cancel in the SMD: equal to rounding error (1e-9 relative, 1e-12 absolute near 0)
        np.testing.assert_allclose(b[["yi", "vi"]], a[["yi", "vi"]], rtol=1e-9, atol=1e-12)
    a = sa.effect_sizes(d, "MD", **cols)
    b = sa.effect_sizes(dk, "MD", **cols)
    np.testing.assert_allclose(b["yi"], k * a["yi"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b["vi"], k**2 * a["vi"], rtol=1e-9)


# ---------------------------------------------------------------- issue 18 measures: behaviour
def test_correlation_variance_missing_for_ni_at_most_3_with_a_warning():
    # metafor: vi = NA when ni <= 3, yi kept (grid 'cor_edge' checks the values)
    d = pd.DataFrame({"r": [0.3, 0.5], "n": [40, 3]})
    with pytest.warns(ScaleupWarning, match=r"'n' \(ni\) is <= 3, in 1 row\(s\) \(index 1\); vi is missing"):
        out = sa.effect_sizes(d, "ZCOR", ri="r", ni="n")
    assert out.loc[1, "yi"] == pytest.approx(np.arctanh(0.5), rel=1e-12) and np.isnan(out.loc[1, "vi"])
    assert out.loc[0, "vi"] == pytest.approx(1 / 37, rel=1e-12)  # 1/(ni - 3)


def test_arcsine_measures_default_to_no_continuity_correction():
    # metafor's add defaults to 0 for PAS and PFT (1/2 otherwise): a zero count is left as it is
    d = pd.DataFrame({"x": [0, 5], "n": [20, 20]})
    pas = sa.effect_sizes(d, "PAS", xi="x", ni="n")
    assert pas.loc[0, "yi"] == 0.0 and pas.loc[0, "vi"] == pytest.approx(1 / 80, rel=1e-12)
    plo = sa.effect_sizes(d, "PLO", xi="x", ni="n")
    assert plo.loc[0, "yi"] == pytest.approx(np.log(0.5 / 20.5), rel=1e-12)  # 0.5 added to xi and mi


def test_other_families_arguments_are_ignored():
    # as metafor: a proportion reads only xi/mi/ni, whatever else is given
    d = pd.DataFrame({"x": [2, 5], "n": [20, 25], "junk": [np.nan, np.nan]})
    a = sa.effect_sizes(d, "PLN", xi="x", ni="n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = sa.effect_sizes(d, "PLN", xi="x", ni="n", ai="junk", t1i="junk")
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- issue 18: paired designs, UCOR
def test_ucor_is_exact_where_metafor_gsl_is_not():
    # Reference: the power series of 2F1 summed in R (ref_escalc.R, ucor_gsl), for even ni >= 8 and |r| < 0.07,
    # where gsl::hyperg_2F1 (used by metafor) is off. 1e-12 relative (two independent summations).
    ref = REF["ucor_gsl"]
    d = pd.DataFrame(ref["data"])
    exact = ref["series"]
    for vt in ("LS", "UB"):
        out = sa.effect_sizes(d, "UCOR", ri="ri", ni="ni", vtype=vt)
        np.testing.assert_allclose(out["yi"], exact["yi"], rtol=1e-12)
        np.testing.assert_allclose(out["vi"], exact[vt], rtol=1e-12)
        # the divergence from metafor 3.8-1 documented in effect_sizes' Notes: up to 0.2 % in yi and 8 % in
        # vi (UB) in rows 0-4; row 5 (ni = 30) is outside gsl's faulty region and agrees at 1e-10
        meta = ref["metafor"][vt]
        dev = np.abs(np.asarray(meta["yi"]) - exact["yi"]) / np.abs(exact["yi"])
        assert (dev[:5] > 1e-5).all() and dev[5] < 1e-10


def test_ucor_closed_forms():
    # r = 0: the bias-corrected r is 0 and, with Gauss's F(1, 1; c; 1) = (c - 1)/(c - 2), c = n/2, the unbiased
    # variance is 0 - (1 - (n - 3)/(n - 2) * F) = 0 - (1 - (7/8) * (4/3)) = 1/6 for n = 10 (1e-13 relative).
    # r = 1 stays 1 with zero variance.
    d = pd.DataFrame({"r": [0.0, 1.0], "n": [10, 25]})
    out = sa.effect_sizes(d, "UCOR", ri="r", ni="n", vtype="UB")
    assert out.loc[0, "yi"] == 0.0 and out.loc[0, "vi"] == pytest.approx(1 / 6, rel=1e-13)
    assert out.loc[1, "yi"] == pytest.approx(1.0, rel=1e-15) and out.loc[1, "vi"] == pytest.approx(0.0, abs=1e-15)
    # F(1/2, 1/2; 3/2; 1) = pi/2 (ni = 5) enters r * F for r -> 0: at r = 1e-3 the corrected r is ~ r * pi/2
    e = sa.effect_sizes(pd.DataFrame({"r": [1e-3], "n": [5]}), "UCOR", ri="r", ni="n")
    assert e.loc[0, "yi"] == pytest.approx(1e-3 * np.pi / 2, rel=2e-3)


def test_ucor_small_samples_missing_with_a_warning():
    d = pd.DataFrame({"r": [0.3, 0.5, 0.4], "n": [40, 4, 3]})
    with pytest.warns(ScaleupWarning, match=r"bias-corrected correlation cannot be computed when the sample size 'n' "
                                            r"\(ni\) is <= 4, in 2 row\(s\) \(index 1, 2\)") as rec:
        out = sa.effect_sizes(d, "UCOR", ri="r", ni="n")
    assert len(rec) == 1  # the ni <= 3 warning of COR/ZCOR is not repeated
    assert out["yi"].isna().tolist() == [False, True, True] and out["vi"].isna().tolist() == [False, True, True]
    with pytest.warns(ScaleupWarning, match="bias-corrected"):
        av = sa.effect_sizes(d, "UCOR", ri="r", ni="n", vtype="AV")  # as metafor: vi defined for ni = 4
    assert av["vi"].isna().tolist() == [False, False, True]


def test_paired_measures_closed_forms():
    # one study, n = 20, means 12 and 10, SDs 4 and 3, r = 0.5: SD of the change sqrt(16 + 9 - 12) = sqrt(13);
    # c(19) = Gamma(9.5) / (sqrt(9.5) Gamma(9)) (1e-12 relative, closed forms)
    d = pd.DataFrame({"m1": [12.0], "m2": [10.0], "s1": [4.0], "s2": [3.0], "n": [20], "r": [0.5]})
    cols = dict(m1i="m1", m2i="m2", sd1i="s1", sd2i="s2", ni="n", ri="r")
    from scipy.special import gammaln
    c19 = np.exp(gammaln(9.5) - gammaln(9.0)) / np.sqrt(9.5)
    mc = sa.effect_sizes(d, "MC", **cols)
    assert mc.loc[0, "yi"] == 2.0 and mc.loc[0, "vi"] == pytest.approx(13 / 20, rel=1e-12)
    smcc = sa.effect_sizes(d, "SMCC", **cols)
    g = c19 * 2 / np.sqrt(13)
    assert smcc.loc[0, "yi"] == pytest.approx(g, rel=1e-12)
    assert smcc.loc[0, "vi"] == pytest.approx(1 / 20 + g**2 / 40, rel=1e-12)
    smcr = sa.effect_sizes(d.drop(columns="s2"), "SMCR", **{k: v for k, v in cols.items() if k != "sd2i"})
    g = c19 * 2 / 4
    assert smcr.loc[0, "yi"] == pytest.approx(g, rel=1e-12)
    assert smcr.loc[0, "vi"] == pytest.approx(2 * 0.5 / 20 + g**2 / 40, rel=1e-12)
    romc = sa.effect_sizes(d, "ROMC", **cols)
    assert romc.loc[0, "yi"] == pytest.approx(np.log(1.2), rel=1e-12)
    assert romc.loc[0, "vi"] == pytest.approx((16 / 144 + 9 / 100 - 2 * 0.5 * 12 / 120) / 20, rel=1e-12)


def test_smcr_ignores_sd2i_and_mc_keeps_yi_without_ri():
    d = pd.DataFrame({"m1": [5.0, 6.0], "m2": [4.0, 4.5], "s1": [1.0, 1.5], "s2": [np.nan, 1.2], "n": [12, 15],
                      "r": [0.4, np.nan]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sd2i is not an input of SMCR: its missing value says nothing
        a = sa.effect_sizes(d.iloc[:1], "SMCR", m1i="m1", m2i="m2", sd1i="s1", sd2i="s2", ni="n", ri="r")
    assert a[["yi", "vi"]].notna().all().all()
    with pytest.warns(ScaleupWarning, match=r"column 'r' \(argument 'ri'\) in 1 row\(s\) \(index 1\)"):
        b = sa.effect_sizes(d, "MC", m1i="m1", m2i="m2", sd1i="s1", sd2i="s2", ni="n", ri="r")
    assert b.loc[1, "yi"] == 1.5 and np.isnan(b.loc[1, "vi"])


PAIRED_DF = pd.DataFrame({"m1": [5.0, 6.0, 7.0], "m2": [4.0, 4.5, 5.0], "s1": [1.0, 1.5, 2.0], "s2": [1.1, 1.2, 1.3],
                          "n": [12, 15, 20], "r": [0.4, 0.5, 0.6]})
_PCOLS = dict(m1i="m1", m2i="m2", sd1i="s1", sd2i="s2", ni="n", ri="r")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sa.effect_sizes(PAIRED_DF.assign(r=[0.4, 1.2, -1.5]), "SMCC", **_PCOLS),
         r"effect_sizes\(measure='SMCC'\): column 'r' \(ri\) has correlations outside \[-1, 1\] in 2 row\(s\) "
         r"\(index 1, 2\)"),
        (lambda: sa.effect_sizes(PAIRED_DF.assign(n=[12, 0, 20]), "MC", **_PCOLS),
         r"column 'n' \(ni\) has sample sizes <= 0 in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PAIRED_DF.assign(s2=[1.0, -1.0, 1.0]), "ROMC", **_PCOLS),
         r"column 's2' \(sd2i\) has negative standard deviations in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PAIRED_DF.assign(s1=[1.0, 1.0, -2.0]), "SMCR", m1i="m1", m2i="m2", sd1i="s1",
                                 ni="n", ri="r"), r"column 's1' \(sd1i\) has negative standard deviations"),
        (lambda: sa.effect_sizes(PAIRED_DF, "SMCRH", m1i="m1", m2i="m2", sd1i="s1", ni="n", ri="r"), r"\['sd2i'\]"),
        (lambda: sa.effect_sizes(PAIRED_DF, "SMCR", m1i="m1", m2i="m2", sd1i="s1", ni="n"), r"\['ri'\]"),
        (lambda: sa.effect_sizes(PAIRED_DF, "SMCC", **_PCOLS, vtype="UB"), "vtype='UB' is not available"),
        (lambda: sa.effect_sizes(PAIRED_DF, "MC", **_PCOLS, vtype="LS2"), "vtype='LS2' is not available"),
        (lambda: sa.effect_sizes(PAIRED_DF.assign(r=[0.4, 1.01, 0.2]), "UCOR", ri="r", ni="n"),
         r"column 'r' \(ri\) has correlations outside \[-1, 1\] in 1 row\(s\) \(index 1\)"),
        (lambda: sa.effect_sizes(PAIRED_DF, "COR", ri="r", ni="n", vtype="UB"), "measure='UCOR'"),
    ],
)
def test_invalid_paired_and_ucor_input_raises(call, match):
    with pytest.raises(ScaleupDataError, match=match):
        call()


def test_paired_undefined_values_warn():
    # ni = 2: c(ni - 1) is undefined, SMCC missing with the 0/0 warning (metafor: NA); MC stays defined
    d = PAIRED_DF.assign(n=[12, 2, 20])
    with pytest.warns(ScaleupWarning, match=r"undefined .*in 1 row\(s\) \(index 1\)"):
        out = sa.effect_sizes(d, "SMCC", **_PCOLS)
    assert out["yi"].isna().tolist() == [False, True, False]
    mc = sa.effect_sizes(d, "MC", **_PCOLS)
    assert mc[["yi", "vi"]].notna().all().all()


_sd = st.floats(min_value=0.1, max_value=50, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(m1=st.floats(1, 100), m2=st.floats(1, 100), s1=_sd, s2=_sd, n=st.integers(3, 500),
       r=st.floats(-0.99, 0.99), k=st.floats(0.01, 1000))
def test_paired_measures_scale_and_swap(m1, m2, s1, s2, n, r, k):
    d = pd.DataFrame({"m1": [m1], "m2": [m2], "s1": [s1], "s2": [s2], "n": [n], "r": [r]})
    dk = d.assign(m1=k * m1, m2=k * m2, s1=k * s1, s2=k * s2)
    for m, vts in CHANGE_VTYPES.items():
        for vt in vts:
            a = sa.effect_sizes(d, m, **_PCOLS, vtype=vt)
            b = sa.effect_sizes(dk, m, **_PCOLS, vtype=vt)
            if m == "MC":  # MC scales with the unit, its variance with its square
                np.testing.assert_allclose(b["yi"], k * a["yi"], rtol=1e-9, atol=1e-9)
                np.testing.assert_allclose(b["vi"], k**2 * a["vi"], rtol=1e-9)
            else:  # standardized and log-ratio measures are unit-free (1e-9 relative, 1e-12 absolute)
                np.testing.assert_allclose(b[["yi", "vi"]], a[["yi", "vi"]], rtol=1e-9, atol=1e-12)
    # swapping the two measurements negates MC, SMCC and ROMC and keeps their variances
    sw = dict(m1i="m2", m2i="m1", sd1i="s2", sd2i="s1", ni="n", ri="r")
    for m in ("MC", "SMCC", "ROMC"):
        a = sa.effect_sizes(d, m, **_PCOLS)
        b = sa.effect_sizes(d, m, **sw)
        np.testing.assert_allclose(b["yi"], -a["yi"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b["vi"], a["vi"], rtol=1e-9)
