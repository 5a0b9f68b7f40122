"""Helpers for tests of the grader service: a real `rft serve` child with two tenants, metrics scraping."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .embedded import ServiceProcess, serve_subprocess

TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-0123456789abcdef"
RFT = [str(Path(sys.executable).with_name("rft"))]

# Scores 1 when the sample's text equals item["answer"]; "boom" raises, "die" kills its worker,
# "sleep:S" sleeps S seconds (then scores 1).
GRADER_SOURCE = """\
import os
import time


def grade(sample, item):
    text = sample["output_text"]
    if text == "boom":
        raise ValueError("boom")
    if text == "die":
        os._exit(3)
    if text.startswith("sleep:"):
        time.sleep(float(text[6:]))
        return 1.0
    return 1.0 if text.strip() == str(item["answer"]) else 0.0
"""


def sandbox_backend() -> str:
    """namespace (bubblewrap) once `rft sandbox build` made it available, else the plain process backend."""
    if os.environ.get("RFT_TEST_SANDBOX"):
        return os.environ["RFT_TEST_SANDBOX"]
    from ..sandbox.backends import backend_problem

    return "namespace" if backend_problem("namespace") is None else "process"


def write_tokens(directory: Path) -> Path:
    path = directory / "tokens"
    path.write_text(f"# tenant token\nteam-a {TOKEN_A}\nteam-b {TOKEN_B}\n")
    return path


@contextmanager
def serve(
    directory: Path, *args: str, sandbox: str, data_dir: Path | None = None
) -> Iterator[ServiceProcess]:
    """`rft serve` with both tenants' tokens, a free port and metrics; SIGTERM at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    base = [
        "--host", "127.0.0.1", "--port", "0", "--tokens", str(write_tokens(directory)),
        "--data-dir", str(data_dir or directory / "data"), "--sandbox", sandbox, "--metrics-port", "0",
    ]  # fmt: skip
    with serve_subprocess([*base, *args], directory) as service:
        service.data_dir = data_dir or directory / "data"
        yield service


def metrics_text(service: ServiceProcess) -> str:
    return (
        urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=10).read().decode()
    )


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rft(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the `rft` command (same interpreter) and capture its output."""
    return subprocess.run(
        [*RFT, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
