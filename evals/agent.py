"""`rft eval` with tools: the same multi-turn episodes as agent training, for every model kind.

An eval runs episodes instead of single replies when `--agent-config` names a file with an
`agent:` section (a run config such as examples/agent/config.yaml, or a file holding only that
section), or when the data lines carry tools that say where they are served (`server_url` or
`python`). The episode's tools, servers, limits and tool-call parser are the trainer's
(`rftkit.trainer.agent`): `agent.servers` are started for the eval and stopped after it, HTTP
tools follow OpenAI's contract, Python tools run in the sandbox.

- A model directory runs exactly the trainer's episodes: the `EpisodeRunner` on a rollout
  engine (vLLM when installed, else transformers), tool calls parsed from the text by the
  configured parser, tool messages rendered by the model's chat template.
- An OpenAI-compatible URL gets chat completions with OpenAI's tool calling: each request sends
  the conversation and the tools (function definitions only, no serving details); the reply's
  `message.tool_calls` are run, their results go back as `tool` messages, until a reply makes no
  call or `max_episode_steps` replies.
- A model plugin gets the conversation so far as the item's `messages` (and `tools`), and its
  text replies are parsed for tool calls like a local model's.

The grader sees what it sees in training: the final answer as `output_text`, every call in
`output_tools`, the conversation in `choices[0].messages`. An episode whose tool failed for good
is not graded (its sample has an error). Each model's tool metrics (tool calls per rollout,
latency, errors by kind, episodes dropped) go to the summary's `model_sources`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.records import Sample
from ..grading.answers import split_reasoning
from ..grading.answers import to_sample as answer_sample
from ..trainer.agent.config import AgentConfig
from ..trainer.agent.episode import EpisodeCompletion, EpisodeRunner, tool_metrics
from ..trainer.agent.tools import ToolCall
from ..trainer.data.schema import DatasetLine
from .generation import EvalModel, Generation, ProgressFn, chat_messages
from .model_api import ModelArgError


class AgentConfigError(ModelArgError):
    """An --agent-config that cannot be used; the message says why."""


@dataclass
class EpisodeGeneration(Generation):
    """A whole episode as one eval sample: the final answer, every call, the conversation."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0


def load_agent_config(path: str | Path) -> AgentConfig:
    """The `agent:` section of a YAML/JSON file (a run config, or a file holding only that section)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"--agent-config {path}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"--agent-config {path}: not valid YAML or JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("agent"), dict):
        data = data["agent"]
    if not isinstance(data, dict):
        raise AgentConfigError(f"--agent-config {path}: expected a mapping with an `agent:` section")
    data = {**data, "base_dir": str(path.resolve().parent)}
    try:
        return AgentConfig.model_validate(data)
    except ValueError as exc:
        raise AgentConfigError(f"--agent-config {path}: {exc}") from None


def _served(tool: Any) -> bool:
    return isinstance(tool, Mapping) and ("server_url" in tool or "python" in tool)


def agent_config_for(items: Sequence[Mapping[str, Any]], path: str | Path | None) -> AgentConfig | None:
    """The agent settings of an eval: from `path`, else defaults when lines serve their own tools; None
    when neither (single replies, as before; tools without serving details pass through to HTTP models)."""
    if path is not None:
        return load_agent_config(path)
    if any(_served(tool) for item in items for tool in item.get("tools") or []):
        return AgentConfig()
    return None


def agent_models(
    models: list[EvalModel], config: AgentConfig | None, items: Sequence[Mapping[str, Any]]
) -> list[EvalModel]:
    """`models` wrapped to run episodes with `config`'s tools (unchanged when `config` is None)."""
    if config is None:
        return models
    if not config.tools and not any(item.get("tools") for item in items):
        raise AgentConfigError("the agent settings name no tools and the data lines carry none")
    return [AgentModel(model, config) for model in models]


def episode_sample(generation: EpisodeGeneration, item: Mapping[str, Any] | None = None) -> Sample:
    """What the grader sees of an episode (as in training): answer, calls, and the conversation."""
    sample = answer_sample(
        generation.text,
        response_format=(item or {}).get("response_format"),
        tool_calls=generation.tool_calls,
        finish_reason=generation.finish_reason,
    )
    sample.choices = [{
        "index": 0, "finish_reason": generation.finish_reason or "stop",
        "message": {"role": "assistant", "content": sample.output_text, "tool_calls": generation.tool_calls},
        "messages": generation.messages,
    }]  # fmt: skip
    return sample


@dataclass
class Reply:
    """One model turn of a chat episode: its text, the calls it made, how it ended, or why it failed."""

    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None


# A conversation's next turn to take: (messages so far, its item, the tools offered, OpenAI format).
Turn = tuple[list[dict[str, Any]], Mapping[str, Any], list[dict[str, Any]]]
# One model turn for many conversations: a reply each, in order.
ChatStep = Callable[[list[Turn]], list[Reply]]


class AgentModel(EvalModel):
    """An eval model whose samples are multi-turn episodes with tools."""

    def __init__(self, inner: EvalModel, config: AgentConfig) -> None:
        super().__init__(inner.name, inner.target)
        self.inner = inner
        self.config = config
        self.kind = inner.kind
        self.metrics: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        agent = {
            "tools": sorted({t.get("name") or t.get("function", {}).get("name") for t in self.config.tools}),
            "max_episode_steps": self.config.max_episode_steps,
            "parser": self.config.parser,
            **self.metrics,
        }
        return {**self.inner.describe(), "agent": agent}

    def close(self) -> None:
        self.inner.close()

    def generate(
        self, items: Sequence[Mapping[str, Any]], n: int, progress: ProgressFn | None = None
    ) -> list[list[Generation]]:
        from .local_model import LocalModel
        from .openai_model import OpenAIChatModel
        from .plugin_model import PluginModel

        lines = [DatasetLine.model_validate(item) for item in items]
        start = time.perf_counter()
        if isinstance(self.inner, LocalModel):
            groups = self._local(self.inner, lines, n)
        elif isinstance(self.inner, OpenAIChatModel):
            with _OpenAIStep(self.inner) as step:
                groups = self._chat(lambda runner: step, items, lines, n)
        elif isinstance(self.inner, PluginModel):
            inner = self.inner
            groups = self._chat(lambda runner: _plugin_step(inner, runner.parse), items, lines, n)
        else:
            raise ModelArgError(f"model {self.name}: a {type(self.inner).__name__} cannot run agent episodes")
        per_sample = (time.perf_counter() - start) / max(1, len(items) * n)
        self.metrics = tool_metrics(groups)
        if progress is not None:
            progress(len(items) * n)
        return [[_generation(episode, per_sample) for episode in group] for group in groups]

    # -- a model directory: the trainer's own episodes ---------------------------------------
    def _local(self, model: Any, lines: list[DatasetLine], n: int) -> list[list[EpisodeCompletion]]:
        from transformers import AutoTokenizer

        from ..trainer.chat import chat_prompt_ids
        from ..trainer.rollout.engine import SamplingSettings
        from ..trainer.rollout.factory import make_engine

        tokenizer = AutoTokenizer.from_pretrained(model.model_dir)
        runner = EpisodeRunner(self.config, tokenizer, lines)
        try:
            prompt_ids = [chat_prompt_ids(tokenizer, line.chat(), runner.tools_for(line)) for line in lines]
            engine = make_engine(model.engine, str(model.model_dir), dtype="float32")
            try:
                settings = SamplingSettings(
                    n=n, temperature=model.temperature, max_tokens=model.max_tokens, seed=model.seed
                )
                return runner.run(engine, lines, prompt_ids, settings)
            finally:
                engine.close()
        finally:
            runner.close()

    # -- chat models: turns by messages, calls run by the same toolbox -----------------------
    def _chat(
        self, make_step: Callable[[EpisodeRunner], ChatStep], items: Sequence[Mapping[str, Any]],
        lines: list[DatasetLine], n: int,
    ) -> list[list[EpisodeCompletion]]:  # fmt: skip
        cfg = self.config
        runner = EpisodeRunner(cfg, None, lines)
        try:
            step = make_step(runner)
            episodes: list[EpisodeCompletion] = []
            offered: list[tuple[Mapping[str, Any], list[dict[str, Any]]]] = []
            for item, line in zip(items, lines, strict=True):
                tools = runner.tools_for(line)
                for _ in range(n):
                    episodes.append(
                        EpisodeCompletion(token_ids=[], text="", logprobs=None, messages=chat_messages(item))
                    )
                    offered.append((item, tools))
            active = list(range(len(episodes)))
            for turn in range(1, cfg.max_episode_steps + 1):
                replies = step([(episodes[i].messages, *offered[i]) for i in active])
                calling: list[tuple[int, list[ToolCall]]] = []
                for index, reply in zip(active, replies, strict=True):
                    episode = episodes[index]
                    episode.turns = turn
                    if reply.error is not None:
                        episode.dropped = f"the model failed: {reply.error}"[:500]
                        continue
                    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
                    if reply.calls:
                        message["tool_calls"] = [call.to_openai() for call in reply.calls]
                        episode.tool_calls.extend(message["tool_calls"])
                    episode.messages.append(message)
                    episode.text, episode.finish_reason = reply.content, reply.finish_reason
                    if reply.calls and turn < cfg.max_episode_steps and reply.finish_reason != "length":
                        calling.append((index, reply.calls))
                if not calling:
                    break
                results = runner.toolbox.call_many([call for _, calls in calling for call in calls])
                position, active = 0, []
                for index, calls in calling:
                    episode = episodes[index]
                    mine = results[position : position + len(calls)]
                    position += len(calls)
                    episode.tool_results.extend(mine)
                    failed = next((r for r in mine if r.drops_episode), None)
                    if failed is not None:
                        episode.dropped = f"tool {failed.name} failed ({failed.kind}): {failed.details}"[:500]
                        continue
                    episode.messages.extend(
                        {"role": "tool", "tool_call_id": r.call_id, "name": r.name, "content": r.content}
                        for r in mine
                    )
                    active.append(index)
                if not active:
                    break
            return [episodes[i : i + n] for i in range(0, len(episodes), n)]
        finally:
            runner.close()


def _generation(episode: EpisodeCompletion, latency_s: float) -> EpisodeGeneration:
    reasoning, answer = split_reasoning(episode.text)
    return EpisodeGeneration(
        text=answer,
        reasoning=reasoning,
        tool_calls=list(episode.tool_calls),
        finish_reason=episode.finish_reason,
        error=None if episode.dropped is None else f"episode dropped: {episode.dropped}",
        latency_s=latency_s,
        messages=episode.messages,
        turns=episode.turns,
    )


class _OpenAIStep:
    """A chat completion per conversation (the model's `concurrency` in flight), OpenAI's tool calling."""

    def __init__(self, model: Any) -> None:
        from ..plugins.openai_client import open_client

        self.model = model
        self.client = open_client(model.base_url, model.api_key, timeout_s=model.timeout_s,
                                  max_retries=model.retries)  # fmt: skip
        self.pool = ThreadPoolExecutor(model.concurrency, thread_name_prefix="eval-agent")

    def __enter__(self) -> _OpenAIStep:
        try:
            if self.model.model_id is None:
                self.model.model_id = self.model._resolve_model_id(self.client)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    def __call__(self, turns: list[Turn]) -> list[Reply]:
        return list(self.pool.map(lambda turn: self._one(*turn), turns))

    def _one(
        self, messages: list[dict[str, Any]], item: Mapping[str, Any], tools: list[dict[str, Any]]
    ) -> Reply:
        from ..plugins.openai_client import CompletionError, chat_completion
        from .openai_model import _parse_completion

        body = self.model.request_body({**item, "messages": messages, "tools": tools or None})
        try:
            reply = chat_completion(self.client, body)
        except CompletionError as exc:
            return Reply(error=str(exc))
        generation = _parse_completion(reply, 0.0)
        if generation.error is not None:
            return Reply(error=generation.error)
        calls = []
        for number, call in enumerate(generation.tool_calls):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            calls.append(
                ToolCall(
                    str(call.get("id") or f"call_{number}"),
                    str(function.get("name") or "<unnamed>"),
                    arguments if isinstance(arguments, str) else _json(arguments),
                )
            )
        return Reply(generation.text, calls, generation.finish_reason)


def _json(value: Any) -> str:
    import json

    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def _plugin_step(model: Any, parse: Callable[[str], tuple[str, list[ToolCall]]]) -> ChatStep:
    """A plugin's text replies to the conversations so far, parsed for tool calls."""

    def step(turns: list[Turn]) -> list[Reply]:
        asked = [{**item, "messages": messages, "tools": tools} for messages, item, tools in turns]
        try:
            texts = model.plugin.generate(asked, 1)
            if len(texts) != len(asked) or any(len(row) != 1 or not isinstance(row[0], str) for row in texts):
                raise ValueError(f"expected one text for each of {len(asked)} items")
        except Exception as exc:  # a broken plugin costs these turns, not the run
            error = f"model plugin {model.target!r} failed: {type(exc).__name__}: {exc}"
            return [Reply(error=error) for _ in turns]
        replies = []
        for (text,) in texts:
            content, calls = parse(text)
            replies.append(Reply(content, calls, "tool_calls" if calls else "stop"))
        return replies

    return step
