"""`rft eval --agent-config`: the agent example's episodes for an OpenAI-compatible URL and a model dir.

The chat endpoint here is a TEST DOUBLE of an OpenAI-compatible server with tool calling, not a
model: a real HTTP server on loopback answering /v1/models and /v1/chat/completions by rules.
Model id `agent` calls `lookup` with the key in the question (OpenAI's `tool_calls`), then answers
the code from the tool message; model id `base` guesses `0000` without calling. The tool is the
example's real lookup server, started by the eval from examples/agent/config.yaml.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "examples" / "agent"
RFT = [sys.executable, "-c", "from rftkit.cli.main import main; main()"]


class ChatDouble(BaseHTTPRequestHandler):
    """The test double's request handler (rules above); every chat request body lands in `requests`."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": m, "object": "model"} for m in ("agent", "base")]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).requests.append(body)
        last = body["messages"][-1]
        message: dict[str, Any] = {"role": "assistant", "content": "0000"}
        finish = "stop"
        if body["model"] == "agent" and last["role"] == "tool":
            message["content"] = json.loads(last["content"])["code"]
        elif body["model"] == "agent" and body.get("tools"):
            key = re.search(r"key (\w+)", last["content"]).group(1)  # type: ignore[union-attr]
            call = {"name": "lookup", "arguments": json.dumps({"key": key})}
            calls = [{"id": f"call_{key}", "type": "function", "function": call}]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            finish = "tool_calls"
        self._send({
            "id": "chatcmpl-double", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        })  # fmt: skip


@pytest.fixture
def chat_url() -> Iterator[str]:
    ChatDouble.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ChatDouble)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _eval(out: Path, *args: str, timeout: int = 240) -> dict[str, Any]:
    command = [*RFT, "eval", "--data", str(EXAMPLE / "valid.jsonl"), "--grader", str(EXAMPLE / "grader.json"),
               "--agent-config", str(EXAMPLE / "config.yaml"), "-o", str(out), "--max-items", "8",
               *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def _results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_chat_tool_calling_episodes_through_the_example_tool_server(chat_url: str, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    summary = _eval(out, "--model", f"agent={chat_url}#agent", "--model", f"base={chat_url}#base", "-n", "2")
    models = summary["models"]
    assert models["agent"]["mean_reward"] == 1.0 and models["base"]["mean_reward"] == 0.0
    agent = summary["model_sources"]["agent"]["agent"]
    assert agent["tools"] == ["lookup"] and agent["tool_calls_per_rollout"] == 1.0
    assert agent["tool_errors"] == {} and agent["episodes_dropped"] == 0
    assert summary["model_sources"]["base"]["agent"]["tool_calls_per_rollout"] == 0.0
    rows = [r for r in _results(out) if r["model"] == "agent"]
    assert len(rows) == 16 and all(r["sub_rewards"] == {"answer": 1.0, "called": 1.0} for r in rows)
    # What the endpoint saw: OpenAI's tools (no serving details), then the tool's result as a tool message.
    first = next(r for r in ChatDouble.requests if r["model"] == "agent" and len(r["messages"]) == 1)
    assert first["tools"][0]["function"]["name"] == "lookup" and "server_url" not in json.dumps(
        first["tools"]
    )
    second = next(r for r in ChatDouble.requests if r["model"] == "agent" and len(r["messages"]) == 3)
    call, result = second["messages"][1:]
    assert call["tool_calls"][0]["function"]["name"] == "lookup"
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert set(json.loads(result["content"])) == {"code"}


def test_a_model_dir_runs_the_trainers_episodes(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A local model runs the EpisodeRunner on a rollout engine; a random tiny model rarely calls a tool,
    so this checks the path end to end (graded episodes, tool metrics in the summary), not skill."""
    out = tmp_path / "eval"
    summary = _eval(out, "--model", f"tiny={tiny_model_dir}", "--engine", "transformers", "--max-tokens", "8")
    source = summary["model_sources"]["tiny"]
    assert source["kind"] == "local" and source["agent"]["max_episode_steps"] == 3
    assert "tool_calls_per_rollout" in source["agent"]
    rows = _results(out)
    assert len(rows) == 8 and all(r["valid"] for r in rows)
    assert summary["models"]["tiny"]["mean_reward"] == 0.0  # no tool, no code
