"""bench/http_graders.py end to end (--quick --json): graders.run on loopback stays well under 50 ms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_http_graders_bench() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "http_graders.py"), "--quick", "--json"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(proc.stdout)["rows"]}
    assert {"in-process", "grpc/RunGrader", "http/sdk", "http/httpx"} <= rows.keys()
    assert rows["grpc/RunGrader"]["ratio"] == 1.0
    assert rows["http/sdk"]["p50_ms"] < 50.0
    assert rows["in-process"]["p50_ms"] < rows["http/sdk"]["p50_ms"]
