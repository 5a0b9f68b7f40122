"""The parent's end of one worker's pipe: frames out and in, each with a deadline, a capped stderr tail.

Nothing here blocks without a deadline: a worker that stops reading its requests (a grader that
swapped its request pipe, say) raises ChannelTimeout in `send` as surely as one that stops
answering does in `recv`; the caller then kills it.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .worker_runtime import HEADER, MAX_FRAME_BYTES

STDERR_TAIL_BYTES = 8 * 1024


class ChannelTimeout(Exception):
    """No frame arrived (or, from `send`, the worker did not take the request) before the deadline."""


class ChannelClosed(Exception):
    """The worker went away (exited, was killed, or broke the protocol)."""


class Channel(Protocol):
    """What a backend hands the pool for one running worker."""

    def send(self, data: bytes, deadline: float) -> None: ...

    def recv(self, deadline: float) -> bytes: ...

    def abort(self) -> None:
        """Kill the worker from any thread; a `send` or `recv` in progress ends (ChannelClosed)."""
        ...

    def stderr_tail(self) -> str: ...

    def exit_reason(self) -> str | None: ...

    def memory_breached(self) -> bool: ...

    def close(self) -> None: ...


class FrameBuffer:
    """Reassembles length-prefixed frames from a byte stream."""

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self.max_bytes = max_bytes

    def feed(self, data: bytes | memoryview) -> None:
        self._buf += data

    def pop(self) -> bytes | None:
        if len(self._buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self._buf)
        if size > self.max_bytes:
            raise ChannelClosed(f"the worker announced a message of {size} bytes (limit {self.max_bytes})")
        end = HEADER.size + size
        if len(self._buf) < end:
            return None
        frame = bytes(self._buf[HEADER.size : end])
        del self._buf[:end]
        return frame


class TailBuffer:
    """Keeps the last `limit` bytes written to it; fed by a draining thread."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self.limit = limit
        self._data = bytearray()
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._data += data
            if len(self._data) > self.limit:
                del self._data[: len(self._data) - self.limit]

    def text(self) -> str:
        with self._lock:
            return self._data.decode("utf-8", "replace")


def frame(payload: bytes) -> bytes:
    """One length-prefixed frame."""
    return HEADER.pack(len(payload)) + payload


def send_within(write: Callable[[memoryview], int], fd: int, data: bytes, deadline: float) -> None:
    """One frame through `write` (non-blocking: returns what it took, raises BlockingIOError when
    nothing fits), waiting on `fd` for room until `deadline`. ChannelTimeout when the reader did not
    take it all in time, ChannelClosed when the reader is gone."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    for piece in (memoryview(HEADER.pack(len(data))), memoryview(data)):
        while piece:
            try:
                piece = piece[write(piece) :]
                continue
            except BlockingIOError:
                pass
            except (OSError, ValueError) as exc:
                raise ChannelClosed(str(exc) or type(exc).__name__) from exc
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(math.ceil(left * 1000)):
                raise ChannelTimeout()


READ_BYTES = 1 << 18  # what one read takes from a worker's output pipe at most
PIPE_BYTES = 1 << 20  # a chunk's request (and its results) fit in the pipe: no wake-up per 64 KiB


def _widen_pipe(fd: int) -> None:
    """Give a pipe PIPE_BYTES of buffer (Linux's default is 64 KiB), or as much as the host allows."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def describe_returncode(code: int | None) -> str | None:
    """A human description of a process's exit status."""
    if code is None:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with status {code}"


class ProcessChannel:
    """A worker that is a local child process (plain, or wrapped by bubblewrap) talking over pipes."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: str | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._on_close = on_close
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self._in_fd = self.proc.stdin.fileno()
        os.set_blocking(self._in_fd, False)  # written by send_within, never through the file object
        self._out_fd = self.proc.stdout.fileno()
        for fd in (self._in_fd, self._out_fd):
            _widen_pipe(fd)
        self._poll = select.poll()  # not select(): descriptors past 1024 in a busy service
        self._poll.register(self._out_fd, select.POLLIN)
        self._frames = FrameBuffer(max_frame_bytes)
        # Read into one buffer: os.read(fd, n) allocates n bytes per call (30 us for 1 MiB, for
        # a result frame of a few kB).
        self._chunk = bytearray(READ_BYTES)
        self._chunk_view = memoryview(self._chunk)
        self._tail = TailBuffer()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self._tail.feed(chunk)

    def send(self, data: bytes, deadline: float) -> None:
        send_within(lambda view: os.write(self._in_fd, view), self._in_fd, data, deadline)

    def abort(self) -> None:
        if self.proc.returncode is None:  # not reaped yet, so its pid is still its own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def recv(self, deadline: float) -> bytes:
        while True:
            got = self._frames.pop()
            if got is not None:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            if not self._poll.poll(math.ceil(left * 1000)):
                raise ChannelTimeout()
            got = os.readv(self._out_fd, [self._chunk])
            if not got:
                raise ChannelClosed("worker closed its output")
            self._frames.feed(self._chunk_view[:got])

    def stderr_tail(self) -> str:
        self._drain.join(timeout=0.2)
        return self._tail.text()

    def exit_reason(self) -> str | None:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None
        return describe_returncode(code)

    def memory_breached(self) -> bool:
        """Whether a process of this worker was killed for memory (no sandbox-wide cap here)."""
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._drain.join(timeout=1)
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._on_close:
            self._on_close()
            self._on_close = None
