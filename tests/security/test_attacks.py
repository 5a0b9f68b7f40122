"""Attack graders uploaded to a real grader service (`rft serve`) on each sandbox backend.

Every attack must end as a clear per-sample error (or a 0 where it merely fails), leave the host
unchanged, and leave the service grading the samples around it and the next batch correctly.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.embedded import ServiceProcess, serve_subprocess
from rftkit.sandbox.namespace import UID_BASE, UID_SPAN
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.seccomp import syscall_number
from rftkit.sandbox.testing import backend_params, require_backend

pytestmark = [pytest.mark.timeout(240)]
ATTACKS = Path(__file__).parent / "attacks"
SAMPLE_TIMEOUT_S = 1.5
SECRET_NAME = "RFTKIT_PLANTED_SECRET"
LIMITS_ENV = {
    "RFTKIT_SANDBOX_SAMPLE_TIMEOUT_S": str(SAMPLE_TIMEOUT_S),
    "RFTKIT_SANDBOX_WORKERS": "1",
    "RFTKIT_SANDBOX_SCRATCH_MB": "64",
    "RFTKIT_SANDBOX_MEMORY_MB": "512",
    "RFTKIT_SANDBOX_LOAD_TIMEOUT_S": "8",
}


@dataclass
class Service:
    backend: str
    process: ServiceProcess
    alice: GraderClient
    bob: GraderClient
    secret: str
    host_file: Path
    key: PlantedKey | None


_libc = ctypes.CDLL(None, use_errno=True)
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_READ, KEYCTL_SEARCH = 1, 11, 10
KEY_SPEC_SESSION_KEYRING = -3


def _keyctl(*args: Any) -> int:
    number = syscall_number("keyctl")
    return -1 if number is None else _libc.syscall(number, *args)


@dataclass
class PlantedKey:
    """A key in the service's session keyring (as a systemd service or a pam_keyinit login has)."""

    serial: int
    description: str
    secret: bytes

    def readable(self) -> bytes | None:
        """The key's payload as its owner reads it (None once it was revoked or unlinked)."""
        buf = ctypes.create_string_buffer(4096)
        size = _keyctl(KEYCTL_READ, self.serial, buf, len(buf))
        return buf.raw[:size] if size >= 0 else None

    @staticmethod
    def in_session(description: str) -> bool:
        return _keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, b"user", description.encode(), 0) >= 0


def _plant_session_key() -> PlantedKey | None:
    """Give this process (and so the service it starts) a new session keyring holding a secret key.

    None where keyrings are refused here. The test process keeps that keyring afterwards: a fresh
    anonymous one, which nothing else in the tests uses.
    """
    add_key = syscall_number("add_key")
    if add_key is None or _keyctl(KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        return None
    description = f"rftkit-planted-{secrets.token_hex(4)}"
    secret = secrets.token_hex(16).encode()
    serial = _libc.syscall(
        add_key, b"user", description.encode(), secret, len(secret), KEY_SPEC_SESSION_KEYRING
    )
    return PlantedKey(serial, description, secret) if serial > 0 else None


def _service_sandbox_processes(service_pid: int) -> dict[int, int]:
    """{pid: host uid} of live processes in the namespace backend's uid range that sit in one of
    this service's worker cgroups (other test runs on the host may have sandboxes of their own).
    Zombies are not live: they hold nothing but a pid until their parent (often the host's init,
    for bubblewrap's own processes) reaps them, and their cgroup can no longer be read."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            lines = status.read_text().splitlines()
            uid = next(int(line.split()[1]) for line in lines if line.startswith("Uid:"))
            zombie = any(line.startswith("State:\tZ") for line in lines)
            if zombie or not UID_BASE <= uid < UID_BASE + UID_SPAN:
                continue
            cgroups = (status.parent / "cgroup").read_text()
            mine = f"/rftkit-sandbox/svc-{service_pid}-" in cgroups  # others' runs: their cgroups/containers
            if mine or ("/rftkit-sandbox/" not in cgroups and "/docker/" not in cgroups):
                found[int(status.parent.name)] = uid
    return found


def _processes_with(marker: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
    return found


@pytest.fixture(scope="module", params=backend_params())
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    backend = request.param
    require_backend(backend)
    work = tmp_path_factory.mktemp(f"svc-{backend}")
    tokens = {"alice": secrets.token_hex(16), "bob": secrets.token_hex(16)}
    (work / "tokens").write_text("".join(f"{t} {k}\n" for t, k in tokens.items()))
    secret = secrets.token_hex(16)
    host_file = work / f"host-secret-{secret[:8]}"
    host_file.write_text(secret)
    env = {**LIMITS_ENV, SECRET_NAME: secret}
    key = _plant_session_key()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the service inherits these: the limits, and a secret to look for
    args = ["--host", "127.0.0.1", "--port", "0", "--data-dir", str(work / "data"), "--sandbox", backend,
            "--tokens", str(work / "tokens"), "--shutdown-grace", "5"]  # fmt: skip
    try:
        with serve_subprocess(args, work, stop_timeout=30) as proc:
            alice = GraderClient(proc.address, tokens["alice"])
            bob = GraderClient(proc.address, tokens["bob"])
            yield Service(backend, proc, alice, bob, secret, host_file, key)
            alice.close()
            bob.close()
            pid = proc.pid
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # The service is gone: nothing of its sandboxes may be left on the host.
    deadline = time.monotonic() + 10
    while _service_sandbox_processes(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _service_sandbox_processes(pid)
    assert not left, f"sandbox processes outlived the service: {left}\n{proc.log_text()[-3000:]}"
    assert not list(Path("/sys/fs/cgroup").glob(f"*/rftkit-sandbox/svc-{pid}-*"))
    if backend == "docker":
        import docker

        client = docker.from_env()
        left = client.containers.list(
            all=True, filters={"label": f"rftkit.sandbox.owner={socket.gethostname()}:{pid}"}
        )
        assert not left, "worker containers outlived the service"


def _upload(client: GraderClient, name: str) -> str:
    grader_id, _ = client.create_grader((ATTACKS / f"{name}.py").read_text(), name=name)
    return grader_id


def _clean(result: Any) -> bool:
    return not result.metadata.errors.any


def _why(result: Any) -> str:
    return f"reward {result.reward}: {result.metadata.errors.set_values()}"


def _attack(svc: Service, name: str, attack_item: dict[str, Any], client: GraderClient | None = None) -> Any:
    """Grade [ok, attack, ok], then a fresh [right, wrong] batch; returns the attack's result."""
    client = client or svc.alice
    grader_id = _upload(client, name)
    items = [{"reference": "a"}, attack_item, {"reference": "a"}]
    results = client.grade_batch(grader_id, ["a", "a", "a"], items, timeout=120)
    assert results[0].reward == 1.0 and _clean(results[0]), _why(results[0])
    assert results[2].reward == 1.0 and _clean(results[2]), _why(results[2])
    again = client.grade_batch(grader_id, ["a", "b"], [{"reference": "a"}, {"reference": "a"}], timeout=60)
    assert [r.reward for r in again] == [1.0, 0.0] and all(_clean(r) for r in again), [_why(r) for r in again]
    return results[1]


def _flags(result: Any) -> set[str]:
    return set(result.metadata.errors.raised())


@pytest.mark.parametrize(
    ("name", "flags", "needle"),
    [
        ("infinite_loop", {"timeout_error"}, "1.5 s"),
        ("alarm_proof_loop", {"timeout_error"}, "killed"),
        ("ignore_sigterm", {"timeout_error"}, "killed"),
        ("fork_bomb", {"timeout_error"}, ""),
        ("memory_bomb", {"resource_limit_error"}, "memory"),
        ("memory_bomb_forked", {"resource_limit_error"}, "memory"),
        ("disk_fill", {"resource_limit_error"}, ""),
        ("ctypes_segfault", {"python_grader_runtime_error"}, "SIGSEGV"),
        ("os_exit", {"python_grader_runtime_error"}, "exited with status 0"),
        ("protocol_forgery", {"python_grader_runtime_error"}, "protocol"),
        ("block_alarm", {"timeout_error"}, "killed"),
        ("close_fds", {"python_grader_runtime_error"}, "died"),
        ("tamper_runtime", {"python_grader_runtime_error"}, "died"),
    ],
)
def test_attack_ends_as_a_per_sample_error(service: Service, name: str, flags: set[str], needle: str) -> None:
    start = time.monotonic()
    result = _attack(service, name, {"mode": "attack", "reference": "a"})
    assert result.reward == 0.0
    assert _flags(result) == flags, result.metadata.errors
    assert needle in (result.metadata.errors.details or ""), result.metadata.errors.details
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("import_time_crash", "crashed the worker (exited with status 13)"),
        ("import_time_loop", "longer than 8 s"),
    ],
)
def test_attacks_while_loading_fail_every_sample_clearly(service: Service, name: str, needle: str) -> None:
    grader_id = _upload(service.alice, name)
    for _ in range(2):  # the second batch gets the same answer at once: the failure is remembered
        start = time.monotonic()
        results = service.alice.grade_batch(grader_id, ["a", "a"], [{}, {}], timeout=60)
        for result in results:
            assert result.reward == 0.0 and _flags(result) == {"python_grader_runtime_error"}, _why(result)
            assert needle in (result.metadata.errors.details or ""), _why(result)
    assert time.monotonic() - start < 2
    good = _attack(service, "infinite_loop", {"reference": "a"})  # the service still grades
    assert good.reward == 1.0


def test_huge_output_is_capped_and_the_sample_still_scores(service: Service) -> None:
    start = time.monotonic()
    result = _attack(service, "huge_stdout", {"mode": "attack", "reference": "a"})
    assert result.reward == 1.0 and _clean(result), result
    assert time.monotonic() - start < 60


def test_host_secrets_are_out_of_reach(service: Service) -> None:
    item = {
        "mode": "attack",
        "secret": service.secret,
        "secret_name": SECRET_NAME,
        "host_file": str(service.host_file),
    }
    result = _attack(service, "read_secrets", item)
    assert result.reward == 0.0 and _clean(result), result.metadata


def test_the_service_session_keyring_is_out_of_reach(service: Service) -> None:
    key = service.key
    if key is None:
        pytest.skip("kernel keyrings are refused on this host")
    assert key.readable() == key.secret and key.in_session(key.description)  # the control: it is there
    item = {"mode": "attack", "key_serial": key.serial, "key_description": key.description}
    result = _attack(service, "keyring_snoop", item)
    assert result.reward == 0.0 and _clean(result), result.metadata  # 1.0: it found, planted or revoked
    assert key.readable() == key.secret  # not revoked
    assert not key.in_session("rftkit-left-behind")  # nothing planted for whoever comes next


def test_the_keyring_attack_finds_a_key_nothing_isolates() -> None:
    """The control for the test above: with no sandbox (the `process` backend) the attack works."""
    key = _plant_session_key()
    if key is None:
        pytest.skip("kernel keyrings are refused on this host")
    source = (ATTACKS / "keyring_snoop.py").read_text()
    pool = get_pool(
        tenant="control", grader_id="keyring", version=secrets.token_hex(4), source=source, backend="process"
    )
    try:
        item = {"mode": "attack", "key_serial": key.serial, "key_description": key.description}
        outcome = pool.grade([({"output_text": "a"}, item)])[0]
    finally:
        pool.close()
    assert outcome.value == 1.0 and "read the planted key" in outcome.stdout, outcome
    assert key.readable() is None  # it revoked the key


def test_a_grader_that_stops_reading_its_pipe_costs_only_its_own_samples(service: Service) -> None:
    grader_id = _upload(service.alice, "pipe_swap")
    items = [{"reference": "a"}, {"mode": "attack"}, {"reference": "a"}]
    first = service.alice.grade_batch(grader_id, ["a", "a", "a"], items, timeout=60)
    assert [r.reward for r in first] == [1.0, 1.0, 1.0] and all(_clean(r) for r in first)
    # The wedged worker's pipe holds a page: this batch cannot be written to it (nor read by it).
    long = "a" * 20_000
    start = time.monotonic()
    big = service.alice.grade_batch(grader_id, [long] * 40, [{"reference": long}] * 40, timeout=90)
    assert [r.reward for r in big] == [1.0] * 40 and all(_clean(r) for r in big), [_why(r) for r in big[:3]]
    assert time.monotonic() - start < 30  # one send deadline (5 s), then a fresh worker
    other = _upload(service.bob, "pipe_swap")  # another tenant, meanwhile, is not held up
    assert [r.reward for r in service.bob.grade_batch(other, ["a", "b"], [{"reference": "a"}] * 2)] == [
        1.0,
        0.0,
    ]


class _Listener:
    """A TCP listener on every host address that counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _host_ip() -> str:
    with contextlib.suppress(OSError):
        return socket.gethostbyname(socket.gethostname())
    return "127.0.0.1"


def test_no_network_egress(service: Service) -> None:
    listener = _Listener()
    try:
        item = {"mode": "attack", "ports": [listener.port, service.process.port], "host_ip": _host_ip()}
        result = _attack(service, "network_egress", item)
        assert result.reward == 0.0 and _clean(result), result.metadata
        assert listener.connections == 0
        # The listener is reachable from the host itself, so the attack could have seen it.
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
        time.sleep(0.3)
        assert listener.connections == 1
    finally:
        listener.close()


def test_no_writes_outside_scratch(service: Service, tmp_path: Path) -> None:
    host_path = tmp_path / "written-by-the-grader"
    result = _attack(service, "write_outside", {"mode": "attack", "host_path": str(host_path)})
    assert result.reward == 0.0 and _clean(result), result.metadata
    for path in (host_path, Path("/rftkit-pwned"), Path("/etc/rftkit-pwned"), Path("/usr/rftkit-pwned")):
        assert not path.exists()
    assert not list(Path("/var/lib/rftkit").rglob("*pwned*"))


def test_leftover_child_processes_are_killed(service: Service) -> None:
    marker = f"{random.randint(100, 999)}.{random.randint(100000, 999999)}"
    grader_id = _upload(service.alice, "leftover_children")
    items = [{"mode": "attack", "marker": marker}, {"mode": "check"}, {"reference": "a"}]
    results = service.alice.grade_batch(grader_id, ["a", "a", "a"], items, timeout=60)
    assert [r.reward for r in results] == [1.0, 0.0, 1.0], results
    assert all(_clean(r) for r in results)
    assert _processes_with(marker) == []


def test_state_never_leaks_between_tenants(service: Service) -> None:
    secret = secrets.token_hex(8)
    alice_id = _upload(service.alice, "tenant_state")
    bob_id = _upload(service.bob, "tenant_state")
    plant = service.alice.grade_batch(alice_id, ["a"], [{"mode": "plant", "secret": secret}])
    assert plant[0].reward == 1.0
    # Control: the same tenant's warm worker does keep its state, so the probe can see it.
    assert service.alice.grade_batch(alice_id, ["a"], [{"mode": "probe", "secret": secret}])[0].reward == 1.0
    probe = service.bob.grade_batch(bob_id, ["a"], [{"mode": "probe", "secret": secret}])
    assert probe[0].reward == 0.0 and _clean(probe[0])
    with pytest.raises(Exception, match=r"NOT_FOUND|not found|PERMISSION|unknown"):
        service.bob.grade_batch(alice_id, ["a"], [{"mode": "probe", "secret": secret}])


def test_bad_return_values_are_flagged(service: Service) -> None:
    grader_id = _upload(service.alice, "bad_values")
    kinds = ["nan", "inf", "-inf", "none", "str", "two", "negative", "bool", "list", "object", "huge"]
    results = service.alice.grade_batch(
        grader_id, ["a"] * (len(kinds) + 1), [*({"mode": k} for k in kinds), {"reference": "a"}]
    )
    for kind, result in zip(kinds, results, strict=False):
        expected = {"resource_limit_error"} if kind == "huge" else {"invalid_reward_error"}
        assert result.reward == 0.0 and _flags(result) == expected, (kind, result.metadata.errors)
    assert results[-1].reward == 1.0 and _clean(results[-1])


def test_oversized_source_is_refused_before_it_runs(service: Service) -> None:
    source = "def grade(sample, item):\n    return 1.0\n" + "# padding\n" * 30_000
    with pytest.raises(Exception, match=r"262144|limit"):
        service.alice.create_grader(source, name="too-big")
