"""`rft sandbox build` is a fast no-op once built; `rft sandbox status` says what `auto` picks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from rftkit.cli.sandbox import sandbox

pytestmark = pytest.mark.timeout(900)


def _rft(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from rftkit.cli.main import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.mark.skipif(
    shutil.which("bwrap") is None and shutil.which("docker") is None, reason="no sandbox tools"
)
def test_build_twice_is_a_fast_no_op_and_status_agrees() -> None:
    first = _rft("sandbox", "build")  # builds on a fresh host; CI's setup has already run it
    assert first.returncode == 0, first.stdout + first.stderr
    start = time.monotonic()
    second = _rft("sandbox", "build")
    assert second.returncode == 0, second.stdout + second.stderr
    assert time.monotonic() - start < 20
    assert "is up to date" in second.stdout
    status = _rft("sandbox", "status")
    assert status.returncode == 0
    expected = "docker" if shutil.which("docker") else "namespace"
    assert f"auto       -> {expected}" in status.stdout


def test_bad_options_exit_2() -> None:
    result = CliRunner().invoke(sandbox, ["build", "--backend", "chroot"])
    assert result.exit_code == 2
    assert "chroot" in result.output


def test_bench_reports_every_column_on_the_process_backend() -> None:
    result = CliRunner().invoke(
        sandbox, ["bench", "--backend", "process", "--batch", "200", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "in-process grade()" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("process"))
    assert row.split()[1] == "1" and row.endswith("us")
