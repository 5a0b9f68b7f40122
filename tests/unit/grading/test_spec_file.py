"""Grader files for `rft eval --grader`: JSON specs and Python grader files."""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.evals.spec import GraderFileError, load_grader_spec


def test_json_and_python_grader_files(tmp_path: Path) -> None:
    spec = tmp_path / "g.json"
    spec.write_text(
        '{"type": "string_check", "name": "x", "input": "a", "reference": "a", "operation": "eq"}'
    )
    assert load_grader_spec(spec)["type"] == "string_check"
    source = "def grade(sample, item):\n    return 1.0\n"
    py = tmp_path / "my_grader.py"
    py.write_text(source)
    assert load_grader_spec(py) == {"type": "python", "name": "my_grader", "source": source}


@pytest.mark.parametrize(("text", "message"), [("{oops", "not valid JSON"), ("[1]", 'needs|"type"')])
def test_bad_grader_files(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "g.json"
    bad.write_text(text)
    with pytest.raises(GraderFileError, match=message):
        load_grader_spec(bad)
    with pytest.raises(GraderFileError, match="no such grader file"):
        load_grader_spec(tmp_path / "missing.json")
