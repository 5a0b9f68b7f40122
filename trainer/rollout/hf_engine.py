"""transformers' `generate` as the fallback rollout engine (no vLLM, or `rollout.engine: transformers`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .engine import Completion, SamplingSettings


class HFEngine:
    """Samples from `model` (the live policy: no weight sync needed) or a model loaded from `model_dir`."""

    def __init__(self, model_dir: str, *, dtype: str, model: Any = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = model or AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self.owns_model = model is None

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        import torch

        tok = self.tokenizer
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), tok.pad_token_id)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding, as generate expects
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            out = self.model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=True,
                temperature=settings.temperature,
                top_p=settings.top_p,
                top_k=0,
                max_new_tokens=settings.max_tokens,
                num_return_sequences=settings.n,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        self.model.train(was_training)
        result: list[list[Completion]] = [[] for _ in prompts]
        for row, sequence in enumerate(out[:, width:].tolist()):
            tokens: list[int] = []
            finish = "length"
            for token in sequence:
                tokens.append(token)
                if token == tok.eos_token_id:
                    finish = "stop"
                    break
            text = tok.decode(tokens, skip_special_tokens=True)
            result[row // settings.n].append(Completion(tokens, text, None, finish))
        return result

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        if self.owns_model:
            self.model.load_state_dict(dict(named_tensors), strict=False)

    def close(self) -> None:
        self.model = None
