"""Backend registry: how a worker is launched, and how `auto` picks the strongest available one."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Protocol

from . import worker_runtime
from .api import SandboxLimits, SandboxUnavailable
from .channel import Channel, ProcessChannel

log = logging.getLogger("rftkit.sandbox")

# The worker runtime travels as `python3 -I -c <source>`: nothing to bind or copy into a sandbox.
RUNTIME_SOURCE = Path(worker_runtime.__file__).read_text()
# Quiet numeric libraries: one thread each, so a worker stays within its CPU and memory limits.
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "NLTK_DATA": "/usr/share/nltk_data",
}
MIB = 1024 * 1024


class Backend(Protocol):
    """Launches workers of one isolation kind."""

    name: str
    reap_children: bool  # the worker may kill every other process in its (private) pid namespace
    exit_when_orphaned: bool  # the worker ends itself once its requests' stream hangs up

    def launch(self, limits: SandboxLimits) -> Channel: ...

    def rlimits(self, limits: SandboxLimits) -> dict[str, int]: ...


def result_limit(limits: SandboxLimits) -> int:
    """The largest result message a worker may send (its value and captured output together)."""
    return max(1 << 20, 16 * limits.output_max_bytes)


def frame_limit(limits: SandboxLimits) -> int:
    """The parent drops a worker whose frame announces more than this."""
    return result_limit(limits) + 64 * 1024


def base_rlimits(limits: SandboxLimits) -> dict[str, int]:
    """Limits the worker applies to itself before it loads the grader."""
    return {
        "AS": limits.memory_mb * MIB,
        "FSIZE": limits.scratch_mb * MIB,
        "NOFILE": 256,
        "CORE": 0,
        # A warm worker lives for many grades; this only stops one that spins for ever.
        "CPU": int(max(600.0, limits.batch_timeout_s * 4)),
    }


class ProcessBackend:
    """No isolation: a plain child process with rlimits. Explicit opt-in only, never chosen by `auto`."""

    name = "process"
    reap_children = False
    exit_when_orphaned = False

    def rlimits(self, limits: SandboxLimits) -> dict[str, int]:
        return base_rlimits(limits)

    def launch(self, limits: SandboxLimits) -> Channel:
        scratch = tempfile.mkdtemp(prefix="rftkit-worker-")
        env = {**SANDBOX_ENV, "HOME": scratch, "TMPDIR": scratch}
        argv = [sys.executable, "-I", "-c", RUNTIME_SOURCE]
        return ProcessChannel(
            argv,
            env=env,
            cwd=scratch,
            max_frame_bytes=frame_limit(limits),
            on_close=lambda: shutil.rmtree(scratch, True),
        )


_FACTORIES = {
    "docker": "rftkit.sandbox.docker_backend:DockerBackend",
    "namespace": "rftkit.sandbox.namespace:NamespaceBackend",
}


def _factory(name: str) -> type:
    module, attr = _FACTORIES[name].split(":")
    return getattr(importlib.import_module(module), attr)


@cache
def backend_problem(name: str) -> str | None:
    """Why a backend cannot run here (None when it can). Cached per process."""
    try:
        factory = _factory(name)
    except (ImportError, AttributeError) as exc:
        return f"its module is missing ({exc})"
    return factory.problem()


def get_backend(name: str) -> Backend:
    """The backend called `name`; `auto` picks docker, then namespace, and never `process`."""
    if name == "process":
        return ProcessBackend()
    if name in _FACTORIES:
        problem = backend_problem(name)
        if problem:
            raise SandboxUnavailable(f"the {name} sandbox is not available: {problem}")
        return _factory(name)()
    if name != "auto":
        raise ValueError(f"unknown sandbox backend {name!r}; use docker, namespace, auto or process")
    problems = {}
    for candidate in ("docker", "namespace"):
        problem = backend_problem(candidate)
        if problem is None:
            log.info("sandbox auto: using the %s backend", candidate)
            return _factory(candidate)()
        problems[candidate] = problem
        log.info("sandbox auto: %s backend unavailable: %s", candidate, problem)
    detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
    raise SandboxUnavailable(
        "no sandbox for Python graders is available on this host "
        f"({detail}). Run `rft sandbox build` (it needs Docker and/or bubblewrap: "
        "`apt-get install docker.io bubblewrap`). Python graders are never run unsandboxed "
        "unless you ask for the `process` backend explicitly."
    )


def clear_cache() -> None:
    """Forget cached availability (after `rft sandbox build`)."""
    backend_problem.cache_clear()


def is_root() -> bool:
    return os.geteuid() == 0
