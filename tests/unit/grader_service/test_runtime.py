from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest
from rftkit.core.records import GradedBatch, GraderResult, ResultMetadata, Sample
from rftkit.grader_service.runtime import Stopped, grade_in_chunks, safe_grade_batch
from rftkit.plugins.base import Grader, GraderContext, GraderSpec


class FragileSpec(GraderSpec):
    type: str = "fragile"


class FragileGrader(Grader):
    """Scores 1 for "ok"; its batch call fails whenever a batch holds "boom", its grade() raises on it."""

    type_name: ClassVar[str] = "fragile"
    spec_model = FragileSpec

    def grade(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        if sample.output_text == "boom":
            raise RuntimeError("boom")
        reward = 1.0 if sample.output_text == "ok" else 0.0
        return GraderResult(reward=reward, metadata=ResultMetadata(name=self.name, type=self.type_name))

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        if any(s.output_text == "boom" for s, _ in pairs):
            raise RuntimeError("the whole batch blew up")
        return super().grade_columns(pairs)


def grader() -> FragileGrader:
    return FragileGrader(FragileSpec(), GraderContext())


def test_a_failing_sample_costs_only_its_own_score() -> None:
    pairs = [(Sample(output_text=t), {}) for t in ["ok", "boom", "no", "ok"]]
    graded = safe_grade_batch(grader(), pairs)
    results = graded.to_results()
    assert [r.reward for r in results] == [1.0, 0.0, 0.0, 1.0] == graded.rewards
    assert list(graded.results) == [1] and graded.valid() == [True, False, True, True]
    assert results[1].metadata.errors.other_error and "boom" in results[1].metadata.errors.details
    assert not results[0].metadata.errors.any and not results[2].metadata.errors.any


class NanGrader(FragileGrader):
    """Answers a NaN reward column when a batch holds "nan" (a broken batch method, not a reward)."""

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        graded = super().grade_columns(pairs)
        if any(s.output_text == "nan" for s, _ in pairs):
            graded.rewards = [float("nan") for _ in pairs]
        return graded


def test_a_batch_method_with_bad_rewards_is_redone_one_sample_at_a_time() -> None:
    nan = NanGrader(FragileSpec(), GraderContext())
    pairs = [(Sample(output_text=t), {}) for t in ["ok", "no", "ok"]]
    graded = safe_grade_batch(nan, pairs)
    assert graded.rewards == [1.0, 0.0, 1.0] and graded.results == {}  # plain results: columns only
    results = safe_grade_batch(nan, [*pairs, (Sample(output_text="nan"), {})]).to_results()
    assert [r.reward for r in results] == [1.0, 0.0, 1.0, 0.0]
    chunked = grade_in_chunks(nan, pairs * 10, lambda: None)
    assert chunked.rewards == [1.0, 0.0, 1.0] * 10 and len(chunked.to_results()) == 30


def test_chunks_stop_when_asked() -> None:
    pairs = [(Sample(output_text="ok"), {}) for _ in range(1000)]
    calls = []

    def stop() -> str | None:
        calls.append(1)
        return "deadline" if len(calls) > 1 else None

    with pytest.raises(Stopped) as info:
        grade_in_chunks(grader(), pairs, stop)
    assert info.value.reason == "deadline" and 0 < info.value.done < 1000
    assert [r.reward for r in grade_in_chunks(grader(), pairs, lambda: None)] == [1.0] * 1000
    assert grade_in_chunks(grader(), pairs, lambda: None).rewards == [1.0] * 1000


def test_a_remainder_smaller_than_a_chunk_joins_the_chunk_before_it() -> None:
    pairs = [(Sample(output_text="ok"), {}) for _ in range(1024)]
    sizes: list[int] = []
    graded = grade_in_chunks(grader(), pairs, lambda: None, lambda part, _s: sizes.append(len(part)))
    assert sizes[0] < 16 and len(sizes) == 2 and sum(sizes) == 1024  # a first small chunk, then the rest
    assert graded.rewards == [1.0] * 1024


def test_a_grader_seen_before_starts_at_the_size_its_pace_gives() -> None:
    fast, pairs = grader(), [(Sample(output_text="ok"), {}) for _ in range(1024)]
    sizes: list[int] = []
    grade_in_chunks(fast, pairs, lambda: None, lambda part, _s: sizes.append(len(part)))
    assert sizes[0] < 16  # not seen before: a small first chunk
    sizes.clear()
    graded = grade_in_chunks(fast, pairs, lambda: None, lambda part, _s: sizes.append(len(part)))
    assert sizes == [1024] and graded.rewards == [1.0] * 1024  # fast: the batch is not cut
    sizes.clear()
    grade_in_chunks(grader(), pairs, lambda: None, lambda part, _s: sizes.append(len(part)))
    assert sizes[0] < 16  # the pace is the grader's own, not its type's
