"""Issue 14 items 7 and 9: every exchange with a worker has a deadline both ways; a worker whose
grade() left threads running is recycled; closing a pool ends the batches in flight at once.

Real workers on each backend; the faults are provoked by graders (a pipe swapped for one nobody
writes to, a thread left running), nothing is faked.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rftkit.sandbox import worker as worker_module
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import backend_params, require_backend
from rftkit.sandbox.worker_runtime import RECYCLE_STATUS

pytestmark = pytest.mark.timeout(180)

PIPE_SWAP = (Path(__file__).parents[2] / "security" / "attacks" / "pipe_swap.py").read_text()
SEND_BASE_S = 1.0  # the send deadline's slack, shortened so that a stall costs a second here
LIMITS = SandboxLimits(sample_timeout_s=10.0, load_timeout_s=30.0, workers=1)
STRAY_THREAD = """
import threading, time

def grade(sample, item):
    if item.get("mode") == "thread":
        threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
"""
SLEEPER = """
import time

def grade(sample, item):
    time.sleep(float(item.get("sleep", 0)))
    return 1.0
"""


@pytest.fixture(params=backend_params(with_process=True))
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    require_backend(request.param)
    monkeypatch.setattr(worker_module, "SEND_BASE_S", SEND_BASE_S)
    return request.param


def _pool(backend: str, name: str, source: str, limits: SandboxLimits = LIMITS) -> Any:
    version = f"{name}-{time.monotonic_ns()}"
    return get_pool(
        tenant="t", grader_id=name, version=version, source=source, backend=backend, limits=limits
    )


def _pairs(count: int, reference: str = "a", **extra: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [({"output_text": reference}, {"reference": reference, **extra}) for _ in range(count)]


def _rewards(outcomes: list[Any]) -> list[Any]:
    return [o.value if o.error is None else o.error for o in outcomes]


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_worker_that_stops_reading_costs_only_its_own_samples(backend: str, size: str) -> None:
    pool = _pool(backend, f"swap-{size}", PIPE_SWAP)
    try:
        first = pool.grade([*_pairs(1), ({"output_text": "x"}, {"mode": "attack"}), *_pairs(1)])
        assert _rewards(first) == [1.0, 1.0, 1.0]  # it returns normally; its worker is wedged
        # A request that fits in the shrunk pipe sits there unread (no receipt comes); a large one
        # cannot even be written (and the docker engine takes both off our hands).
        reference = "a" * (8 if size == "small" else 20_000)
        count = 2 if size == "small" else 40
        start = time.monotonic()
        second = pool.grade(_pairs(count, reference))
        took = time.monotonic() - start
        assert _rewards(second) == [1.0] * count
        assert took < SEND_BASE_S + 10, took  # one send deadline (the worker's receipt did not come)
    finally:
        pool.close()


def test_pairs_no_fresh_worker_takes_are_flagged_after_one_retry(backend: str) -> None:
    pool = _pool(backend, "swap-at-load", "SWAP_AT_LOAD = True\n" + PIPE_SWAP)
    try:
        start = time.monotonic()
        outcomes = pool.grade(_pairs(30, "b" * 2000))
        assert {o.error for o in outcomes} == {"timeout"}
        assert "stopped reading its requests" in (outcomes[0].details or "")
        assert time.monotonic() - start < 2 * (SEND_BASE_S + 1) + 20
    finally:
        pool.close()


def test_stray_threads_recycle_the_worker_and_its_results_stand(backend: str) -> None:
    pool = _pool(backend, "threads", STRAY_THREAD)
    slot = pool._pool._all_slots[0]
    try:
        first = pool.grade(
            [*_pairs(1), ({"output_text": "a"}, {"reference": "a", "mode": "thread"}), *_pairs(1)]
        )
        assert _rewards(first) == [1.0, 1.0, 1.0]
        worker = slot.worker
        assert _exit_status(worker.channel) == RECYCLE_STATUS  # it left before the next request
        assert "left 1 thread(s) running" in worker.channel.stderr_tail()
        second = pool.grade([*_pairs(2), ({"output_text": "b"}, {"reference": "a"})])
        assert _rewards(second) == [1.0, 1.0, 0.0]
        assert slot.worker is not worker and slot.worker.grades == 3  # a fresh worker, nothing blamed
        third = pool.grade(_pairs(2))  # no stray thread in the last batch: the same worker goes on
        assert _rewards(third) == [1.0, 1.0] and slot.worker.grades == 5
    finally:
        pool.close()


def _exit_status(channel: Any, timeout: float = 20) -> int | None:
    """The worker's exit status once it has exited on its own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reason = channel.exit_reason()
        if reason is not None:
            return int(reason.rsplit(" ", 1)[-1]) if reason.startswith("exited") else -1
        time.sleep(0.1)
    return None


def test_closing_a_pool_ends_a_batch_in_flight_at_once(backend: str) -> None:
    pool = _pool(backend, "close", SLEEPER, SandboxLimits(sample_timeout_s=60.0, workers=1))
    got: list[Any] = []
    grading = threading.Thread(target=lambda: got.extend(pool.grade(_pairs(3, sleep=30))))
    grading.start()
    deadline = time.monotonic() + 30
    while not (pool._pool._all_slots[0].worker and pool._pool._all_slots[0].worker.grades == 0):
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    time.sleep(0.5)  # the batch is in grade() now
    start = time.monotonic()
    pool.close()
    grading.join(10)
    assert not grading.is_alive()
    assert time.monotonic() - start < 8
    assert [o.error for o in got] == ["unavailable"] * 3
    assert "closed" in (got[0].details or "")


def test_closing_a_pool_ends_a_worker_start_in_flight_at_once(backend: str) -> None:
    slow_load = "import time\ntime.sleep(25)\n" + SLEEPER
    pool = _pool(
        backend, "close-start", slow_load, SandboxLimits(sample_timeout_s=5.0, load_timeout_s=60.0, workers=1)
    )
    got: list[Any] = []
    grading = threading.Thread(target=lambda: got.extend(pool.grade(_pairs(2))))
    grading.start()
    deadline = time.monotonic() + 30
    while pool._pool._all_slots[0].starting is None:
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    time.sleep(1.0)  # its module is loading now
    start = time.monotonic()
    pool.close()
    grading.join(10)
    assert not grading.is_alive()
    assert time.monotonic() - start < 8
    assert [o.error for o in got] == ["unavailable"] * 2
