"""A real grader service on a free loopback port, for the trainer, eval runs and tests.

    with start_local_service() as service:
        client = GraderClient(service.address, service.token)

The service runs in a child process (`python -m rftkit.grader_service.serve_cli`), not in a
thread of the caller, because:
- it is exactly what `rft serve` runs (same code path, same SIGTERM shutdown);
- the trainer forks (vLLM workers, data loaders) and gRPC's threads do not survive a fork;
- grading built-in graders takes the GIL, which would slow the trainer's own Python threads;
- a crash in the service shows up as UNAVAILABLE in the caller instead of killing it.
A fresh random token (tenant "local") protects it from other users on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_TIMEOUT_S = 60.0


class ServiceStartError(RuntimeError):
    """The child service did not come up; the message holds the end of its log."""


@dataclass
class LocalService:
    address: str
    token: str
    data_dir: Path
    pid: int
    metrics_port: int | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def client(self, **kwargs):  # -> GraderClient
        from rftkit.grader_service.client import GraderClient

        return GraderClient(self.address, self.token, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def start_local_service(
    data_dir: Path | None = None,
    sandbox: str = "auto",
    *,
    metrics: bool = False,
    extra_args: list[str] | None = None,
    shutdown_grace_s: float = 10.0,
) -> Iterator[LocalService]:
    """Run `rft serve` on 127.0.0.1 with a free port and a fresh token; stop it (SIGTERM) on exit.

    `data_dir`: where graders are kept (a temporary directory, removed afterwards, when None).
    """
    with tempfile.TemporaryDirectory(prefix="rft-local-") as tmp:
        work = Path(tmp)
        token = secrets.token_hex(24)
        tokens = work / "tokens"
        tokens.write_text(f"local {token}\n")
        tokens.chmod(0o600)
        ready = work / "ready.json"
        log_path = work / "serve.log"
        store = Path(data_dir) if data_dir is not None else work / "data"
        args = [
            sys.executable, "-m", "rftkit.grader_service.serve_cli",
            "--host", "127.0.0.1", "--port", "0",
            "--data-dir", str(store), "--sandbox", sandbox, "--tokens", str(tokens),
            "--shutdown-grace", str(shutdown_grace_s), "--ready-file", str(ready),
        ]  # fmt: skip
        if metrics:
            args += ["--metrics-port", "0"]
        args += extra_args or []
        with open(log_path, "wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not ready.exists():
                if process.poll() is not None:
                    raise ServiceStartError(f"rft serve exited with {process.returncode}:\n{_tail(log_path)}")
                if time.monotonic() > deadline:
                    raise ServiceStartError(
                        f"rft serve did not start in {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(log_path)}"
                    )
                time.sleep(0.05)
            info = json.loads(ready.read_text())
            yield LocalService(
                address=f"127.0.0.1:{info['port']}",
                token=token,
                data_dir=store,
                pid=process.pid,
                metrics_port=info.get("metrics_port"),
                log_path=log_path,
                process=process,
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(shutdown_grace_s + 15)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
