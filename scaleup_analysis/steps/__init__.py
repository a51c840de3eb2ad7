"""The analyses of the five steps of a scale-up, as report sections run on a study.

Each step module registers its sections (:func:`~scaleup_analysis.steps._section.section`); a
notebook runs them through :class:`StepReport`, which shows each section's generated findings,
tables and figures, or a box saying why it did not run.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register the sections)
    step1_evidence,
    step2_potential,
    step3_plan,
    step4_implementation,
    step5_monitoring,
    step5_sustainment,
    step5_feedback,
)
from ._section import SECTIONS, NotApplicable, Section, SectionOutput, StepReport

__all__ = ["StepReport", "Section", "SectionOutput", "NotApplicable", "SECTIONS"]
