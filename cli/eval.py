"""`rft eval`: score one or more models on a held-out set with a grader."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..evals.data import DatasetError
from ..evals.models import ModelArgError
from ..evals.runner import RESULTS_FILE, SUMMARY_FILE, run_eval
from ..evals.settings import EvalSettings
from ..grader_service.client import GraderServiceError
from ..grader_service.embedded import ServiceStartError
from ..grading.spec_file import GraderFileError
from ..grading.verdict import USER_ERROR_CODES
from ..plugins.registry import GraderSpecError
from .options import options_from, settings_from


class BadInput(click.ClickException):
    """A mistake in the command's input: exit status 2, like click's usage errors."""

    exit_code = 2


def summary_table(summary: dict[str, Any]) -> Table:
    """The per-model metrics as a rich table."""
    models = summary["models"]
    rates = [rate["name"] for rate in summary["grader"].get("rates", [])]
    table = Table(
        title=f"{summary['n_items']} items x {summary['samples_per_item']} sample(s), 95% CI in brackets"
    )
    columns = ["model", "n", "mean_reward", "pass_rate", *rates, "errors", "invalid"]
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in models.items():
        cells = [name, str(m["n"])]
        for metric in columns[2:-2]:
            lo, hi = m[f"{metric}_ci"]
            cells.append(f"{m[metric]:.3f} [dim]({lo:.2f}-{hi:.2f})[/dim]")
        cells.append(str(m.get("samples_with_errors", 0)))
        cells.append(str(m.get("invalid_samples", 0)))
        table.add_row(*cells)
    return table


@click.command("eval")
@options_from(EvalSettings)
def eval_command(**given: Any) -> None:
    """Score one or more models on a held-out set with a grader; write per-sample results and a summary."""
    run = settings_from(EvalSettings, given)
    try:
        summary = run_eval(run)
    except (DatasetError, GraderFileError, GraderSpecError, ModelArgError) as exc:
        raise BadInput(str(exc)) from exc
    except GraderServiceError as exc:
        if exc.code in USER_ERROR_CODES:
            raise BadInput(f"the grader service refused the grader: {exc}") from exc
        raise click.ClickException(f"grader service: {exc}") from exc
    except ServiceStartError as exc:
        raise click.ClickException(f"could not start a local grader service: {exc}") from exc
    console = Console()
    if not console.is_terminal:
        console.width = 140  # a log file is not a narrow terminal
    console.print(summary_table(summary))
    console.print(f"results: {run.output_dir / RESULTS_FILE}\nsummary: {run.output_dir / SUMMARY_FILE}")
