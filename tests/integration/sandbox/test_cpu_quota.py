"""A worker's CPU quota (its cgroup) holds threads that grade() leaves running after it returns
(until the batch ends: then the worker retires, test_deadlines.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.cgroups import cpu_seconds_in, sandbox_bases, service_dir_name
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import require_backend

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.bwrap,
    pytest.mark.skipif(os.geteuid() != 0, reason="worker cgroups are used only as root"),
]

STRAY = """
import hashlib, threading, time

DATA = bytes(1 << 20)

def _spin():
    while True:  # hashing a large buffer releases the GIL: the threads run in parallel
        hashlib.sha256(DATA).digest()

def grade(sample, item):
    if item.get("spin"):
        for _ in range(3):
            threading.Thread(target=_spin, daemon=True).start()
    time.sleep(item.get("sleep", 0))
    return 1.0
"""
CPUS = 0.2


def test_stray_threads_are_held_to_the_worker_quota() -> None:
    require_backend("namespace")
    limits = SandboxLimits(workers=1, cpus=CPUS, memory_mb=512, scratch_mb=32, load_timeout_s=60)
    pool = get_pool(
        tenant="t-cpu", grader_id="stray", version="1", source=STRAY, backend="namespace", limits=limits
    )
    got: list = []
    # The first grade() returns at once and leaves three threads spinning while the second sleeps.
    batch = threading.Thread(
        target=lambda: got.extend(pool.grade([({}, {"spin": True}), ({}, {"sleep": 6})]))
    )
    earlier = {d.name for d in _worker_dirs()}  # other tests' workers, some of them being removed
    try:
        batch.start()
        deadline = time.monotonic() + 60
        while not (dirs := [d for d in _worker_dirs() if d.name not in earlier and _has_processes(d)]):
            assert time.monotonic() < deadline, "the worker has no cgroup"
            time.sleep(0.05)
        time.sleep(1.5)  # the worker has loaded the grader and graded the first sample
        before, start = cpu_seconds_in(dirs), time.monotonic()
        assert before is not None, "no controller counts the worker's CPU time"
        time.sleep(3.0)
        used = cpu_seconds_in(dirs) - before
        wall = time.monotonic() - start
        batch.join(30)
        assert [o.value for o in got] == [1.0, 1.0]
    finally:
        pool.close()
    assert used > 0.2 * CPUS * wall, f"control: the stray threads should be running ({used:.2f} s)"
    assert used <= CPUS * wall * 1.3 + 0.1, f"{used:.2f} s of CPU in {wall:.2f} s (quota {CPUS} CPUs)"


def _worker_dirs() -> list[Path]:
    """The cgroups of this process's sandbox workers, in every hierarchy."""
    return [d for base in sandbox_bases() for d in base.glob(f"{service_dir_name()}/w*")]


def _has_processes(path: Path) -> bool:
    try:
        return bool((path / "cgroup.procs").read_text().strip())
    except OSError:
        return False
