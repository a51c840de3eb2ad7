"""Small datasets bundled with the package (published study-level data and the Quebec health regions).

The files live in ``scaleup_analysis/data/bundled/`` (sources and column descriptions in ``SOURCES.md``
there) and are read with :mod:`importlib.resources`, so they work from an installed wheel as well as
from a source tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from ..errors import ScaleupDataError
from .schemas import validate_table

__all__ = ["load_dataset", "list_datasets"]


@dataclass(frozen=True)
class _Dataset:
    name: str
    filename: str
    description: str
    citation: str
    doi: str


_DATASETS: dict[str, _Dataset] = {
    d.name: d
    for d in (
        _Dataset(
            "baskerville2012",
            "baskerville2012_practice_facilitation.csv",
            "23 studies of practice facilitation in primary care (standardized mean differences smd, "
            "their standard errors se, and study/facilitation moderators)",
            "Baskerville, N. B., Liddy, C., & Hogg, W. (2012). Systematic review and meta-analysis of "
            "practice facilitation within primary care settings. Annals of Family Medicine, 10(1), 63-74. "
            "Data as distributed in the metadat R package (dat.baskerville2012).",
            "10.1370/afm.1312",
        ),
        _Dataset(
            "landenberger2005",
            "landenberger2005_cbt_offenders.csv",
            "58 studies of cognitive-behavioral programs for offenders (recidivists / non-recidivists by "
            "arm, program setting from research to routine practice, CBT components)",
            "Landenberger, N. A., & Lipsey, M. W. (2005). The positive effects of cognitive-behavioral "
            "programs for offenders: A meta-analysis of factors associated with effective treatment. "
            "Journal of Experimental Criminology, 1, 451-476. Data as distributed in the metadat R "
            "package (dat.landenberger2005).",
            "10.1007/s11292-005-3541-7",
        ),
        _Dataset(
            "quebec_regions",
            "quebec_health_regions.csv",
            "the 18 health and social-service regions (RSS) of Quebec: code '01'-'18', official name and "
            "an indicative settlement type (for simulation only)",
            "Ministère de la Santé et des Services sociaux du Québec, régions sociosanitaires (RSS) "
            "01-18; settlement_type is an indicative label of this package, not an official "
            "classification (see scaleup_analysis/data/bundled/SOURCES.md).",
            "",
        ),
    )
}


def _read(ds: _Dataset) -> pd.DataFrame:
    res = resources.files("scaleup_analysis.data").joinpath("bundled", ds.filename)
    with resources.as_file(res) as path:
        if ds.name == "quebec_regions":
            df = pd.read_csv(path, dtype=str, encoding="utf-8")
            df = df.rename(columns={"settlement_type_indicative": "settlement_type"})
            df = validate_table(df, "regions", source=path)
        else:
            df = pd.read_csv(path, encoding="utf-8", float_precision="round_trip")
    df.attrs.update({"dataset": ds.name, "citation": ds.citation, "doi": ds.doi})
    return df


def load_dataset(name: str) -> pd.DataFrame:
    """Load a dataset bundled with the package.

    Parameters
    ----------
    name : {"baskerville2012", "landenberger2005", "quebec_regions"}
        The dataset (see :func:`list_datasets`).

    Returns
    -------
    pandas.DataFrame
        The data; ``df.attrs`` holds ``dataset``, ``citation`` and ``doi``.

        ``"baskerville2012"`` -- 23 studies (rows) of practice facilitation within primary care, as in
        the ``metadat`` R package (``dat.baskerville2012``). Columns: ``author``, ``year``,
        ``score`` (methodological quality, 0-12), ``design`` (``cct``/``rct``/``crct``), ``alloconc``,
        ``blind``, ``itt`` (0/1 quality items), ``fumonths`` (follow-up, months), ``retention`` (%),
        ``country``, ``outcomes`` (number assessed), ``duration`` (months), ``pperf`` (practices per
        facilitator), ``meetings`` (average number), ``hours`` (average hours per meeting), ``tailor``
        (intervention tailored to the practice, 0/1), ``smd`` (standardized mean difference) and
        ``se`` (its standard error). Missing values are NaN. The paper reports a pooled SMD of 0.56
        (95% CI 0.43 to 0.68).
        Source: Baskerville, Liddy & Hogg (2012), Annals of Family Medicine 10(1):63-74,
        https://doi.org/10.1370/afm.1312.

        ``"landenberger2005"`` -- 58 studies of cognitive-behavioral programs for offenders, as in
        ``metadat`` (``dat.landenberger2005``). Columns: ``study``, ``pubtype``, ``country``,
        ``design``, ``program`` (``research``, ``demo`` or ``practice``: from efficacy setting to
        routine delivery), ``setting`` (``community``/``prison``), ``designprob``, ``n.ctrl.rec``,
        ``n.ctrl.non``, ``n.cbt.rec``, ``n.cbt.non`` (recidivists and non-recidivists in the control
        and CBT groups), ``interval`` (months), ``group`` (``adults``/``juveniles``), ``age``,
        ``male`` (%), ``minority`` (%), ``length`` (weeks), ``sessions`` (per week), ``hrs_week``,
        ``hrs_total``, and the twelve ``cbt.*`` components (``cbt.cogskills``, ``cbt.cogrestruct``,
        ``cbt.intpprbsolv``, ``cbt.socskills``, ``cbt.angerctrl``, ``cbt.victimimpact``,
        ``cbt.subabuse``, ``cbt.behavmod``, ``cbt.relapseprev``, ``cbt.moralrsng``, ``cbt.roletaking``,
        ``cbt.other``) kept as the strings ``"yes"``/``"no"`` of the source. Integer columns with
        missing values (``age``, ``male``, ``minority``) are float64 with NaN.
        Source: Landenberger & Lipsey (2005), Journal of Experimental Criminology 1:451-476,
        https://doi.org/10.1007/s11292-005-3541-7.

        ``"quebec_regions"`` -- the 18 Quebec health regions, a valid ``regions`` table: ``rss_code``
        (str, ``"01"`` to ``"18"``), ``name`` (official name) and ``settlement_type`` (category
        ``metropolitan``/``urban``/``mixed``/``rural``/``remote``; renamed from the file's
        ``settlement_type_indicative``: an indicative label for simulated data, not an official
        classification). Source: MSSS régions sociosanitaires; see ``SOURCES.md``.

    Raises
    ------
    ScaleupDataError
        If ``name`` is not a bundled dataset (the message lists the available names).

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> df = sa.load_dataset("baskerville2012")
    >>> df.shape
    (23, 18)
    >>> sa.load_dataset("quebec_regions").head(2)
      rss_code                     name settlement_type
    0       01        Bas-Saint-Laurent           rural
    1       02  Saguenay–Lac-Saint-Jean           mixed
    """
    ds = _DATASETS.get(name) if isinstance(name, str) else None
    if ds is None:
        raise ScaleupDataError(
            f"Unknown dataset {name!r}. Available datasets: {', '.join(_DATASETS)} "
            "(sa.list_datasets() describes them)."
        )
    return _read(ds)


def list_datasets() -> pd.DataFrame:
    """Describe the bundled datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``description``, ``n_rows``, ``citation`` and
        ``doi`` (empty when the source has none).

    Examples
    --------
    >>> import scaleup_analysis as sa
    >>> sa.list_datasets()[["name", "n_rows"]]
                   name  n_rows
    0   baskerville2012      23
    1  landenberger2005      58
    2    quebec_regions      18
    """
    rows = [
        {
            "name": ds.name,
            "description": ds.description,
            "n_rows": len(_read(ds)),
            "citation": ds.citation,
            "doi": ds.doi,
        }
        for ds in _DATASETS.values()
    ]
    return pd.DataFrame(rows, columns=["name", "description", "n_rows", "citation", "doi"])
