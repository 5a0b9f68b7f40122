"""What the rest of rftkit sees of the sandboxes: limits, per-sample outcomes, and worker pools.

`get_pool(...)` returns a warm pool of sandboxed workers for one tenant's grader version;
`pool.grade(pairs)` sends a batch and returns one `WorkerOutcome` per (sample, item) pair, in
order (a sample is the dict grade() receives, or a str for a plain-text sample whose
output_json is null); `pool.status()` says how many workers it runs. The caller (the `python`
grader type) turns outcomes into grader results and checks that each value is a finite float
in [0, 1].
"""

from __future__ import annotations

import os
from typing import Any, Literal, Protocol, get_args

import msgspec
from pydantic import BaseModel, ConfigDict, Field

BackendName = Literal["auto", "docker", "namespace", "process"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)  # for command-line choices


class SandboxUnavailable(RuntimeError):
    """No sandbox backend of the requested kind works on this host; the message says how to fix it."""


class SandboxLimits(BaseModel):
    """Limits with OpenAI-like defaults (python graders: 256 kB source, 2 GB memory, 1 GB disk, 2 min)."""

    model_config = ConfigDict(extra="forbid")

    source_max_bytes: int = 256 * 1024
    memory_mb: int = 2048
    scratch_mb: int = 1024
    cpus: float = 2.0
    pids: int = 64
    sample_timeout_s: float = 5.0
    batch_timeout_s: float = 120.0
    load_timeout_s: float = 30.0
    output_max_bytes: int = 64 * 1024
    grades_per_worker: int = 10_000
    workers: int | None = Field(default=None, description="pool size; None: the host's cores")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SandboxLimits:
        """Defaults, overridden by RFTKIT_SANDBOX_<FIELD> variables (e.g. RFTKIT_SANDBOX_MEMORY_MB=1024)."""
        environ = dict(os.environ if environ is None else environ)
        found = {
            name: environ[f"RFTKIT_SANDBOX_{name.upper()}"]
            for name in cls.model_fields
            if f"RFTKIT_SANDBOX_{name.upper()}" in environ
        }
        return cls.model_validate(found)

    @classmethod
    def coerce(cls, limits: SandboxLimits | dict[str, Any] | None) -> SandboxLimits:
        """Limits as given (a model or a dict of overrides on top of the environment's), else from_env()."""
        if isinstance(limits, SandboxLimits):
            return limits
        base = cls.from_env()
        return cls.model_validate({**base.model_dump(), **limits}) if limits else base


ErrorKind = Literal["runtime", "timeout", "resource", "crash", "unavailable"]


class WorkerOutcome(msgspec.Struct):
    """One sample's outcome: the raw value grade() returned, or why there is none."""

    value: Any = None
    error: ErrorKind | None = None
    details: str | None = None
    stdout: str = ""


class PoolStatus(msgspec.Struct, frozen=True):
    """What a pool can say about itself (for metrics and `rft` status lines)."""

    backend: str
    workers: int  # the pool's size: workers it runs at most
    alive: int  # workers started and not stopped
    closed: bool = False


class GraderPool(Protocol):
    backend: str

    def grade(self, pairs: list[tuple[dict[str, Any] | str, dict[str, Any]]]) -> list[WorkerOutcome]: ...

    def status(self) -> PoolStatus: ...

    def close(self) -> None: ...
