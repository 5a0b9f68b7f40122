"""An eval run: every model answers every item, the grader service scores, results and summary are written."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..core.records import DeclaredMetrics
from ..grading.session import GradingSession, open_session
from ..grading.spec_file import load_grader_file
from ..grading.verdict import pass_rule
from ..plugins.registry import grader_types, parse_spec
from .agent import agent_config_for, agent_models
from .data import load_items
from .generation import EvalModel, Generation
from .metrics import __doc__ as METRICS_DOC
from .metrics import summarize
from .models import ModelArgError, ModelOptions, open_model
from .records import SampleRecord, make_record, to_sample
from .settings import EvalSettings

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
GRADER_FILE = "grader.json"


def open_models(args: Sequence[str], options: ModelOptions) -> list[EvalModel]:
    """Every --model, checked before any work starts; names must be unique."""
    models = [open_model(arg, options) for arg in args]
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelArgError(f"model names must be unique; repeated: {', '.join(duplicates)} (use NAME=...)")
    return models


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def declared_metrics(spec: dict[str, Any]) -> DeclaredMetrics | None:
    """What the spec's results carry, as its grader type declares; None for a type not installed here."""
    cls = grader_types().get(spec.get("type", ""))
    return None if cls is None else cls.declared_metrics(parse_spec(spec))


def grade_model(
    model: EvalModel,
    items: Sequence[Mapping[str, Any]],
    generations: list[list[Generation]],
    grading: GradingSession,
    run: EvalSettings,
    declared: DeclaredMetrics | None,
    advance: Any,
) -> tuple[list[SampleRecord], DeclaredMetrics]:
    """Grade every sample that has an answer (in batches); the results lines and the metrics they carry."""
    keys = [(i, j) for i, row in enumerate(generations) for j, gen in enumerate(row) if gen.error is None]
    results: dict[tuple[int, int], Any] = {}
    for start in range(0, len(keys), grading.batch_size):
        chunk = keys[start : start + grading.batch_size]
        samples = [to_sample(generations[i][j], items[i]) for i, j in chunk]
        graded = grading.grade(samples, [items[i] for i, _ in chunk])
        results.update(zip(chunk, graded, strict=True))
        advance(len(chunk))
    if declared is None:  # a grader type this machine does not have: what its results carry
        seen = {flag for result in results.values() for flag in result.metadata.passes}
        declared = DeclaredMetrics(passes=tuple(sorted(seen)))
    records = [
        make_record(
            model.name,
            i,
            j,
            items[i],
            gen,
            results.get((i, j)),
            run.pass_threshold,
            declared,
        )
        for i, row in enumerate(generations)
        for j, gen in enumerate(row)
    ]
    return records, declared


def run_eval(run: EvalSettings, console: Console | None = None) -> dict[str, Any]:
    """Run the eval, write results.jsonl, summary.json and grader.json under run.output_dir; the summary."""
    console = console or Console(stderr=True)
    items = load_items(run.data, run.max_items)
    spec = load_grader_file(run.grader)
    declared = declared_metrics(spec)
    models = open_models(run.models, run.model_options())
    models = agent_models(models, agent_config_for(items, run.agent_config), items)  # agent hook: episodes
    run.output_dir.mkdir(parents=True, exist_ok=True)
    records_by_model: dict[str, list[SampleRecord]] = {}
    total = len(items) * run.samples
    try:
        with (
            open_session(
                spec,
                address=run.server,
                token=run.token,
                sandbox=run.sandbox,
                batch_size=run.grade_batch_size,
                notify=console.print,
            ) as grading,  # fmt: skip
            (run.output_dir / RESULTS_FILE).open("w", encoding="utf-8") as out,
            _progress(console) as progress,
        ):
            # Model k is graded in the background while model k+1 generates.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="grade") as grader:
                pending: list[tuple[EvalModel, Future[tuple[list[SampleRecord], DeclaredMetrics]]]] = []
                for model in models:
                    task = progress.add_task(f"{model.name}: generate", total=total)
                    generations = model.generate(items, run.samples, lambda k, t=task: progress.advance(t, k))
                    graded = sum(1 for row in generations for gen in row if gen.error is None)
                    task = progress.add_task(f"{model.name}: grade", total=graded)
                    advance = partial(progress.advance, task)
                    job = grader.submit(
                        grade_model, model, items, generations, grading, run, declared, advance
                    )
                    pending.append((model, job))
                for model, job in pending:
                    records, seen = job.result()
                    declared = declared or seen  # an unknown type: the first model's results say
                    out.writelines(record.model_dump_json() + "\n" for record in records)
                    out.flush()
                    records_by_model[model.name] = records
            where = grading.where
    finally:
        for model in models:
            model.close()
    shown = declared or DeclaredMetrics()
    summary = {
        "kind": "rft-eval",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(run.data),
        "n_items": len(items),
        "samples_per_item": run.samples,
        "grader": {
            "name": spec.get("name"),
            "type": spec.get("type"),
            "pass_rule": pass_rule(spec.get("pass_threshold"), run.pass_threshold),
            "graded_by": where,
            "rates": [{"name": n, "label": label} for n, _f, label in shown.rate_flags()],
            "distribution": shown.distribution,
        },
        "model_sources": {m.name: m.describe() for m in models},
        "models": summarize(records_by_model, shown),
        "metrics": " ".join((METRICS_DOC or "").split()),
    }
    (run.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (run.output_dir / GRADER_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return summary
