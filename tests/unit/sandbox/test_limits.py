"""SandboxLimits: OpenAI-like defaults, overridable per service (environment) and per grader (dict)."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import get_pool


def test_defaults_follow_openai_python_graders() -> None:
    limits = SandboxLimits()
    assert limits.source_max_bytes == 256 * 1024
    assert (limits.memory_mb, limits.scratch_mb, limits.cpus) == (2048, 1024, 2.0)
    # "The grading execution itself is limited to 2 minutes": per sample, not per batch
    assert limits.sample_timeout_s == 120.0 and limits.batch_timeout_s >= 10 * limits.sample_timeout_s
    assert limits.output_max_bytes > 0 and limits.workers is None and limits.image_tag is None


def test_a_batch_cap_below_one_sample_is_refused_and_image_tags_carry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError) as info:
        SandboxLimits(sample_timeout_s=60, batch_timeout_s=30)
    assert "one slow sample would end the whole batch" in str(info.value)
    limits = SandboxLimits(workers=1)
    assert limits.for_image(None) is limits
    tagged = limits.for_image("rftkit-2026-12")
    assert (tagged.image_tag, tagged.workers, limits.image_tag) == ("rftkit-2026-12", 1, None)
    monkeypatch.setenv("RFTKIT_SANDBOX_IMAGE_TAG", "2025-05-08")
    assert SandboxLimits.from_env().image_tag == "2025-05-08"


def test_environment_then_per_grader_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"RFTKIT_SANDBOX_MEMORY_MB": "512", "RFTKIT_SANDBOX_SAMPLE_TIMEOUT_S": "1.5", "OTHER": "x"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert SandboxLimits.from_env().memory_mb == 512
    monkeypatch.setenv("RFTKIT_SANDBOX_WORKERS", "3")
    coerced = SandboxLimits.coerce({"memory_mb": 256})
    assert (coerced.memory_mb, coerced.workers) == (256, 3)  # the grader's dict wins over the service's
    assert SandboxLimits.coerce(None).memory_mb == 512
    explicit = SandboxLimits(memory_mb=100)
    assert SandboxLimits.coerce(explicit) is explicit


@pytest.mark.parametrize("bad", [{"RFTKIT_SANDBOX_MEMORY_MB": "lots"}, {"RFTKIT_SANDBOX_CPUS": "two"}])
def test_bad_environment_values_are_refused(bad: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        SandboxLimits.from_env()


def test_unknown_limit_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        SandboxLimits.coerce({"memroy_mb": 10})


def test_pools_are_sized_to_the_cores_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFTKIT_SANDBOX_WORKERS", raising=False)
    source = "def grade(sample, item):\n    return 1.0\n"
    pool = get_pool(tenant="t", grader_id="g", version="sized", source=source, backend="process")
    try:
        assert pool.size == (os.cpu_count() or 1)
    finally:
        pool.close()
    pool = get_pool(
        tenant="t", grader_id="g", version="sized", source=source, backend="process", limits={"workers": 1}
    )
    try:
        assert pool.size == 1
    finally:
        pool.close()
