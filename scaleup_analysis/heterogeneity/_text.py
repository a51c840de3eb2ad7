"""Text helpers of the heterogeneity results' summaries (internal): aligned columns and table cells."""

from __future__ import annotations

from .._style import data_text


#: grouping columns whose groups are sites / regions (the data dictionary's names)
SITE_COLUMNS = ("site_id", "site")
REGION_COLUMNS = ("rss_code", "region")


def group_word(tx, column: str) -> str:
    """The word for a grouping column in a figure: ``Site``, ``Region``, or the column's own name."""
    if column in SITE_COLUMNS:
        return tx("Site")
    if column in REGION_COLUMNS:
        return tx("Region")
    return data_text(column)
