"""The event log: one JSON line per step, and TensorBoard curves of error counts that fall back to 0."""

from __future__ import annotations

import json
from pathlib import Path

from rftkit.trainer.events import EventLog


class RecordingWriter:
    def __init__(self) -> None:
        self.scalars: dict[tuple[str, int], float] = {}

    def add_scalar(self, key: str, value: float, step: int) -> None:
        self.scalars[(key, step)] = value

    def flush(self) -> None:
        pass


def test_an_error_kind_that_stops_is_drawn_as_zero(tmp_path: Path) -> None:
    log = EventLog(tmp_path, tensorboard=False)
    log.writer = writer = RecordingWriter()
    log.write({"step": 1, "train_errors": {"timeout_error": 3}, "valid_errors": {"other_error": 1}})
    log.write({"step": 2, "train_errors": {}, "train_invalid_samples": 0, "timing": {"step": 1.5}})
    log.write({"step": 3, "train_errors": {}, "valid_errors": {}})
    assert writer.scalars[("train_errors/timeout_error", 1)] == 3
    assert writer.scalars[("train_errors/timeout_error", 2)] == 0
    assert ("valid_errors/other_error", 2) not in writer.scalars  # no validation at step 2
    assert writer.scalars[("valid_errors/other_error", 3)] == 0
    assert writer.scalars[("timing/step", 2)] == 1.5
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [e["step"] for e in lines] == [1, 2, 3] and lines[1]["train_errors"] == {}
