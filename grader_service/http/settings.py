"""The HTTP API's settings (pydantic-settings only, so `rft serve` can declare its options without
importing the server)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class HttpSettings(BaseSettings):
    """The HTTP API's settings, declared once: `rft serve`'s options (`options_from(HttpSettings,
    skip=FROM_SERVICE)`), their environment variables (RFT_HTTP_*) and the docs' table.

    The fields in FROM_SERVICE are the gRPC service's own (same host, data dir, sandbox, tokens) and
    are handed over by `rft serve`, not given twice.
    """

    model_config = SettingsConfigDict(env_prefix="RFT_HTTP_", extra="forbid", populate_by_name=True)

    FROM_SERVICE: ClassVar[tuple[str, ...]] = (
        "host", "port", "data_dir", "database_url", "base_models", "sandbox", "strict_uploads", "open_access",
    )  # fmt: skip

    host: str = Field("127.0.0.1", description="Address to listen on (rft serve's --host).")
    port: int = Field(
        8000, ge=0, le=65535,
        description="Serve the OpenAI-compatible HTTP API on this port (0: a free port).",
        json_schema_extra={"flag": "--http-port"},
    )  # fmt: skip
    data_dir: Path = Field(
        Path("rft-data"), description="State under DATA_DIR/http (rft serve's --data-dir)."
    )
    database_url: str | None = Field(
        None, description="Where the HTTP API keeps its state: a SQLAlchemy URL (postgresql://...) "
        "[default: sqlite in the data dir].",
    )  # fmt: skip
    base_models: dict[str, str] = Field(
        default_factory=dict,
        description="NAME -> a model dir or an rftkit config file (rft serve's --base-model).",
    )
    sandbox: str = Field("auto", description="Where Python graders run (rft serve's --sandbox).")
    strict_uploads: bool = Field(
        False, description="Refuse what the upload policy warns about (--strict-uploads)."
    )
    open_access: bool = Field(
        False, description='No tokens file (--insecure-local): every caller is tenant "local".'
    )
    max_upload_mb: float = Field(512.0, gt=0, description="Largest file a tenant may upload, in MB.")
    max_storage_mb_per_tenant: float | None = Field(
        None, gt=0, description="Total size of the files one tenant may keep, in MB [default: no limit]."
    )
    max_running_jobs: int = Field(
        1,
        ge=1,
        description="Fine-tuning jobs training at once on this machine (the others wait in the queue).",
    )
    max_active_jobs_per_tenant: int = Field(
        4, ge=1, description="Fine-tuning jobs one tenant may have queued, running or paused at once."
    )
    max_running_evals: int = Field(1, ge=1, description="Eval runs running at once on this machine.")
    max_active_evals_per_tenant: int = Field(
        4, ge=1, description="Eval runs one tenant may have queued or running at once."
    )
    grade_timeout_s: float = Field(
        120.0, gt=0, description="graders.run: the longest wait for a grading slot, in seconds.",
        json_schema_extra={"flag": "--grade-timeout"},
    )  # fmt: skip
    chat_engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto",
        description="What serves /v1/chat/completions: auto is vLLM when installed, else transformers.",
    )
    chat_max_loaded: int = Field(
        2,
        ge=1,
        description="Models /v1/chat/completions keeps loaded at once (the least recently used goes).",
    )
    chat_idle_s: float = Field(
        600.0, gt=0, description="Seconds a loaded chat model may stay unused before it is unloaded.",
        json_schema_extra={"flag": "--chat-idle-timeout"},
    )  # fmt: skip
    chat_kv_cache_mb: int = Field(
        256,
        ge=16,
        description="vLLM's KV cache per loaded chat model, in MB.",
    )

    @field_validator("base_models")
    @classmethod
    def _sources_exist(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not name or any(c in name for c in ": /"):
                raise ValueError(f"base model name {name!r} must be non-empty, without ':', '/' or spaces")
            path = Path(source)
            if not (path.is_dir() and (path / "config.json").is_file()) and not path.is_file():
                raise ValueError(
                    f"--base-model {name}={source}: not a model directory (with config.json) "
                    "nor an rftkit config file"
                )
        return value

    @property
    def root(self) -> Path:
        """Where the HTTP API keeps its files, database and job runs."""
        return self.data_dir / "http"

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.root / 'rftkit.db').resolve()}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @classmethod
    def option_names(cls) -> list[str]:
        """The fields `rft serve` takes as options (the others come from the gRPC service)."""
        return [name for name in cls.model_fields if name not in cls.FROM_SERVICE]
