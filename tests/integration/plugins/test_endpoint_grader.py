"""The `endpoint` grader against a real HTTP server on loopback that misbehaves in every way it can.

The server reads the item's `mode` and answers with a score, slowly, with 5xx (always, or only
the first time), with a 2 MB body, with a body that is not JSON, or with a bad score. Each
failure must be that sample's own error flag (no silent 0s), and the rest of the batch graded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rftkit.core.records import Sample
from rftkit.plugins.endpoint_client import RateLimiter
from rftkit.plugins.registry import GraderSpecError, build_grader, parse_spec

RFT = str(Path(sys.executable).with_name("rft"))


class GraderServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict[str, Any]]
    attempts: Counter[str]
    lock: threading.Lock


class Handler(BaseHTTPRequestHandler):
    server: GraderServer

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        item = body["item"]
        mode = item.get("mode", "ok")
        with self.server.lock:
            self.server.seen.append(
                body
                | {"header_trace": self.headers.get("x-trace-id"), "auth": self.headers.get("authorization")}
            )
            self.server.attempts[item.get("key", mode)] += 1
            attempt = self.server.attempts[item.get("key", mode)]
        if mode == "slow":
            time.sleep(8)
        if mode == "5xx" or (mode == "flaky" and attempt == 1):
            return self.answer(503, b'{"error": "overloaded"}')
        if mode == "4xx":
            return self.answer(422, b'{"error": "no such thing"}')
        if mode == "big":
            return self.answer(200, b'{"score": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}')
        if mode == "badjson":
            return self.answer(200, b"<html>not json</html>", "text/html")
        if mode == "noscore":
            return self.answer(200, b'{"value": 1}')
        if mode == "outofrange":
            return self.answer(200, b'{"score": 7}')
        score = 1.0 if body["sample"]["output_text"] == item.get("answer") else 0.0
        return self.answer(200, json.dumps({"score": score}).encode())


@pytest.fixture
def server() -> Iterator[GraderServer]:
    httpd = GraderServer(("127.0.0.1", 0), Handler)
    httpd.seen, httpd.attempts, httpd.lock = [], Counter(), threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def spec_for(httpd: GraderServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "endpoint",
        "name": "e",
        "url": f"http://127.0.0.1:{httpd.server_address[1]}/grade",
        "timeout_s": 2.5,
        "retry_backoff_s": 0.01,
        **extra,
    }


def test_misbehaving_endpoint_costs_each_sample_only_its_own_reward(server: GraderServer) -> None:
    grader = build_grader(spec_for(server, headers={"Authorization": "Bearer s3cret"}, pass_threshold=0.5))
    modes = ["ok", "slow", "5xx", "big", "badjson", "ok", "flaky", "4xx", "noscore", "outofrange", "ok"]
    pairs = [
        (Sample.from_text("42"), {"mode": m, "answer": "42", "key": f"{m}{i}"}) for i, m in enumerate(modes)
    ]
    pairs[5] = (Sample.from_text("41"), pairs[5][1])  # a real 0: wrong answer, no flag
    start = time.monotonic()
    try:
        results = grader.grade_batch(pairs)
    finally:
        grader.close()
    assert time.monotonic() - start < 20  # concurrent: the slow sample does not hold up the rest
    flags = [r.metadata.errors.raised() for r in results]
    assert [r.reward for r in results] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert flags == [
        [], ["timeout_error"], ["unresponsive_reward_error"], ["resource_limit_error"],
        ["invalid_reward_error"], [], [], ["other_error"], ["invalid_reward_error"],
        ["invalid_reward_error"], [],
    ]  # fmt: skip
    assert [r.valid for r in results] == [not f for f in flags]
    assert results[0].metadata.passes == {"pass": True} and results[5].metadata.passes == {"pass": False}
    assert "413" in (results[3].metadata.errors.details or "")
    assert "after 4 attempts" in (results[2].metadata.errors.details or "")
    assert server.attempts["5xx2"] == 4 and server.attempts["flaky6"] == 2 and server.attempts["4xx7"] == 1
    first = server.seen[0]
    assert set(first) >= {"sample", "item", "trace_id"} and first["trace_id"].startswith("trace_")
    assert first["header_trace"] == first["trace_id"] and first["auth"] == "Bearer s3cret"
    assert first["sample"]["output_text"] == "42"
    assert len({body["trace_id"] for body in server.seen if body["item"]["mode"] == "ok"}) == 3


def test_endpoint_inside_multi(server: GraderServer) -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "graders": {
            "remote": spec_for(server),
            "local": {"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
                      "reference": "{{item.answer}}", "operation": "eq"},
        },
        "calculate_output": "0.5 * remote + 0.5 * local",
    }  # fmt: skip
    grader = build_grader(spec)
    try:
        ok, broken = grader.grade_batch(
            [
                (Sample.from_text("7"), {"answer": "7"}),
                (Sample.from_text("7"), {"answer": "7", "mode": "5xx"}),
            ]
        )
    finally:
        grader.close()
    assert ok.reward == 1.0 and ok.valid
    assert broken.metadata.errors.unresponsive_reward_error and not broken.valid


def test_spec_checks() -> None:
    with pytest.raises(GraderSpecError, match="url must start with http"):
        parse_spec({"type": "endpoint", "name": "e", "url": "ftp://x"})
    with pytest.raises(GraderSpecError, match="rate_limit"):
        parse_spec({"type": "endpoint", "name": "e", "url": "http://x", "rate_limit": 0})


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    limiter = RateLimiter(600, clock=lambda: now[0])  # 10 a second
    waits = []
    for _ in range(3):
        start = time.monotonic()
        limiter.acquire()
        waits.append(time.monotonic() - start)
    assert waits[0] < 0.05 and waits[1] >= 0.09 and waits[2] >= 0.19


def test_rft_graders_run(server: GraderServer, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"type": "endpoint", "name": "e", "url": spec_for(server)["url"]}))
    run = [RFT, "graders", "run", str(spec), "--sample", "42"]
    good = subprocess.run([*run, "--item", '{"answer": "42"}'], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["reward"] == 1.0
    bad = subprocess.run([*run, "--item", '{"mode": "badjson"}'], capture_output=True, text=True, timeout=60)
    result = json.loads(bad.stdout)
    assert result["metadata"]["errors"]["invalid_reward_error"] is True
    assert result["metadata"]["valid"] is False
