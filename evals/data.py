"""Read a held-out set in RFT dataset form (the trainer's dataset loader) as the items graders see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..trainer.data import DatasetError, load_dataset

__all__ = ["DatasetError", "load_items"]


def load_items(path: str | Path, max_items: int | None = None) -> list[dict[str, Any]]:
    """Items as plain dicts (`messages` plus reference fields), in file order; the first `max_items`."""
    lines = load_dataset(path)
    if max_items is not None:
        lines = lines[:max_items]
    return [line.item() for line in lines]
