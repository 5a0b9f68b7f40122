"""Nothing a killed service's sandboxes leave (cgroups: namespace; containers: docker) outlives the next.

A `kill -9` gives the service no chance to clean up; the next service on the host sweeps what
services that are gone left behind when it first uses the backend.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from rftkit.grader_service.embedded import ServiceProcess, start_local_service
from rftkit.sandbox.cgroups import sandbox_bases
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and per-worker uids are used only as root"),
]

GRADER = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['reference'] else 0.0\n"


def _cgroup_dirs(pid: int) -> list[Path]:
    return [p for base in sandbox_bases() for p in base.glob(f"svc-{pid}-*")]


def _containers(pid: int) -> list:
    import docker

    label = f"rftkit.sandbox.owner={socket.gethostname()}:{pid}"
    return docker.from_env().containers.list(all=True, filters={"label": label})


def _leftovers(backend: str, pid: int) -> list:
    return _cgroup_dirs(pid) if backend == "namespace" else _containers(pid)


def _grade_once(service: ServiceProcess) -> None:
    client = service.client()
    try:
        grader_id, _ = client.create_grader(GRADER, name="leftovers")
        results = client.grade_batch(grader_id, ["a", "b"], [{"reference": "a"}] * 2, timeout=120)
        assert [r.reward for r in results] == [1.0, 0.0]
    finally:
        client.close()


@pytest.mark.parametrize("backend", backend_params())
def test_the_next_service_sweeps_what_a_killed_one_left(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    with start_local_service(tmp_path / "data", sandbox=backend) as first:
        _grade_once(first)
        assert _leftovers(backend, first.pid), "control: the service runs workers in cgroups/containers"
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(30)
        time.sleep(1.0)  # its workers die with it (bubblewrap --die-with-parent; a closed attach stream)
        # Control: a killed service cannot clean up, so it is the next one that must.
        assert _leftovers(backend, first.pid)
    with start_local_service(tmp_path / "data", sandbox=backend) as second:
        _grade_once(second)
        assert not _leftovers(backend, first.pid), (
            f"left by the killed service: {_leftovers(backend, first.pid)}"
        )
        assert _leftovers(backend, second.pid)  # its own, live ones are kept
    deadline = time.monotonic() + 10  # a service that stops normally removes its own
    while _leftovers(backend, second.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _leftovers(backend, second.pid)
