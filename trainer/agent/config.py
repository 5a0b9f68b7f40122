"""`agent:` in a run config (pydantic only, so the run config can import it cheaply)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .tools import ToolSpec, parse_tools


class AgentConfig(BaseModel):
    """`agent:` in a run config: tools, episode limits, and how tool calls are read from replies."""

    model_config = ConfigDict(extra="forbid")

    tools: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI function tools + server_url/python
    max_episode_steps: int = Field(4, ge=1)  # model turns per episode at most
    max_episode_tokens: int = Field(1024, ge=1)  # the episode's tokens (model and tools) at most
    max_tool_message_tokens: int = Field(256, ge=1)  # a tool result is cut to this many tokens
    parser: str = "json"  # `json` (<tool_call>{...}</tool_call>) or a vLLM tool-call parser name
    sandbox: str = "auto"  # where Python tools run
    max_concurrency: int = Field(32, ge=1)  # tool calls in flight at once

    @field_validator("tools")
    @classmethod
    def _valid_tools(cls, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parse_tools(tools)  # ToolSpecError (a ValueError) says which tool is wrong and how
        return tools

    def tool_specs(self) -> list[ToolSpec]:
        return parse_tools(self.tools)
