"""A model plugin (entry-point group `rftkit.models`): a non-LLM baseline scored on the same items."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..grading.answers import split_reasoning
from ..plugins.models.base import ItemModel
from .generation import EvalModel, Generation, ProgressFn

CHUNK = 16  # items per generate() call, so the progress bar moves


class PluginModel(EvalModel):
    kind = "plugin"

    def __init__(self, name: str, plugin_name: str, plugin: ItemModel) -> None:
        super().__init__(name, plugin_name)
        self.plugin = plugin

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        out: list[list[Generation]] = []
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            began = time.perf_counter()
            try:
                texts = self.plugin.generate(chunk, n)
                if len(texts) != len(chunk) or any(len(row) != n for row in texts):
                    raise ValueError(f"returned {len(texts)} rows for {len(chunk)} items, each must hold {n}")
            except Exception as exc:  # a broken plugin costs its chunk, not the run
                error = f"model plugin {self.target!r} failed: {type(exc).__name__}: {exc}"
                out.extend([Generation(error=error) for _ in range(n)] for _ in chunk)
            else:
                per_sample = (time.perf_counter() - began) / max(1, len(chunk) * n)
                out.extend([_generation(text, per_sample) for text in row] for row in texts)
            if progress is not None:
                progress(len(chunk) * n)
        return out

    def close(self) -> None:
        self.plugin.close()


def _generation(text: Any, latency_s: float) -> Generation:
    if not isinstance(text, str):
        return Generation(error=f"model plugin returned {type(text).__name__}, not str", latency_s=latency_s)
    reasoning, answer = split_reasoning(text)
    return Generation(text=answer, reasoning=reasoning, latency_s=latency_s)
