from __future__ import annotations

import json

import pytest
from rftkit.grader_service import codec
from rftkit.plugins.base import GraderResult, ResultMetadata, Sample


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


def test_encode_results_fast_path_matches_pydantic() -> None:
    """Plain results are encoded without pydantic; the JSON means the same as pydantic's dump."""
    import json as _json

    from rftkit.plugins.base import GraderResult, ResultMetadata, fast_result

    odd = GraderResult(
        reward=0.5,
        sub_rewards={"a": float("nan"), "b": 1.0},
        metadata=ResultMetadata(name="g", type="multi", execution_time=float("inf"), scores={"x": 0.5}),
    )
    ok = fast_result(0.25, "g", "python", 1e-5, {"pass": False})
    zero_time = fast_result(1.0, "g", "python", 0.0, {})
    failed = GraderResult.failure("g", "python", "timeout_error", "slow")
    for batch in ([], [ok], [odd], [ok, odd, ok, ok, failed, zero_time], [odd, failed], [ok, ok]):
        got = codec.encode_results(batch)
        assert _json.loads(got) == _json.loads(codec._RESULTS.dump_json(batch, exclude_defaults=True))
        if odd not in batch:  # null sub-rewards do not decode (as before)
            assert codec.decode_results(got) == batch
    assert b"NaN" not in codec.encode_results([odd])  # non-finite numbers are written as null, as before
