"""examples/rare_disease/per_gene.py: per-case, per-gene and annotated-only views of eval results."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_per_gene_view_weights_each_gene_once(
    tmp_path: Path, example_script: Callable[[str], ModuleType]
) -> None:
    per_gene = example_script("per_gene")
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"gene": g}) + "\n" for g in ["NF1", "NF1", "NF1", "TBX5", "NOTAGENE"])
    )
    hits = [True, True, True, False, False]
    results = tmp_path / "results.jsonl"
    results.write_text(
        "".join(
            json.dumps({"model": "m", "item_index": i, "top1": h, "top5": h, "topmax": True}) + "\n"
            for i, h in enumerate(hits)
        )
    )
    views = per_gene.summarize(results, data)["m"]
    assert views["per_case"]["top1"] == pytest.approx(3 / 5)
    assert views["per_gene"]["top1"] == pytest.approx(1 / 3)
    assert views["annotated_genes_only"]["top1"] == pytest.approx(3 / 4)
