"""Per-step events like OpenAI's fine-tuning metrics, to DIR/events.jsonl and TensorBoard.

Error counts by kind (`train_errors`, `valid_errors`: flag -> samples) list only the flags raised
in that step; TensorBoard gets a 0 for a flag seen earlier in the run and absent now, so its
curve drops back to 0 instead of stopping at its last non-zero count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

COUNT_SUFFIX = "_errors"  # top-level fields holding counts by kind


class EventLog:
    """Appends one JSON object per step; scalar fields (nested ones flattened) also go to TensorBoard."""

    def __init__(self, output_dir: Path, *, tensorboard: bool = True) -> None:
        self.path = output_dir / "events.jsonl"
        self.writer: Any = None
        self.counts_seen: set[str] = set()  # flattened count keys seen so far (for TensorBoard zeros)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(output_dir / "tensorboard"))
            except ImportError:
                self.writer = None

    def truncate_after(self, step: int) -> None:
        """Drop events of steps after `step` (the run resumes from a checkpoint at `step`).

        The kept lines go to a new file renamed over the old one: a reader that follows the log by
        (inode, offset) sees a new file instead of one that shrank and may have grown back past its
        offset before it looked.
        """
        if not self.path.exists():
            return
        kept = [
            line for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]  # fmt: skip
        fresh = self.path.with_name(self.path.name + ".tmp")
        fresh.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(fresh, self.path)

    def write(self, event: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, sort_keys=True) + "\n")
        if self.writer is not None:
            step = int(event["step"])
            scalars = {
                key: value for key, value in flatten(event).items()
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool)
            }  # fmt: skip
            counts = {key for key in scalars if key.split("/", 1)[0].endswith(COUNT_SUFFIX)}
            for key in self.counts_seen - scalars.keys():
                if key.split("/", 1)[0] in event:  # that part (train or valid) was measured this step
                    scalars[key] = 0
            self.counts_seen |= counts
            for key, value in sorted(scalars.items()):
                self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"timing": {"sampling": 1}} -> {"timing/sampling": 1}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat
