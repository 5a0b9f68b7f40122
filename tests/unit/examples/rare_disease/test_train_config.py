"""examples/rare_disease/train.yaml is a valid `rft train` config pointing at the example's files."""

from __future__ import annotations

from pathlib import Path

from rftkit.trainer.config import load_config

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "rare_disease"
REPO = EXAMPLE.parents[1]


def test_train_yaml_validates_and_its_paths_resolve_to_the_example() -> None:
    config = load_config(EXAMPLE / "train.yaml")
    assert config.grader.spec_file == str(EXAMPLE / "grader.json")
    assert config.data.train_file == str(REPO / "runs" / "rare" / "data-tiny" / "train.jsonl")
    assert config.data.valid_file == str(REPO / "runs" / "rare" / "data-tiny" / "valid.jsonl")
    assert config.data.answer_field == "gene"
    assert config.model.tiny is not None
    assert config.model.tiny.warmup_file == str(REPO / "runs" / "rare" / "data-tiny" / "warmup.jsonl")
    # The commands in its header build exactly those files.
    header = (EXAMPLE / "train.yaml").read_text()
    assert "runs/rare/data-tiny --max-train-cases 256 --max-report-chars 2000" in header
    assert "make_warmup.py runs/rare/data/train.jsonl runs/rare/data-tiny/warmup.jsonl" in header


def test_the_rerank_gpu_config_validates_and_builds_its_data_with_candidates() -> None:
    config = load_config(EXAMPLE / "train_rerank_gpu.yaml")
    assert config.grader.spec_file == str(EXAMPLE / "grader.json")
    assert config.data.train_file == str(REPO / "runs" / "rare" / "data-rerank" / "train.jsonl")
    assert config.data.valid_file == str(REPO / "runs" / "rare" / "data-rerank" / "valid.jsonl")
    assert config.data.answer_field == "gene"
    assert config.model.tiny is None and config.model.path and config.model.lora is not None
    assert config.rollout.engine == "vllm"
    header = (EXAMPLE / "train_rerank_gpu.yaml").read_text()
    assert "build.py ../shared/data/phenopackets.jsonl runs/rare/data-rerank --candidates 20" in header


def test_the_tiny_rerank_config_reads_the_rerank_data_and_its_shuffled_warmup() -> None:
    config = load_config(EXAMPLE / "train_rerank_tiny.yaml")
    data = REPO / "runs" / "rare" / "data-tiny-rerank"
    assert config.data.train_file == str(data / "train.jsonl")
    assert config.data.valid_file == str(data / "valid.jsonl")
    assert config.model.tiny is not None and config.model.tiny.warmup_file == str(data / "warmup.jsonl")
    header = (EXAMPLE / "train_rerank_tiny.yaml").read_text()
    assert "runs/rare/data-tiny-rerank --max-train-cases 256 --max-report-chars 1100 --candidates 5" in header
    assert "runs/rare/data-tiny-rerank/warmup.jsonl --cases 256 --orders 8" in header
