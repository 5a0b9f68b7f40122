"""Evals the dashboard shows, from two sources behind one interface (`EvalView`):

- the Evals API's database (`/v1/evals`, apidata.py): an eval, its runs side by side as the models,
  each run's output items as the samples;
- `rft eval` output folders (summary.json + results.jsonl) kept in the server's data dir under
  `http/eval_runs/<tenant>/<run>/`, one folder per run, each tenant its own (this module).

`rft eval --output-dir DATA_DIR/http/eval_runs/TENANT/NAME ...` puts a run there. A run is read once
and kept (until its files change), with a lower-cased search text per sample, so filtering and paging
10,000 samples is a scan of a list in memory.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ....evals.report import page as report
from ....evals.report.page import sample_row
from ....evals.report.runs import RESULTS_FILE, SUMMARY_FILE, EvalRunData, RunDirError, Runs, load_eval
from ..context import HttpContext

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STATUSES = ("all", "pass", "fail", "error")
SAMPLES_PAGE = 50


def runs_root(ctx: HttpContext, tenant: str) -> Path | None:
    """The tenant's eval run folder (None for a tenant name that is no safe folder name)."""
    if not RUN_NAME.match(tenant):
        return None
    return ctx.settings.root / "eval_runs" / tenant


def is_error(record: dict[str, Any]) -> bool:
    return bool(record.get("errors")) or record.get("valid") is False


def status_of(record: dict[str, Any]) -> str:
    """pass, fail, or error (an error is also a fail: it did not pass)."""
    return "error" if is_error(record) else "pass" if record.get("passed") else "fail"


def matches(record: dict[str, Any], status: str) -> bool:
    """The pass/fail/error filter: `fail` is every sample that did not pass, errors included."""
    if status == "pass":
        return bool(record.get("passed"))
    if status == "fail":
        return not record.get("passed")
    if status == "error":
        return is_error(record)
    return True


def _haystack(record: dict[str, Any]) -> str:
    parts = [str(m.get("content", "")) for m in record.get("input") or [] if isinstance(m, dict)]
    parts += [str(record.get("output") or ""), str(record.get("reasoning") or "")]
    parts.append(json.dumps(record.get("reference") or {}, ensure_ascii=False))
    parts.append(" ".join(str(e) for e in record.get("errors") or []))
    return "\n".join(parts).lower()


@dataclass
class LoadedRun:
    """One eval run folder, read."""

    name: str
    data: EvalRunData
    haystacks: list[str]

    @property
    def models(self) -> list[str]:
        return list(self.data.summary.get("models", {}))

    def select(self, status: str = "all", model: str = "", query: str = "") -> list[int]:
        """Indexes of the records that pass the filters, in file order."""
        needle = query.strip().lower()
        records = self.data.records
        return [
            i
            for i, r in enumerate(records)
            if (not model or r.get("model") == model)
            and matches(r, status)
            and (not needle or needle in self.haystacks[i])
        ]

    def row(self, index: int) -> dict[str, Any]:
        record = self.data.records[index]
        shown = sample_row(record, str(record.get("model")))
        shown.update(status=status_of(record), index_in_run=index, reference=record.get("reference") or {},
                     scores=record.get("scores") or {})  # fmt: skip
        return shown

    def item(self, item_index: int) -> dict[str, list[int]]:
        """Every model's samples of one item: model -> record indexes."""
        found: dict[str, list[int]] = {}
        for i, r in enumerate(self.data.records):
            if int(r.get("item_index", -1)) == item_index:
                found.setdefault(str(r.get("model")), []).append(i)
        return found


class EvalRuns:
    """The tenants' eval run folders, each read once and kept while its files are unchanged."""

    def __init__(self, ctx: HttpContext, capacity: int = 16) -> None:
        self.ctx = ctx
        self.capacity = capacity
        self._cache: OrderedDict[Path, tuple[tuple[int, ...], LoadedRun]] = OrderedDict()
        self._lock = threading.Lock()

    def names(self, tenant: str) -> list[str]:
        root = runs_root(self.ctx, tenant)
        if root is None or not root.is_dir():
            return []
        found = [p for p in root.iterdir() if RUN_NAME.match(p.name) and (p / SUMMARY_FILE).is_file()]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def get(self, tenant: str, name: str) -> LoadedRun | None:
        """The tenant's run `name`; None when it has none by that name (or it is broken)."""
        root = runs_root(self.ctx, tenant)
        if root is None or not RUN_NAME.match(name):
            return None
        path = root / name
        summary, results = path / SUMMARY_FILE, path / RESULTS_FILE
        if not summary.is_file():
            return None
        stamp = tuple(
            int(x) for f in (summary, results) if f.exists() for x in (f.stat().st_mtime_ns, f.stat().st_size)
        )
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                self._cache.move_to_end(path)
                return cached[1]
        try:
            loaded = json.loads(summary.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict) or not isinstance(loaded.get("models"), dict):
                return None
            data = load_eval(path, name, loaded)
        except (OSError, json.JSONDecodeError, RunDirError):
            return None
        run = LoadedRun(name, data, [_haystack(r) for r in data.records])
        with self._lock:
            self._cache[path] = (stamp, run)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return run


@dataclass
class Entry:
    """One bar series of the chart: a model of a run folder, or a run of an API eval."""

    key: str
    label: str
    summary: dict[str, Any]
    color: str = ""


class EvalView(Protocol):
    """What the evals, samples and item pages read of one eval, whichever its source."""

    source: str  # "api" or "folder"
    name: str  # the URL's key: an eval id, or a run folder's name
    title: str

    @property
    def models(self) -> list[str]: ...  # the filter's keys (API: run ids)

    def label(self, model: str) -> str: ...

    @property
    def total(self) -> int: ...

    @property
    def grader(self) -> str: ...

    def page(
        self, status: str, model: str, query: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]: ...

    def item(self, item_index: int) -> dict[str, list[dict[str, Any]]]: ...

    def entries(self) -> tuple[list[Entry], dict[str, str]]: ...


class FolderEval:
    """A run folder behind the `EvalView` interface (`fail` includes errors: it did not pass)."""

    source = "folder"

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self.name = run.name
        self.title = run.name

    @property
    def models(self) -> list[str]:
        return self.run.models

    def label(self, model: str) -> str:
        return model

    @property
    def total(self) -> int:
        return len(self.run.data.records)

    @property
    def grader(self) -> str:
        grader = self.run.data.summary.get("grader") or {}
        return f"{grader.get('name', '—')} ({grader.get('type', '')})" if grader else "—"

    def page(
        self, status: str, model: str, query: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        chosen = self.run.select(status, model, query)
        return len(chosen), [self._row(i) for i in chosen[offset : offset + limit]]

    def _row(self, index: int) -> dict[str, Any]:
        row = self.run.row(index)
        row.update(label=row["key"], criteria=[])
        return row

    def item(self, item_index: int) -> dict[str, list[dict[str, Any]]]:
        found = self.run.item(item_index)
        order = [m for m in self.models if m in found] + [m for m in found if m not in self.models]
        return {m: [self._row(i) for i in found[m]] for m in order}

    def entries(self) -> tuple[list[Entry], dict[str, str]]:
        shown = report.model_entries(Runs(evals=[self.run.data]))
        metrics = report.metrics_shown(shown)
        return [Entry(e.name, e.key, e.summary) for e in shown], metrics
