"""Map OpenAI's hyperparameter names (and their `auto` values) onto the real knobs of a run.

n_epochs                 auto -> enough epochs for at least 100 steps, at most 10 epochs
batch_size               auto -> min(8, training lines)              prompts per step
learning_rate_multiplier auto -> 1.0    learning rate = trainer.learning_rate * multiplier
compute_multiplier       auto -> 1.0    samples per prompt = round(rollout.n * multiplier), >= 2
eval_interval            auto -> total steps // 10 (at least 1)
eval_samples             auto -> 1      samples per validation prompt
reasoning_effort         auto -> medium; low/medium/high scale rollout.max_tokens by 0.5/1/2
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from .config import RunConfig

EFFORT_SCALE = {"low": 0.5, "medium": 1.0, "high": 2.0}


class Resolved(BaseModel):
    """The knobs a run actually uses."""

    n_epochs: int
    batch_size: int
    steps: int
    learning_rate: float
    samples_per_prompt: int
    eval_interval: int
    eval_samples: int
    reasoning_effort: str
    max_tokens: int


def resolve(config: RunConfig, train_size: int) -> Resolved:
    """Resolve `config.hyperparameters` for a training set of `train_size` lines."""
    hp = config.hyperparameters
    batch_size = min(8, train_size) if hp.batch_size == "auto" else hp.batch_size
    steps_per_epoch = max(1, train_size // batch_size)
    n_epochs = min(10, math.ceil(100 / steps_per_epoch)) if hp.n_epochs == "auto" else hp.n_epochs
    steps = n_epochs * steps_per_epoch
    if config.trainer.max_steps is not None:
        steps = min(steps, config.trainer.max_steps)
    multiplier = 1.0 if hp.learning_rate_multiplier == "auto" else hp.learning_rate_multiplier
    compute = 1.0 if hp.compute_multiplier == "auto" else hp.compute_multiplier
    effort = "medium" if hp.reasoning_effort == "auto" else hp.reasoning_effort
    return Resolved(
        n_epochs=n_epochs,
        batch_size=batch_size,
        steps=steps,
        learning_rate=config.trainer.learning_rate * multiplier,
        samples_per_prompt=max(2, round(config.rollout.n * compute)),
        eval_interval=max(1, steps // 10) if hp.eval_interval == "auto" else hp.eval_interval,
        eval_samples=1 if hp.eval_samples == "auto" else hp.eval_samples,
        reasoning_effort=effort,
        max_tokens=max(1, round(config.rollout.max_tokens * EFFORT_SCALE[effort])),
    )
