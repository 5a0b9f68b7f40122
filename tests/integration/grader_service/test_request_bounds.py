"""Issue 14 item 9: small requests must not cost gigabytes, and a tenant's store is bounded.

A real `rft serve` child; its peak memory is read from /proc/PID/status (VmHWM, the resident
high-water mark since it started), so a spike between two samples of RSS cannot hide.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from rftkit.grader_service.client import GraderClient, GraderServiceError
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.testing import TOKEN_A, TOKEN_B, metric, metrics_text, serve

pytestmark = pytest.mark.timeout(300)

GB = 1024**3
RESPONSE_MB = 12
LONG_ERROR = "def grade(sample, item):\n    raise ValueError('a long error ' * 2000)\n"
ZERO = "def grade(sample, item):\n    return 0.0\n"


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sandbox: str):
    args = (
        "--max-response-mb", str(RESPONSE_MB), "--max-samples-per-request", "20000",
        "--max-graders-per-tenant", "2", "--max-versions-per-tenant", "3",
        "--max-stored-mb-per-tenant", "0.25", "--max-warm-workers", "4",
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RFTKIT_SANDBOX_WORKERS", "2")  # pools of two: the budget holds two idle pools
        with serve(tmp_path_factory.mktemp("bounds"), *args, sandbox=sandbox) as running:
            yield running


@pytest.fixture(scope="module")
def client(service):
    with GraderClient(service.address, TOKEN_A) as made:
        yield made


def _grade_batch(client: GraderClient, grader_id: str, samples_json: bytes) -> pb.GradeBatchResponse:
    request = pb.GradeBatchRequest(grader=pb.GraderRef(grader_id=grader_id), samples_json=samples_json)
    return client._stub.GradeBatch(request, timeout=240, metadata=client._metadata)


def test_20000_failing_samples_in_60_kb_stay_under_1_gb_and_the_response_bound(service, client) -> None:
    grader_id, _ = client.create_grader(LONG_ERROR, name="long-error")
    samples = b"[" + b",".join([b'""'] * 20_000) + b"]"
    assert len(samples) <= 60_001
    response = _grade_batch(client, grader_id, samples)
    assert len(response.rewards) == 20_000 and len(response.error_indices) == 20_000
    assert response.ByteSize() <= RESPONSE_MB * 1024 * 1024  # uncut: 20,000 x 4 kB of error text
    results = json.loads(response.results_json)
    assert all(r["metadata"]["errors"]["python_grader_runtime_error"] for r in results)
    assert "a long error" in results[0]["metadata"]["errors"]["details"]  # cut, not dropped
    assert peak_rss(service.pid) < GB, f"peak {peak_rss(service.pid) / 2**20:.0f} MiB"


def test_400000_empty_samples_are_refused_by_count_before_decoding(service, client) -> None:
    grader_id, _ = client.create_grader(ZERO, name="zero")
    samples = b"[" + b",".join([b'""'] * 400_000) + b"]"
    with pytest.raises(grpc.RpcError) as caught:
        _grade_batch(client, grader_id, samples)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "400000 samples" in caught.value.details()
    assert "--max-samples-per-request" in caught.value.details()
    assert peak_rss(service.pid) < GB, f"peak {peak_rss(service.pid) / 2**20:.0f} MiB"
    assert [r.reward for r in client.grade_batch(grader_id, ["a"] * 3, {})] == [0.0] * 3  # still serving


def test_store_quotas_per_tenant_are_refused_and_freed_by_delete(service) -> None:
    """Tenant B's quotas: 2 graders, 3 versions, 0.25 MiB; tenant A's graders do not count."""
    with GraderClient(service.address, TOKEN_B) as b:
        first, _ = b.create_grader(ZERO, name="one")
        second, _ = b.create_grader(ZERO.replace("0.0", "1.0"), name="two")
        with pytest.raises(GraderServiceError) as caught:
            b.create_grader(ZERO.replace("0.0", "0.5"), name="three")
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-graders-per-tenant 2" in caught.value.details
        assert b.create_grader(ZERO, name="one")[0] == first  # content it already has: no new quota

        b.create_grader(ZERO.replace("0.0", "0.25"), name="one", grader_id=first)  # a third version
        with pytest.raises(GraderServiceError, match="--max-versions-per-tenant 3"):
            b.create_grader(ZERO.replace("0.0", "0.75"), name="one", grader_id=first)

        b.delete_grader(first)  # frees a grader and two versions
        big = ZERO + "#" * (200 * 1024) + "\n"
        third, _ = b.create_grader(big, name="big")
        with pytest.raises(GraderServiceError, match=r"--max-stored-mb-per-tenant 0\.25") as caught:
            b.create_grader(big + "#\n", name="big", grader_id=third)
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        b.delete_grader(second)
        b.delete_grader(third)
        assert b.create_grader(big + "#\n", name="big")  # every byte freed


def test_idle_pools_stay_within_the_warm_worker_budget(service, client) -> None:
    """Three more graders (inline: no store quota) after the two above: two pools stay warm."""
    for reward in ("0.1", "0.2", "0.3"):
        results = client.grade_batch(ZERO.replace("0.0", reward), ["a"] * 8, {})
        assert [r.reward for r in results] == [float(reward)] * 8
        assert metric(metrics_text(service), "rft_sandbox_pool_workers") <= 4
    assert metric(metrics_text(service), "rft_graders_loaded") == 2  # 5 python graders were loaded
