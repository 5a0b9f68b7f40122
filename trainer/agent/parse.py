"""Tool calls in a model's reply: the Hermes JSON format by default, or any vLLM tool-call parser.

The default (`parser: json`) is the format Hermes, Qwen and many chat templates use, and the one
the tiny example model is warmed up on:

    <tool_call>{"name": "lookup", "arguments": {"key": "alpha"}}</tool_call>

Several blocks make several calls; text outside the blocks is the reply's content. A block
whose JSON does not parse is kept as a call named `<unparsed>` (the model is told, and the
call counts as invalid). Any other name is one of vLLM's tool-call parsers (`hermes`,
`llama3_json`, `mistral`, ... as `vllm serve --tool-call-parser` takes them), built for the
model's tokenizer.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from .tools import ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
Parser = Callable[[str], tuple[str, list[ToolCall]]]


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_json_calls(text: str) -> tuple[str, list[ToolCall]]:
    """(content, calls) of a reply in the `<tool_call>{json}</tool_call>` format."""
    calls: list[ToolCall] = []
    for block in _BLOCK.findall(text):
        try:
            data = json.loads(block.strip())
        except (json.JSONDecodeError, RecursionError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            calls.append(ToolCall(_call_id(), "<unparsed>", block.strip()))
            continue
        arguments = data.get("arguments", data.get("parameters", {}))
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(_call_id(), data["name"], raw))
    content = _BLOCK.sub("", text).strip()
    return content, calls


def vllm_parser(name: str, tokenizer: Any, tools: list[dict[str, Any]]) -> Parser:
    """A parser backed by vLLM's tool-call parser `name` (ValueError when vLLM has none of that name)."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tool_parsers import ToolParserManager

    try:
        parser = ToolParserManager.get_tool_parser(name)(tokenizer)
    except KeyError as exc:
        raise ValueError(f"vLLM has no tool-call parser {name!r}") from exc
    request = ChatCompletionRequest(model="policy", messages=[{"role": "user", "content": ""}], tools=tools)

    def parse(text: str) -> tuple[str, list[ToolCall]]:
        found = parser.extract_tool_calls(text, request)
        if not found.tools_called:
            return text.strip(), []
        calls = [
            ToolCall(c.id or _call_id(), c.function.name, c.function.arguments or "{}")
            for c in found.tool_calls
        ]
        return (found.content or "").strip(), calls

    return parse


def make_parser(name: str, tokenizer: Any = None, tools: list[dict[str, Any]] | None = None) -> Parser:
    """The parser called `name`: `json` (the default format above) or a vLLM tool-call parser."""
    if name == "json":
        return parse_json_calls
    return vllm_parser(name, tokenizer, tools or [])
