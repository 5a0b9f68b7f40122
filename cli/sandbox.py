"""`rft sandbox build` and `rft sandbox status`."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

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
    "--image-tag",
    "image_tags",
    multiple=True,
    help="Which environments to build (repeatable): a tag from `rft sandbox status`, or `all`. "
    f"Default: {paths.DEFAULT_IMAGE_TAG} (OpenAI's published tag, its pins), or "
    "$RFTKIT_SANDBOX_IMAGE_TAG. With --requirements: the name of your own tag.",
)
@click.option(
    "--requirements",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A pip requirements file of your own packages: builds the tag named by --image-tag with "
    'them on top of --extends. Graders select it with "image_tag".',
)
@click.option(
    "--extends",
    default=None,
    help="With --requirements: the shipped tag your packages go on top of "
    f"(default {paths.DEFAULT_IMAGE_TAG}).",
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
def build_command(
    backend: str,
    image_tags: tuple[str, ...],
    requirements: Path | None,
    extends: str | None,
    base: str,
    force: bool,
    quiet: bool,
) -> None:
    """Build the grader venv and the Docker sandbox image of each image tag (a no-op when up to date)."""

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message)

    started = time.monotonic()
    failures: list[str] = []
    try:
        tags = _tags_to_build(image_tags, requirements, extends)
        for tag in tags:
            build.build_venv(progress, tag=tag, force=force)
    except (build.BuildError, paths.UnknownImageTag) as exc:
        raise click.ClickException(str(exc)) from exc
    if backend in ("all", "docker"):
        if shutil.which("docker") is None and backend == "all":
            click.echo("docker is not installed: skipping the image (apt-get install docker.io)", err=True)
        else:
            for tag in tags:
                try:
                    build.build_image(progress, tag=tag, base=base, force=force)
                except build.BuildError as exc:
                    failures.append(str(exc))
    clear_cache()
    _print_status()
    click.echo(f"done in {time.monotonic() - started:.1f} s")
    if failures:
        raise click.ClickException("\n".join(failures))


def _tags_to_build(image_tags: tuple[str, ...], requirements: Path | None, extends: str | None) -> list[str]:
    if requirements is not None:
        if len(image_tags) != 1 or image_tags[0] == "all":
            raise click.UsageError("--requirements needs exactly one --image-tag NAME: your tag's name")
        return [build.add_requirements(image_tags[0], requirements, extends=extends)]
    if extends is not None:
        raise click.UsageError("--extends goes with --requirements")
    if "all" in image_tags:
        return list(paths.image_tags())
    return [paths.resolve_tag(tag) for tag in image_tags or (None,)]


@sandbox.command("status")
def status_command() -> None:
    """Show the image tags, which sandbox backends work here, and which `auto` would pick."""
    ok = _print_status()
    sys.exit(0 if ok else 1)


def _print_status() -> bool:
    click.echo(f"state dir: {paths.state_dir()}")
    default = paths.default_tag()
    for tag, requirements in paths.image_tags().items():
        try:
            venv = "built" if paths.venv_ready(tag) else "not built"
            image = paths.docker_image(tag)
        except paths.UnknownImageTag as exc:  # a team's tag whose base tag is gone
            click.echo(f"image tag {tag}: {exc}")
            continue
        mark = " (default)" if tag == default else ""
        origin = "shipped" if paths.is_shipped(tag) else f"yours, on {paths.extends(tag)}"
        click.echo(f"image tag {tag}{mark}: {origin}, {requirements}; venv {venv}; image {image}")
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
