from __future__ import annotations

import itertools
import json

import pytest
from rftkit.grader_service.client import RetryPolicy, grader_ref, plan_requests


def test_chunks_by_count_and_by_bytes_keep_order() -> None:
    ref = grader_ref("gr_0123456789abcdef")
    samples = [f"sample {i} " + "x" * 100 for i in range(1000)]
    items = [{"i": i} for i in range(1000)]
    by_count = plan_requests(ref, samples, items, chunk_size=300, max_bytes=10**9)
    assert [len(json.loads(r.samples_json)) for r in by_count] == [300, 300, 300, 100]
    by_bytes = plan_requests(ref, samples, items, chunk_size=1000, max_bytes=20_000)
    assert all(len(r.samples_json) + len(r.items_json) <= 20_000 for r in by_bytes)
    joined = list(itertools.chain.from_iterable(json.loads(r.samples_json) for r in by_bytes))
    assert joined == samples
    assert next(json.loads(r.items_json) for r in by_bytes)[0] == {"i": 0}


def test_shared_item_and_length_mismatch() -> None:
    ref = grader_ref({"type": "string_check"})
    assert ref.WhichOneof("ref") == "inline"
    [request] = plan_requests(ref, ["a", "b"], {"answer": "a"}, chunk_size=10, max_bytes=10**6)
    assert json.loads(request.items_json) == {"answer": "a"}
    with pytest.raises(ValueError, match="one item per sample"):
        plan_requests(ref, ["a", "b"], [{}], chunk_size=10, max_bytes=10**6)


def test_backoff_grows_and_ends() -> None:
    delays = list(RetryPolicy(attempts=5, initial_backoff_s=0.1, max_backoff_s=0.3).delays())
    assert delays[-1] is None and len(delays) == 5
    assert 0.05 <= delays[0] <= 0.1 and delays[2] <= 0.3 and delays[3] >= 0.15
