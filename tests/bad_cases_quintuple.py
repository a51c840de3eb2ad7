"""Bad-input cases of the quintuple-aim functions (issue 16): periods given in a form that used to be
read silently as other periods."""

from __future__ import annotations

from functools import lru_cache

from bad_input_support import E, Bad, sim

import scaleup_analysis as sa


@lru_cache(maxsize=1)
def _panel():
    return sa.quintuple_aim_panel(sim(), comparison=("phase", "not-adopted"))


def _change(baseline):
    return lambda: sa.change_from_baseline(_panel(), baseline_periods=baseline, followup_periods=[7, 8])


CASES: list[Bad] = [
    Bad("quintuple_periods_as_text", "change_from_baseline", "baseline periods given as the text '12' (was read as periods 1 and 2)",
        _change("12"), ("argument 'baseline_periods'", "not the text '12'", "range(1, 5)"), E),
    Bad("quintuple_periods_fractional", "change_from_baseline", "a fractional period (1.5, was truncated to 1)",
        _change([1.5, 2]), ("argument 'baseline_periods'", "whole numbers", "1.5"), E),
    Bad("quintuple_periods_bool", "change_from_baseline", "a boolean as a period (True, was read as period 1)",
        _change([True]), ("argument 'baseline_periods'", "whole numbers", "True"), E),
    Bad("quintuple_periods_scalar", "change_from_baseline", "one period as a bare integer (3)",
        _change(3), ("argument 'baseline_periods'", "give the periods as integers", "not 3"), E),
]
