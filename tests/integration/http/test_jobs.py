"""Reinforcement fine-tuning jobs with the official SDK, end to end on the tiny example model.

A few steps each (a 12-line training subset, batch 4, a checkpoint at every step), transformers'
generate for rollouts. Covers: create (and what it refuses), events, pause after a checkpoint and
resume from it, succeeded with checkpoints and a fine-tuned model, cancel within seconds, kill -9
of the server mid-job and a restart that finishes it (a queued job stays queued), tenants.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import openai
import pytest
from rftkit.grader_service.http.testing import http_service

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "examples" / "tiny"
GRADER = {"type": "string_check", "name": "exact_word", "input": "{{sample.output_text}}",
          "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
FAST = {"rollout.engine": "transformers", "rollout.n": 4, "eval.max_items": 4, "trainer.threads": 1}
pytestmark = pytest.mark.timeout(900)


def _lines(path: Path, count: int) -> bytes:
    return "".join(path.read_text().splitlines(keepends=True)[:count]).encode()


@pytest.fixture(scope="module")
def files(client_a):
    train = client_a.files.create(file=("train.jsonl", _lines(TINY / "train.jsonl", 12)), purpose="fine-tune")
    valid = client_a.files.create(file=("valid.jsonl", _lines(TINY / "valid.jsonl", 8)), purpose="fine-tune")
    return train.id, valid.id


def create(client, files, steps: int, **extra):
    train, valid = files
    return client.fine_tuning.jobs.create(
        model="tiny",
        training_file=train,
        validation_file=valid,
        suffix="test",
        method={"type": "reinforcement", "reinforcement": {
            "grader": GRADER,
            "hyperparameters": {"batch_size": 4, "n_epochs": 10, "eval_interval": 1, "eval_samples": 1},
        }},
        extra_body={"rftkit": {"overrides": {**FAST, "trainer.max_steps": steps}}},
        **extra,
    )  # fmt: skip


def wait_for(client, job_id: str, statuses: set[str], timeout: float = 400.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert job.status not in {"failed", "cancelled"} - statuses, job.error
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def wait_until(condition, timeout: float = 400.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {timeout} s")


def test_create_refuses_what_cannot_train(client_a, client_b, files) -> None:
    train, valid = files
    jobs = client_a.fine_tuning.jobs
    reinforcement = {"type": "reinforcement", "reinforcement": {"grader": GRADER}}
    with pytest.raises(openai.BadRequestError) as caught:
        jobs.create(model="tiny", training_file=train, validation_file=train, method=reinforcement)
    assert caught.value.body["code"] == "answer_overlap" and caught.value.body["param"] == "validation_file"
    with pytest.raises(openai.BadRequestError, match="not supported"):
        jobs.create(model="tiny", training_file=train, validation_file=valid, method={"type": "supervised"})
    with pytest.raises(openai.BadRequestError) as caught:
        jobs.create(model="gpt-4o-mini", training_file=train, validation_file=valid, method=reinforcement)
    assert caught.value.body["param"] == "model" and "tiny" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        bad_grader = {"type": "reinforcement", "reinforcement": {"grader": {**GRADER, "operation": "is"}}}
        jobs.create(model="tiny", training_file=train, validation_file=valid, method=bad_grader)
    assert caught.value.body["param"] == "method.reinforcement.grader"
    with pytest.raises(openai.NotFoundError) as caught:  # tenant b cannot train on tenant a's files
        client_b.fine_tuning.jobs.create(model="tiny", training_file=train, validation_file=valid,
                                         method=reinforcement)  # fmt: skip
    assert caught.value.body["param"] == "training_file"


# Long enough that a pause sent after the first checkpoint lands before the end on a busy machine.
STEPS = 20


def test_job_pauses_resumes_and_succeeds(client_a, client_b, files) -> None:
    job = create(client_a, files, steps=STEPS)
    assert job.id.startswith("ftjob-") and job.status == "queued" and job.model == "tiny"
    assert job.method.type == "reinforcement" and job.method.reinforcement.grader.type == "string_check"
    wait_for(client_a, job.id, {"running"})
    # pause once the run has reached step 1: it stops after its next checkpoint
    wait_until(lambda: client_a.fine_tuning.jobs.checkpoints.list(job.id).data, what="first checkpoint")
    client_a.fine_tuning.jobs.pause(job.id)
    paused = wait_for(client_a, job.id, {"paused"})
    steps_then = [c.step_number for c in client_a.fine_tuning.jobs.checkpoints.list(job.id)]
    time.sleep(2)
    assert client_a.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert [c.step_number for c in client_a.fine_tuning.jobs.checkpoints.list(job.id)] == steps_then
    assert steps_then[0] < STEPS, "paused before the end"
    assert client_a.fine_tuning.jobs.resume(job.id).status == "queued"
    done = wait_for(client_a, job.id, {"succeeded"})
    assert done.fine_tuned_model == f"ft:tiny:test:{job.id.removeprefix('ftjob-')[:12]}"
    assert done.finished_at and done.error is None

    events = list(client_a.fine_tuning.jobs.list_events(job.id, limit=100))
    metrics = {e.data["step"]: e for e in events if e.type == "metrics"}
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert sorted(steps) == list(range(STEPS + 1)), (
        "one metrics event per step, none lost or doubled by pause/resume"
    )
    assert all("train_reward_mean" in e.data for s, e in metrics.items() if s > 0)
    assert (
        metrics[STEPS].message.startswith(f"Step {STEPS}/{STEPS}")
        and "valid_reward_mean" in metrics[STEPS].data
    )
    messages = [e.message for e in events]
    assert "The job has successfully completed" in messages
    assert paused.status == "paused"
    assert any(m.startswith("Job paused after the checkpoint") for m in messages)
    assert "Fine-tuning job resumed from its last checkpoint" in messages
    page = client_a.fine_tuning.jobs.list_events(job.id, limit=2)
    assert len(page.data) == 2 and page.has_more

    checkpoints = client_a.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints and all(c.id.startswith("ftckpt-") for c in checkpoints)
    assert [c.step_number for c in checkpoints] == sorted((c.step_number for c in checkpoints), reverse=True)
    newest = checkpoints[0]
    assert newest.step_number == STEPS and newest.fine_tuning_job_id == job.id
    assert newest.fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-{STEPS}"
    assert newest.metrics.step == STEPS and "valid_reward_mean" in newest.metrics.model_dump()
    assert len(checkpoints) <= 4, "the trainer keeps the best three and the newest"

    models = [m.id for m in client_a.models.list()]
    assert done.fine_tuned_model in models and newest.fine_tuned_model_checkpoint in models
    # the second tenant sees none of it
    assert job.id not in [j.id for j in client_b.fine_tuning.jobs.list()]
    assert done.fine_tuned_model not in [m.id for m in client_b.models.list()]
    for call in (client_b.fine_tuning.jobs.retrieve, client_b.fine_tuning.jobs.list_events,
                 client_b.fine_tuning.jobs.checkpoints.list, client_b.fine_tuning.jobs.cancel):  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            call(job.id)
    assert job.id in [j.id for j in client_a.fine_tuning.jobs.list()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _train_pids(run_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(run_dir / "config.yaml") in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return [pid for pid in found if _alive(pid)]


def test_cancel_stops_the_run_within_seconds(service, client_a, files) -> None:
    job = create(client_a, files, steps=200)
    wait_for(client_a, job.id, {"running"})
    run_dir = service.data_dir / "http" / "jobs" / job.id
    wait_until(lambda: _train_pids(run_dir), timeout=60, what="rft train process")
    wait_until(lambda: (run_dir / "events.jsonl").is_file(), what="first event")  # truly training
    start = time.monotonic()
    assert client_a.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    wait_until(lambda: not _train_pids(run_dir), timeout=10, what="stop of rft train")
    assert time.monotonic() - start < 10
    assert client_a.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="already cancelled"):
        client_a.fine_tuning.jobs.cancel(job.id)


def test_kill_9_mid_job_and_restart_loses_nothing(tmp_path, sandbox) -> None:
    tiny = TINY / "config.yaml"
    with http_service(tmp_path / "svc", "--sandbox", sandbox, "--base-model", f"tiny={tiny}") as service:
        client = service.client()
        train = client.files.create(file=("t.jsonl", _lines(TINY / "train.jsonl", 12)), purpose="fine-tune")
        valid = client.files.create(file=("v.jsonl", _lines(TINY / "valid.jsonl", 8)), purpose="fine-tune")
        first = create(client, (train.id, valid.id), steps=4)
        second = create(client, (train.id, valid.id), steps=1)  # waits: one job trains at a time
        wait_until(lambda: client.fine_tuning.jobs.checkpoints.list(first.id).data, what="a checkpoint")
        before = {e.id for e in client.fine_tuning.jobs.list_events(first.id, limit=1000)}
        assert client.fine_tuning.jobs.retrieve(second.id).status == "queued"
        service.kill9()
        run_dir = service.data_dir / "http" / "jobs" / first.id
        wait_until(lambda: not _train_pids(run_dir), timeout=15, what="the orphan run to die with the server")
        service.start()
        client = service.client()
        assert client.fine_tuning.jobs.retrieve(second.id).status == "queued"
        done = wait_for(client, first.id, {"succeeded"})
        after = list(client.fine_tuning.jobs.list_events(first.id, limit=1000))
        assert before <= {e.id for e in after}, "events from before the crash are all still listed"
        assert any("resumed from its last checkpoint" in e.message for e in after)
        steps = sorted(e.data["step"] for e in after if e.type == "metrics")
        assert steps == [0, 1, 2, 3, 4]
        assert client.fine_tuning.jobs.checkpoints.list(first.id).data[0].step_number == 4
        assert done.fine_tuned_model in [m.id for m in client.models.list()]
        assert wait_for(client, second.id, {"succeeded"}).fine_tuned_model


def test_a_failed_job_carries_a_readable_error(client_a, files) -> None:
    broken = {
        "type": "python",
        "name": "broken",
        "source": "def grade(sample, item):\n    raise ValueError('x')\n",
    }
    train, valid = files
    method = {
        "type": "reinforcement",
        "reinforcement": {"grader": broken, "hyperparameters": {"batch_size": 4}},
    }
    job = client_a.fine_tuning.jobs.create(
        model="tiny", training_file=train, validation_file=valid, method=method,
        extra_body={"rftkit": {"overrides": {**FAST, "trainer.max_steps": 2}}},
    )  # fmt: skip
    failed = wait_for(client_a, job.id, {"failed"})
    assert failed.error.code == "training_failed" and failed.finished_at
    assert "no valid reward" in failed.error.message and "ValueError: x" in failed.error.message
    assert "run the same command" not in failed.error.message
    events = [e for e in client_a.fine_tuning.jobs.list_events(job.id) if e.level == "error"]
    assert events and events[0].message.startswith("The job failed: ")
