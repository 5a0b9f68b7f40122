"""The RFT training loop: sample with vLLM, grade through the service, GRPO update, sync, validate, save.

    summary = RFTTrainer(config, output_dir).run()

Each step: take `batch_size` prompts (an epoch-wise seeded shuffle, so the data position is
the step number), sample `samples_per_prompt` completions each, grade them (overlapping the
next chunk's generation), compute group-relative advantages, update the policy, push the new
weights into the rollout engine. With `rollout.max_staleness: k` > 0 the batches of the next k
steps are generated and graded in the background while a step trains (trainer/pipeline.py);
each event records the batch's `policy_version` and `staleness`. Step 0 measures the starting
model. Every `eval_interval` steps and at the end the validation set is sampled and graded, a
checkpoint is written and the best few are kept. A run whose DIR already holds checkpoints resumes
from the newest.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..grading.session import GradingSession
from . import checkpoints
from .agent.episode import tool_metrics
from .algo.advantages import group_advantages, update_mask
from .algo.update import grpo_update
from .base_model import prepare_base_model
from .chat import chat_prompt_ids
from .config import RunConfig
from .data.run_data import AnswerOverlapError, load_run_data
from .data.schema import DatasetLine
from .events import EventLog
from .grader import open_grading
from .metrics import summarize
from .pipeline import RolloutPipeline
from .policy import (
    TokenBatch,
    checkpoint_weights,
    is_lora,
    load_policy,
    load_reference,
    resolve_dtype,
)
from .progress import Progress
from .resolve import Resolved, resolve
from .roles.ranks import TrainerRanks
from .rollout.collect import (
    InvalidBatchError,
    PendingRollouts,
    Rollouts,
    check_invalid_share,
    collect,
    start_collect,
)
from .rollout.engine import Completion, RolloutEngine, SamplingSettings, pick_engine
from .rollout.factory import make_engine


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


class TrainerRanksFailed(RuntimeError):
    """A trainer rank died (or failed); the newest checkpoint is kept for the same command to resume."""


__all__ = ["InvalidBatchError", "RFTTrainer", "TrainerRanksFailed", "TrainingError"]


def check_prompt_lengths(
    file: object, lines: list[DatasetLine], prompt_ids: list[list[int]], context: int, max_tokens: int
) -> None:
    """Refuse, naming the lines, prompts that leave no room for `max_tokens` in the model's context."""
    too_long = [
        (line.line_number, len(ids))
        for line, ids in zip(lines, prompt_ids, strict=True)
        if len(ids) + max_tokens > context
    ]
    if too_long:
        shown = ", ".join(f"line {line} ({n} tokens)" for line, n in too_long[:10])
        more = f" and {len(too_long) - 10} more" if len(too_long) > 10 else ""
        raise TrainingError(
            f"{file}: {len(too_long)} prompt(s) do not fit the model's context of {context} tokens "
            f"with rollout.max_tokens={max_tokens}: {shown}{more}. Shorten or drop those lines, "
            "lower rollout.max_tokens, or use a model with a longer context."
        )


def batch_indices(step: int, batch_size: int, size: int, seed: int) -> tuple[int, list[int]]:
    """(epoch, line indices) of 1-based `step`; each epoch is a seeded shuffle, its short tail dropped."""
    per_epoch = max(1, size // batch_size)
    epoch, offset = divmod(step - 1, per_epoch)
    order = list(range(size))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return epoch, order[offset * batch_size : (offset + 1) * batch_size]


@dataclass
class Prompts:
    lines: list[DatasetLine]
    ids: list[list[int]]

    def pick(self, indices: list[int]) -> Prompts:
        return Prompts([self.lines[i] for i in indices], [self.ids[i] for i in indices])


class LockedEngine:
    """A rollout engine shared by the trainer's thread and the rollout producer: one call at a time."""

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine = engine
        self.lock = threading.RLock()

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[list[Completion]]:
        with self.lock:
            return self.engine.generate(prompts, settings)

    def load_weights(self, named_tensors: Any) -> None:
        with self.lock:
            self.engine.load_weights(named_tensors)

    def close(self) -> None:
        with self.lock:
            self.engine.close()


@dataclass
class RunState:
    """Everything a running loop holds."""

    plan: Resolved
    base: Path
    tokenizer: Any
    policy: Any
    reference: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    engine: RolloutEngine
    engine_name: str
    train: Prompts
    valid: Prompts
    start_step: int = 0
    best: float | None = None
    version: int = 0  # policy version the rollout engine holds (updates applied)
    agent: Any = None  # agent hook: the EpisodeRunner when the config has `agent:` (trainer/agent)


class RFTTrainer:
    def __init__(
        self, config: RunConfig, output_dir: Path, *, echo: Any = print, ranks: TrainerRanks | None = None
    ) -> None:
        self.config = config
        self.ranks = ranks  # rank 0 of `cluster.trainer_ranks` torchrun ranks (None: one process)
        self.output_dir = output_dir
        self.echo = echo
        self.ckpt_root = output_dir / "checkpoints"
        self.layout: dict[str, Any] = {}

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        cfg = self.config
        if cfg.cluster.trainer_ranks > 1 and self.ranks is None:
            return self._run_ranks()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        events = EventLog(self.output_dir)
        ahead = cfg.rollout.max_staleness
        pool = ThreadPoolExecutor(1 + (ahead + 1 if ahead else 0), thread_name_prefix="grading")
        state: RunState | None = None
        progress: Progress | None = None
        try:
            # The grader first: a spec the service refuses fails the run before any model is built.
            with open_grading(cfg.grader, replicas=cfg.cluster.grader_replicas, notify=self.echo) as grading:
                state = self._setup(events)
                self.layout = self._layout(state, grading)
                self.echo("layout: " + json.dumps(self.layout))
                progress = Progress(state.plan.steps, state.start_step, enabled=cfg.progress)
                grading.notify = progress.log
                if state.start_step == 0:
                    event = self._step_zero(state, grading, pool)
                    events.write(event)
                    progress.log(
                        f"step 0: valid_reward_mean {event['valid_reward_mean']:.3f} (starting model)"
                    )
                with self._pipeline(state, grading, pool) as pipeline:
                    for step in range(state.start_step + 1, state.plan.steps + 1):
                        event = self._train_step(state, grading, pool, step, pipeline)
                        validated = step % state.plan.eval_interval == 0 or step == state.plan.steps
                        if validated:
                            self._validate_step(state, grading, pool, event)
                            progress.log(
                                f"step {step}: train_reward_mean {event['train_reward_mean']:.3f}  "
                                f"valid_reward_mean {event['valid_reward_mean']:.3f}  (best {state.best:.3f})"
                            )
                        # The step's event before its checkpoint: a run stopped between the two resumes
                        # from the checkpoint before, which drops the event and redoes the step.
                        events.write(event)
                        if validated:
                            self._save(state, event)
                        progress.update(step, event["train_reward_mean"], state.best)
            return self._finish(state)
        finally:
            if self.ranks is not None:
                with contextlib.suppress(Exception):  # a dead rank: torchrun stops the others
                    self.ranks.stop()
            if progress is not None:
                progress.close()
            pool.shutdown(wait=False)
            events.close()
            if state is not None:
                state.engine.close()
                if state.agent is not None:  # agent hook: tool clients and sandbox pools
                    state.agent.close()

    def _run_ranks(self) -> dict[str, Any]:
        """Start `cluster.trainer_ranks` ranks under torchrun (this run is their rank 0) and wait."""
        import subprocess

        from .roles.ranks import launch_command

        if self.config.model.lora is not None:
            raise TrainingError("cluster.trainer_ranks > 1 trains full weights only for now; drop model.lora")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.output_dir / "run_config.json"
        config_path.write_text(self.config.model_dump_json(indent=2), encoding="utf-8")
        command = launch_command(self.config.cluster.trainer_ranks, config_path, self.output_dir)
        self.echo(f"starting {self.config.cluster.trainer_ranks} trainer ranks: {' '.join(command)}")
        code = subprocess.run(command, check=False).returncode
        if code != 0:
            raise TrainerRanksFailed(
                f"the trainer ranks stopped (torchrun exited with {code}: a rank failed or was killed; "
                "its log is above)"
            )
        return json.loads((self.output_dir / "summary.json").read_text())

    # ---------------------------------------------------------------- setup
    def _load_data(self) -> tuple[list[DatasetLine], list[DatasetLine]]:
        try:
            return load_run_data(self.config.data, self.config.eval)
        except AnswerOverlapError as exc:
            raise TrainingError(str(exc)) from exc

    def _print_config(self, plan: Resolved, engine: str, base: Path) -> None:
        shown = {
            "config": self.config.model_dump(mode="json"),
            "resolved": {**plan.model_dump(), "rollout_engine": engine, "base_model": str(base)},
        }
        text = yaml.safe_dump(shown, sort_keys=False)
        self.echo("resolved configuration:\n" + text)
        (self.output_dir / "resolved_config.yaml").write_text(text, encoding="utf-8")

    def _setup(self, events: EventLog) -> RunState:
        """Data, plan, base model, policy, optimizer, rollout engine; resume state if a checkpoint exists."""
        from transformers import AutoTokenizer, get_constant_schedule_with_warmup
        from transformers.utils import logging as hf_logging

        cfg = self.config
        hf_logging.disable_progress_bar()  # per-save/load bars would drown the run's own output
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        random.seed(cfg.trainer.seed)
        np.random.seed(cfg.trainer.seed)
        torch.manual_seed(cfg.trainer.seed)
        train, valid = self._load_data()
        plan = resolve(cfg, len(train))
        engine_name = pick_engine(cfg.rollout.engine)
        base = prepare_base_model(cfg.model, notify=self.echo)
        self._print_config(plan, engine_name, base)

        tokenizer = AutoTokenizer.from_pretrained(base)
        dtype = resolve_dtype(cfg.model.dtype)
        policy = load_policy(str(base), cfg.model, dtype)
        reference = load_reference(str(base), dtype) if cfg.algo.beta > 0 and not is_lora(policy) else None
        params = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=cfg.trainer.weight_decay)
        scheduler = get_constant_schedule_with_warmup(optimizer, cfg.trainer.warmup_steps)
        start_step, best, saved, latest = 0, None, None, None
        existing = checkpoints.list_checkpoints(self.ckpt_root)
        if existing:
            latest = existing[-1]
            self.echo(f"Resuming from checkpoint {latest.path} (step {latest.step} of {plan.steps})")
            checkpoints.load_model_weights(policy, latest.path)
            saved = checkpoints.load_state(latest.path)
            if self.ranks is None:
                optimizer.load_state_dict(saved["optimizer"])
                scheduler.load_state_dict(saved["scheduler"])
            start_step, best = saved["step"], saved.get("best_valid_reward_mean")
            events.truncate_after(start_step)
        elif events.path.exists():
            events.path.unlink()  # nothing to resume from: a fresh run
        if self.ranks is not None:
            # FSDP2 over every rank; `policy` stays rank 0's full copy (weight sync, checkpoints)
            import copy

            info = {
                "base": str(base), "learning_rate": plan.learning_rate,
                "resume": str(latest.path) if latest else None,
                "scheduler": saved["scheduler"] if saved else None,
            }  # fmt: skip
            self.ranks.reference = reference
            self.ranks.broadcast_info(info)
            _, optimizer, scheduler = self.ranks.build(
                {**info, "optimizer": saved["optimizer"] if saved else None}, copy.deepcopy(policy)
            )

        agent = None  # agent hook: episodes with tools instead of single replies
        if cfg.agent is not None:
            from .agent.episode import EpisodeRunner

            agent = EpisodeRunner(cfg.agent, tokenizer, train + valid)
        train_ids = [chat_prompt_ids(tokenizer, x.chat(), agent and agent.tools_for(x)) for x in train]
        valid_ids = [chat_prompt_ids(tokenizer, x.chat(), agent and agent.tools_for(x)) for x in valid]
        context = cfg.rollout.max_model_len or policy.config.max_position_embeddings
        check_prompt_lengths(cfg.data.train_file, train, train_ids, context, plan.max_tokens)
        check_prompt_lengths(cfg.data.valid_file, valid, valid_ids, context, plan.max_tokens)
        vllm_options = {
            "gpu_memory_utilization": cfg.rollout.gpu_memory_utilization,
            "enforce_eager": cfg.rollout.enforce_eager,
            "max_model_len": cfg.rollout.max_model_len,
            "kv_cache_memory_bytes": cfg.rollout.kv_cache_memory_bytes,
            "seed": cfg.trainer.seed,
        }
        dtype_name = str(dtype).removeprefix("torch.")
        servers_wanted = cfg.cluster.rollout_servers or cfg.cluster.rollout_urls
        if self.ranks is not None and engine_name == "vllm" and not servers_wanted:
            raise TrainingError(
                "with cluster.trainer_ranks > 1, vLLM runs as its own server: set cluster.rollout_servers "
                "(vLLM inside a torchrun rank would join the trainer's process group), or use "
                "rollout.engine: transformers"
            )
        if servers_wanted:
            engine_name = "vllm"
            rollout = self._start_rollout_servers(base, dtype_name, policy)
        else:
            rollout = make_engine(
                engine_name, str(base), dtype=dtype_name, policy=policy, vllm_options=vllm_options
            )
        engine = LockedEngine(rollout)
        state = RunState(
            plan, base, tokenizer, policy, reference, optimizer, scheduler, engine, engine_name,
            Prompts(train, train_ids), Prompts(valid, valid_ids), start_step, best, start_step, agent,
        )  # fmt: skip
        if start_step:
            self._sync(state)
        return state

    def _layout(self, state: RunState, grading: GradingSession) -> dict[str, Any]:
        """The roles this run started (or reached), for the log and DIR/summary.json."""
        cfg = self.config
        servers = getattr(state.engine.engine, "servers", None)
        addresses = getattr(grading.client, "addresses", None) or [grading.where]
        return {
            "trainer_ranks": self.ranks.world_size if self.ranks is not None else 1,
            "rollout_servers": len(servers) if servers else 0,
            "grader_replicas": len(addresses),
            "rollout": [s.url for s in servers] if servers else f"{state.engine_name} in the trainer process",
            "weight_sync": getattr(state.engine.engine, "weight_sync", "none (in the trainer process)"),
            "grader": grading.where,
            "max_staleness": cfg.rollout.max_staleness,
            "trainer_device": str(next(state.policy.parameters()).device),
        }

    def _start_rollout_servers(self, base: Path, dtype: str, policy: Any) -> RolloutEngine:
        """`cluster.rollout_servers` vLLM servers (or `rollout_urls`), weights by NCCL or files."""
        from .rollout.factory import WeightSyncError, make_server_engine

        try:
            return make_server_engine(
                self.config, str(base), dtype, output_dir=self.output_dir, notify=self.echo,
                current_weights=lambda: checkpoint_weights(policy),
            )  # fmt: skip
        except WeightSyncError as exc:
            raise TrainingError(str(exc)) from exc

    # ---------------------------------------------------------------- steps
    def _collect(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, prompts: Prompts,
        settings: SamplingSettings, what: str,
    ) -> Rollouts:  # fmt: skip
        """Sampled and graded rollouts; InvalidBatchError when too many have no valid reward."""
        rolled = collect(
            state.engine, grading, prompts.lines, prompts.ids, settings,
            reasoning=self.config.rollout.reasoning, chunks=2 if self._overlap(state) else 1, pool=pool,
            notify=grading.notify, response_format=self.config.rollout.response_format, agent=state.agent,
        )  # fmt: skip
        check_invalid_share(rolled.results, self.config.grader.max_invalid_fraction, what)
        return rolled

    def _overlap(self, state: RunState) -> bool:
        """Whether grading overlaps generation (two chunks per step); `auto` means with vLLM."""
        overlap = self.config.grader.overlap
        return state.engine_name == "vllm" if overlap == "auto" else bool(overlap)

    def _train_settings(self, state: RunState, step: int) -> tuple[int, Prompts, SamplingSettings]:
        cfg, plan = self.config, state.plan
        epoch, picks = batch_indices(step, plan.batch_size, len(state.train.lines), cfg.trainer.seed)
        settings = SamplingSettings(
            n=plan.samples_per_prompt, temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
            max_tokens=plan.max_tokens, seed=cfg.trainer.seed * 7919 + step,
            logprobs=cfg.algo.tis_cap is not None,
        )  # fmt: skip
        return epoch, state.train.pick(picks), settings

    def _train_rollouts(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, step: int
    ) -> tuple[int, Prompts, Rollouts]:
        epoch, prompts, settings = self._train_settings(state, step)
        what = f"step {step}: the training batch"
        return epoch, prompts, self._collect(state, grading, pool, prompts, settings, what)

    def _start_train_rollouts(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, step: int
    ) -> tuple[PendingRollouts, tuple[int, Prompts]]:
        """Generate step `step`'s batch now (the producer's thread), its grades on their way."""
        epoch, prompts, settings = self._train_settings(state, step)
        pending = start_collect(
            state.engine, grading, prompts.lines, prompts.ids, settings,
            reasoning=self.config.rollout.reasoning, chunks=2 if self._overlap(state) else 1, pool=pool,
            notify=grading.notify, response_format=self.config.rollout.response_format, agent=state.agent,
        )  # fmt: skip
        return pending, (epoch, prompts)

    def _pipeline(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor
    ) -> contextlib.AbstractContextManager[RolloutPipeline | None]:
        """The rollout producer when rollout.max_staleness > 0; nothing for the on-policy loop."""
        ahead = self.config.rollout.max_staleness
        if not ahead or state.start_step >= state.plan.steps:
            return contextlib.nullcontext()
        assert isinstance(state.engine, LockedEngine)
        return RolloutPipeline(
            lambda step: self._start_train_rollouts(state, grading, pool, step), state.engine.lock,
            first_step=state.start_step + 1, last_step=state.plan.steps, max_staleness=ahead,
            version=state.version, wait_timeout_s=self.config.grader.retry_max_wait_s + 600,
        )  # fmt: skip

    def _step_zero(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor
    ) -> dict[str, Any]:
        """The starting model on the validation set and on the first training batch."""
        stats, seconds = self._validate(state, grading, pool, 0)
        _, _, rolled = self._train_rollouts(state, grading, pool, 1)
        return {"step": 0, **summarize(rolled.results, "train"), **stats, "timing": {"eval": seconds}}

    def _train_step(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, step: int,
        pipeline: RolloutPipeline | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        cfg, plan = self.config, state.plan
        started = time.perf_counter()
        if pipeline is None:
            epoch, prompts, rolled = self._train_rollouts(state, grading, pool, step)
            version, rollout_wait = state.version, rolled.sampling_s
        else:
            ahead, rollout_wait = pipeline.take(step)
            epoch, prompts = ahead.extra
            rolled = ahead.pending.result(timeout_s=pipeline.wait_timeout_s)
            what = f"step {step}: the training batch"
            check_invalid_share(rolled.results, cfg.grader.max_invalid_fraction, what)
            version = ahead.policy_version
        rewards = torch.tensor(rolled.rewards(), dtype=torch.float32)  # NaN where no valid reward
        valid = torch.tensor(rolled.valid(), dtype=torch.bool)
        advantages = group_advantages(rewards, scale=cfg.algo.scale_rewards, valid=valid)
        completions = [c.token_ids for group in rolled.groups for c in group]
        prompt_ids = [ids for ids in prompts.ids for _ in range(plan.samples_per_prompt)]
        logprobs = [c.logprobs for group in rolled.groups for c in group]
        masks = [getattr(c, "loss_mask", None) for group in rolled.groups for c in group]  # agent: tools' = 0
        batch = TokenBatch.build(prompt_ids, completions, state.tokenizer.pad_token_id, logprobs, masks)
        begin = time.perf_counter()
        # transformers' engine samples the live policy: the producer must not sample mid-update
        shared = state.engine.lock if state.engine_name != "vllm" and pipeline is not None else None
        with shared or contextlib.nullcontext():
            if self.ranks is not None:
                update, weights = self.ranks.update(batch, advantages.flatten(), update_mask(valid).flatten())
                state.policy.load_state_dict(weights)
            else:
                update = grpo_update(
                    state.policy, state.optimizer, state.scheduler, batch, advantages.flatten(), cfg.algo,
                    reference=state.reference, temperature=cfg.rollout.temperature,
                    grad_accumulation=cfg.trainer.grad_accumulation, max_grad_norm=cfg.trainer.max_grad_norm,
                    sample_mask=update_mask(valid).flatten(),
                )  # fmt: skip
        training_s = time.perf_counter() - begin
        if pipeline is None:
            sync_wait, sync_s = 0.0, self._sync(state)
        else:
            sync_wait, sync_s = pipeline.published(step, lambda: self._sync(state))
        state.version = step
        step_s = time.perf_counter() - started
        return {
            "step": step,
            "epoch": epoch,
            "policy_version": version,
            "staleness": (step - 1) - version,
            "rollout_wait_share": rollout_wait / step_s if step_s else 0.0,
            "grading_wait_share": rolled.grading_wait_s / step_s if step_s else 0.0,
            **summarize(rolled.results, "train"),
            **tool_metrics(rolled.groups),  # agent hook: tool_calls_per_rollout, ... ({} without tools)
            **update,
            "learning_rate": state.scheduler.get_last_lr()[0],
            "completion_tokens_mean": float(np.mean([len(c) for c in completions])),
            "zero_advantage_fraction": float((advantages == 0).all(dim=1).float().mean()),
            "no_update_groups": int((valid.sum(dim=1) < 2).sum()),  # fewer than two valid rewards
            "regraded_samples": rolled.regraded_samples,
            "grader_outage_s": grading.outage_seconds,
            "timing": {
                "sampling": rolled.sampling_s, "grading": rolled.grading_s,
                "grading_wait": rolled.grading_wait_s, "rollout_wait": rollout_wait,
                "training": training_s, "weight_sync": sync_s, "weight_sync_wait": sync_wait,
                "step": step_s,
            },
        }  # fmt: skip

    def _validate(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, step: int
    ) -> tuple[dict[str, Any], float]:
        cfg, plan = self.config, state.plan
        begin = time.perf_counter()
        settings = SamplingSettings(
            n=plan.eval_samples, temperature=cfg.eval.temperature or cfg.rollout.temperature,
            top_p=cfg.rollout.top_p, max_tokens=plan.max_tokens, seed=cfg.trainer.seed + 7,
        )  # fmt: skip
        rolled = self._collect(state, grading, pool, state.valid, settings, f"step {step}: validation")
        stats = {**summarize(rolled.results, "valid"), **tool_metrics(rolled.groups, "valid")}
        return stats, time.perf_counter() - begin

    def _validate_step(
        self, state: RunState, grading: GradingSession, pool: ThreadPoolExecutor, event: dict[str, Any]
    ) -> None:
        """Validate after the step's update and add the figures (and the best so far) to `event`."""
        stats, seconds = self._validate(state, grading, pool, event["step"])
        event.update(stats)
        event["timing"]["eval"] = seconds
        event["timing"]["step"] += seconds
        value = stats["valid_reward_mean"]
        state.best = value if state.best is None else max(state.best, value)

    def _save(self, state: RunState, event: dict[str, Any]) -> None:
        """Write the validated step's checkpoint and prune old ones."""
        step = event["step"]
        optimizer = self.ranks.optimizer_state() if self.ranks is not None else state.optimizer.state_dict()
        saved = {
            "optimizer": optimizer, "scheduler": state.scheduler.state_dict(),
            "step": step, "epoch": event["epoch"], "data_position": step * state.plan.batch_size,
            "best_valid_reward_mean": state.best,
        }  # fmt: skip
        value = event["valid_reward_mean"]
        checkpoints.save_checkpoint(self.ckpt_root, step, state.policy, state.tokenizer, saved, value)
        checkpoints.prune(self.ckpt_root, self.config.checkpoint.keep_best)

    def _sync(self, state: RunState) -> float:
        """Push the policy's weights into vLLM (transformers samples the policy itself); seconds taken."""
        if state.engine_name != "vllm":
            return 0.0
        start = time.perf_counter()
        if is_lora(state.policy) and hasattr(state.engine.engine, "load_adapter"):
            with state.engine.lock:  # rollout servers: the adapter only, loaded by vLLM (no merge)
                state.engine.engine.load_adapter(state.policy.save_pretrained)
        else:
            state.engine.load_weights(checkpoint_weights(state.policy))
        return time.perf_counter() - start

    def _finish(self, state: RunState) -> dict[str, Any]:
        """Write DIR/final (full weights, LoRA merged) and DIR/summary.json."""
        from transformers import AutoModelForCausalLM

        final = self.output_dir / "final"
        model = AutoModelForCausalLM.from_pretrained(state.base, dtype=torch.float32)
        model.load_state_dict({k: v.float().cpu() for k, v in checkpoint_weights(state.policy)}, strict=True)
        model.save_pretrained(final, safe_serialization=True)
        state.tokenizer.save_pretrained(final)
        kept = checkpoints.list_checkpoints(self.ckpt_root)
        summary = {
            **{key: self.layout[key] for key in ("trainer_ranks", "rollout_servers", "grader_replicas")},
            "layout": self.layout,
            "final_model": str(final),
            "base_model": str(state.base),
            "best_valid_reward_mean": state.best,
            "checkpoints": [
                {"path": str(c.path), "step": c.step, "valid_reward_mean": c.valid_reward_mean} for c in kept
            ],
        }
        (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        self.echo(f"final model: {final}")
        return summary
