"""examples/rare_disease/rerank_stats.py: what a model did with the rerank prompt's candidate list."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rftkit.plugins.models.hpo_case import Candidate, Case, render_messages

CASE = Case.model_validate(
    {
        "id": "PMID_1_A",
        "sex": "FEMALE",
        "age": "P3Y",
        "present": [{"id": "HP:0001631", "label": "Atrial septal defect"}],
        "excluded": [],
        "gene": "TBX5",
        "disease": {"id": "OMIM:142900", "label": "Holt-Oram syndrome"},
    }
)
LIST = ["NKX2-5", "TBX5", "GATA4", "MYH6"]
MESSAGES = render_messages(
    CASE, [Candidate(gene=g, disease="Some syndrome: type 2", explains=["x"]) for g in LIST]
)


def _row(model: str, index: int, genes: list[str] | None, top1: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "item_index": index,
        "sample_index": 0,
        "input": MESSAGES,
        "reference": {"gene": "TBX5", "synonyms": ["NCBIGene:6910"]},
        "output_json": None if genes is None else {"reasoning": "r", "genes": genes},
        "top1": top1,
        "top5": genes is not None and "TBX5" in genes,
        "topmax": genes is not None and "TBX5" in genes,
    }


def test_candidates_are_read_from_the_prompt_in_order(example_script: Callable[[str], ModuleType]) -> None:
    stats = example_script("rerank_stats")
    assert stats.prompt_candidates(MESSAGES) == LIST
    assert stats.prompt_candidates(render_messages(CASE)) == []


def test_kendall_tau_of_the_candidates_order(example_script: Callable[[str], ModuleType]) -> None:
    stats = example_script("rerank_stats")
    assert stats.kendall_tau(LIST, LIST) == 1.0
    assert stats.kendall_tau(LIST[::-1], LIST) == -1.0
    assert stats.kendall_tau(["TBX5", "OTHER", "NKX2-5"], LIST) == -1.0  # non-candidates are skipped
    assert stats.kendall_tau(["TBX5"], LIST) is None


def test_a_model_is_told_apart_from_copying_and_from_shuffling(
    tmp_path: Path, example_script: Callable[[str], ModuleType]
) -> None:
    stats = example_script("rerank_stats")
    rows = [
        _row("m", 0, ["tbx5", "NKX2-5", "GATA4", "MYH6"], top1=True),  # the right gene moved up
        _row("m", 1, list(LIST)),  # a copy
        _row("m", 2, ["NKX2-5", "NOTAGENE"]),  # one candidate and an invented symbol
        _row("m", 3, None),  # did not parse
    ]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = stats.summarize([results])
    m = out["m"]
    assert m["answers"] == 4 and m["parsed"] == pytest.approx(3 / 4)
    assert m["genes_per_answer"] == pytest.approx(10 / 3)
    assert m["named_in_list"] == pytest.approx(9 / 10)
    assert m["exactly_the_list_set"] == pytest.approx(2 / 4)
    assert m["first_is_candidate_1"] == pytest.approx(2 / 4)
    assert m["list_order"] == pytest.approx(1 / 4)
    assert m["kendall_tau"] == pytest.approx((4 / 6 + 1.0) / 2)  # item 2 shares one candidate: no tau
    assert m["top1"] == pytest.approx(1 / 4)
    # the causal gene is second of 4 candidates in every item
    assert out["copy the list"] == {"top1": 0.0, "top5": 1.0, "topmax": 1.0}
    assert out["shuffled"]["top1"] == pytest.approx(1 / 4) and out["shuffled"]["top5"] == 1.0
    assert stats.main([str(results), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["m"]["answers"] == 4
