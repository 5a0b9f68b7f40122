"""Files, fine-tuning jobs, their events and checkpoints.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _keys() -> list[sa.Column]:
    return [
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True, index=True),
    ]


def upgrade() -> None:
    op.create_table(
        "files",
        *_keys(),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "fine_tuning_jobs",
        *_keys(),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("training_file", sa.String(64), nullable=False),
        sa.Column("validation_file", sa.String(64)),
        sa.Column("method", sa.JSON, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("suffix", sa.String(64)),
        sa.Column("metadata", sa.JSON),
        sa.Column("overrides", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON),
        sa.Column("fine_tuned_model", sa.String(512)),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("finished_at", sa.Integer),
        sa.Column("trained_tokens", sa.Integer),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("requested", sa.String(16)),
        sa.Column("steps_total", sa.Integer),
        sa.Column("last_step", sa.Integer, nullable=False, server_default="-1"),
    )
    op.create_table(
        "fine_tuning_job_events",
        *_keys(),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("fine_tuning_jobs.id"), nullable=False, index=True),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer),
        sa.Column("data", sa.JSON),
    )
    op.create_table(
        "fine_tuning_job_checkpoints",
        *_keys(),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("fine_tuning_jobs.id"), nullable=False, index=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("model_name", sa.String(512), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("job_id", "step", name="uq_checkpoint_job_step"),
    )


def downgrade() -> None:
    for table in ("fine_tuning_job_checkpoints", "fine_tuning_job_events", "fine_tuning_jobs", "files"):
        op.drop_table(table)
