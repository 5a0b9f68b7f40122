"""Read a grader file into a spec dict: the one loader behind every command that takes a grader.

A grader file is any of
  - a `.json` grader spec (OpenAI's grader JSON), optionally wrapped as `{"grader": {...}}`
    (the body of OpenAI's /graders/run and /graders/validate);
  - a `.yaml` / `.yml` spec with the same fields;
  - a `.py` file defining `grade(sample, item)`, which becomes a `python` grader named after it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".json", ".yaml", ".yml", ".py")


class GraderFileError(ValueError):
    """The grader file cannot be read as a spec; the message names the file and what to fix."""


def spec_from_text(text: str, where: str, suffix: str) -> dict[str, Any]:
    """A spec dict from a grader file's text (`suffix` decides the format, as for a file)."""
    if suffix == ".py":
        return {"type": "python", "name": Path(where).stem or "grader", "source": text}
    try:
        data = yaml.safe_load(text) if suffix in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraderFileError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except yaml.YAMLError as exc:
        raise GraderFileError(f"{where} is not valid YAML ({exc})") from exc
    except RecursionError as exc:
        raise GraderFileError(f"{where}: nested too deeply to be a grader spec") from exc
    if isinstance(data, dict) and "type" not in data and isinstance(data.get("grader"), dict):
        data = data["grader"]
    if not isinstance(data, dict):
        raise GraderFileError(
            f'{where}: a grader spec is an object with a "type" (e.g. "string_check"), '
            f"got {type(data).__name__}"
        )
    if "type" not in data:
        raise GraderFileError(f'{where}: a grader spec needs a "type" (e.g. "string_check", "python")')
    return data


def load_grader_file(path: str | Path) -> dict[str, Any]:
    """The grader spec in `path` (.json, .yaml, .yml or .py); GraderFileError says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise GraderFileError(
            f"{path}: no such file; give a grader file: a .json or .yaml grader spec "
            "or a .py file defining grade(sample, item)"
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise GraderFileError(
            f"{path}: unknown grader file kind {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderFileError(f"cannot read {path}: {exc}") from exc
    return spec_from_text(text, str(path), suffix)
