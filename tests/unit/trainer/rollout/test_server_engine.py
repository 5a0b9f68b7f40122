"""The rollout-server engine's weight paths: full weights as one file each, LoRA adapters by name,
NCCL broadcasts into every live server (a restarted one rejoins with the trainer's weights).

The servers here are stand-ins (the real ones are in tests/integration/trainer): these tests check
the engine's bookkeeping. The NCCL transfer is a stand-in too, since NCCL needs GPUs this machine
does not have; the real transfer is the GPU test in tests/integration/trainer/test_rollout_servers.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from rftkit.trainer.rollout.server_engine import ServerEngine


class FakeServer:
    def __init__(self, url: str) -> None:
        self.url, self.restarts, self.calls = url, 0, []

    def reload_weights(self, folder: Path, timeout_s: float = 0) -> None:
        self.calls.append(("weights", folder.name, sorted(p.name for p in folder.iterdir())))

    def load_adapter(self, name: str, folder: Path, timeout_s: float = 0) -> None:
        self.calls.append(("adapter", name, sorted(p.name for p in folder.iterdir())))

    def unload_adapter(self, name: str, timeout_s: float = 0) -> None:
        self.calls.append(("unload", name))

    def stop(self, timeout_s: float = 0) -> None:
        pass

    def restart(self, deadline_s: float = 0) -> None:
        self.restarts += 1


def test_weights_are_written_once_and_reloaded_by_every_server(tmp_path: Path) -> None:
    servers = [FakeServer("a"), FakeServer("b")]
    engine = ServerEngine(servers, weights_root=tmp_path / "w", notify=lambda m: None)  # type: ignore[arg-type]
    for _ in range(3):
        engine.load_weights([("x", torch.ones(2))])
    assert [c[:2] for c in servers[0].calls] == [
        ("weights", "v000001"),
        ("weights", "v000002"),
        ("weights", "v000003"),
    ]
    assert servers[1].calls == servers[0].calls and servers[0].calls[0][2] == ["model.safetensors"]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["v000002", "v000003"]  # older ones go
    engine.close()


def test_lora_pushes_the_adapter_only_and_requests_ask_for_it(tmp_path: Path) -> None:
    server = FakeServer("a")
    engine = ServerEngine([server], weights_root=tmp_path / "w", notify=lambda m: None)  # type: ignore[list-item]

    def save(folder: Path) -> None:
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"")

    assert engine.model_name == "policy"
    engine.load_adapter(save)
    engine.load_adapter(save)
    assert engine.model_name == "adapter-v000002"
    assert server.calls == [
        ("adapter", "adapter-v000001", ["adapter_config.json", "adapter_model.safetensors"]),
        ("adapter", "adapter-v000002", ["adapter_config.json", "adapter_model.safetensors"]),
        ("unload", "adapter-v000001"),
    ]
    engine.close()


class StandInTransfer:
    """Records what an NcclWeightSync would send; `fail` makes the next send to that server raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[str]]] = []
        self.reconnected: list[int] = []
        self.fail: set[int] = set()
        self.closed = False

    def send(self, index: int, named_tensors) -> float:
        if index in self.fail:
            self.fail.discard(index)
            raise RuntimeError("NCCL error: remote process exited")
        self.sent.append((index, [name for name, _ in named_tensors]))
        return 0.0

    def reconnect(self, index: int) -> None:
        self.reconnected.append(index)

    def close(self) -> None:
        self.closed = True


def test_nccl_sends_to_every_live_server_and_a_lost_one_rejoins(tmp_path: Path) -> None:
    servers = [FakeServer("a"), FakeServer("b")]
    transfer = StandInTransfer()
    current = [("w", torch.zeros(2))]
    engine = ServerEngine(servers, weights_root=tmp_path / "w", notify=lambda m: None,  # type: ignore[arg-type]
                          transfer=transfer, current_weights=lambda: current)  # fmt: skip
    assert engine.weight_sync == "nccl"
    engine.load_weights([("w", torch.ones(2))])
    assert transfer.sent == [(0, ["w"]), (1, ["w"])] and not (tmp_path / "w").exists()  # no files
    transfer.fail.add(1)
    engine.load_weights([("w", torch.ones(2))])  # server b fails: restarted, a new group, the weights
    deadline = time.monotonic() + 10
    while len(engine.live()) < 2:
        assert time.monotonic() < deadline, transfer.sent
        time.sleep(0.01)
    assert servers[1].restarts == 1 and transfer.reconnected == [1]
    assert transfer.sent[2:] == [(0, ["w"]), (1, ["w"])]  # the second push, then b's on its return
    assert servers[0].calls == servers[1].calls == []  # nothing went through files
    engine.close()
    assert transfer.closed


def test_nccl_needs_the_weights_for_servers_that_restart(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="current_weights"):
        ServerEngine([FakeServer("a")], weights_root=tmp_path, transfer=StandInTransfer())  # type: ignore[list-item]
