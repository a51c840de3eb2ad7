"""The site x period panel and the model fit shared by :mod:`.effects` and :mod:`.dose_response`.

* :func:`site_period_panel` - site x period outcomes (from the ``outcomes`` table or patient-level
  rows) with the treatment indicator, the adoption period and the time since adoption;
* :func:`cumulative_counts` - cumulative numbers of adaptations by fidelity relation;
* :func:`adoption_terms` - the innovation's own effect (per period since adoption, or one term);
* :func:`fit_panel_model` - ``y ~ C(period) + terms`` with site effects: a mixed model (site random
  effects, Mundlak means) or OLS with site fixed effects and CR1 cluster-robust standard errors;
* :func:`check_options`, :func:`drop_ramp_up` - the options both public functions share.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_level, check_spread, first_values, numeric_column
from ..errors import RowsOmittedWarning, ScaleupDataError
from .frame import _check_sites

__all__: list[str] = []

#: Largest magnitude of an outcome value: squares and cross-products of the panel model must stay finite.
_MAX_ABS = 1e100

REL_COLS = (("fidelity-consistent", "n_consistent"), ("fidelity-inconsistent", "n_inconsistent"),
             ("unknown", "n_unknown"))
# names of the panel's model variables in the public ``panel`` attribute (docs/glossary.md)
PANEL_NAMES = {"D": "treatment", "adopt": "adoption_period", "exposure": "time_since_adoption",
                "first_inconsistent": "first_inconsistent_period", "event_k": "event_time"}


def site_period_panel(data, sites, indicator, outcome, site, period, treatment, table="data", *,
                      fn: str = "") -> pd.DataFrame:
    """Site x period outcome panel: site_id, period, y, D (0/1), adopt (float, inf never), exposure.

    ``fn`` names the public function in the messages that say so."""
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"table '{table}' must be a pandas DataFrame, got {type(data).__name__}.")
    for arg, col in (("site", site), ("period", period)):
        if col not in data.columns:
            raise ScaleupDataError(f"table '{table}': no column {col!r} (argument {arg!r}).")
    if "indicator_id" in data.columns:  # the outcomes table
        if indicator is None:
            raise ScaleupDataError(
                f"table '{table}' is the outcomes table: name the indicator analysed with indicator=..., "
                f"one of {sorted(data['indicator_id'].astype(str).unique())[:10]}."
            )
        d = data[data["indicator_id"].astype(str) == str(indicator)]
        if d.empty:
            raise ScaleupDataError(
                f"table '{table}' (outcomes): no row with indicator_id == {indicator!r} (argument 'indicator'); "
                f"available: {sorted(data['indicator_id'].astype(str).unique())[:10]}."
            )
        mean = (pd.Series(numeric_column(d, "mean", f"table '{table}' (outcomes)", missing=True), index=d.index)
                if "mean" in d else pd.Series(np.nan, index=d.index))
        if mean.notna().all():
            val = mean
        else:  # row by row: a missing mean is events / n where the indicator is a proportion
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (pd.to_numeric(d["events"], errors="coerce") / pd.to_numeric(d["n"], errors="coerce")
                         if {"events", "n"} <= set(d.columns) else pd.Series(np.nan, index=d.index))
            val = mean.where(mean.notna(), ratio.where(np.isfinite(ratio.astype(float))))
        p = pd.DataFrame({"site_id": d[site].astype(str).to_numpy(), "period": d[period].to_numpy(),
                          "y": val.to_numpy(dtype=float)})
        if p.duplicated(["site_id", "period"]).any():
            raise ScaleupDataError(
                f"table '{table}' (outcomes): several rows per site and period for indicator {indicator!r}."
            )
        tr = None
        where = f"{fn + ': ' if fn else ''}table '{table}' (outcomes), column 'mean' (indicator {indicator!r})"
    else:  # patient- or site-period-level rows: averaged per site-period
        ycol = outcome or "y"
        where = f"{fn + ': ' if fn else ''}table '{table}', column {ycol!r} (argument 'outcome')"
        if ycol not in data.columns:
            raise ScaleupDataError(f"table '{table}': no outcome column {ycol!r} (argument 'outcome').")
        cols = {"y": pd.Series(numeric_column(data, ycol, f"table '{table}'", arg="outcome", missing=True),
                               index=data.index)}
        if treatment is not None and treatment in data.columns:
            cols["D"] = pd.to_numeric(data[treatment], errors="coerce")
        d = pd.DataFrame({"site_id": data[site].astype(str).to_numpy(), "period": data[period].to_numpy(),
                          **{k: v.to_numpy() for k, v in cols.items()}})
        g = d.groupby(["site_id", "period"], sort=True)
        p = g["y"].mean().reset_index()
        tr = g["D"].max().reset_index() if "D" in d else None
    with np.errstate(invalid="ignore"):
        huge = (~np.isfinite(p["y"]) & p["y"].notna()) | (p["y"].abs() > _MAX_ABS)
    if huge.any():
        raise ScaleupDataError(
            f"{where}: the outcome is infinite or beyond +/-{_MAX_ABS:g} in {int(huge.sum())} site-period(s) "
            f"(first sites: {first_values(pd.unique(p.loc[huge, 'site_id']))}); correct it or rescale it."
        )
    bad = p["y"].isna().to_numpy()
    if bad.any():
        warnings.warn(f"{bad.sum()} site-period(s) without an outcome value were left out.", RowsOmittedWarning,
                      stacklevel=3)
        p = p[~bad]
    _check_spread(p, where)
    p["period"] = pd.to_numeric(p["period"]).astype(np.int64)
    if sites is not None:
        _check_sites(sites, ["site_id", "adoption_period"])
        s = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")
        unknown = ~p["site_id"].isin(s.index)
        if unknown.any():
            raise ScaleupDataError(
                f"table '{table}': {int(unknown.sum())} row(s) name sites absent from table 'sites' (e.g. "
                f"{p.loc[unknown, 'site_id'].iloc[0]!r}); add them to 'sites'."
            )
        adopt = pd.to_numeric(s["adoption_period"], errors="coerce").astype(float).fillna(np.inf)
        p["adopt"] = p["site_id"].map(adopt).to_numpy(dtype=float)
    elif tr is not None:
        first = tr[tr["D"] == 1].groupby("site_id")["period"].min().astype(float)
        p["adopt"] = p["site_id"].map(first).fillna(np.inf).to_numpy(dtype=float)
    else:
        raise ScaleupDataError(
            "adoption periods are unknown: pass the 'sites' table (column 'adoption_period') or, with "
            "patient-level data, the name of the 0/1 treatment column as treated='treated'."
        )
    p["D"] = (p["period"] >= p["adopt"]).astype(np.int64)
    p["exposure"] = np.where(p["D"] == 1, p["period"] - np.where(np.isfinite(p["adopt"]), p["adopt"], 0), -1).astype(
        np.int64
    )
    return p.reset_index(drop=True)


def _check_spread(p: pd.DataFrame, where: str) -> None:
    """Refuse a constant outcome, or one whose values differ too little (:func:`check_spread`)."""
    y = p["y"].to_numpy(dtype=float)
    if not y.size:
        return
    spread = float(np.ptp(y))
    if spread == 0:
        raise ScaleupDataError(
            f"{where}: the outcome is constant ({first_values(y[:1])} in all {len(p)} site-periods); there is no "
            "variation to relate to adaptations or fidelity. Check the indicator or outcome column."
        )
    check_spread(y, where, f"the {len(p)} site-period(s) (first sites: {first_values(pd.unique(p['site_id']))})",
                 consequence=", so the standard errors would be 0")


def cumulative_counts(p: pd.DataFrame, ad: pd.DataFrame) -> pd.DataFrame:
    """Add n_consistent, n_inconsistent, n_unknown (adaptations started at or before t, counted while
    the site delivers the innovation) and first_inconsistent (period it acts, NaN if none)."""
    rel = ad["fidelity_relation"].astype(object)
    for code, col in REL_COLS:
        a = ad[rel == code]
        cnt = np.zeros(len(p))
        if len(a):
            by_site = {s: np.sort(g["period"].to_numpy()) for s, g in a.groupby("site_id")}
            for i, (s, t) in enumerate(zip(p["site_id"].to_numpy(), p["period"].to_numpy())):
                arr = by_site.get(s)
                if arr is not None:
                    cnt[i] = np.searchsorted(arr, t, side="right")
        p[col] = cnt * p["D"].to_numpy()
    first = ad[rel == "fidelity-inconsistent"].groupby("site_id")["period"].min().astype(float)
    f = p["site_id"].map(first).to_numpy(dtype=float)
    p["first_inconsistent"] = np.where(np.isfinite(f), np.maximum(f, p["adopt"].to_numpy()), np.nan)
    return p


def adoption_terms(p: pd.DataFrame, adoption_effects: str) -> list[str]:
    if adoption_effects == "treatment":
        p["treated_"] = p["D"].astype(float)
        return ["treated_"]
    names = []
    for e in sorted(p.loc[p["D"] == 1, "exposure"].unique()):
        nm = f"exposure_{int(e)}"
        p[nm] = ((p["D"] == 1) & (p["exposure"] == e)).astype(float)
        names.append(nm)
    return names


def fit_panel_model(p: pd.DataFrame, terms: list[str], inference: str, level: float, random_slope: bool,
         within: Sequence[str] = ()) -> tuple:
    """Fit y ~ C(period) + terms with site effects; return (coef table, model object).

    ``within``: terms whose coefficients must come from within-site variation only; mixed models get
    their site means (Mundlak 1978: mean over all rows and mean over treated rows x D) as covariates.
    """
    n_sites = p["site_id"].nunique()
    if n_sites < 2:
        raise ScaleupDataError(
            f"the outcome panel has {n_sites} site with an outcome value; site effects and cluster-robust "
            "standard errors need at least 2 sites (and, for a useful answer, many more)."
        )
    if np.ptp(p["y"].to_numpy(dtype=float)) == 0:
        raise ScaleupDataError(
            f"the outcome is constant ({first_values(p['y'].iloc[:1])} in all {len(p)} site-periods); there is no "
            "variation to relate to adaptations or fidelity. Check the indicator or outcome column."
        )
    formula = "y ~ C(period) + " + " + ".join(terms)
    if inference == "mixed":
        from ..heterogeneity.mixed import mixed_model

        extra = []
        if within:
            p = p.copy()
            D = p["D"].to_numpy(dtype=float)
            for j, t in enumerate(within):
                m_all = p.groupby("site_id")[t].transform("mean").to_numpy(dtype=float)
                tr_mean = p[t].where(p["D"] == 1).groupby(p["site_id"]).transform("mean").fillna(0.0)
                for nm, v in ((f"mundlak_{j}", m_all), (f"mundlak_d{j}", tr_mean.to_numpy(dtype=float) * D)):
                    if np.ptp(v) > 0:
                        p[nm] = v
                        extra.append(nm)
            # drop site-mean columns that are collinear with the rest of the design
            if extra:
                import patsy

                X = patsy.dmatrix("~ C(period) + " + " + ".join(terms), p, return_type="dataframe").to_numpy()
                keep = []
                for nm in extra:
                    A_ = np.column_stack([X, p[keep].to_numpy(dtype=float)]) if keep else X
                    v = p[nm].to_numpy(dtype=float)
                    b = np.linalg.lstsq(A_.T @ A_, A_.T @ v, rcond=None)[0]
                    resid = v - A_ @ b
                    if resid @ resid > 1e-10 * (v @ v):  # not a linear combination of the design
                        keep.append(nm)
                extra = keep
            formula = formula + "".join(f" + {nm}" for nm in extra)
        re = "1 + D" if random_slope else "1"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RowsOmittedWarning)
            m = mixed_model(p, formula, group="site_id", re_formula=re, reml=True, level=level)
        fe = m.fixed
        return fe, m
    # OLS with period and site fixed effects (and site x treatment effects), CR1 cluster-robust by site
    codes, _ = pd.factorize(p["site_id"], sort=True)
    G = int(codes.max()) + 1
    per = pd.factorize(p["period"], sort=True)[0]
    n = len(p)
    blocks = [np.eye(G)[codes], np.eye(int(per.max()) + 1)[per][:, 1:], p[terms].to_numpy(dtype=float)]
    if random_slope:  # site-specific treatment effects: D x site, the first adopting site as reference
        D = p["D"].to_numpy(dtype=float)
        adopters = np.unique(codes[D == 1])
        if adopters.size > 1:
            blocks.append((np.eye(G)[codes][:, adopters[1:]]) * D[:, None])
    X = np.hstack(blocks)
    yv = p["y"].to_numpy(dtype=float)
    # pseudo-inverse of X'X from its eigen-decomposition (rank-deficient designs allowed)
    w, Q = np.linalg.eigh(X.T @ X)
    pos = w > w.max() * X.shape[1] * np.finfo(float).eps * 10
    XtX_inv = (Q[:, pos] / w[pos]) @ Q[:, pos].T
    beta = XtX_inv @ (X.T @ yv)
    e = yv - X @ beta
    K = int(pos.sum())
    score = np.zeros((G, X.shape[1]))
    np.add.at(score, codes, X * e[:, None])
    V = XtX_inv @ (score.T @ score) @ XtX_inv * (G / (G - 1)) * ((n - 1) / (n - K))
    idx = slice(G + int(per.max()), G + int(per.max()) + len(terms))
    est, se = beta[idx], np.sqrt(np.diag(V)[idx])
    dfree = G - 1
    t = est / se
    q = stats.t.ppf(0.5 + level / 2, dfree)
    fe = pd.DataFrame({"estimate": est, "se": se, "statistic": t, "df": float(dfree),
                       "pvalue": 2 * stats.t.sf(np.abs(t), dfree), "ci_low": est - q * se, "ci_high": est + q * se},
                      index=pd.Index(terms, name="term"))
    n_per = int(per.max()) + 1
    period_effects = pd.Series(np.r_[0.0, beta[G : G + n_per - 1]], index=np.sort(p["period"].unique()))
    m = {"coef": fe, "n_obs": n, "n_clusters": G, "rank": K, "vcov_type": "CR1", "period_effects": period_effects}
    return fe, m


def check_options(inference, adoption_effects, level):
    if inference not in ("mixed", "cluster"):
        raise ScaleupDataError(f"argument 'inference' = {inference!r}: choose 'mixed' or 'cluster'.")
    if adoption_effects not in ("exposure", "treatment"):
        raise ScaleupDataError(
            f"argument 'adoption_effects' = {adoption_effects!r}: choose 'exposure' (one effect per period "
            "since adoption) or 'treatment' (a single treatment indicator)."
        )
    check_level(level)


def check_min_exposure(min_exposure) -> None:
    if isinstance(min_exposure, bool) or not isinstance(min_exposure, (int, np.integer)) or min_exposure < 0:
        raise ScaleupDataError(f"argument 'min_exposure' = {min_exposure!r}: give an integer >= 0.")


def drop_ramp_up(p: pd.DataFrame, min_exposure) -> pd.DataFrame:
    """The panel without the treated site-periods less than ``min_exposure`` periods after adoption."""
    check_min_exposure(min_exposure)
    if min_exposure > 0:
        p = p[(p["D"] == 0) | (p["exposure"] >= min_exposure)].reset_index(drop=True)
    return p
