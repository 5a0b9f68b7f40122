"""Group-disjoint train/validation splits and the answer-overlap check."""

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
