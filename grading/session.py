"""Send samples to the grader service in batches; ride out outages instead of inventing rewards.

`open_grading(config)` connects to `config.address`, or starts an embedded `rft serve` on a
free loopback port when no address is given, uploads the grader spec once, and yields a
`GradingSession`. When the service is UNAVAILABLE, `grade` pauses and retries with
exponential backoff (saying so through `notify`) for up to `retry_max_wait_s`; after that it
raises `GradingUnavailable`. It never returns made-up zero rewards for an outage. Per-sample
grader errors are part of each result (`metadata.errors`) and are counted by the caller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import yaml

from ..plugins.base import GraderResult, Sample
from ..trainer.config import GraderConfig

Notify = Callable[[str], None]
T = TypeVar("T")


class GradingUnavailable(RuntimeError):
    """The grader service stayed unreachable for longer than the configured wait."""


def load_spec(config: GraderConfig) -> dict[str, Any]:
    """The grader spec from the config, inline or from `spec_file` (JSON or YAML)."""
    if config.spec is not None:
        return config.spec
    path = Path(config.spec_file or "")
    text = path.read_text(encoding="utf-8")
    spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a grader spec must be a JSON object")
    return spec


class GradingSession:
    """Grades (sample, item) pairs with one uploaded grader; thread-safe (one call at a time per thread)."""

    def __init__(
        self,
        client: Any,
        grader_id: str,
        version: str,
        *,
        batch_size: int = 256,
        retry_max_wait_s: float = 600.0,
        notify: Notify = print,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.grader_id = grader_id
        self.version = version
        self.batch_size = batch_size
        self.retry_max_wait_s = retry_max_wait_s
        self.notify = notify
        self.sleep = sleep
        self.outage_seconds = 0.0  # total time spent waiting for the service

    def grade(self, samples: Sequence[Sample], items: Sequence[dict[str, Any]]) -> list[GraderResult]:
        """One result per sample, in order, in requests of at most `batch_size` samples."""
        results: list[GraderResult] = []
        for start in range(0, len(samples), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            results.extend(self._with_retry(list(samples[chunk]), list(items[chunk])))
        return results

    def _with_retry(self, samples: list[Sample], items: list[dict[str, Any]]) -> list[GraderResult]:
        results, waited = retry_unavailable(
            lambda: self.client.grade_batch(self.grader_id, samples, items, version=self.version),
            max_wait_s=self.retry_max_wait_s, notify=self.notify, sleep=self.sleep,
        )  # fmt: skip
        self.outage_seconds += waited
        return results


def retry_unavailable(
    call: Callable[[], T], *, max_wait_s: float, notify: Notify, sleep: Callable[[float], None] = time.sleep
) -> tuple[T, float]:
    """`call()`, retried with exponential backoff while the service is UNAVAILABLE; (result, seconds waited).

    Every pause is announced through `notify`; past `max_wait_s` it raises GradingUnavailable.
    """
    from ..grader_service.client import GraderServiceError

    waited = 0.0
    delay = 1.0
    while True:
        try:
            result = call()
        except GraderServiceError as exc:
            if exc.code != grpc.StatusCode.UNAVAILABLE:
                raise
            if waited >= max_wait_s:
                raise GradingUnavailable(
                    f"the grader service was unavailable for {waited:.0f} s "
                    f"(grader.retry_max_wait_s={max_wait_s:.0f}); stopping. Last error: {exc}"
                ) from exc
            pause = min(delay, max_wait_s - waited)
            notify(
                f"grader service unavailable ({exc.details}); training paused, "
                f"retrying in {pause:.1f} s (waited {waited:.0f} s of {max_wait_s:.0f} s)"
            )
            sleep(pause)
            waited += pause
            delay = min(delay * 2.0, 30.0)
            continue
        if waited:
            notify(f"grader service is back after {waited:.0f} s; training continues")
        return result, waited


@contextmanager
def open_grading(
    config: GraderConfig, *, data_dir: Path | None = None, notify: Notify = print
) -> Iterator[GradingSession]:
    """A GradingSession on `config.address`, or on an embedded local service started for the block."""
    from ..grader_service.client import GraderClient, RetryPolicy

    spec = load_spec(config)
    with ExitStack() as stack:
        address, token = config.address, config.token
        if address is None:
            from ..grader_service.embedded import start_local_service

            service = stack.enter_context(start_local_service(data_dir=data_dir, sandbox=config.sandbox))
            address, token = service.address, service.token
            notify(f"started an embedded grader service on {address}")
        # One attempt per call: GradingSession does the (longer, reported) retrying itself.
        client = stack.enter_context(GraderClient(address, token, retry=RetryPolicy(attempts=1)))
        (grader_id, version), _ = retry_unavailable(
            lambda: client.create_grader(spec), max_wait_s=config.retry_max_wait_s, notify=notify
        )
        yield GradingSession(
            client, grader_id, version, batch_size=config.batch_size,
            retry_max_wait_s=config.retry_max_wait_s, notify=notify,
        )  # fmt: skip
