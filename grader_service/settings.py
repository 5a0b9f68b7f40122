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

from ..sandbox.api import BackendName
from .auth import is_loopback

MB = 1024 * 1024


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
    max_message_mb: float = Field(64.0, gt=0, description="Largest request accepted, in MiB.")
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description="Seconds in-flight batches may run after SIGTERM before they fail with UNAVAILABLE.",
        json_schema_extra={"flag": "--shutdown-grace"},
    )
    loaded_graders: int = Field(64, ge=1, description="Graders kept built (warm) at once, across tenants.")
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
