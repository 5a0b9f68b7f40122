"""Sample and grade a batch of prompts, grading one chunk while the next one is generated.

On-policy GRPO needs every reward of step k before the update that precedes step k+1's
sampling, so the overlap is inside a step: the prompts are split into `chunks`; as soon as a
chunk's completions exist they go to the grader service on a background thread while the
engine generates the next chunk. Validation uses the same path.

Grading failures that are the infrastructure's are retried (see `grading_retry`); a sample whose
grading still failed has no valid reward: `Rollouts.rewards()` gives NaN for it, `valid()` says
which are valid, and `check_invalid_share` stops a run whose batch is mostly invalid.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from itertools import pairwise
from typing import Any

from ...core.records import GraderResult
from ...grading.answers import to_sample
from ..data.schema import DatasetLine
from .batch import PendingRollouts, Rollouts
from .engine import Completion, RolloutEngine, SamplingSettings, json_schema_of
from .grading_retry import Graded, Notify, grade_with_regrade, is_valid

__all__ = [
    "InvalidBatchError",
    "PendingRollouts",
    "Rollouts",
    "check_invalid_share",
    "collect",
    "start_collect",
]


class InvalidBatchError(RuntimeError):
    """More of a batch than `grader.max_invalid_fraction` allows has no valid reward."""


def check_invalid_share(results: list[list[GraderResult]], max_fraction: float, what: str) -> None:
    """Raise InvalidBatchError, naming the error kinds, their counts and an example, past `max_fraction`."""
    flat = [r for group in results for r in group]
    invalid = [r for r in flat if not is_valid(r)]
    if not flat or len(invalid) <= max_fraction * len(flat):
        return
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for result in invalid:
        errors = result.metadata.errors
        for flag in errors.raised():
            kinds[flag] += 1
            if flag not in examples and errors.details:
                examples[flag] = " ".join(errors.details.split())[:200]
    shown = "; ".join(
        f"{flag} {count}" + (f" (e.g. {examples[flag]!r})" if flag in examples else "")
        for flag, count in kinds.most_common()
    )
    raise InvalidBatchError(
        f"{what}: {len(invalid)} of {len(flat)} samples ({len(invalid) / len(flat):.0%}) have no valid "
        f"reward, more than grader.max_invalid_fraction={max_fraction:g} allows. By kind: {shown}. "
        "Training on them would treat grading failures as scores, so the run stops here. Fix the "
        "grader (try it on a few samples with `rft graders run`) or the service, or raise "
        "grader.max_invalid_fraction."
    )


def _timed_grade(grading: Any, samples: list, items: list, notify: Notify | None) -> tuple[Graded, float]:
    start = time.perf_counter()
    graded = grade_with_regrade(grading, samples, items, notify=notify)
    return graded, time.perf_counter() - start


def generate_by_schema(
    engine: RolloutEngine,
    prompts: list[list[int]],
    formats: list[dict[str, Any] | None],
    settings: SamplingSettings,
) -> list[list[Completion]]:
    """`engine.generate`, one call per distinct JSON schema (usually one), results in prompt order."""
    schemas = [json_schema_of(f) for f in formats]
    keys = [json.dumps(s, sort_keys=True) if s is not None else "" for s in schemas]
    out: list[list[Completion]] = [[] for _ in prompts]
    for key in dict.fromkeys(keys):
        picked = [i for i, k in enumerate(keys) if k == key]
        call = replace(settings, json_schema=schemas[picked[0]]) if key else settings
        for index, group in zip(picked, engine.generate([prompts[i] for i in picked], call), strict=True):
            out[index] = group
    return out


def start_collect(
    engine: RolloutEngine,
    grading: Any,
    lines: list[DatasetLine],
    prompt_ids: list[list[int]],
    settings: SamplingSettings,
    *,
    reasoning: bool = False,
    chunks: int = 2,
    pool: ThreadPoolExecutor | None = None,
    notify: Notify | None = None,
    agent: Any = None,
    response_format: dict[str, Any] | None = None,
) -> PendingRollouts:
    """Generate every chunk here, handing each to `pool` for grading as soon as it exists.

    A line's `response_format` (else `response_format`) constrains its decoding to the JSON schema
    it names (the engine's structured outputs) and has its reply parsed into `output_json`.

    With `agent` (a trainer.agent EpisodeRunner) each sample is a multi-turn episode instead.
    """
    if agent is not None:  # agent rollouts: the episode runner generates, calls tools and grades
        from ..agent.episode import start_agent_collect

        return start_agent_collect(
            agent, engine, grading, lines, prompt_ids, settings, reasoning=reasoning, pool=pool, notify=notify
        )
    chunks = max(1, min(chunks, len(lines)))
    bounds = [round(i * len(lines) / chunks) for i in range(chunks + 1)]
    own_pool = None if pool is not None else ThreadPoolExecutor(1, thread_name_prefix="grading")
    pool = pool or own_pool
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
            formats = [line.response_format or response_format for line in lines[lo:hi]]
            chunk_groups = generate_by_schema(engine, prompt_ids[lo:hi], formats, chunk_settings)
            sampling += time.perf_counter() - start
            samples, items = [], []
            for line, form, group in zip(lines[lo:hi], formats, chunk_groups, strict=True):
                item = line.item()
                for completion in group:
                    samples.append(to_sample(completion.text, reasoning=reasoning, response_format=form))
                    items.append(item)
            groups.extend(chunk_groups)
            pending.append(pool.submit(_timed_grade, grading, samples, items, notify))
    except BaseException:
        if own_pool is not None:
            own_pool.shutdown(wait=True)
        raise
    return PendingRollouts(groups, pending, sampling, own_pool)


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
    notify: Notify | None = None,
    agent: Any = None,
    response_format: dict[str, Any] | None = None,
) -> Rollouts:
    """`settings.n` graded samples for each line; grading of chunk i overlaps generation of chunk i+1.

    `notify` hears about grading retries.
    """
    return start_collect(
        engine, grading, lines, prompt_ids, settings, reasoning=reasoning, chunks=chunks, pool=pool,
        notify=notify, agent=agent, response_format=response_format,
    ).result()  # fmt: skip
