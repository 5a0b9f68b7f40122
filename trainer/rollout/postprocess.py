"""What the grader sees of a completion: thinking stripped, JSON parsed where a schema asked for it."""

from __future__ import annotations

import json
import re
from typing import Any

from ...plugins.base import Sample

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def final_answer(text: str, reasoning: bool) -> str:
    """The answer part of `text`: `<think>...</think>` removed; an unclosed think leaves no answer."""
    if reasoning:
        text = _THINK.sub("", text)
        if "<think>" in text:
            text = text[: text.index("<think>")]
    return text.strip()


def to_sample(text: str, *, reasoning: bool = False, response_format: dict[str, Any] | None = None) -> Sample:
    """A grader `Sample`: `output_text` is the final answer; `output_json` its JSON when a schema was given.

    Text that is not JSON under a response_format leaves `output_json` empty, so graders that
    read `{{sample.output_json...}}` report a sample_parse_error for that sample.
    """
    answer = final_answer(text, reasoning)
    output_json = None
    if response_format is not None:
        try:
            output_json = json.loads(answer)
        except json.JSONDecodeError:
            output_json = None
    return Sample(output_text=answer, output_json=output_json)
