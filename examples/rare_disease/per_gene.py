"""Read an `rft eval` run per gene: per-case and per-gene (macro) figures with 95 % intervals.

    python examples/rare_disease/per_gene.py EVAL_DIR/results.jsonl DATA.jsonl

Genes are very unevenly represented, so the per-case figures `rft eval` prints are also
averaged here per gene (each gene's cases count once in all), and restricted to the reachable
cases: those whose causal gene has HPO gene annotations (the only ones an annotation-based
ranker can find). The intervals come from a bootstrap over genes (cases of one gene are not
independent), 1,000 resamples with a fixed seed.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("top1", "top5", "topmax")
VIEWS = ("per_case", "per_gene", "annotated_genes_only")


def _mean(rows: list[dict[str, float]], metrics: Sequence[str]) -> dict[str, float]:
    return {m: sum(r[m] for r in rows) / len(rows) if rows else 0.0 for m in metrics}


def figures(
    rows: Iterable[tuple[str, dict[str, float]]],
    reachable: set[str] | frozenset[str],
    metrics: Sequence[str] = METRICS,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-case, per-gene and reachable-only means of each metric, with gene-bootstrap intervals.

    `rows` holds (causal gene, {metric: hit in [0, 1]}) per case; `reachable` the genes a
    ranker can name at all.
    """
    rows = list(rows)
    by_gene: dict[str, list[dict[str, float]]] = defaultdict(list)
    for gene, row in rows:
        by_gene[gene].append(row)
    genes = sorted(by_gene)
    out: dict[str, Any] = {
        "cases": len(rows),
        "genes": len(genes),
        "unreachable_cases": sum(gene not in reachable for gene, _ in rows),
        "unreachable_genes": sum(gene not in reachable for gene in genes),
        "per_case": _mean([r for _, r in rows], metrics),
        "per_gene": {
            m: float(np.mean([_mean(by_gene[g], [m])[m] for g in genes])) if genes else 0.0 for m in metrics
        },
        "annotated_genes_only": _mean([r for g, r in rows if g in reachable], metrics),
        "ci": {view: {} for view in VIEWS},
    }
    if not genes:
        return out
    counts = np.array([len(by_gene[g]) for g in genes], dtype=float)
    is_reachable = np.array([g in reachable for g in genes])
    uniform = [1 / len(genes)] * len(genes)
    weights = np.random.default_rng(seed).multinomial(len(genes), uniform, size=resamples)
    for m in metrics:
        sums = np.array([sum(r[m] for r in by_gene[g]) for g in genes])
        views = {
            "per_case": (weights @ sums) / (weights @ counts),
            "per_gene": (weights @ (sums / counts)) / len(genes),
            "annotated_genes_only": (weights @ (sums * is_reachable))
            / np.maximum(weights @ (counts * is_reachable), 1),
        }
        for view, samples in views.items():
            low, high = np.percentile(samples, [2.5, 97.5])
            out["ci"][view][m] = [float(low), float(high)]
    return out


def summarize(results: Path, data: Path) -> dict[str, dict[str, Any]]:
    """Per model: per-case, per-gene (macro) and annotated-only metrics, with intervals."""
    from rftkit.plugins.models.hpo_index import hpo_index

    genes = [json.loads(line)["gene"] for line in data.read_text().splitlines() if line.strip()]
    annotated = frozenset(hpo_index().gene_ids)
    by_model: dict[str, list[tuple[str, dict[str, float]]]] = defaultdict(list)
    for line in results.read_text().splitlines():
        record = json.loads(line)
        by_model[record["model"]].append(
            (genes[record["item_index"]], {m: float(bool(record.get(m))) for m in METRICS})
        )
    return {model: figures(rows, annotated) for model, rows in by_model.items()}


def format_cell(value: float, interval: Sequence[float] | None) -> str:
    """`41.2 % (39.0–43.5)`."""
    if not interval:
        return f"{100 * value:.1f} %"
    return f"{100 * value:.1f} % ({100 * interval[0]:.1f}–{100 * interval[1]:.1f})"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    for model, result in summarize(Path(argv[0]), Path(argv[1])).items():
        print(
            f"{model}: {result['cases']} cases, {result['genes']} genes, "
            f"{result['unreachable_cases']} cases unreachable (gene without HPO annotation)"
        )
        for view in VIEWS:
            ci = result["ci"][view]
            cells = "  ".join(f"{m} {format_cell(result[view][m], ci.get(m))}" for m in METRICS)
            print(f"  {view:<22} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
