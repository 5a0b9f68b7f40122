"""GRPO: group-relative advantages and the clipped policy loss with optional KL to a reference."""

from .advantages import group_advantages
from .loss import LossStats, grpo_loss

__all__ = ["LossStats", "group_advantages", "grpo_loss"]
