"""Issue 14 item 3: every decode and encode step bounded and total, through a real in-process server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from rftkit.grader_service.client import GraderClient, GraderServiceError
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.server import GraderServer
from rftkit.grader_service.settings import ServiceSettings

ECHO = """\
def grade(sample, item):
    if sample["output_text"] == "echo":
        raise ValueError("x" * 100000 + " bad item " + item["answer"])
    return 1.0 if sample["output_text"] == item["answer"] else 0.0
"""
DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraderServer]:
    data = Path(tmp_path_factory.mktemp("bounds"))
    settings = ServiceSettings(
        host="127.0.0.1", port=0, insecure_local=True, data_dir=data, sandbox="process", concurrency=2
    )
    running = GraderServer(settings)
    running.start()
    yield running
    running.stop(1.0)


@pytest.fixture(scope="module")
def client(server: GraderServer) -> Iterator[GraderClient]:
    with GraderClient(server.address) as made:
        yield made


def _batch(client: GraderClient, samples_json: bytes, items_json: bytes, grader: pb.GraderRef):
    request = pb.GradeBatchRequest(grader=grader, samples_json=samples_json, items_json=items_json)
    return client._stub.GradeBatch(request, timeout=30, metadata=client._metadata)


def test_deep_bracket_sample_flags_only_itself(client: GraderClient) -> None:
    """`"[" * 5000` in a batch of 4,096: exactly that one sample is flagged (as its own fault)."""
    grader_id, _ = client.create_grader(ECHO, name="echo")
    samples = ["a"] * 4096
    samples[1234] = "[" * 5000
    results = client.grade_batch(grader_id, samples, {"answer": "a"})
    flagged = [i for i, r in enumerate(results) if r.metadata.errors.raised()]
    assert flagged == [1234]
    assert results[1234].metadata.errors.sample_parse_error
    assert sum(r.reward for r in results) == 4095


def test_lone_surrogate_echoed_in_error_is_not_internal(client: GraderClient) -> None:
    """An item with a lone surrogate that the grader echoes in its (long) error: a per-sample error, cut."""
    grader_id, _ = client.create_grader(ECHO, name="echo")
    items = b'[{"answer": "\\ud800"}, {"answer": "a"}]'
    grader = pb.GraderRef(grader_id=grader_id)
    response = _batch(client, b'["echo", "a"]', items, grader)
    assert list(response.rewards) == [0.0, 1.0]
    assert list(response.error_indices) == [0]
    results = json.loads(response.results_json)
    details = results[0]["metadata"]["errors"]["details"]
    assert "\ufffd" in details and len(details) < 2200  # replaced, and cut from over 100,000 characters
    assert len(response.results_json) < 10_000


@pytest.mark.parametrize("field", ["samples", "items"])
def test_deep_request_json_is_invalid_argument(client: GraderClient, field: str) -> None:
    grader = pb.GraderRef(inline=pb.GraderSource(python_source=ECHO))
    samples = f'[{{"output_text": "a", "output_json": {DEEP}}}]' if field == "samples" else '["a"]'
    items = f'[{{"answer": {DEEP}}}]' if field == "items" else '[{"answer": "a"}]'
    with pytest.raises(grpc.RpcError) as caught:
        _batch(client, samples.encode(), items.encode(), grader)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested deeper" in caught.value.details()


def test_deep_spec_is_invalid_argument(client: GraderClient) -> None:
    spec = '{"type": "string_check", "name": "x", "input": "a", "reference": "b", "operation": "eq", "x": '
    with pytest.raises(GraderServiceError) as caught:
        client._call(
            "CreateGrader", pb.CreateGraderRequest(source=pb.GraderSource(spec_json=spec + DEEP + "}"))
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
