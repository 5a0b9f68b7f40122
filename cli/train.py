"""`rft train CONFIG --output-dir DIR [--set key=value ...] [--key.path=value ...]`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..trainer.config import ConfigError, RunConfig, load_config
from ..trainer.data.loader import DatasetError


def _dotted(args: list[str]) -> list[str]:
    """`--trainer.learning_rate=1e-4` or `--trainer.learning_rate 1e-4` -> `trainer.learning_rate=1e-4`."""
    overrides, index = [], 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise click.UsageError(
                f"unexpected argument {arg!r}; overrides look like --set a.b=value or --a.b=value"
            )
        if "=" in arg:
            overrides.append(arg[2:])
        elif index + 1 < len(args):
            overrides.append(f"{arg[2:]}={args[index + 1]}")
            index += 1
        else:
            raise click.UsageError(f"{arg} needs a value")
        index += 1
    return overrides


@click.command("train", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option(
    "--output-dir", "-o", type=click.Path(file_okay=False), help="Run folder (default: output_dir)."
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable)."
)
@click.option("--no-progress", is_flag=True, help="Log lines only, no progress bar.")
@click.option(
    "--check",
    is_flag=True,
    help="Validate the config, load the grader and the datasets, print the plan; start nothing.",
)
@click.pass_context
def train(
    ctx: click.Context,
    config_file: str,
    output_dir: str | None,
    overrides: tuple[str, ...],
    no_progress: bool,
    check: bool,
) -> None:
    """Reinforcement fine-tune a model against a grader (GRPO, vLLM rollouts, the grader service).

    Any config key can be overridden with --set a.b=value or --a.b=value (values are YAML), e.g.
    --set trainer.learning_rate=1e-4 --hyperparameters.batch_size=16. Running the same command
    again after an interruption (even kill -9) resumes from the newest checkpoint in the output folder.
    """
    try:
        config = load_config(config_file, [*overrides, *_dotted(list(ctx.args))])
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    if check:
        _check(config)
        return
    if no_progress:
        config.progress = False
    folder = output_dir or config.output_dir
    if not folder:
        click.echo("error: give --output-dir DIR (or output_dir in the config)", err=True)
        raise SystemExit(2)
    from ..grader_service.client import GraderServiceError
    from ..grader_service.embedded import ServiceStartError
    from ..grading.session import GradingUnavailable
    from ..grading.spec_file import GraderFileError
    from ..grading.verdict import exit_code_for
    from ..plugins.registry import GraderSpecError
    from ..trainer.loop import InvalidBatchError, RFTTrainer, TrainerRanksFailed, TrainingError

    try:
        RFTTrainer(config, Path(folder), echo=lambda m: click.echo(m)).run()
    except (TrainingError, DatasetError, FileNotFoundError, GraderFileError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    except GraderSpecError as exc:  # checked here before the service would refuse it the same way
        click.echo(f"error: the grader spec is invalid (INVALID_ARGUMENT): {exc}", err=True)
        raise SystemExit(2) from exc
    except GraderServiceError as exc:  # e.g. the service refused the grader spec
        click.echo(f"error: the grader service refused the run: {exc}", err=True)
        raise SystemExit(exit_code_for(exc.code)) from exc
    except (GradingUnavailable, ServiceStartError, InvalidBatchError, TrainerRanksFailed) as exc:  # 1
        click.echo(
            f"error: {exc}\nThe newest checkpoint is kept: run the same command again to resume.", err=True
        )
        raise SystemExit(1) from exc


def _check(config: RunConfig) -> None:
    """`--check`: print what the run would use as JSON, or the reason it cannot run (exit 2)."""
    from ..grading.spec_file import GraderFileError
    from ..plugins.registry import GraderSpecError
    from ..trainer.check import CheckFailed, check_run
    from ..trainer.data.run_data import AnswerOverlapError

    try:
        report = check_run(config)
    except (GraderFileError, GraderSpecError, CheckFailed, DatasetError, AnswerOverlapError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    for warning in report["grader"]["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps({"ok": True, **report}, indent=2))
