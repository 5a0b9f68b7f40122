"""Multi-turn agent episodes: generate, run the tool calls of the whole batch at once, continue.

Each episode starts from a prompt; the model's reply is parsed for tool calls (see `parse`); the
calls of every episode in the batch run concurrently (see `tools.Toolbox`); their results are
appended as `tool` messages (rendered by the model's chat template) and generation continues,
until a reply makes no call (its text is the final answer), `max_episode_steps` model turns, or
`max_episode_tokens`. The token ids of every turn are kept in order with a loss mask: 1 for the
model's own tokens, 0 for the tool messages, so the policy loss covers the model's tokens only.

A tool that fails for good (5xx after its retries, a timeout, no sandbox) drops the episode: it
is not graded, and its result carries `other_error` ("episode dropped: ..."), a no-score flag, so
the trainer masks it instead of scoring it 0. Every other episode the grader sees whole:
`output_text` (the final answer), `output_tools` (every call with its arguments, in OpenAI's
format) and `choices[0].messages` (the conversation).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ...core.records import GraderResult, Sample
from ...grading.answers import to_sample
from ..data.schema import DatasetLine
from ..rollout.batch import PendingRollouts
from ..rollout.engine import Completion, RolloutEngine, SamplingSettings
from ..rollout.grading_retry import Graded, Notify, grade_with_regrade
from .config import AgentConfig, resolve_tools
from .parse import make_parser
from .servers import ToolServers
from .tools import Toolbox, ToolCall, ToolResult

DROPPED_FLAG = "other_error"


@dataclass
class EpisodeCompletion(Completion):
    """A whole episode as one completion: every turn's tokens, the loss mask, and what happened."""

    loss_mask: list[int] = field(default_factory=list)  # 1: the model's token, 0: a tool message's
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # output_tools (OpenAI's format)
    tool_results: list[ToolResult] = field(default_factory=list)
    turns: int = 0
    model_tokens: int = 0
    dropped: str | None = None  # why the episode was dropped (a tool failed for good)


def _tools_of(line: DatasetLine) -> list[dict[str, Any]]:
    extra = line.model_extra or {}
    tools = extra.get("tools") or []
    return tools if isinstance(tools, list) else []


class EpisodeRunner:
    """Runs episodes for batches of dataset lines on a rollout engine."""

    def __init__(self, config: AgentConfig, tokenizer: Any, lines: list[DatasetLine] = ()) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.servers = ToolServers(config.servers, config.base_dir)  # agent.servers, started here
        try:
            self._setup(lines)
        except BaseException:
            self.servers.close()
            raise

    def _setup(self, lines: list[DatasetLine]) -> None:
        config, addresses = self.config, self.servers.addresses
        specs = {tool.name: tool for tool in config.tool_specs(addresses)}
        for line in lines:  # tools a line serves itself join the toolbox; bare names pick configured ones
            served = [
                t for t in _tools_of(line) if isinstance(t, dict) and ("server_url" in t or "python" in t)
            ]
            for tool in resolve_tools(served, addresses):
                if tool.name in specs and specs[tool.name] != tool:
                    raise ValueError(
                        f"line {line.line_number}: tool {tool.name!r} is defined twice, differently"
                    )
                specs[tool.name] = tool
        self.toolbox = Toolbox(
            list(specs.values()), sandbox=config.sandbox, max_concurrency=config.max_concurrency
        )
        self.parse = make_parser(config.parser, self.tokenizer, self.toolbox.specs())

    def tools_for(self, line: DatasetLine) -> list[dict[str, Any]]:
        """The tools (OpenAI format) offered to the model for this line: its own list, else all."""
        names = [
            t.get("name") or t.get("function", {}).get("name") for t in _tools_of(line) if isinstance(t, dict)
        ]
        return self.toolbox.specs([n for n in names if n] or None)

    def tool_ids(self, results: list[ToolResult]) -> list[int]:
        """Token ids of tool messages, rendered by the chat template, up to the next reply's start."""
        cap = self.config.max_tool_message_tokens
        messages = []
        for result in results:
            ids = self.tokenizer(result.content, add_special_tokens=False)["input_ids"]
            content = self.tokenizer.decode(ids[:cap]) if len(ids) > cap else result.content
            messages.append(
                {"role": "tool", "tool_call_id": result.call_id, "name": result.name, "content": content}
            )
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def run(
        self,
        engine: RolloutEngine,
        lines: list[DatasetLine],
        prompt_ids: list[list[int]],
        settings: SamplingSettings,
    ) -> list[list[EpisodeCompletion]]:
        """`settings.n` episodes per line, in line order; every model turn samples with `settings`."""
        cfg = self.config
        groups = engine.generate(prompt_ids, settings)
        episodes: list[EpisodeCompletion] = []
        prompts: list[list[int]] = []
        current: list[Completion] = []
        for line, ids, group in zip(lines, prompt_ids, groups, strict=True):
            for completion in group:
                episodes.append(EpisodeCompletion(token_ids=[], text="", logprobs=[], messages=line.chat()))
                prompts.append(ids)
                current.append(completion)
        active = list(range(len(episodes)))
        for turn in range(1, cfg.max_episode_steps + 1):
            calling: list[tuple[int, list[ToolCall]]] = []
            for index, completion in zip(active, current, strict=True):
                episode = episodes[index]
                self._append(episode, completion.token_ids, completion.logprobs, model=True)
                episode.turns = turn
                content, calls = self.parse(completion.text)
                message: dict[str, Any] = {"role": "assistant", "content": content}
                if calls:
                    message["tool_calls"] = [call.to_openai() for call in calls]
                    episode.tool_calls.extend(message["tool_calls"])
                episode.messages.append(message)
                episode.text = content
                episode.finish_reason = completion.finish_reason
                over = len(episode.token_ids) >= cfg.max_episode_tokens
                if (
                    calls
                    and turn < cfg.max_episode_steps
                    and completion.finish_reason != "length"
                    and not over
                ):
                    calling.append((index, calls))
            if not calling:
                break
            flat = [call for _, calls in calling for call in calls]
            results = self.toolbox.call_many(flat)
            position = 0
            active, next_prompts = [], []
            for index, calls in calling:
                episode = episodes[index]
                mine = results[position : position + len(calls)]
                position += len(calls)
                episode.tool_results.extend(mine)
                failed = next((r for r in mine if r.drops_episode), None)
                if failed is not None:
                    episode.dropped = f"tool {failed.name} failed ({failed.kind}): {failed.details}"[:500]
                    continue
                for result in mine:
                    episode.messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": result.call_id,
                            "name": result.name,
                            "content": result.content,
                        }
                    )
                self._append(episode, self.tool_ids(mine), None, model=False)
                if len(episode.token_ids) >= cfg.max_episode_tokens:
                    episode.finish_reason = "length"
                    continue
                active.append(index)
                next_prompts.append(prompts[index] + episode.token_ids)
            if not active:
                break
            budget = min(
                settings.max_tokens, cfg.max_episode_tokens - min(len(episodes[i].token_ids) for i in active)
            )
            turn_settings = SamplingSettings(
                **{**settings.__dict__, "n": 1, "max_tokens": max(1, budget),
                   "seed": None if settings.seed is None else settings.seed * 31 + turn}
            )  # fmt: skip
            current = [group[0] for group in engine.generate(next_prompts, turn_settings)]
        per_line = [len(group) for group in groups]
        out, start = [], 0
        for count in per_line:
            out.append(episodes[start : start + count])
            start += count
        return out

    @staticmethod
    def _append(
        episode: EpisodeCompletion, ids: list[int], logprobs: list[float] | None, *, model: bool
    ) -> None:
        episode.token_ids.extend(ids)
        episode.loss_mask.extend([1 if model else 0] * len(ids))
        if model:
            episode.model_tokens += len(ids)
        if episode.logprobs is not None:
            if model and logprobs is None:
                episode.logprobs = None  # the engine gave none: no importance correction for this one
            else:
                episode.logprobs.extend(logprobs if model and logprobs is not None else [0.0] * len(ids))

    def sample(self, episode: EpisodeCompletion, *, reasoning: bool, response_format: Any) -> Sample:
        """What the grader sees: the final answer, every tool call, the whole conversation."""
        sample = to_sample(episode.text, reasoning=reasoning, response_format=response_format,
                           tool_calls=episode.tool_calls)  # fmt: skip
        sample.choices = [{
            "index": 0, "finish_reason": episode.finish_reason or "stop",
            "message": {"role": "assistant", "content": sample.output_text, "tool_calls": episode.tool_calls},
            "messages": episode.messages,
        }]  # fmt: skip
        return sample

    def close(self) -> None:
        """Close tool clients and sandbox pools, and stop the servers this runner started."""
        try:
            self.toolbox.close()
        finally:
            self.servers.close()


def dropped_result(episode: EpisodeCompletion) -> GraderResult:
    """The result of a dropped episode: no score (masked by the trainer), the reason in details."""
    return GraderResult.failure("episode", "agent", DROPPED_FLAG, f"episode dropped: {episode.dropped}")


def _grade_episodes(
    grading: Any, samples: list[Sample | None], items: list[dict[str, Any]],
    dropped: list[GraderResult | None], notify: Notify | None,
) -> tuple[Graded, float]:  # fmt: skip
    start = time.perf_counter()
    keep = [i for i, s in enumerate(samples) if s is not None]
    graded = Graded()
    if keep:
        kept = [samples[i] for i in keep]
        graded = grade_with_regrade(grading, kept, [items[i] for i in keep], notify=notify)
    results: list[GraderResult] = [r for r in dropped]  # type: ignore[misc]
    for index, result in zip(keep, graded.results, strict=True):
        results[index] = result
    return Graded(results=results, regraded_samples=graded.regraded_samples), time.perf_counter() - start


def start_agent_collect(
    runner: EpisodeRunner, engine: RolloutEngine, grading: Any, lines: list[DatasetLine],
    prompt_ids: list[list[int]], settings: SamplingSettings, *, reasoning: bool = False,
    pool: ThreadPoolExecutor | None = None, notify: Notify | None = None,
) -> PendingRollouts:  # fmt: skip
    """Run the batch's episodes here and hand them to `pool` for grading (dropped ones are not graded)."""
    own_pool = None if pool is not None else ThreadPoolExecutor(1, thread_name_prefix="grading")
    start = time.perf_counter()
    groups = runner.run(engine, lines, prompt_ids, settings)
    sampling = time.perf_counter() - start
    samples: list[Sample | None] = []
    items: list[dict[str, Any]] = []
    dropped: list[GraderResult | None] = []
    for line, group in zip(lines, groups, strict=True):
        item = line.item()
        for episode in group:
            gone = episode.dropped is not None
            samples.append(
                None
                if gone
                else runner.sample(episode, reasoning=reasoning, response_format=line.response_format)
            )
            dropped.append(dropped_result(episode) if gone else None)
            items.append(item)
    future: Future = (pool or own_pool).submit(_grade_episodes, grading, samples, items, dropped, notify)  # type: ignore[union-attr]
    return PendingRollouts(groups, [future], sampling, own_pool)  # type: ignore[arg-type]


def tool_metrics(groups: list[list[Completion]], prefix: str = "") -> dict[str, Any]:
    """The events' tool metrics for a batch of episodes (empty for plain completions); keys get `prefix_`."""
    episodes = [c for group in groups for c in group if isinstance(c, EpisodeCompletion)]
    if not episodes:
        return {}
    results = [r for e in episodes for r in e.tool_results]
    calls = sum(len(e.tool_calls) for e in episodes)
    errors = Counter(r.kind for r in results if r.kind != "ok")
    model_tokens = sum(e.model_tokens for e in episodes)
    ok_episodes = sum(1 for e in episodes if e.tool_results and all(r.kind == "ok" for r in e.tool_results))
    latencies = [r.latency_s for r in results]
    metrics = {
        "tool_calls_per_rollout": calls / len(episodes),
        "tokens_per_tool_call": model_tokens / calls if calls else float("nan"),
        "tool_latency_mean_s": statistics.fmean(latencies) if latencies else 0.0,
        "tool_latency_max_s": max(latencies, default=0.0),
        "tool_errors": dict(sorted(errors.items())),
        "tool_call_success_share": ok_episodes / len(episodes),  # episodes whose calls all worked
        "episodes_dropped": sum(1 for e in episodes if e.dropped is not None),
        "turns_mean": statistics.fmean(e.turns for e in episodes),
    }
    return {f"{prefix}_{key}" if prefix else key: value for key, value in metrics.items()}
