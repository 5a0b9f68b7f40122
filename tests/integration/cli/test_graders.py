"""`rft graders validate|run|types` as a user runs them, on grader specs from OpenAI's graders guide.

Specs below are copied from OpenAI's public graders guide and API reference (string_check,
text_similarity, python, multi for tool calls, score_model, label_model); each runs through the
real `rft` console script in a child process and must give the documented reward and shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RFT = str(Path(sys.executable).with_name("rft"))
RESULT_KEYS = {"reward", "sub_rewards", "metadata"}
OPENAI_FLAGS = {
    "formula_parse_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
    "invalid_variable_error",
    "other_error",
    "python_grader_server_error",
    "python_grader_server_error_type",
    "python_grader_runtime_error",
    "python_grader_runtime_error_details",
    "model_grader_server_error",
    "model_grader_refusal_error",
    "model_grader_parse_error",
    "model_grader_server_error_details",
}

STRING_CHECK = {
    "type": "string_check",
    "name": "Example string check grader",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "operation": "eq",
}
TEXT_SIMILARITY = {
    "type": "text_similarity",
    "name": "Example text similarity grader",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "evaluation_metric": "fuzzy_match",
}
PYTHON_SOURCE = """from rapidfuzz import fuzz, utils

def grade(sample, item) -> float:
    output_text = sample["output_text"]
    reference_answer = item["reference_answer"]
    return fuzz.WRatio(output_text, reference_answer, processor=utils.default_process) / 100.0
"""
TOOL_CALL_MULTI = {
    "type": "multi",
    "graders": {
        "name": {
            "name": "name",
            "type": "string_check",
            "input": "{{sample.output_tools[0].function.name}}",
            "reference": "{{item.name}}",
            "operation": "eq",
        },
        "arguments": {
            "name": "arguments",
            "type": "string_check",
            "input": "{{sample.output_tools[0].function.arguments}}",
            "reference": "{{item.arguments}}",
            "operation": "eq",
        },
    },
    "calculate_output": "0.5 * name + 0.5 * arguments",
}
SCORE_MODEL = {
    "type": "score_model",
    "name": "Example score model grader",
    "input": [
        {
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "Score how close the reference answer is to the model answer on a 0-1 scale. "
                    "Return only the score.\n\nReference answer: {{item.reference_answer}}\n\n"
                    "Model answer: {{sample.output_text}}",
                }
            ],
        }
    ],
    "model": "gpt-5-mini",
    "sampling_params": {"temperature": 1, "top_p": 1, "seed": 42},
}
LABEL_MODEL = {
    "type": "label_model",
    "name": "sentiment",
    "model": "gpt-4o-2024-08-06",
    "input": [
        {
            "role": "developer",
            "content": "Classify the sentiment of the following statement as one of "
            "'positive', 'neutral', or 'negative'",
        },
        {"role": "user", "content": "Statement: {{item.response}}"},
    ],
    "passing_labels": ["positive"],
    "labels": ["positive", "neutral", "negative"],
}
BEAR = {"reference_answer": "fuzzy wuzzy was a bear"}


def rft(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RFT, "graders", *args], capture_output=True, text=True, timeout=120, env=env or os.environ.copy()
    )


def run_ok(*args: str, **kwargs: Any) -> dict[str, Any]:
    proc = rft(*args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # exactly one JSON object on stdout


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def check_shape(result: dict[str, Any], name: str, type_: str) -> None:
    assert set(result) == RESULT_KEYS
    meta = result["metadata"]
    assert (meta["name"], meta["type"]) == (name, type_)
    assert set(meta["errors"]) >= OPENAI_FLAGS and meta["execution_time"] >= 0


def test_types_lists_the_built_ins() -> None:
    listed = {t["name"]: t for t in run_ok("types")["types"]}
    for name in (
        "string_check",
        "text_similarity",
        "score_model",
        "label_model",
        "python",
        "multi",
        "ranked_list",
    ):
        assert listed[name]["distribution"] == "rftkit" and "error" not in listed[name]


@pytest.mark.parametrize(
    ("operation", "sample", "reward"),
    [
        ("eq", "fuzzy wuzzy was a bear", 1.0),
        ("eq", "Fuzzy wuzzy was a bear", 0.0),
        ("ne", "Fuzzy wuzzy was a bear", 1.0),
        ("like", "I know: fuzzy wuzzy was a bear!", 1.0),
        ("ilike", "FUZZY WUZZY WAS A BEAR", 1.0),
        ("like", "FUZZY WUZZY WAS A BEAR", 0.0),
    ],
)
def test_string_check_guide_example(tmp_path: Path, operation: str, sample: str, reward: float) -> None:
    spec = write(tmp_path, "grader.json", {**STRING_CHECK, "operation": operation})
    result = run_ok("run", spec, "--sample", sample, "--item", json.dumps(BEAR))
    check_shape(result, "Example string check grader", "string_check")
    assert result["reward"] == reward and not any(v is True for v in result["metadata"]["errors"].values())


def test_text_similarity_guide_example_and_files(tmp_path: Path) -> None:
    spec = write(tmp_path, "grader.json", {**TEXT_SIMILARITY, "pass_threshold": 0.8})
    sample = write(tmp_path, "sample.txt", "fuzzy wuzzy was a bear\n")  # the file's final newline is dropped
    item = write(tmp_path, "item.json", BEAR)
    result = run_ok("run", spec, "--sample", f"@{sample}", "--item", f"@{item}")
    check_shape(result, "Example text similarity grader", "text_similarity")
    assert result["reward"] == 1.0 and result["metadata"]["passes"] == {"pass": True}
    # OpenAI's /graders/run body shape ({"grader": ...}) is accepted as a spec file too
    wrapped = write(tmp_path, "wrapped.json", {"grader": TEXT_SIMILARITY, "item": BEAR})
    partial = run_ok("run", wrapped, "--sample", "fuzzy wuzzy", "--item", json.dumps(BEAR))
    assert 0.0 < partial["reward"] < 1.0


def test_python_guide_example_in_a_child_process(tmp_path: Path) -> None:
    source = write(tmp_path, "fuzzy.py", PYTHON_SOURCE)
    validated = run_ok("validate", source)
    assert validated["valid"] and validated["type"] == "python" and validated["name"] == "fuzzy"
    result = run_ok(
        "run",
        source,
        "--sample",
        "fuzzy wuzzy was a bear",
        "--item",
        json.dumps(BEAR),
        "--sandbox",
        "process",
    )
    check_shape(result, "fuzzy", "python")
    assert result["reward"] == 1.0


def test_python_grader_without_a_sandbox_is_flagged_not_run_bare(tmp_path: Path) -> None:
    source = write(tmp_path, "fuzzy.py", PYTHON_SOURCE)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "DOCKER_HOST": "unix:///nonexistent.sock"}
    result = run_ok("run", source, "--sample", "x", "--item", json.dumps(BEAR), env=env)
    errors = result["metadata"]["errors"]
    assert result["reward"] == 0.0 and errors["python_grader_server_error"] is True
    assert "no sandbox" in errors["details"]


def test_multi_tool_call_guide_example(tmp_path: Path) -> None:
    spec = write(tmp_path, "grader.json", {"name": "tool call", **TOOL_CALL_MULTI})
    call = {
        "output_tools": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ]
    }
    item = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    full = run_ok("run", spec, "--sample-object", json.dumps(call), "--item", json.dumps(item))
    check_shape(full, "tool call", "multi")
    assert full["reward"] == 1.0 and full["sub_rewards"] == {"name": 1.0, "arguments": 1.0}
    half = run_ok(
        "run",
        spec,
        "--sample-object",
        json.dumps(call),
        "--item",
        json.dumps({**item, "arguments": '{"city":"Rome"}'}),
    )
    assert half["reward"] == 0.5


def test_score_model_guide_example(tmp_path: Path, judge) -> None:
    spec = write(tmp_path, "grader.json", SCORE_MODEL)
    args = ["run", spec, "--item", json.dumps(BEAR), "--judge-url", judge.url]
    same = run_ok(*args, "--sample", "fuzzy wuzzy was a bear")
    check_shape(same, "Example score model grader", "score_model")
    assert same["reward"] == 1.0 and same["metadata"]["sampled_model_name"] == "gpt-5-mini-double"
    assert run_ok(*args, "--sample", "a bear")["reward"] == 0.0
    assert judge.requests[0]["body"]["seed"] == 42


@pytest.mark.parametrize(
    ("statement", "reward"), [("I love this", 1.0), ("I hate it", 0.0), ("It is a box", 0.0)]
)
def test_label_model_guide_example(tmp_path: Path, judge, statement: str, reward: float) -> None:
    spec = write(tmp_path, "grader.json", LABEL_MODEL)
    result = run_ok(
        "run",
        spec,
        "--sample",
        "unused",
        "--item",
        json.dumps({"response": statement}),
        "--judge-url",
        judge.url,
    )
    check_shape(result, "sentiment", "label_model")
    assert result["reward"] == reward and result["metadata"]["label"] in LABEL_MODEL["labels"]


def test_ranked_list(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "grader.json",
        {
            "type": "ranked_list",
            "name": "gene rank",
            "input": "{{sample.output_json.genes}}",
            "reference": "{{item.gene}}",
            "synonyms": "{{item.synonyms}}",
        },
    )
    item = json.dumps({"gene": "FBN1", "synonyms": ["MFS1"]})
    result = run_ok("run", spec, "--sample", '{"genes": ["TGFBR2", "mfs1", "COL3A1"]}', "--item", item)
    check_shape(result, "gene rank", "ranked_list")
    assert result["reward"] == pytest.approx(0.7)
    assert result["metadata"]["scores"]["rank"] == 2
    assert result["metadata"]["passes"] == {"top1": False, "top5": True, "anywhere": True}
    broken = run_ok("run", spec, "--sample", "FBN1 is my guess", "--item", item)
    assert broken["reward"] == 0.0 and broken["metadata"]["errors"]["sample_parse_error"] is True


def test_validate_reports_and_refuses(tmp_path: Path) -> None:
    good = run_ok("validate", write(tmp_path, "ok.json", {"name": "tool call", **TOOL_CALL_MULTI}))
    assert good["valid"] and good["spec"]["graders"]["name"]["operation"] == "eq"
    risky = write(tmp_path, "risky.py", "import subprocess\n\ndef grade(sample, item):\n    return 1.0\n")
    assert run_ok("validate", risky)["warnings"]
    strict = rft("validate", "--strict", risky)
    assert (
        strict.returncode == 2 and "strict" in strict.stderr and json.loads(strict.stdout)["valid"] is False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{missing}", "--sample", "x"], "no such file"),
        (["run", "{spec}", "--sample", "x", "--item", "{{not json"], "--item is not valid JSON"),
        (["run", "{spec}", "--sample", "x", "--item", "[1, 2]"], "--item must be a JSON object"),
        (["run", "{spec}", "--item", "{{}}"], "exactly one of --sample"),
        (["run", "{spec}", "--sample", "x", "--sample-object", "{{}}"], "exactly one of --sample"),
        (["run", "{spec}", "--sample", "@{missing}"], "cannot read"),
        (["run", "{bad_formula}", "--sample", "x"], "calculate_output: expected"),
        (["run", "{spec}", "--sample", "x", "--sandbox", "chroot"], "Invalid value for '--sandbox'"),
        (["validate", "{bad_python}"], "exactly two positional arguments"),
        (["validate", "{not_json}"], "is not valid JSON"),
        (["validate", "{unknown_type}"], "unknown grader type 'regex_check'"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    paths = {
        "spec": write(tmp_path, "spec.json", STRING_CHECK),
        "missing": str(tmp_path / "missing.json"),
        "bad_formula": write(
            tmp_path, "f.json", {**TOOL_CALL_MULTI, "name": "m", "calculate_output": "name +"}
        ),
        "bad_python": write(tmp_path, "g.py", "def grade(sample):\n    return 1.0\n"),
        "not_json": write(tmp_path, "n.json", "{'single': 'quotes'}"),
        "unknown_type": write(tmp_path, "u.json", {"type": "regex_check", "name": "r"}),
    }
    proc = rft(*[arg.format(**paths) for arg in args])
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr
