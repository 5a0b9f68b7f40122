"""An embedded service must not outlive its user: `kill -9` of a trainer leaves no `rft serve` behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import sys, time
from rftkit.grader_service.embedded import start_local_service
with start_local_service(sandbox="process") as service:
    print(service.process.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status not in ("Z", "X")


def test_service_stops_after_its_user_is_killed() -> None:
    user = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        service_pid = int(user.stdout.readline())
        assert _alive(service_pid)
        user.send_signal(signal.SIGKILL)
        user.wait(10)
        deadline = time.monotonic() + 20
        while _alive(service_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(service_pid), "rft serve outlived the process that started it"
    finally:
        if user.poll() is None:
            user.kill()
