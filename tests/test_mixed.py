"""mixed_model against lme4::lmer / lmerTest / lme4::glmer (tests/reference/ref_mixed.R -> mixed.json).

Tolerances (relative unless said otherwise) are stated next to each assertion. lme4's own optimiser
(bobyqa, default tolerances) stops ~1e-5 (REML) to ~4e-5 (ML, random slopes) away from the optimum in
theta; our optimum is polished by Newton steps, so variance-based quantities are compared at 1e-4.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from scaleup_analysis.engines import reml as reml_engine
from tests.conftest import load_reference

REF = load_reference("mixed")

# dataset -> (formula, group, slope variable)
SPECS = {
    "sleepstudy": ("Reaction ~ Days", "Subject", "Days"),
    "sleep_unbal": ("Reaction ~ Days + C(block)", "Subject", "Days"),
    "dyestuff": ("Yield ~ 1", "Batch", None),
    "dyestuff2": ("Yield ~ 1", "Batch", None),
}
# R coefficient names -> patsy names
RNAMES = {
    "(Intercept)": "Intercept",
    "Days": "Days",
    "blockb_mid": "C(block)[T.b_mid]",
    "blockc_late": "C(block)[T.c_late]",
    "period2": "C(period)[T.2]",
    "period3": "C(period)[T.3]",
    "period4": "C(period)[T.4]",
    "x": "x",
}

EXPECTED_LMM = (
    {f"{ds}|{re_}|{m}" for ds in ("sleepstudy", "sleep_unbal") for re_ in ("intercept", "slope")
     for m in ("REML", "ML")}
    | {f"{ds}|slope|{m}|tight" for ds in ("sleepstudy", "sleep_unbal") for m in ("REML", "ML")}
    | {"dyestuff|intercept|REML", "dyestuff|intercept|ML", "dyestuff2|intercept|REML"}
)
EXPECTED_GLMM = {f"{ds}|{control}" for ds in ("cbpp|intercept", "simbin|slope") for control in ("default", "tight")}
LMM_FIELDS = {"fixef", "se", "df", "t", "p", "varcorr", "sigma", "theta", "logLik", "AIC", "BIC",
              "ranef", "ranef_condsd", "ranef_groups"}
GLMM_FIELDS = {"fixef", "se", "z", "p", "theta", "logLik", "AIC", "BIC", "ranef", "ranef_condsd", "ranef_groups"}
GLMM_INTERCEPT_FIELDS = {"tau2", "MOR", "icc_latent"}


def tol(key: str) -> float:
    """1e-4 (iterative mixed models) against lme4's defaults; 1e-6 against lme4 with tight optimiser
    tolerances (then both optima agree to ~1e-8 in theta)."""
    return 1e-6 if key.endswith("|tight") else 1e-4


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def data(name: str) -> pd.DataFrame:
    return pd.DataFrame(REF["data"][name])


@lru_cache(maxsize=None)
def fit_lmm(key: str):
    ds, re_, meth = key.split("|")[:3]
    formula, group, slope = SPECS[ds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleupWarning)
        return sa.mixed_model(
            data(ds), formula, group=group, re_formula=None if re_ == "intercept" else f"1 + {slope}",
            reml=meth == "REML",
        )


@lru_cache(maxsize=None)
def fit_cbpp():
    return sa.mixed_model(data("cbpp"), "incidence ~ C(period)", group="herd", family="binomial", trials="size")


@lru_cache(maxsize=None)
def fit_simbin():
    return sa.mixed_model(data("simbin"), "y ~ x", group="site", re_formula="1 + x", family="binomial")


def ordered(res, rdict: dict) -> tuple[np.ndarray, np.ndarray]:
    names = [RNAMES[k] for k in rdict]
    return np.array(list(rdict.values()), dtype=float), names


# ------------------------------------------------------------------------------------ grid coverage
def test_grid_coverage():
    assert set(REF["lmm"]) == EXPECTED_LMM
    assert set(REF["glmm"]) == EXPECTED_GLMM
    for key, cell in REF["lmm"].items():
        assert LMM_FIELDS <= set(cell), key
        assert len(cell["df"]) == len(cell["fixef"]), key
    for key, cell in REF["glmm"].items():
        assert GLMM_FIELDS <= set(cell), key
        assert GLMM_INTERCEPT_FIELDS <= set(cell) if "|intercept|" in key else "varcorr" in cell, key
    for name in ("sleepstudy", "sleep_unbal", "dyestuff", "dyestuff2", "cbpp", "simbin", "konstantopoulos2011"):
        assert name in REF["data"]


# ------------------------------------------------------------------------------------ Gaussian LMM
@pytest.mark.parametrize("key", sorted(EXPECTED_LMM))
def test_lmm_fixed(key):
    r = REF["lmm"][key]
    res = fit_lmm(key)
    fe = res.fixed
    est, names = ordered(res, r["fixef"])
    assert list(fe.index) == names or set(fe.index) == set(names)
    fe = fe.loc[names]
    assert rel(fe["estimate"], est) < 1e-6  # GLS given theta: 1e-6
    t_ = tol(key)  # 1e-4 (iterative) or 1e-6 (tight lme4 optimum)
    assert rel(fe["se"], list(r["se"].values())) < t_
    assert rel(fe["statistic"], list(r["t"].values())) < t_
    assert rel(fe["df"], list(r["df"].values())) < t_  # Satterthwaite (lmerTest)
    # p-values: d log p / d log|t| ~ t^2 in the tail, so agreement t_ on t allows t_ * t^2 on p
    tr = np.abs(np.array(list(r["t"].values())))
    p_rel = np.abs(fe["pvalue"].to_numpy() / np.array(list(r["p"].values())) - 1)
    assert np.all(p_rel < t_ * np.maximum(1.0, tr**2))
    # the intervals are estimate -/+ qt(0.975, df) * se (lmerTest's contest(confint = TRUE))
    q = stats.t.ppf(0.975, np.array(list(r["df"].values())))
    se_r = np.array(list(r["se"].values()))
    ci_low = est - q * se_r
    # tolerance relative to the SE (a bound near 0 makes a relative error meaningless)
    assert np.max(np.abs(fe["ci_low"].to_numpy() - ci_low) / se_r) < t_


@pytest.mark.parametrize("key", sorted(EXPECTED_LMM))
def test_lmm_variance_components_and_fit(key):
    r = REF["lmm"][key]
    res = fit_lmm(key)
    vc = res.variance_components
    rv = r["varcorr"]
    assert list(vc["group"]) == rv["grp"]
    tol_var = tol(key)  # 1e-4 (lme4's default theta is ~1e-5 from the optimum) or 1e-6 (tight)
    sd_of = {t: sd for t, t2, sd in zip(rv["var1"], rv["var2"], rv["sdcor"], strict=True) if t2 == ""}
    for i, v in enumerate(rv["vcov"]):
        if v == 0:  # boundary fit (Dyestuff2): exactly 0 in both
            assert vc["variance"].iloc[i] == 0.0
            assert vc["sd"].iloc[i] == 0.0
        elif rv["var2"][i] == "":  # variances and SDs: relative
            assert abs(vc["variance"].iloc[i] / v - 1) < tol_var
            assert abs(vc["sd"].iloc[i] / rv["sdcor"][i] - 1) < tol_var
        else:  # covariances (may be ~0): relative to sd1 * sd2, i.e. absolute on the correlation scale
            scale = sd_of[rv["var1"][i]] * sd_of[rv["var2"][i]]
            assert abs(vc["variance"].iloc[i] - v) / scale < tol_var
            assert abs(vc["corr"].iloc[i] - rv["sdcor"][i]) < tol_var
    assert abs(np.sqrt(res.sigma2) / r["sigma"] - 1) < tol_var
    assert abs(res.loglik / r["logLik"] - 1) < 1e-8  # flat at the optimum: 1e-8
    # our optimum is at least as good as lme4's (up to the deviance's rounding noise)
    assert res.loglik >= r["logLik"] - 1e-10 * abs(r["logLik"])
    assert abs(res.AIC / r["AIC"] - 1) < 1e-8
    assert abs(res.BIC / r["BIC"] - 1) < 1e-8
    assert res.n_obs == r["nobs"]
    theta = np.atleast_1d(r["theta"])
    if np.all(theta > 0):
        assert rel(res.theta[theta != 0], theta[theta != 0]) < tol_var
    if key.split("|")[1] == "intercept":
        tau2, s2 = rv["vcov"][0], rv["vcov"][-1]
        assert abs(res.icc - tau2 / (tau2 + s2)) < 1e-5  # absolute (icc in [0, 1])
    else:
        assert np.isnan(res.icc)


@pytest.mark.parametrize("key", sorted(EXPECTED_LMM))
def test_lmm_site_effects(key):
    r = REF["lmm"][key]
    res = fit_lmm(key)
    se = res.random_effects
    for k, (term, vals) in enumerate(r["ranef"].items()):
        name = RNAMES[term]
        s = se[se["term"] == name]
        assert list(s["group"]) == r["ranef_groups"]
        vals = np.asarray(vals, dtype=float)
        # absolute tolerance tol x the spread of the modes (some modes are ~0: relative is meaningless)
        scale = max(np.std(vals), 1e-12)
        assert np.max(np.abs(s["estimate"].to_numpy() - vals)) < tol(key) * scale
        csd = np.asarray(r["ranef_condsd"][k], dtype=float)
        if np.all(csd > 0):
            assert rel(s["se"], csd) < tol(key)
        else:
            assert np.all(s["se"].to_numpy() == 0)
        z = stats.norm.ppf(0.975)
        assert np.allclose(s["ci_high"] - s["ci_low"], 2 * z * s["se"], rtol=1e-12)


def test_singular_fit_warns():
    with pytest.warns(ScaleupWarning, match="boundary \\(singular\\) fit"):
        res = sa.mixed_model(data("dyestuff2"), "Yield ~ 1", group="Batch")
    assert res.singular
    assert res.variance_components["variance"].iloc[0] == 0.0
    assert not fit_lmm("sleepstudy|slope|REML").singular


def test_fit_from_per_site_summaries():
    """The summary-level entry point (cross-products computed per site, e.g. by each institution)."""
    df = data("sleepstudy")
    parts = {"ZtZ": [], "ZtX": [], "Zty": [], "XtX": [], "Xty": [], "yty": []}
    for _, d in df.groupby("Subject", sort=True):
        X = np.column_stack([np.ones(len(d)), d["Days"].to_numpy(float)])
        y = d["Reaction"].to_numpy(float)
        for k, v in zip(parts, (X.T @ X, X.T @ X, X.T @ y, X.T @ X, X.T @ y, y @ y), strict=True):
            parts[k].append(v)
    fit = reml_engine.fit_lmm_from_crossprods(
        np.stack(parts["ZtZ"]), np.stack(parts["ZtX"]), np.stack(parts["Zty"]), np.stack(parts["XtX"]),
        np.stack(parts["Xty"]), np.array(parts["yty"]), len(df), reml=True,
    )
    r = REF["lmm"]["sleepstudy|slope|REML"]
    assert rel(fit.theta, r["theta"]) < 1e-4  # iterative: 1e-4
    assert rel(fit.beta, list(r["fixef"].values())) < 1e-6
    assert abs(-fit.minus2ll / 2 / r["logLik"] - 1) < 1e-8


# ------------------------------------------------------------------------------------ binomial GLMM
def _check_glmm(res, r, tol_est, tol_se, tol_var, tol_ll):
    est, names = ordered(res, r["fixef"])
    fe = res.fixed.loc[names]
    assert rel(fe["estimate"], est) < tol_est
    assert rel(fe["se"], list(r["se"].values())) < tol_se
    assert rel(fe["statistic"], list(r["z"].values())) < tol_se
    assert abs(res.loglik / r["logLik"] - 1) < tol_ll
    assert abs(res.AIC / r["AIC"] - 1) < tol_ll
    assert abs(res.BIC / r["BIC"] - 1) < tol_ll
    assert rel(res.theta, r["theta"]) < tol_var
    if "tau2" in r:  # random intercept
        assert abs(res.tau2 / r["tau2"] - 1) < tol_var
        assert abs(res.mor / r["MOR"] - 1) < tol_var
        assert abs(res.icc / r["icc_latent"] - 1) < tol_var
        ranef, condsd = {"(Intercept)": r["ranef"]}, [r["ranef_condsd"]]
    else:  # random slopes: VarCorr variances, covariance and sd/cor
        assert rel(res.variance_components["variance"], r["varcorr"]["vcov"]) < tol_var
        vc = res.variance_components
        assert rel(np.where(vc["term2"] == "", vc["sd"], vc["corr"]), r["varcorr"]["sdcor"]) < tol_var
        assert np.isnan(res.mor) and np.isnan(res.icc)
        ranef, condsd = r["ranef"], r["ranef_condsd"]
    for k, (term, vals) in enumerate(ranef.items()):
        s = res.random_effects[res.random_effects["term"] == RNAMES[term]].set_index("group").loc[r["ranef_groups"]]
        vals = np.asarray(vals)
        assert np.max(np.abs(s["estimate"].to_numpy() - vals)) < tol_var * np.std(vals)  # abs, x spread
        assert rel(s["se"], condsd[k]) < tol_var


def test_glmm_cbpp_exact_laplace():
    """glmer with tolPwrss = 1e-12 and a tight bobyqa: the exact Laplace optimum."""
    res = fit_cbpp()
    assert res.method == "Laplace" and res.converged
    # tight reference: 1e-5 on estimates, SEs (lme4's Hessian is a central difference, step 1e-4),
    # variance and modes; 1e-8 on the log-likelihood
    _check_glmm(res, REF["glmm"]["cbpp|intercept|tight"], 1e-5, 1e-5, 1e-5, 1e-8)


def test_glmm_cbpp_lme4_defaults():
    """glmer with its default controls, as users see it.

    Looser on purpose (documented in docs/divergences.md): lme4's PIRLS stops at a relative change
    of 1e-7 in the penalised deviance and evaluates log|L| with the weights of the previous iterate,
    so its Laplace deviance is 5.6e-4 above the exact one (3e-6 relative on logLik); the optimum then
    moves by <= 4e-4 (fixed effects) and 6e-4 (variance), and lme4's finite-difference Hessian of this
    slightly noisy function gives SEs within 1.3 %.
    """
    res = fit_cbpp()
    _check_glmm(res, REF["glmm"]["cbpp|intercept|default"], 1e-3, 2e-2, 2e-3, 1e-5)


def test_glmm_random_slope_exact_laplace():
    """Binary outcome, correlated random intercept and slope, glmer with tight controls."""
    res = fit_simbin()
    assert res.converged and not res.singular
    # 1e-5 (estimates, SEs, variance parameters, modes), 1e-8 (logLik), as for cbpp
    _check_glmm(res, REF["glmm"]["simbin|slope|tight"], 1e-5, 1e-5, 1e-5, 1e-8)


def test_glmm_random_slope_lme4_defaults():
    """Same model against glmer's defaults; looser for the reason given for cbpp (PIRLS tolerance):
    observed 5e-4 (fixed effects), 6e-4 (variances), 5e-3 (SEs), 1e-6 (logLik)."""
    _check_glmm(fit_simbin(), REF["glmm"]["simbin|slope|default"], 1e-3, 2e-2, 2e-3, 1e-5)


def test_glmm_bernoulli_rows_equal_events_trials():
    """0/1 rows give the same estimates as the aggregated events/trials (lme4 does too)."""
    cb = data("cbpp")
    rows = []
    for r in cb.itertuples(index=False):
        rows += [(r.herd, r.period, 1)] * r.incidence + [(r.herd, r.period, 0)] * (r.size - r.incidence)
    bern = pd.DataFrame(rows, columns=["herd", "period", "y"])
    res = sa.mixed_model(bern, "y ~ C(period)", group="herd", family="binomial")
    agg = fit_cbpp()
    ref = REF["glmm"]["cbpp|intercept|tight"]
    est, names = ordered(res, ref["fixef"])
    assert rel(res.fixed.loc[names, "estimate"], est) < 1e-5  # same tolerance as the tight cell
    assert abs(res.tau2 / ref["tau2"] - 1) < 1e-5
    # the log-likelihoods differ by the binomial coefficients only
    const = np.sum(
        stats.binom.logpmf(cb["incidence"], cb["size"], 0.5) - (cb["size"] * np.log(0.5))
    )
    assert abs(agg.loglik - const - res.loglik) < 1e-6  # absolute, on a value of ~ -100


# ------------------------------------------------------------------------------------ recovery
def test_recovery_random_slope_model():
    """Simulated random intercept + slope data: the 95 % intervals cover the true fixed effects."""
    rng = np.random.default_rng(20261123)
    G, m = 40, 12
    site = np.repeat(np.arange(G), m)
    x = rng.normal(size=G * m)
    b0 = rng.normal(0, np.sqrt(0.5), G)
    b1 = rng.normal(0, np.sqrt(0.1), G)
    y = 2.0 + 0.7 * x + b0[site] + b1[site] * x + rng.normal(0, 1.0, G * m)
    df = pd.DataFrame({"site": site.astype(str), "x": x, "y": y})
    res = sa.mixed_model(df, "y ~ x", group="site", re_formula="1 + x")
    fe = res.fixed
    assert fe.loc["Intercept", "ci_low"] < 2.0 < fe.loc["Intercept", "ci_high"]
    assert fe.loc["x", "ci_low"] < 0.7 < fe.loc["x", "ci_high"]
    # variance estimates within 3.5 sampling SDs of the truth (SDs of the REML estimates over 15
    # replicates of this design, seeds 0-14: 0.15, 0.056, 0.041 and 0.082; their means were 0.485,
    # 0.095, -0.014 and 0.994, i.e. no visible bias)
    vc = res.variance_components.set_index(["term1", "term2"])["variance"]
    assert abs(vc[("Intercept", "")] - 0.5) < 3.5 * 0.15
    assert abs(vc[("x", "")] - 0.1) < 3.5 * 0.056
    assert abs(vc[("Intercept", "x")] - 0.0) < 3.5 * 0.041
    assert abs(vc[("", "")] - 1.0) < 3.5 * 0.082


# ------------------------------------------------------------------------------------ invariances
def test_row_order_and_site_relabelling():
    df = data("sleep_unbal")
    base = fit_lmm("sleep_unbal|slope|REML")
    shuffled = df.sample(frac=1.0, random_state=np.random.RandomState(7)).copy()
    shuffled["Subject"] = "s" + shuffled["Subject"]
    res = sa.mixed_model(shuffled, "Reaction ~ Days + C(block)", group="Subject", re_formula="1 + Days")
    assert np.allclose(res.fixed["estimate"], base.fixed["estimate"], rtol=1e-7)
    # the optimum is located to ~1e-6 relative in theta (noise floor of the deviance), hence 1e-5 here
    assert np.allclose(res.variance_components["variance"], base.variance_components["variance"], rtol=1e-5)
    assert abs(res.loglik - base.loglik) < 1e-8


# ------------------------------------------------------------------------------------ API
def test_result_api():
    res = fit_lmm("sleepstudy|slope|REML")
    tidy = res.to_frame()
    assert list(tidy.columns) == ["type", "group", "term", "estimate", "se", "statistic", "df", "pvalue",
                                  "ci_low", "ci_high"]
    assert (tidy["type"] == "fixed").sum() == 2 and (tidy["type"] == "ran_pars").sum() == 4
    text = res.summary()
    assert "REML" in text and "Subject" in text
    ax = res.plot_caterpillar()
    assert isinstance(ax, matplotlib.axes.Axes)
    ax2 = res.plot_caterpillar(term="Days")
    assert len(ax2.get_yticklabels()) == 18
    assert "REML" in res.summary(language="fr") and "Effets aléatoires" in res.summary(language="fr")
    text = repr(res)
    assert text.startswith("MixedModelResult(family='gaussian', method='REML'") and "\n" not in text
    with pytest.raises(dataclasses_frozen_error()):
        res.loglik = 0.0  # type: ignore[misc]


def test_caterpillar_with_many_sites_names_the_extremes_only():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    site = np.repeat([f"S{i:04d}" for i in range(120)], 6)
    data = pd.DataFrame({"site_id": site, "y": np.repeat(rng.normal(size=120), 6) + rng.normal(size=720)})
    res = sa.mixed_model(data, "y ~ 1", group="site_id")
    sites = pd.DataFrame({"site_id": [f"S{i:04d}" for i in range(120)], "rss_code": ["05"] * 60 + ["13"] * 60})
    ax = res.plot_caterpillar(sites=sites)
    assert ax.figure.get_size_inches()[1] <= 8
    assert not [t for t in ax.get_yticklabels() if t.get_text()]  # no per-site tick labels
    named = [t.get_text() for t in ax.texts]
    effects = res.random_effects.sort_values("estimate")["group"].tolist()
    assert len(named) == 10 and all(any(t.startswith(g) for t in named) for g in effects[:5] + effects[-5:])
    assert any("Estrie (05)" in t for t in named) or any("Laval (13)" in t for t in named)
    assert "120 sites ordered by estimate" in ax.get_ylabel()
    plt.close("all")


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_missing_rows_warn():
    df = data("sleepstudy")
    df.loc[[3, 10], "Reaction"] = np.nan
    with pytest.warns(RowsOmittedWarning, match="2 row"):
        res = sa.mixed_model(df, "Reaction ~ Days", group="Subject")
    assert res.n_obs == 178


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"group": "nope"}, "'nope'.*group"),
        ({"group": "Subject", "re_formula": "1 | Subject"}, "must not contain"),
        ({"group": "Subject", "family": "poisson"}, "family"),
        ({"group": "Subject", "level": 1.5}, "level"),
        ({"group": "Subject", "trials": "Days"}, "only used"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ScaleupDataError, match=match):
        sa.mixed_model(data("sleepstudy"), "Reaction ~ Days", **kwargs)


def test_binomial_bad_outcome():
    cb = data("cbpp")
    bad = cb.copy()
    bad.loc[0, "incidence"] = 99
    with pytest.raises(ScaleupDataError, match="1 row"):
        sa.mixed_model(bad, "incidence ~ C(period)", group="herd", family="binomial", trials="size")
    with pytest.raises(ScaleupDataError, match="0/1"):
        sa.mixed_model(cb, "incidence ~ C(period)", group="herd", family="binomial")


# ------------------------------------------------------------------------------------ properties
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.floats(0.01, 100.0), b=st.floats(-1000.0, 1000.0), reml=st.booleans())
def test_affine_outcome_transformation(a, b, reml):
    """y -> a y + b: slope x a, intercept a b0 + b, variances x a^2, slope t and all df unchanged,
    logLik shifted by -(n - p) log a (REML) or -n log a (ML)."""
    df = data("sleepstudy")
    base = fit_lmm(f"sleepstudy|slope|{'REML' if reml else 'ML'}")
    df["Reaction"] = a * df["Reaction"] + b
    res = sa.mixed_model(df, "Reaction ~ Days", group="Subject", re_formula="1 + Days", reml=reml)
    fe, fb = res.fixed, base.fixed
    # 1e-5: both fits locate the optimum to ~1e-6 relative in theta
    assert np.isclose(fe.loc["Days", "estimate"], a * fb.loc["Days", "estimate"], rtol=1e-5)
    assert np.isclose(fe.loc["Intercept", "estimate"], a * fb.loc["Intercept", "estimate"] + b, rtol=1e-5)
    assert np.allclose(res.variance_components["variance"], a**2 * base.variance_components["variance"],
                       rtol=1e-5)
    assert np.isclose(fe.loc["Days", "statistic"], fb.loc["Days", "statistic"], rtol=1e-5)
    assert np.allclose(fe["df"], fb["df"], rtol=1e-5)
    shift = -(res.n_obs - (2 if reml else 0)) * np.log(a)
    assert abs(res.loglik - (base.loglik + shift)) < 1e-7 * abs(base.loglik)


# ------------------------------------------------------------------------------------ magnitudes
@pytest.mark.parametrize("column, what", [("Reaction", "the outcome"), ("Days", "the fixed effects")])
def test_spread_below_1e50_refused_before_fitting(column, what):
    """y * 1e-300 (or a covariate * 1e-60): squares of the differences underflow; refused with the column
    and the way out, and no numpy RuntimeWarning or ConvergenceWarning on the way."""
    df = data("sleepstudy")
    df[column] = df[column] * (1e-300 if column == "Reaction" else 1e-60)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(ScaleupDataError) as exc:
            sa.mixed_model(df, "Reaction ~ Days", group="Subject")
    assert not rec, [str(w.message) for w in rec]
    msg = str(exc.value)
    for part in (f"mixed_model: table 'data', {what} ('{column}'): the values differ by at most",
                 "across the 180 row(s) (first: 0, 1, 2", "underflow in double precision",
                 "rescale it (e.g. multiply it by a power of 10)"):
        assert part in msg, msg


# ------------------------------------------------------------------------------------ units of measure
UNIT_SCALES = (1e-12, 1e-5, 1.0, 1e5, 1e12)


def _doc_example() -> pd.DataFrame:
    """The data of mixed_model's docstring example (8 sites x 10 rows; df 7.01 and 71.7)."""
    rng = np.random.default_rng(1)
    site = np.repeat(np.arange(8), 10)
    df = pd.DataFrame({"site": site, "x": rng.normal(size=80)})
    df["y"] = 1 + 0.5 * df["x"] + rng.normal(size=8)[site] + rng.normal(size=80)
    return df


def _unit_fit(case: str, column: str, c: float):
    """Fit of ``case`` with ``column`` multiplied by ``c``; returns (fixed effects, warnings raised)."""
    if case == "sleepstudy_slope":
        df, formula, group, re_formula = data("sleepstudy"), "Reaction ~ Days", "Subject", "1 + Days"
    elif case == "dyestuff2_singular":
        df, formula, group, re_formula = data("dyestuff2"), "Yield ~ 1", "Batch", None
    else:
        df, formula, group, re_formula = _doc_example(), "y ~ x", "site", None
    df[column] = df[column] * c
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        if case == "doc_summary":  # the same engine through per-site sums
            res = sa.mixed_model_from_summary(sa.summarize(df, by="site", covariates=["x"]), formula, group=group)
        else:
            res = sa.mixed_model(df, formula, group=group, re_formula=re_formula)
    return res.fixed, [f"{w.category.__name__}: {w.message}" for w in rec]


@pytest.mark.parametrize("case, column", [
    ("doc", "y"), ("doc", "x"), ("doc_summary", "y"), ("doc_summary", "x"),
    ("sleepstudy_slope", "Reaction"), ("dyestuff2_singular", "Yield"),
])
def test_satterthwaite_free_of_units(case, column):
    """Outcome (or fixed-effect covariate) in other units, y -> c y (x -> c x) for c = 1e-12 .. 1e12:
    estimates and SEs scale by c (the coefficient of x by 1/c), t, Satterthwaite df and p are
    unchanged, and no warning appears that c = 1 does not give (numpy RuntimeWarning included).
    Before, derivatives in (theta, sigma) with numDeriv's absolute step for |sigma| < 1.8e-5 and an
    absolute eigenvalue cut-off gave df -> 0 (p -> 1) for small units and df far too large, or inf
    with a division-by-zero warning (singular fit), for large ones."""
    base, base_warnings = _unit_fit(case, column, 1.0)
    # (mixed_model_from_summary checks the rank of X'X at unit diagonal: x * 1e+-12 is not collinear)
    for c in UNIT_SCALES:
        fe, caught = _unit_fit(case, column, c)
        assert caught == base_warnings, (c, caught)
        # how each coefficient scales: all by c (outcome), only the covariate's by 1/c (covariate)
        mult = np.full(len(fe), c) if column != "x" else np.where(fe.index == "x", 1.0 / c, 1.0)
        # estimates, SEs, t: 1e-8 (both fits locate the same optimum to ~1e-10; observed <= 5e-11)
        assert rel(fe["estimate"], mult * base["estimate"]) < 1e-8, c
        assert rel(fe["se"], mult * base["se"]) < 1e-8, c
        assert rel(fe["statistic"], base["statistic"]) < 1e-8, c
        # df: 1e-6 (numerical derivatives, central differences + Richardson; observed <= 5e-9)
        assert rel(fe["df"], base["df"]) < 1e-6, c
        # p: 1e-8, except that in the far tail p carries the df's numerical error (up to 2e-8)
        # amplified by |d log p / d log df| (29 for sleepstudy's intercept: t = 36.8, p = 1e-17)
        h = 1e-6
        dlogp = np.abs(np.log(stats.t.sf(np.abs(base["statistic"]), base["df"] * (1 + h)))
                       - np.log(stats.t.sf(np.abs(base["statistic"]), base["df"] * (1 - h)))) / (2 * h)
        p_tol = np.maximum(1e-8, 2e-8 * np.asarray(dlogp))
        assert np.all(np.abs(fe["pvalue"] / base["pvalue"] - 1).to_numpy() < p_tol), c
    if case.startswith("doc"):  # the docstring example's numbers
        assert np.allclose(base["df"], [7.0077, 71.740], rtol=1e-4) and not base_warnings
