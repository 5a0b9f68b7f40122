"""Options generated from a settings class: flags, environment and defaults from one declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rftkit.cli.options import options_from, settings_from


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RFT_DEMO_", extra="forbid")

    data: Path = Field(description="Input file.")
    models: list[str] = Field(description="A model (repeatable).", json_schema_extra={"flag": "--model"})
    samples: int = Field(1, ge=1, description="Samples per item.", json_schema_extra={"short": "-n"})
    mode: Literal["fast", "slow"] = Field("fast", description="How.")
    strict: bool = Field(False, description="Refuse more.")
    timeout_s: float = Field(5.0, description="Seconds.", json_schema_extra={"flag": "--timeout"})


@click.command()
@options_from(DemoSettings)
def demo(**given: Any) -> None:
    click.echo(settings_from(DemoSettings, given).model_dump_json())


def run(args: list[str], env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(demo, args, env=env or {})


def test_flags_types_and_defaults_come_from_the_fields() -> None:
    result = run(
        ["--data", "x.jsonl", "--model", "a", "--model", "b", "-n", "3", "--strict", "--timeout", "2"]
    )
    assert result.exit_code == 0, result.output
    assert '"models":["a","b"]' in result.output and '"samples":3' in result.output
    assert (
        '"strict":true' in result.output
        and '"timeout_s":2.0' in result.output
        and '"mode":"fast"' in result.output
    )
    text = run(["--help"]).output
    assert "--model TEXT" in text and "-n, --samples INTEGER" in text and "[fast|slow]" in text
    assert "env: RFT_DEMO_SAMPLES" in text and "default: 5.0" in text


def test_the_environment_fills_what_the_command_line_leaves_out() -> None:
    env = {"RFT_DEMO_DATA": "from-env.jsonl", "RFT_DEMO_MODELS": '["m"]', "RFT_DEMO_SAMPLES": "7"}
    result = run([], env)
    assert result.exit_code == 0, result.output
    assert '"data":"from-env.jsonl"' in result.output and '"samples":7' in result.output
    assert '"samples":2' in run(["-n", "2"], env).output  # the flag wins over the environment


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--data: Field required"),
        (["--data", "x", "--model", "a", "-n", "0"], "--samples: Input should be"),
    ],
)
def test_bad_or_missing_values_name_the_option(args: list[str], message: str) -> None:
    result = run(args)
    assert result.exit_code == 2 and message in result.output, result.output
