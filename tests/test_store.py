"""The store on SQLite and PostgreSQL: migrations, status writes and their history."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from syndication.store import migrate, session_scope
from syndication.store.models import ListingRow, OfficeRow
from syndication.store.repository import get_statuses, history, load_feed_input, record_status


def test_migrations_create_every_table_and_are_idempotent(engine: Engine) -> None:
    migrate(engine)  # a second upgrade is a no-op
    tables = set(inspect(engine).get_table_names())
    assert {
        "office",
        "app_user",
        "listing",
        "listing_image",
        "transfer_status",
        "transfer_event",
    } <= tables


def test_record_status_keeps_current_row_and_appends_history(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(OfficeRow(id="K1", name="Kontoret", licence=["hemnet"]))
        session.add(ListingRow(id="O1", office_id="K1", category="villa", state="for_sale"))
    with session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "queued", action="create", attempt=False)
    with session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "sent", marketplace_id="H-1", attempt=True)
    with session_scope(engine) as session:
        record_status(session, "O1", "hemnet", "failed", error="boom", attempt=True)
    with session_scope(engine) as session:
        status = get_statuses(session, "O1")["hemnet"]
        events = history(session, "O1")
        loaded = load_feed_input(session, "O1")
    assert status.state == "failed" and status.marketplace_id == "H-1" and status.attempts == 2
    assert status.action == "create" and status.error == "boom" and status.at is not None
    assert status.at.tzinfo is not None
    assert [e.state for e in events] == ["queued", "sent", "failed"]
    assert loaded is not None and loaded.office.licence == ("hemnet",)
