"""Sample and grade a batch of prompts, grading one chunk while the next one is generated.

On-policy GRPO needs every reward of step k before the update that precedes step k+1's
sampling, so the overlap is inside a step: the prompts are split into `chunks`; as soon as a
chunk's completions exist they go to the grader service on a background thread while the
engine generates the next chunk. Validation uses the same path.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ...plugins.base import GraderResult
from ..data.schema import DatasetLine
from .engine import Completion, RolloutEngine, SamplingSettings
from ...grading.answers import to_sample


@dataclass
class Rollouts:
    """Completions and grader results, grouped by prompt: groups[i][j] is sample j of prompt i."""

    groups: list[list[Completion]]
    results: list[list[GraderResult]]
    sampling_s: float = 0.0
    grading_s: float = 0.0  # time the grader service took (overlapped with sampling where possible)
    grading_wait_s: float = 0.0  # time spent waiting for grades after sampling finished

    def rewards(self) -> list[list[float]]:
        return [[r.reward for r in group] for group in self.results]


def _timed_grade(grading: Any, samples: list, items: list) -> tuple[list[GraderResult], float]:
    start = time.perf_counter()
    results = grading.grade(samples, items)
    return results, time.perf_counter() - start


def collect(
    engine: RolloutEngine,
    grading: Any,
    lines: list[DatasetLine],
    prompt_ids: list[list[int]],
    settings: SamplingSettings,
    *,
    reasoning: bool = False,
    chunks: int = 2,
    pool: ThreadPoolExecutor | None = None,
) -> Rollouts:
    """`settings.n` graded samples for each line; grading of chunk i overlaps generation of chunk i+1."""
    chunks = max(1, min(chunks, len(lines)))
    bounds = [round(i * len(lines) / chunks) for i in range(chunks + 1)]
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(1, thread_name_prefix="grading")
    groups: list[list[Completion]] = []
    pending: list[Future] = []
    sampling = 0.0
    try:
        for index, (lo, hi) in enumerate(pairwise(bounds)):
            start = time.perf_counter()
            chunk_settings = settings
            if settings.seed is not None:
                chunk_settings = SamplingSettings(
                    **{**settings.__dict__, "seed": settings.seed * 1009 + index}
                )
            chunk_groups = engine.generate(prompt_ids[lo:hi], chunk_settings)
            sampling += time.perf_counter() - start
            samples, items = [], []
            for line, group in zip(lines[lo:hi], chunk_groups, strict=True):
                item = line.item()
                for completion in group:
                    samples.append(
                        to_sample(completion.text, reasoning=reasoning, response_format=line.response_format)
                    )
                    items.append(item)
            groups.extend(chunk_groups)
            pending.append(pool.submit(_timed_grade, grading, samples, items))
        wait_start = time.perf_counter()
        flat: list[GraderResult] = []
        grading_s = 0.0
        for future in pending:
            results, seconds = future.result()
            flat.extend(results)
            grading_s += seconds
        waited = time.perf_counter() - wait_start
    finally:
        if own_pool:
            pool.shutdown(wait=True)
    per_prompt: list[list[GraderResult]] = []
    position = 0
    for group in groups:
        per_prompt.append(flat[position : position + len(group)])
        position += len(group)
    return Rollouts(groups, per_prompt, sampling, grading_s, waited)
