"""Agent tools for real: an HTTP tool server on loopback (every way it answers), sandboxed Python tools."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rftkit.sandbox.testing import require_backend
from rftkit.trainer.agent.tools import Toolbox, ToolCall, ToolSpecError, parse_tools

TABLE = {"alpha": "17", "beta": "42"}
PARAMS = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}


class ToolServer(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[dict[str, Any]]
    attempts: Counter[str]
    lock: threading.Lock


class Handler(BaseHTTPRequestHandler):
    server: ToolServer

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        key = body["arguments"]["key"]
        with self.server.lock:
            self.server.seen.append(body | {"header_trace": self.headers.get("x-trace-id")})
            self.server.attempts[key] += 1
            attempt = self.server.attempts[key]
        if key == "hang":
            time.sleep(6)
        if key == "down" or (key == "flaky" and attempt == 1):
            return self.answer(500, b"boom")
        if key == "huge":
            return self.answer(200, b'"' + b"x" * (2 * 1024 * 1024) + b'"')
        if key == "text":
            return self.answer(200, b"plain words", "text/plain")
        if key not in TABLE and key != "flaky":
            return self.answer(404, json.dumps({"error": f"no key {key}"}).encode())
        return self.answer(200, json.dumps({"value": TABLE.get(key, "9")}).encode())


@pytest.fixture
def server() -> Iterator[ToolServer]:
    httpd = ToolServer(("127.0.0.1", 0), Handler)
    httpd.seen, httpd.attempts, httpd.lock = [], Counter(), threading.Lock()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def http_tool(httpd: ToolServer, **extra: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{httpd.server_address[1]}/lookup"
    return {"type": "function", "name": "lookup", "description": "Look a key up.", "parameters": PARAMS,
            "server_url": url, "timeout_s": 2.0, "retry_backoff_s": 0.01, **extra}  # fmt: skip


def call(key: Any, index: int = 0, name: str = "lookup") -> ToolCall:
    return ToolCall(id=f"call_{index}", name=name, arguments=json.dumps({"key": key}))


def test_http_tool_every_answer(server: ToolServer) -> None:
    (tool,) = parse_tools([http_tool(server, headers={"X-Api": "k"})])
    keys = ["alpha", "nope", "down", "hang", "huge", "text", "flaky", "beta"]
    calls = [call(k, i) for i, k in enumerate(keys)]
    calls += [ToolCall("call_a", "lookup", "{not json"), ToolCall("call_b", "lookup", '{"k": 1}'),
              ToolCall("call_c", "search", "{}")]  # fmt: skip
    start = time.monotonic()
    with Toolbox([tool]) as toolbox:
        results = toolbox.call_many(calls)
    assert time.monotonic() - start < 15  # concurrent: the hanging call does not hold up the rest
    kinds = [r.kind for r in results]
    assert kinds == ["ok", "client_error", "server_error", "timeout", "too_large", "ok", "ok", "ok",
                     "invalid_call", "invalid_call", "unknown_tool"]  # fmt: skip
    assert [r.drops_episode for r in results][:4] == [False, False, True, True]
    assert json.loads(results[0].content) == {"value": "17"}
    assert results[1].content.startswith("error: HTTP 404") and "no key nope" in results[1].content
    assert "413" in results[4].content and results[5].content == "plain words"
    assert server.attempts["down"] == 4 and server.attempts["flaky"] == 2 and server.attempts["alpha"] == 1
    assert "required" in results[9].content and "search" in results[10].content
    first = next(body for body in server.seen if body["arguments"]["key"] == "alpha")
    assert first["name"] == "lookup" and first["call_id"] == "call_0"
    assert first["trace_id"].startswith("trace_") and first["header_trace"] == first["trace_id"]
    assert results[0].latency_s > 0


def test_rate_limit_per_tool(server: ToolServer) -> None:
    (tool,) = parse_tools([http_tool(server, rate_limit=300)])  # one every 0.2 s
    start = time.monotonic()
    with Toolbox([tool]) as toolbox:
        results = toolbox.call_many([call("alpha", i) for i in range(4)])
    assert all(r.kind == "ok" for r in results)
    assert time.monotonic() - start >= 0.55


def test_tool_specs_are_checked() -> None:
    with pytest.raises(ToolSpecError, match="exactly one of server_url"):
        parse_tools([{"type": "function", "name": "x"}])
    with pytest.raises(ToolSpecError, match="no top-level function `lookup`"):
        parse_tools([{"name": "lookup", "python": "def other(key):\n    return key\n"}])
    with pytest.raises(ToolSpecError, match="repeated"):
        parse_tools([{"name": "a", "server_url": "http://x"}, {"name": "a", "server_url": "http://y"}])
    with pytest.raises(ToolSpecError, match="parameters"):
        parse_tools([{"name": "a", "server_url": "http://x", "parameters": {"type": "array"}}])
    (nested,) = parse_tools([{"type": "function", "function": {"name": "a", "parameters": PARAMS},
                              "server_url": "http://x"}])  # fmt: skip
    assert nested.openai_tool() == {"type": "function", "function": {"name": "a", "description": "",
                                                                     "parameters": PARAMS}}  # fmt: skip


PYTHON_TOOL = """
TABLE = {"alpha": "17", "beta": "42"}

def lookup(key):
    if key == "boom":
        raise KeyError(key)
    if key == "loop":
        while True:
            pass
    if key.startswith("escape:"):  # reach the host's tool server from inside the sandbox
        import socket
        socket.create_connection(("127.0.0.1", int(key.split(":")[1])), timeout=1).sendall(b"GET / HTTP/1.0")
    if key == "read":
        return open("/etc/shadow").read()
    return {"value": TABLE[key]} if key in TABLE else "unknown key"
"""


@pytest.mark.bwrap
def test_python_tool_in_the_sandbox(server: ToolServer) -> None:
    require_backend("namespace")
    (tool,) = parse_tools([{"name": "lookup", "parameters": PARAMS, "python": PYTHON_TOOL, "timeout_s": 2}])
    keys = ["alpha", "zzz", "boom", f"escape:{server.server_address[1]}", "read", "loop", "beta"]
    with Toolbox([tool], sandbox="namespace", sandbox_limits={"workers": 1}) as toolbox:
        results = toolbox.call_many([call(k, i) for i, k in enumerate(keys)])
        assert toolbox.call_many([call("beta")])[0].content == '{"value": "42"}'  # the pool stays warm
    kinds = [r.kind for r in results]
    assert kinds == ["ok", "ok", "runtime_error", "runtime_error", "runtime_error", "timeout", "ok"]
    assert results[0].content == '{"value": "17"}' and results[1].content == "unknown key"
    assert "KeyError" in results[2].content
    assert "Error" in results[3].content and not server.seen  # the host's loopback is out of reach
    assert "shadow" in results[4].content
    assert results[5].drops_episode and not results[3].drops_episode
