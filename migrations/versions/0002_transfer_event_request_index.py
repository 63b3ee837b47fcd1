"""index the history by transfer request

A request's progress is read from the newest event of each of its pairs;
without this index every poll read the whole history.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_transfer_event_request",
        "transfer_event",
        ["request_id", "listing_id", "marketplace", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_transfer_event_request", table_name="transfer_event")
