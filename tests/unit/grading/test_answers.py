"""What graders see of a completion: thinking stripped, JSON parsed under a response_format."""

from __future__ import annotations

from rftkit.grading.answers import final_answer, split_reasoning, to_sample


def test_think_blocks_are_stripped_only_with_reasoning() -> None:
    text = "<think>first a, then b</think> answer <think>more</think>"
    assert final_answer(text, reasoning=True) == "answer"
    assert final_answer(text, reasoning=False) == text
    assert final_answer("<think>never closed, the answer", reasoning=True) == ""


def test_response_format_fills_output_json() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    sample = to_sample('<think>hm</think>{"gene": "BRCA1"}', reasoning=True, response_format=schema)
    assert sample.output_json == {"gene": "BRCA1"} and sample.output_text == '{"gene": "BRCA1"}'
    assert to_sample("not json", response_format=schema).output_json is None
    assert to_sample('{"a": 1}').output_json is None  # no schema asked: text only


def test_train_and_eval_see_the_same_answer() -> None:
    # Once trainer and eval disagreed here: training graded "B", eval the whole string.
    assert final_answer("B <think>x</think>") == "B"
    assert split_reasoning("B <think>x</think>") == ("x", "B")
    assert split_reasoning('<think>a\nb</think>\n{"x": 1}') == ("a\nb", '{"x": 1}')
    assert split_reasoning("plain") == (None, "plain")
    assert split_reasoning("<think>still thinking") == ("still thinking", "")


def test_deeply_nested_json_is_no_answer_not_a_crash() -> None:
    schema = {"type": "json_schema"}
    assert to_sample("[" * 50_000 + "]" * 50_000, response_format=schema).output_json is None
