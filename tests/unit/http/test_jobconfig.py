"""Building a job's `rft train` config: base defaults, hyperparameters, overrides, answer fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rftkit.grader_service.http.errors import APIError
from rftkit.grader_service.http.jobconfig import answer_fields, base_defaults, build_config, check_overlap

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "examples" / "tiny" / "config.yaml"
GRADER = {"type": "string_check", "name": "g", "input": "{{sample.output_text}}",
          "reference": "{{ item.answer }}", "operation": "eq"}  # fmt: skip


def _build(**kwargs):
    args = dict(train_file=Path("/t.jsonl"), valid_file=Path("/v.jsonl"), grader=GRADER, hyperparameters={},
                seed=7, sandbox="process", overrides={})  # fmt: skip
    args.update(kwargs)
    return build_config(base_defaults(str(TINY)), **args)


def test_base_defaults_resolve_paths_and_keep_job_defaults() -> None:
    defaults = base_defaults(str(TINY))
    assert Path(defaults["model"]["tiny"]["warmup_file"]) == (TINY.parent / "warmup.jsonl").resolve()
    assert "grader" not in defaults and defaults["data"] == {"answer_field": "answer"}
    assert defaults["hyperparameters"]["batch_size"] == 8


def test_job_values_override_defaults_and_auto_keeps_them() -> None:
    config = _build(hyperparameters={"batch_size": 4, "n_epochs": "auto"}, overrides={"trainer.max_steps": 3})
    assert config["hyperparameters"]["batch_size"] == 4 and config["hyperparameters"]["n_epochs"] == 2
    assert config["trainer"]["max_steps"] == 3 and config["trainer"]["seed"] == 7
    assert config["grader"] == {"spec": GRADER, "sandbox": "process"}
    assert config["data"] == {"train_file": "/t.jsonl", "valid_file": "/v.jsonl"}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"overrides": {"model.path": "/etc"}}, "not allowed"),
        ({"overrides": {"grader.address": "evil:1"}}, "not allowed"),
        ({"hyperparameters": {"batch_sise": 4}}, "unknown hyperparameter"),
        ({"hyperparameters": {"batch_size": "many"}}, "hyperparameters.batch_size"),
    ],
)
def test_bad_job_settings_are_400s(kwargs, words) -> None:
    with pytest.raises(APIError) as caught:
        _build(**kwargs)
    assert caught.value.status == 400 and words in caught.value.message


def test_answer_fields() -> None:
    assert answer_fields(GRADER, {}, None) == ["answer"]
    assert answer_fields(GRADER, {"data": {"answer_field": "gene"}}, None) == ["gene"]
    assert answer_fields(GRADER, {}, {"answer_field": "label"}) == ["label"]
    multi = {"type": "multi", "graders": {"a": GRADER, "b": {**GRADER, "reference": "{{item.alt}}"}}}
    assert answer_fields(multi, {}, None) == ["answer", "alt"]
    assert answer_fields({"type": "python", "source": "..."}, {}, None) == []


def test_overlap_is_refused(tmp_path) -> None:
    def write(name: str, answers: list[str]) -> Path:
        path = tmp_path / name
        lines = [json.dumps({"messages": [{"role": "user", "content": "q"}], "answer": a}) for a in answers]
        path.write_text("\n".join(lines) + "\n")
        return path

    check_overlap(write("t.jsonl", ["a", "b"]), write("v.jsonl", ["c"]), ["answer"])
    with pytest.raises(APIError) as caught:
        check_overlap(write("t2.jsonl", ["a", "b"]), write("v2.jsonl", ["b", "c"]), ["answer"])
    assert caught.value.code == "answer_overlap" and "'b'" in caught.value.message
