"""job starts: the worker process of every transfer start still running or abandoned

A start is a row until it ends; one whose worker is gone is a worker death,
so only real deaths count against ``SYNDICATION_MAX_WORKER_DEATHS``.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "job_start",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", STRING(length=64), nullable=False),
        sa.Column("listing_id", STRING(length=64), nullable=False),
        sa.Column("marketplace", STRING(length=32), nullable=False),
        sa.Column("request_id", STRING(length=64), nullable=True),
        sa.Column("worker", STRING(length=255), nullable=False),
        sa.Column("broker_id", STRING(length=64), nullable=True),
        sa.Column("started_at", UTC_TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_start", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_start_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_start_worker"), ["worker"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_start", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_start_worker"))
        batch_op.drop_index(batch_op.f("ix_job_start_message_id"))
    op.drop_table("job_start")
