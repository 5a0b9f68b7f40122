"""Bearer tokens -> tenants.

Tokens file (one tenant and one token per line; `#` starts a comment):

    # tenant   token
    team-a     8c1f3e0d9b7a4c2e91f0a6d5b3c7e8f1
    team-b     sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

A token is either the secret itself (16 characters or more) or `sha256:` and the hex SHA-256 of
the secret, so the file need not hold secrets. A tenant may have several tokens (several lines).
Clients send `authorization: Bearer <token>` metadata.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path

TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOCAL_TENANT = "local"
MIN_TOKEN_CHARS = 16


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message names the line and what to fix."""


class Unauthenticated(Exception):
    """No token, or a token that matches no tenant."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def load_tokens(path: Path) -> dict[bytes, str]:
    """Map of SHA-256(token) -> tenant, from a tokens file."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise TokenFileError(f"cannot read tokens file {path}: {exc}") from exc
    table: dict[bytes, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{path}:{number}"
        if len(parts) != 2:
            raise TokenFileError(f"{where}: expected 'TENANT TOKEN', got {len(parts)} fields")
        tenant, token = parts
        if not TENANT_RE.match(tenant):
            raise TokenFileError(f"{where}: tenant {tenant!r} must match {TENANT_RE.pattern}")
        if token.startswith("sha256:"):
            try:
                digest = bytes.fromhex(token[7:])
            except ValueError as exc:
                raise TokenFileError(f"{where}: sha256: must be followed by 64 hex digits") from exc
            if len(digest) != 32:
                raise TokenFileError(f"{where}: sha256: must be followed by 64 hex digits")
        elif len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{where}: token too short (use {MIN_TOKEN_CHARS}+ random characters)")
        else:
            digest = _digest(token)
        if digest in table and table[digest] != tenant:
            raise TokenFileError(f"{where}: this token is already given to tenant {table[digest]!r}")
        table[digest] = tenant
    if not table:
        raise TokenFileError(f"{path} holds no tokens; add lines 'TENANT TOKEN'")
    return table


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Finds the tenant of a call from its `authorization` metadata."""

    def __init__(self, tokens: dict[bytes, str] | None, *, allow_anonymous: bool = False) -> None:
        self._tokens = tokens or {}
        self.allow_anonymous = allow_anonymous

    def tenant(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
        header = next((v for k, v in metadata or () if k == "authorization"), None)
        if header is None:
            if self.allow_anonymous:
                return LOCAL_TENANT
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        if isinstance(header, bytes):
            header = header.decode(errors="replace")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        # Looked up by its SHA-256, so lookup timing says nothing useful about the secret.
        tenant = self._tokens.get(_digest(token.strip()))
        if tenant is None:
            raise Unauthenticated("invalid token")
        return tenant
