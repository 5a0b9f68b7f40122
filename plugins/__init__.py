"""Grader types: the shared contract (base), the registry (entry points) and the built-in types."""

from .base import (
    Grader,
    GraderContext,
    GraderErrors,
    GraderResult,
    GraderSpec,
    GradingError,
    ResultMetadata,
    Sample,
    Score,
    ScoringGrader,
)

__all__ = [
    "Grader",
    "GraderContext",
    "GraderErrors",
    "GraderResult",
    "GraderSpec",
    "GradingError",
    "ResultMetadata",
    "Sample",
    "Score",
    "ScoringGrader",
]
