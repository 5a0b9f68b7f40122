"""Summary metrics per model, with 95% confidence intervals.

Aggregation. Every metric is a mean over items of a per-item value: the item's mean over its
samples (with one sample per item: that sample's value). With the same number of samples for
every item this equals the mean over all samples: the rate a single sample achieves.
- `pass_rate`: samples that pass (grader's `passes["pass"]`, else reward >= the pass threshold;
  a sample with any error fails).
- The rates the grader declares (`DeclaredMetrics.rates`), each the share of samples whose pass
  flag is set; for a ranked list `top1` (the reference ranked first), `top5` (within the first
  k = 5), `topmax` (anywhere in the list), as in OpenAI's rare-disease RFT demo. A failed sample
  is a miss. Where the grader declares a position score (a rank), its mean where found.
- `invalid_samples`: samples with no valid reward (grading failed, or the model gave no answer);
  they count as 0 in `mean_reward` (as in OpenAI's evals) and are left out of `mean_valid_reward`.
- With several samples per item, `best_of_n` adds the same metrics where an item counts when
  ANY of its samples hits (top-max over samples, pass@n), and the best reward per item.

Intervals. Rates: the Wilson score interval with n = the number of items and the rate above as
p (items are the independent unit; samples of one item are not independent). `mean_reward`:
the percentile bootstrap over items (2,000 resamples, fixed seed, so reruns agree).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from ..core.records import DeclaredMetrics
from .records import SampleRecord, rate_field

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed over n trials."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def bootstrap_mean_interval(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean."""
    if not values:
        return (0.0, 0.0)
    if len(values) == 1:
        return (values[0], values[0])
    rng = random.Random(seed)
    n = len(values)
    means = sorted(fmean(rng.choices(values, k=n)) for _ in range(resamples))
    return (means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))])


def _r(x: float) -> float:
    return round(x, 6)


def _rate(per_item: list[float]) -> dict[str, Any]:
    value = fmean(per_item) if per_item else 0.0
    return {"value": _r(value), "ci": [_r(b) for b in wilson_interval(value, len(per_item))]}


def _per_item(
    groups: list[list[SampleRecord]], value: Callable[[SampleRecord], float], combine: Callable
) -> list[float]:
    return [combine([value(record) for record in group]) for group in groups]


def _metrics(groups: list[list[SampleRecord]], combine: Callable, rates: Sequence[str]) -> dict[str, Any]:
    """mean_reward, pass_rate and the declared rates with intervals, per-item values combined by `combine`."""
    rewards = _per_item(groups, lambda r: r.reward, combine)
    out: dict[str, Any] = {
        "mean_reward": _r(fmean(rewards)),
        "mean_reward_ci": [_r(b) for b in bootstrap_mean_interval(rewards)],
    }
    for name in ("pass_rate", *rates):
        attr = "passed" if name == "pass_rate" else rate_field(name)
        rate = _rate(_per_item(groups, lambda r, a=attr: float(bool(getattr(r, a, False))), combine))
        out[name], out[f"{name}_ci"] = rate["value"], rate["ci"]
    return out


def summarize_model(records: Sequence[SampleRecord], declared: DeclaredMetrics) -> dict[str, Any]:
    """The summary.json entry of one model."""
    by_item: dict[int, list[SampleRecord]] = defaultdict(list)
    for record in records:
        by_item[record.item_index].append(record)
    groups = [by_item[i] for i in sorted(by_item)]
    if not groups:
        return {"n": 0, "n_items": 0}
    samples_per_item = max(len(g) for g in groups)
    errors = Counter(flag for record in records for flag in record.errors)
    rates = [name for name, _flag, _label in declared.rate_flags()]
    valid = [record.reward for record in records if record.valid]
    sub_keys = sorted({key for record in records for key in record.sub_rewards})
    summary: dict[str, Any] = {
        "n": len(records),
        "n_items": len(groups),
        "samples_per_item": samples_per_item,
        **_metrics(groups, fmean, rates),
        "errors": dict(sorted(errors.items())),
        "samples_with_errors": sum(1 for record in records if record.errors),
        "invalid_samples": len(records) - len(valid),
        "mean_valid_reward": _r(fmean(valid)) if valid else None,
        "mean_latency_s": _r(fmean(record.latency_s for record in records)),
    }
    if declared.distribution:
        ranks = [record.rank for record in records if record.rank is not None]
        summary["mean_rank_when_found"] = _r(fmean(ranks)) if ranks else None
    if sub_keys:
        summary["sub_rewards"] = {
            key: _r(fmean(record.sub_rewards.get(key, 0.0) for record in records)) for key in sub_keys
        }
    if samples_per_item > 1:
        summary["best_of_n"] = _metrics(groups, max, rates)
    return summary


def summarize(
    records_by_model: dict[str, list[SampleRecord]], declared: DeclaredMetrics | None = None
) -> dict[str, dict[str, Any]]:
    """Per-model summaries, each with the rates the grader declares."""
    declared = declared or DeclaredMetrics()
    return {name: summarize_model(records, declared) for name, records in records_by_model.items()}
