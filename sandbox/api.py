"""What the rest of rftkit sees of the sandboxes: limits, per-sample outcomes, and worker pools.

`get_pool(...)` returns a warm pool of sandboxed workers for one tenant's grader version;
`pool.grade(pairs)` sends a batch and returns one `WorkerOutcome` per (sample, item) pair, in
order (a sample is the dict grade() receives, or a str for a plain-text sample whose
output_json is null); `pool.status()` says how many workers it runs. The caller (the `python`
grader type) turns outcomes into grader results and checks that each value is a finite float
in [0, 1].
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args

import msgspec
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BackendName = Literal["auto", "docker", "namespace", "process"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)  # for command-line choices


class SandboxUnavailable(RuntimeError):
    """No sandbox backend of the requested kind works on this host; the message says how to fix it."""


class SandboxLimits(BaseModel):
    """Limits per grade, defaulting to OpenAI's published python-grader limits.

    OpenAI's graders guide: source under 256 kB, no network, "the grading execution itself is
    limited to 2 minutes", 2 GB of memory and 1 GB of disk, "a limit of 2 CPU cores". The batch
    cap only stops a batch that runs away: each sample has its own deadline, and a batch's
    samples are graded by `workers` workers in parallel. `image_tag` picks the sandbox
    environment (`rft sandbox status` lists them; None: $RFTKIT_SANDBOX_IMAGE_TAG, else
    OpenAI's published tag).
    """

    model_config = ConfigDict(extra="forbid")

    source_max_bytes: int = Field(256 * 1024, ge=1, description="Largest grader source accepted, in bytes.")
    memory_mb: int = Field(2048, ge=16, description="Memory per worker (address space and cgroup), in MiB.")
    scratch_mb: int = Field(1024, ge=1, description="Writable scratch space (/tmp) per worker, in MiB.")
    cpus: float = Field(2.0, gt=0, description="CPU share per worker (cgroup or docker quota), in cores.")
    pids: int = Field(64, ge=1, description="Processes and threads per worker.")
    sample_timeout_s: float = Field(120.0, gt=0, description="Seconds one grade() call may take.")
    batch_timeout_s: float = Field(
        1800.0, gt=0, description="Seconds a whole batch may take (a runaway stop)."
    )
    load_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a worker may take to start and load the grader."
    )
    output_max_bytes: int = Field(64 * 1024, ge=0, description="Printed output kept per sample, in bytes.")
    grades_per_worker: int = Field(
        1_000_000,
        ge=1,
        description="Grades before a worker is replaced by a fresh one (it is also replaced once it "
        "has used half the memory or CPU time its limits left it after loading).",
    )
    workers: int | None = Field(
        default=None, ge=1, description="Workers per pool [default: the host's cores]."
    )
    image_tag: str | None = Field(
        default=None,
        description="Sandbox environment (`rft sandbox status` lists them) [default: OpenAI's tag].",
    )

    @model_validator(mode="after")
    def _batch_covers_a_sample(self) -> SandboxLimits:
        if self.batch_timeout_s < self.sample_timeout_s:
            raise ValueError(
                f"batch_timeout_s ({self.batch_timeout_s:g}) is below sample_timeout_s "
                f"({self.sample_timeout_s:g}): one slow sample would end the whole batch"
            )
        return self

    def for_image(self, image_tag: str | None) -> SandboxLimits:
        """These limits in the sandbox environment `image_tag` (None keeps this one's)."""
        if image_tag is None or image_tag == self.image_tag:
            return self
        return self.model_copy(update={"image_tag": image_tag})

    @classmethod
    def from_env(cls) -> SandboxLimits:
        """Defaults, overridden by RFTKIT_SANDBOX_<FIELD> variables (e.g. RFTKIT_SANDBOX_MEMORY_MB=1024)."""
        return SandboxEnvironment()

    @classmethod
    def coerce(cls, limits: SandboxLimits | dict[str, Any] | None) -> SandboxLimits:
        """Limits as given (a model or a dict of overrides on top of the environment's), else from_env()."""
        if isinstance(limits, SandboxLimits):
            return limits
        base = cls.from_env()
        return cls.model_validate({**base.model_dump(), **limits}) if limits else base


class SandboxEnvironment(BaseSettings, SandboxLimits):
    """The service-wide sandbox limits, read from RFTKIT_SANDBOX_<FIELD> environment variables."""

    model_config = SettingsConfigDict(env_prefix="RFTKIT_SANDBOX_", extra="ignore")


ErrorKind = Literal["runtime", "timeout", "resource", "crash", "unavailable"]


class WorkerOutcome(msgspec.Struct, gc=False):
    """One sample's outcome: the raw value grade() returned, or why there is none (not tracked by
    the cyclic garbage collector: a batch makes one per sample, and none refers back to itself)."""

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
