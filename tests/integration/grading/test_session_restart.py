"""A grading session rides out a `kill -9` and restart of its service and resumes as soon as it is back.

The session's pauses end when its channel connects again (not after a blind backoff, which after
a 10 s outage left grading idle for up to 9 s more).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from rftkit.core.records import Sample
from rftkit.grader_service.testing import TOKEN_A, free_port, serve
from rftkit.grading.session import open_session

pytestmark = pytest.mark.timeout(120)
SPEC = {"type": "string_check", "name": "eq", "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip


def test_grading_resumes_right_after_the_restart(tmp_path: Path) -> None:
    port = free_port()
    args, data = ("--port", str(port)), tmp_path / "data"
    graded: list[tuple[float, list[float]]] = []
    failures: list[BaseException] = []
    done = threading.Event()
    messages: list[str] = []
    samples, items = [Sample(output_text="a"), Sample(output_text="b")], [{"answer": "a"}, {"answer": "a"}]
    address = f"127.0.0.1:{port}"
    with (
        serve(tmp_path / "first", *args, sandbox="process", data_dir=data) as first,
        open_session(SPEC, address=address, token=TOKEN_A, notify=messages.append) as session,
    ):

        def keep_grading() -> None:
            try:
                while not done.is_set():
                    rewards = [r.reward for r in session.grade(samples, items)]
                    graded.append((time.monotonic(), rewards))
                    time.sleep(0.02)
            except BaseException as exc:  # reported below
                failures.append(exc)

        worker = threading.Thread(target=keep_grading)
        worker.start()
        while len(graded) < 5 and worker.is_alive():
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait()
        time.sleep(3.0)
        with serve(tmp_path / "again", *args, sandbox="process", data_dir=data):
            back = time.monotonic()
            before = sum(1 for at, _ in graded if at < back)
            while len(graded) <= before and worker.is_alive() and time.monotonic() < back + 30:
                time.sleep(0.01)
            done.set()
            worker.join(30)
    assert not failures, failures
    assert all(rewards == [1.0, 0.0] for _, rewards in graded)
    resumed = graded[before][0] - back
    print(f"resumed {resumed:.2f} s after the service was ready; waited {session.outage_seconds:.1f} s")
    # The channel retries its connection at most 1.2 s apart (RECONNECT_OPTIONS), then the call itself;
    # the session's blind backoff alone would wait 4-8 s here.
    assert resumed < 2.5, messages
    assert any("or when it is back" in m for m in messages) and "is back after" in messages[-1]
