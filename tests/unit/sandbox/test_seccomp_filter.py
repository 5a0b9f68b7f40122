"""The namespace backend never runs without its seccomp filter: no libseccomp, no backend, and it says why."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pytest
from rftkit.sandbox import backends, namespace, seccomp
from rftkit.sandbox.api import SandboxLimits, SandboxUnavailable


@pytest.fixture
def no_libseccomp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = ctypes.CDLL

    def cdll(name: str | None, *args: object, **kwargs: object) -> ctypes.CDLL:
        if name and "libseccomp" in name:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return real(name, *args, **kwargs)

    for cached in (seccomp._lib, seccomp.bpf_program, backends.backend_problem):
        cached.cache_clear()
    monkeypatch.setattr(seccomp.ctypes, "CDLL", cdll)
    yield
    monkeypatch.undo()
    for cached in (seccomp._lib, seccomp.bpf_program, backends.backend_problem):
        cached.cache_clear()


@pytest.mark.usefixtures("no_libseccomp")
def test_without_libseccomp_the_backend_is_unavailable_and_says_why() -> None:
    problem = namespace.NamespaceBackend.problem()
    assert problem is not None
    assert "seccomp" in problem and "libseccomp2" in problem
    with pytest.raises(SandboxUnavailable, match=r"the namespace sandbox is not available: .*libseccomp"):
        backends.get_backend("namespace")


@pytest.mark.usefixtures("no_libseccomp")
def test_no_worker_command_line_without_the_filter() -> None:
    with pytest.raises(seccomp.SeccompUnavailable):
        namespace.launch_argv(SandboxLimits(), ["python3", "-c", "pass"])


def test_the_worker_command_line_loads_the_filter_through_bubblewrap() -> None:
    argv = namespace.launch_argv(SandboxLimits(), ["python3", "-c", "pass"], uid=610_001, procs_files=["/x"])
    bwrap = argv.index("bwrap")
    assert argv[bwrap:].index("--seccomp") < argv[bwrap:].index("--")
    assert argv[argv.index("--seccomp") + 1] == str(namespace.SECCOMP_FD)
    assert bytes.fromhex(argv[5]) == seccomp.bpf_program()  # the compiled program travels to the launcher
    assert argv[6:10] == ["610001", str(seccomp.syscall_number("keyctl")), "/x", "--"]


def test_the_allowlist_leaves_out_what_docker_and_this_sandbox_refuse() -> None:
    assert not set(seccomp.DENIED) & set(seccomp.ALLOWED)
    for name in ("keyctl", "add_key", "request_key", "ptrace", "mount", "unshare", "setns", "bpf"):
        assert name in seccomp.DENIED
    program = seccomp.bpf_program()
    assert program and len(program) % 8 == 0  # whole sock_filter instructions
