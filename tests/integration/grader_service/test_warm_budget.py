"""Issue 14 item 9: idle warm pools stay within a global budget of workers, on real sandboxes.

Three graders of one tenant, pools of two workers, a budget of two pools' worth: once the third
has graded, the least recently used pool is closed, and what it ran is gone (its workers'
cgroups on the namespace backend as root, its containers on docker: item 10).
"""

from __future__ import annotations

import os
import socket

import pytest
from rftkit.core.records import Sample
from rftkit.grader_service.runtime import LoadedGraders, grade_in_chunks
from rftkit.sandbox.cgroups import cgroups_usable, sandbox_bases
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = pytest.mark.timeout(180)


def _spec(answer: str) -> dict:
    source = f"def grade(sample, item):\n    return 1.0 if sample['output_text'] == {answer!r} else 0.0\n"
    return {"type": "python", "name": f"is-{answer}", "source": source}


def _what_runs(backend: str) -> int:
    """Worker cgroups (namespace, as root) or containers (docker) this process has running."""
    if backend == "docker":
        import docker

        label = f"rftkit.sandbox.owner={socket.gethostname()}:{os.getpid()}"
        return len(docker.from_env().containers.list(all=True, filters={"label": label}))
    dirs: set[str] = set()
    for base in sandbox_bases():
        dirs |= {p.name for p in base.glob(f"svc-{os.getpid()}-*/*") if p.is_dir()}
    return len(dirs)


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_idle_pools_beyond_the_budget_are_closed(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend(backend)
    monkeypatch.setenv("RFTKIT_SANDBOX_WORKERS", "2")
    monkeypatch.setenv("RFTKIT_SANDBOX_LOAD_TIMEOUT_S", "60")
    graders = LoadedGraders(backend, max_warm_workers=4)
    counted = backend == "docker" or (backend == "namespace" and cgroups_usable())
    pairs = [(Sample(output_text=t), {}) for t in ("a", "b", "c", "a")]
    try:
        loaded = []
        for answer in ("a", "b", "c"):
            with graders.use("tenant", f"g-{answer}", f"v-{answer}", _spec(answer)) as grader:
                graded = grade_in_chunks(grader, pairs, lambda: None)
                assert graded.rewards == [1.0 if t.output_text == answer else 0.0 for t, _ in pairs]
                loaded.append(grader)
                assert grader.pool_status().alive == 2  # both workers ran
            assert graders.warm_workers() <= 4
        first, second, third = (g.pool_status() for g in loaded)
        assert first is None  # the least recently used one was closed
        assert second.alive == third.alive == 2 and not second.closed
        assert len(graders.graders()) == 2
        if counted:
            assert _what_runs(backend) == 4, "the closed pool's workers left cgroups or containers"

        # Using the first again builds it anew; the budget now closes the second (least recent).
        with graders.use("tenant", "g-a", "v-a", _spec("a")) as grader:
            assert grade_in_chunks(grader, pairs, lambda: None).rewards == [1.0, 0.0, 0.0, 1.0]
        assert graders.warm_workers() == 4
        assert loaded[1].pool_status() is None and loaded[2].pool_status().alive == 2
    finally:
        graders.close_all()
    if counted:
        assert _what_runs(backend) == 0


def test_graders_in_use_are_never_closed_for_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget smaller than one pool closes a pool only once its batch is done."""
    monkeypatch.setenv("RFTKIT_SANDBOX_WORKERS", "2")
    graders = LoadedGraders("process", max_warm_workers=1)
    pairs = [(Sample(output_text="a"), {})] * 4
    with graders.use("tenant", "g", "v", _spec("a")) as grader:
        assert grade_in_chunks(grader, pairs, lambda: None).rewards == [1.0] * 4
        with graders.use("tenant", "g2", "v2", _spec("b")) as other:  # ends first: closed at once
            assert grade_in_chunks(other, pairs, lambda: None).rewards == [0.0] * 4
        assert other.pool_status() is None
        assert grader.pool_status().alive == 2  # still in use: kept
    assert graders.warm_workers() == 0 and grader.pool_status() is None
    graders.close_all()


def test_graders_without_a_sandbox_cost_nothing() -> None:
    graders = LoadedGraders("process", max_warm_workers=1)
    spec = {"type": "string_check", "name": "eq", "operation": "eq", "input": "a", "reference": "a"}
    for version in ("1", "2", "3"):
        with graders.use("tenant", "g", version, spec):
            pass
    assert len(graders.graders()) == 3
    graders.close_all()
