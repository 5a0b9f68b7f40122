"""The parent's end of a worker's pipe: every send and receive has a deadline (real pipes, processes)."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time

import pytest
from rftkit.sandbox.channel import ChannelClosed, ChannelTimeout, FrameBuffer, ProcessChannel, send_within

F_SETPIPE_SZ = 1031
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]  # a worker that never reads nor writes


def _pipe(page_only: bool = True) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    if page_only:
        fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    return read_end, write_end


def _write(fd: int):
    return lambda view: os.write(fd, view)


def test_send_to_a_reader_that_stops_reading_times_out() -> None:
    read_end, write_end = _pipe()
    try:
        start = time.monotonic()
        with pytest.raises(ChannelTimeout):
            send_within(_write(write_end), write_end, b"x" * 100_000, time.monotonic() + 0.3)
        assert 0.25 < time.monotonic() - start < 2.0
    finally:
        os.close(read_end)
        os.close(write_end)


def test_send_to_a_reader_that_is_gone_is_closed() -> None:
    read_end, write_end = _pipe()
    os.close(read_end)
    try:
        with pytest.raises(ChannelClosed):
            send_within(_write(write_end), write_end, b"x" * 10, time.monotonic() + 5)
    finally:
        os.close(write_end)


def test_a_big_frame_reaches_a_slow_reader_whole() -> None:
    read_end, write_end = _pipe()
    payload = os.urandom(300_000)
    received = bytearray()

    def read_slowly() -> None:
        while chunk := os.read(read_end, 4096):
            received.extend(chunk)
            time.sleep(0.0005)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    send_within(_write(write_end), write_end, payload, time.monotonic() + 20)
    os.close(write_end)
    reader.join(10)
    os.close(read_end)
    frames = FrameBuffer()
    frames.feed(bytes(received))
    assert frames.pop() == payload


def test_a_worker_that_never_reads_stops_send_at_its_deadline_and_abort_ends_it() -> None:
    channel = ProcessChannel(SLEEPER, env={})
    try:
        start = time.monotonic()
        with pytest.raises(ChannelTimeout):
            channel.send(b"x" * (1 << 20), time.monotonic() + 0.5)
        assert time.monotonic() - start < 3.0
        with pytest.raises(ChannelTimeout):
            channel.recv(time.monotonic() + 0.2)
        channel.abort()
        with pytest.raises(ChannelClosed):
            channel.recv(time.monotonic() + 5)
        assert channel.exit_reason() == "killed by SIGKILL"
    finally:
        channel.close()


def test_abort_from_another_thread_ends_a_blocked_send() -> None:
    channel = ProcessChannel(SLEEPER, env={})
    try:
        threading.Timer(0.3, channel.abort).start()
        start = time.monotonic()
        with pytest.raises(ChannelClosed):
            channel.send(b"x" * (4 << 20), time.monotonic() + 30)
        assert time.monotonic() - start < 5.0
    finally:
        channel.close()
