"""What every model kind `rft eval` can score shares: the generation record and the model interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Called with the number of samples just finished, so a progress bar can advance.
ProgressFn = Callable[[int], None]


@dataclass
class Generation:
    """One sample: the answer text, the reasoning the model showed (if any), or why it failed."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None
    latency_s: float = 0.0


def chat_messages(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prompt of an RFT dataset line as chat messages."""
    return [dict(message) for message in item["messages"]]


class EvalModel(ABC):
    """A model under evaluation: answers items with `n` samples each."""

    kind: str = "model"

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self.target = target

    @abstractmethod
    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        """For each item, `n` generations; a failed sample is a Generation with `error` set."""

    def describe(self) -> dict[str, Any]:
        """What the run records about this model (no secrets)."""
        return {"name": self.name, "kind": self.kind, "target": self.target}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the model holds."""
