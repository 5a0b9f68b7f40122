"""`rft eval --model NAME=PLUGIN` with model plugins from a throwaway distribution on the path.

The distribution registers two entry points in `rftkit.models`: a ranker that places each
item's gene at rank (i % 3) + 1, and one that raises, whose samples must become
generation errors without stopping the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RFT = Path(sys.executable).with_name("rft")
PLUGIN = """
import json
from rftkit.plugins.models.base import ItemModel

class Ranker(ItemModel):
    def generate(self, items, n=1):
        out = []
        for item in items:
            case = int(item["case"])
            genes = [f"OTHER{k}" for k in range(6)]
            genes.insert(case % 3, item["gene"])
            out.append([json.dumps({"genes": genes})] * n)
        return out

class Broken(ItemModel):
    def generate(self, items, n=1):
        raise RuntimeError("ontology not found")
"""
N = 20


def install_plugin(site: Path) -> None:
    site.mkdir()
    (site / "evalplug.py").write_text(PLUGIN)
    info = site / "evalplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evalplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rftkit.models]\nranker = evalplug:Ranker\nbroken = evalplug:Broken\n"
    )


def test_plugin_models(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    data = tmp_path / "cases.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": f"case {i}"}], "case": i, "gene": f"G{i}"} for i in range(N)
    ]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    grader = tmp_path / "grader.json"
    spec = {"type": "ranked_list", "name": "rank", "input": "{{sample.output_json.genes}}",
            "reference": "{{item.gene}}", "decay": "reciprocal"}  # fmt: skip
    grader.write_text(json.dumps(spec))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [str(RFT), "eval", "--data", str(data), "--grader", str(grader), "--model", "ranker",
         "--model", "bad=broken", "--output-dir", str(out), "--samples", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    models = json.loads((out / "summary.json").read_text())["models"]
    ranks = [i % 3 + 1 for i in range(N)]
    ranker = models["ranker"]
    assert (ranker["n"], ranker["n_items"]) == (2 * N, N)
    assert ranker["top1"] == pytest.approx(sum(r == 1 for r in ranks) / N)
    assert ranker["top5"] == ranker["topmax"] == 1.0
    assert ranker["mean_reward"] == pytest.approx(sum(1 / r for r in ranks) / N)
    assert ranker["best_of_n"]["top1"] == pytest.approx(ranker["top1"])  # deterministic: samples agree
    bad = models["bad"]
    assert bad["n"] == 2 * N and bad["mean_reward"] == 0.0 and bad["topmax"] == 0.0
    assert bad["errors"] == {"generation_error": 2 * N}
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    broken = [line for line in lines if line["model"] == "bad"]
    assert all("ontology not found" in line["error_details"] for line in broken)
