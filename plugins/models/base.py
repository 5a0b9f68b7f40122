"""The contract for a model plugin: something that answers dataset items with output texts.

`rft eval --model NAME=PLUGIN` looks PLUGIN up in the entry-point group `rftkit.models`; the
entry point is an `ItemModel` subclass, constructed with no arguments. Its outputs are graded
exactly like an LLM's (`{{sample.output_text}}`, `{{sample.output_json.x}}`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "rftkit.models"


class ItemModel(ABC):
    """Answers dataset items (RFT lines: `messages` plus reference fields) with output texts."""

    @abstractmethod
    def generate(self, items: Sequence[Mapping[str, Any]], n: int = 1) -> list[list[str]]:
        """For each item, `n` output texts (a deterministic model may repeat one)."""

    def close(self) -> None:  # noqa: B027 - an optional hook; most models hold nothing
        """Release what the model holds."""


@cache
def model_plugins() -> dict[str, type[ItemModel]]:
    """Installed model plugins by name."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}
