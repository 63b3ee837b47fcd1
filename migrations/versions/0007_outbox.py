"""outbox: messages written with the state that waits for them; resumable fan-outs

Adds the ``outbox`` table and the fan-out progress of ``transfer_request``.
Requests stored before this revision were fanned out by the code of their
time, so they are marked fanned out at their creation time.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_name", STRING(length=64), nullable=False),
        sa.Column("actor_name", STRING(length=64), nullable=False),
        sa.Column("message_id", STRING(length=64), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("not_before", UTC_TIME(), nullable=False),
        sa.Column("created_at", UTC_TIME(), nullable=False),
        sa.Column("claimed_by", STRING(length=64), nullable=True),
        sa.Column("claimed_until", UTC_TIME(), nullable=True),
        sa.Column("relay_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("transfer_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fan_out_after", STRING(length=64), nullable=True))
        batch_op.add_column(sa.Column("fanned_out_at", UTC_TIME(), nullable=True))
        batch_op.add_column(sa.Column("fan_out_owner", STRING(length=64), nullable=True))
        batch_op.add_column(sa.Column("fan_out_until", UTC_TIME(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_transfer_request_fanned_out_at"), ["fanned_out_at"], unique=False
        )
    op.execute("UPDATE transfer_request SET fanned_out_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("transfer_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_request_fanned_out_at"))
        batch_op.drop_column("fan_out_until")
        batch_op.drop_column("fan_out_owner")
        batch_op.drop_column("fanned_out_at")
        batch_op.drop_column("fan_out_after")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_created_at"))
    op.drop_table("outbox")
