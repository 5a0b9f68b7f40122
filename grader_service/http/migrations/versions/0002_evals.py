"""Evals, their runs and the runs' output items.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _keys() -> list[sa.Column]:
    return [
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True, index=True),
    ]


def upgrade() -> None:
    op.create_table(
        "evals",
        *_keys(),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("data_source_config", sa.JSON, nullable=False),
        sa.Column("testing_criteria", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "eval_runs",
        *_keys(),
        sa.Column("eval_id", sa.String(64), sa.ForeignKey("evals.id"), nullable=False, index=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("model", sa.String(1024)),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("data_source", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON),
        sa.Column("error", sa.JSON),
        sa.Column("result_counts", sa.JSON, nullable=False),
        sa.Column("per_testing_criteria_results", sa.JSON, nullable=False),
        sa.Column("per_model_usage", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("finished_at", sa.Integer),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "eval_run_output_items",
        *_keys(),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("eval_runs.id"), nullable=False, index=True),
        sa.Column("eval_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("datasource_item_id", sa.Integer, nullable=False),
        sa.Column("datasource_item", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.Column("sample", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("eval_run_output_items", "eval_runs", "evals"):
        op.drop_table(table)
