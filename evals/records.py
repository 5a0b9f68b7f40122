"""One line of results.jsonl: a sample, what the model answered, and what the grader said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.records import DeclaredMetrics, GraderResult, Sample
from ..grading.answers import parse_json_answer
from ..grading.answers import to_sample as answer_sample
from ..grading.verdict import is_pass
from .generation import Generation

# The model gave no answer (request failed after retries, plugin raised): the sample is not graded.
GENERATION_ERROR = "generation_error"
NOT_REFERENCE = ("messages", "response_format", "tools", "tool_choice")


class SampleRecord(BaseModel):
    """A results line. Beyond the fields below it holds one boolean per rate the grader declares
    (`top1`, `topmax` ... for a ranked list), so `line["top1"]` reads like any other field."""

    model_config = ConfigDict(extra="allow")

    model: str
    item_index: int
    sample_index: int
    input: list[dict[str, Any]]
    reference: dict[str, Any] = Field(default_factory=dict)  # the item's other fields (what graders compare)
    output: str
    reasoning: str | None = None
    output_json: Any = None
    reward: float
    sub_rewards: dict[str, float] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    error_details: str | None = None
    passes: dict[str, bool] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)
    passed: bool
    valid: bool = True  # False: grading failed (or nothing to grade), the reward is no score
    rank: int | None = None  # the declared distribution score (1-based position) where found
    finish_reason: str | None = None
    latency_s: float = 0.0


def to_sample(generation: Generation, item: Mapping[str, Any] | None = None) -> Sample:
    """The sample a grader sees of one generation (the same rule as in training)."""
    if getattr(generation, "messages", None):  # agent hook: an episode (evals/agent.py) shows its messages
        from .agent import episode_sample

        return episode_sample(generation, item)  # type: ignore[arg-type]
    return answer_sample(
        generation.text,
        response_format=(item or {}).get("response_format"),
        tool_calls=generation.tool_calls,
        finish_reason=generation.finish_reason,
    )


def rate_field(name: str) -> str:
    """Where a declared rate goes in a results line: its name, unless a record field has it."""
    return f"rate_{name}" if name in SampleRecord.model_fields else name


def declared_fields(result: GraderResult | None, declared: DeclaredMetrics) -> dict[str, Any]:
    """The declared rates of one sample (a miss for a failed sample) and its distribution position."""
    failed = result is None or bool(result.metadata.errors.raised())
    passes = {} if result is None else result.metadata.passes
    fields: dict[str, Any] = {
        rate_field(name): not failed and bool(passes.get(flag))
        for name, flag, _label in declared.rate_flags()
    }
    scores = {} if result is None else result.metadata.scores
    if declared.distribution and declared.distribution in scores:
        position = scores[declared.distribution]
        found = isinstance(position, int | float) and not isinstance(position, bool) and position >= 1
        fields["rank"] = int(position) if found else None
    return fields


def make_record(
    model: str,
    item_index: int,
    sample_index: int,
    item: Mapping[str, Any],
    generation: Generation,
    result: GraderResult | None,
    threshold: float | None = None,
    declared: DeclaredMetrics | None = None,
) -> SampleRecord:
    """The results line for one sample; `result` is None when the model produced nothing to grade.

    A failed sample counts as a miss for every rate the grader declares.
    """
    declared = declared or DeclaredMetrics()
    common: dict[str, Any] = {
        "model": model,
        "item_index": item_index,
        "sample_index": sample_index,
        "input": [dict(m) for m in item["messages"]],
        "reference": {k: v for k, v in item.items() if k not in NOT_REFERENCE},
        "output": generation.text,
        "reasoning": generation.reasoning,
        "output_json": parse_json_answer(generation.text),
        "finish_reason": generation.finish_reason,
        "latency_s": round(generation.latency_s, 4),
        **declared_fields(result, declared),
    }
    if result is None:
        return SampleRecord(
            **common, reward=0.0, errors=[GENERATION_ERROR], error_details=generation.error, passed=False,
            valid=False,
        )  # fmt: skip
    return SampleRecord(
        **common,
        reward=result.reward,
        sub_rewards=result.sub_rewards,
        errors=result.metadata.errors.raised(),
        error_details=result.metadata.errors.details,
        passes=result.metadata.passes,
        scores=result.metadata.scores,
        passed=is_pass(result, threshold),
        valid=result.valid,
    )
