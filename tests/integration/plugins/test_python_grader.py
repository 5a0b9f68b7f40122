"""The python grader type through real sandbox worker pools (process, and namespace/docker where present).

One grader source misbehaves on demand (item["mode"]), so one warm pool grades a whole batch of
raising, NaN, inf, None, str, bool, 2.0 and good samples; every bad value costs that sample a 0
and an error flag with the reason, never an exception and never the rest of the batch.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rftkit.plugins.base import GraderContext, GraderResult, Sample
from rftkit.plugins.registry import build_grader
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.testing import backend_params, require_backend

SOURCE = """
def grade(sample, item):
    mode = item["mode"]
    if mode == "raise":
        raise ValueError("the grader broke on purpose")
    if mode == "sleep":
        import time
        time.sleep(30)
    if mode == "json":
        return sample["output_json"]["score"]
    return {"nan": float("nan"), "inf": float("inf"), "none": None, "str": "0.5", "bool": True,
            "two": 2.0, "negative": -0.5, "int": 1, "good": 0.25}[mode]
"""

EXPECTED = {
    "good": (0.25, None, None),
    "int": (1.0, None, None),
    "raise": (0.0, "python_grader_runtime_error", "the grader broke on purpose"),
    "nan": (0.0, "invalid_reward_error", "nan"),
    "inf": (0.0, "invalid_reward_error", "inf"),
    "none": (0.0, "invalid_reward_error", "NoneType"),
    "str": (0.0, "invalid_reward_error", "str"),
    "bool": (0.0, "invalid_reward_error", "bool"),
    "two": (0.0, "invalid_reward_error", "outside [0, 1]"),
    "negative": (0.0, "invalid_reward_error", "outside [0, 1]"),
}


def python_grader(backend: str, source: str = SOURCE, **limits: object):
    context = GraderContext(
        tenant="tests",
        grader_id="python-grader-tests",
        sandbox=backend,
        sandbox_options={"limits": SandboxLimits(workers=1, **limits)},
    )
    return build_grader({"type": "python", "name": "py", "source": source}, context)


def flags(result: GraderResult) -> list[str]:
    return result.metadata.errors.raised()


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_bad_values_cost_one_sample_each(backend: str) -> None:
    require_backend(backend)
    grader = python_grader(backend)
    try:
        modes = [*EXPECTED, "good"]
        pairs = [(Sample(output_text="anything"), {"mode": mode}) for mode in modes]
        pairs.append((Sample(output_text='{"score": 0.75}'), {"mode": "json"}))
        results = grader.grade_batch(pairs)
        assert len(results) == len(pairs)
        for mode, result in zip(modes, results, strict=False):
            reward, flag, reason = EXPECTED[mode]
            assert result.reward == reward, mode
            assert flags(result) == ([flag] if flag else []), mode
            if reason:
                assert reason in result.metadata.errors.details, (mode, result.metadata.errors.details)
        raised = results[modes.index("raise")].metadata.errors
        assert "ValueError" in raised.python_grader_runtime_error_details
        assert results[-1].reward == 0.75  # grade() got sample.output_json parsed from the text
        assert grader.grade(Sample(), {"mode": "good"}).reward == 0.25  # the pool is still usable
    finally:
        grader.close()


def test_grade_columns_keeps_full_results_for_bad_samples_only() -> None:
    grader = python_grader("process")
    try:
        assert grader.pool_status() is None  # no pool before the first batch
        modes = [*EXPECTED, "good"]
        pairs = [(Sample(output_text="anything"), {"mode": mode}) for mode in modes]
        full, columns = grader.grade_batch(pairs), grader.grade_columns(pairs)
        assert len(columns.rewards) == len(full) == len(pairs)
        for index, (mode, whole) in enumerate(zip(modes, full, strict=True)):
            assert columns.rewards[index] == whole.reward, mode
            if flags(whole):
                short = columns.results[index]
                assert flags(short) == flags(whole), mode
                assert short.metadata.errors.details == whole.metadata.errors.details
                assert not short.valid
            else:
                assert index not in columns.results, mode
        status = grader.pool_status()
        assert status is not None and status.backend == "process" and status.workers >= 1
    finally:
        grader.close()
    context = GraderContext(tenant="tests", grader_id="threshold", sandbox="process")
    spec = {"type": "python", "source": SOURCE, "pass_threshold": 0.5}
    with_threshold = build_grader(spec, context)  # the pass flag follows from the reward
    try:
        graded = with_threshold.grade_columns([(Sample(), {"mode": "good"})])
        assert graded.results == {} and graded.pass_threshold == 0.5
        assert graded.result(0).metadata.passes == {"pass": False}
    finally:
        with_threshold.close()


def test_timeout_is_flagged_and_the_pool_recovers() -> None:
    grader = python_grader("process", sample_timeout_s=1.0)
    try:
        slow, after = grader.grade_batch([(Sample(), {"mode": "sleep"}), (Sample(), {"mode": "good"})])
        assert slow.reward == 0.0 and flags(slow) == ["timeout_error"]
        assert after.reward == 0.25 and not flags(after)
    finally:
        grader.close()


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_openai_guide_python_grader_with_rapidfuzz(backend: str) -> None:
    require_backend(backend)
    source = (
        "from rapidfuzz import fuzz, utils\n\n"
        "def grade(sample, item) -> float:\n"
        '    output_text = sample["output_text"]\n'
        '    reference_answer = item["reference_answer"]\n'
        "    return fuzz.WRatio(output_text, reference_answer, processor=utils.default_process) / 100.0\n"
    )
    grader = python_grader(backend, source)
    try:
        same, other = grader.grade_batch(
            [
                (
                    Sample(output_text="fuzzy wuzzy was a bear"),
                    {"reference_answer": "fuzzy wuzzy was a bear"},
                ),
                (Sample(output_text="a bear"), {"reference_answer": "fuzzy wuzzy was a bear"}),
            ]
        )
        assert same.reward == 1.0 and 0.0 < other.reward < 1.0
    finally:
        grader.close()


_SHARED: dict[str, object] = {}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(max_size=100), min_size=1, max_size=6))
def test_rewards_are_finite_in_unit_interval_for_arbitrary_text(texts: list[str]) -> None:
    if "grader" not in _SHARED:
        _SHARED["grader"] = python_grader(
            "process",
            "def grade(sample, item):\n"
            "    text = sample['output_text']\n"
            "    return len(text) / 50 if len(text) % 3 else float(text.count('a') or 'nan')\n",
        )
    grader = _SHARED["grader"]
    for text, result in zip(
        texts, grader.grade_batch([(Sample(output_text=t), {}) for t in texts]), strict=True
    ):
        assert math.isfinite(result.reward) and 0.0 <= result.reward <= 1.0
        # The grader's own rule decides which samples are errors, and nothing else is.
        raw = len(text) / 50 if len(text) % 3 else float(text.count("a") or "nan")
        expect_error = not (math.isfinite(raw) and 0.0 <= raw <= 1.0)
        assert result.metadata.errors.invalid_reward_error is expect_error, (text, result.metadata.errors)
        assert result.valid is not expect_error
        if not expect_error:
            assert result.reward == raw


def teardown_module() -> None:
    if "grader" in _SHARED:
        _SHARED.pop("grader").close()
