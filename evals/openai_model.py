"""A model behind an OpenAI-compatible chat completions endpoint (vLLM, llama.cpp, OpenAI, ...).

Requests go through the official `openai` SDK (`rftkit.plugins.openai_client`, shared with the
judge graders): connection errors, timeouts, 408, 409, 429 and 5xx are retried `retries` times
with exponential backoff and jitter, honouring `Retry-After`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import openai

from ..grading.answers import split_reasoning
from ..plugins.openai_client import CompletionError, chat_completion, open_client, served_models
from .generation import EvalModel, Generation, ProgressFn, chat_messages
from .model_api import ModelArgError

# Item fields passed through to the request when present.
PASSTHROUGH_FIELDS = ("response_format", "tools", "tool_choice")


class OpenAIChatModel(EvalModel):
    """Sends each sample as one chat completion request; `concurrency` requests in flight."""

    kind = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model_id: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        retries: int = 4,
        timeout_s: float = 300.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        super().__init__(name, base_url)
        self.base_url = base_url.rstrip("/")
        self.model_id = model_id
        self.api_key = api_key
        self.concurrency = max(1, concurrency)
        self.retries = max(0, retries)
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_id": self.model_id}

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        client = open_client(self.base_url, self.api_key, timeout_s=self.timeout_s, max_retries=self.retries)
        try:
            if self.model_id is None:
                self.model_id = self._resolve_model_id(client)
            out: list[list[Generation]] = [[Generation() for _ in range(n)] for _ in items]
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="eval-http") as pool:
                futures = {
                    pool.submit(self._sample, client, items[i]): (i, j)
                    for i in range(len(items))
                    for j in range(n)
                }
                for future in as_completed(futures):  # progress advances in this thread only
                    i, j = futures[future]
                    out[i][j] = future.result()
                    if progress is not None:
                        progress(1)
        finally:
            client.close()
        return out

    def _resolve_model_id(self, client: openai.OpenAI) -> str:
        """The endpoint's model named like this eval model, else its only model, else the eval name
        (no model list); several models and none named so is an error (pick one with URL#MODEL_ID)."""
        ids = served_models(client)
        if not ids or self.name in ids:
            return self.name
        if len(ids) == 1:
            return ids[0]
        shown = ", ".join(map(str, ids[:20]))
        raise ModelArgError(
            f"--model {self.name}={self.base_url}: the endpoint serves several models ({shown}) and none is "
            f"named {self.name!r}; name the eval model after one, or pick one with {self.base_url}#MODEL_ID"
        )

    def request_body(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The chat completion request for one sample of `item`."""
        body: dict[str, Any] = {"model": self.model_id or self.name, "messages": chat_messages(item)}
        for key in PASSTHROUGH_FIELDS:
            if item.get(key) is not None:
                body[key] = item[key]
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def _sample(self, client: openai.OpenAI, item: Mapping[str, Any]) -> Generation:
        start = time.perf_counter()
        try:
            reply = chat_completion(client, self.request_body(item))
        except CompletionError as exc:
            return Generation(error=str(exc), latency_s=time.perf_counter() - start)
        return _parse_completion(reply, time.perf_counter() - start)


def _parse_completion(reply: Mapping[str, Any], latency_s: float) -> Generation:
    try:
        choice = reply["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        return Generation(error=f"malformed completion response: {str(reply)[:300]}", latency_s=latency_s)
    content = message.get("content") or ""
    if not isinstance(content, str):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not reasoning:
        reasoning, content = split_reasoning(content)
    return Generation(
        text=content,
        reasoning=reasoning,
        tool_calls=list(message.get("tool_calls") or []),
        finish_reason=choice.get("finish_reason"),
        latency_s=latency_s,
    )
