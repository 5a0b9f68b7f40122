"""A worker nearing grades_per_worker gets its replacement started beside it, ahead of time."""

from __future__ import annotations

from typing import Any

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import SPARE_AHEAD, PoolHandle, get_pool
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = pytest.mark.timeout(180)

COUNTER = """
COUNT = 0

def grade(sample, item):
    global COUNT
    COUNT += 1
    return COUNT
"""


def _one_worker(backend: str, tenant: str, grades_per_worker: int) -> tuple[PoolHandle, Any]:
    """A pool of one worker (on `backend`), and the slot that worker lives in."""
    require_backend(backend)
    limits = SandboxLimits(
        sample_timeout_s=5.0, load_timeout_s=20.0, workers=1, grades_per_worker=grades_per_worker
    )
    pool = get_pool(tenant=tenant, grader_id="g", version="1", source=COUNTER, backend=backend, limits=limits)
    return pool, pool._pool._all_slots[0]


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_the_replacement_is_ready_when_the_worker_retires(backend: str) -> None:
    pool, slot = _one_worker(backend, "t-spares", 6)
    try:
        counts = [o.value for o in pool.grade([({}, {})] * 2)]
        assert 2 + SPARE_AHEAD * 2 >= 6 and slot.spare is not None  # started with 4 grades to go
        spare = slot.spare.result(timeout=60)
        assert spare is not None and spare.alive and spare is not slot.worker
        counts += [o.value for o in pool.grade([({}, {})] * 2)]
        counts += [o.value for o in pool.grade([({}, {})] * 2)]  # the limit: the spare takes over
        assert slot.worker is None and slot.spare is not None  # retired; the spare waits for the next batch
        counts += [o.value for o in pool.grade([({}, {})] * 2)]
        assert counts == [1, 2, 3, 4, 5, 6, 1, 2]  # the fresh worker graded the last batch
        assert slot.worker is spare
    finally:
        pool.close()
    assert not spare.alive


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_closing_the_pool_stops_a_spare(backend: str) -> None:
    pool, slot = _one_worker(backend, "t-spares2", 4)
    pool.grade([({}, {})] * 2)
    assert slot.spare is not None
    pool.close()
    spare = slot.spare.result(timeout=60)
    assert spare is None or not spare.alive  # stopped, or never came up because the pool closed
