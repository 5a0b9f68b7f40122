"""`rft serve --http-port` options: --insecure-local on the HTTP API, and --base-model refusals."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
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


def test_limits_are_flags_with_environment_variables(tmp_path) -> None:
    """--max-upload-mb from the command line, the tenant's storage limit from RFT_HTTP_*; a bad value is
    a usage error naming the flag."""
    service = HttpService(
        tmp_path, tmp_path / "data", ["--sandbox", "process", "--insecure-local", "--max-upload-mb", "0.001"],
        tokens=False,
        env={"RFT_HTTP_MAX_STORAGE_MB_PER_TENANT": "0.0015", "RFT_HTTP_MAX_ACTIVE_EVALS_PER_TENANT": "1"},
    )  # fmt: skip
    service.start()
    try:
        client = service.client("anything")
        line = b'{"item": {"x": "' + b"y" * 800 + b'"}}\n'
        client.files.create(file=("a.jsonl", line), purpose="evals")
        with pytest.raises(openai.APIStatusError) as caught:  # 2 x 800 bytes: over the tenant's 0.0015 MB
            client.files.create(file=("b.jsonl", line), purpose="evals")
        assert caught.value.status_code == 413 and caught.value.body["code"] == "storage_limit_exceeded"
        with pytest.raises(openai.APIStatusError) as caught:  # over the 1 kB per file
            client.files.create(file=("c.jsonl", line * 2), purpose="evals")
        assert caught.value.status_code == 413 and caught.value.body["code"] == "file_too_large"
        evaluation = client.evals.create(
            data_source_config={"type": "custom", "item_schema": {"type": "object"}},
            testing_criteria=[{"type": "string_check", "name": "x", "input": "{{item.a}}", "reference": "b",
                               "operation": "eq"}],
        )  # fmt: skip
        source = {"type": "jsonl", "source": {"type": "file_content", "content": [{"item": {"a": "b"}}]}}
        client.evals.runs.create(evaluation.id, data_source=source)
        with pytest.raises(openai.RateLimitError) as caught:  # one active eval run per tenant here
            client.evals.runs.create(evaluation.id, data_source=source)
        assert "the limit is 1" in caught.value.body["message"]
    finally:
        assert service.stop() == 0
    command = [sys.executable, "-m", "rftkit.cli.serve", "--insecure-local", "--port", "0",
               "--http-port", "0", "--data-dir", str(tmp_path / "d"), "--max-running-jobs", "0"]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "--max-running-jobs" in proc.stderr, proc.stderr[-2000:]
