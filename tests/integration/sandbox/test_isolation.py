"""What a grader sees from inside each sandbox backend, and how the Docker workers are configured."""

from __future__ import annotations

import socket

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.namespace import UID_BASE, UID_SPAN
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = pytest.mark.timeout(180)

INTROSPECT = """
import os, resource, socket
# The grader packages load at import time (the load timeout), not inside grade() (the sample timeout).
import numpy, scipy, sklearn, pandas, sympy, rapidfuzz, rouge_score, deepdiff, jsonschema
import pydantic, yaml, nltk

def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()

def _writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w") as f:
            f.write("x")
        os.remove(os.path.join(path, ".probe"))
        return True
    except OSError:
        return False

def grade(sample, item):
    st = os.statvfs("/tmp")
    try:
        socket.create_connection(("127.0.0.1", item["port"]), timeout=0.5).close()
        loopback = True
    except OSError:
        loopback = False
    return {
        "uid": os.getuid(),
        "cap_eff": _status("CapEff"),
        "no_new_privs": _status("NoNewPrivs"),
        "nproc_visible": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "root_writable": _writable("/"),
        "usr_writable": _writable("/usr"),
        "tmp_writable": _writable("/tmp"),
        "tmp_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
        "as_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
        "fsize_limit": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "env": sorted(os.environ),
        "loopback_reached": loopback,
        "numpy": numpy.__version__,
    }
"""
LIMITS = SandboxLimits(workers=1, memory_mb=768, scratch_mb=48, load_timeout_s=90)


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return request.param


def test_grader_sees_a_locked_down_machine(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFTKIT_SANDBOX_SECRET_PROBE", "must not reach the grader")
    listener = socket.create_server(("127.0.0.1", 0))
    pool = get_pool(
        tenant="iso", grader_id="introspect", version="1", source=INTROSPECT, backend=backend, limits=LIMITS
    )
    try:
        outcome = pool.grade([({}, {"port": listener.getsockname()[1]})])[0]
    finally:
        pool.close()
        listener.close()
    assert outcome.error is None, outcome.details
    seen = outcome.value
    assert seen["uid"] == 65534 if backend == "namespace" else UID_BASE <= seen["uid"] < UID_BASE + UID_SPAN
    assert int(seen["cap_eff"], 16) == 0
    assert seen["nproc_visible"] <= 3  # its own pid namespace: the worker (and bwrap's init)
    assert seen["interfaces"] == ["lo"]
    assert not seen["loopback_reached"]
    assert not seen["root_writable"] and not seen["usr_writable"] and seen["tmp_writable"]
    assert 40 <= seen["tmp_mb"] <= 48
    assert seen["as_limit"] == 768 * 1024 * 1024
    assert seen["fsize_limit"] == 48 * 1024 * 1024
    assert seen["nofile_limit"] == 256
    assert "RFTKIT_SANDBOX_SECRET_PROBE" not in seen["env"] and "HOME" in seen["env"]
    assert seen["no_new_privs"] == "1"


@pytest.mark.docker
def test_docker_workers_are_hardened_containers() -> None:
    require_backend("docker")
    from rftkit.sandbox.docker_backend import LABEL, _owner, docker_client

    pool = get_pool(
        tenant="iso", grader_id="cfg", version="1", source=INTROSPECT, backend="docker", limits=LIMITS
    )
    try:
        seen_uid = pool.grade([({}, {"port": 9})])[0].value["uid"]
        assert UID_BASE <= seen_uid < UID_BASE + UID_SPAN
        containers = docker_client().containers.list(filters={"label": f"{LABEL}={_owner()}"})
        assert len(containers) == 1
        host = containers[0].attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["PidsLimit"] == LIMITS.pids
        assert host["Memory"] == (768 + 48) * 1024 * 1024
        assert host["NanoCpus"] == int(LIMITS.cpus * 1e9)
        assert "size=48m" in host["Tmpfs"]["/tmp"]
        assert containers[0].attrs["Config"]["User"] == f"{seen_uid}:{seen_uid}"  # a host uid of its own
    finally:
        pool.close()
    assert not docker_client().containers.list(all=True, filters={"label": f"{LABEL}={_owner()}"})


ORPHANS = """
import os, subprocess

def _others():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid()))

def grade(sample, item):
    if item["mode"] == "orphan":  # its parent is gone (and reaped) before grade() returns
        subprocess.run(["sh", "-c", "sleep 60 & exit 0"], check=True)
        return len(_others())
    return len(_others())
"""


@pytest.mark.parametrize("backend", backend_params())
def test_orphans_of_a_reaped_child_do_not_outlive_their_sample(backend: str) -> None:
    require_backend(backend)
    pool = get_pool(
        tenant="t-orphans", grader_id="g", version="1", source=ORPHANS, backend=backend, limits=LIMITS
    )
    try:
        outcomes = pool.grade([({}, {"mode": "orphan"}), ({}, {"mode": "check"}), ({}, {"mode": "check"})])
        assert [o.error for o in outcomes] == [None, None, None], outcomes
        assert outcomes[0].value >= 1  # the orphaned sleep was running when grade() returned
        assert [o.value for o in outcomes[1:]] == [0, 0]
    finally:
        pool.close()
