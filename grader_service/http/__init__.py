"""The OpenAI-compatible HTTP API (FastAPI on uvicorn) that `rft serve --http-port` runs beside gRPC.

    handle = start_http_server(HttpSettings(port=8000, ...), auth=..., graders=..., admission=...)
    OpenAI(base_url=handle.url, api_key=TOKEN)

Same tenants and tokens as the gRPC API; state in SQLite or PostgreSQL (SQLAlchemy 2, Alembic).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .settings import HttpSettings

if TYPE_CHECKING:
    from .server import HttpServer, start_http_server

__all__ = ["HttpServer", "HttpSettings", "parse_base_models", "start_http_server"]


def __getattr__(name: str) -> Any:
    """The server parts load on first use (FastAPI, uvicorn, SQLAlchemy), not with the settings."""
    if name in ("HttpServer", "start_http_server"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)


def parse_base_models(values: Iterable[str]) -> dict[str, str]:
    """`NAME=SOURCE` pairs (from `--base-model`) as a dict; ValueError naming a malformed one."""
    found: dict[str, str] = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise ValueError(
                f"--base-model {value!r}: expected NAME=SOURCE (a model dir or an rftkit config file)"
            )
        if name.strip() in found:
            raise ValueError(f"--base-model {name.strip()!r} is given twice")
        found[name.strip()] = source.strip()
    return found
