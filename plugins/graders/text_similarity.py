"""`text_similarity`: a similarity metric between a rendered input and reference, as the reward.

Metrics as in OpenAI's graders (see `rftkit.plugins.similarity` for how each is computed, and
where METEOR's WordNet synonyms come from offline). `pass_threshold`, when set, fills
`metadata.passes["pass"]` (reward >= threshold); the reward is the metric itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..base import GradedBatch, GraderResult, GraderSpec, Sample, Score, ScoringGrader, error_flag_for
from ..similarity import SCORERS, cosine_many
from ..templates import Template, render

Metric = Literal[
    "fuzzy_match", "bleu", "gleu", "meteor", "cosine",
    "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l",
]  # fmt: skip


class TextSimilaritySpec(GraderSpec):
    type: Literal["text_similarity"] = "text_similarity"
    input: Template
    reference: Template
    evaluation_metric: Metric
    pass_threshold: float | None = None


class TextSimilarityGrader(ScoringGrader):
    """Similarity of two texts in [0, 1]; cosine batches its embeddings."""

    type_name = "text_similarity"
    spec_model = TextSimilaritySpec
    spec: TextSimilaritySpec

    def texts(self, sample: Sample, item: Mapping[str, Any]) -> tuple[str, str]:
        return render(self.spec.input, sample, item), render(self.spec.reference, sample, item)

    def score(self, sample: Sample, item: Mapping[str, Any]) -> Score:
        text, reference = self.texts(sample, item)
        value = SCORERS[self.spec.evaluation_metric](text, reference)
        return Score(reward=min(1.0, max(0.0, value)))

    def grade_columns(self, pairs: Sequence[tuple[Sample, Mapping[str, Any]]]) -> GradedBatch:
        if self.spec.evaluation_metric != "cosine":
            return super().grade_columns(pairs)
        start = time.perf_counter()
        results: list[GraderResult | None] = [None] * len(pairs)
        todo: list[tuple[int, tuple[str, str]]] = []
        for i, (sample, item) in enumerate(pairs):
            try:
                todo.append((i, self.texts(sample, item)))
            except Exception as exc:
                results[i] = self._fail(*error_flag_for(exc), start)
        try:
            values = cosine_many([texts for _, texts in todo])
        except Exception as exc:  # the embedding model failed: every sample says why, the batch survives
            details = f"cosine embeddings failed: {type(exc).__name__}: {exc}"
            for i, _ in todo:
                results[i] = self._fail("other_error", details, start)
            return self.columns([r for r in results if r is not None])
        for (i, _), value in zip(todo, values, strict=True):
            results[i] = self.result(Score(reward=value), start)
        return self.columns([r for r in results if r is not None])
