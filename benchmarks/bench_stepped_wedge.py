"""B5: stepped_wedge_power_sim, 1,000 replicates of an 18-cluster design (goal < 10 s)."""

from __future__ import annotations

from _common import Row, say, timed


def _ours(n_sim):
    import scaleup_analysis as sa

    design = sa.stepped_wedge_design(18, 6)  # 18 clusters, 6 steps of 3 clusters, 7 periods
    return sa.stepped_wedge_power_sim(design, 0.15, sigma2=1.0, icc=0.05, m=20, n_sim=n_sim, seed=1)


def run(smoke: bool = False) -> list[Row]:
    n_sim = 50 if smoke else 1000
    t_o, r, mem = timed(_ours, n_sim)
    row = Row("B5", f"18 clusters, {n_sim} replicates", t_o, ours_peak_mb=mem, goal="< 10 s",
              met=bool(t_o < 10), agreement=f"power {r.power:.3f} (MC se {r.power_se:.3f}) vs analytic {r.analytic_power:.3f}",
              extra={"power": r.power, "analytic_power": r.analytic_power, "power_se": r.power_se})
    say(f"  B5 ours {t_o:.3f}s {row.agreement}")
    return [row]
