"""Issue 16, models area: right values where a silent wrong answer was possible, and no raw numpy
``RuntimeWarning`` from meta-analysis, mixed models, agreement or effect sizes on hostile inputs."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from bad_cases_models import CASES
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

import scaleup_analysis as sa

ORDER = ["low", "medium", "high"]
RATER_A = ["low", "low", "medium", "medium", "high", "high", "low", "medium", "high", "medium", "low", "high"]
RATER_B = ["low", "medium", "medium", "high", "high", "medium", "low", "medium", "high", "low", "low", "low"]


def _independent_weighted_kappa(a, b, order):
    """Linear-weighted kappa by statsmodels from the crosstab in the given order (disagreement weights |i - j|)."""
    table = pd.crosstab(pd.Categorical(a, order), pd.Categorical(b, order), dropna=False).to_numpy()
    return sm_cohens_kappa(table, weights=np.abs(np.subtract.outer(range(3), range(3)))).kappa


def test_weighted_kappa_text_codes_with_order_is_right():
    data = pd.DataFrame({"a": RATER_A, "b": RATER_B})
    expected = _independent_weighted_kappa(RATER_A, RATER_B, ORDER)
    res = sa.cohen_kappa(data, "a", "b", weights="linear", categories=ORDER)
    assert res.kappa == pytest.approx(expected, rel=1e-12)  # closed form
    assert res.kappa == pytest.approx(0.4375, rel=1e-12)  # by hand: po = 0.791667, pe = 0.62963
    # the alphabetical order (high < low < medium) gives another number: it must never be used silently
    alphabetical = _independent_weighted_kappa(RATER_A, RATER_B, sorted(ORDER))
    assert abs(alphabetical - expected) > 0.1
    with pytest.raises(sa.ScaleupDataError, match="need the order of the categories"):
        sa.cohen_kappa(data, "a", "b", weights="linear")


def test_weighted_kappa_ordered_categoricals_use_their_order():
    dtype = pd.CategoricalDtype(ORDER, ordered=True)
    data = pd.DataFrame({"a": RATER_A, "b": RATER_B}).astype(dtype)
    res = sa.cohen_kappa(data, "a", "b", weights="quadratic")
    table = pd.crosstab(pd.Categorical(RATER_A, ORDER), pd.Categorical(RATER_B, ORDER), dropna=False).to_numpy()
    expected = sm_cohens_kappa(table, weights=np.subtract.outer(range(3), range(3)) ** 2).kappa
    assert res.kappa == pytest.approx(expected, rel=1e-12)
    assert list(res.table.index) == ORDER


def test_unweighted_kappa_on_text_codes_still_runs():
    data = pd.DataFrame({"a": RATER_A, "b": RATER_B})
    table = pd.crosstab(pd.Categorical(RATER_A, ORDER), pd.Categorical(RATER_B, ORDER), dropna=False).to_numpy()
    assert sa.cohen_kappa(data, "a", "b").kappa == pytest.approx(sm_cohens_kappa(table).kappa, rel=1e-12)


def _dl_exact(y, v):
    """DerSimonian-Laird tau^2 in exact rational arithmetic."""
    w = [1 / Fraction(float(x)) for x in v]
    yf = [Fraction(float(x)) for x in y]
    W = sum(w)
    mu = sum(a * b for a, b in zip(w, yf)) / W
    Q = sum(a * (b - mu) ** 2 for a, b in zip(w, yf))
    c = W - sum(a * a for a in w) / W
    return float(max(Fraction(0), (Q - (len(y) - 1)) / c))


@pytest.mark.parametrize("ratio", [1e-4, 1e-6, 1e-8])
def test_meta_dl_tau2_right_when_one_weight_dominates_within_the_limit(ratio):
    rng = np.random.default_rng(1)
    y, v = rng.normal(0.5, 0.3, 6), rng.uniform(0.02, 0.1, 6)
    v[0] *= ratio
    res = sa.meta_analysis(pd.DataFrame({"yi": y, "vi": v}), method="DL")
    assert res.tau2 == pytest.approx(_dl_exact(y, v), rel=1e-6)  # the catalogue's tolerance for meta-analysis


def test_meta_refuses_where_precision_is_lost():
    rng = np.random.default_rng(1)
    y, v = rng.normal(0.5, 0.3, 6), rng.uniform(0.02, 0.1, 6)
    v[0] *= 1e-14  # float64 gave tau2 off by 5e-4 relative, 1e-16 a raw math domain error
    with pytest.raises(sa.ScaleupDataError, match="weighs over"):
        sa.meta_analysis(pd.DataFrame({"yi": y, "vi": v}), method="DL")


def test_mixed_model_one_row_per_group_follows_lme4():
    rng = np.random.default_rng(4)
    one = pd.DataFrame({"site": range(10), "x": rng.normal(size=10), "y": rng.normal(size=10)})
    with pytest.raises(sa.ScaleupDataError, match="must be < the number of observations"):
        sa.mixed_model(one, "y ~ x", group="site")
    # binomial events/trials with one row per group is allowed, as glmer (allow.n = TRUE)
    one["n"], one["e"] = 20, rng.integers(2, 18, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.ScaleupWarning)
        res = sa.mixed_model(one, "e ~ x", group="site", family="binomial", trials="n")
    assert res.n_groups == 10


def test_models_valid_input_unchanged():
    data = pd.DataFrame({"yi": [0.10, 0.30, 0.35, 0.65, 0.45, 0.15], "vi": [0.03, 0.03, 0.05, 0.01, 0.05, 0.02]})
    res = sa.meta_analysis(data, method="REML")
    assert (round(res.estimate, 4), round(res.tau2, 4)) == (0.3463, 0.0331)  # the docstring's values


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_raw_runtime_warning(case):
    """Every hostile input of the area: our error or warning, never a numpy RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.ScaleupWarning)
        warnings.simplefilter("error", RuntimeWarning)
        try:
            case.call()
        except sa.ScaleupDataError:
            pass
