"""Reports: the main job (:func:`run_report`) and what it writes (figures, tables, provenance).

``reporting.runner`` executes the step notebooks on a study into a staging folder and publishes it
in one rename; ``reporting.outputs`` writes figures, key tables and provenance; ``reporting.html``
holds the index page and the style of the section boxes.
"""

from __future__ import annotations

from .outputs import provenance, save_figure, save_table
from .runner import ReportResult, notebook_paths, run_report

__all__ = ["run_report", "ReportResult", "save_figure", "save_table", "provenance", "notebook_paths"]
