"""`multi`: child graders by name, combined by the `calculate_output` formula.

`graders` maps names to grader specs (any type but multi; a single spec is accepted too, named
by its `name`); `calculate_output` uses those names with `+ - * / ^` and
`min max abs floor ceil exp sqrt log` (see `rftkit.plugins.formula`: an `ast` whitelist; no eval).
A formula that does not parse, or names a grader that is not there, fails spec validation. At
grade time every child grades the whole batch; `sub_rewards` holds their rewards and their
error flags are carried up. A math error (division by zero, log of 0, a non-finite value) scores 0
with formula_parse_error. A finite result outside [0, 1] is clipped; `metadata.scores`
keeps it as `calculate_output`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import SerializeAsAny, field_validator, model_validator

from ..base import (
    DeclaredMetrics,
    GradedBatch,
    Grader,
    GraderContext,
    GraderErrors,
    GraderResult,
    GraderSpec,
    ResultMetadata,
    Sample,
)
from ..formula import Formula, FormulaError, parse


class MultiSpec(GraderSpec):
    type: Literal["multi"] = "multi"
    graders: dict[str, SerializeAsAny[GraderSpec]]
    calculate_output: str
    pass_threshold: float | None = None

    @field_validator("graders", mode="before")
    @classmethod
    def _children(cls, value: Any) -> Any:
        from ..registry import parse_spec

        if isinstance(value, Mapping) and "type" in value and isinstance(value.get("type"), str):
            value = {value.get("name", "grader"): value}  # OpenAI's SDK types `graders` as one grader
        if not isinstance(value, Mapping) or not value:
            raise ValueError("graders must be a non-empty object mapping names to grader specs")
        children = {}
        for name, child in value.items():
            if isinstance(child, GraderSpec):
                child = child.model_dump()
            if isinstance(child, Mapping) and child.get("type") == "multi":
                raise ValueError(f"graders.{name}: a multi grader cannot contain another multi grader")
            try:
                children[name] = parse_spec(dict(child) if isinstance(child, Mapping) else child)
            except ValueError as exc:
                raise ValueError(f"graders.{name}: {exc}") from None
        return children

    @field_validator("calculate_output")
    @classmethod
    def _parses(cls, text: str) -> str:
        try:
            parse(text)
        except FormulaError as exc:
            raise ValueError(str(exc)) from None
        return text

    @model_validator(mode="after")
    def _names_known(self) -> MultiSpec:
        unknown = parse(self.calculate_output).names - set(self.graders)
        if unknown:
            raise ValueError(
                f"calculate_output uses {sorted(unknown)}, which are not in graders ({sorted(self.graders)})"
            )
        return self


class MultiGrader(Grader):
    """Several graders combined by a formula."""

    type_name = "multi"
    spec_model = MultiSpec
    spec: MultiSpec

    def __init__(self, spec: MultiSpec, context: GraderContext) -> None:
        super().__init__(spec, context)
        self.formula: Formula = parse(spec.calculate_output)
        build = context.build
        if build is None:
            from ..registry import build_grader as build
        self.children: dict[str, Grader] = {
            name: build(child, context) for name, child in spec.graders.items()
        }

    @classmethod
    def review(cls, spec: GraderSpec, *, strict: bool = False) -> tuple[list[str], list[str]]:
        from ..registry import grader_types

        errors: list[str] = []
        warnings: list[str] = []
        for name, child in spec.graders.items():  # type: ignore[attr-defined]
            child_errors, child_warnings = grader_types()[child.type].review(child, strict=strict)
            errors += [f"graders.{name}: {e}" for e in child_errors]
            warnings += [f"graders.{name}: {w}" for w in child_warnings]
        return errors, warnings

    def grade(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        return self.grade_batch([(sample, item)])[0]

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        start = time.perf_counter()
        by_child = {name: child.grade_columns(pairs) for name, child in self.children.items()}
        return self.columns(
            [
                self._combine({name: graded.result(i) for name, graded in by_child.items()}, start)
                for i in range(len(pairs))
            ]
        )

    @classmethod
    def declared_metrics(cls, spec: GraderSpec) -> DeclaredMetrics:
        return super().declared_metrics(spec) | DeclaredMetrics(scores=("calculate_output",))

    def _combine(self, children: dict[str, GraderResult], start: float) -> GraderResult:
        sub_rewards = {name: result.reward for name, result in children.items()}
        errors = GraderErrors.merged({name: r.metadata.errors for name, r in children.items()})
        scores: dict[str, float] = {}
        try:
            raw = self.formula.evaluate(sub_rewards)
            reward = min(1.0, max(0.0, raw))
            scores["calculate_output"] = raw
        except FormulaError as exc:
            reward = 0.0
            errors.formula_parse_error = True
            errors.details = "; ".join(filter(None, [errors.details, f"calculate_output: {exc}"]))
        passes = {}
        if self.spec.pass_threshold is not None:
            passes["pass"] = reward >= self.spec.pass_threshold
        return GraderResult(
            reward=reward,
            sub_rewards=sub_rewards,
            metadata=ResultMetadata(
                name=self.name,
                type=self.type_name,
                errors=errors,
                execution_time=time.perf_counter() - start,
                scores=scores,
                passes=passes,
            ),
        )

    def close(self) -> None:
        for child in self.children.values():
            child.close()
