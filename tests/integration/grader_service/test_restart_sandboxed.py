"""Issue 14's restart check with a sandboxed grader: 0 failed requests across 2 s and 10 s outages.

test_restart.py rides out restarts with a built-in grader; here the grader is uploaded Python, so
each restarted service must also start fresh sandbox workers (namespace or docker) for the calls
that waited. Four threads grade distinct samples while the service is killed (-9) and started
again on the same port and data directory after 2 s and after 10 s.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.embedded import ServiceProcess
from rftkit.grader_service.testing import TOKEN_A, free_port, serve
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]  # about 50 s per backend (a 10 s outage)
GRADER = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n"
Call = tuple[float, float, str | None]  # start, end, what went wrong


def _grade_until(
    client: GraderClient, grader_id: str, k: int, stop: threading.Event, calls: list[Call]
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        text, started, problem = f"{k}-{n}", time.monotonic(), None
        try:
            rewards = [r.reward for r in client.grade_batch(grader_id, [text, "x"], {"answer": text})]
            problem = None if rewards == [1.0, 0.0] else f"wrong rewards {rewards}"
        except Exception as exc:  # every failure fails the test
            problem = repr(exc)
        calls.append((started, time.monotonic(), problem))


def _answered(calls: list[Call], more: int, within_s: float = 60.0) -> None:
    """Wait until `more` further calls were answered right."""
    target = sum(1 for c in calls if c[2] is None) + more
    deadline = time.monotonic() + within_s
    while sum(1 for c in calls if c[2] is None) < target:
        assert time.monotonic() < deadline, [c[2] for c in calls if c[2]][:3]
        time.sleep(0.05)


def _kill(service: ServiceProcess) -> float:
    at = time.monotonic()
    os.kill(service.pid, signal.SIGKILL)
    service.process.wait(30)
    return at


@pytest.mark.parametrize("backend", backend_params())
def test_no_call_fails_across_kills_and_restarts(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    args, data = ("--port", str(free_port())), tmp_path / "data"
    calls: list[Call] = []
    stop = threading.Event()
    kills: list[float] = []
    client: GraderClient | None = None
    threads: list[threading.Thread] = []
    try:
        with serve(tmp_path / "s0", *args, sandbox=backend, data_dir=data) as service:
            client = GraderClient(service.address, TOKEN_A, timeout=60)
            grader_id, _ = client.create_grader(GRADER, name="restarts")
            for k in range(4):
                threads.append(
                    threading.Thread(target=_grade_until, args=(client, grader_id, k, stop, calls))
                )
                threads[-1].start()
            _answered(calls, 8)
            kills.append(_kill(service))
        time.sleep(2.0)
        with serve(tmp_path / "s1", *args, sandbox=backend, data_dir=data) as service:
            _answered(calls, 8)
            kills.append(_kill(service))
        time.sleep(10.0)
        with serve(tmp_path / "s2", *args, sandbox=backend, data_dir=data) as service:
            _answered(calls, 8)
            stop.set()  # while this service still runs: no call is left waiting for one that is gone
            for thread in threads:
                thread.join(70)
    finally:
        stop.set()
        for thread in threads:
            thread.join(70)
        if client is not None:
            client.close()
    failed = [c[2] for c in calls if c[2] is not None]
    in_flight = [sum(1 for start, end, _ in calls if start < at < end) for at in kills]
    print(f"{backend}: {len(calls)} calls, {len(failed)} failed; in flight at each kill {in_flight}")
    assert failed == []
    assert sum(in_flight) > 0, "no call was in flight at a kill -9: the test did not test that"
    assert max(end - start for start, end, _ in calls) > 10.0, "no call waited through the 10 s outage"
