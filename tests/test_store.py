"""The store on SQLite and PostgreSQL: migrations, status writes and their history."""

from __future__ import annotations

import factories
from sqlalchemy import Engine, inspect

from syndication.store import migrate, session_scope
from syndication.store.models import utcnow
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
        session.add_all(factories.rows(factories.office_record(licence=("hemnet",)),
                                       factories.listing_record("O1", broker_id=None)))
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


def test_the_migrations_build_exactly_the_models(engine: Engine) -> None:
    """Alembic finds nothing to add: every table, column and index of the models
    is in a migration, so a deployed database upgrades to what the code reads."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_request_outcome_takes_each_pairs_newest_event_of_that_request(engine: Engine) -> None:
    from datetime import timedelta

    from syndication.store.models import TransferRequestRow
    from syndication.transfer import request_outcome

    with session_scope(engine) as session:
        session.add_all(factories.rows(factories.office_record(licence=("hemnet",)),
                                       factories.listing_record("O1", broker_id=None)))
    with session_scope(engine) as session:
        session.add(TransferRequestRow(id="r1", scope="all", created_at=utcnow()))
    steps = [
        ("O1", "hemnet", "queued", "r1", None), ("O1", "blocket", "queued", "r1", None),
        ("O2", "hemnet", "queued", "r1", None), ("O3", "hemnet", "queued", "r1", None),
        ("O1", "hemnet", "sent", "r1", None), ("O1", "blocket", "failed", "r1", None),
        ("O2", "hemnet", "published", "r1", utcnow() - timedelta(days=2)),  # left as it was
        ("O1", "hemnet", "queued", "r2", None),  # a later request touches the same pair
    ]
    for listing_id, marketplace, state, request_id, at in steps:
        with session_scope(engine) as session:
            record_status(session, listing_id, marketplace, state, request_id=request_id,
                          error="502 Bad Gateway" if state == "failed" else None, at=at)
    outcome = request_outcome(engine, "r1")
    assert (outcome.total, outcome.done, outcome.unchanged) == (4, 3, 1)
    assert outcome.counts == {"sent": 1, "failed": 1, "published": 1, "queued": 1}
    assert [(f.listing_id, f.marketplace, f.error) for f in outcome.failures] == [
        ("O1", "blocket", "502 Bad Gateway")]
    assert request_outcome(engine, "r2").total == 1
    assert request_outcome(engine, "unknown").total == 0


def test_request_outcome_reads_through_the_request_index(sqlite_engine: Engine) -> None:
    from sqlalchemy import text

    from syndication.transfer.progress import failed_pairs, state_counts

    for query in (state_counts("r1", None), failed_pairs("r1")):
        compiled = query.compile(sqlite_engine, compile_kwargs={"literal_binds": True})
        with sqlite_engine.connect() as conn:
            plan = " ".join(str(r[-1])
                            for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "ix_transfer_event_request" in plan, plan
