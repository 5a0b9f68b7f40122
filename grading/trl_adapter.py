"""A remote grader as a TRL reward function: three lines for an external trainer.

    from .trl_adapter import remote_reward
    reward_fn = remote_reward("graders.internal:50051", "gr_0123456789abcdef", token=os.environ["RFT_TOKEN"])
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_fn], train_dataset=..., args=...)

TRL calls `reward_fn(prompts=, completions=, completion_ids=, <dataset columns>=, trainer_state=)`.
Each completion (a string, or a list of chat messages whose last assistant message is the answer)
becomes a sample with the answer rule every rftkit client uses (`<think>` blocks are reasoning,
not answer); the dataset columns of its row become the item (`{{item.answer}}` etc.). The whole
batch goes to the service in one GradeBatch call, and an outage is waited out as in training. A
sample whose grading failed has no reward: it gets None, which TRL leaves out of the reward mean
(`on_error="zero"` gives the old 0 instead). A sample whose own output is at fault (not JSON
where JSON was asked) keeps its real 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..grader_service.client import GraderClient, GraderLike
from .answers import final_answer
from .session import OutageWait

log = logging.getLogger("rftkit.grader_service.trl")

# Keyword arguments TRL adds that are not dataset columns.
TRL_KWARGS = frozenset({"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"})


def completion_text(completion: Any) -> str:
    """The answer text of a completion: a string as is; for chat messages, the last assistant content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence) and completion:
        messages = [m for m in completion if isinstance(m, Mapping)]
        replies = [m for m in messages if m.get("role") == "assistant"] or messages
        if replies:
            content = replies[-1].get("content", "")
            if isinstance(content, list):  # multimodal parts: keep the text ones
                return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            return str(content)
    return ""


def rows_to_items(count: int, columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-completion items from TRL's column keyword arguments (lists of `count` values)."""
    names = [
        k
        for k, v in columns.items()
        if k not in TRL_KWARGS and isinstance(v, list | tuple) and len(v) == count
    ]
    return [{name: columns[name][i] for name in names} for i in range(count)]


class RemoteReward:
    """Callable with TRL GRPOTrainer's reward-function signature, backed by a grader service."""

    def __init__(
        self,
        client: GraderClient,
        grader: GraderLike,
        *,
        version: str | None = None,
        on_error: Literal["zero", "none"] = "none",
        name: str | None = None,
        wait: OutageWait | None = None,
    ) -> None:
        self.client = client
        self.grader = grader
        self.version = version
        self.on_error = on_error
        self.wait = wait or OutageWait(notify=log.warning, what="the reward function")
        self.__name__ = name or (
            f"remote_{grader}" if isinstance(grader, str) and len(grader) < 40 else "remote"
        )
        self.errors = 0

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        samples = [final_answer(completion_text(c)) for c in completions]
        items = rows_to_items(len(samples), kwargs)
        graded = self.wait.call(
            lambda: self.client.grade_columns(self.grader, samples, items, version=self.version)
        )
        failed = [index for index, valid in enumerate(graded.valid()) if not valid]
        if failed:
            self.errors += len(failed)
            log.warning("%d of %d samples could not be graded (%s)", len(failed), len(samples), self.__name__)
            log_metric = kwargs.get("log_metric")
            if callable(log_metric):
                log_metric(f"{self.__name__}/errors", float(len(failed)))
        out: list[float | None] = list(graded.rewards)
        if self.on_error == "none":
            for index in failed:
                out[index] = None
        return out


def remote_reward(
    address: str,
    grader: GraderLike,
    token: str | None = None,
    *,
    version: str | None = None,
    tls_ca: str | None = None,
    on_error: Literal["zero", "none"] = "none",
    **client_options: Any,
) -> RemoteReward:
    """A reward function for TRL's GRPOTrainer that grades on the service at `address`.

    `grader`: a stored grader's id, or a spec dict / Python source sent inline with each batch.
    """
    client = GraderClient(address, token, tls_ca=tls_ca, **client_options)
    return RemoteReward(client, grader, version=version, on_error=on_error)
