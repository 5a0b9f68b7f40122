"""`rft serve --http-port` options: --insecure-local on the HTTP API, and --base-model refusals."""

from __future__ import annotations

import subprocess
import sys

from rftkit.grader_service.http.testing import ROOT, HttpService


def test_insecure_local_serves_any_key_as_tenant_local(tmp_path) -> None:
    service = HttpService(
        tmp_path, tmp_path / "data", ["--sandbox", "process", "--insecure-local"], tokens=False
    )
    service.start()
    try:
        client = service.client("anything")
        created = client.files.create(file=("x.jsonl", b'{"item": {}}\n'), purpose="evals")
        assert client.files.retrieve(created.id).id == created.id
    finally:
        assert service.stop() == 0


def test_bad_base_model_is_a_usage_error(tmp_path) -> None:
    command = [sys.executable, "-m", "rftkit.cli.serve", "--insecure-local", "--port", "0",
               "--http-port", "0", "--data-dir", str(tmp_path / "d")]  # fmt: skip
    for value, words in (("tiny", "NAME=SOURCE"), (f"tiny={tmp_path}/nowhere", "not a model directory")):
        proc = subprocess.run(
            [*command, "--base-model", value], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr[-2000:]
