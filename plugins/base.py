"""The contract every grader type shares: specs, samples, results, and the Grader base class.

A grader type is a `Grader` subclass with a pydantic `spec_model`, registered under the
entry-point group `rftkit.graders` by its type name (see `rftkit.plugins.registry`).
Results follow OpenAI's grader run API: `{reward, sub_rewards, metadata: {name, type,
errors, execution_time, ...}}`; the reward is always a finite float in [0, 1].
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.flags import ERROR_FLAGS


class GraderErrors(BaseModel):
    """Per-sample error flags; `details` says why in words a user can act on."""

    model_config = ConfigDict(extra="forbid")

    formula_parse_error: bool = False
    sample_parse_error: bool = False
    truncated_observation_error: bool = False
    unresponsive_reward_error: bool = False
    invalid_variable_error: bool = False
    other_error: bool = False
    python_grader_server_error: bool = False
    python_grader_server_error_type: str | None = None
    python_grader_runtime_error: bool = False
    python_grader_runtime_error_details: str | None = None
    model_grader_server_error: bool = False
    model_grader_refusal_error: bool = False
    model_grader_parse_error: bool = False
    model_grader_server_error_details: str | None = None
    timeout_error: bool = False
    invalid_reward_error: bool = False
    resource_limit_error: bool = False
    details: str | None = None

    def raised(self) -> list[str]:
        """Names of the flags that are set."""
        return [name for name in ERROR_FLAGS if getattr(self, name)]

    @property
    def any(self) -> bool:
        return bool(self.raised())

    @classmethod
    def merged(cls, named: Mapping[str, GraderErrors]) -> GraderErrors:
        """One set of flags from several graders' (a multi grader's children); details name the child."""
        merged = cls()
        details = []
        for name, errors in named.items():
            for key, value in errors:
                if value is True:
                    setattr(merged, key, True)
                elif isinstance(value, str) and key != "details" and getattr(merged, key) is None:
                    setattr(merged, key, value)
            if errors.details:
                details.append(f"{name}: {errors.details}")
        merged.details = "; ".join(details) or None
        return merged


class ResultMetadata(BaseModel):
    name: str
    type: str
    errors: GraderErrors = Field(default_factory=GraderErrors)
    execution_time: float = 0.0
    scores: dict[str, float] = Field(default_factory=dict)
    passes: dict[str, bool] = Field(default_factory=dict)
    token_usage: dict[str, int] | None = None
    sampled_model_name: str | None = None
    label: str | None = None  # label_model: the label the judge chose


class GraderResult(BaseModel):
    reward: float
    sub_rewards: dict[str, float] = Field(default_factory=dict)
    metadata: ResultMetadata

    @field_validator("reward")
    @classmethod
    def _finite_unit_interval(cls, value: float) -> float:
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"reward must be a finite float in [0, 1], got {value!r}")
        return float(value)

    @classmethod
    def failure(
        cls, name: str, type: str, flag: str, details: str, execution_time: float = 0.0
    ) -> GraderResult:
        """A zero reward carrying one error flag and its reason."""
        if flag not in ERROR_FLAGS:
            raise ValueError(f"unknown error flag {flag!r}")
        errors = GraderErrors(**{flag: True}, details=details)
        if flag == "python_grader_runtime_error":
            errors.python_grader_runtime_error_details = details
        if flag == "model_grader_server_error":
            errors.model_grader_server_error_details = details
        return cls(
            reward=0.0,
            metadata=ResultMetadata(name=name, type=type, errors=errors, execution_time=execution_time),
        )


_ERRORS_CLEAR: dict[str, Any] = {name: field.default for name, field in GraderErrors.model_fields.items()}
_SET_OBJECT = object.__setattr__


def _unchecked(cls: type[BaseModel], values: dict[str, Any], fields_set: set[str]) -> Any:
    """`cls.model_construct(**values)` for values that already hold every field (5x cheaper)."""
    model = cls.__new__(cls)
    _SET_OBJECT(model, "__dict__", values)
    _SET_OBJECT(model, "__pydantic_fields_set__", fields_set)
    _SET_OBJECT(model, "__pydantic_extra__", None)
    _SET_OBJECT(model, "__pydantic_private__", None)
    return model


def fast_result(
    reward: float, name: str, type: str, execution_time: float, passes: dict[str, bool]
) -> GraderResult:
    """A GraderResult without validation, for a reward already checked to be a float in [0, 1].

    Equal to `GraderResult(reward=reward, sub_rewards={}, metadata=ResultMetadata(name=name,
    type=type, execution_time=execution_time, scores={}, passes=passes))`, at about half the cost:
    graders that score thousands of samples per batch build one per sample.
    """
    metadata = {
        "name": name,
        "type": type,
        "errors": _unchecked(GraderErrors, dict(_ERRORS_CLEAR), set()),
        "execution_time": execution_time,
        "scores": {},
        "passes": passes,
        "token_usage": None,
        "sampled_model_name": None,
        "label": None,
    }
    return _unchecked(
        GraderResult,
        {
            "reward": reward,
            "sub_rewards": {},
            "metadata": _unchecked(
                ResultMetadata, metadata, {"name", "type", "execution_time", "scores", "passes"}
            ),
        },
        {"reward", "sub_rewards", "metadata"},
    )


class SampleParseError(ValueError):
    """`output_json` was asked for but the sample's text is not JSON."""


class InvalidVariableError(KeyError):
    """A template referenced a variable that the item or sample does not have."""


_JSON_STARTS = frozenset('{["-0123456789')
_JSON_WORDS = ("true", "false", "null", "NaN", "Infinity")  # the other values json.loads takes
_JSON_SPACE = " \t\n\r"


def _json_or_none(text: Any) -> Any:
    """`text` parsed as JSON, or None; skips the parse (a raised JSONDecodeError costs ~3 us) when
    the start of the text rules JSON out, as for most plain-text answers."""
    if not isinstance(text, str):
        return None
    stripped = text.lstrip(_JSON_SPACE)
    if not stripped or (stripped[0] not in _JSON_STARTS and not stripped.startswith(_JSON_WORDS)):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


class Sample(BaseModel):
    """A model output as OpenAI's graders see it (`{{sample.*}}`)."""

    model_config = ConfigDict(extra="allow")

    output_text: str = ""
    output_json: Any = None
    output_tools: list[dict[str, Any]] = Field(default_factory=list)
    choices: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def from_text(cls, text: str) -> Sample:
        return cls(output_text=text)

    def parsed_json(self) -> Any:
        """`output_json` if given, else `output_text` parsed as JSON; SampleParseError if it is not JSON."""
        if self.output_json is not None:
            return self.output_json
        try:
            return json.loads(self.output_text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise SampleParseError(f"sample output is not valid JSON: {exc}") from exc

    def as_grader_dict(self) -> dict[str, Any]:
        """The dict a Python grader's `grade(sample, item)` receives; output_json filled where parsable."""
        if self.output_tools or self.choices or self.__pydantic_extra__ or self.output_json is not None:
            data = self.model_dump()
        else:  # a plain text sample (the common case): the same dict without model_dump's cost
            data = {"output_text": self.output_text, "output_json": None, "output_tools": [], "choices": []}
        if data["output_json"] is None:
            data["output_json"] = _json_or_none(self.output_text)
        return data


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

    def grade_batch(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> list[GraderResult]:
        """Score many samples; one result each, in order. Override to batch (sandbox pools, HTTP)."""
        return [self.grade_safely(sample, item) for sample, item in pairs]

    def grade_rewards(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> list[GraderResult | float]:
        """`grade_batch` for callers that need only rewards and the failed samples' results.

        An entry may be a bare float for a sample whose result would carry nothing but its
        reward and timing (no error flags, sub-rewards, scores or passes); graders that can
        skip building those results override this.
        """
        return list(self.grade_batch(pairs))

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
        threshold = getattr(self.spec, "pass_threshold", None)
        if threshold is not None:
            passes.setdefault("pass", reward >= threshold)
        if not (score.sub_rewards or score.scores or score.metadata or score.passes):
            # Nothing left to validate (the reward is checked above): skip pydantic's validation.
            return fast_result(float(reward), self.name, self.type_name, time.perf_counter() - start, passes)
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
