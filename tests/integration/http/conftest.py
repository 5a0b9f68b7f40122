"""The HTTP API's test server (a real `rft serve --http-port 0` child) and SDK clients for two tenants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI
from rftkit.grader_service.http.testing import ROOT, HttpService, http_service
from rftkit.grader_service.testing import TOKEN_A, TOKEN_B

__all__ = ["ROOT", "HttpService", "http_service"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, sandbox: str) -> Iterator[HttpService]:
    """One server for a module's tests: the tiny example as base model `tiny`, Python graders in `sandbox`."""
    tiny = ROOT / "examples" / "tiny" / "config.yaml"
    with http_service(
        tmp_path_factory.mktemp("http"), "--sandbox", sandbox, "--base-model", f"tiny={tiny}"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client_a(service: HttpService) -> OpenAI:
    return service.client(TOKEN_A)


@pytest.fixture(scope="module")
def client_b(service: HttpService) -> OpenAI:
    return service.client(TOKEN_B)
