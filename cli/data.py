"""`rft data validate` and `rft data split`: check and split RFT datasets (JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..trainer.data.loader import DatasetError, load_dataset
from ..trainer.data.schema import DatasetLine
from ..trainer.data.split import (
    answer_overlap,
    field_key,
    group_split,
    key_fields,
    label_values,
    prompt_overlap,
)


def _load_or_exit(path: str) -> list:
    try:
        return load_dataset(path)
    except DatasetError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


@click.group("data")
def data() -> None:
    """Validate and split RFT datasets (JSONL, one chat prompt per line)."""


@data.command("validate")
@click.argument("train_file", type=click.Path(dir_okay=False))
@click.argument("valid_file", type=click.Path(dir_okay=False), required=False)
@click.option("--answer-field", help="Field holding the answer; fails when an answer is in both files.")
def validate(train_file: str, valid_file: str | None, answer_field: str | None) -> None:
    """Check every line of TRAIN_FILE (and VALID_FILE); exit 2 on bad lines or answer overlap."""
    problems: list[str] = []
    loaded = {}
    for path in filter(None, [train_file, valid_file]):
        try:
            loaded[path] = load_dataset(path)
        except DatasetError as exc:
            problems.extend(exc.problems)
    if not problems and answer_field:
        for path, lines in loaded.items():
            for number, line in enumerate(lines, start=1):
                try:
                    field_key(line, answer_field)
                except KeyError:
                    problems.append(f"{path}: item {number}: no field {answer_field!r}")
        if not problems and valid_file:
            train, valid = loaded[train_file], loaded[valid_file]
            overlap = answer_overlap(train, valid, answer_field)
            labels = label_values([*train, *valid], answer_field) if overlap else None
            if labels is not None:
                _explain_labels(train, valid, answer_field, labels, len(overlap))
            elif overlap:
                shown = ", ".join(overlap[:20]) + (" ..." if len(overlap) > 20 else "")
                problems.append(
                    f"{len(overlap)} answer(s) of {answer_field!r} appear in both files: {shown}. "
                    "The model could memorise them; split with `rft data split --group-by`."
                )
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2)
    counts = ", ".join(f"{Path(p).name}: {len(v)} lines" for p, v in loaded.items())
    click.echo(f"ok ({counts})")


def _explain_labels(
    train: list[DatasetLine], valid: list[DatasetLine], field: str, labels: list[str], shared: int
) -> None:
    """A label field overlaps by design: say so, and name the fields that should be disjoint."""
    shown = ", ".join(labels)
    total = len(train) + len(valid)
    click.echo(
        f"note: {field!r} holds labels ({len(labels)} distinct values over {total} lines: {shown}), "
        f"so the {shared} value(s) found in both files are expected, not a leak: every class "
        "should appear in both.",
        err=True,
    )
    suggestions = []
    for name, distinct in key_fields([*train, *valid], exclude=[field])[:3]:
        both = len(answer_overlap(train, valid, name))
        suggestions.append(f"--answer-field {name} ({distinct} distinct values, {both} in both files)")
    prompts = prompt_overlap(train, valid)
    what = "; ".join(suggestions) if suggestions else "a field that identifies each example (an id)"
    click.echo(
        f"note: what should not straddle the files is each example's own key: {what}. "
        f"Identical prompts in both files: {prompts}.",
        err=True,
    )


@data.command("split")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--group-by", required=True, help="Field whose values never straddle train and valid.")
@click.option("--valid-fraction", default=0.2, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out-dir", required=True, type=click.Path(file_okay=False))
def split(file: str, group_by: str, valid_fraction: float, seed: int, out_dir: str) -> None:
    """Write OUT_DIR/train.jsonl and OUT_DIR/valid.jsonl with disjoint GROUP_BY values."""
    lines = _load_or_exit(file)
    try:
        train, valid = group_split(lines, group_by, valid_fraction, seed)
    except KeyError as exc:
        click.echo(f"error: a line has no field {exc.args[0]!r} to group by", err=True)
        raise SystemExit(2) from exc
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("valid", valid)):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for line in part:
                handle.write(json.dumps(line.item(), ensure_ascii=False) + "\n")
    click.echo(f"train: {len(train)} lines, valid: {len(valid)} lines -> {out}")
