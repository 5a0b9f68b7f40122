"""Write a warm-up file for a tiny local model: train prompts answered by the classical baseline.

    python examples/rare_disease/make_warmup.py TRAIN.jsonl OUT.jsonl [--cases N] [--genes K] [--orders K]

A random-init tiny model knows neither the answer format nor any gene symbol. Before RFT it
is fine-tuned (`model.tiny.warmup_file` in a `rft train` config) on up to N train prompts
(chosen by SHA-256 of the case id, so the same on every machine), each answered with the
`hpo-baseline` top K genes in the response format. Only train prompts are used, so the
held-out genes reach the model only where the baseline lists them for a train case.
Each line: `{"messages": [...], "completions": ["{\\"reasoning\\":...,\\"genes\\":[...]}"]}`. The replies
are compact JSON (no space after `:` or `,`), the text vLLM's structured decoding lets a model
write: warmed up on spaced JSON, the tiny model's tokens are forbidden under the grammar and it
answers garbage (0 of 20 validation answers named a gene).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

from rftkit.plugins.models.hpo_disease import HpoDiseaseRanker

COMPACT = (",", ":")  # json.dumps separators of the compact JSON structured decoding writes


def relabel(messages: list[dict], genes: list[str], new: list[str]) -> list[dict]:
    """`messages` with the rerank prompt's candidate lines `N. GENE:` naming `new[i]` for `genes[i]`."""
    user = messages[-1]["content"]
    for gene, symbol in zip(genes, new, strict=True):
        user = re.sub(rf"(?m)^(\d+)\. {re.escape(gene)}:", lambda m, s=symbol: f"{m.group(1)}. {s}:", user)
    return [*messages[:-1], {**messages[-1], "content": user}]


def warmup_lines(
    train: list[dict],
    cases: int,
    genes: int,
    orders: int = 0,
    relabels: int = 0,
    symbols: list[str] | None = None,
) -> list[dict]:
    """The warm-up lines for the first `cases` train lines in SHA-256 order of their ids.

    With `orders` > 0 each line holds that many shuffles of the baseline's genes (seeded by the
    case id) as equally good replies: the model learns the format and which genes to name, but
    not the baseline's order (for the rerank variant, so that RL has something to learn).
    With `relabels` > 0 (rerank prompts only) each case also gives that many lines whose
    candidates are renamed to random `symbols` (seeded), prompt and replies alike: a model
    cannot answer those from memory, only by copying the prompt's list.
    """
    chosen = sorted(train, key=lambda line: hashlib.sha256(str(line["id"]).encode()).hexdigest())[:cases]
    model = HpoDiseaseRanker(top_k=genes)
    out = []
    for line in chosen:
        ranked = model.answer(line)["genes"]
        if orders > 0:
            rng = random.Random(hashlib.sha256(str(line["id"]).encode()).hexdigest())
            lists = [rng.sample(ranked, len(ranked)) for _ in range(orders)]
        else:
            lists = [ranked]
        out.append({"messages": line["messages"], "completions": _replies(lists)})
        pool = [s for s in symbols or [] if s not in ranked]
        for copy in range(relabels if len(pool) >= len(ranked) else 0):
            new = random.Random(f"{line['id']}:relabel:{copy}").sample(pool, len(ranked))
            rename = dict(zip(ranked, new, strict=True))
            replies = _replies([[rename[g] for g in genes_] for genes_ in lists])
            out.append({"messages": relabel(line["messages"], ranked, new), "completions": replies})
    return out


def _replies(lists: list[list[str]]) -> list[str]:
    return [
        json.dumps({"reasoning": "closest phenotype match", "genes": g}, separators=COMPACT) for g in lists
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", type=Path, help="train.jsonl written by build.py")
    parser.add_argument("out", type=Path, help="warm-up JSONL to write")
    parser.add_argument("--cases", type=int, default=2000, help="train prompts to use (default 2000)")
    parser.add_argument("--genes", type=int, default=5, help="genes per answer (default 5)")
    parser.add_argument(
        "--orders",
        type=int,
        default=0,
        help="K > 0: K seeded shuffles of the genes as replies, not the baseline's order (default 0)",
    )
    parser.add_argument(
        "--relabel",
        type=int,
        default=0,
        help="K > 0 (rerank prompts): K more lines per case with the candidates renamed to random HPO gene"
        " symbols, so the model learns to copy the list (default 0)",
    )
    args = parser.parse_args(argv)
    if args.cases < 1 or args.genes < 1 or args.orders < 0 or args.relabel < 0:
        parser.error("--cases and --genes must be at least 1, --orders and --relabel at least 0")
    try:
        train = [json.loads(line) for line in args.train.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {args.train}: {exc}", file=sys.stderr)
        return 2
    symbols = None
    if args.relabel:
        from rftkit.plugins.models.hpo_index import hpo_index

        symbols = sorted(hpo_index().gene_ids)
    lines = warmup_lines(train, args.cases, args.genes, args.orders, args.relabel, symbols)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    print(f"{len(lines)} warm-up lines -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
