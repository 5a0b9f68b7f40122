"""One line of an RFT dataset, as in OpenAI's RFT: chat `messages`, reference fields, optional schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


class ChatMessage(BaseModel):
    """One chat turn of the prompt."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str


class DatasetLine(BaseModel):
    """`messages` plus any reference fields a grader reads as `{{item.x}}`.

    `response_format` (OpenAI's `{"type": "json_schema", "json_schema": {...}}` or a bare JSON
    schema) asks for JSON output: the sample's text is parsed into `output_json`.
    """

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    response_format: dict[str, Any] | None = None
    _line_number: int = PrivateAttr(default=0)  # where the line is in its file (1-based)

    @property
    def line_number(self) -> int:
        return self._line_number

    @field_validator("messages")
    @classmethod
    def _ends_with_a_prompt(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role == "assistant":
            raise ValueError("the last message must be the prompt (user/system/developer), not 'assistant'")
        return messages

    def item(self) -> dict[str, Any]:
        """The dict graders see as `item`: every field of the line, messages included."""
        return self.model_dump(mode="json", exclude_none=True)

    def chat(self) -> list[dict[str, str]]:
        """The prompt as plain dicts for a chat template (developer is sent as system)."""
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.content}
            for m in self.messages
        ]
