"""`ranked_list` (rftkit's own): the reward is the rank of the reference in a list the sample gives.

    {"type": "ranked_list", "name": "gene rank",
     "input": "{{sample.output_json.genes}}", "reference": "{{item.gene}}",
     "synonyms": "{{item.synonyms}}", "decay": "exponential", "k": 5}

`input` names a list (or text with one entry per line / comma: numbering and bullets are
stripped). Entries and the reference match ignoring case, surrounding spaces and punctuation;
the reference or any of `synonyms` (a list, or one string) counts. Repeated entries count once.
Rank r (1-based) scores:
- exponential (default): decay_base ** (r - 1), decay_base 0.7 (rank 2 -> 0.7, rank 5 -> 0.24);
- linear: max(0, 1 - (r - 1) / linear_span), linear_span 10;
- reciprocal: 1 / r.
Absent, or past `max_rank` when set, scores 0. `metadata.passes` has top1, top{k} (k default 5)
and anywhere; `metadata.scores` has rank (0 when absent) and list_length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..base import DeclaredMetrics, GraderSpec, GradingError, Sample, SampleParseError, Score, ScoringGrader
from ..templates import Template, resolve

_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_SPLIT = re.compile(r"[\n,;]")


class RankedListSpec(GraderSpec):
    type: Literal["ranked_list"] = "ranked_list"
    input: Template
    reference: Template
    synonyms: Template | None = None
    decay: Literal["exponential", "linear", "reciprocal"] = "exponential"
    decay_base: float = Field(default=0.7, gt=0, lt=1)
    linear_span: int = Field(default=10, ge=1)
    max_rank: int | None = Field(default=None, ge=1)
    k: int = Field(default=5, ge=1)
    entry_field: str | None = None  # for lists of objects: the field holding the name
    pass_threshold: float | None = None


def normalize(text: str) -> str:
    """What matching compares: case-folded, inner spaces collapsed, outer punctuation removed."""
    return " ".join(text.casefold().split()).strip(" .,;:'\"`()[]")


def as_entries(value: Any, entry_field: str | None) -> list[str]:
    """The list a sample gives, as strings (text is split into lines or comma-separated parts)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            value = parsed
        else:
            return [_BULLET.sub("", part) for part in _SPLIT.split(value) if part.strip()]
    if not isinstance(value, list):
        raise SampleParseError(f"ranked_list input must be a list, got {type(value).__name__}")
    entries = []
    for entry in value:
        if isinstance(entry, Mapping):
            if entry_field is None or entry_field not in entry:
                hint = "set entry_field to the key holding the name" if entry_field is None else ""
                raise SampleParseError(f"list entry {json.dumps(entry)[:80]} has no {entry_field!r} {hint}")
            entry = entry[entry_field]
        entries.append(entry if isinstance(entry, str) else json.dumps(entry))
    return entries


def as_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return [value if isinstance(value, str) else json.dumps(value)]


class RankedListGrader(ScoringGrader):
    """Rank-based credit for a reference in a ranked list."""

    type_name = "ranked_list"
    spec_model = RankedListSpec
    spec: RankedListSpec

    @classmethod
    def declared_metrics(cls, spec: GraderSpec) -> DeclaredMetrics:
        k = spec.k  # type: ignore[attr-defined]
        ranked = DeclaredMetrics(
            scores=("rank", "list_length"),
            passes=("top1", f"top{k}", "anywhere"),
            # As in OpenAI's rare-disease demo: top-1, top-k and top-max (anywhere in the list).
            rates=(
                ("top1", "top1", "Top-1"),
                (f"top{k}", f"top{k}", f"Top-{k}"),
                ("topmax", "anywhere", "Top-max"),
            ),
            distribution="rank",
        )
        return ranked | super().declared_metrics(spec)

    def credit(self, rank: int) -> float:
        """The reward for a 1-based rank (0 for absent)."""
        spec = self.spec
        if rank < 1 or (spec.max_rank is not None and rank > spec.max_rank):
            return 0.0
        if spec.decay == "exponential":
            return spec.decay_base ** (rank - 1)
        if spec.decay == "linear":
            return max(0.0, 1.0 - (rank - 1) / spec.linear_span)
        return 1.0 / rank

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        accepted = {normalize(n) for n in as_names(resolve(self.spec.reference, sample, item))}
        if self.spec.synonyms is not None:
            accepted |= {normalize(n) for n in as_names(resolve(self.spec.synonyms, sample, item))}
        accepted.discard("")
        if not accepted:
            raise GradingError("invalid_variable_error", "the reference is empty")
        entries = list(dict.fromkeys(filter(None, map(normalize, as_entries(
            resolve(self.spec.input, sample, item), self.spec.entry_field
        )))))  # fmt: skip
        rank = next((i + 1 for i, entry in enumerate(entries) if entry in accepted), 0)
        k = self.spec.k
        return Score(
            reward=self.credit(rank),
            scores={"rank": float(rank), "list_length": float(len(entries))},
            passes={"top1": rank == 1, f"top{k}": 1 <= rank <= k, "anywhere": rank >= 1},
        )
