"""Depth and size bounds of core.records (issue 14 item 3)."""

from __future__ import annotations

import json

import pytest
from rftkit.core.records import (
    MAX_JSON_DEPTH,
    GraderResult,
    Sample,
    SampleParseError,
    clean_text,
    cut_text,
    json_or_none,
    json_too_deep,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (nested(MAX_JSON_DEPTH), False),
        (nested(3 * MAX_JSON_DEPTH), True),
        ("[" * 5000, True),
        ('{"a": "' + "[" * 5000 + '"}', False),  # brackets inside a string do not count
        (json.dumps({"a": ['\\"[' * 300, {"b": [1, 2]}]}), False),  # escaped quotes and backslashes
        ('{"a":' * 300 + "1" + "}" * 300, True),
    ],
)
def test_json_too_deep(text: str, deep: bool) -> None:
    assert json_too_deep(text) is deep
    assert json_too_deep(text.encode()) is deep


def test_deep_text_is_total() -> None:
    assert json_or_none("[" * 5000) is None
    with pytest.raises(SampleParseError, match="nested deeper"):
        Sample(output_text="[" * 5000).parsed_json()
    assert Sample(output_text="[" * 5000).as_grader_dict()["output_json"] is None


def test_texts_cut_and_cleaned() -> None:
    long = "start " + "x" * 100_000 + " the end"
    cut = cut_text(long)
    assert len(cut) < 2100 and cut.startswith("start") and cut.endswith("the end")
    assert clean_text("a\ud800b") == "a\ufffdb"
    failed = GraderResult.failure("g", "python", "python_grader_runtime_error", long)
    assert len(failed.metadata.errors.details or "") < 2100
