"""Issue 13's reproductions through the real `rft` script: OpenAI's packages, 2-minute grades,
tool-call arguments read as JSON, METEOR's synonyms, and imports checked at upload."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RFT = str(Path(sys.executable).with_name("rft"))
pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None and shutil.which("docker") is None, reason="no sandbox tools"
)


def rft(tmp_path: Path, spec: dict, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "grader.json"
    path.write_text(json.dumps(spec))
    return subprocess.run(
        [RFT, "graders", *args[:1], str(path), *args[1:]], capture_output=True, text=True, timeout=300
    )


def test_openai_documented_packages_are_there(tmp_path: Path) -> None:
    source = (
        "import importlib.util\n\ndef grade(sample, item):\n"
        '    names = ["ast_grep_py", "sqlparse", "rdkit", "skbio"]\n'
        "    missing = [m for m in names if importlib.util.find_spec(m) is None]\n"
        "    return 0.0 if missing else 1.0\n"
    )
    done = rft(tmp_path, {"type": "python", "source": source}, "run", "--sample", "x", "--item", "{}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reward"] == 1.0, done.stdout


def test_an_eight_second_grader_is_within_the_limit(tmp_path: Path) -> None:
    source = "import time\n\ndef grade(sample, item):\n    time.sleep(8)\n    return 1.0\n"
    done = rft(tmp_path, {"type": "python", "source": source}, "run", "--sample", "x", "--item", "{}")
    assert json.loads(done.stdout)["reward"] == 1.0, done.stdout


def test_tool_call_arguments_are_read_as_json(tmp_path: Path) -> None:
    spec = {
        "type": "string_check",
        "name": "s",
        "input": "{{sample.output_tools[0].function.arguments.symbols}}",
        "reference": "{{item.symbols}}",
        "operation": "eq",
    }
    sample = {
        "output_text": "",
        "output_tools": [
            {
                "id": "c",
                "type": "function",
                "function": {"name": "extract_symbols", "arguments": '{"symbols": ["Evals"]}'},
            }
        ],
    }
    done = rft(
        tmp_path, spec, "run", "--sample-object", json.dumps(sample), "--item", '{"symbols": ["Evals"]}'
    )
    assert json.loads(done.stdout)["reward"] == 1.0, done.stdout


def test_meteor_has_its_synonym_stage(tmp_path: Path) -> None:
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("no wordnet-base here")
    spec = {
        "type": "text_similarity",
        "name": "m",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference_answer}}",
        "evaluation_metric": "meteor",
    }
    item = '{"reference_answer": "the cat sat on the big mat"}'
    done = rft(tmp_path, spec, "run", "--sample", "the cat sat on the large mat", "--item", item)
    assert json.loads(done.stdout)["reward"] == pytest.approx(0.9985, abs=1e-4)


def test_validate_tries_the_imports_in_the_image(tmp_path: Path) -> None:
    source = "import ast_grep_py\nimport not_a_pkg_anywhere\n\ndef grade(sample, item):\n    return 1.0\n"
    done = rft(tmp_path, {"type": "python", "source": source}, "validate")
    assert done.returncode == 2, done.stdout + done.stderr
    errors = json.loads(done.stdout)["errors"]
    assert len(errors) == 1 and "`import not_a_pkg_anywhere`" in errors[0]
    assert "sandbox image '2025-05-08'" in errors[0]
    fine = rft(
        tmp_path,
        {"type": "python", "source": "import rdkit\n\ndef grade(s, i):\n    return 1.0\n"},
        "validate",
    )
    assert fine.returncode == 0, fine.stdout + fine.stderr
