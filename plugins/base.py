"""The contract every grader type shares: specs, the Grader base class, and what it may raise.

A grader type is a `Grader` subclass with a pydantic `spec_model`, registered under the
entry-point group `rftkit.graders` by its type name (see `rftkit.plugins.registry`). It grades
a batch with `grade_columns(pairs) -> GradedBatch` (every reward in one column, full results
only for samples with more to say) and declares the scores and pass flags its results carry
(`declared_metrics`). The records themselves (Sample, GraderResult, ...) live in core.records.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..core.flags import ERROR_FLAGS
from ..core.records import (
    DeclaredMetrics,
    GradedBatch,
    GraderErrors,
    GraderResult,
    ResultMetadata,
    Sample,
    SampleParseError,
)

if TYPE_CHECKING:
    from ..sandbox.api import PoolStatus

__all__ = [  # the records live in core.records; graders import them from here or from there
    "DeclaredMetrics", "GradedBatch", "Grader", "GraderContext", "GraderErrors", "GraderResult",
    "GraderSpec", "GradingError", "InvalidVariableError", "ResultMetadata", "Sample",
    "SampleParseError", "Score", "ScoringGrader", "error_flag_for",
]  # fmt: skip


class InvalidVariableError(KeyError):
    """A template referenced a variable that the item or sample does not have."""


class GraderSpec(BaseModel):
    """Fields common to every grader spec; each type's spec model extends this."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str = "grader"


@dataclass
class GraderContext:
    """What building a grader may need beyond its spec: where untrusted code runs, whose it is."""

    tenant: str = "local"
    grader_id: str = "local"
    version: str = "0"
    sandbox: str = "auto"  # docker | namespace | auto | process (process: no isolation, explicit opt-in)
    sandbox_options: dict[str, Any] = field(default_factory=dict)
    # Where score_model / label_model send requests when the spec names no base_url.
    judge_base_url: str | None = None
    judge_api_key: str | None = None
    # Filled by the registry so a `multi` grader can build its children.
    build: Any = None


class Grader(ABC):
    """One built grader. Subclasses set `type_name` and `spec_model` and implement `grade`."""

    type_name: ClassVar[str]
    spec_model: ClassVar[type[GraderSpec]]

    def __init__(self, spec: GraderSpec, context: GraderContext) -> None:
        self.spec = spec
        self.context = context

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def grade(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        """Score one sample. Must not raise for anything a sample or item can contain."""

    @property
    def pass_threshold(self) -> float | None:
        """The reward from which a sample passes, when the spec sets one."""
        return getattr(self.spec, "pass_threshold", None)

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        """Score many samples: one reward each, in order, and the full results worth keeping.

        The one batch method; override it to batch for real (sandbox pools, HTTP judges).
        """
        return self.columns([self.grade_safely(sample, item) for sample, item in pairs])

    def columns(self, results: Sequence[GraderResult]) -> GradedBatch:
        """This grader's results, one per sample, as columns."""
        return GradedBatch.from_results(self.name, self.type_name, results, self.pass_threshold)

    def grade_batch(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> list[GraderResult]:
        """`grade_columns` as one GraderResult per sample, in order."""
        return self.grade_columns(pairs).to_results()

    @classmethod
    def declared_metrics(cls, spec: GraderSpec) -> DeclaredMetrics:
        """The `metadata.scores` and `metadata.passes` keys this spec's results carry.

        Every grader with a `pass_threshold` declares `pass`; types that add their own extend this.
        """
        return DeclaredMetrics(passes=("pass",) if getattr(spec, "pass_threshold", None) is not None else ())

    def grade_safely(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        """`grade`, with any unexpected exception turned into `other_error` for this sample only."""
        start = time.perf_counter()
        try:
            return self.grade(sample, item)
        except Exception as exc:  # a bug in a grader type costs one sample, never the batch
            flag, details = error_flag_for(exc)
            return GraderResult.failure(self.name, self.type_name, flag, details, time.perf_counter() - start)

    @classmethod
    def review(cls, spec: GraderSpec, *, strict: bool = False) -> tuple[list[str], list[str]]:
        """Deeper upload-time checks of a valid spec: (errors, warnings). Python graders run the policy."""
        return [], []

    def pool_status(self) -> PoolStatus | None:
        """The status of the sandbox pool this grader runs on, once started; None for in-process graders."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most graders hold nothing
        """Release workers, clients or models the grader holds."""


class GradingError(Exception):
    """Raised inside `ScoringGrader.score` to give this sample a zero with one error flag and its reason."""

    def __init__(self, flag: str, details: str) -> None:
        if flag not in ERROR_FLAGS:
            raise ValueError(f"unknown error flag {flag!r}")
        super().__init__(details)
        self.flag = flag
        self.details = details


@dataclass
class Score:
    """What a `ScoringGrader` computes for one sample; the base class turns it into a GraderResult."""

    reward: float
    sub_rewards: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    passes: dict[str, bool] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # other ResultMetadata fields (token_usage ...)


def error_flag_for(exc: BaseException) -> tuple[str, str]:
    """The error flag and reason for an exception raised while grading one sample."""
    if isinstance(exc, GradingError):
        return exc.flag, exc.details
    if isinstance(exc, SampleParseError):
        return "sample_parse_error", str(exc)
    if isinstance(exc, InvalidVariableError):
        return "invalid_variable_error", str(exc.args[0] if exc.args else exc)
    return "other_error", f"{type(exc).__name__}: {exc}"


class ScoringGrader(Grader):
    """A grader written as `score(sample, item) -> Score`, with the bookkeeping done here.

    `grade` times the call, maps SampleParseError -> sample_parse_error, InvalidVariableError ->
    invalid_variable_error and GradingError -> its flag, rejects non-finite or out-of-range rewards
    (invalid_reward_error), and sets `passes["pass"]` when the spec has a `pass_threshold`.
    """

    @abstractmethod
    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        """Score one sample; raise the errors above for what the sample or item lacks."""

    def grade(self, sample: Sample, item: Mapping[str, Any]) -> GraderResult:
        start = time.perf_counter()
        try:
            score = self.score(sample, item)
        except (SampleParseError, InvalidVariableError, GradingError) as exc:
            return self._fail(*error_flag_for(exc), start)
        return self.result(score, start)

    def result(self, score: Score, start: float) -> GraderResult:
        """A GraderResult from a Score (checked: finite and within [0, 1])."""
        reward = score.reward
        if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
            details = f"reward must be a finite number, got {reward!r}"
            return self._fail("invalid_reward_error", details, start)
        if not 0.0 <= reward <= 1.0:
            return self._fail("invalid_reward_error", f"reward {reward!r} is outside [0, 1]", start)
        passes = dict(score.passes)
        threshold = self.pass_threshold
        if threshold is not None:
            passes.setdefault("pass", reward >= threshold)
        return GraderResult(
            reward=float(reward),
            sub_rewards=score.sub_rewards,
            metadata=ResultMetadata(
                name=self.name,
                type=self.type_name,
                execution_time=time.perf_counter() - start,
                scores=score.scores,
                passes=passes,
                **score.metadata,
            ),
        )

    def _fail(self, flag: str, details: str, start: float) -> GraderResult:
        return GraderResult.failure(self.name, self.type_name, flag, details, time.perf_counter() - start)
