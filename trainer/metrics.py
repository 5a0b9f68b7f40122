"""Summaries of graded rollouts for the step events: reward stats, per-grader scores, errors by kind.

Reward statistics cover the samples with a valid reward only; samples whose grading failed are
counted apart (`_invalid_samples`, `_valid_fraction`, and every raised flag in `_errors`), never
averaged in as zeros.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from ..core.records import GraderResult
from .rollout.grading_retry import is_valid


def summarize(results: list[list[GraderResult]], prefix: str) -> dict[str, Any]:
    """`{prefix}_reward_mean`, `_reward_std`, `_pass_rate` (reward 1), per-grader means, error counts.

    The reward stats are over valid samples (NaN when there is none); `_samples` counts all,
    `_invalid_samples` those without a valid reward, `_errors` each raised flag over all samples.
    """
    flat = [r for group in results for r in group]
    valid = [r for r in flat if is_valid(r)]
    rewards = [r.reward for r in valid]
    scores: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    for result in flat:
        errors.update(result.metadata.errors.raised())
    for result in valid:
        scores.setdefault(result.metadata.name, []).append(result.reward)
        for name, value in result.sub_rewards.items():
            scores.setdefault(name, []).append(value)
    return {
        f"{prefix}_reward_mean": statistics.fmean(rewards) if rewards else float("nan"),
        f"{prefix}_reward_std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
        f"{prefix}_pass_rate": sum(r >= 1.0 for r in rewards) / len(rewards) if rewards else float("nan"),
        f"{prefix}_grader_scores": {name: statistics.fmean(v) for name, v in sorted(scores.items())},
        f"{prefix}_errors": dict(sorted(errors.items())),
        f"{prefix}_samples": len(flat),
        f"{prefix}_invalid_samples": len(flat) - len(valid),
        f"{prefix}_valid_fraction": len(valid) / len(flat) if flat else 1.0,
    }
