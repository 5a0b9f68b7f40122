"""The rare-disease case report: phenopacket cases in, RFT chat messages out, and back.

`render_messages` writes the prompt an LLM (or the `hpo-baseline` ranker) answers;
`parse_case_report` reads present and excluded phenotypes back from that prompt, so the
classical baseline sees exactly what a model sees and never the reference fields.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HPO_ID = re.compile(r"HP:\d{7}")
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T.*)?$")

SYSTEM_PROMPT = (
    "You are a clinical geneticist. From a rare-disease patient's phenotypes, written as "
    "Human Phenotype Ontology (HPO) terms, you name the genes most likely to carry the "
    "causal variant."
)
PRESENT_HEADER = "Present phenotypes:"
EXCLUDED_HEADER = "Excluded phenotypes (looked for and not observed):"
INSTRUCTION = (
    "List the candidate genes as HGNC symbols, most likely first (up to 50), with a short "
    "explanation of your reasoning. Answer as JSON: "
    '{"reasoning": "<short explanation>", "genes": ["GENE1", "GENE2", ...]}.'
)

CANDIDATES_HEADER = (
    "Candidate genes from a classical phenotype-matching ranker, best first, each with the "
    "disease it best matches and the present phenotypes that disease explains:"
)
RERANK_INSTRUCTION = (
    "Rerank these candidates, most likely first (you may add other genes, up to 50 in all), "
    "with a short explanation of your reasoning. Answer as JSON: "
    '{"reasoning": "<short explanation>", "genes": ["GENE1", "GENE2", ...]}.'
)

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "genes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["reasoning", "genes"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "gene_ranking", "strict": True, "schema": RESPONSE_SCHEMA},
}

Sex = Literal["MALE", "FEMALE", "UNKNOWN_SEX", "OTHER_SEX"]
_SEX_WORDS = {"MALE": "male", "FEMALE": "female", "UNKNOWN_SEX": "sex unknown", "OTHER_SEX": "other sex"}


class Phenotype(BaseModel):
    """One HPO term as a case gives it (the id may be missing when read back from text)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    label: str = ""

    @field_validator("id")
    @classmethod
    def _hpo_id(cls, value: str | None) -> str | None:
        if value is not None and not HPO_ID.fullmatch(value):
            raise ValueError(f"not an HPO id (HP:0000000): {value!r}")
        return value


class Disease(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    label: str = ""


class Case(BaseModel):
    """One line of phenopackets.jsonl (see ../shared/data/README.md).

    Lenient where a case can still be asked: an unknown sex reads as unknown, an age that is
    not an ISO 8601 duration is shown as given, and a case may list no present phenotype.
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    sex: Sex = "UNKNOWN_SEX"
    age: str | None = None
    present: list[Phenotype] = Field(default_factory=list)
    excluded: list[Phenotype] = Field(default_factory=list)
    gene: str = Field(min_length=1)
    disease: Disease | None = None
    pmid: str | None = None
    cohort: str | None = None

    @field_validator("sex", mode="before")
    @classmethod
    def _known_sex(cls, value: Any) -> Any:
        return value if value in _SEX_WORDS else "UNKNOWN_SEX"

    @field_validator("gene")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("gene must be a gene symbol, got an empty string")
        return value.strip()


def format_age(age: str | None) -> str:
    """`P3Y6M` -> `3 years 6 months`; None -> `age unknown`."""
    if age is None:
        return "age unknown"
    match = _DURATION.fullmatch(age)
    if match is None:
        return f"age {age}"
    parts = [
        f"{int(n)} {unit}{'' if int(n) == 1 else 's'}"
        for n, unit in zip(match.groups(), ("year", "month", "week", "day"), strict=True)
        if n is not None and int(n) > 0
    ]
    return "age " + (" ".join(parts) if parts else "0 days")


def _term_line(term: Phenotype) -> str:
    return f"- {term.label} ({term.id})" if term.id else f"- {term.label}"


class Candidate(BaseModel):
    """One gene a classical ranker proposes, for the rerank prompt."""

    model_config = ConfigDict(extra="ignore")

    gene: str
    disease: str = ""
    explains: list[str] = Field(default_factory=list)


def _candidate_line(rank: int, candidate: Candidate) -> str:
    explains = "; ".join(candidate.explains) if candidate.explains else "none exactly"
    return f"{rank}. {candidate.gene}: {candidate.disease or 'no disease named'}. Explains: {explains}"


def render_case_report(case: Case, candidates: list[Candidate] | None = None) -> str:
    """The user message: sex, age, present and excluded phenotypes, and the instruction.

    With `candidates` (the rerank variant) a numbered list of a classical ranker's genes, each
    with its best-matching disease and the present phenotypes that disease explains, comes
    before the instruction, which then asks for a reranking.
    """
    lines = [f"Patient: {_SEX_WORDS[case.sex]}, {format_age(case.age)}.", "", PRESENT_HEADER]
    lines += [_term_line(t) for t in case.present] or ["- none recorded"]
    lines += ["", EXCLUDED_HEADER]
    lines += [_term_line(t) for t in case.excluded] or ["- none recorded"]
    if candidates is not None:
        lines += ["", CANDIDATES_HEADER]
        lines += [_candidate_line(i, c) for i, c in enumerate(candidates, start=1)] or ["(no candidates)"]
        lines += ["", RERANK_INSTRUCTION]
    else:
        lines += ["", INSTRUCTION]
    return "\n".join(lines)


def render_messages(case: Case, candidates: list[Candidate] | None = None) -> list[dict[str, str]]:
    """The chat messages of one RFT item (with `candidates`: the rerank variant)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": render_case_report(case, candidates)},
    ]


class CaseQuery(BaseModel):
    """What a ranker may use: the phenotypes read from the prompt."""

    present: list[Phenotype] = Field(default_factory=list)
    excluded: list[Phenotype] = Field(default_factory=list)


def _read_term(line: str) -> Phenotype | None:
    text = line.strip()
    if not text.startswith("- "):
        return None
    text = text[2:].strip()
    ids = HPO_ID.findall(text)
    label = re.sub(r"\s*\(?HP:\d{7}\)?\s*", " ", text).strip()
    if ids:
        return Phenotype(id=ids[-1], label=label)
    if not label or label == "none recorded":
        return None
    return Phenotype(label=label)


def parse_case_report(text: str) -> CaseQuery:
    """Read the present and excluded phenotypes from a case report.

    Sections start at the headers `render_case_report` writes; a term line is `- label (HP:id)`
    or `- label`. A text without the headers is read as a list of present HPO ids.
    """
    if PRESENT_HEADER not in text:
        return CaseQuery(present=[Phenotype(id=i) for i in dict.fromkeys(HPO_ID.findall(text))])
    query = CaseQuery()
    section: list[Phenotype] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == PRESENT_HEADER:
            section = query.present
        elif stripped == EXCLUDED_HEADER:
            section = query.excluded
        elif section is not None and stripped and not stripped.startswith("- "):
            section = None
        elif section is not None and (term := _read_term(stripped)) is not None:
            section.append(term)
    return query


def user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the user turns of a chat (content strings or OpenAI content parts)."""
    chunks: list[str] = []
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            chunks.append(content)
        elif isinstance(content, list):
            chunks += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(chunks)
