"""The unvalidated fast paths of the grader contract give exactly what the validated ones give."""

from __future__ import annotations

import json

import pytest
from rftkit.plugins.base import GraderErrors, GraderResult, ResultMetadata, Sample, fast_result


@pytest.mark.parametrize("passes", [{}, {"pass": True}, {"pass": False}])
def test_fast_result_equals_validated(passes: dict[str, bool]) -> None:
    fast = fast_result(0.25, "g", "python", 1.5e-5, passes)
    slow = GraderResult(
        reward=0.25,
        sub_rewards={},
        metadata=ResultMetadata(name="g", type="python", execution_time=1.5e-5, scores={}, passes=passes),
    )
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json(exclude_defaults=True) == slow.model_dump_json(exclude_defaults=True)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.metadata.model_fields_set == slow.metadata.model_fields_set
    assert not fast.metadata.errors.__pydantic_fields_set__ and fast.metadata.errors.raised() == []
    # every field of the models is there (a field added to ResultMetadata must be added to fast_result)
    assert set(vars(fast.metadata)) == set(ResultMetadata.model_fields)
    assert set(vars(fast.metadata.errors)) == set(GraderErrors.model_fields)


def test_fast_results_do_not_share_mutable_parts() -> None:
    one, two = fast_result(1.0, "g", "python", 0.0, {}), fast_result(1.0, "g", "python", 0.0, {})
    one.metadata.errors.other_error = True
    one.metadata.scores["x"] = 1.0
    assert not two.metadata.errors.other_error and two.metadata.scores == {}


def _reference(sample: Sample) -> dict:
    """What as_grader_dict returned before its fast paths: model_dump plus json.loads of the text."""
    data = sample.model_dump()
    if data.get("output_json") is None:
        try:
            data["output_json"] = json.loads(sample.output_text)
        except (json.JSONDecodeError, TypeError):
            data["output_json"] = None
    return data


TEXTS = [
    "",
    "   ",
    "plain answer",
    "Paris",
    "42",
    " -3.5e2 ",
    '"quoted"',
    '{"a": [1, 2]}',
    "\n\t[1, 2, 3]",
    "true",
    "false",
    "null",
    "nul",
    "NaN",
    "Infinity",
    "-Infinity",
    "{not json",
    "\ufeff{}",
    "t",
    "12 apples",
    "the answer is 4",
    "no",
    "fine",
    "none",
    "In short: yes",
    "Infinity and beyond",
    "true story",
    " \n null",
]


@pytest.mark.parametrize("text", TEXTS)
def test_as_grader_dict_matches_reference(text: str) -> None:
    sample = Sample(output_text=text)
    got = sample.as_grader_dict()
    want = _reference(sample)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert list(got) == list(want)


def test_as_grader_dict_with_tools_choices_extras_and_json() -> None:
    for sample in (
        Sample(output_text="x", output_tools=[{"name": "f"}]),
        Sample(output_text="[1]", choices=[{"index": 0}]),
        Sample(output_text="x", extra_field=1),
        Sample(output_text="x", output_json={"given": True}),
    ):
        assert sample.as_grader_dict() == _reference(sample)
