"""Issue 14 item 7: a grader that wedges its workers' request pipes, or one that hangs in grade()
for longer than the shutdown grace, cannot hold `rft serve` past that grace (SIGTERM while such a
batch is in flight), on each sandbox backend."""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.embedded import serve_subprocess
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [pytest.mark.timeout(180)]
GRACE_S = 1.0
STOP_SLACK_S = 2.0 + 5.0  # gRPC's own stop allows the grace + 2 s; then the pools close at once
GRADERS = {
    # Every fresh worker's request pipe is wedged while the module loads: the batch would take two
    # send deadlines (5 s each) and two worker starts before its samples are flagged.
    "wedged": "SWAP_AT_LOAD = True\n" + (Path(__file__).parent / "attacks" / "pipe_swap.py").read_text(),
    # Within its 60 s sample timeout, so only closing the pool can end it early.
    "sleeping": "import time\n\ndef grade(sample, item):\n    time.sleep(50)\n    return 1.0\n",
}


@pytest.mark.parametrize("grader", sorted(GRADERS))
@pytest.mark.parametrize("backend", backend_params())
def test_sigterm_stops_the_service_within_its_grace_while_a_worker_is_stuck(
    backend: str, grader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_backend(backend)
    token = secrets.token_hex(16)
    (tmp_path / "tokens").write_text(f"alice {token}\n")
    monkeypatch.setenv("RFTKIT_SANDBOX_WORKERS", "1")
    monkeypatch.setenv("RFTKIT_SANDBOX_SAMPLE_TIMEOUT_S", "60")
    args = ["--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data"), "--sandbox", backend,
            "--tokens", str(tmp_path / "tokens"), "--shutdown-grace", str(GRACE_S)]  # fmt: skip
    with serve_subprocess(args, tmp_path, stop_timeout=60) as service:
        client = GraderClient(service.address, token)
        grader_id, _ = client.create_grader(GRADERS[grader], name=grader)
        ended: list[Any] = []

        def grade() -> None:
            try:
                ended.append(
                    client.grade_batch(grader_id, ["a" * 5000] * 20, [{"reference": "a"}] * 20, timeout=20)
                )
            except Exception as exc:  # the service stopped (the client waits for it until its deadline)
                ended.append(exc)

        caller = threading.Thread(target=grade)
        caller.start()
        time.sleep(2.0)  # the first worker is up and stuck; no deadline of its has passed
        assert not ended, ended
        start = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        try:
            code = service.process.wait(GRACE_S + STOP_SLACK_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"rft serve did not stop within {GRACE_S + STOP_SLACK_S:g} s of SIGTERM")
        took = time.monotonic() - start
        print(f"rft serve ({backend}, {grader}) stopped {took:.2f} s after SIGTERM (grace {GRACE_S:g} s)")
        client.close()  # the client would wait for the service to come back until its deadline
        caller.join(10)
        assert code == 0, service.log_text()[-2000:]
        assert ended and not caller.is_alive()
        assert took < GRACE_S + STOP_SLACK_S, took
    pid = service.pid
    assert not list(Path("/sys/fs/cgroup").glob(f"*/rftkit-sandbox/svc-{pid}-*"))
    if backend == "docker":
        import docker

        owner = f"rftkit.sandbox.owner={socket.gethostname()}:{pid}"
        assert not docker.from_env().containers.list(all=True, filters={"label": owner})
