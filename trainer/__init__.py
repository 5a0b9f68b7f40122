"""Datasets, vLLM rollouts, the GRPO algorithm, checkpoints, eval runs and reports."""
