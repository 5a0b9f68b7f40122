"""The HTTP API's state in a real database through SQLAlchemy 2: files, fine-tuning jobs, their events
and checkpoints. SQLite in the data dir by default, PostgreSQL (or any SQLAlchemy URL) for several
servers; the schema is created and upgraded by the Alembic migrations in `migrations/`.

Every table has an integer `seq` (insertion order, used for pagination cursors) and a public `id`
(`file-…`, `ftjob-…`, ...); every query a route makes is filtered by tenant.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def new_id(prefix: str) -> str:
    """OpenAI-style id: `file-…`, `ftjob-…`, `ftckpt-…`, `ftevent-…`, `eval_…`, `evalrun_…`."""
    return prefix + secrets.token_hex(12)


def now() -> int:
    return int(time.time())


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class FileRow(Base):
    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    lines: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


class JobRow(Base):
    __tablename__ = "fine_tuning_jobs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32), index=True)
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_dir: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requested: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pause | cancel
    steps_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_step: Mapped[int] = mapped_column(Integer, default=-1)


class EventRow(Base):
    __tablename__ = "fine_tuning_job_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("fine_tuning_jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="message")  # message | metrics
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "fine_tuning.job.event",
            "created_at": self.created_at,
            "level": self.level,
            "message": self.message,
            "type": self.type,
            "data": self.data or {},
        }


class CheckpointRow(Base):
    __tablename__ = "fine_tuning_job_checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step", name="uq_checkpoint_job_step"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("fine_tuning_jobs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_name: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "fine_tuning.job.checkpoint",
            "created_at": self.created_at,
            "fine_tuned_model_checkpoint": self.model_name,
            "fine_tuning_job_id": self.job_id,
            "metrics": self.metrics,
            "step_number": self.step,
        }


class EvalRow(Base):
    __tablename__ = "evals"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(512))
    data_source_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    testing_criteria: Mapped[list[Any]] = mapped_column(JSON)
    eval_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class EvalRunRow(Base):
    __tablename__ = "eval_runs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    eval_id: Mapped[str] = mapped_column(String(64), ForeignKey("evals.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(512))
    model: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    status: Mapped[str] = mapped_column(
        String(32), index=True
    )  # queued in_progress completed failed canceled
    data_source: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    per_testing_criteria_results: Mapped[list[Any]] = mapped_column(JSON, default=list)
    per_model_usage: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_dir: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class OutputItemRow(Base):
    __tablename__ = "eval_run_output_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("eval_runs.id"), index=True)
    eval_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pass | fail | error
    datasource_item_id: Mapped[int] = mapped_column(Integer)
    datasource_item: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[list[Any]] = mapped_column(JSON)
    sample: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)

    def to_api(self) -> dict[str, Any]:
        return {
            "object": "eval.run.output_item",
            "id": self.id,
            "run_id": self.run_id,
            "eval_id": self.eval_id,
            "created_at": self.created_at,
            "status": self.status,
            "datasource_item_id": self.datasource_item_id,
            "datasource_item": self.datasource_item,
            "results": self.results,
            "sample": self.sample,
        }


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it in an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine, its sessions, and the few queries several routes share."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            _sqlite_pragmas(self.engine)
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            self.engine = create_engine(url, pool_pre_ping=True)
        upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed at the end of the block (rolled back on an exception)."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def fine_tuned_models(self, tenant: str) -> list[dict[str, Any]]:
        """Model objects of the tenant's succeeded jobs and of every checkpoint."""
        found: list[dict[str, Any]] = []
        with self.session() as session:
            jobs = session.scalars(
                select(JobRow).where(JobRow.tenant == tenant, JobRow.fine_tuned_model.is_not(None))
            ).all()
            for job in jobs:
                found.append(_model(job.fine_tuned_model, job.finished_at or job.created_at, tenant))
            rows = session.execute(
                select(CheckpointRow.model_name, CheckpointRow.created_at)
                .join(JobRow, JobRow.id == CheckpointRow.job_id)
                .where(JobRow.tenant == tenant, CheckpointRow.deleted.is_(False))
                .order_by(CheckpointRow.seq)
            ).all()
            found.extend(_model(name, created, tenant) for name, created in rows)
        return found


def _model(name: str | None, created: int, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


def page(
    session: Session,
    row: type[Base],
    where: Sequence[Any],
    *,
    after: str | None,
    limit: int,
    newest_first: bool,
) -> tuple[list[Any], bool]:
    """One page of `row` objects matching `where`, after the object with id `after`; (rows, has_more)."""
    seq = row.seq  # type: ignore[attr-defined]
    stmt = select(row).where(*where)
    if after:
        cursor = session.scalar(select(seq).where(row.id == after, *where))  # type: ignore[attr-defined]
        if cursor is not None:
            stmt = stmt.where(seq < cursor if newest_first else seq > cursor)
    stmt = stmt.order_by(seq.desc() if newest_first else seq).limit(limit + 1)
    rows = list(session.scalars(stmt).all())
    return rows[:limit], len(rows) > limit


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list object, with the first and last ids for cursor pagination."""
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
