"""Child processes of the trainer's roles that end with the thread that started them."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# Runs in the child, after the fork and before the real command: PR_SET_PDEATHSIG (1) survives
# exec, so the command gets SIGTERM when the thread that started it is gone.
_SHIM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"  # the parent died before the prctl: nobody to serve
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.exit(f'cannot run {sys.argv[2]}: {exc}')\n"
)


def dying_with_parent(command: Sequence[str]) -> list[str]:
    """`command`, wrapped so that it gets SIGTERM when the thread that starts it ends (Linux).

    Not a `preexec_fn`: that makes Python fork without vfork and run Python in the child, where
    gRPC's fork handlers (this process holds gRPC channels with keepalive timers) can abort it
    before exec (seen: "epoll_wait error: Bad file descriptor", status -6).
    """
    if sys.platform != "linux":
        return list(command)
    return [sys.executable, "-I", "-S", "-c", _SHIM, str(os.getpid()), *command]
