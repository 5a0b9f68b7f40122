"""The RFT training loop: sample with vLLM, grade through the service, GRPO update, sync, validate, save.

    trainer = RFTTrainer(config, output_dir)
    summary = trainer.run()

Each step: take `batch_size` prompts (an epoch-wise seeded shuffle, so the data position is
the step number), sample `samples_per_prompt` completions each, grade them (overlapping the
next chunk's generation), compute group-relative advantages, update the policy, push the new
weights into the rollout engine. Every `eval_interval` steps and at the end the validation
set is sampled and graded, a checkpoint is written and the best few are kept. A run whose
DIR already holds checkpoints resumes from the newest one.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rftkit.trainer import checkpoints
from rftkit.trainer.algo.advantages import group_advantages
from rftkit.trainer.algo.update import grpo_update
from rftkit.trainer.base_model import prepare_base_model
from rftkit.trainer.chat import chat_prompt_ids
from rftkit.trainer.config import RunConfig
from rftkit.trainer.data.loader import load_dataset
from rftkit.trainer.data.schema import DatasetLine
from rftkit.trainer.data.split import answer_overlap
from rftkit.trainer.events import EventLog
from rftkit.trainer.grading.service import open_grading
from rftkit.trainer.metrics import summarize
from rftkit.trainer.policy import (
    TokenBatch,
    checkpoint_weights,
    is_lora,
    load_policy,
    load_reference,
    resolve_dtype,
)
from rftkit.trainer.progress import Progress
from rftkit.trainer.resolve import Resolved, resolve
from rftkit.trainer.rollout.collect import Rollouts, collect
from rftkit.trainer.rollout.engine import SamplingSettings, make_engine, pick_engine


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


def batch_indices(step: int, batch_size: int, size: int, seed: int) -> tuple[int, list[int]]:
    """(epoch, line indices) of 1-based `step`; each epoch is a seeded shuffle, its short tail dropped."""
    per_epoch = max(1, size // batch_size)
    epoch, offset = divmod(step - 1, per_epoch)
    order = list(range(size))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return epoch, order[offset * batch_size : (offset + 1) * batch_size]


class RFTTrainer:
    def __init__(self, config: RunConfig, output_dir: Path, *, echo: Any = print) -> None:
        self.config = config
        self.output_dir = output_dir
        self.echo = echo

    # ----------------------------------------------------------------- setup
    def _load_data(self) -> tuple[list[DatasetLine], list[DatasetLine]]:
        data = self.config.data
        train, valid = load_dataset(data.train_file), load_dataset(data.valid_file)
        if data.answer_field:
            overlap = answer_overlap(train, valid, data.answer_field)
            if overlap:
                raise TrainingError(
                    f"{len(overlap)} answer(s) of {data.answer_field!r} are in both training and validation "
                    f"files (e.g. {overlap[:5]}); validation would reward memorising. "
                    "Split with `rft data split --group-by`."
                )
        return train, valid

    def _print_config(self, resolved: Resolved, engine: str, base: Path) -> None:
        shown = {
            "config": self.config.model_dump(mode="json"),
            "resolved": {**resolved.model_dump(), "rollout_engine": engine, "base_model": str(base)},
        }
        text = yaml.safe_dump(shown, sort_keys=False)
        self.echo("resolved configuration:\n" + text)
        (self.output_dir / "resolved_config.yaml").write_text(text, encoding="utf-8")

    # ------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        random.seed(cfg.trainer.seed)
        np.random.seed(cfg.trainer.seed)
        torch.manual_seed(cfg.trainer.seed)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-save/load bars would drown the run's own output
        train, valid = self._load_data()
        if cfg.eval.max_items:
            valid = valid[: cfg.eval.max_items]
        plan = resolve(cfg, len(train))
        engine_name = pick_engine(cfg.rollout.engine)
        base = prepare_base_model(cfg.model, notify=self.echo)
        self._print_config(plan, engine_name, base)

        from transformers import AutoTokenizer, get_constant_schedule_with_warmup

        tokenizer = AutoTokenizer.from_pretrained(base)
        dtype = resolve_dtype(cfg.model.dtype)
        policy = load_policy(str(base), cfg.model, dtype)
        reference = None
        if cfg.algo.beta > 0 and not is_lora(policy):
            reference = load_reference(str(base), dtype)
        params = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=cfg.trainer.weight_decay)
        scheduler = get_constant_schedule_with_warmup(optimizer, cfg.trainer.warmup_steps)

        ckpt_root = self.output_dir / "checkpoints"
        events = EventLog(self.output_dir)
        start_step, best = 0, None
        existing = checkpoints.list_checkpoints(ckpt_root)
        if existing:
            latest = existing[-1]
            self.echo(f"Resuming from checkpoint {latest.path} (step {latest.step} of {plan.steps})")
            checkpoints.load_model_weights(policy, latest.path)
            state = checkpoints.load_state(latest.path)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_step, best = state["step"], state.get("best_valid_reward_mean")
            events.truncate_after(start_step)
        elif events.path.exists():
            events.path.unlink()  # no checkpoint to resume from: a fresh run

        vllm_options = {
            "gpu_memory_utilization": cfg.rollout.gpu_memory_utilization,
            "enforce_eager": cfg.rollout.enforce_eager,
            "max_model_len": cfg.rollout.max_model_len,
            "seed": cfg.trainer.seed,
        }
        dtype_name = str(dtype).removeprefix("torch.")
        rollout_engine = make_engine(
            engine_name, str(base), dtype=dtype_name, policy=policy, vllm_options=vllm_options
        )
        if start_step:
            self._sync(rollout_engine, policy)

        settings = SamplingSettings(
            n=plan.samples_per_prompt, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            max_tokens=plan.max_tokens,
        )  # fmt: skip
        train_ids = [chat_prompt_ids(tokenizer, line.chat()) for line in train]
        valid_ids = [chat_prompt_ids(tokenizer, line.chat()) for line in valid]
        chunks = 2 if cfg.grader.overlap else 1
        summary: dict[str, Any] = {}
        pool = ThreadPoolExecutor(1, thread_name_prefix="grading")
        progress = Progress(plan.steps, start_step, enabled=cfg.progress)
        try:
            with open_grading(cfg.grader, notify=progress.log) as grading:

                def validate(step: int) -> tuple[dict[str, Any], float]:
                    begin = time.perf_counter()
                    eval_settings = SamplingSettings(
                        n=plan.eval_samples, temperature=cfg.eval.temperature or cfg.rollout.temperature,
                        top_p=cfg.rollout.top_p, max_tokens=plan.max_tokens, seed=cfg.trainer.seed + 7,
                    )  # fmt: skip
                    rolled = collect(
                        rollout_engine, grading, valid, valid_ids, eval_settings,
                        reasoning=cfg.rollout.reasoning, chunks=chunks, pool=pool,
                    )  # fmt: skip
                    return summarize(rolled.results, "valid"), time.perf_counter() - begin

                if start_step == 0:
                    stats, seconds = validate(0)
                    first = self._sample(
                        rollout_engine, grading, train, train_ids, settings, 1, plan, chunks, pool
                    )
                    event = {
                        "step": 0,
                        **summarize(first.results, "train"),
                        **stats,
                        "timing": {"eval": seconds},
                    }
                    events.write(event)
                    progress.log(
                        f"step 0: valid_reward_mean {stats['valid_reward_mean']:.3f} (starting model)"
                    )
                for step in range(start_step + 1, plan.steps + 1):
                    step_start = time.perf_counter()
                    epoch, _ = batch_indices(step, plan.batch_size, len(train), cfg.trainer.seed)
                    rolled = self._sample(
                        rollout_engine, grading, train, train_ids, settings, step, plan, chunks, pool
                    )
                    batch_lines = batch_indices(step, plan.batch_size, len(train), cfg.trainer.seed)[1]
                    rewards = torch.tensor(rolled.rewards(), dtype=torch.float32)
                    advantages = group_advantages(rewards, scale=cfg.algo.scale_rewards).flatten()
                    prompts = [train_ids[i] for i in batch_lines for _ in range(plan.samples_per_prompt)]
                    completions = [c.token_ids for group in rolled.groups for c in group]
                    batch = TokenBatch.build(prompts, completions, tokenizer.pad_token_id)
                    begin = time.perf_counter()
                    update = grpo_update(
                        policy, optimizer, scheduler, batch, advantages, cfg.algo, reference=reference,
                        temperature=cfg.rollout.temperature, grad_accumulation=cfg.trainer.grad_accumulation,
                        max_grad_norm=cfg.trainer.max_grad_norm,
                    )  # fmt: skip
                    training_s = time.perf_counter() - begin
                    sync_s = self._sync(rollout_engine, policy) if engine_name == "vllm" else 0.0
                    event: dict[str, Any] = {
                        "step": step,
                        "epoch": epoch,
                        **summarize(rolled.results, "train"),
                        **update,
                        "learning_rate": scheduler.get_last_lr()[0],
                        "completion_tokens_mean": float(np.mean([len(c) for c in completions])),
                        "zero_advantage_fraction": float((rewards.std(dim=1) == 0).float().mean()),
                        "grader_outage_s": grading.outage_seconds,
                    }
                    timing = {
                        "sampling": rolled.sampling_s, "grading": rolled.grading_s,
                        "grading_wait": rolled.grading_wait_s, "training": training_s, "weight_sync": sync_s,
                    }  # fmt: skip
                    if step % plan.eval_interval == 0 or step == plan.steps:
                        stats, timing["eval"] = validate(step)
                        event.update(stats)
                        value = stats["valid_reward_mean"]
                        best = value if best is None else max(best, value)
                        state = {
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "step": step, "epoch": epoch, "data_position": step * plan.batch_size,
                            "best_valid_reward_mean": best,
                        }  # fmt: skip
                        checkpoints.save_checkpoint(ckpt_root, step, policy, tokenizer, state, value)
                        checkpoints.prune(ckpt_root, cfg.checkpoint.keep_best)
                        progress.log(
                            f"step {step}: train_reward_mean {event['train_reward_mean']:.3f}  "
                            f"valid_reward_mean {value:.3f}  (best {best:.3f})"
                        )
                    timing["step"] = time.perf_counter() - step_start
                    event["timing"] = timing
                    events.write(event)
                    progress.update(step, event["train_reward_mean"], best)
                summary = self._finish(policy, base, tokenizer, ckpt_root)
        finally:
            progress.close()
            pool.shutdown(wait=False)
            events.close()
            rollout_engine.close()
        return summary

    # --------------------------------------------------------------- helpers
    def _sample(
        self, engine: Any, grading: Any, train: list[DatasetLine], train_ids: list[list[int]],
        settings: SamplingSettings, step: int, plan: Resolved, chunks: int, pool: ThreadPoolExecutor,
    ) -> Rollouts:  # fmt: skip
        _, picks = batch_indices(step, plan.batch_size, len(train), self.config.trainer.seed)
        step_settings = SamplingSettings(
            **{**settings.__dict__, "seed": self.config.trainer.seed * 7919 + step}
        )
        return collect(
            engine, grading, [train[i] for i in picks], [train_ids[i] for i in picks], step_settings,
            reasoning=self.config.rollout.reasoning, chunks=chunks, pool=pool,
        )  # fmt: skip

    def _sync(self, engine: Any, policy: Any) -> float:
        """Push the policy's weights into the rollout engine; returns the seconds it took."""
        start = time.perf_counter()
        engine.load_weights(checkpoint_weights(policy))
        return time.perf_counter() - start

    def _finish(self, policy: Any, base: Path, tokenizer: Any, ckpt_root: Path) -> dict[str, Any]:
        """Write DIR/final (full weights, LoRA merged) and return a summary of the run."""
        from transformers import AutoModelForCausalLM

        final = self.output_dir / "final"
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model.load_state_dict({k: v.float().cpu() for k, v in checkpoint_weights(policy)}, strict=True)
        model.save_pretrained(final, safe_serialization=True)
        tokenizer.save_pretrained(final)
        kept = checkpoints.list_checkpoints(ckpt_root)
        summary = {
            "final_model": str(final),
            "base_model": str(base),
            "checkpoints": [
                {"path": str(c.path), "step": c.step, "valid_reward_mean": c.valid_reward_mean} for c in kept
            ],
        }
        (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        self.echo(f"final model: {final}")
        return summary
