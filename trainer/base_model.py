"""The model a run starts from: a local directory, or a tiny model built (and cached) on first use."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .config import ModelConfig, TinyModelConfig

BUILD_VERSION = "3"  # bump when tiny_model.py changes what it builds


def cache_root(config: ModelConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    return Path(os.environ.get("RFTKIT_CACHE", Path.home() / ".cache" / "rftkit"))


def _warmup_pairs(path: Path) -> list[tuple[list[dict[str, str]], list[str]]]:
    """(messages, replies) from JSONL lines holding `messages` and `completions` (or `completion`)."""
    pairs = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        line = json.loads(raw)
        replies = line.get("completions") or [line.get("completion")]
        if not isinstance(line.get("messages"), list) or not all(isinstance(r, str) for r in replies):
            raise ValueError(f"{path}:{number}: a warm-up line needs `messages` and `completions` (strings)")
        pairs.append((line["messages"], replies))
    return pairs


def tiny_model_key(tiny: TinyModelConfig) -> str:
    digest = hashlib.sha256()
    digest.update(BUILD_VERSION.encode())
    digest.update(tiny.model_dump_json(exclude={"warmup_file"}).encode())
    digest.update(Path(tiny.warmup_file).read_bytes())
    return digest.hexdigest()[:16]


def build_tiny(tiny: TinyModelConfig, out: Path) -> float:
    """Build the tiny model into `out` and warm it up; returns the final warm-up loss."""
    from .tiny_model import build_tiny_model, warm_up

    pairs = _warmup_pairs(Path(tiny.warmup_file))
    texts = [
        " ".join(m["content"] for m in messages) + "\n" + "\n".join(replies) for messages, replies in pairs
    ]
    build_tiny_model(
        out, texts, vocab_size=tiny.vocab_size, hidden_size=tiny.hidden_size,
        num_layers=tiny.num_layers, num_heads=max(1, tiny.hidden_size // 64), seed=tiny.seed,
    )  # fmt: skip
    return warm_up(
        out, pairs, steps=tiny.warmup_steps, batch_size=tiny.warmup_batch_size,
        learning_rate=tiny.warmup_learning_rate, seed=tiny.seed,
    )  # fmt: skip


def prepare_base_model(config: ModelConfig, notify: Callable[[str], None] = print) -> Path:
    """The base model's directory; a tiny model is built once per (settings, warm-up data) and cached."""
    if config.path is not None:
        path = Path(config.path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.path {path} is not a model directory (no config.json)")
        return path
    assert config.tiny is not None
    target = cache_root(config) / "models" / f"tiny-{tiny_model_key(config.tiny)}"
    if (target / "config.json").is_file():
        notify(f"base model: cached tiny model {target}")
        return target
    notify(f"base model: building a tiny model with a {config.tiny.warmup_steps}-step warm-up -> {target}")
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    loss = build_tiny(config.tiny, tmp)
    notify(f"base model: warm-up loss {loss:.3f}")
    if not (target / "config.json").is_file():
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
