"""Group-relative advantages (GRPO): each sample's reward against the other samples of its prompt.

Samples without a valid reward (the grading failed: see `rftkit.core.flags.reward_is_valid`)
are left out: the group's mean and std are those of its valid samples, an invalid sample gets
advantage 0 and loss weight 0, and a group with fewer than two valid samples gives no update.
"""

from __future__ import annotations

import torch


def _check(rewards: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, samples>=2), got {tuple(rewards.shape)}")
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    if valid.shape != rewards.shape:
        raise ValueError(f"valid must match rewards {tuple(rewards.shape)}, got {tuple(valid.shape)}")
    valid = valid.to(device=rewards.device, dtype=torch.bool)
    if not torch.isfinite(rewards[valid]).all():
        raise ValueError("a sample marked valid has a non-finite reward")
    return valid


def update_mask(valid: torch.Tensor) -> torch.Tensor:
    """The samples the loss counts (loss weight 1, the rest 0): valid, in a group with two or more valid."""
    valid = valid.to(torch.bool)
    return valid & (valid.sum(dim=1, keepdim=True) >= 2)


def group_advantages(
    rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Advantages for rewards of shape (prompts, samples_per_prompt); `valid` (same shape) masks samples.

    A = r - mean(group); with `scale`, A / (std(group) + eps), std unbiased as in GRPO, both over the
    group's valid samples only. A group whose valid samples all scored the same, or that has fewer
    than two valid samples, gets zero advantage (no signal, no update); an invalid sample gets 0.
    Rewards of invalid samples are never read (they may be NaN).
    """
    valid = _check(rewards, valid)
    weights = update_mask(valid).to(rewards.dtype)
    count = weights.sum(dim=1, keepdim=True)
    safe = torch.where(weights > 0, rewards, torch.zeros_like(rewards))
    mean = safe.sum(dim=1, keepdim=True) / count.clamp(min=1.0)
    centered = (safe - mean) * weights
    if not scale:
        return centered
    std = torch.sqrt((centered**2).sum(dim=1, keepdim=True) / (count - 1.0).clamp(min=1.0))
    return torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered))
