"""One line of results.jsonl: a sample, what the model answered, and what the grader said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from ..core.records import GraderResult, Sample
from ..grading.answers import parse_json_answer
from ..grading.answers import to_sample as answer_sample
from ..grading.verdict import is_pass
from .generation import Generation

# The model gave no answer (request failed after retries, plugin raised): the sample is not graded.
GENERATION_ERROR = "generation_error"
NOT_REFERENCE = ("messages", "response_format", "tools", "tool_choice")
TOP1_KEYS = ("top1", "top_1", "top-1")
TOP5_KEYS = ("top5", "top_5", "top-5")
TOPMAX_KEYS = ("anywhere", "topmax", "top_max", "found")


class SampleRecord(BaseModel):
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
    passed: bool
    rank: int | None = None
    top1: bool | None = None
    top5: bool | None = None
    topmax: bool | None = None
    finish_reason: str | None = None
    latency_s: float = 0.0


def to_sample(generation: Generation, item: Mapping[str, Any] | None = None) -> Sample:
    """The sample a grader sees of one generation (the same rule as in training)."""
    return answer_sample(
        generation.text,
        response_format=(item or {}).get("response_format"),
        tool_calls=generation.tool_calls,
        finish_reason=generation.finish_reason,
    )


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def ranked_fields(result: GraderResult) -> dict[str, Any]:
    """rank/top1/top5/topmax from a ranked-list grader's metadata; empty for other graders.

    The 1-based `scores["rank"]` (0: absent) decides when given, so top5 holds whatever the grader's k;
    else the grader's `passes` (top1, top5, anywhere).
    """
    passes, scores = result.metadata.passes, result.metadata.scores
    rank = scores.get("rank")
    if isinstance(rank, int | float) and not isinstance(rank, bool):
        found = rank >= 1
        return {
            "rank": int(rank) if found else None,
            "top1": rank == 1,
            "top5": found and rank <= 5,
            "topmax": found,
        }
    flags = {
        "top1": _first(passes, TOP1_KEYS),
        "top5": _first(passes, TOP5_KEYS),
        "topmax": _first(passes, TOPMAX_KEYS),
    }
    if all(value is None for value in flags.values()):
        return {}
    top1 = bool(flags["top1"])
    top5 = bool(flags["top5"]) or top1
    return {"top1": top1, "top5": top5, "topmax": bool(flags["topmax"]) or top5}


def make_record(
    model: str,
    item_index: int,
    sample_index: int,
    item: Mapping[str, Any],
    generation: Generation,
    result: GraderResult | None,
    threshold: float | None = None,
    ranked: bool = False,
) -> SampleRecord:
    """The results line for one sample; `result` is None when the model produced nothing to grade.

    `ranked`: the grader ranks lists, so a sample without rank flags (an error) counts as a miss.
    """
    misses = {"top1": False, "top5": False, "topmax": False} if ranked else {}
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
    }
    if result is None:
        return SampleRecord(
            **common,
            reward=0.0,
            errors=[GENERATION_ERROR],
            error_details=generation.error,
            passed=False,
            **misses,
        )
    return SampleRecord(
        **common,
        reward=result.reward,
        sub_rewards=result.sub_rewards,
        errors=result.metadata.errors.raised(),
        error_details=result.metadata.errors.details,
        passes=result.metadata.passes,
        passed=is_pass(result, threshold),
        **(ranked_fields(result) or misses),
    )
