"""Grader replicas: one session spreads over them (gRPC round-robin), and a replica killed with
SIGKILL mid-run costs no grade (its requests are sent again to another replica)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from rftkit.core.records import Sample
from rftkit.grading.replicas import replica_target
from rftkit.grading.session import open_session
from rftkit.trainer.roles.graders import start_grader_replicas

pytestmark = pytest.mark.timeout(300)
SPEC = {"type": "string_check", "name": "eq", "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip


def test_target_lists_every_replica() -> None:
    assert replica_target(["127.0.0.1:1", "localhost:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"


def test_a_killed_replica_costs_no_grade(sandbox: str) -> None:
    samples = [Sample(output_text="a" if i % 2 else "b") for i in range(64)]
    items = [{"answer": "a"}] * 64
    with (
        start_grader_replicas(2, sandbox=sandbox) as group,
        open_session(SPEC, address=group.addresses, token=group.token, notify=print) as session,
    ):
        graded: list[list[float | None]] = []
        failures: list[BaseException] = []

        def keep_grading() -> None:
            try:
                deadline = time.monotonic() + 20
                while len(graded) < 60 and time.monotonic() < deadline:
                    graded.append([r.reward if not r.metadata.errors.raised() else None
                                   for r in session.grade(samples, items)])  # fmt: skip
            except BaseException as exc:  # reported below
                failures.append(exc)

        worker = threading.Thread(target=keep_grading)
        worker.start()
        while len(graded) < 10 and worker.is_alive():
            time.sleep(0.01)
        os.kill(group.services[0].pid, signal.SIGKILL)  # mid-run, requests in flight
        worker.join(60)
        assert not worker.is_alive(), "grading hung after a replica was killed"
        assert not failures, failures
        assert len(graded) == 60
        assert all(rewards == [0.0 if i % 2 == 0 else 1.0 for i in range(64)] for rewards in graded)
        assert group.services[0].process.wait(5) == -signal.SIGKILL
        assert session.outage_seconds < 10  # the other replica took over; no long outage wait


def test_replicas_share_one_store(sandbox: str) -> None:
    with start_grader_replicas(2, sandbox=sandbox) as group:
        first, second = (s.client(group.token) for s in group.services)
        with first, second:
            grader_id, _ = first.create_grader(SPEC)
            assert (
                second.grade_batch(grader_id, [Sample(output_text="x")], [{"answer": "x"}])[0].reward == 1.0
            )
