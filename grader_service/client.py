"""Client library for the rftkit grader service, sync (`GraderClient`) and asyncio (`AsyncGraderClient`).

    from .client import GraderClient
    client = GraderClient("localhost:50051", token="...")
    grader_id, version = client.create_grader({"type": "string_check", ...})
    results = client.grade_batch(grader_id, ["a", "b"], [{"answer": "a"}, {"answer": "a"}])

Big batches are split into requests of at most `chunk_size` samples and below the server's
message limit, sent `max_in_flight` at a time, and put back in order. A call rides out a
restart of the service: it waits for the channel to be ready (`wait_for_ready`), the channel
retries UNAVAILABLE (gRPC's retry policy, in its service config) and so does the client, with
backoff, all within the call's one total deadline (`timeout`). HTTP/2 keepalive pings find a
connection that went silent (see `keepalive`). Grading is a pure function of (grader version,
sample, item), so sending a request again after its response was lost is safe.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from ..core.heap import reuse_large_buffers
from ..core.records import GradedBatch, GraderResult
from . import codec, keepalive
from .pb import grader_pb2 as pb
from .pb import grader_pb2_grpc as pb_grpc

GRADER_ID_RE = re.compile(r"^gr_[0-9a-f]{16}$")
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
GraderLike = str | Mapping[str, Any]
Items = Sequence[Mapping[str, Any]] | Mapping[str, Any]


class GraderServiceError(RuntimeError):
    """A call the service refused or failed; `code` is the gRPC status code."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method, self.code, self.details = method, code, details


def _error(method: str, exc: grpc.RpcError, unreachable: str | None = None) -> GraderServiceError:
    """The service error for `exc`; `unreachable`: the address a call waited for in vain."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        details += (
            " — the request is over the server's message limit (rft serve --max-message-mb); "
            "send fewer or smaller samples per request (chunk_size / max_request_bytes)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and unreachable:
        details += f" — the service at {unreachable} could not be reached before the deadline"
    return GraderServiceError(method, code, details)


@dataclass(frozen=True)
class RetryPolicy:
    """How a call rides out UNAVAILABLE (a restart, a lost connection), within its total deadline.

    The channel carries gRPC's own retry policy (service config: UNAVAILABLE retried with
    backoff) and calls wait for the channel to be ready (`wait_for_ready`); on top of that a call
    that still fails UNAVAILABLE (the service draining after SIGTERM answers so) is sent again
    with exponential backoff and jitter (initial, initial*multiplier, ... up to max), for
    `attempts` tries when given, else until the call's deadline (the client's `timeout`) has
    passed. `attempts=1`: no retry and no waiting (fail fast).
    """

    attempts: int | None = None
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    @property
    def waits(self) -> bool:
        """Whether calls wait for a channel that is not ready (retries are on)."""
        return self.attempts != 1

    def delays(self) -> Iterator[float | None]:
        """One entry per attempt: the pause before the next attempt, None for the last attempt
        (without `attempts`, the entries never end: the call's deadline ends the tries)."""
        delay = self.initial_backoff_s
        tries = 1
        while self.attempts is None or tries < self.attempts:
            yield delay * random.uniform(0.5, 1.0)
            tries += 1
            delay = min(self.max_backoff_s, delay * self.multiplier)
        yield None

    def service_config(self) -> str:
        """The channel's service config: gRPC's retry policy for UNAVAILABLE."""
        policy = {
            "maxAttempts": 5 if self.attempts is None else max(2, min(5, self.attempts)),
            "initialBackoff": f"{self.initial_backoff_s:g}s",
            "maxBackoff": f"{self.max_backoff_s:g}s",
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
        config = {"name": [{"service": SERVICE}]}
        if self.attempts != 1:
            config["retryPolicy"] = policy
        return json.dumps({"methodConfig": [config]})


def grader_source(spec: GraderLike, name: str | None = None) -> pb.GraderSource:
    """A spec dict (OpenAI grader JSON) or the source text of a Python grader."""
    if isinstance(spec, Mapping):
        return pb.GraderSource(spec_json=json.dumps(dict(spec)))
    if isinstance(spec, str):
        return pb.GraderSource(python_source=spec, name=name or "")
    raise TypeError(f"a grader is a spec dict or Python source text, got {type(spec).__name__}")


def grader_ref(grader: GraderLike, version: str | None = None) -> pb.GraderRef:
    """A stored grader's id (gr_...), or a spec dict / Python source to run inline."""
    if isinstance(grader, str) and GRADER_ID_RE.match(grader):
        return pb.GraderRef(grader_id=grader, version=version or "")
    return pb.GraderRef(inline=grader_source(grader))


def grader_dict(message: pb.Grader) -> dict[str, Any]:
    """A Grader message as a plain dict (the spec parsed when present)."""
    data: dict[str, Any] = {
        "id": message.id,
        "version": message.version,
        "name": message.name,
        "type": message.type,
        "created_unix_ms": message.created_unix_ms,
        "versions": [{"version": v.version, "created_unix_ms": v.created_unix_ms} for v in message.versions],
    }
    if message.spec_json:
        data["spec"] = json.loads(message.spec_json)
    if message.warnings:
        data["warnings"] = list(message.warnings)
    return data


def batch_request(
    ref: pb.GraderRef, samples: Sequence[codec.SampleLike], items: Items, rewards_only: bool = False
) -> pb.GradeBatchRequest:
    """One GradeBatch request: samples encoded once, each distinct item once, compact results."""
    if isinstance(items, Mapping):
        items_json, index = codec.encode_items(items), []
    else:
        items_json, index = codec.encode_item_table(items)
    return pb.GradeBatchRequest(
        grader=ref,
        samples_json=codec.encode_samples(samples),
        items_json=items_json,
        item_index=index,
        rewards_only=rewards_only,
        compact=not rewards_only,
    )


def plan_requests(
    ref: pb.GraderRef,
    samples: Sequence[codec.SampleLike],
    items: Items,
    chunk_size: int,
    max_bytes: int,
    rewards_only: bool = False,
) -> list[pb.GradeBatchRequest]:
    """Requests of at most chunk_size samples and (where a single sample allows) max_bytes each."""
    if not isinstance(items, Mapping) and len(items) != len(samples):
        raise ValueError(f"got {len(samples)} samples but {len(items)} items; pass one item per sample")
    requests: list[pb.GradeBatchRequest] = []

    def add(lo: int, hi: int) -> None:
        part = items if isinstance(items, Mapping) else items[lo:hi]
        request = batch_request(ref, samples[lo:hi], part, rewards_only)
        if len(request.samples_json) + len(request.items_json) > max_bytes and hi - lo > 1:
            mid = (lo + hi) // 2
            add(lo, mid)
            add(mid, hi)
            return
        request.request_id = str(lo)
        requests.append(request)

    for lo in range(0, len(samples), max(1, chunk_size)):
        add(lo, min(lo + chunk_size, len(samples)))
    return requests


def _stream_requests(
    ref: pb.GraderRef, batches: Iterable[tuple[Sequence[codec.SampleLike], Items]]
) -> Iterator[pb.GradeBatchRequest]:
    for n, (samples, items) in enumerate(batches):
        request = batch_request(ref, samples, items)
        request.request_id = str(n)
        yield request


def graded_batch(response: pb.GradeBatchResponse) -> GradedBatch:
    """A GradeBatch response's columns (a server that predates `compact` sent every result)."""
    if not response.grader_type:
        results = codec.decode_results(response.results_json)
        name, kind = (results[0].metadata.name, results[0].metadata.type) if results else ("", "")
        return GradedBatch.from_results(name, kind, results)
    return codec.graded_from_wire(
        response.rewards,
        response.result_indices,
        response.results_json,
        name=response.grader_name,
        type=response.grader_type,
        pass_threshold=response.pass_threshold if response.HasField("pass_threshold") else None,
        sample_seconds=response.sample_seconds,
    )


def _stream_results(response: pb.GradeBatchResponse) -> list[GraderResult]:
    """One stream response's results; GraderServiceError for a request that failed as a whole."""
    if response.error_code:
        code = next(c for c in grpc.StatusCode if c.value[0] == response.error_code)
        raise GraderServiceError("GradeStream", code, response.error_message)
    return graded_batch(response).to_results()


def _credentials(tls_ca: str | Path | bytes | None) -> grpc.ChannelCredentials | None:
    if tls_ca is None:
        return None
    pem = tls_ca if isinstance(tls_ca, bytes) else Path(tls_ca).read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=pem)


SERVICE = pb.DESCRIPTOR.services_by_name["GraderService"].full_name
# What the client sends again itself: UNAVAILABLE (down, restarting, draining) and CANCELLED, which
# only the server side causes here (a call of these clients is never cancelled by them; gRPC's
# server cancels the calls it had not started when it shuts down).
RESEND_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
# Reconnect soon after a restart (gRPC's default backoff grows to 120 s); a channel whose service
# is down tries once a second at most, so a request goes out within ~1.2 s of the service being back.
RECONNECT_OPTIONS = [
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def build_channel_options(retry: RetryPolicy, extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The options of a client's channel: no message caps, fast reconnects, keepalive pings, the
    retry policy; an option in `extra` replaces the one of the same name."""
    options = dict(
        [
            *CHANNEL_OPTIONS,
            *RECONNECT_OPTIONS,
            *keepalive.CLIENT_OPTIONS,
            ("grpc.service_config", retry.service_config()),
        ]
    )
    options.update(extra)
    return list(options.items())


class _Deadline:
    """A call's total deadline: every attempt gets what is left of it (None: no deadline)."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def allows(self, pause: float) -> bool:
        """Whether a pause of `pause` seconds still leaves time for another attempt."""
        left = self.left()
        return left is None or left > pause


class _ClientBase:
    """What both clients share: settings, metadata, request building and result decoding."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        tls_ca: str | Path | bytes | None = None,
        timeout: float | None = 600.0,
        retry: RetryPolicy | None = None,
        chunk_size: int = 4096,
        max_request_bytes: int | None = None,
        max_in_flight: int = 4,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """`timeout`: each request's total deadline in seconds, retries and waiting included (None:
        none). `channel_options`: gRPC channel options that replace or add to the client's own
        (`build_channel_options`), e.g. another service config. Tunes the process's malloc for
        large requests (core.heap.reuse_large_buffers)."""
        reuse_large_buffers()
        self.address = address
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.max_request_bytes = max_request_bytes
        self.max_in_flight = max(1, max_in_flight)
        self._limit: int | None = None  # the request size limit, asked of the server once
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._credentials = _credentials(tls_ca)
        self.channel_options = build_channel_options(self.retry, channel_options)

    def _connected(self) -> bool:
        """Whether the channel is READY now."""
        raise NotImplementedError

    def _unreachable(self, exc: grpc.RpcError) -> str | None:
        """The address, when a call that waited for the channel ended at its deadline still unconnected."""
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and self.retry.waits and not self._connected():
            return self.address
        return None

    def _request_limit(self, info: pb.ServerInfo | None) -> int:
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        if info is not None and info.max_receive_message_bytes > 0:
            return int(info.max_receive_message_bytes * 0.95) - 4096
        return DEFAULT_MAX_REQUEST_BYTES

    @staticmethod
    def _columns(responses: Sequence[pb.GradeBatchResponse]) -> GradedBatch:
        parts = [graded_batch(response) for response in responses]
        if not parts:
            return GradedBatch(name="", type="", rewards=[])
        whole = parts[0]
        for part in parts[1:]:
            whole.extend(part)
        return whole

    @staticmethod
    def _rewards(responses: Sequence[pb.GradeBatchResponse]) -> tuple[list[float], list[int]]:
        rewards: list[float] = []
        errors: list[int] = []
        for response in responses:
            errors.extend(len(rewards) + i for i in response.error_indices)
            rewards.extend(response.rewards)
        return rewards, errors

    @staticmethod
    def _create_request(
        spec: GraderLike, name: str | None, grader_id: str | None, strict: bool
    ) -> pb.CreateGraderRequest:
        return pb.CreateGraderRequest(
            source=grader_source(spec, name), grader_id=grader_id or "", strict=strict
        )

    @staticmethod
    def _validate_request(
        spec: GraderLike, samples: Sequence[codec.SampleLike] | None, items: Items | None, strict: bool
    ) -> pb.ValidateGraderRequest:
        request = pb.ValidateGraderRequest(source=grader_source(spec), strict=strict)
        if samples is not None:
            request.samples_json = codec.encode_samples(samples)
            request.items_json = codec.encode_items(items if items is not None else {})
        return request

    @staticmethod
    def _validation(response: pb.ValidateGraderResponse) -> dict[str, Any]:
        data: dict[str, Any] = {
            "valid": response.valid,
            "errors": list(response.errors),
            "type": response.type,
            "name": response.name,
            "version": response.version,
            "warnings": list(response.warnings),
        }
        if response.results_json:
            data["results"] = [codec.to_plain(r) for r in codec.decode_results(response.results_json)]
        return data

    @staticmethod
    def _run_request(
        grader: GraderLike, sample: codec.SampleLike, item: Mapping[str, Any], version: str | None
    ):
        return pb.RunGraderRequest(
            grader=grader_ref(grader, version),
            sample_json=codec.encode_sample(sample),
            item_json=codec.encode_items(item),
        )


class GraderClient(_ClientBase):
    """Blocking client. Thread-safe; close() (or a `with` block) releases the channel."""

    def __init__(self, address: str, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, token, **kwargs)
        options = self.channel_options
        if self._credentials is not None:
            self._channel = grpc.secure_channel(address, self._credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = pb_grpc.GraderServiceStub(self._channel)
        self._info: pb.ServerInfo | None = None

    def __enter__(self) -> GraderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def wait_until_ready(self, timeout: float) -> bool:
        """Connect if need be and wait up to `timeout` s for the channel to be READY; whether it is."""
        ready = grpc.channel_ready_future(self._channel)
        try:
            ready.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            ready.cancel()  # stop watching the channel
            return False
        return True

    def _connected(self) -> bool:
        return self.wait_until_ready(0.01)

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        call = getattr(self._stub, method)
        deadline = _Deadline(timeout or self.timeout)
        for delay in self.retry.delays():
            try:
                return call(
                    request,
                    timeout=deadline.left(),
                    metadata=self._metadata,
                    wait_for_ready=self.retry.waits,
                )
            except grpc.RpcError as exc:
                if exc.code() in RESEND_CODES and delay is not None and deadline.allows(delay):
                    time.sleep(delay)
                    continue
                raise _error(method, exc, self._unreachable(exc)) from None
        raise AssertionError("unreachable")

    def server_info(self) -> pb.ServerInfo:
        if self._info is None:
            self._info = self._call("GetServerInfo", pb.GetServerInfoRequest())
        return self._info

    def upload_grader(
        self, spec: GraderLike, *, name: str | None = None, grader_id: str | None = None, strict: bool = False
    ) -> dict[str, Any]:
        """Upload a spec dict or Python source; returns the grader (id, version, ..., warnings)."""
        return grader_dict(self._call("CreateGrader", self._create_request(spec, name, grader_id, strict)))

    def create_grader(
        self, spec: GraderLike, *, name: str | None = None, grader_id: str | None = None, strict: bool = False
    ) -> tuple[str, str]:
        """Upload a spec dict or Python source; returns (id, version); same content, same pair."""
        grader = self.upload_grader(spec, name=name, grader_id=grader_id, strict=strict)
        return grader["id"], grader["version"]

    def validate_grader(
        self,
        spec: GraderLike,
        samples: Sequence[codec.SampleLike] | None = None,
        items: Items | None = None,
        *,
        strict: bool = False,
    ) -> dict[str, Any]:
        request = self._validate_request(spec, samples, items, strict)
        return self._validation(self._call("ValidateGrader", request))

    def get_grader(self, grader_id: str, version: str | None = None) -> dict[str, Any]:
        return grader_dict(
            self._call("GetGrader", pb.GetGraderRequest(grader_id=grader_id, version=version or ""))
        )

    def list_graders(self) -> list[dict[str, Any]]:
        return [grader_dict(g) for g in self._call("ListGraders", pb.ListGradersRequest()).graders]

    def delete_grader(self, grader_id: str) -> bool:
        return self._call("DeleteGrader", pb.DeleteGraderRequest(grader_id=grader_id)).deleted

    def run(
        self,
        grader: GraderLike,
        sample: codec.SampleLike,
        item: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> GraderResult:
        """Grade one sample (a stored grader's id, or a spec / Python source inline)."""
        response = self._call("RunGrader", self._run_request(grader, sample, item or {}, version), timeout)
        return codec.decode_result(response.result_json)

    def _batch_responses(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        version: str | None,
        timeout: float | None,
        rewards_only: bool = False,
    ) -> list[pb.GradeBatchResponse]:
        if self._limit is None:
            self._limit = self._request_limit(self.server_info() if self.max_request_bytes is None else None)
        limit = self._limit
        ref = grader_ref(grader, version)
        requests = plan_requests(ref, samples, items, self.chunk_size, limit, rewards_only)
        if len(requests) <= 1:
            return [self._call("GradeBatch", r, timeout) for r in requests]
        with ThreadPoolExecutor(min(self.max_in_flight, len(requests))) as pool:
            return list(pool.map(lambda r: self._call("GradeBatch", r, timeout), requests))

    def grade_batch(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> list[GraderResult]:
        """One result per sample, in order. `items`: one per sample, or one dict shared by all.

        `timeout` is the deadline of each request (chunk), in seconds.
        """
        return self.grade_columns(grader, samples, items, version=version, timeout=timeout).to_results()

    def grade_columns(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> GradedBatch:
        """The batch's results as columns: every reward, full results only where there is more to say."""
        return self._columns(self._batch_responses(grader, samples, items, version, timeout))

    def rewards(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> tuple[list[float], list[int]]:
        """Just the rewards and the indices of samples that had an error.

        The service sends results only for the failed samples (rewards_only), so neither side
        encodes or decodes a result per sample; use grade_batch for error details and metadata.
        """
        return self._rewards(self._batch_responses(grader, samples, items, version, timeout, True))

    def grade_stream(
        self,
        grader: GraderLike,
        batches: Iterable[tuple[Sequence[codec.SampleLike], Items]],
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[list[GraderResult]]:
        """Grade (samples, items) batches over one stream; yields each batch's results in order."""
        requests = _stream_requests(grader_ref(grader, version), batches)
        try:
            stream = self._stub.GradeStream(
                requests, timeout=timeout, metadata=self._metadata, wait_for_ready=self.retry.waits
            )
            for response in stream:
                yield _stream_results(response)
        except grpc.RpcError as exc:
            raise _error("GradeStream", exc) from None


class AsyncGraderClient(_ClientBase):
    """asyncio client with the same methods as GraderClient, as coroutines."""

    def __init__(self, address: str, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(address, token, **kwargs)
        options = self.channel_options
        if self._credentials is not None:
            self._channel = grpc.aio.secure_channel(address, self._credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._stub = pb_grpc.GraderServiceStub(self._channel)
        self._info: pb.ServerInfo | None = None

    async def __aenter__(self) -> AsyncGraderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    def _connected(self) -> bool:
        return self._channel.get_state() == grpc.ChannelConnectivity.READY

    async def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        call = getattr(self._stub, method)
        deadline = _Deadline(timeout or self.timeout)
        for delay in self.retry.delays():
            try:
                return await call(
                    request,
                    timeout=deadline.left(),
                    metadata=self._metadata,
                    wait_for_ready=self.retry.waits,
                )
            except grpc.RpcError as exc:
                if exc.code() in RESEND_CODES and delay is not None and deadline.allows(delay):
                    await asyncio.sleep(delay)
                    continue
                raise _error(method, exc, self._unreachable(exc)) from None
        raise AssertionError("unreachable")

    async def server_info(self) -> pb.ServerInfo:
        if self._info is None:
            self._info = await self._call("GetServerInfo", pb.GetServerInfoRequest())
        return self._info

    async def upload_grader(
        self, spec: GraderLike, *, name: str | None = None, grader_id: str | None = None, strict: bool = False
    ) -> dict[str, Any]:
        request = self._create_request(spec, name, grader_id, strict)
        return grader_dict(await self._call("CreateGrader", request))

    async def create_grader(
        self, spec: GraderLike, *, name: str | None = None, grader_id: str | None = None, strict: bool = False
    ) -> tuple[str, str]:
        grader = await self.upload_grader(spec, name=name, grader_id=grader_id, strict=strict)
        return grader["id"], grader["version"]

    async def validate_grader(
        self,
        spec: GraderLike,
        samples: Sequence[codec.SampleLike] | None = None,
        items: Items | None = None,
        *,
        strict: bool = False,
    ) -> dict[str, Any]:
        request = self._validate_request(spec, samples, items, strict)
        return self._validation(await self._call("ValidateGrader", request))

    async def get_grader(self, grader_id: str, version: str | None = None) -> dict[str, Any]:
        request = pb.GetGraderRequest(grader_id=grader_id, version=version or "")
        return grader_dict(await self._call("GetGrader", request))

    async def list_graders(self) -> list[dict[str, Any]]:
        return [grader_dict(g) for g in (await self._call("ListGraders", pb.ListGradersRequest())).graders]

    async def delete_grader(self, grader_id: str) -> bool:
        return (await self._call("DeleteGrader", pb.DeleteGraderRequest(grader_id=grader_id))).deleted

    async def run(
        self,
        grader: GraderLike,
        sample: codec.SampleLike,
        item: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> GraderResult:
        response = await self._call(
            "RunGrader", self._run_request(grader, sample, item or {}, version), timeout
        )
        return codec.decode_result(response.result_json)

    async def _batch_responses(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        version: str | None,
        timeout: float | None,
        rewards_only: bool = False,
    ) -> list[pb.GradeBatchResponse]:
        if self._limit is None:
            info = await self.server_info() if self.max_request_bytes is None else None
            self._limit = self._request_limit(info)
        ref, limit = grader_ref(grader, version), self._limit
        requests = plan_requests(ref, samples, items, self.chunk_size, limit, rewards_only)
        gate = asyncio.Semaphore(self.max_in_flight)

        async def send(request: pb.GradeBatchRequest) -> pb.GradeBatchResponse:
            async with gate:
                return await self._call("GradeBatch", request, timeout)

        return list(await asyncio.gather(*(send(r) for r in requests)))

    async def grade_batch(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> list[GraderResult]:
        graded = await self.grade_columns(grader, samples, items, version=version, timeout=timeout)
        return graded.to_results()

    async def grade_columns(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> GradedBatch:
        return self._columns(await self._batch_responses(grader, samples, items, version, timeout))

    async def rewards(
        self,
        grader: GraderLike,
        samples: Sequence[codec.SampleLike],
        items: Items,
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> tuple[list[float], list[int]]:
        return self._rewards(await self._batch_responses(grader, samples, items, version, timeout, True))

    async def grade_stream(
        self,
        grader: GraderLike,
        batches: Iterable[tuple[Sequence[codec.SampleLike], Items]],
        *,
        version: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[list[GraderResult]]:
        """Grade (samples, items) batches over one stream; yields each batch's results in order."""
        requests = _stream_requests(grader_ref(grader, version), batches)
        try:
            stream = self._stub.GradeStream(
                requests, timeout=timeout, metadata=self._metadata, wait_for_ready=self.retry.waits
            )
            async for response in stream:
                yield _stream_results(response)
        except grpc.RpcError as exc:
            raise _error("GradeStream", exc) from None
