"""Measures sandbox overheads against calling grade() in-process (`rft sandbox bench`)."""

from __future__ import annotations

import statistics
import time
import types
from typing import Any

from pydantic import BaseModel

from .api import SandboxLimits
from .pools import get_pool

BENCH_GRADER = """
def grade(sample, item):
    return 1.0 if sample["output_text"].strip().lower() == item["reference"].strip().lower() else 0.0
"""


class BenchResult(BaseModel):
    backend: str
    cold_start_s: float  # get_pool + first 1-sample batch (one worker started)
    pool_cold_start_s: float  # a full pool's first batch (every worker started)
    warm_latency_us: float  # median round trip of a 1-sample batch on a warm worker
    warm_per_sample_us: float  # per sample within a large batch on a warm pool
    workers: int


def _pairs(count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [({"output_text": f"Answer {i % 7}"}, {"reference": f"answer {i % 5}"}) for i in range(count)]


def in_process_per_sample_us(count: int = 20_000) -> float:
    """grade() called directly in this process, per sample."""
    module = types.ModuleType("bench_grader")
    exec(compile(BENCH_GRADER, "grader.py", "exec"), module.__dict__)
    pairs = _pairs(count)
    start = time.perf_counter()
    for sample, item in pairs:
        module.grade(sample, item)
    return (time.perf_counter() - start) / count * 1e6


def bench_backend(
    backend: str, *, batch: int = 5000, rounds: int = 200, workers: int | None = None
) -> BenchResult:
    """Cold start, warm single-sample latency and warm per-sample cost on one backend."""
    limits = SandboxLimits(workers=workers)
    tag = f"bench-{time.time_ns()}"
    start = time.perf_counter()
    pool = get_pool(
        tenant=tag, grader_id="bench", version="1", source=BENCH_GRADER, backend=backend, limits=limits
    )
    try:
        first = pool.grade(_pairs(1))
        cold = time.perf_counter() - start
        assert first[0].error is None, first[0]
        start = time.perf_counter()
        pool.grade(_pairs(pool.size * 2))
        pool_cold = cold + (time.perf_counter() - start)
        latencies = []
        one = _pairs(1)
        for _ in range(rounds):
            t0 = time.perf_counter()
            pool.grade(one)
            latencies.append(time.perf_counter() - t0)
        pairs = _pairs(batch)
        pool.grade(pairs)  # warm every worker on the big-batch path
        start = time.perf_counter()
        outcomes = pool.grade(pairs)
        per_sample = (time.perf_counter() - start) / batch
        assert all(o.error is None for o in outcomes)
        return BenchResult(
            backend=pool.backend,
            cold_start_s=cold,
            pool_cold_start_s=pool_cold,
            warm_latency_us=statistics.median(latencies) * 1e6,
            warm_per_sample_us=per_sample * 1e6,
            workers=pool.size,
        )
    finally:
        pool.close()
