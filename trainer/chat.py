"""Turn chat prompts into token ids the same way everywhere (rollouts, training, warm-up)."""

from __future__ import annotations

from typing import Any


def chat_prompt_ids(
    tokenizer: Any, messages: list[dict[str, str]], tools: list[dict[str, Any]] | None = None
) -> list[int]:
    """Token ids of `messages` (and `tools`, OpenAI format, where given) rendered by the tokenizer's
    chat template, ready for the reply."""
    extra = {"tools": tools} if tools else {}
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
