"""Checkpoints: atomic folders, the best three by valid reward plus the newest kept, state round trip."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from rftkit.trainer import checkpoints


@pytest.fixture(scope="module")
def model_and_tokenizer():
    from rftkit.trainer.tiny_model import train_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(["a small corpus", "for a tiny tokenizer"], vocab_size=300)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, tie_word_embeddings=False)  # fmt: skip
    return LlamaForCausalLM(config), tokenizer


def test_keeps_best_three_and_the_newest(tmp_path: Path, model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    rewards = {5: 0.1, 10: 0.5, 15: 0.3, 20: 0.7, 25: 0.2, 30: 0.05}
    for step, value in rewards.items():
        checkpoints.save_checkpoint(tmp_path, step, model, tokenizer, {"step": step}, value)
        checkpoints.prune(tmp_path, keep_best=3)
    kept = [c.step for c in checkpoints.list_checkpoints(tmp_path)]
    assert kept == [10, 15, 20, 30]  # best three (20, 10, 15) and the newest (30) to resume from
    assert not list(tmp_path.glob(".tmp_*"))


def test_half_written_checkpoints_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".tmp_step_000040" / "model").mkdir(parents=True)
    (tmp_path / "step_000050").mkdir()  # no meta.json: never completed
    assert checkpoints.list_checkpoints(tmp_path) == []


def test_state_and_weights_round_trip(tmp_path: Path, model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    random.seed(1)
    torch.manual_seed(1)
    path = checkpoints.save_checkpoint(tmp_path, 7, model, tokenizer, {"step": 7, "best": 0.4}, 0.4)
    expected = (random.random(), float(torch.rand(1)))
    random.seed(99)
    torch.manual_seed(99)
    state = checkpoints.load_state(path)
    assert state["step"] == 7 and state["best"] == 0.4
    assert (random.random(), float(torch.rand(1))) == expected
    saved = model.lm_head.weight.detach().clone()
    with torch.no_grad():
        model.lm_head.weight.zero_()
    checkpoints.load_model_weights(model, path)
    assert torch.equal(model.lm_head.weight, saved)
