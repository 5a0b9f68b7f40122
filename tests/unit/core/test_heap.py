"""core.heap: with reuse_large_buffers, a large buffer made again and again costs no page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
from rftkit.core.heap import reuse_large_buffers

tuned = sys.argv[1] == "tuned"
if tuned:
    assert reuse_large_buffers()
for _ in range(5):  # warm up: the heap grows once
    bytes(bytearray(1 << 20))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    bytes(bytearray(1 << 20))  # 1 MiB made, copied, freed: what a large request's buffers do
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_buffers_reuse_the_heap_instead_of_faulting_in_fresh_pages() -> None:
    plain, tuned = _faults("plain"), _faults("tuned")
    assert plain > 100 * 200  # control: each 1 MiB buffer faulted in its 256 pages (twice)
    assert tuned < 1000, (plain, tuned)
