"""The policy being trained: loading (full weights or LoRA), dtype, log-probabilities, weights for vLLM."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .config import ModelConfig


def resolve_dtype(name: str) -> torch.dtype:
    """`auto` -> bfloat16 on a GPU that supports it, else float32."""
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_policy(model_dir: str, config: ModelConfig, dtype: torch.dtype) -> Any:
    """The trainable model: all weights, or a peft LoRA wrapper when `config.lora` is set."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device())
    if config.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    model.config.use_cache = False
    return model


def load_reference(model_dir: str, dtype: torch.dtype) -> Any:
    """A frozen copy of the starting model (only built when beta > 0 and weights are not LoRA)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device())
    model.eval().requires_grad_(False)
    return model


def is_lora(model: Any) -> bool:
    return hasattr(model, "peft_config")


def checkpoint_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The model's weights under the base checkpoint's names, LoRA deltas added, for vLLM or saving.

    The merge is computed on the side (W + delta), never in place, so the trained base weights
    do not drift through repeated merge/unmerge round-off.
    """
    if not is_lora(model):
        yield from ((name, p.detach()) for name, p in model.state_dict().items())
        return
    inner = model.base_model.model
    deltas: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, module in inner.named_modules():
            if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
                active = [a for a in module.active_adapters if a in getattr(module, "lora_A", {})]
                if active:
                    deltas[f"{name}.weight"] = sum(module.get_delta_weight(a) for a in active)
        for name, tensor in inner.state_dict().items():
            if "lora_" in name:
                continue
            name = name.replace(".base_layer.", ".")
            yield name, (tensor + deltas[name] if name in deltas else tensor).detach()


@dataclass
class TokenBatch:
    """Prompt + completion sequences, right-padded; `completion_mask` marks completion tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    # The rollout engine's log-prob of each next token (B, T-1), aligned with `token_logprobs`;
    # None when the engine gave none.
    rollout_logprobs: torch.Tensor | None = None

    @classmethod
    def build(
        cls,
        prompts: list[list[int]],
        completions: list[list[int]],
        pad_id: int,
        logprobs: list[list[float] | None] | None = None,
        masks: list[list[int] | None] | None = None,
    ) -> TokenBatch:
        """`masks[i]` (per completion token, optional): 0 leaves a token out of the loss (a tool's)."""
        width = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        completion = torch.zeros_like(ids)
        for row, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            ids[row, : len(p) + len(c)] = torch.tensor(p + c)
            attention[row, : len(p) + len(c)] = 1
            completion[row, len(p) : len(p) + len(c)] = 1
            if masks is not None and masks[row] is not None:
                completion[row, len(p) : len(p) + len(c)] = torch.tensor(masks[row], dtype=torch.long)
        rollout = None
        if logprobs is not None and all(lp is not None for lp in logprobs):
            rollout = torch.zeros((len(prompts), max(width - 1, 0)), dtype=torch.float32)
            for row, (p, lp) in enumerate(zip(prompts, logprobs, strict=True)):
                if lp:  # position j predicts token j + 1: completion token i sits at len(p) + i
                    rollout[row, len(p) - 1 : len(p) - 1 + len(lp)] = torch.tensor(lp, dtype=torch.float32)
        return cls(ids, attention, completion, rollout)

    def rows(self, index: slice) -> TokenBatch:
        rollout = None if self.rollout_logprobs is None else self.rollout_logprobs[index]
        return TokenBatch(
            self.input_ids[index], self.attention_mask[index], self.completion_mask[index], rollout
        )


def token_logprobs(
    model: Any, batch: TokenBatch, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each next token (B, T-1) at `temperature`, and the matching completion mask."""
    dev = next(model.parameters()).device
    ids = batch.input_ids.to(dev)
    logits = model(input_ids=ids, attention_mask=batch.attention_mask.to(dev)).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logp, batch.completion_mask[:, 1:].to(dev)
