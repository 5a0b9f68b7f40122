"""The trainer's agent hook: the `agent:` config section and the loss mask of tool tokens."""

from __future__ import annotations

import pytest
from rftkit.trainer.config import ConfigError, load_config
from rftkit.trainer.policy import TokenBatch

BASE = [
    "model.path=/tmp/none", "data.train_file=t.jsonl", "data.valid_file=v.jsonl",
    "grader.spec={type: string_check, name: s, input: a, reference: a, operation: eq}",
]  # fmt: skip


def test_agent_section_validates_tools() -> None:
    tool = "{name: lookup, server_url: 'http://127.0.0.1:9/lookup'}"
    config = load_config(None, [*BASE, f"agent.tools=[{tool}]", "agent.max_episode_steps=3"])
    assert config.agent is not None and config.agent.tool_specs()[0].name == "lookup"
    assert load_config(None, BASE).agent is None
    with pytest.raises(ConfigError, match="exactly one of server_url"):
        load_config(None, [*BASE, "agent.tools=[{name: lookup}]"])


def test_token_batch_masks_tool_tokens() -> None:
    batch = TokenBatch.build([[1, 2], [3]], [[4, 5, 6, 7], [8]], 0, masks=[[1, 0, 0, 1], None])
    assert batch.completion_mask.tolist() == [[0, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]]
    assert batch.attention_mask.tolist() == [[1] * 6, [1, 1, 0, 0, 0, 0]]
