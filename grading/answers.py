"""What a grader sees of a model's reply: the final answer, the reasoning apart, JSON where asked.

Training and evals both build their samples here, so a grader scores the same text for the
same reply wherever it runs: every `<think>...</think>` block is reasoning, not answer; an
unclosed `<think>` leaves no answer (the model ran out of tokens while thinking).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..core.records import Sample

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
OPEN_THINK = "<think>"


def split_reasoning(text: str, reasoning: bool = True) -> tuple[str | None, str]:
    """(reasoning, final answer) of a reply; reasoning is None when the reply shows none.

    `reasoning=False` treats the whole reply as the answer (a model whose `<think>` is literal text).
    """
    if not reasoning:
        return None, text.strip()
    thoughts = [match.strip() for match in _THINK.findall(text)]
    answer = _THINK.sub("", text)
    if OPEN_THINK in answer:  # thinking that never closed: what follows it is not an answer
        cut = answer.index(OPEN_THINK)
        thoughts.append(answer[cut + len(OPEN_THINK) :].strip())
        answer = answer[:cut]
    return ("\n\n".join(thoughts) if thoughts else None), answer.strip()


def final_answer(text: str, reasoning: bool = True) -> str:
    """The answer part of a reply (reasoning removed, surrounding space stripped)."""
    return split_reasoning(text, reasoning)[1]


def parse_json_answer(text: str) -> Any:
    """`text` as JSON, or None when it is not JSON (or nested past what the parser can take)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError):
        return None


def to_sample(
    text: str,
    *,
    reasoning: bool = True,
    response_format: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
) -> Sample:
    """The grader's sample for one reply: output_text is the final answer, output_json its JSON
    when a response_format asked for JSON, output_tools the tool calls it made, and — when the
    caller knows how the reply ended or it called tools — `choices[0]` as OpenAI's samples carry it.

    Text that is not JSON under a response_format leaves output_json empty, so graders that read
    `{{sample.output_json...}}` report a sample_parse_error for that sample.
    """
    answer = final_answer(text, reasoning)
    choices: list[dict[str, Any]] = []
    if finish_reason is not None or tool_calls:
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        if tool_calls:
            message["tool_calls"] = list(tool_calls)
        choices = [{"index": 0, "message": message, "finish_reason": finish_reason}]
    return Sample(
        output_text=answer,
        output_json=parse_json_answer(answer) if response_format is not None else None,
        output_tools=list(tool_calls or []),
        choices=choices,
    )
