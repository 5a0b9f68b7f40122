"""`rft serve`: run the gRPC grader service until SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from ..grader_service.auth import TokenFileError, is_loopback
from ..grader_service.store import DataDirInUse
from ..sandbox.api import BACKEND_NAMES

if TYPE_CHECKING:
    from ..grader_service.http import HttpServer
    from ..grader_service.server import GraderServer, ServiceConfig

log = logging.getLogger("rftkit.grader_service")


def _config_error(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=50051, show_default=True, type=int, help="gRPC port (0: pick a free one).")
@click.option(
    "--data-dir",
    default="rft-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where graders are stored (kept across restarts).",
)
@click.option(
    "--sandbox",
    default="auto",
    show_default=True,
    type=click.Choice(BACKEND_NAMES),
    help="Where uploaded Python graders run (process: no isolation, for development only).",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Tokens file: lines 'TENANT TOKEN' (TOKEN may be sha256:<hex>).",
)
@click.option("--insecure-local", is_flag=True, help="Allow calls without a token (loopback hosts only).")
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM certificate."
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM private key."
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
@click.option("--max-queue", default=64, show_default=True, type=int, help="Grading requests that may wait.")
@click.option("--concurrency", type=int, default=None, help="Grading requests run at once [default: cores].")
@click.option(
    "--max-message-mb", default=64.0, show_default=True, type=float, help="Largest request accepted."
)
@click.option(
    "--shutdown-grace",
    "shutdown_grace_s",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds in-flight batches may run after SIGTERM before they fail with UNAVAILABLE.",
)
@click.option(
    "--strict-uploads",
    is_flag=True,
    help="Refuse uploads the policy only warns about (e.g. RestrictedPython findings in Python graders).",
)
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), hidden=True)
@click.option(
    "--exit-with-parent",
    type=int,
    default=None,
    hidden=True,
    help="Stop (gracefully) once the process with this pid is no longer the parent, e.g. after kill -9.",
)
@click.option(
    "--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING"])
)
@click.option(
    "--http-port", type=int, default=None, help="Also serve the OpenAI-compatible HTTP API on this port."
)
@click.option(
    "--base-model", "base_models", multiple=True, metavar="NAME=SOURCE",
    help="A base model fine-tuning jobs may use (repeatable): a model dir or an rftkit config file.",
)  # fmt: skip
@click.option("--database-url", default=None, help="HTTP API state [default: sqlite in the data dir].")
def serve(
    ready_file: Path | None,
    exit_with_parent: int | None,
    log_level: str,
    concurrency: int | None,
    **options: object,
) -> None:
    """Run the gRPC grader service (rft.grader.v1) with health and reflection.

    Clients send `authorization: Bearer <token>`; each token belongs to one tenant, and a tenant
    sees only its own graders. SIGTERM stops taking requests, lets in-flight batches finish
    within --shutdown-grace (or fail with UNAVAILABLE), and exits 0.
    """
    from ..grader_service.server import GraderServer, ServiceConfig

    http_options = {k: options.pop(k) for k in ("http_port", "base_models", "database_url")}
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if concurrency is not None:
        options["concurrency"] = concurrency
    try:
        config = ServiceConfig.model_validate(options)
    except ValidationError as exc:
        raise click.UsageError(_config_error(exc)) from exc
    try:
        server = GraderServer(config)
    except (TokenFileError, DataDirInUse) as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        port = server.start()
    except (OSError, RuntimeError) as exc:
        server.stop(0)
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    http = _start_http(config, server, **http_options) if http_options["http_port"] is not None else None

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheme = "tls" if config.tls_cert else "plaintext"
    auth = f"tokens from {config.tokens_file}" if config.tokens_file else "no tokens (insecure-local)"
    log.info(
        "rft serve listening on %s (%s, %s); data dir %s; sandbox %s%s",
        server.address,
        scheme,
        auth,
        config.data_dir,
        config.sandbox,
        f"; metrics on http://{config.host}:{server.metrics_port}/metrics" if server.metrics_port else "",
    )
    if config.sandbox == "process":
        log.warning("--sandbox process: uploaded Python graders run WITHOUT isolation (development only)")
    if config.tokens_file and not config.tls_cert and not is_loopback(config.host):
        log.warning("tokens travel in plaintext on %s; give --tls-cert/--tls-key", config.host)
    if ready_file is not None:
        info = {
            "address": server.address,
            "port": port,
            "metrics_port": server.metrics_port,
            "http_port": http.port if http else None,
            "pid": os.getpid(),
        }
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)
    while not stop.wait(0.5):
        if exit_with_parent is not None and os.getppid() != exit_with_parent:
            received.append(f"parent {exit_with_parent} is gone")
            break
    log.info(
        "%s: draining (in-flight batches get %.0f s), then stopping", received[0], config.shutdown_grace_s
    )
    if http is not None:
        http.stop()
    server.stop()
    log.info("stopped")


def _start_http(
    config: ServiceConfig, server: GraderServer, http_port: int, base_models: tuple[str, ...],
    database_url: str | None,
) -> HttpServer:  # fmt: skip
    """The HTTP API beside the gRPC service: same tenants, graders and grading queue."""
    from ..grader_service.http import HttpSettings, parse_base_models, start_http_server

    try:
        settings = HttpSettings(
            host=config.host, port=http_port, data_dir=config.data_dir, database_url=database_url,
            base_models=parse_base_models(base_models), sandbox=config.sandbox,
            strict_uploads=config.strict_uploads, open_access=config.tokens_file is None,
        )  # fmt: skip
    except (ValidationError, ValueError) as exc:
        server.stop(0)
        raise click.UsageError(_config_error(exc) if isinstance(exc, ValidationError) else str(exc)) from exc
    servicer = server.servicer
    try:
        return start_http_server(
            settings, auth=servicer.auth, graders=servicer.graders, admission=servicer.admission,
            grpc_address=server.address,
        )  # fmt: skip
    except OSError as exc:
        server.stop(0)
        raise click.ClickException(f"cannot listen on {config.host}:{http_port}: {exc}") from exc


if __name__ == "__main__":  # python -m rftkit.cli.serve (used by embedded.start_local_service)
    serve()
