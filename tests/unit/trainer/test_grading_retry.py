"""Samples whose failure may be the infrastructure's are graded once more, just those; the rest stand."""

from __future__ import annotations

from rftkit.plugins.base import GraderResult, ResultMetadata
from rftkit.trainer.rollout.grading_retry import RegradePolicy, grade_with_regrade, is_valid


def ok(reward: float) -> GraderResult:
    return GraderResult(reward=reward, metadata=ResultMetadata(name="g", type="python"))


def failed(flag: str) -> GraderResult:
    return GraderResult.failure("g", "python", flag, f"{flag} happened")


class ScriptedGrading:
    """Answers each sample text from a script: a list of results, one per time it is graded."""

    batch_size = 256

    def __init__(self, script: dict[str, list[GraderResult]]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    def grade(self, samples: list[str], items: list[dict]) -> list[GraderResult]:
        self.calls.append(list(samples))
        return [self.script[s].pop(0) if len(self.script[s]) > 1 else self.script[s][0] for s in samples]


def test_infrastructure_failures_are_regraded_once_and_only_those() -> None:
    grading = ScriptedGrading({
        "fine": [ok(1.0)],
        "killed": [failed("resource_limit_error"), ok(0.5)],  # a worker killed from outside
        "slow": [failed("timeout_error"), failed("timeout_error")],  # stays slow: its result stands
        "no_sandbox": [failed("python_grader_server_error"), ok(0.25)],
        "bug": [failed("python_grader_runtime_error")],  # the grader's own fault: not retried
    })  # fmt: skip
    samples = list(grading.script)
    messages: list[str] = []
    pauses: list[float] = []
    graded = grade_with_regrade(grading, samples, [{}] * 5, notify=messages.append, sleep=pauses.append)
    assert grading.calls == [samples, ["killed", "slow", "no_sandbox"]]
    assert [r.reward for r in graded.results] == [1.0, 0.5, 0.0, 0.25, 0.0]
    assert [is_valid(r) for r in graded.results] == [True, True, False, True, False]
    assert graded.regraded_samples == 3
    assert pauses == [1.0] and "3 sample(s) again" in messages[0] and "timeout_error 1" in messages[0]


def test_regrade_rounds_are_bounded_and_can_be_turned_off() -> None:
    script = {"slow": [failed("timeout_error")] * 5}
    grading = ScriptedGrading(script)
    grade_with_regrade(
        grading, ["slow"], [{}], policy=RegradePolicy(rounds=2, backoff_s=0.5), sleep=lambda _: None
    )
    assert len(grading.calls) == 3
    grading = ScriptedGrading(script)
    graded = grade_with_regrade(grading, ["slow"], [{}], policy=RegradePolicy(rounds=0))
    assert len(grading.calls) == 1 and graded.regraded_samples == 0
