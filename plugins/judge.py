"""What `score_model` and `label_model` share: the spec fields, prompt rendering and the HTTP client.

The judge is any OpenAI-compatible chat-completions endpoint (a vLLM server is the reference).
Where requests go, in order: the spec's `base_url` (an rftkit extension), the grader context's
`judge_base_url`, `$RFTKIT_JUDGE_BASE_URL`, `$OPENAI_BASE_URL`, then https://api.openai.com/v1.
The key: `$<api_key_env>` when the spec names it, the context's `judge_api_key`,
`$RFTKIT_JUDGE_API_KEY`, `$OPENAI_API_KEY`, else none.

A batch is sent concurrently (`max_concurrency` requests at once) through the official `openai`
SDK (see `rftkit.plugins.openai_client`): connection errors, timeouts, 408, 409, 429 and 5xx are
retried `max_retries` times with backoff, jitter and `Retry-After`; what still fails is
`model_grader_server_error` for that sample. Without a key the SDK sends the placeholder `EMPTY`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import openai
from pydantic import BaseModel, ConfigDict, Field

from .base import (
    GradedBatch,
    GraderContext,
    GraderSpec,
    GradingError,
    Sample,
    Score,
    ScoringGrader,
)
from .openai_client import CompletionError, chat_completion, open_client
from .templates import Template, render

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class ContentPart(BaseModel):
    """One part of a message: input_text / output_text (text), input_image (image_url), ..."""

    model_config = ConfigDict(extra="allow")

    type: str = "input_text"
    text: Template | None = None
    image_url: Template | None = None
    detail: str | None = None


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "developer"]
    content: Template | ContentPart | list[Template | ContentPart]
    type: Literal["message"] | None = None


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_completions_tokens: int | None = None
    reasoning_effort: str | None = None
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None


class ModelGraderSpec(GraderSpec):
    """OpenAI's model-grader fields plus rftkit's endpoint settings (all optional)."""

    input: list[InputMessage] = Field(min_length=1)
    model: str
    sampling_params: SamplingParams | None = None
    # rftkit extensions
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=16, ge=1, le=1024)
    max_retries: int = Field(default=2, ge=0, le=10)
    structured_output: bool = True


def _render_part(part: str | ContentPart, sample: Sample, item: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": render(part, sample, item)}
    if part.type == "input_image" and part.image_url is not None:
        image: dict[str, Any] = {"url": render(part.image_url, sample, item)}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.text is not None:
        return {"type": "text", "text": render(part.text, sample, item)}
    raise GradingError("other_error", f"content part of type {part.type!r} is not supported by rftkit")


def render_messages(spec: ModelGraderSpec, sample: Sample, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Chat-completions messages; text-only content is joined into one string, developer -> system."""
    messages = []
    for message in spec.input:
        parts = message.content if isinstance(message.content, list) else [message.content]
        rendered = [_render_part(p, sample, item) for p in parts]
        content: str | list[dict[str, Any]] = (
            "\n".join(p["text"] for p in rendered) if all(p["type"] == "text" for p in rendered) else rendered
        )
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": content})
    return messages


def judge_json(content: str) -> Any:
    """The judge's reply as JSON (code fences removed), or None when it is not JSON."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class ModelGrader(ScoringGrader):
    """Base of the model graders: send the rendered prompt, parse the reply with `interpret`."""

    spec: ModelGraderSpec

    def __init__(self, spec: ModelGraderSpec, context: GraderContext) -> None:
        super().__init__(spec, context)
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def instruction(self) -> str:
        """The system message that says how to answer."""

    @abstractmethod
    def result_schema(self) -> dict[str, Any]:
        """The JSON schema of the `result` field (used for structured output)."""

    @abstractmethod
    def interpret(self, content: str) -> Score:
        """The Score for the judge's reply; GradingError("model_grader_parse_error", ...) if unusable."""

    def client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = open_client(
                    self.base_url(),
                    self.api_key(),
                    timeout_s=self.spec.timeout_s,
                    max_retries=self.spec.max_retries,
                )
            return self._client

    def base_url(self) -> str:
        return (
            self.spec.base_url
            or self.context.judge_base_url
            or os.environ.get("RFTKIT_JUDGE_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/") + "/"

    def api_key(self) -> str | None:
        return (
            (os.environ.get(self.spec.api_key_env) if self.spec.api_key_env else None)
            or self.context.judge_api_key
            or os.environ.get("RFTKIT_JUDGE_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
        )

    def request_body(self, sample: Sample, item: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [
                {"role": "system", "content": self.instruction()},
                *render_messages(self.spec, sample, item),
            ],
        }
        params = self.spec.sampling_params
        if params is not None:
            for key in ("temperature", "top_p", "seed", "reasoning_effort"):
                if getattr(params, key) is not None:
                    body[key] = getattr(params, key)
            if params.max_completions_tokens is not None:
                body["max_tokens"] = params.max_completions_tokens
            body.update(params.model_extra or {})
        if self.spec.structured_output:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "grade",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {
                            "steps": {"type": "array", "items": {"type": "string"}},
                            "result": self.result_schema(),
                        },
                        "required": ["steps", "result"],
                        "additionalProperties": False,
                    },
                },
            }
        return body

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion (the SDK retries); model_grader_server_error when it fails."""
        try:
            return chat_completion(self.client(), body)
        except CompletionError as exc:
            raise GradingError("model_grader_server_error", str(exc)) from None

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        reply = self.post(self.request_body(sample, item))
        try:
            message = reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise GradingError(
                "model_grader_server_error", f"no choices[0].message in the reply: {str(reply)[:300]}"
            ) from None
        if message.get("refusal"):
            raise GradingError("model_grader_refusal_error", f"the judge refused: {message['refusal']}")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise GradingError("model_grader_parse_error", "the judge's reply has no text")
        score = self.interpret(content)
        usage = reply.get("usage")
        if isinstance(usage, dict):
            score.metadata["token_usage"] = {k: v for k, v in usage.items() if isinstance(v, int)}
        if isinstance(reply.get("model"), str):
            score.metadata["sampled_model_name"] = reply["model"]
        return score

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        if len(pairs) <= 1:
            return super().grade_columns(pairs)
        workers = min(len(pairs), self.spec.max_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"judge-{self.name}") as pool:
            return self.columns(list(pool.map(lambda pair: self.grade_safely(*pair), pairs)))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
