"""For other parts of rftkit (e.g. `rft eval`): N sampled replies per chat prompt from a model dir."""

from __future__ import annotations

from typing import Any

from ...grading.answers import final_answer
from ..chat import chat_prompt_ids
from .collect import generate_by_schema
from .engine import SamplingSettings
from .factory import make_engine


def generate_texts(
    model_dir: str,
    prompts: list[list[dict[str, str]]],
    *,
    n: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_tokens: int = 256,
    seed: int = 0,
    engine: str = "auto",
    dtype: str = "float32",
    reasoning: bool = False,
    engine_options: dict[str, Any] | None = None,
    response_formats: list[dict[str, Any] | None] | None = None,
) -> list[list[str]]:
    """`n` replies for each chat prompt (lists of {role, content}); thinking stripped when `reasoning`.

    Uses vLLM when installed (`engine="auto"`), else transformers' generate. The engine is
    started and closed inside the call. `response_formats` (one per prompt, OpenAI's
    response_format or a JSON schema) constrain vLLM's decoding to their schema.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = [chat_prompt_ids(tokenizer, p) for p in prompts]
    rollout = make_engine(engine, model_dir, dtype=dtype, vllm_options=engine_options)
    try:
        settings = SamplingSettings(
            n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed
        )
        groups = generate_by_schema(rollout, ids, response_formats or [None] * len(ids), settings)
    finally:
        rollout.close()
    return [[final_answer(c.text, reasoning) for c in group] for group in groups]
