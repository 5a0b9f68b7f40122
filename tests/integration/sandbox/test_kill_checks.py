"""Issue 14's "nothing left behind after any kill": `kill -9` of a service whose workers are grading.

test_leftovers.py kills an idle service and looks after the next one has graded. Here the service
is killed while both its workers are inside grade() (each renames its process so the test sees it
from the host), and the check comes as soon as the next service on the same data is up, before it
grades anything: no cgroup directory (namespace) or container (docker) of it is left, none of its
worker processes still runs, and the next service grades the same upload. Its workers do not wait
for the next service: they end within seconds of the kill, inside grade() (namespace: bubblewrap's
--die-with-parent; docker: the worker sees its requests' stream hang up and exits, and with it,
as PID 1, its container).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rftkit.grader_service.testing import TOKEN_A, serve
from rftkit.sandbox.cgroups import sandbox_bases
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and per-worker uids are used only as root"),
]
MARK = "rftkit-kill9"  # the comm of a worker inside grade()
GRADER = f"""\
import time


def grade(sample, item):
    with open("/proc/self/comm", "w") as f:
        f.write("{MARK}")
    time.sleep(float(item.get("sleep", 0)))
    return 1.0
"""


def _grading() -> list[int]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == MARK:
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


def _left_by(backend: str, pid: int) -> list[str]:
    """What the sandboxes of the service `pid` left: cgroup directories or containers."""
    if backend == "namespace":
        return [str(path) for base in sandbox_bases() for path in base.glob(f"svc-{pid}-*")]
    import docker

    owner = f"rftkit.sandbox.owner={socket.gethostname()}:{pid}"
    return [c.name for c in docker.from_env().containers.list(all=True, filters={"label": owner})]


def _until(check: Callable[[], object], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("backend", backend_params())
def test_kill_9_while_grading_leaves_nothing_once_the_next_is_up(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    data = tmp_path / "data"
    assert not _grading(), f"processes named {MARK} already run on this host"
    with serve(tmp_path / "first", sandbox=backend, data_dir=data) as first:
        client = first.client(TOKEN_A)
        grader_id, _ = client.create_grader(GRADER, name="kill9")
        load = threading.Thread(
            target=lambda: client.grade_batch(grader_id, ["a"] * 4, {"sleep": 30}, timeout=60), daemon=True
        )
        load.start()
        assert _until(lambda: len(_grading()) >= 2, 30), "control: both workers are inside grade()"
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(30)
        killed = first.pid
        assert _until(lambda: not _grading(), 10), f"workers outlived their killed service: {_grading()}"
    assert _left_by(backend, killed), "control: a killed service cannot clean up after itself"
    client.close()
    with serve(tmp_path / "second", sandbox=backend, data_dir=data) as second:
        assert _left_by(backend, killed) == []  # swept when the next service started, before any grading
        assert _until(lambda: not _grading(), 10), f"workers outlived their service: {_grading()}"
        with second.client(TOKEN_A) as again:
            assert [r.reward for r in again.grade_batch(grader_id, ["a"] * 2, {})] == [1.0, 1.0]
