"""The eval worker's pure parts: input messages from a template or an item reference, output item status,
and the run's counts per criterion."""

from __future__ import annotations

import pytest
from rftkit.grader_service.http.eval_worker import _item, input_messages, summarize


def test_template_messages_are_rendered_against_the_item() -> None:
    spec = {"type": "template", "template": [
        {"role": "developer", "content": "Answer with one letter."},
        {"role": "user", "content": [{"type": "input_text", "text": "{{item.q}} ({{item.n}})"}]},
    ]}  # fmt: skip
    assert input_messages(spec, {"q": "Which?", "n": 3}) == [
        {"role": "system", "content": "Answer with one letter."},
        {"role": "user", "content": "Which? (3)"},
    ]


def test_item_reference_messages_are_taken_as_they_are() -> None:
    item = {"messages": [{"role": "user", "content": "keep {{this}} literal"}]}
    spec = {"type": "item_reference", "item_reference": "item.messages"}
    assert input_messages(spec, item) == [{"role": "user", "content": "keep {{this}} literal"}]
    with pytest.raises(ValueError, match=r"no item\.prompt"):
        input_messages({"type": "item_reference", "item_reference": "item.prompt"}, item)


def test_status_and_counts() -> None:
    def result(passed: bool, errors: list[str] | None = None) -> dict:
        return {"passed": passed, "errors": errors or []}

    line = {"item": {"a": 1}}
    items = [
        _item(0, line, [result(True), result(True)], {}, None),
        _item(1, line, [result(True), result(False)], {}, None),
        _item(2, line, [result(False, ["python_grader_runtime_error"]), result(False)], {}, None),
        _item(3, line, [result(False), result(False)], {}, "generation failed"),
    ]
    assert [i["status"] for i in items] == ["pass", "fail", "error", "error"]
    summary = summarize([{"name": "a"}, {"name": "b"}], items)
    assert summary["result_counts"] == {"total": 4, "errored": 2, "failed": 1, "passed": 1}
    assert summary["per_testing_criteria_results"] == [
        {"testing_criteria": "a", "passed": 2, "failed": 2},
        {"testing_criteria": "b", "passed": 1, "failed": 3},
    ]
