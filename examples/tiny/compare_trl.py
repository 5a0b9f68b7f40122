"""Trainer-step time of `rft train` against TRL's GRPOTrainer on the same tiny model, data and group size.

    RFTKIT_CACHE=/tmp/c python examples/tiny/compare_trl.py --steps 30

Both sides: the example's tiny base model, batch 8 prompts x 8 samples, 4 completion tokens,
full weights, learning rate 1e-4, one thread, on this machine in this run. rftkit's step time
is `timing.step` from its events (sampling + grading through the gRPC service + update + weight
sync into vLLM); TRL's is the wall time of each optimizer step (generation with transformers,
an in-process reward function, the update). Prints both medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rftkit_step_times(steps: int, engine: str, out: Path) -> list[float]:
    command = [sys.executable, "-c", "from rftkit.cli.main import main; main()", "train",
               str(HERE / "config.yaml"), "--output-dir", str(out), "--no-progress",
               "--set", f"trainer.max_steps={steps}", "--set", f"hyperparameters.eval_interval={steps}",
               "--set", f"rollout.engine={engine}"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    return [e["timing"]["step"] - e["timing"].get("eval", 0.0) for e in events if e["step"] >= 3]


def trl_step_times(steps: int, model_dir: Path) -> list[float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    lines = [json.loads(x) for x in (HERE / "train.jsonl").read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": x["messages"], "answer": x["answer"]} for x in lines])

    def exact(completions, answer, **_):
        return [float(c[0]["content"].strip() == a) for c, a in zip(completions, answer, strict=True)]

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as tmp:
        config = GRPOConfig(
            output_dir=tmp, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
            per_device_train_batch_size=64, num_generations=8, max_completion_length=4, learning_rate=1e-4,
            max_steps=steps, logging_steps=1000, save_strategy="no", temperature=1.0, beta=0.0, seed=0,
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(model_dir), reward_funcs=exact, args=config,
            train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(model_dir),
            callbacks=[Timer()],
        )  # fmt: skip
        trainer.train()
    return times[2:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours_vllm = rftkit_step_times(args.steps, "vllm", Path(tmp) / "vllm")
        ours_hf = rftkit_step_times(args.steps, "transformers", Path(tmp) / "hf")
        base = Path(json.loads((Path(tmp) / "vllm" / "summary.json").read_text())["base_model"])
    trl = trl_step_times(args.steps, base)
    rows = {
        "rftkit (vLLM rollouts)": ours_vllm,
        "rftkit (transformers rollouts)": ours_hf,
        "TRL GRPOTrainer": trl,
    }
    reference = statistics.median(trl)
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:32s} median step {median * 1000:7.1f} ms   ratio to TRL {median / reference:5.2f}")


if __name__ == "__main__":
    main()
