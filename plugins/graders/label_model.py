"""`label_model`: a judge model picks one of `labels`; a label in `passing_labels` scores 1, else 0.

The judge answers `{"steps": [...], "result": "<label>"}` (or just the label); matching ignores
case and surrounding quotes. A reply that names no known label scores 0 with
model_grader_parse_error. The chosen label is in `metadata.label`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..base import DeclaredMetrics, GraderSpec, GradingError, Score
from ..judge import ModelGrader, ModelGraderSpec, judge_json


class LabelModelSpec(ModelGraderSpec):
    type: Literal["label_model"] = "label_model"
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _passing_subset(self) -> LabelModelSpec:
        unknown = [label for label in self.passing_labels if label not in self.labels]
        if unknown:
            raise ValueError(f"passing_labels {unknown} are not in labels {self.labels}")
        return self


class LabelModelGrader(ModelGrader):
    """A label from a judge model, passing or not."""

    type_name = "label_model"
    spec_model = LabelModelSpec
    spec: LabelModelSpec

    @classmethod
    def declared_metrics(cls, spec: GraderSpec) -> DeclaredMetrics:
        return DeclaredMetrics(passes=("pass",))  # the judge's label is in passing_labels or not

    def instruction(self) -> str:
        labels = ", ".join(map(repr, self.spec.labels))
        return (
            "You are a grader. Follow the user's instructions and choose exactly one label from: "
            f"{labels}. Answer with only a JSON object "
            '{"steps": [<short reasoning steps>], "result": "<label>"}.'
        )

    def result_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": self.spec.labels}

    def interpret(self, content: str) -> Score:
        data = judge_json(content)
        value = data.get("result", data.get("label")) if isinstance(data, dict) else content
        wanted = str(value).strip().strip("\"'.").casefold()
        label = next((lab for lab in self.spec.labels if lab.casefold() == wanted), None)
        if label is None:
            raise GradingError(
                "model_grader_parse_error",
                f"the judge's reply names none of {self.spec.labels}: {content[:300]!r}",
            )
        passed = label in self.spec.passing_labels
        return Score(reward=1.0 if passed else 0.0, passes={"pass": passed}, metadata={"label": label})
