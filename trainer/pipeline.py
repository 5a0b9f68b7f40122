"""Rollouts ahead of training, by at most `max_staleness` policy versions (the async pipeline).

    pipeline = RolloutPipeline(make_batch, engine_lock, first_step=1, last_step=N, max_staleness=1,
                               version=0)
    with pipeline:
        batch = pipeline.take(step)              # generated (and being graded) in the background
        ...update...
        pipeline.published(step, sync)           # sync() pushes the weights; version becomes `step`

A producer thread generates the batch of step t as soon as the rollout engine holds a policy
version v >= t - 1 - max_staleness (the trainer's weights before update t are version t - 1), so
while step t trains, the batches of steps t+1..t+k are generated and graded. `make_batch(step)`
runs with `engine_lock` held (so a weight sync never lands mid-generation) and returns a
`PendingRollouts` whose grades come back on the grading pool. Each batch records the version it
was sampled with; its staleness at training time is (t - 1) - v. Every wait has a deadline and
says what it waited for; a failure in the producer is raised in the trainer's thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .rollout.collect import PendingRollouts


class PipelineError(RuntimeError):
    """The rollout producer failed or did not deliver in time; the message says which."""


@dataclass
class AheadBatch:
    """One step's batch from the producer: what it sampled, with which policy version, how long it waited."""

    step: int
    policy_version: int
    pending: PendingRollouts
    extra: Any = None  # whatever make_batch returned beside the rollouts (the prompts, the epoch)
    generated_at: float = 0.0


class RolloutPipeline:
    """A producer thread keeping up to `max_staleness` batches ahead of the trainer."""

    def __init__(
        self,
        make_batch: Callable[[int], tuple[PendingRollouts, Any]],
        engine_lock: threading.RLock,
        *,
        first_step: int,
        last_step: int,
        max_staleness: int,
        version: int,
        wait_timeout_s: float = 3600.0,
    ) -> None:
        if max_staleness < 1:
            raise ValueError("the pipeline is for max_staleness >= 1 (0 is the on-policy loop)")
        self.make_batch = make_batch
        self.engine_lock = engine_lock
        self.first_step, self.last_step = first_step, last_step
        self.max_staleness = max_staleness
        self.wait_timeout_s = wait_timeout_s
        self.version = version  # the policy version the rollout engine holds
        # OpenMP's thread count is per thread; vLLM's CPU attention checks that the thread which
        # plans a batch and the one running it agree, so the producer uses the trainer's count
        # (through torch._C: vLLM's CPU worker replaces torch.set_num_threads with a no-op).
        self._threads = torch.get_num_threads()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._ready: queue.Queue[AheadBatch | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._produce, name="rollout-producer", daemon=True)

    def __enter__(self) -> RolloutPipeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer (after the generation it is in, if any) and wait for it."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=self.wait_timeout_s)

    # ------------------------------------------------------------ producer
    def _produce(self) -> None:
        torch._C.set_num_threads(self._threads)
        try:
            for step in range(self.first_step, self.last_step + 1):
                needed = step - 1 - self.max_staleness
                with self._changed:
                    while self.version < needed and not self._stop.is_set():
                        self._changed.wait(timeout=1.0)
                if self._stop.is_set():
                    return
                with self.engine_lock:
                    version = self.version
                    pending, extra = self.make_batch(step)
                self._ready.put(AheadBatch(step, version, pending, extra, time.perf_counter()))
        except BaseException as exc:  # handed to the trainer's thread, which raises it
            self._ready.put(exc)

    # ------------------------------------------------------------- trainer
    def take(self, step: int) -> tuple[AheadBatch, float]:
        """The batch of `step` and the seconds waited for its generation (not its grades)."""
        start = time.perf_counter()
        try:
            got = self._ready.get(timeout=self.wait_timeout_s)
        except queue.Empty as exc:
            raise PipelineError(
                f"step {step}: no rollout batch from the producer within {self.wait_timeout_s:.0f} s"
            ) from exc
        if isinstance(got, BaseException):
            raise got
        if got.step != step:
            raise PipelineError(f"the producer delivered step {got.step}'s batch when step {step} wanted one")
        return got, time.perf_counter() - start

    def published(self, version: int, sync: Callable[[], float]) -> tuple[float, float]:
        """Push new weights with `sync()` under the engine lock, then let the producer go on.

        Returns (seconds waited for the engine lock, i.e. for a generation in progress; seconds of
        the sync itself).
        """
        start = time.perf_counter()
        with self.engine_lock:
            acquired = time.perf_counter()
            sync_s = sync()
            with self._changed:
                self.version = version
                self._changed.notify_all()
        return acquired - start, sync_s
