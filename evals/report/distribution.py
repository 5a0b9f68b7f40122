"""How a model's samples spread: over rank buckets for ranked-list graders, else over reward buckets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RANK_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("rank 1", 1, 1),
    ("2–5", 2, 5),
    ("6–10", 6, 10),
    ("11–50", 11, 50),
    ("> 50", 51, 10**9),
)
NOT_FOUND = "not in list"
REWARD_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0", 0.0, 0.0),
    ("0–0.25", 0.0, 0.25),
    ("0.25–0.5", 0.25, 0.5),
    ("0.5–0.75", 0.5, 0.75),
    ("0.75–1", 0.75, 1.0),
    ("1", 1.0, 1.0),
)


def rank_labels() -> list[str]:
    return [label for label, _, _ in RANK_BUCKETS] + [NOT_FOUND]


def rank_shares(records: Sequence[dict[str, Any]]) -> list[float]:
    """Fraction of samples per rank bucket; the last bucket: reference absent, or an error."""
    counts = [0] * (len(RANK_BUCKETS) + 1)
    for record in records:
        rank = record.get("rank")
        index = next((i for i, (_, lo, hi) in enumerate(RANK_BUCKETS) if rank and lo <= rank <= hi), -1)
        counts[index] += 1
    return [c / len(records) for c in counts] if records else [0.0] * len(counts)


def reward_labels() -> list[str]:
    return [label for label, _, _ in REWARD_BUCKETS]


def reward_shares(records: Sequence[dict[str, Any]]) -> list[float]:
    """Fraction of samples per reward bucket: 0, (0, .25], (.25, .5], (.5, .75], (.75, 1), 1."""
    counts = [0] * len(REWARD_BUCKETS)
    for record in records:
        reward = float(record.get("reward", 0.0))
        if reward <= 0.0:
            counts[0] += 1
        elif reward >= 1.0:
            counts[-1] += 1
        else:
            counts[next(i for i in range(1, 5) if reward <= REWARD_BUCKETS[i][2])] += 1
    return [c / len(records) for c in counts] if records else [0.0] * len(counts)
