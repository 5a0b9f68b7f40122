"""Per-request bounds of the grading RPCs: how many samples a request may carry, how big its answer.

- `check_counts` refuses a request with more samples (or items) than the limit before anything is
  decoded: counting the top-level elements of a JSON array needs a few C passes over the bytes and
  no per-sample object, so a 64 MB request of tiny samples costs its bytes, not gigabytes.
- `bound_results` cuts the error texts (and, if that is not enough, the extra metadata) of a
  graded batch's full results so that the response stays under a byte limit however many
  samples fail with however long an error. Every reward and every error flag is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from ..core.records import MAX_JSON_DEPTH, GradedBatch, GraderResult
from .codec import BatchFormatError, bounded_result

# What a response needs per sample besides its full result (a packed reward, an error index, the
# bare result of the old all-results shape), and the least a full result is cut to.
PER_SAMPLE_BYTES = 128
MIN_RESULT_BYTES = 256
MIN_RESPONSE_BYTES_PER_SAMPLE = PER_SAMPLE_BYTES + MIN_RESULT_BYTES + 16

_ENCODE = msgspec.json.Encoder().encode
_STRUCTURE = bytes(range(256)).translate(None, b"[]{},")  # every byte but brackets and commas
_INNERMOST = re.compile(rb"[\[{][^\[\]{}]*[\]}]")
_BRACKET = re.compile(rb"[\[\]{}]")
_BLOCK = 1 << 16
_TEXT_FIELDS = ("details", "python_grader_runtime_error_details", "model_grader_server_error_details")


class TooManySamples(BatchFormatError):
    """A request with more samples (or items) than the service takes in one request."""


def _outside_strings(raw: bytes) -> Iterator[bytes]:
    """The brackets and commas of JSON text that lie outside its strings, a block at a time (so that
    no step builds more than a block's worth of pieces)."""
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # escaped backslashes, then escaped quotes
    start = 0
    while start < len(raw):
        end = min(len(raw), start + _BLOCK)
        if raw.count(b'"', start, end) % 2:  # the block would end inside a string: end it after it
            close = raw.find(b'"', end)
            end = len(raw) if close < 0 else close + 1
        yield b"".join(raw[start:end].split(b'"')[::2]).translate(None, _STRUCTURE)
        start = end


def count_elements(data: bytes) -> int | None:
    """The number of top-level elements of a JSON array; None when `data` is no array, is
    unbalanced, or nests deeper than MAX_JSON_DEPTH across blocks (the decoder says what is wrong
    then). Linear, in C a block at a time, never recursive, with memory of a few blocks beside a
    copy of `data`."""
    raw = data.strip()
    if raw[:1] != b"[" or raw[-1:] != b"]":
        return None
    depth = commas = 0
    for block in _outside_strings(raw[1:-1]):
        for _ in range(MAX_JSON_DEPTH + 1):  # the block's complete groups go (innermost first)
            shorter = _INNERMOST.sub(b"", block.replace(b"{}", b"").replace(b"[]", b""))
            if shorter == block:
                break
            block = shorter
        done = 0
        for bracket in _BRACKET.finditer(block):  # what is left opens or closes across blocks
            if depth == 0:
                commas += block.count(b",", done, bracket.start())
            depth += 1 if bracket.group() in b"[{" else -1
            if not 0 <= depth <= MAX_JSON_DEPTH:
                return None
            done = bracket.end()
        if depth == 0:
            commas += block.count(b",", done)
    if depth:
        return None
    return commas + 1 if raw[1:-1].strip() else 0


def check_counts(limit: int, samples_json: bytes, items_json: bytes = b"") -> None:
    """TooManySamples (INVALID_ARGUMENT) when the samples or the items array hold more than `limit`."""
    for what, data in (("samples", samples_json), ("items", items_json)):
        if data.count(b",") < limit:  # at most `limit` elements: the common case, one C pass
            continue
        count = count_elements(data)
        if count is not None and count > limit:
            raise TooManySamples(
                f"the request carries {count} {what}, more than the {limit} this server takes in one "
                "request (rft serve --max-samples-per-request); send them in several requests "
                "(GraderClient chunk_size)"
            )


def _encoded_size(result: GraderResult) -> tuple[GraderResult, int]:
    try:
        return result, len(_ENCODE(result))
    except UnicodeEncodeError:
        result = bounded_result(result, clean=True)
        return result, len(_ENCODE(result))


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f" [... cut from {len(text)} chars to fit the response] "
    keep = max(0, limit - len(marker))
    head = keep // 2
    return text[:head] + marker + (text[-(keep - head) :] if keep - head else "")


def _shrink(result: GraderResult, size: int, target: int) -> GraderResult:
    """The result cut to about `target` encoded bytes: its error texts first, then its extra metadata."""
    meta = result.metadata
    texts = {name: getattr(meta.errors, name) for name in _TEXT_FIELDS if getattr(meta.errors, name)}
    chars = sum(len(t) for t in texts.values())
    limit = max(0, (chars - (size - target)) // max(1, len(texts)))
    shrunk = result
    for _ in range(8):
        errors = msgspec.structs.replace(meta.errors, **{k: _shorten(t, limit) for k, t in texts.items()})
        shrunk = msgspec.structs.replace(result, metadata=msgspec.structs.replace(meta, errors=errors))
        if limit == 0:
            break
        shrunk, size = _encoded_size(shrunk)
        if size <= target:
            return shrunk
        limit //= 2
    # Still too big: what is left beyond the reward and its flags is extra metadata (scores, labels).
    extras = msgspec.structs.replace(
        shrunk.metadata, scores={}, passes={}, token_usage=None, sampled_model_name=None, label=None
    )
    return msgspec.structs.replace(shrunk, sub_rewards={}, metadata=extras)


def bound_results(graded: GradedBatch, max_bytes: int) -> GradedBatch:
    """`graded` with its full results cut so that a response carrying them stays under `max_bytes`.

    The budget is shared out evenly: results smaller than their share are kept whole, the others
    are cut to the share (at least MIN_RESULT_BYTES). Rewards and error flags are never touched.
    """
    if not graded.results:
        return graded
    budget = max_bytes - PER_SAMPLE_BYTES * len(graded)
    sized = {i: _encoded_size(r) for i, r in graded.results.items()}
    total = sum(size for _, size in sized.values())
    if total <= budget:
        return graded
    share, left, remaining = MIN_RESULT_BYTES, budget, len(sized)
    for size in sorted(size for _, size in sized.values()):
        if size * remaining > left:
            share = max(MIN_RESULT_BYTES, left // remaining)
            break
        left -= size
        remaining -= 1
    graded.results = {
        i: (_shrink(result, size, share) if size > share else result) for i, (result, size) in sized.items()
    }
    return graded
