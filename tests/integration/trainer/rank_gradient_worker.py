"""torchrun worker for test_ranks.py: one GRPO update's gradient on a fixed batch, saved by rank 0.

    torchrun --nproc-per-node N rank_gradient_worker.py MODEL_DIR OUT.pt

With N > 1 the policy is FSDP2-sharded over the ranks and each rank takes its rows (as the
trainer's ranks do); with N == 1 it is the plain single-process update.
"""

from __future__ import annotations

import sys

import torch
from rftkit.trainer.algo.update import ShardOf, batch_normalizer, grpo_update
from rftkit.trainer.config import AlgoConfig
from rftkit.trainer.policy import TokenBatch
from rftkit.trainer.roles import ranks
from transformers import AutoModelForCausalLM


def main() -> None:
    model_dir, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    rank, world_size = ranks.world()
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    prompts = [
        torch.randint(5, 300, (int(n),), generator=generator).tolist() for n in (3, 5, 4, 6, 2, 5, 3, 4)
    ]
    completions = [
        torch.randint(5, 300, (int(n),), generator=generator).tolist() for n in (4, 2, 3, 4, 1, 4, 2, 3)
    ]
    batch = TokenBatch.build(prompts, completions, 0)
    advantages = torch.randn(8, generator=generator)
    mask = torch.tensor([True, True, False, True, True, True, True, False])
    algo = AlgoConfig()
    shard = None
    if world_size > 1:
        mesh = ranks.init()
        ranks.shard(policy, mesh)
        shard = ShardOf(world_size, int(mask.sum()), batch_normalizer(batch, mask, algo.loss_aggregation))
        rows = ranks.shard_rows(8, rank, world_size)
        batch, advantages, mask = batch.rows(rows), advantages[rows], mask[rows]
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    grpo_update(policy, optimizer, scheduler, batch, advantages, algo, grad_accumulation=2,
                max_grad_norm=1e9, sample_mask=mask, shard=shard)  # fmt: skip
    grads = {}
    for name, param in policy.named_parameters():
        grad = param.grad
        grads[name] = (grad.full_tensor() if hasattr(grad, "full_tensor") else grad).detach().clone()
    if rank == 0:
        torch.save(grads, out)
    ranks.leave(clean=True)  # as the trainer's ranks leave (roles/rank.py)


if __name__ == "__main__":
    main()
    ranks.exit_rank(0)
