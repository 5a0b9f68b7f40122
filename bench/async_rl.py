"""Steps per minute of the async pipeline (rollout.max_staleness 1) against the on-policy loop.

    .venv/bin/python bench/async_rl.py --quick --json     # 24 steps each, one run per mode
    .venv/bin/python bench/async_rl.py --steps 60 --repeats 2

Both modes train the tiny learning proof (examples/tiny: the same locally built model, data,
hyperparameters and seed) with `rft train` in a fresh child process each, graded by a
`score_model` judge whose latency dominates: a local OpenAI-compatible endpoint that answers
every request after `--delay` seconds (bench/judge_double.py, a benchmark fixture, not a model).
A step's time is the trainer's own (`timing.step`, the validation in it taken out); step 1 (the
pipeline filling up) is left out. Rows: `sync` (max_staleness 0) and `async-1` (and `async-2`
with --modes), each with steps_per_min, final_valid_reward (the last validation, 64 prompts x 4
samples), the weight-sync time per step and the share of each step spent waiting for rollouts
and for grades. `ratio` is async-1's steps_per_min over sync's, measured in the same run;
`valid_reward_spread` is the run-to-run spread of sync's final reward (the range over --repeats
seeds; with one run, two standard errors of the validation mean).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from judge_double import SlowJudge

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tiny"
MODES = {"sync": 0, "async-1": 1, "async-2": 2}


def run_config(work: Path, spec: dict[str, Any], steps: int, staleness: int, seed: int) -> Path:
    """The tiny example's config with the judge as its grader, `steps` steps, one validation at the end."""
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["model"]["tiny"]["warmup_file"] = str(EXAMPLE / "warmup.jsonl")
    config["data"] = {**config["data"], "train_file": str(EXAMPLE / "train.jsonl"),
                      "valid_file": str(EXAMPLE / "valid.jsonl")}  # fmt: skip
    config["grader"] = {"spec": spec}
    config["rollout"]["max_staleness"] = staleness
    config["trainer"].update(max_steps=steps, seed=seed)
    config["hyperparameters"]["eval_interval"] = steps
    config["progress"] = False
    path = work / f"config-{staleness}-{seed}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train(config: Path, out: Path, timeout_s: float) -> list[dict[str, Any]]:
    command = [sys.executable, "-c", "from rftkit.cli.main import main; main()", "train", str(config),
               "--output-dir", str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(
            f"rft train failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]


def row(name: str, staleness: int, runs: list[list[dict[str, Any]]], delay_s: float) -> dict[str, Any]:
    """One mode's row from its runs' events."""
    per_run, finals = [], []
    steps_all: list[dict[str, Any]] = []
    for events in runs:
        steps = [e for e in events if e["step"] >= 2]
        seconds = sum(e["timing"]["step"] - e["timing"].get("eval", 0.0) for e in steps)
        per_run.append(60.0 * len(steps) / seconds)
        finals.append(events[-1]["valid_reward_mean"])
        steps_all.extend(steps)

    def mean(key: str, part: str | None = None) -> float:
        values = [(e[part] if part else e).get(key) for e in steps_all]
        return statistics.fmean(v for v in values if v is not None)

    return {
        "name": name,
        "max_staleness": staleness,
        "steps_per_min": statistics.fmean(per_run),
        "steps_per_min_runs": per_run,
        "final_valid_reward": statistics.fmean(finals),
        "final_valid_reward_runs": finals,
        "start_valid_reward": statistics.fmean(r[0]["valid_reward_mean"] for r in runs),
        "weight_sync_s": mean("weight_sync", "timing"),
        "rollout_wait_share": mean("rollout_wait_share"),
        "grading_wait_share": mean("grading_wait_share"),
        "staleness_mean": mean("staleness"),
        "tis_clipped_fraction": mean("tis_clipped_fraction"),
        "tis_ratio_mean": mean("tis_ratio_mean"),
        "judge_delay_s": delay_s,
    }


def spread(sync_row: dict[str, Any], samples: int) -> float:
    """Range of sync's final reward over repeats; with one run, two standard errors of that mean."""
    finals = sync_row["final_valid_reward_runs"]
    if len(finals) > 1:
        return max(finals) - min(finals)
    p = finals[0]
    return 2 * math.sqrt(max(p * (1 - p), 1e-9) / samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="24 steps per run, one run per mode")
    p.add_argument("--json", action="store_true", help="print one JSON object {rows: [...]} only")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default 60, quick 24)")
    p.add_argument("--repeats", type=int, default=None, help="runs per mode, seeds 0.. (default 2, quick 1)")
    p.add_argument("--delay", type=float, default=0.2, help="seconds the judge takes per request")
    p.add_argument("--modes", default="sync,async-1", help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--timeout", type=float, default=900, help="seconds per training run")
    args = p.parse_args(argv)
    steps = args.steps or (24 if args.quick else 60)
    repeats = args.repeats or (1 if args.quick else 2)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or "sync" not in modes:
        p.error(f"--modes must include sync and name only {', '.join(MODES)} (got {unknown or modes})")
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="async-rl-") as tmp, SlowJudge(args.delay) as judge:
        work = Path(tmp)
        spec = judge.score_model_spec()
        runs: dict[str, list[list[dict[str, Any]]]] = {m: [] for m in modes}
        for seed in range(repeats):
            for mode in modes if seed % 2 == 0 else reversed(modes):  # alternate: load drift hits both
                config = run_config(work, spec, steps, MODES[mode], seed)
                say(f"{mode} seed {seed}: rft train, {steps} steps ...")
                events = train(config, work / f"run-{mode}-{seed}", args.timeout)
                runs[mode].append(events)
                say(f"{mode} seed {seed}: final valid reward {events[-1]['valid_reward_mean']:.3f}")
        rows = [row(mode, MODES[mode], runs[mode], args.delay) for mode in modes]
        requests = judge.requests
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        r["ratio"] = r["steps_per_min"] / by_name["sync"]["steps_per_min"]
    valid_samples = 64 * 4
    result = {
        "rows": rows,
        "ratio": by_name["async-1"]["ratio"] if "async-1" in by_name else None,
        "valid_reward_spread": spread(by_name["sync"], valid_samples),
        "steps": steps,
        "repeats": repeats,
        "judge_requests": requests,
        "wall_s": time.monotonic() - started,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    head = ("mode", "steps/min", "ratio", "valid", "sync s", "roll wait", "grade wait")
    print("{:8} {:>9} {:>6} {:>6} {:>7} {:>9} {:>10}".format(*head))
    for r in rows:
        print(
            f"{r['name']:8} {r['steps_per_min']:9.1f} {r['ratio']:6.2f} {r['final_valid_reward']:6.3f} "
            f"{r['weight_sync_s']:7.3f} {r['rollout_wait_share']:9.1%} {r['grading_wait_share']:10.1%}"
        )
    print(f"run-to-run spread of the final valid reward: {result['valid_reward_spread']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
