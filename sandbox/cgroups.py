"""Per-worker cgroups (v1 or v2) for the namespace backend, where the host lets us create them.

A worker's cgroup caps memory (grader memory plus its tmpfs scratch, which is charged to the
writer), process count and CPU: the CPU quota (cpu.cfs_quota_us / cpu.max) covers every thread
of the worker, so a thread that grade() leaves running is held to the worker's share. The
launcher joins it (as root) before it drops to the worker's uid and execs bubblewrap, so every
sandboxed process starts inside.

Layout: rftkit-sandbox/svc-<service pid>-<its start time>/w<uid>-<n> in each controller. A
service that is killed cannot clean up, so each service sweeps, once at start, the directories
of services that are gone (their pid is dead, or now names another process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from functools import cache
from pathlib import Path

log = logging.getLogger("rftkit.sandbox")
ROOT = Path("/sys/fs/cgroup")
PARENT = "rftkit-sandbox"
MIB = 1024 * 1024
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
_SERVICE_DIR = re.compile(r"svc-(\d+)-(\d+)")
_LEGACY_WORKER_DIR = re.compile(r"w\d+-(\d+)-\d+")  # before per-service parents: w<uid>-<pid>-<n>
_tree_lock = threading.Lock()  # creating a worker's dirs vs removing an empty service dir


def start_time(pid: int) -> str | None:
    """When a process started (clock ticks since boot, /proc/PID/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def service_dir_name() -> str:
    """This process's parent directory name: its pid and start time (pids are reused)."""
    return f"svc-{os.getpid()}-{start_time(os.getpid())}"


def is_v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def sandbox_bases() -> list[Path]:
    """The rftkit-sandbox directory of each hierarchy we use (whether it exists yet or not)."""
    if is_v2():
        return [ROOT / PARENT]
    return [ROOT / c / PARENT for c in V1_CONTROLLERS if (ROOT / c).is_dir()]


class WorkerCgroup:
    """One worker's cgroup(s); `procs_files` are the files the worker writes its pid into."""

    def __init__(self, name: str, *, memory_mb: int, pids: int, cpus: float) -> None:
        self.dirs: list[Path] = []
        self.procs_files: list[str] = []
        with _tree_lock:
            if is_v2():
                self._make_v2(name, memory_mb, pids, cpus)
            else:
                self._make_v1(name, memory_mb, pids, cpus)

    def _add(self, path: Path, settings: dict[str, str]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.dirs.append(path)
        for key, value in settings.items():
            (path / key).write_text(value)
        self.procs_files.append(str(path / "cgroup.procs"))

    def _make_v1(self, name: str, memory_mb: int, pids: int, cpus: float) -> None:
        wanted = {
            "memory": {"memory.limit_in_bytes": str(memory_mb * MIB)},
            "pids": {"pids.max": str(pids)},
            "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": str(int(cpus * 100000))},
            "cpuacct": {},  # accounting only (where it is a hierarchy of its own)
        }
        for controller, settings in wanted.items():
            base = ROOT / controller
            if not base.is_dir() or (controller == "cpuacct" and (ROOT / "cpu").resolve() == base.resolve()):
                continue
            try:
                self._add(base / PARENT / service_dir_name() / name, settings)
            except OSError as exc:
                log.debug("cgroup %s not used: %s", controller, exc)

    def _make_v2(self, name: str, memory_mb: int, pids: int, cpus: float) -> None:
        top = ROOT / PARENT
        service = top / service_dir_name()
        try:
            for level in (top, service):
                level.mkdir(exist_ok=True)
                (level / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            self._add(
                service / name,
                {
                    "memory.max": str(memory_mb * MIB),
                    "pids.max": str(pids),
                    "cpu.max": f"{int(cpus * 100000)} 100000",
                },
            )
        except OSError as exc:
            log.debug("cgroup v2 not used: %s", exc)

    def oom_killed(self) -> bool:
        """Whether the kernel killed something here for breaking the memory limit."""
        return oom_killed_in(self.dirs)

    def cpu_seconds(self) -> float | None:
        """CPU time used by every thread of the worker so far (None where no controller counts it)."""
        return cpu_seconds_in(self.dirs)

    def remove(self) -> None:
        """Kill what is left inside and remove the cgroup directories (and the service's, once empty)."""
        _remove_dirs(self.dirs)
        with _tree_lock:
            for path in self.dirs:
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # fails while other workers of this service live
        self.dirs = []


def _kill_members(path: Path) -> None:
    try:
        members = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in members:
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), 9)


def _remove_dirs(dirs: list[Path], attempts: int = 20) -> bool:
    """Kill the members of each cgroup and remove it; whether all are gone."""
    for path in dirs:
        _kill_members(path)
    gone = True
    for path in dirs:
        for attempt in range(attempts):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == attempts - 1:
                    gone = False
                else:
                    time.sleep(0.05)
    return gone


def _owner_alive(pid: int, started: str | None) -> bool:
    found = start_time(pid)
    return found is not None and (started is None or found == started)


def sweep_stale() -> list[Path]:
    """Remove worker cgroups whose service process is gone (killing any member left); the removed dirs.

    Directories of live services, this one's included, are left alone.
    """
    removed: list[Path] = []
    for base in sandbox_bases():
        try:
            children = [p for p in base.iterdir() if p.is_dir()]
        except OSError:
            continue
        for child in children:
            if match := _SERVICE_DIR.fullmatch(child.name):
                if _owner_alive(int(match[1]), match[2]):
                    continue
                workers = [p for p in child.iterdir() if p.is_dir()]
                if _remove_dirs(workers, attempts=5) and _remove_dirs([child], attempts=5):
                    removed += [*workers, child]
            elif (legacy := _LEGACY_WORKER_DIR.fullmatch(child.name)) is None:
                continue
            elif not _owner_alive(int(legacy[1]), None) and _remove_dirs([child], attempts=5):
                removed.append(child)
    if removed:
        log.info("removed %d cgroup directories left by sandbox services that are gone", len(removed))
    return removed


def cpu_seconds_in(dirs: list[Path]) -> float | None:
    """CPU seconds used in the first of these cgroups that counts them (v1 cpuacct, v2 cpu.stat)."""
    for path in dirs:
        with contextlib.suppress(OSError, ValueError):
            return int((path / "cpuacct.usage").read_text()) / 1e9
        with contextlib.suppress(OSError, ValueError):
            for line in (path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    return None


def oom_killed_in(dirs: list[Path]) -> bool:
    """Whether the kernel killed a process in any of these cgroups for breaking its memory limit."""
    for path in dirs:
        for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
            try:
                for line in (path / name).read_text().splitlines():
                    field, _, value = line.partition(" ")
                    if field == key and int(value) > 0:
                        return True
            except (OSError, ValueError):
                continue
        try:
            if int((path / "memory.failcnt").read_text()) > 0:
                return True
        except (OSError, ValueError):
            continue
    return False


def memory_cgroups_of(pid: int) -> list[Path]:
    """The memory cgroup directories (v1 and/or v2) a host process is in, as this host sees them."""
    found = []
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            if (ROOT / "cgroup.controllers").exists():  # the unified (v2) hierarchy is the root
                found.append(ROOT / path.lstrip("/"))
        elif "memory" in controllers.split(","):
            found.append(ROOT / "memory" / path.lstrip("/"))
    return found


def cgroups_usable() -> bool:
    """Whether this process may create cgroups (root with a writable hierarchy)."""
    if os.geteuid() != 0:
        return False
    probe = ROOT / ("pids" if (ROOT / "pids").is_dir() else "") / PARENT
    try:
        probe.mkdir(parents=True, exist_ok=True)
        return True
    except OSError:
        return False
