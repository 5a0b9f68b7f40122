"""One GRPO policy update over a batch of graded completions (micro-batched, optionally repeated)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch

from ..config import AlgoConfig
from ..policy import TokenBatch, is_lora, token_logprobs
from .loss import grpo_loss


def _micro_slices(rows: int, parts: int) -> list[slice]:
    parts = max(1, min(parts, rows))
    bounds = [round(i * rows / parts) for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in pairwise(bounds) if hi > lo]


@torch.no_grad()
def _logprobs(model: Any, batch: TokenBatch, slices: list[slice], temperature: float) -> torch.Tensor:
    return torch.cat([token_logprobs(model, batch.rows(s), temperature)[0] for s in slices])


def reference_logprobs(
    policy: Any, reference: Any, batch: TokenBatch, slices: list[slice], temperature: float
) -> torch.Tensor:
    """The reference model's log-probs: the frozen copy, or the LoRA policy with its adapter disabled."""
    if reference is not None:
        return _logprobs(reference, batch, slices, temperature)
    context = policy.disable_adapter() if is_lora(policy) else contextlib.nullcontext()
    with context:
        return _logprobs(policy, batch, slices, temperature)


@dataclass(frozen=True)
class ShardOf:
    """What a rank needs to know about the whole batch it holds a shard of."""

    world_size: int
    counted: int  # completions counted in the whole batch
    normalizer: float  # the whole batch's loss normaliser (tokens, or completions)


def batch_normalizer(batch: TokenBatch, sample_mask: torch.Tensor, aggregation: str) -> float:
    """The loss normaliser of a whole batch (see `loss`): counted tokens, or counted completions."""
    counted = sample_mask.bool().cpu()
    if aggregation == "token":
        return float((batch.completion_mask[:, 1:].float() * counted.unsqueeze(1)).sum().clamp(min=1.0))
    return float(counted.sum())


def grpo_update(
    policy: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batch: TokenBatch,
    advantages: torch.Tensor,
    algo: AlgoConfig,
    *,
    reference: Any = None,
    temperature: float = 1.0,
    grad_accumulation: int = 1,
    max_grad_norm: float = 1.0,
    sample_mask: torch.Tensor | None = None,
    shard: ShardOf | None = None,
) -> dict[str, float]:
    """`algo.num_iterations` optimizer steps on `batch`; returns loss, clip fraction, KL, grad norm,
    and the truncated importance sampling's mean ratio and clipped fraction (see `loss`) when
    `batch.rollout_logprobs` is set and `algo.tis_cap` is not None.

    `sample_mask` (B,) picks the completions the loss counts (see `advantages.update_mask`); the
    others contribute nothing and the loss is normalised over the counted ones. With none counted,
    nothing changes: no optimizer or scheduler step (AdamW's momentum and weight decay would
    otherwise still move the weights).

    `shard`: this rank's rows of a batch split over trainer ranks (FSDP2 averages gradients over
    ranks; the loss is normalised over the whole batch and scaled by the world size, so the ranks
    together take the gradient of the whole batch). Every rank runs the same passes.
    """
    rows = batch.input_ids.shape[0]
    counted = torch.ones(rows, dtype=torch.bool) if sample_mask is None else sample_mask.bool().cpu()
    if counted.shape != (rows,):
        raise ValueError(f"sample_mask must have shape ({rows},), got {tuple(counted.shape)}")
    totals = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "grad_norm": 0.0, "trained_samples": 0}
    tis = batch.rollout_logprobs is not None and algo.tis_cap is not None
    if tis:
        totals.update(tis_ratio_mean=0.0, tis_clipped_fraction=0.0)
    if (shard.counted if shard is not None else int(counted.sum())) == 0:
        return totals
    totals["trained_samples"] = int(counted.sum()) if shard is None else shard.counted
    slices = _micro_slices(rows, grad_accumulation)
    mask_all = batch.completion_mask[:, 1:].float() * counted.unsqueeze(1).to(batch.completion_mask.device)
    if shard is not None:
        normalizer = shard.normalizer
    elif algo.loss_aggregation == "token":
        normalizer = float(mask_all.sum().clamp(min=1.0))
    else:
        normalizer = float(counted.sum())
    grad_scale = 1.0 if shard is None else float(shard.world_size)
    old = _logprobs(policy, batch, slices, temperature) if algo.num_iterations > 1 else None
    ref = reference_logprobs(policy, reference, batch, slices, temperature) if algo.beta > 0 else None
    dev = next(policy.parameters()).device
    advantages = advantages.to(dev)
    counted = counted.to(dev)
    policy.train()
    for _ in range(algo.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        for part in slices:
            logp, mask = token_logprobs(policy, batch.rows(part), temperature)
            loss, stats = grpo_loss(
                logp,
                logp.detach() if old is None else old[part],
                advantages[part],
                mask,
                epsilon=algo.epsilon,
                epsilon_high=algo.epsilon_high,
                beta=algo.beta,
                ref_logp=None if ref is None else ref[part],
                aggregation=algo.loss_aggregation,
                normalizer=normalizer,
                sample_mask=counted[part],
                rollout_logp=batch.rows(part).rollout_logprobs if tis else None,
                tis_cap=algo.tis_cap,
            )
            (loss * grad_scale).backward()
            share = float(counted[part].sum()) / totals["trained_samples"]
            totals["loss"] += float(loss.detach()) / algo.num_iterations
            totals["clip_fraction"] += stats.clip_fraction * share / algo.num_iterations
            totals["kl"] += stats.kl * share / algo.num_iterations
            if tis:
                totals["tis_ratio_mean"] += stats.tis_ratio_mean * share / algo.num_iterations
                totals["tis_clipped_fraction"] += stats.tis_clipped_fraction * share / algo.num_iterations
        norm = torch.nn.utils.clip_grad_norm_(
            [p for p in policy.parameters() if p.requires_grad], max_grad_norm
        )
        totals["grad_norm"] += float(norm) / algo.num_iterations
        optimizer.step()
        scheduler.step()
    return totals
