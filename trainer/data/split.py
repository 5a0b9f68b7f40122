"""Group-disjoint train/validation splits and the answer-overlap check (with label-style fields:
overlap expected, and the fields that should be disjoint instead)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from .schema import DatasetLine


def field_key(line: DatasetLine, field: str) -> str:
    """The value of a (dotted) field of a line as a canonical string; KeyError if it is missing."""
    value: Any = line.item()
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(field)
        value = value[part]
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True)


def answer_overlap(train: Sequence[DatasetLine], valid: Sequence[DatasetLine], field: str) -> list[str]:
    """Answers (values of `field`) that appear in both sets, sorted."""
    return sorted({field_key(x, field) for x in train} & {field_key(x, field) for x in valid})


LABEL_MAX_VALUES = 10  # a field with at most this many values, each on 3 or more lines, is a label
LABEL_MIN_REPEATS = 3


def label_values(lines: Sequence[DatasetLine], field: str) -> list[str] | None:
    """The distinct values of `field` when it holds labels (yes/no, a few classes), else None.

    Labels repeat by design, so the same values in train and validation are no leak.
    """
    values = [field_key(line, field) for line in lines]
    distinct = sorted(set(values))
    if len(distinct) <= LABEL_MAX_VALUES and len(values) >= LABEL_MIN_REPEATS * len(distinct):
        return distinct
    return None


def key_fields(lines: Sequence[DatasetLine], exclude: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Top-level fields that identify an example (on 90% of lines or more, with 90% distinct values).

    Returns (field, distinct values), most distinct first: the fields that should not straddle
    train and validation.
    """
    counts: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for line in lines:
        for name, value in line.item().items():
            if name in ("messages", "response_format") or name in exclude:
                continue
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                counts.setdefault(name, set()).add(value.strip() if isinstance(value, str) else str(value))
                present[name] = present.get(name, 0) + 1
    threshold = 0.9 * len(lines)
    found = [(name, len(seen)) for name, seen in counts.items() if present[name] >= threshold]
    return sorted(((name, size) for name, size in found if size >= threshold), key=lambda kv: (-kv[1], kv[0]))


def prompt_overlap(train: Sequence[DatasetLine], valid: Sequence[DatasetLine]) -> int:
    """How many distinct prompts (messages, exactly) appear in both sets."""

    def prompts(lines: Sequence[DatasetLine]) -> set[str]:
        return {json.dumps(line.chat(), sort_keys=True) for line in lines}

    return len(prompts(train) & prompts(valid))


def _rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def group_split(
    lines: Sequence[DatasetLine], group_by: str, valid_fraction: float = 0.2, seed: int = 0
) -> tuple[list[DatasetLine], list[DatasetLine]]:
    """Split so that no value of `group_by` is on both sides; deterministic for a seed.

    Groups are ordered by a seeded hash and taken into validation until it holds at least
    `valid_fraction` of the lines; line order inside each side is kept.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError("valid_fraction must be between 0 and 1")
    groups: dict[str, int] = {}
    for line in lines:
        key = field_key(line, group_by)
        groups[key] = groups.get(key, 0) + 1
    if len(groups) < 2:
        raise ValueError(f"need at least two distinct values of {group_by!r} to split, found {len(groups)}")
    target = valid_fraction * len(lines)
    valid_groups: set[str] = set()
    taken = 0
    for key in sorted(groups, key=lambda k: _rank(k, seed)):
        if taken >= target or len(valid_groups) == len(groups) - 1:
            break
        valid_groups.add(key)
        taken += groups[key]
    train = [x for x in lines if field_key(x, group_by) not in valid_groups]
    valid = [x for x in lines if field_key(x, group_by) in valid_groups]
    return train, valid
