"""The learning proof, end to end: `rft train examples/tiny/config.yaml` on CPU, then kill -9 and resume.

The first test runs the example exactly as a user would (a subprocess of the real CLI, the
embedded grader service, vLLM when installed) and asserts that validation reward, on answers
never seen in training, rises clearly above its starting value. The second kills a run with
SIGKILL after its first checkpoint and checks that the same command resumes from it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "tiny" / "config.yaml"
RFT = [sys.executable, "-c", "from rftkit.cli.main import main; main()"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One model cache for the module, so the tiny base model is built once."""
    return {**os.environ, "RFTKIT_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONUNBUFFERED": "1"}


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def test_tiny_example_learns_the_rule(tmp_path: Path, cache_env: dict[str, str]) -> None:
    run = tmp_path / "run"
    started = time.monotonic()
    done = subprocess.run([*RFT, "train", str(CONFIG), "--output-dir", str(run), "--no-progress"],
                          env=cache_env, capture_output=True, text=True, timeout=880)  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resolved configuration" in done.stdout
    events = _events(run)
    assert [e["step"] for e in events] == list(range(len(events)))
    assert all(isinstance(e["train_reward_mean"], float) for e in events)
    valid = [(e["step"], e["valid_reward_mean"]) for e in events if "valid_reward_mean" in e]
    start, best = valid[0][1], max(v for _, v in valid[1:])
    print(f"valid reward: start {start:.3f}, best {best:.3f}, curve {valid}, {elapsed:.0f} s")
    assert best >= start + 0.25 and best >= 2 * start, valid
    assert "timing" in events[-1] and {
        "sampling",
        "grading",
        "training",
        "weight_sync",
        "step",
        "eval",
    } <= set(events[-1]["timing"])
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert 1 <= len(kept) <= 4, kept
    _final_model_loads(run / "final", events)


def _final_model_loads(final: Path, events: list[dict]) -> None:
    """DIR/final loads in transformers and in vLLM (through the rollout helper `rft eval` uses too)."""
    import torch
    from rftkit.trainer.chat import chat_prompt_ids
    from rftkit.trainer.rollout.engine import vllm_available
    from rftkit.trainer.rollout.generate import generate_texts
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    lines = [json.loads(x) for x in (CONFIG.parent / "valid.jsonl").read_text().splitlines()[:16]]
    ids = chat_prompt_ids(tokenizer, lines[0]["messages"])
    out = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    assert out.shape[1] > len(ids)
    if vllm_available():
        texts = generate_texts(str(final), [x["messages"] for x in lines], n=4, max_tokens=4, engine="vllm")
        assert [len(t) for t in texts] == [4] * 16
        right = sum(t == x["answer"] for x, group in zip(lines, texts, strict=True) for t in group) / 64
        assert right > events[0]["valid_reward_mean"]  # the trained weights, not the base model's


def test_kill_9_then_the_same_command_resumes(tmp_path: Path, cache_env: dict[str, str]) -> None:
    run = tmp_path / "run"
    command = [*RFT, "train", str(CONFIG), "--output-dir", str(run), "--no-progress",
               "--set", "trainer.max_steps=30", "--set", "hyperparameters.eval_interval=10"]  # fmt: skip
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        command, env=cache_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 600
    while not (run / "checkpoints" / "step_000010" / "meta.json").exists():
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into the next steps
    os.killpg(first.pid, signal.SIGKILL)  # the trainer and its embedded grader service
    first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (run / "final").exists()
    second = subprocess.run(command, env=cache_env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Resuming from checkpoint" in second.stdout and "step_0000" in second.stdout
    resumed_from = int(second.stdout.split("Resuming from checkpoint")[1].split("(step ")[1].split()[0])
    assert resumed_from >= 10
    events = _events(run)
    assert [e["step"] for e in events] == list(range(31))  # no step lost or repeated
    assert (run / "final" / "config.json").is_file()
