"""Group-relative advantages against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from rftkit.trainer.algo.advantages import group_advantages, update_mask


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


def test_invalid_samples_are_left_out_of_the_group_mean_and_std() -> None:
    nan = float("nan")  # what Rollouts.rewards() gives a sample whose grading failed
    rewards = torch.tensor([[1.0, 0.0, 0.5, nan], [1.0, 0.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    adv = group_advantages(rewards, scale=True, eps=0.0, valid=valid)
    # group 1: the three valid rewards only: mean 0.5, unbiased std 0.5
    assert adv[0].tolist() == pytest.approx([1.0, -1.0, 0.0, 0.0], abs=1e-6)
    assert adv[1].tolist() == pytest.approx(group_advantages(rewards[1:], eps=0.0)[0].tolist())
    unscaled = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), scale=False, valid=valid[:1])
    assert unscaled[0].tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3, 0.0])  # not [0.75, -0.25, ...]


def test_a_group_with_fewer_than_two_valid_samples_gives_no_signal() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    valid = torch.tensor([[True, False, False, False], [False, True, True, False]])
    adv = group_advantages(rewards, valid=valid)
    assert adv[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert adv[1, 1] < 0 < adv[1, 2] and adv[1, 0] == 0 and adv[1, 3] == 0
    assert update_mask(valid).tolist() == [[False] * 4, [False, True, True, False]]


def test_a_valid_sample_needs_a_finite_reward() -> None:
    rewards = torch.tensor([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="non-finite"):
        group_advantages(rewards, valid=torch.tensor([[True, True]]))
    with pytest.raises(ValueError, match="valid must match"):
        group_advantages(torch.zeros(2, 2), valid=torch.ones(2, 3, dtype=torch.bool))
