"""NLTK's corpora built offline: WordNet from Debian's files plus lexnames, Snowball stopwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from rftkit.sandbox import corpora


def test_wordnet_gets_the_lexnames_table_nltk_opens(tmp_path: Path) -> None:
    source = tmp_path / "wordnet"
    source.mkdir()
    (source / "data.noun").write_text("x")
    (source / "index.noun").write_text("y")
    dest = tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert corpora.build_wordnet(dest, source).startswith("WordNet 3.0")
    rows = [line.split("\t") for line in (dest / "lexnames").read_text().splitlines()]
    assert len(rows) == 45 and rows[0] == ["00", "adj.all", "3"] and rows[44] == ["44", "adj.ppl", "3"]
    assert rows[3] == ["03", "noun.Tops", "1"] and rows[29] == ["29", "verb.body", "2"]
    assert (dest / "data.noun").stat().st_nlink == 1  # a copy: NLTK refuses multiply-linked files
    assert corpora.build_wordnet(tmp_path / "w2", tmp_path / "nothing").startswith("missing:")


def test_stopwords_are_snowball_lists_with_nltks_english_additions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = tmp_path / "postgresql"
    lists = share / "15" / "tsearch_data"
    lists.mkdir(parents=True)
    (lists / "english.stop").write_text("i\nme\nmy\n\ndon\n")
    (lists / "french.stop").write_text("au\naux\n")
    monkeypatch.setattr(corpora, "POSTGRES_SHARE", share)
    dest = tmp_path / "stopwords"
    assert corpora.build_stopwords(dest).startswith("2 languages")
    english = (dest / "english").read_text().split()
    assert english[:4] == ["i", "me", "my", "don"] and "don't" in english and "shouldn't" in english
    assert len(english) == len(set(english)) == 4 + len(corpora.ENGLISH_EXTRA_STOPWORDS) - 0
    assert (dest / "french").read_text().split() == ["au", "aux"]


@pytest.mark.skipif(not (corpora.WORDNET_SOURCE / "data.noun").is_file(), reason="no wordnet-base here")
def test_nltk_reads_the_built_wordnet(tmp_path: Path) -> None:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = tmp_path / "nltk_data"
    corpora.build_wordnet(root / "corpora" / "wordnet")
    nltk.data.path.append(str(root))
    try:
        reader = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
        names = {lemma.name() for synset in reader.synsets("large") for lemma in synset.lemmas()}
        assert "big" in names and reader.synset("dog.n.01").lexname() == "noun.animal"
    finally:
        nltk.data.path.remove(str(root))
