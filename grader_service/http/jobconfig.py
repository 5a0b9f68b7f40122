"""From a fine-tuning job to the `rft train` config that runs it.

The base model's SOURCE (`--base-model NAME=SOURCE`) is a model directory or an rftkit config file;
a config file's `model:` section builds the model and its other sections (rollout, algo, trainer,
hyperparameters, ...) are that model's job defaults. The job supplies the data, the grader, the
seed, and the hyperparameters it sets (an `auto` keeps the default).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ...trainer.config import RunConfig, _resolve_paths, apply_override
from ...trainer.data.loader import DatasetError, load_dataset
from ...trainer.data.split import answer_overlap
from .errors import invalid

# Sections a job may override with `rftkit.overrides` (never model, data, grader or output_dir).
OVERRIDABLE = ("rollout.", "algo.", "trainer.", "eval.", "checkpoint.", "hyperparameters.")
HYPERPARAMETERS = (
    "n_epochs", "batch_size", "learning_rate_multiplier", "compute_multiplier", "eval_interval",
    "eval_samples", "reasoning_effort",
)  # fmt: skip
_ITEM_FIELD = re.compile(r"\{\{\s*item\.([A-Za-z0-9_.]+)\s*\}\}")


def base_defaults(source: str) -> dict[str, Any]:
    """A base model's config sections: `model` (paths resolved) and its job defaults."""
    path = Path(source)
    if path.is_dir():
        return {"model": {"path": str(path.resolve())}}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise ValueError(f"{source}: an rftkit config file with a `model:` section is needed")
    raw = {k: v for k, v in raw.items() if k not in ("grader", "output_dir")}
    data = raw.pop("data", None)
    _resolve_paths(raw, path.resolve().parent)
    if isinstance(data, dict) and data.get("answer_field"):
        raw["data"] = {"answer_field": data["answer_field"]}
    return raw


def answer_fields(
    grader: dict[str, Any], defaults: dict[str, Any], metadata: dict[str, Any] | None
) -> list[str]:
    """Item fields whose values must not be in both files: the job's `metadata.answer_field`, the base
    model's `data.answer_field`, else the fields the grader's references read (`{{item.x}}`)."""
    if metadata and metadata.get("answer_field"):
        return [str(metadata["answer_field"])]
    configured = (defaults.get("data") or {}).get("answer_field")
    if configured:
        return [configured]
    found: list[str] = []

    def walk(spec: Any) -> None:
        if isinstance(spec, dict):
            reference = spec.get("reference")
            if isinstance(reference, str):
                found.extend(f for f in _ITEM_FIELD.findall(reference) if f not in found)
            for child in (
                (spec.get("graders") or {}).values() if isinstance(spec.get("graders"), dict) else ()
            ):
                walk(child)

    walk(grader)
    return found


def check_overlap(train: Path, valid: Path, fields: list[str]) -> None:
    """400 when a value of an answer field is in both the training and the validation file."""
    try:
        train_lines, valid_lines = load_dataset(train), load_dataset(valid)
    except DatasetError as exc:
        raise invalid(f"the job's files cannot be read as datasets: {exc}", param="training_file") from None
    for field in fields:
        try:
            overlap = answer_overlap(train_lines, valid_lines, field)
        except KeyError:
            raise invalid(
                f"every line needs the answer field {field!r} (the grader's reference reads it)",
                param="training_file",
                code="missing_answer_field",
            ) from None
        if overlap:
            raise invalid(
                f"{len(overlap)} answer(s) of {field!r} are in both the training and the validation file "
                f"(e.g. {overlap[:5]}); validation would reward memorising. Split by answer "
                "(`rft data split --group-by`) and upload the files again.",
                param="validation_file",
                code="answer_overlap",
            )


def write_data(source: Path, target: Path, response_format: dict[str, Any] | None) -> None:
    """The job's own copy of a data file (the upload may be deleted later), with the job's response_format
    on every line that has none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if response_format is None:
        target.write_bytes(source.read_bytes())
        return
    with source.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as out:
        for raw in src:
            if raw.strip():
                line = json.loads(raw)
                line.setdefault("response_format", response_format)
                out.write(json.dumps(line) + "\n")


def build_config(
    defaults: dict[str, Any],
    *,
    train_file: Path,
    valid_file: Path,
    grader: dict[str, Any],
    hyperparameters: dict[str, Any],
    seed: int,
    sandbox: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The full `rft train` config of a job, validated (400 naming the key when it is not valid)."""
    config = copy.deepcopy(defaults)
    config.pop("data", None)
    config["data"] = {"train_file": str(train_file), "valid_file": str(valid_file)}
    config["grader"] = {"spec": grader, "sandbox": sandbox}
    hp = dict(config.get("hyperparameters") or {})
    for key, value in hyperparameters.items():
        if key not in HYPERPARAMETERS:
            raise invalid(
                f"unknown hyperparameter {key!r}; reinforcement takes: {', '.join(HYPERPARAMETERS)}",
                param=f"method.reinforcement.hyperparameters.{key}",
            )
        if value is not None and value != "auto":
            hp[key] = value
    config["hyperparameters"] = hp
    config.setdefault("trainer", {})["seed"] = seed
    config["progress"] = False
    for key, value in overrides.items():
        if not key.startswith(OVERRIDABLE):
            raise invalid(
                f"override {key!r} is not allowed; keys must start with one of {', '.join(OVERRIDABLE)}",
                param="rftkit.overrides",
            )
        apply_override(config, f"{key}={json.dumps(value)}")
    try:
        RunConfig.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise invalid(f"the job's training config is not valid: {problems}", param="method") from None
    return config
