"""B3: staggered_did (2,000 units x 60 periods, 999 bootstrap draws) vs differences.ATTgt."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from _common import Row, say, timed, timed_nomem


def make_data(n_units: int, n_periods: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cohorts = np.r_[0, np.arange(5, n_periods - 3, max(1, (n_periods - 8) // 10))]
    coh = rng.choice(cohorts, n_units)
    unit = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    g = coh[unit]
    eff = np.where((g > 0) & (t >= g), 1.0 + 0.05 * (t - g), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.1 * t + rng.normal(size=unit.size) + eff
    return pd.DataFrame({"unit": unit, "time": t, "cohort": g, "y": y})


def _ours(df, n_boot):
    import scaleup_analysis as sa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.staggered_did(df, "y", "unit", "time", "cohort", n_boot=n_boot, seed=1)


def _differences(df, n_boot):
    from differences import ATTgt

    d = df.copy()
    d["cohort"] = d["cohort"].where(d["cohort"] > 0)  # never treated: missing cohort
    d = d.set_index(["unit", "time"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        att = ATTgt(data=d, cohort_column="cohort")
        return att.fit(formula="y", est_method="dr", control_group="never_treated",
                       boot_iterations=n_boot, random_state=1, progress_bar=False)


def peer_available() -> bool:
    try:
        import differences  # noqa: F401
    except ImportError:
        return False
    return True


def compare(ours, peer) -> float:
    """Max |ATT(g,t) ours - peer| over the common (g, t) cells."""
    p = peer.to_pandas() if hasattr(peer, "to_pandas") else peer.copy()
    p.columns = ["_".join(str(c) for c in col if c) if isinstance(col, tuple) else col for col in p.columns]
    att_col = next(c for c in p.columns if c.endswith("ATT"))
    p = p.reset_index()[["cohort", "time", att_col]].rename(columns={att_col: "att_peer"})
    m = ours.att_gt.merge(p, on=["cohort", "time"], how="inner")
    if len(m) != len(ours.att_gt):
        raise AssertionError(f"{len(ours.att_gt)} ATT(g,t) cells in ours, {len(m)} matched in the peer")
    return float(np.max(np.abs(m["att"] - m["att_peer"])))


def run(smoke: bool = False) -> list[Row]:
    n_units, n_periods, n_boot = (100, 12, 99) if smoke else (2000, 60, 999)
    df = make_data(n_units, n_periods)
    case = f"{n_units:,} units x {n_periods} periods, {n_boot} boot"
    t_o, r_o, mem = timed(_ours, df, n_boot, repeat=1 if smoke else 2)
    row = Row("B3", case, t_o, "differences ATTgt", ours_peak_mb=mem, goal=">= 10x faster, equal ATT(g,t)")
    if peer_available():
        t_p, r_p = timed_nomem(_differences, df, n_boot, repeat=1 if smoke else 2)  # best of 2, as ours; no tracemalloc
        mem_p = float("nan")
        d = compare(r_o, r_p)
        row.peer_s, row.peer_peak_mb = t_p, mem_p
        row.agreement = f"max abs ATT diff {d:.1e} over {len(r_o.att_gt)} cells"
        row.met = bool(row.ratio >= 10 and d < 1e-8)
        row.extra = {"max_abs_att_diff": d, "cells": len(r_o.att_gt)}
    else:
        row.note = "differences not importable: peer skipped"
    say(f"  B3 ours {t_o:.2f}s peer {row.peer_s:.2f}s {row.agreement}")
    return [row]
