"""A model behind an OpenAI-compatible chat completions endpoint (vLLM, llama.cpp, OpenAI, ...)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..grading.answers import split_reasoning
from .generation import EvalModel, Generation, ProgressFn, chat_messages
from .models import ModelArgError

# Item fields passed through to the request when present.
PASSTHROUGH_FIELDS = ("response_format", "tools", "tool_choice")
RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


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
        backoff_s: float = 0.5,
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
        self.backoff_s = backoff_s

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_id": self.model_id}

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        return asyncio.run(self._generate(items, n, progress))

    async def _generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None
    ) -> list[list[Generation]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(self.timeout_s, connect=10.0), limits=limits
        ) as client:
            if self.model_id is None:
                self.model_id = await self._resolve_model_id(client)
            gate = asyncio.Semaphore(self.concurrency)
            out: list[list[Generation]] = [[Generation() for _ in range(n)] for _ in items]

            async def one(i: int, j: int) -> None:
                async with gate:
                    out[i][j] = await self._sample(client, items[i])
                if progress is not None:
                    progress(1)

            await asyncio.gather(*(one(i, j) for i in range(len(items)) for j in range(n)))
        return out

    async def _resolve_model_id(self, client: httpx.AsyncClient) -> str:
        """The endpoint's model named like this eval model, else its only model, else the eval name
        (no model list); several models and none named so is an error (pick one with URL#MODEL_ID)."""
        try:
            response = await client.get(f"{self.base_url}/models")
            response.raise_for_status()
            ids = [entry["id"] for entry in response.json().get("data", []) if "id" in entry]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return self.name
        if self.name in ids or not ids:
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

    async def _sample(self, client: httpx.AsyncClient, item: Mapping[str, Any]) -> Generation:
        body = self.request_body(item)
        start = time.perf_counter()
        last_error = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                response = await client.post(f"{self.base_url}/chat/completions", json=body)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUSES:
                last_error = f"HTTP {response.status_code}: {response.text[:300]}"
                retry_after = _retry_after(response)
                continue
            if response.status_code != 200:
                return Generation(
                    error=f"HTTP {response.status_code}: {response.text[:500]}",
                    latency_s=time.perf_counter() - start,
                )
            return _parse_completion(response, time.perf_counter() - start)
        return Generation(
            error=f"gave up after {self.retries + 1} attempts: {last_error}",
            latency_s=time.perf_counter() - start,
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 60.0)
        return self.backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _parse_completion(response: httpx.Response, latency_s: float) -> Generation:
    try:
        choice = response.json()["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Generation(error=f"malformed completion response: {response.text[:300]}", latency_s=latency_s)
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
