"""`rft graders validate|run|types`: try graders locally before spending compute on them.

Each command prints one JSON object on stdout. Bad input (a missing file, JSON that does not
parse, a spec that does not validate) exits 2 with a message on stderr that says what to fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..core.records import Sample
from ..grading.spec_file import GraderFileError, load_grader_file
from ..plugins.base import GraderContext
from ..plugins.registry import GraderSpecError, build_grader, describe_types, grader_types, parse_spec
from ..sandbox.api import BACKEND_NAMES

SANDBOXES = BACKEND_NAMES


def fail(message: str, output: dict[str, Any] | None = None) -> NoReturn:
    """Exit 2 with a message on stderr (and, where given, a JSON object on stdout)."""
    if output is not None:
        emit(output)
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, allow_nan=False))  # ASCII-escaped: safe on any terminal encoding


def read_arg(value: str, what: str) -> str:
    """The text of an argument, or of the file it names with a leading @ (one final newline dropped)."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{what}: cannot read {path}: {exc}")
    return text[:-1] if text.endswith("\n") else text


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")


def load_spec(path_text: str) -> dict[str, Any]:
    """The grader spec in a grader file (.json, .yaml, .py); exits 2 saying what is wrong."""
    try:
        return load_grader_file(path_text)
    except GraderFileError as exc:
        fail(str(exc))


@click.group()
def graders() -> None:
    """Validate, run and list grader types."""


@graders.command()
@click.argument("spec", metavar="SPEC")
@click.option("--strict", is_flag=True, help="Refuse (not just report) risky constructs in Python graders.")
def validate(spec: str, strict: bool) -> None:
    """Check a grader SPEC (.json spec or .py grader file) without running it."""
    data = load_spec(spec)
    try:
        parsed = parse_spec(data)
    except GraderSpecError as exc:
        fail(str(exc), {"valid": False, "errors": [str(exc)], "warnings": []})
    errors, warnings = grader_types()[parsed.type].review(parsed, strict=strict)
    report = {
        "valid": not errors,
        "type": parsed.type,
        "name": parsed.name,
        "errors": errors,
        "warnings": warnings,
        "spec": parsed.model_dump(mode="json", exclude_none=True),
    }
    if errors:
        fail("; ".join(errors), report)
    emit(report)


def load_sample(sample: str | None, sample_object: str | None) -> Sample:
    if (sample is None) == (sample_object is None):
        fail("give exactly one of --sample (the model's output text) or --sample-object (a sample as JSON)")
    if sample is not None:
        return Sample.from_text(read_arg(sample, "--sample"))
    data = parse_json(read_arg(sample_object or "", "--sample-object"), "--sample-object")
    if not isinstance(data, dict):
        fail('--sample-object must be a JSON object like {"output_text": ..., "output_tools": [...]}')
    try:
        return Sample.from_data(data)
    except ValueError as exc:  # an invalid sample (Sample.from_data)
        fail(f"--sample-object: {exc}")


@graders.command()
@click.argument("spec", metavar="SPEC")
@click.option(
    "--sample", "sample", metavar="TEXT_OR_@FILE", help="The model's output text (@path reads a file)."
)
@click.option(
    "--sample-object",
    metavar="JSON_OR_@FILE",
    help="A whole sample as JSON: output_text, output_json, output_tools, choices.",
)
@click.option("--item", default="{}", metavar="JSON_OR_@FILE", help="The dataset item, a JSON object.")
@click.option(
    "--sandbox",
    type=click.Choice(SANDBOXES),
    default="auto",
    show_default=True,
    help="Where Python graders run; `process` is a plain child process with no isolation.",
)
@click.option("--judge-url", metavar="URL", help="OpenAI-compatible endpoint for score_model/label_model.")
@click.option("--server", metavar="ADDR", help="Grade on a grader service (host:port) instead of locally.")
@click.option("--token", envvar="RFT_TOKEN", metavar="T", help="Token for --server (or $RFT_TOKEN).")
def run(
    spec: str,
    sample: str | None,
    sample_object: str | None,
    item: str,
    sandbox: str,
    judge_url: str | None,
    server: str | None,
    token: str | None,
) -> None:
    """Grade one sample with a grader SPEC and print {reward, sub_rewards, metadata}."""
    the_sample = load_sample(sample, sample_object)
    the_item = parse_json(read_arg(item, "--item"), "--item")
    if not isinstance(the_item, dict):
        fail(f"--item must be a JSON object, got {type(the_item).__name__}")
    if server:
        from .graders_remote import run_remote

        emit(run_remote(spec, the_sample, the_item, server, token))
        return
    try:
        parsed = parse_spec(load_spec(spec))
    except GraderSpecError as exc:
        fail(str(exc))
    grader = build_grader(parsed, GraderContext(sandbox=sandbox, judge_base_url=judge_url))
    try:
        result = grader.grade_batch([(the_sample, the_item)])[0]
    finally:
        grader.close()
    emit(result.to_plain())


@graders.command()
def types() -> None:
    """List the installed grader types (entry-point group rftkit.graders)."""
    emit({"types": describe_types()})
