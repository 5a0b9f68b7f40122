"""A real `rft serve --sandbox auto` says which sandbox it picked; with none it refuses to run code."""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.grader_service.embedded import start_local_service
from rftkit.sandbox.testing import require_backend

pytestmark = pytest.mark.timeout(180)

GRADER = """
def grade(sample, item):
    with open(item["marker"], "w") as f:  # only a grader running unsandboxed could reach the host path
        f.write("ran")
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
"""


def test_auto_uses_the_strongest_sandbox_and_logs_it(tmp_path: Path) -> None:
    require_backend("docker")
    with start_local_service(tmp_path / "data", sandbox="auto") as service:
        client = service.client()
        grader_id, _ = client.create_grader(GRADER, name="auto")
        items = [{"reference": "a", "marker": "/tmp/m"}] * 2  # the sandbox's scratch
        results = client.grade_batch(grader_id, ["a", "b"], items, timeout=60)
        client.close()
        assert [r.reward for r in results] == [1.0, 0.0], [r.metadata.errors for r in results]
        log = service.log_text()
    assert "sandbox auto: using the docker backend" in log, log[-3000:]


def test_without_any_sandbox_python_graders_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service finds neither a Docker engine nor bubblewrap (nothing on PATH).
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    marker = tmp_path / "grader-ran-on-the-host"
    with start_local_service(tmp_path / "data", sandbox="auto") as service:
        client = service.client()
        grader_id, _ = client.create_grader(GRADER, name="refused")
        results = client.grade_batch(grader_id, ["a"], [{"reference": "a", "marker": str(marker)}])
        # Built-in graders still work in the same service.
        checks = client.grade_batch(
            {"type": "string_check", "name": "eq", "input": "{{sample.output_text}}",
             "reference": "{{item.reference}}", "operation": "eq"},
            ["a", "b"], [{"reference": "a"}, {"reference": "a"}],
        )  # fmt: skip
        client.close()
    assert not marker.exists(), "the grader ran without a sandbox"
    result = results[0]
    assert result.reward == 0.0 and result.metadata.errors.raised() == ["python_grader_server_error"]
    details = result.metadata.errors.details or ""
    assert "no sandbox for Python graders" in details and "rft sandbox build" in details, details
    assert [c.reward for c in checks] == [1.0, 0.0]
