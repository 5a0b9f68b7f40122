"""Every worker runs as a host uid of its own on both backends, so per-uid kernel limits are not shared.

The check that matters: one tenant holding every inotify instance its uid may have (a per-user
limit, fs.inotify.max_user_instances) leaves another tenant's grader able to open one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.namespace import UID_BASE, UID_SPAN
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="workers get uids of their own only when the service is root"
    ),
]

GRADER = """
import ctypes, os

libc = ctypes.CDLL(None, use_errno=True)
HELD = []  # inotify instances this warm worker keeps open between samples

def grade(sample, item):
    if item["mode"] == "hog":
        while True:
            fd = libc.inotify_init1(0)
            if fd < 0:
                return {"uid": os.getuid(), "held": len(HELD), "errno": ctypes.get_errno()}
            HELD.append(fd)
    fd = libc.inotify_init1(0)
    result = {"uid": os.getuid(), "errno": 0 if fd >= 0 else ctypes.get_errno()}
    if fd >= 0:
        os.close(fd)
    return result
"""
LIMITS = SandboxLimits(workers=1, memory_mb=512, scratch_mb=32, load_timeout_s=60)


@pytest.mark.parametrize("backend", backend_params())
def test_each_worker_has_its_own_host_uid_and_inotify_budget(backend: str) -> None:
    require_backend(backend)
    max_instances = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    hog = get_pool(
        tenant="t-uid-a", grader_id="g", version="1", source=GRADER, backend=backend, limits=LIMITS
    )
    other = get_pool(
        tenant="t-uid-b", grader_id="g", version="1", source=GRADER, backend=backend, limits=LIMITS
    )
    try:
        held = hog.grade([({}, {"mode": "hog"})])[0]
        assert held.error is None, held.details
        assert held.value["errno"] == 24  # EMFILE: tenant A's uid has used up its inotify instances
        assert 0 < held.value["held"] <= max_instances
        seen = other.grade([({}, {"mode": "probe"})])[0]  # while A's warm worker still holds them
        assert seen.error is None, seen.details
        assert seen.value["errno"] == 0, "another tenant's worker shares the exhausted per-uid limit"
        uids = {held.value["uid"], seen.value["uid"]}
        if backend == "docker":  # no user namespace: the container's uid is the host's
            assert len(uids) == 2 and all(UID_BASE <= uid < UID_BASE + UID_SPAN for uid in uids)
        else:  # bubblewrap maps each worker's own host uid (tests/unit/sandbox/test_uids.py) to 65534
            assert uids == {65534}
    finally:
        hog.close()
        other.close()
