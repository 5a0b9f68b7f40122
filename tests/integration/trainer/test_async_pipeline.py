"""The async pipeline end to end: `rft train` with rollout.max_staleness 1 on the tiny model.

Batches run one policy version ahead (the first is on-policy, the rest one update old), every
event says which version sampled its batch, and the importance-sampling correction is logged
where the engine gives logprobs (vLLM). With transformers' engine (which samples the live
policy) the producer waits for each update, and the versions are still recorded truthfully.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rftkit.cli.train import train
from rftkit.trainer.rollout.engine import vllm_available

pytestmark = pytest.mark.timeout(600)
WORDS = ["bako", "mire", "tupo", "lesa", "gani", "vazu", "defo", "ruki"]


def _line(i: int) -> dict:
    words = WORDS[i % 8 :] + WORDS[: i % 8]
    return {"messages": [{"role": "user", "content": f"Which word is first?\n{','.join(words)}"}],
            "answer": words[0]}  # fmt: skip


def _run(tmp_path: Path, model_dir: Path, engine: str, steps: int = 5) -> list[dict]:
    for name, count in (("train", 16), ("valid", 4)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(_line(i)) + "\n" for i in range(count)))
    config = {
        "model": {"path": str(model_dir), "dtype": "float32"},
        "data": {"train_file": "train.jsonl", "valid_file": "valid.jsonl"},
        "grader": {
            "spec": {
                "type": "string_check",
                "name": "first",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "operation": "eq",
            }
        },
        "rollout": {
            "engine": engine,
            "n": 4,
            "max_tokens": 4,
            "max_staleness": 1,
            "kv_cache_memory_bytes": 64 * 2**20,
        },
        "trainer": {"max_steps": steps, "threads": 1, "learning_rate": 1e-3},
        "hyperparameters": {"batch_size": 4, "eval_interval": steps, "eval_samples": 2},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = CliRunner().invoke(train, [str(path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if x.strip()]


def _check_versions(events: list[dict], steps: int) -> None:
    assert [e["step"] for e in events] == list(range(steps + 1))
    trained = events[1:]
    for event in trained:
        assert 0 <= event["staleness"] <= 1
        assert event["policy_version"] == event["step"] - 1 - event["staleness"]
        assert 0.0 <= event["rollout_wait_share"] <= 1.0 and 0.0 <= event["grading_wait_share"] <= 1.0
        assert {"weight_sync", "weight_sync_wait", "rollout_wait", "grading_wait"} <= set(event["timing"])
    assert trained[0]["staleness"] == 0  # nothing to run ahead of yet
    assert "valid_reward_mean" in events[-1]


@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")
def test_vllm_batches_run_one_version_ahead_with_correction_logged(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    events = _run(tmp_path, tiny_model_dir, "vllm")
    _check_versions(events, 5)
    assert any(e["staleness"] == 1 for e in events[1:])
    for event in events[1:]:
        assert 0.0 <= event["tis_clipped_fraction"] <= 1.0
        assert 0.5 < event["tis_ratio_mean"] < 2.0  # one small update apart


def test_transformers_engine_waits_for_each_update(tmp_path: Path, tiny_model_dir: Path) -> None:
    events = _run(tmp_path, tiny_model_dir, "transformers", steps=4)
    _check_versions(events, 4)
    assert all("tis_ratio_mean" not in e for e in events[1:])  # no engine logprobs, no correction
