"""The worker that runs INSIDE a sandbox: loads one grader once, then grades batches over a pipe.

Standard library only; it runs with the sandbox's own python3 (``python3 -I -c <this file>``).

Protocol (every message is a 4-byte big-endian length, then UTF-8 JSON; NaN and Infinity are
kept as JSON's NaN/Infinity tokens so the caller can flag them):

* parent -> worker, once: ``{"op": "init", "source": ..., "sample_timeout_s": ..., ...}``;
  worker -> parent: ``{"loading": true}`` (the runtime is up), then, once the grader module has
  run, ``{"ok": true}`` or ``{"ok": false, "details": "..."}``.
* parent -> worker: ``{"op": "grade", "samples": [...], "items": [...], "index": [...]}``: sample
  k is graded against ``items[index[k]]`` (so an item shared by a prompt's samples travels once);
  a sample is the dict grade() receives, or a string for a plain-text sample (grade() then gets
  ``{"output_text": s, "output_json": None, "output_tools": [], "choices": []}``); each sample
  gets its own shallow copy of its item. The worker takes the batch with an empty frame as
  soon as it has read it (the parent's deadline for the request), then answers with result frames
  ``[start, [row, ...]]``, in order (`start`: the position of the frame's first result in the
  batch). A row is a bare number for a sample whose grade() returned an int or float without
  printing anything (the common case), else ``[value, error, details, stdout]`` (`error`: null
  or a kind). Results are buffered and sent together: a frame after FLUSH_RESULTS results, once
  FLUSH_AFTER_S passed since the last one, right after an error, and at the end of the batch.
  After a timeout or a memory error the worker sends what it holds and exits (the parent
  starts a fresh worker for the rest). A worker that dies with results unsent has them
  re-graded by the parent one pair per batch, so only the sample that killed it is blamed.
* After a batch whose grade() calls left threads running (more than the worker had once the
  grader's module ran), the worker exits with RECYCLE_STATUS before it reads another request:
  its results stand, and the parent starts a fresh worker for the next batch.

The grader's ``print``/``sys.stderr`` output is captured per sample and capped; writes to the
file descriptors 1 and 2 go to the worker's stderr, never into the protocol stream.
"""

from __future__ import annotations

import _signal  # the C functions: signal.signal()/getsignal() add enum conversions per call
import contextlib
import json
import linecache
import math
import numbers
import os
import signal
import struct
import sys
import time
import traceback
import types
from typing import Any

_getsignal, _monotonic = _signal.getsignal, time.monotonic
_SIGALRM = signal.SIGALRM

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 512 * 1024 * 1024
DETAILS_MAX_CHARS = 4000
EXIT_AFTER = ("timeout", "resource")
RESOURCE_ERRNOS = (11, 12, 24, 27, 28)  # EAGAIN (fork), ENOMEM, EMFILE, EFBIG, ENOSPC
FLUSH_RESULTS = 256  # results per frame at most
FLUSH_AFTER_S = 0.005  # a result waits at most this long (plus one grade) before it is sent
PLAIN = frozenset({float, int, bool, str, type(None)})  # immutable: sent as they are, later
BARE = (float, int)  # exact types of a value sent as a bare number when nothing else is to say
STR_PLAIN_CHARS = 4096  # a longer string is encoded (and its size checked) when it is returned
PR_SET_CHILD_SUBREAPER = 36
TICK_S = 0.05  # the alarm's period at most: a sample's time limit is kept to within this
RECYCLE_STATUS = 75  # EX_TEMPFAIL: the worker retired itself after a batch (see Worker.worn_out)


class SampleTimeout(BaseException):
    """Raised by the alarm inside grade(); a BaseException so `except Exception` cannot swallow it."""


def write_frame(fd: int, payload: bytes) -> None:
    """Write one length-prefixed frame to a file descriptor."""
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    """Read one frame; None at end of input."""
    head = _read_exact(fd, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {size} bytes is over the limit")
    return _read_exact(fd, size) if size else b""


class CappedText:
    """A text stream that keeps the first `limit` characters written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def take(self) -> str:
        if not self.parts and not self.dropped:
            return ""
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[output capped: {self.dropped} more characters dropped]"
        self.parts, self.kept, self.dropped = [], 0, 0
        return text


def _to_jsonable(obj: Any) -> Any:
    """json.dumps fallback: numbers (e.g. numpy scalars) become floats, anything else its repr."""
    if isinstance(obj, numbers.Real) and not isinstance(obj, bool):
        return float(obj)
    return f"<{type(obj).__name__}: {repr(obj)[:200]}>"


def _short_traceback(exc: BaseException) -> str:
    tb = exc.__traceback__
    # Drop this runtime's own frames; keep the grader's.
    while tb is not None and tb.tb_frame.f_code.co_filename != "grader.py":
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return text[-DETAILS_MAX_CHARS:]


class Worker:
    """Holds the loaded grader, the protocol file descriptors and the results not yet sent."""

    def __init__(self, proto_in: int, proto_out: int, init: dict[str, Any]) -> None:
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.sample_timeout_s = float(init.get("sample_timeout_s", 5.0))
        self.sample_budget_s = max(self.sample_timeout_s, 0.001)  # what _arm() gives a sample
        self.result_max_bytes = int(init.get("result_max_bytes", 1 << 20))
        self.reap_children = bool(init.get("reap_children", False)) and os.getpid() <= 2
        # Every other process in the sandbox descends from this one (PID 1, or a child subreaper):
        # then "no child" means "no other process", and one waitpid() tells it.
        self.sole_ancestor = self.reap_children and (os.getpid() == 1 or _become_subreaper())
        # The pid namespace's last PID: while it stays what it was when no child was left, no
        # process (nor thread) has been started since, and one pread() tells it.
        self.last_pid_fd = _open_last_pid() if self.sole_ancestor else None
        self.last_pid_clean: bytes | None = None  # its value when the last check found no child
        self.capture = CappedText(int(init.get("output_max_bytes", 64 * 1024)))
        self.grade_fn: Any = None
        self.threads = 1  # threads running once the grader's module has run
        self.forked = False  # set in a forked copy by the at-fork hook (no getpid() per sample)
        self.pending: list[Any] = []  # a bare number or [value, error, details, stdout] per unsent result
        self.sent = 0  # results of the current batch already sent
        self.last_flush = time.monotonic()
        self.room: _Room | None = None  # what the limits left once the grader was loaded
        os.register_at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        """A grader's forked child must never speak the protocol: close it and mark the copy."""
        self.forked = True
        self.pending = []
        for fd in (self.proto_in, self.proto_out):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(self, message: dict[str, Any]) -> None:
        """Send one control message (loading / loaded)."""
        write_frame(self.proto_out, json.dumps(message).encode())

    def load(self, source: str, timeout_s: float) -> str | None:
        """Execute the grader module; returns an error text, or None when `grade` is ready."""
        module = types.ModuleType("grader")
        module.__file__ = "grader.py"
        sys.modules["grader"] = module
        linecache.cache["grader.py"] = (len(source), None, source.splitlines(True), "grader.py")
        _install_alarm()  # once; _arm() puts it back only if the grader replaced it
        try:
            code = compile(source, "grader.py", "exec")
            _start_ticks(timeout_s)
            _arm(timeout_s)
            try:
                exec(code, module.__dict__)
            finally:
                _disarm()
                _stop_ticks()
        except SampleTimeout:
            return f"loading the grader took longer than {timeout_s:g} s"
        except BaseException as exc:
            return "loading the grader failed:\n" + _short_traceback(exc)
        finally:
            self.capture.take()
        grade = module.__dict__.get("grade")
        if not callable(grade):
            return "the grader defines no callable `grade(sample, item)`"
        self.grade_fn = grade
        self.threads = _thread_count()  # the module's own threads (a library's pool) are not stray
        self.room = _Room.after_load()
        return None

    def grade_one(self, sample: Any, item: Any) -> str | None:
        """Grade one pair and queue its result (sent at once after an error); returns its error kind.

        Returns "resource" also when sending the results found one over the size limit: the
        worker then stops, like after a memory error.
        """
        value: Any = None
        error: str | None = None
        details: str | None = None
        try:  # _arm() and _disarm(), inlined: this runs once per sample
            if _getsignal(_SIGALRM) is not _on_alarm:
                _signal.signal(_SIGALRM, _on_alarm)
            started = _monotonic()
            _WATCH.deadline = started + self.sample_budget_s
            try:
                value = self.grade_fn(sample, item)
            finally:
                _WATCH.deadline = math.inf
        except SampleTimeout:
            error, details = "timeout", f"grade() ran longer than {self.sample_timeout_s:g} s"
        except MemoryError:
            error, details = "resource", "grade() ran out of memory (MemoryError)"
        except RecursionError as exc:
            error, details = "runtime", _short_traceback(exc)
        except OSError as exc:
            error = "resource" if exc.errno in RESOURCE_ERRNOS else "runtime"
            details = _short_traceback(exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: still the grader's fault
            error, details = "runtime", _short_traceback(exc)
        if self.forked:  # a forked copy of this worker came back out of grade()
            os._exit(0)
        if self.reap_children:
            self._reap()
        capture = self.capture
        if error is None and type(value) in BARE and not capture.parts and not capture.dropped:
            self.pending.append(value)  # the common case: a number and nothing printed
            if len(self.pending) >= FLUSH_RESULTS or started - self.last_flush >= FLUSH_AFTER_S:
                return self.flush()
            return None
        if type(value) not in PLAIN or (type(value) is str and len(value) > STR_PLAIN_CHARS):
            value, error, details = self._snapshot(value, error, details)
        stdout = self.capture.take()
        if error is None and not stdout and type(value) in BARE:
            self.pending.append(value)
        else:
            self.pending.append([value, error, details, stdout])
        if (
            error is not None
            or len(self.pending) >= FLUSH_RESULTS
            or time.monotonic() - self.last_flush >= FLUSH_AFTER_S
        ):
            return self.flush() or error
        return None

    def _snapshot(
        self, value: Any, error: str | None, details: str | None
    ) -> tuple[Any, str | None, str | None]:
        """A returned value as plain JSON data now (it may be mutable, or not encodable at all)."""
        try:
            encoded = json.dumps(value, default=_to_jsonable)
            if len(encoded) > self.result_max_bytes:
                return None, "resource", _oversized(len(encoded), value, self.result_max_bytes)
            return json.loads(encoded), error, details
        except (TypeError, ValueError, RecursionError) as exc:
            return None, "runtime", f"grade() returned a value that cannot be sent: {exc}"

    def flush(self) -> str | None:
        """Send the queued results; returns "resource" when one was over the size limit.

        One frame for all of them, unless together they are over the size limit: then each
        result is checked alone and sent in its own frame, and sending stops after an oversized one.
        """
        rows, self.pending = self.pending, []
        self.last_flush = time.monotonic()
        self.last_pid_clean = None  # a full check (waitpid) after each frame, whatever the last PID says
        if not rows:
            return None
        start, self.sent = self.sent, self.sent + len(rows)
        try:
            payload = json.dumps([start, rows]).encode()
            if len(payload) <= self.result_max_bytes:
                write_frame(self.proto_out, payload)
                return None
        except (TypeError, ValueError, RecursionError):
            pass
        for offset, row in enumerate(rows):
            payload, oversized = self._encode_alone(start + offset, row)
            write_frame(self.proto_out, payload)
            if oversized:
                return "resource"
        return None

    def _encode_alone(self, index: int, row: Any) -> tuple[bytes, bool]:
        if type(row) is not list:
            row = [row, None, None, ""]
        value, _error, _details, stdout = row
        try:
            payload = json.dumps([index, [row]]).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            row = [None, "runtime", f"grade() returned a value that cannot be sent: {exc}", stdout]
            payload = json.dumps([index, [row]]).encode()
        if len(payload) <= self.result_max_bytes:
            return payload, False
        row = [None, "resource", _oversized(len(payload), value, self.result_max_bytes), stdout[:1000]]
        return json.dumps([index, [row]]).encode(), True

    def _reap(self) -> None:
        """No process the grader started outlives its sample."""
        if self.sole_ancestor:
            last_pid = _read_last_pid(self.last_pid_fd)  # read first: a process started later changes it
            if last_pid is not None and last_pid == self.last_pid_clean:
                return  # nothing started since a check that found no child
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.last_pid_clean = last_pid
                return  # no child, so no other process in the sandbox
        self.last_pid_clean = None
        _kill_leftovers()

    def serve(self) -> int:
        while True:
            frame = read_frame(self.proto_in)
            if frame is None:
                return 0
            write_frame(self.proto_out, b"")  # taken: written before any grader code runs
            message = json.loads(frame)
            if message.get("op") != "grade":
                continue
            if self.grade_message(message) is not None:
                return 3
            if reason := self.worn_out():
                _retire(reason)

    def worn_out(self) -> str | None:
        """Why this worker should be replaced after its batch, if it should: grade() left threads
        running, or the worker has used up half the memory or CPU time its limits left it after
        loading (a grader that leaks is replaced before a sample breaks the limit)."""
        if (threads := _thread_count()) > self.threads:
            return f"grade() left {threads - self.threads} thread(s) running"
        return self.room.used_up() if self.room is not None else None

    def grade_message(self, message: dict[str, Any]) -> str | None:
        """Grade one batch message and send every result; the error kind that stops the worker, if any."""
        _install_alarm()
        self.sent, self.last_flush = 0, time.monotonic()
        items, index = message["items"], message["index"]
        _start_ticks(self.sample_timeout_s)
        try:
            grade_one = self.grade_one
            for k, sample in enumerate(message["samples"]):
                if type(sample) is str:  # what grade() gets for a sample sent as its text
                    sample = {"output_text": sample, "output_json": None, "output_tools": [], "choices": []}
                stop = grade_one(sample, items[index[k]].copy())
                if stop in EXIT_AFTER:
                    return stop
        finally:
            _stop_ticks()
        return self.flush()


def _thread_count() -> int:
    """Threads of this process, the kernel's count (threads a C library started count too)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _retire(reason: str) -> None:
    """Exit at once, stray threads and all (no interpreter shutdown: it would wait for them)."""
    with contextlib.suppress(OSError):
        os.write(2, f"rftkit worker: {reason}; recycling the worker\n".encode())
    os._exit(RECYCLE_STATUS)


class _Room:
    """The address space and CPU time the worker's rlimits leave it once the grader is loaded."""

    def __init__(self, memory_cap: float, cpu_cap: float) -> None:
        self.memory_at_load = _address_space()
        self.cpu_at_load = _cpu_seconds()
        self.memory_cap, self.cpu_cap = memory_cap, cpu_cap

    @classmethod
    def after_load(cls) -> _Room:
        import resource

        def soft(which: int) -> float:
            value = resource.getrlimit(which)[0]
            return math.inf if value == resource.RLIM_INFINITY else float(value)

        return cls(soft(resource.RLIMIT_AS), soft(resource.RLIMIT_CPU))

    def used_up(self) -> str | None:
        """A reason once half the room left after loading is used, of memory or of CPU time."""
        if math.isfinite(self.memory_cap) and self.memory_at_load:
            used = _address_space()
            if used > self.memory_at_load + (self.memory_cap - self.memory_at_load) / 2:
                return f"its memory grew to {used >> 20} MiB of its {int(self.memory_cap) >> 20} MiB limit"
        if math.isfinite(self.cpu_cap):
            used_s = _cpu_seconds()
            if used_s > self.cpu_at_load + (self.cpu_cap - self.cpu_at_load) / 2:
                return f"it used {used_s:.0f} s of its {self.cpu_cap:.0f} s CPU time limit"
        return None


def _address_space() -> int:
    """This process's address space in bytes (what RLIMIT_AS counts); 0 where /proc cannot tell."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _oversized(size: int, value: Any, limit: int) -> str:
    return f"result of {size} bytes (a {type(value).__name__}) is over the {limit} byte limit"


class _Watch:
    """When the running grade() (or the grader's module) must stop, in monotonic seconds."""

    deadline = math.inf


_WATCH = _Watch()


def _install_alarm() -> None:
    """Raise SampleTimeout in the main thread when a tick finds the deadline set by _arm() passed."""
    _signal.signal(signal.SIGALRM, _on_alarm)


def _start_ticks(timeout_s: float) -> None:
    """A periodic SIGALRM for a batch (one timer call per batch, not two per sample)."""
    period = min(TICK_S, max(timeout_s / 10, 0.001))
    _signal.setitimer(signal.ITIMER_REAL, period, period)


def _stop_ticks() -> None:
    _signal.setitimer(signal.ITIMER_REAL, 0)


def _arm(seconds: float) -> None:
    """Give the sample `seconds` (the handler is put back only if the grader replaced it)."""
    if _signal.getsignal(signal.SIGALRM) is not _on_alarm:
        _signal.signal(signal.SIGALRM, _on_alarm)
    _WATCH.deadline = time.monotonic() + max(seconds, 0.001)


def _disarm() -> None:
    _WATCH.deadline = math.inf


def _on_alarm(signum: int, frame: Any) -> None:
    if time.monotonic() >= _WATCH.deadline:
        _WATCH.deadline = math.inf
        raise SampleTimeout()


def _become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux prctl); False when that fails."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (ImportError, OSError, AttributeError):
        return False


LAST_PID_PATH = "/proc/sys/kernel/ns_last_pid"


def _open_last_pid() -> int | None:
    try:
        return os.open(LAST_PID_PATH, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _read_last_pid(fd: int | None) -> bytes | None:
    """The last PID handed out in this pid namespace (None when it cannot be read)."""
    if fd is None:
        return None
    try:
        return os.pread(fd, 32, 0) or None
    except OSError:
        return None


def _kill_leftovers() -> None:
    """Kill every other process in this sandbox's pid namespace, then reap our zombies."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return  # no other process (zombies count too)
    except OSError:
        pass
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.001)


def _exit_when_orphaned(fd: int) -> None:
    """End the worker as soon as nobody can write to its requests (`fd` hung up: the service is
    gone, e.g. killed -9), also in the middle of grade(). A docker worker is its container's PID 1,
    so the container and every process in it end too (the docker backend's containers take stdin
    once: the daemon closes it when the service's attach socket goes). Not for a parent that
    closes the requests' pipe and still reads the results (tests that write a whole conversation).
    """
    import select
    import threading

    def watch() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # they stay the main thread's
        poller = select.poll()
        poller.register(fd, 0)  # hang-ups and errors are always reported
        while True:
            try:
                events = poller.poll()
            except InterruptedError:  # pragma: no cover - poll() is retried by Python since 3.5
                continue
            if any(flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, flags in events):
                os._exit(0)

    threading.Thread(target=watch, name="rftkit-orphan-watch", daemon=True).start()


def _reuse_large_buffers() -> None:
    """Batches (hundreds of kB) from reused heap, not fresh pages each (rftkit.core.heap says
    why; this file cannot import it). Smaller thresholds than the service's: this process has a
    memory limit of its own."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt
        mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
        mallopt(-1, 8 << 20)  # M_TRIM_THRESHOLD


def _apply_rlimits(limits: dict[str, int]) -> None:
    import resource

    for name, value in limits.items():
        which = getattr(resource, f"RLIMIT_{name}", None)
        if which is not None and value is not None:
            resource.setrlimit(which, (int(value), int(value)))


def main() -> int:
    """Entry point inside the sandbox."""
    proto_in, proto_out = os.dup(0), os.dup(1)  # dup'd descriptors are not inherited by children
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the worker
    frame = read_frame(proto_in)
    if frame is None:
        return 0
    init = json.loads(frame)
    _reuse_large_buffers()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the file size limit: EFBIG, not death
    _apply_rlimits(init.get("rlimits") or {})
    worker = Worker(proto_in, proto_out, init)
    if init.get("exit_when_orphaned"):
        _exit_when_orphaned(proto_in)  # before the grader runs: its thread is not a stray one
    worker.send({"loading": True})  # from here on, a death is the grader's doing
    sys.stdout = sys.stderr = worker.capture  # type: ignore[assignment]
    error = worker.load(init["source"], float(init.get("load_timeout_s", 30.0)))
    worker.send({"ok": error is None, "details": error, "python": sys.version.split()[0]})
    if error is not None:
        return 2
    return worker.serve()


if __name__ == "__main__":
    sys.exit(main())
