"""examples/rare_disease/grader.json on hand-made outputs, through the real grader registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rftkit.plugins.base import Grader, Sample
from rftkit.plugins.registry import build_grader

SPEC = Path(__file__).resolve().parents[4] / "examples" / "rare_disease" / "grader.json"
ITEM = {"gene": "TBX5", "synonyms": ["NCBIGene:6910"], "messages": []}


@pytest.fixture(scope="module")
def grader() -> Grader:
    return build_grader(json.loads(SPEC.read_text()))


def _grade(grader: Grader, genes: object, item: dict = ITEM) -> tuple[float, dict, dict]:
    result = grader.grade(Sample(output_text=json.dumps({"reasoning": "r", "genes": genes})), item)
    return result.reward, result.metadata.passes, result.metadata.errors.raised()


def test_rank_one_is_full_credit_and_top1(grader: Grader) -> None:
    reward, passes, errors = _grade(grader, ["TBX5", "SALL4"])
    assert reward == 1.0 and passes == {"top1": True, "top5": True, "anywhere": True} and not errors


def test_lower_ranks_decay_and_top5_stops_at_five(grader: Grader) -> None:
    rewards = []
    for rank in range(1, 8):
        genes = [f"G{i}" for i in range(1, rank)] + ["tbx5"]  # matching ignores case
        reward, passes, _ = _grade(grader, genes)
        rewards.append(reward)
        assert passes["top1"] is (rank == 1) and passes["top5"] is (rank <= 5) and passes["anywhere"]
    assert rewards == sorted(rewards, reverse=True) and rewards[1] == pytest.approx(0.7)


def test_absent_gene_scores_zero(grader: Grader) -> None:
    reward, passes, errors = _grade(grader, ["SALL4", "GATA4"])
    assert reward == 0.0 and passes == {"top1": False, "top5": False, "anywhere": False} and not errors


def test_a_synonym_counts(grader: Grader) -> None:
    reward, passes, _ = _grade(grader, ["SALL4", "NCBIGene:6910"])
    assert reward == pytest.approx(0.7) and passes["top5"] and not passes["top1"]
    reward, _, _ = _grade(grader, ["SALL4", "NCBIGene:6910"], {**ITEM, "synonyms": []})
    assert reward == 0.0


def test_output_that_is_not_the_json_shape_is_a_parse_error(grader: Grader) -> None:
    result = grader.grade(Sample(output_text="TBX5 is my guess"), ITEM)
    assert result.reward == 0.0 and result.metadata.errors.raised()
