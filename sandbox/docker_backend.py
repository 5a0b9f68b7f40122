"""The `docker` backend: each worker is a long-lived hardened container, driven over an attach socket.

No network, read-only root, a size-capped tmpfs /tmp, memory/pids/CPU limits, every capability
dropped, no-new-privileges, no log driver, and a host uid of its own per worker (drawn from the
same host-wide pool as the namespace backend's), so per-uid kernel limits (inotify instances,
RLIMIT_NPROC, user keyrings) are never shared between workers or tenants. The worker runtime is PID 1 in the
container and talks the frame protocol over the attached (multiplexed) stdin/stdout stream.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from . import paths
from .api import SandboxLimits
from .backends import MIB, RUNTIME_SOURCE, SANDBOX_ENV, base_rlimits, frame_limit
from .cgroups import memory_cgroups_of, oom_killed_in, start_time
from .channel import (
    ChannelClosed,
    ChannelTimeout,
    FrameBuffer,
    TailBuffer,
    describe_returncode,
    frame,
    send_within,
)
from .namespace import allocate_uid, release_uid

log = logging.getLogger("rftkit.sandbox")
CONTAINER_PYTHON = "/usr/local/bin/rftkit-python"
LABEL = "rftkit.sandbox.owner"
LABEL_STARTED = "rftkit.sandbox.owner_started"  # the owner's start time: a reused pid is not the owner
SHARED_UID = 65534  # only where no uid of its own can be locked (a service that is not root)
MUX_HEADER = struct.Struct(">BxxxL")
READ_BYTES = 256 * 1024
_client_lock = threading.Lock()
_client: Any = None
_swept = False


def docker_client() -> Any:
    """One shared Docker SDK client (thread-safe for our use: one request per call)."""
    global _client
    with _client_lock:
        if _client is None:
            import docker

            _client = docker.from_env(timeout=60, max_pool_size=64)
        return _client


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sweep_stale_containers() -> int:
    """Remove worker containers left behind by service processes on this host that are gone.

    Gone: the labelled pid is dead, or it now names a process that started at another time.
    Returns how many were removed.
    """
    client = docker_client()
    host = socket.gethostname()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner_host, _, pid = container.labels.get(LABEL, "").partition(":")
        if owner_host != host or not pid.isdigit():
            continue
        started = container.labels.get(LABEL_STARTED)
        found = start_time(int(pid))
        if found is not None and (started is None or started == found):
            continue
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    if removed:
        log.info("removed %d worker containers left by sandbox services that are gone", removed)
    return removed


class DockerChannel:
    """A container's attach socket, demultiplexed by a reader thread into frames and a stderr tail."""

    def __init__(
        self, container: Any, sock: Any, max_frame_bytes: int, on_close: Callable[[], None] | None = None
    ) -> None:
        self.container = container
        self._on_close = on_close
        self._sock = getattr(sock, "_sock", sock)
        # Requests go through a second socket object on the same connection: one without the SDK's
        # timeout, so MSG_DONTWAIT returns at once and send_within keeps the deadline.
        self._sender: socket.socket | None = None
        if isinstance(self._sock, socket.socket) and not isinstance(self._sock, ssl.SSLSocket):
            self._sender = socket.socket(fileno=os.dup(self._sock.fileno()))  # flags untouched
        self._frames = FrameBuffer(max_frame_bytes)
        self._tail = TailBuffer()
        # One read buffer per channel, made here: recv(1 MiB) allocated (and shrank) 1 MiB per read
        # in the reader thread, a new thread per worker (bench/service_memory.py: growth under load
        # 0.8 -> 0.3 MB/min; the namespace backend's 0.2).
        self._chunk = bytearray(READ_BYTES)
        self._ready: list[bytes] = []
        self._cond = threading.Condition()
        self._eof = False
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buf = bytearray()
        chunk = memoryview(self._chunk)
        try:
            while True:
                got = self._sock.recv_into(chunk)
                if not got:
                    break
                buf += chunk[:got]
                while len(buf) >= MUX_HEADER.size:
                    kind, size = MUX_HEADER.unpack_from(buf)
                    if len(buf) < MUX_HEADER.size + size:
                        break
                    payload = bytes(buf[MUX_HEADER.size : MUX_HEADER.size + size])
                    del buf[: MUX_HEADER.size + size]
                    if kind == 1:
                        self._frames.feed(payload)
                        with self._cond:
                            while (got := self._frames.pop()) is not None:
                                self._ready.append(got)
                            self._cond.notify_all()
                    else:
                        self._tail.feed(payload)
        except (OSError, ChannelClosed):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def send(self, data: bytes, deadline: float) -> None:
        if self._sender is not None:
            send = self._sender.send
            send_within(lambda view: send(view, socket.MSG_DONTWAIT), self._sender.fileno(), data, deadline)
            return
        try:  # a TLS connection to a remote engine: no MSG_DONTWAIT; the recv deadline still holds
            self._sock.sendall(frame(data))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # ends a send or recv in progress at once

    def recv(self, deadline: float) -> bytes:
        with self._cond:
            while not self._ready:
                if self._eof:
                    raise ChannelClosed("the container's output ended")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout()
                self._cond.wait(left)
            return self._ready.pop(0)

    def stderr_tail(self) -> str:
        return self._tail.text()

    def memory_breached(self) -> bool:
        """Whether the kernel killed a process in the container (the worker or a child) for memory.

        Docker flags OOMKilled only when the container's first process dies, so a running
        container's memory cgroup is read too.
        """
        try:
            state = self.container.client.api.inspect_container(self.container.id)["State"]
        except Exception:
            return False
        if state.get("OOMKilled"):
            return True
        pid = int(state.get("Pid") or 0)
        return pid > 0 and oom_killed_in(memory_cgroups_of(pid))

    def exit_reason(self) -> str | None:
        try:
            state = self.container.client.api.wait(self.container.id, timeout=2)
            attrs = self.container.client.api.inspect_container(self.container.id)["State"]
        except Exception:
            return None
        if attrs.get("OOMKilled"):
            return "killed for using more memory than its limit"
        code = int(state.get("StatusCode", attrs.get("ExitCode", 0)))
        return describe_returncode(-(code - 128) if code > 128 else code)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._sender is not None:
            self._sender.close()
        self._reader.join(timeout=2)
        if self._on_close:  # after the container is gone: its uid is free again
            self._on_close()
            self._on_close = None


class DockerBackend:
    """Workers in hardened containers of the sandbox image."""

    name = "docker"
    reap_children = True
    exit_when_orphaned = True  # a container outlives its killed service: its PID 1 must see to it

    @staticmethod
    def problem() -> str | None:
        """Why this backend cannot run here, or None."""
        try:
            import docker  # noqa: F401
        except ImportError:
            return "the Docker SDK (pip package `docker`) is not installed"
        try:
            client = docker_client()
            client.ping()
        except Exception as exc:
            return (
                f"the Docker engine is not reachable ({str(exc)[:200]}); install docker.io and start dockerd"
            )
        try:
            client.images.get(paths.image_tag())
        except Exception:
            return f"the sandbox image {paths.image_tag()} is not built (run `rft sandbox build`)"
        return None

    def __init__(self) -> None:
        global _swept
        if not _swept:
            _swept = True
            with contextlib.suppress(Exception):
                sweep_stale_containers()

    def rlimits(self, limits: SandboxLimits) -> dict[str, int]:
        found = base_rlimits(limits)
        if os.geteuid() == 0:  # each worker has a host uid of its own: this counts only its processes
            found["NPROC"] = limits.pids
        return found  # else the pids cgroup alone (the shared uid runs other containers' processes)

    def launch(self, limits: SandboxLimits) -> DockerChannel:
        client = docker_client()
        uid = allocate_uid() if os.geteuid() == 0 else None
        try:
            return self._start(client, limits, uid)
        except BaseException:
            if uid is not None:
                release_uid(uid)
            raise

    def _start(self, client: Any, limits: SandboxLimits, uid: int | None) -> DockerChannel:
        user = SHARED_UID if uid is None else uid
        container = client.containers.create(
            paths.image_tag(limits.image_tag),
            command=[CONTAINER_PYTHON, "-I", "-c", RUNTIME_SOURCE],
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.scratch_mb}m,nr_inodes=65536,mode=1777"},
            mem_limit=(limits.memory_mb + limits.scratch_mb) * MIB,
            memswap_limit=(limits.memory_mb + limits.scratch_mb) * MIB,
            pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=f"{user}:{user}",
            environment={**SANDBOX_ENV, "HOME": "/tmp", "TMPDIR": "/tmp"},
            working_dir="/tmp",
            hostname="sandbox",
            labels={LABEL: _owner(), LABEL_STARTED: start_time(os.getpid()) or ""},
            log_config={"type": "none"},
            ipc_mode="private",
        )
        try:
            sock = client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            container.start()
        except BaseException:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise
        release = None if uid is None else (lambda: release_uid(uid))
        return DockerChannel(container, sock, frame_limit(limits), on_close=release)
