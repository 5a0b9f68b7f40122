"""Evals the dashboard shows from the Evals API's database (`/v1/evals`): one eval is one page, its
runs are its "models" side by side, each run's output items are its samples.

The samples table is one SQL query a page (count + offset/limit on the run's output items, filtered
by the item's own `status`, so `pass` / `fail` / `error` are exactly what
`GET /v1/evals/{eval_id}/runs/{run_id}/output_items?status=...` answers). The chart's numbers are
computed from the output items once per finished run and kept: pass rate (items whose status is
`pass`), mean reward (the item's mean score over the testing criteria; an errored criterion scores
what the grader gave, usually 0) and, with several criteria, each criterion's pass rate; rates with
Wilson intervals, the mean with the percentile bootstrap (evals/metrics.py).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from statistics import fmean
from typing import Any

from sqlalchemy import String, case, cast, func, or_, select

from ....evals.metrics import bootstrap_mean_interval, wilson_interval
from ....evals.report import page as report
from ..db import Database, EvalRow, EvalRunRow, OutputItemRow
from .evaldata import Entry

BOOTSTRAP_BUDGET = 1_000_000  # resamples x items drawn for one mean-reward interval (10,000 items: 100)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return "" if content is None else str(content)


def _mean_score(results: list[Any]) -> float:
    scores = [float(r.get("score") or 0.0) for r in results if isinstance(r, dict)]
    return fmean(scores) if scores else 0.0


def record_of(row: OutputItemRow) -> dict[str, Any]:
    """An output item as an `rft eval` results line, so the report's own row code shows it."""
    sample = row.sample if isinstance(row.sample, dict) else {}
    item = row.datasource_item if isinstance(row.datasource_item, dict) else {}
    messages = sample.get("input") or item.get("messages") or []
    messages = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))}
                for m in messages if isinstance(m, dict)]  # fmt: skip
    outputs = [m for m in sample.get("output") or [] if isinstance(m, dict)]
    answer = "\n".join(_text(m.get("content")) for m in outputs)
    reasoning = sample.get("reasoning") or next(
        (m.get(k) for m in outputs for k in ("reasoning", "reasoning_content") if m.get(k)), None
    )
    parsed: Any = None
    if answer.lstrip().startswith("{"):
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = None
    results = [r for r in row.results or [] if isinstance(r, dict)]
    errors = list(dict.fromkeys(str(e) for r in results for e in r.get("errors") or []))
    details = "; ".join(str(r["error_details"]) for r in results if r.get("error_details"))
    generation = (sample.get("error") or {}).get("message") if isinstance(sample.get("error"), dict) else None
    if generation and generation not in details:
        details = f"{generation}; {details}" if details else str(generation)
    return {
        "item_index": row.datasource_item_id,
        "sample_index": 0,
        "input": messages,
        "output": answer,
        "output_json": parsed if isinstance(parsed, dict) else None,
        "reasoning": reasoning,
        "reference": {k: v for k, v in item.items() if k != "messages"},
        "reward": _mean_score(results),
        "passed": row.status == "pass",
        "valid": row.status != "error",
        "errors": errors,
        "error_details": details or None,
    }


def summary_of(rows: list[tuple[str, list[Any]]], criteria: list[str]) -> dict[str, Any]:
    """A run's chart numbers from its output items' (status, results): the summary.json entry shape."""
    n = len(rows)
    if not n:
        return {"n": 0}
    rewards = [_mean_score(results) for _, results in rows]
    passed = sum(status == "pass" for status, _ in rows) / n
    resamples = max(50, min(2000, BOOTSTRAP_BUDGET // n))
    summary: dict[str, Any] = {
        "n": n,
        "mean_reward": round(fmean(rewards), 6),
        "mean_reward_ci": [round(b, 6) for b in bootstrap_mean_interval(rewards, resamples=resamples)],
        "pass_rate": round(passed, 6),
        "pass_rate_ci": [round(b, 6) for b in wilson_interval(passed, n)],
        "samples_with_errors": sum(status == "error" for status, _ in rows),
    }
    if len(criteria) > 1:
        for index, name in enumerate(criteria):
            rate = sum(
                1 for _, results in rows
                if index < len(results) and isinstance(results[index], dict) and results[index].get("passed")
            ) / n  # fmt: skip
            summary[f"criterion:{name}"] = round(rate, 6)
            summary[f"criterion:{name}_ci"] = [round(b, 6) for b in wilson_interval(rate, n)]
    return summary


class ApiEval:
    """One eval of the Evals API with its runs (the models), as the dashboard's pages read it."""

    source = "api"

    def __init__(self, db: Database, row: EvalRow, runs: list[EvalRunRow], cache: SummaryCache) -> None:
        self.db = db
        self.row = row
        self.runs = runs
        self._cache = cache
        self.name = row.id
        self.title = row.name or row.id
        labels: dict[str, str] = {}
        for run in runs:
            label = run.model or run.name or run.id
            labels[run.id] = label if label not in labels.values() else f"{label} · {run.id[-6:]}"
        self.labels = labels

    @property
    def models(self) -> list[str]:
        return [run.id for run in self.runs]

    def label(self, model: str) -> str:
        return self.labels.get(model, model)

    @property
    def total(self) -> int:
        return sum(int((run.result_counts or {}).get("total") or 0) for run in self.runs)

    @property
    def grader(self) -> str:
        criteria = self.row.testing_criteria or []
        return ", ".join(f"{c.get('name')} ({c.get('type')})" for c in criteria if isinstance(c, dict)) or "—"

    @property
    def criteria(self) -> list[str]:
        return [str(c.get("name")) for c in self.row.testing_criteria or [] if isinstance(c, dict)]

    def _where(self, status: str, model: str, query: str) -> list[Any]:
        runs = [model] if model else self.models
        where: list[Any] = [OutputItemRow.run_id.in_(runs)]
        if status in ("pass", "fail", "error"):
            where.append(OutputItemRow.status == status)
        needle = query.strip()
        if needle:
            pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            columns = (OutputItemRow.datasource_item, OutputItemRow.sample, OutputItemRow.results)
            where.append(or_(*(cast(c, String).ilike(pattern, escape="\\") for c in columns)))
        return where

    def page(
        self, status: str, model: str, query: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many items match, the rows of one page): item order, then the runs' order."""
        if not self.runs:
            return 0, []
        where = self._where(status, model, query)
        run_order = case({run.id: i for i, run in enumerate(self.runs)}, value=OutputItemRow.run_id)
        order_by = (
            [OutputItemRow.seq] if model else [OutputItemRow.datasource_item_id, run_order, OutputItemRow.seq]
        )
        with self.db.session() as session:
            matched = int(session.scalar(select(func.count()).select_from(OutputItemRow).where(*where)) or 0)
            rows = session.scalars(select(OutputItemRow).where(*where).order_by(*order_by)
                                   .offset(offset).limit(limit)).all()  # fmt: skip
            shown = [self.row_of(r) for r in rows]
        return matched, shown

    def row_of(self, row: OutputItemRow) -> dict[str, Any]:
        record = record_of(row)
        shown = report.sample_row(record, row.run_id)
        shown.update(label=self.label(row.run_id), status=row.status, output_item=row.id,
                     reference=record["reference"],
                     criteria=[(str(r.get("name")), r.get("score"), bool(r.get("passed")))
                               for r in row.results or [] if isinstance(r, dict)])  # fmt: skip
        return shown

    def item(self, item_index: int) -> dict[str, list[dict[str, Any]]]:
        """Every run's output items of one datasource item: run id -> rows."""
        found: dict[str, list[dict[str, Any]]] = {}
        with self.db.session() as session:
            rows = session.scalars(select(OutputItemRow).where(
                OutputItemRow.run_id.in_(self.models), OutputItemRow.datasource_item_id == item_index
            ).order_by(OutputItemRow.seq)).all()  # fmt: skip
            for row in rows:
                found.setdefault(row.run_id, []).append(self.row_of(row))
        return {m: found[m] for m in self.models if m in found}

    def entries(self) -> tuple[list[Entry], dict[str, str]]:
        """The chart's bars: one entry per run with output items, and the metrics shown."""
        criteria = self.criteria
        entries = []
        for run in self.runs:
            summary = self._cache.get(self.db, run, criteria)
            if summary.get("n"):
                counts = run.result_counts or {}
                summary = {**summary, "result_counts": counts}
                entries.append(Entry(run.id, self.label(run.id), summary))
        metrics = dict(report.METRIC_LABELS)
        if len(criteria) > 1:
            metrics.update({f"criterion:{c}": f"{c} pass rate" for c in criteria})
        return entries, metrics


class SummaryCache:
    """Chart numbers per finished run, computed once (a run's items do not change once it has ended)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, db: Database, run: EvalRunRow, criteria: list[str]) -> dict[str, Any]:
        key = (run.id, run.status, run.finished_at, tuple(criteria))
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        with db.session() as session:
            rows = [(s, list(r or [])) for s, r in session.execute(
                select(OutputItemRow.status, OutputItemRow.results).where(OutputItemRow.run_id == run.id)
                .order_by(OutputItemRow.seq))]  # fmt: skip
        summary = summary_of(rows, criteria)
        if run.status in ("completed", "failed", "canceled"):
            with self._lock:
                self._kept[key] = summary
                while len(self._kept) > self.capacity:
                    self._kept.popitem(last=False)
        return summary


class ApiEvals:
    """The tenants' evals in the Evals API's database (every query filtered by tenant)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.cache = SummaryCache()

    def list(self, tenant: str) -> list[ApiEval]:
        """The tenant's evals, newest first, each with its runs."""
        with self.db.session() as session:
            evals = session.scalars(
                select(EvalRow)
                .where(EvalRow.tenant == tenant, EvalRow.deleted.is_(False))
                .order_by(EvalRow.seq.desc())
            ).all()
            runs = session.scalars(
                select(EvalRunRow)
                .where(EvalRunRow.tenant == tenant, EvalRunRow.deleted.is_(False))
                .order_by(EvalRunRow.seq)
            ).all()
        by_eval: dict[str, list[EvalRunRow]] = {}
        for run in runs:
            by_eval.setdefault(run.eval_id, []).append(run)
        return [ApiEval(self.db, row, by_eval.get(row.id, []), self.cache) for row in evals]

    def get(self, tenant: str, eval_id: str) -> ApiEval | None:
        """The tenant's eval `eval_id` with its runs; None when it has none by that id."""
        if not eval_id.startswith("eval_"):
            return None
        with self.db.session() as session:
            row = session.scalar(select(EvalRow).where(
                EvalRow.id == eval_id, EvalRow.tenant == tenant, EvalRow.deleted.is_(False)))  # fmt: skip
            if row is None:
                return None
            runs = session.scalars(select(EvalRunRow).where(
                EvalRunRow.eval_id == eval_id, EvalRunRow.tenant == tenant, EvalRunRow.deleted.is_(False)
            ).order_by(EvalRunRow.seq)).all()  # fmt: skip
        return ApiEval(self.db, row, list(runs), self.cache)


__all__ = ["ApiEval", "ApiEvals", "record_of", "summary_of"]
