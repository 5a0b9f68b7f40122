"""A grader type from a separate, throwaway package shows up in `rft graders types` and grades.

The package is written to tmp_path with its own pyproject.toml, pip-installed into this
environment (--no-deps, no build isolation: nothing is downloaded), used through the `rft`
console script, and uninstalled at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

RFT = str(Path(sys.executable).with_name("rft"))

PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.0.1"

[tool.setuptools]
py-modules = ["{module}"]

[project.entry-points."rftkit.graders"]
{type_name} = "{module}:WordLimitGrader"
"""

MODULE = '''"""A third-party grader type: full credit when the answer stays within a word limit."""

from typing import Literal

from rftkit.plugins.base import GraderSpec, Score, ScoringGrader
from rftkit.plugins.templates import Template, render


class WordLimitSpec(GraderSpec):
    type: Literal["{type_name}"] = "{type_name}"
    input: Template = "{{{{sample.output_text}}}}"
    max_words: int


class WordLimitGrader(ScoringGrader):
    """Scores 1 within max_words words, then falls off linearly to 0 at twice the limit."""

    type_name = "{type_name}"
    spec_model = WordLimitSpec

    def score(self, sample, item):
        words = len(render(self.spec.input, sample, item).split())
        limit = self.spec.max_words
        return Score(reward=max(0.0, min(1.0, 2 - words / limit)), scores={{"words": float(words)}})
'''


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-input", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def rft(*args: str) -> dict:
    proc = subprocess.run([RFT, "graders", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_separately_installed_package_adds_a_grader_type(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    dist, module, type_name = (
        f"rftkit-test-plugin-{suffix}",
        f"rftkit_test_plugin_{suffix}",
        f"word_limit_{suffix}",
    )
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, module=module, type_name=type_name))
    (package / f"{module}.py").write_text(MODULE.format(type_name=type_name))
    installed = pip("install", "-q", "--no-deps", "--no-build-isolation", str(package))
    assert installed.returncode == 0, installed.stderr
    try:
        listed = {t["name"]: t for t in rft("types")["types"]}
        assert listed[type_name]["distribution"] == dist
        assert listed[type_name]["summary"].startswith("Scores 1 within max_words")
        assert "string_check" in listed  # built-ins are found the same way

        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"type": type_name, "name": "brevity", "max_words": 4}))
        short = rft("run", str(spec), "--sample", "one two three")
        assert short["reward"] == 1.0 and short["metadata"]["type"] == type_name
        long = rft("run", str(spec), "--sample", "one two three four five six")
        assert long["reward"] == 0.5 and long["metadata"]["scores"] == {"words": 6.0}
        # it composes with the built-ins inside a multi grader
        multi = tmp_path / "multi.json"
        multi.write_text(
            json.dumps(
                {
                    "type": "multi",
                    "name": "combined",
                    "calculate_output": "brief * exact",
                    "graders": {
                        "brief": {"type": type_name, "name": "brief", "max_words": 4},
                        "exact": {
                            "type": "string_check",
                            "name": "exact",
                            "input": "{{sample.output_text}}",
                            "reference": "{{item.answer}}",
                            "operation": "eq",
                        },
                    },
                }
            )
        )
        combined = rft("run", str(multi), "--sample", "Paris", "--item", '{"answer": "Paris"}')
        assert combined["reward"] == 1.0 and combined["sub_rewards"] == {"brief": 1.0, "exact": 1.0}
    finally:
        removed = pip("uninstall", "-y", "-q", dist)
        assert removed.returncode == 0, removed.stderr
    assert type_name not in {t["name"] for t in rft("types")["types"]}
