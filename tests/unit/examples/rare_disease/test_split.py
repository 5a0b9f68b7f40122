"""The gene-disjoint split: disjoint, sized, stable across runs, hash seeds and input order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(script: Path, args: list[str], hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cases_path: Path, build_script: Path) -> Path:
    out = tmp_path_factory.mktemp("split")
    result = _run(build_script, [str(cases_path), str(out)], hash_seed="1")
    assert result.returncode == 0, result.stderr
    return out


def test_splits_are_gene_disjoint_and_cover_every_case(built: Path, cases_path: Path) -> None:
    genes = {
        split: {row["gene"] for row in _read(built / f"{split}.jsonl")}
        for split in ("train", "valid", "test")
    }
    assert not genes["train"] & genes["valid"]
    assert not genes["train"] & genes["test"]
    assert not genes["valid"] & genes["test"]
    ids = [row["id"] for split in ("train", "valid", "test") for row in _read(built / f"{split}.jsonl")]
    source_ids = [json.loads(line)["id"] for line in cases_path.read_text().splitlines()]
    assert sorted(ids) == sorted(source_ids)


def test_held_out_splits_have_their_target_size_and_no_dominant_gene(built: Path) -> None:
    stats = json.loads((built / "stats.json").read_text())["splits"]
    # a test split that holds on unseen genes: at least 1,500 cases of about 200 genes
    assert 1500 <= stats["test"]["cases"] <= 2000 and stats["test"]["genes"] >= 150
    assert 150 <= stats["valid"]["cases"] <= 200
    for split, target in (("test", 2000), ("valid", 200)):
        per_gene = Counter(row["gene"] for row in _read(built / f"{split}.jsonl"))
        assert max(per_gene.values()) <= 0.05 * target
    for row in stats.values():
        assert 0 <= row["cases_gene_without_hpo_annotation"] <= row["cases"]


def test_stable_across_runs_and_hash_seeds(
    built: Path, cases_path: Path, tmp_path: Path, build_script: Path
) -> None:
    result = _run(build_script, [str(cases_path), str(tmp_path)], hash_seed="12345")
    assert result.returncode == 0, result.stderr
    for split in ("train", "valid", "test"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (built / f"{split}.jsonl").read_bytes()


def test_gene_order_is_sha256_of_seed_and_gene(build_module: ModuleType) -> None:
    # Pinned, so a change of hash (or a slip to Python's salted hash) shows.
    assert (
        build_module.gene_key("TBX5", "0")
        == "49d4df7f276d2cad47c3f00aebbcbd26d87a86883fce715551b5fe962749ba3d"
    )
    counts = {f"G{i}": 1 + i % 7 for i in range(300)}
    first = build_module.assign_genes(counts, "0", 100, 50, 0.1)
    shuffled = dict(random.Random(3).sample(sorted(counts.items()), len(counts)))
    assert build_module.assign_genes(shuffled, "0", 100, 50, 0.1) == first
    assert build_module.assign_genes(counts, "1", 100, 50, 0.1) != first
    sizes = Counter()
    for gene, split in first.items():
        sizes[split] += counts[gene]
    assert 90 <= sizes["test"] <= 100 and 40 <= sizes["valid"] <= 50


def test_gene_folds_are_sha256_of_the_gene_and_balanced(build_module: ModuleType) -> None:
    genes = [f"G{i}" for i in range(1000)]
    folds = [build_module.gene_fold(g, "0", 5) for g in genes]
    assert folds == [build_module.gene_fold(g, "0", 5) for g in genes]
    assert set(folds) == set(range(5)) and min(Counter(folds).values()) > 150
    assert [build_module.gene_fold(g, "1", 5) for g in genes] != folds
    assert build_module.gene_fold("TBX5", "0", 5) == int(build_module.gene_key("fold:TBX5", "0"), 16) % 5


def test_input_order_does_not_change_output(
    build_module: ModuleType, cases_path: Path, tmp_path: Path
) -> None:
    lines = cases_path.read_text().splitlines()[:600]
    random.Random(7).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n")
    ordered = tmp_path / "ordered.jsonl"
    ordered.write_text("\n".join(sorted(lines, key=lambda line: json.loads(line)["id"])) + "\n")
    gene_ids = dict  # no synonyms needed here: the split is what is compared
    for name, source in (("a", shuffled), ("b", ordered)):
        build_module.build(
            build_module.read_cases(source), tmp_path / name, test_cases=60, valid_cases=30, gene_ids=gene_ids
        )
    for split in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{split}.jsonl"
        ).read_bytes()


def test_test_only_puts_every_case_in_test(cases_path: Path, tmp_path: Path, build_script: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join(cases_path.read_text().splitlines()[:250]) + "\n")
    result = _run(build_script, [str(source), str(tmp_path / "out"), "--test-only"])
    assert result.returncode == 0, result.stderr
    assert len(_read(tmp_path / "out" / "test.jsonl")) == 250
    assert _read(tmp_path / "out" / "train.jsonl") == []
    assert _read(tmp_path / "out" / "valid.jsonl") == []
    assert "test: 250 cases" in result.stdout


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "x", "present": [{"id": "HP:0000001", "label": "y"}]}', "gene"),
        ('{"id": "x", "gene": " ", "present": []}', "gene"),
        ('{"id": "x", "gene": "TBX5", "present": "HP:0000001"}', "present"),
        ('{"id": "x", "gene": "TBX5", "present": [{"id": "HP:12", "label": "y"}]}', "not an HPO id"),
    ],
)
def test_a_bad_line_is_named(
    cases_path: Path, tmp_path: Path, build_script: Path, bad_line: str, message: str
) -> None:
    good = cases_path.read_text().splitlines()[:2]
    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join([*good, bad_line]) + "\n")
    result = _run(build_script, [str(source), str(tmp_path / "out")])
    assert result.returncode == 2
    assert f"{source}:3:" in result.stderr and message in result.stderr


def test_lines_carry_the_rft_fields(built: Path) -> None:
    row = _read(built / "test.jsonl")[0]
    assert set(row) == {"messages", "gene", "synonyms", "disease", "id", "response_format"}
    assert [m["role"] for m in row["messages"]] == ["system", "user"]
    schema = row["response_format"]["json_schema"]["schema"]
    assert schema["properties"] == {
        "reasoning": {"type": "string"},
        "genes": {"type": "array", "items": {"type": "string"}},
    }
    assert all(s.startswith("NCBIGene:") for s in row["synonyms"])


def test_max_train_cases_samples_train_only(
    built: Path, build_module: ModuleType, cases_path: Path, tmp_path: Path
) -> None:
    cases = build_module.read_cases(cases_path)
    build_module.build(cases, tmp_path, max_train_cases=100, gene_ids=dict)
    ids = {s: [row["id"] for row in _read(tmp_path / f"{s}.jsonl")] for s in ("train", "valid", "test")}
    full = {s: [row["id"] for row in _read(built / f"{s}.jsonl")] for s in ("train", "valid", "test")}
    assert len(ids["train"]) == 100 and set(ids["train"]) < set(full["train"])
    assert ids["train"] == sorted(ids["train"])
    assert ids["valid"] == full["valid"] and ids["test"] == full["test"]


def test_max_report_chars_leaves_out_long_reports_and_keeps_the_gene_split(
    built: Path, build_module: ModuleType, cases_path: Path, tmp_path: Path
) -> None:
    cases = build_module.read_cases(cases_path)
    stats = build_module.build(cases, tmp_path, max_report_chars=2000, gene_ids=dict)
    for split in ("train", "valid", "test"):
        rows = _read(tmp_path / f"{split}.jsonl")
        full = _read(built / f"{split}.jsonl")
        assert {r["id"] for r in rows} <= {r["id"] for r in full}  # the same genes, a subset of cases
        assert all(len(r["messages"][1]["content"]) <= 2000 for r in rows)
        left_out = [r for r in full if len(r["messages"][1]["content"]) > 2000]
        assert stats["splits"][split]["cases_left_out_report_too_long"] == len(left_out) > 0


def test_the_rerank_variant_puts_candidates_from_the_prompt_alone_into_each_line(
    build_module: ModuleType, cases_path: Path, tmp_path: Path
) -> None:
    from rftkit.plugins.models.hpo_case import CANDIDATES_HEADER, Candidate

    seen: list[dict] = []

    def source(item: dict, k: int) -> list[Candidate]:
        seen.append(item)
        return [Candidate(gene=f"G{i}", disease=f"D{i}", explains=["x"]) for i in range(k)]

    source_file = tmp_path / "cases.jsonl"
    source_file.write_text("\n".join(cases_path.read_text().splitlines()[:40]) + "\n")
    cases = build_module.read_cases(source_file)
    stats = build_module.build(
        cases, tmp_path / "out", test_only=True, candidates=3, gene_ids=dict, candidate_source=source
    )
    assert stats["candidates"] == 3
    rows = _read(tmp_path / "out" / "test.jsonl")
    assert len(rows) == len(seen) == 40
    assert all(set(item) == {"messages"} for item in seen)  # never the reference fields
    text = rows[0]["messages"][1]["content"]
    assert CANDIDATES_HEADER in text and "1. G0: D0. Explains: x" in text and "3. G2" in text
