"""Small helpers shared by the monitoring plots (internal)."""

from __future__ import annotations

from .._style import data_text, region_labels

__all__ = ["unit_labels"]


def unit_labels(units) -> dict:
    """Unit -> label: Quebec region codes by name with their code ("Estrie (05)"), other values
    (subgroups, site ids) as themselves."""
    named = region_labels([u for u in units if isinstance(u, str)])
    return {u: data_text(named.get(u, u)) for u in units}
