"""The grading slots: bounded queue, deadlines, shutdown, callers that hang up."""

from __future__ import annotations

import threading
import time

import pytest
from rftkit.grader_service.admission import Admission, Expired, QueueFull, ShuttingDown, Stopped


def test_admission_bounds_the_queue() -> None:
    gate = Admission(slots=1, max_queue=1)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with gate.slot(None):
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    waiter_result: list[str] = []

    def wait_in_queue() -> None:
        with gate.slot(5):
            waiter_result.append("ran")

    waiter = threading.Thread(target=wait_in_queue)
    waiter.start()
    time.sleep(0.1)
    with pytest.raises(QueueFull, match="queue is full"), gate.slot(1):
        pass
    release.set()
    holder.join(5)
    waiter.join(5)
    assert waiter_result == ["ran"]


def test_admission_deadline_and_shutdown() -> None:
    gate = Admission(slots=1, max_queue=4)
    with gate.slot(None):
        with pytest.raises(Expired), gate.slot(0.05):
            pass
        gate.close()
        with pytest.raises(ShuttingDown), gate.slot(1):
            pass


def test_a_waiter_whose_caller_hung_up_leaves_the_queue() -> None:
    gate = Admission(slots=1, max_queue=2)
    hung_up = threading.Event()
    outcome: list[str] = []

    def wait() -> None:
        try:
            with gate.slot(30, lambda: "cancelled" if hung_up.is_set() else None):
                outcome.append("ran")
        except Stopped as exc:
            outcome.append(exc.reason)

    with gate.slot(None):
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.1)
        hung_up.set()
        gate.wake()
        waiter.join(5)
    assert outcome == ["cancelled"]
