"""response_format reaches the rollout engine as a JSON schema, one generate call per distinct schema."""

from __future__ import annotations

from rftkit.trainer.data.schema import DatasetLine
from rftkit.trainer.rollout.collect import collect
from rftkit.trainer.rollout.engine import Completion, SamplingSettings, json_schema_of

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


class Recording:
    """Replies `{"answer": "<first prompt id>"}` and records the schema of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], dict | None]] = []

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        self.calls.append(([p[0] for p in prompts], settings.json_schema))
        return [[Completion([p[0]], f'{{"answer": "{p[0]}"}}') for _ in range(settings.n)] for p in prompts]


class Echo:
    batch_size = 256

    def grade(self, samples: list, items: list) -> list:
        from rftkit.plugins.base import GraderResult, ResultMetadata

        meta = ResultMetadata(name="g", type="x")
        return [GraderResult(reward=1.0 if s.output_json else 0.0, metadata=meta) for s in samples]


def test_openai_response_formats_give_their_schema() -> None:
    wrapped = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}}
    assert json_schema_of(wrapped) == SCHEMA
    assert json_schema_of({"type": "json_object"}) == {"type": "object"}
    assert json_schema_of(SCHEMA) == SCHEMA
    assert json_schema_of({"type": "text"}) is None and json_schema_of(None) is None


def test_each_line_decodes_under_its_schema_or_the_configs() -> None:
    other = {"type": "object", "properties": {"x": {"type": "integer"}}}
    lines = [
        DatasetLine(messages=[{"role": "user", "content": "a"}], response_format=other),
        DatasetLine(messages=[{"role": "user", "content": "b"}]),
        DatasetLine(messages=[{"role": "user", "content": "c"}], response_format=other),
    ]
    engine = Recording()
    default = {"type": "json_schema", "json_schema": {"name": "d", "schema": SCHEMA}}
    rolled = collect(engine, Echo(), lines, [[1], [2], [3]], SamplingSettings(n=2), chunks=1,
                     response_format=default)  # fmt: skip
    assert sorted(engine.calls, key=lambda c: c[0]) == [([1, 3], other), ([2], SCHEMA)]
    assert [[c.text for c in g] for g in rolled.groups] == [['{"answer": "1"}'] * 2, ['{"answer": "2"}'] * 2,
                                                           ['{"answer": "3"}'] * 2]  # fmt: skip
    assert rolled.rewards() == [[1.0, 1.0]] * 3  # parsed into output_json for the grader


def test_no_schema_means_one_plain_call() -> None:
    engine = Recording()
    lines = [DatasetLine(messages=[{"role": "user", "content": "a"}])] * 2
    collect(engine, Echo(), lines, [[1], [2]], SamplingSettings(n=1), chunks=1)
    assert engine.calls == [([1, 2], None)]
