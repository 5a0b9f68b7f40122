"""One real `rft serve` on a loopback port, shared by the tests of this module."""

from __future__ import annotations

import asyncio
import json
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from rftkit.core.records import Sample
from rftkit.grader_service.client import AsyncGraderClient, GraderClient, GraderServiceError
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.pb import grader_pb2_grpc as pb_grpc
from rftkit.grader_service.testing import (
    GRADER_SOURCE,
    TOKEN_A,
    TOKEN_B,
    metric,
    metrics_text,
    rft,
    serve,
)

STRING_CHECK = {
    "type": "string_check",
    "name": "exact",
    "operation": "eq",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory, sandbox):
    with serve(tmp_path_factory.mktemp("svc"), "--concurrency", "4", sandbox=sandbox) as running:
        yield running


@pytest.fixture(scope="module")
def client_a(service):
    with GraderClient(service.address, TOKEN_A) as client:
        yield client


@pytest.fixture(scope="module")
def python_grader(service, tmp_path_factory) -> str:
    """A Python grader uploaded with the CLI; returns its id."""
    path = tmp_path_factory.mktemp("grader") / "match.py"
    path.write_text(GRADER_SOURCE)
    first = rft("graders", "upload", str(path), "--server", service.address, "--token", TOKEN_A)
    assert first.returncode == 0, first.stderr
    assert "warning: " in first.stderr  # the policy's findings (it imports os)
    uploaded = json.loads(first.stdout)
    again = rft("graders", "upload", str(path), "--server", service.address, env={"RFT_TOKEN": TOKEN_A})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == uploaded  # same source, same id and version
    return uploaded["id"]


def expected(text: str, answer: str) -> float:
    return 1.0 if text == answer else 0.0


def test_cli_list_show_run_delete(service, python_grader, tmp_path) -> None:
    server = ["--server", service.address, "--token", TOKEN_A]
    listed = json.loads(rft("graders", "list", *server).stdout)
    assert python_grader in [g["id"] for g in listed["graders"]]
    shown = json.loads(rft("graders", "show", python_grader, *server).stdout)
    assert shown["type"] == "python" and shown["spec"]["source"] == GRADER_SOURCE and shown["name"] == "match"

    run = rft("graders", "run", python_grader, "--sample", "42", "--item", '{"answer": "42"}', *server)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["reward"] == 1.0 and result["metadata"]["type"] == "python"

    spec = tmp_path / "exact.json"
    spec.write_text(json.dumps(STRING_CHECK))
    made = json.loads(rft("graders", "upload", str(spec), *server).stdout)
    deleted = rft("graders", "delete", made["id"], *server)
    assert json.loads(deleted.stdout) == {"id": made["id"], "deleted": True}
    gone = rft("graders", "show", made["id"], *server)
    assert gone.returncode == 2 and "NOT_FOUND" in gone.stderr


def test_ten_thousand_samples_from_concurrent_clients(service, python_grader) -> None:
    n = 10_000
    failures: list[str] = []

    def batch(seed: int) -> tuple[list[str], list[dict]]:
        samples = [str((i * seed) % 13) for i in range(n)]
        items = [{"answer": str(i % 13)} for i in range(n)]
        return samples, items

    def check(seed: int, rewards: list[float]) -> None:
        samples, items = batch(seed)
        want = [expected(s, it["answer"]) for s, it in zip(samples, items, strict=True)]
        if rewards != want:
            wrong = sum(a != b for a, b in zip(rewards, want, strict=False))
            failures.append(f"client {seed}: {wrong} wrong of {len(want)} (got {len(rewards)})")

    def sync_client(seed: int) -> None:
        with GraderClient(service.address, TOKEN_A, chunk_size=10_000) as client:
            samples, items = batch(seed)
            results = client.grade_batch(python_grader, samples, items)
            assert not any(r.metadata.errors.any for r in results)
            check(seed, [r.reward for r in results])

    async def async_client(seed: int) -> None:
        async with AsyncGraderClient(service.address, TOKEN_A, chunk_size=2_500) as client:
            samples, items = batch(seed)
            check(seed, [r.reward for r in await client.grade_batch(python_grader, samples, items)])
            rewards, failed = await client.rewards(python_grader, samples[:500], items[:500])
            want = [expected(s, it["answer"]) for s, it in zip(samples[:500], items[:500], strict=True)]
            if rewards != want or failed:
                failures.append(
                    f"async rewards: {sum(a != b for a, b in zip(rewards, want, strict=False))} wrong"
                )
            streamed = [
                [r.reward for r in results]
                async for results in client.grade_stream(python_grader, [(["3", "4"], {"answer": "4"})] * 2)
            ]
            if streamed != [[0.0, 1.0], [0.0, 1.0]]:
                failures.append(f"async stream: {streamed}")

    threads = [threading.Thread(target=sync_client, args=(seed,)) for seed in (1, 2, 3)]
    threads.append(threading.Thread(target=lambda: asyncio.run(async_client(5))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert metric(metrics_text(service), "rft_grades_total", grader_type="python") >= 4 * n


def test_a_failing_grader_costs_one_sample(client_a, python_grader) -> None:
    samples = ["1", "boom", "2", "die", "3"]
    results = client_a.grade_batch(python_grader, samples, {"answer": "2"})
    assert [r.reward for r in results] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert results[1].metadata.errors.python_grader_runtime_error
    assert "boom" in (results[1].metadata.errors.details or "")
    assert results[3].metadata.errors.any  # its worker died; the sandbox replaced it
    assert not results[2].metadata.errors.any and not results[4].metadata.errors.any
    rewards, failed = client_a.rewards(python_grader, samples, {"answer": "2"})
    assert rewards == [0.0, 0.0, 1.0, 0.0, 0.0] and failed == [1, 3]
    assert client_a.run(python_grader, "2", {"answer": "2"}).reward == 1.0  # still serving


def test_rewards_only_responses_carry_results_of_failed_samples_only(service, python_grader) -> None:
    samples = ["1", "boom", "2", "die", "3", "2"]
    request = pb.GradeBatchRequest(
        grader=pb.GraderRef(grader_id=python_grader),
        samples_json=json.dumps(samples).encode(),
        items_json=b'{"answer": "2"}',
        request_id="r1",
    )
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.GraderServiceStub(channel)
        auth = (("authorization", f"Bearer {TOKEN_A}"),)
        full = stub.GradeBatch(request, metadata=auth, timeout=60)
        request.rewards_only = True
        lean = stub.GradeBatch(request, metadata=auth, timeout=60)
    assert list(lean.rewards) == list(full.rewards) == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert list(lean.error_indices) == list(full.error_indices) == [1, 3]
    assert lean.request_id == "r1" and lean.grader_id == python_grader == full.grader_id
    every, failed = json.loads(full.results_json), json.loads(lean.results_json)
    assert len(every) == 6 and len(failed) == 2
    assert [r["metadata"]["errors"] for r in failed] == [
        every[1]["metadata"]["errors"],
        every[3]["metadata"]["errors"],
    ]
    assert "boom" in failed[0]["metadata"]["errors"]["details"]


def test_tenants_cannot_reach_each_others_graders(service, client_a, python_grader) -> None:
    with GraderClient(service.address, TOKEN_B) as client_b:
        assert python_grader not in [g["id"] for g in client_b.list_graders()]
        for call in (
            lambda: client_b.get_grader(python_grader),
            lambda: client_b.run(python_grader, "1", {"answer": "1"}),
            lambda: client_b.grade_batch(python_grader, ["1"], [{"answer": "1"}]),
            lambda: client_b.delete_grader(python_grader),
            lambda: client_b.create_grader(STRING_CHECK, grader_id=python_grader),
        ):
            with pytest.raises(GraderServiceError) as info:
                call()
            assert info.value.code == grpc.StatusCode.NOT_FOUND
        own_id, _ = client_b.create_grader(GRADER_SOURCE, name="match")  # same source: b's own grader
        assert own_id != python_grader
    assert client_a.get_grader(python_grader)["id"] == python_grader


@pytest.mark.parametrize("token", [None, "not-a-known-token-000"])
def test_calls_without_a_valid_token_are_unauthenticated(service, python_grader, token) -> None:
    with GraderClient(service.address, token) as client:
        for call in (
            client.list_graders,
            lambda: client.create_grader(STRING_CHECK),
            lambda: client.grade_batch(python_grader, ["1"], [{"answer": "1"}]),
            lambda: list(client.grade_stream(python_grader, [(["1"], [{"answer": "1"}])])),
        ):
            with pytest.raises(GraderServiceError) as info:
                call()
            assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_bad_requests_get_invalid_argument(service, client_a, python_grader) -> None:
    with pytest.raises(GraderServiceError, match="unknown grader type") as info:
        client_a.create_grader({"type": "no_such_type"})
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(GraderServiceError) as info:
        client_a.create_grader("def grade(sample, item):\n    return (\n")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    channel = grpc.insecure_channel(service.address)
    stub = pb_grpc.GraderServiceStub(channel)
    auth = (("authorization", f"Bearer {TOKEN_A}"),)
    for samples, items in ((b"[1,", b"[]"), (b'["a", "b"]', b'[{"answer": "a"}]')):
        request = pb.GradeBatchRequest(
            grader=pb.GraderRef(grader_id=python_grader), samples_json=samples, items_json=items
        )
        with pytest.raises(grpc.RpcError) as raw:
            stub.GradeBatch(request, metadata=auth, timeout=30)
        assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


def test_validate_run_inline_and_stream(client_a, python_grader) -> None:
    report = client_a.validate_grader(STRING_CHECK, ["a", "b"], {"answer": "a"})
    assert report["valid"] and [r["reward"] for r in report["results"]] == [1.0, 0.0]
    assert not client_a.validate_grader({"type": "string_check"})["valid"]
    lenient = client_a.validate_grader(GRADER_SOURCE)
    assert lenient["valid"] and any("os" in w for w in lenient["warnings"])
    strict = client_a.validate_grader(GRADER_SOURCE, strict=True)
    assert not strict["valid"] and strict["errors"]
    with pytest.raises(GraderServiceError) as info:
        client_a.create_grader(GRADER_SOURCE, strict=True)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert client_a.run(STRING_CHECK, Sample(output_text="x"), {"answer": "x"}).reward == 1.0
    batches = [([str(i), "7"], [{"answer": "7"}, {"answer": "7"}]) for i in range(5, 9)]
    rewards = [[r.reward for r in results] for results in client_a.grade_stream(python_grader, batches)]
    assert rewards == [[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]]
    with pytest.raises(GraderServiceError) as info:
        list(client_a.grade_stream("gr_0000000000000000", batches[:1]))
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_health_reflection_and_metrics(service, client_a, python_grader) -> None:
    channel = grpc.insecure_channel(service.address)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "rft.grader.v1.GraderService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "rft.grader.v1.GraderService" in services and "grpc.health.v1.Health" in services
    channel.close()

    client_a.grade_batch(python_grader, ["1", "boom"], {"answer": "1"})
    text = metrics_text(service)
    assert metric(text, "rft_grades_total", grader_type="python", error_kind="none") >= 1
    assert (
        metric(text, "rft_grades_total", grader_type="python", error_kind="python_grader_runtime_error") >= 1
    )
    assert metric(text, "rft_request_seconds_count", method="GradeBatch") >= 1
    assert metric(text, "rft_sandbox_pool_workers", grader_type="python") >= 1
    assert "rft_queue_depth 0.0" in text and "rft_in_flight" in text
