"""What a model did with the rerank prompt's candidate list, read from `rft eval` results.

    python examples/rare_disease/rerank_stats.py EVAL_DIR/results.jsonl [MORE/results.jsonl ...] [--json OUT]

For each model in the results (answers to `build.py --candidates N` prompts): how many
answers parse, how many genes an answer names, the share of named genes that are candidates
and of answers that name exactly the candidate set, the share whose first gene is candidate 1
and whose order is the list's order, the mean Kendall tau between the answer's order of the
candidates and the list's, and top-1 / top-5 / top-max as graded. Two reference rows come from
the candidate lists alone: `copy the list` (answer = the list) and `shuffled` (the candidates
in a uniformly random order; its figures are the exact expectations, 1/N of the list's top-N
hits at top-1).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rftkit.plugins.models.hpo_case import CANDIDATES_HEADER

_CANDIDATE = re.compile(r"^(\d+)\. ([^:\s]+):")


def _norm(symbol: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", symbol.upper())


def prompt_candidates(messages: Sequence[dict[str, str]]) -> list[str]:
    """The numbered candidate genes of a rerank prompt's user message, in the list's order."""
    text = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    if CANDIDATES_HEADER not in text:
        return []
    out = []
    for line in text.split(CANDIDATES_HEADER, 1)[1].splitlines():
        match = _CANDIDATE.match(line.strip())
        if match:
            out.append(match.group(2))
        elif out and not line.strip():
            break
    return out


def kendall_tau(order: Sequence[str], reference: Sequence[str]) -> float | None:
    """Kendall tau of the candidates' order in `order` against `reference` (None under 2 shared)."""
    position = {g: i for i, g in enumerate(reference)}
    ranks = [position[g] for g in order if g in position]
    pairs = [(a, b) for i, a in enumerate(ranks) for b in ranks[i + 1 :]]
    if not pairs:
        return None
    return sum(1 if a < b else -1 for a, b in pairs) / len(pairs)


def _genes(row: dict[str, Any]) -> list[str] | None:
    answer = row.get("output_json")
    if not isinstance(answer, dict) or not isinstance(answer.get("genes"), list):
        return None
    return [str(g) for g in answer["genes"]]


def model_stats(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """The summary of one model's result rows (each with `input`, `output_json`, top1/top5/topmax)."""
    rows = list(rows)
    n = len(rows)
    parsed = named = in_list = same_set = first_is_1 = same_order = 0
    taus: list[float] = []
    hits = dict.fromkeys(("top1", "top5", "topmax"), 0.0)
    for row in rows:
        for k in hits:
            hits[k] += bool(row.get(k))
        genes = _genes(row)
        if genes is None:
            continue
        parsed += 1
        candidates = [_norm(g) for g in prompt_candidates(row.get("input") or [])]
        answer = list(dict.fromkeys(_norm(g) for g in genes))
        named += len(answer)
        in_list += sum(g in candidates for g in answer)
        same_set += bool(candidates) and set(answer) == set(candidates)
        first_is_1 += bool(candidates and answer) and answer[0] == candidates[0]
        same_order += bool(candidates) and answer == candidates
        tau = kendall_tau(answer, candidates)
        if tau is not None:
            taus.append(tau)
    share = (lambda x: x / n) if n else (lambda x: 0.0)
    return {
        "answers": n,
        "parsed": share(parsed),
        "genes_per_answer": named / parsed if parsed else 0.0,
        "named_in_list": in_list / named if named else 0.0,
        "exactly_the_list_set": share(same_set),
        "first_is_candidate_1": share(first_is_1),
        "list_order": share(same_order),
        "kendall_tau": sum(taus) / len(taus) if taus else 0.0,
        **{k: share(v) for k, v in hits.items()},
    }


def list_references(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """`copy the list` and `shuffled` (exact expectations) from each item's candidates and answer.

    The causal gene, when it is one of N candidates, is first in a shuffled list with
    probability 1/N and in its top 5 with probability min(1, 5/N).
    """
    copy = dict.fromkeys(("top1", "top5", "topmax"), 0.0)
    shuffled = dict(copy)
    n = 0
    for row in rows:
        candidates = [_norm(g) for g in prompt_candidates(row.get("input") or [])]
        reference = row.get("reference") or {}
        answers = {_norm(str(reference.get("gene", "")))} | {
            _norm(str(s)) for s in reference.get("synonyms") or []
        }
        rank = next((i for i, g in enumerate(candidates) if g in answers), None)
        n += 1
        if rank is None:
            continue
        copy["top1"] += rank == 0
        copy["top5"] += rank < 5
        copy["topmax"] += 1
        shuffled["top1"] += 1 / len(candidates)
        shuffled["top5"] += min(1.0, 5 / len(candidates))
        shuffled["topmax"] += 1
    return {
        name: {k: v / n if n else 0.0 for k, v in figs.items()}
        for name, figs in (("copy the list", copy), ("shuffled", shuffled))
    }


def summarize(paths: Sequence[Path]) -> dict[str, dict[str, float]]:
    """Per model over the given results files, then the two reference rows from the first model's items."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                by_model[str(row.get("model"))].append(row)
    stats = {model: model_stats(rows) for model, rows in by_model.items()}
    first = next(iter(by_model.values()), [])
    items = {row.get("item_index"): row for row in first if row.get("sample_index", 0) == 0}
    return {**stats, **list_references(items.values())}


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="results.jsonl files written by rft eval")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        stats = summarize(args.results)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    columns = list(dict.fromkeys(c for row in stats.values() for c in row))
    print("\t".join(["model", *columns]))
    for model, row in stats.items():
        print("\t".join([model, *(_cell(row.get(c)) for c in columns)]))
    if args.json:
        args.json.write_text(json.dumps(stats, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
