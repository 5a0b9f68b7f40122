"""The wire records: what building, encoding and decoding them keeps and refuses."""

from __future__ import annotations

import math

import msgspec
import pytest
from rftkit.core.flags import ERROR_FLAGS, NO_SCORE_FLAGS, SAMPLE_FAULT_FLAGS
from rftkit.core.records import (
    DeclaredMetrics,
    GradedBatch,
    GraderErrors,
    GraderResult,
    ResultMetadata,
    Sample,
    SampleParseError,
)


def _meta(**kw: object) -> ResultMetadata:
    return ResultMetadata(name="g", type="t", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, 1.0001, True, "0.5", None])
def test_a_reward_outside_the_unit_interval_is_refused_when_built(bad: object) -> None:
    with pytest.raises(ValueError, match=r"finite float in \[0, 1\]"):
        GraderResult(reward=bad, metadata=_meta())  # type: ignore[arg-type]


def test_an_int_reward_becomes_a_float() -> None:
    result = GraderResult(reward=1, metadata=_meta())
    assert type(result.reward) is float and result.reward == 1.0


def test_results_round_trip_with_every_field() -> None:
    errors = GraderErrors(
        python_grader_runtime_error=True, python_grader_runtime_error_details="x", details="x"
    )
    result = GraderResult(
        reward=0.25,
        sub_rewards={"a": 1.0},
        metadata=_meta(
            errors=errors, execution_time=0.5, scores={"rank": 2.0}, passes={"top1": False},
            token_usage={"prompt": 3}, sampled_model_name="m", label="yes",
        ),
    )  # fmt: skip
    data = msgspec.json.encode(result)
    assert b"formula_parse_error" not in data  # false flags are left out
    assert msgspec.json.decode(data, type=GraderResult) == result


@pytest.mark.parametrize("flag", ERROR_FLAGS)
def test_valid_follows_the_flag_rule(flag: str) -> None:
    result = GraderResult.failure("g", "t", flag, "why")
    assert result.metadata.errors.raised() == [flag] and result.metadata.errors.details == "why"
    assert result.valid is (flag in SAMPLE_FAULT_FLAGS)
    assert result.valid is not (flag in NO_SCORE_FLAGS)
    assert GraderResult(reward=0.0, metadata=_meta()).valid
    assert result.to_plain()["metadata"]["valid"] is result.valid


def test_failure_refuses_an_unknown_flag() -> None:
    with pytest.raises(ValueError, match="unknown error flag"):
        GraderResult.failure("g", "t", "no_such_error", "x")


def test_merged_errors_name_the_child() -> None:
    merged = GraderErrors.merged(
        {"a": GraderErrors(timeout_error=True, details="slow"), "b": GraderErrors(other_error=True)}
    )
    assert merged.raised() == ["other_error", "timeout_error"] and merged.details == "a: slow"


def test_to_plain_has_every_field() -> None:
    plain = GraderResult(reward=1.0, metadata=_meta()).to_plain()
    assert set(plain["metadata"]["errors"]) == set(GraderErrors.__struct_fields__)
    assert set(plain["metadata"]) == {*ResultMetadata.__struct_fields__, "valid"}
    assert plain["sub_rewards"] == {} and plain["metadata"]["valid"] is True


TEXTS = ["", "plain answer", "42", " -3.5e2 ", '{"a": [1, 2]}', "\n\t[1, 2]", "true", "null", "NaN",
         "{not json", "12 apples", "Infinity and beyond", "true story"]  # fmt: skip


@pytest.mark.parametrize("text", TEXTS)
def test_as_grader_dict_parses_the_text_only_when_it_is_json(text: str) -> None:
    import json

    got = Sample(output_text=text).as_grader_dict()
    try:
        want = json.loads(text)
    except json.JSONDecodeError:
        want = None
    assert got == {"output_text": text, "output_json": want, "output_tools": [], "choices": []} or (
        want != want and math.isnan(got["output_json"])  # NaN
    )


def test_samples_from_data_check_their_types() -> None:
    assert Sample.from_data("x") == Sample(output_text="x")
    assert Sample.from_data({"output_text": "x", "choices": [{"index": 0}]}).choices == [{"index": 0}]
    with pytest.raises(ValueError, match="invalid sample"):
        Sample.from_data({"output_text": 5})
    with pytest.raises(SampleParseError):
        Sample(output_text="not json").parsed_json()
    assert Sample(output_text="x", output_json={"given": 1}).parsed_json() == {"given": 1}


def test_graded_batch_keeps_only_results_with_more_than_a_reward() -> None:
    plain = [
        GraderResult(reward=r, metadata=_meta(passes={"pass": r >= 0.5}, execution_time=0.1))
        for r in (0.2, 0.9)
    ]
    ranked = GraderResult(reward=1.0, metadata=_meta(scores={"rank": 1.0}, passes={"pass": True}))
    failed = GraderResult.failure("g", "t", "timeout_error", "slow")
    graded = GradedBatch.from_results("g", "t", [*plain, ranked, failed], pass_threshold=0.5)
    assert graded.rewards == [0.2, 0.9, 1.0, 0.0] and sorted(graded.results) == [2, 3]
    assert graded.to_results()[:2] == plain and graded.result(2) is ranked
    assert graded.error_indices() == [3] and graded.valid() == [True, True, True, False]
    other = GradedBatch.from_results("g", "t", [failed], pass_threshold=0.5)
    graded.extend(other)
    assert graded.rewards[-1] == 0.0 and graded.error_indices() == [3, 4]
    # without a threshold, a pass flag is more than the reward says
    assert GradedBatch.from_results("g", "t", plain).results.keys() == {0, 1}


def test_declared_metrics_union_keeps_order_without_repeats() -> None:
    a = DeclaredMetrics(scores=("rank",), passes=("top1", "pass"))
    assert (a | DeclaredMetrics(passes=("pass", "anywhere"))).passes == ("top1", "pass", "anywhere")


def test_item_table_sends_a_shared_item_once() -> None:
    from rftkit.core.records import item_table

    a, b = {"q": 1}, {"q": 1}  # equal content, two objects: two entries (identity is what counts)
    assert item_table([a, a, b, a]) == ([a, b], [0, 0, 1, 0])
    distinct, index = item_table([a, b])
    assert distinct[0] is a and distinct[1] is b and index == [0, 1]
    assert item_table([]) == ([], [])


def test_a_batchs_results_are_the_ones_result_builds_and_each_its_own() -> None:
    ranked = GraderResult(reward=1.0, metadata=_meta(scores={"rank": 1.0}))
    for threshold in (None, 0.5):
        graded = GradedBatch(
            name="g", type="t", rewards=[0.2, 0.9, 1.0, 1], results={2: ranked}, pass_threshold=threshold
        )
        results = graded.to_results()
        assert results == [graded.result(i) for i in range(4)] and results[2] is ranked
        assert type(results[3].reward) is float  # an int reward is converted, as GraderResult does
        results[0].metadata.passes["x"] = True
        results[0].metadata.errors.other_error = True
        results[0].sub_rewards["s"] = 0.5
        assert results[1] == graded.result(1)  # no container is shared between two samples
    with pytest.raises(ValueError, match="reward must be"):
        GradedBatch(name="g", type="t", rewards=[2.0]).to_results()
