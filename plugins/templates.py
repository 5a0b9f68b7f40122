"""OpenAI-style grader templates: `{{item.a.b}}`, `{{item.list[0]}}`, `{{sample.output_json.x}}` ...

A template is any string with `{{ namespace.path }}` references; the namespaces are `item` (the
dataset line) and `sample` (the model output: output_text, output_json, output_tools, choices
and any extra fields). Paths use `.name`, `[0]` and `["key"]` steps.

- `render(template, sample, item) -> str` substitutes every reference (non-strings as JSON).
- `resolve(template, sample, item) -> Any` returns the raw value when the whole template is one
  reference (`"{{sample.output_json.genes}}"` gives the list), else the rendered string.

As in OpenAI's graders, a path reads into a string that holds JSON: tool calls carry their
`arguments` as a JSON string, and `{{sample.output_tools[0].function.arguments.symbols}}` is the
`symbols` of the parsed arguments (as `output_json` is the parsed `output_text`). A text sample
without `choices` gets the one choice the Chat Completions API would have returned for it,
`[{"index": 0, "message": {"role": "assistant", "content": output_text, ...}, "finish_reason": ...}]`
(filled at lookup, so `{{sample.choices[0].message.content}}` works for plain text samples).

A reference the data does not have raises `InvalidVariableError`; `output_json` on text that is
not JSON raises `SampleParseError` (both from `rftkit.plugins.base`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator

from .base import InvalidVariableError, Sample

NAMESPACES = ("item", "sample")
_REFERENCE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)            # .name
      | \[\s*(?P<index>-?\d+)\s*\]            # [0]
      | \[\s*(?P<quote>["'])(?P<key>.*?)(?P=quote)\s*\]   # ["key"] or ['key']
    """,
    re.VERBOSE,
)
_HEAD = re.compile(r"[A-Za-z_]\w*")


class TemplateSyntaxError(ValueError):
    """A `{{ ... }}` reference that is not `namespace.path`; raised when a spec is validated."""


Step = str | int


@lru_cache(maxsize=4096)
def parse_reference(text: str) -> tuple[str, tuple[Step, ...]]:
    """`sample.output_tools[0].function.name` -> ("sample", ("output_tools", 0, "function", "name"))."""
    head = _HEAD.match(text)
    if head is None:
        raise TemplateSyntaxError(f"{{{{{text}}}}}: a reference starts with a namespace (item or sample)")
    namespace = head.group(0)
    if namespace not in NAMESPACES:
        raise TemplateSyntaxError(
            f"{{{{{text}}}}}: unknown namespace {namespace!r}; use one of {', '.join(NAMESPACES)}"
        )
    steps: list[Step] = []
    pos = head.end()
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            raise TemplateSyntaxError(f"{{{{{text}}}}}: cannot read the path at {text[pos:]!r}")
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("key"))
        pos = match.end()
    return namespace, tuple(steps)


def references(template: str) -> list[str]:
    """The reference texts inside a template, in order."""
    return [m.group(1) for m in _REFERENCE.finditer(template)]


def check_template(template: str) -> str:
    """Raise TemplateSyntaxError for a malformed reference; return the template (for validators)."""
    for ref in references(template):
        parse_reference(ref)
    return template


Template = Annotated[str, AfterValidator(check_template)]
"""A spec field holding a template; malformed references fail spec validation."""


def text_choices(sample: Sample) -> list[dict[str, Any]]:
    """The sample's `choices`, or for a text (or tool-call) sample the one chat choice it stands for."""
    if sample.choices or not (sample.output_text or sample.output_tools):
        return list(sample.choices)
    message: dict[str, Any] = {"role": "assistant", "content": sample.output_text}
    if sample.output_tools:
        message["tool_calls"] = list(sample.output_tools)
        if not sample.output_text:
            message["content"] = None
    finish = "tool_calls" if sample.output_tools else "stop"
    return [{"index": 0, "message": message, "finish_reason": finish}]


def _sample_root(sample: Sample, first: Step | None) -> Any:
    """The value of `sample.<first>`; output_json parsed from output_text, choices made, on demand."""
    if first is None:
        data = sample.as_grader_dict()
        return data if data.get("choices") else {**data, "choices": text_choices(sample)}
    if first == "output_json":
        return sample.parsed_json()
    if first == "choices":
        return text_choices(sample)
    data = sample.to_dict()
    if isinstance(first, str) and first in data:
        return data[first]
    raise InvalidVariableError(f"sample has no field {first!r}")


def lookup(reference: str, sample: Sample, item: Mapping[str, Any]) -> Any:
    """The raw value a reference names."""
    namespace, steps = parse_reference(reference)
    if namespace == "sample":
        value = _sample_root(sample, steps[0] if steps else None)
        rest = steps[1:]
    else:
        value, rest = item, steps
    walked = namespace + ("." + str(steps[0]) if steps and namespace == "sample" else "")
    for step in rest:
        value = _step(value, step, walked)
        walked += f"[{step}]" if isinstance(step, int) else f".{step}"
    return value


def _json_container(value: str) -> Any:
    """A string's parsed JSON object or array, or None (plain text is not stepped into)."""
    if not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _step(value: Any, step: Step, walked: str) -> Any:
    if isinstance(value, str):  # a JSON string (tool-call arguments): read into it, as OpenAI does
        parsed = _json_container(value)
        if parsed is None:
            raise InvalidVariableError(
                f"{walked}{f'[{step}]' if isinstance(step, int) else f'.{step}'} does not exist "
                f"({walked} is a string that is not a JSON object or array)"
            )
        value = parsed
    if isinstance(step, int):
        if isinstance(value, list | tuple) and -len(value) <= step < len(value):
            return value[step]
        size = f"a list of {len(value)}" if isinstance(value, list | tuple) else type(value).__name__
        raise InvalidVariableError(f"{walked}[{step}] does not exist ({walked} is {size})")
    if isinstance(value, Mapping) and step in value:
        return value[step]
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(map(str, value))[:20]) or "none"
        raise InvalidVariableError(f"{walked}.{step} does not exist (keys of {walked}: {keys})")
    raise InvalidVariableError(f"{walked}.{step} does not exist ({walked} is {type(value).__name__})")


def to_text(value: Any) -> str:
    """How a referenced value appears inside a larger string: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(template: str, sample: Sample, item: Mapping[str, Any]) -> str:
    """Substitute every `{{ reference }}` in a template."""
    if "{{" not in template:
        return template
    return _REFERENCE.sub(lambda m: to_text(lookup(m.group(1), sample, item)), template)


def resolve(template: str, sample: Sample, item: Mapping[str, Any]) -> Any:
    """The raw value for a template that is exactly one reference, else the rendered string."""
    match = _REFERENCE.fullmatch(template.strip())
    if match is not None:
        return lookup(match.group(1), sample, item)
    return render(template, sample, item)
