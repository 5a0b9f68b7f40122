"""A model directory (Hugging Face layout) generated with vLLM in this process."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rftkit.trainer.eval.generation import EvalModel, Generation, ProgressFn, chat_messages, split_reasoning


class LocalVLLMModel(EvalModel):
    """Loads the directory with vLLM once, then answers all items in one batched call."""

    kind = "local"

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(name, str(model_dir))
        self.model_dir = Path(model_dir)
        self.temperature = 1.0 if temperature is None else temperature
        self.max_tokens = max_tokens or 512
        self.seed = seed
        self._llm: Any = None

    def _engine(self) -> Any:
        if self._llm is None:
            import torch
            from vllm import LLM

            on_gpu = torch.cuda.is_available()
            self._llm = LLM(
                model=str(self.model_dir),
                dtype="auto" if on_gpu else "float32",
                gpu_memory_utilization=0.85 if on_gpu else 0.2,
                seed=self.seed,
                enforce_eager=not on_gpu,
            )
        return self._llm

    def _params(self, item: Mapping[str, Any], n: int) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        response_format = item.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = response_format.get("json_schema", {}).get("schema")
            structured = StructuredOutputsParams(json=json.dumps(schema)) if schema else None
        elif response_format.get("type") == "json_object":
            structured = StructuredOutputsParams(json_object=True)
        return SamplingParams(
            n=n,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            structured_outputs=structured,
        )

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        llm = self._engine()
        start = time.perf_counter()
        outputs = llm.chat(
            [chat_messages(item) for item in items],
            [self._params(item, n) for item in items],
            use_tqdm=False,
        )
        per_sample = (time.perf_counter() - start) / max(1, len(items) * n)
        result: list[list[Generation]] = []
        for request in outputs:
            row = []
            for completion in request.outputs:
                reasoning, answer = split_reasoning(completion.text)
                row.append(
                    Generation(
                        text=answer,
                        reasoning=reasoning,
                        finish_reason=completion.finish_reason,
                        latency_s=per_sample,
                    )
                )
            result.append(row)
        if progress is not None:
            progress(len(items) * n)
        return result

    def close(self) -> None:
        self._llm = None
