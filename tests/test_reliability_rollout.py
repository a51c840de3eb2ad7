"""Reliability of the rollout, fidelity, adaptation, monitoring and summary functions (issue 16): no raw
numpy ``RuntimeWarning`` over their bad-input cases, and the right value where an input used to give a
silent wrong answer (checked by hand or against an independent computation)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from bad_cases_rollout import CASES, did_panel, fid, its_df, outcomes_ho, sw_design
from bad_input_support import tbl

import scaleup_analysis as sa


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_raw_runtime_warning(case):
    """Every case ends in our error or warning, and no numpy RuntimeWarning reaches the user."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            case.call()
        except sa.ScaleupDataError:
            pass
    raw = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not raw, raw


def test_its_maxlags_bound_and_value():
    """maxlags up to n - 1 gives statsmodels' HAC standard error; n and beyond are refused."""
    d = its_df()
    t, y = d["t"].to_numpy(float), d["y"].to_numpy(float)
    post = (t >= 13).astype(float)
    X = np.column_stack([np.ones_like(t), t, post, (t - 13) * post])
    ref = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 23, "use_correction": False})
    res = sa.interrupted_time_series(d, "t", "y", 13, maxlags=23)
    assert res.level_change_se == pytest.approx(ref.bse[2], rel=1e-10)
    with pytest.raises(sa.ScaleupDataError, match="at most 23"):
        sa.interrupted_time_series(d, "t", "y", 13, maxlags=24)


def test_staggered_did_constant_outcome_zero_att_with_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(sa.ScaleupWarning, match="constant"):
            res = sa.staggered_did(did_panel(y=3.0), "y", "site_id", "period", "adoption_period", n_boot=0)
    assert (res.att_gt["att"] == 0).all()
    assert res.att_gt["se"].isna().all()
    with pytest.warns(sa.ScaleupWarning, match="standard error not estimable"):
        agg = res.aggregate("simple")
    assert agg.overall_att == 0


def test_twfe_constant_outcome_no_division_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(sa.ScaleupWarning, match="standard error is 0"):
            res = sa.twfe_did(did_panel(y=3.0), "y", "site_id", "period", "adoption_period")
    assert res.att == pytest.approx(0, abs=1e-12)
    assert np.isnan(res.coef["statistic"]).all()


def test_fidelity_drift_slopes_unchanged_and_short_sites_named():
    """Sites with 3+ periods: slope = least-squares slope (np.polyfit); sites with 2 are named in a warning."""
    d = fid().dropna(subset=["adherence"])
    first = d["site_id"].iloc[0]
    keep = (d["site_id"] != first) | (d.groupby("site_id").cumcount() < 2)  # the first site keeps 2 periods
    d = d[keep]
    with pytest.warns(sa.ScaleupWarning, match="fewer than 3 periods") as rec:
        res = sa.fidelity_drift(d)
    per_site = d.groupby("site_id")["period"].size()
    short = per_site[per_site < 3].index
    assert all(str(s) in str(rec[0].message) for s in list(short)[:5])
    for s, g in d.groupby("site_id"):
        if len(g) >= 2:
            slope = np.polyfit(g["period"], g["adherence"], 1)[0]
            assert res.table.set_index("site_id").loc[s, "slope"] == pytest.approx(slope, rel=1e-9, abs=1e-12)


def test_adaptation_panel_missing_mean_keeps_other_rows():
    """One missing mean of the indicator used to switch the whole column to events / n (all missing for
    a mean indicator), dropping every site-period; now only that site-period is left out."""
    o = tbl("outcomes")
    row = int(np.flatnonzero(o["indicator_id"] == "HO_Y")[0])
    with pytest.warns(sa.RowsOmittedWarning, match="1 site-period"):
        with_nan = sa.adaptation_effects(outcomes_ho("mean", np.nan), tbl("adaptations"), tbl("sites"),
                                         indicator="HO_Y", inference="cluster")
    without = sa.adaptation_effects(o.drop(index=o.index[row]), tbl("adaptations"), tbl("sites"),
                                    indicator="HO_Y", inference="cluster")
    assert with_nan.to_frame().equals(without.to_frame())


def test_summarize_number_keys_of_mixed_numpy_types_accepted():
    """int and numpy.int64 keys in an object column are one kind (numbers): same summary as int keys."""
    e = tbl("encounters").iloc[:200].copy()
    codes = pd.factorize(e["site_id"])[0]
    plain = e.assign(site_id=codes)
    mixed = e.assign(site_id=pd.Series([int(c) if i % 2 else np.int64(c) for i, c in enumerate(codes)],
                                       index=e.index, dtype=object))
    a = sa.summarize(plain)
    b = sa.summarize(mixed)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_power_sim_estimates_do_not_depend_on_the_cost_check():
    """The cost check times the first replicates of the run itself: the draws stay in order, so a
    shorter run is a prefix of a longer one with the same seed."""
    kw = dict(sigma2=1.0, icc=0.05, m=10, seed=3)
    long = sa.stepped_wedge_power_sim(sw_design(), 0.3, n_sim=60, **kw)
    short = sa.stepped_wedge_power_sim(sw_design(), 0.3, n_sim=7, **kw)
    np.testing.assert_array_equal(long.estimates[:7], short.estimates)


def test_classify_fidelity_infinite_is_not_high():
    with pytest.raises(sa.ScaleupDataError, match="outside"):
        sa.classify_fidelity([np.inf])
    assert sa.classify_fidelity([0.9, np.nan]).tolist() == ["high", np.nan]
