"""GPU weight sync: vLLM's own NCCL weight transfer from the trainer into rollout servers.

    # servers started with --weight-transfer-config '{"backend": "nccl"}' (roles.rollout_servers)
    sync = NcclWeightSync(["http://10.0.0.2:8000"], world_sizes=[1], master_address="10.0.0.1")
    sync.send(0, model.named_parameters())

The servers' RL endpoints (`/init_weight_transfer_engine`, `/start_weight_update`,
`/update_weights`, `/finish_weight_update`) and vLLM's trainer-side engine
(`NCCLTrainerWeightTransferEngine`, the path TRL's vllm-serve and prime-rl take) broadcast every
tensor from the trainer's GPU straight into the workers' GPUs, no file in between. One NCCL group
per server: the trainer (rank 0, the sender) plus the server's workers (tensor x pipeline x data
parallel). With `cluster.trainer_ranks > 1` every rank joins the collective gather of the FSDP2
shards after each update (`roles.ranks.full_weights`) and rank 0, which then holds the full
weights, sends them. A server that restarts gets a new group (`reconnect`). Needs CUDA and NCCL
on both sides: on CPU vLLM's engine fails in `torch.accelerator.current_device_index()` ("Cannot
access accelerator device when none is available"), so CPU runs use files (`server_engine`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from vllm.distributed.weight_transfer.base import ParamMeta, WeightSource

from ..roles.rollout_servers import free_port


class TensorsSource(WeightSource):
    """The `(name, tensor)` pairs of one push (references to the trainer's tensors, no copy)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, torch.Tensor]] = []

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(name, t.dtype, tuple(t.shape)) for name, t in self.pairs]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter(self.pairs)


class NcclWeightSync:
    """One NCCL weight-transfer group per server in `urls` (`world_sizes[i]`: server i's workers)."""

    def __init__(
        self, urls: list[str], *, world_sizes: list[int], master_address: str = "127.0.0.1",
        timeout_s: float = 600.0,
    ) -> None:  # fmt: skip
        if len(world_sizes) != len(urls):
            raise ValueError(f"{len(world_sizes)} world sizes for {len(urls)} servers")
        self.urls, self.world_sizes = urls, world_sizes
        self.master_address, self.timeout_s = master_address, timeout_s
        self.source = TensorsSource()
        self.engines: list[Any] = []
        try:
            for index in range(len(urls)):
                self.engines.append(self._connect(index))
        except BaseException:
            self.close()
            raise

    def _connect(self, index: int) -> Any:
        """Rendezvous with server `index`'s workers (they wait in /init_weight_transfer_engine)."""
        from vllm.distributed.weight_transfer.clients import HTTPVLLMWeightSyncClient
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        info = NCCLTrainerInitInfo(
            master_address=self.master_address, master_port=free_port(),
            world_size=1 + self.world_sizes[index], rank=0,
        )  # fmt: skip
        client = HTTPVLLMWeightSyncClient(self.urls[index], timeout=self.timeout_s)
        return NCCLTrainerWeightTransferEngine.trainer_init(info, client=client, source=self.source)

    def send(self, index: int, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> float:
        """Broadcast `named_tensors` into server `index` (vLLM loads them in place); seconds taken."""
        start = time.perf_counter()
        self.source.pairs = [(name, t.detach()) for name, t in named_tensors]
        try:
            self.engines[index].send_weights()
        finally:
            self.source.pairs = []
        return time.perf_counter() - start

    def reconnect(self, index: int) -> None:
        """A new group for server `index` (restarted: its workers lost the old one)."""
        with contextlib.suppress(Exception):  # the old group's peer is gone
            self.engines[index].shutdown()
        self.engines[index] = self._connect(index)

    def close(self) -> None:
        for engine in self.engines:
            with contextlib.suppress(Exception):
                engine.shutdown()
        self.engines = []
