"""The namespace backend's seccomp filter and fresh session keyring, seen from a grader.

The test process plays a service with a session keyring (as a systemd unit or a pam_keyinit
login has) and plants a key in it; no namespace-backend worker may reach it.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Iterator

import pytest
from rftkit.sandbox import seccomp
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.pools import get_pool
from rftkit.sandbox.testing import require_backend

pytestmark = [pytest.mark.timeout(180), pytest.mark.bwrap]

KEY_SPEC_SESSION_KEYRING = -3
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_READ = 11
LIMITS = SandboxLimits(workers=1, memory_mb=512, scratch_mb=32, load_timeout_s=60)

PROBE = """
import ctypes, errno, os, threading, subprocess

libc = ctypes.CDLL(None, use_errno=True)
numbers = {}  # this architecture's call numbers, resolved by the test (libseccomp) and sent in the item

def _call(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(numbers[name], *args)
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())) if result < 0 else "ok"

def grade(sample, item):
    numbers.update(item["numbers"])
    buf = ctypes.create_string_buffer(256)
    key = int(item["key"])
    found = {
        "keyctl_read": _call("keyctl", 11, key, buf, 256),
        "keyctl_session": _call("keyctl", 0, -3, 0),
        "request_key": _call("request_key", b"user", item["description"].encode(), None, 0),
        "add_key": _call("add_key", b"user", b"mine", b"x", 1, -3),
        "ptrace": _call("ptrace", 16, 1, 0, 0),  # PTRACE_ATTACH to the sandbox's init
        "mount": _call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
        "umount2": _call("umount2", b"/tmp", 0),
        "bpf": _call("bpf", 0, None, 0),
        "unshare": _call("unshare", 0x10000000),  # CLONE_NEWUSER
        "setns": _call("setns", 0, 0),
        "perf_event_open": _call("perf_event_open", None, 0, -1, -1, 0),
        "userfaultfd": _call("userfaultfd", 0),
        "personality": _call("personality", 0x0040000),  # ADDR_NO_RANDOMIZE
        "swapon": _call("swapon", b"/tmp/x", 0),
        "reboot": _call("reboot", 0xFEE1DEAD, 672274793, 0x4321FEDC, None),
        "clock_settime": _call("clock_settime", 0, None),
        "init_module": _call("init_module", None, 0, b""),
    }
    try:
        with open("/proc/keys") as f:
            found["proc_keys_shows_it"] = item["description"] in f.read()
    except OSError:
        found["proc_keys_shows_it"] = False
    # What graders need still works: threads (clone3 -> ENOSYS -> clone), subprocesses, sockets.
    box = []
    thread = threading.Thread(target=lambda: box.append(1))
    thread.start()
    thread.join()
    found["thread"] = box == [1]
    found["subprocess"] = subprocess.run(["true"]).returncode == 0
    import socket
    socket.socketpair()[0].close()
    return found
"""
DENIED_HERE = [
    "keyctl_read", "keyctl_session", "request_key", "add_key", "ptrace", "mount", "umount2", "bpf",
    "unshare", "setns", "perf_event_open", "userfaultfd", "personality", "swapon", "reboot",
    "clock_settime", "init_module",
]  # fmt: skip


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@pytest.fixture(scope="module")
def planted_key() -> Iterator[tuple[int, str]]:
    """A fresh session keyring for this test process, holding one key a grader must never see."""
    require_backend("namespace")
    libc, numbers = _libc(), {n: seccomp.syscall_number(n) for n in ("keyctl", "add_key")}
    if libc.syscall(numbers["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, b"rftkit-test-session") < 0:
        pytest.skip(f"this host refuses keyrings here: {os.strerror(ctypes.get_errno())}")
    description = f"rftkit-planted-{secrets.token_hex(4)}"
    payload = secrets.token_hex(16).encode()
    serial = libc.syscall(
        numbers["add_key"], b"user", description.encode(), payload, len(payload), KEY_SPEC_SESSION_KEYRING
    )
    assert serial > 0, os.strerror(ctypes.get_errno())
    # Control: the key is readable here, by its serial, so a grader could read it if it reached it.
    buf = ctypes.create_string_buffer(256)
    assert libc.syscall(numbers["keyctl"], KEYCTL_READ, serial, buf, 256) == len(payload)
    yield serial, description
    libc.syscall(numbers["keyctl"], 3, serial)  # KEYCTL_REVOKE


def _probe(tenant: str, serial: int, description: str) -> dict[str, object]:
    names = ["keyctl", "request_key", "add_key", "ptrace", "mount", "umount2", "bpf", "unshare", "setns",
             "perf_event_open", "userfaultfd", "personality", "swapon", "reboot", "clock_settime",
             "init_module"]  # fmt: skip
    numbers = {name: seccomp.syscall_number(name) for name in names}
    pool = get_pool(
        tenant=tenant, grader_id="probe", version="1", source=PROBE, backend="namespace", limits=LIMITS
    )
    try:
        outcome = pool.grade([({}, {"key": serial, "description": description, "numbers": numbers})])[0]
    finally:
        pool.close()
    assert outcome.error is None, outcome.details
    return outcome.value


def test_no_grader_reaches_the_service_keyring_or_host_changing_calls(planted_key: tuple[int, str]) -> None:
    serial, description = planted_key
    seen = _probe("t-seccomp", serial, description)
    assert {name: seen[name] for name in DENIED_HERE} == {name: "EPERM" for name in DENIED_HERE}
    assert seen["proc_keys_shows_it"] is False
    assert seen["thread"] and seen["subprocess"]


def test_the_fresh_session_keyring_alone_hides_the_key(
    planted_key: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a filter that allows everything, the worker still does not possess the service's keyring."""
    serial, description = planted_key
    monkeypatch.setattr(seccomp, "bpf_program", lambda: seccomp.build_program(strict=False))
    seen = _probe("t-keyring", serial, description)
    assert seen["keyctl_session"] == "ok"  # no filter: keyctl itself works...
    assert seen["keyctl_read"] in ("EACCES", "ENOKEY", "EPERM")  # ...but the planted key is not ours
    assert seen["request_key"] == "ENOKEY"
    assert seen["proc_keys_shows_it"] is False
