"""Group-relative advantages (GRPO): each sample's reward against the other samples of its prompt."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """Advantages for rewards of shape (prompts, samples_per_prompt).

    A = r - mean(group); with `scale`, A / (std(group) + eps), std unbiased as in GRPO. A group
    whose samples all scored the same gets zero advantage (no signal, no update).
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, samples>=2), got {tuple(rewards.shape)}")
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centered
    std = rewards.std(dim=1, keepdim=True)
    return torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered))
