"""An error is not a zero, end to end: `rft train` against a real Python grader that crashes on some samples.

The grader runs in the embedded grader service's sandbox (namespace where built, else process) and
raises for a fixed share of sample texts (picked by a checksum of the text). With about 20 % of
samples crashing the run completes and the events show those samples counted apart and left out
of the rewards and the update; with about 90 % crashing the run stops at its first batch with a
message naming the error kind, and `rft train` exits 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rftkit.cli.train import train

pytestmark = pytest.mark.timeout(600)
WORDS = ["bako", "mire", "tupo", "lesa", "gani", "vazu", "defo", "ruki"]
# Valid samples score 0.8 or 1.0, so a reward mean below 0.8 could only come from failures counted as 0.
GRADER = """
def grade(sample, item):
    text = sample["output_text"]
    if {crash}:
        raise ValueError("grader crashed on purpose")
    return 1.0 if len(text) % 2 else 0.8
"""
CHECKSUM = "(sum(map(ord, text)) + 1) % {mod}"


def _line(i: int) -> dict:
    words = WORDS[i % 8 :] + WORDS[: i % 8]
    return {"messages": [{"role": "user", "content": f"Which word is first?\n{','.join(words)}"}]}


def _train(tmp_path: Path, model_dir: Path, sandbox: str, crash: str):
    for name, count in (("train", 8), ("valid", 4)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(_line(i)) + "\n" for i in range(count)))
    config = {
        "model": {"path": str(model_dir), "dtype": "float32"},
        "data": {"train_file": "train.jsonl", "valid_file": "valid.jsonl"},
        "grader": {
            "spec": {"type": "python", "name": "crashy", "source": GRADER.format(crash=crash)},
            "sandbox": sandbox,
        },
        "rollout": {"engine": "transformers", "n": 4, "max_tokens": 4, "temperature": 1.0},
        "trainer": {"max_steps": 3, "threads": 1, "learning_rate": 1e-3},
        "hyperparameters": {"batch_size": 4, "eval_interval": 3, "eval_samples": 2},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    return CliRunner().invoke(train, [str(path), "-o", str(out), "--no-progress"]), out


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]


def test_a_grader_crashing_on_a_fifth_of_samples_leaves_them_out(
    tmp_path: Path, tiny_model_dir: Path, sandbox: str
) -> None:
    result, out = _train(tmp_path, tiny_model_dir, sandbox, CHECKSUM.format(mod=5) + " == 0")
    assert result.exit_code == 0, result.output
    events = _events(out)
    assert [e["step"] for e in events] == [0, 1, 2, 3]
    invalid = 0
    for event in events:
        for prefix in ("train", "valid") if "valid_samples" in event else ("train",):
            bad, total = event[f"{prefix}_invalid_samples"], event[f"{prefix}_samples"]
            assert event[f"{prefix}_errors"].get("python_grader_runtime_error", 0) == bad
            assert event[f"{prefix}_valid_fraction"] == pytest.approx(1 - bad / total)
            assert event[f"{prefix}_reward_mean"] >= 0.8  # the crashed samples are not averaged in as 0
            invalid += bad
        if event["step"] > 0:
            valid = event["train_samples"] - event["train_invalid_samples"]
            # every valid sample is trained on, except one alone in its group; no invalid one is
            assert valid - event["no_update_groups"] <= event["trained_samples"] <= valid
    samples = sum(e["train_samples"] for e in events) + sum(e.get("valid_samples", 0) for e in events)
    assert 0.05 < invalid / samples < 0.5, (invalid, samples)
    # the check above has teeth: some batch had so many crashes that zeros would pull its mean below 0.8
    assert any(e["train_invalid_samples"] > 0.2 * e["train_samples"] for e in events)
    assert (out / "final" / "config.json").is_file()


def test_a_grader_failing_on_nine_in_ten_samples_stops_the_run(
    tmp_path: Path, tiny_model_dir: Path, sandbox: str
) -> None:
    result, out = _train(tmp_path, tiny_model_dir, sandbox, CHECKSUM.format(mod=10) + " != 0")
    assert result.exit_code == 1, result.output
    assert "step 0: validation" in result.output and "have no valid reward" in result.output
    assert "python_grader_runtime_error" in result.output and "grader crashed on purpose" in result.output
    assert "grader.max_invalid_fraction=0.5" in result.output
    assert not (out / "final").exists()
