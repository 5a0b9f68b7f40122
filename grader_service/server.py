"""The gRPC grader service: `GraderServer(config).start()` serves rft.grader.v1 on a port.

The RPC layer is grpc.aio on one event loop thread; each RPC's work (store calls, grading) runs
in a thread pool. Why aio: the sync server holds a pool thread for every open call, also while it
waits for a stream's next message or an unauthenticated client's request, and it cannot time out
an idle stream; its `maximum_concurrent_rpcs` counted such calls too, so a few dozen idle calls
refused every tenant and the health checks. Here an open call costs a coroutine; `CallGate`
(calls.py) refuses a bad token before the request is read and caps each tenant's open calls; a
GradeStream with no request for --stream-idle-timeout is ended; grading slots are shared fairly
between tenants by `Admission` (admission.py). Health and reflection are served by the loop
itself, so they answer whatever the grading threads do. SIGTERM handling lives in cli/serve.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..core.records import GradedBatch, Sample, clean_text, cut_text
from ..plugins.registry import GraderSpecError, grader_types, parse_spec
from ..sandbox.api import SandboxUnavailable
from ..sandbox.backends import get_backend
from . import bounds, codec, keepalive
from .admission import Admission, CallLimit, Expired, QueueFull, ShuttingDown, Stopped
from .auth import Authenticator, Unauthenticated, load_tokens
from .calls import CallGate, CallState, call_tenant
from .metrics import ServiceMetrics
from .pb import grader_pb2 as pb
from .pb import grader_pb2_grpc as pb_grpc
from .runtime import LoadedGraders, grade_in_chunks, pool_sizes
from .settings import ServiceSettings
from .store import GraderNotFound, GraderRecord, GraderStore, QuotaExceeded, StoreQuotas, content_version

log = logging.getLogger("rftkit.grader_service")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GraderService"].full_name


class InvalidRequest(ValueError):
    """A request that is wrong as a whole."""


def spec_from_source(source: pb.GraderSource, *, strict: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The spec dict of an uploaded grader and the upload policy's warnings.

    Raises GraderSpecError when the spec is not valid for its type, or (strict) when the policy
    has findings it would otherwise only warn about.
    """
    kind = source.WhichOneof("kind")
    if kind == "spec_json":
        try:
            spec = codec.decode_json_text(source.spec_json, "spec_json is not valid JSON")
        except codec.BatchFormatError as exc:
            raise GraderSpecError(str(exc)) from exc
    elif kind == "python_source":
        spec = {"type": "python", "name": source.name or "grader", "source": source.python_source}
    else:
        raise GraderSpecError("the grader source is empty: set spec_json or python_source")
    parsed = parse_spec(spec)
    errors, warnings = grader_types()[parsed.type].review(parsed, strict=strict)
    if errors:
        raise GraderSpecError("; ".join(errors))
    return spec, list(warnings)


def _grader_message(record: GraderRecord, version: str | None = None, spec_json: str = "") -> pb.Grader:
    return pb.Grader(
        id=record.id,
        version=version or record.current,
        name=record.name,
        type=record.type,
        spec_json=spec_json,
        created_unix_ms=record.created_unix_ms,
        versions=[
            pb.GraderVersion(version=v.version, created_unix_ms=v.created_unix_ms) for v in record.versions
        ],
    )


_STATUS_OF: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (GraderNotFound, grpc.StatusCode.NOT_FOUND),
    (GraderSpecError, grpc.StatusCode.INVALID_ARGUMENT),
    (codec.BatchFormatError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (QueueFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (QuotaExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Expired, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (SandboxUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
]
_STOPPED_STATUS = {
    "deadline": grpc.StatusCode.DEADLINE_EXCEEDED,
    "cancelled": grpc.StatusCode.CANCELLED,
    "shutdown": grpc.StatusCode.UNAVAILABLE,
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status a failed request gets, and its message."""
    if isinstance(exc, Stopped):
        message = f"grading stopped: {exc}"
        if exc.reason == "shutdown":
            message += "; the server is shutting down, retry (on another replica)"
        return _STOPPED_STATUS[exc.reason], message
    for kind, code in _STATUS_OF:
        if isinstance(exc, kind):
            return code, clean_text(cut_text(str(exc)))
    return grpc.StatusCode.INTERNAL, clean_text(cut_text(f"internal error: {type(exc).__name__}: {exc}"))


class GraderServicer(pb_grpc.GraderServiceServicer):
    """rft.grader.v1.GraderService over a store, the loaded graders and the grading queue."""

    def __init__(self, config: ServiceSettings, store: GraderStore, metrics: ServiceMetrics) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        tokens = load_tokens(config.tokens_file) if config.tokens_file else None
        self.auth = Authenticator(tokens, allow_anonymous=config.insecure_local)
        self.graders = LoadedGraders(
            config.sandbox, config.loaded_graders, metrics.graders_loaded.set, config.max_warm_workers
        )
        self.admission = Admission(
            config.concurrency, config.max_queue, self._queue_changed, spare=config.spare_slots
        )
        self.calls = CallLimit(config.tenant_calls)
        # Every RPC's work runs here: the slots (spare included), the queue (a waiter holds a thread)
        # and room for short calls (store look-ups) and for tenants queueing their first request.
        threads = config.concurrency + self.admission.spare + config.max_queue + 32
        self.executor = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rft-grade")
        metrics.watch_pools(lambda: pool_sizes(self.graders.graders()))
        self._drain_deadline: float | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _queue_changed(self, waiting: int, running: int) -> None:
        self.metrics.queue_depth.set(waiting)
        self.metrics.in_flight.set(running)

    def begin_drain(self, grace_s: float) -> None:
        """Refuse new grading work; in-flight batches may run for `grace_s` more, then fail UNAVAILABLE."""
        self._drain_deadline = time.monotonic() + grace_s
        self.admission.close()

    def _stop_reason(self, context: CallState) -> Callable[[], str | None]:
        def reason() -> str | None:
            if not context.is_active():
                remaining = context.time_remaining()
                return "deadline" if remaining is not None and remaining <= 0 else "cancelled"
            if self._drain_deadline is not None and time.monotonic() >= self._drain_deadline:
                return "shutdown"
            return None

        return reason

    async def _tenant(self, method: str, context: grpc.aio.ServicerContext) -> str:
        """The call's tenant: as `CallGate` found it, else from the call's metadata (or abort)."""
        try:
            return call_tenant() or self.auth.tenant(context.invocation_metadata())
        except Unauthenticated as exc:
            self.metrics.requests.labels(method, "UNAUTHENTICATED").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise  # abort raises; this only tells the type checker

    def _measured(
        self, method: str, body: Callable[[str, CallState], Any], tenant: str, call: CallState
    ) -> tuple[Any, grpc.StatusCode, str]:
        """`body(tenant, call)` (in a pool thread) and its status; counts metrics when the work ends,
        also for a call whose caller has gone (its coroutine is cancelled, the thread goes on)."""
        start = time.perf_counter()
        code, message, response = grpc.StatusCode.OK, "", None
        try:
            response = body(tenant, call)
        except Exception as exc:
            code, message = status_for(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("%s failed", method)
            if isinstance(exc, Stopped):
                self.metrics.abandoned.labels(exc.reason).inc()
        finally:
            self.metrics.requests.labels(method, code.name).inc()
            self.metrics.latency.labels(method).observe(time.perf_counter() - start)
        return response, code, message

    async def _in_pool(
        self, method: str, context: grpc.aio.ServicerContext, body: Callable[[str, CallState], Any]
    ) -> tuple[Any, grpc.StatusCode, str]:
        tenant = await self._tenant(method, context)
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self._measured, method, body, tenant, CallState(context)
        )

    async def _call(
        self, method: str, context: grpc.aio.ServicerContext, body: Callable[[str, CallState], Any]
    ) -> Any:
        """Run `body(tenant, call)` in the pool, and turn known errors into statuses; counts metrics."""
        response, code, message = await self._in_pool(method, context, body)
        if code != grpc.StatusCode.OK:
            await context.abort(code, message)
        return response

    def _resolve(self, tenant: str, ref: pb.GraderRef) -> tuple[str, str, dict[str, Any]]:
        which = ref.WhichOneof("ref")
        if which == "grader_id":
            version = self.store.resolve(tenant, ref.grader_id, ref.version or None)
            return ref.grader_id, version, self.store.spec(tenant, version)
        if which == "inline":
            spec, _ = spec_from_source(ref.inline, strict=self.config.strict_uploads)
            return "inline", content_version(spec), spec
        raise InvalidRequest("say which grader: set grader.grader_id, or grader.inline with a spec or source")

    def _grade(
        self,
        tenant: str,
        ref: tuple[str, str, dict[str, Any]],
        load: Callable[[], tuple[list[Sample], list[dict[str, Any]]]],
        context: CallState,
        method: str,
    ) -> GradedBatch:
        """Wait for a grading slot, decode the batch (`load`), grade it in chunks; counts metrics.

        Decoding waits for the slot, so queued requests hold only their raw bytes.
        """
        grader_id, version, spec = ref
        context.add_callback(self.admission.wake)  # a caller that hangs up leaves the queue
        stop_reason = self._stop_reason(context)
        with self.admission.slot(context.time_remaining(), stop_reason, tenant):
            samples, items = load()
            self.metrics.batch_samples.labels(method).observe(len(samples))
            pairs = list(zip(samples, items, strict=True))
            with self.graders.use(tenant, grader_id, version, spec) as grader:
                type_name = grader.type_name

                def count(graded: GradedBatch, elapsed: float) -> None:
                    errors: dict[str, int] = {}
                    failed = 0
                    for result in graded.results.values():
                        flags = result.metadata.errors.raised()
                        failed += bool(flags)
                        for flag in flags:
                            errors[flag] = errors.get(flag, 0) + 1
                    self.metrics.count_grades(type_name, errors, len(graded) - failed)
                    self.metrics.sample_seconds.labels(type_name).observe(elapsed / max(1, len(graded)))

                return grade_in_chunks(grader, pairs, stop_reason, count)

    def _grade_json(
        self, tenant, ref, samples_json: bytes, items_json: bytes, context, method: str, item_index=()
    ) -> GradedBatch:
        def load() -> tuple[list[Sample], list[dict[str, Any]]]:
            samples = codec.decode_samples(samples_json)
            return samples, codec.decode_items(items_json, len(samples), item_index)

        bounds.check_counts(self.config.max_samples_per_request, samples_json, items_json)
        return bounds.bound_results(
            self._grade(tenant, ref, load, context, method), self.config.max_response_bytes
        )

    @staticmethod
    def _batch_response(graded: GradedBatch, ref: tuple[str, str, Any], request: pb.GradeBatchRequest):
        """Every reward in one packed column, and the results the request asked for: all of them
        (the old shape), the failed samples' (rewards_only), or those with more than a reward (compact)."""
        errors = graded.error_indices()
        grader_id, version, _ = ref
        response = pb.GradeBatchResponse(
            rewards=graded.rewards,
            error_indices=errors,
            request_id=request.request_id,
            grader_id=grader_id,
            version=version,
        )
        if request.rewards_only:
            response.results_json = codec.encode_results([graded.results[i] for i in errors])
        elif request.compact:
            indices = sorted(graded.results)
            response.results_json = codec.encode_results([graded.results[i] for i in indices])
            response.result_indices.extend(indices)
            response.grader_name, response.grader_type = clean_text(graded.name), graded.type
            response.sample_seconds = graded.execution_time
            if graded.pass_threshold is not None:
                response.pass_threshold = graded.pass_threshold
        else:
            response.results_json = codec.encode_results(graded.to_results())
        return response

    # -- RPCs -------------------------------------------------------------------------------

    async def CreateGrader(
        self, request: pb.CreateGraderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Grader:
        def body(tenant: str, call: CallState) -> pb.Grader:
            strict = request.strict or self.config.strict_uploads
            spec, warnings = spec_from_source(request.source, strict=strict)
            record, version, is_new = self.store.create(tenant, spec, request.grader_id or None)
            log.info(
                "tenant %s: grader %s version %s (%s)",
                tenant,
                record.id,
                version,
                "new" if is_new else "known",
            )
            message = _grader_message(record, version)
            message.warnings.extend(warnings)
            return message

        return await self._call("CreateGrader", context, body)

    async def ValidateGrader(self, request: pb.ValidateGraderRequest, context: grpc.aio.ServicerContext):
        def body(tenant: str, call: CallState) -> pb.ValidateGraderResponse:
            try:
                strict = request.strict or self.config.strict_uploads
                spec, warnings = spec_from_source(request.source, strict=strict)
            except GraderSpecError as exc:
                return pb.ValidateGraderResponse(valid=False, errors=[str(exc)])
            version = content_version(spec)
            response = pb.ValidateGraderResponse(
                valid=True,
                type=spec["type"],
                name=str(spec.get("name", "grader")),
                version=version,
                warnings=warnings,
            )
            if request.samples_json:
                ref = ("validate", version, spec)
                graded = self._grade_json(
                    tenant, ref, request.samples_json, request.items_json, call, "ValidateGrader"
                )
                response.results_json = codec.encode_results(graded.to_results())
            return response

        return await self._call("ValidateGrader", context, body)

    async def GetGrader(self, request: pb.GetGraderRequest, context: grpc.aio.ServicerContext) -> pb.Grader:
        def body(tenant: str, call: CallState) -> pb.Grader:
            record, version = self.store.get(tenant, request.grader_id, request.version or None)
            spec = self.store.spec(tenant, version)
            return _grader_message(record, version, json.dumps(spec, sort_keys=True))

        return await self._call("GetGrader", context, body)

    async def ListGraders(self, request: pb.ListGradersRequest, context: grpc.aio.ServicerContext):
        def body(tenant: str, call: CallState) -> pb.ListGradersResponse:
            return pb.ListGradersResponse(graders=[_grader_message(r) for r in self.store.list(tenant)])

        return await self._call("ListGraders", context, body)

    async def DeleteGrader(self, request: pb.DeleteGraderRequest, context: grpc.aio.ServicerContext):
        def body(tenant: str, call: CallState) -> pb.DeleteGraderResponse:
            versions = self.store.delete(tenant, request.grader_id)
            self.graders.drop(tenant, versions)
            log.info("tenant %s: deleted grader %s", tenant, request.grader_id)
            return pb.DeleteGraderResponse(deleted=True)

        return await self._call("DeleteGrader", context, body)

    async def RunGrader(
        self, request: pb.RunGraderRequest, context: grpc.aio.ServicerContext
    ) -> pb.RunGraderResponse:
        def body(tenant: str, call: CallState) -> pb.RunGraderResponse:
            ref = self._resolve(tenant, request.grader)

            def load() -> tuple[list[Sample], list[dict[str, Any]]]:
                return [codec.decode_sample(request.sample_json or b'""')], [
                    codec.decode_item(request.item_json)
                ]

            result = self._grade(tenant, ref, load, call, "RunGrader").result(0)
            return pb.RunGraderResponse(
                result_json=codec.encode_result(result),
                reward=result.reward,
                grader_id=ref[0],
                version=ref[1],
            )

        return await self._call("RunGrader", context, body)

    async def GradeBatch(
        self, request: pb.GradeBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb.GradeBatchResponse:
        def body(tenant: str, call: CallState) -> pb.GradeBatchResponse:
            ref = self._resolve(tenant, request.grader)
            graded = self._grade_json(
                tenant, ref, request.samples_json, request.items_json, call, "GradeBatch",
                request.item_index,
            )  # fmt: skip
            return self._batch_response(graded, ref, request)

        return await self._call("GradeBatch", context, body)

    async def GradeStream(
        self, request_iterator: AsyncIterator[pb.GradeBatchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GradeBatchResponse]:
        """Each request graded in turn; a stream with no request for --stream-idle-timeout is ended."""
        tenant = await self._tenant("GradeStream", context)
        call = CallState(context)
        loop = asyncio.get_running_loop()
        idle = self.config.stream_idle_s
        while True:
            try:
                request = await asyncio.wait_for(context.read(), idle)
            except TimeoutError:
                self.metrics.requests.labels("GradeStream", "DEADLINE_EXCEEDED").inc()
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no request on this stream for {idle:g} s (the server's --stream-idle-timeout): "
                    "stream closed; open a new one to send more",
                )
            if request is grpc.aio.EOF:
                return
            body = functools.partial(self._stream_one, request)
            response, code, message = await loop.run_in_executor(
                self.executor, self._measured, "GradeStream", body, tenant, call
            )
            if code != grpc.StatusCode.OK:
                response = pb.GradeBatchResponse(
                    request_id=request.request_id, error_code=code.value[0], error_message=message
                )
            yield response
            if (
                code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
                and not call.is_active()
            ):
                return

    def _stream_one(
        self, request: pb.GradeBatchRequest, tenant: str, call: CallState
    ) -> pb.GradeBatchResponse:
        ref = self._resolve(tenant, request.grader)
        graded = self._grade_json(
            tenant, ref, request.samples_json, request.items_json, call, "GradeStream", request.item_index
        )
        return self._batch_response(graded, ref, request)

    async def GetServerInfo(
        self, request: pb.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerInfo:
        def body(tenant: str, call: CallState) -> pb.ServerInfo:
            from importlib.metadata import version

            return pb.ServerInfo(
                server_version=version("rftkit"),
                max_receive_message_bytes=self.config.max_message_bytes,
                max_send_message_bytes=-1,
                sandbox=self.config.sandbox,
                grader_types=sorted(grader_types()),
                tenant=tenant,
            )

        return await self._call("GetServerInfo", context, body)


class GraderServer:
    """The service on a port, with health, reflection and (optionally) a metrics endpoint."""

    def __init__(self, config: ServiceSettings) -> None:
        self.config = config
        self.metrics = ServiceMetrics()
        self.store = GraderStore(config.data_dir, shared=config.shared_store, quotas=StoreQuotas.of(config))
        try:
            self.servicer = GraderServicer(config, self.store, self.metrics)
        except BaseException:
            self.store.close()
            raise
        with contextlib.suppress(SandboxUnavailable):
            get_backend(config.sandbox)  # opening a backend sweeps what killed services left behind
        self.health = health.aio.HealthServicer()
        # The RPC layer's event loop, on its own thread; `_on_loop` runs a coroutine there.
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="rft-grpc", daemon=True)
        self._loop_thread.start()
        self._server = self._on_loop(self._build())
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._started = False
        self._stopped = threading.Event()

    def _on_loop(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _build(self) -> grpc.aio.Server:
        metrics = self.metrics

        def refused(method: str, code: grpc.StatusCode) -> None:
            metrics.requests.labels(method, code.name).inc()

        gate = CallGate(
            SERVICE_NAME, self.servicer.auth, self.servicer.calls, self.config.stream_idle_s, refused
        )
        server = grpc.aio.server(
            interceptors=[gate],
            options=[
                ("grpc.max_receive_message_length", self.config.max_message_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
                *keepalive.SERVER_OPTIONS,  # clients ping every few seconds (keepalive.py)
            ],
        )
        pb_grpc.add_GraderServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        return server

    @property
    def address(self) -> str:
        host = self.config.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def start(self) -> int:
        """Bind and start serving; returns the bound port (config.port 0 picks a free one)."""
        target = (
            f"[{self.config.host}]:{self.config.port}"
            if ":" in self.config.host
            else (f"{self.config.host}:{self.config.port}")
        )
        if self.config.tls_cert:
            credentials = grpc.ssl_server_credentials(
                [(self.config.tls_key.read_bytes(), self.config.tls_cert.read_bytes())]
            )
            self.port = self._server.add_secure_port(target, credentials)
        else:
            self.port = self._server.add_insecure_port(target)
        if not self.port:
            raise OSError(f"cannot listen on {target}")
        self._on_loop(self._start())
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.config.metrics_port, self.config.host)
        return self.port

    async def _start(self) -> None:
        await self._server.start()
        self._started = True
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def _stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        self.servicer.begin_drain(grace)
        if self._started:
            # gRPC cancels what is left after its grace; ours ends first so each batch gets a real status.
            await self._server.stop(grace + 2.0)

    def stop(self, grace_s: float | None = None) -> None:
        """Stop taking RPCs, let in-flight grading run up to the grace period, then fail it UNAVAILABLE."""
        if self._stopped.is_set():
            return
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        self._on_loop(self._stop(grace))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(10)
        self.servicer.executor.shutdown(wait=False, cancel_futures=True)
        self.servicer.graders.close_all()
        self.metrics.close()
        self.store.close()
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)
