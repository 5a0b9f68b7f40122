"""Who may grade now: grading slots shared fairly between tenants, and a bounded waiting room.

`Admission` (below) says how slots are shared; a request it cannot take is refused at once
(QueueFull, RESOURCE_EXHAUSTED) instead of piling up in memory.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class QueueFull(Exception):
    """Every grading slot is busy and the queue is full."""


class ShuttingDown(Exception):
    """The server is draining and takes no new grading work."""


class Expired(Exception):
    """The caller's deadline passed while the request waited in the queue."""


class Stopped(Exception):
    """Grading stopped between chunks; `reason` is deadline, cancelled or shutdown."""

    def __init__(self, reason: str, done: int, total: int) -> None:
        super().__init__(f"{reason} after {done} of {total} samples")
        self.reason, self.done, self.total = reason, done, total


_DRAINING = "the server is shutting down; send this request to another replica or retry"


class Admission:
    """Grading slots shared fairly between tenants, with a bounded waiting room.

    - `slots` requests run at once. When one ends, the next slot goes to the waiting tenant with
      the fewest requests running (ties: the oldest waiter); within a tenant, first come first
      served. So a tenant gets its share of the slots whenever others wait, and all of them when
      alone.
    - A tenant with nothing running may start at once on one of `spare` extra slots when the
      others hold every slot: a tenant's slow or hanging grader then costs only that tenant.
      At most `slots + spare` requests ever run.
    - Each tenant may have `max_queue` requests waiting; once the waiting room (`max_queue` in
      all) is full, only a tenant with nothing waiting may still queue one, so one tenant filling
      the queue does not refuse the others. Beyond that a request is refused at once (QueueFull)
      instead of piling up in memory.
    """

    def __init__(
        self,
        slots: int,
        max_queue: int,
        on_change: Callable[[int, int], None] | None = None,
        *,
        spare: int | None = None,
    ) -> None:
        if slots < 1 or max_queue < 0 or (spare is not None and spare < 0):
            raise ValueError("slots must be >= 1, max_queue and spare >= 0")
        self.slots, self.max_queue = slots, max_queue
        self.spare = slots if spare is None else spare
        self._running: dict[str, int] = {}  # tenant -> requests running
        self._queues: dict[str, deque[int]] = {}  # tenant -> its waiters' tickets, oldest first
        self._tickets = itertools.count()
        self._total = self._waiting = 0
        self._closed = False
        self._cond = threading.Condition()
        self._on_change = on_change or (lambda waiting, running: None)

    def _changed(self) -> None:
        self._on_change(self._waiting, self._total)

    def running(self, tenant: str = "") -> int:
        """Requests of `tenant` running now."""
        with self._cond:
            return self._running.get(tenant, 0)

    def _may_start(self, tenant: str, ticket: int) -> bool:
        """Whether the waiter `ticket` of `tenant` goes next: a free slot goes to the head of the
        tenant with the fewest running (the oldest head on a tie); a spare slot, while every slot
        is taken, to the oldest head among the tenants with nothing running."""
        if self._queues[tenant][0] != ticket:
            return False
        if self._total < self.slots:
            heads = ((self._running.get(t, 0), q[0]) for t, q in self._queues.items())
            return min(heads)[1] == ticket
        if self._total < self.slots + self.spare and not self._running.get(tenant, 0):
            return min(q[0] for t, q in self._queues.items() if not self._running.get(t, 0)) == ticket
        return False

    def _leave_queue(self, tenant: str, ticket: int) -> None:
        queue = self._queues[tenant]
        queue.remove(ticket)
        if not queue:
            del self._queues[tenant]
        self._cond.notify_all()  # the head of a queue changed

    @contextmanager
    def slot(
        self,
        timeout: float | None,
        stop_reason: Callable[[], str | None] = lambda: None,
        tenant: str = "",
    ) -> Iterator[None]:
        """Hold one grading slot for `tenant`; waits at most `timeout` seconds (None: no limit).

        A waiter whose `stop_reason()` turns non-empty (its caller hung up; call `wake()` then)
        leaves the queue with Stopped.
        """
        with self._cond:
            if self._closed:
                raise ShuttingDown(_DRAINING)
            ticket = next(self._tickets)
            mine = self._queues.setdefault(tenant, deque())
            ahead = len(mine)
            mine.append(ticket)
            if not self._may_start(tenant, ticket):
                if ahead >= self.max_queue or (ahead and self._waiting >= self.max_queue):
                    self._leave_queue(tenant, ticket)
                    raise QueueFull(
                        f"grading queue is full ({self._total} running, {self._waiting} waiting, "
                        f"{ahead} of them yours); retry with backoff, or start the server with a "
                        "larger --max-queue"
                    )
                self._waiting += 1
                self._changed()
                try:
                    ready = self._cond.wait_for(
                        lambda: self._closed or bool(stop_reason()) or self._may_start(tenant, ticket),
                        timeout,
                    )
                    reason = None if self._closed else stop_reason()
                except BaseException:
                    self._waiting -= 1
                    self._leave_queue(tenant, ticket)
                    self._changed()
                    raise
                self._waiting -= 1
                if reason or self._closed or not ready:
                    self._leave_queue(tenant, ticket)
                    self._changed()
                    if reason:
                        raise Stopped(reason, 0, 0)
                    if self._closed:
                        raise ShuttingDown(_DRAINING)
                    raise Expired("the deadline passed while the request waited in the grading queue")
            self._leave_queue(tenant, ticket)
            self._running[tenant] = self._running.get(tenant, 0) + 1
            self._total += 1
            self._changed()
        try:
            yield
        finally:
            with self._cond:
                self._total -= 1
                self._running[tenant] -= 1
                if not self._running[tenant]:
                    del self._running[tenant]
                self._changed()
                self._cond.notify_all()

    def wake(self) -> None:
        """Let waiters re-check whether their caller is still there."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new work and wake everything waiting in the queue."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class CallLimit:
    """Calls in flight per tenant, at most `limit` each (idle ones included), so that no tenant's
    open calls can use up what the others need."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, tenant: str) -> bool:
        """Count one more call of `tenant`; False (and nothing counted) when it has `limit` already."""
        with self._lock:
            calls = self._calls.get(tenant, 0)
            if calls >= self.limit:
                return False
            self._calls[tenant] = calls + 1
            return True

    def leave(self, tenant: str) -> None:
        with self._lock:
            self._calls[tenant] -= 1
            if not self._calls[tenant]:
                del self._calls[tenant]

    def in_flight(self, tenant: str) -> int:
        with self._lock:
            return self._calls.get(tenant, 0)
