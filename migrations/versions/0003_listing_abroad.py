"""listings abroad: country, province, currency, bedrooms, bathrooms, English text

Homes on the Spanish coast for Kyero. Existing rows become what they were:
Swedish listings priced in kronor (server defaults SE and SEK).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndication.store.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRING = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("country", STRING(length=2), server_default="SE", nullable=False)
        )
        batch_op.add_column(sa.Column("province", STRING(), nullable=True))
        batch_op.add_column(
            sa.Column("currency", STRING(length=3), server_default="SEK", nullable=False)
        )
        batch_op.add_column(sa.Column("bedrooms", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bathrooms", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("description_en", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("modified_at", syndication.store.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("listing", schema=None) as batch_op:
        for name in (
            "modified_at", "description_en", "bathrooms", "bedrooms", "currency", "province",
            "country",
        ):
            batch_op.drop_column(name)
