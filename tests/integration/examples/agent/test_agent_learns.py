"""The agent learning proof, end to end: `rft train examples/agent/config.yaml` on CPU, then `rft eval`.

The run is the example as a user runs it (a subprocess of the real CLI, the embedded grader
service, vLLM when installed), shortened to STEPS RL steps: it starts its own lookup server (a
real HTTP server on a free loopback port) and stops it at the end. Validation asks for keys whose
codes occur nowhere in training, so reward there comes only from calling the tool with the key and
copying its answer. The assertions: validation reward rises clearly from the warmed-up base, the
share of episodes that call the tool with the right key (`called`) rises with it, the events carry
the tool metrics, and `rft eval` on held-out items scores the trained model above its base. The
second test is the same run with the tool as sandboxed Python (examples/agent/python_tool.yaml).

STEPS and the seeds are the example's, chosen on the validation split (examples/agent/README.md
has the measured curve) and then kept fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rftkit.sandbox.testing import require_backend

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "agent"
RFT = [sys.executable, "-c", "from rftkit.cli.main import main; main()"]
STEPS = 20  # of the example's 50; validation at 0, 10, 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One model cache for the module, so the warmed-up base model is built once."""
    return {**os.environ, "RFTKIT_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONUNBUFFERED": "1"}


def _train(config: str, run: Path, env: dict[str, str], *extra: str) -> list[dict]:
    started = time.monotonic()
    command = [*RFT, "train", str(EXAMPLE / config), "--output-dir", str(run), "--no-progress",
               "--set", f"trainer.max_steps={STEPS}", *extra]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=560)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"{config}: {time.monotonic() - started:.0f} s")
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def _assert_it_learns(events: list[dict]) -> None:
    valid = [e for e in events if "valid_reward_mean" in e]
    assert [e["step"] for e in valid] == [0, 10, 20]
    rewards = [e["valid_reward_mean"] for e in valid]
    called = [e["valid_grader_scores"]["called"] for e in valid]
    print(f"valid reward {rewards}; called with the right key {called}")
    assert max(rewards[1:]) >= rewards[0] + 0.25 and max(rewards[1:]) >= 2 * rewards[0], rewards
    assert max(called[1:]) >= called[0] + 0.25, called
    for event in events[1:]:
        assert isinstance(event["tool_calls_per_rollout"], float)
        assert {"tokens_per_tool_call", "tool_latency_mean_s", "tool_errors", "episodes_dropped"} <= set(
            event
        )
    assert all(e["episodes_dropped"] == 0 for e in events[1:])  # the server never failed for good
    assert all("valid_tool_calls_per_rollout" in e for e in valid)


def test_rl_teaches_the_tiny_model_to_use_the_http_tool(tmp_path: Path, cache_env: dict[str, str]) -> None:
    run = tmp_path / "run"
    events = _train("config.yaml", run, cache_env)
    _assert_it_learns(events)
    # The trained model against its base on held-out items, through `rft eval`'s episodes.
    base = json.loads((run / "summary.json").read_text())["base_model"]
    out = tmp_path / "eval"
    command = [*RFT, "eval", "--data", str(EXAMPLE / "valid.jsonl"), "--grader", str(EXAMPLE / "grader.json"),
               "--agent-config", str(EXAMPLE / "config.yaml"), "--model", f"base={base}",
               "--model", f"trained={run / 'final'}", "--engine", "transformers", "--max-tokens", "32",
               "-n", "2", "--temperature", "1.0", "-o", str(out)]  # fmt: skip
    done = subprocess.run(command, env=cache_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    models = json.loads((out / "summary.json").read_text())["models"]
    print({name: round(m["mean_reward"], 3) for name, m in models.items()})
    assert models["trained"]["mean_reward"] >= models["base"]["mean_reward"] + 0.2


@pytest.mark.bwrap
def test_the_same_run_with_a_sandboxed_python_tool(tmp_path: Path, cache_env: dict[str, str]) -> None:
    require_backend("namespace")
    events = _train("python_tool.yaml", tmp_path / "run", cache_env, "--set", "agent.sandbox=namespace")
    _assert_it_learns(events)
