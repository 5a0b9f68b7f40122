"""`POST /v1/chat/completions` for the server's base models and the tenant's fine-tuned models and
checkpoints, by name (`tiny`, `ft:tiny:my-suffix:abc123`, `ft:...:ckpt-step-4`), as OpenAI's API.

The models run on this machine in the server's model pool (pool.py). `stream: true` is answered as
server-sent events once the reply is generated (the engine gives whole replies).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ...trainer.rollout.engine import SamplingSettings
from .context import Ctx, HttpContext, Tenant
from .db import CheckpointRow, JobRow, new_id
from .errors import APIError, invalid
from .pool import ModelLoadError, ModelPool, Reply

router = APIRouter()
REPLY_TIMEOUT_S = 600.0
DEFAULT_MAX_TOKENS = 256
_base_lock = threading.Lock()  # building a base model (minutes, the first time)
_pool_lock = threading.Lock()


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The fields rftkit honours; other OpenAI fields are accepted and have no effect."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=128)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    tools: list[dict[str, Any]] | None = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def base_model_dir(ctx: HttpContext, name: str) -> Path:
    """The directory of base model `name` (a config file's tiny model is built once and cached)."""
    from ...trainer.base_model import prepare_base_model
    from ...trainer.config import ModelConfig
    from .jobconfig import base_defaults

    cache: dict[str, Path] = ctx.extra.setdefault("base_model_dirs", {})
    with _base_lock:
        if name not in cache:
            section = base_defaults(ctx.settings.base_models[name])["model"]
            cache[name] = prepare_base_model(ModelConfig.model_validate(section), notify=lambda _m: None)
        return cache[name]


def model_dir(ctx: HttpContext, tenant: str, name: str) -> Path:
    """Where the model `name` this tenant may use lives; 404 `model_not_found` otherwise."""
    if name in ctx.settings.base_models:
        try:
            return base_model_dir(ctx, name)
        except Exception as exc:
            raise APIError(
                500, f"base model {name!r} cannot be prepared: {exc}", type="server_error"
            ) from None
    found: str | None = None
    if name.startswith("ft:"):
        with ctx.db.session() as session:
            job = session.scalar(
                select(JobRow).where(JobRow.tenant == tenant, JobRow.fine_tuned_model == name)
            )
            if job is not None:
                found = str(Path(job.run_dir) / "final")
            else:
                found = session.scalar(
                    select(CheckpointRow.path)
                    .join(JobRow, JobRow.id == CheckpointRow.job_id)
                    .where(JobRow.tenant == tenant, CheckpointRow.model_name == name,
                           CheckpointRow.deleted.is_(False))
                )  # fmt: skip
    if found is None or not (Path(found) / "config.json").is_file():
        raise APIError(
            404,
            f"The model '{name}' does not exist or you do not have access to it. "
            "GET /v1/models lists the models you can use.",
            param="model",
            code="model_not_found",
        )
    return Path(found)


def pool_of(ctx: HttpContext) -> ModelPool:
    if ctx.pool is None:
        with _pool_lock:
            if ctx.pool is None:
                s = ctx.settings
                ctx.pool = ModelPool(engine=s.chat_engine, max_loaded=s.chat_max_loaded, idle_s=s.chat_idle_s,
                                     kv_cache_bytes=s.chat_kv_cache_mb * 1024 * 1024)  # fmt: skip
    return ctx.pool


def _checked(body: ChatRequest) -> None:
    if body.tools:
        raise invalid("tools are not supported by rftkit's chat completions", param="tools")
    if body.stop:
        raise invalid("stop sequences are not supported by rftkit's chat completions", param="stop")
    if body.logprobs:
        raise invalid("logprobs are not supported by rftkit's chat completions", param="logprobs")


def complete(ctx: HttpContext, tenant: str, body: ChatRequest) -> tuple[Reply, float]:
    """The reply of the tenant's model to `body` (and when it was asked)."""
    _checked(body)
    directory = model_dir(ctx, tenant, body.model)
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
        for m in body.messages
    ]
    settings = SamplingSettings(
        n=body.n,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=body.top_p or 1.0,
        max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        seed=body.seed,
    )
    started = time.time()
    future = pool_of(ctx).submit(directory, messages, settings)
    try:
        return future.result(REPLY_TIMEOUT_S), started
    except FutureTimeout:
        raise APIError(
            504, f"no reply from {body.model} within {REPLY_TIMEOUT_S:.0f} s", code="timeout"
        ) from None
    except ModelLoadError as exc:
        raise APIError(503, str(exc), code="model_unavailable") from None
    except ValueError as exc:
        raise invalid(str(exc), param="messages") from None
    except RuntimeError as exc:
        raise APIError(500, str(exc), type="server_error") from None


def _finish(reason: str | None, tokens: int, limit: int) -> str:
    if reason in ("stop", "length"):
        return reason
    return "length" if tokens >= limit else "stop"


def completion_object(body: ChatRequest, reply: Reply, created: float) -> dict[str, Any]:
    """OpenAI's chat.completion object."""
    limit = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": c.text, "refusal": None},
            "logprobs": None,
            "finish_reason": _finish(c.finish_reason, len(c.token_ids), limit),
        }
        for i, c in enumerate(reply.completions)
    ]
    completion_tokens = sum(len(c.token_ids) for c in reply.completions)
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(created),
        "model": body.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": reply.prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "rftkit",
    }


def _events(body: ChatRequest, answer: dict[str, Any]) -> Iterator[str]:
    common = {k: answer[k] for k in ("id", "created", "model", "system_fingerprint")}
    common["object"] = "chat.completion.chunk"
    for choice in answer["choices"]:
        for delta, reason in (({"role": "assistant", "content": choice["message"]["content"]}, None),
                              ({}, choice["finish_reason"])):  # fmt: skip
            chunk = {**common, "choices": [{"index": choice["index"], "delta": delta, "logprobs": None,
                                            "finish_reason": reason}]}  # fmt: skip
            yield f"data: {json.dumps(chunk)}\n\n"
    if (body.stream_options or {}).get("include_usage"):
        yield f"data: {json.dumps({**common, 'choices': [], 'usage': answer['usage']})}\n\n"
    yield "data: [DONE]\n\n"


@router.post("/chat/completions", response_model=None)
def chat_completions(body: ChatRequest, ctx: Ctx, tenant: Tenant) -> dict[str, Any] | StreamingResponse:
    reply, created = complete(ctx, tenant, body)
    answer = completion_object(body, reply, created)
    if body.stream:
        return StreamingResponse(_events(body, answer), media_type="text/event-stream")
    return answer
