"""Fixtures for the grader service's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rftkit.grader_service.embedded import ServiceProcess
from rftkit.grader_service.testing import serve
from rftkit.sandbox.testing import backend_params, require_backend


@pytest.fixture(scope="module", params=backend_params())
def sandboxed_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """`rft serve` with default settings on each sandbox backend (namespace, docker); `.backend` names it."""
    require_backend(request.param)
    with serve(tmp_path_factory.mktemp(request.param), sandbox=request.param) as running:
        running.backend = request.param  # type: ignore[attr-defined]
        yield running
