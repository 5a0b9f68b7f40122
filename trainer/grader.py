"""The trainer's grading: its config's grader, opened through the one client-side grading path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..grading.session import GradingSession, Notify, open_session
from ..grading.spec_file import load_grader_file
from .config import GraderConfig


def load_spec(config: GraderConfig) -> dict[str, Any]:
    """The grader spec: inline `grader.spec`, or the grader file `grader.spec_file` (.json, .yaml, .py)."""
    if config.spec is not None:
        return config.spec
    return load_grader_file(config.spec_file or "")


@contextmanager
def open_grading(
    config: GraderConfig, *, data_dir: Path | None = None, notify: Notify = print
) -> Iterator[GradingSession]:
    """A session on `grader.address` (token: `grader.token` or $RFT_TOKEN), or on an embedded service."""
    with open_session(
        load_spec(config),
        address=config.address,
        token=config.token or (os.environ.get("RFT_TOKEN") if config.address else None),
        sandbox=config.sandbox,
        data_dir=data_dir,
        batch_size=config.batch_size,
        retry_max_wait_s=config.retry_max_wait_s,
        notify=notify,
        what="training",
    ) as session:
        yield session
