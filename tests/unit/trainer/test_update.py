"""The GRPO update on a real (tiny) transformers model: micro-batching does not change the gradient,
the update raises the log-probability of better-than-average samples, LoRA weights map onto the
base checkpoint's names for vLLM, and the KL reference is the adapter-free model."""

from __future__ import annotations

import copy

import pytest
import torch
from rftkit.trainer.algo.advantages import group_advantages, update_mask
from rftkit.trainer.algo.update import grpo_update, reference_logprobs
from rftkit.trainer.config import AlgoConfig, LoraConfig, ModelConfig
from rftkit.trainer.policy import TokenBatch, checkpoint_weights, token_logprobs


def _model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def _batch() -> tuple[TokenBatch, torch.Tensor]:
    prompts = [[1, 5, 6], [1, 7], [1, 5, 6], [1, 7, 8, 9]]
    completions = [[10, 11, 2], [12, 2], [13], [14, 15, 16, 2]]
    return TokenBatch.build(prompts, completions, pad_id=0), torch.tensor([1.0, -1.0, 0.5, -0.5])


def _step(model, parts: int, algo: AlgoConfig) -> torch.nn.Module:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    batch, adv = _batch()
    grpo_update(model, optimizer, scheduler, batch, adv, algo, grad_accumulation=parts, max_grad_norm=1e9)
    return model


@pytest.mark.parametrize("aggregation", ["token", "sequence"])
def test_micro_batches_give_the_same_update(aggregation: str) -> None:
    algo = AlgoConfig(loss_aggregation=aggregation)
    base = _model()
    whole, split = _step(copy.deepcopy(base), 1, algo), _step(copy.deepcopy(base), 3, algo)
    for (name, a), (_, b) in zip(whole.named_parameters(), split.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_update_moves_probability_towards_positive_advantages() -> None:
    model = _model()
    batch, _ = _batch()
    with torch.no_grad():
        before, mask = token_logprobs(model, batch)
    _step(model, 1, AlgoConfig())
    with torch.no_grad():
        after, _ = token_logprobs(model, batch)
    change = ((after - before) * mask).sum(dim=1)
    assert change[0] > 0 and change[1] < 0


def test_lora_weights_map_to_base_names_and_reference_is_the_base() -> None:
    from peft import LoraConfig as PeftLora
    from peft import get_peft_model

    base = _model()
    names = set(base.state_dict())
    plain = {k: v.clone() for k, v in base.state_dict().items()}
    spec = ModelConfig(path="unused", lora=LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    peft_config = PeftLora(
        r=spec.lora.r,
        lora_alpha=spec.lora.alpha,
        target_modules=spec.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    lora = get_peft_model(base, peft_config)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.fill_(0.1)
    merged = dict(checkpoint_weights(lora))
    assert set(merged) == names
    q = "model.layers.0.self_attn.q_proj.weight"
    a = lora.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight
    b = lora.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight
    assert torch.allclose(merged[q], plain[q] + (8 / 4) * b @ a, atol=1e-6)
    stored = dict(lora.named_parameters())["base_model.model." + q.replace(".weight", ".base_layer.weight")]
    assert torch.equal(stored, plain[q])  # the merge happened on the side: no drift in the trained weights
    batch, _ = _batch()
    reference = _model()  # same seed: the weights without the adapter
    slices = [slice(0, 4)]
    with torch.no_grad():
        expected = token_logprobs(reference, batch)[0]
    assert torch.allclose(reference_logprobs(lora, None, batch, slices, 1.0), expected, atol=1e-6)
    assert not torch.allclose(token_logprobs(lora, batch)[0], expected, atol=1e-3)


def _adamw(model) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


@pytest.mark.parametrize("aggregation", ["token", "sequence"])
def test_invalid_samples_are_left_out_of_the_advantages_and_the_loss(aggregation: str) -> None:
    """A group of 4 with 1 invalid sample trains exactly as its 3 valid samples alone would."""
    nan = float("nan")
    rewards = torch.tensor([[1.0, 0.0, 0.5, nan], [nan, 1.0, nan, nan]])  # group 2: one valid sample
    valid = ~torch.isnan(rewards)
    advantages = group_advantages(rewards, valid=valid, eps=0.0)
    keep = update_mask(valid)
    assert advantages[0].tolist() == pytest.approx([1.0, -1.0, 0.0, 0.0])  # mean 0.5, std 0.5 of the 3
    assert advantages[1].tolist() == [0.0] * 4
    assert keep.tolist() == [[True, True, True, False], [False] * 4]  # loss weights
    prompts = [[1, 5, 6]] * 4 + [[1, 7]] * 4
    completions = [[10, 11, 2], [12, 2], [13, 14], [15, 16, 17, 2], [18, 2], [19], [20, 21], [22, 2]]
    batch = TokenBatch.build(prompts, completions, pad_id=0)
    algo = AlgoConfig(loss_aggregation=aggregation)
    base = _model()
    masked, alone = copy.deepcopy(base), copy.deepcopy(base)
    optimizer, scheduler = _adamw(masked)
    stats = grpo_update(masked, optimizer, scheduler, batch, advantages.flatten(), algo, grad_accumulation=3,
                        max_grad_norm=1e9, sample_mask=keep.flatten())  # fmt: skip
    assert stats["trained_samples"] == 3
    optimizer, scheduler = _adamw(alone)
    valid_only = TokenBatch.build(prompts[:3], completions[:3], pad_id=0)
    grpo_update(alone, optimizer, scheduler, valid_only, advantages[0, :3], algo, max_grad_norm=1e9)
    moved = False
    for (name, a), (_, b), (_, c) in zip(
        masked.named_parameters(), alone.named_parameters(), base.named_parameters(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name
        moved = moved or not torch.equal(a, c)
    assert moved


def test_a_batch_with_nothing_to_learn_from_changes_nothing() -> None:
    """No sample counted (every group has fewer than two valid): no optimizer or scheduler step at all."""
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer, scheduler = _adamw(model)  # weight decay would move the weights on any step
    batch, adv = _batch()
    stats = grpo_update(model, optimizer, scheduler, batch, adv, AlgoConfig(),
                        sample_mask=torch.zeros(4, dtype=torch.bool))  # fmt: skip
    assert stats["trained_samples"] == 0 and stats["loss"] == 0.0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not optimizer.state and scheduler.last_epoch == 0
    with pytest.raises(ValueError, match="sample_mask"):
        grpo_update(model, optimizer, scheduler, batch, adv, AlgoConfig(), sample_mask=torch.ones(3))
