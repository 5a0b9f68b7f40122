"""Both benchmarks run end to end at tiny sizes (--quick --json), so they cannot rot unnoticed.

Real parts throughout: `rft serve` children with the sandbox backends this host has, real
containers and processes per sample, rftkit's trainer and TRL's GRPOTrainer on a tiny local model.
A backend this host lacks may show up as a skipped row saying why; a part that broke may not.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run_bench(script: str, *args: str, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print one JSON object, got:\n{proc.stdout[-2000:]}"
    return json.loads(lines[0])


def by_name(payload: dict) -> dict[str, dict]:
    rows = payload["rows"]
    for row in rows:
        assert {"name", "per_s", "p50_ms", "p99_ms", "ratio"} <= row.keys()
    names = [row["name"] for row in rows]
    assert len(names) == len(set(names)), "row names must be unique"
    return {row["name"]: row for row in rows}


def assert_measured(row: dict) -> None:
    assert row.get("skipped") is None, f"{row['name']} was not measured: {row['skipped']}"
    for key in ("p50_ms", "p99_ms"):
        assert math.isfinite(row[key]) and row[key] >= 0, row
    assert row["p99_ms"] >= row["p50_ms"], row


def assert_unbroken(row: dict) -> None:
    """Measured, or skipped only because the host lacks the backend (never because a part failed)."""
    if row.get("skipped"):
        assert not row["skipped"].startswith("failed"), f"{row['name']}: {row['skipped']}"
    else:
        assert_measured(row)


@pytest.mark.timeout(300)
def test_grading_bench_quick() -> None:
    rows = by_name(run_bench("grading.py", timeout=240))
    for grader in ("trivial", "realistic"):
        ceiling = rows[f"inprocess/{grader}"]
        assert_measured(ceiling)
        assert ceiling["ratio"] == pytest.approx(1.0)
        naive = rows[f"process-per-sample/{grader}"]
        assert_measured(naive)
        assert 0 < naive["ratio"] < 1, "a process per sample cannot beat calling grade() in-process"
        assert_unbroken(rows[f"docker-run-per-sample/{grader}"])
        for backend in ("namespace", "docker", "process"):
            for batch in ("1", "64", "1024", "1024x8"):
                assert_unbroken(rows[f"gradebatch-{backend}-{batch}/{grader}"])
    for backend in ("namespace", "docker", "process"):
        assert_unbroken(rows[f"cold-start-{backend}"])
    # The unsandboxed reference backend is always there: the service path itself must work.
    service = rows["gradebatch-process-1024/realistic"]
    assert_measured(service)
    assert service["per_s"] > rows["process-per-sample/realistic"]["per_s"]


@pytest.mark.timeout(300)
def test_trainer_step_bench_quick() -> None:
    rows = by_name(run_bench("trainer_step.py", timeout=240))
    rftkit, trl = rows["rftkit-step"], rows["trl-step"]
    assert_measured(rftkit)
    assert_measured(trl)
    assert rftkit["ratio"] > 0 and trl["ratio"] == pytest.approx(1.0)
    wait = rows["rftkit-grading-wait"]
    assert_measured(wait)
    assert 0 <= wait["ratio"] < 1


@pytest.mark.timeout(120)
def test_grading_profile_quick() -> None:
    rows = by_name(run_bench("grading_profile.py", "--backend", "process", "--samples", "128", timeout=100))
    stages = [name for name in rows if name.startswith("stage/") and name != "stage/sum"]
    assert len(stages) == 10
    total = rows["stage/sum"]["p50_ms"]
    assert total == pytest.approx(sum(rows[name]["p50_ms"] for name in stages))
    assert all(rows[name]["p50_ms"] >= 0 for name in stages) and total > 0  # every stage timed
    for part in ("worker-1", "pool", "grader", "gradebatch"):
        row = rows[f"real-{part}/process"]
        assert row.get("skipped") is None and row["per_s"] > 0 and row["p50_ms"] > 0, row
