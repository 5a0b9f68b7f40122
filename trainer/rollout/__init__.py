"""Rollouts: generate N samples per chat prompt with vLLM (or transformers), turn them into grader samples."""

from rftkit.trainer.rollout.engine import Completion, RolloutEngine, make_engine
from rftkit.trainer.rollout.generate import generate_texts
from rftkit.trainer.rollout.postprocess import to_sample

__all__ = ["Completion", "RolloutEngine", "generate_texts", "make_engine", "to_sample"]
