"""Read a JSONL dataset and name the file and line of every bad line (all of them, not the first)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from .schema import DatasetLine


class DatasetError(ValueError):
    """A dataset with bad lines; `problems` lists `file:line: what is wrong` for each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} bad line(s):\n{shown}{more}")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "line"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_dataset(path: str | Path) -> list[DatasetLine]:
    """Every line of `path` as a DatasetLine; DatasetError lists every bad line with its number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError([f"{path}: no such file"])
    lines: list[DatasetLine] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(data, dict):
                problems.append(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
                continue
            try:
                line = DatasetLine.model_validate(data)
                line._line_number = number
                lines.append(line)
            except ValidationError as exc:
                problems.append(f"{path}:{number}: {_describe(exc)}")
    if problems:
        raise DatasetError(problems)
    if not lines:
        raise DatasetError([f"{path}: the file holds no lines"])
    return lines
