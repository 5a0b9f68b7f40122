"""Per-sample error flags, and which of them mean "this sample has no valid reward".

The names follow OpenAI's grader run API (`metadata.errors`), then rftkit's own. A flag says
why a sample's reward is what it is; `reward_is_valid` says whether that reward may be used as
a score (trained on, averaged, counted as a fail) or must be left out as no score at all.
"""

from __future__ import annotations

from collections.abc import Iterable

# Error flags as in OpenAI's grader run API (metadata.errors), then rftkit's own.
OPENAI_ERROR_FLAGS: tuple[str, ...] = (
    "formula_parse_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
    "invalid_variable_error",
    "other_error",
    "python_grader_server_error",
    "python_grader_runtime_error",
    "model_grader_server_error",
    "model_grader_refusal_error",
    "model_grader_parse_error",
)
RFTKIT_ERROR_FLAGS: tuple[str, ...] = (
    "timeout_error",  # a grader ran past its per-sample or per-batch time limit
    "invalid_reward_error",  # grade() returned NaN, inf, None, a string, or a value outside [0, 1]
    "resource_limit_error",  # a sandbox worker broke a memory, process, disk or output limit
)
ERROR_FLAGS: tuple[str, ...] = OPENAI_ERROR_FLAGS + RFTKIT_ERROR_FLAGS

# Flags that are the sample's own doing: its reward of 0 is a real score (the model wrote
# something the grader could not read as asked, or wrote past what was allowed).
SAMPLE_FAULT_FLAGS: frozenset[str] = frozenset({"sample_parse_error", "truncated_observation_error"})
# Every other flag means the grading failed (a grader bug, a judge that did not answer, a worker
# that died or ran out of time or memory, a template naming a field the item lacks): no score.
NO_SCORE_FLAGS: frozenset[str] = frozenset(ERROR_FLAGS) - SAMPLE_FAULT_FLAGS


def reward_is_valid(raised: Iterable[str]) -> bool:
    """True when a sample with these flags set has a real reward (no flag, or only the sample's fault)."""
    return not any(flag in NO_SCORE_FLAGS for flag in raised)
