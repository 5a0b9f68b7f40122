"""dying_with_parent: the command runs as itself (pid, arguments, environment) and ends with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from rftkit.trainer.processes import dying_with_parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def test_the_command_runs_as_itself() -> None:
    probe = "import os, sys; print(os.getpid(), sys.argv[1:], os.environ['PROBE'])"
    proc = subprocess.Popen(
        dying_with_parent([sys.executable, "-c", probe, "a b", "c"]),
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PROBE": "yes"},
    )  # fmt: skip
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.split(maxsplit=1)[0] == str(proc.pid)  # exec'd in place: the pid Popen knows
    assert "['a b', 'c'] yes" in out


def test_a_missing_command_says_so() -> None:
    command = dying_with_parent(["/nonexistent/tool"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "cannot run /nonexistent/tool" in done.stderr


def test_the_child_ends_with_the_process_that_started_it(tmp_path) -> None:
    """A middle process starts a sleeper through the wrapper and is killed -9: the sleeper gets SIGTERM."""
    pid_file = tmp_path / "pid"
    middle = (
        "import subprocess, sys, time\n"
        "from rftkit.trainer.processes import dying_with_parent\n"
        f"p = subprocess.Popen(dying_with_parent([sys.executable, '-c', 'import time; time.sleep(60)']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", middle])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the middle process did not start its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(0.5)  # past the wrapper's prctl and exec
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the child outlived the process that started it"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
