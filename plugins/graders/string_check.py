"""`string_check`: compare a rendered input with a rendered reference (OpenAI's eq, ne, like, ilike).

eq: 1 if equal; ne: 1 if different; like: 1 if the input contains the reference; ilike: the same,
ignoring case. Both sides are templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..base import GraderSpec, Sample, Score, ScoringGrader
from ..templates import Template, render


class StringCheckSpec(GraderSpec):
    type: Literal["string_check"] = "string_check"
    input: Template
    reference: Template
    operation: Literal["eq", "ne", "like", "ilike"]


def check(operation: str, text: str, reference: str) -> bool:
    """The comparison itself."""
    if operation == "eq":
        return text == reference
    if operation == "ne":
        return text != reference
    if operation == "like":
        return reference in text
    return reference.casefold() in text.casefold()


class StringCheckGrader(ScoringGrader):
    """Exact or substring match, 0 or 1."""

    type_name = "string_check"
    spec_model = StringCheckSpec
    spec: StringCheckSpec

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        text = render(self.spec.input, sample, item)
        reference = render(self.spec.reference, sample, item)
        return Score(reward=1.0 if check(self.spec.operation, text, reference) else 0.0)
