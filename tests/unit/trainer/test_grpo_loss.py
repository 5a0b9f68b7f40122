"""The clipped GRPO loss, its KL term and both aggregations against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from rftkit.trainer.algo.loss import grpo_loss


def test_clipping_takes_the_pessimistic_side() -> None:
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5]]))
    mask = torch.ones(1, 2)
    loss, stats = grpo_loss(logp, old, torch.tensor([2.0]), mask, epsilon=0.2)
    # token 1: min(1.5*2, 1.2*2) = 2.4 ; token 2: min(0.5*2, 0.8*2) = 1.0 ; mean of negatives
    assert float(loss) == pytest.approx(-(2.4 + 1.0) / 2)
    assert stats.clip_fraction == pytest.approx(0.5)
    loss, stats = grpo_loss(logp, old, torch.tensor([-1.0]), mask, epsilon=0.2)
    # negative advantage: min(-1.5, -1.2) = -1.5 ; min(-0.5, -0.8) = -0.8
    assert float(loss) == pytest.approx((1.5 + 0.8) / 2)
    assert stats.clip_fraction == pytest.approx(0.5)


def test_asymmetric_clip_range() -> None:
    old = torch.zeros(1, 1)
    logp = torch.log(torch.tensor([[1.5]]))
    loss, _ = grpo_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), epsilon=0.2, epsilon_high=0.28)
    assert float(loss) == pytest.approx(-1.28)


def test_kl_term_is_k3_times_beta() -> None:
    logp = torch.zeros(1, 1)
    ref = torch.full((1, 1), math.log(2.0))
    loss, stats = grpo_loss(
        logp, logp.detach(), torch.tensor([0.0]), torch.ones(1, 1), beta=0.5, ref_logp=ref
    )
    kl = 2.0 - math.log(2.0) - 1.0
    assert stats.kl == pytest.approx(kl)
    assert float(loss) == pytest.approx(0.5 * kl)
    with pytest.raises(ValueError):
        grpo_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), beta=0.5)


def test_token_and_sequence_aggregation_differ_as_defined() -> None:
    old = torch.zeros(2, 2)
    logp = torch.zeros(2, 2, requires_grad=True)  # ratio 1 everywhere: per-token loss = -A
    adv = torch.tensor([1.0, -3.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    token, _ = grpo_loss(logp, old, adv, mask, aggregation="token")
    assert float(token) == pytest.approx((-1 - 1 + 3) / 3)
    sequence, _ = grpo_loss(logp, old, adv, mask, aggregation="sequence")
    assert float(sequence) == pytest.approx((-1 + 3) / 2)
    # the gradient of the token loss w.r.t. each log-prob is -A / (number of tokens); masked tokens get none
    token.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([-1 / 3, -1 / 3, 1.0, 0.0])


def test_external_normalizer_for_micro_batches() -> None:
    old = torch.zeros(1, 2)
    loss, _ = grpo_loss(old.clone(), old, torch.tensor([1.0]), torch.ones(1, 2), normalizer=8.0)
    assert float(loss) == pytest.approx(-2 / 8)


def test_unknown_aggregation_is_an_error() -> None:
    with pytest.raises(ValueError, match="aggregation"):
        grpo_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), aggregation="x")


@pytest.mark.parametrize("aggregation", ["token", "sequence"])
def test_a_masked_sample_contributes_nothing(aggregation: str) -> None:
    old = torch.zeros(3, 2)
    logp = torch.zeros(3, 2, requires_grad=True)
    adv = torch.tensor([1.0, -3.0, 100.0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    keep = torch.tensor([True, True, False])
    masked, stats = grpo_loss(logp, old, adv, mask, aggregation=aggregation, sample_mask=keep, beta=0.1,
                              ref_logp=torch.full((3, 2), -1.0))  # fmt: skip
    kept, _ = grpo_loss(logp[:2], old[:2], adv[:2], mask[:2], aggregation=aggregation, beta=0.1,
                        ref_logp=torch.full((2, 2), -1.0))  # fmt: skip
    assert float(masked) == pytest.approx(float(kept))  # normalised over the kept samples only
    masked.backward()
    assert logp.grad[2].tolist() == [0.0, 0.0]
    assert stats.kl == pytest.approx(math.exp(-1.0) + 1.0 - 1.0)
