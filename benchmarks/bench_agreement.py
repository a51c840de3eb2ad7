"""B4: krippendorff_alpha (10,000 units x 10 raters) vs the krippendorff package (point estimate)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from _common import Row, say, timed


def make_data(n_units: int, n_raters: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, n_units)
    vals = np.where(rng.random((n_raters, n_units)) < 0.8, truth, rng.integers(1, 6, (n_raters, n_units))).astype(float)
    vals[rng.random((n_raters, n_units)) < 0.1] = np.nan  # 10 % missing ratings
    r, u = np.nonzero(~np.isnan(vals))
    return vals, pd.DataFrame({"unit": u, "rater": r, "value": vals[r, u]})


def _ours(df, metric, n_boot):
    import scaleup_analysis as sa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sa.krippendorff_alpha(df, "unit", "rater", "value", metric=metric, n_boot=n_boot, seed=1)


def _peer(vals, metric):
    import krippendorff

    return krippendorff.alpha(reliability_data=vals, level_of_measurement=metric)


def peer_available() -> bool:
    try:
        import krippendorff  # noqa: F401
    except ImportError:
        return False
    return True


def run(smoke: bool = False) -> list[Row]:
    n_units, n_raters, n_boot = (300, 5, 100) if smoke else (10_000, 10, 1000)
    vals, df = make_data(n_units, n_raters)
    rows = []
    for metric in ("nominal", "ordinal", "interval"):
        case = f"{metric}, {n_units:,} units x {n_raters} raters, point estimate"
        t_o, r_o, mem = timed(_ours, df, metric, 0, repeat=3)
        row = Row("B4", case, t_o, "krippendorff", ours_peak_mb=mem, goal="at least as fast")
        if peer_available():
            t_p, a_p, mem_p = timed(_peer, vals, metric, repeat=3)
            d = abs(r_o.estimate - a_p) / abs(a_p)
            row.peer_s, row.peer_peak_mb = t_p, mem_p
            row.agreement = f"alpha {r_o.estimate:.10f} vs {a_p:.10f} (rel {d:.1e})"
            row.met = bool(row.ratio >= 1)
            row.extra = {"alpha_ours": r_o.estimate, "alpha_peer": a_p, "rel": d}
        else:
            row.note = "krippendorff not importable: peer skipped"
        rows.append(row)
        say(f"  B4 {metric}: ours {t_o:.4f}s peer {row.peer_s:.4f}s {row.agreement}")
    t_b, r_b, mem_b = timed(_ours, df, "nominal", n_boot)
    rows.append(Row("B4", f"nominal, with {n_boot} bootstrap draws", t_b, "krippendorff (no bootstrap)",
                    rows[0].peer_s, mem_b, agreement=f"alpha {r_b.estimate:.6f} [{r_b.ci_low:.4f}, {r_b.ci_high:.4f}]",
                    goal="(report)"))
    say(f"  B4 bootstrap: ours {t_b:.4f}s")
    return rows
