"""A worker is replaced before a limit bites: a grader that leaks memory costs no sample its
score, because its worker retires after a batch once it has used half the room it had."""

from __future__ import annotations

import time

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = pytest.mark.timeout(180)

LEAKS_8_MIB_A_GRADE = """
KEPT = []

def grade(sample, item):
    KEPT.append(bytearray(8 << 20))
    return 1.0
"""


@pytest.mark.parametrize("backend", backend_params(with_process=True))
def test_a_leaking_grader_loses_no_sample_to_its_memory_limit(backend: str) -> None:
    require_backend(backend)
    limits = SandboxLimits(memory_mb=512, sample_timeout_s=10.0, load_timeout_s=30.0, workers=1)
    pool = get_pool(
        tenant="t-recycle", grader_id="leak", version=f"leak-{time.monotonic_ns()}",
        source=LEAKS_8_MIB_A_GRADE, backend=backend, limits=limits,
    )  # fmt: skip
    slot = pool._pool._all_slots[0]
    workers, retired = set(), []
    try:
        for _ in range(40):  # 160 grades, 1.25 GiB leaked in all: two and a half times the limit
            outcomes = pool.grade([({"output_text": "a"}, {})] * 4)
            assert [o.error for o in outcomes] == [None] * 4, [o.details for o in outcomes]
            assert [o.value for o in outcomes] == [1.0] * 4
            if slot.worker is not None and id(slot.worker) not in workers:
                workers.add(id(slot.worker))
                retired.append(slot.worker)
    finally:
        pool.close()
    assert len(workers) >= 3, "the worker was replaced as it leaked"
    assert any("memory grew to" in w.channel.stderr_tail() for w in retired[:-1])
