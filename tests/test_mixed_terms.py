"""mixed_model with lme4 random terms in the formula: crossed, nested, uncorrelated, several terms.

Reference: lme4::lmer + lmerTest (Satterthwaite df) run with tight optimiser control
(``tests/reference/ref_reterms.R`` -> ``reterms.json``: nloptwrap with xtol_rel = 1e-14, so lme4's theta
is its optimum to ~1e-9) on Penicillin (crossed), Pastes (nested), sleepstudy ((Days || Subject) and
(Days | Subject)), a simulated stepped-wedge trial (site + site:period, and site crossed with period)
and a simulated three-level (1 | region/site) model with a covariate; REML and ML. Tolerances are
stated next to each assertion (1e-6 relative on the estimates; largest deviations observed: beta
3e-8, SEs and t 1.3e-7, Satterthwaite df 2.9e-7, p 7.7e-6 (allowed 1e-6 t^2), theta 1.4e-7 relative to
the largest theta, variances 5.2e-7, sigma 7e-9, logLik 3e-15, conditional modes 3.9e-7 of their spread,
conditional SDs 9e-8; our criterion at lme4's theta equals lme4's to 6e-15).

The engine is also checked without R against the dense marginal likelihood (``y ~ N(X beta, sigma^2
(I + Z Lambda Lambda' Z'))``) and the dense factorisation of ``Lambda' Z'WZ Lambda + I``.
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
from scaleup_analysis.engines.terms import Term, TermsLMM, fit_terms_lmm
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from scaleup_analysis.heterogeneity import mixed as mixed_mod
from scaleup_analysis.heterogeneity._reterms import split_formula
from tests.conftest import load_reference

REF = load_reference("reterms")
MODELS = ("penicillin|crossed", "pastes|nested", "sleepstudy|uncorrelated", "sleepstudy|correlated",
          "stepped_wedge|site_period", "stepped_wedge|crossed", "nested3|nested")
EXPECTED = {f"{m}|{meth}" for m in MODELS for meth in ("REML", "ML")}
FIELDS = {"fixef", "fixef_names", "se", "df", "t", "p", "varcorr", "sigma", "theta", "criterion", "logLik",
          "AIC", "BIC", "singular", "ngrps", "nobs", "ranef", "formula", "dataset"}
TOL = 1e-6  # lme4 with tight control: both optima agree to ~1e-7 in theta (the deviance is flat to 1e-13)


def rname(name: str) -> str:
    """R coefficient / term names -> patsy's."""
    if name == "(Intercept)":
        return "Intercept"
    if name.startswith("factor(period)"):
        return f"C(period)[T.{name[len('factor(period)'):]}]"
    return name


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def frame(name: str) -> pd.DataFrame:
    return pd.DataFrame(REF["data"][name])


def cell_of(key: str) -> dict:
    """The reference cell, length-1 vectors (unboxed by jsonlite) as lists."""
    r = dict(REF["lmm"][key])
    for k in ("fixef_names", "fixef", "se", "df", "t", "p", "theta"):
        r[k] = r[k] if isinstance(r[k], list) else [r[k]]
    return r


@lru_cache(maxsize=None)
def fit(key: str):
    cell = REF["lmm"][key]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScaleupWarning)  # none of these fits is singular
        return sa.mixed_model(frame(cell["dataset"]), cell["formula"], reml=key.endswith("|REML"))


def test_grid_coverage():
    assert set(REF["lmm"]) == EXPECTED
    for key, cell in REF["lmm"].items():
        assert FIELDS <= set(cell), key
        assert not cell["singular"], key
    assert set(REF["data"]) == {"penicillin", "pastes", "sleepstudy", "stepped_wedge", "nested3"}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_fixed_effects(key):
    r = cell_of(key)
    fe = fit(key).fixed.loc[[rname(n) for n in r["fixef_names"]]]
    assert rel(fe["estimate"], r["fixef"]) < TOL  # 1e-6 (observed <= 3e-8)
    assert rel(fe["se"], r["se"]) < TOL  # 1e-6 (observed <= 1.3e-7)
    assert rel(fe["statistic"], r["t"]) < TOL
    assert rel(fe["df"], r["df"]) < TOL  # Satterthwaite (lmerTest), observed <= 3e-7
    # p-values: d log p / d log|t| ~ t^2 in the tail, so TOL on t allows TOL * t^2 on p
    t = np.abs(np.asarray(r["t"]))
    assert np.all(np.abs(fe["pvalue"].to_numpy() / np.asarray(r["p"]) - 1) < TOL * np.maximum(1.0, t**2))
    q = stats.t.ppf(0.975, np.asarray(r["df"]))
    se = np.asarray(r["se"])
    assert np.max(np.abs(fe["ci_low"].to_numpy() - (np.asarray(r["fixef"]) - q * se)) / se) < TOL


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_variance_components_theta_and_fit(key):
    r = cell_of(key)
    res = fit(key)
    vc, rv = res.variance_components, r["varcorr"]
    assert list(vc["group"]) == rv["grp"]
    assert [rname(t) for t in rv["var1"]] == list(vc["term1"])
    sd_of = {(g, t): sd for g, t, t2, sd in zip(rv["grp"], rv["var1"], rv["var2"], rv["sdcor"], strict=True) if t2 == ""}
    for i, v in enumerate(rv["vcov"]):
        if rv["var2"][i] == "":  # variances and SDs: relative 1e-6 (observed <= 9e-7)
            assert abs(vc["variance"].iloc[i] / v - 1) < TOL
            assert abs(vc["sd"].iloc[i] / rv["sdcor"][i] - 1) < TOL
        else:  # covariance: relative to sd1 sd2; correlation: absolute
            scale = sd_of[(rv["grp"][i], rv["var1"][i])] * sd_of[(rv["grp"][i], rv["var2"][i])]
            assert abs(vc["variance"].iloc[i] - v) / scale < TOL
            assert abs(vc["corr"].iloc[i] - rv["sdcor"][i]) < TOL
    assert abs(np.sqrt(res.sigma2) / r["sigma"] - 1) < TOL
    # theta: relative to the largest theta (an off-diagonal element near 0 has no relative precision)
    theta = np.asarray(r["theta"])
    assert np.max(np.abs(res.theta - theta)) / np.max(np.abs(theta)) < TOL
    # log-likelihood: flat at the optimum, 1e-10 relative; ours at least as good as lme4's
    assert abs(res.loglik / r["logLik"] - 1) < 1e-10
    assert res.loglik >= r["logLik"] - 1e-12 * abs(r["logLik"])
    assert abs(res.AIC / r["AIC"] - 1) < 1e-10 and abs(res.BIC / r["BIC"] - 1) < 1e-10
    assert res.n_obs == r["nobs"]
    assert dict(zip(res.grpvars, res.ngrps)) == r["ngrps"]
    assert res.group == res.grpvars[0] and res.n_groups == res.ngrps[0]
    assert not res.singular and res.converged


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_deviance_at_lme4_theta(key):
    """Our profiled deviance at lme4's theta is lme4's criterion (REML or ML) to 1e-10 relative."""
    r = cell_of(key)
    mdl = _model(r["dataset"], r["formula"])
    dev = mdl.deviance(np.asarray(r["theta"]), reml=key.endswith("|REML"), scaled=False)
    assert abs(dev / r["criterion"] - 1) < 1e-10


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_conditional_modes(key):
    r = REF["lmm"][key]
    re = fit(key).random_effects
    rr = pd.DataFrame(r["ranef"])
    rr["term"] = rr["term"].map(rname)
    if "grpvar" not in re.columns:  # one grouping factor: lme4's table without grpvar
        re = re.assign(grpvar=rr["grpvar"].iloc[0])
    re = re.assign(group=re["group"].astype(str))  # R's levels are text (period 1 -> "1")
    m = rr.merge(re, left_on=["grpvar", "term", "grp"], right_on=["grpvar", "term", "group"], how="left")
    assert len(m) == len(re) and m["estimate"].notna().all()
    for (_, _), part in m.groupby(["grpvar", "term"]):
        scale = max(float(np.std(part["condval"])), 1e-12)  # absolute, x spread of the modes: 1e-6
        assert np.max(np.abs(part["estimate"] - part["condval"])) < TOL * scale
        assert rel(part["se"], part["condsd"]) < TOL  # conditional SDs: 1e-6 relative


def _model(dataset: str, formula: str) -> TermsLMM:
    fixed, bars = split_formula(formula)
    _y, X, Zs, gs, _, _, _ = mixed_mod._design_terms(frame(dataset), formula, fixed, bars, None)
    terms, *_ = mixed_mod._order_terms(bars, Zs, gs)
    return TermsLMM(X.to_numpy(float), _y, terms)


# ------------------------------------------------------------------------------ engine without R
def _random_design(seed=5, n=160):
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 12, n), rng.integers(0, 5, n), rng.integers(0, 4, n)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=12)[a] * (1 + 0.4 * x) + rng.normal(size=5)[b] + rng.normal(size=n)
    terms = [Term.unstructured(a, 12, np.column_stack([np.ones(n), x])), Term.unstructured(b, 5, np.ones(n)),
             Term.unstructured(c, 4, x)]
    return X, y, terms, rng


def _dense_Z(mdl: TermsLMM) -> np.ndarray:
    return mdl.Z.toarray()


def test_engine_deviance_equals_dense_marginal_likelihood():
    """REML and ML deviances against the dense Gaussian likelihood with sigma profiled out."""
    X, y, terms, _ = _random_design()
    mdl = TermsLMM(X, y, terms)
    theta = np.array([0.9, 0.3, 0.5, 0.7, 0.4])
    Lam = mdl.lambda_matrix(theta).toarray()
    Z = _dense_Z(mdl)
    n, p = X.shape
    V = np.eye(n) + Z @ Lam @ Lam.T @ Z.T  # Cov(y) / sigma^2
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    q = float(r @ Vi @ r)
    ld = np.linalg.slogdet(V)[1]
    ml = ld + n * (1 + np.log(2 * np.pi * q / n))
    reml = ld + np.linalg.slogdet(X.T @ Vi @ X)[1] + (n - p) * (1 + np.log(2 * np.pi * q / (n - p)))
    assert abs(mdl.deviance(theta, reml=False, scaled=False) / ml - 1) < 1e-12  # closed form: 1e-12
    assert abs(mdl.deviance(theta, reml=True, scaled=False) / reml - 1) < 1e-12


def _nested_design(seed=9, n=150):
    """site:period first (30 levels), then site (10) and region (3): a block-diagonal Schur complement."""
    rng = np.random.default_rng(seed)
    site, period = rng.integers(0, 10, n), rng.integers(0, 3, n)
    sp = pd.factorize(pd.Series(site) * 10 + period, sort=True)[0]
    region = site % 3
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + rng.normal(size=10)[site]
    terms = [Term.unstructured(sp, sp.max() + 1, np.ones(n)), Term.unstructured(site, 10, np.ones(n)),
             Term.unstructured(region, 3, np.ones(n))]
    return X, y, terms, rng


@pytest.mark.parametrize("design, theta", [
    (_random_design, np.array([1.3, -0.4, 0.6, 0.8, 1.1])),
    (_nested_design, np.array([0.7, 1.4, 0.5])),
])
def test_engine_weighted_factor_and_solve(design, theta):
    """The factor of Lambda' Z'WZ Lambda + I (for GLMMs) against dense linear algebra."""
    X, y, terms, rng = design(seed=9)
    mdl = TermsLMM(X, y, terms)
    w = rng.uniform(0.2, 3.0, size=y.size)
    F = mdl.factor(theta, weights=w)
    Lam = mdl.lambda_matrix(theta).toarray()
    Z = _dense_Z(mdl)
    A = Lam.T @ Z.T @ (w[:, None] * Z) @ Lam + np.eye(mdl.m)
    assert abs(F.logdet - np.linalg.slogdet(A)[1]) < 1e-10  # absolute on log|A|
    rhs = rng.normal(size=(mdl.m, 3))
    assert np.allclose(F.solve(rhs), np.linalg.solve(A, rhs), rtol=1e-10, atol=1e-12)
    assert np.allclose(F.forward(rhs[:, 0]) @ F.forward(rhs[:, 1]), rhs[:, 0] @ np.linalg.solve(A, rhs[:, 1]))
    Ai = np.linalg.inv(A)
    for (off, G, q), blk in zip(mdl.sizes, F.inverse_diag_blocks(mdl.sizes), strict=True):
        for g in range(G):
            s = slice(off + g * q, off + (g + 1) * q)
            assert np.allclose(blk[g], Ai[s, s], rtol=1e-10, atol=1e-13)


def test_engine_fit_recovers_simulated_components():
    """Simulation with known truth: site SD 1.0 crossed with period SD 0.7, residual SD 1 (seeded);
    estimates within 3 of their approximate standard errors."""
    rng = np.random.default_rng(11)
    S, P, m = 60, 8, 6
    site, per = np.repeat(np.arange(S), P * m), np.tile(np.repeat(np.arange(P), m), S)
    n = site.size
    y = 2.0 + rng.normal(0, 1.0, S)[site] + rng.normal(0, 0.7, P)[per] + rng.normal(size=n)
    f = fit_terms_lmm(np.ones((n, 1)), y, [Term.unstructured(site, S, np.ones(n)),
                                           Term.unstructured(per, P, np.ones(n))])
    assert f.converged
    sd_site, sd_per = f.theta * f.sigma
    assert abs(sd_site - 1.0) < 3 * 1.0 / np.sqrt(2 * S)
    assert abs(sd_per - 0.7) < 3 * 0.7 / np.sqrt(2 * P)
    assert abs(f.sigma - 1.0) < 3 / np.sqrt(2 * n)


# ------------------------------------------------------------------------------ the formula
@pytest.mark.parametrize("formula, fixed, terms", [
    ("y ~ x + (1 | site)", "y ~ x", ["(1 | site)"]),
    ("y ~ 1 + (1|batch/cask)", "y ~ 1", ["(1 | cask:batch)", "(1 | batch)"]),
    ("y ~ (1 | a/b/c)", "y ~ 1", ["(1 | c:b:a)", "(1 | b:a)", "(1 | a)"]),
    ("y ~ x + (x || g)", "y ~ x", ["(1 | g)", "(0 + x | g)"]),
    ("y ~ x + (0 + x + z || g)", "y ~ x", ["(0 + x | g)", "(0 + z | g)"]),
    ("y ~ C(t) + (1 | site:period) + x", "y ~ C(t) + x", ["(1 | site:period)"]),
    ("y ~ (1 + x | site) + (1 | period)", "y ~ 1", ["(1 + x | site)", "(1 | period)"]),
])
def test_formula_expansion_as_lme4_findbars(formula, fixed, terms):
    """Expected expansions are lme4's findbars(expandDoubleVerts(...)) output (lme4 1.1)."""
    f, bars = split_formula(formula)
    assert f == fixed and [str(b) for b in bars] == terms


@pytest.mark.parametrize("formula, match", [
    ("y ~ x + (1 | )", "no grouping factor"),
    ("y ~ x + ( | site)", "nothing left of the bar"),
    ("y ~ x | site", "outside parentheses"),
    ("y ~ x + (1 | site", "never closed"),
    ("y ~ x + 1 | site)", "no '\\('"),
    ("y ~ x + (1 | site | period)", "one bar"),
    ("y ~ x + (1 | log(site))", "column names"),
    ("y ~ x + (1 | nope)", "'nope'"),
    ("y ~ x + (1 + nope | site)", "cannot build the design"),
])
def test_malformed_terms(formula, match):
    d = pd.DataFrame({"y": np.arange(12.0) % 5, "x": np.arange(12.0), "site": list("abcd") * 3})
    with pytest.raises(ScaleupDataError, match=match):
        sa.mixed_model(d, formula)


def test_term_order_is_lme4s():
    """mkReTrms: when the numbers of levels ever increase, the order is rev(order(nl)) (ties reversed)."""
    rng = np.random.default_rng(2)
    n = 200
    d = pd.DataFrame({"a": rng.integers(0, 5, n), "b": rng.integers(0, 10, n), "c": rng.integers(0, 5, n)})
    d["y"] = rng.normal(size=n) + d["b"] * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScaleupWarning)
        res = sa.mixed_model(d, "y ~ 1 + (1 | a) + (1 | b) + (1 | c)")
    assert res.grpvars == ("b", "c", "a") and res.ngrps == (10, 5, 5)
    assert list(res.variance_components["group"]) == ["b", "c", "a", "Residual"]


def test_one_term_in_the_formula_is_the_old_form():
    d = frame("sleepstudy")
    old = sa.mixed_model(d, "Reaction ~ Days", group="Subject", re_formula="1 + Days")
    new = sa.mixed_model(d, "Reaction ~ Days + (Days | Subject)")
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())
    pd.testing.assert_frame_equal(old.random_effects, new.random_effects)
    assert new.random_terms == old.random_terms == ("(1 + Days | Subject)",)
    assert new.grpvars == ("Subject",) and new.ngrps == (18,)


def test_one_binomial_term_in_the_formula_is_the_old_form():
    cb = load_reference("mixed")["data"]["cbpp"]
    cb = pd.DataFrame(cb)
    old = sa.mixed_model(cb, "incidence ~ C(period)", group="herd", family="binomial", trials="size")
    new = sa.mixed_model(cb, "incidence ~ C(period) + (1 | herd)", family="binomial", trials="size")
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())


def test_argument_rules():
    d = frame("penicillin")
    with pytest.raises(ScaleupDataError, match="leave group= and re_formula= out"):
        sa.mixed_model(d, "diameter ~ 1 + (1 | plate)", group="plate")
    with pytest.raises(ScaleupDataError, match="name the grouping column"):
        sa.mixed_model(d, "diameter ~ 1")
    d = d.assign(hit=(d["diameter"] > 23).astype(int))
    with pytest.raises(ScaleupDataError, match="needs a single random intercept"):
        sa.mixed_model(d, "hit ~ 1 + (1 | plate) + (1 | sample)", family="binomial", nagq=5)


def test_missing_grouping_value_drops_rows():
    d = frame("penicillin")
    d.loc[[0, 5], "sample"] = None
    with pytest.warns(RowsOmittedWarning, match="2 row"):
        res = sa.mixed_model(d, "diameter ~ 1 + (1 | plate) + (1 | sample)")
    assert res.n_obs == 142


def test_row_order_and_relabelling():
    d = frame("pastes")
    ref = fit("pastes|nested|REML")
    shuffled = d.sample(frac=1.0, random_state=4).reset_index(drop=True)
    shuffled["batch"] = "B_" + shuffled["batch"]
    res = sa.mixed_model(shuffled, "strength ~ 1 + (1 | batch/cask)")
    assert np.max(np.abs(res.theta - ref.theta)) < 1e-7  # optimum located to ~1e-8
    assert abs(res.loglik - ref.loglik) < 1e-9


def test_singular_fit_warns():
    rng = np.random.default_rng(8)
    d = pd.DataFrame({"site": np.repeat(np.arange(10), 6), "period": np.tile(np.arange(6), 10)})
    d["y"] = rng.normal(size=10)[d["site"]] + rng.normal(size=60)  # no period effect
    d.loc[0, "y"] += 0.0
    with pytest.warns(ScaleupWarning, match="singular"):
        res = sa.mixed_model(d.assign(y=d["y"] - d.groupby("period")["y"].transform("mean")),
                             "y ~ 1 + (1 | site) + (1 | period)")
    assert res.singular and res.variance_components["variance"].iloc[1] == 0.0


def test_summary_and_caterpillar():
    res = fit("stepped_wedge|site_period|REML")
    text = res.summary()
    assert "groups: site:period 60, site 12" in text and "(1 | site:period)" in text
    assert "site:period" in res.summary(language="fr") and "Effets aléatoires" in res.summary(language="fr")
    tidy = res.to_frame()
    assert set(tidy.loc[tidy["type"] == "ran_pars", "group"]) == {"site:period", "site", "Residual"}
    assert list(res.random_effects.columns) == ["grpvar", "group", "term", "estimate", "se", "ci_low", "ci_high"]
    ax = res.plot_caterpillar(group="site")
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.get_yticklabels()) == 12
    ax = res.plot_caterpillar()  # the first factor: 60 site-periods
    assert "60" in ax.get_ylabel()
    with pytest.raises(ScaleupDataError, match="not a grouping factor"):
        res.plot_caterpillar(group="period")
    with pytest.raises(ScaleupDataError, match="not a random term"):
        res.plot_caterpillar(term="treat", group="site")
    unc = fit("sleepstudy|uncorrelated|REML")
    assert unc.plot_caterpillar(term="Days") is not None
    assert list(unc.variance_components["group"][:2]) == ["Subject", "Subject.1"]
