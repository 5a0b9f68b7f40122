"""Issue 14's fault checks, from outside a real `rft serve`, on both sandbox backends.

A killer thread finds the real worker processes the way an operator (or the OOM killer) would, and
SIGKILLs them at a chosen moment: `starting` (a new worker process, before the grader's module ran),
`loading` (the grader's module is running) or `grading` (grade() is running). The grader tells which
moment it is in by renaming its own process (/proc/self/comm, visible on the host for both backends),
with names unique to each test. Every reward must be right and no sample flagged; the same upload
keeps working afterwards. Also: `"[" * 5000` among 4,096 samples flags exactly that one sample.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.embedded import ServiceProcess
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.testing import TOKEN_A

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="killing sandbox workers of other uids needs root"),
]

GRADER = """\
import time


def _name(text):
    with open("/proc/self/comm", "w") as f:
        f.write(text)


_name("{load}")
time.sleep(1.5)
_name("{ready}")


def grade(sample, item):
    text = sample["output_text"]
    if text.startswith("slow"):
        _name("{grade}")
        time.sleep(item.get("sleep", 0.3))
        _name("{ready}")
    return 1.0 if text.endswith(item["answer"]) else 0.0
"""
ECHO = """\
def grade(sample, item):
    if sample["output_text"] == "echo":
        raise ValueError("x" * 100000 + " bad item " + item["answer"])
    return 1.0 if sample["output_text"] == item["answer"] else 0.0
"""


@pytest.fixture(scope="module")
def service(sandboxed_service: ServiceProcess) -> ServiceProcess:
    return sandboxed_service


@pytest.fixture
def client(service: ServiceProcess) -> Iterator[GraderClient]:
    with service.client(TOKEN_A) as made:
        yield made


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, comm) of every process on the host."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            text = stat.read_text()
            close = text.rindex(")")
            yield int(stat.parent.name), int(text[close + 2 :].split()[1]), text[text.index("(") + 1 : close]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"


_CONTAINER_PIDS: dict[str, int] = {}  # docker: container id -> its main process on the host


def _workers(service: ServiceProcess) -> set[int]:
    """Host pids of the service's sandbox workers' Python processes (or their launchers)."""
    if service.backend == "docker":  # type: ignore[attr-defined]
        import docker

        # Containers are listed from their creation on (before they start), and each is inspected
        # only until its process is known: the poll stays quick enough to catch a worker starting.
        label = f"rftkit.sandbox.owner={socket.gethostname()}:{service.pid}"
        api = docker.from_env().api
        for summary in api.containers(all=True, filters={"label": label}):
            if not _CONTAINER_PIDS.get(summary["Id"]):
                with contextlib.suppress(Exception):
                    _CONTAINER_PIDS[summary["Id"]] = int(api.inspect_container(summary["Id"])["State"]["Pid"])
        return {pid for pid in _CONTAINER_PIDS.values() if pid and Path(f"/proc/{pid}").exists()}
    children: dict[int, list[tuple[int, str]]] = {}
    for pid, parent, comm in _processes():
        children.setdefault(parent, []).append((pid, comm))
    found, todo = set(), [service.pid]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            todo.append(pid)
            if comm != "bwrap":
                found.add(pid)
    return found


class Killer(threading.Thread):
    """SIGKILLs each pid `find()` returns (each once), at most `limit`; `.killed`: (pid, comm at the kill)."""

    def __init__(self, find: Callable[[], set[int]], limit: int = 1) -> None:
        super().__init__(daemon=True)
        self.find, self.limit = find, limit
        self.killed: list[tuple[int, str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.killed) < self.limit:
            for pid in self.find() - {p for p, _ in self.killed}:
                comm = _comm(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append((pid, comm))
                    if len(self.killed) >= self.limit:
                        break
            time.sleep(0.003)

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(5)


def _with_comm(name: str) -> Callable[[], set[int]]:
    return lambda: {pid for pid, _, comm in _processes() if comm == name}


def _grader(client: GraderClient) -> tuple[str, str, str, str]:
    """A fresh upload (its own pool): (id, source, load name, grade name); every name its module
    gives its process holds the upload's tag (load name[2:]), so a name without it is one the
    grader's module has not run in yet."""
    tag = uuid.uuid4().hex[:10]
    source = GRADER.format(load=f"rL{tag}", grade=f"rG{tag}", ready=f"rR{tag}")
    grader_id, _ = client.create_grader(source, name=f"faults-{tag}")
    return grader_id, source, f"rL{tag}", f"rG{tag}"


def _check(
    client: GraderClient, grader_id: str, *, slow: int = 0, count: int = 24, sleep: float = 0.3
) -> None:
    """Grade `count` samples (the first `slow` sleep `sleep` s in grade()): rewards right, none flagged."""
    samples = [("slow" if i < slow else "s") + str(i) for i in range(count)]
    items = [{"answer": str(i) if i % 3 else "no", "sleep": sleep} for i in range(count)]
    results = client.grade_batch(grader_id, samples, items, timeout=120)
    flagged = {i: r.metadata.errors.raised() for i, r in enumerate(results) if r.metadata.errors.raised()}
    assert flagged == {}, [results[i].metadata.errors.details for i in flagged]
    assert [r.reward for r in results] == [1.0 if i % 3 else 0.0 for i in range(count)]


def test_a_worker_killed_while_it_starts_costs_nothing(service: ServiceProcess, client: GraderClient) -> None:
    grader_id, _, load, _ = _grader(client)
    before = _workers(service)
    with Killer(lambda: _workers(service) - before) as killer:
        _check(client, grader_id)
    assert len(killer.killed) == 1, "control: a starting worker was killed"
    assert load[2:] not in killer.killed[0][1], f"killed after the grader's module began: {killer.killed}"


def test_a_worker_killed_while_it_loads_breaks_nothing(service: ServiceProcess, client: GraderClient) -> None:
    grader_id, source, load, _ = _grader(client)
    with Killer(_with_comm(load)) as killer:
        _check(client, grader_id)
    assert [comm for _, comm in killer.killed] == [load], "control: a loading worker was killed"
    # The same upload keeps working, also in fresh workers: kill the idle ones, upload it again.
    with Killer(lambda: _workers(service), limit=100) as idle:
        time.sleep(0.5)
    assert idle.killed
    assert client.create_grader(source, name=f"faults-{load[2:]}")[0] == grader_id
    _check(client, grader_id)


def test_two_workers_killed_together_while_they_load_break_nothing(
    service: ServiceProcess, client: GraderClient
) -> None:
    """Both workers of a batch killed once each while they load (a node under pressure): two kills
    in two workers are not a grader that failed to load twice."""
    grader_id, _, load, _ = _grader(client)
    loading = _with_comm(load)
    with Killer(lambda: found if len(found := loading()) >= 2 else set(), limit=2) as killer:
        _check(client, grader_id)
    assert [comm for _, comm in killer.killed] == [load, load], "control: two loading workers were killed"
    _check(client, grader_id)


def test_a_worker_killed_while_grading_costs_no_sample(service: ServiceProcess, client: GraderClient) -> None:
    grader_id, _, _, graded = _grader(client)
    _check(client, grader_id, count=4)  # warm: the kill below comes in the middle of grade()
    with Killer(_with_comm(graded)) as killer:
        _check(client, grader_id, slow=6)
    assert [comm for _, comm in killer.killed] == [graded], "control: a grading worker was killed"
    _check(client, grader_id)


def test_a_worker_killed_while_grading_then_its_replacement_while_it_starts(
    service: ServiceProcess, client: GraderClient
) -> None:
    """The issue's case of a restart mid-chunk: the replacement is killed too, before the grader ran."""
    grader_id, _, load, graded = _grader(client)
    _check(client, grader_id, count=4)
    before = _workers(service)
    replacement = lambda: _workers(service) - before if first.killed else set()  # noqa: E731
    with Killer(_with_comm(graded)) as first, Killer(replacement) as second:
        _check(client, grader_id, slow=6)
    assert [comm for _, comm in first.killed] == [graded], "control: a grading worker was killed"
    assert len(second.killed) == 1 and load[2:] not in second.killed[0][1], second.killed


def test_grading_workers_killed_again_and_again_cost_no_sample(
    service: ServiceProcess, client: GraderClient
) -> None:
    """Four kills at whatever moment of grade() they come, one a second, in one batch of 400 samples.

    A worker is killed only after it has graded for 0.5 s: a pair in flight at two deaths would be
    blamed (rightly, by the rule), so a replacement is not killed on the pair it was sent first.
    """
    grader_id, _, _, graded = _grader(client)
    seen: dict[int, float] = {}  # pid -> when it was first seen inside grade()
    last = [0.0]

    def one_a_second() -> set[int]:
        now = time.monotonic()
        grading = _with_comm(graded)()
        for pid in grading:
            seen.setdefault(pid, now)
        ripe = sorted(pid for pid in grading if now - seen[pid] > 0.5)
        if not ripe or now - last[0] < 1.0:
            return set()
        last[0] = now
        return {random.choice(ripe)}

    with Killer(one_a_second, limit=4) as killer:
        _check(client, grader_id, slow=400, count=400, sleep=0.02)
    assert len(killer.killed) == 4, f"control: four grading workers were killed: {killer.killed}"


def test_deep_bracket_sample_among_4096_flags_only_itself(client: GraderClient) -> None:
    """`"[" * 5000` in a batch of 4,096: exactly that one sample is flagged; every other reward is right."""
    grader_id, _ = client.create_grader(ECHO, name="echo")
    samples = ["a" if i % 2 else "b" for i in range(4096)]
    samples[1234] = "[" * 5000
    results = client.grade_batch(grader_id, samples, {"answer": "a"}, timeout=120)
    flagged = [i for i, r in enumerate(results) if r.metadata.errors.raised()]
    assert flagged == [1234], flagged[:10]
    assert [r.reward for i, r in enumerate(results) if i != 1234] == [
        1.0 if i % 2 else 0.0 for i in range(4096) if i != 1234
    ]


def test_lone_surrogate_echoed_from_a_sandbox_is_that_samples_error(client: GraderClient) -> None:
    """A lone surrogate in an item, echoed by the sandboxed grader in a long error: that sample's error."""
    grader_id, _ = client.create_grader(ECHO, name="echo")
    request = pb.GradeBatchRequest(
        grader=pb.GraderRef(grader_id=grader_id),
        samples_json=b'["echo", "a", "b"]',
        items_json=b'[{"answer": "\\ud800"}, {"answer": "a"}, {"answer": "\\udfff"}]',
    )
    response = client._stub.GradeBatch(request, timeout=60, metadata=client._metadata)
    assert list(response.rewards) == [0.0, 1.0, 0.0]
    assert list(response.error_indices) == [0]
    assert len(response.results_json) < 10_000  # the 100,000-character error text is cut
