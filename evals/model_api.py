"""Small types every eval model kind shares (a leaf: it imports nothing from the eval's other modules)."""

from __future__ import annotations

from dataclasses import dataclass


class ModelArgError(ValueError):
    """A --model argument that names nothing usable."""


@dataclass
class ModelOptions:
    """Sampling and transport options shared by every model of a run."""

    concurrency: int = 8
    retries: int = 4
    timeout_s: float = 300.0
    temperature: float | None = None
    max_tokens: int | None = None
    api_key: str | None = None
    engine: str = "auto"  # local model dirs: auto (vLLM when installed) | vllm | transformers
