"""Silent wrong answers of the data layer (issue 16): the right value, or an error, never a wrong value.

The bad-input cases themselves (messages) are in ``tests/bad_cases_data.py``; these tests check the
boundaries (what is still accepted and unchanged) and the facts the messages rely on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_cases_data import LONG, MULTILINE_CSV, _at  # noqa: E402
from bad_input_support import load_dir, only, sim, tbl, write_file  # noqa: E402

import scaleup_analysis as sa  # noqa: E402
from scaleup_analysis.data.schemas import _MAX_PERIOD  # noqa: E402


def test_padded_site_is_refused_not_counted_twice():
    """'S0005 ' beside 'S0005' would be two sites: the error is in sites only, not a cascade of
    unknown-site errors in every table that refers to S0005."""
    with pytest.raises(sa.ScaleupDataError) as info:
        load_dir(only("sites", lambda t: _at(t, 4, "site_id", "S0005 ")))
    msg = str(info.value)
    assert "1 problem in 1 table" in msg
    assert "not found in sites.site_id" not in msg


def test_padded_free_text_is_kept():
    """Blanks around free text (a name) are not an identifier problem: the value is kept as given."""
    regions = tbl("regions").assign(name=lambda t: t["name"].where(t.index != 0, "Montréal "))
    assert sa.validate_table(regions, "regions")["name"].iloc[0] == "Montréal "


def test_unpadded_tables_unchanged():
    """The new checks leave valid tables exactly as before (same typed values)."""
    tables = sim()
    out = sa.validate_tables(tables)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(out[name].reset_index(drop=True), sa.validate_table(df, name).reset_index(drop=True))
    assert len(out["sites"]) == 36 and out["sites"]["site_id"].is_unique


def test_dates_as_periods_are_not_read_as_nanoseconds():
    t = tbl("delivery")
    dated = t.assign(period=pd.Timestamp("2020-01-01") + pd.to_timedelta(t["period"] * 91, unit="D"))
    assert pd.to_numeric(dated["period"]).iloc[0] > 1e18  # what a plain conversion would have used
    with pytest.raises(sa.ScaleupDataError) as info:
        sa.validate_table(dated, "delivery")
    msg = str(info.value)
    assert "a date or time where a number is expected" in msg
    assert "is repeated" not in msg  # dates read as missing are not reported as repeated keys


@pytest.mark.parametrize("period, ok", [(_MAX_PERIOD, True), (_MAX_PERIOD + 1, False), (10**12, False)])
def test_period_bound(period, ok):
    t = _at(tbl("delivery"), 0, "period", period)
    if ok:
        assert sa.validate_table(t, "delivery")["period"].iloc[0] == period
    else:
        with pytest.raises(sa.ScaleupDataError, match="must be <= 10000"):
            sa.validate_table(t, "delivery")


def test_adoption_at_last_period_accepted_after_it_refused():
    sites = tbl("sites")
    last = int(sim()["outcomes"]["period"].max())
    at_last = _at(sites, 0, "adoption_period", last)
    assert sa.validate_tables({**sim(), "sites": at_last})["sites"]["adoption_period"].iloc[0] == last
    with pytest.raises(sa.ScaleupDataError, match=f"an adoption period after {last}, the last period"):
        sa.validate_tables({**sim(), "sites": _at(sites, 0, "adoption_period", last + 1)})
    # sites alone: no panel to compare with, only the absolute bound
    assert sa.validate_table(_at(sites, 0, "adoption_period", last + 1), "sites")["adoption_period"].iloc[0] == last + 1


def test_zero_rows():
    with pytest.raises(sa.ScaleupDataError, match="no rows"):
        sa.validate_table(tbl("outcomes").iloc[:0], "outcomes")
    # an optional table with no rows (nothing recorded) stays valid
    assert len(sa.validate_table(tbl("adaptations").iloc[:0], "adaptations")) == 0


def test_dose_is_a_proportion():
    """delivered <= planned is what makes delivered/planned a proportion; equality is accepted."""
    d = tbl("delivery")
    eq = d.assign(sessions_delivered=d["sessions_planned"])
    out = sa.validate_table(eq, "delivery")
    assert (out["sessions_delivered"] / out["sessions_planned"].where(out["sessions_planned"] > 0)).max() <= 1
    with pytest.raises(sa.ScaleupDataError, match="sessions_delivered cannot exceed sessions_planned"):
        sa.validate_table(_at(d, 0, "sessions_delivered", int(d["sessions_planned"].iloc[0]) + 1), "delivery")


def test_n_zero_proportion_kept_mean_refused():
    o = tbl("outcomes")
    prop = o.index[o["events"].notna()][0]
    mean = o.index[o["mean"].notna()][0]
    ok = o.copy()
    ok.loc[prop, ["n", "events"]] = 0
    assert sa.validate_table(ok, "outcomes").loc[prop, "n"] == 0  # 0 events out of 0: kept as before
    with pytest.raises(sa.ScaleupDataError, match="no mean over n = 0"):
        sa.validate_table(_at(o, mean, "n", 0), "outcomes")


def test_line_numbers_after_blank_lines_and_multiline_cells():
    csv = MULTILINE_CSV + '08,"Three\nline\nname",nowhere\n'
    with pytest.raises(sa.ScaleupDataError) as info:
        sa.load_table(write_file("regions.csv", csv))
    assert "file line 7: 'megalopolis', file line 10: 'nowhere'" in str(info.value)


def test_long_value_not_echoed():
    with pytest.raises(sa.ScaleupDataError) as info:
        sa.load_table(write_file("regions.csv", f"rss_code,name,settlement_type\n06,a,{LONG}\n"))
    assert len(str(info.value)) < 2000


def test_simulate_refuses_at_once():
    t0 = time.perf_counter()
    with pytest.raises(sa.ScaleupDataError, match="simulation too large"):
        sa.simulate_scaleup(n_sites=10**7, n_periods=10**6)
    assert time.perf_counter() - t0 < 5


def test_simulate_size_estimate_is_an_upper_bound():
    """The row estimate behind the limit is not below the rows actually built."""
    from scaleup_analysis.data.simulate import _check_params

    kw = dict(n_sites=40, n_periods=10, patients_per_site_period=5, sessions_rated=3)
    p = _check_params(1, kw)
    estimate = p["n_sites"] * p["n_periods"] * (1 + 6 + 6 * p["sessions_rated"] + p["patients_per_site_period"])
    tables = sa.simulate_scaleup(seed=1, **kw).tables
    built = sum(len(tables[t]) for t in ("delivery", "outcomes", "fidelity_ratings", "encounters"))
    assert built <= estimate
    assert np.isclose(built, estimate, rtol=0.5)
