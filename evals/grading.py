"""Grade samples through the grader service: a given server, or one started in this process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..grader_service.client import GraderClient
from ..grader_service.embedded import start_local_service
from ..plugins.base import GraderResult, Sample
from ..plugins.registry import GraderSpecError, grader_types, parse_spec


@dataclass
class ServiceGrading:
    """A grader uploaded to a grader service, graded with GradeBatch."""

    client: GraderClient
    grader_id: str
    version: str
    where: str

    def grade(self, samples: Sequence[Sample], items: Sequence[Mapping[str, Any]]) -> list[GraderResult]:
        results = self.client.grade_batch(
            self.grader_id, list(samples), [dict(i) for i in items], version=self.version
        )
        if len(results) != len(samples):
            raise RuntimeError(f"grader service returned {len(results)} results for {len(samples)} samples")
        return results


def check_spec(spec: dict[str, Any], remote: bool) -> None:
    """Validate the spec here when its type is installed here (a remote server may know more types)."""
    if remote and spec.get("type") not in grader_types():
        return
    parse_spec(spec)


@contextlib.contextmanager
def _service_client(address: str, token: str | None) -> Iterator[GraderClient]:
    client = GraderClient(address, token=token)
    try:
        yield client
    finally:
        client.close()


def _upload(client: GraderClient, spec: dict[str, Any], where: str) -> ServiceGrading:
    grader_id, version = client.create_grader(spec)
    return ServiceGrading(client, grader_id, version, where)


@contextlib.contextmanager
def open_grading(
    spec: dict[str, Any], server: str | None = None, token: str | None = None, sandbox: str = "auto"
) -> Iterator[ServiceGrading]:
    """Upload `spec` to `server`, or to a grader service started here for the run, and grade there."""
    check_spec(spec, remote=server is not None)
    if server is not None:
        with _service_client(server, token) as client:
            yield _upload(client, spec, f"grader service at {server}")
        return
    with (
        start_local_service(sandbox=sandbox) as service,
        _service_client(service.address, service.token) as client,
    ):
        yield _upload(client, spec, f"embedded grader service at {service.address}")


__all__ = ["GraderSpecError", "ServiceGrading", "open_grading"]
