"""vLLM (colocated, in-process) samples from the trainer's weights after a sync: greedy tokens and
log-probabilities match transformers' after the weights are perturbed (a stale layer would not)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")

from rftkit.trainer.chat import chat_prompt_ids  # noqa: E402
from rftkit.trainer.policy import TokenBatch, checkpoint_weights, token_logprobs  # noqa: E402
from rftkit.trainer.rollout.engine import SamplingSettings  # noqa: E402
from rftkit.trainer.rollout.vllm_engine import VLLMEngine  # noqa: E402

pytestmark = pytest.mark.timeout(300)

PROMPTS = [[{"role": "user", "content": "Which word is first?\nbako,mire,tupo"}],
           [{"role": "user", "content": "Which word is last?\ngani,vazu,defo,ruki"}]]  # fmt: skip


def _greedy_check(engine: VLLMEngine, model, tokenizer) -> float:
    """Largest |logprob difference| between vLLM's greedy samples and transformers on the same tokens."""
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
    return worst


def test_weights_sync_into_vllm(tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    engine = VLLMEngine(str(tiny_model_dir), dtype="float32", seed=0)
    try:
        assert _greedy_check(engine, model, tokenizer) < 1e-4
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
            model.lm_head.weight.mul_(3.0)  # the output layer must not stay stale
        engine.load_weights(checkpoint_weights(model))
        assert _greedy_check(engine, model, tokenizer) < 1e-4
    finally:
        engine.close()
