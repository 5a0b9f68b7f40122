"""How a trainer rank's process ends (ranks.exit_rank): exit hooks run, buffered output is kept,
the exit code is the one given, and the interpreter's teardown is skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys
from rftkit.trainer.roles import ranks

atexit.register(lambda: open(sys.argv[1], "w").write("hook ran"))
class Teardown:
    def __del__(self):  # runs only in the interpreter's teardown
        print("teardown ran", flush=True)
keep = Teardown()
sys.stdout.write("buffered, not flushed")
ranks.exit_rank(3)
"""


def test_exit_rank_runs_the_hooks_flushes_and_skips_the_teardown(tmp_path: Path) -> None:
    marker = tmp_path / "hook"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(marker)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    assert marker.read_text() == "hook ran"
    assert done.stdout == "buffered, not flushed"  # "teardown ran" would follow after a normal exit


def test_leave_without_a_process_group_does_nothing() -> None:
    from rftkit.trainer.roles import ranks

    ranks.leave(clean=True)
    ranks.leave(clean=False)
