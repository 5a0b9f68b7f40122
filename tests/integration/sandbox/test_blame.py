"""Issue 14 item 2: a worker killed from outside at any moment costs no sample and breaks no grader."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rftkit.sandbox import pools
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import require_backend

pytestmark = pytest.mark.timeout(120)

SLOW_LOAD = """
import time
time.sleep(1.5)

def grade(sample, item):
    time.sleep(float(item.get("sleep", 0)))
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
"""
LIMITS = SandboxLimits(sample_timeout_s=5.0, load_timeout_s=20.0, workers=1)


@pytest.fixture(params=["process", pytest.param("namespace", marks=pytest.mark.bwrap)])
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return request.param


class KillingBackend:
    """The pool's backend, with `kill_after(channel_number)` seconds: SIGKILL from outside."""

    def __init__(self, inner: Any, delays: dict[int, float]) -> None:
        self._inner, self._delays, self.launched = inner, delays, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def launch(self, limits: SandboxLimits) -> Any:
        channel = self._inner.launch(limits)
        delay = self._delays.get(self.launched)
        self.launched += 1
        if delay is not None:
            threading.Timer(delay, _kill, (channel,)).start()
        return channel


def _kill(channel: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(channel.proc.pid, signal.SIGKILL)


def _pool(backend: str, version: str, source: str, wrap: Callable[[Any], Any]) -> Any:
    handle = get_pool(
        tenant="t", grader_id="g", version=version, source=source, backend=backend, limits=LIMITS
    )
    handle._pool.backend_impl = wrap(handle._pool.backend_impl)
    return handle


@pytest.mark.parametrize(("moment", "delay"), [("before it signals start", 0.0), ("while it loads", 1.0)])
def test_a_worker_killed_while_it_starts_costs_nothing(backend: str, moment: str, delay: float) -> None:
    killer: list[KillingBackend] = []
    pool = _pool(
        backend,
        f"start-{delay}",
        SLOW_LOAD,
        lambda b: killer.append(KillingBackend(b, {0: delay})) or killer[0],
    )
    try:
        outcomes = pool.grade([({"output_text": "a"}, {"reference": "a"})] * 6)
        assert [o.error for o in outcomes] == [None] * 6, (moment, outcomes)
        assert all(o.value == 1.0 for o in outcomes)
        assert killer[0].launched == 2  # killed once, replaced once
        assert pool._pool._broken() is None
    finally:
        pool.close()


def test_a_worker_killed_while_grading_costs_no_sample(backend: str) -> None:
    pool = _pool(backend, "grading", SLOW_LOAD, lambda b: b)
    try:
        pool.grade([({"output_text": "a"}, {"reference": "a"})])  # warm
        worker = pool._pool._all_slots[0].worker
        many = [({"output_text": "a"}, {"reference": "a", "sleep": 0.1})] * 10
        one = [({"output_text": "a"}, {"reference": "a", "sleep": 0.6})]
        for pairs in (many, one):  # many pairs unanswered; then the one pair in flight
            threading.Timer(0.35, _kill, (worker.channel,)).start()
            outcomes = pool.grade(pairs)
            assert [o.error for o in outcomes] == [None] * len(pairs)
            assert all(o.value == 1.0 for o in outcomes)
            worker = pool._pool._all_slots[0].worker
    finally:
        pool.close()


def test_a_grader_that_fails_to_load_twice_is_retried_after_a_back_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pools, "LOAD_RETRY_S", 0.5)
    flag = tmp_path / "ready"
    source = (
        f"import os\nassert os.path.exists({str(flag)!r}), 'not ready'\ndef grade(s, i):\n    return 1.0\n"
    )
    pool = get_pool(
        tenant="t", grader_id="g", version="flaky", source=source, backend="process", limits=LIMITS
    )
    try:
        first = pool.grade([("a", {})] * 2)
        assert [o.error for o in first] == ["runtime"] * 2 and "not ready" in (first[0].details or "")
        flag.write_text("")
        assert pool.grade([("a", {})])[0].error == "runtime"  # within the back-off: still broken
        time.sleep(0.6)
        assert [o.value for o in pool.grade([("a", {})] * 2)] == [1.0, 1.0]
    finally:
        pool.close()
