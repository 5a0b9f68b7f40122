"""Build a rollout engine by name: vLLM's or transformers' generate."""

from __future__ import annotations

from typing import Any

from .engine import RolloutEngine, pick_engine


def make_engine(
    name: str, model_dir: str, *, dtype: str, policy: Any = None, vllm_options: dict[str, Any] | None = None
) -> RolloutEngine:
    """Build the rollout engine `name` (auto | vllm | transformers) for the model in `model_dir`.

    The transformers engine samples from `policy` (the live training module) when given, so it
    never needs a weight sync.
    """
    if pick_engine(name) == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model_dir, dtype=dtype, **(vllm_options or {}))
    from .hf_engine import HFEngine

    return HFEngine(model_dir, dtype=dtype, model=policy)
