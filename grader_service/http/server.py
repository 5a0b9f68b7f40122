"""`start_http_server(...)`: the HTTP API on its own port, beside the gRPC service in the same process.

uvicorn runs the app in a thread of `rft serve`; the graders, the grading queue and the tenants'
tokens are the gRPC service's own objects, handed over by the caller.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from ..auth import Authenticator
from ..runtime import Admission, LoadedGraders
from .app import create_app
from .context import HttpContext, HttpSettings
from .db import Database, now
from .evalrunner import EvalRunner
from .filestore import FileStore
from .runner import JobRunner

log = logging.getLogger("rftkit.grader_service.http")


class HttpServer:
    """A running HTTP API: where it listens and how to stop it."""

    def __init__(self, ctx: HttpContext, server: uvicorn.Server, sock: socket.socket) -> None:
        self.ctx = ctx
        self._server = server
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="rft-http", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def _start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start (see the log above)")
            time.sleep(0.01)
        if self.ctx.runner is not None:
            self.ctx.runner.start()
        if self.ctx.eval_runner is not None:
            self.ctx.eval_runner.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the job runner (running jobs are stopped, to resume at the next start), then uvicorn."""
        if self.ctx.runner is not None:
            self.ctx.runner.stop()
        if self.ctx.eval_runner is not None:
            self.ctx.eval_runner.stop()
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
        if self.ctx.pool is not None:
            self.ctx.pool.close()
        self.ctx.db.close()


def start_http_server(
    settings: HttpSettings,
    *,
    auth: Authenticator,
    graders: LoadedGraders,
    admission: Admission,
    grpc_address: str | None = None,
) -> HttpServer:
    """Bind host:port (0: a free port), start the API and its job runner; returns the handle."""
    settings.root.mkdir(parents=True, exist_ok=True)
    db = Database(settings.url)
    ctx = HttpContext(
        settings=settings, auth=auth, graders=graders, admission=admission, db=db,
        files=FileStore(settings.root / "files"),
    )  # fmt: skip
    ctx.extra["started_at"] = now()
    ctx.extra["grpc_address"] = grpc_address
    ctx.runner = JobRunner(ctx, Path(settings.root / "jobs"))
    ctx.eval_runner = EvalRunner(ctx)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        ctx.extra["http_port"] = sock.getsockname()[1]
    except OSError:
        sock.close()
        db.close()
        raise
    config = uvicorn.Config(
        create_app(ctx), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5
    )
    server = HttpServer(ctx, uvicorn.Server(config), sock)
    server._start()
    log.info("HTTP API (OpenAI-compatible) on %s", server.url)
    return server
