"""The fan-out reads a listing with only the columns its decision needs
(:func:`syndication.transfer.batch.decision_inputs`); the decision must be the one the
whole record gives, for every state, selection, licence and stored status."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product

from factories import listing, office, user
from sqlalchemy import Engine
from transfer_helpers import ingest

from syndication import registry
from syndication.records import TransferStatus
from syndication.rules.plan import decide
from syndication.store.db import session_scope
from syndication.store.repository import load_feed_inputs
from syndication.transfer.batch import decision_inputs
from syndication.transfer.request import marketplaces_for

STATES = ("coming", "for_sale", "sold", "withdrawn", "deleted")
SELECTIONS = (None, ["hemnet"], ["blocket", "hittahem"], ["hemnet", "blocket", "hittahem"])
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def statuses(listing_id: str, marketplace: str) -> list[TransferStatus | None]:
    """A stored status of every kind the decision tells apart, and none."""
    def status(state: str, action: str | None, marketplace_id: str | None = None
               ) -> TransferStatus:
        return TransferStatus(listing_id=listing_id, marketplace=marketplace, state=state,
                              action=action, marketplace_id=marketplace_id, at=AT)
    return [None, status("published", "create", "H1"), status("sent", "delete"),
            status("sent", "update"), status("queued", None, "H2"),
            status("failed", "update"), status("failed", "create"),
            status("deleted", "delete"), status("not_selected", None),
            status("not_licensed", None)]


def test_the_decision_of_the_lean_read_is_the_whole_records(engine: Engine) -> None:
    offices = [office("K1"), office("K2", licence=["hemnet"], name="Liten byrå")]
    listings = []
    for n, (office_id, state, selection) in enumerate(product(("K1", "K2"), STATES,
                                                              SELECTIONS)):
        extra = {} if selection is None else {"marketplaces": selection}
        listings.append(listing(f"D{n:03d}", office_id=office_id, state=state,
                                broker_id="U1" if office_id == "K1" else "U2", **extra))
    listings.append(listing("D999", office_id="K2", broker_id="U2", marketplaces=None))
    ingest(engine, offices=offices,
           users=[user("U1"), user("U2", office_id="K2")], listings=listings)
    ids = sorted(item["id"] for item in listings) + ["unknown"]
    with session_scope(engine) as session:
        whole = load_feed_inputs(session, ids)
        lean = decision_inputs(session, ids)
    assert sorted(lean) == sorted(whole) == ids[:-1]
    compared = 0
    for listing_id in ids[:-1]:
        assert lean[listing_id].office == whole[listing_id].office
        assert marketplaces_for(lean[listing_id]) == marketplaces_for(whole[listing_id])
        for marketplace in registry.names():
            assert marketplaces_for(lean[listing_id], marketplace) == marketplaces_for(
                whole[listing_id], marketplace)
            for status in statuses(listing_id, marketplace):
                assert decide(lean[listing_id], marketplace, status) == decide(
                    whole[listing_id], marketplace, status), (listing_id, marketplace, status)
                compared += 1
    assert compared == len(ids[:-1]) * len(registry.names()) * 10


def test_a_bulk_statement_writes_what_core_writes(engine: Engine) -> None:
    """The driver's executemany of :class:`~syndication.store.bulk.BulkStatement` stores
    the very values SQLAlchemy Core's executemany stores (timestamps converted alike),
    read back as the driver's own text."""
    from sqlalchemy import insert

    from syndication.store.bulk import BulkStatement
    from syndication.store.models import TransferEventRow

    table = TransferEventRow.__table__  # type: ignore[attr-defined]
    names = ("at", "listing_id", "marketplace", "state", "action", "marketplace_id", "error",
             "attempts", "request_id", "actor")
    values = [(AT, "B1", "hemnet", "queued", None, None, None, 0, "r", None),
              (AT.replace(microsecond=7), "B2", "blocket", "not_licensed", "create", "H9",
               "utan licens", 3, "r", "someone"),
              (AT, "NULL", "", 'a "quoted" \\ back\\slash', "{x,y}", " spaced ",
               "åäö\nline, \"}", -1, "r", "null")]
    with session_scope(engine) as session:
        BulkStatement(table, names).execute(session.connection(), values)
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in values])
    cast = "::text" if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        stored = [tuple(row) for row in conn.exec_driver_sql(
            f"SELECT at{cast}, listing_id, marketplace, state, action, marketplace_id, error, "
            f"attempts, request_id, actor FROM transfer_event ORDER BY id")]
    assert stored[:3] == stored[3:] and len(stored) == 6
    assert stored[0][1:] == values[0][1:]


def test_a_bulk_statement_writes_every_shape_of_column_as_core_does(engine: Engine) -> None:
    """Each way a column is written takes its own path on PostgreSQL: all strings with
    and without a quote or a backslash, one value throughout (a time, a string, a
    number, only ``None``), strings with a ``None`` among them, and mixed values. Each
    is stored as Core stores it, on both stores."""
    from sqlalchemy import insert

    from syndication.store.bulk import BulkStatement
    from syndication.store.models import TransferEventRow

    table = TransferEventRow.__table__  # type: ignore[attr-defined]
    names = ("listing_id", "marketplace", "state", "action", "marketplace_id", "error",
             "attempts", "request_id", "at", "actor")
    later = AT.replace(second=9)
    values = [
        # plain strings | quoted strings | one string | strings and None | all None
        # | strings, escaped | one number | one string | one time | mixed with None
        (f"P{n}", f'"{n}"\\', "queued", "create" if n % 2 else None, None,
         f"fel {n}: \\n \"x\"", 7, "r", AT, None if n % 3 else f"a{n}")
        for n in range(6)
    ] + [("P6", "", "queued", None, None, "", 7, "r", AT, "")]
    varied = [(f"V{n}", "hemnet", "sent", None, None, None, n, "r",
               later if n % 2 else AT, None) for n in range(4)]
    with session_scope(engine) as session:
        for rows in (values, varied):
            BulkStatement(table, names).execute(session.connection(), rows)
            session.execute(insert(table), [dict(zip(names, row, strict=True))
                                            for row in rows])
    cast = "::text" if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        stored = [tuple(row) for row in conn.exec_driver_sql(
            f"SELECT listing_id, marketplace, state, action, marketplace_id, error, attempts, "
            f"request_id, at{cast}, actor FROM transfer_event ORDER BY id")]
    written, core = stored[:7] + stored[14:18], stored[7:14] + stored[18:]
    assert written == core and len(stored) == 22
    assert [row[:8] for row in written[:7]] == [row[:8] for row in values]
    assert [row[9] for row in written[:7]] == [row[9] for row in values]
    assert len({row[8] for row in written[7:]}) == 2


def test_a_bulk_statement_refuses_a_value_too_long_as_core_does(postgres_engine: Engine) -> None:
    """PostgreSQL's arrays are cast without the column's length, so a value longer than
    the column is refused by the column, never cut short by the cast."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    from syndication.store.bulk import BulkStatement
    from syndication.store.models import TransferEventRow

    table = TransferEventRow.__table__  # type: ignore[attr-defined]
    statement = BulkStatement(table, ("listing_id", "marketplace", "state", "attempts", "at"))
    with pytest.raises(DBAPIError, match="too long"), session_scope(postgres_engine) as session:
        statement.execute(session.connection(), [("L" * 65, "hemnet", "queued", 0, AT)])
