"""access: user roles, office API keys, API session tokens (R14)

Existing users become agents (server default ``agent``), the narrowest role.
Keys and tokens keep only the SHA-256 of their secret.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString
UTC_TIME = syndication.store.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", STRING(length=16), server_default="agent", nullable=False)
        )
    op.create_table(
        "api_key",
        sa.Column("id", STRING(length=32), nullable=False),
        sa.Column("office_id", STRING(length=64), nullable=False),
        sa.Column("secret_hash", STRING(length=64), nullable=False),
        sa.Column("created_at", UTC_TIME(), nullable=False),
        sa.Column("last_used_at", UTC_TIME(), nullable=True),
        sa.Column("revoked_at", UTC_TIME(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_office_id"), ["office_id"], unique=False)
    op.create_table(
        "session_token",
        sa.Column("id", STRING(length=32), nullable=False),
        sa.Column("user_id", STRING(length=64), nullable=False),
        sa.Column("secret_hash", STRING(length=64), nullable=False),
        sa.Column("created_at", UTC_TIME(), nullable=False),
        sa.Column("expires_at", UTC_TIME(), nullable=False),
        sa.Column("revoked_at", UTC_TIME(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_token_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_token_user_id"))
    op.drop_table("session_token")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_office_id"))
    op.drop_table("api_key")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("role")
