"""`python`: uploaded source defining `grade(sample, item) -> float`, run only inside a sandbox.

The source never runs in this process. Spec validation runs the upload policy
(`rftkit.sandbox.policy.check_source`: size, syntax, a top-level `grade` taking exactly two
arguments, RestrictedPython's findings as warnings). Grading goes through a warm worker pool
(`rftkit.sandbox.pools.get_pool`) picked by the grader context's `sandbox` backend, one batch at
a time; `grade` receives `sample.as_grader_dict()` and the item (a plain-text sample travels as
its text, and an item shared by a prompt's samples once).

Outcomes become flags: an exception or a crashed worker -> python_grader_runtime_error (with the
traceback's last lines), a time limit -> timeout_error, a memory/process/output limit ->
resource_limit_error, no sandbox -> python_grader_server_error. A value that is not a finite
number in [0, 1] (NaN, inf, None, a string, a bool, 2.0) scores 0 with invalid_reward_error.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import field_validator

from ...core.records import JSON_WORDS, json_depth_problem, json_or_none
from ...sandbox.api import PoolStatus
from ..base import (
    GradedBatch,
    GraderContext,
    GraderResult,
    GraderSpec,
    GradingError,
    Sample,
    Score,
    ScoringGrader,
)

_PLAIN_NUMBERS = (float, int)  # exact types: bool (an int subclass) takes the checked path
# A text whose first character is none of these (or an empty one), and that does not start with
# one of JSON's words, is not JSON, so neither JSON nested too deep: it travels as it is. Any
# other text takes the checked path (json_or_none).
_MAYBE_JSON = frozenset(' \t\n\r{["-0123456789')
OUTCOME_FLAGS = {
    "runtime": "python_grader_runtime_error",
    "crash": "python_grader_runtime_error",
    "timeout": "timeout_error",
    "resource": "resource_limit_error",
    "unavailable": "python_grader_server_error",
    "sample": "sample_parse_error",  # the sample itself cannot be sent (JSON nested too deep)
}


class PythonSpec(GraderSpec):
    type: Literal["python"] = "python"
    source: str
    image_tag: str | None = None  # accepted for OpenAI compatibility; rftkit's sandbox image is its own
    pass_threshold: float | None = None

    @field_validator("source")
    @classmethod
    def _policy(cls, source: str) -> str:
        from ...sandbox.policy import check_source

        report = check_source(source)
        if not report.ok:
            raise ValueError("; ".join(report.errors))
        return source


def reward_problem(value: Any) -> str | None:
    """Why a value grade() returned is not a usable reward, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"grade() must return a float in [0, 1], got {type(value).__name__} {value!r:.80}"
    if not math.isfinite(value):
        return f"grade() returned {value!r}, not a finite number"
    if not 0.0 <= value <= 1.0:
        return f"grade() returned {value!r}, outside [0, 1]"
    return None


def interpret(outcome: Any) -> Score:
    """The Score for one WorkerOutcome; GradingError with the flag and reason otherwise."""
    if outcome.error is not None:
        flag = OUTCOME_FLAGS.get(outcome.error, "python_grader_server_error")
        raise GradingError(flag, outcome.details or f"the sandbox reported {outcome.error}")
    problem = reward_problem(outcome.value)
    if problem is not None:
        raise GradingError("invalid_reward_error", problem)
    return Score(reward=float(outcome.value))


def worker_sample(sample: Sample) -> dict[str, Any] | str:
    """What the worker gets for a sample: its text when that is all there is (output_json stays
    null: the text is not JSON), else the dict grade() receives."""
    if sample.is_plain() and json_or_none(sample.output_text) is None:
        return sample.output_text
    return sample.as_grader_dict()


def _sendable(
    pairs: Sequence[tuple[Sample, Mapping[str, Any]]],
) -> tuple[list[tuple[Any, Any]], dict[int, Any]]:
    """What the worker gets for each pair, and the outcomes of the samples that cannot be sent.

    One comprehension: a plain text that cannot be JSON travels as it is (the common case, no call
    per sample); any other sample takes `checked` (its dict, or its text once json_or_none said it
    is not JSON), and one whose text is JSON nested too deep is refused (its outcome, not sent).
    """
    from ...sandbox.api import WorkerOutcome

    refusals = 0

    def checked(sample: Sample, item: Mapping[str, Any]) -> tuple[Any, Any] | WorkerOutcome:
        nonlocal refusals
        problem = json_depth_problem(sample.output_text) if sample.is_plain() else None
        if problem is None:
            return worker_sample(sample), item
        refusals += 1
        return WorkerOutcome(error="sample", details=problem)  # type: ignore[arg-type]

    sent = [
        (text, item) if type(text := sample.output_text) is str and text[:1] not in _MAYBE_JSON
        and not text.startswith(JSON_WORDS) and sample.output_json is None
        and not sample.output_tools and not sample.choices
        else checked(sample, item)
        for sample, item in pairs
    ]  # fmt: skip
    if not refusals:
        return sent, {}
    refused = {index: got for index, got in enumerate(sent) if isinstance(got, WorkerOutcome)}
    return [got for got in sent if not isinstance(got, WorkerOutcome)], refused


class PythonGrader(ScoringGrader):
    """A user's grade(sample, item) in a sandboxed worker pool."""

    type_name = "python"
    spec_model = PythonSpec
    spec: PythonSpec

    def __init__(self, spec: PythonSpec, context: GraderContext) -> None:
        super().__init__(spec, context)
        self._pool: Any = None
        self._lock = threading.Lock()

    @classmethod
    def review(cls, spec: GraderSpec, *, strict: bool = False) -> tuple[list[str], list[str]]:
        """The upload policy's findings, then the imports tried in the sandbox image the grader names."""
        from ...sandbox.imports import check_imports
        from ...sandbox.policy import check_source

        report = check_source(spec.source, strict=strict)  # type: ignore[attr-defined]
        errors, warnings = list(report.errors), list(report.warnings)
        if not errors:
            missing, unchecked = check_imports(spec.source, spec.image_tag)  # type: ignore[attr-defined]
            errors += missing
            warnings += unchecked
        return errors, warnings

    def pool(self) -> Any:
        """The worker pool for this source (created on first use)."""
        with self._lock:
            if self._pool is None:
                from ...sandbox.api import SandboxLimits
                from ...sandbox.pools import get_pool

                options = self.context.sandbox_options
                self._pool = get_pool(
                    tenant=self.context.tenant,
                    grader_id=self.context.grader_id,
                    version=self.context.version,
                    source=self.spec.source,
                    backend=self.context.sandbox,
                    limits=SandboxLimits.coerce(options.get("limits")).for_image(self.spec.image_tag),
                )
            return self._pool

    def pool_status(self) -> PoolStatus | None:
        with self._lock:
            return self._pool.status() if self._pool is not None else None

    def outcomes(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> list[Any]:
        """One WorkerOutcome per pair; a pool that cannot start gives python_grader_server_error.

        A sample whose text is JSON nested deeper than the limit is not sent: its outcome is
        the "sample" error (sample_parse_error), and only its own.
        """
        sent, refused = _sendable(pairs)
        try:
            graded = self.pool().grade(sent) if sent else []
        except Exception as exc:  # SandboxUnavailable, a pool that died: every sample in the batch
            details = f"the sandbox could not grade ({type(exc).__name__}): {exc}"
            raise GradingError("python_grader_server_error", details) from exc
        if not refused:
            return graded
        rest = iter(graded)
        return [refused[i] if i in refused else next(rest, None) for i in range(len(pairs))]

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        return interpret(self.outcomes([(sample, item)])[0])

    def grade(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        return self.grade_columns([(sample, item)]).result(0)

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        """Every reward in one column; a full result only for a sample whose value was not a reward."""
        start = time.perf_counter()
        try:
            outcomes = self.outcomes(pairs) if pairs else []
            if len(outcomes) != len(pairs):
                raise GradingError(
                    "python_grader_server_error",
                    f"the sandbox returned {len(outcomes)} outcomes for {len(pairs)} samples",
                )
        except GradingError as exc:
            return self.columns([self._server_error(exc.details, start) for _ in pairs])
        return self.collect(outcomes, start)

    def collect(self, outcomes: Sequence[Any], start: float) -> GradedBatch:
        """A batch's WorkerOutcomes (graded since `start`) as columns."""
        share = (time.perf_counter() - start) / max(1, len(outcomes))
        rewards: list[float] = []
        failed: dict[int, GraderResult] = {}
        for index, outcome in enumerate(outcomes):
            value = outcome.value
            if outcome.error is None and type(value) in _PLAIN_NUMBERS and 0.0 <= value <= 1.0:
                rewards.append(float(value))  # the common case (NaN fails the range test)
                continue
            try:
                result = self.result(interpret(outcome), start)
            except GradingError as exc:
                result = self._fail(exc.flag, exc.details, start)
            result.metadata.execution_time = share
            failed[index] = result
            rewards.append(result.reward)
        return GradedBatch(
            name=self.name,
            type=self.type_name,
            rewards=rewards,
            results=failed,
            pass_threshold=self.pass_threshold,
            execution_time=share,
        )

    def _server_error(self, details: str, start: float) -> GraderResult:
        result = self._fail("python_grader_server_error", details, start)
        result.metadata.errors.python_grader_server_error_type = "sandbox_unavailable"
        return result

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
