"""The `lookup` tool of the agent example as a real HTTP server on loopback (standard library only).

    python lookup_server.py --port 8123 [--table codes.json] [--host 127.0.0.1]

It speaks the tool contract rftkit's HTTP tools use (OpenAI's): a POST of
`{"name", "arguments": {"key": ...}, "call_id", "trace_id"}` to `/lookup` answers
`{"code": "...."}` for a known key, and 404 `{"error": "unknown key"}` otherwise (a 4xx is shown
to the model as the tool's result). `GET /health` answers 200 once the table is loaded.
`rft train examples/agent/config.yaml` starts it itself (`agent.servers` in the config) and
stops it when the run ends.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_handler(table: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    """A request handler answering lookups from `table`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: the trainer's log is the place to look
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                return self._reply(200, {"ok": True})
            return self._reply(404, {"error": "no such path"})

        def do_POST(self) -> None:
            if self.path != "/lookup":
                return self._reply(404, {"error": "no such path"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                key = body["arguments"]["key"]
            except (ValueError, KeyError, TypeError):
                return self._reply(400, {"error": 'send {"arguments": {"key": "..."}}'})
            if not isinstance(key, str) or key not in table:
                return self._reply(404, {"error": "unknown key"})
            return self._reply(200, {"code": table[key]})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--table", type=Path, default=Path(__file__).resolve().parent / "codes.json")
    args = parser.parse_args()
    table = json.loads(args.table.read_text(encoding="utf-8"))
    ThreadingHTTPServer.request_queue_size = 128  # the default, 5, drops calls that arrive at once
    server = ThreadingHTTPServer((args.host, args.port), make_handler(table))
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
