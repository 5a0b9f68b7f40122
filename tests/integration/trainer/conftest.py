"""A tiny model directory shared by the trainer's integration tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = ["bako", "mire", "tupo", "lesa", "gani", "vazu", "defo", "ruki"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rftkit.trainer.tiny_model import build_tiny_model

    texts = [f"Which word is first?\n{','.join(WORDS[i:] + WORDS[:i])}" for i in range(len(WORDS))] * 20
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=384)
