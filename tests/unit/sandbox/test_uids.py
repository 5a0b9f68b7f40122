"""Namespace-backend worker uids are unique host-wide, across service processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rftkit.sandbox import namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="per-worker uids are used only as root")

OTHER_PROCESS = """
import sys, time
from rftkit.sandbox import namespace
uids = [namespace._allocate_uid() for _ in range(3)]
print(" ".join(map(str, uids)), flush=True)
sys.stdin.read()  # hold them until told to stop
"""


def test_two_processes_never_share_a_uid_and_released_uids_come_back() -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = {int(u) for u in other.stdout.readline().split()}
        assert len(theirs) == 3
        ours = [namespace._allocate_uid() for _ in range(200)]
        try:
            assert len(set(ours)) == 200 and not theirs & set(ours)
        finally:
            for uid in ours:
                namespace._release_uid(uid)
    finally:
        other.communicate("", timeout=30)
    # Once the other process is gone, its uids are free again (the kernel dropped its locks).
    for uid in theirs:
        fd = namespace._try_lock(uid)
        assert fd is not None
        os.close(fd)
