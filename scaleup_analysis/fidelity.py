r"""Implementation fidelity: adherence, dose, coverage, a composite index, bands and drift.

The measures follow the conceptual framework for implementation fidelity of Carroll et al. (2007),
in which *adherence* (was each core component delivered as designed?) is the bottom-line measure and
its subcategories *content*, *dose* (frequency, duration) and *coverage* (who was reached) describe
how much of the intervention reached its target; Dane & Schneider (1998) call the amount delivered
*exposure*. From the ``fidelity_ratings``, ``components`` and ``delivery`` tables of
``docs/data_dictionary.md``:

* :func:`session_adherence` - adherence of each observed session (core components only);
* :func:`fidelity_index` - site x period adherence, dose delivered, coverage, exposure and a composite
  fidelity index with its band (high / moderate / low);
* :func:`fidelity_by` - the same measures pooled by region x period (or any grouping);
* :func:`classify_fidelity` - the bands (default high >= 80 %, low <= 50 %);
* :func:`fidelity_drift` - per-site OLS trend of adherence over periods and runs of declines;
* :func:`plot_fidelity` - heatmap of site (or region) x period.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from scipy import stats

from ._checks import (MAX_SHOWN, check_level, checked_inputs, first_values, numeric_column, require_columns, rows_text,
                      short_repr)
from ._display import Displayed
from ._style import (GREY, MISSING, SEQUENTIAL, SMALL_FONT_SIZE, WORSE, data_text, group_rows, new_axes, region_labels,
                     styled, thinned, ticks_inside)
from .errors import RowsOmittedWarning, ScaleupDataError, ScaleupWarning
from .i18n import N_
from .narrative import Text

__all__ = [
    "session_adherence",
    "fidelity_index",
    "fidelity_by",
    "classify_fidelity",
    "fidelity_drift",
    "FidelityDrift",
    "plot_fidelity",
]

_DIMENSIONS = ("adherence", "dose", "coverage")
_DELIVERY_COLS = ("sessions_planned", "sessions_delivered", "eligible", "reached")
_COMPONENT_COLS = ("core", "weight", "scale_min", "scale_max")
_BAND_LABELS = ("low", "moderate", "high")


# ------------------------------------------------------------------------------------ checks
#: Largest magnitude of a value followed over periods: its squares (least-squares slope) must stay finite.
_MAX_ABS = 1e100


#: Rounding allowed beyond [0, 1] in a proportion computed as a weighted mean (1 + 1e-12 is still 1).
_ROUNDING = 1e-9


def _numeric(df: pd.DataFrame, table: str, col: str, *, allow_missing: bool = False) -> np.ndarray:
    return numeric_column(df, col, f"table '{table}'", missing=allow_missing, booleans=False)


def _fail(table: str, col: str, what: str, df: pd.DataFrame, mask, fix: str) -> None:
    if np.asarray(mask, dtype=bool).any():
        raise ScaleupDataError(f"{table}: column {col!r} {what} in {rows_text(df, mask)}. {fix}")


def _check_components(components: pd.DataFrame, component: str) -> pd.DataFrame:
    t = "components"
    require_columns(components, t, (component, *_COMPONENT_COLS), label=t)
    comp = components[[component, *_COMPONENT_COLS]].copy()
    dup = comp[component].duplicated(keep=False).to_numpy()
    _fail(t, component, "has duplicated ids", comp, dup, "Each component must appear once.")
    core = comp["core"]
    if not pd.api.types.is_bool_dtype(core):
        ok = core.isin([True, False, 0, 1]).to_numpy() & core.notna().to_numpy()
        _fail(t, "core", "is not True/False", comp, ~ok, "Use True for core components, False otherwise.")
    comp["core"] = core.astype(bool)
    for c in ("weight", "scale_min", "scale_max"):
        comp[c] = _numeric(comp, t, c)
    _fail(t, "weight", "is not > 0", comp, comp["weight"].to_numpy() <= 0, "Weights must be positive.")
    _fail(t, "scale_max", "is not greater than scale_min", comp,
          (comp["scale_max"] <= comp["scale_min"]).to_numpy(), "Correct the rating scale bounds.")
    if not comp["core"].any():
        raise ScaleupDataError(
            "components: no core component (column 'core' is False everywhere); adherence is defined "
            "over core components. Mark the active ingredients with core=True."
        )
    return comp.set_index(component)


def _check_bands(bands) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bands)
    except (TypeError, ValueError):
        raise ScaleupDataError(
            f"bands must be two numbers (low_max, high_min), e.g. (0.50, 0.80); got {bands!r}."
        ) from None
    if not (0 <= lo < hi <= 1):
        raise ScaleupDataError(
            f"bands=({lo}, {hi}) must satisfy 0 <= low_max < high_min <= 1 (proportions, not %)."
        )
    return lo, hi


def _check_weights(weights, available: Sequence[str]) -> dict[str, float]:
    if weights is None:
        return {k: 1.0 for k in available}
    if not isinstance(weights, Mapping) or not weights:
        raise ScaleupDataError(
            f"weights must be a non-empty dict over {list(_DIMENSIONS)}, e.g. "
            f"{{'adherence': 2, 'dose': 1, 'coverage': 1}}; got {weights!r}."
        )
    out = {}
    for k, v in weights.items():
        if k not in _DIMENSIONS:
            raise ScaleupDataError(f"weights: unknown dimension {k!r}; choose among {list(_DIMENSIONS)}.")
        if k not in available:
            raise ScaleupDataError(
                f"weights: dimension {k!r} needs the delivery table (columns {list(_DELIVERY_COLS)}); "
                "pass delivery=... or drop it from weights."
            )
        v = float(v)
        if not np.isfinite(v) or v < 0:
            raise ScaleupDataError(f"weights: {k!r} must be a finite number >= 0, got {v}.")
        out[k] = v
    if sum(out.values()) <= 0:
        raise ScaleupDataError("weights: at least one weight must be > 0.")
    return out


# --------------------------------------------------------------------------------- measures
@checked_inputs
def session_adherence(
    data: pd.DataFrame,
    components: pd.DataFrame,
    *,
    site: str = "site_id",
    session: str = "session_id",
    period: str = "period",
    rater: str = "rater_id",
    component: str = "component_id",
    score: str = "score",
) -> pd.DataFrame:
    r"""Adherence of each observed session: weighted share of the core components delivered.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``fidelity_ratings`` table: one row per site, session, rater and component.
    components : pandas.DataFrame
        The ``components`` table (``component_id``, ``core``, ``weight``, ``scale_min``,
        ``scale_max``).
    site, session, period, rater, component, score : str
        Column names in ``data`` (``component`` also names the id column of ``components``).

    Returns
    -------
    pandas.DataFrame
        One row per session: ``site``, ``session``, ``period``, ``adherence`` (in [0, 1]),
        ``n_raters`` and ``n_core_rated`` (core components rated, averaged over raters).

    Raises
    ------
    ScaleupDataError
        Missing columns, unknown components, scores outside their component's scale, duplicated
        (site, session, rater, component) rows, a session recorded in two periods, or no core
        component.

    Notes
    -----
    Each score is rescaled to [0, 1] by its component's scale,
    :math:`x^* = (x - \text{scale\_min}) / (\text{scale\_max} - \text{scale\_min})`. For rater
    :math:`r` of session :math:`j` the adherence is the weighted mean over the core components
    :math:`C_{jr}` that rater rated, :math:`a_{jr} = \sum_{c \in C_{jr}} w_c x^*_{jrc} / \sum_{c
    \in C_{jr}} w_c`; the session adherence is the mean over its raters,
    :math:`a_j = \frac{1}{R_j} \sum_r a_{jr}`. Non-core (adaptable) components do not enter
    adherence (Carroll et al., 2007). A core component that was not rated is left out (its weight
    is redistributed), not counted as 0: rate undelivered components at ``scale_min``. A session
    with no core-component rating at all is left out (with a ``RowsOmittedWarning``).

    References
    ----------
    Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J., & Balain, S. (2007). A conceptual
    framework for implementation fidelity. *Implementation Science*, 2, 40.
    https://doi.org/10.1186/1748-5908-2-40

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> components = pd.DataFrame({"component_id": ["C1", "C2", "P1"], "core": [True, True, False],
    ...                            "weight": [2.0, 1.0, 1.0], "scale_min": [0.0, 1.0, 0.0],
    ...                            "scale_max": [4.0, 5.0, 1.0]})
    >>> data = pd.DataFrame({"site_id": "A", "session_id": "A-1", "period": 1,
    ...                         "rater_id": ["r1", "r1", "r1", "r2", "r2"],
    ...                         "component_id": ["C1", "C2", "P1", "C1", "C2"],
    ...                         "score": [3.0, 5.0, 0.0, 2.0, 3.0]})
    >>> sa.session_adherence(data, components).round(4)
      site_id session_id  period  adherence  n_raters  n_core_rated
    0       A        A-1       1     0.6667         2           2.0
    """
    t = "fidelity_ratings"
    require_columns(data, t, (site, session, period, rater, component, score), label=t)
    comp = _check_components(components, component)
    r = data[[site, session, period, rater, component, score]].copy()
    for c in (site, session, rater, component):
        _fail(t, c, "is missing", r, r[c].isna().to_numpy(), "Fill in the identifiers.")
    per = _numeric(r, t, period)
    _fail(t, period, "is not an integer >= 1", r, (per < 1) | (per != np.round(per)),
          "Periods are integers 1..T.")
    r[period] = per.astype(np.int64)
    r[score] = _numeric(r, t, score)
    unknown = ~r[component].isin(comp.index).to_numpy()
    _fail(t, component, "refers to components not in the components table", r, unknown,
          "Add them to 'components' or correct the ids.")
    dup = r.duplicated([site, session, rater, component], keep=False).to_numpy()
    _fail(t, component, "is rated more than once by the same rater in the same session", r, dup,
          "Keep one row per (site, session, rater, component).")
    n_per = r.groupby([site, session])[period].transform("nunique").to_numpy()
    _fail(t, period, "differs within a session", r, n_per > 1, "A session belongs to one period.")
    lo = r[component].map(comp["scale_min"]).to_numpy()
    hi = r[component].map(comp["scale_max"]).to_numpy()
    x = r[score].to_numpy()
    _fail(t, score, "is outside its component's [scale_min, scale_max]", r, (x < lo) | (x > hi),
          "Correct the scores or the scales in 'components'.")

    core = r[component].map(comp["core"]).to_numpy(dtype=bool)
    all_sessions = r[[site, session]].drop_duplicates()
    r = r.loc[core]
    if r.empty:
        raise ScaleupDataError(
            "fidelity_ratings: no rating of a core component; adherence cannot be computed."
        )
    n_left_out = len(all_sessions) - len(r[[site, session]].drop_duplicates())
    if n_left_out:
        warnings.warn(
            f"fidelity_ratings: {n_left_out} session(s) have no rating of a core component and are "
            "left out of adherence (only adaptable components were rated).",
            RowsOmittedWarning,
            stacklevel=2,
        )
    w = r[component].map(comp["weight"]).to_numpy()
    lo, hi = lo[core], hi[core]
    r = r.assign(_wx=w * (r[score].to_numpy() - lo) / (hi - lo), _w=w, _n=1.0)
    per_rater = r.groupby([site, session, period, rater], sort=True)[["_wx", "_w", "_n"]].sum()
    per_rater["adherence"] = per_rater["_wx"] / per_rater["_w"]
    out = per_rater.groupby(level=[0, 1, 2], sort=True).agg(
        adherence=("adherence", "mean"), n_raters=("adherence", "size"), n_core_rated=("_n", "mean")
    )
    return out.reset_index()


def _combine(frame: pd.DataFrame, weights: Mapping[str, float], bands) -> pd.DataFrame:
    """Add ``fidelity_index`` (weighted mean of the dimensions, dose capped at 1) and ``band``."""
    total = 0.0
    acc = np.zeros(len(frame))
    for k, wk in weights.items():
        if wk == 0:
            continue
        x = frame[k].to_numpy(dtype=float)
        if k == "dose":
            x = np.minimum(x, 1.0)
        acc = acc + wk * x
        total += wk
    frame["fidelity_index"] = acc / total
    frame["band"] = classify_fidelity(frame["fidelity_index"], bands=bands).array
    frame.attrs["fidelity_weights"] = dict(weights)
    return frame


def _delivery_measures(frame: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        planned = frame["sessions_planned"].to_numpy(dtype=float)
        eligible = frame["eligible"].to_numpy(dtype=float)
        frame["dose"] = np.where(planned > 0, frame["sessions_delivered"].to_numpy(dtype=float) / planned, np.nan)
        frame["coverage"] = np.where(eligible > 0, frame["reached"].to_numpy(dtype=float) / eligible, np.nan)
    frame["exposure"] = np.minimum(frame["dose"], 1.0) * frame["coverage"]
    return frame


@checked_inputs
def fidelity_index(
    data: pd.DataFrame,
    components: pd.DataFrame,
    delivery: pd.DataFrame | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    bands: Sequence[float] = (0.50, 0.80),
    site: str = "site_id",
    session: str = "session_id",
    period: str = "period",
    rater: str = "rater_id",
    component: str = "component_id",
    score: str = "score",
) -> pd.DataFrame:
    r"""Site x period fidelity: adherence, dose delivered, coverage, exposure and a composite index.

    Parameters
    ----------
    data, components : pandas.DataFrame
        The ``fidelity_ratings`` and ``components`` tables (see :func:`session_adherence`).
    delivery : pandas.DataFrame, optional
        The ``delivery`` table (``sessions_planned``, ``sessions_delivered``, ``eligible``,
        ``reached`` by site and period). Without it the index is adherence alone.
    weights : dict, optional
        Weights of the dimensions ``"adherence"``, ``"dose"``, ``"coverage"`` in the composite
        index (normalised to sum to 1). Default: equal weights of the available dimensions.
    bands : (float, float), default (0.50, 0.80)
        Cut-offs of :func:`classify_fidelity`.
    site, session, period, rater, component, score : str
        Column names (``site`` and ``period`` also in ``delivery``).

    Returns
    -------
    pandas.DataFrame
        One row per site and period present in ``data`` or ``delivery``, sorted, with
        ``n_sessions`` (observed sessions), ``adherence`` (mean session adherence),
        ``adherence_se`` (its standard error across sessions, missing for one session); with
        ``delivery``: its four counts, ``dose`` (= ``sessions_delivered / sessions_planned``),
        ``coverage`` (= ``reached / eligible``) and ``exposure`` (= ``min(dose, 1) * coverage``);
        then ``fidelity_index`` and ``band``. The weights are kept in ``.attrs["fidelity_weights"]``
        for :func:`fidelity_by`.

    Raises
    ------
    ScaleupDataError
        Invalid ratings or components (see :func:`session_adherence`); negative delivery counts,
        ``reached > eligible``, duplicated site-periods in ``delivery``; invalid weights or bands.

    Notes
    -----
    Following Carroll et al. (2007), adherence is the core measure; dose (the "frequency" /
    exposure of Dane & Schneider, 1998) and coverage are its subcategories. The site x period
    adherence is :math:`\bar a_{st} = \frac{1}{J_{st}} \sum_j a_j` over the observed sessions
    (see :func:`session_adherence`). The composite index is

    .. math:: F_{st} = \frac{w_a \bar a_{st} + w_d \min(d_{st}, 1) + w_c c_{st}}{w_a + w_d + w_c},

    with dose capped at 1 (delivering more sessions than planned is not higher fidelity). It is
    missing when any weighted dimension is missing (e.g. a site-period with delivery data but no
    rated session, ``sessions_planned = 0`` or ``eligible = 0``). ``dose`` itself is reported
    uncapped. ``exposure`` is the population exposure: the share of the planned programme that
    reached the eligible population.

    References
    ----------
    Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J., & Balain, S. (2007). A conceptual
    framework for implementation fidelity. *Implementation Science*, 2, 40.

    Dane, A. V., & Schneider, B. H. (1998). Program integrity in primary and early secondary
    prevention: are implementation effects out of control? *Clinical Psychology Review*, 18(1),
    23-45.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> components = pd.DataFrame({"component_id": ["C1", "C2"], "core": [True, True],
    ...                            "weight": [2.0, 1.0], "scale_min": 0.0, "scale_max": 4.0})
    >>> data = pd.DataFrame({"site_id": "A", "session_id": ["s1", "s1", "s2", "s2"],
    ...                         "period": 1, "rater_id": "r1",
    ...                         "component_id": ["C1", "C2", "C1", "C2"],
    ...                         "score": [4.0, 2.0, 3.0, 3.0]})
    >>> delivery = pd.DataFrame({"site_id": ["A"], "period": [1], "sessions_planned": [10],
    ...                          "sessions_delivered": [8], "eligible": [200], "reached": [150]})
    >>> idx = sa.fidelity_index(data, components, delivery)
    >>> idx[["site_id", "period", "adherence", "dose", "coverage", "fidelity_index", "band"]].round(4)
      site_id  period  adherence  dose  coverage  fidelity_index      band
    0       A       1     0.7917   0.8      0.75          0.7806  moderate
    """
    lo_hi = _check_bands(bands)
    sess = session_adherence(data, components, site=site, session=session, period=period,
                             rater=rater, component=component, score=score)
    g = sess.groupby([site, period], sort=True)["adherence"]
    frame = pd.DataFrame({"n_sessions": g.size(), "adherence": g.mean(),
                          "adherence_se": g.std(ddof=1) / np.sqrt(g.size())})
    available = ["adherence"]
    if delivery is not None:
        t = "delivery"
        require_columns(delivery, t, (site, period, *_DELIVERY_COLS), label=t)
        dv = delivery[[site, period, *_DELIVERY_COLS]].copy()
        per = _numeric(dv, t, period)
        _fail(t, period, "is not an integer >= 1", dv, (per < 1) | (per != np.round(per)),
              "Periods are integers 1..T.")
        dv[period] = per.astype(np.int64)
        for c in _DELIVERY_COLS:
            dv[c] = _numeric(dv, t, c, allow_missing=True)
            _fail(t, c, "is negative", dv, dv[c].to_numpy() < 0, "Counts must be >= 0.")
        _fail(t, "reached", "exceeds eligible", dv, (dv["reached"] > dv["eligible"]).to_numpy(),
              "reached must be between 0 and eligible.")
        dup = dv.duplicated([site, period], keep=False).to_numpy()
        _fail(t, site, "has duplicated (site, period) rows", dv, dup, "Keep one row per site and period.")
        frame = frame.join(dv.set_index([site, period]), how="outer")
        frame["n_sessions"] = frame["n_sessions"].fillna(0).astype(np.int64)
        frame = _delivery_measures(frame)
        available += ["dose", "coverage"]
    w = _check_weights(weights, available)
    frame = frame.sort_index().reset_index()
    return _combine(frame, w, lo_hi)


@checked_inputs
def fidelity_by(
    data: pd.DataFrame,
    by: Sequence[str] = ("rss_code", "period"),
    *,
    sites: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    bands: Sequence[float] = (0.50, 0.80),
    site: str = "site_id",
) -> pd.DataFrame:
    r"""Pool a site x period :func:`fidelity_index` table by region x period (or any grouping).

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`fidelity_index`.
    by : sequence of str, default ("rss_code", "period")
        Grouping columns, e.g. ``["site_id", "period"]``, ``["rss_code", "period"]``,
        ``["rss_code"]``. A column absent from ``data`` (such as ``rss_code``) is taken from
        ``sites``.
    sites : pandas.DataFrame, optional
        The ``sites`` table (``site_id`` and the grouping columns, e.g. ``rss_code``).
    weights : dict, optional
        Dimension weights of the composite index; default those used to build ``data``
        (``data.attrs["fidelity_weights"]``), else equal weights.
    bands : (float, float), default (0.50, 0.80)
        Cut-offs of :func:`classify_fidelity`.
    site : str, default "site_id"
        Site column of ``data`` and ``sites``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n_sites``, ``n_sessions``, ``adherence`` and, when ``data`` has
        delivery data, the summed counts, ``dose``, ``coverage``, ``exposure``; then
        ``fidelity_index`` and ``band``.

    Notes
    -----
    Adherence is pooled over sessions, :math:`\bar a_g = \sum_s J_s \bar a_s / \sum_s J_s`
    (every observed session counts once); dose and coverage are ratios of sums,
    :math:`d_g = \sum \text{delivered} / \sum \text{planned}`,
    :math:`c_g = \sum \text{reached} / \sum \text{eligible}`, over the site-periods where both counts
    are known. The composite index is then recomputed from the pooled dimensions as in
    :func:`fidelity_index`. Grouping by ``[site, "period"]`` returns the input measures.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> idx = pd.DataFrame({"site_id": ["A", "B"], "period": [1, 1], "n_sessions": [1, 3],
    ...                     "adherence": [0.6, 1.0]})
    >>> sites = pd.DataFrame({"site_id": ["A", "B"], "rss_code": ["06", "06"]})
    >>> sa.fidelity_by(idx, ["rss_code", "period"], sites=sites)
      rss_code  period  n_sites  n_sessions  adherence  fidelity_index  band
    0       06       1        2           4        0.9             0.9  high
    """
    lo_hi = _check_bands(bands)
    if isinstance(by, str):
        by = [by]
    by = list(by) if isinstance(by, Sequence | pd.Index | np.ndarray) else None
    if not by:
        raise ScaleupDataError(
            "fidelity_by: argument 'by' must name one or more grouping columns, e.g. ['rss_code', 'period'] "
            "or ['site_id', 'period']; got none."
        )
    require_columns(data, "data", (site, "n_sessions", "adherence"), label="table 'data'")
    if len(data) == 0:
        raise ScaleupDataError(
            "fidelity_by: table 'data' has no rows; pass the site x period table of fidelity_index (an empty "
            "result would read as no fidelity data for every group)."
        )
    df = data.copy()
    df["adherence"] = _numeric(df, "data", "adherence", allow_missing=True)
    df["n_sessions"] = _numeric(df, "data", "n_sessions")
    _fail("data", "adherence", "is outside [0, 1]", df, ~(df["adherence"].isna() | df["adherence"].between(0, 1)),
          "Adherence is a proportion (pass the output of fidelity_index).")
    _fail("data", "n_sessions", "is negative", df, df["n_sessions"] < 0, "Counts of sessions are >= 0.")
    missing = [c for c in by if c not in df.columns]
    if missing:
        if sites is None:
            raise ScaleupDataError(
                f"fidelity_by: grouping column(s) {missing} are not in data; pass the sites table "
                "(sites=...) that maps each site to them."
            )
        require_columns(sites, "sites", (site, *missing), label="sites")
        dup = sites[site].duplicated(keep=False).to_numpy()
        _fail("sites", site, "has duplicated ids", sites, dup, "Each site must appear once.")
        df = df.merge(sites[[site, *missing]], on=site, how="left", validate="many_to_one")
        unmatched = df[missing].isna().any(axis=1).to_numpy()
        _fail("data", site, f"has sites not found in sites (or with missing {missing})", df,
              unmatched, "Add them to the sites table.")
    has_delivery = all(c in df.columns for c in _DELIVERY_COLS)
    available = ["adherence", "dose", "coverage"] if has_delivery else ["adherence"]
    if weights is None:
        weights = data.attrs.get("fidelity_weights")
        if weights is not None:
            weights = {k: v for k, v in weights.items() if k in available}
    w = _check_weights(weights, available)

    ok = df["adherence"].notna() & (df["n_sessions"] > 0)
    df["_wa"] = np.where(ok, df["adherence"] * df["n_sessions"], 0.0)
    df["_ws"] = np.where(ok, df["n_sessions"], 0)
    agg = {"n_sites": (site, "nunique"), "n_sessions": ("n_sessions", "sum"),
           "_wa": ("_wa", "sum"), "_ws": ("_ws", "sum")}
    if has_delivery:
        both_d = df["sessions_planned"].notna() & df["sessions_delivered"].notna()
        both_c = df["eligible"].notna() & df["reached"].notna()
        for c, m in (("sessions_planned", both_d), ("sessions_delivered", both_d),
                     ("eligible", both_c), ("reached", both_c)):
            df[c] = df[c].where(m)
            agg[c] = (c, lambda s: s.sum(min_count=1))
    out = df.groupby(by, sort=True).agg(**agg)
    with np.errstate(divide="ignore", invalid="ignore"):
        out.insert(2, "adherence", np.where(out["_ws"] > 0, out["_wa"] / out["_ws"], np.nan))
    out = out.drop(columns=["_wa", "_ws"])
    out["n_sessions"] = out["n_sessions"].astype(np.int64)
    if has_delivery:
        out = _delivery_measures(out)
    out = out.reset_index()
    return _combine(out, w, lo_hi)


@checked_inputs
def classify_fidelity(values, bands: Sequence[float] = (0.50, 0.80)) -> pd.Series:
    """Classify fidelity proportions as ``"high"``, ``"moderate"`` or ``"low"``.

    Parameters
    ----------
    values : array-like or pandas.Series
        Fidelity proportions in [0, 1] (not percentages), as numbers: text, even ``"0.63"``, is an
        error naming its positions (a column of numbers holding text was read wrongly).
    bands : (float, float), default (0.50, 0.80)
        ``(low_max, high_min)``: ``high`` if value >= ``high_min``, ``low`` if value <= ``low_max``,
        ``moderate`` in between; missing values stay missing.

    Returns
    -------
    pandas.Series
        Ordered categorical (``low < moderate < high``), with the index of ``values`` if it is a
        Series.

    Notes
    -----
    The default cut-offs are high >= 80 %, moderate 51-79 %, low <= 50 %. The 80 % criterion for
    high fidelity is that of Borrelli et al. (2005) and Borrelli (2011); the lower cut-off of 50 %
    is a common convention in fidelity reviews. Both are conventions, not properties of the data:
    report the ones you use.

    References
    ----------
    Borrelli, B., Sepinwall, D., Ernst, D., Bellg, A. J., Czajkowski, S., Breger, R., ... Orwig, D.
    (2005). A new tool to assess treatment fidelity and evaluation of treatment fidelity across 10
    years of health behavior research. *Journal of Consulting and Clinical Psychology*, 73(5),
    852-860. https://doi.org/10.1037/0022-006X.73.5.852

    Borrelli, B. (2011). The assessment, monitoring, and enhancement of treatment fidelity in public
    health clinical trials. *Journal of Public Health Dentistry*, 71(s1), S52-S63.
    https://doi.org/10.1111/j.1752-7325.2011.00233.x

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sa.classify_fidelity([0.95, 0.8, 0.79, 0.5, None]).tolist()
    ['high', 'high', 'moderate', 'low', nan]
    """
    lo, hi = _check_bands(bands)
    if isinstance(values, pd.DataFrame) or np.ndim(values) != 1:
        raise ScaleupDataError(
            f"classify_fidelity: argument 'values' must be one column of proportions (a Series, list or 1-D "
            f"array), got a {type(values).__name__} with {np.ndim(values)} dimension(s); pass e.g. "
            "data['fidelity_index']."
        )
    index = values.index if isinstance(values, pd.Series) else None
    raw = pd.Series(values, index=index, dtype=object)
    if pd.api.types.is_bool_dtype(pd.Series(values)):
        raise ScaleupDataError("classify_fidelity: argument 'values' holds True/False values; give proportions.")
    x = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    # text is refused even when it reads as a number ('0.63'): a column of numbers holding text was read wrongly
    text = (np.isnan(x) & raw.notna().to_numpy()) | raw.map(lambda v: isinstance(v, (str, bytes))).to_numpy(bool)
    if text.any():
        labels = raw.index[text] if index is not None else np.flatnonzero(text)
        shown = ", ".join(f"{short_repr(k)} ({short_repr(v)})"
                          for k, v in zip(labels[:MAX_SHOWN], raw[text].iloc[:MAX_SHOWN]))
        more = f", ... ({len(labels) - MAX_SHOWN} more)" if len(labels) > MAX_SHOWN else ""
        raise ScaleupDataError(
            f"classify_fidelity: {int(text.sum())} value(s) are not numbers, at "
            f"{'index' if index is not None else 'position'} {shown}{more}; pass proportions in [0, 1] as numbers "
            "(e.g. pd.to_numeric(values)); missing values (NaN) stay unclassified."
        )
    bad = ~np.isnan(x) & ~((x >= 0) & (x <= 1))
    if bad.any():
        raise ScaleupDataError(
            f"classify_fidelity: argument 'values' has {int(bad.sum())} value(s) outside [0, 1] (first: "
            f"{first_values(x[bad])}); pass proportions, not percentages."
        )
    codes = np.where(np.isnan(x), -1, np.where(x >= hi, 2, np.where(x <= lo, 0, 1)))
    cat = pd.Categorical.from_codes(codes, categories=list(_BAND_LABELS), ordered=True)
    return pd.Series(cat, index=index, name="band")


# ------------------------------------------------------------------------------------ drift
#: Names of the fidelity measures in figures and summaries (catalogue messages).
_MEASURES = {
    "adherence": N_("Adherence"),
    "dose": N_("Dose delivered"),
    "coverage": N_("Coverage"),
    "exposure": N_("Exposure"),
    "fidelity_index": N_("Composite fidelity index"),
}


def _measure_label(tx, value: str) -> str:
    """The name of a fidelity measure (a column of :func:`fidelity_index`) in the reader's language."""
    return tx(_MEASURES[value]) if value in _MEASURES else data_text(str(value).replace("_", " "))


@dataclass(frozen=True, repr=False)
class FidelityDrift(Displayed):
    """Per-site trend of a fidelity measure over periods (see :func:`fidelity_drift`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per site: ``n_periods``, ``slope`` (change per period), ``se``, ``ci_low``,
        ``ci_high``, ``pvalue``, ``longest_decline_run``, ``significant_decline``, ``run_flag``,
        ``flagged`` (significant decline or run of declines).
    data : pandas.DataFrame
        The site, period and value columns used.
    value, site, period : str
        Column names.
    level : float
        Confidence level of the slope intervals.
    run_length : int
        Number of consecutive declines that raises ``run_flag``.
    """

    table: pd.DataFrame
    data: pd.DataFrame
    value: str
    site: str
    period: str
    level: float
    run_length: int

    @property
    def drift_sites(self) -> tuple:
        """Sites flagged for drift (significant negative slope or a run of declines)."""
        return tuple(self.table.loc[self.table["flagged"], self.site])

    def to_frame(self) -> pd.DataFrame:
        """The per-site table (a copy)."""
        return self.table.copy()

    def _repr_fields(self) -> dict:
        t = self.table
        return {"value": self.value, "n_sites": len(t), "n_flagged": int(t["flagged"].sum()),
                "n_significant_decline": int(t["significant_decline"].sum()), "n_run_flag": int(t["run_flag"].sum()),
                "level": self.level, "run_length": self.run_length}

    def _summary(self, tx) -> str:
        t = self.table
        lines = [
            tx("Fidelity drift of {measure}: least-squares slope per period, by site",
               measure=_measure_label(tx, self.value)),
            tx.n("{n} site", "{n} sites", len(t)) + "; "
            + tx.n("{n} with a significant downward slope ({level} CI below 0)",
                   "{n} with a significant downward slope ({level} CI below 0)",
                   int(t["significant_decline"].sum()), level=tx.pct(self.level)) + "; "
            + tx.n("{n} with a run of {r} consecutive declines or more",
                   "{n} with a run of {r} consecutive declines or more", int(t["run_flag"].sum()),
                   r=tx.int(self.run_length)) + "; "
            + tx.n("{n} flagged for drift.", "{n} flagged for drift.", int(t["flagged"].sum())),
        ]
        flagged = t[t["flagged"]]
        if len(flagged):
            lines.append(tx("Sites flagged for drift") + tx.colon())
            for _, r in flagged.iterrows():
                lines.append("  " + tx("{site}: slope per period {ci}; longest run of declines {run}",
                                       site=str(r[self.site]),
                                       ci=tx.ci(r["slope"], r["ci_low"], r["ci_high"], level=self.level),
                                       run=tx.int(r["longest_decline_run"])))
        return "\n".join(lines)

    @styled
    def plot_drift(self, *, sites: pd.DataFrame | None = None, site_ids: Sequence | None = None,
                   region: str = "rss_code", title: str | None = None, ax=None):
        """Trajectories of the value over periods: every site in light grey, the sites flagged for
        drift in colour.

        Parameters
        ----------
        sites : pandas.DataFrame, optional
            The ``sites`` table: with its ``region`` column, one panel per region (small multiples,
            six columns at most), titled with the region's name.
        site_ids : sequence, optional
            Restrict the plot to these sites (values of the site column).
        region : str, default "rss_code"
            Region column of ``sites``.
        title : str, optional
            Title of the figure (default: a catalogue message).
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (one panel); a new figure is created when omitted.

        Returns
        -------
        matplotlib.axes.Axes
            The panel (the first one with several regions; all of them are ``ax.figure.axes``).
        """
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        tx = Text()
        flagged = set(self.drift_sites)
        d = self.data
        if site_ids is not None:
            d = d[d[self.site].isin(set(site_ids))]
        label = _measure_label(tx, self.value)
        marker = "o" if d.loc[d[self.site].isin(flagged), self.site].nunique() <= 12 else ""
        title = tx("Fidelity drift: {measure} per site", measure=label) if title is None else title
        groups = None
        if ax is None and sites is not None:
            require_columns(sites, "sites", (self.site, region), label="sites")
            codes = sites.drop_duplicates(self.site).set_index(self.site)[region]
            groups = d[self.site].map(codes).astype(object).where(lambda s: s.notna(), "")
        faceted = groups is not None and groups.nunique() > 1
        if faceted:
            keys = sorted(groups.unique(), key=lambda g: (g == "", str(g)))
            names = region_labels([k for k in keys if k != ""])
            names[""] = tx("No region")
            ncols = min(6, len(keys))
            nrows = math.ceil(len(keys) / ncols)
            fig, axes = plt.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False, layout="constrained",
                                     figsize=(min(14.0, 2.25 * ncols + 0.8), min(14.0, 1.9 * nrows + 1.6)))
            panels = []
            for k, key in enumerate(keys):
                a = axes.flat[k]
                self._draw_sites(a, d[groups.to_numpy() == key], flagged, marker)
                a.set_title(textwrap.fill(data_text(names[key]), 24), fontsize=SMALL_FONT_SIZE + 0.5,
                            fontweight="normal")
                panels.append(a)
            for a in list(axes.flat)[len(keys):]:
                a.set_visible(False)
            for k, a in enumerate(panels):  # x tick labels under the last panel of each column
                if k + ncols >= len(keys):
                    a.tick_params(labelbottom=True)
                    a.set_xlabel(tx("Period"))
            fig.suptitle(title)
            fig.supylabel(tx("{measure} (proportion)", measure=label), fontsize=SMALL_FONT_SIZE + 1)
            out = panels[0]
        else:
            out = new_axes(ax, (8.0, 4.5))
            fig = out.figure
            self._draw_sites(out, d, flagged, marker)
            out.set_title(title)
            out.set_xlabel(tx("Period"))
            out.set_ylabel(tx("{measure} (proportion)", measure=label))
        n_flagged = int(d[self.site].isin(flagged).groupby(d[self.site]).any().sum())
        n_other = int(d[self.site].nunique()) - n_flagged
        handles = [Line2D([], [], color=GREY, lw=1.0, label=tx.n("{n} site without a flagged decline",
                                                                  "{n} sites without a flagged decline", n_other)),
                   Line2D([], [], color=WORSE, lw=1.6, marker=marker, ms=3,
                          label=tx.n("{n} site flagged for drift", "{n} sites flagged for drift", n_flagged))]
        legend_title = tx("Flagged: significant downward slope, or {r} or more consecutive declines",
                          r=tx.int(self.run_length))
        if faceted:
            fig.legend(handles=handles, loc="outside lower center", ncols=2, title=legend_title)
        else:
            out.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title=textwrap.fill(legend_title, 30), alignment="left")
        return out

    def _draw_sites(self, ax, d: pd.DataFrame, flagged: set, marker: str) -> None:
        """One line per site: grey, or in colour when the site is flagged (drawn on top)."""
        for is_flagged in (False, True):
            for s, g in d.groupby(self.site, sort=True):
                if (s in flagged) != is_flagged:
                    continue
                g = g.sort_values(self.period)
                if is_flagged:
                    ax.plot(g[self.period], g[self.value], "-", marker=marker, color=WORSE, lw=1.2, ms=2.5, zorder=3)
                else:
                    ax.plot(g[self.period], g[self.value], "-", color=GREY, lw=0.8, zorder=2)
        values = self.data[self.value]
        if len(values) and values.min() >= 0 and values.max() <= 1:
            ax.set_ylim(-0.02, 1.02)
        periods = self.data[self.period]
        if len(periods):
            ax.set_xlim(periods.min() - 0.5, periods.max() + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ticks_inside(ax)


@checked_inputs
def fidelity_drift(
    data: pd.DataFrame,
    *,
    value: str = "adherence",
    site: str = "site_id",
    period: str = "period",
    level: float = 0.95,
    run_length: int = 3,
) -> FidelityDrift:
    r"""Detect fidelity drift: per-site OLS trend of adherence over periods and runs of declines.

    Parameters
    ----------
    data : pandas.DataFrame
        Site x period table, e.g. from :func:`fidelity_index`.
    value : str, default "adherence"
        Column to follow (e.g. ``"fidelity_index"``).
    site, period : str
        Site and period columns.
    level : float, default 0.95
        Confidence level of the slope intervals.
    run_length : int, default 3
        A site is also flagged when its value declines at ``run_length`` or more consecutive
        observed periods.

    Returns
    -------
    FidelityDrift
        ``table`` with one row per site, ``drift_sites``, ``summary()``, ``plot_drift()``.

    Notes
    -----
    For each site, over its periods :math:`t_i` with a non-missing value :math:`y_i`
    (:math:`n` of them), the OLS fit :math:`y_i = \alpha + \beta t_i + e_i` gives
    :math:`\hat\beta = S_{ty}/S_{tt}`, :math:`\mathrm{se}(\hat\beta) = \sqrt{\hat\sigma^2/S_{tt}}`
    with :math:`\hat\sigma^2 = \sum \hat e_i^2/(n-2)`, and the interval
    :math:`\hat\beta \pm t_{(1+\text{level})/2,\,n-2}\,\mathrm{se}`. ``significant_decline`` is True
    when the whole interval is below 0 (a one-sided test of :math:`\beta < 0` at level
    :math:`(1-\text{level})/2`). ``flagged`` is ``significant_decline`` or ``run_flag``.
    ``longest_decline_run`` counts the longest sequence of consecutive decreases between successive
    observed periods; ``run_flag`` is True when it reaches ``run_length``. Sites with fewer than 3 observed periods get missing
    standard errors and are flagged only by runs (with a :class:`ScaleupWarning` naming them); a table
    with no site observed in 2 periods is a :class:`ScaleupDataError` (nothing can be assessed). The OLS ignores the sampling error of each
    site-period value and any autocorrelation; treat a flag as a signal to look, not a verdict.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> idx = pd.DataFrame({"site_id": ["A"] * 4 + ["B"] * 4, "period": [1, 2, 3, 4] * 2,
    ...                     "adherence": [0.9, 0.8, 0.75, 0.6, 0.8, 0.85, 0.8, 0.82]})
    >>> res = sa.fidelity_drift(idx)
    >>> res.table[["site_id", "slope", "significant_decline", "longest_decline_run", "flagged"]]
      site_id  slope  significant_decline  longest_decline_run  flagged
    0       A  -0.095                 True                    3     True
    1       B   0.001                False                    1    False
    """
    require_columns(data, "data", (site, period, value), label="table 'data'")
    level = check_level(level, "fidelity_drift")
    if isinstance(run_length, bool) or not isinstance(run_length, (int, np.integer)) or run_length < 1:
        raise ScaleupDataError(f"fidelity_drift: run_length must be an integer >= 1, got {run_length!r}.")
    d = data[[site, period, value]].copy()
    d[period] = _numeric(d, "data", period)
    d[value] = _numeric(d, "data", value, allow_missing=True)
    for col in (period, value):
        _fail("data", col, f"is beyond +/-{_MAX_ABS:g}", d, (d[col].abs() > _MAX_ABS).to_numpy(),
              "Fidelity measures are proportions and periods are numbered 1..T; correct or rescale the column.")
    dup = d.duplicated([site, period], keep=False).to_numpy()
    _fail("data", period, "is duplicated within a site", d, dup,
          "Keep one row per site and period (aggregate first, e.g. with fidelity_index).")
    d = d.dropna(subset=[value]).sort_values([site, period])
    per_site = d.groupby(site, sort=True)[period].size()
    if len(per_site) == 0 or per_site.max() < 2:
        # with no site observed twice there is no trend to test: a table of zero flags would read as "no drift"
        raise ScaleupDataError(
            f"fidelity_drift: table 'data' has no site with a non-missing {value!r} in 2 or more periods "
            f"({len(per_site)} site(s), at most {int(per_site.max()) if len(per_site) else 0} period(s) each), "
            "so no site can be assessed for drift. Give several periods per site (e.g. the whole "
            "fidelity_index table, not one period of it)."
        )
    few = per_site[per_site < 3]
    if len(few):
        warnings.warn(
            f"fidelity_drift: {len(few)} of {len(per_site)} site(s) have fewer than 3 periods with a "
            f"non-missing {value!r} (first: {first_values(few.index)}); their slope has no standard error "
            "(se, ci_low, ci_high, pvalue are missing) and only a run of declines can flag them"
            + (f"; {int((few < 2).sum())} of them have a single period and cannot be assessed at all"
               if (few < 2).any() else "")
            + ".",
            ScaleupWarning, stacklevel=2,
        )
    rows = []
    for s, g in d.groupby(site, sort=True):
        t = g[period].to_numpy(dtype=float)
        y = g[value].to_numpy(dtype=float)
        n = len(t)
        slope = se = lo = hi = p = np.nan
        if n >= 2:
            tc = t - t.mean()
            stt = float(tc @ tc)
            slope = float(tc @ (y - y.mean())) / stt
            if n >= 3:
                resid = y - y.mean() - slope * tc
                se = float(np.sqrt((resid @ resid) / (n - 2) / stt))
                q = stats.t.ppf(0.5 + level / 2, n - 2)
                lo, hi = slope - q * se, slope + q * se
                p = float(2 * stats.t.sf(abs(slope / se), n - 2)) if se > 0 else (0.0 if slope != 0 else 1.0)
        longest = cur = 0
        for dy in np.diff(y):
            cur = cur + 1 if dy < 0 else 0
            longest = max(longest, cur)
        rows.append({site: s, "n_periods": n, "slope": slope, "se": se, "ci_low": lo, "ci_high": hi,
                     "pvalue": p, "longest_decline_run": longest})
    table = pd.DataFrame(rows, columns=[site, "n_periods", "slope", "se", "ci_low", "ci_high", "pvalue",
                                        "longest_decline_run"])
    table["significant_decline"] = (table["ci_high"] < 0).to_numpy(dtype=bool)
    table["run_flag"] = table["longest_decline_run"] >= run_length
    table["flagged"] = table["significant_decline"] | table["run_flag"]
    return FidelityDrift(table=table, data=d.reset_index(drop=True), value=value, site=site,
                         period=period, level=float(level), run_length=int(run_length))


# ------------------------------------------------------------------------------------- plot
@checked_inputs
@styled
def plot_fidelity(
    data: pd.DataFrame,
    by: str = "site",
    *,
    value: str = "fidelity_index",
    sites: pd.DataFrame | None = None,
    site: str = "site_id",
    period: str = "period",
    region: str = "rss_code",
    hide=None,
    threshold: int = 5,
    ax=None,
):
    """Heatmap of a fidelity measure, site (or region) x period.

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`fidelity_index`.
    by : {"site", "region"}, default "site"
        Rows of the heatmap; ``"region"`` pools sites with :func:`fidelity_by` (needs ``sites``
        unless ``data`` has the ``region`` column).
    value : str, default "fidelity_index"
        Measure to show (proportion in [0, 1], else an error; ``"dose"``, uncapped, may exceed 1 and
        is then drawn in the colour of 1), e.g. ``"adherence"``, ``"coverage"``.
    sites : pandas.DataFrame, optional
        The ``sites`` table: with ``by="site"``, the sites are grouped by region (rows ordered by
        region, the region's name beside its block of rows, the site ids on the right); with
        ``by="region"``, it maps the sites to their region.
    site, period, region : str
        Column names.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created when omitted.
    hide : array-like of bool, optional
        Cells not to draw, one flag per row (by position) of the table the heatmap shows: ``data``
        with ``by="site"``; ``fidelity_by(data, [region, period], sites=sites, site=site)`` (one row
        per region x period, sorted) with ``by="region"``. E.g. the ``suppressed`` column of
        :func:`scaleup_analysis.suppress_small_cells` applied to that table, with the people counts
        ``eligible`` and ``reached`` (coverage, and the exposure and index computed from it, rest on
        them): small cells and their complements. A cell with a hidden row takes no colour from its
        value: it is left light grey, marked ``×`` and counted under the colour bar. Only the drawing
        changes: the colour scale starts under the smallest value *shown*, and no value is computed
        differently.
    threshold : int, default 5
        Small-cell threshold quoted under the colour bar when cells are hidden.

    Returns
    -------
    matplotlib.axes.Axes
        Cells coloured on a perceptually uniform scale readable in grey-scale (cividis, from a round
        value under the smallest one, at most 0.5, to 1, with a colour bar); cells without a value
        are hatched light grey ("no rating", explained under the colour bar); hidden cells
        (``hide``) are plain light grey with a ``×``. Regions are named (``Estrie (05)``); when the
        rows are too many for every label to be readable, only every k-th site is labelled.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis as sa
    >>> idx = pd.DataFrame({"site_id": ["A", "A", "B"], "period": [1, 2, 1],
    ...                     "fidelity_index": [0.9, 0.7, 0.4]})
    >>> ax = sa.plot_fidelity(idx)
    >>> ax.get_ylabel()
    'Site'

    A cell based on too few people (here site B, period 1) is left out:

    >>> ax = sa.plot_fidelity(idx, hide=[False, False, True])
    >>> bool(ax.get_images()[0].get_array().mask[1, 0])
    True
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    from .privacy import HIDDEN_MARK, _hidden_label, _hide_mask

    tx = Text()
    if by not in ("site", "region"):
        raise ScaleupDataError(f"plot_fidelity: by must be 'site' or 'region', got {by!r}.")
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ScaleupDataError(f"plot_fidelity: threshold must be an integer >= 1, got {threshold!r}.")
    groups = None
    if by == "region":
        if value not in ("adherence", "dose", "coverage", "exposure", "fidelity_index"):
            raise ScaleupDataError(
                f"plot_fidelity: value {value!r} cannot be pooled by region; use one of adherence, dose, "
                "coverage, exposure, fidelity_index."
            )
        frame = fidelity_by(data, [region, period], sites=sites, site=site)
        rows = region
    else:
        frame = data
        rows = site
    require_columns(frame, "data", (rows, period, value), label="table 'data'")
    x = _numeric(frame, "data", value, allow_missing=True)
    upper = np.inf if value == "dose" else 1 + _ROUNDING  # dose is uncapped (more sessions than planned)
    outside = (x < -_ROUNDING) | (x > upper)  # NaN compares False
    _fail("plot_fidelity: table 'data'", value,
          f"(argument 'value') is outside [0, {'inf' if value == 'dose' else 1}] (values {first_values(x[outside])})",
          frame, outside, "The heatmap shows proportions (its colour scale ends at 1): pass proportions, not "
          "percentages.")
    if hide is not None and not isinstance(hide, pd.DataFrame) and np.ndim(hide) == 1 and len(hide) != len(frame):
        table = ("table 'data'" if by == "site" else
                 f"the region x period table fidelity_by(data, [{region!r}, {period!r}], sites=sites)")
        raise ScaleupDataError(
            f"plot_fidelity: hide= has {len(hide)} flag(s) but {table} has {len(frame)} row(s); give one flag per "
            "row of it (by position), e.g. suppress_small_cells(table, counts=['eligible', 'reached'], values=["
            "'coverage', 'exposure', 'fidelity_index'])['suppressed']."
        )
    flags = _hide_mask(hide, len(frame), "plot_fidelity")
    cells = pd.DataFrame({rows: frame[rows].to_numpy(), period: frame[period].to_numpy(), "v": x,
                          "hidden": flags.astype(float)})
    mat = cells.pivot_table(index=rows, columns=period, values="v", aggfunc="mean", dropna=False)
    if mat.size == 0:  # e.g. by="region" on sites none of which is in 'sites'
        raise ScaleupDataError(
            f"plot_fidelity: no rows to plot (no {by} x period cell in table 'data', {len(data)} row(s)); an empty "
            f"heatmap would say nothing. Pass the output of fidelity_index() for at least one {by} and period."
        )
    if by == "site" and (region in frame.columns or (sites is not None and region in sites.columns)):
        if region in frame.columns:
            codes = frame.drop_duplicates(site).set_index(site)[region]
        else:
            require_columns(sites, "sites", (site, region), label="sites")
            codes = sites.drop_duplicates(site).set_index(site)[region]
        key = pd.Series(mat.index, index=mat.index).map(codes).astype(object)
        key = key.where(key.notna(), "")
        order = sorted(range(len(mat)), key=lambda i: (key.iloc[i] == "", str(key.iloc[i]), str(mat.index[i])))
        mat = mat.iloc[order]
        groups = list(key.iloc[order])
    # a cell with a hidden row is hidden (a mean over several rows would still carry the hidden value)
    hidden = (cells.pivot_table(index=rows, columns=period, values="hidden", aggfunc="max", dropna=False)
              .reindex(index=mat.index, columns=mat.columns).fillna(0.0).to_numpy() > 0)
    n_rows = len(mat)
    height = min(13.0, max(3.5, 2.4 + (0.1 if n_rows > 60 else 0.17) * n_rows))
    ax = new_axes(ax, (9.0 if groups is not None else 7.5, height))
    fig = ax.figure
    axes_height = fig.get_size_inches()[1] * ax.get_position().height
    values = np.where(hidden, np.nan, mat.to_numpy(dtype=float))  # a hidden value takes no part in the drawing
    # colour range: up to 1 (full fidelity), from a round value under the data shown (contrast where the values are)
    low = float(np.nanmin(values)) if np.isfinite(values).any() else 0.0
    vmin = min(0.5, max(0.0, math.floor(10 * low) / 10))
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=SEQUENTIAL, vmin=vmin, vmax=1.0,
                   interpolation="nearest", zorder=1)
    missing = bool((np.isnan(values) & ~hidden).any())
    if missing:  # cells without a value: hatched, explained under the colour bar
        ax.add_patch(Rectangle((-0.5, -0.5), mat.shape[1], n_rows, facecolor=MISSING, edgecolor=GREY,
                               hatch="////", lw=0, zorder=0.5))
    if hidden.any():  # cells left out (small cells and their complements): plain light grey, marked
        mark_size = min(9.0, max(4.0, 0.7 * 72 * axes_height / n_rows))
        for i, j in zip(*np.nonzero(hidden)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=MISSING, edgecolor=GREY, lw=0.5, zorder=1.5))
            ax.text(j, i, HIDDEN_MARK, ha="center", va="center", fontsize=mark_size, color="black", zorder=2)
    ax.set_xlim(-0.5, mat.shape[1] - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.grid(False)
    step = max(1, math.ceil(mat.shape[1] / 20))
    ax.set_xticks(range(0, mat.shape[1], step), [data_text(c) for c in mat.columns[::step]])
    ax.set_xlabel(tx("Period"))
    label = _measure_label(tx, value)
    if by == "region":
        names = region_labels(list(mat.index))
        shown = thinned(n_rows, axes_height)
        ax.set_yticks(shown, [data_text(names[mat.index[i]]) for i in shown])
        ax.set_ylabel(tx("Region"))
        ax.set_title(tx("{measure} by region and period", measure=label))
    elif groups is not None:
        names = region_labels([g for g in dict.fromkeys(groups) if g != ""])
        names[""] = tx("No region")
        group_rows(ax, groups, {g: data_text(n) for g, n in names.items()}, axes_height_in=axes_height)
        ax.set_ylabel(tx("Region (one row per site)"))
        shown = thinned(n_rows, axes_height)
        right = ax.secondary_yaxis("right")
        right.set_yticks(shown, [data_text(mat.index[i]) for i in shown])
        right.tick_params(length=0)
        right.set_ylabel(tx("Site"))
        ax.set_title(tx("{measure} by site and period", measure=label))
    else:
        shown = thinned(n_rows, axes_height)
        ax.set_yticks(shown, [data_text(mat.index[i]) for i in shown])
        ax.set_ylabel(tx("Site"))
        ax.set_title(tx("{measure} by site and period", measure=label))
    cbar = fig.colorbar(im, ax=ax, shrink=0.8 if height > 6 else 1.0, aspect=30)
    cbar.set_label(tx("{measure} (proportion)", measure=label))
    handles, labels = [], []
    if missing:
        handles.append(Patch(facecolor=MISSING, edgecolor=GREY, hatch="////"))
        labels.append(tx("No rating"))
    if not hidden.any():
        if handles:
            cbar.ax.legend(handles=handles, labels=labels, loc="upper left", bbox_to_anchor=(0.0, -0.02),
                           borderaxespad=0.0, handlelength=1.4, frameon=False)
        return ax
    # with the longer entry of the hidden cells, the legend goes under the figure (the colour bar keeps its height)
    handles.append((Patch(facecolor=MISSING, edgecolor=GREY, lw=0.5),
                    Line2D([], [], ls="none", marker=f"${HIDDEN_MARK}$", ms=4.5, color="black")))
    labels.append(textwrap.fill(_hidden_label(tx, int(hidden.sum()), threshold), 60))
    fig.legend(handles=handles, labels=labels, loc="outside lower right", ncols=len(handles), handlelength=1.4,
               frameon=False)
    return ax
