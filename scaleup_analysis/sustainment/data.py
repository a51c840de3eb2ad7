"""One row per adopting site: how long it delivered the innovation, whether it stopped, its support.

:func:`deadoption_times` joins the ``sites``, ``deadoption``, ``support`` and ``site_assessments``
tables of the data dictionary into the table the survival analyses of sustainment take (Kaplan-Meier,
Cox, cumulative incidence of the reasons, predictive value of a sustainability assessment).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._checks import checked_inputs, rows_text
from ..errors import ScaleupDataError

__all__ = ["deadoption_times"]


def _need(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ScaleupDataError(
            f"deadoption_times: table '{name}' has no column {', '.join(repr(c) for c in missing)}; it needs "
            f"{', '.join(columns)} (see docs/data_dictionary.md)")


def _unique(frame: pd.DataFrame, name: str, key: list[str]) -> None:
    dup = frame.duplicated(key, keep=False).to_numpy()
    if dup.any():
        raise ScaleupDataError(
            f"deadoption_times: table '{name}': {rows_text(frame, dup)} repeat the same {' and '.join(key)}; "
            f"keep one row per {' x '.join(key)}")


def _period_column(frame: pd.DataFrame, name: str, column: str, *, missing: bool) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    bad = (values.isna() & frame[column].notna()) | (values.notna() & (values != np.round(values)))
    if not missing:
        bad |= values.isna()
    if bad.any():
        raise ScaleupDataError(
            f"deadoption_times: table '{name}', column '{column}': {rows_text(frame, bad.to_numpy())} without a "
            f"whole period number; give periods as integers counted from 1")
    return values


@checked_inputs
def deadoption_times(
    data: pd.DataFrame,
    *,
    last_period: int,
    deadoption: pd.DataFrame | None = None,
    support: pd.DataFrame | None = None,
    site_assessments: pd.DataFrame | None = None,
    kind: str = "facilitation",
    instrument: str = "PSAT",
) -> pd.DataFrame:
    """Time each adopting site delivered the innovation, whether it stopped, and its support.

    Parameters
    ----------
    data : pandas.DataFrame
        The ``sites`` table (``site_id``, ``adoption_period``; other columns such as ``rss_code``,
        ``cohort``, ``rurality`` are kept). Sites without an adoption period are left out.
    last_period : int
        The last period of the data: a site that has not stopped is followed until then (censored).
    deadoption : pandas.DataFrame, optional
        The ``deadoption`` table (``site_id``, ``period`` = first period without the innovation,
        ``extent``, ``reason``). Omitted: no site stopped within the data.
    support : pandas.DataFrame, optional
        The ``support`` table; the spell of ``kind`` gives ``withdrawal_period`` (its ``end_period``).
    site_assessments : pandas.DataFrame, optional
        The ``site_assessments`` table; the mean of the site's domain scores on ``instrument`` gives
        ``score`` (the overall score of the PSAT, Luke et al. 2014) and each domain a column
        ``score_<domain>``.
    kind : str, default "facilitation"
        The kind of support (``support.support``) whose end is the withdrawal of the support.
    instrument : str, default "PSAT"
        The instrument of ``site_assessments`` to use.

    Returns
    -------
    pandas.DataFrame
        One row per adopting site, in the order of ``data``: its columns, then ``time`` (periods from
        the adoption period to the first period without the innovation, ``period - adoption_period``,
        for a site that stopped; to the last period of the data, ``last_period - adoption_period``,
        for a site still delivering, censored there: it is known to deliver after ``time`` periods, and
        whether it would stop at the next one is not observed), ``event`` (1 = stopped), ``extent`` and
        ``reason`` (empty unless stopped), ``withdrawal_period`` (first period without the support;
        NaN when it continued beyond the data or is unknown), ``support_time`` (periods of support
        since adoption: ``withdrawal_period - adoption_period``), ``score`` and ``score_<domain>``
        (NaN for a site without an assessment).

    Raises
    ------
    ScaleupDataError
        If a table lacks a column, has two rows for one site (``deadoption``) or one site and kind
        (``support``), names a site absent from ``data``, or a de-adoption period is not after the
        adoption period or after ``last_period`` (the message names the rows).

    Examples
    --------
    >>> import pandas as pd
    >>> sites = pd.DataFrame({"site_id": ["A", "B", "C"], "adoption_period": [2, 3, None]})
    >>> stops = pd.DataFrame({"site_id": ["A"], "period": [6], "extent": ["complete"],
    ...                       "reason": ["funding_ended"]})
    >>> deadoption_times(sites, deadoption=stops, last_period=8)[["site_id", "time", "event"]]
      site_id  time  event
    0       A     4      1
    1       B     5      0
    """
    if isinstance(last_period, bool) or not isinstance(last_period, (int, np.integer)) or last_period < 1:
        raise ScaleupDataError(f"deadoption_times: last_period = {last_period!r}: pass the last period of the data "
                               f"(an integer >= 1)")
    _need(data, "sites", ("site_id", "adoption_period"))
    _unique(data, "sites", ["site_id"])
    adopt = _period_column(data, "sites", "adoption_period", missing=True)
    late = (adopt > last_period).to_numpy()
    if late.any():
        raise ScaleupDataError(
            f"deadoption_times: table 'sites', column 'adoption_period': {rows_text(data, late)} adopt after "
            f"last_period = {last_period}; pass the last period of the data")
    out = data.loc[adopt.notna().to_numpy()].copy()
    adopt = adopt[adopt.notna()]
    out["adoption_period"] = adopt.astype("int64")
    ids = out["site_id"]
    known = set(data["site_id"])

    def _site_ids(frame: pd.DataFrame, name: str) -> None:
        unknown = ~frame["site_id"].isin(known).to_numpy()
        if unknown.any():
            raise ScaleupDataError(
                f"deadoption_times: table '{name}', column 'site_id': {rows_text(frame, unknown)} name a site "
                f"absent from 'sites'")

    stop = pd.Series(np.nan, index=out.index)
    out["extent"] = pd.Series(None, index=out.index, dtype=object)
    out["reason"] = pd.Series(None, index=out.index, dtype=object)
    if deadoption is not None:
        _need(deadoption, "deadoption", ("site_id", "period"))
        _site_ids(deadoption, "deadoption")
        _unique(deadoption, "deadoption", ["site_id"])
        period = _period_column(deadoption, "deadoption", "period", missing=False)
        by_site = deadoption.assign(_p=period.to_numpy()).set_index("site_id")
        a = deadoption["site_id"].map(dict(zip(data["site_id"], _period_column(data, "sites", "adoption_period",
                                                                                   missing=True))))
        never = a.isna().to_numpy()
        if never.any():
            raise ScaleupDataError(
                f"deadoption_times: table 'deadoption', column 'site_id': {rows_text(deadoption, never)} name a "
                f"site whose adoption_period is empty in table 'sites' (sites "
                f"{', '.join(map(repr, deadoption['site_id'][never].head(5)))}); a site that never adopted cannot "
                f"stop: give its adoption_period or remove the row")
        bad = ((period <= a) | (period > last_period + 1)).to_numpy()
        if bad.any():
            raise ScaleupDataError(
                f"deadoption_times: table 'deadoption', column 'period': {rows_text(deadoption, bad)} not after the "
                f"site's adoption period (column 'adoption_period' of 'sites') or after last_period + 1 = "
                f"{last_period + 1}; the period is the first period without the innovation")
        stop = ids.map(by_site["_p"]).astype("float64")
        for col in ("extent", "reason"):
            if col in deadoption.columns:
                out[col] = ids.map(by_site[col].astype(object)).astype(object)
    event = stop.notna()
    out["time"] = np.where(event, stop - adopt, last_period - adopt).astype("int64")
    out["event"] = event.astype("int64").to_numpy()
    out.loc[~event, ["extent", "reason"]] = None

    out["withdrawal_period"] = np.nan
    if support is not None:
        _need(support, "support", ("site_id", "support", "end_period"))
        _site_ids(support, "support")
        spells = support.loc[support["support"].astype(str) == kind]
        _unique(spells, "support", ["site_id", "support"])
        end = _period_column(spells, "support", "end_period", missing=True)
        out["withdrawal_period"] = ids.map(dict(zip(spells["site_id"], end))).astype("float64").to_numpy()
    out["support_time"] = out["withdrawal_period"] - out["adoption_period"]

    if site_assessments is not None:
        _need(site_assessments, "site_assessments", ("site_id", "instrument", "domain", "score"))
        _site_ids(site_assessments, "site_assessments")
        sa_rows = site_assessments.loc[site_assessments["instrument"].astype(str) == instrument]
        _unique(sa_rows, "site_assessments", ["site_id", "instrument", "domain"])
        score = pd.to_numeric(sa_rows["score"], errors="coerce")
        wide = sa_rows.assign(score=score).pivot(index="site_id", columns="domain", values="score")
        out["score"] = ids.map(wide.mean(axis=1)).astype("float64").to_numpy()
        for domain in wide.columns:
            out[f"score_{domain}"] = ids.map(wide[domain]).astype("float64").to_numpy()
    return out.reset_index(drop=True)
