"""GPU weight sync: vLLM's own NCCL weight transfer from the trainer into rollout servers.

    # servers started with --weight-transfer-config '{"backend": "nccl"}'
    sync = NcclWeightSync(module, ["http://10.0.0.2:8000"])
    seconds = sync.push()

The servers' RL endpoints (`/init_weight_transfer_engine`, `/update_weights`, ...) and vLLM's
trainer-side engine (`NCCLTrainerWeightTransferEngine`, the path TRL's vllm-serve and prime-rl
take) broadcast every parameter from the trainer's GPU straight into the workers' GPUs, no file
in between. One NCCL group per server (trainer rank 0 plus the server's tensor-parallel
workers). With FSDP2, every trainer rank calls `push` (the gather of each shard is collective);
only rank 0 sends. Needs CUDA and NCCL: the CPU path is `server_engine` (safetensors files).
"""

from __future__ import annotations

import time
from typing import Any


class NcclWeightSync:
    """One NCCL weight-transfer group per server in `urls`, each replayed from `module`'s parameters."""

    def __init__(
        self, module: Any, urls: list[str], *, rank: int = 0, master_address: str = "127.0.0.1",
        first_port: int = 29600, server_world_sizes: list[int] | None = None,
    ) -> None:  # fmt: skip
        from vllm.distributed.weight_transfer.base import ModuleSource
        from vllm.distributed.weight_transfer.clients import HTTPVLLMWeightSyncClient
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        sizes = server_world_sizes or [1] * len(urls)
        self.engines = [
            NCCLTrainerWeightTransferEngine.trainer_init(
                NCCLTrainerInitInfo(
                    master_address=master_address, master_port=first_port + i, world_size=1 + size, rank=rank
                ),
                client=HTTPVLLMWeightSyncClient(url),
                source=ModuleSource(module),
            )
            for i, (url, size) in enumerate(zip(urls, sizes, strict=True))
        ]

    def push(self) -> float:
        """Broadcast the current weights into every server; seconds taken."""
        start = time.perf_counter()
        for engine in self.engines:
            engine.send_weights()
        return time.perf_counter() - start

    def close(self) -> None:
        for engine in self.engines:
            engine.shutdown()
