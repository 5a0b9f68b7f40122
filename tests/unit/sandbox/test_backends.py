"""`auto` picks the strongest sandbox that works, says which, and never falls back to `process`."""

from __future__ import annotations

import logging

import pytest
from rftkit.sandbox import backends
from rftkit.sandbox.api import SandboxUnavailable


def _problems(monkeypatch: pytest.MonkeyPatch, **problems: str) -> None:
    monkeypatch.setattr(backends, "backend_problem", lambda name: problems.get(name))


def test_auto_prefers_docker(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _problems(monkeypatch)
    with caplog.at_level(logging.INFO, logger="rftkit.sandbox"):
        assert backends.get_backend("auto").name == "docker"
    assert "using the docker backend" in caplog.text


def test_auto_falls_back_to_namespace_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _problems(monkeypatch, docker="the Docker engine is not reachable")
    with caplog.at_level(logging.INFO, logger="rftkit.sandbox"):
        assert backends.get_backend("auto").name == "namespace"
    assert "docker backend unavailable: the Docker engine is not reachable" in caplog.text
    assert "using the namespace backend" in caplog.text


def test_no_sandbox_is_a_refusal_not_a_plain_process(monkeypatch: pytest.MonkeyPatch) -> None:
    _problems(monkeypatch, docker="no engine", namespace="bubblewrap is not installed")
    with pytest.raises(SandboxUnavailable) as raised:
        backends.get_backend("auto")
    message = str(raised.value)
    assert "docker: no engine" in message and "namespace: bubblewrap is not installed" in message
    assert "never run unsandboxed" in message


@pytest.mark.parametrize("name", ["docker", "namespace"])
def test_a_named_backend_that_is_missing_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _problems(monkeypatch, **{name: "missing here"})
    with pytest.raises(SandboxUnavailable, match=f"the {name} sandbox is not available: missing here"):
        backends.get_backend(name)


def test_process_only_when_asked_for_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _problems(monkeypatch, docker="x", namespace="y")
    assert backends.get_backend("process").name == "process"
    with pytest.raises(ValueError, match="unknown sandbox backend"):
        backends.get_backend("none")
