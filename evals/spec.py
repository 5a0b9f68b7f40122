"""Load the grader spec `rft eval --grader SPEC` names: a .json grader spec or a .py grader file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class GraderFileError(ValueError):
    """The grader file cannot be read as a spec."""


def load_grader_spec(path: str | Path) -> dict[str, Any]:
    """A grader spec dict: JSON as written, or a `python` grader wrapping the file's source."""
    path = Path(path)
    if not path.is_file():
        raise GraderFileError(f"{path}: no such grader file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return {"type": "python", "name": path.stem, "source": text}
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraderFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(spec, dict) or "type" not in spec:
        raise GraderFileError(f'{path}: a grader spec is a JSON object with a "type" (e.g. "string_check")')
    return spec
