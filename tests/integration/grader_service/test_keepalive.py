"""HTTP/2 keepalive between GraderClient and `rft serve`: a silent connection is found, a long call goes on.

A host that vanishes or a network partition sends no FIN, which a process on this host cannot
provoke (a killed process's socket is closed by the kernel). The test puts a real TCP relay
between client and service and makes it go silent: the connections open at that moment stay
open but carry nothing more, new connections are relayed. The client pings more often here
than by default (1.5 s, answered within 1.5 s) to keep the test short; the server's permission
(a ping a second) is the one `rft serve` has.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.testing import GRADER_SOURCE, TOKEN_A, serve

pytestmark = pytest.mark.timeout(120)

FAST_PINGS = [
    ("grpc.keepalive_time_ms", 1500),
    ("grpc.keepalive_timeout_ms", 1500),
    ("grpc.http2.ping_timeout_ms", 1500),
]


class SilentRelay:
    """Relays 127.0.0.1:`port` to `upstream`; `silence()` stops relaying on the connections open now."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.generation = 0  # connections of an older generation are silent
        self.opened = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self.generation += 1

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [near, far]
            self.opened += 1
            for src, dst in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(src, dst, self.generation), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if generation < self.generation:
                    continue  # silent: read and dropped, never answered, never closed
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serve(tmp_path_factory.mktemp("keepalive"), sandbox="process") as running:
        yield running.port


def test_a_call_on_a_silent_connection_is_sent_again(service: int) -> None:
    relay = SilentRelay(service)
    try:
        with GraderClient(
            f"127.0.0.1:{relay.port}", TOKEN_A, timeout=40, channel_options=FAST_PINGS
        ) as client:
            grader_id, _ = client.create_grader(GRADER_SOURCE, name="sleepy")
            result: list[object] = []
            call = threading.Thread(
                target=lambda: result.append(client.grade_batch(grader_id, ["sleep:2"], [{"answer": "x"}]))
            )
            start = time.monotonic()
            call.start()
            time.sleep(0.7)
            relay.silence()  # the request is being graded; its response will never come back
            call.join(45)
            took = time.monotonic() - start
        assert [r.reward for r in result[0]] == [1.0]  # type: ignore[union-attr]
        # Found dead by a ping (<= 3 s after the last traffic), then graded again on a new connection.
        assert relay.opened >= 2
        print(f"a call on a connection gone silent answered after {took:.1f} s")
        assert took < 15, f"took {took:.1f} s: the dead connection was not noticed"
    finally:
        relay.close()


def test_a_long_call_is_not_cut_by_the_servers_ping_policy(service: int) -> None:
    # Four pings during one call without data: gRPC's default server policy (5 min between pings,
    # two strikes) would answer GOAWAY too_many_pings, failing the call and every retry of it.
    with GraderClient(f"127.0.0.1:{service}", TOKEN_A, timeout=30, channel_options=FAST_PINGS) as client:
        grader_id, _ = client.create_grader(GRADER_SOURCE, name="sleepy")
        start = time.monotonic()
        [graded] = client.grade_batch(grader_id, ["sleep:7"], [{"answer": "x"}])
        took = time.monotonic() - start
    assert graded.reward == 1.0
    assert took < 12, f"took {took:.1f} s: graded more than once"
