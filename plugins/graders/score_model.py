"""`score_model`: a judge model scores the sample; the score, clipped to `range`, becomes the reward.

The judge answers `{"steps": [...], "result": <number>}` (structured output where the endpoint
supports it; a reply that is just a number is accepted too). The result is clipped to `range`
(default [0, 1]) and scaled to [0, 1]: reward = (result - min) / (max - min). `metadata.scores`
keeps the judge's number as `score`; `pass_threshold` compares against that number. A reply with
no usable number scores 0 with model_grader_parse_error.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from ..base import DeclaredMetrics, GraderSpec, GradingError, Score
from ..judge import ModelGrader, ModelGraderSpec, judge_json


class ScoreModelSpec(ModelGraderSpec):
    type: Literal["score_model"] = "score_model"
    range: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    pass_threshold: float | None = None

    @field_validator("range")
    @classmethod
    def _two_increasing(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not all(map(math.isfinite, value)) or value[0] >= value[1]:
            raise ValueError(f"range must be [min, max] with finite min < max, got {value}")
        return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


class ScoreModelGrader(ModelGrader):
    """A numeric grade from a judge model."""

    type_name = "score_model"
    spec_model = ScoreModelSpec
    spec: ScoreModelSpec

    @classmethod
    def declared_metrics(cls, spec: GraderSpec) -> DeclaredMetrics:
        return DeclaredMetrics(scores=("score",)) | super().declared_metrics(spec)

    def instruction(self) -> str:
        low, high = self.spec.range
        return (
            "You are a grader. Follow the user's grading instructions. Answer with only a JSON object "
            f'{{"steps": [<short reasoning steps>], "result": <a number from {low:g} to {high:g}>}}.'
        )

    def result_schema(self) -> dict[str, Any]:
        return {"type": "number"}

    def interpret(self, content: str) -> Score:
        data = judge_json(content)
        value = data.get("result", data.get("score")) if isinstance(data, dict) else data
        number = _number(value if data is not None else content)
        if number is None:
            raise GradingError(
                "model_grader_parse_error", f"no numeric result in the judge's reply: {content[:300]!r}"
            )
        low, high = self.spec.range
        clipped = min(high, max(low, number))
        passes = {}
        if self.spec.pass_threshold is not None:
            passes["pass"] = number >= self.spec.pass_threshold
        return Score(reward=(clipped - low) / (high - low), scores={"score": number}, passes=passes)
