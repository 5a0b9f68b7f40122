#!/usr/bin/env bash
# The main job, end to end, on CPU in a few minutes:
#   1. reinforcement fine-tune a tiny local model against a grader (rft train), then score it
#      before and after on its answer-disjoint validation set (rft eval);
#   2. build the rare-disease splits and score the classical HPO baseline on the held-out test split
#      through the grader service (rft eval);
#   3. write one offline HTML report of all of it (rft report).
# Run `bash .ci/setup` first (the README's first command does both). Output goes to runs/quickstart/
# (or the folder given as the first argument); running it again resumes or redoes each step.
set -euo pipefail
cd "$(dirname "$0")/.."
rft=.venv/bin/rft
python=.venv/bin/python
out=${1:-runs/quickstart}
cases=${RFT_CASES:-../shared/data/phenopackets.jsonl}
mkdir -p "$out"

echo "== 1/3 rft train: tiny model, learning-proof task =="
$rft train examples/tiny/config.yaml --output-dir "$out/tiny-train"
base=$($python -c 'import json, sys; print(json.load(open(sys.argv[1]))["base_model"])' "$out/tiny-train/summary.json")
$rft eval --data examples/tiny/valid.jsonl --grader examples/tiny/grader.json --max-tokens 4 \
  --model before="$base" --model after="$out/tiny-train/final" --output-dir "$out/tiny-eval"

echo "== 2/3 rft eval: HPO baseline on the rare-disease test split =="
$python examples/rare_disease/build.py "$cases" "$out/rare-data"
$rft eval --data "$out/rare-data/test.jsonl" --grader examples/rare_disease/grader.json \
  --model baseline=hpo-baseline --model present-only=hpo-baseline-present-only \
  --output-dir "$out/rare-eval"

echo "== 3/3 rft report =="
$rft report "$out/tiny-eval" "$out/tiny-train" "$out/rare-eval" -o "$out/report.html"
echo "report: $out/report.html"
