"""Chat completions at an OpenAI-compatible endpoint through the official `openai` SDK.

Shared by the judge graders (score_model, label_model) and the eval's URL targets, so both
retry and report failures the same way: the SDK retries connection errors, timeouts, 408, 409,
429 and 5xx `max_retries` times with exponential backoff and jitter, honouring `Retry-After`;
what still fails raises `CompletionError` with one line that says what happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai

NO_KEY = "EMPTY"
"""The key sent where none is configured: the SDK always sends one, keyless servers (vLLM) ignore it."""


class CompletionError(Exception):
    """A chat completion that failed after the SDK's retries; `attempts` counts the requests sent."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message if attempts <= 1 else f"gave up after {attempts} attempts: {message}")
        self.attempts = attempts


def open_client(base_url: str, api_key: str | None, *, timeout_s: float, max_retries: int) -> openai.OpenAI:
    """A thread-safe SDK client for `base_url` (ending in /v1 or wherever chat/completions lives)."""
    return openai.OpenAI(
        base_url=base_url.rstrip("/"), api_key=api_key or NO_KEY, timeout=timeout_s, max_retries=max_retries
    )


def _attempts(exc: openai.APIError) -> int:
    request = getattr(exc, "request", None)
    try:
        return int(request.headers.get("x-stainless-retry-count", 0)) + 1 if request is not None else 1
    except ValueError:
        return 1


def chat_completion(client: openai.OpenAI, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST `body` (model, messages and any other fields, passed as they are) to chat/completions;
    the reply as a plain dict. CompletionError when it fails or is not a JSON object."""
    rest = {key: value for key, value in body.items() if key not in ("model", "messages")}
    try:
        reply = client.chat.completions.create(
            model=body["model"], messages=body["messages"], extra_body=rest
        )
    except openai.APIStatusError as exc:
        raise CompletionError(f"HTTP {exc.status_code}: {exc.response.text[:300]}", _attempts(exc)) from exc
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise CompletionError(f"{type(cause).__name__}: {cause} ({exc.request.url})", _attempts(exc)) from exc
    except openai.APIError as exc:
        raise CompletionError(f"{type(exc).__name__}: {exc}", _attempts(exc)) from exc
    if not isinstance(reply, openai.BaseModel):  # the SDK hands back the text of a reply that is not JSON
        raise CompletionError(f"the endpoint did not answer JSON: {str(reply)[:300]}")
    return reply.to_dict()


def served_models(client: openai.OpenAI) -> list[str] | None:
    """The ids the endpoint lists at /models (one request, no retries), or None where it lists none."""
    try:
        page = client.with_options(max_retries=0).models.list()
        return [model.id for model in page.data if isinstance(getattr(model, "id", None), str)]
    except (openai.OpenAIError, AttributeError, TypeError, ValueError):
        return None
