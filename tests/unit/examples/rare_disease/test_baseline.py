"""The HPO rankers on hand-made cases, with the real HPO from hpo3.

`HpoBaseline` is the older gene-level Resnik ranker (`hpo-baseline-resnik`, and
`hpo-baseline-present-only`); the default `hpo-baseline` is `HpoDiseaseRanker`, tested here on
the real ontology and in test_disease_ranker.py on a hand-built one.
"""

from __future__ import annotations

import json

import pytest
from rftkit.plugins.models.base import model_plugins
from rftkit.plugins.models.hpo_baseline import HpoBaseline, HpoBaselinePresentOnly
from rftkit.plugins.models.hpo_case import Case, Phenotype, render_messages
from rftkit.plugins.models.hpo_disease import HpoDiseaseImplied, HpoDiseaseRanker, HpoGeneImplied


def _item(present: list[tuple[str, str]], excluded: list[tuple[str, str]] = ()) -> dict:
    case = Case.model_validate(
        {
            "id": "hand-made",
            "sex": "MALE",
            "age": "P10Y",
            "present": [{"id": i, "label": label} for i, label in present],
            "excluded": [{"id": i, "label": label} for i, label in excluded],
            "gene": "UNUSED",
        }
    )
    return {"messages": render_messages(case), "gene": "REFERENCE-NOT-READ"}


HOLT_ORAM = [
    ("HP:0001631", "Atrial septal defect"),
    ("HP:0002984", "Hypoplasia of the radius"),
    ("HP:0001191", "Abnormal carpal morphology"),
    ("HP:0031546", "Cardiac conduction abnormality"),
]
NF1 = [
    ("HP:0007565", "Multiple cafe-au-lait spots"),
    ("HP:0001067", "Neurofibroma"),
    ("HP:0009737", "Lisch nodules"),
    ("HP:0000997", "Axillary freckling"),
    ("HP:0009732", "Plexiform neurofibroma"),
]
MARFAN = [
    ("HP:0001166", "Arachnodactyly"),
    ("HP:0001083", "Ectopia lentis"),
    ("HP:0002647", "Aortic dissection"),
    ("HP:0000545", "Myopia"),
]


@pytest.fixture(scope="module")
def model() -> HpoBaseline:
    return HpoBaseline(excluded_weight=1.0, top_k=50)


# Marfan features are annotated to the Loeys-Dietz genes too: FBN1 ties with them.
@pytest.mark.parametrize(
    ("present", "gene", "within"), [(HOLT_ORAM, "TBX5", 1), (NF1, "NF1", 1), (MARFAN, "FBN1", 5)]
)
def test_clear_cut_cases_rank_their_gene_highly(
    model: HpoBaseline, present: list, gene: str, within: int
) -> None:
    answer = model.answer(_item(present))
    assert gene in answer["genes"][:within]
    assert len(answer["genes"]) == 50 and len(set(answer["genes"])) == 50


def test_outputs_are_json_in_the_response_format(model: HpoBaseline) -> None:
    outputs = model.generate([_item(HOLT_ORAM), _item(NF1)], n=3)
    assert [len(o) for o in outputs] == [3, 3] and len(set(outputs[1])) == 1
    answer = json.loads(outputs[1][0])
    assert set(answer) == {"reasoning", "genes"} and isinstance(answer["reasoning"], str)
    assert answer["genes"][0] == "NF1"


def test_unknown_terms_are_skipped_not_fatal(model: HpoBaseline) -> None:
    answer = model.answer(_item([*NF1, ("HP:9999999", "A term from a newer HPO")]))
    assert answer["genes"][0] == "NF1"
    assert "HP:9999999" in answer["reasoning"]
    nothing = model.answer(_item([("HP:9999999", "Not a term at all")]))
    assert nothing["genes"] == []


def test_labels_without_ids_are_looked_up(model: HpoBaseline) -> None:
    text = "Present phenotypes:\n" + "".join(f"- {label}\n" for _, label in HOLT_ORAM)
    answer = model.answer({"messages": [{"role": "user", "content": text}]})
    assert answer["genes"][0] == "TBX5"


def test_excluded_terms_count_against_a_gene_when_weighted() -> None:
    # Holt-Oram without the radius: TBX5 leads; excluding two TBX5 features pushes it down.
    present = [HOLT_ORAM[0], HOLT_ORAM[3], ("HP:0001199", "Triphalangeal thumb")]
    excluded = [("HP:0009777", "Absent thumb"), ("HP:0001629", "Ventricular septal defect")]
    weighted, ignoring = HpoBaseline(excluded_weight=2.0), HpoBaselinePresentOnly()
    assert ignoring.excluded_weight == 0.0
    plain = weighted.answer(_item(present))["genes"]
    assert plain[0] == "TBX5"
    penalised = weighted.answer(_item(present, excluded))["genes"]
    assert "TBX5" not in penalised[:5]
    assert ignoring.answer(_item(present, excluded))["genes"] == plain


def test_excluded_penalty_lowers_the_score_by_the_weight() -> None:
    model = HpoBaseline(excluded_weight=0.5)
    index = model.index
    present = index.resolve([Phenotype(id=i) for i, _ in NF1]).terms
    nf1, fbn1 = index.gene_names.index("NF1"), index.gene_names.index("FBN1")
    base = index.scores(present, [], 0.5)
    lowered = index.scores(present, [present[0]], 0.5)  # cafe-au-lait spots: NF1 has it, FBN1 not
    assert lowered[nf1] == pytest.approx(base[nf1] - 0.5)
    assert lowered[fbn1] == pytest.approx(base[fbn1])


def test_the_plugins_are_registered() -> None:
    plugins = model_plugins()
    assert plugins["hpo-baseline"] is HpoDiseaseRanker
    assert plugins["hpo-baseline-disease-implied"] is HpoDiseaseImplied
    assert plugins["hpo-baseline-gene-implied"] is HpoGeneImplied
    assert plugins["hpo-baseline-resnik"] is HpoBaseline
    assert plugins["hpo-baseline-present-only"] is HpoBaselinePresentOnly


@pytest.fixture(scope="module")
def default() -> HpoDiseaseRanker:
    return HpoDiseaseRanker(top_k=50)


@pytest.mark.parametrize(("present", "gene"), [(HOLT_ORAM, "TBX5"), (NF1, "NF1"), (MARFAN, "FBN1")])
def test_the_default_ranks_clear_cut_cases_first(default: HpoDiseaseRanker, present: list, gene: str) -> None:
    answer = default.answer(_item(present))
    assert answer["genes"][0] == gene
    assert len(answer["genes"]) == 50 and len(set(answer["genes"])) == 50


def test_the_default_ignores_excluded_terms_on_the_real_ontology(default: HpoDiseaseRanker) -> None:
    present = [HOLT_ORAM[0], HOLT_ORAM[3], ("HP:0001199", "Triphalangeal thumb")]
    excluded = [("HP:0009777", "Absent thumb"), ("HP:0001629", "Ventricular septal defect")]
    plain = default.answer(_item(present))
    assert plain["genes"][0] == "TBX5"
    assert default.answer(_item(present, excluded)) == plain


def test_the_default_links_genes_to_their_omim_diseases(default: HpoDiseaseRanker) -> None:
    index = default.index
    units = index.gene_units[index.gene_names.index("TBX5")]
    assert "OMIM:142900" in {index.unit_ids[u] for u in units}  # Holt-Oram syndrome
    candidates = default.candidates(_item(HOLT_ORAM), 3)
    assert candidates[0]["gene"] == "TBX5" and "Atrial septal defect" in candidates[0]["explains"]


def test_bad_top_k_and_missing_messages_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="top_k"):
        HpoBaseline(top_k=0)
    monkeypatch.setenv("RFTKIT_HPO_TOP_K", "many")
    with pytest.raises(ValueError, match="RFTKIT_HPO_TOP_K"):
        HpoBaseline()
    monkeypatch.setenv("RFTKIT_HPO_TOP_K", "5")
    assert len(HpoBaseline().answer(_item(NF1))["genes"]) == 5
    with pytest.raises(ValueError, match="messages"):
        HpoBaseline().answer({"gene": "NF1"})
