"""A model directory (Hugging Face layout) sampled in this process through the trainer's rollout engine
(vLLM when installed, else transformers)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..grading.answers import split_reasoning
from .generation import EvalModel, Generation, ProgressFn, chat_messages
from .model_api import ModelArgError


class LocalModel(EvalModel):
    """Samples all items in one batched engine call (the engine starts and stops inside it)."""

    kind = "local"

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int = 0,
        engine: str = "auto",
    ) -> None:
        super().__init__(name, str(model_dir))
        from ..trainer.rollout.engine import pick_engine

        try:
            engine = pick_engine(engine)  # "auto" resolved now, so the summary says which engine ran
        except RuntimeError as exc:
            raise ModelArgError(f"--model {name}={model_dir}: {exc}") from exc
        self.model_dir = Path(model_dir)
        self.temperature = 1.0 if temperature is None else temperature
        self.max_tokens = max_tokens or 512
        self.seed = seed
        self.engine = engine

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": self.engine, "temperature": self.temperature}

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        from ..trainer.rollout.generate import generate_texts

        start = time.perf_counter()
        texts = generate_texts(
            str(self.model_dir),
            [chat_messages(item) for item in items],
            n=n,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            engine=self.engine,
            reasoning=False,  # keep <think> here: the report shows it apart from the answer
            # A line's response_format constrains decoding here as in training (vLLM structured outputs).
            response_formats=[item.get("response_format") for item in items],
        )
        per_sample = (time.perf_counter() - start) / max(1, len(items) * n)
        if progress is not None:
            progress(len(items) * n)
        return [[_generation(text, per_sample) for text in row] for row in texts]


def _generation(text: str, latency_s: float) -> Generation:
    reasoning, answer = split_reasoning(text)
    return Generation(text=answer, reasoning=reasoning, latency_s=latency_s)
