"""Who is looking: the tenant's token in an HttpOnly cookie, set by the sign-in form.

The cookie holds the same token the API takes as `Authorization: Bearer <token>`; it is checked on
every request against the gRPC service's tokens (so revoking a token signs its browser out). Forms
that change something carry a CSRF value derived from the token (HMAC with a per-server secret),
and the cookie is `SameSite=Strict`, so another site cannot submit them for the user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from ...auth import LOCAL_TENANT, Unauthenticated
from ..context import HttpContext, context

COOKIE = "rft_token"
MAX_AGE_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Viewer:
    """A signed-in visitor: the tenant, the token it signed in with, and its forms' CSRF value."""

    tenant: str
    token: str
    csrf: str
    open_access: bool = False


def _secret(ctx: HttpContext) -> bytes:
    secret = ctx.extra.get("dashboard_secret")
    if secret is None:
        secret = ctx.extra.setdefault("dashboard_secret", secrets.token_bytes(32))
    return secret


def csrf_for(ctx: HttpContext, token: str) -> str:
    return hmac.new(_secret(ctx), token.encode(), hashlib.sha256).hexdigest()[:32]


def tenant_for_token(ctx: HttpContext, token: str) -> str | None:
    """The tenant a token belongs to, or None for an unknown token."""
    if ctx.settings.open_access:
        return LOCAL_TENANT
    if not token:
        return None
    try:
        return ctx.auth.tenant([("authorization", f"Bearer {token}")])
    except Unauthenticated:
        return None


def viewer(request: Request) -> Viewer | None:
    """The visitor of `request` (from the cookie), or None when not signed in."""
    ctx = context(request)
    token = request.cookies.get(COOKIE, "")
    tenant = tenant_for_token(ctx, token)
    if tenant is None:
        return None
    return Viewer(tenant, token, csrf_for(ctx, token), ctx.settings.open_access)


def csrf_ok(request: Request, who: Viewer, sent: str | None) -> bool:
    """A change may go ahead: the CSRF value matches and the request came from this origin."""
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return False
    return bool(sent) and hmac.compare_digest(sent or "", who.csrf)
