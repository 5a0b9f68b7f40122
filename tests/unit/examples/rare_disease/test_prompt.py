"""The case report an LLM (and the baseline) reads, and reading it back."""

from __future__ import annotations

import pytest
from rftkit.plugins.models.hpo_case import (
    CANDIDATES_HEADER,
    EXCLUDED_HEADER,
    INSTRUCTION,
    PRESENT_HEADER,
    RERANK_INSTRUCTION,
    Candidate,
    Case,
    Phenotype,
    format_age,
    parse_case_report,
    render_messages,
    user_text,
)

CASE = Case.model_validate(
    {
        "id": "PMID_1_A",
        "sex": "FEMALE",
        "age": "P3Y6M",
        "present": [
            {"id": "HP:0001631", "label": "Atrial septal defect"},
            {"id": "HP:0002984", "label": "Hypoplasia of the radius"},
        ],
        "excluded": [{"id": "HP:0001629", "label": "Ventricular septal defect"}],
        "gene": "TBX5",
        "disease": {"id": "OMIM:142900", "label": "Holt-Oram syndrome"},
    }
)


def test_the_report_has_sex_age_terms_and_the_instruction() -> None:
    system, user = render_messages(CASE)
    assert system["role"] == "system" and "genes" in system["content"]
    assert user["role"] == "user"
    text = user["content"]
    assert text.startswith("Patient: female, age 3 years 6 months.")
    assert "- Atrial septal defect (HP:0001631)\n- Hypoplasia of the radius (HP:0002984)" in text
    assert text.index(PRESENT_HEADER) < text.index("Atrial") < text.index(EXCLUDED_HEADER)
    assert text.index(EXCLUDED_HEADER) < text.index("- Ventricular septal defect (HP:0001629)")
    assert "most likely first" in text and '"genes"' in text and '"reasoning"' in text
    # the answer and the disease never reach the prompt
    assert "TBX5" not in text and "Holt-Oram" not in text


def test_no_excluded_terms_reads_none_recorded() -> None:
    case = CASE.model_copy(update={"excluded": [], "sex": "UNKNOWN_SEX", "age": None})
    text = render_messages(case)[1]["content"]
    assert text.startswith("Patient: sex unknown, age unknown.")
    assert f"{EXCLUDED_HEADER}\n- none recorded" in text
    assert parse_case_report(text).excluded == []


@pytest.mark.parametrize(
    ("age", "words"),
    [("P1Y", "age 1 year"), ("P4M", "age 4 months"), ("P2W3D", "age 2 weeks 3 days"), ("P0D", "age 0 days")],
)
def test_format_age(age: str, words: str) -> None:
    assert format_age(age) == words


def test_parse_round_trips_the_rendered_report() -> None:
    query = parse_case_report(user_text(render_messages(CASE)))
    assert query.present == CASE.present
    assert query.excluded == CASE.excluded


def test_parse_reads_labels_without_ids_and_bare_id_lists() -> None:
    text = (
        f"{PRESENT_HEADER}\n- Seizure\n- Microcephaly (HP:0000252)\n\n{EXCLUDED_HEADER}\n- Ataxia\n\nAnswer."
    )
    query = parse_case_report(text)
    assert query.present == [Phenotype(label="Seizure"), Phenotype(id="HP:0000252", label="Microcephaly")]
    assert query.excluded == [Phenotype(label="Ataxia")]
    bare = parse_case_report("Phenotypes HP:0001250, HP:0000252 and HP:0001250 again")
    assert [p.id for p in bare.present] == ["HP:0001250", "HP:0000252"]


def test_user_text_reads_content_parts() -> None:
    messages = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": [{"type": "text", "text": "HP:0001250"}]},
    ]
    assert user_text(messages) == "HP:0001250"


def test_odd_but_usable_cases_are_still_asked() -> None:
    case = Case.model_validate({"id": "y", "gene": " NF1 ", "sex": None, "age": "newborn", "present": []})
    text = render_messages(case)[1]["content"]
    assert case.gene == "NF1"
    assert text.startswith("Patient: sex unknown, age newborn.")
    assert f"{PRESENT_HEADER}\n- none recorded" in text
    assert parse_case_report(text).present == []


CANDIDATES = [
    Candidate(
        gene="TBX5",
        disease="Holt-Oram syndrome",
        explains=["Atrial septal defect", "Hypoplasia of the radius"],
    ),
    Candidate(gene="SALL4", disease="Duane-radial ray syndrome", explains=["Hypoplasia of the radius"]),
    Candidate(gene="NKX2-5", disease="Atrial septal defect 7", explains=[]),
]


def test_the_rerank_variant_lists_the_candidates_with_what_each_explains() -> None:
    text = render_messages(CASE, CANDIDATES)[1]["content"]
    assert text.index(EXCLUDED_HEADER) < text.index(CANDIDATES_HEADER) < text.index(RERANK_INSTRUCTION)
    assert "1. TBX5: Holt-Oram syndrome. Explains: Atrial septal defect; Hypoplasia of the radius" in text
    assert "2. SALL4: Duane-radial ray syndrome. Explains: Hypoplasia of the radius" in text
    assert "3. NKX2-5: Atrial septal defect 7. Explains: none exactly" in text
    assert INSTRUCTION not in text and '"genes"' in text
    # the phenotypes read back are the case's, not the candidates' explanations
    query = parse_case_report(text)
    assert query.present == CASE.present and query.excluded == CASE.excluded
    assert render_messages(CASE, [])[1]["content"].endswith(RERANK_INSTRUCTION)
    assert render_messages(CASE)[1]["content"] == render_messages(CASE, None)[1]["content"]
