"""The rollout-server engine's weight paths: full weights as one file each, LoRA adapters by name."""

from __future__ import annotations

from pathlib import Path

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
