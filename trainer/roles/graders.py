"""Grader-service replicas for one run: `rft serve` children sharing one token and one grader store.

    with start_grader_replicas(2, sandbox="auto") as group:
        open_session(spec, address=group.addresses, token=group.token)

Each replica is a plain `rft serve` process (`serve_subprocess`, the same path as the embedded
service); they share a tokens file and (`rft serve --shared-store`) one SQLite grader store
(WAL; see grader_service/store.py), so a grader uploaded to one is served by every replica.
The trainer reaches them through gRPC round-robin with fail-over (grading/replicas.py).
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ...grader_service.embedded import ServiceProcess, serve_subprocess


@dataclass
class ReplicaGroup:
    addresses: list[str]
    token: str
    services: list[ServiceProcess] = field(repr=False)
    store: Path

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.services]


@contextmanager
def start_grader_replicas(
    count: int, *, sandbox: str = "auto", data_dir: Path | None = None, shutdown_grace_s: float = 10.0
) -> Iterator[ReplicaGroup]:
    """`count` replicas on free loopback ports; all stopped (SIGTERM) when the block ends."""
    if count < 1:
        raise ValueError("at least one grader replica")
    with tempfile.TemporaryDirectory(prefix="rft-replicas-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        token = secrets.token_hex(24)
        tokens = work / "tokens"
        tokens.write_text(f"local {token}\n")
        tokens.chmod(0o600)
        store = Path(data_dir) if data_dir is not None else work / "data"
        services = []
        for index in range(count):
            args = [
                "--host", "127.0.0.1", "--port", "0", "--sandbox", sandbox, "--tokens", str(tokens),
                "--data-dir", str(store), "--shared-store", "--shutdown-grace", str(shutdown_grace_s),
            ]  # fmt: skip
            services.append(
                stack.enter_context(
                    serve_subprocess(args, work / f"replica-{index}", stop_timeout=shutdown_grace_s + 15)
                )
            )
        yield ReplicaGroup([s.address for s in services], token, services, store)
