"""Read an `rft eval` run per gene: macro-averaged top-1/top-5/top-max, and the reachable subset.

    python examples/rare_disease/per_gene.py EVAL_DIR/results.jsonl DATA.jsonl

Genes are very unevenly represented, so the per-case figures `rft eval` prints are also
averaged here per gene (each gene's cases count once in all), and restricted to cases whose
causal gene has HPO gene annotations (the only ones an annotation-based ranker can find).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from rftkit.plugins.models.hpo_index import hpo_index

METRICS = ("top1", "top5", "topmax")


def _mean(rows: list[dict[str, bool]]) -> dict[str, float]:
    return {m: sum(r[m] for r in rows) / len(rows) if rows else 0.0 for m in METRICS}


def summarize(results: Path, data: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Per model: per-case, per-gene (macro) and annotated-only metrics."""
    genes = [json.loads(line)["gene"] for line in data.read_text().splitlines() if line.strip()]
    annotated = hpo_index().gene_ids
    by_model: dict[str, list[tuple[str, dict[str, bool]]]] = defaultdict(list)
    for line in results.read_text().splitlines():
        record = json.loads(line)
        by_model[record["model"]].append(
            (genes[record["item_index"]], {m: bool(record.get(m)) for m in METRICS})
        )
    out = {}
    for model, rows in by_model.items():
        per_gene: dict[str, list[dict[str, bool]]] = defaultdict(list)
        for gene, row in rows:
            per_gene[gene].append(row)
        gene_means = [_mean(r) for r in per_gene.values()]
        out[model] = {
            "per_case": _mean([r for _, r in rows]),
            "per_gene": {m: sum(g[m] for g in gene_means) / len(gene_means) for m in METRICS},
            "annotated_genes_only": _mean([r for g, r in rows if g in annotated]),
        }
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    for model, views in summarize(Path(argv[0]), Path(argv[1])).items():
        for view, metrics in views.items():
            cells = "  ".join(f"{m} {v:.3f}" for m, v in metrics.items())
            print(f"{model:<16} {view:<22} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
