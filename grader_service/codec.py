"""One encoding for a whole batch: samples, items and results travel as JSON bytes.

Both sides decode and encode a batch in one call (pydantic's Rust core or the json module), so
the per-sample cost in the service stays close to the grader's own work. See the header of
proto/rft/grader/v1/grader.proto for the shapes.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from math import isfinite
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..plugins.base import GraderResult, ResultMetadata, Sample

SampleLike = Sample | Mapping[str, Any] | str

_SAMPLES = TypeAdapter(list[str | Sample])
_SAMPLE = TypeAdapter(str | Sample)
_RESULTS = TypeAdapter(list[GraderResult])
_RESULT = TypeAdapter(GraderResult)


class BatchFormatError(ValueError):
    """A batch whose JSON is malformed or whose lengths do not match; the message says which."""


@contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while building thousands of small objects at once.

    Each batch allocates many pydantic models and no cycles; without the pause, collections
    triggered by the allocations cost about 2/3 of the decoding time of a 10,000-result batch.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---- samples and items (client -> service) -------------------------------------------------


def _plain(sample: SampleLike) -> Any:
    if type(sample) is str or type(sample) is dict:  # the common cases: json.dumps takes them as they are
        return sample
    if isinstance(sample, str):
        return sample
    if isinstance(sample, Sample):
        return sample.model_dump(exclude_defaults=True, mode="json")
    if isinstance(sample, Mapping):
        return dict(sample)
    raise TypeError(f"a sample must be a str, a dict or a Sample, got {type(sample).__name__}")


def encode_samples(samples: Iterable[SampleLike]) -> bytes:
    """JSON array bytes; strings stay strings (the sample's output_text)."""
    return json.dumps([_plain(s) for s in samples], ensure_ascii=False, separators=(",", ":")).encode()


def encode_sample(sample: SampleLike) -> bytes:
    return json.dumps(_plain(sample), ensure_ascii=False, separators=(",", ":")).encode()


def encode_items(items: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    """A JSON array of objects, or one object that every sample shares."""
    if isinstance(items, Mapping):
        return json.dumps(dict(items), ensure_ascii=False, separators=(",", ":")).encode()
    plain = [i if type(i) is dict else dict(i) for i in items]
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()


def decode_samples(data: bytes) -> list[Sample]:
    """Samples from a JSON array of strings or sample objects."""
    if not data:
        return []
    try:
        parsed = _SAMPLES.validate_json(data)
    except ValidationError as exc:
        raise BatchFormatError(
            f"samples_json must be a JSON array of strings or sample objects: {exc}"
        ) from exc
    return [Sample(output_text=s) if isinstance(s, str) else s for s in parsed]


def decode_sample(data: bytes) -> Sample:
    try:
        parsed = _SAMPLE.validate_json(data)
    except ValidationError as exc:
        raise BatchFormatError(f"sample_json must be a JSON string or sample object: {exc}") from exc
    return Sample(output_text=parsed) if isinstance(parsed, str) else parsed


def decode_items(data: bytes, count: int) -> list[dict[str, Any]]:
    """`count` items from a JSON array of objects, or one object repeated `count` times."""
    if not data:
        return [{} for _ in range(count)]
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchFormatError(f"items_json is not valid JSON: {exc}") from exc
    if isinstance(parsed, dict):
        return [parsed] * count
    if not isinstance(parsed, list) or not all(isinstance(i, dict) for i in parsed):
        raise BatchFormatError("items_json must be a JSON array of objects, or one object for all samples")
    if len(parsed) != count:
        raise BatchFormatError(f"got {count} samples but {len(parsed)} items; send one item per sample")
    return parsed


def decode_item(data: bytes) -> dict[str, Any]:
    items = decode_items(data, 1)
    return items[0]


# ---- results (service -> client) -----------------------------------------------------------


# The fields _plain_result knows; if ResultMetadata grows one, every result takes pydantic's path.
_PLAIN_META = set(ResultMetadata.model_fields) == {
    "name", "type", "errors", "execution_time", "scores", "passes", "token_usage",
    "sampled_model_name", "label",
}  # fmt: skip


def _plain_result(result: GraderResult) -> dict[str, Any] | None:
    """The JSON-ready dict of a result without errors, sub-rewards or extras (most results), else None.

    The same fields as pydantic's `exclude_defaults` dump, built without walking every error flag.
    """
    meta = result.metadata
    if (
        not (isfinite(result.reward) and isfinite(meta.execution_time))  # pydantic writes null for those
        or result.sub_rewards
        or meta.scores
        or meta.errors.__pydantic_fields_set__
        or meta.token_usage is not None
        or meta.sampled_model_name is not None
        or meta.label is not None
    ):
        return None
    plain: dict[str, Any] = {"name": meta.name, "type": meta.type}
    if meta.execution_time != 0.0:
        plain["execution_time"] = meta.execution_time
    if meta.passes:
        plain["passes"] = meta.passes
    return {"reward": result.reward, "metadata": plain}


def encode_results(results: Sequence[GraderResult]) -> bytes:
    """JSON array; fields at their default (false error flags, empty maps) are left out."""
    if not _PLAIN_META:
        return _RESULTS.dump_json(list(results), exclude_defaults=True)
    parts: list[bytes] = []
    run: list[dict[str, Any]] = []  # consecutive plain results, encoded together
    for result in results:
        plain = _plain_result(result)
        if plain is not None:
            run.append(plain)
            continue
        if run:
            parts.append(_dumps(run)[1:-1])
            run = []
        parts.append(_RESULT.dump_json(result, exclude_defaults=True))
    if run:
        parts.append(_dumps(run)[1:-1])
    return b"[" + b",".join(parts) + b"]"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode_result(result: GraderResult) -> bytes:
    return _RESULT.dump_json(result, exclude_defaults=True)


def decode_results(data: bytes) -> list[GraderResult]:
    if not data:
        return []
    with _bulk():
        return _RESULTS.validate_json(data)


def decode_result(data: bytes) -> GraderResult:
    return _RESULT.validate_json(data)


def error_flags(result: GraderResult) -> list[str]:
    """The error flags a result carries (fast path: a result built without errors has none set)."""
    errors = result.metadata.errors
    if not errors.__pydantic_fields_set__:
        return []
    return errors.raised()


def to_plain(result: GraderResult) -> dict[str, Any]:
    """The result as the dict `rft graders run` prints (OpenAI's run-result shape)."""
    return result.model_dump(mode="json")
