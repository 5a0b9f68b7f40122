"""METEOR's synonym stage: NLTK's algorithm, with WordNet looked up by the words as written."""

from __future__ import annotations

import pytest
from nltk.translate.meteor_score import meteor_score
from rftkit.plugins import similarity
from rftkit.plugins.similarity import NoSynonyms, SurfaceSynonyms, meteor, tokens


class FakeSynset:
    def __init__(self, *names: str) -> None:
        self._names = names

    def lemmas(self) -> list:
        return [type("L", (), {"name": lambda self, n=n: n})() for n in self._names]


class FakeWordNet:
    """Knows only that large and big are synonyms."""

    def synsets(self, word: str, *args: object) -> list:
        return [FakeSynset("large", "big")] if word in ("large", "big") else []


@pytest.fixture
def fake_wordnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(similarity, "wordnet", lambda: FakeWordNet())
    similarity._synonyms.cache_clear()
    yield
    similarity._synonyms.cache_clear()


def test_synonyms_match_although_nltk_hands_the_stage_stems(fake_wordnet: None) -> None:
    hyp, ref = "the cat sat on the large mat", "the cat sat on the big mat"
    # "large" reaches the synonym stage as its stem "larg": NLTK alone finds no synonym
    assert meteor_score([tokens(ref)], tokens(hyp), wordnet=FakeWordNet()) == pytest.approx(0.8413, abs=1e-4)
    assert meteor(hyp, ref) == pytest.approx(1 - 0.5 * (1 / 7) ** 3)  # every word matched, one chunk
    assert meteor(ref, hyp) == pytest.approx(meteor(hyp, ref))
    assert meteor("big", "large") == pytest.approx(0.5)


def test_without_synonyms_scores_are_nltks(fake_wordnet: None) -> None:
    for hyp, ref in [
        ("the cats were running", "the cat was run"),
        ("creates or updates a virtual machine scale set", "create or update a vm scale set"),
        ("the cat sat on the mat", "the cat sat on the mat"),
    ]:
        assert meteor(hyp, ref) == pytest.approx(
            meteor_score([tokens(ref)], tokens(hyp), wordnet=NoSynonyms())
        )
    assert meteor("", "x") == 0.0
    assert SurfaceSynonyms(["large"]).synsets("larg")[0].lemmas()  # looked up by the surface form


@pytest.mark.skipif(similarity.wordnet_dir() is None, reason="no WordNet here (apt-get install wordnet-base)")
def test_real_wordnet_scores_the_issue_example() -> None:
    assert meteor("the cat sat on the large mat", "the cat sat on the big mat") == pytest.approx(
        0.9985, abs=1e-4
    )
