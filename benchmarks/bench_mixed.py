"""B2: mixed_model (random intercept + slope) vs statsmodels MixedLM and lme4::lmer (Rscript)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from _common import Row, r_available, run_r, say, timed, timed_nomem

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
d <- read.csv(csv_mixed, colClasses = c(site = "character"))
# only the fit is timed (default lmer optimiser and settings)
tm <- system.time(fit <- lmer(y ~ x + (1 + x | site), data = d, REML = TRUE))[["elapsed"]]
write_json(list(time = tm, beta = unname(fixef(fit)), theta = unname(getME(fit, "theta")),
                sigma = sigma(fit), loglik = as.numeric(logLik(fit))), out_json, digits = NA, auto_unbox = TRUE)
"""


def make_data(n_sites: int, per_site: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), per_site)
    x = rng.normal(size=site.size)
    b0 = rng.normal(0, 1.0, n_sites)
    b1 = rng.normal(0, 0.5, n_sites)
    y = 1.0 + 0.5 * x + b0[site] + b1[site] * x + rng.normal(0, 2.0, site.size)
    return pd.DataFrame({"site": np.char.add("s", site.astype(str)), "x": x, "y": y})


def _ours(df):
    import scaleup_analysis as sa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.mixed_model(df, "y ~ x", group="site", re_formula="1 + x")


def _statsmodels(df):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm("y ~ x", df, groups=df["site"], re_formula="~x").fit(reml=True)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def run(smoke: bool = False) -> list[Row]:
    n_sites, per = (20, 30) if smoke else (1000, 1000)
    df = make_data(n_sites, per)
    case = f"{n_sites:,} sites x {per:,} rows"
    t_o, r_o, mem = timed(_ours, df)
    beta = r_o.fixed["estimate"].to_numpy()
    say(f"  B2 ours {t_o:.2f}s beta {beta}")
    rows = []
    # statsmodels MixedLM
    t_s, r_s = timed_nomem(_statsmodels, df)  # no tracemalloc re-run of the slow peer
    mem_s = float("nan")
    d_sm = _rel(beta, r_s.fe_params.to_numpy())
    rows.append(Row("B2", case, t_o, "statsmodels MixedLM", t_s, mem, mem_s,
                    agreement=f"max rel diff beta {d_sm:.1e}", goal="(report)",
                    extra={"rel_beta": d_sm}))
    say(f"  B2 statsmodels {t_s:.2f}s (max rel diff in beta {d_sm:.1e})")
    # lme4
    row = Row("B2", case, t_o, "lme4 lmer (R)", ours_peak_mb=mem, goal="faster than lme4, estimates equal to 1e-6")
    if r_available("lme4", "jsonlite"):
        rr = run_r(R_SCRIPT, {"mixed": df})
        d_b = _rel(beta, rr["beta"])
        d_t = _rel(r_o.theta, rr["theta"])
        d_ll = _rel(r_o.loglik, rr["loglik"])
        row.peer_s = rr["time"]
        row.agreement = (f"max rel diff beta {d_b:.1e}, theta {d_t:.1e}, logLik {d_ll:.1e} "
                         f"(REML logLik ours {r_o.loglik:.10f}, lme4 {rr['loglik']:.10f})")
        row.met = bool(row.ratio > 1 and d_b < 1e-6)
        row.extra = {"rel_beta": d_b, "rel_theta": d_t, "rel_loglik": d_ll,
                     "loglik_ours": r_o.loglik, "loglik_lme4": rr["loglik"]}
        say(f"  B2 lme4 {rr['time']:.2f}s; {row.agreement}")
    else:
        row.note = "Rscript with lme4 not available: peer skipped"
        say("  B2: " + row.note)
    rows.append(row)
    return rows
