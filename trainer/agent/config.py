"""`agent:` in a run config (pydantic only, so the run config can import it cheaply)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .servers import ToolServerConfig, fill_addresses, unknown_placeholders
from .tools import ToolSpec, ToolSpecError, parse_tools


class AgentConfig(BaseModel):
    """`agent:` in a run config: tools, episode limits, and how tool calls are read from replies."""

    model_config = ConfigDict(extra="forbid")

    tools: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI function tools + server_url/python
    servers: list[ToolServerConfig] = Field(default_factory=list)  # tool servers the run starts and stops
    max_episode_steps: int = Field(4, ge=1)  # model turns per episode at most
    max_episode_tokens: int = Field(1024, ge=1)  # the episode's tokens (model and tools) at most
    max_tool_message_tokens: int = Field(256, ge=1)  # a tool result is cut to this many tokens
    parser: str = "json"  # `json` (<tool_call>{...}</tool_call>) or a vLLM tool-call parser name
    sandbox: str = "auto"  # where Python tools run
    max_concurrency: int = Field(32, ge=1)  # tool calls in flight at once
    base_dir: str | None = None  # the config file's folder (set when loaded): servers' cwd, python_file

    @model_validator(mode="before")
    @classmethod
    def _read_python_files(cls, data: Any) -> Any:
        """A tool's `python_file` (relative to the config's folder) becomes its `python` source."""
        if not isinstance(data, Mapping) or not isinstance(data.get("tools"), list):
            return data
        base = Path(data.get("base_dir") or Path.cwd())
        tools = []
        for index, tool in enumerate(data["tools"]):
            if isinstance(tool, Mapping) and "python_file" in tool:
                tool = dict(tool)
                path = Path(str(tool.pop("python_file"))).expanduser()
                path = path if path.is_absolute() else base / path
                if "python" in tool:
                    raise ValueError(f"tools[{index}]: set python or python_file, not both")
                try:
                    tool["python"] = path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise ValueError(f"tools[{index}]: python_file {path} cannot be read: {exc}") from None
            tools.append(tool)
        return {**data, "tools": tools}

    @field_validator("tools")
    @classmethod
    def _valid_tools(cls, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parse_tools(tools)  # ToolSpecError (a ValueError) says which tool is wrong and how
        return tools

    @model_validator(mode="after")
    def _servers_named(self) -> AgentConfig:
        names = [server.name for server in self.servers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"servers: names must be unique; repeated: {repeated}")
        for tool in parse_tools(self.tools):
            unknown = unknown_placeholders(tool.server_url or "", names)
            if unknown:
                raise ValueError(
                    f"tool {tool.name!r}: server_url {tool.server_url!r} names {unknown}, which are not "
                    f"in agent.servers ({names or 'none'}); {{name}} stands for a started server's host:port"
                )
        return self

    def tool_specs(self, addresses: Mapping[str, str] | None = None) -> list[ToolSpec]:
        """The tools, with `{server}` in their URLs replaced by the started servers' host:port."""
        return resolve_tools(self.tools, addresses or {})


def resolve_tools(
    tools: list[dict[str, Any]] | list[ToolSpec], addresses: Mapping[str, str]
) -> list[ToolSpec]:
    """Parsed tool specs with `{server}` placeholders in server_url filled from `addresses`."""
    specs = parse_tools(tools)
    if not addresses:
        return specs
    out = []
    for spec in specs:
        if spec.server_url and "{" in spec.server_url:
            spec = spec.model_copy(update={"server_url": fill_addresses(spec.server_url, addresses)})
        out.append(spec)
    return out


__all__ = ["AgentConfig", "ToolServerConfig", "ToolSpecError", "resolve_tools"]
