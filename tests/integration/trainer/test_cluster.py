"""The tiny proof as a cluster on one machine: 2 trainer ranks, 2 rollout servers, 2 grader replicas.

`rft train` (a subprocess of the real CLI) with max_staleness 1; mid-run one rollout server and
one grader replica are killed with SIGKILL, and the run still finishes with every sample graded
(no lost grade) and the layout in DIR/summary.json. Then the whole run is killed with SIGKILL
after a checkpoint and the same command resumes from it under torchrun (FSDP2 optimizer state
restored from the checkpoint's full state dict).
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
from rftkit.trainer.rollout.engine import vllm_available

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "tiny" / "cluster.yaml"
RFT = [sys.executable, "-c", "from rftkit.cli.main import main; main()"]
# About 7 minutes on 2 cores (two cluster starts): over what CI's budget leaves, so it runs when asked.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed"),
    pytest.mark.skipif(
        os.environ.get("RFTKIT_CLUSTER_TEST") != "1", reason="about 7 minutes: run with RFTKIT_CLUSTER_TEST=1"
    ),
]


def _events(run: Path) -> list[dict]:
    path = run / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(pid: int, run: Path) -> bool:
    """Whether the grader replica `pid` belongs to this run (its parent is a rank of `run`)."""
    parent = _cmdline(pid).split("--exit-with-parent ")[-1].split()[0]
    return parent.isdigit() and str(run) in _cmdline(int(parent))


def _wait(what: str, check, proc: subprocess.Popen, log: Path, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert proc.poll() is None, f"run exited while waiting for {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} in {timeout_s:.0f} s"
        time.sleep(0.5)


def test_cluster_survives_kills_and_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [*RFT, "train", str(CONFIG), "--output-dir", str(run), "--no-progress",
               "--set", "trainer.max_steps=16", "--set", "hyperparameters.eval_interval=8"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "first.log"
    first = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True)  # fmt: skip
    _wait("step 3", lambda: len(_events(run)) >= 4, first, log)
    layout = json.loads(next(x for x in log.read_text().splitlines() if x.startswith("layout: "))[8:])
    assert (layout["trainer_ranks"], layout["rollout_servers"], layout["grader_replicas"]) == (2, 2, 2)
    ports = [url.rsplit(":", 1)[1] for url in layout["rollout"]]
    server = _pids(f"vllm.entrypoints.openai.api_server.*--port {ports[0]} ")
    assert server, "the first rollout server's process"
    os.kill(server[0], signal.SIGKILL)
    replicas = [p for p in _pids("rftkit.cli.serve") if "rft-replicas-" in _cmdline(p) and _ours(p, run)]
    assert len(replicas) == 2, replicas
    os.kill(replicas[0], signal.SIGKILL)

    _wait("checkpoint 8", lambda: (run / "checkpoints" / "step_000008" / "meta.json").exists(), first, log)
    _wait("step 10", lambda: len(_events(run)) >= 11, first, log)
    os.killpg(first.pid, signal.SIGKILL)  # the whole run: rft train, torchrun, the ranks
    first.wait()
    time.sleep(3)
    assert not _pids(f"--output-dir {run}"), "a rank outlived the kill"
    deadline = time.monotonic() + 60  # the rollout servers go with rank 0 (PR_SET_PDEATHSIG: SIGTERM)
    while any(_pids(f"vllm.entrypoints.openai.api_server.*--port {port} ") for port in ports):
        assert time.monotonic() < deadline, "a rollout server outlived the run by a minute"
        time.sleep(1)
    events = _events(run)
    assert all(e["train_invalid_samples"] == 0 for e in events), "a grade was lost"
    assert "restarting it" in log.read_text()

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Resuming from checkpoint" in second.stdout
    events = _events(run)
    assert [e["step"] for e in events] == list(range(17))
    assert all(0 <= e["staleness"] <= 1 for e in events[1:])
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["trainer_ranks"], summary["rollout_servers"], summary["grader_replicas"]) == (2, 2, 2)
