"""event actor: who asked for a status change from the web view ("Försök igen")

Adds the nullable ``actor`` of ``transfer_event``; events written by the
worker have none.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("transfer_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", STRING(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transfer_event", schema=None) as batch_op:
        batch_op.drop_column("actor")
