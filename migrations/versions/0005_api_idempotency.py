"""api idempotency: the first answer to each Idempotency-Key of the JSON API

One row per principal and key; the body of the first answer is kept so that a
repeat gets the same status and body.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "api_idempotency",
        sa.Column("principal", STRING(length=80), nullable=False),
        sa.Column("key", STRING(length=200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "key"),
    )


def downgrade() -> None:
    op.drop_table("api_idempotency")
