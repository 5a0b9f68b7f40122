"""Warm pools on every backend: ordering, splitting, recycling, timeouts, crashes, tenants."""

from __future__ import annotations

import math
import time

import pytest
from rftkit.sandbox.api import SandboxLimits, SandboxUnavailable
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = pytest.mark.timeout(180)

GRADER = """
import os, math, random
COUNT = 0
TOKEN = random.random()  # tells workers apart (pids do not: each sandbox has its own pid namespace)

def grade(sample, item):
    global COUNT
    COUNT += 1
    kind = item.get("kind")
    if kind == "token":
        return TOKEN
    if kind == "count":
        return COUNT
    if kind == "nan":
        return float("nan")
    if kind == "inf":
        return -math.inf
    if kind == "sleep":
        while True:
            pass
    if kind == "exit":
        os._exit(7)
    if kind == "raise":
        raise KeyError("missing")
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
"""
FAST = SandboxLimits(sample_timeout_s=1.0, load_timeout_s=20.0, workers=2)


@pytest.fixture(params=backend_params(with_process=True))
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return request.param


def _pool(
    backend: str, *, tenant: str = "t1", version: str = "1", limits: SandboxLimits = FAST, source=GRADER
):
    return get_pool(
        tenant=tenant, grader_id="g", version=version, source=source, backend=backend, limits=limits
    )


def _pair(kind: str | None = None, out: str = "a", ref: str = "a") -> tuple[dict, dict]:
    return {"output_text": out}, {"reference": ref, "kind": kind}


def test_batch_is_graded_in_order_and_split_across_workers(backend: str) -> None:
    pool = _pool(backend)
    try:
        assert pool.backend == backend
        pairs = [_pair(out="a", ref="a" if i % 3 else "b") for i in range(40)]
        outcomes = pool.grade(pairs)
        assert [o.value for o in outcomes] == [0.0 if i % 3 == 0 else 1.0 for i in range(40)]
        assert all(o.error is None for o in outcomes)
        tokens = [o.value for o in pool.grade([_pair("token") for _ in range(8)])]
        assert len(set(tokens)) == 2 and tokens[0] == tokens[3] != tokens[4]  # two workers, half each
    finally:
        pool.close()


def test_special_values_and_errors_are_per_sample(backend: str) -> None:
    pool = _pool(backend)
    try:
        outcomes = pool.grade([_pair("nan"), _pair("inf"), _pair("raise"), _pair()])
        assert math.isnan(outcomes[0].value) and outcomes[1].value == -math.inf
        assert outcomes[2].error == "runtime" and "KeyError: 'missing'" in outcomes[2].details
        assert outcomes[3].value == 1.0 and outcomes[3].error is None
    finally:
        pool.close()


def test_timeout_and_crash_recycle_the_worker_and_the_rest_is_graded(backend: str) -> None:
    pool = _pool(backend, limits=FAST.model_copy(update={"workers": 1}))
    try:
        start = time.monotonic()
        outcomes = pool.grade([_pair("count"), _pair("sleep"), _pair("count"), _pair("exit"), _pair("count")])
        assert time.monotonic() - start < 15
        assert outcomes[0].value == 1
        assert outcomes[1].error == "timeout"
        assert outcomes[2].value == 1  # a fresh worker: module state starts over
        assert outcomes[3].error == "crash" and "status 7" in outcomes[3].details
        assert outcomes[4].value == 1
        assert pool.grade([_pair()])[0].value == 1.0
    finally:
        pool.close()


def test_a_crash_blames_only_its_sample_though_earlier_results_were_unsent(backend: str) -> None:
    pool = _pool(backend, limits=FAST.model_copy(update={"workers": 1}))
    try:
        pairs = (
            [_pair("count")] * 5 + [_pair("exit")] + [_pair("count")] * 5 + [_pair("raise"), _pair("exit")]
        )
        outcomes = pool.grade(pairs)
        assert [o.error for o in outcomes] == [None] * 5 + ["crash"] + [None] * 5 + ["runtime", "crash"]
        # The first five were graded again, one per batch, by a fresh worker: counts 1 to 5.
        assert [o.value for o in outcomes[:5]] == [1, 2, 3, 4, 5]
        assert all("status 7" in o.details for o in (outcomes[5], outcomes[12]))
        assert [o.value for o in pool.grade([_pair(), _pair(out="b")])] == [1.0, 0.0]
    finally:
        pool.close()


def test_worker_is_recycled_after_n_grades(backend: str) -> None:
    pool = _pool(backend, limits=FAST.model_copy(update={"workers": 1, "grades_per_worker": 3}))
    try:
        counts = [o.value for o in pool.grade([_pair("count") for _ in range(3)])]
        counts += [o.value for o in pool.grade([_pair("count") for _ in range(2)])]
        assert counts == [1, 2, 3, 1, 2]
    finally:
        pool.close()


def test_pools_are_per_tenant_and_shared_within_one(backend: str) -> None:
    limits = FAST.model_copy(update={"workers": 1})
    a1, a2 = _pool(backend, tenant="a", limits=limits), _pool(backend, tenant="a", limits=limits)
    b = _pool(backend, tenant="b", limits=limits)
    try:
        assert a1.grade([_pair("count")])[0].value == 1
        assert a2.grade([_pair("count")])[0].value == 2  # same tenant, same version: same warm worker
        assert b.grade([_pair("count")])[0].value == 1  # another tenant never sees that state
    finally:
        for pool in (a1, a2, b):
            pool.close()


def test_load_errors_are_reported_per_sample(backend: str) -> None:
    pool = _pool(
        backend, version="broken", source="import no_such_module_xyz\ndef grade(s, i):\n    return 1\n"
    )
    try:
        outcomes = pool.grade([_pair(), _pair()])
        assert [o.error for o in outcomes] == ["runtime", "runtime"]
        assert "No module named 'no_such_module_xyz'" in outcomes[0].details
    finally:
        pool.close()


def test_batch_cap_stops_a_slow_batch(backend: str) -> None:
    limits = FAST.model_copy(update={"workers": 1, "batch_timeout_s": 4.0, "sample_timeout_s": 0.8})
    source = "import time\ndef grade(s, i):\n    time.sleep(0.5)\n    return 1.0\n"
    pool = _pool(backend, version="slow", source=source, limits=limits)
    try:
        assert pool.grade([_pair()])[0].value == 1.0  # warm: the worker's start is not counted below
        start = time.monotonic()
        outcomes = pool.grade([_pair() for _ in range(12)])
        assert time.monotonic() - start < 4.0 + 2.5
        assert 1 <= sum(o.value == 1.0 for o in outcomes) <= 8
        assert outcomes[-1].error == "timeout" and "cap" in outcomes[-1].details
    finally:
        pool.close()


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown sandbox backend"):
        _pool("chroot")


def test_closed_handle_refuses_work() -> None:
    pool = _pool("process", version="closed")
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.grade([_pair()])


def test_sandbox_unavailable_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from rftkit.sandbox import backends

    monkeypatch.setattr(backends, "backend_problem", lambda name: f"{name} is missing here")
    with pytest.raises(SandboxUnavailable, match="rft sandbox build"):
        _pool("auto")


def test_concurrent_batches_share_the_pool(backend: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = _pool(backend, version="concurrent")
    try:

        def run(offset: int) -> list[float]:
            pairs = [_pair(out="a", ref="a" if (i + offset) % 2 else "b") for i in range(30)]
            return [o.value for o in pool.grade(pairs)]

        with ThreadPoolExecutor(4) as threads:
            got = list(threads.map(run, range(4)))
        for offset, values in enumerate(got):
            assert values == [1.0 if (i + offset) % 2 else 0.0 for i in range(30)]
    finally:
        pool.close()


def test_output_is_captured_per_sample_and_capped(backend: str) -> None:
    source = (
        "import sys\n"
        "def grade(sample, item):\n"
        "    print('start', item['n'])\n"
        "    sys.stderr.write('e' * item['n'])\n"
        "    return 1.0\n"
    )
    limits = FAST.model_copy(update={"workers": 1, "output_max_bytes": 1000})
    pool = _pool(backend, version="chatty", source=source, limits=limits)
    try:
        small, big, after = pool.grade([({}, {"n": 5}), ({}, {"n": 300_000}), ({}, {"n": 1})])
        assert small.stdout == "start 5\neeeee" and small.value == 1.0
        assert big.value == 1.0 and big.stdout.startswith("start 300000\neee")
        assert len(big.stdout) < 1200 and "299013 more characters dropped" in big.stdout
        assert after.stdout == "start 1\ne"  # each sample's buffer starts empty
    finally:
        pool.close()
