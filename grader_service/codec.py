"""One encoding for a whole batch: samples, items and results travel as JSON bytes (msgspec).

Each side encodes or decodes a batch in one C call into the records of core.records, so the
per-sample cost in the service stays close to the grader's own work. An item shared by several
samples (a prompt's) is encoded once, with an index per sample. See the header of
proto/rft/grader/v1/grader.proto for the shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from ..core.records import (
    MAX_DETAILS_CHARS,
    MAX_JSON_DEPTH,
    GradedBatch,
    GraderResult,
    Sample,
    clean_text,
    cut_text,
    item_table,
    json_too_deep,
)

SampleLike = Sample | Mapping[str, Any] | str
_AS_THEY_ARE, _DICTS = frozenset({str, dict}), frozenset({dict})  # exact types encoded unchanged
_ENCODE = msgspec.json.Encoder().encode
_SAMPLES = msgspec.json.Decoder(list[str | Sample])
_SAMPLE = msgspec.json.Decoder(str | Sample)
_ITEMS = msgspec.json.Decoder(list[dict[str, Any]] | dict[str, Any])
_FLAT = str | int | float | bool | None
_FLAT_ITEMS = msgspec.json.Decoder(list[dict[str, _FLAT]] | dict[str, _FLAT])
_RESULTS = msgspec.json.Decoder(list[GraderResult])
_RESULT = msgspec.json.Decoder(GraderResult)


class BatchFormatError(ValueError):
    """A batch whose JSON is malformed or whose lengths do not match; the message says which."""


def _decode(
    decoder: msgspec.json.Decoder, data: bytes, what: str, shallow: Callable[[Any], bool] | None = None
) -> Any:
    """`decoder.decode(data)`; JSON with NaN or Infinity tokens (which older clients wrote) is
    read by the json module and then checked the same way.

    Total: arrays or objects nested deeper than MAX_JSON_DEPTH, and anything else that cannot be
    read, raise BatchFormatError (the request's INVALID_ARGUMENT), never RecursionError (the
    decoders stop at Python's recursion limit by themselves). The depth is found by scanning the
    bytes (json_too_deep), before decoding; with `shallow`, a check of the decoded value that is
    True only when it cannot nest that deep, the scan runs only when the check says it might (a
    batch of flat samples and items is not read twice: the scan costs as much as the decoding).
    """
    too_deep = f"{what}: nested deeper than {MAX_JSON_DEPTH} levels; send flatter JSON"
    if shallow is None and json_too_deep(data):
        raise BatchFormatError(too_deep)
    try:
        parsed = decoder.decode(data)
    except RecursionError as exc:
        raise BatchFormatError(too_deep) from exc
    except msgspec.DecodeError as exc:
        try:
            loose = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise BatchFormatError(f"{what}: {exc}") from exc
        try:
            parsed = msgspec.convert(loose, decoder.type)
        except (msgspec.ValidationError, RecursionError) as again:
            raise BatchFormatError(f"{what}: {again}") from again
    if shallow is not None and not shallow(parsed) and json_too_deep(data):
        raise BatchFormatError(too_deep)
    return parsed


def _flat_samples(parsed: list[str | Sample]) -> bool:
    """Texts and samples with nothing but text (what a model's outputs mostly are): no nesting.
    Fields a Sample does not have were skipped by the decoder, whatever they held."""
    return all(
        type(s) is str or (s.output_json is None and not s.output_tools and not s.choices) for s in parsed
    )


def decode_json_text(text: str | bytes, what: str) -> Any:
    """Any JSON value (a grader spec), bounded like the batches: BatchFormatError when it is not
    JSON or nests deeper than MAX_JSON_DEPTH."""
    if json_too_deep(text):
        raise BatchFormatError(f"{what}: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BatchFormatError(f"{what}: {exc}") from exc


# ---- samples and items (client -> service) -------------------------------------------------


def _plain(sample: SampleLike) -> Any:
    if type(sample) is str or type(sample) is dict:  # the common cases: encoded as they are
        return sample
    if isinstance(sample, Sample):
        return sample.output_text if sample.is_plain() else sample
    if isinstance(sample, str):
        return str(sample)
    if isinstance(sample, Mapping):
        return dict(sample)
    raise TypeError(f"a sample must be a str, a dict or a Sample, got {type(sample).__name__}")


def encode_samples(samples: Iterable[SampleLike]) -> bytes:
    """A JSON array; a plain-text sample is its text."""
    if isinstance(samples, list | tuple) and set(map(type, samples)) <= _AS_THEY_ARE:
        return _ENCODE(samples)  # only texts and dicts: one C call, no Python per sample
    return _ENCODE([_plain(s) for s in samples])


def encode_sample(sample: SampleLike) -> bytes:
    return _ENCODE(_plain(sample))


def encode_items(items: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    """A JSON array of objects, or one object that every sample shares."""
    if isinstance(items, Mapping):
        return _ENCODE(items if type(items) is dict else dict(items))
    if isinstance(items, list | tuple) and set(map(type, items)) <= _DICTS:
        return _ENCODE(items)
    return _ENCODE([i if type(i) is dict else dict(i) for i in items])


def encode_item_table(items: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[int]]:
    """The distinct items as a JSON array, and each sample's position in it.

    An item that is the same object for several samples (pass one dict per prompt, shared by its
    samples) is sent once: a prompt with 16 samples sends its item once, not 16 times.
    """
    distinct, index = item_table(items)
    return encode_items(distinct), index


def decode_samples(data: bytes) -> list[Sample]:
    """Samples from a JSON array of strings or sample objects."""
    if not data:
        return []
    parsed = _decode(
        _SAMPLES, data, "samples_json must be a JSON array of strings or sample objects", _flat_samples
    )
    return [Sample(output_text=s) if type(s) is str else s for s in parsed]


def decode_sample(data: bytes) -> Sample:
    parsed = _decode(_SAMPLE, data, "sample_json must be a JSON string or sample object")
    return Sample(output_text=parsed) if type(parsed) is str else parsed


def decode_items(data: bytes, count: int, index: Sequence[int] = ()) -> list[dict[str, Any]]:
    """`count` items (shared objects, not copies) from the request's item fields.

    With `index` (one position per sample), `data` is an array of distinct items; without it,
    an array of one item per sample, or one object that every sample shares.
    """
    if not data:
        if index:
            raise BatchFormatError("item_index is set but items_json is empty")
        return [{}] * count
    what = "items_json must be a JSON array of objects, or one object for all samples"
    # Items of texts, numbers, bools and nulls (checked by the decoder) cannot nest deep: no scan.
    # Anything else (nested values, NaN tokens, errors) is scanned and decoded in full; the typed
    # attempt stops at the first nested value, so items of one shape with nested values (a prompt's
    # list of answers) cost it next to nothing.
    try:
        parsed = _FLAT_ITEMS.decode(data)
    except (msgspec.DecodeError, RecursionError):
        parsed = _decode(_ITEMS, data, what)
    if type(parsed) is dict:
        if index:
            raise BatchFormatError("with item_index, items_json must be an array of the distinct items")
        return [parsed] * count
    if index:
        if len(index) != count:
            raise BatchFormatError(f"got {count} samples but {len(index)} item_index entries; send one each")
        if max(index) >= len(parsed):
            raise BatchFormatError(f"item_index {max(index)} is past the {len(parsed)} items sent")
        return [parsed[k] for k in index]
    if len(parsed) != count:
        raise BatchFormatError(f"got {count} samples but {len(parsed)} items; send one item per sample")
    return parsed


def decode_item(data: bytes) -> dict[str, Any]:
    return decode_items(data, 1)[0]


# ---- results (service -> client) -----------------------------------------------------------


_TEXT_FIELDS = (
    "details",
    "python_grader_runtime_error_details",
    "model_grader_server_error_details",
    "python_grader_server_error_type",
)


def bounded_result(result: GraderResult, clean: bool = False) -> GraderResult:
    """The result with every error text cut to MAX_DETAILS_CHARS (the same object when none is
    longer); with `clean`, also with what UTF-8 cannot carry (a lone surrogate, e.g. from an item
    a grader echoed) replaced by U+FFFD in every string."""
    errors = result.metadata.errors
    changes = {}
    for name in _TEXT_FIELDS:
        text = getattr(errors, name)
        if text and len(text) > MAX_DETAILS_CHARS:
            changes[name] = cut_text(text)
    if not changes and not clean:
        return result
    plain = msgspec.to_builtins(result)
    plain["metadata"]["errors"].update(changes)
    return msgspec.convert(_clean_plain(plain) if clean else plain, GraderResult)


def _clean_plain(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): _clean_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_plain(v) for v in value]
    return value


def encode_results(results: Sequence[GraderResult]) -> bytes:
    """JSON array; fields at their default (false error flags, empty maps) are left out.

    Total and bounded: error texts are cut, and text UTF-8 cannot carry is replaced (bounded_result)."""
    bounded = [bounded_result(r) if r.metadata.errors.details is not None else r for r in results]
    try:
        return _ENCODE(bounded)
    except UnicodeEncodeError:
        return _ENCODE([bounded_result(r, clean=True) for r in bounded])


def encode_result(result: GraderResult) -> bytes:
    return encode_results([result])[1:-1]


def decode_results(data: bytes) -> list[GraderResult]:
    if not data:
        return []
    return _decode(_RESULTS, data, "results_json is not an array of grader results")


def decode_result(data: bytes) -> GraderResult:
    return _decode(_RESULT, data, "result_json is not a grader result")


def graded_from_wire(
    rewards: Sequence[float],
    result_indices: Sequence[int],
    results_json: bytes,
    *,
    name: str,
    type: str,
    pass_threshold: float | None,
    sample_seconds: float,
) -> GradedBatch:
    """A GradedBatch from a compact response's fields (rewards, and the listed samples' results)."""
    results = decode_results(results_json)
    if len(results) != len(result_indices):
        raise BatchFormatError(f"{len(results)} results for {len(result_indices)} result indices")
    return GradedBatch(
        name=name,
        type=type,
        rewards=list(rewards),
        results=dict(zip(result_indices, results, strict=True)),
        pass_threshold=pass_threshold,
        execution_time=sample_seconds,
    )


def error_flags(result: GraderResult) -> list[str]:
    """The error flags a result carries."""
    return result.metadata.errors.raised()


def to_plain(result: GraderResult) -> dict[str, Any]:
    """The result as the dict `rft graders run` prints (OpenAI's run-result shape, and `valid`)."""
    return result.to_plain()
