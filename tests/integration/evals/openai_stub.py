"""A real OpenAI-compatible chat completions server on 127.0.0.1 whose models are Python functions.

Each model maps a request body to (content, reasoning_content); every request body is recorded.
`fail_first` makes the first N chat requests answer 503, to exercise client retries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[dict[str, Any]], tuple[str, str | None]]


@dataclass
class Stub:
    models: dict[str, Answer]
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_failure(self) -> bool:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            return False


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(
                    200, {"object": "list", "data": [{"id": m, "object": "model"} for m in stub.models]}
                )
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            if stub.next_failure():
                self._send(503, {"error": {"message": "busy, try again"}})
                return
            with stub.lock:
                stub.requests.append(body)
            if body.get("model") not in stub.models:
                self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
                return
            content, reasoning = stub.models[body["model"]](body)
            message = {"role": "assistant", "content": content}
            if reasoning is not None:
                message["reasoning_content"] = reasoning
            self._send(200, {
                "id": "chatcmpl-stub", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            })  # fmt: skip

    return Handler


@contextmanager
def serve(models: dict[str, Answer], fail_first: int = 0) -> Iterator[Stub]:
    """Run the stub on a free loopback port; `stub.url` is its /v1 base URL."""
    stub = Stub(models=models, fail_first=fail_first)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
