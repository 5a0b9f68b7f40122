"""The session's outage policy: which service errors are waited out, and for how long."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from rftkit.grader_service.client import GraderServiceError
from rftkit.grading.session import GradingUnavailable, OutageWait, is_transient


def error(code: grpc.StatusCode, details: str = "x") -> GraderServiceError:
    return GraderServiceError("GradeBatch", code, details)


def fails_first(failure: GraderServiceError) -> Callable[[], str]:
    """A call that raises `failure` once, then returns "graded"."""
    failures = iter([failure])

    def call() -> str:
        for exc in failures:
            raise exc
        return "graded"

    return call


def test_transient_codes_are_waited_out_but_oversized_messages_are_not() -> None:
    assert is_transient(error(grpc.StatusCode.UNAVAILABLE))
    assert is_transient(error(grpc.StatusCode.RESOURCE_EXHAUSTED, "the grading queue is full"))
    assert is_transient(error(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert not is_transient(error(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max"))
    assert not is_transient(error(grpc.StatusCode.INVALID_ARGUMENT))
    assert not is_transient(ValueError("not a service error"))


def test_the_pauses_add_up_to_the_limit_then_it_gives_up() -> None:
    slept: list[float] = []
    messages: list[str] = []
    wait = OutageWait(max_wait_s=5.0, notify=messages.append, sleep=slept.append)

    def always_down() -> None:
        raise error(grpc.StatusCode.UNAVAILABLE, "connection refused")

    with pytest.raises(GradingUnavailable, match="unavailable for 5 s"):
        wait.call(always_down)
    assert sum(slept) == pytest.approx(5.0) and wait.waited_s == pytest.approx(5.0)
    assert all("grading paused" in m for m in messages) and len(messages) == len(slept)


def test_a_recovery_returns_the_real_result_and_says_so() -> None:
    messages: list[str] = []
    wait = OutageWait(max_wait_s=60, notify=messages.append, sleep=lambda s: None, what="training")
    assert wait.call(fails_first(error(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"))) == "graded"
    assert "training paused" in messages[0] and "back after" in messages[-1]


def test_user_errors_are_not_retried() -> None:
    wait = OutageWait(max_wait_s=60, sleep=lambda s: pytest.fail("slept on a user error"))
    with pytest.raises(GraderServiceError):
        wait.call(lambda: (_ for _ in ()).throw(error(grpc.StatusCode.NOT_FOUND)))


def test_a_pause_ends_when_the_channel_is_back() -> None:
    waited: list[float] = []

    def comes_back(seconds: float) -> bool:  # not ready at first, ready after 0.1 s
        waited.append(seconds)
        time.sleep(0.1)
        return True

    wait = OutageWait(notify=lambda m: None, sleep=lambda s: pytest.fail("slept"), ready=comes_back)
    assert wait.call(fails_first(error(grpc.StatusCode.UNAVAILABLE, "connection refused"))) == "graded"
    assert len(waited) == 1 and 0.1 <= wait.waited_s < waited[0]


def test_a_channel_ready_all_along_gets_the_full_pause() -> None:
    # Ready at once: the service itself is busy (a full queue), so the backoff is not cut short.
    slept: list[float] = []
    wait = OutageWait(max_wait_s=3.0, notify=lambda m: None, sleep=slept.append, ready=lambda s: True)
    with pytest.raises(GradingUnavailable):
        wait.call(lambda: (_ for _ in ()).throw(error(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full")))
    assert sum(slept) == pytest.approx(3.0) and wait.waited_s == pytest.approx(3.0)
