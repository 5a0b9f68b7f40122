"""The per-sample records every part exchanges: samples, results, and a batch's results as columns.

msgspec structs: building one costs about as much as a tuple, and the wire codec encodes and
decodes whole batches of them in one C call. Results follow OpenAI's grader run API
(`{reward, sub_rewards, metadata: {name, type, errors, execution_time, ...}}`); the reward is
always a finite float in [0, 1] (checked when a result is built or decoded), and `valid` says
whether it is a real score (see `core.flags.reward_is_valid`).

JSON has no NaN: a non-finite sub-reward, score or execution time is written as null and read
back as NaN.

The per-sample records are not tracked by the cyclic garbage collector (`gc=False`: they never
hold a reference back to themselves), so a batch of them does not set off collections that scan
a service's whole heap; never put a record inside its own fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec

from .flags import ERROR_FLAGS, reward_is_valid


def item_table(items: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """The distinct items (by identity: one dict per prompt, shared by its samples) and each
    sample's position among them; how items travel once per prompt, not once per sample."""
    ids = list(map(id, items))
    first = dict.fromkeys(ids)  # each distinct object once, in order of first use
    if len(first) == len(ids):
        return list(items), list(range(len(ids)))
    position = {key: n for n, key in enumerate(first)}
    by_id = dict(zip(ids, items, strict=True))
    return [by_id[key] for key in first], list(map(position.__getitem__, ids))


def rewards_in_range(values: Sequence[float]) -> bool:
    """Whether every value is a number in [0, 1]: three passes in C, no Python code per value
    (a NaN slips past min and max, but makes the sum NaN)."""
    if not values:
        return True
    try:
        total = sum(values, 0.0)
        return min(values) >= 0.0 and max(values) <= 1.0 and total == total
    except TypeError:
        return False


class SampleParseError(ValueError):
    """`output_json` was asked for but the sample's text is not JSON."""


MAX_JSON_DEPTH = 100  # arrays/objects nested deeper are refused at the edge (and in sample texts)
MAX_DETAILS_CHARS = 2000  # an error text longer than this is cut (head and tail kept)
_KEEP_HEAD = 500
_SURROGATES = re.compile("[\ud800-\udfff]")
_BRACKETS_AND_QUOTES = bytes(range(256)).translate(None, b'[]{}"')


def json_too_deep(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays/objects more than `limit` levels deep (an over-estimate of
    the nesting it allows: up to 2 * limit passes); total and linear, never recursive.

    Strings are dropped first (escaped backslashes and quotes, then everything but brackets and
    quotes), so brackets inside strings do not count.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if b"\\" in raw:  # most texts have no escapes: skip two passes over all of it
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    raw = raw.translate(None, _BRACKETS_AND_QUOTES)  # what is left is small: count it, not the text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    raw = b"".join(raw.split(b'"')[::2])
    for _ in range(limit):
        if not raw:
            return False
        shorter = raw.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == raw:  # unbalanced: not JSON, but a decoder would descend the unclosed ones
            return raw.count(b"[") + raw.count(b"{") > limit
        raw = shorter
    return bool(raw)


def cut_text(text: str, limit: int = MAX_DETAILS_CHARS) -> str:
    """`text` at most about `limit` characters (its start and its end, which a traceback ends with)."""
    if len(text) <= limit:
        return text
    tail = limit - _KEEP_HEAD
    return f"{text[:_KEEP_HEAD]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


def clean_text(text: str) -> str:
    """`text` with what UTF-8 cannot carry (lone surrogates) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


_JSON_STARTS = frozenset('{["-0123456789')
JSON_WORDS = ("true", "false", "null", "NaN", "Infinity")  # the other values json.loads takes
_JSON_SPACE = " \t\n\r"


def json_or_none(text: Any) -> Any:
    """`text` parsed as JSON, or None; skips the parse (a raised JSONDecodeError costs ~3 us) when
    the start of the text rules JSON out, as for most plain-text answers."""
    if not isinstance(text, str):
        return None
    stripped = text.lstrip(_JSON_SPACE)
    if not stripped or (stripped[0] not in _JSON_STARTS and not stripped.startswith(JSON_WORDS)):
        return None
    if stripped[0] in "[{" and json_too_deep(stripped):
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def json_depth_problem(text: Any) -> str | None:
    """Why a sample's text cannot be read as JSON because it nests too deep, or None."""
    if isinstance(text, str) and text.lstrip(_JSON_SPACE)[:1] in ("[", "{") and json_too_deep(text):
        return f"sample output is JSON nested deeper than {MAX_JSON_DEPTH} levels"
    return None


class Sample(msgspec.Struct, kw_only=True, gc=False):
    """A model output as OpenAI's graders see it (`{{sample.*}}`); unknown fields are ignored."""

    output_text: str = ""
    output_json: Any = None
    output_tools: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []

    @classmethod
    def from_text(cls, text: str) -> Sample:
        return cls(output_text=text)

    @classmethod
    def from_data(cls, data: str | Mapping[str, Any] | Sample) -> Sample:
        """A Sample from its text or a dict like OpenAI's sample (checked: ValueError says what is wrong)."""
        if isinstance(data, Sample):
            return data
        if isinstance(data, str):
            return cls(output_text=data)
        try:
            return msgspec.convert(dict(data), cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid sample: {exc}") from exc

    def is_plain(self) -> bool:
        """Nothing but text: no output_json given, no tools, no choices."""
        return self.output_json is None and not self.output_tools and not self.choices

    def parsed_json(self) -> Any:
        """`output_json` if given, else `output_text` parsed as JSON; SampleParseError if it is not JSON."""
        if self.output_json is not None:
            return self.output_json
        problem = json_depth_problem(self.output_text)
        if problem is not None:
            raise SampleParseError(problem)
        try:
            return json.loads(self.output_text)
        except (json.JSONDecodeError, TypeError, RecursionError) as exc:
            raise SampleParseError(f"sample output is not valid JSON: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (as given: output_json is not parsed from the text)."""
        return {
            "output_text": self.output_text,
            "output_json": self.output_json,
            "output_tools": self.output_tools,
            "choices": self.choices,
        }

    def as_grader_dict(self) -> dict[str, Any]:
        """The dict a Python grader's `grade(sample, item)` receives; output_json filled where parsable."""
        data = msgspec.to_builtins(self) if not self.is_plain() else self.to_dict()
        if data["output_json"] is None:
            data["output_json"] = json_or_none(self.output_text)
        return data


def _nan_for_null(values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            values[key] = math.nan


class GraderErrors(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, gc=False):
    """Per-sample error flags; `details` says why in words a user can act on."""

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

    def set_values(self) -> dict[str, Any]:
        """The fields that differ from their defaults (what the wire carries)."""
        return {name: getattr(self, name) for name in self.__struct_fields__ if getattr(self, name)}

    @classmethod
    def merged(cls, named: Mapping[str, GraderErrors]) -> GraderErrors:
        """One set of flags from several graders' (a multi grader's children); details name the child."""
        merged = cls()
        details = []
        for name, errors in named.items():
            for key, value in errors.set_values().items():
                if value is True:
                    setattr(merged, key, True)
                elif isinstance(value, str) and key != "details" and getattr(merged, key) is None:
                    setattr(merged, key, value)
            if errors.details:
                details.append(f"{name}: {errors.details}")
        merged.details = "; ".join(details) or None
        return merged


class ResultMetadata(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    name: str
    type: str
    errors: GraderErrors = msgspec.field(default_factory=GraderErrors)
    execution_time: float | None = 0.0
    scores: dict[str, float | None] = {}
    passes: dict[str, bool] = {}
    token_usage: dict[str, int] | None = None
    sampled_model_name: str | None = None
    label: str | None = None  # label_model: the label the judge chose

    def __post_init__(self) -> None:
        if self.execution_time is None:
            self.execution_time = math.nan
        if self.scores:
            _nan_for_null(self.scores)


class GraderResult(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One sample's result; building or decoding one checks that the reward is finite and in [0, 1]."""

    reward: float
    sub_rewards: dict[str, float | None] = {}
    metadata: ResultMetadata

    def __post_init__(self) -> None:
        reward = self.reward
        if type(reward) is not float:
            if isinstance(reward, bool) or not isinstance(reward, int | float):
                raise ValueError(f"reward must be a finite float in [0, 1], got {reward!r}")
            self.reward = reward = float(reward)
        if not 0.0 <= reward <= 1.0:  # NaN fails this too
            raise ValueError(f"reward must be a finite float in [0, 1], got {reward!r}")
        if self.sub_rewards:
            _nan_for_null(self.sub_rewards)

    @property
    def errors(self) -> GraderErrors:
        return self.metadata.errors

    @property
    def valid(self) -> bool:
        """Whether the reward is a real score (no flag, or only the sample's own fault)."""
        return reward_is_valid(self.metadata.errors.raised())

    @classmethod
    def failure(
        cls, name: str, type: str, flag: str, details: str, execution_time: float = 0.0
    ) -> GraderResult:
        """A zero reward carrying one error flag and its reason."""
        if flag not in ERROR_FLAGS:
            raise ValueError(f"unknown error flag {flag!r}")
        details = cut_text(details)
        errors = GraderErrors(details=details)
        setattr(errors, flag, True)
        if flag == "python_grader_runtime_error":
            errors.python_grader_runtime_error_details = details
        if flag == "model_grader_server_error":
            errors.model_grader_server_error_details = details
        return cls(
            reward=0.0,
            metadata=ResultMetadata(name=name, type=type, errors=errors, execution_time=execution_time),
        )

    def is_bare(self, pass_threshold: float | None) -> bool:
        """Whether the reward (and the pass flag a threshold implies) says all there is to say."""
        meta = self.metadata
        if self.sub_rewards or meta.scores or meta.token_usage is not None:
            return False
        if meta.sampled_model_name is not None or meta.label is not None or meta.errors.set_values():
            return False
        if pass_threshold is None:
            return not meta.passes
        return meta.passes == {"pass": self.reward >= pass_threshold}

    def to_plain(self) -> dict[str, Any]:
        """The result as `rft graders run` prints it: OpenAI's run-result shape with every field, and
        rftkit's `metadata.valid` (False: the grading failed, the reward is no score)."""
        plain = {
            "reward": self.reward,
            "sub_rewards": dict(self.sub_rewards),
            "metadata": msgspec.to_builtins(self.metadata)
            | {"errors": self._all_errors(), "valid": self.valid},
        }
        for key in ("execution_time", "scores", "passes", "token_usage", "sampled_model_name", "label"):
            plain["metadata"].setdefault(key, getattr(self.metadata, key))
        return plain

    def _all_errors(self) -> dict[str, Any]:
        errors = self.metadata.errors
        return {name: getattr(errors, name) for name in errors.__struct_fields__}


class GradedBatch(msgspec.Struct, kw_only=True):
    """One batch's results as columns: every reward, and full results only where there is more to say.

    `results` holds the samples whose result carries anything beyond its reward (error flags,
    sub-rewards, scores, a judge's label ...); every other sample's result is its reward, the
    pass flag `pass_threshold` implies, and an equal share of the batch's grading time.
    """

    name: str
    type: str
    rewards: list[float]
    results: dict[int, GraderResult] = {}
    pass_threshold: float | None = None
    execution_time: float = 0.0  # per sample, for the samples without a full result

    @classmethod
    def from_results(
        cls, name: str, type: str, results: Sequence[GraderResult], pass_threshold: float | None = None
    ) -> GradedBatch:
        """Columns from one result per sample (full results kept only where `is_bare` says no)."""
        kept = {i: r for i, r in enumerate(results) if not r.is_bare(pass_threshold)}
        bare = [r.metadata.execution_time or 0.0 for i, r in enumerate(results) if i not in kept]
        return cls(
            name=name,
            type=type,
            rewards=[r.reward for r in results],
            results=kept,
            pass_threshold=pass_threshold,
            execution_time=math.fsum(bare) / len(bare) if bare else 0.0,
        )

    def __len__(self) -> int:
        return len(self.rewards)

    def result(self, index: int) -> GraderResult:
        """Sample `index`'s full result (rebuilt from its reward where none was kept)."""
        found = self.results.get(index)
        if found is not None:
            return found
        reward = self.rewards[index]
        passes = {} if self.pass_threshold is None else {"pass": reward >= self.pass_threshold}
        meta = ResultMetadata(
            name=self.name, type=self.type, execution_time=self.execution_time, passes=passes
        )
        return GraderResult(reward=reward, metadata=meta)

    def to_results(self) -> list[GraderResult]:
        """One GraderResult per sample, in order."""
        return [self.result(index) for index in range(len(self.rewards))]

    def __iter__(self) -> Iterator[GraderResult]:
        return iter(self.to_results())

    def error_indices(self) -> list[int]:
        """Samples whose result carries an error flag, in order."""
        return sorted(i for i, r in self.results.items() if r.metadata.errors.raised())

    def valid(self) -> list[bool]:
        """Per sample: whether its reward is a real score (`GraderResult.valid`)."""
        column = [True] * len(self.rewards)
        for index, result in self.results.items():
            column[index] = result.valid
        return column

    def extend(self, other: GradedBatch) -> None:
        """Append another batch's columns (same grader) after this one's."""
        offset = len(self.rewards)
        bare_here = offset - len(self.results)
        bare_there = len(other.rewards) - len(other.results)
        if bare_here + bare_there:
            self.execution_time = (self.execution_time * bare_here + other.execution_time * bare_there) / (
                bare_here + bare_there
            )
        self.rewards.extend(other.rewards)
        self.results.update({offset + i: r for i, r in other.results.items()})


class DeclaredMetrics(msgspec.Struct, frozen=True):
    """What a grader's results carry beyond the reward: `metadata.scores` and `metadata.passes` keys.

    Evals, events and the report show exactly these, so no core code names a grader type:
    - `rates`: (summary name, pass flag, label) triples; each becomes a rate with its interval (a
      sample with an error, or without the flag, counts as a miss). Default: every pass flag but
      `pass` (which is the pass rate itself), under its own name.
    - `distribution`: a score holding a 1-based position (0 or absent: not found), e.g. a rank;
      the eval reports its mean where found, the report its spread.
    """

    scores: tuple[str, ...] = ()
    passes: tuple[str, ...] = ()
    rates: tuple[tuple[str, str, str], ...] | None = None
    distribution: str | None = None

    def rate_flags(self) -> tuple[tuple[str, str, str], ...]:
        """(summary name, pass flag, label) for every rate the eval reports."""
        if self.rates is not None:
            return self.rates
        return tuple((flag, flag, flag) for flag in self.passes if flag != "pass")

    def __or__(self, other: DeclaredMetrics) -> DeclaredMetrics:
        def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return a + tuple(name for name in b if name not in a)

        rates = None
        if self.rates is not None or other.rates is not None:
            rates = self.rate_flags() + tuple(r for r in other.rate_flags() if r not in self.rate_flags())
        return DeclaredMetrics(
            union(self.scores, other.scores),
            union(self.passes, other.passes),
            rates,
            self.distribution or other.distribution,
        )
