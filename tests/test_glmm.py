"""Binomial (logit, probit) and Poisson (log, offset) mixed models: ``mixed_model(family=..., nagq=...)``.

Reference: ``tests/reference/ref_glmm.R`` -> ``glmm.json``: lme4 1.1 ``glmer`` run with tight controls
(PIRLS ``tolPwrss = 1e-12``, bobyqa ``rhoend = 1e-10``), i.e. the exact optimum of the Laplace (``nAGQ = 1``)
or adaptive Gauss-Hermite (``nAGQ > 1``) likelihood, on cbpp (binomial events/trials, logit and probit),
grouseticks (Poisson), a simulated site-quarter count series with a log-population offset (random
intercept, and random intercept and slope), simulated 0/1 outcomes with a random slope (logit, probit),
2,000 patient-level 0/1 rows with one binary covariate (merged into cells by the engine) and a hand-built
5-site study. The engine's exact gradient is checked against central differences (mathematical
identity), and a simulation with a known truth checks the Poisson rate ratio.

Tolerances: fixed effects and theta 2e-5 relative (observed <= 2e-6; glmer's bobyqa stops at rhoend);
standard errors 2e-4 relative (lme4 takes them from a finite-difference Hessian: observed <= 8.5e-5);
log-likelihood 1e-5 absolute; conditional modes and SDs 1e-4 relative. With ``nAGQ > 1`` lme4's
``logLik`` omits the saturated log-likelihood (its deviance residuals are relative): we report the
marginal log-likelihood, so the test adds the saturated term (docs/divergences.md).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import scaleup_analysis as sa
from scaleup_analysis.engines.glmm import GLMMProblem, fit_glmm
from scaleup_analysis.engines.reml import num_jacobian
from scaleup_analysis.errors import ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("glmm")
CASES = REF["cases"]

SPECS = {  # dataset -> formula, group, trials, offset, random slope term
    "cbpp": ("incidence ~ C(period)", "herd", "size", None, None),
    "grouseticks": ("TICKS ~ C(YEAR) + cHEIGHT", "LOCATION", None, None, None),
    "sitequarter": ("events ~ quarter + treat", "site", None, "logpop", "quarter"),
    "simbin": ("y ~ x", "site", None, None, "x"),
    "patients": ("y ~ a", "site", None, None, None),
    "handbuilt": ("events ~ C(period)", "site", "trials", None, None),
}


def data(name: str) -> pd.DataFrame:
    return pd.DataFrame(REF["data"][name])


@lru_cache(maxsize=None)
def fit(key: str):
    ds, link, re_, agq = key.split("|")
    formula, group, trials, offset, slope = SPECS[ds]
    family = "poisson" if link == "log" else "binomial"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.mixed_model(data(ds), formula, group=group, family=family, link=link, trials=trials,
                              offset=offset, re_formula=f"1 + {slope}" if re_ == "slope" else None,
                              nagq=int(agq))


def saturated_loglik(key: str) -> float:
    ds, link = key.split("|")[:2]
    d = data(ds)
    if link == "log":
        y = d[SPECS[ds][0].split(" ~")[0]]
        return float(stats.poisson.logpmf(y, y).sum())
    formula, _, trials, _, _ = SPECS[ds]
    y = d[formula.split(" ~")[0]]
    m = d[trials] if trials else pd.Series(1.0, index=d.index)
    return float(stats.binom.logpmf(y, m, y / m).sum())


def rel(a, b, floor=1e-8):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


@pytest.mark.parametrize("key", sorted(CASES))
def test_fixed_effects_and_theta(key):
    ref, res = CASES[key], fit(key)
    assert rel(res.fixed["estimate"], ref["fixef"]) < 2e-5
    assert np.max(np.abs(res.theta - np.asarray(ref["theta"]))) < 2e-5 * max(1.0, np.max(np.abs(ref["theta"])))
    assert rel(res.fixed["se"], ref["se"]) < 2e-4
    assert rel(res.fixed["statistic"], ref["z"]) < 2e-4
    assert res.converged
    assert res.n_obs == ref["nobs"]


@pytest.mark.parametrize("key", sorted(CASES))
def test_loglik_and_information_criteria(key):
    ref, res = CASES[key], fit(key)
    agq = int(key.split("|")[3])
    shift = saturated_loglik(key) if agq > 1 else 0.0
    assert abs(res.loglik - shift - ref["logLik"]) < 1e-5
    assert abs(res.AIC + 2 * shift - ref["AIC"]) < 2e-5
    assert abs(res.BIC + 2 * shift - ref["BIC"]) < 2e-5


@pytest.mark.parametrize("key", sorted(CASES))
def test_conditional_modes(key):
    ref, res = CASES[key], fit(key)
    re = res.random_effects
    terms = list(res.re_terms)
    values = list(ref["ranef"].values())
    condsd = ref["ranef_condsd"]
    for j, term in enumerate(terms):
        sub = re[re["term"] == term].set_index("group").loc[[str(g) for g in ref["ranef_groups"]]]
        scale = max(1.0, float(np.max(np.abs(values[j]))))
        assert np.max(np.abs(sub["estimate"].to_numpy() - np.asarray(values[j]))) < 1e-4 * scale
        # at a boundary fit (theta ~ 0: lme4 stops at ~1e-8) the conditional SDs are ~theta: absolute floor
        assert np.max(np.abs(sub["se"].to_numpy() - condsd[j]) - 1e-4 * np.abs(condsd[j])) < 1e-7


def test_variance_components():
    for key, ref in CASES.items():
        vc = fit(key).variance_components
        assert rel(vc["variance"], ref["vcov_re"], floor=1e-6) < 1e-4 or max(ref["vcov_re"]) < 1e-8


def test_grid_covers_every_family_link_and_option():
    seen = {tuple(k.split("|")[1:3]) + (int(k.split("|")[3]) > 1,) for k in CASES}
    for link in ("logit", "probit", "log"):
        assert (link, "intercept", False) in seen and (link, "intercept", True) in seen or link == "probit"
    assert ("probit", "intercept", True) in seen and ("probit", "slope", False) in seen
    assert ("log", "slope", False) in seen and ("logit", "slope", False) in seen
    assert any(k.startswith("sitequarter") for k in CASES)  # an offset
    assert any(k.startswith("handbuilt") for k in CASES)  # a hand-built small study


# ---------------------------------------------------------------- the engine
@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("binomial", "probit"), ("poisson", "log")])
@pytest.mark.parametrize("q", [1, 2])
def test_exact_gradient_equals_central_differences(family, link, q):
    rng = np.random.default_rng(5)
    G = 25
    codes = np.repeat(np.arange(G), rng.integers(4, 30, G))
    n = codes.size
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    Z = X[:, :q]
    eta = -0.2 + 0.6 * x + rng.normal(0, 0.7, G)[codes]
    if family == "binomial":
        m = rng.integers(1, 4, n).astype(float)
        y = rng.binomial(m.astype(int), stats.norm.cdf(eta) if link == "probit" else 1 / (1 + np.exp(-eta)))
        off = None
    else:
        m, off = None, np.log(rng.integers(1, 6, n))
        y = rng.poisson(np.exp(0.5 * eta + off))
    prob = GLMMProblem(y.astype(float), m, off, X, Z, codes, G, family, link)
    par = np.r_[[0.6, 0.15, 0.3][:prob.k], -0.1, 0.4]
    _, g = prob.laplace(par)
    gn = num_jacobian(lambda p: prob.laplace(p, gradient=False), par)
    assert np.max(np.abs(g - gn)) < 1e-7 * max(1.0, np.max(np.abs(gn)))


def test_merged_rows_give_the_row_level_fit(monkeypatch):
    d = data("patients")
    codes, uniq = pd.factorize(d["site"], sort=True)
    X = np.column_stack([np.ones(len(d)), d["a"]])
    Z = np.ones((len(d), 1))
    merged = fit_glmm(d["y"].to_numpy(float), None, None, X, Z, codes, len(uniq))
    assert merged.problem.n_cells < len(d) / 10
    import scaleup_analysis.engines.glmm as eng

    monkeypatch.setattr(eng, "_collapse", lambda *a: None)
    rows = fit_glmm(d["y"].to_numpy(float), None, None, X, Z, codes, len(uniq))
    assert rows.problem.n_cells == len(d)
    assert abs(merged.deviance - rows.deviance) < 1e-8
    assert np.max(np.abs(merged.beta - rows.beta)) < 1e-7
    assert np.max(np.abs(np.sqrt(np.diag(merged.vcov)) - np.sqrt(np.diag(rows.vcov)))) < 1e-6


def test_poisson_known_truth_rate_ratio():
    """Simulation with a known truth: 200 sites x 12 quarters, rate ratio exp(0.25), site SD 0.3."""
    rng = np.random.default_rng(11)
    G, T = 200, 12
    site = np.repeat(np.arange(G), T)
    treat = (np.tile(np.arange(T), G) >= 6).astype(float)
    pop = np.repeat(rng.integers(500, 5000, G), T)
    mu = pop * np.exp(-5 + 0.25 * treat + rng.normal(0, 0.3, G)[site])
    d = pd.DataFrame({"site": site, "treat": treat, "logpop": np.log(pop), "y": rng.poisson(mu)})
    res = sa.mixed_model(d, "y ~ treat", group="site", family="poisson", offset="logpop")
    est, se = res.fixed.loc["treat", ["estimate", "se"]]
    assert abs(est - 0.25) < 4 * se
    assert abs(np.sqrt(res.tau2) - 0.3) < 0.06
    assert np.isfinite(res.mor) and res.mor > 1


def test_more_quadrature_nodes_converge():
    d = data("cbpp")
    lls = [sa.mixed_model(d, "incidence ~ C(period)", group="herd", family="binomial", trials="size",
                          nagq=k).loglik for k in (9, 15, 25)]
    assert abs(lls[1] - lls[2]) < 1e-6 < abs(lls[0] - sa.mixed_model(
        d, "incidence ~ C(period)", group="herd", family="binomial", trials="size").loglik)


# ---------------------------------------------------------------- bad input
def test_bad_inputs_are_refused_with_the_rows():
    d = data("grouseticks")
    bad = d.copy()
    bad.loc[[4, 9], "TICKS"] = -1
    with pytest.raises(ScaleupDataError, match=r"non-negative integer counts; 2 row\(s\) \(index 4, 9\)"):
        sa.mixed_model(bad, "TICKS ~ cHEIGHT", group="LOCATION", family="poisson")
    with pytest.raises(ScaleupDataError, match="link"):
        sa.mixed_model(d, "TICKS ~ cHEIGHT", group="LOCATION", family="poisson", link="logit")
    with pytest.raises(ScaleupDataError, match="nagq"):
        sa.mixed_model(d, "TICKS ~ cHEIGHT", group="LOCATION", family="poisson", nagq=0)
    with pytest.raises(ScaleupDataError, match="single scalar random effect|random intercept"):
        sa.mixed_model(d, "TICKS ~ cHEIGHT", group="LOCATION", family="poisson", nagq=5,
                       re_formula="1 + cHEIGHT")
    with pytest.raises(ScaleupDataError, match="offset"):
        sa.mixed_model(d, "TICKS ~ cHEIGHT", group="LOCATION", family="gaussian", offset="cHEIGHT")
    with pytest.raises(ScaleupDataError, match="'nope'"):
        sa.mixed_model(d, "TICKS ~ cHEIGHT", group="LOCATION", family="poisson", offset="nope")


def test_poisson_separation_warns():
    d = data("grouseticks").copy()
    d["zero_year"] = (d["YEAR"] == "95").astype(int)
    d.loc[d["zero_year"] == 1, "TICKS"] = 0
    with pytest.warns(sa.ScaleupWarning, match="separated"):
        sa.mixed_model(d, "TICKS ~ zero_year", group="LOCATION", family="poisson")


# ---------------------------------------------------------------- several random terms (Laplace)
TERMS = REF["terms"]
TERM_SPECS = {  # key -> dataset, formula (lme4 terms in the formula), trials, offset
    "cbpp|logit|(1 | herd) + (1 | obs)": ("cbpp", "incidence ~ C(period) + (1 | herd) + (1 | obs)", "size", None),
    "grouseticks|log|(1 | BROOD) + (1 | LOCATION)": ("grouseticks", "TICKS ~ C(YEAR) + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
                                                    None, None),
    "VerbAgg|logit|(1 | id) + (1 | item)": ("VerbAgg", "r2 ~ Anger + C(Gender) + C(btype) + C(situ) + (1 | id) + (1 | item)",
                                           None, None),
    "steppedwedge|logit|(1 | site/period)": ("steppedwedge", "y ~ treat + C(period) + (1 | site/period)", None, None),
    "steppedwedge|probit|(1 | site) + (1 | period)": ("steppedwedge", "y ~ treat + (1 | site) + (1 | period)", None, None),
    "sitequarter|log|(1 + quarter || site)": ("sitequarter", "events ~ quarter + treat + (1 + quarter || site)", None,
                                              "logpop"),
}


def r_name(term: str) -> str:
    """R's name of a patsy coefficient: Intercept -> (Intercept), C(x)[T.v] -> xv."""
    if term == "Intercept":
        return "(Intercept)"
    if term.startswith("C("):
        var, level = term[2:].split(")[T.")
        return var + level.rstrip("]")
    return term


@lru_cache(maxsize=None)
def fit_terms(key: str):
    ds, formula, trials, offset = TERM_SPECS[key]
    link = key.split("|")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.mixed_model(data(ds), formula, family="poisson" if link == "log" else "binomial", link=link,
                              trials=trials, offset=offset)


def test_terms_grid_is_covered():
    assert sorted(TERM_SPECS) == sorted(TERMS)
    kinds = " ".join(TERMS)
    for pattern in ("/", "||", ") + (", "probit", "log", "logit"):
        assert pattern in kinds


@pytest.mark.parametrize("key", sorted(TERM_SPECS))
def test_several_terms_against_glmer(key):
    ref, res = TERMS[key], fit_terms(key)
    est = res.fixed.rename(index=r_name).loc[ref["fixef_names"]]
    # several terms: our optimiser uses central differences of the deviance; glmer's bobyqa stops at
    # rhoend. Both are within 1e-4 relative of each other (observed <= 4.5e-5, VerbAgg intercept; our
    # log-likelihood is never lower than glmer's); SEs from two finite-difference Hessians (5e-4)
    assert rel(est["estimate"], ref["fixef"]) < 1e-4
    assert rel(est["se"], ref["se"]) < 5e-4
    assert np.max(np.abs(res.theta - np.asarray(ref["theta"]))) < 1e-4 * max(1.0, max(ref["theta"]))
    assert res.loglik >= ref["logLik"] - 1e-8
    assert abs(res.loglik - ref["logLik"]) < 1e-5
    assert abs(res.AIC - ref["AIC"]) < 2e-5 and abs(res.BIC - ref["BIC"]) < 2e-5
    assert res.n_obs == ref["nobs"]
    re = res.random_effects
    for grp, part in ref["ranef"].items():
        base = grp.split(".")[0]
        condsd = part["condsd"].values() if isinstance(part["condsd"], dict) else part["condsd"]
        for (term, values), sds in zip(part["values"].items(), condsd, strict=True):
            term = "Intercept" if term == "(Intercept)" else term
            sub = re[(re["grpvar"] == base) & (re["term"] == term)].set_index("group").loc[part["levels"]]
            assert np.max(np.abs(sub["estimate"].to_numpy() - values)) < 1e-4 * max(1.0, np.max(np.abs(values)))
            assert np.max(np.abs(sub["se"].to_numpy() - sds) - 1e-4 * np.abs(sds)) < 1e-7


def test_summary_names_family_link_and_method_in_both_languages():
    pois = fit("sitequarter|log|intercept|7")
    text_en, text_fr = pois.summary(language="en"), pois.summary(language="fr")
    assert "Poisson mixed model (log link, AGQ (7 nodes))" in text_en and "Median rate ratio (MRR)" in text_en
    assert "Modèle de Poisson mixte (lien log" in text_fr and "Rapport de taux médian" in text_fr
    probit = fit("cbpp|probit|intercept|1")
    assert "Binomial mixed model (probit link, Laplace)" in probit.summary(language="en")
    assert np.isnan(probit.mor) and np.isfinite(probit.icc)  # latent residual variance 1: ICC, no MOR
    assert abs(probit.icc - probit.tau2 / (probit.tau2 + 1)) < 1e-15
    assert (probit.link, probit.nagq, pois.link, pois.nagq) == ("probit", 1, "log", 7)


@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("binomial", "probit"), ("poisson", "log")])
@pytest.mark.parametrize("slope", [False, True])
@pytest.mark.parametrize("dense", [True, False])
def test_several_terms_exact_gradient_equals_central_differences(family, link, slope, dense, monkeypatch):
    """Mathematical identity: the implicit-differentiation gradient of the several-term Laplace deviance
    (crossed factors, with and without a correlated random slope; both ways of computing the leverages)."""
    import scaleup_analysis.engines.glmm_terms as gt
    from scaleup_analysis.engines.terms import Term

    if not dense:
        monkeypatch.setattr(gt, "DENSE_INVERSE", 0)
    rng = np.random.default_rng(4)
    n = 500
    a, b, x = rng.integers(0, 25, n), rng.integers(0, 6, n), rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    eta = -0.3 + 0.5 * x + rng.normal(0, 0.6, 25)[a] + rng.normal(0, 0.4, 6)[b]
    if family == "binomial":
        p = stats.norm.cdf(eta) if link == "probit" else 1 / (1 + np.exp(-eta))
        y = (rng.random(n) < p).astype(float)
    else:
        y = rng.poisson(np.exp(0.5 * eta)).astype(float)
    first = Term.unstructured(a, 25, np.column_stack([np.ones(n), x]) if slope else np.ones((n, 1)))
    mdl = gt.TermsGLMM(y, None, None, X, [first, Term.unstructured(b, 6, np.ones((n, 1)))], family, link)
    par = np.r_[[0.6, 0.1, 0.3, 0.4] if slope else [0.6, 0.4], -0.2, 0.4]
    _, g = mdl.laplace(par)
    gn = num_jacobian(mdl.deviance, par)
    assert np.max(np.abs(g - gn)) < 1e-7 * max(1.0, np.max(np.abs(gn)))


def test_a_variance_started_at_zero_leaves_the_boundary():
    """theta = 0 is a stationary point of the (even) deviance: the optimiser must probe away from it.
    Known truth: stepped-wedge binary outcomes, 12 sites x 6 periods x 40 patients, site SD 0.5 and
    site-period SD 0.4: started at theta = (0, 0.5) the fit reaches the interior optimum."""
    from scaleup_analysis.engines.glmm import optimize_with_gradient
    from scaleup_analysis.engines.glmm_terms import TermsGLMM
    from scaleup_analysis.engines.terms import Term

    rng = np.random.default_rng(21)
    S, T, m = 12, 6, 40
    site, per = np.repeat(np.arange(S), T * m), np.tile(np.repeat(np.arange(T), m), S)
    treat = (per >= np.repeat(rng.integers(1, T, S), T * m)).astype(float)
    eta = -0.8 + 0.5 * treat + rng.normal(0, 0.5, S)[site] + rng.normal(0, 0.4, S * T)[site * T + per]
    y = (rng.random(site.size) < 1 / (1 + np.exp(-eta))).astype(float)
    X = np.column_stack([np.ones(site.size), treat])
    terms = [Term.unstructured(site * T + per, S * T, np.ones((site.size, 1))),
             Term.unstructured(site, S, np.ones((site.size, 1)))]
    mdl = TermsGLMM(y, None, None, X, terms)
    x0 = np.array([0.0, 0.5, -0.8, 0.5])
    x, converged, _, _, _ = optimize_with_gradient(mdl.laplace, mdl.deviance, x0, mdl.lower)
    assert converged and x[0] > 0.2
    assert mdl.deviance(x) < mdl.deviance(np.r_[0.0, x[1:]]) - 1.0
