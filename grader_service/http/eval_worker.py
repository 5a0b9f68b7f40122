"""One eval run, in its own process (started by evalrunner.py): `rft eval`'s code does the work.

    python -c "from rftkit.grader_service.http.eval_worker import main; main()" RUN_DIR

Reads RUN_DIR/request.json and lines.jsonl (written when the run was created) and writes
output_items.jsonl and result.json. A `completions` run renders each item's input messages, has the
model answer through `run_eval` (evals/runner.py: generation, grading by the first criterion,
results.jsonl) and grades the answers by the other criteria in grading sessions; a `jsonl` run grades
each line's sample (or the item alone) by every criterion in grading sessions.
The API key of the server's own chat completions comes in RFT_EVAL_API_KEY (never in a file).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ...core.records import GraderResult, Sample
from ...grading.session import open_session
from ...grading.verdict import is_pass
from ...plugins.base import InvalidVariableError
from ...plugins.templates import render

GENERATION_ERROR = "generation_error"


def _read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines() if raw.strip()]


def _content(content: Any, item: dict[str, Any] | None) -> str:
    """A message's content as text (parts joined); rendered against `item` when it is a template."""
    if isinstance(content, dict):
        content = content.get("text", "")
    elif isinstance(content, list):
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content) if item is None else render(str(content), Sample(), item)


def input_messages(spec: dict[str, Any], item: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages an item's sample answers (ValueError naming what is missing)."""
    if spec["type"] == "item_reference":
        value: Any = {"item": item}
        for part in str(spec["item_reference"]).split("."):
            if not isinstance(value, dict) or part not in value:
                raise ValueError(f"the item has no {spec['item_reference']}")
            value = value[part]
        if not isinstance(value, list):
            raise ValueError(f"{spec['item_reference']} is not a list of messages")
        return [
            {"role": str(m.get("role", "user")), "content": _content(m.get("content", ""), None)}
            for m in value
        ]
    messages = []
    for message in spec["template"]:
        role = message.get("role", "user")
        messages.append({"role": "system" if role == "developer" else role,
                         "content": _content(message.get("content", ""), item)})  # fmt: skip
    return messages


def criterion_result(
    spec: dict[str, Any], result: GraderResult | None, error: str | None = None
) -> dict[str, Any]:
    """One entry of an output item's `results` (OpenAI's shape, with rftkit's error flags)."""
    if result is None:
        return {"name": spec["name"], "type": spec.get("type"), "passed": False, "score": 0.0, "sample": None,
                "errors": [GENERATION_ERROR], "error_details": error}  # fmt: skip
    errors = result.metadata.errors.raised()
    return {
        "name": spec["name"], "type": spec.get("type"), "passed": is_pass(result), "score": result.reward,
        "sample": None, "sub_rewards": result.sub_rewards, "errors": errors,
        "error_details": result.metadata.errors.details,
    }  # fmt: skip


def grade_all(
    criteria: list[dict[str, Any]], samples: list[Sample | None], items: list[dict[str, Any]], sandbox: str,
) -> list[list[GraderResult | None]]:  # fmt: skip
    """Per criterion, each sample's result (None for a sample that is not there to grade)."""
    out: list[list[GraderResult | None]] = []
    for spec in criteria:
        keep = [i for i, s in enumerate(samples) if s is not None]
        results: list[GraderResult | None] = [None] * len(samples)
        if keep:
            with open_session(spec, sandbox=sandbox, notify=lambda m: print(m, flush=True)) as session:
                graded = session.grade([samples[i] for i in keep], [items[i] for i in keep])  # type: ignore[misc]
            for i, result in zip(keep, graded, strict=True):
                results[i] = result
        out.append(results)
    return out


def _sample_record(
    request: dict[str, Any], messages: list[dict[str, str]], text: str | None, finish: str | None,
    error: str | None, model: str,
) -> dict[str, Any]:  # fmt: skip
    params = request.get("sampling_params") or {}
    return {
        "input": messages,
        "output": [] if text is None else [{"role": "assistant", "content": text}],
        "finish_reason": finish or ("" if text is None else "stop"),
        "model": model,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cached_tokens": 0},
        "error": {"code": GENERATION_ERROR, "message": error} if error else {"code": "", "message": ""},
        "temperature": params.get("temperature", 1.0),
        "max_completion_tokens": params.get("max_completion_tokens", 0),
        "top_p": params.get("top_p", 1.0),
        "seed": params.get("seed", 0),
    }


def run_completions(
    run_dir: Path, request: dict[str, Any], lines: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Generate with `run_eval` (graded by the first criterion), then grade by the others."""
    from rich.console import Console

    from ...evals.runner import RESULTS_FILE, run_eval
    from ...evals.settings import EvalSettings

    items = [line["item"] for line in lines]
    rendered: list[list[dict[str, str]] | None] = []
    errors: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            rendered.append(input_messages(request["input_messages"], item))
        except (ValueError, InvalidVariableError, KeyError) as exc:
            rendered.append(None)
            errors[index] = f"input_messages: {exc}"
    keep = [i for i, m in enumerate(rendered) if m]
    criteria = request["criteria"]
    outputs: dict[int, tuple[str | None, str | None, str | None]] = {
        i: (None, None, errors[i]) for i in errors
    }
    first: dict[int, dict[str, Any]] = {}
    samples: list[Sample | None] = [None] * len(items)
    if keep:
        data = run_dir / "eval" / "data.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        with data.open("w", encoding="utf-8") as out:
            for i in keep:
                out.write(json.dumps({**items[i], "messages": rendered[i]}) + "\n")
        grader = run_dir / "eval" / "criterion0.json"
        grader.write_text(json.dumps(criteria[0]), encoding="utf-8")
        params = request.get("sampling_params") or {}
        settings = EvalSettings(
            data=data,
            grader=grader,
            models=[request["model_target"]],
            output_dir=run_dir / "eval",
            sandbox=request.get("sandbox", "auto"),
            temperature=params.get("temperature"),
            max_tokens=params.get("max_completion_tokens"),
            api_key=os.environ.get("RFT_EVAL_API_KEY") or None,
            engine=request.get("chat_engine", "auto"),
            retries=2,
            concurrency=8,
        )
        run_eval(settings, console=Console(file=sys.stdout, force_terminal=False, width=120))
        records = _read_lines(run_dir / "eval" / RESULTS_FILE)
        from ...grading.answers import to_sample

        for record in records:
            i = keep[record["item_index"]]
            if GENERATION_ERROR in record["errors"]:
                outputs[i] = (None, None, record.get("error_details") or "the model gave no answer")
                continue
            outputs[i] = (record["output"], record.get("finish_reason"), None)
            samples[i] = to_sample(record["output"], response_format=items[i].get("response_format"),
                                   finish_reason=record.get("finish_reason"))  # fmt: skip
            first[i] = record_result(criteria[0], record)
    others = grade_all(criteria[1:], samples, items, request.get("sandbox", "auto"))
    model = str(request.get("model_name") or "")
    answer = []
    for i, line in enumerate(lines):
        text, finish, error = outputs.get(i, (None, None, "not generated"))
        messages = rendered[i] or []
        results = [first.get(i) or criterion_result(criteria[0], None, error)]
        results += [criterion_result(spec, others[c][i], error) for c, spec in enumerate(criteria[1:])]
        sample = _sample_record(request, messages, text, finish, error, model)
        answer.append(_item(i, line, results, sample, error))
    return answer


def record_result(spec: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The `results` entry of the criterion `run_eval` graded, from its results.jsonl line."""
    return {
        "name": spec["name"],
        "type": spec.get("type"),
        "passed": bool(record["passed"]),
        "score": record["reward"],
        "sample": None,
        "sub_rewards": record.get("sub_rewards") or {},
        "errors": list(record.get("errors") or []),
        "error_details": record.get("error_details"),
    }


def _item(index: int, line: dict[str, Any], results: list[dict[str, Any]], sample: dict[str, Any],
          error: str | None) -> dict[str, Any]:  # fmt: skip
    errored = error is not None or any(r["errors"] for r in results)
    status = "error" if errored else "pass" if all(r["passed"] for r in results) else "fail"
    return {"datasource_item_id": index, "datasource_item": line["item"], "status": status,
            "results": results, "sample": sample}  # fmt: skip


def run_jsonl(request: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grade each line's sample (an empty one when the line has none) by every criterion."""
    items = [line["item"] for line in lines]
    samples: list[Sample | None] = []
    problems: dict[int, str] = {}
    for index, line in enumerate(lines):
        try:
            samples.append(Sample.from_data(line.get("sample") or {}))
        except ValueError as exc:
            samples.append(None)
            problems[index] = str(exc)
    criteria = request["criteria"]
    graded = grade_all(criteria, samples, items, request.get("sandbox", "auto"))
    answer = []
    for i, line in enumerate(lines):
        sample = line.get("sample") or {}
        text = samples[i].output_text if samples[i] is not None else None  # type: ignore[union-attr]
        results = [criterion_result(spec, graded[c][i], problems.get(i)) for c, spec in enumerate(criteria)]
        record = _sample_record(request, list(sample.get("input") or []), text, sample.get("finish_reason"),
                                problems.get(i), str(sample.get("model", "")))  # fmt: skip
        answer.append(_item(i, line, results, record, problems.get(i)))
    return answer


def summarize(criteria: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    """result_counts and per_testing_criteria_results of a run's output items."""
    counts = {"total": len(items), "errored": 0, "failed": 0, "passed": 0}
    for item in items:
        counts[{"pass": "passed", "fail": "failed", "error": "errored"}[item["status"]]] += 1
    per = [
        {"testing_criteria": spec["name"],
         "passed": sum(1 for it in items if it["results"][c]["passed"]),
         "failed": sum(1 for it in items if not it["results"][c]["passed"])}
        for c, spec in enumerate(criteria)
    ]  # fmt: skip
    return {"result_counts": counts, "per_testing_criteria_results": per}


def main() -> None:
    run_dir = Path(sys.argv[1])
    request = json.loads((run_dir / "request.json").read_text(encoding="utf-8"))
    lines = _read_lines(run_dir / "lines.jsonl")
    try:
        if request["kind"] == "completions":
            items = run_completions(run_dir, request, lines)
        else:
            items = run_jsonl(request, lines)
    except Exception as exc:
        traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
    tmp = run_dir / "output_items.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(item) + "\n" for item in items)
    (run_dir / "result.json").write_text(json.dumps(summarize(request["criteria"], items)), encoding="utf-8")
    tmp.replace(run_dir / "output_items.jsonl")
