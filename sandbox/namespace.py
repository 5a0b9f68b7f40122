"""The `namespace` backend: each worker is a bubblewrap sandbox.

New user, pid, net, ipc, uts, cgroup and mount namespaces; read-only binds of /usr (and the
/lib* links) plus the dedicated grader venv; a size-capped tmpfs as /tmp scratch; no host
environment; no nested user namespaces; a seccomp filter at least as strict as Docker's default
profile (seccomp.py), loaded by bubblewrap; a fresh anonymous session keyring. As root, each
worker also runs as its own unprivileged host uid (so RLIMIT_NPROC counts only its processes)
inside its own cgroup (memory, pids, CPU).

A small launcher (the sandbox venv's python with -I -S, before bubblewrap) does what must happen
outside the sandbox: join the worker's cgroups, drop to its uid, join a new session keyring
(KEYCTL_JOIN_SESSION_KEYRING: the service's own keyring is out of reach even before the filter
refuses keyctl), and put the compiled filter on a descriptor for `bwrap --seccomp`.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import subprocess
import threading
from pathlib import Path

from . import paths, seccomp
from .api import SandboxLimits
from .backends import MIB, RUNTIME_SOURCE, SANDBOX_ENV, base_rlimits, frame_limit
from .cgroups import WorkerCgroup, cgroups_usable, sweep_stale
from .channel import Channel, ProcessChannel, describe_returncode

SHM_MB = 64  # like Docker's default /dev/shm
UID_BASE = 610_000
UID_SPAN = 64_000
UID_LOCKS = Path("/run/rftkit-sandbox-uids")  # one flock'ed file per uid in use, host-wide
_uids_in_use: dict[int, int] = {}  # uid -> the descriptor holding its lock
_uid_lock = threading.Lock()
_counter = itertools.count()
_swept = False
SECCOMP_FD = 9  # where the launcher puts the filter for bubblewrap to read
KEYCTL_JOIN_SESSION_KEYRING = 1
# argv: BPF (hex), uid ("" to keep the caller's), keyctl's syscall number, cgroup.procs files, --, command.
_LAUNCHER = f"""
import ctypes, os, sys
bpf, uid, keyctl, *rest = sys.argv[1:]
cut = rest.index("--")
for procs in rest[:cut]:
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
if uid:
    os.setgroups([])
    os.setresgid(int(uid), int(uid), int(uid))
    os.setresuid(int(uid), int(uid), int(uid))
# A new anonymous session keyring (owned by the worker's uid). Where keyrings are refused here
# already (ENOSYS, or a filter of our own host), there is nothing to leave.
ctypes.CDLL(None, use_errno=True).syscall(int(keyctl), {KEYCTL_JOIN_SESSION_KEYRING}, None)
fd = os.memfd_create("rftkit-seccomp", 0)
os.write(fd, bytes.fromhex(bpf))
os.lseek(fd, 0, os.SEEK_SET)
os.dup2(fd, {SECCOMP_FD})
os.close(fd)
os.execvp(rest[cut + 1], rest[cut + 1 :])
"""


def _try_lock(uid: int) -> int | None:
    """Lock the uid for this process (the kernel drops the lock when the process dies)."""
    fd = os.open(UID_LOCKS / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def allocate_uid() -> int:
    """A host uid no other worker on this host uses, whichever backend or service process started it."""
    UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
    start = (os.getpid() % 1000) * 64
    with _uid_lock:
        for offset in range(UID_SPAN):
            uid = UID_BASE + (start + offset) % UID_SPAN
            if uid not in _uids_in_use and (fd := _try_lock(uid)) is not None:
                _uids_in_use[uid] = fd
                return uid
    raise RuntimeError("no free sandbox uid")


def release_uid(uid: int) -> None:
    """Give back a uid from allocate_uid() (its worker is gone)."""
    with _uid_lock:
        fd = _uids_in_use.pop(uid, None)
    if fd is not None:
        os.close(fd)


_allocate_uid, _release_uid = allocate_uid, release_uid  # the names tests and older callers use


def _processes_of(uid: int) -> int:
    """How many processes (threads count too, as for RLIMIT_NPROC) the uid runs now."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            count += int(fields.get("Threads", "1").strip())
    return count


def _root_links() -> list[str]:
    """Binds or links for /bin, /lib*, /sbin as the host has them (merged /usr or not)."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_argv(limits: SandboxLimits, python_argv: list[str]) -> list[str]:
    """The bubblewrap command line for one worker."""
    venv = str(paths.venv_dir(limits.image_tag))
    argv = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--seccomp",
        str(SECCOMP_FD),
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        *_root_links(),
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--ro-bind-try",
        "/etc/localtime",
        "/etc/localtime",
        "--ro-bind",
        venv,
        venv,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(SHM_MB * MIB),
        "--tmpfs",
        "/dev/shm",
        "--size",
        str(limits.scratch_mb * MIB),
        "--tmpfs",
        "/tmp",
        # Everything but the two size-capped tmpfs mounts is read-only, bwrap's own root included.
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        "/tmp",
        "--clearenv",
    ]
    for key, value in {**SANDBOX_ENV, "HOME": "/tmp", "TMPDIR": "/tmp"}.items():
        argv += ["--setenv", key, value]
    return [*argv, "--", *python_argv]


def launch_argv(
    limits: SandboxLimits, python_argv: list[str], *, uid: int | None = None, procs_files: list[str] = ()
) -> list[str]:
    """The full command line for one worker: the launcher (cgroups, uid, keyring, filter), then bwrap.

    Raises SeccompUnavailable when the filter cannot be built: no worker runs without it.
    """
    keyctl = seccomp.syscall_number("keyctl")
    return [
        str(paths.venv_python(limits.image_tag)),
        "-I",
        "-S",
        "-c",
        _LAUNCHER,
        seccomp.bpf_program().hex(),
        "" if uid is None else str(uid),
        str(-1 if keyctl is None else keyctl),
        *procs_files,
        "--",
        *bwrap_argv(limits, python_argv),
    ]


class NamespaceChannel(ProcessChannel):
    """A bubblewrap worker; knows about its cgroup's OOM kills and bwrap's 128+signal exits."""

    cgroup: WorkerCgroup | None = None

    def memory_breached(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_killed()

    def exit_reason(self) -> str | None:
        if self.memory_breached():
            return "killed for using more memory than its limit"
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None
        return describe_returncode(-(code - 128) if code > 128 else code)


class NamespaceBackend:
    """Workers in bubblewrap sandboxes."""

    name = "namespace"
    reap_children = True
    exit_when_orphaned = False  # bubblewrap's --die-with-parent already ends it

    def __init__(self) -> None:
        global _swept
        if not _swept and cgroups_usable():
            _swept = True
            sweep_stale()  # cgroups of services killed before they could clean up

    @staticmethod
    def problem() -> str | None:
        """Why this backend cannot run here, or None."""
        if shutil.which("bwrap") is None:
            return "bubblewrap is not installed (apt-get install bubblewrap)"
        if problem := seccomp.problem():
            return f"its seccomp filter cannot be built: {problem}"
        if not paths.venv_ready():
            return (
                f"the sandbox virtual environment {paths.venv_dir()} is not built (run `rft sandbox build`)"
            )
        probe = launch_argv(SandboxLimits(), [str(paths.venv_python()), "-I", "-c", "import numpy"])
        try:
            done = subprocess.run(probe, capture_output=True, timeout=60, env={"PATH": SANDBOX_ENV["PATH"]})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap failed: {exc}"
        if done.returncode != 0:
            return f"bubblewrap cannot start a sandbox here: {done.stderr.decode(errors='replace')[-500:]}"
        return None

    def rlimits(self, limits: SandboxLimits) -> dict[str, int]:
        found = base_rlimits(limits)
        if os.geteuid() == 0:
            found["NPROC"] = limits.pids  # each worker has its own host uid, so this counts only its own
        else:  # workers share the service's uid: allow what it runs now plus the sandbox's share
            found["NPROC"] = _processes_of(os.getuid()) + limits.pids
        return found

    def launch(self, limits: SandboxLimits) -> Channel:
        # No `user=` on Popen: that forces fork() instead of vfork(), and fork() runs other
        # libraries' atfork handlers (gRPC's crash the child). The launcher drops to the uid.
        uid = allocate_uid() if os.geteuid() == 0 else None
        cgroup = None
        if uid is not None and cgroups_usable():
            cgroup = WorkerCgroup(
                f"w{uid}-{next(_counter)}",
                memory_mb=limits.memory_mb + limits.scratch_mb,
                pids=limits.pids,
                cpus=limits.cpus,
            )

        def cleanup() -> None:
            if cgroup is not None:
                cgroup.remove()
            if uid is not None:
                release_uid(uid)

        try:
            python_argv = [str(paths.venv_python(limits.image_tag)), "-I", "-c", RUNTIME_SOURCE]
            argv = launch_argv(limits, python_argv, uid=uid, procs_files=cgroup.procs_files if cgroup else [])
            channel = NamespaceChannel(
                argv,
                env={"PATH": SANDBOX_ENV["PATH"]},
                cwd="/",
                max_frame_bytes=frame_limit(limits),
                on_close=cleanup,
            )
        except BaseException:
            cleanup()
            raise
        channel.cgroup = cgroup
        return channel
