"""Who may grade now: the grading slots and their bounded waiting room.

`Admission` lets `slots` grading requests run at once and `max_queue` wait; beyond that a request
is refused at once (QueueFull, RESOURCE_EXHAUSTED) instead of piling up in memory.
"""

from __future__ import annotations

import threading
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
    """A counting gate with a bounded waiting room."""

    def __init__(
        self, slots: int, max_queue: int, on_change: Callable[[int, int], None] | None = None
    ) -> None:
        if slots < 1 or max_queue < 0:
            raise ValueError("slots must be >= 1 and max_queue >= 0")
        self.slots, self.max_queue = slots, max_queue
        self._free, self._waiting, self._closed = slots, 0, False
        self._cond = threading.Condition()
        self._on_change = on_change or (lambda waiting, running: None)

    def _changed(self) -> None:
        self._on_change(self._waiting, self.slots - self._free)

    @contextmanager
    def slot(
        self, timeout: float | None, stop_reason: Callable[[], str | None] = lambda: None
    ) -> Iterator[None]:
        """Hold one grading slot; waits at most `timeout` seconds (None: no limit) in the queue.

        A waiter whose `stop_reason()` turns non-empty (its caller hung up; call `wake()` then)
        leaves the queue with Stopped.
        """
        with self._cond:
            if self._closed:
                raise ShuttingDown(_DRAINING)
            if self._free == 0 and self._waiting >= self.max_queue:
                raise QueueFull(
                    f"grading queue is full ({self.slots} running, {self._waiting} waiting); "
                    "retry with backoff, or start the server with a larger --max-queue"
                )
            self._waiting += 1
            self._changed()
            try:
                ready = self._cond.wait_for(
                    lambda: self._free > 0 or self._closed or bool(stop_reason()), timeout
                )
            finally:
                self._waiting -= 1
            reason = None if self._closed else stop_reason()
            if reason:
                self._changed()
                raise Stopped(reason, 0, 0)
            if self._closed:
                self._changed()
                raise ShuttingDown(_DRAINING)
            if not ready:
                self._changed()
                raise Expired("the deadline passed while the request waited in the grading queue")
            self._free -= 1
            self._changed()
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                self._changed()
                self._cond.notify()

    def wake(self) -> None:
        """Let waiters re-check whether their caller is still there."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new work and wake everything waiting in the queue."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
