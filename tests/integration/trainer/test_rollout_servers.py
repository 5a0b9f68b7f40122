"""Rollout servers end to end: vLLM's OpenAI-compatible server as its own processes.

Token ids in, token ids and logprobs out; after a weight update (safetensors reloaded by each
server) the servers' logprobs are the trainer's (transformers') to 1e-4; a server killed with
SIGKILL costs no rollout (its share goes to the other) and comes back with the newest weights.
A JSON schema constrains decoding (vLLM structured outputs) on the servers as in the colocated
engine.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from rftkit.trainer.rollout.engine import SamplingSettings, vllm_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed"),
]
SCHEMA = {"type": "object", "properties": {"w": {"enum": ["bako", "mire"]}}, "required": ["w"],
          "additionalProperties": False}  # fmt: skip


def _trainer_logprobs(model, prompt: list[int], tokens: list[int]) -> list[float]:
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1).tolist()


def test_servers_sample_sync_and_survive_a_kill(tmp_path: Path, tiny_model_dir: Path) -> None:
    from rftkit.trainer.roles.rollout_servers import start_servers
    from rftkit.trainer.rollout.server_engine import ServerEngine
    from transformers import AutoModelForCausalLM, AutoTokenizer

    servers = start_servers(2, str(tiny_model_dir), dtype="float32", log_dir=tmp_path / "logs",
                            kv_cache_memory_bytes=64 * 2**20, deadline_s=600)  # fmt: skip
    notes: list[str] = []
    engine = ServerEngine(servers, weights_root=tmp_path / "weights", notify=notes.append)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        prompts = [
            tokenizer(f"Which word is first?\n{w},mire")["input_ids"]
            for w in ("bako", "tupo", "lesa", "gani")
        ]
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.02)
        engine.load_weights(model.state_dict().items())
        settings = SamplingSettings(n=3, max_tokens=6, logprobs=True)
        groups = engine.generate(prompts, settings)
        assert [len(g) for g in groups] == [3] * 4
        for prompt, group in zip(prompts, groups, strict=True):
            for completion in group:
                expected = _trainer_logprobs(model, prompt, completion.token_ids)
                assert completion.logprobs == pytest.approx(expected, abs=1e-4)

        os.kill(servers[0].pid, signal.SIGKILL)
        time.sleep(0.5)
        groups = engine.generate(prompts, settings)  # server 0's share goes to server 1
        assert [len(g) for g in groups] == [3] * 4
        assert any("restarting" in n for n in notes), notes
        deadline = time.monotonic() + 600
        while len(engine.live()) < 2:
            assert time.monotonic() < deadline, notes
            time.sleep(1)
        assert servers[0].restarts == 1
        only_first = ServerEngine([servers[0]], weights_root=tmp_path / "unused")
        completion = only_first._complete(servers[0], [prompts[0]], settings)[0][0]  # the restarted server
        assert completion.logprobs == pytest.approx(
            _trainer_logprobs(model, prompts[0], completion.token_ids), abs=1e-4
        )

        structured = engine.generate(prompts, SamplingSettings(n=2, max_tokens=40, json_schema=SCHEMA))
        for group in structured:
            for completion in group:
                assert json.loads(completion.text)["w"] in ("bako", "mire"), completion.text
    finally:
        engine.close()
    assert all(not s.alive() for s in servers)


def test_colocated_vllm_decodes_under_a_json_schema(tiny_model_dir: Path) -> None:
    from rftkit.trainer.rollout.vllm_engine import VLLMEngine
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = VLLMEngine(str(tiny_model_dir), dtype="float32", kv_cache_memory_bytes=64 * 2**20)
    try:
        ids = tokenizer("Which word is first?\nbako,mire")["input_ids"]
        free = engine.generate([ids], SamplingSettings(n=4, max_tokens=40))
        constrained = engine.generate([ids], SamplingSettings(n=4, max_tokens=40, json_schema=SCHEMA))
    finally:
        engine.close()
    assert not any(c.text.startswith("{") for c in free[0])  # the random tiny model writes no JSON itself
    for completion in constrained[0]:
        assert json.loads(completion.text)["w"] in ("bako", "mire"), completion.text


def _gpu_run(model_dir: Path, dtype: str) -> object:
    from rftkit.trainer.config import RunConfig

    return RunConfig.model_validate({
        "model": {"path": str(model_dir), "dtype": dtype},
        "data": {"train_file": "unused.jsonl", "valid_file": "unused.jsonl"},
        "grader": {"spec": {"type": "string_check", "input": "a", "reference": "a", "operation": "eq"}},
        "rollout": {"gpu_memory_utilization": 0.2},
        "cluster": {"rollout_servers": 1, "rollout_devices": ["1"]},
    })  # fmt: skip


@pytest.mark.gpu
def test_nccl_weight_sync_into_a_server_on_its_own_gpu(tmp_path: Path, tiny_model_dir: Path) -> None:
    """On GPUs, as `rft train` wires it: auto picks vLLM's NCCL transfer for a server on its own GPU,
    the server then samples the trainer's perturbed weights (logprobs as transformers'), and the
    seconds per billion parameters of one sync are printed (a 0.5 B model)."""
    from rftkit.trainer.policy import checkpoint_weights
    from rftkit.trainer.rollout.factory import make_server_engine
    from rftkit.trainer.tiny_model import build_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs (trainer on 0, the server on 1)")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).cuda()
    engine = make_server_engine(
        _gpu_run(tiny_model_dir, "float32"), str(tiny_model_dir), "float32", output_dir=tmp_path / "tiny",
        current_weights=lambda: checkpoint_weights(model),
    )  # fmt: skip
    try:
        assert engine.weight_sync == "nccl"
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param) * 0.02)
        engine.load_weights(checkpoint_weights(model))
        assert not (tmp_path / "tiny" / "weights").exists()  # no file in between
        prompt = AutoTokenizer.from_pretrained(tiny_model_dir)("Which word is first?\nbako,mire")["input_ids"]
        completion = engine.generate(
            [prompt], SamplingSettings(n=1, temperature=0.0, max_tokens=8, logprobs=True)
        )[0][0]
        expected = _trainer_logprobs(model.cpu(), prompt, completion.token_ids)
        assert completion.logprobs == pytest.approx(expected, abs=2e-3)
    finally:
        engine.close()

    big_dir = build_tiny_model(tmp_path / "big", ["bako mire tupo lesa"] * 50, vocab_size=384,
                               hidden_size=2048, num_layers=8, num_heads=32)  # fmt: skip
    big = AutoModelForCausalLM.from_pretrained(big_dir, dtype=torch.bfloat16).cuda()
    engine = make_server_engine(
        _gpu_run(big_dir, "bfloat16"), str(big_dir), "bfloat16", output_dir=tmp_path / "big-run",
        current_weights=lambda: checkpoint_weights(big),
    )  # fmt: skip
    try:
        engine.load_weights(checkpoint_weights(big))  # the first sync warms NCCL up
        start = time.perf_counter()
        engine.load_weights(checkpoint_weights(big))
        seconds = time.perf_counter() - start
    finally:
        engine.close()
    billions = sum(p.numel() for p in big.parameters()) / 1e9
    print(
        f"NCCL weight sync: {seconds:.3f} s for {billions:.2f} B parameters "
        f"({seconds / billions:.2f} s per billion)"
    )
