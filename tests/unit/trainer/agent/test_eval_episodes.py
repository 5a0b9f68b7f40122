"""evals/agent.py without a model: which evals run episodes, and a plugin's episodes with a real tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rftkit.evals.agent import (
    AgentConfigError,
    AgentModel,
    agent_config_for,
    episode_sample,
    load_agent_config,
)
from rftkit.evals.plugin_model import PluginModel

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "agent"
DOUBLE = {"type": "function", "name": "double", "parameters": {"type": "object"},
          "python": "def double(x):\n    return 2 * x\n"}  # fmt: skip


def test_a_run_config_or_a_bare_section_gives_the_agent_settings(tmp_path: Path) -> None:
    config = load_agent_config(EXAMPLE / "config.yaml")
    assert config.servers[0].name == "lookup" and Path(config.base_dir or "") == EXAMPLE
    (tmp_path / "agent.yaml").write_text("max_episode_steps: 2\ntools: []\n")
    assert load_agent_config(tmp_path / "agent.yaml").max_episode_steps == 2
    (tmp_path / "bad.yaml").write_text("agent:\n  max_episode_steps: 0\n")
    with pytest.raises(AgentConfigError, match="max_episode_steps"):
        load_agent_config(tmp_path / "bad.yaml")


def test_episodes_only_when_asked_or_when_lines_serve_their_tools() -> None:
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    named = {**plain, "tools": [{"type": "function", "function": {"name": "f"}}]}  # passed through, one turn
    assert agent_config_for([plain, named], None) is None
    assert agent_config_for([{**plain, "tools": [DOUBLE]}], None) is not None
    assert agent_config_for([plain], EXAMPLE / "config.yaml") is not None


class Scripted:
    """A model plugin that calls `double` once, then answers with what the tool said."""

    def generate(self, items: list[dict[str, Any]], n: int) -> list[list[str]]:
        out = []
        for item in items:
            last = item["messages"][-1]
            text = last["content"] if last["role"] == "tool" else (
                '<tool_call>{"name": "double", "arguments": {"x": 21}}</tool_call>'
            )  # fmt: skip
            out.append([text] * n)
        return out

    def close(self) -> None:
        pass


@pytest.mark.bwrap
def test_a_plugin_runs_episodes_with_a_sandboxed_python_tool() -> None:
    from rftkit.sandbox.testing import require_backend

    require_backend("namespace")
    item = {"messages": [{"role": "user", "content": "double 21"}], "tools": [DOUBLE], "answer": "42"}
    config = agent_config_for([item], None)
    assert config is not None
    model = AgentModel(
        PluginModel("p", "scripted", Scripted()), config.model_copy(update={"sandbox": "namespace"})
    )
    ((episode,),) = model.generate([item], 1)
    assert episode.error is None and episode.text == "42" and episode.turns == 2
    assert [m["role"] for m in episode.messages] == ["user", "assistant", "tool", "assistant"]
    sample = episode_sample(episode, item)
    assert sample.output_tools[0]["function"]["name"] == "double"
    assert sample.choices[0]["messages"][2]["content"] == "42"
    assert model.describe()["agent"]["tool_calls_per_rollout"] == 1.0
