"""Issue 14 item 6: the client rides out restarts of `rft serve`: 0 failed requests, every reward right.

Eight threads share one GraderClient and send GradeBatch without pause while the service is
killed (-9) and started again on the same port after 2 s and after 10 s, then stopped with
SIGTERM and started again. Calls in flight at a kill fail UNAVAILABLE on the closed connection
and are sent again, calls sent meanwhile wait for the channel (`wait_for_ready`), calls that
reach a draining service are answered UNAVAILABLE and retried: none fails within its 60 s total
deadline. The load stops while the last service still runs (a call sent to a service that never
comes back waits for its whole deadline, by design).
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

pytestmark = pytest.mark.timeout(150)

SPEC = {
    "type": "string_check",
    "name": "exact",
    "operation": "eq",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
}
THREADS = 8
ANSWERS_PER_PHASE = 16  # answered calls to see, after each start, before the next fault


class Load:
    """THREADS threads grading distinct samples until `stop()`; every call's (start, end, error)."""

    def __init__(self, client: GraderClient) -> None:
        self.client = client
        self.calls: list[tuple[float, float, str | None]] = []
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(THREADS)]
        for thread in self._threads:
            thread.start()

    def _run(self, k: int) -> None:
        n = 0
        while not self._done.is_set():
            n += 1
            answer = f"{k}-{n}"
            start, error = time.monotonic(), None
            try:
                graded = self.client.grade_batch(SPEC, [answer, "x"], [{"answer": answer}, {"answer": "y"}])
                rewards = [r.reward for r in graded]
                if rewards != [1.0, 0.0]:
                    error = f"wrong rewards {rewards} for {answer}"
            except Exception as exc:  # every failure is recorded and fails the test
                error = repr(exc)
            self.calls.append((start, time.monotonic(), error))
            time.sleep(0.005)

    def answered(self) -> int:
        return sum(1 for _, _, error in self.calls if error is None)

    def wait_answers(self, more: int, within_s: float = 30.0) -> None:
        target, deadline = self.answered() + more, time.monotonic() + within_s
        while self.answered() < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.answered() >= target, f"{self.answered()} answered, {self.failures()[:3]}"

    def failures(self) -> list[str]:
        return [error for _, _, error in self.calls if error is not None]

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(70)


def _kill(service: ServiceProcess, sig: signal.Signals) -> float:
    at = time.monotonic()
    os.kill(service.pid, sig)
    service.process.wait(30)
    return at


def test_client_rides_out_restarts(tmp_path: Path) -> None:
    port = free_port()
    args = ("--port", str(port))
    data = tmp_path / "data"
    faults: list[float] = []
    client = GraderClient(f"127.0.0.1:{port}", TOKEN_A, timeout=60)
    load: Load | None = None
    try:
        with serve(tmp_path / "s0", *args, sandbox="process", data_dir=data) as service:
            load = Load(client)
            load.wait_answers(ANSWERS_PER_PHASE)
            faults.append(_kill(service, signal.SIGKILL))
        time.sleep(2.0)
        with serve(tmp_path / "s1", *args, sandbox="process", data_dir=data) as service:
            load.wait_answers(ANSWERS_PER_PHASE)
            faults.append(_kill(service, signal.SIGKILL))
        time.sleep(10.0)
        with serve(tmp_path / "s2", *args, sandbox="process", data_dir=data) as service:
            load.wait_answers(ANSWERS_PER_PHASE)
            faults.append(_kill(service, signal.SIGTERM))
        with serve(tmp_path / "s3", *args, sandbox="process", data_dir=data) as service:
            load.wait_answers(ANSWERS_PER_PHASE)
            load.stop()
    finally:
        if load is not None:
            load.stop()
        client.close()
    assert load.failures() == []
    in_flight = [sum(1 for start, end, _ in load.calls if start < at < end) for at in faults]
    longest = max(end - start for start, end, _ in load.calls)
    print(f"{len(load.calls)} calls, 0 failed; in flight at each fault {in_flight}; longest {longest:.1f} s")
    assert sum(in_flight[:2]) > 0, "no call was in flight at a kill -9: the test did not test that"
    assert longest > 10.0, "no call waited through the 10 s outage"
