"""Prompts that leave no room for the reply are refused before any model starts, by file line."""

from __future__ import annotations

import json

import pytest
from rftkit.trainer.data.loader import load_dataset
from rftkit.trainer.loop import TrainingError, check_prompt_lengths


def test_too_long_prompts_are_named_by_their_line(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": "x" * n}], "answer": "a"} for n in (3, 50, 4)]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n")
    lines = load_dataset(path)
    assert [line.line_number for line in lines] == [1, 3, 4]
    assert "line_number" not in lines[0].item()
    ids = [[0] * len(row["messages"][0]["content"]) for row in rows]
    with pytest.raises(TrainingError, match=r"1 prompt\(s\).*line 3 \(50 tokens\)"):
        check_prompt_lengths(path, lines, ids, context=60, max_tokens=16)
    check_prompt_lengths(path, lines, ids, context=66, max_tokens=16)  # 50 + 16 fits exactly
