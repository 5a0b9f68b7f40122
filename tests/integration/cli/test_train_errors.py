"""`rft train` fails with a clear message and exit 2 for a grader spec the service refuses and for
training data whose answers leak into validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rftkit.cli.train import train

pytestmark = pytest.mark.timeout(240)


def _line(answer: str) -> dict:
    return {
        "messages": [{"role": "user", "content": f"Which word is first?\n{answer},mire"}],
        "answer": answer,
    }


def _run(tmp_path: Path, model_dir: Path, grader: dict, valid_answer: str):
    (tmp_path / "train.jsonl").write_text(json.dumps(_line("bako")) + "\n" + json.dumps(_line("tupo")) + "\n")
    (tmp_path / "valid.jsonl").write_text(json.dumps(_line(valid_answer)) + "\n")
    config = {
        "model": {"path": str(model_dir)},
        "data": {"train_file": "train.jsonl", "valid_file": "valid.jsonl", "answer_field": "answer"},
        "grader": {"spec": grader},
        "rollout": {"engine": "transformers", "n": 2, "max_tokens": 2},
        "trainer": {"max_steps": 1},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(train, [str(path), "-o", str(tmp_path / "out"), "--no-progress"])


def test_refused_grader_spec_exits_2(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
            "operation": "equals"}  # fmt: skip
    result = _run(tmp_path, tiny_model_dir, spec, "gani")
    assert result.exit_code == 2, result.output
    assert "INVALID_ARGUMENT" in result.output and "operation" in result.output


def test_answer_overlap_exits_2_before_training(tmp_path: Path, tiny_model_dir: Path) -> None:
    spec = {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
            "operation": "eq"}  # fmt: skip
    result = _run(tmp_path, tiny_model_dir, spec, "tupo")
    assert (
        result.exit_code == 2
        and "in both training and validation" in result.output
        and "tupo" in result.output
    )
    assert not (tmp_path / "out" / "events.jsonl").exists()
