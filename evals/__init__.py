"""Standalone eval runs: score models on a held-out set with a grader (`rft eval`)."""
