"""GRPO: group-relative advantages and the clipped policy loss with optional KL to a reference."""

from rftkit.trainer.algo.advantages import group_advantages
from rftkit.trainer.algo.loss import LossStats, grpo_loss

__all__ = ["LossStats", "group_advantages", "grpo_loss"]
