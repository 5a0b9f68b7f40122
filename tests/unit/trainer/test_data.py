"""Dataset lines, the loader's error report, the answer-overlap check and group-disjoint splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rftkit.cli.data import data
from rftkit.trainer.data.loader import DatasetError, load_dataset
from rftkit.trainer.data.schema import DatasetLine
from rftkit.trainer.data.split import answer_overlap, group_split


def _line(answer: str, group: str = "g", **extra) -> dict:
    return {
        "messages": [{"role": "user", "content": f"q {answer}"}],
        "answer": answer,
        "group": group,
        **extra,
    }


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_line_keeps_reference_fields_and_schema() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    line = DatasetLine.model_validate(_line("x", response_format=schema, extra={"k": 1}))
    assert line.item()["answer"] == "x" and line.item()["extra"] == {"k": 1}
    assert line.response_format == schema
    assert line.chat() == [{"role": "user", "content": "q x"}]


def test_loader_names_file_and_line_of_every_bad_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.jsonl",
        [_line("a"), "{not json", {"messages": []}, [1, 2], {"messages": [{"role": "robot", "content": "x"}]},
         {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
    )  # fmt: skip
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    problems = info.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6"]
    assert all(p.startswith(str(path)) for p in problems)
    assert "not JSON" in problems[0] and "expected a JSON object" in problems[2]


def test_overlap_and_split(tmp_path: Path) -> None:
    lines = [DatasetLine.model_validate(_line(f"a{i % 10}", group=f"a{i % 10}")) for i in range(100)]
    train, valid = group_split(lines, "answer", valid_fraction=0.2, seed=3)
    assert len(train) + len(valid) == 100 and 20 <= len(valid) <= 30
    assert answer_overlap(train, valid, "answer") == []
    assert group_split(lines, "answer", valid_fraction=0.2, seed=3) == (train, valid)  # deterministic
    assert answer_overlap(lines[:50], lines[50:], "answer") == [f"a{i}" for i in range(10)]


def test_cli_validate_fails_on_overlap_and_lists_it(tmp_path: Path) -> None:
    train = _write(tmp_path / "t.jsonl", [_line("x"), _line("y")])
    valid = _write(tmp_path / "v.jsonl", [_line("y"), _line("z")])
    result = CliRunner().invoke(data, ["validate", str(train), str(valid), "--answer-field", "answer"])
    assert result.exit_code == 2 and "both files: y." in result.output
    assert "1 answer(s)" in result.output
    ok = _write(tmp_path / "v2.jsonl", [_line("z")])
    result = CliRunner().invoke(data, ["validate", str(train), str(ok), "--answer-field", "answer"])
    assert result.exit_code == 0, result.output
    bad = _write(tmp_path / "bad.jsonl", [_line("x"), "nope"])
    result = CliRunner().invoke(data, ["validate", str(bad)])
    assert result.exit_code == 2 and f"{bad}:2" in result.output


def test_cli_split_is_group_disjoint(tmp_path: Path) -> None:
    source = _write(tmp_path / "all.jsonl", [_line(f"w{i}", group=f"g{i % 7}") for i in range(70)])
    out = tmp_path / "out"
    result = CliRunner().invoke(data, ["split", str(source), "--group-by", "group", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    train, valid = load_dataset(out / "train.jsonl"), load_dataset(out / "valid.jsonl")
    groups = lambda lines: {x.item()["group"] for x in lines}  # noqa: E731
    assert groups(train) & groups(valid) == set() and len(train) + len(valid) == 70
    result = CliRunner().invoke(data, ["split", str(source), "--group-by", "missing", "--out-dir", str(out)])
    assert result.exit_code == 2 and "missing" in result.output


def test_label_fields_overlap_by_design_and_the_key_field_is_suggested(tmp_path: Path) -> None:
    from rftkit.trainer.data.split import key_fields, label_values

    def labelled(i: int) -> dict:
        return {
            "messages": [{"role": "user", "content": f"Is {i} even?"}],
            "label": "yes" if i % 2 == 0 else "no",
            "id": f"q{i}",
        }

    train = _write(tmp_path / "t.jsonl", [labelled(i) for i in range(30)])
    valid = _write(tmp_path / "v.jsonl", [labelled(i) for i in range(30, 40)])
    lines = load_dataset(train) + load_dataset(valid)
    assert label_values(lines, "label") == ["no", "yes"] and label_values(lines, "id") is None
    assert key_fields(lines, exclude=["label"]) == [("id", 40)]
    result = CliRunner().invoke(data, ["validate", str(train), str(valid), "--answer-field", "label"])
    assert result.exit_code == 0, result.output
    assert "'label' holds labels (2 distinct values over 40 lines: no, yes)" in result.output
    assert "expected, not a leak" in result.output
    assert "--answer-field id (40 distinct values, 0 in both files)" in result.output
    # the suggested field is checked as usual: a shared id is refused
    leaky = _write(tmp_path / "v2.jsonl", [labelled(i) for i in range(25, 35)])
    result = CliRunner().invoke(data, ["validate", str(train), str(leaky), "--answer-field", "id"])
    assert result.exit_code == 2 and "5 answer(s) of 'id' appear in both files" in result.output
