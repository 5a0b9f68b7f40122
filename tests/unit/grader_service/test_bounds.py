"""Per-request bounds: sample counts read without decoding, responses cut to a byte limit."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError
from rftkit.core.records import GradedBatch, GraderResult, ResultMetadata
from rftkit.grader_service import bounds
from rftkit.grader_service.bounds import (
    MIN_RESULT_BYTES,
    TooManySamples,
    bound_results,
    check_counts,
    count_elements,
)
from rftkit.grader_service.codec import encode_results
from rftkit.grader_service.settings import ServiceSettings


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth > 4 or kind < 0.3:
        return rng.choice(["a,b", "\\", '"', "]", "{", 1, 2.5, None, True, 'x\\"y', "é,[", '\\\\"'])
    if kind < 0.65:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        str(i) + rng.choice(["", ",", "]", '"']): _random_value(rng, depth + 1)
        for i in range(rng.randint(0, 4))
    }


@pytest.mark.parametrize("block", [7, 64, 1 << 16])
def test_count_elements_agrees_with_a_json_decoder(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strings holding commas, brackets and escaped quotes, nested samples, any block boundary."""
    monkeypatch.setattr(bounds, "_BLOCK", block)
    rng = random.Random(block)
    for _ in range(400):
        value = [_random_value(rng, 1) for _ in range(rng.randint(0, 30))]
        for text in (json.dumps(value), json.dumps(value, separators=(",", ":"), ensure_ascii=False)):
            assert count_elements(text.encode()) == len(value), text


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"[]", 0), (b" [ ] ", 0), (b'[""]', 1), (b'{"a": 1}', None), (b"[[[", None), (b"[]]", None),
     (b"[" + b"[" * 50 + b"]" * 50 + b"]", 1)],
)  # fmt: skip
def test_count_elements_edges(data: bytes, expected: int | None) -> None:
    assert count_elements(data) == expected


def test_nesting_too_deep_to_follow_is_left_to_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "_BLOCK", 16)  # the nesting crosses blocks
    assert count_elements(b"[" + b"[" * 150 + b"]" * 150 + b"]") is None


def test_too_many_samples_or_items_is_refused_naming_the_setting() -> None:
    check_counts(3, b'["a,b", "c", "d"]', b'[{"x": [1, 2]}, {}, {}]')  # commas inside do not count
    with pytest.raises(TooManySamples) as caught:
        check_counts(3, b'["a", "b", "c", "d"]')
    assert "4 samples" in str(caught.value) and "--max-samples-per-request" in str(caught.value)
    with pytest.raises(TooManySamples, match="4 items"):
        check_counts(3, b'["a"]', b"[{}, {}, {}, {}]")


def _failure(details: str) -> GraderResult:
    return GraderResult.failure("g", "python", "python_grader_runtime_error", details)


def test_bound_results_keeps_the_response_under_the_limit_and_every_flag() -> None:
    count, limit = 2000, 1_000_000
    results = {i: _failure(f"ValueError: {i} " + "x" * 100_000) for i in range(0, count, 2)}
    results[1] = GraderResult(
        reward=0.5,
        sub_rewards={f"child{i}": 0.5 for i in range(5000)},  # big metadata, no error text to cut
        metadata=ResultMetadata(name="g", type="multi", scores={f"child{i}": 0.5 for i in range(5000)}),
    )
    small = GraderResult.failure("g", "python", "timeout_error", "took too long")
    results[3] = small
    graded = GradedBatch(name="g", type="python", rewards=[0.0] * count, results=dict(results))
    assert len(encode_results(list(graded.results.values()))) > 4 * limit  # control: over the bound

    bound_results(graded, limit)
    encoded = encode_results(list(graded.results.values()))
    assert len(encoded) + bounds.PER_SAMPLE_BYTES * count <= limit
    assert graded.results[3] is small  # under its share: untouched
    for index, result in results.items():
        assert graded.results[index].metadata.errors.raised() == result.metadata.errors.raised()
        assert graded.results[index].reward == result.reward
    details = graded.results[0].metadata.errors.details
    assert details.startswith("ValueError: 0") and "to fit the response]" in details
    assert not graded.results[1].sub_rewards  # dropped: nothing else could be cut


def test_bound_results_leaves_a_batch_under_the_limit_alone() -> None:
    results = {0: _failure("boom" * 100)}
    graded = GradedBatch(name="g", type="python", rewards=[0.0, 1.0], results=dict(results))
    assert bound_results(graded, 1_000_000).results[0] is results[0]


def test_bound_results_cuts_text_utf8_cannot_carry() -> None:
    graded = GradedBatch(name="g", type="python", rewards=[0.0] * 10, results={
        i: _failure("\ud800 echoed " + "é" * 5000) for i in range(10)
    })  # fmt: skip
    bound_results(graded, 10 * (bounds.PER_SAMPLE_BYTES + MIN_RESULT_BYTES) + 2000)
    for result in graded.results.values():
        assert len(msgspec.json.encode(result)) <= 2 * MIN_RESULT_BYTES


def test_a_response_bound_too_small_for_a_full_request_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="--max-response-mb 1 cannot hold"):
        ServiceSettings(insecure_local=True, max_response_mb=1)
    ServiceSettings(insecure_local=True, max_response_mb=1, max_samples_per_request=1000)
