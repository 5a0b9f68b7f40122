"""Servers with their own settings: restarts, shutdown, queue, deadlines, sizes, TLS, retries."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from rftkit.grader_service.client import GraderClient, GraderServiceError, RetryPolicy
from rftkit.grader_service.embedded import serve_subprocess
from rftkit.grader_service.testing import (
    GRADER_SOURCE,
    TOKEN_A,
    free_port,
    metric,
    metrics_text,
    rft,
    serve,
    write_tokens,
)

NO_RETRY = RetryPolicy(attempts=1)
STRING_CHECK = {
    "type": "string_check",
    "operation": "eq",
    "input": "{{sample.output_text}}",
    "reference": "x",
}


def test_restart_keeps_graders_ids_and_versions(tmp_path, sandbox) -> None:
    data = tmp_path / "data"
    with serve(tmp_path / "one", sandbox=sandbox, data_dir=data) as first, first.client(TOKEN_A) as client:
        python_id, v1 = client.create_grader(GRADER_SOURCE, name="match")
        _, v2 = client.create_grader(GRADER_SOURCE + "\n# v2\n", name="match", grader_id=python_id)
        check_id, check_version = client.create_grader(STRING_CHECK)
        before = {g["id"]: g for g in client.list_graders()}
    assert first.process.returncode == 0
    with serve(tmp_path / "two", sandbox=sandbox, data_dir=data) as second, second.client(TOKEN_A) as client:
        after = {g["id"]: g for g in client.list_graders()}
        assert after == before
        assert after[python_id]["version"] == v2
        assert [v["version"] for v in after[python_id]["versions"]] == [v1, v2]
        assert client.get_grader(python_id, v1)["spec"]["source"] == GRADER_SOURCE
        assert client.create_grader(STRING_CHECK) == (check_id, check_version)  # one version per content
        assert [r.reward for r in client.grade_batch(python_id, ["1", "2"], {"answer": "2"})] == [0.0, 1.0]
        assert client.run(python_id, "1", {"answer": "1"}, version=v1).reward == 1.0


def test_sigterm_lets_an_in_flight_batch_finish(tmp_path, sandbox) -> None:
    with serve(tmp_path, "--shutdown-grace", "30", sandbox=sandbox) as service:
        with service.client(TOKEN_A, retry=NO_RETRY) as client:
            grader, _ = client.create_grader(GRADER_SOURCE)
            client.run(grader, "1", {"answer": "1"})  # warm the pool
            with ThreadPoolExecutor(1) as pool:
                batch = pool.submit(client.grade_batch, grader, ["sleep:0.05"] * 40, {"answer": "1"})
                time.sleep(0.4)
                service.process.send_signal(signal.SIGTERM)
                results = batch.result(60)
            assert [r.reward for r in results] == [1.0] * 40
            with pytest.raises(GraderServiceError) as info:
                client.list_graders()
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert service.process.wait(30) == 0
        assert "draining" in service.log_text()


def test_sigterm_fails_a_batch_that_outlasts_the_grace_period(tmp_path, sandbox) -> None:
    with serve(tmp_path, "--shutdown-grace", "0.5", sandbox=sandbox) as service:
        with service.client(TOKEN_A, retry=NO_RETRY) as client:
            grader, _ = client.create_grader(GRADER_SOURCE)
            client.run(grader, "1", {"answer": "1"})
            with ThreadPoolExecutor(1) as pool:
                batch = pool.submit(client.grade_batch, grader, ["sleep:0.05"] * 400, {"answer": "1"})
                time.sleep(0.4)
                service.process.send_signal(signal.SIGTERM)
                with pytest.raises(GraderServiceError) as info:
                    batch.result(60)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in info.value.details
        assert service.process.wait(30) == 0


def test_full_queue_answers_resource_exhausted(tmp_path, sandbox) -> None:
    args = ("--concurrency", "1", "--max-queue", "1")
    with serve(tmp_path, *args, sandbox=sandbox) as service, service.client(TOKEN_A) as client:
        grader, _ = client.create_grader(GRADER_SOURCE)
        client.run(grader, "1", {"answer": "1"})
        slow = (grader, ["sleep:0.1"] * 20, {"answer": "1"})
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(client.grade_batch, *slow)
            time.sleep(0.3)
            queued = pool.submit(client.grade_batch, *slow)
            time.sleep(0.3)
            with pytest.raises(GraderServiceError, match="queue is full") as info:
                client.grade_batch(*slow)
            assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert len(running.result(60)) == 20 and len(queued.result(60)) == 20


def test_expired_deadline_stops_the_work(tmp_path, sandbox) -> None:
    with serve(tmp_path, sandbox=sandbox) as service, service.client(TOKEN_A) as client:
        grader, _ = client.create_grader(GRADER_SOURCE)
        client.run(grader, "1", {"answer": "1"})
        start = time.monotonic()
        with pytest.raises(GraderServiceError) as info:
            client.grade_batch(grader, ["sleep:0.05"] * 400, {"answer": "1"}, timeout=0.5)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - start < 5
        time.sleep(2.5)  # the server notices between chunks
        text = metrics_text(service)
        assert metric(text, "rft_abandoned_total", reason="deadline") == 1
        assert metric(text, "rft_grades_total", grader_type="python") < 200  # it did not grade all 400
        assert metric(text, "rft_in_flight") == 0


def test_oversized_request_gets_a_clear_status_and_the_client_chunks(tmp_path, sandbox) -> None:
    with serve(tmp_path, "--max-message-mb", "0.25", sandbox=sandbox) as service:
        samples = ["x" * 1000] * 1000  # about 1 MB
        with service.client(TOKEN_A, max_request_bytes=10**9, retry=NO_RETRY) as raw:
            with pytest.raises(GraderServiceError, match="max-message-mb") as info:
                raw.grade_batch(STRING_CHECK, samples, {})
            assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        with service.client(TOKEN_A) as client:  # asks the server for its limit and splits the batch
            assert [r.reward for r in client.grade_batch(STRING_CHECK, samples, {})] == [0.0] * 1000


def test_tls(tmp_path, sandbox) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), sandbox=sandbox) as service:
        with GraderClient(service.address, TOKEN_A, tls_ca=cert) as client:
            assert client.run(STRING_CHECK, "x").reward == 1.0
        with GraderClient(service.address, TOKEN_A, retry=NO_RETRY, timeout=5) as plain:
            with pytest.raises(GraderServiceError) as info:
                plain.list_graders()
            assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_insecure_local_only_on_loopback(tmp_path, sandbox) -> None:
    args = ["--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"), "--insecure-local"]
    with (
        serve_subprocess([*args, "--sandbox", sandbox], tmp_path) as service,
        GraderClient(service.address) as client,
    ):
        assert client.server_info().tenant == "local"
        assert client.run(STRING_CHECK, "x").reward == 1.0
    refused = rft("serve", "--host", "0.0.0.0", "--insecure-local", "--data-dir", str(tmp_path / "d"))
    assert refused.returncode == 2 and "only allowed on loopback" in refused.stderr
    no_auth = rft("serve", "--data-dir", str(tmp_path / "d"))
    assert no_auth.returncode == 2 and "--tokens" in no_auth.stderr
    bad_tokens = tmp_path / "bad"
    bad_tokens.write_text("team-a short\n")
    bad = rft("serve", "--tokens", str(bad_tokens), "--data-dir", str(tmp_path / "d"))
    assert bad.returncode == 2 and "too short" in bad.stderr


def test_client_retries_until_the_server_is_up(tmp_path, sandbox) -> None:
    port = free_port()
    retry = RetryPolicy(attempts=8, initial_backoff_s=0.2, max_backoff_s=1.0)
    outcome: list[object] = []
    with GraderClient(f"127.0.0.1:{port}", TOKEN_A, retry=retry) as client:
        caller = threading.Thread(target=lambda: outcome.append(client.run(STRING_CHECK, "x").reward))
        caller.start()
        time.sleep(0.5)
        args = ["--host", "127.0.0.1", "--port", str(port), "--tokens", str(write_tokens(tmp_path))]
        with serve_subprocess([*args, "--data-dir", str(tmp_path / "d"), "--sandbox", sandbox], tmp_path):
            caller.join(30)
    assert outcome == [1.0]
