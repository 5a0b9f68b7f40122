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
from .roles.graders import start_grader_replicas


def load_spec(config: GraderConfig) -> dict[str, Any]:
    """The grader spec: inline `grader.spec`, or the grader file `grader.spec_file` (.json, .yaml, .py)."""
    if config.spec is not None:
        return config.spec
    return load_grader_file(config.spec_file or "")


@contextmanager
def open_grading(
    config: GraderConfig, *, replicas: int = 1, data_dir: Path | None = None, notify: Notify = print
) -> Iterator[GradingSession]:
    """A session on `grader.address` (token: `grader.token` or $RFT_TOKEN), else on `replicas` local
    `rft serve` replicas (one: the embedded service)."""
    options = {
        "sandbox": config.sandbox, "batch_size": config.batch_size, "notify": notify,
        "retry_max_wait_s": config.retry_max_wait_s, "what": "training",
    }  # fmt: skip
    spec = load_spec(config)
    if config.address is None and replicas > 1:
        with start_grader_replicas(replicas, sandbox=config.sandbox, data_dir=data_dir) as group:
            notify(f"started {replicas} grader replicas on {', '.join(group.addresses)} (one shared store)")
            with open_session(spec, address=group.addresses, token=group.token, **options) as session:
                yield session
        return
    token = config.token or (os.environ.get("RFT_TOKEN") if config.address else None)
    with open_session(spec, address=config.address, token=token, data_dir=data_dir, **options) as session:
        yield session
