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

import atexit
import contextlib
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

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


def leave(*, clean: bool) -> None:
    """Leave the process group. After a clean run every rank first waits for the others (no rank
    tears its connections down while another still sends on them); after an error it leaves at
    once, since the others may be gone."""
    if not dist.is_initialized():
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def exit_rank(code: int) -> NoReturn:
    """End a rank's process once its work is done and written: run the exit hooks (atexit: the
    sandbox pools, tool servers) and flush what Python buffers, then exit without the
    interpreter's teardown. A rank's communicators run C++ threads (gloo's, NCCL's) that the
    teardown can destroy while they still run, which aborts a finished rank (SIGABRT, "terminate
    called without an active exception") and makes torchrun fail the run."""
    atexit._run_exitfuncs()  # what a normal exit runs before the teardown
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


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


class TrainerRanks:
    """What every rank does together; rank 0 calls these from the loop, the others from `follow`.

    Rank 0 sends each collective's inputs first (`broadcast`), so the other ranks need nothing
    but this object: they build the same policy and optimizer, then answer rank 0's messages.
    """

    def __init__(self, config: Any, mesh: Any) -> None:
        self.config = config
        self.mesh = mesh
        self.rank, self.world_size = world()
        self.train_policy: Any = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.reference: Any = None

    # ------------------------------------------------------------ both
    def build(self, info: dict[str, Any], policy: Any) -> tuple[Any, torch.optim.Optimizer, Any]:
        """Shard `policy` (full weights, the checkpoint's when resuming) and make its optimizer."""
        from transformers import get_constant_schedule_with_warmup

        cfg = self.config
        self.train_policy = shard(policy, self.mesh)
        params = [p for p in self.train_policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=info["learning_rate"], weight_decay=cfg.trainer.weight_decay
        )
        self.scheduler = get_constant_schedule_with_warmup(self.optimizer, cfg.trainer.warmup_steps)
        if info.get("resume"):
            load_optimizer_state(self.train_policy, self.optimizer, info.get("optimizer") or {})
            self.scheduler.load_state_dict(info["scheduler"])
        return self.train_policy, self.optimizer, self.scheduler

    def _update(self, message: dict[str, Any]) -> dict[str, float]:
        from ..algo.update import ShardOf, grpo_update

        cfg = self.config
        batch, advantages, mask = message["batch"], message["advantages"], message["mask"]
        rows = shard_rows(batch.input_ids.shape[0], self.rank, self.world_size)
        whole = ShardOf(self.world_size, message["counted"], message["normalizer"])
        stats = grpo_update(
            self.train_policy, self.optimizer, self.scheduler, batch.rows(rows), advantages[rows], cfg.algo,
            reference=self.reference, temperature=cfg.rollout.temperature,
            grad_accumulation=cfg.trainer.grad_accumulation, max_grad_norm=cfg.trainer.max_grad_norm,
            sample_mask=mask[rows], shard=whole,
        )  # fmt: skip
        summed = all_reduce_sum({k: v for k, v in stats.items() if k not in ("grad_norm", "trained_samples")})
        return {**stats, **summed, "trained_samples": message["counted"]}

    # ------------------------------------------------------------ rank 0
    def broadcast_info(self, info: dict[str, Any]) -> None:
        """What the other ranks build from: the base model, the learning rate, the checkpoint."""
        broadcast({"kind": "build", **info})

    def update(
        self, batch: Any, advantages: torch.Tensor, mask: torch.Tensor
    ) -> tuple[dict[str, float], dict]:
        """The whole batch's update over every rank; (its stats, the new full weights). Rank 0."""
        from ..algo.update import batch_normalizer

        normalizer = batch_normalizer(batch, mask, self.config.algo.loss_aggregation)
        message = {
            "kind": "update", "batch": batch, "advantages": advantages, "mask": mask,
            "counted": int(mask.sum()), "normalizer": normalizer,
        }  # fmt: skip
        broadcast(message)
        stats = self._update(message)
        return stats, full_weights(self.train_policy)

    def optimizer_state(self) -> dict[str, Any]:
        broadcast({"kind": "optimizer"})
        return full_optimizer_state(self.train_policy, self.optimizer)

    def stop(self) -> None:
        broadcast({"kind": "stop"})

    # ------------------------------------------------------------ the others
    def follow(self) -> None:
        """Ranks 1..N-1: build what rank 0 says, then answer its messages until it says stop."""
        from .. import checkpoints
        from ..policy import is_lora, load_policy, load_reference, resolve_dtype

        info = broadcast()
        if info.get("kind") != "build":  # rank 0 stopped before building anything
            return
        cfg = self.config
        dtype = resolve_dtype(cfg.model.dtype)
        policy = load_policy(info["base"], cfg.model, dtype)
        if info.get("resume"):
            checkpoints.load_model_weights(policy, Path(info["resume"]))
        if cfg.algo.beta > 0 and not is_lora(policy):
            self.reference = load_reference(info["base"], dtype)
        self.build(info, policy)
        while True:
            message = broadcast()
            if message["kind"] == "update":
                self._update(message)
                full_weights(self.train_policy)
            elif message["kind"] == "optimizer":
                full_optimizer_state(self.train_policy, self.optimizer)
            elif message["kind"] == "stop":
                return
