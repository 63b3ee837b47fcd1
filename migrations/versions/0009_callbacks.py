"""callbacks: the ids of marketplace callbacks already taken (R16)

Adds the ``callback_seen`` table, so a replayed callback is refused.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "callback_seen",
        sa.Column("marketplace", STRING(length=32), nullable=False),
        sa.Column("callback_id", STRING(length=128), nullable=False),
        sa.Column("received_at", UTC_TIME(), nullable=False),
        sa.PrimaryKeyConstraint("marketplace", "callback_id"),
    )
    with op.batch_alter_table("callback_seen", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callback_seen_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("callback_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_callback_seen_received_at"))
    op.drop_table("callback_seen")
