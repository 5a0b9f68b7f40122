"""A real `rft serve --http-port` child for tests and benchmarks: gRPC and HTTP in one process, two
tenants' tokens (grader_service.testing's), and the official `openai` SDK pointed at it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from openai import OpenAI

from ..testing import TOKEN_A, write_tokens

ROOT = Path(__file__).resolve().parents[2]  # the repository (examples/ live here)


@dataclass
class HttpService:
    """A running `rft serve` with the HTTP API: its URLs, its data dir, and its process."""

    workdir: Path
    data_dir: Path
    args: list[str]
    process: subprocess.Popen | None = None
    http_port: int = 0
    grpc_port: int = 0
    tokens: bool = True  # False: no tokens file (give --insecure-local in args)
    env: dict[str, str] = field(default_factory=dict)  # added to the server's environment
    log: Path = field(init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1"

    def client(self, token: str = TOKEN_A, **kwargs: object) -> OpenAI:
        return OpenAI(base_url=self.base_url, api_key=token, max_retries=0, **kwargs)

    def start(self, timeout: float = 60.0) -> HttpService:
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        self.log = self.workdir / f"serve-{int(time.time() * 1000)}.log"
        command = [
            sys.executable, "-m", "rftkit.cli.serve", "--host", "127.0.0.1", "--port", "0",
            "--http-port", str(self.http_port),
            *(["--tokens", str(write_tokens(self.workdir))] if self.tokens else []),
            "--data-dir", str(self.data_dir), *self.args, "--ready-file", str(ready),
            "--exit-with-parent", str(os.getpid()),
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rft serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.http_port, self.grpc_port = info["http_port"], info["port"]
        return self

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def http_service(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[HttpService]:
    workdir.mkdir(parents=True, exist_ok=True)
    service = HttpService(workdir, workdir / "data", list(args), env=dict(env or {})).start()
    try:
        yield service
    finally:
        service.stop()
