"""Tests of scaleup_analysis.summarize: per-cell sufficient statistics and fits from them.

Reference values: tests/reference/summarize.json, written by tests/reference/ref_summarize.R
(lme4::lmer + lmerTest, per-site lm(), metafor::rma, lme4::glmer on the patient-level rows stored in
the JSON). Python summarises those rows and fits from the summaries only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

import scaleup_analysis as sa
from scaleup_analysis.errors import RowsOmittedWarning, ScaleupDataError
from tests.conftest import load_reference

REF = load_reference("summarize")
DATA = pd.DataFrame(REF["data"])
COVS = ["treated", "x"]
MODELS = {  # model id -> (re_formula, reml), as in ref_summarize.R
    "ri_reml": ("1", True),
    "ri_ml": ("1", False),
    "rs_reml": ("1 + treated", True),
    "rs_ml": ("1 + treated", False),
}


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.fixture(scope="module")
def summ():
    return sa.summarize(DATA, ["site_id", "period"], covariates=COVS, random=["1", "treated"])


# ------------------------------------------------------------------------------------ grid coverage
def test_reference_grid_is_complete():
    assert set(REF["lmm"]) == set(MODELS)
    for key in MODELS:
        for field in ("fixed", "loglik", "theta", "sigma2"):
            assert field in REF["lmm"][key], (key, field)
        assert REF["lmm"][key]["fixed"]["term"] == ["Intercept", "treated", "x"]
    assert set(REF["glmm"]) == {"rows", "aggregated"}
    assert {"site_id", "yi", "vi"} <= set(REF["per_site"])
    assert {"mu", "se", "tau2", "I2", "QE"} <= set(REF["meta"])
    assert len(DATA) == 14 * 6 * 9


# ------------------------------------------------------------------------------------ summarize
def _direct_cells(df, group, cols, y):
    """Independent computation: W'W of each cell by a matrix product, W = [1, cols..., y]."""
    out = {}
    for key, d in df.groupby(group, sort=True):
        W = np.column_stack([np.ones(len(d))] + [d[c].to_numpy(float) for c in [*cols, y]])
        out[key if isinstance(key, tuple) else (key,)] = (len(d), W.T @ W)
    return out


def test_summary_layout_and_values(summ):
    names = ["Intercept", *COVS, "y"]
    direct = _direct_cells(DATA, ["site_id", "period"], COVS, "y")
    assert len(summ) == REF["cells"]["n_cells"] == len(direct)
    assert list(summ.columns[:3]) == ["site_id", "period", "n"]
    assert summ["small_cell"].dtype == bool and not summ["small_cell"].any()
    for row in summ.itertuples(index=False):
        n, WtW = direct[(row.site_id, row.period)]
        assert row.n == n
        for i, a in enumerate(names):
            for j in range(i, len(names)):
                if i == j == 0:
                    continue
                val = getattr(row, f"sp__{a}__{names[j]}")
                assert val == pytest.approx(WtW[i, j], rel=1e-12, abs=1e-12)  # float sums: rounding only


def test_engines_identical(tmp_path, summ):
    """pandas, DuckDB (DataFrame, Parquet, CSV) and Dask on a local 2-worker cluster: 1e-10 relative."""
    dask_dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    kw = dict(covariates=COVS, random=["1", "treated"], binary="event", threshold=9)
    ref = sa.summarize(DATA, ["site_id", "period"], **kw)
    pq, csv = tmp_path / "enc.parquet", tmp_path / "enc.csv"
    DATA.to_parquet(pq)
    DATA.to_csv(csv, index=False)
    outs = {
        "duckdb_df": sa.summarize(DATA, ["site_id", "period"], engine="duckdb", **kw),
        "duckdb_parquet": sa.summarize(pq, ["site_id", "period"], **kw),
        "duckdb_csv": sa.summarize(str(csv), ["site_id", "period"], **kw),
        "pandas_parquet": sa.summarize(pq, ["site_id", "period"], engine="pandas", **kw),
    }
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        ddf = dask_dd.from_pandas(DATA, npartitions=5)
        outs["dask"] = sa.summarize(ddf, ["site_id", "period"], **kw)
    for name, out in outs.items():
        pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-10, atol=0, obj=name)  # 1e-10 rel
    assert not ref["small_cell"].any()  # every cell has 9 rows, not < threshold = 9


def test_pandas_engine_reads_files_in_chunks(tmp_path, monkeypatch):
    """Chunked reading (here 100 rows per chunk) gives the DuckDB numbers, warning once for missing rows."""
    import sys

    summod = sys.modules["scaleup_analysis.summarize"]  # the module (sa.summarize is the function)
    monkeypatch.setattr(summod, "_CHUNK_ROWS", 100)
    df = DATA.copy()
    df.loc[[5, 400, 700], "y"] = np.nan
    kw = dict(covariates=COVS, binary="event")
    for suffix in (".parquet", ".csv"):
        path = tmp_path / f"enc{suffix}"
        df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
        with pytest.warns(RowsOmittedWarning, match="3 row") as rec:
            a = sa.summarize(path, ["site_id", "period"], engine="pandas", **kw)
        assert len([w for w in rec if issubclass(w.category, RowsOmittedWarning)]) == 1
        with pytest.warns(RowsOmittedWarning, match="3 row"):
            b = sa.summarize(path, ["site_id", "period"], engine="duckdb", **kw)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-10, atol=0)  # 1e-10 relative


def test_small_cell_flag():
    s = sa.summarize(DATA, "site_id", covariates=["treated"], threshold=55)
    assert (s["n"] == 54).all() and s["small_cell"].all()
    s = sa.summarize(DATA, "site_id", covariates=["treated"], threshold=54)
    assert not s["small_cell"].any()


def test_cells_add_up(summ):
    """Summing site x period cells gives the per-site summary (exact up to rounding, 1e-12)."""
    by_site = sa.summarize(DATA, "site_id", covariates=COVS, random=["1", "treated"])
    agg = summ.drop(columns=["period", "small_cell"]).groupby("site_id", as_index=False).sum()
    num = [c for c in by_site.columns if c.startswith("sp__") or c == "n"]
    np.testing.assert_allclose(agg[num].to_numpy(float), by_site[num].to_numpy(float), rtol=1e-12)


def test_row_order_and_binary_counts():
    shuffled = DATA.sample(frac=1.0, random_state=3)
    a = sa.summarize(DATA, ["site_id", "period", "treated"], outcome=None, covariates=[], binary="event")
    b = sa.summarize(shuffled, ["site_id", "period", "treated"], outcome=None, covariates=[], binary="event")
    pd.testing.assert_frame_equal(a, b)
    expect = DATA.groupby(["site_id", "period", "treated"])["event"].agg(["sum", "size"]).reset_index()
    np.testing.assert_array_equal(a["events"], expect["sum"])
    np.testing.assert_array_equal(a["n"], expect["size"])


def test_missing_rows_dropped_with_warning_same_in_all_engines():
    df = DATA.copy()
    df.loc[[3, 10, 500], "x"] = np.nan
    with pytest.warns(RowsOmittedWarning, match="3 row"):
        a = sa.summarize(df, "site_id", covariates=COVS)
    with pytest.warns(RowsOmittedWarning, match="3 row"):
        b = sa.summarize(df, "site_id", covariates=COVS, engine="duckdb")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-10)
    assert a["n"].sum() == len(df) - 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(covariates=["nope"]), "nope"),
        (dict(covariates=["site_id"], by="period"), "numeric"),
        (dict(binary="x"), "0/1"),
        (dict(engine="spark"), "engine"),
        (dict(threshold=-1), "threshold"),
        (dict(covariates=["treated"], by=["site_id", "treated"]), "by"),
    ],
)
def test_bad_input(kwargs, match):
    kw = dict(by="site_id", covariates=["treated"])
    kw.update(kwargs)
    by = kw.pop("by")
    for engine in ("pandas", "duckdb"):
        if kw.get("engine") == "spark" and engine == "duckdb":
            continue
        kw.setdefault("engine", engine)
        with pytest.raises(ScaleupDataError, match=match):
            sa.summarize(DATA, by, **kw)
        if kwargs.get("engine") is None:
            kw.pop("engine")


def test_infinite_values_rejected_by_every_engine():
    dask_dd = pytest.importorskip("dask.dataframe")
    df = DATA.copy()
    df.loc[7, "x"] = np.inf
    for src, engine in ((df, "pandas"), (df, "duckdb"), (dask_dd.from_pandas(df, npartitions=2), "dask")):
        with pytest.raises(ScaleupDataError, match="infinite"):
            sa.summarize(src, "site_id", covariates=COVS, engine=engine)


def test_bad_names_and_paths(tmp_path):
    df = DATA.rename(columns={"x": "x__1"})
    with pytest.raises(ScaleupDataError, match="__"):
        sa.summarize(df, "site_id", covariates=["x__1"])
    with pytest.raises(ScaleupDataError, match="does not exist"):
        sa.summarize(tmp_path / "missing.parquet")


# ------------------------------------------------------------------------------------ fits from summaries
@pytest.mark.parametrize("model", sorted(MODELS))
def test_mixed_model_from_summary_matches_lme4(summ, model):
    re_formula, reml = MODELS[model]
    ref = REF["lmm"][model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sa.mixed_model_from_summary(summ, "y ~ treated + x", group="site_id", re_formula=re_formula, reml=reml)
    fe = res.fixed
    # iterative mixed model: 1e-4 relative (CONTRIBUTING); lme4's bobyqa stops earlier than our optimiser
    assert rel(fe["estimate"], ref["fixed"]["estimate"]) < 1e-4
    assert rel(fe["se"], ref["fixed"]["se"]) < 1e-4
    assert rel(fe["df"], ref["fixed"]["df"]) < 1e-4  # lmerTest Satterthwaite df
    assert rel(res.loglik, ref["loglik"]) < 1e-6  # the log-likelihood is flat at the optimum: tighter
    assert rel(res.theta, np.atleast_1d(ref["theta"])) < 1e-4
    assert rel(res.sigma2, ref["sigma2"]) < 1e-4
    assert res.n_obs == len(DATA) and res.n_groups == 14


@pytest.mark.parametrize("model", sorted(MODELS))
def test_mixed_model_from_summary_equals_row_fit(summ, model):
    """Same engine on summed cross-products vs on the rows: 1e-8 relative."""
    re_formula, reml = MODELS[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sa.mixed_model_from_summary(summ, "y ~ treated + x", group="site_id", re_formula=re_formula, reml=reml)
        b = sa.mixed_model(DATA, "y ~ treated + x", group="site_id", re_formula=re_formula, reml=reml)
    assert rel(a.fixed["estimate"], b.fixed["estimate"]) < 1e-8
    assert rel(a.fixed["se"], b.fixed["se"]) < 1e-8
    assert rel(a.loglik, b.loglik) < 1e-8
    assert rel(a.theta, b.theta) < 1e-6  # theta: optimum located to ~1e-7 (rounding of sums differs)
    assert rel(a.variance_components["variance"], b.variance_components["variance"]) < 1e-6
    se_a = a.random_effects.sort_values(["term", "group"])["estimate"].to_numpy()
    se_b = b.random_effects.sort_values(["term", "group"])["estimate"].to_numpy()
    np.testing.assert_allclose(se_a, se_b, rtol=1e-6, atol=1e-9)  # BLUPs follow theta: 1e-6
    assert a.to_frame().shape == b.to_frame().shape


def test_site_effects_and_meta_analysis_match_r(summ):
    with pytest.warns(RowsOmittedWarning, match="2 site"):  # the two never-treated sites
        eff = sa.site_effects_from_summary(summ, "y ~ treated + x", term="treated")
    ref = pd.DataFrame(REF["per_site"])
    assert eff["site_id"].tolist() == ref["site_id"].tolist()
    assert rel(eff["yi"], ref["yi"]) < 1e-8  # closed form (lm): 1e-6 required, 1e-8 observed
    assert rel(eff["vi"], ref["vi"]) < 1e-8
    ma = sa.meta_analysis(eff, yi="yi", vi="vi", method="REML", slab="site_id")
    m = REF["meta"]
    # metafor rma(method = "REML"): 1e-6 relative
    assert rel(ma.estimate, m["mu"]) < 1e-6
    assert rel(ma.se, m["se"]) < 1e-6
    assert rel(ma.tau2, m["tau2"]) < 1e-6
    assert rel(ma.I2, m["I2"]) < 1e-6
    assert rel(ma.Q, m["QE"]) < 1e-6


def test_binomial_glmm_from_cells_equals_bernoulli_fit():
    cells = sa.summarize(DATA, ["site_id", "period", "treated"], outcome=None, covariates=[], binary="event")
    agg = sa.mixed_model_from_summary(cells, "events ~ treated", group="site_id", family="binomial")
    rows = sa.mixed_model(DATA, "event ~ treated", group="site_id", family="binomial")
    # same Laplace optimiser on the same likelihood (up to a constant): 1e-6 relative
    assert rel(agg.fixed["estimate"], rows.fixed["estimate"]) < 1e-6
    assert rel(agg.theta, rows.theta) < 1e-6
    assert rel(agg.fixed["se"], rows.fixed["se"]) < 1e-4  # numerical Hessian: 1e-4
    const = float(np.sum(gammaln(cells["n"] + 1) - gammaln(cells["events"] + 1)
                         - gammaln(cells["n"] - cells["events"] + 1)))
    assert agg.loglik - rows.loglik == pytest.approx(const, rel=1e-8)
    # and both equal lme4::glmer (iterative: 1e-4)
    for key, res in (("aggregated", agg), ("rows", rows)):
        g = REF["glmm"][key]
        assert rel(res.fixed["estimate"], g["beta"]) < 1e-4
        assert rel(res.theta, np.atleast_1d(g["theta"])) < 1e-4
        assert rel(res.loglik, g["loglik"]) < 1e-6


def test_fit_errors(summ):
    with pytest.raises(ScaleupDataError, match="was not summarised"):
        sa.mixed_model_from_summary(summ, "z ~ treated", group="site_id")
    with pytest.raises(ScaleupDataError, match="never summarised"):
        sa.mixed_model_from_summary(summ, "y ~ treated + age", group="site_id")
    with pytest.raises(ScaleupDataError, match="plain column"):
        sa.mixed_model_from_summary(summ, "y ~ np.log(x)", group="site_id")
    with pytest.raises(ScaleupDataError, match="group"):
        sa.mixed_model_from_summary(summ, "y ~ x", group="region")
    with pytest.raises(ScaleupDataError, match="term"):
        sa.site_effects_from_summary(summ, "y ~ x", term="treated")


def test_cell_level_covariates_enter_the_fits():
    """`treated` summarised as a cell key (constant within site x period) instead of a row covariate."""
    cells = sa.summarize(DATA, ["site_id", "period", "treated"], covariates=["x"], random=["1"], binary="event")
    ref = REF["lmm"]["rs_reml"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sa.mixed_model_from_summary(cells, "y ~ treated + x", group="site_id", re_formula="1 + treated")
    assert rel(res.fixed["estimate"], ref["fixed"]["estimate"]) < 1e-4  # lme4, iterative: 1e-4
    assert rel(res.loglik, ref["loglik"]) < 1e-6
    eff = sa.site_effects_from_summary(cells[cells["site_id"].isin(REF["per_site"]["site_id"])],
                                       "y ~ treated + x", term="treated")
    assert rel(eff["yi"], REF["per_site"]["yi"]) < 1e-8  # lm(): closed form
    assert rel(eff["vi"], REF["per_site"]["vi"]) < 1e-8


def test_federated_doc_example_runs(tmp_path, monkeypatch, capsys):
    """The worked example of docs/federated.md runs as written (its own asserts compare with the rows)."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "federated.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.setattr("tempfile.mkdtemp", lambda *a, **k: str(tmp_path))
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile("\n".join(blocks), "docs/federated.md", "exec"), ns)  # noqa: S102
    assert "cells;" in capsys.readouterr().out


def test_property_relabel_and_reorder_invariance():
    """Relabelling sites and shuffling rows permutes the summary rows only (hypothesis)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=15, deadline=None)
    @given(seed=st.integers(0, 10_000))
    def check(seed):
        rng = np.random.default_rng(seed)
        labels = {s: f"T{v:02d}" for s, v in zip(sorted(DATA["site_id"].unique()), rng.permutation(14))}
        df = DATA.sample(frac=1.0, random_state=seed).assign(site_id=lambda d: d["site_id"].map(labels))
        a = sa.summarize(DATA, "site_id", covariates=COVS)
        b = sa.summarize(df, "site_id", covariates=COVS)
        b["site_id"] = b["site_id"].map({v: k for k, v in labels.items()})
        b = b.sort_values("site_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)  # sums reordered: rounding only

    check()


@pytest.mark.parametrize("seed", [None, 11])
def test_step5_site_variation_model_from_cells_equals_the_row_level_fit(seed):
    """Issue 19: the patient-level model of step 5 is fitted from per-cell sums; it must equal the fit
    on the rows (lme4's criterion depends on the rows only through these cross-products). The embedded
    study and another simulated draw; the second keeps only 40 % of the patients (unbalanced cells)."""
    from scaleup_analysis.data.patient_level import cells_of_frame
    from scaleup_analysis.steps.step5_monitoring import site_variance_model

    enc = sa.load_study(seed=seed).tables["encounters"]
    if seed is not None:
        enc = enc.sample(frac=0.4, random_state=seed).reset_index(drop=True)
    cells_fit, n_rows = site_variance_model(cells_of_frame(enc).cells)
    rows_fit = sa.mixed_model(enc, "y ~ treated + C(period)", group="site_id")
    assert n_rows == rows_fit.n_obs
    a, b = cells_fit.fixed.loc["treated"], rows_fit.fixed.loc["treated"]
    for col in ("estimate", "se", "df", "ci_low", "ci_high"):
        assert a[col] == pytest.approx(b[col], rel=1e-8)
    period_rows = [t for t in rows_fit.fixed.index if t.startswith("C(period)")]
    assert np.allclose(cells_fit.fixed.loc[[f"period_{t.split('T.')[1][:-1]}" for t in period_rows], "estimate"],
                       rows_fit.fixed.loc[period_rows, "estimate"], rtol=1e-8, atol=1e-10)
    assert cells_fit.icc == pytest.approx(rows_fit.icc, rel=1e-7)
    assert cells_fit.loglik == pytest.approx(rows_fit.loglik, rel=1e-10)
    assert np.allclose(cells_fit.variance_components["variance"], rows_fit.variance_components["variance"],
                       rtol=1e-7)
    ra = cells_fit.random_effects.set_index("group")["estimate"]
    rb = rows_fit.random_effects.set_index("group")["estimate"]
    assert np.allclose(ra.loc[rb.index], rb, rtol=1e-6, atol=1e-9)
