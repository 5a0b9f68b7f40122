"""Admission at the RPC layer: who may open a call, and what a grading thread may ask about it.

The service's RPC layer is grpc.aio (one event loop thread; grading runs in a thread pool):

- `CallGate`, a server interceptor, authenticates a GraderService call from its metadata, which
  arrives before the request body, and refuses a bad or missing token at once (UNAUTHENTICATED)
  with a handler that reads nothing, so an unauthenticated call holds nothing. Health and
  reflection pass untouched (no token needed; they are answered by the event loop itself).
- It then counts the tenant's calls in flight (`CallLimit`) from the call's start; a tenant at
  its limit is refused RESOURCE_EXHAUSTED, so one tenant's open calls cannot use up what the
  others need. A unary call is served as stream-unary so that it is counted before its request
  arrives and waits for that request at most `idle_s` (DEADLINE_EXCEEDED); GradeStream times
  out its own idle waits (server.py).
- An open call that waits for a message costs a coroutine, not a thread (the sync server held a
  pool thread per call, and its `maximum_concurrent_rpcs` counted idle and unauthenticated calls
  alike: 74 of them locked every tenant and the health checks out).
- `CallState` answers, from a grading thread, what the sync ServicerContext did (time left,
  whether the caller is still there, a callback when it hangs up) without touching the aio call
  off its loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

from .admission import CallLimit
from .auth import Authenticator, Unauthenticated

_TENANT: ContextVar[str | None] = ContextVar("rft_tenant", default=None)


def call_tenant() -> str | None:
    """The tenant `CallGate` authenticated for the call being handled (None outside one)."""
    return _TENANT.get()


class CallState:
    """The parts of a call grading needs, safe to read from any thread."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        remaining = context.time_remaining()
        self._deadline = None if remaining is None else time.monotonic() + remaining
        self._done = False
        self._callbacks: list[Callable[[], None]] = []
        context.add_done_callback(self._finished)

    def _finished(self, _context: object) -> None:
        self._done = True
        for callback in self._callbacks:
            callback()

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def is_active(self) -> bool:
        return not self._done and (self._deadline is None or time.monotonic() < self._deadline)

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Call `callback` once the call has ended (at once if it already has)."""
        self._callbacks.append(callback)
        if self._done:
            callback()
        return True


def _refusal(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler that ends the call with `code` without waiting for (or reading) its request.

    Stream-stream whatever the method: a unary handler would first wait for the request body.
    """

    async def refuse(_requests: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    return grpc.stream_stream_rpc_method_handler(refuse)


class CallGate(grpc.aio.ServerInterceptor):
    """Authenticate GraderService calls before they hold anything, and cap each tenant's calls."""

    def __init__(
        self,
        service: str,
        auth: Authenticator,
        limit: CallLimit,
        idle_s: float,
        on_refused: Callable[[str, grpc.StatusCode], None] = lambda method, code: None,
    ) -> None:
        self._prefix = f"/{service}/"
        self.auth, self.limit, self.idle_s, self._on_refused = auth, limit, idle_s, on_refused

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(self._prefix):
            return handler
        method = details.method[len(self._prefix) :]
        try:
            tenant = self.auth.tenant(details.invocation_metadata)
        except Unauthenticated as exc:
            self._on_refused(method, grpc.StatusCode.UNAUTHENTICATED)
            return _refusal(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if handler.request_streaming and handler.response_streaming:
            return handler._replace(stream_stream=self._counted_stream(handler.stream_stream, tenant, method))
        if not handler.request_streaming and not handler.response_streaming:
            # Served as stream-unary: counted from the call's start, its request read with a timeout.
            return grpc.stream_unary_rpc_method_handler(
                self._counted_unary(handler.unary_unary, tenant, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{details.method}: CallGate handles unary and bidirectional methods only")

    def _too_many(self, tenant: str, method: str) -> str:
        self._on_refused(method, grpc.StatusCode.RESOURCE_EXHAUSTED)
        return (
            f"tenant {tenant} has {self.limit.limit} calls open, the most one tenant may "
            "(--tenant-calls); finish or close some, or retry with backoff"
        )

    def _counted_unary(
        self, behavior: Callable[..., Awaitable[Any]], tenant: str, method: str
    ) -> Callable[..., Awaitable[Any]]:
        async def counted(_requests: Any, context: grpc.aio.ServicerContext) -> Any:
            if not self.limit.enter(tenant):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._too_many(tenant, method))
            token = _TENANT.set(tenant)
            try:
                try:
                    async with asyncio.timeout(self.idle_s):  # no task of its own, unlike wait_for
                        request = await context.read()
                except TimeoutError:
                    self._on_refused(method, grpc.StatusCode.DEADLINE_EXCEEDED)
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"the request did not arrive within {self.idle_s:g} s of the call's start "
                        "(the server's --stream-idle-timeout)",
                    )
                if request is grpc.aio.EOF:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request")
                return await behavior(request, context)
            finally:
                _TENANT.reset(token)
                self.limit.leave(tenant)

        return counted

    def _counted_stream(
        self, behavior: Callable[..., AsyncIterator[Any]], tenant: str, method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def counted(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if not self.limit.enter(tenant):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._too_many(tenant, method))
            _TENANT.set(tenant)  # the handler's task is this call's own: nothing to reset
            try:
                async for response in behavior(requests, context):
                    yield response
            finally:
                self.limit.leave(tenant)

        return counted
