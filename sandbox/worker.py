"""The parent's handle on one warm sandbox worker: start it, send it a batch, read per-sample results."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args

import msgspec

from ..core.records import item_table
from .api import ErrorKind, SandboxLimits, WorkerOutcome
from .backends import Backend, result_limit
from .channel import Channel, ChannelClosed, ChannelTimeout, describe_returncode
from .worker_runtime import RECYCLE_STATUS

log = logging.getLogger("rftkit.sandbox")
EXIT_AFTER = ("timeout", "resource")  # the worker exits after reporting one of these
SEND_BASE_S = 5.0  # a worker waits for its next request, so it takes one at once: this is slack
SEND_BYTES_PER_S = 8 * 1024 * 1024  # ... plus this much time per byte for a big one
RECYCLED = describe_returncode(RECYCLE_STATUS)
KILLED_FROM_OUTSIDE = describe_returncode(-signal.SIGKILL)  # and no memory breach: the host did it


class WorkerStartError(RuntimeError):
    """The worker could not be started, or (`load_failed`) the grader's module failed in it."""

    def __init__(self, message: str, *, load_failed: bool = False) -> None:
        super().__init__(message)
        self.load_failed = load_failed


ERROR_KINDS = frozenset(get_args(ErrorKind))
_DECODE = msgspec.json.Decoder().decode


def _outcomes(payload: bytes, start: int, room: int) -> list[WorkerOutcome]:
    """A result frame ``[start, [row, ...]]`` as outcomes (a row: a bare number, or
    ``[value, error, details, stdout]``).

    Checked here (this is the per-sample hot path): the frame must continue the batch at
    `start` and hold at most `room` results; ValueError (or TypeError) otherwise.
    """
    try:
        message = _DECODE(payload)
    except msgspec.DecodeError:  # NaN and Infinity, which the worker writes as such: the stdlib reads them
        message = json.loads(payload)
    if type(message) is not list or len(message) != 2 or message[0] != start:
        raise ValueError("results out of order")
    rows = message[1]
    if type(rows) is not list or not rows or len(rows) > room:
        raise ValueError("malformed result frame")
    outcomes = []
    for row in rows:
        kind = type(row)
        if kind is float or kind is int:
            outcomes.append(WorkerOutcome(row))
            continue
        if kind is not list or len(row) != 4:
            raise ValueError("malformed result")
        value, error, details, stdout = row
        stdout = stdout or ""
        if (error is not None and error not in ERROR_KINDS) or type(stdout) is not str:
            raise ValueError("malformed result")
        if details is not None and type(details) is not str:
            raise ValueError("malformed result")
        outcomes.append(WorkerOutcome(value, error, details, stdout))
    return outcomes


def grace_s(limits: SandboxLimits) -> float:
    """How long past the in-worker alarm the parent waits before it kills the worker."""
    return 1.0 + 0.25 * limits.sample_timeout_s


def send_deadline(size: int, batch_deadline: float) -> float:
    """When a worker must have taken a request of `size` bytes (never after the batch's deadline)."""
    return min(batch_deadline, time.monotonic() + SEND_BASE_S + size / SEND_BYTES_PER_S)


def init_message(source: str, limits: SandboxLimits, backend: Backend) -> bytes:
    """The worker's first message: the grader and its limits."""
    return json.dumps(
        {
            "op": "init",
            "source": source,
            "sample_timeout_s": limits.sample_timeout_s,
            "load_timeout_s": limits.load_timeout_s,
            "output_max_bytes": limits.output_max_bytes,
            "result_max_bytes": result_limit(limits),
            "rlimits": backend.rlimits(limits),
            "reap_children": backend.reap_children,
            "exit_when_orphaned": backend.exit_when_orphaned,
        }
    ).encode()


_ENCODE = msgspec.json.Encoder().encode


def encode_batch(pairs: Sequence[tuple[dict[str, Any] | str, Mapping[str, Any]]]) -> bytes:
    """One encoding of a whole batch; an item shared by several samples (the same object, as the
    samples of one prompt share theirs) is sent once, with an index per sample."""
    distinct, index = item_table([item for _, item in pairs])
    items = [item if type(item) is dict else dict(item) for item in distinct]
    samples = [sample for sample, _ in pairs]
    message = {"op": "grade", "samples": samples, "items": items, "index": index}
    try:
        return _ENCODE(message)
    except UnicodeEncodeError:  # a lone surrogate (JSON allows its escape): escaped, as it came
        return json.dumps(message).encode()


class SandboxWorker:
    """One running worker with the grader loaded."""

    def __init__(self, channel: Channel, limits: SandboxLimits) -> None:
        self.channel = channel
        self.limits = limits
        self.grades = 0
        self.alive = True
        self.lost = False  # it died with pairs unanswered (see run)
        self.stalled = False  # it stopped reading its requests (see run)
        self.death: WorkerOutcome | None = None  # then: what the unanswered pair gets if blamed

    @classmethod
    def start(
        cls,
        backend: Backend,
        init: bytes,
        limits: SandboxLimits,
        on_launch: Callable[[Channel], None] | None = None,
    ) -> SandboxWorker:
        """Launch a worker and wait until it has loaded the grader.

        A worker that dies before its runtime is up is the sandbox's failure; one that dies or
        hangs while the grader's module runs is the grader's (`load_failed`), except a SIGKILL
        that no memory breach explains (killed from outside: the sandbox's failure again). `on_launch` gets
        the channel at once (so that another thread can abort a start that takes long).
        """
        channel = backend.launch(limits)
        if on_launch is not None:
            on_launch(channel)
        loading = False
        try:
            deadline = time.monotonic() + limits.load_timeout_s + grace_s(limits)
            channel.send(init, deadline)
            loading = json.loads(channel.recv(deadline)).get("loading") is True
            if not loading:
                raise ValueError("the worker did not acknowledge its start")
            reply = json.loads(channel.recv(time.monotonic() + limits.load_timeout_s + grace_s(limits)))
        except ChannelTimeout:
            channel.close()
            what = "load the grader" if loading else "start"
            raise WorkerStartError(
                f"the worker did not {what} within {limits.load_timeout_s:g} s", load_failed=loading
            ) from None
        except (ChannelClosed, ValueError, RecursionError) as exc:
            reason = channel.exit_reason() or str(exc)
            tail = channel.stderr_tail()[-2000:]
            channel.close()
            if loading and reason == KILLED_FROM_OUTSIDE:
                # A SIGKILL with no memory breach (that reads "killed for using more memory")
                # proves nothing about the grader: an OOM killer or an operator on the host.
                # The worker is restarted like one that died before the grader ran.
                raise WorkerStartError(
                    f"the worker was killed while it loaded the grader ({reason}); not the grader's fault"
                ) from None
            if loading:
                raise WorkerStartError(
                    f"the grader's module crashed the worker ({reason})", load_failed=True
                ) from None
            raise WorkerStartError(f"the sandbox worker failed to start ({reason}): {tail}") from None
        if not reply.get("ok"):
            channel.close()
            raise WorkerStartError(str(reply.get("details")), load_failed=True)
        return cls(channel, limits)

    def _death_outcome(self, kind: str, details: str) -> WorkerOutcome:
        self.close()
        return WorkerOutcome(error=kind, details=details)  # type: ignore[arg-type]

    def run(self, payload: bytes, count: int, batch_deadline: float) -> list[WorkerOutcome]:
        """Send one encoded batch of `count` pairs; returns the outcomes it got.

        Fewer than `count` outcomes come back when the worker stopped (it is then closed and
        `alive` is False): it exited on its own after reporting a timeout or a memory error (the
        last outcome says so), the batch cap passed (the last outcome is a timeout), or (`lost`
        is True) it died, was killed or stopped answering with pairs unanswered. It may have
        graded some of them without sending their results yet, and it may have been killed from
        outside, so no sample is blamed here: the pool re-sends them one pair per batch, and
        blames a pair (with `death`) only when it kills a second, fresh worker.

        Two more ways end with no outcome and no pair to blame: (`stalled`) the worker did not
        take the request by its send deadline (its receipt, an empty frame, did not come: it
        stopped reading; it is killed, `death` says so), or it had retired itself after its
        last batch (a grade() left threads running; the pool starts a fresh one, `lost` and
        `stalled` stay False).
        """
        outcomes: list[WorkerOutcome] = []
        per_sample = self.limits.sample_timeout_s + grace_s(self.limits)
        sent_at = time.monotonic()
        send_by = send_deadline(len(payload), batch_deadline)
        try:
            self.channel.send(payload, send_by)
        except ChannelTimeout:
            return self._stalled(outcomes, len(payload), send_by - sent_at)
        except ChannelClosed as exc:
            if self._retired():
                return outcomes
            return self._died(outcomes, count, "crash", f"the worker went away: {exc}")
        try:  # the worker takes a request with an empty frame once it has read all of it
            if self.channel.recv(send_by) != b"":
                return self._died(outcomes, count, "crash", "the worker broke the protocol: no receipt")
        except ChannelTimeout:
            return self._stalled(outcomes, len(payload), send_by - sent_at)
        except ChannelClosed:
            if self._retired():
                return outcomes
            return self._died(outcomes, count, *self._crash_reason())
        while len(outcomes) < count:
            deadline = min(time.monotonic() + per_sample, batch_deadline)
            try:
                got = _outcomes(self.channel.recv(deadline), len(outcomes), count - len(outcomes))
            except ChannelTimeout:
                if time.monotonic() >= batch_deadline:  # nothing is re-sent after the batch cap
                    details = f"the batch ran past its {self.limits.batch_timeout_s:g} s cap"
                    outcomes.append(self._death_outcome(*self._blame_memory("timeout", details)))
                    return outcomes
                details = f"grade() did not return within {per_sample:g} s; the worker was killed"
                return self._died(outcomes, count, *self._blame_memory("timeout", details))
            except ChannelClosed:
                return self._died(outcomes, count, *self._crash_reason())
            except (ValueError, TypeError, AttributeError, RecursionError) as exc:
                return self._died(outcomes, count, "crash", f"the worker broke the protocol: {exc}")
            for outcome in got:
                if outcome.error == "timeout":  # it may have been stuck waiting on an OOM-killed child
                    kind, details = self._blame_memory("timeout", outcome.details or "")
                    outcome = WorkerOutcome(None, kind, details, outcome.stdout)  # type: ignore[arg-type]
                outcomes.append(outcome)
                self.grades += 1
                if outcome.error in EXIT_AFTER:
                    self.close()
                    return outcomes
        return outcomes

    def _stalled(self, outcomes: list[WorkerOutcome], size: int, waited: float) -> list[WorkerOutcome]:
        """The worker stopped reading its requests: killed; the pool sends them to a fresh one."""
        self.stalled = True
        self.death = WorkerOutcome(
            error="timeout",
            details=(
                f"the grader's worker stopped reading its requests (a {size}-byte batch was not "
                f"taken within {waited:.1f} s); it was killed"
            ),
        )
        self.close()
        return outcomes

    def _retired(self) -> bool:
        """Whether the worker, gone before it answered, had retired itself after its last batch
        (only a worker that has graded can have: a fresh one's exit is a death like any other)."""
        if self.grades == 0 or self.channel.exit_reason() != RECYCLED:
            return False
        log.info(
            "a sandbox worker retired after %d grades: %s",
            self.grades,
            self.channel.stderr_tail()[-300:].strip(),
        )
        self.close()
        return True

    def _died(
        self, outcomes: list[WorkerOutcome], count: int, kind: str, details: str
    ) -> list[WorkerOutcome]:
        """The worker stopped answering: no pair is blamed here (`lost`; `death` says why). A
        death is proven to be a pair's only when it kills a fresh worker again (the pool checks)."""
        self.lost = True
        self.death = WorkerOutcome(error=kind, details=details)  # type: ignore[arg-type]
        self.close()
        return outcomes

    def _blame_memory(self, kind: str, details: str) -> tuple[str, str]:
        """A timeout in a sandbox where the kernel killed a process for memory is a memory breach."""
        if self.channel.memory_breached():
            return "resource", (
                "a process in the grader's sandbox was killed for using more memory than its limit "
                f"({self.limits.memory_mb} MB); then {details}"
            )
        return kind, details

    def _crash_reason(self) -> tuple[str, str]:
        reason = self.channel.exit_reason() or "the worker went away"
        kind = "resource" if "memory" in reason.lower() else "crash"
        tail = self.channel.stderr_tail().strip()
        details = f"the grader's worker died ({reason})"
        if tail:
            details += f"; its last output: {tail[-1500:]}"
        return kind, details

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.channel.close()
