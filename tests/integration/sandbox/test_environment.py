"""What a python grader finds in the default sandbox image (OpenAI's tag 2025-05-08), on each backend.

OpenAI's guide lists the image's packages with pins and five NLTK corpora; graders written for it
(sqlparse, rdkit, scikit-bio, ast-grep-py, stopwords, wordnet, punkt) must run here unchanged, and
one that imports what the image lacks must be told which package and which image.
"""

from __future__ import annotations

import pytest
from rftkit.plugins.base import GraderContext, Sample
from rftkit.plugins.registry import build_grader
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.testing import backend_params, require_backend

ENVIRONMENT = """
import importlib.metadata as md

import ast_grep_py, rdkit, skbio, sqlparse
import nltk
from nltk.corpus import stopwords, wordnet
from rdkit import Chem


def grade(sample, item):
    versions = {name: md.version(name) for name in item["versions"]}
    assert versions == item["versions"], versions
    assert "the" in stopwords.words("english") and "don't" in stopwords.words("english")
    assert "big" in {l.name() for s in wordnet.synsets("large") for l in s.lemmas()}
    assert nltk.sent_tokenize("Mr. Smith came. He left.") == ["Mr. Smith came.", "He left."]
    assert Chem.MolFromSmiles("CCO").GetNumAtoms() == 3
    assert sqlparse.format("select 1", keyword_case="upper") == "SELECT 1"
    root = ast_grep_py.SgRoot("print(1)", "python").root()
    assert root.find(pattern="print($A)") is not None
    return 1.0
"""
VERSIONS = {"numpy": "2.2.4", "pandas": "2.2.3", "sqlparse": "0.5.3", "rdkit": "2024.9.6",
            "scikit-bio": "0.6.3", "ast-grep-py": "0.36.2"}  # fmt: skip


def grader(backend: str, source: str, **spec: object):
    context = GraderContext(
        tenant="tests",
        grader_id="environment-tests",
        sandbox=backend,
        sandbox_options={"limits": SandboxLimits(workers=1, load_timeout_s=90)},
    )
    return build_grader({"type": "python", "name": "env", "source": source, **spec}, context)


@pytest.mark.parametrize("backend", backend_params())
def test_openai_packages_and_corpora_at_openai_pins(backend: str) -> None:
    require_backend(backend)
    built = grader(backend, ENVIRONMENT)
    try:
        result = built.grade(Sample(output_text="x"), {"versions": VERSIONS})
    finally:
        built.close()
    assert result.reward == 1.0, result.metadata.errors.details


@pytest.mark.parametrize("backend", backend_params())
def test_a_missing_package_names_itself_and_the_image(backend: str) -> None:
    require_backend(backend)
    built = grader(backend, "import not_in_any_image\n\ndef grade(sample, item):\n    return 1.0\n")
    try:
        result = built.grade(Sample(output_text="x"), {})
    finally:
        built.close()
    details = result.metadata.errors.details or ""
    assert result.reward == 0.0 and result.metadata.errors.python_grader_runtime_error
    assert "No module named 'not_in_any_image'" in details and "sandbox image '2025-05-08'" in details


@pytest.mark.parametrize("backend", backend_params())
def test_an_unknown_image_tag_is_a_clear_server_error(backend: str) -> None:
    require_backend(backend)
    built = grader(backend, "def grade(sample, item):\n    return 1.0\n", image_tag="2099-01-01")
    try:
        result = built.grade(Sample(output_text="x"), {})
    finally:
        built.close()
    assert result.metadata.errors.python_grader_server_error
    assert "unknown sandbox image tag '2099-01-01'" in (result.metadata.errors.details or "")


@pytest.mark.parametrize("backend", backend_params())
def test_an_eight_second_grade_fits_openais_two_minutes(backend: str) -> None:
    require_backend(backend)
    source = "import time\n\ndef grade(sample, item):\n    time.sleep(8)\n    return 1.0\n"
    context = GraderContext(tenant="tests", grader_id="slow-tests", sandbox=backend)
    built = build_grader({"type": "python", "name": "slow", "source": source}, context)
    try:
        result = built.grade(Sample(output_text="x"), {})
    finally:
        built.close()
    assert result.reward == 1.0, result.metadata.errors.details
