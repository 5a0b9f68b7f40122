"""Rollouts: generate N samples per chat prompt with vLLM (or transformers), turn them into grader samples."""

from .engine import Completion, RolloutEngine, make_engine
from .generate import generate_texts
from .postprocess import to_sample

__all__ = ["Completion", "RolloutEngine", "generate_texts", "make_engine", "to_sample"]
