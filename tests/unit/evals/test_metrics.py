"""Summary metrics: Wilson intervals, bootstrap, per-item aggregation, declared rates, pass rules."""

from __future__ import annotations

import pytest
from rftkit.core.records import DeclaredMetrics
from rftkit.evals.generation import Generation
from rftkit.evals.metrics import bootstrap_mean_interval, summarize, wilson_interval
from rftkit.evals.records import declared_fields, make_record
from rftkit.grading.verdict import is_pass
from rftkit.plugins.base import GraderErrors, GraderResult, ResultMetadata
from rftkit.plugins.graders.ranked_list import RankedListGrader, RankedListSpec

# What a ranked_list grader (k = 5) declares: the rates top1/top5/topmax and the rank as its position.
RANKED = RankedListGrader.declared_metrics(RankedListSpec(type="ranked_list", input="x", reference="y"))

ITEM = {"messages": [{"role": "user", "content": "q"}], "gene": "A"}


def result(reward: float, rank: int | None = None, passes: dict | None = None, error: str | None = None):
    """A result as a ranked_list grader (k = 5) writes it for `rank` (0: absent), or with `passes` given."""
    scores = {"rank": float(rank)} if rank is not None else {}
    if rank is not None and passes is None:
        passes = {"top1": rank == 1, "top5": 1 <= rank <= 5, "anywhere": rank >= 1}
    errors = GraderErrors(**({error: True} if error else {}))
    meta = ResultMetadata(name="g", type="t", scores=scores, passes=passes or {}, errors=errors)
    return GraderResult(reward=reward, metadata=meta)


def record(model: str, item: int, sample: int, res: GraderResult | None, ranked: bool = True):
    gen = Generation(text="x") if res is not None else Generation(error="boom")
    return make_record(model, item, sample, ITEM, gen, res, declared=RANKED if ranked else DeclaredMetrics())


def test_wilson_matches_reference_values() -> None:
    # Reference: Wilson score interval, z = 1.96 (e.g. statsmodels proportion_confint(method="wilson")).
    lo, hi = wilson_interval(0.75, 28)
    assert (lo, hi) == pytest.approx((0.566443, 0.873235), abs=1e-5)
    assert wilson_interval(0.0, 10) == pytest.approx((0.0, 0.277533), abs=1e-5)
    assert wilson_interval(1.0, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0.5, 0) == (0.0, 1.0)


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    values = [0.0, 0.2, 0.9, 1.0, 0.4, 0.7]
    a, b = bootstrap_mean_interval(values), bootstrap_mean_interval(values)
    assert a == b and a[0] < sum(values) / len(values) < a[1]
    assert bootstrap_mean_interval([0.3]) == (0.3, 0.3)


def test_declared_rates_from_the_graders_pass_flags() -> None:
    assert declared_fields(result(0.49, rank=3), RANKED) == {
        "rank": 3,
        "top1": False,
        "top5": True,
        "topmax": True,
    }
    assert declared_fields(result(0.0, rank=0), RANKED) == {
        "rank": None,
        "top1": False,
        "top5": False,
        "topmax": False,
    }
    only_passes = result(1.0, passes={"top1": True, "top5": True, "anywhere": True})
    assert declared_fields(only_passes, RANKED) == {"top1": True, "top5": True, "topmax": True}
    assert declared_fields(result(1.0), DeclaredMetrics()) == {}
    # A failed sample is a miss, whatever flags it carries; undeclared graders get their flags as rates.
    failed = result(1.0, passes={"top1": True}, error="python_grader_runtime_error")
    assert declared_fields(failed, RANKED)["top1"] is False
    assert declared_fields(result(1.0, passes={"exact": True}), DeclaredMetrics(passes=("exact",))) == {
        "exact": True
    }


def test_pass_rules() -> None:
    assert is_pass(result(1.0), None) and not is_pass(result(0.9), None)
    assert is_pass(result(0.9, passes={"pass": True}), None)  # the grader's own pass_threshold
    assert not is_pass(result(0.9, passes={"pass": True}), 0.95)  # --pass-threshold wins
    assert not is_pass(result(1.0, error="sample_parse_error"), 0.5)


def test_summary_aggregates_per_item_and_best_of_n() -> None:
    # Two items x two samples: item 0 ranks 1 and 3, item 1 ranks absent and 2.
    records = [
        record("m", 0, 0, result(1.0, rank=1)),
        record("m", 0, 1, result(0.49, rank=3)),
        record("m", 1, 0, result(0.0, rank=0)),
        record("m", 1, 1, result(0.7, rank=2)),
    ]
    s = summarize({"m": records}, RANKED)["m"]
    assert (s["n"], s["n_items"], s["samples_per_item"]) == (4, 2, 2)
    assert s["top1"] == pytest.approx(0.25) and s["top5"] == pytest.approx(0.75)
    assert s["mean_reward"] == pytest.approx((1.0 + 0.49 + 0.0 + 0.7) / 4)
    assert s["pass_rate"] == pytest.approx(0.25)
    assert s["top1_ci"] == pytest.approx(list(wilson_interval(0.25, 2)), abs=1e-6)
    best = s["best_of_n"]
    assert best["top1"] == pytest.approx(0.5) and best["topmax"] == 1.0
    assert best["mean_reward"] == pytest.approx((1.0 + 0.7) / 2)
    assert s["mean_rank_when_found"] == pytest.approx(2.0)


def test_failed_generations_count_as_errors_and_misses() -> None:
    records = [record("m", 0, 0, result(1.0, rank=1)), record("m", 1, 0, None)]
    s = summarize({"m": records}, RANKED)["m"]
    assert s["errors"] == {"generation_error": 1} and s["samples_with_errors"] == 1
    assert s["top1"] == pytest.approx(0.5) and s["topmax"] == pytest.approx(0.5)
    assert records[1].top1 is False and records[1].errors == ["generation_error"]
    assert s["invalid_samples"] == 1 and s["mean_valid_reward"] == pytest.approx(1.0)  # no score, not a 0


def test_plain_grader_has_no_ranked_metrics() -> None:
    records = [record("m", 0, 0, result(1.0), ranked=False), record("m", 1, 0, result(0.0), ranked=False)]
    s = summarize({"m": records})["m"]
    assert "top1" not in s and s["pass_rate"] == 0.5 and s["mean_reward"] == 0.5
