"""B1: meta_analysis (REML) vs metafor::rma (Rscript) and statsmodels combine_effects; scaling in k."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from _common import Row, r_available, run_r, say, timed, timed_nomem

R_SCRIPT = r"""
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
d <- read.csv(csv_meta)
reps <- REPS
fit <- NULL
# only the fit is timed (the CSV was read above)
tm <- system.time(for (i in seq_len(reps)) fit <- rma(yi, vi, data = d, method = "REML"))[["elapsed"]] / reps
write_json(list(time = tm, tau2 = fit$tau2, mu = as.numeric(fit$beta)), out_json, digits = NA, auto_unbox = TRUE)
"""


def make_data(k: int, seed: int = 1, tau2: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + tau2))
    return pd.DataFrame({"yi": yi, "vi": vi})


def _ours(df, method="REML"):
    import scaleup_analysis as sa

    return sa.meta_analysis(df, yi="yi", vi="vi", method=method)


def _statsmodels(df, method_re):
    from statsmodels.stats.meta_analysis import combine_effects

    return combine_effects(df["yi"].to_numpy(), df["vi"].to_numpy(), method_re=method_re)


def run(smoke: bool = False) -> list[Row]:
    rows: list[Row] = []
    # ---- agreement with statsmodels on a small k (DerSimonian-Laird and Paule-Mandel are shared)
    df = make_data(40 if smoke else 1000, seed=2)
    for ours_m, sm_m in (("DL", "chi2"), ("PM", "iterated")):
        t_o, r_o = timed_nomem(_ours, df, ours_m, repeat=3)
        t_s, r_s = timed_nomem(_statsmodels, df, sm_m, repeat=3)
        d = abs(r_o.tau2 - r_s.tau2) / max(abs(r_s.tau2), 1e-300)
        rows.append(Row("B1", f"tau2 {ours_m} k={len(df)}", t_o, f"statsmodels ({sm_m})", t_s,
                        agreement=f"tau2 {r_o.tau2:.6g} vs {r_s.tau2:.6g} (rel {d:.1e})",
                        extra={"tau2_ours": r_o.tau2, "tau2_peer": r_s.tau2, "rel": d}))
        say(f"  B1 {ours_m}: ours {t_o:.3f}s statsmodels {t_s:.3f}s tau2 {r_o.tau2:.6g}/{r_s.tau2:.6g}")

    # ---- vs metafor at k = 1,000
    k = 100 if smoke else 1000
    df = make_data(k)
    t_o, r_o, mem = timed(_ours, df, repeat=1 if smoke else 3)
    row = Row("B1", f"REML k={k}", t_o, "metafor rma (R)", ours_peak_mb=mem, goal=">= 100x faster than metafor")
    if r_available("metafor", "jsonlite"):
        reps = 3 if smoke else 20
        rr = run_r(R_SCRIPT.replace("REPS", str(reps)), {"meta": df})
        row.peer_s = rr["time"]
        d = abs(r_o.tau2 - rr["tau2"]) / rr["tau2"]
        row.agreement = f"tau2 {r_o.tau2:.8g} vs {rr['tau2']:.8g} (rel {d:.1e})"
        row.met = row.ratio >= 100
        row.extra = {"tau2_ours": r_o.tau2, "tau2_peer": rr["tau2"], "rel": d}
    else:
        row.note = "Rscript with metafor not available: peer skipped"
        say("  B1: " + row.note)
    rows.append(row)
    say(f"  B1 REML k={k}: ours {t_o:.3f}s metafor {row.peer_s:.3f}s")

    # ---- scaling in k (goal: linear; the engine is O(k p^2), no k x k matrix) and statsmodels at
    # k >= 10,000 (goal: faster than statsmodels at k = 100,000); times include the Q-profile CI
    sizes = [100, 200, 400] if smoke else [1_000, 10_000, 100_000, 1_000_000]
    k_vs_statsmodels = 400 if smoke else 100_000
    times = {}
    for k in sizes:
        df = make_data(k, seed=3)
        t_o, r_o, mem = timed(_ours, df)
        times[k] = t_o
        rows.append(Row("B1", f"REML k={k:,}", t_o, goal="linear in k", ours_peak_mb=mem,
                        extra={"tau2_ours": r_o.tau2}, agreement=f"tau2 {r_o.tau2:.6g}"))
        say(f"  B1 k={k}: ours {t_o:.3f}s ({mem:.0f} MB) tau2 {r_o.tau2:.6g}")
        if k >= (400 if smoke else 10_000):
            parts, sm_times = [], {}
            for m in ("iterated", "chi2"):
                t_s, r_s = timed_nomem(_statsmodels, df, m)
                sm_times[m] = t_s
                rows[-1].extra[f"tau2_statsmodels_{m}"] = r_s.tau2
                parts.append(f"statsmodels {m}: tau2 {r_s.tau2:.6g} in {t_s:.3f}s")
            rows[-1].peer, rows[-1].peer_s = "statsmodels (iterated)", sm_times["iterated"]
            if k == k_vs_statsmodels:
                rows[-1].goal = "linear in k; faster than statsmodels"
            rows[-1].note = (rows[-1].note + "; " if rows[-1].note else "") + "; ".join(parts)
            say("  B1 k={}: {}".format(k, "; ".join(parts)))
    if len(times) >= 2:
        ks = sorted(times)
        slope = math.log(times[ks[-1]] / times[ks[0]]) / math.log(ks[-1] / ks[0])
        for r in rows:
            if r.case.startswith("REML k=") and r.goal.startswith("linear"):
                r.extra["loglog_slope"] = slope
                r.met = bool(slope < 1.2) and len(times) == len(sizes)
                if "statsmodels" in r.goal:
                    r.met = r.met and r.ratio > 1
        rows[-1].note = (rows[-1].note + "; " if rows[-1].note else "") + f"log-log slope of time vs k: {slope:.2f}"
    return rows
