"""Which samples have a valid reward, and grading that gives infrastructure failures a second chance.

A sample's reward is valid unless its grading failed (`rftkit.core.flags.reward_is_valid`).
Two layers ride out failures that are not the sample's or the grader's:
- whole requests: the grading session (`rftkit.grading.session`) waits out a service that is
  UNAVAILABLE, RESOURCE_EXHAUSTED (a full queue) or past a DEADLINE, for up to
  `grader.retry_max_wait_s`, then stops the run;
- single samples, here: one flagged `python_grader_server_error` (no sandbox to run in),
  `resource_limit_error` (a worker killed, possibly from outside: an OOM kill, a node under
  pressure) or `timeout_error` (a slow node) is graded again, after a pause, up to
  `RegradePolicy.rounds` times; what it gets then stands (invalid, counted by kind).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.flags import reward_is_valid
from ...grading.session import Notify
from ...plugins.base import GraderResult, Sample

# Per-sample flags that may be the infrastructure's doing rather than the sample's or the grader's.
REGRADE_FLAGS: frozenset[str] = frozenset(
    {"python_grader_server_error", "resource_limit_error", "timeout_error"}
)


def is_valid(result: GraderResult) -> bool:
    """Whether `result`'s reward is a real score (trained on, averaged) rather than no score at all."""
    return reward_is_valid(result.metadata.errors.raised())


def needs_regrade(result: GraderResult) -> bool:
    """A sample whose failure may have been the infrastructure's: worth grading once more."""
    return any(flag in REGRADE_FLAGS for flag in result.metadata.errors.raised())


@dataclass(frozen=True)
class RegradePolicy:
    rounds: int = 1  # gradings again of samples flagged with REGRADE_FLAGS
    backoff_s: float = 1.0  # pause before the first round; doubles each round


@dataclass
class Graded:
    """Results in sample order, and how many samples were graded again."""

    results: list[GraderResult] = field(default_factory=list)
    regraded_samples: int = 0


def grade_with_regrade(
    grading: Any,
    samples: Sequence[Sample],
    items: Sequence[dict[str, Any]],
    *,
    policy: RegradePolicy = RegradePolicy(),
    notify: Notify | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Graded:
    """`grading.grade(samples, items)`; samples flagged with REGRADE_FLAGS go again, just those."""
    graded = Graded(list(grading.grade(samples, items)))
    pause = policy.backoff_s
    for _ in range(policy.rounds):
        again = [i for i, result in enumerate(graded.results) if needs_regrade(result)]
        if not again:
            break
        if notify is not None:
            kinds = Counter(f for i in again for f in graded.results[i].metadata.errors.raised())
            shown = ", ".join(f"{flag} {n}" for flag, n in kinds.most_common() if flag in REGRADE_FLAGS)
            notify(f"grading {len(again)} sample(s) again in {pause:.1f} s ({shown})")
        sleep(pause)
        pause *= 2.0
        fresh = grading.grade([samples[i] for i in again], [items[i] for i in again])
        for index, result in zip(again, fresh, strict=True):
            graded.results[index] = result
        graded.regraded_samples += len(again)
    return graded
