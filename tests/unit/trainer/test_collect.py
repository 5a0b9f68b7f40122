"""Collected rollouts keep failed gradings apart from real zeros, and a mostly invalid batch stops the run."""

from __future__ import annotations

import math

import pytest
from rftkit.plugins.base import GraderResult, ResultMetadata
from rftkit.trainer.data.schema import DatasetLine
from rftkit.trainer.metrics import summarize
from rftkit.trainer.rollout.collect import InvalidBatchError, Rollouts, check_invalid_share, collect
from rftkit.trainer.rollout.engine import Completion, SamplingSettings


def ok(reward: float, name: str = "g") -> GraderResult:
    return GraderResult(reward=reward, metadata=ResultMetadata(name=name, type="python"))


def failed(flag: str, details: str = "boom") -> GraderResult:
    return GraderResult.failure("g", "python", flag, details)


class EchoEngine:
    """Completions whose text is `<prompt's first id>-<j>`."""

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        return [[Completion([p[0], j], f"{p[0]}-{j}") for j in range(settings.n)] for p in prompts]


class CrashOnOnes:
    """Raises in the grader for every sample whose text ends in 1; a worker is killed once for `2-0`."""

    batch_size = 256

    def __init__(self) -> None:
        self.killed = False

    def grade(self, samples: list, items: list) -> list[GraderResult]:
        results = []
        for sample in samples:
            if sample.output_text.endswith("1"):
                results.append(failed("python_grader_runtime_error", "ZeroDivisionError: division by zero"))
            elif sample.output_text == "2-0" and not self.killed:
                self.killed = True
                results.append(failed("resource_limit_error", "worker killed"))
            else:
                results.append(ok(1.0 if sample.output_text.endswith("0") else 0.0))
        return results


def test_collect_regrades_infrastructure_failures_and_masks_the_rest() -> None:
    lines = [DatasetLine(messages=[{"role": "user", "content": f"q{i}"}]) for i in range(3)]
    rolled = collect(EchoEngine(), CrashOnOnes(), lines, [[1], [2], [3]], SamplingSettings(n=4), chunks=2)
    assert rolled.regraded_samples == 1
    assert rolled.valid() == [[True, False, True, True]] * 3
    rewards = rolled.rewards()
    assert rewards[1][0] == 1.0  # the killed worker's sample got its true reward on the second try
    assert all(math.isnan(group[1]) for group in rewards)  # no score, not a zero
    assert [group[0] for group in rewards] == [1.0] * 3 and [group[2] for group in rewards] == [0.0] * 3


def test_summary_counts_invalid_samples_apart_from_real_zeros() -> None:
    results = [[ok(1.0), ok(0.0), failed("python_grader_runtime_error"), failed("sample_parse_error")]]
    stats = summarize(results, "train")
    # the parse error is the sample's own fault: a real zero; the runtime error is no score at all
    assert stats["train_reward_mean"] == pytest.approx(1 / 3)
    assert stats["train_pass_rate"] == pytest.approx(1 / 3)
    assert stats["train_samples"] == 4 and stats["train_invalid_samples"] == 1
    assert stats["train_valid_fraction"] == pytest.approx(0.75)
    assert stats["train_errors"] == {"python_grader_runtime_error": 1, "sample_parse_error": 1}
    assert stats["train_grader_scores"] == {"g": pytest.approx(1 / 3)}
    empty = summarize([[failed("timeout_error")] * 2], "valid")
    assert math.isnan(empty["valid_reward_mean"]) and empty["valid_valid_fraction"] == 0.0


def test_a_batch_over_the_invalid_share_stops_with_the_kinds_and_counts() -> None:
    half = [[ok(1.0), ok(0.0), failed("timeout_error"), failed("python_grader_runtime_error")]]
    check_invalid_share(half, 0.5, "step 3: the training batch")  # exactly half: allowed
    batch = [[failed("python_grader_runtime_error", "ZeroDivisionError:\n  division by zero")] * 4, *half]
    with pytest.raises(InvalidBatchError) as caught:
        check_invalid_share(batch, 0.5, "step 3: the training batch")
    message = str(caught.value)
    assert message.startswith("step 3: the training batch: 6 of 8 samples (75%) have no valid reward")
    assert "grader.max_invalid_fraction=0.5" in message
    assert "python_grader_runtime_error 5" in message and "timeout_error 1" in message
    assert "ZeroDivisionError: division by zero" in message  # an example of what went wrong
    with pytest.raises(InvalidBatchError):
        check_invalid_share([[ok(1.0), failed("timeout_error")]], 0.0, "step 1: validation")
    assert Rollouts([[]], [batch[0]]).valid() == [[False] * 4]
