"""Multi-turn episodes end to end: a scripted policy, a real HTTP tool server on loopback, a real grader.

The scripted engine answers like a trained agent would: first a `<tool_call>` for the key in the
prompt, then (once a tool message is in its context) the value it read. Keys the server does
not know get a 404 the model sees; a key whose server call fails for good drops the episode.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rftkit.plugins.registry import build_grader
from rftkit.trainer.agent.episode import AgentConfig, EpisodeRunner, start_agent_collect, tool_metrics
from rftkit.trainer.chat import chat_prompt_ids
from rftkit.trainer.data.schema import DatasetLine
from rftkit.trainer.rollout.engine import Completion, SamplingSettings
from rftkit.trainer.tiny_model import train_tokenizer

TABLE = {"k1": "red", "k2": "blue"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        key = json.loads(self.rfile.read(int(self.headers["content-length"])))["arguments"]["key"]
        status, body = (200, {"value": TABLE[key]}) if key in TABLE else (404, {"error": "unknown key"})
        if key == "down":
            status, body = 503, {"error": "down"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/lookup"
    httpd.shutdown()
    httpd.server_close()


class ScriptedEngine:
    """Calls the tool for the prompt's key, then answers with what the tool said."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.calls = 0

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        self.calls += 1
        out = []
        for ids in prompts:
            text = self.tokenizer.decode(ids)
            seen = re.findall(r'"value": "(\w+)"', text)
            if seen:
                reply = seen[-1]
            elif "unknown key" in text:
                reply = "no idea"
            else:
                key = re.findall(r"key (\w+)", text)[-1]
                call = json.dumps({"name": "lookup", "arguments": {"key": key}})
                reply = f"<tool_call>{call}</tool_call>"
            token_ids = self.tokenizer(reply, add_special_tokens=False)["input_ids"] + [
                self.tokenizer.eos_token_id
            ]
            out.append(
                [Completion(token_ids, reply, [-0.5] * len(token_ids), "stop") for _ in range(settings.n)]
            )
        return out


def test_episodes_call_tools_mask_tool_tokens_and_drop_failures(url: str) -> None:
    tokenizer = train_tokenizer(
        ["key k1 k2 down zz lookup value red blue tool_call name arguments"] * 20, 300
    )
    params = {"type": "object", "properties": {"key": {"type": "string"}}}
    tool = {"name": "lookup", "server_url": url, "retry_backoff_s": 0.01, "parameters": params}
    config = AgentConfig(tools=[tool])
    lines = [DatasetLine(messages=[{"role": "user", "content": f"What is key {k}?"}], answer=a)
             for k, a in [("k1", "red"), ("k2", "blue"), ("zz", "x"), ("down", "x")]]  # fmt: skip
    ids = [chat_prompt_ids(tokenizer, line.chat()) for line in lines]
    runner = EpisodeRunner(config, tokenizer, lines)
    grader = build_grader({"type": "string_check", "name": "s", "input": "{{sample.output_text}}",
                           "reference": "{{item.answer}}", "operation": "eq"})  # fmt: skip

    class Grading:
        def grade(self, samples: list, items: list) -> list:
            assert all(s.output_tools for s in samples)  # the grader sees every call
            assert all(s.choices[0]["messages"][-1]["role"] == "assistant" for s in samples)
            return grader.grade_batch(list(zip(samples, items, strict=True)))

    engine = ScriptedEngine(tokenizer)
    try:
        pending = start_agent_collect(
            runner, engine, Grading(), lines, ids, SamplingSettings(n=2, logprobs=True)
        )
        rolled = pending.result()
    finally:
        runner.close()
    assert engine.calls == 2  # one generate per turn for the whole batch
    rewards = [[r.reward for r in group] for group in rolled.results]
    assert rewards == [[1, 1], [1, 1], [0, 0], [0, 0]]
    valid = rolled.valid()
    assert valid == [[True, True], [True, True], [True, True], [False, False]]  # dropped: not a 0
    assert "episode dropped" in (rolled.results[3][0].metadata.errors.details or "")
    first = rolled.groups[0][0]
    assert first.tool_calls[0]["function"] == {"name": "lookup", "arguments": '{"key": "k1"}'}
    assert len(first.loss_mask) == len(first.token_ids) == len(first.logprobs)
    tool_part = [t for t, m in zip(first.token_ids, first.loss_mask, strict=True) if m == 0]
    assert "red" in tokenizer.decode(tool_part) and tokenizer.decode(
        [t for t, m in zip(first.token_ids, first.loss_mask, strict=True) if m == 1]
    ).endswith("red<|end|>")
    assert first.messages[2]["role"] == "tool" and first.turns == 2
    unknown = rolled.groups[2][0]
    assert unknown.tool_results[0].kind == "client_error" and unknown.text == "no idea"
    metrics = tool_metrics(rolled.groups)
    assert metrics["tool_calls_per_rollout"] == 1.0 and metrics["episodes_dropped"] == 2
    assert metrics["tool_errors"] == {"client_error": 2, "server_error": 2}
    assert tool_metrics(rolled.groups, "valid")["valid_tool_call_success_share"] == 0.5
