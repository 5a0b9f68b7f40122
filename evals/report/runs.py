"""Read the run folders a report shows: eval runs (summary.json with "models" + results.jsonl) and
training runs (`rft train` output: events.jsonl with step, train_reward_mean and, at eval steps,
valid_reward_mean; its summary.json names the final model and the kept checkpoints)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
RESULTS_FILE = "results.jsonl"
EVENTS_FILE = "events.jsonl"


class RunDirError(ValueError):
    """A folder that is neither an eval run nor a training run, or holds broken files."""


@dataclass
class EvalRunData:
    path: Path
    label: str
    summary: dict[str, Any]
    records: list[dict[str, Any]]


@dataclass
class TrainingRunData:
    path: Path
    label: str
    events: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)  # `rft train`'s summary.json, once it finished

    @property
    def checkpoints(self) -> list[dict[str, Any]]:
        kept = self.summary.get("checkpoints")
        return [c for c in kept if isinstance(c, dict)] if isinstance(kept, list) else []


@dataclass
class Runs:
    evals: list[EvalRunData] = field(default_factory=list)
    trainings: list[TrainingRunData] = field(default_factory=list)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise RunDirError(f"{path}:{line_no}: expected a JSON object")
        rows.append(row)
    return rows


def _summary(path: Path) -> dict[str, Any] | None:
    """DIR/summary.json as an object (None when absent); written by `rft eval` and by `rft train`."""
    file = path / SUMMARY_FILE
    if not file.is_file():
        return None
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{file}: not valid JSON ({exc.msg})") from exc
    if not isinstance(summary, dict):
        raise RunDirError(f"{file}: expected a JSON object")
    return summary


def is_eval_summary(summary: dict[str, Any] | None) -> bool:
    return summary is not None and isinstance(summary.get("models"), dict)


def load_eval(path: Path, label: str, summary: dict[str, Any]) -> EvalRunData:
    results = path / RESULTS_FILE
    records = _jsonl(results) if results.is_file() else []
    return EvalRunData(path, label, summary, records)


def load_training(path: Path, label: str, summary: dict[str, Any] | None = None) -> TrainingRunData:
    events = [e for e in _jsonl(path / EVENTS_FILE) if isinstance(e.get("step"), int | float)]
    run_summary = summary if summary is not None and not is_eval_summary(summary) else {}
    return TrainingRunData(path, label, sorted(events, key=lambda e: e["step"]), run_summary)


def _labels(paths: list[Path]) -> list[str]:
    """Short unique names: the folder name, with its parent's where two folders share a name."""
    names = [p.name or str(p) for p in paths]
    return [
        f"{p.parent.name}/{p.name}" if names.count(name) > 1 else name
        for p, name in zip(paths, names, strict=True)
    ]


def load_runs(paths: list[str | Path]) -> Runs:
    """Every folder as an eval run, a training run, or both (a training run with its own eval)."""
    resolved = [Path(p).resolve() for p in paths]
    runs = Runs()
    for path, label in zip(resolved, _labels(resolved), strict=True):
        if not path.is_dir():
            raise RunDirError(f"{path}: not a folder")
        summary = _summary(path)
        training = (path / EVENTS_FILE).is_file()
        if is_eval_summary(summary):
            runs.evals.append(load_eval(path, label, summary or {}))
        elif summary is not None and not training:
            raise RunDirError(
                f'{path / SUMMARY_FILE}: no "models" object and no {EVENTS_FILE} beside it; '
                "is this an `rft eval` or `rft train` output folder?"
            )
        if training:
            runs.trainings.append(load_training(path, label, summary))
        if summary is None and not training:
            raise RunDirError(
                f"{path}: neither an eval run ({SUMMARY_FILE} + {RESULTS_FILE} from `rft eval`) "
                f"nor a training run ({EVENTS_FILE} from `rft train`)"
            )
    return runs
