"""Template rendering: every reference form of OpenAI's graders guide, and the two error kinds."""

from __future__ import annotations

import pytest
from rftkit.plugins.base import InvalidVariableError, Sample, SampleParseError
from rftkit.plugins.templates import TemplateSyntaxError, check_template, render, resolve

ITEM = {"a": {"b": "deep"}, "list": ["first", "second"], "gene": "BRCA1", "n": 3, "odd key": {"x": 1}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
CHOICES = [{"index": 0, "message": {"role": "assistant", "content": "hello there"}}]


def sample(text: str = '{"x": 42, "genes": ["TP53", "BRCA1"]}') -> Sample:
    return Sample(output_text=text, output_tools=TOOLS, choices=CHOICES)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{item.a.b}}", "deep"),
        ("{{ item.a.b }}", "deep"),
        ("{{item.list[0]}}", "first"),
        ("{{item.list[-1]}}", "second"),
        ("{{item['odd key'].x}}", "1"),
        ("{{sample.output_text}}", '{"x": 42, "genes": ["TP53", "BRCA1"]}'),
        ("{{sample.output_json.x}}", "42"),
        ("{{sample.output_tools[0].function.name}}", "get_weather"),
        ("{{sample.output_tools[0].function.arguments}}", '{"city": "Paris"}'),
        ("{{sample.choices[0].message.content}}", "hello there"),
        (
            "gene {{item.gene}} ranked in {{sample.output_json.genes}}",
            'gene BRCA1 ranked in ["TP53", "BRCA1"]',
        ),
        ("no references at all", "no references at all"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, sample(), ITEM) == expected


def test_whole_reference_resolves_to_the_raw_value() -> None:
    assert resolve("{{sample.output_json.genes}}", sample(), ITEM) == ["TP53", "BRCA1"]
    assert resolve(" {{item.n}} ", sample(), ITEM) == 3
    assert resolve("n={{item.n}}", sample(), ITEM) == "n=3"


def test_output_json_given_explicitly_wins_over_the_text() -> None:
    given = Sample(output_text="not json", output_json={"x": "from json"})
    assert render("{{sample.output_json.x}}", given, {}) == "from json"


@pytest.mark.parametrize(
    "template",
    [
        "{{item.missing}}",
        "{{item.a.c}}",
        "{{item.list[2]}}",
        "{{item.gene.x}}",
        "{{sample.output_json.y}}",
        "{{sample.output_tools[1].function.name}}",
        "{{sample.nothing}}",
    ],
)
def test_missing_variable(template: str) -> None:
    with pytest.raises(InvalidVariableError) as info:
        render(template, sample(), ITEM)
    assert "does not exist" in info.value.args[0] or "no field" in info.value.args[0]


def test_output_json_on_text_that_is_not_json() -> None:
    with pytest.raises(SampleParseError):
        render("{{sample.output_json.x}}", sample("plain words"), ITEM)
    # output_text of the same sample still renders
    assert render("{{sample.output_text}}", sample("plain words"), ITEM) == "plain words"


@pytest.mark.parametrize(
    "template", ["{{foo.bar}}", "{{item..a}}", "{{item.a[}}", "{{1item}}", "{{item.a b}}"]
)
def test_malformed_references_fail_validation(template: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        check_template(template)


SYMBOLS_TOOL = [
    {
        "id": "c",
        "type": "function",
        "function": {"name": "extract_symbols", "arguments": '{"symbols": ["Evals"], "n": {"k": 2}}'},
    }
]


def test_paths_read_into_json_string_fields_as_openai_does() -> None:
    tools = Sample(output_text="", output_tools=SYMBOLS_TOOL)
    assert resolve("{{sample.output_tools[0].function.arguments.symbols}}", tools, {}) == ["Evals"]
    assert render("{{sample.output_tools[0].function.arguments.symbols[0]}}", tools, {}) == "Evals"
    assert render("{{sample.output_tools[0].function.arguments.n.k}}", tools, {}) == "2"
    # the string itself still renders as it is
    assert render("{{sample.output_tools[0].function.arguments}}", tools, {}).startswith('{"symbols"')
    assert resolve("{{item.raw.a}}", tools, {"raw": '{"a": [1]}'}) == [1]


@pytest.mark.parametrize(
    "template",
    ["{{sample.output_tools[0].function.name.x}}", "{{sample.output_tools[0].function.arguments.nope}}"],
)
def test_json_string_paths_that_do_not_exist(template: str) -> None:
    with pytest.raises(InvalidVariableError) as info:
        render(template, Sample(output_text="", output_tools=SYMBOLS_TOOL), {})
    assert "does not exist" in info.value.args[0]
    if "name.x" in template:  # plain text is not JSON: the message says so
        assert "not a JSON object or array" in info.value.args[0]


def test_text_samples_get_the_chat_choice_openai_describes() -> None:
    text = Sample(output_text="hello there")
    assert render("{{sample.choices[0].message.content}}", text, {}) == "hello there"
    assert resolve("{{sample.choices[0]}}", text, {}) == {
        "index": 0,
        "message": {"role": "assistant", "content": "hello there"},
        "finish_reason": "stop",
    }
    calls = resolve("{{sample.choices[0]}}", Sample(output_text="", output_tools=TOOLS), {})
    assert calls["message"] == {"role": "assistant", "content": None, "tool_calls": TOOLS}
    assert calls["finish_reason"] == "tool_calls"
    given = [{"index": 0, "message": {"role": "assistant", "content": "given"}}]
    assert (
        render("{{sample.choices[0].message.content}}", Sample(output_text="x", choices=given), {}) == "given"
    )
    assert resolve("{{sample}}", text, {})["choices"][0]["message"]["content"] == "hello there"
    with pytest.raises(InvalidVariableError):  # a sample with no output at all has no choice
        render("{{sample.choices[0].message.content}}", Sample(), {})
