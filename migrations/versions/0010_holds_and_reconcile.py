"""holds and reconcile: held mass deletions (R15) and the reconciliation reports (R13)

Adds the ``deletion_hold`` and ``reconcile_result`` tables.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "deletion_hold",
        sa.Column("id", STRING(length=32), nullable=False),
        sa.Column("office_id", STRING(length=64), nullable=False),
        sa.Column("state", STRING(length=16), nullable=False),
        sa.Column("source", STRING(length=16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("listings", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME(), nullable=False),
        sa.Column("decided_at", UTC_TIME(), nullable=True),
        sa.Column("decided_by", STRING(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deletion_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deletion_hold_office_id"), ["office_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_deletion_hold_state"), ["state"], unique=False)
    op.create_table(
        "reconcile_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", STRING(length=64), nullable=False),
        sa.Column("trigger", STRING(length=16), nullable=False),
        sa.Column("office_id", STRING(length=64), nullable=False),
        sa.Column("marketplace", STRING(length=32), nullable=False),
        sa.Column("held_there", sa.Integer(), nullable=True),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.Column("repaired", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", UTC_TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconcile_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconcile_result_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconcile_result_office_id"), ["office_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_reconcile_result_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconcile_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconcile_result_at"))
        batch_op.drop_index(batch_op.f("ix_reconcile_result_office_id"))
        batch_op.drop_index(batch_op.f("ix_reconcile_result_run_id"))
    op.drop_table("reconcile_result")
    with op.batch_alter_table("deletion_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deletion_hold_state"))
        batch_op.drop_index(batch_op.f("ix_deletion_hold_office_id"))
    op.drop_table("deletion_hold")
