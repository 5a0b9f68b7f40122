"""TRL's own GRPOTrainer trains a tiny model for a few steps with its reward from the grader service."""

from __future__ import annotations

import pytest
from rftkit.grader_service.embedded import start_local_service
from rftkit.grader_service.testing import metric, metrics_text

# Uses the dataset column "answer" (it arrives as the item) and the chat completion's text.
REWARD_SOURCE = """\
def grade(sample, item):
    text = sample["output_text"]
    if item["answer"] in text:
        return 1.0
    return 0.5 * sum(c.isdigit() for c in text) / max(1, len(text))
"""


@pytest.mark.timeout(300)
def test_grpo_trainer_trains_on_the_remote_reward(tmp_path, sandbox) -> None:
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from rftkit.grading.trl_adapter import remote_reward
    from rftkit.trainer.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    rows = [
        {"prompt": [{"role": "user", "content": f"{a}+{b}="}], "answer": str(a + b)}
        for a in range(4)
        for b in range(4)
    ]
    texts = [f"{a}+{b}={a + b}" for a in range(10) for b in range(10)] * 5
    model_dir = build_tiny_model(tmp_path / "model", texts, vocab_size=300)

    with start_local_service(sandbox=sandbox, metrics=True) as service:
        grader_id, _ = service.client().create_grader(REWARD_SOURCE, name="sum")

        reward_fn = remote_reward(service.address, grader_id, token=service.token)
        args = trl.GRPOConfig(
            output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to="none", max_steps=2,
            per_device_train_batch_size=4, num_generations=4, max_completion_length=8, logging_steps=1,
            save_strategy="no", gradient_checkpointing=False, seed=0,
        )  # fmt: skip
        trainer = trl.GRPOTrainer(
            model=str(model_dir), reward_funcs=[reward_fn], args=args, train_dataset=Dataset.from_list(rows)
        )
        trainer.train()
        graded = metric(metrics_text(service), "rft_grades_total", grader_type="python")

    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert trainer.state.global_step == 2 and len(logged) == 2
    assert all(0.0 <= entry["reward"] <= 1.0 for entry in logged)
    assert graded >= 2 * 4  # every completion of both steps was graded by the service
    assert reward_fn.errors == 0


CRASHING_SOURCE = """\
def grade(sample, item):
    if sample["output_text"] == "crash":
        raise ValueError("this grader cannot read it")
    return float(sample["output_text"] == item["answer"])
"""
JSON_SPEC = {"type": "string_check", "name": "json", "input": "{{sample.output_json.answer}}",
             "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip


@pytest.mark.timeout(120)
def test_failed_gradings_are_none_for_trl_and_real_zeros_stay_zero(sandbox) -> None:
    from rftkit.grading.trl_adapter import remote_reward

    with start_local_service(sandbox=sandbox) as service:
        grader_id, _ = service.client().create_grader(CRASHING_SOURCE, name="crashy")
        reward_fn = remote_reward(service.address, grader_id, token=service.token)
        completions = ["7", "crash", "<think>seven</think> 7", "8"]
        rewards = reward_fn(prompts=["q"] * 4, completions=completions, answer=["7"] * 4)
        assert rewards == [1.0, None, 1.0, 0.0]  # the crash has no reward; the think block is not answer
        assert reward_fn.errors == 1
        zero_fn = remote_reward(service.address, grader_id, token=service.token, on_error="zero")
        assert zero_fn(prompts=["q"], completions=["crash"], answer=["7"]) == [0.0]
        # A sample whose own output is at fault (not JSON where JSON is read) keeps a real 0.
        parse_fn = remote_reward(service.address, JSON_SPEC, token=service.token)
        assert parse_fn(
            prompts=["q", "q"], completions=["not json", '{"answer": "7"}'], answer=["7", "7"]
        ) == [
            0.0,
            1.0,
        ]
