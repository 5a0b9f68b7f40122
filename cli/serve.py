"""`rft serve`: run the gRPC grader service until SIGTERM or Ctrl-C."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from ..grader_service.auth import TokenFileError, is_loopback
from ..grader_service.http.settings import HttpSettings
from ..grader_service.settings import ServiceSettings
from ..grader_service.store import DataDirInUse
from .options import options_from, settings_from

if TYPE_CHECKING:
    from ..grader_service.http import HttpServer
    from ..grader_service.server import GraderServer

log = logging.getLogger("rftkit.grader_service")


def _config_error(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


@click.command("serve")
@options_from(ServiceSettings)
@options_from(HttpSettings, skip=HttpSettings.FROM_SERVICE)  # the HTTP API's limits and chat models
def serve(**given: object) -> None:
    """Run the gRPC grader service (rft.grader.v1) with health and reflection.

    Clients send `authorization: Bearer <token>`; each token belongs to one tenant, and a tenant
    sees only its own graders. SIGTERM stops taking requests, lets in-flight batches finish
    within --shutdown-grace (or fail with UNAVAILABLE), and exits 0.
    """
    from ..core.heap import reuse_large_buffers
    from ..grader_service.server import GraderServer

    reuse_large_buffers()  # every request's buffers come from reused heap, not fresh pages
    config = settings_from(ServiceSettings, given)
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = GraderServer(config)
    except (TokenFileError, DataDirInUse) as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        port = server.start()
    except (OSError, RuntimeError) as exc:
        server.stop(0)
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    http = _start_http(config, server, given) if config.http_port is not None else None
    _freeze_startup_heap()

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
    if config.ready_file is not None:
        info = {
            "address": server.address,
            "port": port,
            "metrics_port": server.metrics_port,
            "http_port": http.port if http else None,
            "pid": os.getpid(),
        }
        tmp = config.ready_file.with_name(config.ready_file.name + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(config.ready_file)
    while not stop.wait(0.5):
        if config.exit_with_parent is not None and os.getppid() != config.exit_with_parent:
            received.append(f"parent {config.exit_with_parent} is gone")
            break
    log.info(
        "%s: draining (in-flight batches get %.0f s), then stopping", received[0], config.shutdown_grace_s
    )
    if http is not None:
        http.stop()
    server.stop()
    log.info("stopped")


def _freeze_startup_heap() -> None:
    """Load every grader type now (the first request would), then put what start-up made out of
    the cyclic garbage collector's reach (gc.freeze): a full collection scans only what grading
    made since, not some 100,000 start-up objects (measured 0.2-0.4 s each on a loaded 2-core
    machine, one every second or two under load, every thread stopped meanwhile)."""
    from ..plugins.registry import grader_types

    try:
        grader_types()
    except Exception:  # a broken add-on fails the requests that use it, as it would without this
        log.exception("loading the grader types failed")
    gc.collect()
    gc.freeze()


def _start_http(config: ServiceSettings, server: GraderServer, given: dict[str, object]) -> HttpServer:
    """The HTTP API beside the gRPC service: same tenants, graders and grading queue."""
    from ..grader_service.http import parse_base_models, start_http_server

    try:
        settings = settings_from(
            HttpSettings, {k: given.get(k) for k in HttpSettings.option_names()},
            host=config.host, port=config.http_port, data_dir=config.data_dir,
            database_url=config.database_url, base_models=parse_base_models(config.base_models),
            sandbox=config.sandbox,
            strict_uploads=config.strict_uploads, open_access=config.tokens_file is None,
        )  # fmt: skip
    except (click.UsageError, ValueError) as exc:
        server.stop(0)
        raise click.UsageError(str(exc)) from exc
    servicer = server.servicer
    try:
        return start_http_server(
            settings, auth=servicer.auth, graders=servicer.graders, admission=servicer.admission,
            grpc_address=server.address,
        )  # fmt: skip
    except OSError as exc:
        server.stop(0)
        raise click.ClickException(f"cannot listen on {config.host}:{config.http_port}: {exc}") from exc


if __name__ == "__main__":  # python -m rftkit.cli.serve (used by embedded.start_local_service)
    serve()
