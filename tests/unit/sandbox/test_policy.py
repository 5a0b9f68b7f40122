"""The upload policy reads source text only: size, syntax, the grade() signature, risky constructs."""

from __future__ import annotations

import pytest
from rftkit.sandbox.api import SandboxLimits
from rftkit.sandbox.policy import check_source

GOOD = """
def _norm(text):
    return text.strip().lower()

def grade(sample, item):
    return float(_norm(sample["output_text"]) == _norm(item["reference"]))
"""


def test_clean_grader_passes_even_in_strict_mode() -> None:
    report = check_source(GOOD, strict=True)
    assert report.ok, report.errors
    assert not [w for w in report.warnings if "imports" in w]


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("def grade(sample):\n    return 1.0\n", "exactly two positional"),
        ("def grade(a, b, c):\n    return 1.0\n", "exactly two positional"),
        ("def grade(a, b, *, c):\n    return 1.0\n", "keyword-only"),
        ("async def grade(a, b):\n    return 1.0\n", "async"),
        ("def scorer(a, b):\n    return 1.0\n", "no top-level function"),
        ("def grade(a, b)\n    return 1.0\n", "syntax error at line 1"),
        ("if True:\n    def grade(a, b):\n        return 1\n", "no top-level function"),
    ],
)
def test_shape_errors(source: str, needle: str) -> None:
    report = check_source(source)
    assert not report.ok
    assert any(needle in e for e in report.errors), report.errors


def test_defaults_and_extra_kwargs_are_fine() -> None:
    assert check_source("def grade(sample, item, *, scale=1.0, **kw):\n    return scale\n").ok


def test_size_limit() -> None:
    source = GOOD + "#" * 300
    assert not check_source(source, limits=SandboxLimits(source_max_bytes=200)).ok
    assert check_source(source, limits=SandboxLimits(source_max_bytes=10_000)).ok
    big = GOOD + "x = 1\n" * 50_000  # > 256 kB by default
    report = check_source(big)
    assert not report.ok and "limit is 262144 bytes" in report.errors[0]


RISKY = """
import os
import subprocess as sp
from socket import socket
import ctypes.util

def grade(sample, item):
    exec("x = 1")
    y = eval("2")
    cls = sample.__class__
    f = getattr(item, "__globals__", None)
    return 1.0
"""


def test_risky_constructs_are_warnings_by_default() -> None:
    report = check_source(RISKY)
    assert report.ok, report.errors
    text = "\n".join(report.warnings)
    for needle in ("imports os", "imports subprocess", "imports from socket", "imports ctypes.util"):
        assert needle in text
    assert "calls exec()" in text and "calls eval()" in text
    assert "__class__" in text and "__globals__" in text


def test_risky_constructs_are_refused_in_strict_mode() -> None:
    report = check_source(RISKY, strict=True)
    assert not report.ok
    assert all(e.startswith("refused in strict mode") for e in report.errors)
    assert any("imports os" in e for e in report.errors)
    assert any("__class__" in e for e in report.errors)


def test_restricted_python_notes_on_benign_constructs_are_not_refused() -> None:
    source = "def grade(sample, item):\n    d = {'a': 0}\n    d['a'] += 1\n    return 1.0\n"
    report = check_source(source, strict=True)
    assert report.ok, report.errors
    assert any("Augmented assignment" in w for w in report.warnings)


def test_null_bytes_are_a_clear_error() -> None:
    report = check_source("def grade(a, b):\n    return 1\n\x00")
    assert not report.ok and report.errors
