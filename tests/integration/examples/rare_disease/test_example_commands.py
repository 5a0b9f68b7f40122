"""The example's commands end to end on a slice of the shared cases: build.py, then `rft eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
CASES = REPO / ".." / "shared" / "data" / "phenopackets.jsonl"
RFT = Path(sys.executable).with_name("rft")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.timeout(300)
def test_build_a_slice_then_eval_the_baseline(tmp_path: Path) -> None:
    if not CASES.is_file():
        pytest.skip(f"the shared phenopacket cases are not at {CASES}")
    # Every 6th case: about 1,450 cases of most genes, in the file's shape.
    lines = CASES.read_text().splitlines()[::6]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    built = _run(
        [sys.executable, "examples/rare_disease/build.py", str(cases), str(data), "--test-cases", "120"]
    )
    assert built.returncode == 0, built.stderr
    stats = json.loads((data / "stats.json").read_text())["splits"]
    assert 100 <= stats["test"]["cases"] <= 120
    out = tmp_path / "eval"
    evaluated = _run(
        [
            str(RFT),
            "eval",
            "--data",
            str(data / "test.jsonl"),
            "--grader",
            "examples/rare_disease/grader.json",
            "--model",
            "baseline=hpo-baseline",
            "--model",
            "present-only=hpo-baseline-present-only",
            "--output-dir",
            str(out),
        ]
    )
    assert evaluated.returncode == 0, evaluated.stderr + evaluated.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_items"] == stats["test"]["cases"]
    unreachable = stats["test"]["cases_gene_without_hpo_annotation"] / stats["test"]["cases"]
    for name in ("baseline", "present-only"):
        m = summary["models"][name]
        assert m["samples_with_errors"] == 0
        assert 0.1 < m["top1"] <= m["top5"] <= m["topmax"] <= 1 - unreachable
    # Every answer is the JSON shape an LLM gives, with at most 50 genes.
    for line in (out / "results.jsonl").read_text().splitlines():
        answer = json.loads(json.loads(line)["output"])
        assert set(answer) == {"reasoning", "genes"} and len(answer["genes"]) <= 50
