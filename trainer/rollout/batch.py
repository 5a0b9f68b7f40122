"""A batch of rollouts: sampled completions with their grades (`Rollouts`), or with grades on their
way (`PendingRollouts`). A leaf module: the collectors (collect.py, the agent's episode runner) build
these, the trainer reads them.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ...core.records import GraderResult
from .engine import Completion
from .grading_retry import Graded, is_valid


@dataclass
class Rollouts:
    """Completions and grader results, grouped by prompt: groups[i][j] is sample j of prompt i."""

    groups: list[list[Completion]]
    results: list[list[GraderResult]]
    sampling_s: float = 0.0
    grading_s: float = 0.0  # time the grader service took (overlapped with sampling where possible)
    grading_wait_s: float = 0.0  # time spent waiting for grades after sampling finished
    regraded_samples: int = 0  # samples graded again after a worker, sandbox or time-limit failure

    def valid(self) -> list[list[bool]]:
        """Whether each sample's reward is a real score (see `grading_retry.is_valid`)."""
        return [[is_valid(r) for r in group] for group in self.results]

    def rewards(self) -> list[list[float]]:
        """Each sample's reward; NaN where it has none (its grading failed), never a made-up zero."""
        return [[r.reward if is_valid(r) else float("nan") for r in group] for group in self.results]


@dataclass
class PendingRollouts:
    """A batch whose completions exist and whose grades are on their way (`result()` waits for them)."""

    groups: list[list[Completion]]
    futures: list[Future]
    sampling_s: float
    own_pool: ThreadPoolExecutor | None = None

    def result(self, timeout_s: float | None = None) -> Rollouts:
        """The graded batch; waits at most `timeout_s` for the grades (TimeoutError names the wait)."""
        wait_start = time.perf_counter()
        total = Graded()
        grading_s = 0.0
        try:
            for future in self.futures:
                left = None if timeout_s is None else max(0.0, timeout_s - (time.perf_counter() - wait_start))
                try:
                    graded, seconds = future.result(timeout=left)
                except TimeoutError as exc:
                    raise TimeoutError(f"grades of a rollout batch not back in {timeout_s:.0f} s") from exc
                total.results.extend(graded.results)
                total.regraded_samples += graded.regraded_samples
                grading_s += seconds
        finally:
            if self.own_pool is not None:
                self.own_pool.shutdown(wait=True)
        waited = time.perf_counter() - wait_start
        per_prompt: list[list[GraderResult]] = []
        position = 0
        for group in self.groups:
            per_prompt.append(total.results[position : position + len(group)])
            position += len(group)
        return Rollouts(self.groups, per_prompt, self.sampling_s, grading_s, waited, total.regraded_samples)
