"""The job runner: queued jobs run one `rft train` subprocess each, followed into the database.

- Up to `max_running_jobs` at once, oldest first; a job marked running when the server starts (a
  restart, even after kill -9) is started again and `rft train` resumes from its newest checkpoint.
- Each tick reads new lines of the run's events.jsonl (one metrics event per step, upserted by
  step, so a resumed run's replayed steps do not double) and its checkpoints (meta.json).
- cancel: SIGTERM to the process group at once, SIGKILL 5 s later. pause: once a checkpoint newer
  than the request is written (and its step's event is in), the run is stopped and the job is
  `paused`; resume queues it again, and the same command continues from that checkpoint.
- The child gets SIGKILL when the server dies (PR_SET_PDEATHSIG), so a kill -9 of the server leaves
  no orphan training into the same folder as the restarted server's run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import select

from .db import CheckpointRow, Database, EventRow, JobRow, new_id, now
from .settings import HttpSettings


class RunnerContext(Protocol):
    """What a runner needs of the server (the app's HttpContext): its database and settings."""

    db: Database
    settings: HttpSettings


log = logging.getLogger("rftkit.grader_service.http")
TICK_S = 0.25
KILL_AFTER_S = 5.0
PAUSE_EVENT_WAIT_S = 15.0

# Runs `rft train` with PR_SET_PDEATHSIG (1) = SIGKILL set first: the run dies with the server.
_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv.pop(1)): os._exit(1)\n"
    "from rftkit.cli.main import main\n"
    "sys.argv[0] = 'rft'\n"
    "main()\n"
)


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def metrics_message(event: dict[str, Any], total: int | None) -> str:
    step = event.get("step")
    parts = [f"Step {step}/{total}" if total else f"Step {step}"]
    for key, label in (("train_reward_mean", "train reward"), ("valid_reward_mean", "valid reward")):
        if isinstance(event.get(key), int | float) and _finite(event[key]) is not None:
            parts.append(f"{label}={event[key]:.4f}")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _clean(data: Any) -> Any:
    """JSON-safe (NaN and infinities as null)."""
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_clean(v) for v in data]
    return _finite(data)


def model_name(job: JobRow) -> str:
    """`ft:<base>:<suffix>:<id>` (suffix: the job's, else the tenant)."""
    return f"ft:{job.model}:{job.suffix or job.tenant}:{job.id.removeprefix('ftjob-')[:12]}"


@dataclass
class Running:
    job_id: str
    process: subprocess.Popen
    run_dir: Path
    log_file: Any
    offset: int = 0  # bytes of events.jsonl copied so far
    inode: int | None = None  # of the events.jsonl that offset is in
    steps: set[int] = field(default_factory=set)
    checkpoints: set[int] = field(default_factory=set)
    pause_from: int | None = None  # the newest checkpoint step when the pause was seen
    stop_at: float | None = None  # when SIGKILL follows the SIGTERM
    stopping_for: str | None = None  # pause | cancel | shutdown
    paused_checkpoint: int | None = None
    pause_seen_at: float | None = None


class JobRunner:
    """Trains the queued jobs of every tenant, one `rft train` process each."""

    def __init__(self, ctx: RunnerContext, root: Path) -> None:
        self.ctx = ctx
        self.root = root
        self.running: dict[str, Running] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rft-jobs", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every run (their jobs stay `running`, to resume at the next start) and the loop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("job runner tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()
        for run in list(self.running.values()):
            self._signal(run, signal.SIGTERM)
        deadline = time.monotonic() + KILL_AFTER_S
        for run in list(self.running.values()):
            try:
                run.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(run, signal.SIGKILL)
                run.process.wait()
            self._follow(run)
            run.log_file.close()

    # -- one tick -------------------------------------------------------------------------------

    def tick(self) -> None:
        for run in list(self.running.values()):
            self._follow(run)
            self._obey(run)
            if run.process.poll() is not None:
                self._finish(run)
        self._launch()

    def _launch(self) -> None:
        free = self.ctx.settings.max_running_jobs - len(self.running)
        if free <= 0:
            return
        with self.ctx.db.session() as session:
            # running first: jobs that were running when the server stopped continue before new ones
            rows = session.scalars(
                select(JobRow).where(JobRow.status.in_(("running", "queued"))).order_by(JobRow.seq)
            ).all()
            rows = sorted(rows, key=lambda j: (j.status != "running", j.seq))
            for job in rows:
                if free <= 0:
                    break
                if job.id in self.running:
                    continue
                self.running[job.id] = self._spawn(job)
                resumed = any(Path(job.run_dir, "checkpoints").glob("step_*/meta.json"))
                job.status, job.pid = "running", self.running[job.id].process.pid
                message = (
                    "Fine-tuning job resumed from its last checkpoint"
                    if resumed
                    else "Fine-tuning job started"
                )
                session.add(_event(job.id, message))
                free -= 1

    def _spawn(self, job: JobRow) -> Running:
        run_dir = Path(job.run_dir)
        _drop_checkpoints_without_events(run_dir)
        log_file = open(run_dir / "train.log", "ab")  # noqa: SIM115 - held while the run lives
        command = [
            sys.executable, "-c", _LAUNCH, str(os.getpid()), "train", str(run_dir / "config.yaml"),
            "--output-dir", str(run_dir), "--no-progress",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=run_dir,
        )  # fmt: skip
        log.info("job %s: started rft train (pid %d) in %s", job.id, process.pid, run_dir)
        run = Running(job.id, process, run_dir, log_file)
        with self.ctx.db.session() as session:
            run.steps = set(
                session.scalars(
                    select(EventRow.step).where(EventRow.job_id == job.id, EventRow.type == "metrics")
                )
            )
            run.checkpoints = set(
                session.scalars(select(CheckpointRow.step).where(CheckpointRow.job_id == job.id))
            )
        return run

    def _signal(self, run: Running, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.process.pid, signum)

    def _obey(self, run: Running) -> None:
        """Carry out a cancel or a pause the API recorded."""
        if run.process.poll() is not None:
            return
        if run.stop_at is not None:
            if time.monotonic() >= run.stop_at:
                self._signal(run, signal.SIGKILL)
            return
        with self.ctx.db.session() as session:
            job = session.scalar(select(JobRow).where(JobRow.id == run.job_id))
            if job is None:
                return
            if job.status == "cancelled":
                self._stop_run(run, "cancel")
            elif job.requested == "pause":
                newest = max(run.checkpoints, default=-1)
                if run.pause_from is None:
                    run.pause_from = newest
                elif newest > run.pause_from:
                    run.pause_seen_at = run.pause_seen_at or time.monotonic()
                    waited = time.monotonic() - run.pause_seen_at
                    if newest in run.steps or waited > PAUSE_EVENT_WAIT_S:
                        run.paused_checkpoint = newest
                        self._stop_run(run, "pause")
            else:
                run.pause_from = run.pause_seen_at = None

    def _stop_run(self, run: Running, why: str) -> None:
        run.stopping_for = why
        run.stop_at = time.monotonic() + KILL_AFTER_S
        self._signal(run, signal.SIGTERM)

    # -- following a run --------------------------------------------------------------------------

    def _follow(self, run: Running) -> None:
        """Copy new events and checkpoints of the run into the database; the run's bookkeeping moves
        on only once they are committed, so a failed write is retried at the next tick."""
        events = run.run_dir / "events.jsonl"
        new: list[dict[str, Any]] = []
        offset, inode = run.offset, run.inode
        if events.is_file():
            with events.open("rb") as handle:
                status = os.fstat(handle.fileno())
                if status.st_ino != inode or status.st_size < offset:
                    # a new file: the trainer rewrote it to resume from a checkpoint
                    offset, inode = 0, status.st_ino
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(complete)
            for raw in complete.splitlines():
                try:
                    new.append(json.loads(raw))
                except json.JSONDecodeError:
                    continue
        checkpoints = []
        for meta in sorted((run.run_dir / "checkpoints").glob("step_*/meta.json")):
            try:
                info = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            checkpoints.append((int(info["step"]), info, meta.parent))
        on_disk = {step for step, _, _ in checkpoints}
        if not new and on_disk <= run.checkpoints and not self._pruned(run, on_disk):
            run.offset, run.inode = offset, inode
            return
        steps, known = set(run.steps), set(run.checkpoints)
        with self.ctx.db.session() as session:
            job = session.scalar(select(JobRow).where(JobRow.id == run.job_id))
            if job is None:
                return
            if job.steps_total is None:
                job.steps_total = _total_steps(run.run_dir)
            for event in new:
                self._record_event(session, job, steps, event)
            session.flush()
            for step, info, folder in checkpoints:
                if step in known:
                    continue
                metrics = _checkpoint_metrics(session, job.id, step, info)
                session.add(
                    CheckpointRow(
                        id=new_id("ftckpt-"), job_id=job.id, step=step, metrics=metrics,
                        model_name=f"{model_name(job)}:ckpt-step-{step}", path=str(folder / "model"),
                        created_at=now(), deleted=False,
                    )
                )  # fmt: skip
                known.add(step)
                session.add(_event(job.id, f"Checkpoint created at step {step}"))
            for row in session.scalars(select(CheckpointRow).where(CheckpointRow.job_id == job.id)):
                row.deleted = row.step not in on_disk
        run.offset, run.inode, run.steps, run.checkpoints = offset, inode, steps, known

    @staticmethod
    def _pruned(run: Running, on_disk: set[int]) -> bool:
        return bool(run.checkpoints - on_disk)

    def _record_event(self, session: Any, job: JobRow, steps: set[int], event: dict[str, Any]) -> None:
        step = int(event.get("step", 0))
        data = _clean({**event, "total_steps": job.steps_total})
        message = metrics_message(event, job.steps_total)
        if step in steps:
            existing = session.scalar(
                select(EventRow).where(
                    EventRow.job_id == job.id, EventRow.type == "metrics", EventRow.step == step
                )
            )
            if existing is not None:
                existing.data, existing.message = data, message
                return
        session.add(_event(job.id, message, type="metrics", step=step, data=data))
        steps.add(step)
        job.last_step = max(job.last_step, step)

    def _finish(self, run: Running) -> None:
        self._follow(run)
        run.log_file.close()
        del self.running[run.job_id]
        code = run.process.returncode
        with self.ctx.db.session() as session:
            job = session.scalar(select(JobRow).where(JobRow.id == run.job_id))
            if job is None:
                return
            job.pid = None
            if job.status == "cancelled":
                return
            if run.stopping_for == "pause":
                job.status, job.requested = "paused", None
                session.add(
                    _event(job.id, f"Job paused after the checkpoint at step {run.paused_checkpoint}")
                )
                return
            if code == 0 and (run.run_dir / "final" / "config.json").is_file():
                job.status, job.finished_at = "succeeded", now()
                job.fine_tuned_model = model_name(job)
                job.requested = None
                session.add(_event(job.id, f"New fine-tuned model created: {job.fine_tuned_model}"))
                session.add(_event(job.id, "The job has successfully completed"))
                return
            message = _error_from_log(run.run_dir / "train.log") or f"rft train exited with code {code}"
            job.status, job.finished_at = "failed", now()
            job.error = {"code": "invalid_training_config" if code == 2 else "training_failed",
                         "message": message, "param": None}  # fmt: skip
            session.add(_event(job.id, f"The job failed: {message}", level="error"))
        log.info("job %s: rft train exited with %s", run.job_id, code)


def _event(job_id: str, message: str, *, level: str = "info", **extra: Any) -> EventRow:
    return EventRow(
        id=new_id("ftevent-"), job_id=job_id, created_at=now(), level=level, message=message, **extra
    )


def _drop_checkpoints_without_events(run_dir: Path) -> None:
    """Remove checkpoints newer than the last step in events.jsonl before a run resumes.

    The trainer writes a step's checkpoint just before its event; a run stopped in between (a pause,
    a kill -9) would resume after that step and its event would never be written.
    """
    events = run_dir / "events.jsonl"
    last = -1
    if events.is_file():
        for raw in events.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                last = max(last, int(json.loads(raw).get("step", -1)))
            except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
                continue
    for meta in (run_dir / "checkpoints").glob("step_*/meta.json"):
        try:
            step = int(json.loads(meta.read_text())["step"])
        except (OSError, json.JSONDecodeError, KeyError, ValueError):
            continue
        if step > last:
            log.info(
                "%s: checkpoint %d has no event (stopped in between); resuming from an earlier one",
                run_dir,
                step,
            )
            shutil.rmtree(meta.parent, ignore_errors=True)


def _total_steps(run_dir: Path) -> int | None:
    path = run_dir / "resolved_config.yaml"
    if not path.is_file():
        return None
    try:
        return int((yaml.safe_load(path.read_text()) or {}).get("resolved", {}).get("steps"))
    except (TypeError, ValueError, yaml.YAMLError):
        return None


def _checkpoint_metrics(session: Any, job_id: str, step: int, info: dict[str, Any]) -> dict[str, Any]:
    event = session.scalar(
        select(EventRow).where(EventRow.job_id == job_id, EventRow.type == "metrics", EventRow.step == step)
    )
    metrics = {"step": float(step), "valid_reward_mean": _finite(info.get("valid_reward_mean"))}
    if event is not None and event.data:
        for key in ("train_reward_mean", "valid_reward_mean", "full_valid_reward_mean"):
            if key in event.data:
                metrics[key] = event.data[key]
    return metrics


def _error_from_log(path: Path) -> str | None:
    """The `error: ...` lines `rft train` printed last (its readable reason for failing)."""
    try:
        lines = path.read_text(errors="replace").splitlines()[-200:]
    except OSError:
        return None
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("error: "):
            # the CLI's own advice ("run the same command again") is not for API users
            kept = [
                line for line in lines[index : index + 12] if not line.startswith("The newest checkpoint")
            ]
            return "\n".join(kept).removeprefix("error: ").strip()
    tail = [line for line in lines[-5:] if line.strip()]
    return " | ".join(tail) if tail else None
