"""RL fine-tuning: datasets, rollouts (vLLM or transformers), the GRPO algorithm, checkpoints, `rft train`."""
