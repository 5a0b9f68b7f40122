from __future__ import annotations

import json
import math

import pytest
from rftkit.core.records import GraderResult, ResultMetadata, Sample
from rftkit.grader_service import codec


def test_samples_round_trip_strings_dicts_and_models() -> None:
    data = codec.encode_samples(
        ["plain", {"output_text": "d", "output_json": {"a": 1}}, Sample(output_text="m")]
    )
    assert json.loads(data)[0] == "plain"
    samples = codec.decode_samples(data)
    assert [s.output_text for s in samples] == ["plain", "d", "m"]
    assert samples[1].output_json == {"a": 1}


@pytest.mark.parametrize("bad", [b"{", b'{"output_text": "x"}', b"[1, 2]"])
def test_malformed_samples_are_a_format_error(bad: bytes) -> None:
    with pytest.raises(codec.BatchFormatError):
        codec.decode_samples(bad)


def test_items_one_per_sample_or_one_shared() -> None:
    assert codec.decode_items(b'[{"a": 1}, {"a": 2}]', 2) == [{"a": 1}, {"a": 2}]
    assert codec.decode_items(b'{"a": 1}', 3) == [{"a": 1}] * 3
    assert codec.decode_items(b"", 2) == [{}, {}]
    with pytest.raises(codec.BatchFormatError, match="2 samples but 1 items"):
        codec.decode_items(b'[{"a": 1}]', 2)
    with pytest.raises(codec.BatchFormatError, match="array of objects"):
        codec.decode_items(b'["x"]', 1)


def test_results_round_trip_and_error_flags() -> None:
    ok = GraderResult(reward=0.5, sub_rewards={"x": 1.0}, metadata=ResultMetadata(name="g", type="python"))
    bad = GraderResult.failure("g", "python", "python_grader_runtime_error", "ValueError: boom")
    data = codec.encode_results([ok, bad])
    assert b"formula_parse_error" not in data  # defaults left out
    back = codec.decode_results(data)
    assert back == [ok, bad]
    assert codec.error_flags(back[0]) == []
    assert codec.error_flags(back[1]) == ["python_grader_runtime_error"]
    assert (
        codec.to_plain(back[1])["metadata"]["errors"]["python_grader_runtime_error_details"]
        == "ValueError: boom"
    )


def test_non_finite_numbers_round_trip_as_nan() -> None:
    """JSON has no NaN: a NaN sub-reward, an infinite score or time travel as null and come back as NaN."""
    odd = GraderResult(
        reward=0.5,
        sub_rewards={"a": float("nan"), "b": 1.0},
        metadata=ResultMetadata(
            name="g", type="multi", execution_time=float("inf"), scores={"x": 0.5, "y": float("-inf")}
        ),
    )
    failed = GraderResult.failure("g", "python", "timeout_error", "slow")
    data = codec.encode_results([odd, failed])
    assert b"NaN" not in data and b"Infinity" not in data
    back, back_failed = codec.decode_results(data)
    assert math.isnan(back.sub_rewards["a"]) and back.sub_rewards["b"] == 1.0
    assert math.isnan(back.metadata.execution_time) and math.isnan(back.metadata.scores["y"])
    assert back.metadata.scores["x"] == 0.5 and back.reward == 0.5
    assert back_failed == failed and not back_failed.valid and back.valid


def test_an_out_of_range_reward_does_not_decode() -> None:
    with pytest.raises(codec.BatchFormatError, match=r"finite float in \[0, 1\]"):
        codec.decode_results(b'[{"reward": 1.5, "metadata": {"name": "g", "type": "t"}}]')
    with pytest.raises(codec.BatchFormatError):
        codec.decode_results(b'[{"reward": NaN, "metadata": {"name": "g", "type": "t"}}]')


def test_items_of_a_prompt_travel_once_with_an_index() -> None:
    shared = {"answer": "x" * 300}
    other = {"answer": "y"}
    data, index = codec.encode_item_table([shared, shared, other, shared])
    assert data.count(b"x" * 300) == 1 and index == [0, 0, 1, 0]
    items = codec.decode_items(data, 4, index)
    assert items == [shared, shared, other, shared]
    assert items[0] is items[1]  # one decoded object per distinct item, not a copy per sample
    distinct = [{"answer": str(n)} for n in range(3)]
    assert codec.encode_item_table(distinct) == (codec.encode_items(distinct), [0, 1, 2])
    with pytest.raises(codec.BatchFormatError, match="past the 2 items"):
        codec.decode_items(data, 2, [0, 2])
    with pytest.raises(codec.BatchFormatError, match="3 samples but 2 item_index"):
        codec.decode_items(data, 3, [0, 1])


def test_samples_with_nan_tokens_from_older_clients_still_decode() -> None:
    [sample] = codec.decode_samples(b'[{"output_text": "x", "output_json": {"v": NaN}}]')
    assert math.isnan(sample.output_json["v"])


def test_compact_columns_rebuild_every_result() -> None:
    from rftkit.core.records import GradedBatch

    failed = GraderResult.failure("g", "python", "timeout_error", "slow")
    graded = codec.graded_from_wire(
        [0.25, 0.0, 1.0], [1], codec.encode_results([failed]),
        name="g", type="python", pass_threshold=0.5, sample_seconds=1e-5,
    )  # fmt: skip
    assert isinstance(graded, GradedBatch) and graded.error_indices() == [1]
    first, second, third = graded.to_results()
    assert first.reward == 0.25 and first.metadata.passes == {"pass": False} and first.valid
    assert second == failed and not second.valid and third.metadata.passes == {"pass": True}
    assert first.metadata.execution_time == 1e-5 and first.metadata.name == "g"
    with pytest.raises(codec.BatchFormatError):  # two result indices, no result
        codec.graded_from_wire(
            [1.0], [0, 1], b"[]", name="g", type="t", pass_threshold=None, sample_seconds=0.0
        )


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize(
    "samples",
    [
        f'[{{"output_text": "a", "output_json": {_nested(150)}}}]',
        f'[{{"output_text": "a", "output_tools": [{{"f": {_nested(150)}}}]}}]',
    ],
)
def test_samples_nested_past_the_limit_are_refused(samples: str) -> None:
    """Text-only samples skip the depth scan; a sample with JSON, tools or choices is scanned."""
    with pytest.raises(codec.BatchFormatError, match="nested deeper than 100 levels"):
        codec.decode_samples(samples.encode())


@pytest.mark.parametrize(
    "items",
    [
        f'[{{"x": {_nested(150)}}}]',
        f'{{"x": {_nested(150)}}}',
        f'[{{"x": {_nested(5000)}}}]',  # past the decoders' own recursion limit
    ],
)
def test_items_nested_past_the_limit_are_refused(items: str) -> None:
    """Flat items skip the depth scan (a typed decoder checks them); any other item is scanned."""
    with pytest.raises(codec.BatchFormatError, match="nested deeper than 100 levels"):
        codec.decode_items(items.encode(), 1)


def test_flat_and_nested_items_decode_alike() -> None:
    flat = b'[{"s": "t", "i": 1, "f": 1.5, "b": true, "n": null}, {"big": 123456789012345678901234567890}]'
    assert codec.decode_items(flat, 2) == json.loads(flat)
    nested = b'[{"l": [1, {"a": [2]}], "d": {"k": "v"}}]'
    assert codec.decode_items(nested, 1) == json.loads(nested)
    assert math.isnan(codec.decode_items(b'[{"x": NaN}]', 1)[0]["x"])  # older clients' NaN tokens
