"""`hpo-baseline`: a classical phenotype-similarity gene ranker for the rare-disease example.

For each item it reads the present and excluded phenotypes from the case report in
`messages` (never the reference fields), scores every HPO-annotated gene by Resnik
best-match similarity (sum over present terms of the IC of the most informative common
ancestor with the gene's annotations) minus `excluded_weight` nats for each excluded term
the gene is annotated with (default ln 2: an annotated feature is missed about half the
time), and answers `{"reasoning": ..., "genes": [top_k symbols]}` so
it is graded exactly like an LLM.

Environment overrides (the plugin is constructed with no arguments by `rft eval`):
`RFTKIT_HPO_EXCLUDED_WEIGHT` (default ln 2 = 0.693) and `RFTKIT_HPO_TOP_K` (default 50).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .base import ItemModel
from .hpo_case import parse_case_report, user_text
from .hpo_index import HpoIndex, hpo_index

DEFAULT_EXCLUDED_WEIGHT = math.log(2)
DEFAULT_TOP_K = 50


def _env_number(name: str, default: float, kind: type) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}") from exc


class HpoBaseline(ItemModel):
    """Resnik best-match gene ranking with excluded phenotypes counting against a gene."""

    default_excluded_weight: float = DEFAULT_EXCLUDED_WEIGHT

    def __init__(self, excluded_weight: float | None = None, top_k: int | None = None) -> None:
        self.excluded_weight = (
            excluded_weight
            if excluded_weight is not None
            else _env_number("RFTKIT_HPO_EXCLUDED_WEIGHT", self.default_excluded_weight, float)
        )
        self.top_k = top_k if top_k is not None else _env_number("RFTKIT_HPO_TOP_K", DEFAULT_TOP_K, int)
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        self.index: HpoIndex = hpo_index()

    def answer(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The ranking for one item as the JSON object an LLM would give."""
        messages = item.get("messages")
        if not isinstance(messages, list):
            raise ValueError("item has no `messages` list to read the case report from")
        query = parse_case_report(user_text(messages))
        present = self.index.resolve(query.present)
        excluded = self.index.resolve(query.excluded)
        if not present.terms:
            return {"reasoning": "No present phenotype is known to this HPO release.", "genes": []}
        scores = self.index.scores(present.terms, excluded.terms, self.excluded_weight)
        genes = self.index.rank(scores, self.top_k)
        reasoning = (
            f"Resnik best-match similarity of {len(present.terms)} present phenotypes to the gene "
            f"annotations of HPO {self.index.version}; {len(excluded.terms)} excluded phenotypes "
            f"count against annotated genes at {self.excluded_weight:.3g} nats each."
        )
        unknown = present.unknown + excluded.unknown
        if unknown:
            reasoning += f" Terms unknown to this HPO release, skipped: {', '.join(unknown)}."
        return {"reasoning": reasoning, "genes": genes}

    def generate(self, items: Sequence[Mapping[str, Any]], n: int = 1) -> list[list[str]]:
        """`n` copies of the (deterministic) answer for each item."""
        return [[json.dumps(self.answer(item))] * n for item in items]


class HpoBaselinePresentOnly(HpoBaseline):
    """The same ranker reading present phenotypes only (excluded weight 0)."""

    default_excluded_weight = 0.0
