"""Per-worker cgroups (v1 or v2) for the namespace backend, where the host lets us create them.

A worker's cgroup caps memory (grader memory plus its tmpfs scratch, which is charged to the
writer), process count and CPU. The launching shell joins it (as root) before it drops to the
worker's uid and execs bubblewrap, so every sandboxed process starts inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("rftkit.sandbox")
ROOT = Path("/sys/fs/cgroup")
PARENT = "rftkit-sandbox"
MIB = 1024 * 1024


class WorkerCgroup:
    """One worker's cgroup(s); `procs_files` are the files the worker writes its pid into."""

    def __init__(self, name: str, *, memory_mb: int, pids: int, cpus: float) -> None:
        self.dirs: list[Path] = []
        self.procs_files: list[str] = []
        if (ROOT / "cgroup.controllers").exists():
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
        }
        for controller, settings in wanted.items():
            base = ROOT / controller
            if not base.is_dir():
                continue
            try:
                self._add(base / PARENT / name, settings)
            except OSError as exc:
                log.debug("cgroup %s not used: %s", controller, exc)

    def _make_v2(self, name: str, memory_mb: int, pids: int, cpus: float) -> None:
        parent = ROOT / PARENT
        try:
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            self._add(
                parent / name,
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

    def remove(self) -> None:
        """Kill what is left inside and remove the cgroup directories."""
        for path in self.dirs:
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), 9)
            except OSError:
                pass
        for path in self.dirs:
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        self.dirs = []


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
