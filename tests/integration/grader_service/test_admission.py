"""Fair, bounded admission on a real `rft serve`: idle and unauthenticated calls hold nothing others
need, each tenant's open calls are capped, idle streams end, a tenant's hanging grader costs only it."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rftkit.grader_service.client import GraderClient, GraderServiceError, RetryPolicy
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.pb import grader_pb2_grpc as pb_grpc
from rftkit.grader_service.server import SERVICE_NAME
from rftkit.grader_service.testing import GRADER_SOURCE, TOKEN_A, TOKEN_B, metric, metrics_text, serve

NO_RETRY = RetryPolicy(attempts=1)
TENANT_CALLS = 50


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def service(tmp_path_factory, sandbox):
    with serve(
        tmp_path_factory.mktemp("admission"), "--concurrency", "2", "--tenant-calls", str(TENANT_CALLS),
        "--shutdown-grace", "1", sandbox=sandbox,
    ) as running:  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def graders(service) -> dict[str, str]:
    """Each tenant's copy of the test grader, warm (its pool started)."""
    ids = {}
    for token in (TOKEN_A, TOKEN_B):
        with GraderClient(service.address, token) as client:
            ids[token], _ = client.create_grader(GRADER_SOURCE)
            assert client.run(ids[token], "1", {"answer": "1"}).reward == 1.0
    return ids


def _health_and_b(service, b_grader: str) -> tuple[float, float]:
    """Seconds a health check and a one-sample GradeBatch of tenant B take (each must succeed)."""
    channel = grpc.insecure_channel(service.address)
    start = time.monotonic()
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    health_s = time.monotonic() - start
    channel.close()
    assert status == health_pb2.HealthCheckResponse.SERVING
    with GraderClient(service.address, TOKEN_B, retry=NO_RETRY) as client:
        start = time.monotonic()
        assert [r.reward for r in client.grade_batch(b_grader, ["1"], {"answer": "1"}, timeout=10)] == [1.0]
        return health_s, time.monotonic() - start


def test_hundreds_of_idle_calls_lock_nobody_out(service, graders) -> None:
    """300 idle unauthenticated GradeStreams and 300 idle ones of tenant A: health and B answer."""

    async def scenario() -> tuple[list[grpc.StatusCode | None], list[grpc.StatusCode | None], dict]:
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = pb_grpc.GraderServiceStub(channel)
            anonymous = [stub.GradeStream() for _ in range(300)]
            tenant_a = [stub.GradeStream(metadata=_auth(TOKEN_A)) for _ in range(300)]
            anonymous_codes = [await call.code() for call in anonymous]
            deadline = time.monotonic() + 30
            while sum(call.done() for call in tenant_a) < 300 - TENANT_CALLS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # A's refusals arrive; the calls A may keep stay open
            await asyncio.sleep(0.3)
            open_a = [call for call in tenant_a if not call.done()]
            refused_a = [await call.code() for call in tenant_a if call.done()]
            # While A's calls are open: health and tenant B answer quickly, A's next call is refused.
            health_s, b_s = await asyncio.to_thread(_health_and_b, service, graders[TOKEN_B])
            with GraderClient(service.address, TOKEN_A, retry=NO_RETRY) as client_a:
                try:
                    await asyncio.to_thread(client_a.grade_batch, graders[TOKEN_A], ["1"], {"answer": "1"})
                    a_code = grpc.StatusCode.OK
                except GraderServiceError as exc:
                    a_code = exc.code
            for call in open_a:
                call.cancel()
            report = {"open_a": len(open_a), "health_s": health_s, "b_s": b_s, "a_code": a_code}
            return anonymous_codes, refused_a, report

    anonymous_codes, refused_a, report = asyncio.run(scenario())
    assert set(anonymous_codes) == {grpc.StatusCode.UNAUTHENTICATED}
    assert report["open_a"] == TENANT_CALLS
    assert refused_a == [grpc.StatusCode.RESOURCE_EXHAUSTED] * (300 - TENANT_CALLS)
    assert report["a_code"] == grpc.StatusCode.RESOURCE_EXHAUSTED
    print(f"idle calls open: health {report['health_s']:.3f} s, tenant B {report['b_s']:.3f} s")
    assert report["health_s"] < 1.0 and report["b_s"] < 2.0, report
    # A's calls closed, A is served again; the refusals were counted.
    deadline = time.monotonic() + 10
    with GraderClient(service.address, TOKEN_A, retry=NO_RETRY) as client:
        while True:
            try:
                assert client.run(graders[TOKEN_A], "1", {"answer": "1"}).reward == 1.0
                break
            except GraderServiceError as exc:  # the cancellations may still be on their way
                assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.1)
    text = metrics_text(service)
    assert metric(text, "rft_requests_total", method="GradeStream", code="UNAUTHENTICATED") >= 300
    assert metric(text, "rft_requests_total", method="GradeStream", code="RESOURCE_EXHAUSTED") >= 250


def _b_latencies(service, b_grader: str, n: int = 20) -> list[float]:
    """Seconds each of `n` one-sample GradeBatch calls of tenant B took, sorted."""
    latencies = []
    with GraderClient(service.address, TOKEN_B, retry=NO_RETRY) as client:
        client.grade_batch(b_grader, ["1"], {"answer": "1"}, timeout=10)  # the channel connects
        for i in range(n):
            start = time.monotonic()
            results = client.grade_batch(b_grader, [str(i)], {"answer": str(i)}, timeout=10)
            latencies.append(time.monotonic() - start)
            assert [r.reward for r in results] == [1.0]
    return sorted(latencies)


def _p99(latencies: list[float]) -> float:
    return latencies[int(0.99 * (len(latencies) - 1))]


def test_a_hanging_grader_of_one_tenant_does_not_delay_another(service, graders) -> None:
    """Tenant A's two hanging batches hold both grading slots; tenant B's requests still run at once.

    The bound is 0.5 s (the issue's), or 3x B's own p99 just before when a busy machine is slower
    than that: without fair slots B waits for A's batches (its 10 s deadline here).
    """
    baseline = _p99(_b_latencies(service, graders[TOKEN_B]))
    hung: list[BaseException | None] = []

    def hang() -> None:
        with GraderClient(service.address, TOKEN_A, retry=NO_RETRY) as client:
            try:
                client.grade_batch(graders[TOKEN_A], ["sleep:30"], {"answer": "1"}, timeout=20)
                hung.append(None)
            except GraderServiceError as exc:
                hung.append(exc)

    threads = [threading.Thread(target=hang, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while metric(metrics_text(service), "rft_in_flight") < 2:  # both of A's batches hold a slot
        assert time.monotonic() < deadline, "tenant A's batches never started"
        time.sleep(0.05)
    latencies = _b_latencies(service, graders[TOKEN_B])
    assert all(thread.is_alive() for thread in threads), "tenant A's batches did not hang"
    p99 = _p99(latencies)
    print(f"tenant B beside A's hanging batches: p50 {latencies[10]:.3f} s, p99 {p99:.3f} s")
    print(f"tenant B alone: p99 {baseline:.3f} s")
    assert p99 < max(0.5, 3 * baseline), f"tenant B waited behind tenant A: {latencies}, alone p99 {baseline}"
    assert metric(metrics_text(service), "rft_in_flight") == 2  # B's requests were done; A's still run


def test_idle_calls_are_ended_and_free_their_place(tmp_path, sandbox) -> None:
    """A stream idle after a request, and a unary call whose request never comes (headers only),
    each hold one of the tenant's call places (here 1) until --stream-idle-timeout ends them."""
    with (
        serve(tmp_path, "--stream-idle-timeout", "1.5", "--tenant-calls", "1", sandbox=sandbox) as service,
        GraderClient(service.address, TOKEN_A, retry=NO_RETRY) as client,
    ):
        grader, _ = client.create_grader(GRADER_SOURCE)
        request = pb.GradeBatchRequest(
            grader=pb.GraderRef(grader_id=grader), samples_json=b'["1"]', items_json=b'[{"answer": "1"}]'
        )

        async def idle(kind: str) -> tuple[grpc.StatusCode, str, float, grpc.StatusCode | None]:
            async with grpc.aio.insecure_channel(service.address) as channel:
                if kind == "stream":
                    call = pb_grpc.GraderServiceStub(channel).GradeStream(metadata=_auth(TOKEN_A))
                    await call.write(request)  # one request answered, then nothing: idle from here
                    assert list((await call.read()).rewards) == [1.0]
                else:  # GradeBatch's headers, and never its request
                    headers_only = channel.stream_unary(
                        f"/{SERVICE_NAME}/GradeBatch",
                        request_serializer=pb.GradeBatchRequest.SerializeToString,
                        response_deserializer=pb.GradeBatchResponse.FromString,
                    )
                    call = headers_only(metadata=_auth(TOKEN_A))
                    await asyncio.sleep(0.3)
                start = time.monotonic()
                try:  # meanwhile the tenant's one place is taken
                    await asyncio.to_thread(client.list_graders)
                    other = grpc.StatusCode.OK
                except GraderServiceError as exc:
                    other = exc.code
                code = await asyncio.wait_for(call.code(), 15)
                return code, await call.details(), time.monotonic() - start, other

        for kind in ("stream", "unary"):
            code, details, idle_s, other = asyncio.run(idle(kind))
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "--stream-idle-timeout" in details, kind
            assert 0.5 < idle_s < 10 and other == grpc.StatusCode.RESOURCE_EXHAUSTED, (kind, idle_s, other)
            assert client.run(grader, "1", {"answer": "1"}).reward == 1.0  # the place is free again
