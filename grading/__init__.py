"""Grading rollouts through the rftkit grader service (remote, or an embedded local one)."""

from .session import GradingSession, GradingUnavailable, open_grading

__all__ = ["GradingSession", "GradingUnavailable", "open_grading"]
