"""The grading slots: bounded queue, deadlines, shutdown, callers that hang up."""

from __future__ import annotations

import threading
import time

import pytest
from rftkit.grader_service.admission import Admission, CallLimit, Expired, QueueFull, ShuttingDown, Stopped


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


class Holder:
    """A thread that takes a slot for `tenant` and holds it until `release()`; `started` once in."""

    def __init__(self, gate: Admission, tenant: str, order: list[str] | None = None, name: str = "") -> None:
        self.started, self._release = threading.Event(), threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with gate.slot(30, tenant=tenant):
                    if order is not None:
                        order.append(name or tenant)
                    self.started.set()
                    self._release.wait(30)
            except BaseException as exc:  # the test looks at it
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self._release.set()
        self.thread.join(5)


def test_a_tenant_with_nothing_running_starts_while_another_holds_every_slot() -> None:
    gate = Admission(slots=2, max_queue=4)
    hung = [Holder(gate, "a"), Holder(gate, "a")]
    assert all(h.started.wait(5) for h in hung)
    queued_a = Holder(gate, "a")  # tenant a's third request waits: a already runs
    b = Holder(gate, "b")
    assert b.started.wait(1), "tenant b waited behind tenant a's requests"
    second_b = Holder(gate, "b")  # b already runs one: its second waits like anyone's
    time.sleep(0.2)
    assert not queued_a.started.is_set() and not second_b.started.is_set()
    assert gate.running("a") == 2 and gate.running("b") == 1
    b.release()
    assert second_b.started.wait(5)  # b has nothing running again: back on the spare slot
    for holder in (*hung, queued_a, second_b):
        holder.release()
    assert all(h.error is None for h in (*hung, queued_a, b, second_b))


def test_spare_slots_are_bounded() -> None:
    gate = Admission(slots=1, max_queue=4, spare=1)
    a, b = Holder(gate, "a"), Holder(gate, "b")
    assert a.started.wait(5) and b.started.wait(5)
    c = Holder(gate, "c")  # slots + spare are all taken
    time.sleep(0.2)
    assert not c.started.is_set()
    a.release()
    assert c.started.wait(5)
    b.release()
    c.release()


def test_a_freed_slot_goes_to_the_waiting_tenant_with_the_fewest_running() -> None:
    gate = Admission(slots=2, max_queue=8, spare=0)
    order: list[str] = []
    first, second = Holder(gate, "a", order, "a1"), Holder(gate, "a", order, "a2")
    assert first.started.wait(5) and second.started.wait(5)
    waiting = [Holder(gate, "a", order, "a3"), Holder(gate, "a", order, "a4")]
    time.sleep(0.1)
    waiting.append(Holder(gate, "b", order, "b1"))  # queued after a3 and a4
    time.sleep(0.1)
    second.release()  # a still runs one, b none: b1 goes first
    assert waiting[2].started.wait(5)
    first.release()
    assert waiting[0].started.wait(5)
    for holder in waiting:
        holder.release()
    assert order == ["a1", "a2", "b1", "a3", "a4"]


def _until_waiting(waiting: list[int], count: int) -> None:
    """Until the gate's on_change said `count` requests wait (no sleep that a busy machine outruns)."""
    deadline = time.monotonic() + 10
    while not waiting or waiting[-1] != count:
        assert time.monotonic() < deadline, f"waiting {waiting[-1:]}, expected {count}"
        time.sleep(0.01)


def test_one_tenant_filling_the_queue_does_not_refuse_another() -> None:
    waiting: list[int] = []
    gate = Admission(slots=1, max_queue=1, spare=0, on_change=lambda w, _running: waiting.append(w))
    holder = Holder(gate, "a")
    assert holder.started.wait(5)
    queued = [Holder(gate, "a")]
    _until_waiting(waiting, 1)
    with pytest.raises(QueueFull, match="1 of them yours"), gate.slot(1, tenant="a"):
        pass
    queued.append(Holder(gate, "b"))  # b has nothing waiting: it may still queue one
    _until_waiting(waiting, 2)
    with pytest.raises(QueueFull), gate.slot(1, tenant="b"):
        pass
    holder.release()
    for h in queued:
        assert h.started.wait(5)
        h.release()
    assert all(h.error is None for h in queued)
    assert gate.running("a") == gate.running("b") == 0


def test_call_limit_counts_each_tenant_apart() -> None:
    calls = CallLimit(2)
    assert calls.enter("a") and calls.enter("a") and not calls.enter("a")
    assert calls.enter("b") and calls.in_flight("a") == 2 and calls.in_flight("b") == 1
    calls.leave("a")
    assert calls.enter("a") and calls.in_flight("a") == 2
