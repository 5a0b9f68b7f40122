"""`rft sandbox build` and `rft sandbox status`."""

from __future__ import annotations

import shutil
import sys
import time

import click

from ..sandbox import build, paths
from ..sandbox.backends import backend_problem, clear_cache


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


@sandbox.command("bench")
@click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(["docker", "namespace", "process"]),
    help="Backends to measure (default: docker and namespace).",
)
@click.option("--batch", default=5000, show_default=True, help="Samples in the large warm batch.")
@click.option("--workers", type=int, default=None, help="Pool size (default: the host's cores).")
def bench_command(backends: tuple[str, ...], batch: int, workers: int | None) -> None:
    """Measure cold start and warm per-sample overhead against calling grade() in-process."""
    from ..sandbox.api import SandboxUnavailable
    from ..sandbox.bench import bench_backend, in_process_per_sample_us

    click.echo(f"in-process grade(): {in_process_per_sample_us():.2f} us/sample")
    click.echo(
        "backend    workers  cold start  pool cold start  warm 1-sample batch  warm per sample (batch)"
    )
    for name in backends or ("docker", "namespace"):
        try:
            r = bench_backend(name, batch=batch, workers=workers)
        except SandboxUnavailable as exc:
            click.echo(f"{name:10s} unavailable: {exc}")
            continue
        click.echo(
            f"{r.backend:10s} {r.workers:7d} {r.cold_start_s:9.3f}s {r.pool_cold_start_s:15.3f}s "
            f"{r.warm_latency_us / 1000:18.2f}ms {r.warm_per_sample_us:20.1f}us"
        )
