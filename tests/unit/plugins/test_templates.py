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
