"""Score the classical rankers on build.py data: figures with intervals, per-gene folds, speed.

    python examples/rare_disease/rank_eval.py DATA.jsonl [DATA.jsonl ...] [--model NAME ...]
        [--folds K] [--seed S] [--json OUT.json]

Each `--model` is an `rftkit.models` entry point (default: every `hpo-baseline*` one). Every
case is answered through the model's `answer` (the text `rft eval` grades) and scored like the
`ranked_list` grader: top-1, top-5 and top-max (anywhere in the list of 50). Rankers that
expose their gene scores are also scored by the *expected* hit over a tied block (the causal
gene tied with t genes behind b better ones is within the top k with probability
clip((k - b) / t, 0, 1)), which is what their case-seeded tie shuffle gives on average.

Printed per model: cases, genes, unreachable cases (causal gene without HPO annotation),
per-case and per-gene (macro) figures with gene-bootstrap 95 % intervals, the figures on the
reachable cases, milliseconds per case after load, and with `--folds K` the per-case figures on
each of K gene-grouped folds (build.py's `gene_fold`), for choosing settings on the non-test
genes (pass train.jsonl and valid.jsonl) without looking at the test split.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
METRICS = ("top1", "top5", "topmax")
EXPECTED = ("exp_top1", "exp_top5", "exp_topmax")


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rare_disease_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_items(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]


def _symbols(item: dict[str, Any]) -> set[str]:
    return {str(s).upper() for s in [item["gene"], *item.get("synonyms", [])]}


def score_model(model: Any, items: list[dict[str, Any]]) -> tuple[list[dict[str, float]], float, float]:
    """Per case, the hits of the model's answer (and expected hits where it has gene scores).

    Also the wall-clock and the CPU milliseconds per case of `answer` (on a shared machine the
    CPU time is the steadier of the two).
    """
    from rftkit.plugins.models.hpo_disease import HpoDiseaseRanker, expected_hits

    rows: list[dict[str, float]] = []
    has_scores = isinstance(model, HpoDiseaseRanker)
    gene_at = {g.upper(): i for i, g in enumerate(model.index.gene_names)} if has_scores else {}
    elapsed = cpu = 0.0
    for item in items:
        began, began_cpu = time.perf_counter(), time.process_time()
        genes = [g.upper() for g in model.answer(item)["genes"]]
        elapsed += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        symbols = _symbols(item)
        rank = next((i for i, g in enumerate(genes) if g in symbols), None)
        row = {
            "top1": float(rank is not None and rank < 1),
            "top5": float(rank is not None and rank < 5),
            "topmax": float(rank is not None),
        }
        if has_scores:
            index = gene_at.get(item["gene"].upper())
            present = model.present_terms(item).terms
            if index is None or not present:
                row.update(dict.fromkeys(EXPECTED, 0.0))
            else:
                scores, _ = model.scores(present)
                hits = expected_hits(scores, index, (1, 5, model.top_k))
                row.update({"exp_top1": hits[1], "exp_top5": hits[5], "exp_topmax": hits[model.top_k]})
        rows.append(row)
    return rows, 1000 * elapsed / max(1, len(items)), 1000 * cpu / max(1, len(items))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="+", help="JSONL files written by build.py")
    parser.add_argument("--model", action="append", default=None, help="an rftkit.models entry point")
    parser.add_argument("--folds", type=int, default=0, help="also report K gene-grouped folds")
    parser.add_argument("--seed", default="0", help="the fold seed (build.py's --seed)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    from rftkit.plugins.models.base import model_plugins
    from rftkit.plugins.models.hpo_index import hpo_index

    plugins = model_plugins()
    names = args.model or sorted(n for n in plugins if n.startswith("hpo-baseline"))
    unknown = [n for n in names if n not in plugins]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; installed: {sorted(plugins)}")
    try:
        items = read_items(args.data)
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        print(f"error: cannot read the data: {exc}", file=sys.stderr)
        return 2
    per_gene, build = _script("per_gene"), _script("build")
    reachable = frozenset(hpo_index().gene_ids)
    genes = [item["gene"] for item in items]
    report: dict[str, Any] = {"data": [str(p) for p in args.data], "models": {}}
    for name in names:
        began = time.perf_counter()
        model = plugins[name]()
        load_s = time.perf_counter() - began
        rows, ms, cpu_ms = score_model(model, items)
        metrics = [m for m in (*METRICS, *EXPECTED) if m in rows[0]] if rows else list(METRICS)
        result = per_gene.figures(zip(genes, rows, strict=True), reachable, metrics)
        result.update({"load_s": load_s, "ms_per_case": ms, "cpu_ms_per_case": cpu_ms})
        if args.folds:
            folds = [build.gene_fold(g, args.seed, args.folds) for g in genes]
            result["folds"] = []
            for k in range(args.folds):
                chosen = [(g, r) for g, r, f in zip(genes, rows, folds, strict=True) if f == k]
                fold = per_gene.figures(chosen, reachable, metrics, resamples=1)
                result["folds"].append({"cases": fold["cases"], "per_case": fold["per_case"]})
        report["models"][name] = result
        _print(name, result, metrics)
        model.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _print(name: str, result: dict[str, Any], metrics: list[str]) -> None:
    cell = _script("per_gene").format_cell
    print(
        f"{name}: {result['cases']} cases, {result['genes']} genes, "
        f"{result['unreachable_cases']} unreachable; "
        f"load {result['load_s']:.1f} s, {result['ms_per_case']:.2f} ms a case "
        f"({result['cpu_ms_per_case']:.2f} ms CPU)"
    )
    for view in ("per_case", "per_gene", "annotated_genes_only"):
        ci = result["ci"][view]
        print(f"  {view:<22} " + "  ".join(f"{m} {cell(result[view][m], ci.get(m))}" for m in metrics))
    for k, fold in enumerate(result.get("folds", [])):
        figures = "  ".join(f"{m} {100 * fold['per_case'][m]:.1f} %" for m in metrics)
        print(f"  fold {k} ({fold['cases']} cases)  {figures}")
    if result.get("folds"):
        top1 = [f["per_case"]["top1"] for f in result["folds"]]
        print(f"  folds top1 mean {100 * np.mean(top1):.1f} %, sd {100 * np.std(top1, ddof=1):.1f}")


if __name__ == "__main__":
    sys.exit(main())
