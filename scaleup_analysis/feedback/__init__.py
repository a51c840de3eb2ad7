"""Feedback to the teams: one printable card per site and per establishment (``scaleup feedback``)."""

from .writer import FeedbackResult, write_feedback

__all__ = ["write_feedback", "FeedbackResult"]
