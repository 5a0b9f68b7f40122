"""Warm pools of sandbox workers, one pool per (tenant, grader, version), never shared across tenants.

A batch is split into contiguous chunks, one per worker; each chunk is encoded once (an item
shared by several samples once) and graded over the worker's pipe. A worker that crashes, times
out, breaks a memory limit or reaches `grades_per_worker` is replaced; the rest of its chunk goes
to the new worker (one pair per batch for a while when the dead worker may have graded pairs whose
results it had not sent yet). The replacement of a worker nearing `grades_per_worker` is started
in the background a few chunks ahead, so that no batch waits for a worker to start and load.

Blame only what is proven: a worker that dies (or is killed from outside) without saying why is
replaced and its unanswered pairs are sent again; a pair is blamed only when it kills a second,
fresh worker. A grader is broken only when it failed to load in LOAD_FAILURES_TO_BREAK fresh workers in
a row, and then only for LOAD_RETRY_S: a later batch tries it again. A worker that dies before it
runs the grader is restarted (START_FAILURES_TO_GIVE_UP in a row: the sandbox is down).

Every exchange has a deadline both ways: a worker that stops reading its requests is killed and
the same pairs go to a fresh worker; when that one stalls too (STALLS_TO_FLAG), they are flagged
as timeouts. A worker that retired itself (threads left running by grade()) is replaced, nothing
blamed. Closing a pool ends the batches in flight at once: their workers are killed, and what they
had not answered is `unavailable` (the service is stopping), so a wedged worker cannot hold it.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .api import PoolStatus, SandboxLimits, WorkerOutcome
from .backends import Backend, get_backend
from .channel import Channel
from .worker import SandboxWorker, WorkerStartError, encode_batch, init_message
from .worker_runtime import FLUSH_RESULTS

log = logging.getLogger("rftkit.sandbox")
Pair = tuple[dict[str, Any] | str, dict[str, Any]]  # (the sample grade() gets, or its text; the item)
MAX_STARTS_PER_CHUNK = 50  # a grader that kills every worker it gets cannot loop for ever
LOAD_FAILURES_TO_BREAK = 2  # a grader is broken once it failed to load in this many fresh workers
LOAD_RETRY_S = 30.0  # ... and a later batch tries it again after this long
START_FAILURES_TO_GIVE_UP = 3  # workers in a row that die before they run the grader: the sandbox is down
DEATHS_TO_BLAME = 2  # a pair is blamed once it was in flight when this many workers died
STALLS_TO_FLAG = 2  # pairs are flagged once this many fresh workers in a row did not take them
SPARE_AHEAD = 3  # chunks: a worker this close to grades_per_worker gets its replacement started


class _Slot:
    """A place for one worker; whoever holds the slot owns its worker."""

    def __init__(self) -> None:
        self.worker: SandboxWorker | None = None
        self.starting: Channel | None = None  # a worker's channel while it starts
        self.spare: Future[SandboxWorker | None] | None = None  # the next worker, starting in the background


class Pool:
    """Workers for one tenant's grader version on one backend."""

    def __init__(self, key: tuple[str, ...], backend: Backend, source: str, limits: SandboxLimits) -> None:
        self.key = key
        self.backend_impl = backend
        self.backend = backend.name
        self.limits = limits
        self.size = max(1, limits.workers or os.cpu_count() or 1)
        self._init = init_message(source, limits, backend)
        self._slots: queue.Queue[_Slot] = queue.Queue()
        self._all_slots = [_Slot() for _ in range(self.size)]
        for slot in self._all_slots:
            self._slots.put(slot)
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="rftkit-pool")
        self._background = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="rftkit-spare")
        self._spares_starting: set[_Slot] = set()  # the holders of spares being started (close aborts)
        self._load_error: str | None = None  # set when the grader is broken, until _retry_at
        self._load_failures = 0  # loads in a row that failed (any slot)
        self._retry_at = 0.0
        self._state = threading.Lock()
        self._closed = False
        self.refs = 0

    # -- grading ---------------------------------------------------------------------------
    def grade(self, pairs: list[Pair]) -> list[WorkerOutcome]:
        """Grade (sample, item) pairs; one outcome each, in order."""
        if self._closed:
            raise RuntimeError("this grader pool is closed")
        if not pairs:
            return []
        deadline = time.monotonic() + self.limits.batch_timeout_s
        chunks = _split(list(pairs), min(self.size, len(pairs)))
        if len(chunks) == 1:
            return self._grade_chunk(chunks[0], deadline)
        futures = [self._executor.submit(self._grade_chunk, chunk, deadline) for chunk in chunks]
        return [outcome for future in futures for outcome in future.result()]

    def _grade_chunk(self, pairs: list[Pair], deadline: float) -> list[WorkerOutcome]:
        try:
            slot = self._slots.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return _fill(len(pairs), "timeout", "no worker became free before the batch cap")
        try:
            return self._grade_in_slot(slot, pairs, deadline)
        finally:
            self._slots.put(slot)

    def _broken(self) -> str | None:
        """The load error while the grader counts as broken; None once its back-off has passed."""
        with self._state:
            if self._load_error is not None and time.monotonic() >= self._retry_at:
                self._load_error, self._load_failures = None, 0  # try again, from a clean count
            return self._load_error

    def _load_failed(self, exc: WorkerStartError) -> None:
        with self._state:
            self._load_failures += 1
            if self._load_failures >= LOAD_FAILURES_TO_BREAK:
                self._load_error = f"the grader failed to load: {exc}"
                self._retry_at = time.monotonic() + LOAD_RETRY_S
                log.warning("grader %s failed to load %d times: %s", self.key[1], self._load_failures, exc)

    def _loaded(self) -> None:
        with self._state:
            self._load_failures = 0

    def _start(self, slot: _Slot) -> WorkerStartError | None:
        """Start a worker in `slot`; the error when it did not come up (counted for the grader)."""

        def launched(channel: Channel) -> None:
            slot.starting = channel
            if self._closed:  # close() may have looked at this slot before it had a channel
                channel.abort()

        try:
            slot.worker = SandboxWorker.start(self.backend_impl, self._init, self.limits, launched)
        except WorkerStartError as exc:
            if exc.load_failed and not self._closed:
                self._load_failed(exc)
            return exc
        finally:
            slot.starting = None
        self._loaded()
        return None

    def _grade_in_slot(self, slot: _Slot, pairs: list[Pair], deadline: float) -> list[WorkerOutcome]:
        outcomes: list[WorkerOutcome] = []
        payload = encode_batch(pairs)
        starts = start_failures = stalls = 0
        one_by_one = 0  # after a worker died with results unsent: pairs to send one per batch
        deaths = 0  # workers that died while outcomes[len(outcomes)] was the one pair in flight
        while len(outcomes) < len(pairs):
            left = len(pairs) - len(outcomes)
            if self._closed:
                return outcomes + _fill(
                    left, "unavailable", "the sandbox pool was closed (the service is stopping)"
                )
            broken = self._broken()
            if broken is not None:
                return outcomes + _fill(left, "runtime", broken)
            if time.monotonic() >= deadline:
                details = f"the batch ran past its {self.limits.batch_timeout_s:g} s cap"
                return outcomes + _fill(left, "timeout", details)
            if (slot.worker is None or not slot.worker.alive) and slot.spare is not None:
                spare, slot.spare = slot.spare, None
                slot.worker = spare.result()  # None when it did not come up: one is started here
            if slot.worker is None or not slot.worker.alive:
                if starts >= MAX_STARTS_PER_CHUNK:
                    return outcomes + _fill(left, "crash", "too many worker restarts in one batch")
                starts += 1
                error = self._start(slot)
                if error is not None:
                    if error.load_failed:
                        continue  # a fresh worker tries again; twice in a row breaks the grader
                    start_failures += 1
                    if start_failures >= START_FAILURES_TO_GIVE_UP:
                        return outcomes + _fill(left, "unavailable", str(error))
                    continue
                start_failures = 0
            worker = slot.worker
            assert worker is not None
            if one_by_one:
                # Exact blame: the sample that kills this worker is the one it was sent.
                got = worker.run(encode_batch(pairs[len(outcomes) : len(outcomes) + 1]), 1, deadline)
                sent = 1
            else:
                if outcomes:  # a worker was replaced mid-chunk: encode only what is left
                    payload = encode_batch(pairs[len(outcomes) :])
                got = worker.run(payload, left, deadline)
                sent = left
            outcomes.extend(got)
            if got:
                deaths = stalls = 0
            if self._closed:
                continue  # killed by close(): nothing is blamed, the rest is unavailable
            if worker.stalled:  # it took none of them: the same pairs go to a fresh worker, once
                stalls += 1
                if stalls >= STALLS_TO_FLAG:
                    assert worker.death is not None
                    outcomes.extend(_fill(sent - len(got), worker.death.error, worker.death.details or ""))
                    stalls = 0
                    one_by_one = max(0, one_by_one - 1)
                continue
            if worker.lost:
                if sent - len(got) > 1:  # the culprit is among the next FLUSH_RESULTS pairs
                    one_by_one = FLUSH_RESULTS
                    continue
                deaths += 1  # one pair in flight: blamed only when it kills a fresh worker again
                if deaths >= DEATHS_TO_BLAME:
                    assert worker.death is not None
                    outcomes.append(worker.death)
                    deaths = one_by_one = 0  # the culprit is found: the rest goes as one batch
                else:
                    one_by_one = max(one_by_one, 1)
                continue
            if one_by_one and got:
                one_by_one -= 1
            if worker.alive:
                self._renew(slot, worker, len(pairs))
        return outcomes

    def _renew(self, slot: _Slot, worker: SandboxWorker, chunk: int) -> None:
        """Replace a worker that reached grades_per_worker without a batch waiting for a start: its
        replacement starts in the background once SPARE_AHEAD more chunks of this size would reach
        the limit, and takes over when it is reached (the old one is closed in the background)."""
        limit = self.limits.grades_per_worker
        try:
            if slot.spare is None and not self._closed and worker.grades + SPARE_AHEAD * chunk >= limit:
                slot.spare = self._background.submit(self._start_spare)
            if worker.grades >= limit:
                slot.worker = None
                self._background.submit(worker.close)
        except RuntimeError:  # the pool is closing: no more background work
            worker.close()

    def _start_spare(self) -> SandboxWorker | None:
        """A fresh worker for a slot (counted for the grader like any start); None if it failed."""
        holder = _Slot()
        with self._state:
            self._spares_starting.add(holder)
        try:
            return holder.worker if self._start(holder) is None else None
        finally:
            with self._state:
                self._spares_starting.discard(holder)

    # -- lifetime --------------------------------------------------------------------------
    def status(self) -> PoolStatus:
        """The backend, the pool's size and how many of its workers are running now (spares too)."""
        alive = 0
        for slot in self._all_slots:
            spare = slot.spare
            workers = [slot.worker, spare.result() if spare is not None and spare.done() else None]
            alive += sum(1 for worker in workers if worker is not None and worker.alive)
        return PoolStatus(backend=self.backend, workers=self.size, alive=alive, closed=self._closed)

    def close(self) -> None:
        """Stop every worker; a batch in flight ends at once (its worker is killed)."""
        if self._closed:
            return
        self._closed = True
        with self._state:
            holders = [*self._all_slots, *self._spares_starting]
        for slot in holders:
            worker, starting = slot.worker, slot.starting
            if worker is not None and worker.alive:
                worker.channel.abort()
            if starting is not None:
                starting.abort()
        self._executor.shutdown(wait=True)
        for _ in range(self.size):
            slot = self._slots.get()
            if slot.worker is not None:
                slot.worker.close()
        self._background.shutdown(wait=True)  # spares started, retired workers closed
        for slot in self._all_slots:
            spare = slot.spare.result() if slot.spare is not None else None
            if spare is not None:
                spare.close()


class PoolHandle:
    """What `get_pool` returns: a reference to a shared pool; `close()` drops the reference."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.backend = pool.backend
        self._closed = False

    @property
    def size(self) -> int:
        return self._pool.size

    def status(self) -> PoolStatus:
        return self._pool.status()

    def grade(self, pairs: list[Pair]) -> list[WorkerOutcome]:
        if self._closed:
            raise RuntimeError("this grader pool handle is closed")
        return self._pool.grade(pairs)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._pool)


_POOLS: dict[tuple[str, ...], Pool] = {}
_LOCK = threading.Lock()


def get_pool(
    *,
    tenant: str,
    grader_id: str,
    version: str,
    source: str,
    backend: str = "auto",
    limits: SandboxLimits | dict[str, Any] | None = None,
) -> PoolHandle:
    """A warm pool for one tenant's grader version (shared by callers with the same key).

    `limits`: a SandboxLimits, a dict of overrides, or None (defaults and RFTKIT_SANDBOX_* variables).
    Raises SandboxUnavailable when the backend (or, for `auto`, every sandbox) is missing.
    """
    limits = SandboxLimits.coerce(limits)
    impl = get_backend(backend)
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    key = (tenant, grader_id, version, impl.name, digest, limits.model_dump_json())
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = Pool(key, impl, source, limits)
            log.info(
                "sandbox pool for %s/%s@%s on %s (%d workers)",
                tenant,
                grader_id,
                version,
                impl.name,
                pool.size,
            )
        pool.refs += 1
        return PoolHandle(pool)


def _release(pool: Pool) -> None:
    with _LOCK:
        pool.refs -= 1
        if pool.refs > 0:
            return
        _POOLS.pop(pool.key, None)
    pool.close()


@atexit.register
def close_all() -> None:
    """Stop every pool's workers (also runs at interpreter exit)."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _split(pairs: list[Pair], parts: int) -> list[list[Pair]]:
    size, extra = divmod(len(pairs), parts)
    chunks, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(pairs[start:end])
        start = end
    return chunks


def _fill(count: int, kind: str, details: str) -> list[WorkerOutcome]:
    return [WorkerOutcome(error=kind, details=details) for _ in range(count)]  # type: ignore[arg-type]
