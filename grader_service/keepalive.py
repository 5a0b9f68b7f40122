"""HTTP/2 keepalive of the grader service's connections: the client's pings and the server's permission.

A `kill -9` on the same host closes the socket, so the client hears of it at once. A host that
vanishes, a network partition or a frozen process sends nothing: without pings, a call in flight
on such a connection waits for its whole deadline. With these options the client pings every
`KEEPALIVE_TIME_MS`, also while a long call sends no data, and closes a connection whose ping
is not answered within `KEEPALIVE_TIMEOUT_MS`; its calls then fail UNAVAILABLE and are retried
on a new connection. The server must allow pings that often, or it ends the connection with
GOAWAY `too_many_pings` (after two early pings, by gRPC's default policy), which would fail
every grading call that lasts longer than two ping intervals.
"""

from __future__ import annotations

from typing import Any

KEEPALIVE_TIME_MS = 5_000
KEEPALIVE_TIMEOUT_MS = 5_000
# What the server accepts: a ping a second at most, below the client's interval with room to spare.
MIN_PING_INTERVAL_MS = 1_000

CLIENT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    # gRPC 1.85 waits for a keepalive ping's ack for the ping timeout (default 1 min), whatever
    # keepalive_timeout_ms says (measured: a silent connection was dropped after 60 s, not 1.5 s).
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),  # an idle connection to a vanished host is noticed too
    ("grpc.http2.max_pings_without_data", 0),  # keep pinging through a long call (default: 2 pings)
]

SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC's name for the least time between pings the server receives without data (default 5 min).
    ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
]
