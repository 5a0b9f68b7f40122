"""Tool servers a run starts itself: a command per server, on a free loopback port, stopped at the end.

    agent:
      servers:
        - name: lookup
          command: ["{python}", "lookup_server.py", "--port", "{port}"]
      tools:
        - name: lookup
          server_url: "http://{lookup}/lookup"   # {lookup}: host:port of the server named lookup

`{python}` in a command is this interpreter, `{port}` the port chosen for the server (a free
port on `host`, 127.0.0.1 by default). Commands run in `cwd` (default: the config file's folder).
A server counts as up when its port accepts connections (and, with `health_path`, answers that
path below 500) within `startup_timeout_s`; one that exits or never comes up fails the run with
its log's tail. Servers are stopped (SIGTERM, then SIGKILL) when the episode runner closes, at
interpreter exit, and on Linux when the process that started them dies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..processes import dying_with_parent

SERVER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")


class ToolServerError(RuntimeError):
    """A tool server that did not start; the message says why and shows its log."""


class ToolServerConfig(BaseModel):
    """One server the run starts: a command and where it listens."""

    model_config = ConfigDict(extra="forbid")

    name: str  # tools name it in server_url as {name}
    command: list[str] = Field(min_length=1)  # {python}: this interpreter; {port}: the chosen port
    cwd: str | None = None  # relative to the config file's folder; default: that folder
    env: dict[str, str] = Field(default_factory=dict)  # added to the environment
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)  # None: a free port, picked at start
    health_path: str | None = None  # e.g. /health: also wait for an answer below 500 there
    startup_timeout_s: float = Field(30.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not SERVER_NAME.match(name) or name in ("python", "port"):
            raise ValueError(
                f"server name {name!r} must be a letter or _ then up to 63 letters, digits, _ or - "
                "(and not 'python' or 'port')"
            )
        return name


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fill_addresses(url: str, addresses: Mapping[str, str]) -> str:
    """`url` with each `{name}` of a started server replaced by its host:port."""
    return PLACEHOLDER.sub(lambda m: addresses.get(m.group(1), m.group(0)), url)


def unknown_placeholders(url: str, names: Sequence[str]) -> list[str]:
    """The `{name}`s in `url` that name no configured server."""
    return [name for name in PLACEHOLDER.findall(url) if name not in names]


class ToolServers:
    """The started servers of a run; `addresses` maps each name to host:port. Close to stop them."""

    def __init__(self, servers: Sequence[ToolServerConfig], base_dir: str | Path | None = None) -> None:
        self.addresses: dict[str, str] = {}
        self._procs: list[tuple[ToolServerConfig, subprocess.Popen[bytes], Any]] = []
        self._closed = False
        base = Path(base_dir) if base_dir else Path.cwd()
        atexit.register(self.close)
        try:
            for server in servers:
                self._start(server, base)
        except BaseException:
            self.close()
            raise

    def _start(self, server: ToolServerConfig, base: Path) -> None:
        port = server.port or free_port(server.host)
        values = {"python": sys.executable, "port": str(port), "host": server.host}
        command = [PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), p) for p in server.command]
        cwd = base if server.cwd is None else (base / server.cwd)
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while the server runs, closed by close()
            prefix=f"rft-tool-server-{server.name}-", suffix=".log", delete=False
        )
        main_thread = threading.current_thread() is threading.main_thread()
        try:
            proc = subprocess.Popen(
                dying_with_parent(command) if main_thread else command, cwd=cwd,
                env={**os.environ, **server.env}, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        except OSError as exc:
            log.close()
            raise ToolServerError(f"tool server {server.name!r}: cannot run {command}: {exc}") from exc
        self._procs.append((server, proc, log))
        self._wait_ready(server, proc, log.name, port)
        self.addresses[server.name] = f"{server.host}:{port}"

    @staticmethod
    def _wait_ready(server: ToolServerConfig, proc: subprocess.Popen[bytes], log: str, port: int) -> None:
        deadline = time.monotonic() + server.startup_timeout_s

        def tail() -> str:
            with contextlib.suppress(OSError):
                text = Path(log).read_text(encoding="utf-8", errors="replace")[-2000:]
                return f"; its output:\n{text}" if text.strip() else "; it printed nothing"
            return ""

        while True:
            if proc.poll() is not None:
                raise ToolServerError(
                    f"tool server {server.name!r} exited with status {proc.returncode} before it listened on "
                    f"{server.host}:{port}{tail()}"
                )
            if _ready(server, port):
                return
            if time.monotonic() > deadline:
                raise ToolServerError(
                    f"tool server {server.name!r} did not listen on {server.host}:{port} within "
                    f"{server.startup_timeout_s:g} s (agent.servers[].startup_timeout_s){tail()}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Stop every server: SIGTERM, then SIGKILL after 5 s."""
        if self._closed:
            return
        self._closed = True
        for _, proc, _ in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, log in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            log.close()
            with contextlib.suppress(OSError):
                os.unlink(log.name)
        atexit.unregister(self.close)

    def __enter__(self) -> ToolServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ready(server: ToolServerConfig, port: int) -> bool:
    try:
        with socket.create_connection((server.host, port), timeout=0.5):
            pass
    except OSError:
        return False
    if server.health_path is None:
        return True
    try:
        with urllib.request.urlopen(f"http://{server.host}:{port}{server.health_path}", timeout=2) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False
