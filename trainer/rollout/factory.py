"""Build a rollout engine: vLLM's or transformers' generate in process, or vLLM rollout servers.

`make_server_engine` starts (or reaches) the rollout servers and picks their weight sync
(`rollout.weight_sync`): vLLM's NCCL weight transfer where trainer and servers have CUDA devices of
their own, safetensors files otherwise; `nccl_blockers` says why NCCL cannot serve a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..roles.rollout_servers import NCCL_TRANSFER_ARGS
from .engine import RolloutEngine, pick_engine


def make_engine(
    name: str, model_dir: str, *, dtype: str, policy: Any = None, vllm_options: dict[str, Any] | None = None
) -> RolloutEngine:
    """Build the rollout engine `name` (auto | vllm | transformers) for the model in `model_dir`.

    The transformers engine samples from `policy` (the live training module) when given, so it
    never needs a weight sync.
    """
    if pick_engine(name) == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model_dir, dtype=dtype, **(vllm_options or {}))
    from .hf_engine import HFEngine

    return HFEngine(model_dir, dtype=dtype, model=policy)


# ---------------------------------------------------------------- rollout servers and their weight sync
class WeightSyncError(ValueError):
    """`rollout.weight_sync: nccl` where NCCL cannot work; the message says why and what to do."""


def nccl_blockers(
    *, lora: bool, trainer_cuda: bool, infos: list[dict[str, Any]] | None = None, remote: bool = False,
    address: str | None = None, devices: list[str] | None = None, trainer_gpu: str | None = None,
) -> list[str]:  # fmt: skip
    """Why vLLM's NCCL weight transfer cannot serve this run (none: it can).

    `infos` are the servers' own configs (`VLLMServer.info()`); None: not started yet (only the
    trainer's side is checked). `remote`: servers on other hosts, reached at the trainer's `address`;
    `devices`: the local servers' CUDA_VISIBLE_DEVICES (`cluster.rollout_devices`), which must not
    hold the trainer's `trainer_gpu`: one GPU cannot hold two ranks of an NCCL group.
    """
    blockers = []
    if lora:
        blockers.append("a LoRA run pushes its adapter only, which vLLM loads from a folder")
    if not trainer_cuda:
        blockers.append("the trainer has no CUDA device")
    elif not remote and not devices:
        blockers.append("cluster.rollout_devices is unset (one GPU cannot hold two ranks of an NCCL group)")
    elif not remote:
        blockers += [
            f"rollout server {i} shares GPU {trainer_gpu} with the trainer"
            for i, visible in enumerate(devices or [])
            if trainer_gpu in [d.strip() for d in visible.split(",")]
        ]
    if remote and not address:
        blockers.append(
            "rollout.weight_sync_address (the trainer's address as the servers reach it) is unset"
        )
    for index, info in enumerate(infos or []):
        if not info:
            blockers.append(f"rollout server {index} did not say its config (GET /server_info)")
            continue
        device = (info.get("device_config") or {}).get("device")
        if device != "cuda":
            blockers.append(f"rollout server {index} runs on {device}")
        if (info.get("weight_transfer_config") or {}).get("backend") != "nccl":
            blockers.append(f"rollout server {index} was started without {' '.join(NCCL_TRANSFER_ARGS)}")
    return blockers


def pick_weight_sync(choice: str, blockers: list[str]) -> str:
    """`nccl` or `files` for `rollout.weight_sync` = `choice` (auto | nccl | files)."""
    if choice == "files":
        return "files"
    if choice == "nccl" and blockers:
        raise WeightSyncError(
            "rollout.weight_sync is nccl, but " + "; ".join(blockers)
            + ". Use rollout.weight_sync: files (or auto), or fix the above."
        )  # fmt: skip
    return "files" if blockers else "nccl"


def server_world_size(info: dict[str, Any]) -> int:
    """The workers of one server (tensor x pipeline x data parallel): its NCCL group less the trainer."""
    parallel = info.get("parallel_config") or {}
    return int(parallel.get("world_size", 1)) * int(parallel.get("data_parallel_size", 1))


def server_launch_args(cfg: Any, blockers: list[str]) -> tuple[list[str], dict[str, str]]:
    """Flags and environment of the servers `rft train` starts: vLLM's NCCL weight-transfer engine
    unless `blockers` (`nccl_blockers` before the start) or `rollout.weight_sync: files` rule it
    out; runtime LoRA loading for LoRA runs."""
    from ..roles.rollout_servers import lora_args

    if cfg.model.lora is not None:
        return lora_args(cfg.model.lora.r)
    return ([] if cfg.rollout.weight_sync == "files" or blockers else list(NCCL_TRANSFER_ARGS)), {}


def trainer_gpu() -> str:
    """The physical GPU (as CUDA_VISIBLE_DEVICES names it) of this process's current CUDA device."""
    import os

    import torch

    index = torch.cuda.current_device()
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return visible[index] if index < len(visible) else str(index)


def _info(server: Any) -> dict[str, Any]:
    """The server's own config, or {} where it does not say (an older vLLM, no development mode)."""
    import httpx

    from ..roles.rollout_servers import RolloutServerError

    try:
        return server.info()
    except (RolloutServerError, httpx.HTTPError, KeyError, ValueError):
        return {}


def make_server_engine(
    cfg: Any, base: str, dtype: str, *, output_dir: Path, current_weights: Any, notify: Any = print,
) -> Any:  # fmt: skip
    """The rollout servers of `cfg.cluster` (started here, or reached by `rollout_urls`), with the
    weight sync `cfg.rollout.weight_sync` picks; a ServerEngine."""
    import torch

    from ..roles.rollout_servers import ExternalServer, start_servers
    from .server_engine import ServerEngine

    cluster, rollout = cfg.cluster, cfg.rollout
    lora, cuda, remote = cfg.model.lora is not None, torch.cuda.is_available(), bool(cluster.rollout_urls)
    facts = {"lora": lora, "trainer_cuda": cuda, "remote": remote, "address": rollout.weight_sync_address,
             "devices": cluster.rollout_devices, "trainer_gpu": trainer_gpu() if cuda else None}  # fmt: skip
    before = nccl_blockers(**facts)  # what rules NCCL out before any server starts
    if rollout.weight_sync == "nccl":
        pick_weight_sync("nccl", before)
    if remote:
        servers = [ExternalServer(url) for url in cluster.rollout_urls]
        for server in servers:
            server.wait_ready(cluster.server_start_timeout_s)
    else:
        extra, env = server_launch_args(cfg, before)
        notify(f"starting {cluster.rollout_servers} vLLM rollout server(s) (logs in {output_dir / 'logs'})")
        servers = start_servers(
            cluster.rollout_servers, base, dtype=dtype, log_dir=output_dir / "logs", seed=cfg.trainer.seed,
            extra_args=extra, env=env,
            kv_cache_memory_bytes=rollout.kv_cache_memory_bytes, max_model_len=rollout.max_model_len,
            gpu_memory_utilization=rollout.gpu_memory_utilization,
            enforce_eager=not cuda if rollout.enforce_eager is None else rollout.enforce_eager,
            deadline_s=cluster.server_start_timeout_s, devices=cluster.rollout_devices,
        )  # fmt: skip
    notify("rollout servers: " + ", ".join(s.url for s in servers))
    options = {"weights_root": output_dir / "weights", "notify": notify,
               "restart_deadline_s": cluster.server_start_timeout_s}  # fmt: skip
    try:
        if lora:
            notify("weight sync: the LoRA adapter only (vLLM's LoRA loading, no merge)")
            engine = ServerEngine(servers, **options)
            engine.weight_sync = "lora adapter"
            return engine
        infos = [_info(server) for server in servers] if rollout.weight_sync != "files" and not before else []
        blockers = before or nccl_blockers(**facts, infos=infos)
        if pick_weight_sync(rollout.weight_sync, blockers) == "files":
            why = f" ({'; '.join(blockers)})" if rollout.weight_sync == "auto" else ""
            notify(f"weight sync: safetensors files under {options['weights_root']}{why}")
            return ServerEngine(servers, **options)
        from .nccl_sync import NcclWeightSync

        transfer = NcclWeightSync(
            [s.url for s in servers], world_sizes=[server_world_size(i) for i in infos],
            master_address=rollout.weight_sync_address or "127.0.0.1",
        )  # fmt: skip
        notify("weight sync: nccl (vLLM's NCCL weight transfer into every server)")
        return ServerEngine(servers, transfer=transfer, current_weights=current_weights, **options)
    except BaseException:
        for server in servers:
            server.stop(timeout_s=5.0)
        raise
