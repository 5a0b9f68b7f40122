"""vLLM (colocated, in-process) samples from the trainer's weights after a sync: greedy tokens and
log-probabilities match transformers' after the weights are perturbed (a stale layer would not)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")

from rftkit.trainer.chat import chat_prompt_ids
from rftkit.trainer.policy import TokenBatch, checkpoint_weights, token_logprobs
from rftkit.trainer.rollout.engine import SamplingSettings
from rftkit.trainer.rollout.vllm_engine import VLLMEngine

pytestmark = pytest.mark.timeout(300)

PROMPTS = [[{"role": "user", "content": "Which word is first?\nbako,mire,tupo"}],
           [{"role": "user", "content": "Which word is last?\ngani,vazu,defo,ruki"}]]  # fmt: skip


def _greedy_check(engine: VLLMEngine, model, tokenizer) -> tuple[float, list[float]]:
    """Largest |logprob difference| between vLLM's greedy samples and transformers on the same tokens,
    and vLLM's log-probabilities."""
    ids = [chat_prompt_ids(tokenizer, p) for p in PROMPTS]
    groups = engine.generate(ids, SamplingSettings(n=1, temperature=0.0, max_tokens=8, logprobs=True, seed=0))
    completions = [g[0] for g in groups]
    batch = TokenBatch.build(ids, [c.token_ids for c in completions], tokenizer.pad_token_id)
    with torch.no_grad():
        logp, mask = token_logprobs(model, batch)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    worst = 0.0
    for row, completion in enumerate(completions):
        start = len(ids[row])
        hf = logp[row, start - 1 : start - 1 + len(completion.token_ids)]
        assert mask[row, start - 1 : start - 1 + len(completion.token_ids)].all()
        worst = max(worst, float((hf - torch.tensor(completion.logprobs)).abs().max()))
        # greedy: each vLLM token is transformers' argmax at that position
        hf_argmax = logits[row, start - 1 : start - 1 + len(completion.token_ids)].argmax(-1).tolist()
        assert completion.token_ids == hf_argmax
    return worst, [lp for c in completions for lp in c.logprobs]


def test_weights_sync_into_vllm(tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    engine = VLLMEngine(str(tiny_model_dir), dtype="float32", seed=0)
    try:
        gap, before = _greedy_check(engine, model, tokenizer)
        assert gap < 1e-4
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
            model.lm_head.weight.mul_(3.0)  # the output layer must not stay stale
        engine.load_weights(checkpoint_weights(model))
        gap, after = _greedy_check(engine, model, tokenizer)
        assert gap < 1e-4
        # the perturbation moved the log-probs far more than the tolerance: a stale engine would fail
        assert max(abs(a - b) for a, b in zip(before, after, strict=False)) > 0.05
    finally:
        engine.close()
