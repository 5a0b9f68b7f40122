"""Grade samples through the grader service: a given server, or one started in this process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rftkit.plugins.base import GraderResult, Sample
from rftkit.plugins.registry import GraderSpecError, grader_types, parse_spec

log = logging.getLogger(__name__)


class Grading(Protocol):
    """Scores samples against items; one result per sample, in order."""

    where: str

    def grade(self, samples: Sequence[Sample], items: Sequence[Mapping[str, Any]]) -> list[GraderResult]: ...


@dataclass
class ServiceGrading:
    """A grader uploaded to a grader service, graded with GradeBatch."""

    client: Any
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


@dataclass
class InProcessGrading:
    """Stopgap while the grader service is not installed: the grader built in this process."""

    grader: Any
    where: str = "in-process (grader service not installed)"

    def grade(self, samples: Sequence[Sample], items: Sequence[Mapping[str, Any]]) -> list[GraderResult]:
        return self.grader.grade_batch(list(zip(samples, items, strict=True)))


def check_spec(spec: dict[str, Any], remote: bool) -> None:
    """Validate the spec here when its type is installed here (a remote server may know more types)."""
    if remote and spec.get("type") not in grader_types():
        return
    parse_spec(spec)


@contextlib.contextmanager
def _service_client(address: str, token: str | None) -> Iterator[Any]:
    from rftkit.grader_service.client import GraderClient

    client = GraderClient(address, token=token)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


def _upload(client: Any, spec: dict[str, Any], where: str) -> ServiceGrading:
    grader_id, version = client.create_grader(spec)
    return ServiceGrading(client, grader_id, version, where)


@contextlib.contextmanager
def open_grading(
    spec: dict[str, Any], server: str | None = None, token: str | None = None, sandbox: str = "auto"
) -> Iterator[Grading]:
    """Upload `spec` to `server`, or to a grader service started here for the run, and grade there."""
    check_spec(spec, remote=server is not None)
    if server is not None:
        with _service_client(server, token) as client:
            yield _upload(client, spec, f"grader service at {server}")
        return
    try:
        from rftkit.grader_service.embedded import start_local_service
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("rftkit.grader_service"):
            raise
        log.warning("rftkit.grader_service is not installed; grading in this process instead")
        from rftkit.plugins.base import GraderContext
        from rftkit.plugins.registry import build_grader

        grader = build_grader(spec, GraderContext(sandbox=sandbox))
        try:
            yield InProcessGrading(grader)
        finally:
            grader.close()
        return
    with (
        start_local_service(sandbox=sandbox) as service,
        _service_client(service.address, service.token) as client,
    ):
        yield _upload(client, spec, f"embedded grader service at {service.address}")


__all__ = ["GraderSpecError", "Grading", "open_grading"]
