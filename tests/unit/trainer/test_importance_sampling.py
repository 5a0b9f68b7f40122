"""Truncated importance sampling from the rollout engine's logprobs: weights, cap, logged effect."""

from __future__ import annotations

import math

import pytest
import torch
from rftkit.trainer.algo.loss import grpo_loss
from rftkit.trainer.policy import TokenBatch


def test_each_token_is_weighted_by_the_truncated_ratio() -> None:
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    rollout = torch.log(torch.tensor([[0.5, 0.25, 0.05]]))  # ratios 1, 2, 10
    mask = torch.ones(1, 3)
    adv = torch.tensor([1.0])
    plain, _ = grpo_loss(logp, logp, adv, mask)
    loss, stats = grpo_loss(logp, logp, adv, mask, rollout_logp=rollout, tis_cap=3.0)
    # pg per token is -1 (ratio 1 to the trainer's own old logp); weights 1, 2, min(10, 3)
    assert float(plain) == pytest.approx(-1.0)
    assert float(loss) == pytest.approx(-(1 + 2 + 3) / 3)
    assert stats.tis_ratio_mean == pytest.approx((1 + 2 + 10) / 3, rel=1e-5)
    assert stats.tis_clipped_fraction == pytest.approx(1 / 3)


def test_no_gradient_flows_through_the_weight() -> None:
    logp = torch.log(torch.tensor([[0.4, 0.6]])).requires_grad_()
    rollout = torch.log(torch.tensor([[0.2, 0.6]]))
    loss, _ = grpo_loss(logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 2),
                        rollout_logp=rollout, tis_cap=5.0)  # fmt: skip
    loss.backward()
    # d/dlogp of -(w * exp(logp - old)) at logp == old is -w / 2 tokens
    assert logp.grad.flatten().tolist() == pytest.approx([-2.0 / 2, -1.0 / 2], rel=1e-5)


def test_without_a_cap_or_logprobs_nothing_changes() -> None:
    logp = torch.log(torch.tensor([[0.5, 0.5]]))
    rollout = torch.log(torch.tensor([[0.1, 0.1]]))
    args = (logp, logp, torch.tensor([1.0]), torch.ones(1, 2))
    base, stats = grpo_loss(*args)
    assert float(grpo_loss(*args, rollout_logp=rollout, tis_cap=None)[0]) == float(base)
    assert stats.tis_ratio_mean == 1.0 and stats.tis_clipped_fraction == 0.0


def test_rollout_logprobs_line_up_with_the_trainers_positions() -> None:
    batch = TokenBatch.build([[1, 2], [3]], [[4, 5], [6, 7, 8]], 0, [[-0.1, -0.2], [-0.3, -0.4, -0.5]])
    assert batch.rollout_logprobs is not None
    mask = batch.completion_mask[:, 1:]
    picked = batch.rollout_logprobs[mask.bool()].tolist()
    assert picked == pytest.approx([-0.1, -0.2, -0.3, -0.4, -0.5])
    assert batch.rows(slice(1, 2)).rollout_logprobs.shape == (1, 3)
    assert TokenBatch.build([[1]], [[2]], 0, [None]).rollout_logprobs is None
    assert not math.isnan(float(batch.rollout_logprobs.sum()))
