from __future__ import annotations

from rftkit.grading.trl_adapter import completion_text, rows_to_items


def test_completion_text_from_strings_and_chat_messages() -> None:
    assert completion_text("plain") == "plain"
    chat = [{"role": "assistant", "content": "first"}, {"role": "tool", "content": "x"}]
    assert completion_text(chat) == "first"
    assert (
        completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"text": "b"}]}])
        == "ab"
    )
    assert completion_text([]) == ""


def test_dataset_columns_become_items_and_trl_extras_do_not() -> None:
    columns = {
        "answer": ["1", "2"],
        "meta": [{"k": 1}, {"k": 2}],
        "completion_ids": [[1], [2]],
        "trainer_state": object(),
        "log_metric": print,
        "short": ["only one"],
    }
    assert rows_to_items(2, columns) == [{"answer": "1", "meta": {"k": 1}}, {"answer": "2", "meta": {"k": 2}}]
