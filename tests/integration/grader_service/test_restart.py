"""Issue 14 item 6: the client rides out a restart of `rft serve` (2 s and 10 s down): 0 failed requests."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.testing import TOKEN_A, free_port, serve

pytestmark = pytest.mark.timeout(120)

SPEC = {
    "type": "string_check",
    "name": "exact",
    "operation": "eq",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
}


@pytest.mark.xfail(
    reason="open: 2 of ~150 calls in flight at a kill -9 hang until their own deadline (60 s) "
    "although the channel reconnects and later calls succeed",
    strict=False,
)
def test_client_rides_out_restarts(tmp_path: Path) -> None:
    port = free_port()
    args = ("--port", str(port))
    data = tmp_path / "data"
    done, failures, answered = threading.Event(), [], [0]

    def load(client: GraderClient) -> None:
        while not done.is_set():
            try:
                rewards = [r.reward for r in client.grade_batch(SPEC, ["a", "b"], {"answer": "a"})]
                assert rewards == [1.0, 0.0]
                answered[0] += 1
            except Exception as exc:
                failures.append(repr(exc))
            time.sleep(0.05)

    with serve(tmp_path / "first", *args, sandbox="process", data_dir=data) as first:
        client = GraderClient(f"127.0.0.1:{port}", TOKEN_A, timeout=60)
        workers = [threading.Thread(target=load, args=(client,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait()
    try:
        for n, down_s in enumerate((2.0, 10.0)):
            time.sleep(down_s)
            before = answered[0]
            with serve(tmp_path / f"again{n}", *args, sandbox="process", data_dir=data) as again:
                deadline = time.monotonic() + 15
                while answered[0] < before + 10 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert answered[0] >= before + 10, failures
                if n == 0:
                    os.kill(again.pid, signal.SIGKILL)
                    again.process.wait()
    finally:
        done.set()
        for worker in workers:
            worker.join(70)
        client.close()
    assert failures == []
