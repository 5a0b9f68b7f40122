"""`rft sandbox build` and `rft sandbox status`."""

from __future__ import annotations

import shutil
import sys
import time

import click
from rftkit.sandbox import build, paths
from rftkit.sandbox.backends import backend_problem, clear_cache


@click.group("sandbox")
def sandbox() -> None:
    """Build and inspect the sandboxes for Python graders."""


@sandbox.command("build")
@click.option(
    "--backend",
    type=click.Choice(["all", "namespace", "docker"]),
    default="all",
    show_default=True,
    help="What to build: the venv (namespace), the image (docker, needs the venv too), or both.",
)
@click.option(
    "--base",
    default="auto",
    show_default=True,
    help="Image base: auto (python:3.11-slim if present or pullable, else offline), offline, "
    "or an image name.",
)
@click.option("--force", is_flag=True, help="Rebuild even when up to date.")
@click.option("--quiet", is_flag=True, help="Only print the summary.")
def build_command(backend: str, base: str, force: bool, quiet: bool) -> None:
    """Build the grader venv and the Docker sandbox image (a fast no-op when up to date)."""

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message)

    started = time.monotonic()
    failures: list[str] = []
    try:
        build.build_venv(progress, force=force)
    except build.BuildError as exc:
        raise click.ClickException(str(exc)) from exc
    if backend in ("all", "docker"):
        if shutil.which("docker") is None and backend == "all":
            click.echo("docker is not installed: skipping the image (apt-get install docker.io)", err=True)
        else:
            try:
                build.build_image(progress, base=base, force=force)
            except build.BuildError as exc:
                failures.append(str(exc))
    clear_cache()
    _print_status()
    click.echo(f"done in {time.monotonic() - started:.1f} s")
    if failures:
        raise click.ClickException("\n".join(failures))


@sandbox.command("status")
def status_command() -> None:
    """Show which sandbox backends work here and which `auto` would pick."""
    ok = _print_status()
    sys.exit(0 if ok else 1)


def _print_status() -> bool:
    click.echo(f"state dir: {paths.state_dir()}")
    click.echo(f"image: {paths.image_tag()}")
    usable = []
    for name in ("docker", "namespace"):
        problem = backend_problem(name)
        click.echo(f"{name:10s} {'ready' if problem is None else 'unavailable: ' + problem}")
        if problem is None:
            usable.append(name)
    click.echo(f"auto       -> {usable[0] if usable else 'none (Python graders are refused)'}")
    return bool(usable)
