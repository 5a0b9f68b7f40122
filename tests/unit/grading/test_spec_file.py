"""Grader files, read the same way by every command: JSON and YAML specs, Python grader files."""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.grading.spec_file import GraderFileError, load_grader_file


def test_json_and_python_grader_files(tmp_path: Path) -> None:
    spec = tmp_path / "g.json"
    spec.write_text(
        '{"type": "string_check", "name": "x", "input": "a", "reference": "a", "operation": "eq"}'
    )
    assert load_grader_file(spec)["type"] == "string_check"
    source = "def grade(sample, item):\n    return 1.0\n"
    py = tmp_path / "my_grader.py"
    py.write_text(source)
    assert load_grader_file(py) == {"type": "python", "name": "my_grader", "source": source}


@pytest.mark.parametrize(("text", "message"), [("{oops", "not valid JSON"), ("[1]", 'needs|"type"')])
def test_bad_grader_files(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "g.json"
    bad.write_text(text)
    with pytest.raises(GraderFileError, match=message):
        load_grader_file(bad)
    with pytest.raises(GraderFileError, match="no such file"):
        load_grader_file(tmp_path / "missing.json")


def test_yaml_specs_and_openai_run_bodies(tmp_path: Path) -> None:
    yml = tmp_path / "g.yaml"
    yml.write_text("type: string_check\nname: x\ninput: a\nreference: a\noperation: eq\n")
    assert load_grader_file(yml)["operation"] == "eq"
    wrapped = tmp_path / "run.json"  # the body of OpenAI's /graders/run
    wrapped.write_text('{"grader": {"type": "string_check", "name": "w"}, "model_sample": "a"}')
    assert load_grader_file(wrapped) == {"type": "string_check", "name": "w"}


def test_unknown_kinds_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "g.toml"
    toml.write_text("type = 'x'")
    with pytest.raises(GraderFileError, match=r"unknown grader file kind \.toml"):
        load_grader_file(toml)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(GraderFileError, match=r"deep\.json"):
        load_grader_file(deep)
