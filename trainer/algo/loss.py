"""The GRPO policy loss: clipped importance ratio times advantage, plus beta * KL to a reference.

Per token t of completion i:  ratio = exp(logp - old_logp)
    pg  = -min(ratio * A_i, clip(ratio, 1 - eps, 1 + eps_high) * A_i)
    kl  = exp(ref - logp) - (ref - logp) - 1          (k3 estimator, >= 0)
    l_t = pg + beta * kl
Aggregation: "token" sums l_t over every completion token and divides by `normalizer` (the
token count of the whole batch, so gradient accumulation over micro-batches gives the same
gradient as one big batch); "sequence" averages l_t within each completion, then sums over
completions and divides by `normalizer` (the number of completions in the whole batch).
`sample_mask` (B,) says which completions count: one left out (no valid reward, or in a group
that gives no update) contributes nothing, neither to the loss nor to its normaliser.

Off-policy correction (truncated importance sampling, as verl's `tis_imp_ratio_cap`): the
rollout engine sampled with its own weights (older by the batch's staleness, and numerically
not the trainer's), so with `rollout_logp` (B, T) each token's pg term is weighted by
    w = min(exp(old_logp - rollout_logp), tis_cap)        (no gradient through w)
`tis_ratio_mean` is the mean of the untruncated ratio, `tis_clipped_fraction` the share of
tokens whose ratio was over the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossStats:
    clip_fraction: float
    kl: float
    ratio_mean: float
    tis_ratio_mean: float = 1.0
    tis_clipped_fraction: float = 0.0


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    aggregation: str = "token",
    normalizer: float | None = None,
    sample_mask: torch.Tensor | None = None,
    rollout_logp: torch.Tensor | None = None,
    tis_cap: float | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """Loss over completion tokens. logp/old_logp/ref_logp/mask: (B, T); advantages, sample_mask: (B,)."""
    mask = mask.to(logp.dtype)
    if sample_mask is not None:
        mask = mask * sample_mask.to(device=mask.device, dtype=torch.bool).unsqueeze(1)
    ratio = torch.exp(logp - old_logp)
    high = epsilon if epsilon_high is None else epsilon_high
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    tis_ratio = None
    if rollout_logp is not None and tis_cap is not None:
        with torch.no_grad():
            tis_ratio = torch.exp(old_logp.detach() - rollout_logp.to(old_logp.device))
        per_token = per_token * torch.clamp(tis_ratio, max=tis_cap)
    kl = torch.zeros_like(logp)
    if beta > 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp")
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1.0
        per_token = per_token + beta * kl
    if aggregation == "token":
        total = (per_token * mask).sum()
        loss = total / (normalizer if normalizer is not None else mask.sum().clamp(min=1.0))
    elif aggregation == "sequence":
        per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        if normalizer is None:
            kept = per_seq.numel() if sample_mask is None else int(sample_mask.bool().sum())
            normalizer = float(max(kept, 1))
        loss = per_seq.sum() / normalizer
    else:
        raise ValueError(f"unknown loss aggregation {aggregation!r} (token | sequence)")
    with torch.no_grad():
        count = mask.sum().clamp(min=1.0)
        was_clipped = (clipped < unclipped).to(mask.dtype) * mask
        stats = LossStats(
            clip_fraction=float(was_clipped.sum() / count),
            kl=float((kl * mask).sum() / count),
            ratio_mean=float((ratio * mask).sum() / count),
        )
        if tis_ratio is not None:
            stats.tis_ratio_mean = float((tis_ratio * mask).sum() / count)
            stats.tis_clipped_fraction = float(((tis_ratio > tis_cap).to(mask.dtype) * mask).sum() / count)
    return loss, stats
