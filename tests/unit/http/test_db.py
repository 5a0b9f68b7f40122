"""The Alembic migrations build exactly the schema the SQLAlchemy models declare; pagination cursors."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rftkit.grader_service.http.db import Base, Database, FileRow, page
from sqlalchemy import inspect


def test_migrations_match_the_models(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    with db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is not None
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"the migrations and the models differ: {diff}"
    assert {"files", "fine_tuning_jobs", "fine_tuning_job_events", "fine_tuning_job_checkpoints"} <= set(
        inspect(db.engine).get_table_names()
    )
    Database(f"sqlite:///{tmp_path / 'state.db'}").close()  # upgrading again is a no-op
    db.close()


def test_page_follows_after_cursor_within_the_filter(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    with db.session() as session:
        for i in range(5):
            for tenant in ("a", "b"):
                row = FileRow(id=f"file-{tenant}{i}", tenant=tenant, purpose="evals", filename="x",
                              bytes=1, sha256="0" * 64, lines=1, created_at=i, deleted=False)  # fmt: skip
                session.add(row)
    where = [FileRow.tenant == "a"]
    with db.session() as session:
        rows, more = page(session, FileRow, where, after=None, limit=2, newest_first=True)
        assert [r.id for r in rows] == ["file-a4", "file-a3"] and more
        rows, more = page(session, FileRow, where, after="file-a3", limit=10, newest_first=True)
        assert [r.id for r in rows] == ["file-a2", "file-a1", "file-a0"] and not more
        rows, _ = page(session, FileRow, where, after="file-a1", limit=10, newest_first=False)
        assert [r.id for r in rows] == ["file-a2", "file-a3", "file-a4"]
        # a cursor naming another tenant's object gives no foothold into it
        rows, _ = page(session, FileRow, where, after="file-b1", limit=10, newest_first=True)
        assert all(r.tenant == "a" for r in rows)
    db.close()
