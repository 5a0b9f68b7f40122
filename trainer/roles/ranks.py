"""Trainer ranks under torchrun: torch.distributed (gloo on CPU, NCCL on GPUs), FSDP2 for the policy.

    torchrun --nproc-per-node 2 -m rftkit.trainer.roles.rank --config DIR/run_config.json --output-dir DIR

`rft train` with `cluster.trainer_ranks: N > 1` starts exactly that (`launch_command`). Rank 0 is
the orchestrator as well as a trainer rank: it runs the loop (rollouts, grading, events,
checkpoints) and, for every update, broadcasts the batch; each rank takes its share of the rows
(`shard_rows`), the policy is `fully_shard`ed over all ranks (FSDP2 reduce-scatters the gradients)
and the update is the whole batch's (see `algo.update.ShardOf`). After the update every rank joins
in gathering the full weights to rank 0 (`full_weights`), which pushes them to the rollout engine
and saves checkpoints. A rank that dies makes the others' next collective fail (gloo/NCCL raise,
torchrun stops the rest and exits non-zero); the same command resumes from the newest checkpoint.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

COLLECTIVE_TIMEOUT = timedelta(minutes=30)  # a rank waits this long for the others (rollouts, grading)


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def distributed() -> bool:
    return world()[1] > 1


def init() -> Any:
    """The process group (NCCL on GPUs, gloo on CPU) and a 1-D device mesh over every rank."""
    from torch.distributed.device_mesh import init_device_mesh

    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if gpu else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return init_device_mesh("cuda" if gpu else "cpu", (dist.get_world_size(),))


def shard(model: Any, mesh: Any) -> Any:
    """FSDP2: each transformer block its own unit, then the root (embeddings, norm, head)."""
    from torch.distributed.fsdp import fully_shard

    inner = model.base_model.model if hasattr(model, "peft_config") else model
    blocks = getattr(getattr(inner, "model", None), "layers", None) or []
    for block in blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def shard_rows(rows: int, rank: int, world_size: int) -> slice:
    """This rank's contiguous rows of a batch of `rows` (sizes differ by at most one)."""
    bounds = [round(i * rows / world_size) for i in range(world_size + 1)]
    return slice(bounds[rank], bounds[rank + 1])


def full_weights(model: Any) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on rank 0, on CPU; empty on the other ranks. Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model: Any, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full optimizer state on rank 0 (for a checkpoint); empty elsewhere. Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, optimizer, options=options)


def load_optimizer_state(model: Any, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Rank 0's full optimizer state (from a checkpoint) into every rank's shard. Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_optimizer_state_dict(model, optimizer, state, options=options)


def broadcast(obj: Any = None) -> Any:
    """Rank 0's `obj` on every rank (pickled, through the process group)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if torch.cuda.is_available():
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist(), strict=True))


def launch_command(ranks: int, config_path: Path, output_dir: Path) -> list[str]:
    """torchrun (torch.distributed.run) starting `ranks` trainer ranks on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
        "--max-restarts=0", "-m", "rftkit.trainer.roles.rank", "--config", str(config_path),
        "--output-dir", str(output_dir),
    ]  # fmt: skip
