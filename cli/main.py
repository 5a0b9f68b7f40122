"""The `rft` command: a root group whose subcommands live beside the code they drive.

Each entry of `SUBCOMMANDS` is imported only when used, so `rft graders run` does not import
torch and `rft train` does not start anything it does not need. `EXTENSIONS` adds commands
from other folders into a group (the remote `rft graders upload|list|show|delete`).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> ("module:attribute" of a click command or group, one line of help shown by `rft --help`).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "graders": ("rftkit.cli.graders:graders", "Validate, run, upload and manage graders."),
    "serve": ("rftkit.cli.serve:serve", "Run the grader service (gRPC; --http-port adds the OpenAI API)."),
    "sandbox": ("rftkit.cli.sandbox:sandbox", "Build and inspect the sandboxes for Python graders."),
    "data": ("rftkit.cli.data:data", "Validate and split RFT datasets (JSONL)."),
    "train": ("rftkit.cli.train:train", "Reinforcement fine-tune a model against a grader."),
    "eval": ("rftkit.cli.eval:eval_command", "Score one or more models on a held-out set."),
    "report": ("rftkit.cli.report:report", "Write a self-contained HTML report of runs."),
}
# group name -> "module:attribute" of a list of click commands added to that group.
EXTENSIONS: dict[str, list[str]] = {
    "graders": ["rftkit.cli.graders_remote:commands"],
}


def _load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        command = _load(SUBCOMMANDS[name][0])
        if isinstance(command, click.Group):
            for extension in EXTENSIONS.get(name, []):
                try:
                    extra = _load(extension)
                except ModuleNotFoundError as exc:
                    if not (exc.name or "").startswith("rftkit"):
                        raise
                    continue  # that part of rftkit is not built yet
                for sub in extra:
                    if sub.name not in command.commands:
                        command.add_command(sub)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table, so that `rft --help` imports none of the subcommands.
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rftkit")
def main() -> None:
    """rftkit: reinforcement fine-tuning with your own graders, on your own machines."""
