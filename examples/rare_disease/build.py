"""Build gene-disjoint RFT train/valid/test JSONL from GA4GH phenopacket cases.

    python examples/rare_disease/build.py CASES.jsonl OUT_DIR [--test-only] [--seed S] [--candidates N]

CASES.jsonl is shaped like ../shared/data/phenopackets.jsonl. Genes are ordered by
SHA-256 of `seed:gene` (stable across runs, machines and input order) and dealt in that
order to test, then valid, until each holds its target number of cases (default 2,000 test
cases, about 200 genes, and 200 valid cases); a gene with more than `--max-gene-share`
(default 5 %) of a held-out split's target goes to train, so no single gene dominates a
held-out split. Every other gene goes to train. `gene_fold` deals the non-test genes into
gene-grouped cross-validation folds by the same hash, for tuning a ranker off the test split.
With `--test-only` every case goes to test.jsonl; `--max-train-cases N` keeps N train cases
(for a short run on a CPU), and `--max-report-chars N` leaves out cases whose case report is
longer than N characters (for a model with a short context; genes are dealt first, so each
split is a subset of the full one). `--candidates N` builds the rerank variant: every prompt
also lists `hpo-baseline`'s top N genes, each with the disease it best matches and the present
phenotypes that disease explains (the ranker reads them from the plain prompt). Each line
holds `messages` (system + user case report), the reference fields `gene`, `synonyms`,
`disease`, `id`, and `response_format`. OUT_DIR/stats.json
counts cases, genes, and cases whose causal gene has no HPO gene annotation, per split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rftkit.plugins.models.hpo_case import (
    RESPONSE_FORMAT,
    Candidate,
    Case,
    render_case_report,
    render_messages,
)

SPLITS = ("train", "valid", "test")
# A test split large enough that a figure holds on unseen genes (about 200 genes), with no gene
# above 5 % of it; valid is the small split `rft train` validates on.
DEFAULT_TEST_CASES = 2000
DEFAULT_VALID_CASES = 200
DEFAULT_MAX_GENE_SHARE = 0.05


class InputError(ValueError):
    """A problem with the cases file a user can fix."""


def read_cases(path: Path) -> list[Case]:
    """Parse and validate every line; the error names the first bad line."""
    cases: list[Case] = []
    seen: dict[str, int] = {}
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                case = Case.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()
                )
                raise InputError(f"{path}:{number}: not a phenopacket case ({problems})") from exc
            if case.id in seen:
                print(
                    f"warning: {path}:{number}: case id {case.id!r} repeats line {seen[case.id]}",
                    file=sys.stderr,
                )
            seen.setdefault(case.id, number)
            cases.append(case)
    if not cases:
        raise InputError(f"{path}: no cases")
    return cases


def gene_key(gene: str, seed: str) -> str:
    """The gene's place in the dealing order (SHA-256, unlike Python's salted hash)."""
    return hashlib.sha256(f"{seed}:{gene}".encode()).hexdigest()


def gene_fold(gene: str, seed: str, folds: int) -> int:
    """The gene-grouped cross-validation fold of a gene (0..folds-1), by SHA-256 like the split."""
    return int(gene_key(f"fold:{gene}", seed), 16) % folds


def assign_genes(
    counts: dict[str, int],
    seed: str,
    test_cases: int,
    valid_cases: int,
    max_gene_share: float,
) -> dict[str, str]:
    """Gene -> split: genes in hash order fill test, then valid, up to their targets."""
    targets = {"test": test_cases, "valid": valid_cases}
    filled = {"test": 0, "valid": 0}
    out: dict[str, str] = {}
    for gene in sorted(counts, key=lambda g: gene_key(g, seed)):
        n = counts[gene]
        out[gene] = "train"
        for split in ("test", "valid"):
            fits = filled[split] + n <= targets[split] and n <= max_gene_share * targets[split]
            if fits:
                out[gene] = split
                filled[split] += n
                break
    return out


CandidateSource = Callable[[dict[str, Any], int], list[Candidate]]


def rft_line(
    case: Case, synonyms: list[str], candidates: int = 0, source: CandidateSource | None = None
) -> dict[str, Any]:
    """One RFT dataset line: the prompt and the reference fields.

    With `candidates` > 0 (the rerank variant) the prompt also lists the classical ranker's top
    genes, read by the ranker from the plain prompt (never from the reference fields).
    """
    messages = render_messages(case)
    if candidates > 0:
        messages = render_messages(case, (source or _baseline_candidates)({"messages": messages}, candidates))
    return {
        "messages": messages,
        "gene": case.gene,
        "synonyms": synonyms,
        "disease": case.disease.model_dump() if case.disease else None,
        "id": case.id,
        "response_format": RESPONSE_FORMAT,
    }


def _baseline_candidates(item: dict[str, Any], k: int) -> list[Candidate]:
    """The default `hpo-baseline`'s top k genes, each with its disease and what it explains."""
    from rftkit.plugins.models.hpo_disease import HpoDiseaseRanker

    global _RANKER
    if _RANKER is None:
        _RANKER = HpoDiseaseRanker()
    return [Candidate.model_validate(c) for c in _RANKER.candidates(item, k)]


_RANKER: Any = None


def _hpo_gene_ids() -> dict[str, int]:
    """HGNC symbol -> NCBI Gene id for genes with HPO annotations in the installed hpo3."""
    from rftkit.plugins.models.hpo_index import hpo_index

    return hpo_index().gene_ids


def build(
    cases: list[Case],
    out_dir: Path,
    *,
    seed: str = "0",
    test_only: bool = False,
    test_cases: int = DEFAULT_TEST_CASES,
    valid_cases: int = DEFAULT_VALID_CASES,
    max_gene_share: float = DEFAULT_MAX_GENE_SHARE,
    max_train_cases: int | None = None,
    max_report_chars: int | None = None,
    candidates: int = 0,
    gene_ids: Callable[[], dict[str, int]] = _hpo_gene_ids,
    candidate_source: CandidateSource | None = None,
) -> dict[str, Any]:
    """Write train/valid/test.jsonl and stats.json into out_dir; return the stats."""
    counts: dict[str, int] = defaultdict(int)
    for case in cases:
        counts[case.gene] += 1
    if test_only:
        split_of = dict.fromkeys(counts, "test")
    else:
        split_of = assign_genes(counts, seed, test_cases, valid_cases, max_gene_share)
    annotated = gene_ids()
    out_dir.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"seed": seed, "test_only": test_only, "candidates": candidates, "splits": {}}
    for split in SPLITS:
        chosen = [c for c in cases if split_of[c.gene] == split]
        too_long = 0
        if max_report_chars is not None:
            fits = [c for c in chosen if len(render_case_report(c)) <= max_report_chars]
            too_long, chosen = len(chosen) - len(fits), fits
        if split == "train" and max_train_cases is not None:
            chosen = sorted(chosen, key=lambda c: gene_key(c.id, seed))[:max_train_cases]
        chosen.sort(key=lambda c: c.id)
        _write_jsonl(
            out_dir / f"{split}.jsonl",
            (
                rft_line(
                    c,
                    [f"NCBIGene:{annotated[c.gene]}"] if c.gene in annotated else [],
                    candidates,
                    candidate_source,
                )
                for c in chosen
            ),
        )
        stats["splits"][split] = {
            "cases": len(chosen),
            "genes": len({c.gene for c in chosen}),
            "cases_gene_without_hpo_annotation": sum(c.gene not in annotated for c in chosen),
            "cases_left_out_report_too_long": too_long,
        }
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def _write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", type=Path, help="phenopacket cases, one JSON object a line")
    parser.add_argument("out_dir", type=Path, help="folder for train.jsonl, valid.jsonl, test.jsonl")
    parser.add_argument("--test-only", action="store_true", help="put every case into test.jsonl")
    parser.add_argument("--seed", default="0", help="mixed into the gene hash (default 0)")
    parser.add_argument(
        "--test-cases",
        type=int,
        default=DEFAULT_TEST_CASES,
        help=f"target test cases (default {DEFAULT_TEST_CASES})",
    )
    parser.add_argument(
        "--valid-cases",
        type=int,
        default=DEFAULT_VALID_CASES,
        help=f"target valid cases (default {DEFAULT_VALID_CASES})",
    )
    parser.add_argument(
        "--max-train-cases",
        type=int,
        default=None,
        help="keep at most N train cases (chosen by SHA-256 of seed:id), for short runs on a CPU",
    )
    parser.add_argument(
        "--max-report-chars",
        type=int,
        default=None,
        help="leave out cases whose case report is longer than N characters (short-context models)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=0,
        help="the rerank variant: list hpo-baseline's top N genes (with the disease each best "
        "matches and the phenotypes it explains) in every prompt (default 0: the plain prompt)",
    )
    parser.add_argument(
        "--max-gene-share",
        type=float,
        default=DEFAULT_MAX_GENE_SHARE,
        help="largest share of a held-out split's target one gene may hold "
        f"(default {DEFAULT_MAX_GENE_SHARE})",
    )
    args = parser.parse_args(argv)
    sizes = (args.test_cases, args.valid_cases, args.max_train_cases or 0, args.max_report_chars or 0)
    if min(*sizes, args.candidates) < 0:
        parser.error(
            "--test-cases, --valid-cases, --max-train-cases, --max-report-chars and --candidates must be >= 0"
        )
    if not 0 < args.max_gene_share <= 1:
        parser.error("--max-gene-share must be in (0, 1]")
    try:
        cases = read_cases(args.cases)
        stats = build(
            cases,
            args.out_dir,
            seed=args.seed,
            test_only=args.test_only,
            test_cases=args.test_cases,
            valid_cases=args.valid_cases,
            max_gene_share=args.max_gene_share,
            max_train_cases=args.max_train_cases,
            max_report_chars=args.max_report_chars,
            candidates=args.candidates,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, row in stats["splits"].items():
        print(
            f"{split}: {row['cases']} cases, {row['genes']} genes, "
            f"{row['cases_gene_without_hpo_annotation']} with a causal gene without HPO annotation"
            + (
                f", {row['cases_left_out_report_too_long']} left out (report too long)"
                if args.max_report_chars
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
