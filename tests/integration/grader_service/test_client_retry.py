"""GraderClient's retries against a real in-process gRPC server that refuses every call.

The server is a stand-in (a generic handler answering every RunGrader with one status), because
`rft serve` answers UNAVAILABLE or CANCELLED only for moments (while it stops).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from rftkit.grader_service.client import SERVICE, GraderClient, GraderServiceError, RetryPolicy

pytestmark = pytest.mark.timeout(60)


class Refusing:
    """A server whose RunGrader always ends with `code`; `calls` counts the attempts it saw."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.UNAVAILABLE
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        handler = grpc.unary_unary_rpc_method_handler(self._refuse)
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"RunGrader": handler})]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _refuse(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        context.abort(self.code, "refused by the test server")
        raise AssertionError("unreachable")


@pytest.fixture
def refusing() -> Iterator[Refusing]:
    server = Refusing()
    yield server
    server.server.stop(None)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
def test_resent_until_the_total_deadline(refusing: Refusing, code: grpc.StatusCode) -> None:
    refusing.code = code
    retry = RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.2)
    with GraderClient(f"127.0.0.1:{refusing.port}", retry=retry, timeout=1.5) as client:
        start = time.monotonic()
        with pytest.raises(GraderServiceError) as raised:
            client.run({"type": "string_check"}, "a")
        took = time.monotonic() - start
    # The last refusal, or the deadline when it ends an attempt that gRPC's retry policy made.
    assert raised.value.code in (code, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert refusing.calls >= 4  # gRPC's retry policy and the client's loop both sent it again
    assert 1.0 < took < 2.5, f"{took:.2f} s: not bounded by the 1.5 s total deadline"


def test_one_attempt_fails_fast(refusing: Refusing) -> None:
    with GraderClient(f"127.0.0.1:{refusing.port}", retry=RetryPolicy(attempts=1), timeout=30) as client:
        start = time.monotonic()
        with pytest.raises(GraderServiceError):
            client.run({"type": "string_check"}, "a")
        assert time.monotonic() - start < 1.0
    assert refusing.calls == 1


def test_a_service_that_is_not_there_is_waited_for_until_the_deadline() -> None:
    with GraderClient("127.0.0.1:1", timeout=1.0) as client:
        start = time.monotonic()
        with pytest.raises(GraderServiceError) as raised:
            client.run({"type": "string_check"}, "a")
        took = time.monotonic() - start
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "the service at 127.0.0.1:1 could not be reached" in str(raised.value)
    assert 0.9 < took < 2.0
