"""`rft eval`: score one or more models on a held-out set with a grader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..evals.data import DatasetError
from ..evals.metrics import RANKED_METRICS
from ..evals.models import ModelArgError, ModelOptions
from ..evals.runner import RESULTS_FILE, SUMMARY_FILE, EvalRun, run_eval
from ..grader_service.client import GraderServiceError
from ..grader_service.embedded import ServiceStartError
from ..grading.spec_file import GraderFileError
from ..grading.verdict import USER_ERROR_CODES
from ..plugins.registry import GraderSpecError
from ..sandbox.api import BACKEND_NAMES


class BadInput(click.ClickException):
    """A mistake in the command's input: exit status 2, like click's usage errors."""

    exit_code = 2


def summary_table(summary: dict[str, Any]) -> Table:
    """The per-model metrics as a rich table."""
    models = summary["models"]
    ranked = any("top1" in m for m in models.values())
    table = Table(
        title=f"{summary['n_items']} items x {summary['samples_per_item']} sample(s), 95% CI in brackets"
    )
    columns = ["model", "n", "mean_reward", "pass_rate", *(RANKED_METRICS if ranked else ()), "errors"]
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, m in models.items():
        cells = [name, str(m["n"])]
        for metric in columns[2:-1]:
            lo, hi = m[f"{metric}_ci"]
            cells.append(f"{m[metric]:.3f} [dim]({lo:.2f}-{hi:.2f})[/dim]")
        cells.append(str(m.get("samples_with_errors", 0)))
        table.add_row(*cells)
    return table


@click.command("eval")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(path_type=Path),
    help="Held-out set: JSONL, one RFT dataset line (messages + reference fields) each.",
)
@click.option(
    "--grader",
    "grader",
    required=True,
    type=click.Path(path_type=Path),
    help="Grader spec: a .json grader spec (OpenAI's grader JSON) or a .py grader file.",
)
@click.option(
    "--model",
    "models",
    required=True,
    multiple=True,
    metavar="NAME=URL_OR_DIR_OR_PLUGIN",
    help="A model to score (repeatable): http(s)://host:port/v1 (OpenAI-compatible chat "
    "completions; append #MODEL_ID to pick the served model), a model directory (vLLM), "
    "or a model plugin name (entry-point group rftkit.models).",
)
@click.option(
    "--output-dir",
    "-o",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where results.jsonl, summary.json and grader.json go.",
)
@click.option(
    "--samples",
    "-n",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Samples per item and model.",
)
@click.option(
    "--server",
    default=None,
    metavar="HOST:PORT",
    help="Grader service to grade on; without it a local one is started for the run.",
)
@click.option("--token", envvar="RFT_TOKEN", default=None, help="Bearer token for --server (or $RFT_TOKEN).")
@click.option(
    "--sandbox",
    default="auto",
    show_default=True,
    type=click.Choice(BACKEND_NAMES),
    help="Sandbox for Python graders in the local grader service.",
)
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests in flight per HTTP model.",
)
@click.option("--max-items", default=None, type=click.IntRange(min=1), help="Score only the first N items.")
@click.option(
    "--pass-threshold",
    default=None,
    type=float,
    help="Reward at or above which a sample passes [default: the spec's pass_threshold, else 1.0].",
)
@click.option("--temperature", default=None, type=float, help="Sampling temperature [default: the server's].")
@click.option("--max-tokens", default=None, type=click.IntRange(min=1), help="Completion token limit.")
@click.option(
    "--retries",
    default=4,
    show_default=True,
    type=click.IntRange(min=0),
    help="Retries per HTTP request (connection errors, 429, 5xx), with backoff.",
)
@click.option(
    "--timeout", "timeout_s", default=300.0, show_default=True, type=float, help="Seconds per HTTP request."
)
@click.option("--api-key", envvar="OPENAI_API_KEY", default=None, help="Bearer key for HTTP models.")
@click.option(
    "--engine",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "vllm", "transformers"]),
    help="How model directories are sampled: auto is vLLM when installed, else transformers.",
)
def eval_command(
    data: Path,
    grader: Path,
    models: tuple[str, ...],
    output_dir: Path,
    samples: int,
    server: str | None,
    token: str | None,
    sandbox: str,
    concurrency: int,
    max_items: int | None,
    pass_threshold: float | None,
    temperature: float | None,
    max_tokens: int | None,
    retries: int,
    timeout_s: float,
    api_key: str | None,
    engine: str,
) -> None:
    """Score one or more models on a held-out set with a grader; write per-sample results and a summary."""
    run = EvalRun(
        data=data,
        grader=grader,
        models=list(models),
        output_dir=output_dir,
        samples=samples,
        server=server,
        token=token,
        sandbox=sandbox,
        max_items=max_items,
        pass_threshold=pass_threshold,
        options=ModelOptions(
            concurrency=concurrency,
            retries=retries,
            timeout_s=timeout_s,
            temperature=temperature,
            max_tokens=max_tokens,
            api_key=api_key,
            engine=engine,
        ),
    )
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
    console.print(f"results: {output_dir / RESULTS_FILE}\nsummary: {output_dir / SUMMARY_FILE}")
