"""Trainer ranks under torchrun: 2 FSDP2 ranks (gloo) give the gradient 1 rank gives on the same batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.timeout(300)
WORKER = Path(__file__).with_name("rank_gradient_worker.py")


def _gradient(ranks: int, model_dir: Path, out: Path) -> dict[str, torch.Tensor]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               str(WORKER), str(model_dir), str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return torch.load(out)


def test_two_ranks_give_the_gradient_of_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    one = _gradient(1, tiny_model_dir, tmp_path / "one.pt")
    two = _gradient(2, tiny_model_dir, tmp_path / "two.pt")
    assert one.keys() == two.keys()
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < 1e-5, worst
    assert max(float(g.abs().max()) for g in one.values()) > 1e-4  # a real gradient, not all zeros
