"""The job runner copies a run's events into the database: every step once, also when the trainer
rewrote events.jsonl to resume from a checkpoint and it grew back past the runner's offset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from rftkit.grader_service.http.db import Database, EventRow, JobRow
from rftkit.grader_service.http.runner import JobRunner, Running
from rftkit.trainer.events import EventLog
from sqlalchemy import select


def metrics_steps(db: Database, job_id: str) -> list[int]:
    with db.session() as session:
        query = select(EventRow.step).where(EventRow.job_id == job_id, EventRow.type == "metrics")
        return sorted(session.scalars(query))


def test_a_rewritten_event_log_that_grew_past_the_offset_loses_no_step(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    with db.session() as session:
        job = JobRow(id="ftjob-1", tenant="a", model="tiny", status="running", training_file="file-1",
                     method={}, created_at=0, run_dir=str(run_dir))  # fmt: skip
        session.add(job)
    runner = JobRunner(SimpleNamespace(db=db, settings=None), tmp_path)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    run = Running("ftjob-1", process, run_dir, None)
    log = EventLog(run_dir, tensorboard=False)
    for step in range(6):
        log.write({"step": step, "train_reward_mean": 0.5, "timing": {"step": 1.23456789}})
    runner._follow(run)
    # The run resumes from step 3: the trainer keeps steps 0-3 and redoes 4 and 5 (shorter lines
    # this time: real events differ in their timings), then writes step 6, a long line that ends
    # past the runner's old offset, all before the runner looks again.
    log.truncate_after(3)
    log.write({"step": 4, "train_reward_mean": 0.5})
    log.write({"step": 5, "train_reward_mean": 0.5})
    log.write({"step": 6, "train_reward_mean": 0.5, "train_errors": {f"kind_{k}": k for k in range(20)}})
    assert (run_dir / "events.jsonl").stat().st_size > run.offset  # it grew back past the offset
    runner._follow(run)
    assert metrics_steps(db, "ftjob-1") == list(range(7))
    log.write({"step": 7, "train_reward_mean": 0.5})
    runner._follow(run)
    assert metrics_steps(db, "ftjob-1") == list(range(8))
    db.close()
