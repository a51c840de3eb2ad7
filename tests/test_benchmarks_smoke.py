"""Smoke mode of every benchmark (benchmarks/bench_*.py), run in-process at tiny sizes.

No timing assertions (speed lives in `make bench`): only that each benchmark runs and that our
estimates agree with the peer where the peer is cheap and available.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))


def _run(modname):
    return importlib.import_module(modname).run(smoke=True)


def test_runner_lists_every_benchmark():
    run = importlib.import_module("run")
    assert sorted(run.BENCHMARKS) == [f"B{i}" for i in range(1, 10)]
    for _, modname in run.BENCHMARKS.values():
        assert (BENCH / f"{modname}.py").is_file()


def test_b1_meta_analysis():
    rows = _run("bench_meta")
    by_case = {r.case: r for r in rows}
    dl = by_case["tau2 DL k=40"].extra
    assert dl["rel"] < 1e-10  # DerSimonian-Laird is closed form in both: rounding only
    pm = by_case["tau2 PM k=40"].extra
    assert pm["rel"] < 1e-3  # statsmodels stops its Paule-Mandel iteration at a looser tolerance
    r = by_case["REML k=100"]
    if r.peer_s == r.peer_s:  # metafor ran (Rscript available)
        assert r.extra["rel"] < 1e-6  # metafor REML: 1e-6 relative


def test_b2_mixed_model():
    rows = _run("bench_mixed")
    sm = next(r for r in rows if r.peer.startswith("statsmodels"))
    assert sm.extra["rel_beta"] < 1e-4  # statsmodels MixedLM's optimiser tolerance
    r = next(r for r in rows if r.peer.startswith("lme4"))
    if "rel_beta" in r.extra:
        assert r.extra["rel_beta"] < 1e-4  # iterative mixed model: 1e-4 relative
        assert r.extra["rel_loglik"] < 1e-6


def test_b3_staggered_did():
    (row,) = _run("bench_did")
    if "max_abs_att_diff" in row.extra:
        assert row.extra["max_abs_att_diff"] < 1e-10  # closed-form cell DiDs: rounding only


def test_b4_krippendorff():
    rows = _run("bench_agreement")
    for r in rows[:3]:
        if "rel" in r.extra:
            assert r.extra["rel"] < 1e-12, r.case  # closed form: rounding only


def test_b5_stepped_wedge():
    (row,) = _run("bench_stepped_wedge")
    e = row.extra
    # simulated power around the analytic power: within 4 Monte Carlo standard errors (50 replicates)
    assert abs(e["power"] - e["analytic_power"]) < 4 * max(e["power_se"], (e["analytic_power"] * (1 - e["analytic_power"]) / 50) ** 0.5)


def test_b6_summarize_engines():
    (row,) = _run("bench_summarize")
    assert row.extra["same_counts"]
    assert row.extra["rel"] < 1e-10  # DuckDB vs pandas engine: 1e-10 relative


def test_b7_report():
    (row,) = _run("bench_report")
    assert row.extra["notebook_seconds"]


def test_b8_glmm():
    rows = _run("bench_glmm")
    r = rows[0]
    if r.peer_s == r.peer_s:  # glmer ran (Rscript with lme4 available)
        assert r.extra["rel_beta"] < 1e-4 and r.extra["rel_theta"] < 1e-4


def test_b9_report_at_scale():
    rows = _run("bench_report_scale")
    first, second, same = rows
    assert first.extra["failed"] == 0 and first.extra["reused_second"] is True
    assert second.extra["reused"] is True
    assert same.extra["equal"] is True, same.agreement
