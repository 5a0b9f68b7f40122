"""OpenAI's fine-tuning, graders and evals APIs against rftkit, with the official `openai` SDK.

Start a server (the tiny example model as base model `tiny`), then run this script:

    rft serve --insecure-local --http-port 8000 --base-model tiny=examples/tiny/config.yaml
    python examples/openai_sdk/quickstart.py --base-url http://127.0.0.1:8000/v1

It uploads the tiny example's training and validation files, starts a reinforcement fine-tuning job
with a string_check grader, prints its events until it is done, lists its checkpoints, chats with the
fine-tuned model, creates an eval with the same grader, runs it on the base and the fine-tuned model,
and lists the items the fine-tuned model failed. Only `base_url` and the key differ from a script
written for OpenAI's platform (`extra_body={"rftkit": ...}` is rftkit's own, for a shorter run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

from openai import OpenAI

HERE = Path(__file__).resolve().parent
TINY = HERE.parent / "tiny"
GRADER = json.loads((TINY / "grader.json").read_text())  # string_check: the reply must equal item.answer
DONE = {"succeeded", "failed", "cancelled"}


def jsonl(path: Path, lines: int | None, wrap: bool = False) -> bytes:
    """The first `lines` lines of a JSONL file; each as {"item": line} for an evals file."""
    rows = [json.loads(raw) for raw in path.read_text().splitlines() if raw.strip()][:lines]
    return "".join(json.dumps({"item": row} if wrap else row) + "\n" for row in rows).encode()


def wait_for_job(client: OpenAI, job_id: str) -> str:
    """Print the job's events as they come (oldest first) until it is done; its final status."""
    seen: set[str] = set()
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
        for event in reversed(events):
            if event.id not in seen:
                seen.add(event.id)
                print(f"  [{event.type}] {event.message}")
        if job.status in DONE:
            return job.status
        time.sleep(2)


def wait_for_run(client: OpenAI, eval_id: str, run_id: str):
    while True:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status not in ("queued", "in_progress"):
            return run
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "local"))
    parser.add_argument("--model", default="tiny", help="A base model of the server (--base-model NAME=...).")
    parser.add_argument("--train-lines", type=int, default=None, help="Use only the first N training lines.")
    parser.add_argument("--valid-lines", type=int, default=64, help="Validation (and eval) lines.")
    parser.add_argument("--max-steps", type=int, default=None, help="Stop training after N steps (rftkit).")
    parser.add_argument("--quick", action="store_true", help="Small rollouts with transformers (rftkit).")
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)

    # 1. Files: the training and validation sets (answers in the two files do not overlap).
    train = client.files.create(
        file=("train.jsonl", io.BytesIO(jsonl(TINY / "train.jsonl", args.train_lines))), purpose="fine-tune"
    )
    valid = client.files.create(
        file=("valid.jsonl", io.BytesIO(jsonl(TINY / "valid.jsonl", args.valid_lines))), purpose="fine-tune"
    )
    print(f"uploaded {train.id} ({train.bytes} bytes) and {valid.id} ({valid.bytes} bytes)")

    # 2. A reinforcement fine-tuning job graded by string_check.
    overrides: dict[str, object] = {}
    if args.max_steps:
        overrides["trainer.max_steps"] = args.max_steps
    if args.quick:
        overrides |= {"rollout.engine": "transformers", "rollout.n": 4, "eval.max_items": 8}
    job = client.fine_tuning.jobs.create(
        model=args.model,
        training_file=train.id,
        validation_file=valid.id,
        suffix="quickstart",
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {"batch_size": 8, "n_epochs": 2, "eval_interval": 2, "eval_samples": 2},
            },
        },
        extra_body={"rftkit": {"overrides": overrides}} if overrides else None,
    )
    print(f"job {job.id}: {job.status}")

    # 3. Watch it train.
    status = wait_for_job(client, job.id)
    job = client.fine_tuning.jobs.retrieve(job.id)
    if status != "succeeded":
        raise SystemExit(f"job {job.id} {status}: {job.error}")
    print(f"fine-tuned model: {job.fine_tuned_model}")

    # 4. Its checkpoints (the best by validation reward are kept).
    for checkpoint in client.fine_tuning.jobs.checkpoints.list(job.id):
        print(
            f"  step {checkpoint.step_number}: {checkpoint.fine_tuned_model_checkpoint} {checkpoint.metrics}"
        )

    # 5. Chat with the fine-tuned model by name.
    question = json.loads(jsonl(TINY / "valid.jsonl", 1))["messages"]
    reply = client.chat.completions.create(
        model=job.fine_tuned_model, messages=question, max_completion_tokens=4, temperature=0
    )
    print(f"chat: {question[-1]['content']!r} -> {reply.choices[0].message.content!r}")

    # 6. An eval with the same grader, run on the base and the fine-tuned model.
    evals_file = client.files.create(
        file=("valid-items.jsonl", io.BytesIO(jsonl(TINY / "valid.jsonl", args.valid_lines, wrap=True))),
        purpose="evals",
    )
    item_schema = {
        "type": "object",
        "properties": {"messages": {"type": "array"}, "answer": {"type": "string"}},
        "required": ["messages", "answer"],
    }
    evaluation = client.evals.create(
        name="tiny: which item",
        data_source_config={"type": "custom", "item_schema": item_schema, "include_sample_schema": True},
        testing_criteria=[GRADER],
    )
    runs = {}
    for model in (args.model, job.fine_tuned_model):
        run = client.evals.runs.create(
            evaluation.id,
            name=model,
            data_source={
                "type": "completions",
                "model": model,
                "source": {"type": "file_id", "id": evals_file.id},
                "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                "sampling_params": {"temperature": 0, "max_completion_tokens": 4},
            },
        )
        runs[model] = run.id
    for model, run_id in runs.items():
        run = wait_for_run(client, evaluation.id, run_id)
        counts = run.result_counts
        print(f"eval {model}: {run.status}, passed {counts.passed}/{counts.total} (errored {counts.errored})")
        if run.status != "completed":
            raise SystemExit(f"eval run {run_id} {run.status}: {run.error}")

    # 7. What the fine-tuned model still gets wrong.
    failed = client.evals.runs.output_items.list(
        runs[job.fine_tuned_model], eval_id=evaluation.id, status="fail"
    )
    for item in failed:
        answer = item.sample.output[0].content if item.sample.output else None
        print(
            f"  failed #{item.datasource_item_id}: wanted {item.datasource_item['answer']!r}, got {answer!r}"
        )
    print("done")


if __name__ == "__main__":
    main()
