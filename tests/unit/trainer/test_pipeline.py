"""The rollout pipeline keeps batches at most `max_staleness` versions old and hands failures over."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
from rftkit.trainer.pipeline import PipelineError, RolloutPipeline
from rftkit.trainer.rollout.collect import PendingRollouts


def _pending() -> PendingRollouts:
    done: Future = Future()
    from rftkit.trainer.rollout.grading_retry import Graded

    done.set_result((Graded(), 0.0))
    return PendingRollouts([], [done], 0.0)


@pytest.mark.parametrize("k", [1, 2])
def test_batches_are_never_staler_than_the_bound(k: int) -> None:
    lock = threading.RLock()
    seen: dict[int, int] = {}
    pipeline: RolloutPipeline

    def make(step: int) -> tuple[PendingRollouts, int]:
        seen[step] = pipeline.version
        return _pending(), step

    pipeline = RolloutPipeline(make, lock, first_step=1, last_step=8, max_staleness=k, version=0,
                               wait_timeout_s=10)  # fmt: skip
    staleness = []
    with pipeline:
        for step in range(1, 9):
            batch, _ = pipeline.take(step)
            assert batch.step == step and batch.extra == step
            time.sleep(0.01)  # let the producer run as far ahead as it may
            staleness.append((step - 1) - batch.policy_version)
            pipeline.published(step, lambda: 0.0)
    assert all(0 <= s <= k for s in staleness), staleness
    assert max(staleness) == k  # it does run ahead
    assert all(seen[step] >= step - 1 - k for step in seen)


def test_a_producer_failure_is_raised_in_the_trainer() -> None:
    def make(step: int) -> tuple[PendingRollouts, None]:
        raise RuntimeError(f"engine died at step {step}")

    pipeline = RolloutPipeline(make, threading.RLock(), first_step=1, last_step=3, max_staleness=1,
                               version=0, wait_timeout_s=5)  # fmt: skip
    with pipeline, pytest.raises(RuntimeError, match="engine died at step 1"):
        pipeline.take(1)


def test_waiting_for_a_batch_has_a_deadline_that_says_what_it_waited_for() -> None:
    release = threading.Event()

    def make(step: int) -> tuple[PendingRollouts, None]:
        release.wait(5)
        return _pending(), None

    with RolloutPipeline(make, threading.RLock(), first_step=1, last_step=1, max_staleness=1,
                         version=0, wait_timeout_s=0.2) as pipeline:  # fmt: skip
        with pytest.raises(PipelineError, match="step 1: no rollout batch from the producer within"):
            pipeline.take(1)
        release.set()


def test_zero_staleness_is_the_on_policy_loop_not_the_pipeline() -> None:
    with pytest.raises(ValueError, match="max_staleness >= 1"):
        RolloutPipeline(lambda s: (_pending(), None), threading.RLock(), first_step=1, last_step=1,
                        max_staleness=0, version=0)  # fmt: skip
