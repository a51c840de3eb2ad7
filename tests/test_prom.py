"""scale_reliability (internal consistency of a PREM / PROM scale) against psych::alpha.

* tests/reference/prom.json, written by tests/reference/ref_prom.R with psych 2.2.9 ``alpha`` and
  ``alpha.ci`` on psych's ``bfi`` agreeableness items (A1 reversed, missing answers: pairwise
  covariances), ``attitude`` (7 items), a hand-built 6 x 4 set (q3 reversed), the same with 3 missing
  cells, and the 2-item case (psych's own convention for alpha without an item);
* every quantity agrees to 1e-10 relative (observed: below 3e-14; the JSON keeps 15 significant digits);
* bad inputs name table 'data', the column and the rows; invariances: row order, a constant added
  to an item, reversing by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("prom")
SETS = [k for k in REF if k != "meta"]
RTOL = 1e-10

TOTAL = {"raw_alpha": "raw_alpha", "std_alpha": "std_alpha", "G6": "G6", "average_r": "average_r",
         "signal_noise": "signal_noise", "raw_alpha_se": "ase", "mean": "mean", "sd": "sd"}
ITEMS = {"n": "n", "raw_r": "raw_r", "std_r": "std_r", "r_cor": "r_cor", "r_drop": "r_drop", "mean": "mean",
         "sd": "sd"}
DROP = {"raw_alpha_drop": "raw_alpha", "std_alpha_drop": "std_alpha", "G6_drop": "G6",
        "average_r_drop": "average_r", "signal_noise_drop": "signal_noise"}


def _as_list(v):
    return [] if v is None else ([v] if isinstance(v, str) else list(v))


def _data(name):
    ref = REF[name]
    return pd.DataFrame({k: [np.nan if a is None else a for a in v] for k, v in ref["data"].items()})


def _fit(name, **kw):
    ref = REF[name]
    rev = _as_list(ref["reverse"])
    extra = {"reverse": rev, "scale_min": ref["scale_min"], "scale_max": ref["scale_max"]} if rev else {}
    return sa.scale_reliability(_data(name), items=ref["items"], **extra, **kw)


@pytest.mark.parametrize("name", SETS)
def test_total_matches_psych(name):
    res, ref = _fit(name), REF[name]["total"]
    for attr, key in TOTAL.items():
        np.testing.assert_allclose(getattr(res, attr), ref[key], rtol=RTOL, err_msg=f"{name}: {attr}")


@pytest.mark.parametrize("name", SETS)
def test_feldt_interval_matches_psych_alpha_ci(name):
    ref = REF[name]["feldt"]
    res = _fit(name)
    np.testing.assert_allclose([res.raw_alpha_ci_low, res.raw_alpha_ci_high], [ref["lower"], ref["upper"]],
                               rtol=RTOL)
    res90 = _fit(name, level=0.90)
    np.testing.assert_allclose([res90.raw_alpha_ci_low, res90.raw_alpha_ci_high], [ref["lower90"], ref["upper90"]],
                               rtol=RTOL)
    assert res.raw_alpha_ci_low < res90.raw_alpha_ci_low < res.raw_alpha < res90.raw_alpha_ci_high < res.raw_alpha_ci_high


@pytest.mark.parametrize("name", SETS)
def test_items_match_psych(name):
    table, ref = _fit(name).to_frame(), REF[name]
    assert list(table["item"]) == ref["items"]
    for col, key in ITEMS.items():
        np.testing.assert_allclose(table[col], ref["item_stats"][key], rtol=RTOL, err_msg=f"{name}: {col}")
    for col, key in DROP.items():
        np.testing.assert_allclose(table[col], ref["alpha_drop"][key], rtol=RTOL, err_msg=f"{name}: {col}")
    assert list(table["reversed"]) == [it in _as_list(ref["reverse"]) for it in ref["items"]]


def test_counts_and_repr():
    res = _fit("bfi_agree")
    assert res.n_obs == 2800 and res.n_items == 5
    assert res.n_missing == int(_data("bfi_agree").isna().sum().sum()) > 0
    assert res.reverse == ("A1",) and res.scale_min == 1 and res.scale_max == 6
    assert repr(res).startswith("ScaleReliability(raw_alpha=0.7")
    assert "Feldt" in res.summary(language="en")


# ----------------------------------------------------------------------------------------------
# invariances
# ----------------------------------------------------------------------------------------------
def _values(res):
    return np.array([res.raw_alpha, res.std_alpha, res.G6, res.average_r, res.signal_noise, res.raw_alpha_se,
                     res.raw_alpha_ci_low, res.raw_alpha_ci_high, res.mean, res.sd])


@pytest.mark.parametrize("name", ["attitude", "hand6x4_na"])
def test_row_order_does_not_matter(name):
    ref = REF[name]
    d = _data(name)
    rev = _as_list(ref["reverse"])
    kw = {"reverse": rev, "scale_min": ref["scale_min"], "scale_max": ref["scale_max"]} if rev else {}
    a = sa.scale_reliability(d, items=ref["items"], **kw)
    b = sa.scale_reliability(d.sample(frac=1, random_state=3), items=ref["items"], **kw)
    np.testing.assert_allclose(_values(a), _values(b), rtol=1e-12)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-12)


def test_constant_added_to_an_item_leaves_alpha_unchanged():
    d = _data("attitude")
    items = REF["attitude"]["items"]
    a = sa.scale_reliability(d, items=items)
    b = sa.scale_reliability(d.assign(rating=d["rating"] + 17.5), items=items)
    for attr in ("raw_alpha", "std_alpha", "G6", "average_r", "signal_noise", "raw_alpha_ci_low", "raw_alpha_ci_high"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-12, err_msg=attr)
    np.testing.assert_allclose(b.mean, a.mean + 17.5 / len(items), rtol=1e-12)
    for col in ("raw_r", "std_r", "r_cor", "r_drop", "raw_alpha_drop", "std_alpha_drop"):
        np.testing.assert_allclose(b.to_frame()[col], a.to_frame()[col], rtol=1e-12, err_msg=col)


def test_reverse_equals_reversing_by_hand():
    d = _data("hand6x4")
    items = ["q1", "q2", "q3", "q4"]
    a = sa.scale_reliability(d, items=items, reverse=["q3"], scale_min=1, scale_max=5)
    b = sa.scale_reliability(d.assign(q3=6 - d["q3"]), items=items)
    np.testing.assert_allclose(_values(a), _values(b), rtol=1e-12)


def test_missing_answers_are_counted_per_item():
    d = _data("hand6x4_na")
    items = ["q1", "q2", "q3", "q4"]
    res = sa.scale_reliability(d, items=items)
    assert res.n_missing == 3 and res.n_obs == 6
    assert list(res.to_frame()["n"]) == [5, 5, 6, 5]


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------
ITEMS4 = ["q1", "q2", "q3", "q4"]


@pytest.mark.parametrize("change, kwargs, fragments", [
    (None, {"items": ["q1"]}, ["argument 'items'", "at least 2"]),
    (None, {"items": "q1"}, ["argument 'items'", "list of column names"]),
    (None, {"items": ["q1", "q1", "q2"]}, ["'q1' more than once"]),
    (None, {"items": ["q1", "zz"]}, ["table 'data'", "missing column(s) ['zz']"]),
    (None, {"reverse": ["q3"]}, ["scale_min=", "scale_max="]),
    (None, {"reverse": ["zz"], "scale_min": 1, "scale_max": 5}, ["argument 'reverse'", "'zz'"]),
    (None, {"reverse": ["q3"], "scale_min": 5, "scale_max": 1}, ["scale_min (5) must be below scale_max (1)"]),
    (None, {"reverse": ["q3"], "scale_min": 1, "scale_max": 3}, ["column 'q3'", "1 row(s) (first: 3)",
                                                               "above scale_max = 3"]),
    (None, {"level": 95}, ["argument 'level'"]),
    (lambda d: d.assign(q2=d["q2"].astype(object).where(d.index != 2, "n/a")), {},
     ["table 'data', column 'q2'", "(first: 2)", "not numeric"]),
    (lambda d: d.assign(q4=d["q4"].astype(float).where(d.index != 1, np.inf)), {},
     ["column 'q4'", "(first: 1)", "infinite"]),
    (lambda d: d.assign(q1=3), {}, ["column 'q1'", "same score"]),
    (lambda d: d.assign(q2=[np.nan] * 5 + [2]), {}, ["column 'q2'", "1 respondent(s)"]),
    (lambda d: d.assign(**{c: d[c].astype(float).where(d.index != 4) for c in ITEMS4}), {},
     ["table 'data'", "1 row(s) (first: 4)", "answered none of the items"]),
    (lambda d: d.assign(q1=[1.0, 2.0, 3.0, np.nan, np.nan, np.nan], q2=[np.nan, np.nan, 4.0, 1.0, 2.0, 3.0]), {},
     ["columns 'q1' and 'q2'", "fewer than 2 respondents answered both"]),
])
def test_bad_inputs_name_the_problem(change, kwargs, fragments):
    d = _data("hand6x4")
    if change is not None:
        d = change(d)
    kw = {"items": ITEMS4, **kwargs}
    with pytest.raises(ScaleupDataError) as e:
        sa.scale_reliability(d, **kw)
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def test_not_a_table():
    with pytest.raises(ScaleupDataError, match="argument 'data' must be a pandas DataFrame"):
        sa.scale_reliability([[1, 2], [3, 4]], items=["a", "b"])
