"""OpenAI's error objects: `{"error": {"message", "type", "param", "code"}}` with a matching HTTP status.

Every failure the API answers goes through here, so a client never sees a bare 500 with a
traceback: validation errors become 400 `invalid_request_error` naming the field, unknown
objects 404, a missing or wrong token 401, and anything unexpected a 500 `server_error` that
says what went wrong in one line (the traceback goes to the server's log only).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("rftkit.grader_service.http")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "server_error",
    504: "server_error",
}


class APIError(Exception):
    """An error answered as OpenAI's error object with `status`."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None,
        type: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """400 invalid_request_error."""
    return APIError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str, param: str = "id") -> APIError:
    """404 for an object this tenant does not have (another tenant's objects look the same)."""
    return APIError(404, f"No such {kind}: '{object_id}'", param=param, code="not_found")


def _response(error: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Answer every error of `app` as an OpenAI error object."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        param = _location(tuple(first.get("loc", ()))) or None
        messages = []
        for err in errors[:10]:
            where = _location(tuple(err.get("loc", ())))
            text = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            messages.append(f"{where}: {text}" if where else text)
        return _response(APIError(400, "Invalid request: " + "; ".join(messages), param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.url.path}."
            return _response(APIError(404, message, code="unknown_url"))
        if exc.status_code == 405:
            return _response(APIError(405, f"Method {request.method} is not allowed on {request.url.path}."))
        return _response(APIError(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        message = f"The server had an error processing the request ({type(exc).__name__}: {exc})."
        return _response(APIError(500, message, type="server_error"))
