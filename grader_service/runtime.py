"""What grading needs at run time: built graders kept warm, a bounded queue, and chunked grading.

- `LoadedGraders` builds each (tenant, version) once and keeps it (and its sandbox pool) warm,
  closing the least recently used beyond a capacity, or beyond a global budget of warm sandbox
  workers, once nobody is grading with it.
- (`Admission`, the grading slots and their queue, is in admission.py.)
- `grade_in_chunks` grades a batch in chunks sized to about 0.25 s (a remainder smaller than a
  chunk joins the one before it), checking between chunks whether the caller is still waiting
  (deadline, cancellation, shutdown). This is the one place a request's batch is cut.
- `safe_grade_batch` makes sure a grader that raises costs the failing samples, never the batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..core.records import GradedBatch, GraderResult, Sample, rewards_in_range
from ..plugins.base import Grader, GraderContext
from ..plugins.registry import build_grader
from .admission import Admission as Admission  # re-exported: the HTTP API imports these from here
from .admission import Expired as Expired
from .admission import QueueFull as QueueFull
from .admission import ShuttingDown as ShuttingDown
from .admission import Stopped

log = logging.getLogger("rftkit.grader_service")

Pair = tuple[Sample, Mapping[str, Any]]
CHUNK_TARGET_S = 0.25
# Small chunks first, so that a slow grader is noticed (and a deadline checked) early; a pool
# has a worker per core by default, so a chunk of that many keeps every worker busy. A grader
# seen before starts at the size its last chunk's pace gives: a fast one's batch is not cut.
MIN_CHUNK = max(2, os.cpu_count() or 2)
FIRST_CHUNK, MAX_CHUNK = 2 * MIN_CHUNK, 8192
_PACE: weakref.WeakKeyDictionary[Grader, float] = weakref.WeakKeyDictionary()  # seconds per sample


@dataclass
class _Entry:
    grader: Grader | None = None
    users: int = 0
    evicted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadedGraders:
    """Built graders by (tenant, version); pools are therefore never shared between tenants.

    At most `capacity` graders stay built, and their sandbox pools run at most `max_warm_workers`
    workers together once idle: whenever a grader is done with, the least recently used idle ones
    are closed until both hold (graders in use are never closed; the next use builds anew).
    """

    def __init__(
        self,
        sandbox: str,
        capacity: int = 64,
        on_change: Callable[[int], None] | None = None,
        max_warm_workers: int | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.capacity = capacity
        self.max_warm_workers = max_warm_workers
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._on_change = on_change or (lambda n: None)

    @contextmanager
    def use(self, tenant: str, grader_id: str, version: str, spec: dict[str, Any]) -> Iterator[Grader]:
        key = (tenant, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.evicted:
                entry = self._entries[key] = _Entry()
            self._entries.move_to_end(key)
            entry.users += 1
        try:
            with entry.lock:  # one build per key; others wait for it
                if entry.grader is None:
                    context = GraderContext(
                        tenant=tenant, grader_id=grader_id, version=version, sandbox=self.sandbox
                    )
                    entry.grader = build_grader(dict(spec), context)
                    log.info(
                        "loaded grader %s@%s (%s) for tenant %s",
                        grader_id,
                        version,
                        entry.grader.type_name,
                        tenant,
                    )
            yield entry.grader
        finally:
            with self._lock:
                entry.users -= 1
                if entry.grader is None and entry.users == 0 and self._entries.get(key) is entry:
                    del self._entries[key]  # the build failed; try again next time
                to_close = self._evict()
                if entry.evicted and entry.users == 0 and entry not in to_close:
                    to_close.append(entry)
            self._close(to_close)
            self._on_change(len(self._entries))

    def _evict(self) -> list[_Entry]:
        """Idle entries to close, least recently used first, until the capacity and the budget hold."""
        closing = []
        while len(self._entries) > self.capacity:
            victim = next((k for k, e in self._entries.items() if e.users == 0), None)
            if victim is None:
                break
            entry = self._entries.pop(victim)
            entry.evicted = True
            closing.append(entry)
        if self.max_warm_workers is None:
            return closing
        warm = {key: _warm_workers(entry) for key, entry in self._entries.items()}
        excess = sum(warm.values()) - self.max_warm_workers
        for key in [k for k, e in self._entries.items() if e.users == 0 and warm[k]]:
            if excess <= 0:
                break
            entry = self._entries.pop(key)
            entry.evicted = True
            closing.append(entry)
            excess -= warm[key]
        return closing

    def warm_workers(self) -> int:
        """Sandbox workers running now for the loaded graders."""
        with self._lock:
            return sum(_warm_workers(entry) for entry in self._entries.values())

    def drop(self, tenant: str, versions: Iterable[str]) -> None:
        """Forget a deleted grader's versions; close them once nobody grades with them."""
        closing = []
        with self._lock:
            for version in versions:
                entry = self._entries.pop((tenant, version), None)
                if entry is not None:
                    entry.evicted = True
                    if entry.users == 0:
                        closing.append(entry)
        self._close(closing)
        self._on_change(len(self._entries))

    def close_all(self) -> None:
        with self._lock:
            closing = list(self._entries.values())
            self._entries.clear()
        self._close(closing)
        self._on_change(0)

    def graders(self) -> list[Grader]:
        with self._lock:
            return [e.grader for e in self._entries.values() if e.grader is not None]

    @staticmethod
    def _close(entries: Iterable[_Entry]) -> None:
        for entry in entries:
            if entry.grader is not None:
                try:
                    entry.grader.close()
                except Exception:
                    log.exception("closing grader %s failed", entry.grader.name)


def _warm_workers(entry: _Entry) -> int:
    status = entry.grader.pool_status() if entry.grader is not None else None
    return status.alive if status is not None and not status.closed else 0


def pool_sizes(graders: Iterable[Grader]) -> Iterator[tuple[str, str, int]]:
    """(grader type, backend, workers) for each loaded grader whose sandbox pool has started."""
    for grader in graders:
        status = grader.pool_status()
        if status is not None:
            yield grader.type_name, status.backend, status.workers


def _failure(grader: Grader, details: str) -> GraderResult:
    flag = "python_grader_server_error" if grader.type_name == "python" else "other_error"
    return GraderResult.failure(grader.name, grader.type_name, flag, details)


def _grade_one(grader: Grader, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
    try:
        result = grader.grade_safely(sample, item)
    except Exception as exc:
        return _failure(grader, f"{type(exc).__name__}: {exc}")
    if isinstance(result, GraderResult):
        return result
    return _failure(grader, f"grader returned {type(result).__name__}, not a GraderResult")


def safe_grade_batch(grader: Grader, pairs: Sequence[Pair]) -> GradedBatch:
    """`grader.grade_columns`, falling back to one sample at a time if the batch call fails as a whole
    (raises, or answers the wrong number of rewards or one that is not a finite float in [0, 1])."""
    try:
        graded = grader.grade_columns(pairs)
        if not isinstance(graded, GradedBatch):
            problem = f"grade_columns returned a {type(graded).__name__}, not a GradedBatch"
        elif len(graded.rewards) != len(pairs):
            problem = f"grade_columns returned {len(graded.rewards)} rewards for {len(pairs)} samples"
        elif not rewards_in_range(graded.rewards):
            problem = "grade_columns returned a reward that is not a finite float in [0, 1]"
        else:
            return graded
    except Exception as exc:
        problem = f"grade_columns raised {type(exc).__name__}: {exc}"
    log.warning("grader %s (%s): %s; grading one sample at a time", grader.name, grader.type_name, problem)
    return grader.columns([_grade_one(grader, sample, item) for sample, item in pairs])


def grade_in_chunks(
    grader: Grader,
    pairs: Sequence[Pair],
    stop_reason: Callable[[], str | None],
    on_chunk: Callable[[GradedBatch, float], None] | None = None,
) -> GradedBatch:
    """Grade `pairs` in chunks of about CHUNK_TARGET_S; raise Stopped when `stop_reason()` says so.

    This is where a request's batch is cut (the pool only spreads a chunk over its workers). The
    first chunk is small for a grader not seen before, else as long as its last pace allows.
    """
    graded = GradedBatch(
        name=grader.name, type=grader.type_name, rewards=[], pass_threshold=grader.pass_threshold
    )
    pace = _PACE.get(grader)
    size, done, total = FIRST_CHUNK if pace is None else _chunk_size(pace), 0, len(pairs)
    while done < total:
        reason = stop_reason()
        if reason:
            raise Stopped(reason, done, total)
        if total - done - size < size:  # what would be left is less than a chunk: take it now
            size = total - done
        chunk = pairs[done : done + size]
        start = time.perf_counter()
        part = safe_grade_batch(grader, chunk)
        elapsed = time.perf_counter() - start
        graded.extend(part)
        done += len(chunk)
        if on_chunk is not None:
            on_chunk(part, elapsed)
        per_sample = elapsed / len(chunk)
        with contextlib.suppress(TypeError):  # a grader that cannot be weakly referenced: no memory
            _PACE[grader] = per_sample
        size = _chunk_size(per_sample)
    return graded


def _chunk_size(per_sample: float) -> int:
    """Samples a chunk of about CHUNK_TARGET_S holds at `per_sample` seconds each."""
    return max(MIN_CHUNK, min(MAX_CHUNK, int(CHUNK_TARGET_S / max(per_sample, 1e-7))))
