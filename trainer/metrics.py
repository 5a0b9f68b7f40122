"""Summaries of graded rollouts for the step events: reward stats, per-grader scores, errors by kind."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from ..plugins.base import GraderResult


def summarize(results: list[list[GraderResult]], prefix: str) -> dict[str, Any]:
    """`{prefix}_reward_mean`, `_reward_std`, `_pass_rate` (reward 1), per-grader means, error counts."""
    flat = [r for group in results for r in group]
    rewards = [r.reward for r in flat]
    scores: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    for result in flat:
        scores.setdefault(result.metadata.name, []).append(result.reward)
        for name, value in result.sub_rewards.items():
            scores.setdefault(name, []).append(value)
        errors.update(result.metadata.errors.raised())
    return {
        f"{prefix}_reward_mean": statistics.fmean(rewards) if rewards else 0.0,
        f"{prefix}_reward_std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        f"{prefix}_pass_rate": sum(r >= 1.0 for r in rewards) / max(1, len(rewards)),
        f"{prefix}_grader_scores": {name: statistics.fmean(v) for name, v in sorted(scores.items())},
        f"{prefix}_errors": dict(sorted(errors.items())),
        f"{prefix}_samples": len(rewards),
    }
