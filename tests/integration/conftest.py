"""Fixtures shared by the integration tests: the sandbox to use, a tiny model, and a judge test double.

`sandbox`: the backend the service runs Python graders in (namespace when built, else process).
`tiny_model_dir`: a tiny model directory built once per session.

The judge: a test double of an OpenAI-compatible judge.

`judge` is a real HTTP server on 127.0.0.1 (ThreadingHTTPServer on a free port) that answers
POST /v1/chat/completions the way a chat-completions endpoint does. It is a TEST DOUBLE of the
judge model, not a model: its replies follow rules the tests control through the prompt text:
  - `REPLY=<text>` (to the end of the line; `\n` in it becomes a newline): the assistant's content;
  - `STATUS=<code>`: answer with that HTTP status;
  - `DELAY=<seconds>`: wait before answering (to see concurrency);
  - `REFUSE`: answer with a refusal;
  - otherwise two rules that stand in for a real judge on the OpenAI guide's examples: a prompt with
    `Reference answer: A` and `Model answer: B` scores {"result": 1.0} when A == B, else 0.0; and
    a sentiment prompt gets `positive` / `negative` / `neutral` by keywords.
Every request (path, headers with case-insensitive lookup, JSON body) is recorded in `judge.requests`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rftkit.grader_service.testing import sandbox_backend


class JudgeDouble:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with double.lock:
                    # headers as received, looked up case-insensitively (HTTP clients differ in case)
                    double.requests.append({"path": self.path, "headers": self.headers, "body": body})
                    double.in_flight += 1
                    double.max_in_flight = max(double.max_in_flight, double.in_flight)
                try:
                    status, payload = double.answer(self.path, body)
                finally:
                    with double.lock:
                        double.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    @staticmethod
    def prompt(body: dict[str, Any]) -> str:
        parts = []
        for message in body.get("messages", []):
            content = message["content"]
            if isinstance(content, list):
                content = "\n".join(p.get("text", "") for p in content)
            parts.append(content)
        return "\n".join(parts)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}"}}
        prompt = self.prompt(body)
        delay = re.search(r"DELAY=([\d.]+)", prompt)
        if delay:
            time.sleep(float(delay.group(1)))
        status = re.search(r"STATUS=(\d+)", prompt)
        if status:
            return int(status.group(1)), {"error": {"message": "scripted failure"}}
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if "REFUSE" in prompt:
            message["refusal"] = "I can't help with that."
        else:
            message["content"] = self.content(prompt)
        usage = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": 5,
            "total_tokens": len(prompt.split()) + 5,
        }
        return 200, {
            "id": "chatcmpl-double",
            "object": "chat.completion",
            "model": f"{body['model']}-double",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }

    @staticmethod
    def content(prompt: str) -> str:
        reply = re.search(r"REPLY=(.*)", prompt)
        if reply:
            return reply.group(1).replace("\\n", "\n")
        reference = re.search(r"Reference answer: (.*)", prompt)
        answer = re.search(r"Model answer: (.*)", prompt)
        if reference and answer:
            score = 1.0 if reference.group(1).strip() == answer.group(1).strip() else 0.0
            return json.dumps({"steps": ["compared the answers"], "result": score})
        statement = re.search(r"Statement: (.*)", prompt)
        if statement and "sentiment" in prompt:
            words = statement.group(1).lower()
            label = "positive" if "love" in words else "negative" if "hate" in words else "neutral"
            return json.dumps({"steps": ["read the statement"], "result": label})
        return "I am not sure how to grade this."

    def __enter__(self) -> JudgeDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge() -> Iterator[JudgeDouble]:
    with JudgeDouble() as double:
        yield double


@pytest.fixture(scope="session")
def sandbox() -> str:
    """The sandbox the service runs Python graders in: namespace when built, else process."""
    return sandbox_backend()


WORDS = ["bako", "mire", "tupo", "lesa", "gani", "vazu", "defo", "ruki"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model directory shared by the trainer's integration tests (built once per session)."""
    from rftkit.trainer.tiny_model import build_tiny_model

    texts = [f"Which word is first?\n{','.join(WORDS[i:] + WORDS[:i])}" for i in range(len(WORDS))] * 20
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=384)
