"""Read the run folders a report shows: eval runs (summary.json + results.jsonl) and training runs
(events.jsonl with step, train_reward_mean and, at eval steps, valid_reward_mean)."""

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


def load_eval(path: Path, label: str) -> EvalRunData:
    try:
        summary = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path / SUMMARY_FILE}: not valid JSON ({exc.msg})") from exc
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), dict):
        raise RunDirError(f'{path / SUMMARY_FILE}: no "models" object; is this an `rft eval` output folder?')
    results = path / RESULTS_FILE
    records = _jsonl(results) if results.is_file() else []
    return EvalRunData(path, label, summary, records)


def load_training(path: Path, label: str) -> TrainingRunData:
    events = [e for e in _jsonl(path / EVENTS_FILE) if isinstance(e.get("step"), int | float)]
    return TrainingRunData(path, label, sorted(events, key=lambda e: e["step"]))


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
        found = False
        if (path / SUMMARY_FILE).is_file():
            runs.evals.append(load_eval(path, label))
            found = True
        if (path / EVENTS_FILE).is_file():
            runs.trainings.append(load_training(path, label))
            found = True
        if not found:
            raise RunDirError(
                f"{path}: neither an eval run ({SUMMARY_FILE} + {RESULTS_FILE} from `rft eval`) "
                f"nor a training run ({EVENTS_FILE} from `rft train`)"
            )
    return runs
