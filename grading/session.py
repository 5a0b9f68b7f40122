"""A grading session: one uploaded grader on a grader service, graded in batches, outages ridden out.

    with open_session(spec, address=None) as session:      # None: an embedded local service
        results = session.grade(samples, items)

`address` may list several replicas of one service: the grader is uploaded to each (replicas
sharing a store find it there; ids agree either way), and grading goes through one channel that
spreads requests over them round-robin and resends a request whose replica died to another
(see `replicas`).

Every client of grading (`rft train`, `rft eval`) opens its session here, so they all upload
the same way, batch the same way and treat the service's failures the same way (the TRL
adapter, on a plain GraderClient, waits with the same `OutageWait`). While the service is
unavailable, overloaded (a full queue) or past a deadline, `grade` pauses and retries with
jittered exponential backoff (tenacity), saying so through `notify`, for up to
`retry_max_wait_s`; then it raises `GradingUnavailable`. A pause ends early when the client's
channel connects again, so grading resumes as soon as a restarted service is back. It never
invents rewards for an outage. Per-sample grader errors are part of each result
(`metadata.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from ..core.records import GraderResult, Sample
from ..grader_service.client import GraderClient, GraderServiceError, RetryPolicy
from ..grader_service.embedded import start_local_service
from ..plugins.registry import grader_types, parse_spec
from .replicas import ReplicaClient

Notify = Callable[[str], None]
T = TypeVar("T")

# The service's own trouble, not the request's: wait and send the same request again.
TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
DEFAULT_BATCH_SIZE = 256
DEFAULT_RETRY_MAX_WAIT_S = 600.0


class GradingUnavailable(RuntimeError):
    """The grader service stayed unreachable (or overloaded) for longer than the configured wait."""


def is_transient(exc: BaseException) -> bool:
    """True for a grader-service error worth waiting out (unavailable, overloaded, deadline).

    A message over the size limit is RESOURCE_EXHAUSTED too, but sending it again cannot help.
    """
    if not isinstance(exc, GraderServiceError) or exc.code not in TRANSIENT_CODES:
        return False
    return not (exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (exc.details or ""))


@dataclass
class OutageWait:
    """Calls retried while the service's trouble is transient; the seconds waited add up in `waited_s`."""

    max_wait_s: float = DEFAULT_RETRY_MAX_WAIT_S
    notify: Notify = print
    what: str = "grading"  # what pauses meanwhile, in the messages ("training", "the eval")
    sleep: Callable[[float], None] = time.sleep
    waited_s: float = 0.0
    # Waits up to N s for the service's channel, True once it is ready (GraderClient.wait_until_ready).
    ready: Callable[[float], bool] | None = None

    def _rest(self, seconds: float) -> float:
        """Pause `seconds`, or less: until the channel is back, when it was not ready at first.
        Returns the seconds paused (as planned when `sleep` does the pausing)."""
        if self.ready is not None and seconds > 0:
            start = time.monotonic()
            if not self.ready(seconds) or time.monotonic() - start > 0.05:
                return time.monotonic() - start
            # Connected all along: the trouble is the service's (a full queue, a drain), not the way to it.
        self.sleep(seconds)
        return seconds

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`; on a transient error, back off (1 s doubling to 30 s, plus up to 1 s of jitter)
        and try again, until the pauses add up to `max_wait_s`; then GradingUnavailable."""
        slept = 0.0
        backoff = wait_exponential_jitter(initial=1.0, max=30.0, jitter=1.0)

        def pause(state: RetryCallState) -> float:
            return max(0.0, min(backoff(state), self.max_wait_s - slept))

        def announce(state: RetryCallState) -> None:
            seconds = state.next_action.sleep if state.next_action else 0.0
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, GraderServiceError)
            when = f"in {seconds:.1f} s" + (" or when it is back" if self.ready else "")
            self.notify(
                f"grader service {_state(exc)} ({exc.details}); {self.what} paused, retrying {when} "
                f"(waited {slept:.0f} s of {self.max_wait_s:.0f} s)"
            )

        def rest(seconds: float) -> None:
            nonlocal slept
            slept += self._rest(seconds)

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=pause,
            stop=lambda _state: slept >= self.max_wait_s,
            sleep=rest,
            before_sleep=announce,
            reraise=True,
        )
        try:
            result = retrying(fn)
        except GraderServiceError as exc:
            if not is_transient(exc):
                raise
            raise GradingUnavailable(
                f"the grader service was {_state(exc)} for {slept:.0f} s "
                f"(retry_max_wait_s={self.max_wait_s:.0f}); stopping. Last error: {exc.details}"
            ) from exc
        finally:
            self.waited_s += slept
        if slept:
            self.notify(f"grader service is back after {slept:.0f} s; {self.what} continues")
        return result


def _state(exc: GraderServiceError) -> str:
    """The service's trouble in words: unavailable, resource exhausted, deadline exceeded."""
    return exc.code.name.lower().replace("_", " ")


@dataclass
class GradingSession:
    """Grades (sample, item) pairs with one uploaded grader; thread-safe (one call at a time per thread)."""

    client: Any  # GraderClient (or anything with its grade_batch)
    grader_id: str
    version: str
    where: str = "grader service"
    batch_size: int = DEFAULT_BATCH_SIZE
    wait: OutageWait = field(default_factory=OutageWait)

    @property
    def notify(self) -> Notify:
        """Where pauses and recoveries are announced (a progress bar's log, print ...)."""
        return self.wait.notify

    @notify.setter
    def notify(self, notify: Notify) -> None:
        self.wait.notify = notify

    @property
    def outage_seconds(self) -> float:
        """Total time spent waiting for the service."""
        return self.wait.waited_s

    def grade(self, samples: Sequence[Sample], items: Sequence[Mapping[str, Any]]) -> list[GraderResult]:
        """One result per sample, in order, in requests of at most `batch_size` samples."""
        if len(samples) != len(items):
            raise ValueError(f"{len(samples)} samples but {len(items)} items")
        results: list[GraderResult] = []
        for start in range(0, len(samples), self.batch_size):
            chunk_samples = list(samples[start : start + self.batch_size])
            # The same dict object for every sample of a prompt: the wire then carries it once.
            chunk_items = [
                item if isinstance(item, dict) else dict(item)
                for item in items[start : start + self.batch_size]
            ]
            graded = self.wait.call(
                lambda s=chunk_samples, i=chunk_items: self.client.grade_batch(
                    self.grader_id, s, i, version=self.version
                )
            )
            if len(graded) != len(chunk_samples):
                raise RuntimeError(
                    f"grader service returned {len(graded)} results for {len(chunk_samples)} samples"
                )
            results.extend(graded)
        return results


def check_spec(spec: dict[str, Any], *, remote: bool) -> None:
    """Validate the spec here when its type is installed here (a remote server may know more types)."""
    if remote and spec.get("type") not in grader_types():
        return
    parse_spec(spec)


def _upload_to_each(
    addresses: Sequence[str], token: str | None, spec: dict[str, Any], wait: OutageWait
) -> tuple[str, str]:
    """Upload `spec` to every replica (those sharing a store find it there); their (id, version)."""
    uploaded: dict[str, tuple[str, str]] = {}
    for replica in addresses:
        with GraderClient(replica, token, retry=RetryPolicy(attempts=1)) as direct:
            uploaded[replica] = wait.call(lambda c=direct: c.create_grader(spec))
    if len(set(uploaded.values())) > 1:
        raise RuntimeError(
            f"grader replicas disagree on the grader's id and version ({uploaded}): are they replicas "
            "of one service (the same tokens file and rftkit version)?"
        )
    return next(iter(uploaded.values()))


@contextmanager
def open_session(
    spec: dict[str, Any],
    *,
    address: str | Sequence[str] | None = None,
    token: str | None = None,
    sandbox: str = "auto",
    data_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retry_max_wait_s: float = DEFAULT_RETRY_MAX_WAIT_S,
    notify: Notify = print,
    what: str = "grading",
) -> Iterator[GradingSession]:
    """Upload `spec` to the service at `address`, or to an embedded one started for the block.

    A spec whose type is installed here is validated before anything starts (GraderSpecError).
    """
    check_spec(spec, remote=bool(address))
    with ExitStack() as stack:
        addresses = [address] if isinstance(address, str) else list(address or [])
        where = f"grader service at {', '.join(addresses)}"
        if not addresses:
            service = stack.enter_context(start_local_service(data_dir=data_dir, sandbox=sandbox))
            addresses, token = [service.address], service.token
            where = f"embedded grader service at {service.address}"
            notify(f"started an embedded grader service on {service.address}")
        wait = OutageWait(max_wait_s=retry_max_wait_s, notify=notify, what=what)
        # One attempt per call: the session does the (longer, reported) waiting itself.
        once = RetryPolicy(attempts=1)
        if len(addresses) == 1:
            client = stack.enter_context(GraderClient(addresses[0], token, retry=once))
            wait.ready = client.wait_until_ready
            grader_id, version = wait.call(lambda: client.create_grader(spec))
        else:
            client = stack.enter_context(ReplicaClient(addresses, token, retry=once))
            wait.ready = client.wait_until_ready  # any replica back
            grader_id, version = _upload_to_each(addresses, token, spec, wait)
        yield GradingSession(client, grader_id, version, where=where, batch_size=batch_size, wait=wait)
