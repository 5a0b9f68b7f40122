"""What the job pages show, read from the HTTP API's database (the same rows the API serves).

A job's metrics events are folded once into a `Series` (curves, per-grader scores, error counts,
time split) and kept per job; later reads only fold the events added since (by `seq`), so a page
of a 10,000-step job and its live refreshes stay cheap.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.orm import Session

from ..db import CheckpointRow, Database, EventRow, JobRow

TIME_PARTS = (  # the time split of a step: label, timing keys summed into it
    ("sampling", ("sampling",)),
    ("grading", ("grading",)),
    ("training", ("training",)),
    ("eval", ("eval",)),
    ("weight sync", ("weight_sync",)),
    ("waiting", ("rollout_wait", "grading_wait", "weight_sync_wait")),
)
EVENTS_PAGE = 50


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass
class Series:
    """A job's metrics folded together: everything the curves and the stat panels need."""

    seq: int = 0  # the newest event folded in
    train: dict[int, float] = field(default_factory=dict)  # step -> train_reward_mean
    valid: dict[int, float] = field(default_factory=dict)  # step -> valid_reward_mean
    train_scores: dict[str, float] = field(default_factory=dict)  # the newest step's per-grader means
    valid_scores: dict[str, float] = field(default_factory=dict)
    errors: dict[int, dict[str, int]] = field(default_factory=dict)  # step -> kind -> count (train+valid)
    timing: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> part -> seconds
    samples: dict[int, int] = field(default_factory=dict)  # step -> graded samples (train + valid)

    def fold(self, step: int, data: dict[str, Any]) -> None:
        """Add (or replace, for a step a resumed run wrote again) one metrics event."""
        if (v := _num(data.get("train_reward_mean"))) is not None:
            self.train[step] = v
        if (v := _num(data.get("valid_reward_mean"))) is not None:
            self.valid[step] = v
        for key, target in (("train_grader_scores", self.train_scores),
                            ("valid_grader_scores", self.valid_scores)):  # fmt: skip
            scores = data.get(key)
            if isinstance(scores, dict) and scores:
                target.clear()
                target.update({str(k): v for k, v in scores.items() if _num(v) is not None})
        errors: Counter[str] = Counter()
        for key in ("train_errors", "valid_errors"):
            raised = data.get(key)
            if isinstance(raised, dict):
                errors.update({str(k): int(v) for k, v in raised.items() if _num(v)})
        self.errors[step] = dict(errors)
        timing = data.get("timing") if isinstance(data.get("timing"), dict) else {}
        self.timing[step] = {
            label: sum(_num(timing.get(k)) or 0.0 for k in keys) for label, keys in TIME_PARTS
        }
        graded = (_num(data.get("train_samples")) or 0) + (_num(data.get("valid_samples")) or 0)
        self.samples[step] = int(graded)

    def points(self, which: str) -> list[tuple[float, float]]:
        values = self.train if which == "train" else self.valid
        return [(float(s), values[s]) for s in sorted(values)]

    def error_counts(self) -> list[tuple[str, int]]:
        total: Counter[str] = Counter()
        for counts in self.errors.values():
            total.update(counts)
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))

    def time_split(self) -> list[tuple[str, float]]:
        total: dict[str, float] = dict.fromkeys((label for label, _ in TIME_PARTS), 0.0)
        for parts in self.timing.values():
            for label, seconds in parts.items():
                total[label] += seconds
        return list(total.items())

    @property
    def steps(self) -> int:
        return len(self.timing)

    @property
    def graded(self) -> int:
        return sum(self.samples.values())


class SeriesCache:
    """`Series` per job, brought up to date from the events added since the last read."""

    def __init__(self, db: Database, capacity: int = 64) -> None:
        self.db = db
        self.capacity = capacity
        self._cache: OrderedDict[str, tuple[str, Series]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job: JobRow) -> Series:
        # a resumed run may rewrite earlier steps in place (same rows, no new seq): start over then
        key = f"{job.status}:{job.requested}"
        with self._lock:
            cached = self._cache.get(job.id)
            series = cached[1] if cached is not None and cached[0] == key else Series()
        with self.db.session() as session:
            # the JSON text as stored, decoded here by msgspec (several times faster than json)
            rows = session.execute(
                select(EventRow.seq, EventRow.step, type_coerce(EventRow.data, Text))
                .where(EventRow.job_id == job.id, EventRow.type == "metrics", EventRow.seq > series.seq)
                .order_by(EventRow.seq)
            ).all()
        decode = msgspec.json.Decoder().decode
        for seq, step, text in rows:
            data = decode(text) if text else {}
            if not isinstance(data, dict):
                data = {}
            series.fold(int(step if step is not None else (data or {}).get("step", 0)), data or {})
            series.seq = max(series.seq, seq)
        with self._lock:
            self._cache[job.id] = (key, series)
            self._cache.move_to_end(job.id)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return series


def owned_job(session: Session, tenant: str, job_id: str) -> JobRow | None:
    return session.scalar(select(JobRow).where(JobRow.id == job_id, JobRow.tenant == tenant))


def best_valid(metrics: dict[str, Any] | None) -> float | None:
    return _num((metrics or {}).get("valid_reward_mean"))


def job_rows(db: Database, tenant: str, limit: int = 200) -> list[dict[str, Any]]:
    """The tenant's jobs, newest first, with progress and the best validation reward."""
    with db.session() as session:
        jobs = session.scalars(
            select(JobRow).where(JobRow.tenant == tenant).order_by(JobRow.seq.desc()).limit(limit)
        ).all()
        ids = [j.id for j in jobs]
        best: dict[str, float] = {}
        if ids:
            for job_id, metrics in session.execute(
                select(CheckpointRow.job_id, CheckpointRow.metrics).where(CheckpointRow.job_id.in_(ids))
            ):
                value = best_valid(metrics)
                if value is not None and value > best.get(job_id, -math.inf):
                    best[job_id] = value
    return [{"job": j, "best_valid": best.get(j.id), **progress(j)} for j in jobs]


def progress(job: JobRow) -> dict[str, Any]:
    """Steps done of the total (the total once the run has resolved its config)."""
    done = max(0, job.last_step)
    total = job.steps_total
    if job.status == "succeeded" and total:
        done = total
    share = min(1.0, done / total) if total else None
    return {"done": done, "total": total, "share": share}


def checkpoints(db: Database, job_id: str) -> list[dict[str, Any]]:
    """Every checkpoint of the job, newest first; the best three kept ones ranked 1..3."""
    with db.session() as session:
        rows = session.scalars(
            select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
        ).all()
    kept = [r for r in rows if not r.deleted and best_valid(r.metrics) is not None]
    ranked = sorted(kept, key=lambda r: (-(best_valid(r.metrics) or 0.0), -r.step))[:3]
    rank = {r.id: i + 1 for i, r in enumerate(ranked)}
    return [{"row": r, "valid": best_valid(r.metrics), "train": _num(r.metrics.get("train_reward_mean")),
             "rank": rank.get(r.id)} for r in rows]  # fmt: skip


def events_page(
    db: Database,
    job_id: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = EVENTS_PAGE,
) -> tuple[list[EventRow], int | None]:
    """Events newest first: older than seq `before`, or newer than seq `after`; and the next cursor."""
    stmt = select(EventRow).where(EventRow.job_id == job_id)
    if before is not None:
        stmt = stmt.where(EventRow.seq < before)
    if after is not None:
        stmt = stmt.where(EventRow.seq > after)
    with db.session() as session:
        rows = list(session.scalars(stmt.order_by(EventRow.seq.desc()).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def change_mark(db: Database, job_id: str) -> tuple[Any, ...]:
    """What changes whenever the job page would: the newest event, checkpoints, status."""
    with db.session() as session:
        newest = session.scalar(select(func.max(EventRow.seq)).where(EventRow.job_id == job_id))
        count = session.scalar(select(func.count()).select_from(CheckpointRow).where(
            CheckpointRow.job_id == job_id, CheckpointRow.deleted.is_(False)))  # fmt: skip
        job = session.scalar(select(JobRow).where(JobRow.id == job_id))
        state = (job.status, job.requested) if job else (None, None)
    return (newest, count, *state)
