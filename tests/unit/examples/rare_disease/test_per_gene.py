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


def test_figures_count_unreachable_cases_and_give_intervals_around_the_estimate(
    example_script: Callable[[str], ModuleType],
) -> None:
    per_gene = example_script("per_gene")
    rows = [("A", {"top1": 1.0})] * 30 + [("B", {"top1": 0.0})] * 10 + [("C", {"top1": 0.5})] * 4
    rows += [(f"G{i}", {"top1": float(i % 2)}) for i in range(20)] + [("NONE", {"top1": 0.0})] * 6
    reachable = {"A", "B", "C", *(f"G{i}" for i in range(20))}
    result = per_gene.figures(rows, reachable=reachable, metrics=["top1"])
    assert result["cases"] == 70 and result["genes"] == 24
    assert result["unreachable_cases"] == 6 and result["unreachable_genes"] == 1
    assert result["per_case"]["top1"] == pytest.approx((30 + 2 + 10) / 70)
    assert result["per_gene"]["top1"] == pytest.approx((1 + 0 + 0.5 + 10 + 0) / 24)
    assert result["annotated_genes_only"]["top1"] == pytest.approx(42 / 64)
    for view in ("per_case", "per_gene", "annotated_genes_only"):
        low, high = result["ci"][view]["top1"]
        assert low < result[view]["top1"] < high
    # the gene bootstrap is wider than a case bootstrap would be: gene A alone is 30 cases
    low, high = result["ci"]["per_case"]["top1"]
    assert high - low > 0.2
    assert per_gene.format_cell(0.4123, [0.39, 0.435]) == "41.2 % (39.0–43.5)"
