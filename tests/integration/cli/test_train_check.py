"""`rft train CONFIG --check`: the config, the grader file and the datasets, checked without training."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "examples" / "tiny" / "config.yaml"
RFT = Path(sys.executable).with_name("rft")
pytestmark = pytest.mark.timeout(120)


def _check(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    args = [str(RFT), "train", str(TINY), "--check", "--output-dir", str(tmp_path / "run")]
    for override in overrides:
        args += ["--set", override]
    return subprocess.run(args, capture_output=True, text=True, timeout=100, check=False)


def test_a_python_grader_file_passes_the_check(tmp_path: Path) -> None:
    grader = tmp_path / "exact.py"
    grader.write_text('def grade(sample, item):\n    return float(sample["output_text"] == item["answer"])\n')
    done = _check(tmp_path, f"grader.spec_file={grader}", "grader.spec=null")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["grader"] == {"type": "python", "name": "exact", "warnings": []}
    assert report["train_lines"] == 1000 and report["plan"]["steps"] > 0
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("syntax", "SyntaxError|syntax"),
        ("bad_line", r"train\.jsonl:2"),
        ("overlap", "in both training and validation"),
    ],
)
def test_what_cannot_run_exits_2_with_the_reason(tmp_path: Path, setup: str, message: str) -> None:
    overrides: list[str] = []
    if setup == "syntax":
        grader = tmp_path / "broken.py"
        grader.write_text("def grade(sample, item)\n    return 1.0\n")
        overrides = [f"grader.spec_file={grader}", "grader.spec=null"]
    elif setup == "bad_line":
        data = tmp_path / "train.jsonl"
        good = (ROOT / "examples" / "tiny" / "train.jsonl").read_text().splitlines()[0]
        data.write_text(good + "\n{not json\n")
        overrides = [f"data.train_file={data}"]
    else:
        overrides = [f"data.valid_file={ROOT / 'examples' / 'tiny' / 'train.jsonl'}"]
    done = _check(tmp_path, *overrides)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" or not json.loads(done.stdout).get("ok")
    assert re.search(message, done.stderr), done.stderr
