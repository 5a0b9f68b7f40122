"""glibc's malloc for processes that pass large buffers around (requests of hundreds of kB).

By default glibc maps every allocation over 128 KiB to fresh pages of its own (mmap) and hands
the top of the heap back to the kernel once 128 KiB of it is free, so each large buffer a
request makes (its bytes off the socket, the protobuf message, the JSON a worker gets) costs a
page fault per 4 KiB: serializing a 446 kB GradeBatchRequest took 0.67 ms that way on a
2-core VM, 0.036 ms from reused heap (the difference is all page faults).
`reuse_large_buffers` keeps such buffers on the heap and freed memory in it for reuse.
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 16 << 20  # allocations up to this come from the heap
TRIM_THRESHOLD_BYTES = 32 << 20  # free memory at the heap's top is kept up to this (per arena)


@functools.cache
def reuse_large_buffers() -> bool:
    """Tune this process's malloc (once); False where the C library is not glibc (no mallopt)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
