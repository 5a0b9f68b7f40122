"""Rollouts: N samples per chat prompt with vLLM (or transformers); rftkit.grading.answers makes samples."""

from .engine import Completion, RolloutEngine
from .factory import make_engine
from .generate import generate_texts

__all__ = ["Completion", "RolloutEngine", "generate_texts", "make_engine"]
