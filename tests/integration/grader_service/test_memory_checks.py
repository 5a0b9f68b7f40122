"""Issue 14's memory checks on each backend with the service's default settings (peak VmHWM under 1 GB).

test_request_bounds.py runs them with bounds set on the command line and shows a single request of
400,000 samples refused by count before it is decoded. A user of GraderClient never sees that
refusal (the client cuts the batch into requests the service takes): here all 400,000 are graded
by a sandboxed grader, each gets its real 0, none is flagged. And a 60 kB request of 20,000 samples
that fail with a long error stays under 1 GB and under the default response bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.grader_service.embedded import ServiceProcess
from rftkit.grader_service.pb import grader_pb2 as pb
from rftkit.grader_service.testing import TOKEN_A

pytestmark = pytest.mark.timeout(240)
GB = 1024**3
LONG_ERROR = "def grade(sample, item):\n    raise ValueError('a long error ' * 2000)\n"
ZERO = "def grade(sample, item):\n    return 0.0 if sample['output_text'] == '' else 1.0\n"


@pytest.fixture(scope="module")
def service(sandboxed_service: ServiceProcess) -> ServiceProcess:
    return sandboxed_service


def _peak_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def test_400000_empty_samples_are_all_graded_under_1_gb(service: ServiceProcess) -> None:
    with service.client(TOKEN_A) as client:
        grader_id, _ = client.create_grader(ZERO, name="zero")
        results = client.grade_batch(grader_id, [""] * 400_000, {}, timeout=180)
    assert len(results) == 400_000
    assert sum(1 for r in results if r.metadata.errors.raised()) == 0
    assert all(r.reward == 0.0 for r in results)
    peak = _peak_bytes(service.pid)
    print(f"peak service memory {peak / 2**20:.0f} MiB")
    assert peak < GB, f"peak {peak / 2**20:.0f} MiB"


def test_20000_failing_samples_in_60_kb_stay_under_1_gb(service: ServiceProcess) -> None:
    with service.client(TOKEN_A) as client:
        grader_id, _ = client.create_grader(LONG_ERROR, name="long-error")
        samples = b"[" + b",".join([b'""'] * 20_000) + b"]"
        request = pb.GradeBatchRequest(grader=pb.GraderRef(grader_id=grader_id), samples_json=samples)
        response = client._stub.GradeBatch(request, timeout=180, metadata=client._metadata)
    assert len(samples) <= 60_001 and len(response.error_indices) == 20_000
    assert response.ByteSize() <= 32 * 2**20  # --max-response-mb's default
    peak = _peak_bytes(service.pid)
    print(f"peak service memory {peak / 2**20:.0f} MiB, response {response.ByteSize() / 2**20:.1f} MiB")
    assert peak < GB, f"peak {peak / 2**20:.0f} MiB"
