"""POST JSON to a user's HTTP endpoint with OpenAI's contract: what endpoint graders and tools share.

One call sends a JSON body (with a trace id, also sent as the `X-Trace-Id` header) and reads a
JSON reply of at most `max_response_bytes` (1 MB; a bigger body is cut off and reported as 413).
A 5xx reply, a 429 and a connection failure are retried `max_retries` times (3) with exponential
backoff and jitter (honouring `Retry-After`); another 4xx is not retried; a reply that takes
longer than `timeout_s` ends the call. A `RateLimiter` spaces requests evenly (requests per
minute, shared by every thread that uses it). Nothing here raises for what the endpoint does:
every call ends in a `CallOutcome` whose `kind` says how it went.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

MAX_RESPONSE_BYTES = 1024 * 1024
OutcomeKind = Literal[
    "ok", "client_error", "server_error", "timeout", "too_large", "invalid_json", "connection"
]


@dataclass
class CallOutcome:
    """How one call ended: `ok` with `data` (the parsed JSON), or a failure kind with `details`."""

    kind: OutcomeKind
    data: Any = None
    status: int | None = None
    text: str = ""  # the body as text (cut to a few kB), for a 4xx shown to a model
    details: str = ""
    attempts: int = 1
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


class RateLimiter:
    """At most `per_minute` requests a minute, evenly spaced; `None` means no limit. Thread-safe."""

    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this caller's turn; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(0.0, wait)


def new_trace_id() -> str:
    """A fresh trace id (sent with a call and kept in its records so both sides can match them)."""
    return f"trace_{uuid.uuid4().hex}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class EndpointClient:
    """POSTs JSON to one URL; thread-safe (one httpx client shared by every thread)."""

    url: str
    headers: Mapping[str, str] | None = None
    timeout_s: float = 600.0
    max_retries: int = 3
    backoff_s: float = 1.0  # first pause between attempts; doubles each time (capped at 30 s)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    rate_limit: float | None = None  # requests per minute

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.rate_limit)
        self._client = httpx.Client(
            headers=dict(self.headers or {}),
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            follow_redirects=False,
            trust_env=False,
        )

    def post(self, body: Mapping[str, Any], *, trace_id: str) -> CallOutcome:
        """Send `body` (retrying as the module says); the outcome of the last attempt."""
        start = time.monotonic()
        try:
            payload = json.dumps(body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return CallOutcome("client_error", details=f"the request cannot be sent as JSON: {exc}")
        outcome = CallOutcome("connection")
        for attempt in range(1, self.max_retries + 2):
            self.limiter.acquire()
            outcome, retry_after = self._attempt(payload, trace_id, start)
            outcome.attempts = attempt
            retryable = outcome.kind in ("server_error", "connection") or outcome.status == 429
            if not retryable or attempt > self.max_retries:
                break
            pause = min(30.0, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            time.sleep(retry_after if retry_after is not None else pause)
        outcome.latency_s = time.monotonic() - start
        if outcome.attempts > 1 and not outcome.ok:
            outcome.details = f"{outcome.details} (after {outcome.attempts} attempts)"
        return outcome

    def _attempt(self, payload: bytes, trace_id: str, start: float) -> tuple[CallOutcome, float | None]:
        headers = {"content-type": "application/json", "x-trace-id": trace_id}
        limit = self.max_response_bytes
        try:
            with self._client.stream("POST", self.url, content=payload, headers=headers) as response:
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    return self._too_large(response.status_code, f"declares {int(declared)} bytes"), None
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        return self._too_large(response.status_code, f"sent more than {limit} bytes"), None
                    chunks.append(chunk)
                    if time.monotonic() - start > self.timeout_s:
                        raise httpx.ReadTimeout("the response took too long to arrive")
                return self._interpret(response, b"".join(chunks)), _retry_after(response)
        except httpx.TimeoutException as exc:
            details = f"no complete answer from {self.url} within {self.timeout_s:g} s ({type(exc).__name__})"
            return CallOutcome("timeout", details=details), None
        except httpx.HTTPError as exc:
            return CallOutcome(
                "connection", details=f"cannot reach {self.url}: {type(exc).__name__}: {exc}"
            ), None

    def _too_large(self, status: int, how: str) -> CallOutcome:
        details = f"413: the response from {self.url} {how}; the limit is {self.max_response_bytes} bytes"
        return CallOutcome("too_large", status=status, details=details)

    def _interpret(self, response: httpx.Response, raw: bytes) -> CallOutcome:
        status = response.status_code
        text = raw[:4000].decode("utf-8", "replace")
        if status >= 500:
            return CallOutcome(
                "server_error", status=status, text=text, details=f"HTTP {status}: {text[:300]}"
            )
        if status >= 400:
            return CallOutcome(
                "client_error", status=status, text=text, details=f"HTTP {status}: {text[:300]}"
            )
        if status >= 300:
            details = f"HTTP {status} (redirects are not followed): {text[:300]}"
            return CallOutcome("client_error", status=status, text=text, details=details)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            details = f"the response from {self.url} is not JSON ({exc}): {text[:200]!r}"
            return CallOutcome("invalid_json", status=status, text=text, details=details)
        return CallOutcome("ok", data=data, status=status, text=text)

    def close(self) -> None:
        self._client.close()
