"""The default `hpo-baseline` (genes ranked by their best disease) on a tiny hand-built ontology."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from rftkit.plugins.models.hpo_case import Case, Phenotype, render_messages
from rftkit.plugins.models.hpo_disease import (
    AnnotationTables,
    DiseaseIndex,
    HpoDiseaseImplied,
    HpoDiseaseRanker,
    HpoGeneImplied,
    expected_hits,
    link_diseases,
    order_genes,
)

# term -> parents; 1 is the root, 2 "Phenotypic abnormality"
PARENTS: dict[int, list[int]] = {
    1: [],
    2: [1],
    10: [2],  # heart
    11: [10],  # atrial septal defect
    12: [10],  # ventricular septal defect
    20: [2],  # limb
    21: [20],  # radius hypoplasia
    22: [20],  # thumb abnormality
    23: [22],  # triphalangeal thumb
    30: [2],  # nervous system
    31: [30],  # seizure
    32: [30],  # intellectual disability
    40: [2],  # skin
    41: [40],  # cafe-au-lait spots
    42: [40],  # freckling
}
DISEASES = [
    ("OMIM:1", "Holt-Oram", frozenset({11, 21, 23})),
    ("OMIM:2", "Heart only", frozenset({11, 12})),
    ("OMIM:3", "Limb only", frozenset({21, 22})),
    ("OMIM:4", "Epilepsy", frozenset({31})),
    ("OMIM:5", "Skin, compact", frozenset({41, 42})),
    ("OMIM:6", "Skin and much more", frozenset({41, 11, 12, 21, 22, 31, 32})),
    ("ORPHA:7", "Shared by a block of genes", frozenset({32})),
]
GENES = {
    "TBX5": frozenset({11, 21, 23}),
    "POOL": frozenset({11, 12, 21, 22}),  # two diseases, "Heart only" and "Limb only"
    "SCN1A": frozenset({31}),
    "NF1": frozenset({41, 42}),
    "BIG": frozenset({41, 11, 12, 21, 22, 31, 32}),
    **{f"ID{i:02d}": frozenset({32}) for i in range(12)},  # 12 genes tied on one disease
    "ORPHAN": frozenset({23, 12}),  # no disease fits: its own annotations stand in
}


def _ancestors(term: int) -> set[int]:
    out: set[int] = set()
    todo = list(PARENTS[term])
    while todo:
        t = todo.pop()
        if t not in out:
            out.add(t)
            todo += PARENTS[t]
    return out


def _lookup(phenotype: Phenotype) -> int | None:
    if phenotype.id is None:
        return None
    term = int(phenotype.id.split(":")[1])
    return term if term in PARENTS else None


TABLES = AnnotationTables(
    version="fixture",
    ancestors=_ancestors,
    diseases=DISEASES,
    genes=GENES,
    lookup=_lookup,
    term_name=lambda t: f"term {t}",
)


def _hp(term: int) -> str:
    return f"HP:{term:07d}"


def _item(present: list[int], excluded: list[int] = ()) -> dict:
    case = Case.model_validate(
        {
            "id": "hand-made",
            "present": [{"id": _hp(t), "label": f"term {t}"} for t in present],
            "excluded": [{"id": _hp(t), "label": f"term {t}"} for t in excluded],
            "gene": "UNUSED",
        }
    )
    return {"messages": render_messages(case), "gene": "REFERENCE-NOT-READ"}


@pytest.fixture(scope="module")
def index() -> DiseaseIndex:
    return DiseaseIndex(TABLES)


@pytest.fixture(scope="module")
def pooled() -> DiseaseIndex:
    return DiseaseIndex(TABLES, pooled=True)


def _rank(model: HpoDiseaseRanker, present: list[int], excluded: list[int] = ()) -> list[str]:
    return model.answer(_item(present, excluded))["genes"]


def test_a_disease_links_to_every_gene_holding_all_its_terms() -> None:
    genes = [frozenset({1, 2, 3}), frozenset({2, 3}), frozenset({4})]
    diseases = [frozenset({2, 3}), frozenset({1, 2}), frozenset({4, 5}), frozenset()]
    assert link_diseases(genes, diseases) == [[0, 1], [0], []]


def test_genes_link_to_their_diseases_and_a_gene_without_one_keeps_its_own(index: DiseaseIndex) -> None:
    def diseases_of(gene: str) -> set[str]:
        return {index.unit_ids[u] for u in index.gene_units[index.gene_names.index(gene)]}

    assert diseases_of("POOL") == {"OMIM:2", "OMIM:3"}
    assert diseases_of("TBX5") == {"OMIM:1"}
    # a disease whose terms a gene holds links to it (hpo3 keeps no gene-disease links)
    assert diseases_of("BIG") == {"OMIM:2", "OMIM:3", "OMIM:4", "OMIM:6", "ORPHA:7"}
    assert diseases_of("ORPHAN") == {"genes:ORPHAN"}


def test_implied_score_is_the_mean_ic_of_the_case_terms_a_disease_implies(index: DiseaseIndex) -> None:
    # IC over the 8 units (7 linked diseases and ORPHAN's own annotations)
    units = len(index.unit_ids)
    assert units == 8

    def ic(term: int) -> float:
        holding = sum(term in set().union(*({t} | _ancestors(t) for t in u)) for u in _unit_terms(index))
        return -math.log(holding / units)

    scores = index.unit_scores([11, 31], alpha=0.0, beta=0.0)
    by_id = dict(zip(index.unit_ids, scores, strict=True))
    assert by_id["OMIM:1"] == pytest.approx(ic(11) / 2)  # Holt-Oram implies the ASD only
    assert by_id["OMIM:6"] == pytest.approx((ic(11) + ic(31)) / 2)
    assert by_id["OMIM:5"] == pytest.approx(0.0)
    assert ic(31) > ic(11) > 0


def _unit_terms(index: DiseaseIndex) -> list[frozenset[int]]:
    known = {d[0]: d[2] for d in DISEASES}
    return [known.get(u, GENES["ORPHAN"]) for u in index.unit_ids]


def test_a_gene_ranks_by_its_best_disease_not_its_pooled_annotations(
    index: DiseaseIndex, pooled: DiseaseIndex
) -> None:
    # ASD + radius hypoplasia + VSD: POOL's pooled bag holds all three, but no disease of POOL
    # has both heart and limb; TBX5's one disease (Holt-Oram) has both.
    case = [11, 21, 12]
    by_disease = _rank(HpoDiseaseImplied(index=index), case)
    by_gene = _rank(HpoGeneImplied(index=pooled), case)
    assert by_disease.index("TBX5") < by_disease.index("POOL")
    assert by_gene.index("POOL") < by_gene.index("TBX5")


def test_partial_credit_for_a_near_term(index: DiseaseIndex) -> None:
    # triphalangeal thumb (23) is more specific than "Limb only"'s thumb abnormality (22): not
    # implied, but its Resnik best match is 22 itself
    limb = index.unit_ids.index("OMIM:3")
    plain = index.unit_scores([23], alpha=0.0, beta=0.0)
    partial = index.unit_scores([23], alpha=1.0, beta=0.0)
    row = index.terms.index(22)
    assert plain[limb] == 0.0
    assert partial[limb] == pytest.approx(index.ic[row], abs=1 / index.ic_scale)
    assert partial[limb] > 0


def test_the_disease_side_prefers_the_disease_the_case_describes(index: DiseaseIndex) -> None:
    # cafe-au-lait spots: NF1's compact disease and BIG's large one imply it equally
    implied = HpoDiseaseImplied(index=index)
    genes, _ = implied.scores([41])
    names = index.gene_names
    nf1, big = names.index("NF1"), names.index("BIG")
    assert genes[nf1] == genes[big] == genes.max()
    assert expected_hits(genes, nf1, [1, 2]) == {1: 0.5, 2: 1.0}
    full, _ = HpoDiseaseRanker(index=index).scores([41])
    assert full[nf1] > full[big]
    assert _rank(HpoDiseaseRanker(index=index), [41])[:2] == ["NF1", "BIG"]


def test_ties_cost_the_expected_rank_and_are_not_broken_by_name_or_order(index: DiseaseIndex) -> None:
    model = HpoDiseaseRanker(index=index, top_k=50)
    genes, _ = model.scores([32])  # intellectual disability: the ID genes (and BIG) share ORPHA:7
    names = index.gene_names
    first = names.index("ID00")
    block = {names[i] for i in np.flatnonzero(genes == genes[first])}
    assert block == {f"ID{i:02d}" for i in range(12)} | {"BIG"}
    better = int((genes > genes[first]).sum())
    assert better == 0
    assert expected_hits(genes, first, [1, 4, 13, 14]) == {1: 1 / 13, 4: 4 / 13, 13: 1.0, 14: 1.0}
    ranked = _rank(model, [32])
    in_block = [g for g in ranked if g in block]
    assert ranked[:13] == in_block  # a contiguous block at the top
    assert in_block != sorted(in_block)  # not alphabetical (the genes' input order)
    assert _rank(model, [32]) == ranked  # reproducible
    # another case with the same scores for the block shuffles it differently
    assert [g for g in _rank(model, [32, 30]) if g in block] != in_block


def test_order_genes_keeps_score_order_and_cuts_at_top_k() -> None:
    scores = np.array([0.5, 2.0, 1.0, 2.0, 0.1])
    order = order_genes(scores, [7], top_k=3)
    assert sorted(order[:2]) == [1, 3] and order[2] == 2
    assert order_genes(scores, [7], top_k=10)[2:] == [2, 0, 4]


def test_excluded_terms_neither_promote_nor_sink_a_gene(index: DiseaseIndex) -> None:
    model = HpoDiseaseRanker(index=index)
    plain = model.answer(_item([11, 21]))
    assert plain["genes"][0] == "TBX5"
    # excluding TBX5's own features (the textbook penalty would sink it) or other genes'
    # features (rewarding them would promote those) changes nothing
    for excluded in ([23, 12], [41, 42, 31], [11]):
        assert model.answer(_item([11, 21], excluded)) == plain


def test_answers_are_the_llm_json_shape(index: DiseaseIndex) -> None:
    model = HpoDiseaseRanker(index=index, top_k=5)
    outputs = model.generate([_item([11, 21, 23]), _item([41, 42])], n=2)
    assert [len(o) for o in outputs] == [2, 2]
    answer = json.loads(outputs[0][0])
    assert set(answer) == {"reasoning", "genes"} and len(answer["genes"]) == 5
    assert answer["genes"][0] == "TBX5" and "Holt-Oram" in answer["reasoning"]
    assert json.loads(outputs[1][0])["genes"][0] == "NF1"


def test_unknown_terms_are_skipped_and_an_empty_case_gets_no_genes(index: DiseaseIndex) -> None:
    model = HpoDiseaseRanker(index=index)
    answer = model.answer(_item([11, 21, 9999]))
    assert answer["genes"][0] == "TBX5" and _hp(9999) in answer["reasoning"]
    assert model.answer(_item([9999]))["genes"] == []
    with pytest.raises(ValueError, match="messages"):
        model.answer({"gene": "TBX5"})


def test_candidates_name_the_best_disease_and_the_phenotypes_it_explains(index: DiseaseIndex) -> None:
    top = HpoDiseaseRanker(index=index).candidates(_item([11, 21, 31]), 2)
    assert top[0]["gene"] == "BIG"  # the only disease with heart, limb and seizure
    assert top[0]["disease_id"] == "OMIM:6"
    assert top[0]["explains"] == ["term 11", "term 21", "term 31"]
    assert top[1]["gene"] == "TBX5" and top[1]["explains"] == ["term 11", "term 21"]


def test_top_k_setting(index: DiseaseIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="top_k"):
        HpoDiseaseRanker(index=index, top_k=0)
    monkeypatch.setenv("RFTKIT_HPO_TOP_K", "3")
    assert len(HpoDiseaseRanker(index=index).answer(_item([32]))["genes"]) == 3


def test_rank_eval_scores_answers_like_the_grader_and_ties_by_expectation(
    index: DiseaseIndex, example_script: Callable[[str], ModuleType]
) -> None:
    rank_eval = example_script("rank_eval")
    model = HpoDiseaseRanker(index=index, top_k=5)
    items = [
        {**_item([11, 21, 23]), "gene": "TBX5"},  # first
        {**_item([32]), "gene": "ID03"},  # in a block of 13 tied genes at the top
        {**_item([41]), "gene": "NOTANNOTATED", "synonyms": []},  # unreachable
        {**_item([41]), "gene": "x", "synonyms": ["nf1"]},  # found through a synonym
    ]
    rows, wall_ms, cpu_ms = rank_eval.score_model(model, items)
    assert rows[0] == dict.fromkeys(["top1", "top5", "topmax", "exp_top1", "exp_top5", "exp_topmax"], 1.0)
    assert rows[1]["exp_top1"] == pytest.approx(1 / 13) and rows[1]["exp_top5"] == pytest.approx(5 / 13)
    assert rows[2]["topmax"] == 0.0 and rows[2]["exp_top1"] == 0.0
    assert rows[3]["top1"] == 1.0
    assert wall_ms > 0 and cpu_ms >= 0
