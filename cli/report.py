"""`rft report RUN_DIR [RUN_DIR ...] -o report.html`: one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from ..evals.report.page import render
from ..evals.report.runs import RunDirError, load_runs


class BadInput(click.ClickException):
    exit_code = 2


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The HTML file to write.")  # fmt: skip
@click.option("--title", default="rftkit report", show_default=True, help="Heading of the page.")
def report(run_dirs: tuple[Path, ...], output: Path, title: str) -> None:
    """Write one HTML file (it loads nothing from the network) showing eval runs (`rft eval` output
    folders) and training runs (`rft train` output folders with events.jsonl)."""
    try:
        runs = load_runs(list(run_dirs))
    except RunDirError as exc:
        raise BadInput(str(exc)) from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(runs, title), encoding="utf-8")
    samples = sum(len(run.records) for run in runs.evals)
    click.echo(
        f"wrote {output} ({output.stat().st_size // 1024} KiB): {len(runs.evals)} eval run(s), "
        f"{samples} samples, {len(runs.trainings)} training run(s)"
    )
