"""A real grader service on a free loopback port, for the trainer, eval runs and tests.

    with start_local_service() as service:
        client = GraderClient(service.address, service.token)

The service runs in a child process (`python -m rftkit.cli.serve`), not in a
thread of the caller, because:
- it is exactly what `rft serve` runs (same code path, same SIGTERM shutdown);
- the trainer forks (vLLM workers, data loaders) and gRPC's threads do not survive a fork;
- grading built-in graders takes the GIL, which would slow the trainer's own Python threads;
- a crash in the service shows up as UNAVAILABLE in the caller instead of killing it.
A fresh random token (tenant "local") keeps other users of the machine out.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 60.0


class ServiceStartError(RuntimeError):
    """The child service did not come up; the message holds the end of its log."""


@dataclass
class ServiceProcess:
    """A running `rft serve` child: where it listens and how to stop it."""

    address: str
    port: int
    process: subprocess.Popen = field(repr=False)
    log_path: Path
    metrics_port: int | None = None
    token: str | None = None
    data_dir: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, token: str | None = None, **kwargs: Any):  # -> GraderClient
        from .client import GraderClient

        return GraderClient(self.address, token if token is not None else self.token, **kwargs)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; SIGKILL if it has not exited after `timeout`. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def serve_subprocess(
    args: Sequence[str], workdir: Path, *, stop_timeout: float = 60.0
) -> Iterator[ServiceProcess]:
    """Run `rft serve ARGS --ready-file ...` in a child process until the block ends (then SIGTERM).

    ARGS should hold `--port 0` (or a fixed port); the yielded object says where it listens.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"ready-{secrets.token_hex(4)}.json"
    log_path = workdir / f"serve-{ready.stem[6:]}.log"
    command = [
        sys.executable, "-m", "rftkit.cli.serve", *args,
        "--ready-file", str(ready),
        "--exit-with-parent", str(os.getpid()),  # no orphaned service after a kill -9 of its user
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = None
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
        service = ServiceProcess(
            address=f"127.0.0.1:{info['port']}",
            port=info["port"],
            process=process,
            log_path=log_path,
            metrics_port=info.get("metrics_port"),
        )
        yield service
    finally:
        if service is not None:
            service.stop(stop_timeout)
        elif process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def start_local_service(
    data_dir: Path | None = None,
    sandbox: str = "auto",
    *,
    metrics: bool = False,
    extra_args: Sequence[str] = (),
    shutdown_grace_s: float = 10.0,
) -> Iterator[ServiceProcess]:
    """Run `rft serve` on 127.0.0.1 with a free port and a fresh token; stop it (SIGTERM) on exit.

    Yields an object with `.address`, `.token` and `.client()`. `data_dir`: where graders are kept
    (a temporary directory, removed afterwards, when None).
    """
    with tempfile.TemporaryDirectory(prefix="rft-local-") as tmp:
        work = Path(tmp)
        token = secrets.token_hex(24)
        tokens = work / "tokens"
        tokens.write_text(f"local {token}\n")
        tokens.chmod(0o600)
        store = Path(data_dir) if data_dir is not None else work / "data"
        args = [
            "--host", "127.0.0.1", "--port", "0", "--data-dir", str(store), "--sandbox", sandbox,
            "--tokens", str(tokens), "--shutdown-grace", str(shutdown_grace_s),
            *(["--metrics-port", "0"] if metrics else []), *extra_args,
        ]  # fmt: skip
        with serve_subprocess(args, work, stop_timeout=shutdown_grace_s + 15) as service:
            service.token, service.data_dir = token, store
            yield service
