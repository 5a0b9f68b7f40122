"""The eval runner: queued eval runs run one worker process each (eval_worker.py), results go to the
database when it is done.

- Up to `max_running_evals` at once, oldest first. A run `in_progress` when the server starts (a
  restart, even after kill -9) starts over from its frozen items; nothing of it was recorded yet.
- Cancel (or deleting the run or its eval): SIGTERM to the worker's process group, SIGKILL 5 s later.
- The worker gets SIGKILL when the server dies (PR_SET_PDEATHSIG), as training runs do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select

from .db import EvalRunRow, OutputItemRow, new_id, now
from .runner import RunnerContext, _error_from_log


class EvalRunnerContext(RunnerContext, Protocol):
    """What the eval runner needs of the server beyond a job runner's: a way to call its own API."""

    @property
    def self_url(self) -> str: ...

    def internal_token(self, tenant: str) -> str: ...


log = logging.getLogger("rftkit.grader_service.http")
TICK_S = 0.25
KILL_AFTER_S = 5.0

_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv.pop(1)): os._exit(1)\n"
    "from rftkit.grader_service.http.eval_worker import main\n"
    "main()\n"
)


@dataclass
class EvalProcess:
    run_id: str
    process: subprocess.Popen
    run_dir: Path
    log_file: Any
    stop_at: float | None = None


class EvalRunner:
    """Runs the queued eval runs of every tenant, one worker process each."""

    def __init__(self, ctx: EvalRunnerContext) -> None:
        self.ctx = ctx
        self.running: dict[str, EvalProcess] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rft-evals", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the workers (their runs stay in_progress, to start over at the next start) and the loop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("eval runner tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()
        for run in self.running.values():
            self._signal(run, signal.SIGTERM)
        for run in self.running.values():
            try:
                run.process.wait(KILL_AFTER_S)
            except subprocess.TimeoutExpired:
                self._signal(run, signal.SIGKILL)
                run.process.wait()
            run.log_file.close()

    def tick(self) -> None:
        for run in list(self.running.values()):
            if run.process.poll() is not None:
                self._finish(run)
            else:
                self._obey(run)
        self._launch()

    def _launch(self) -> None:
        free = self.ctx.settings.max_running_evals - len(self.running)
        if free <= 0:
            return
        with self.ctx.db.session() as session:
            rows = session.scalars(
                select(EvalRunRow)
                .where(EvalRunRow.status.in_(("in_progress", "queued")), EvalRunRow.deleted.is_(False))
                .order_by(EvalRunRow.seq)
            ).all()
            for row in sorted(rows, key=lambda r: (r.status != "in_progress", r.seq)):
                if free <= 0:
                    break
                if row.id in self.running:
                    continue
                session.execute(delete(OutputItemRow).where(OutputItemRow.run_id == row.id))
                self.running[row.id] = self._spawn(row)
                row.status, row.pid = "in_progress", self.running[row.id].process.pid
                free -= 1

    def _spawn(self, row: EvalRunRow) -> EvalProcess:
        run_dir = Path(row.run_dir)
        for stale in ("output_items.jsonl", "result.json"):
            (run_dir / stale).unlink(missing_ok=True)
        request = json.loads((run_dir / "request.json").read_text(encoding="utf-8"))
        env = dict(os.environ)
        env.pop("RFT_EVAL_API_KEY", None)
        if request.get("server_model"):  # the model answers through this server, with the tenant's key
            env["RFT_EVAL_API_KEY"] = self.ctx.internal_token(row.tenant)
            request["model_target"] = f"model={self.ctx.self_url}#{request['server_model']}"
            (run_dir / "request.json").write_text(json.dumps(request, indent=2), encoding="utf-8")
        log_file = open(run_dir / "eval.log", "ab")  # noqa: SIM115 - held while the worker lives
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(os.getpid()), str(run_dir)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=run_dir, env=env,
        )  # fmt: skip
        log.info("eval run %s: started (pid %d) in %s", row.id, process.pid, run_dir)
        return EvalProcess(row.id, process, run_dir, log_file)

    def _signal(self, run: EvalProcess, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.process.pid, signum)

    def _obey(self, run: EvalProcess) -> None:
        if run.stop_at is not None:
            if time.monotonic() >= run.stop_at:
                self._signal(run, signal.SIGKILL)
            return
        with self.ctx.db.session() as session:
            status = session.scalar(select(EvalRunRow.status).where(EvalRunRow.id == run.run_id))
        if status != "in_progress":
            run.stop_at = time.monotonic() + KILL_AFTER_S
            self._signal(run, signal.SIGTERM)

    def _finish(self, run: EvalProcess) -> None:
        run.log_file.close()
        del self.running[run.run_id]
        code = run.process.returncode
        output = run.run_dir / "output_items.jsonl"
        with self.ctx.db.session() as session:
            row = session.scalar(select(EvalRunRow).where(EvalRunRow.id == run.run_id))
            if row is None:
                return
            row.pid = None
            if row.status != "in_progress":  # canceled meanwhile
                return
            row.finished_at = now()
            if code == 0 and output.is_file():
                result = json.loads((run.run_dir / "result.json").read_text(encoding="utf-8"))
                created = now()
                for raw in output.read_text(encoding="utf-8").splitlines():
                    item = json.loads(raw)
                    session.add(OutputItemRow(id=new_id("outputitem_"), run_id=row.id, eval_id=row.eval_id,
                                              created_at=created, **item))  # fmt: skip
                row.result_counts = result["result_counts"]
                row.per_testing_criteria_results = result["per_testing_criteria_results"]
                total = row.result_counts["total"] - row.result_counts["errored"]
                if row.model:
                    row.per_model_usage = [{"model_name": row.model, "invocation_count": total,
                                            "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                                            "cached_tokens": 0}]  # fmt: skip
                row.status = "completed"
            else:
                message = _error_from_log(run.run_dir / "eval.log") or f"the eval exited with code {code}"
                row.status = "failed"
                row.error = {"code": "eval_run_failed", "message": message}
        log.info("eval run %s: worker exited with %s", run.run_id, code)
