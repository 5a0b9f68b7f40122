"""Everything `rft serve` takes, declared once: the command's options, its environment, the docs.

Each field is a setting of the service; `rft serve --field-name` sets it on the command line and
`RFT_SERVE_FIELD_NAME` in the environment (the command line wins). Checked before anything binds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..sandbox.api import BackendName, SandboxLimits
from .auth import is_loopback
from .bounds import MIN_RESPONSE_BYTES_PER_SAMPLE

MB = 1024 * 1024


def default_warm_workers() -> int:
    """The host's memory over one worker's memory cap (memory plus scratch), at least two pools.

    Idle workers at their caps then fit in the host's memory, and two graders used in turn (a
    training and a validation grader) both stay warm."""
    limits = SandboxLimits.from_env()
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    pool = limits.workers or os.cpu_count() or 1
    return max(2 * pool, host // ((limits.memory_mb + limits.scratch_mb) * MB))


class ServiceSettings(BaseSettings):
    """The gRPC grader service (and, with http_port, the OpenAI-compatible HTTP API beside it)."""

    model_config = SettingsConfigDict(env_prefix="RFT_SERVE_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    data_dir: Path = Field(Path("rft-data"), description="Where graders are stored (kept across restarts).")
    sandbox: BackendName = Field(
        "auto", description="Where uploaded Python graders run (process: no isolation, for development only)."
    )
    tokens_file: Path | None = Field(
        None,
        description="Tokens file: lines 'TENANT TOKEN' (TOKEN may be sha256:<hex>).",
        json_schema_extra={"flag": "--tokens", "metavar": "FILE"},
    )
    insecure_local: bool = Field(False, description="Allow calls without a token (loopback hosts only).")
    tls_cert: Path | None = Field(None, description="PEM certificate.")
    tls_key: Path | None = Field(None, description="PEM private key.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus metrics on this port."
    )
    max_queue: int = Field(64, ge=0, description="Grading requests that may wait.")
    concurrency: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 2),
        ge=1,
        description="Grading requests run at once.",
        json_schema_extra={"default_text": "the host's cores, at least 2"},
    )
    spare_slots: int | None = Field(
        None,
        ge=0,
        description="Grading slots beyond --concurrency, each for a tenant with nothing running while "
        "others hold every slot (so one tenant's slow grader cannot stall another).",
        json_schema_extra={"default_text": "as many as --concurrency"},
    )
    tenant_calls: int = Field(
        64,
        ge=1,
        description="Calls one tenant may have open at once (idle streams included); more get "
        "RESOURCE_EXHAUSTED at once.",
    )
    stream_idle_s: float = Field(
        120.0,
        gt=0,
        description="A GradeStream whose client sends no request for this many seconds, or a call "
        "whose request has not arrived this long after it began, is ended (DEADLINE_EXCEEDED).",
        json_schema_extra={"flag": "--stream-idle-timeout"},
    )
    max_message_mb: float = Field(64.0, gt=0, description="Largest request accepted, in MiB.")
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description="Seconds in-flight batches may run after SIGTERM before they fail with UNAVAILABLE.",
        json_schema_extra={"flag": "--shutdown-grace"},
    )
    loaded_graders: int = Field(64, ge=1, description="Graders kept built (warm) at once, across tenants.")
    max_warm_workers: int = Field(
        default_factory=default_warm_workers,
        ge=1,
        description="Sandbox workers kept running across all loaded graders; idle pools beyond it are "
        "closed, least recently used first.",
        json_schema_extra={
            "default_text": "the host's memory over a worker's memory cap, at least two pools"
        },
    )
    max_samples_per_request: int = Field(
        65536, ge=1, description="Samples (and items) one grading request may carry; more are refused."
    )
    max_response_mb: float = Field(
        32.0,
        gt=0,
        description="Largest grading response, in MiB: error texts and result metadata are cut to fit.",
    )
    max_graders_per_tenant: int = Field(1000, ge=1, description="Graders one tenant may store.")
    max_versions_per_tenant: int = Field(
        10000, ge=1, description="Grader versions one tenant may store (all its graders together)."
    )
    max_stored_mb_per_tenant: float = Field(
        256.0, gt=0, description="Grader specs and sources one tenant may store, in MiB."
    )
    shared_store: bool = Field(
        False,
        description="Share the data dir's grader store with other replicas on this host (SQLite WAL); "
        "without it a second server on the same data dir is refused.",
    )
    strict_uploads: bool = Field(
        False,
        description="Refuse uploads the policy only warns about (e.g. RestrictedPython findings).",
    )
    http_port: int | None = Field(
        None, ge=0, le=65535, description="Also serve the OpenAI-compatible HTTP API on this port."
    )
    base_models: list[str] = Field(
        default_factory=list,
        description="A base model fine-tuning jobs may use (repeatable): a model dir or an rftkit config.",
        json_schema_extra={"flag": "--base-model", "metavar": "NAME=SOURCE", "default_text": "none"},
    )
    database_url: str | None = Field(None, description="HTTP API state [default: SQLite in the data dir].")
    log_level: Literal["DEBUG", "INFO", "WARNING"] = Field("INFO", description="Log level.")
    ready_file: Path | None = Field(
        None,
        description="Write address and ports here once serving (for launchers).",
        json_schema_extra={"hidden": True},
    )
    exit_with_parent: int | None = Field(
        None,
        description="Stop (gracefully) once this pid is no longer the parent, e.g. after its kill -9.",
        json_schema_extra={"hidden": True},
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        if self.insecure_local and not is_loopback(self.host):
            raise ValueError(
                f"--insecure-local serves without tokens and is only allowed on loopback; host {self.host!r} "
                "is not (use --host 127.0.0.1, or give --tokens)"
            )
        if self.tokens_file is None and not self.insecure_local:
            raise ValueError(
                "give --tokens FILE (bearer tokens -> tenants), or --insecure-local for development"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both --tls-cert and --tls-key, or neither")
        return self

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * MB)

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * MB)

    @property
    def max_stored_bytes_per_tenant(self) -> int:
        return int(self.max_stored_mb_per_tenant * MB)

    @model_validator(mode="after")
    def _response_fits_a_full_request(self) -> ServiceSettings:
        floor = self.max_samples_per_request * MIN_RESPONSE_BYTES_PER_SAMPLE
        if self.max_response_bytes < floor:
            raise ValueError(
                f"--max-response-mb {self.max_response_mb:g} cannot hold the results of "
                f"--max-samples-per-request {self.max_samples_per_request} samples (about "
                f"{MIN_RESPONSE_BYTES_PER_SAMPLE} bytes each at least): raise it to {floor / MB:.1f} "
                "or more, or allow fewer samples per request"
            )
        return self
