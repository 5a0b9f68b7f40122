"""What every route needs: the settings, the caller's tenant, and the service parts shared with gRPC."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from ..auth import LOCAL_TENANT, Authenticator, Unauthenticated
from .errors import APIError
from .settings import HttpSettings

if TYPE_CHECKING:
    from ..runtime import Admission, LoadedGraders
    from .db import Database
    from .evalrunner import EvalRunner
    from .filestore import FileStore
    from .pool import ModelPool
    from .runner import JobRunner

__all__ = ["Ctx", "HttpContext", "HttpSettings", "Tenant", "context", "tenant_of"]


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
    eval_runner: EvalRunner | None = None
    pool: ModelPool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _internal: dict[str, str] = field(default_factory=dict)  # secret -> tenant, this process only
    _internal_lock: threading.Lock = field(default_factory=threading.Lock)

    def internal_token(self, tenant: str) -> str:
        """A bearer token for `tenant` that only this server process knows (its eval runs call the
        server's own /v1/chat/completions with it); never stored, gone at a restart."""
        with self._internal_lock:
            for secret, owner in self._internal.items():
                if owner == tenant:
                    return secret
            secret = "rft-internal-" + secrets.token_urlsafe(32)
            self._internal[secret] = tenant
            return secret

    def internal_tenant(self, header: str | None) -> str | None:
        if not header or not self._internal:
            return None
        scheme, _, token = header.partition(" ")
        return self._internal.get(token.strip()) if scheme.lower() == "bearer" else None

    @property
    def self_url(self) -> str:
        """The API's own /v1 URL, as this machine reaches it."""
        host = self.settings.host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.extra.get('http_port', self.settings.port)}/v1"


def context(request: Request) -> HttpContext:
    return request.app.state.ctx


def tenant_of(request: Request) -> str:
    """The caller's tenant from `Authorization: Bearer <token>` (the gRPC service's tokens); 401 otherwise."""
    ctx = context(request)
    if ctx.settings.open_access:
        return LOCAL_TENANT
    header = request.headers.get("authorization")
    internal = ctx.internal_tenant(header)
    if internal is not None:
        return internal
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
