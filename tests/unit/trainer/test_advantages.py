"""Group-relative advantages against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from rftkit.trainer.algo.advantages import group_advantages


def test_std_scaled_advantages_match_hand_values() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    adv = group_advantages(rewards, scale=True, eps=0.0)
    # group 1: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = 0.57735
    expected = 0.5 / math.sqrt(1.0 / 3.0)
    assert adv[0].tolist() == pytest.approx([expected, -expected, -expected, expected], abs=1e-6)
    # a group that scored the same everywhere carries no signal
    assert adv[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_unscaled_advantages_are_centred_rewards() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert group_advantages(rewards, scale=False)[0].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_eps_keeps_a_tiny_spread_finite() -> None:
    rewards = torch.tensor([[1e-9, 0.0]])
    assert torch.isfinite(group_advantages(rewards)).all()


def test_needs_groups_of_two_or_more() -> None:
    with pytest.raises(ValueError, match="samples>=2"):
        group_advantages(torch.tensor([[1.0], [0.0]]))
