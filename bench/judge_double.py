"""A benchmark fixture: an OpenAI-compatible chat-completions endpoint standing in for a slow LLM judge.

It is NOT a model. It serves POST /v1/chat/completions on 127.0.0.1 (ThreadingHTTPServer, a free
port), waits `delay_s` before every answer (the latency of a real judge, which is what the async
benchmark is about) and scores the way tests/integration/conftest.py's JudgeDouble does: a prompt
holding `Reference answer: A` and `Model answer: B` gets {"result": 1.0} when A == B, else 0.0.

    with SlowJudge(delay_s=0.2) as judge:
        spec = judge.score_model_spec()          # a score_model grader pointed at it
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REFERENCE = re.compile(r"Reference answer: (.*)")
_ANSWER = re.compile(r"Model answer: (.*)")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the listen backlog: 64 connections at once must not wait for SYN retries


class SlowJudge:
    """Answers each chat-completions request after `delay_s`, any number at once."""

    def __init__(self, delay_s: float = 0.2) -> None:
        self.delay_s = delay_s
        self.requests = 0
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def score_model_spec(self, *, max_concurrency: int = 64) -> dict[str, Any]:
        """A score_model grader (OpenAI's JSON, plus rftkit's base_url) that asks this judge."""
        return {
            "type": "score_model",
            "name": "slow_judge",
            "model": "judge-double",
            "input": [
                {
                    "role": "user",
                    "content": "Reference answer: {{item.answer}}\nModel answer: {{sample.output_text}}",
                }
            ],
            "range": [0, 1],
            "base_url": self.url,
            "max_concurrency": max_concurrency,
            "max_retries": 0,
        }

    def _score(self, body: dict[str, Any]) -> float:
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        reference, answer = _REFERENCE.search(prompt), _ANSWER.search(prompt)
        if not (reference and answer):
            return 0.0
        return 1.0 if reference.group(1).strip() == answer.group(1).strip() else 0.0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(judge.delay_s)
                with judge._lock:
                    judge.requests += 1
                content = json.dumps({"steps": ["compared the answers"], "result": judge._score(body)})
                payload = {
                    "id": "chatcmpl-slow-judge",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "judge-double"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content, "refusal": None},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> SlowJudge:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
