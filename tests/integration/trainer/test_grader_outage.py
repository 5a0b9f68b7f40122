"""A grader service outage pauses grading and says so; it never turns into zero rewards.

A real `rft serve` is stopped while grades are owed, then started again on the same port with
the same grader store: the waiting call finishes with the true rewards. With no service back
in time, the call raises instead of returning anything.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from rftkit.grader_service.client import GraderClient, RetryPolicy
from rftkit.grader_service.embedded import serve_subprocess
from rftkit.grading.session import GradingSession, GradingUnavailable, OutageWait
from rftkit.plugins.base import Sample

pytestmark = pytest.mark.timeout(180)
SPEC = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int, data: Path, work: Path):
    args = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data), "--insecure-local",
            "--sandbox", "auto", "--shutdown-grace", "1"]  # fmt: skip
    return serve_subprocess(args, work, stop_timeout=10)


def test_outage_pauses_then_resumes_with_true_rewards(tmp_path: Path) -> None:
    port = _free_port()
    client = GraderClient(f"127.0.0.1:{port}", retry=RetryPolicy(attempts=1))
    with _serve(port, tmp_path / "store", tmp_path / "w1"):
        grader_id, version = client.create_grader(SPEC)
    messages: list[str] = []
    wait = OutageWait(max_wait_s=120, notify=messages.append, what="training")
    session = GradingSession(client, grader_id, version, wait=wait)
    samples = [Sample(output_text=t) for t in ("a", "b", "a")]
    items = [{"answer": "a"}] * 3
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(results=session.grade(samples, items)))
    worker.start()  # the service is down now
    deadline = time.monotonic() + 30
    while not any("unavailable" in m for m in messages) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("training paused" in m for m in messages), messages
    assert "results" not in outcome  # still waiting, not zero-filled
    with _serve(port, tmp_path / "store", tmp_path / "w2"):
        worker.join(60)
    assert [r.reward for r in outcome["results"]] == [1.0, 0.0, 1.0]
    assert any("back after" in m for m in messages) and session.outage_seconds > 0
    client.close()


def test_outage_longer_than_the_limit_raises(tmp_path: Path) -> None:
    client = GraderClient(f"127.0.0.1:{_free_port()}", retry=RetryPolicy(attempts=1))
    messages: list[str] = []
    wait = OutageWait(max_wait_s=2.0, notify=messages.append)
    session = GradingSession(client, "gr_0000000000000000", "1", wait=wait)
    with pytest.raises(GradingUnavailable, match="unavailable for 2 s"):
        session.grade([Sample(output_text="a")], [{"answer": "a"}])
    assert len(messages) >= 2
    client.close()
