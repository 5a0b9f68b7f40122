"""Checkpoints at each validation under DIR/checkpoints/, the best few kept, and resuming from the newest.

A checkpoint folder `step_000040/` holds `model/` (save_pretrained: full weights, or the LoRA
adapter), the tokenizer, `trainer_state.pt` (optimizer, scheduler, RNG states, step, data
position, best rewards) and `meta.json` (step, valid_reward_mean). It is written to a temporary
folder and renamed, so a `kill -9` never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

META = "meta.json"
STATE = "trainer_state.pt"


@dataclass
class CheckpointInfo:
    path: Path
    step: int
    valid_reward_mean: float | None


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(root: Path) -> list[CheckpointInfo]:
    """Complete checkpoints under `root`, oldest first."""
    found = []
    for meta in root.glob(f"step_*/{META}"):
        data = json.loads(meta.read_text())
        found.append(CheckpointInfo(meta.parent, int(data["step"]), data.get("valid_reward_mean")))
    return sorted(found, key=lambda c: c.step)


def save_checkpoint(
    root: Path, step: int, model: Any, tokenizer: Any, state: dict[str, Any], valid_reward_mean: float | None
) -> Path:
    """Write checkpoint `step` atomically; returns its folder."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "model", safe_serialization=True)
    tokenizer.save_pretrained(tmp / "model")
    torch.save({**state, "rng": rng_state()}, tmp / STATE)
    (tmp / META).write_text(json.dumps({"step": step, "valid_reward_mean": valid_reward_mean}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def prune(root: Path, keep_best: int) -> list[Path]:
    """Keep the `keep_best` best by valid reward and the newest; delete the rest. Returns the deleted."""
    found = list_checkpoints(root)
    if not found:
        return []
    ranked = sorted(
        (c for c in found if c.valid_reward_mean is not None),
        key=lambda c: (c.valid_reward_mean, c.step),
        reverse=True,
    )
    keep = {c.path for c in ranked[:keep_best]} | {found[-1].path}
    deleted = [c.path for c in found if c.path not in keep]
    for path in deleted:
        shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".tmp_step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    return deleted


def load_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (RNG states are restored here too)."""
    state = torch.load(checkpoint / STATE, weights_only=False)
    set_rng_state(state.pop("rng"))
    return state


def load_model_weights(model: Any, checkpoint: Path) -> None:
    """Put a checkpoint's weights (full, or LoRA adapter) into the freshly loaded `model`."""
    from safetensors.torch import load_file

    folder = checkpoint / "model"
    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        return
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        weights.update(load_file(shard))
    model.load_state_dict(weights, strict=False)
