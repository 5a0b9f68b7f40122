"""What every route needs: the settings, the caller's tenant, and the service parts shared with gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..auth import LOCAL_TENANT, Authenticator, Unauthenticated
from .errors import APIError

if TYPE_CHECKING:
    from ..runtime import Admission, LoadedGraders
    from .db import Database
    from .files import FileStore
    from .runner import JobRunner

MB = 1024 * 1024


class HttpSettings(BaseModel):
    """The HTTP API's own settings (the tenants, tokens and sandbox come from the gRPC service)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("rft-data")
    database_url: str | None = None  # None: sqlite:///DATA_DIR/http/rftkit.db
    base_models: dict[str, str] = Field(default_factory=dict)  # NAME -> model dir or rftkit config file
    sandbox: str = "auto"
    strict_uploads: bool = False
    max_upload_mb: float = Field(512.0, gt=0)
    max_running_jobs: int = Field(1, ge=1)  # jobs training at once on this machine
    max_active_jobs_per_tenant: int = Field(4, ge=1)  # queued + running + paused
    grade_timeout_s: float = Field(120.0, gt=0)  # graders.run: longest wait for a grading slot
    open_access: bool = False  # no tokens file (--insecure-local): every caller is tenant "local"

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


@dataclass
class HttpContext:
    """Held by the app (`app.state.ctx`): one per server."""

    settings: HttpSettings
    auth: Authenticator
    graders: LoadedGraders
    admission: Admission
    db: Database
    files: FileStore
    runner: JobRunner | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def context(request: Request) -> HttpContext:
    return request.app.state.ctx


def tenant_of(request: Request) -> str:
    """The caller's tenant from `Authorization: Bearer <token>` (the gRPC service's tokens); 401 otherwise."""
    ctx = context(request)
    if ctx.settings.open_access:
        return LOCAL_TENANT
    header = request.headers.get("authorization")
    try:
        return ctx.auth.tenant([] if header is None else [("authorization", header)])
    except Unauthenticated as exc:
        message = (
            "You didn't provide an API key. Send 'Authorization: Bearer <token>' (the SDK's api_key)."
            if header is None
            else f"Incorrect API key provided ({exc}). Use a token from the server's --tokens file."
        )
        raise APIError(401, message, code="invalid_api_key") from None


Ctx = Annotated[HttpContext, Depends(context)]
Tenant = Annotated[str, Depends(tenant_of)]
