"""Helpers for tests that run graders on every sandbox backend (used by tests/ and by plugins' tests)."""

from __future__ import annotations

import shutil

import pytest

from .backends import backend_problem

SANDBOX_BACKENDS = ("namespace", "docker")
_TOOL = {"namespace": "bwrap", "docker": "docker"}


def backend_params(*, with_process: bool = False) -> list:
    """pytest params for the sandbox backends, marked `bwrap` / `docker`."""
    params = [
        pytest.param("namespace", marks=pytest.mark.bwrap),
        pytest.param("docker", marks=pytest.mark.docker),
    ]
    if with_process:
        params.insert(0, pytest.param("process"))
    return params


def require_backend(name: str) -> None:
    """Skip when the backend's tool is not installed at all; fail when it is but the sandbox is not ready.

    CI installs Docker and bubblewrap and runs `rft sandbox build`, so there nothing is skipped.
    """
    if name == "process":
        return
    if shutil.which(_TOOL[name]) is None:
        pytest.skip(f"{_TOOL[name]} is not installed on this host")
    backend_problem.cache_clear()
    problem = backend_problem(name)
    if problem:
        pytest.fail(f"the {name} sandbox is not ready: {problem} (run `rft sandbox build`)")
