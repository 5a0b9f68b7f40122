"""Tools an agent may call: specs in OpenAI's function format, served over HTTP or by sandboxed Python.

A tool spec (in a dataset line's `tools` or the config's `agent.tools`) is OpenAI's function
tool, flat or nested, plus where it is served:

    {"type": "function", "name": "lookup", "description": "...",
     "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
     "server_url": "http://127.0.0.1:8001/lookup", "headers": {"Authorization": "Bearer ..."}}
    {"type": "function", "function": {"name": "lookup", ...}, "python": "def lookup(key): ..."}

HTTP tools follow OpenAI's contract: rftkit POSTs `{"name", "arguments", "call_id", "trace_id"}`
(the trace id also as `X-Trace-Id`); the reply body (at most 1 MB, JSON or text) is the tool's
result; `timeout_s` (default 10 minutes); a 4xx answer is shown to the model as the tool's
result; a 5xx (or no connection) is retried 3 times with backoff and then the episode is dropped
(not scored 0), as it is after a timeout; `rate_limit` is requests per minute for this tool.

Python tools are source defining a top-level function named like the tool; it gets the call's
arguments as keyword arguments and returns anything JSON can carry (a string is shown as it is).
The source passes the same upload checks as a python grader and runs in the same sandbox pools
with the same limits (never in this process). An exception or a broken limit is shown to the
model as the tool's result; a time limit or no sandbox drops the episode.

Arguments that are not a JSON object matching `parameters`, or a tool name nobody serves, are
the model's mistake: the model is told so in the tool message, and the episode goes on.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...plugins.endpoint_client import MAX_RESPONSE_BYTES, EndpointClient, RateLimiter, new_trace_id
from ...sandbox.api import WorkerOutcome

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TOOL_TIMEOUT_S = 600.0
RESULT_MAX_CHARS = MAX_RESPONSE_BYTES  # what a tool message may hold (the model sees at most this)
# How a call ended; `ok` and the shown kinds go back to the model, the dropping kinds end the episode.
ResultKind = Literal[
    "ok", "client_error", "too_large", "invalid_call", "unknown_tool", "runtime_error", "resource",
    "server_error", "timeout", "connection", "unavailable",
]  # fmt: skip
DROPPING_KINDS = frozenset({"server_error", "timeout", "connection", "unavailable"})


class ToolSpecError(ValueError):
    """A tool spec that cannot be used; the message says what to fix."""


class FunctionDef(BaseModel):
    """OpenAI's function definition: a name, what it does, and a JSON schema of its arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, _ or -")
        if name == "grade":
            raise ValueError("a tool cannot be called 'grade' (the sandbox worker's entry point)")
        return name

    @field_validator("parameters")
    @classmethod
    def _schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"parameters is not a valid JSON schema: {exc.message}") from None
        if schema.get("type", "object") != "object":
            raise ValueError("parameters must describe an object (type: object)")
        return schema


class ToolSpec(BaseModel):
    """One tool: OpenAI's function tool (flat or nested under `function`) and where it is served."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function"] = "function"
    function: FunctionDef
    server_url: str | None = None  # an HTTP endpoint the user runs
    headers: dict[str, str] | None = None  # sent with every request to server_url
    python: str | None = None  # or: source defining `def <name>(**arguments)`, run in the sandbox
    timeout_s: float = Field(DEFAULT_TOOL_TIMEOUT_S, gt=0)  # per request (HTTP) or call (Python)
    rate_limit: float | None = Field(None, gt=0)  # requests per minute for this tool; none: no limit
    max_retries: int = Field(3, ge=0, le=10)  # retries of a 5xx / lost connection before the drop
    retry_backoff_s: float = Field(1.0, ge=0)  # first pause between retries (doubles each time)

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "function" not in data and "name" in data:
            data = dict(data)
            function = {k: data.pop(k) for k in ("name", "description", "parameters", "strict") if k in data}
            data["function"] = function
        return data

    @field_validator("server_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"server_url must start with http:// or https://, got {url!r}")
        return url

    @model_validator(mode="after")
    def _one_server(self) -> ToolSpec:
        if (self.server_url is None) == (self.python is None):
            raise ValueError(f"tool {self.name!r}: set exactly one of server_url (HTTP) or python (source)")
        if self.python is not None:
            problem = python_tool_problem(self.python, self.name)
            if problem:
                raise ValueError(f"tool {self.name!r}: {problem}")
        return self

    @property
    def name(self) -> str:
        return self.function.name

    def openai_tool(self) -> dict[str, Any]:
        """The tool as a chat template and OpenAI's API see it (no serving details)."""
        return {"type": "function", "function": self.function.model_dump(exclude_none=True)}


def parse_tools(data: Any) -> list[ToolSpec]:
    """A list of tool specs, validated (ToolSpecError says which one is wrong and how)."""
    if not isinstance(data, list):
        raise ToolSpecError(f"tools must be a list of tool specs, got {type(data).__name__}")
    tools: list[ToolSpec] = []
    for index, entry in enumerate(data):
        try:
            tools.append(entry if isinstance(entry, ToolSpec) else ToolSpec.model_validate(entry))
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise ToolSpecError(f"tools[{index}]: {reasons}") from None
    names = [tool.name for tool in tools]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ToolSpecError(f"tool names must be unique; repeated: {duplicated}")
    return tools


SHIM = """

def grade(sample, item):  # added by rftkit: the sandbox worker's entry point calls the tool
    return {name}(**item["arguments"])
"""


def python_tool_source(source: str, name: str) -> str:
    """What the sandbox runs for a Python tool: the user's source and the entry point the worker calls."""
    return source.rstrip() + "\n" + SHIM.format(name=name)


def python_tool_problem(source: str, name: str) -> str | None:
    """Why a Python tool's source cannot be used (the python grader's upload checks), or None."""
    from ...sandbox.policy import check_source

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        return f"the source does not parse: {exc}"
    if not any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
        return f"the source defines no top-level function `{name}` (a tool's function has its name)"
    report = check_source(python_tool_source(source, name))
    return "; ".join(report.errors) if not report.ok else None


@dataclass
class ToolCall:
    """One call the model made: OpenAI's `{id, type: function, function: {name, arguments}}`."""

    id: str
    name: str
    arguments: str  # as the model wrote them (a JSON object, as a string)

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass
class ToolResult:
    """What one call gave: the text the model sees, how it ended, and whether it ends the episode."""

    call_id: str
    name: str
    content: str
    kind: ResultKind = "ok"
    latency_s: float = 0.0
    trace_id: str = ""
    details: str = ""

    @property
    def drops_episode(self) -> bool:
        return self.kind in DROPPING_KINDS


def _content(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text[:RESULT_MAX_CHARS]


@dataclass
class _Prepared:
    call: ToolCall
    trace_id: str
    arguments: dict[str, Any] | None = None
    early: ToolResult | None = None  # already answered (the model's mistake)


class Toolbox:
    """Runs tool calls for episodes: each tool on its server or sandbox, many calls at once."""

    def __init__(
        self,
        tools: Sequence[ToolSpec],
        *,
        sandbox: str = "auto",
        tenant: str = "local",
        sandbox_limits: Mapping[str, Any] | None = None,
        max_concurrency: int = 32,
    ) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.sandbox = sandbox
        self.tenant = tenant
        self.sandbox_limits = dict(sandbox_limits or {})
        self.max_concurrency = max_concurrency
        self._clients: dict[str, EndpointClient] = {}
        self._pools: dict[str, Any] = {}
        self._limiters: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="tools")

    def specs(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The tools (all, or those named) in OpenAI's format, for the chat template."""
        chosen = self.tools.values() if names is None else [self.tools[n] for n in names if n in self.tools]
        return [tool.openai_tool() for tool in chosen]

    # -- running calls ---------------------------------------------------------------------
    def call_many(
        self, calls: Sequence[ToolCall], trace_ids: Sequence[str] | None = None
    ) -> list[ToolResult]:
        """One result per call, in order; HTTP calls run concurrently, Python calls batched per tool."""
        prepared = [
            self._prepare(call, trace_ids[i] if trace_ids else new_trace_id()) for i, call in enumerate(calls)
        ]
        results: list[ToolResult | None] = [p.early for p in prepared]
        futures = {}
        python_groups: dict[str, list[int]] = {}
        for index, item in enumerate(prepared):
            if item.early is not None:
                continue
            tool = self.tools[item.call.name]
            if tool.server_url is not None:
                futures[index] = self._executor.submit(self._call_http, tool, item)
            else:
                python_groups.setdefault(tool.name, []).append(index)
        for name, indices in python_groups.items():
            batch = self._call_python(self.tools[name], [prepared[i] for i in indices])
            for index, result in zip(indices, batch, strict=True):
                results[index] = result
        for index, future in futures.items():
            results[index] = future.result()
        return [r for r in results if r is not None]

    def _prepare(self, call: ToolCall, trace_id: str) -> _Prepared:
        def early(kind: ResultKind, message: str) -> _Prepared:
            result = ToolResult(
                call.id, call.name, f"error: {message}", kind, trace_id=trace_id, details=message
            )
            return _Prepared(call, trace_id, early=result)

        if call.name not in self.tools:
            return early("unknown_tool", f"no tool named {call.name!r}; tools: {sorted(self.tools)}")
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            return early("invalid_call", f"the arguments are not JSON ({exc.msg})")
        if not isinstance(arguments, dict):
            return early("invalid_call", "the arguments must be a JSON object")
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(self.tools[call.name].function.parameters)
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if problems:
            return early("invalid_call", f"invalid arguments for {call.name}: {problems[0].message}")
        return _Prepared(call, trace_id, arguments)

    def _client(self, tool: ToolSpec) -> EndpointClient:
        with self._lock:
            client = self._clients.get(tool.name)
            if client is None:
                client = self._clients[tool.name] = EndpointClient(
                    url=tool.server_url or "",
                    headers=tool.headers,
                    timeout_s=tool.timeout_s,
                    max_retries=tool.max_retries,
                    backoff_s=tool.retry_backoff_s,
                    rate_limit=tool.rate_limit,
                )
            return client

    def _call_http(self, tool: ToolSpec, item: _Prepared) -> ToolResult:
        call = item.call
        body = {"name": call.name, "arguments": item.arguments, "call_id": call.id, "trace_id": item.trace_id}
        outcome = self._client(tool).post(body, trace_id=item.trace_id)

        def result(kind: ResultKind, content: str) -> ToolResult:
            return ToolResult(
                call.id, call.name, content, kind, outcome.latency_s, item.trace_id, outcome.details
            )

        if outcome.kind == "ok":
            return result("ok", _content(outcome.data))
        if outcome.kind == "invalid_json":  # a tool may answer plain text
            return result("ok", outcome.text if len(outcome.text) < 4000 else _content(outcome.text))
        if outcome.kind == "client_error":
            return result("client_error", f"error: HTTP {outcome.status}: {outcome.text}"[:RESULT_MAX_CHARS])
        if outcome.kind == "too_large":
            return result("too_large", f"error: 413: the tool's response is over {MAX_RESPONSE_BYTES} bytes")
        return result(outcome.kind, f"error: {outcome.details}")

    def _pool(self, tool: ToolSpec) -> Any:
        with self._lock:
            pool = self._pools.get(tool.name)
            if pool is None:
                from ...sandbox.pools import get_pool

                source = python_tool_source(tool.python or "", tool.name)
                limits = {"sample_timeout_s": min(tool.timeout_s, 600.0), **self.sandbox_limits}
                pool = self._pools[tool.name] = get_pool(
                    tenant=self.tenant,
                    grader_id=f"tool:{tool.name}",
                    version=hashlib.sha256(source.encode()).hexdigest()[:16],
                    source=source,
                    backend=self.sandbox,
                    limits=limits,
                )
            return pool

    def _limiter(self, tool: ToolSpec) -> RateLimiter:
        with self._lock:
            return self._limiters.setdefault(tool.name, RateLimiter(tool.rate_limit))

    def _call_python(self, tool: ToolSpec, items: list[_Prepared]) -> list[ToolResult]:
        start = time.monotonic()
        limiter = self._limiter(tool)
        for _ in items:
            limiter.acquire()
        pairs = [("", {"arguments": item.arguments, "trace_id": item.trace_id}) for item in items]
        try:
            outcomes = self._pool(tool).grade(pairs)
        except Exception as exc:  # SandboxUnavailable, a pool that died: no answer for any call
            details = f"the sandbox could not run tool {tool.name} ({type(exc).__name__}): {exc}"
            outcomes = [WorkerOutcome(error="unavailable", details=details) for _ in items]
        latency = (time.monotonic() - start) / max(1, len(items))
        results = []
        for item, outcome in zip(items, outcomes, strict=True):
            kind: ResultKind
            if outcome.error is None:
                kind, content = "ok", _content(outcome.value)
            elif outcome.error in ("timeout", "unavailable"):
                kind, content = outcome.error, f"error: {outcome.details}"
            elif outcome.error == "resource":
                kind, content = "resource", f"error: the tool broke a sandbox limit: {outcome.details}"
            else:  # runtime, crash: the tool's own failure, shown like an exception
                kind, content = "runtime_error", f"error: the tool raised: {(outcome.details or '')[-2000:]}"
            results.append(
                ToolResult(item.call.id, item.call.name, content, kind, latency, item.trace_id,
                           outcome.details or "")
            )  # fmt: skip
        return results

    def close(self) -> None:
        """Close HTTP clients and release sandbox pools."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for client in self._clients.values():
                client.close()
            for pool in self._pools.values():
                pool.close()
            self._clients.clear()
            self._pools.clear()

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ToolStats:
    """Tool metrics over a batch of episodes (the events' tool_* keys)."""

    calls: int = 0
    latency_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, result: ToolResult) -> None:
        self.calls += 1
        self.latency_s.append(result.latency_s)
        if result.kind != "ok":
            self.errors[result.kind] = self.errors.get(result.kind, 0) + 1
