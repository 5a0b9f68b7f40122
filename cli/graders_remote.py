"""`rft graders upload|list|show|delete --server ADDR`: manage graders on a grader service.

Each command prints one JSON object on stdout. The token comes from --token or $RFT_TOKEN.
A refused call prints the status and reason on stderr and exits 2 for
errors in the request (bad spec, unknown grader, bad token) and 1 otherwise (server unreachable).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..core.records import Sample
from ..grader_service.client import GRADER_ID_RE, GraderClient, GraderServiceError, RetryPolicy
from ..grading.spec_file import GraderFileError, load_grader_file
from ..grading.verdict import exit_code_for


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _load_spec(path: str) -> dict[str, Any]:
    """The grader spec in a grader file; exits 2 saying what is wrong."""
    try:
        return load_grader_file(path)
    except GraderFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@contextmanager
def _client(server: str, token: str | None, tls_ca: Path | None) -> Iterator[GraderClient]:
    try:
        # A command answers at once: a server that is down is an error to show, not to wait out.
        once = RetryPolicy(attempts=1)
        with GraderClient(server, token, tls_ca=tls_ca, timeout=120.0, retry=once) as client:
            yield client
    except GraderServiceError as exc:
        click.echo(f"error: {exc.code.name}: {exc.details}", err=True)
        sys.exit(exit_code_for(exc.code))


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--tls-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="CA certificate (PEM)."
    )(command)
    command = click.option(
        "--token",
        envvar="RFT_TOKEN",
        metavar="TOKEN",
        help="Bearer token (or $RFT_TOKEN).",
    )(command)
    return click.option("--server", required=True, metavar="ADDR", help="Grader service host:port.")(command)


@click.command("upload")
@click.argument("spec", metavar="SPEC_FILE")
@click.option("--name", help="Name for a .py grader (default: the file name).")
@click.option("--grader-id", help="Add a version to this grader instead of creating a new one.")
@click.option("--strict", is_flag=True, help="Refuse what the upload policy would only warn about.")
@_server_options
def upload(
    spec: str,
    name: str | None,
    grader_id: str | None,
    strict: bool,
    server: str,
    token: str | None,
    tls_ca: Path | None,
) -> None:
    """Upload a grader (.json spec or .py file with grade(sample, item)); prints {"id", "version"}.

    Upload-policy warnings go to stderr.
    """
    data = _load_spec(spec)
    if name and data.get("type") == "python":
        data["name"] = name
    with _client(server, token, tls_ca) as client:
        grader = client.upload_grader(data, grader_id=grader_id, strict=strict)
    for warning in grader.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    _emit({"id": grader["id"], "version": grader["version"]})


@click.command("list")
@_server_options
def list_graders(server: str, token: str | None, tls_ca: Path | None) -> None:
    """List your graders on the service; prints {"graders": [...]}."""
    with _client(server, token, tls_ca) as client:
        _emit({"graders": client.list_graders()})


@click.command("show")
@click.argument("grader_id")
@click.option("--version", help="A version other than the current one.")
@_server_options
def show(grader_id: str, version: str | None, server: str, token: str | None, tls_ca: Path | None) -> None:
    """Show one grader with its spec and versions."""
    with _client(server, token, tls_ca) as client:
        _emit(client.get_grader(grader_id, version))


@click.command("delete")
@click.argument("grader_id")
@_server_options
def delete(grader_id: str, server: str, token: str | None, tls_ca: Path | None) -> None:
    """Delete a grader and its versions; prints {"id", "deleted"}."""
    with _client(server, token, tls_ca) as client:
        _emit({"id": grader_id, "deleted": client.delete_grader(grader_id)})


commands = [upload, list_graders, show, delete]


def run_remote(
    spec_or_id: str, sample: Sample, item: dict[str, Any], server: str, token: str | None
) -> dict[str, Any]:
    """Grade one sample on a service: a stored grader's id, or a spec/.py file run inline.

    Returns the same shape as the local `rft graders run`: {reward, sub_rewards, metadata}.
    """
    grader: str | dict[str, Any] = spec_or_id if GRADER_ID_RE.match(spec_or_id) else _load_spec(spec_or_id)
    with _client(server, token, None) as client:
        result = client.run(grader, sample, item)
    return result.to_plain()
