"""The transfer job's statements in SQLAlchemy Core, built once, with bound parameters.

A transfer job runs a handful of statements on every start; built per call
through the ORM they cost several times the SQL itself. Here each is built
once at import, so SQLAlchemy compiles it once per dialect (its compiled
cache) and a call only binds parameters. Rows are mapped straight to the
records of :mod:`syndication.records` by :mod:`syndication.store.repository`'s
mappers, which read columns by name from a Core row as from an ORM object.

:func:`write_status` is the Core twin of
:func:`~syndication.store.repository.record_status`, with the same meaning:
the current row changes and the history gets the same values, in the
caller's transaction. The event is copied from the row it follows with one
``INSERT … SELECT``, so nothing is read back into Python to write it.

The statements every job runs go to the driver's cursor through
:class:`~syndication.store.driver.DriverStatement` (compiled once per dialect,
in the caller's connection and transaction); the rare ones (a pair without a
row yet, the starts of a message that died) through SQLAlchemy. Where the store
allows it, two statements are one: on PostgreSQL a status change appends its
event in the same statement (:func:`with_event`), and on both stores the
listing is read with its images (:func:`_with_images`), on PostgreSQL beside
the pair's settled status (:func:`read_pair_and_listing`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.sql import Delete, Insert, Select, Update

from syndication.records import FeedInput, TransferStatus
from syndication.store.driver import DriverStatement
from syndication.store.models import (
    JobStartRow,
    ListingImageRow,
    ListingRow,
    OfficeRow,
    TransferEventRow,
    TransferStatusRow,
    UserRow,
)
from syndication.store.repository import listing_record, office_record, status_record, user_record


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


STATUS = _table(TransferStatusRow)
EVENT = _table(TransferEventRow)
START = _table(JobStartRow)
LISTING = _table(ListingRow)
IMAGE = _table(ListingImageRow)
OFFICE = _table(OfficeRow)
USER = _table(UserRow)

_PAIR = and_(STATUS.c.listing_id == bindparam("p_listing"),
             STATUS.c.marketplace == bindparam("p_marketplace"))

STATUS_FIELDS = ("action", "marketplace_id", "public_url", "document_hash", "request_id")
"""The columns a status write sets only when given; state, error and times are always set."""

COUNT_ATTEMPT: Update = (
    update(STATUS).where(_PAIR).values(
        state="queued", error=None, attempts=STATUS.c.attempts + 1,
        at=bindparam("p_at"), updated_at=bindparam("p_at"), request_id=bindparam("p_request"),
    )
)
"""A start: ``queued``, one more attempt; it also takes the row's write lock."""

EVENT_COPIED = ("listing_id", "marketplace", "state", "action", "marketplace_id", "error",
                "attempts", "request_id", "at")
"""The columns of a status row that its history event repeats."""

COPY_EVENT: Insert = insert(EVENT).from_select(
    list(EVENT_COPIED), select(*(STATUS.c[name] for name in EVENT_COPIED)).where(_PAIR),
)
"""The history event of the row's current values (R8: every change is appended)."""


def with_event(changed: Update) -> Insert:
    """``changed`` and the history event of the row it changed, as one statement: a
    data-modifying ``WITH`` (PostgreSQL), one round trip where SQLite takes two
    (``changed``, then :data:`COPY_EVENT`). The event holds the row's values after the
    change, as :data:`COPY_EVENT` would read them; its row count is the rows changed."""
    returned = changed.returning(*(STATUS.c[name] for name in EVENT_COPIED)).cte("changed")
    return _event_of(returned).add_cte(returned)


def _event_of(changed: Any) -> Insert:
    """The history event of the rows the ``changed`` CTE returns (:data:`EVENT_COPIED`)."""
    return insert(EVENT).from_select(
        list(EVENT_COPIED), select(*(changed.c[name] for name in EVENT_COPIED)),
    )

NEW_STATUS: Insert = insert(STATUS)

STARTS_OF: Select[Any] = select(
    START.c.id, START.c.message_id, START.c.listing_id, START.c.marketplace, START.c.worker,
    START.c.broker_id, START.c.started_at,
).where(START.c.message_id == bindparam("p_message")).order_by(START.c.id)

COMPANY_OF: Select[Any] = select(
    START.c.listing_id, START.c.marketplace,
).where(START.c.worker == bindparam("p_worker"), START.c.message_id != bindparam("p_message"))
"""The other jobs in flight with a dead start's worker (:func:`death_report`)."""

NEW_START: Insert = insert(START)
END_START: Delete = START.delete().where(START.c.id == bindparam("p_start"))
END_MESSAGE: Delete = START.delete().where(START.c.message_id == bindparam("p_message"))

ON_DRIVER_COUNT_ATTEMPT = DriverStatement(COUNT_ATTEMPT)
ON_DRIVER_COUNT_ATTEMPT_WITH_EVENT = DriverStatement(with_event(COUNT_ATTEMPT))
ON_DRIVER_COPY_EVENT = DriverStatement(COPY_EVENT)
ON_DRIVER_NEW_START = DriverStatement(insert(START).returning(START.c.id))
ON_DRIVER_END_START = DriverStatement(END_START)
ON_DRIVER_END_MESSAGE = DriverStatement(END_MESSAGE)


def _settled_parts() -> tuple[list[Any], Any]:
    """The columns of :data:`SETTLED_VIEW` and what they are selected from (the pair's
    row is the caller's condition)."""
    settled = EVENT.alias("settled")
    counted = EVENT.alias("counted")
    newest = EVENT.alias("newest")
    generation = (
        select(func.count()).select_from(counted)
        .where(counted.c.listing_id == bindparam("p_listing"),
               counted.c.marketplace == bindparam("p_marketplace"),
               or_(*(counted.c.state == state for state in ("sent", "published", "deleted"))))
        .scalar_subquery()
    )
    newest_settled = (
        select(newest.c.id)
        .where(newest.c.listing_id == bindparam("p_listing"),
               newest.c.marketplace == bindparam("p_marketplace"),
               newest.c.state != "queued")
        .order_by(newest.c.id.desc()).limit(1).scalar_subquery()
    )
    earlier_starts = (
        select(func.count()).select_from(START)
        .where(START.c.message_id == bindparam("p_message")).scalar_subquery()
    )
    columns = [*STATUS.c, generation.label("generation"),
               settled.c.state.label("settled_state"), settled.c.at.label("settled_at"),
               earlier_starts.label("earlier_starts")]
    return columns, STATUS.outerjoin(settled, settled.c.id == newest_settled)


def _settled_view() -> Select[Any]:
    columns, joined = _settled_parts()
    return select(*columns).select_from(joined).where(_PAIR)


SETTLED_VIEW = _settled_view()
ON_DRIVER_SETTLED_VIEW = DriverStatement(SETTLED_VIEW)
"""The row, its delivery generation and the newest settled event, from one snapshot
(see :func:`syndication.transfer.common.settled_view`), with how many starts of the
message are recorded (only then are they read, :data:`STARTS_OF`)."""

OFFICE_FIELDS = ("id", "name", "licence", "category_defaults", "final_price_enabled",
                 "hemnet_final_price_agreement", "company_id", "logo_url", "phone", "email",
                 "street", "postal_code", "city", "website")
USER_FIELDS = ("id", "office_id", "name", "email", "phone", "title", "show_on_internet",
               "images", "companies", "main_company", "statistics_all_companies")
"""The columns of the records; a user's password and role are never read here."""

FEED_INPUT: Select[Any] = (
    select(*LISTING.c,
           *(OFFICE.c[name].label(f"o_{name}") for name in OFFICE_FIELDS),
           *(USER.c[name].label(f"u_{name}") for name in USER_FIELDS))
    .select_from(LISTING.join(OFFICE, OFFICE.c.id == LISTING.c.office_id)
                 .outerjoin(USER, USER.c.id == LISTING.c.broker_id))
    .where(LISTING.c.id == bindparam("p_listing"))
)
"""The listing, its office and its broker in one statement."""

IMAGES_OF: Select[Any] = (
    select(IMAGE).where(IMAGE.c.listing_id == bindparam("p_listing"))
    .order_by(IMAGE.c.position, IMAGE.c.id)
)
ON_DRIVER_FEED_INPUT = DriverStatement(FEED_INPUT)
ON_DRIVER_IMAGES_OF = DriverStatement(IMAGES_OF)

IMAGE_FIELDS = ("id", "url", "position", "caption", "tag", "source")
"""The columns of a listing's images that its record takes."""

_Image = namedtuple("_Image", IMAGE_FIELDS)  # type: ignore[misc]  # noqa: PYI024


def _with_images(dialect: str) -> Select[Any]:
    """:data:`FEED_INPUT` with the listing's images as one more column, a JSON array of
    objects (``listing_images``; ``NULL`` or ``[]`` when it has none): the job's read of its
    listing in one statement instead of two. The order of the array is not kept;
    :func:`~syndication.store.repository.listing_record` orders the images itself."""
    pairs = [part for name in IMAGE_FIELDS for part in (literal(name), IMAGE.c[name])]
    if dialect == "postgresql":
        aggregated = func.json_agg(func.json_build_object(*pairs))
    else:
        aggregated = func.json_group_array(func.json_object(*pairs))
    images = (select(aggregated).where(IMAGE.c.listing_id == LISTING.c.id)
              .correlate(LISTING).scalar_subquery())
    return FEED_INPUT.add_columns(type_coerce(images, JSON).label("listing_images"))


ON_DRIVER_FEED_INPUT_WITH_IMAGES = {
    name: DriverStatement(_with_images(name)) for name in ("postgresql", "sqlite")
}


class _Prefixed:
    """The columns of one joined table in a row, by their own names (``o_name`` as
    ``name``), for the record mappers."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


_SET_STATUS: dict[tuple[frozenset[str], bool, str | None], DriverStatement] = {}


def _set_status(given: frozenset[str], event: bool = False,
                ends: str | None = None) -> DriverStatement:
    """The ``UPDATE`` that sets state, error, times and the ``given`` optional columns
    (with ``event``, and appends its history event: :func:`with_event`; with ``ends``,
    and deletes the start rows of :meth:`StartEnd.kind`, by ``p_message`` or
    ``p_start``); one statement per combination, built on first use and kept."""
    statement = _SET_STATUS.get((given, event, ends))
    if statement is None:
        values: dict[str, Any] = {
            "state": bindparam("p_state"), "error": bindparam("p_error"),
            "at": bindparam("p_at"), "updated_at": bindparam("p_at"),
        }
        values.update({name: bindparam(f"p_{name}") for name in sorted(given)})
        changed = update(STATUS).where(_PAIR).values(values)
        built: Any = with_event(changed) if event else changed
        if ends is not None:
            assert event, "a start is ended in the statement only with its event"
            gone = END_MESSAGE if ends == "message" else END_START
            built = built.add_cte(gone.returning(START.c.id).cte("ended"))
        statement = _SET_STATUS.setdefault((given, event, ends), DriverStatement(built))
    return statement


def _one_trip(conn: Connection) -> bool:
    """Whether the store takes a change and its event in one statement (:func:`with_event`)."""
    return conn.dialect.name == "postgresql"



def pair(listing_id: str, marketplace: str) -> dict[str, Any]:
    """The bound parameters naming a status row."""
    return {"p_listing": listing_id, "p_marketplace": marketplace}


@dataclass(frozen=True, slots=True)
class StartEnd:
    """The job start a status write also ends (:func:`write_status`): the row
    ``start_id``, or with ``done`` every row of ``message_id`` (nothing will run the
    message again: the starts of workers that died with it go too)."""

    message_id: str | None
    start_id: int | None
    done: bool

    def kind(self) -> str | None:
        """Which rows go: ``"message"``, ``"start"`` or ``None`` (none)."""
        if self.done and self.message_id is not None:
            return "message"
        return "start" if self.start_id is not None else None

    def params(self) -> dict[str, Any]:
        kind = self.kind()
        if kind == "message":
            return {"p_message": self.message_id}
        return {"p_start": self.start_id} if kind == "start" else {}


def end_start_rows(conn: Connection, ending: StartEnd) -> None:
    """Delete the start rows ``ending`` names, in ``conn``'s transaction."""
    kind = ending.kind()
    if kind is not None:
        (ON_DRIVER_END_MESSAGE if kind == "message" else ON_DRIVER_END_START).execute(
            conn, ending.params())


def write_status(
    conn: Connection,
    listing_id: str,
    marketplace: str,
    state: str,
    *,
    at: datetime,
    error: str | None = None,
    fields: Mapping[str, Any] | None = None,
    ending: StartEnd | None = None,
) -> None:
    """Set the pair's status and append it to the history, in ``conn``'s transaction.

    ``fields`` holds the optional columns to set (of :data:`STATUS_FIELDS`); the
    others keep their stored value, and ``error`` is cleared unless given, as
    :func:`~syndication.store.repository.record_status` does. A pair without a
    row gets one. ``ending`` names the job start the write also ends: on PostgreSQL
    in the same statement (one round trip for the change, its event and the end).
    """
    given = dict(fields or {})
    unknown = set(given) - set(STATUS_FIELDS)
    if unknown:
        raise ValueError(f"transfer_status {listing_id}/{marketplace}: no such field "
                         f"{', '.join(sorted(unknown))}")
    where = pair(listing_id, marketplace)
    params = {**where, "p_state": state, "p_error": error, "p_at": at,
              **{f"p_{name}": value for name, value in given.items()}}
    one_trip = _one_trip(conn)
    ends = ending.kind() if ending is not None and one_trip else None
    if ending is not None and ends is not None:
        params.update(ending.params())
    elif ending is not None:
        end_start_rows(conn, ending)
    if _set_status(frozenset(given), one_trip, ends).execute(conn, params).rowcount == 0:
        conn.execute(NEW_STATUS, {"listing_id": listing_id, "marketplace": marketplace,
                                  "state": state, "error": error, "at": at, "updated_at": at,
                                  "attempts": 0, **given})
    elif one_trip:
        return
    ON_DRIVER_COPY_EVENT.execute(conn, where)


def count_attempt(conn: Connection, listing_id: str, marketplace: str, request_id: str,
                  at: datetime, start: Mapping[str, Any] | None = None) -> int | None:
    """A start of the pair's job: ``queued`` with one more attempt, and its event; the
    row stays write-locked until ``conn``'s transaction ends.

    ``start`` is the job start's row (the values of :data:`NEW_START` but its id): on
    PostgreSQL it is inserted in the same statement, and its id returned (``None``
    where the store takes it in a statement of its own, which the caller then sends)."""
    where = pair(listing_id, marketplace)
    params = {**where, "p_at": at, "p_request": request_id}
    one_trip = _one_trip(conn)
    start_id = None
    if one_trip and start is not None:
        params.update({f"s_{name}": value for name, value in start.items()})
        row = _COUNT_AND_START.execute(conn, params).first()
        changed, start_id = row.counted, int(row.start_id)
    else:
        counting = ON_DRIVER_COUNT_ATTEMPT_WITH_EVENT if one_trip else ON_DRIVER_COUNT_ATTEMPT
        changed = counting.execute(conn, params).rowcount
    if changed == 0:
        conn.execute(NEW_STATUS, {"listing_id": listing_id, "marketplace": marketplace,
                                  "state": "queued", "at": at, "updated_at": at, "attempts": 1,
                                  "request_id": request_id})
    elif one_trip:
        return start_id
    ON_DRIVER_COPY_EVENT.execute(conn, where)
    return start_id


START_FIELDS = ("message_id", "listing_id", "marketplace", "request_id", "worker", "broker_id",
                "started_at")
"""The columns of a job start's row that its writer gives (the id is the store's)."""


def _count_and_start() -> Select[Any]:
    """:data:`COUNT_ATTEMPT` with its event and the start's row inserted, as one statement
    (PostgreSQL): the row's new id, and how many status rows were counted (0: the pair
    has no row yet)."""
    changed = COUNT_ATTEMPT.returning(*(STATUS.c[name] for name in EVENT_COPIED)).cte("changed")
    event = _event_of(changed).returning(EVENT.c.id).cte("event")
    started = insert(START).values(
        {name: bindparam(f"s_{name}") for name in START_FIELDS},
    ).returning(START.c.id).cte("started")
    return select(
        select(started.c.id).scalar_subquery().label("start_id"),
        select(func.count()).select_from(changed).scalar_subquery().label("counted"),
    ).add_cte(event)


_COUNT_AND_START = DriverStatement(_count_and_start())


def read_settled(
    conn: Connection, listing_id: str, marketplace: str, message_id: str | None = None
) -> tuple[TransferStatus | None, int, int]:
    """:func:`syndication.transfer.common.settled_view` on a Core connection, and how many
    starts of ``message_id`` are recorded."""
    found = ON_DRIVER_SETTLED_VIEW.execute(conn, {**pair(listing_id, marketplace),
                                                  "p_message": message_id}).first()
    return _settled_of(found)


def _settled_of(found: Any) -> tuple[TransferStatus | None, int, int]:
    """What :func:`read_settled` returns, from a row of :data:`SETTLED_VIEW` (``None``:
    the pair has no row)."""
    if found is None:
        return None, 0, 0
    status = status_record(found)
    generation, earlier = int(found.generation), int(found.earlier_starts)
    if status.state != "queued":
        return status, generation, earlier
    if found.settled_state is None:
        return None, generation, earlier
    return TransferStatus(
        listing_id=status.listing_id, marketplace=status.marketplace,
        state=found.settled_state, marketplace_id=status.marketplace_id,
        public_url=status.public_url, action=status.action, at=found.settled_at,
        attempts=status.attempts, error=status.error, document_hash=status.document_hash,
    ), generation, earlier


def read_feed_input(conn: Connection, listing_id: str) -> FeedInput | None:
    """The listing with its office and broker, or ``None`` when it (or its office) is not
    stored: the job's Core twin of :func:`~syndication.store.repository.load_feed_input`."""
    with_images = ON_DRIVER_FEED_INPUT_WITH_IMAGES.get(conn.dialect.name)
    if with_images is None:
        row = ON_DRIVER_FEED_INPUT.execute(conn, {"p_listing": listing_id}).first()
        if row is None:
            return None
        images: list[Any] = ON_DRIVER_IMAGES_OF.execute(conn, {"p_listing": listing_id}).rows
        return _feed_input_of(row, images)
    row = with_images.execute(conn, {"p_listing": listing_id}).first()
    return None if row is None else _feed_input_of(row)


def _feed_input_of(row: Any, images: list[Any] | None = None) -> FeedInput:
    """The record of a row of :data:`FEED_INPUT` with ``images``, or of one with its
    images aggregated (:func:`_with_images`) when ``images`` is ``None``."""
    if images is None:
        images = [_Image(**image) for image in row.listing_images or ()]
    broker = _Prefixed(row, "u_") if row.u_id is not None else None
    return FeedInput(
        listing=listing_record(row, images),
        office=office_record(_Prefixed(row, "o_")),  # type: ignore[arg-type]
        broker=user_record(broker) if broker is not None else None,  # type: ignore[arg-type]
    )


def _pair_and_listing(dialect: str) -> Select[Any]:
    """:data:`SETTLED_VIEW` (its columns as ``s_…``) beside the listing with its office,
    broker and images (:func:`_with_images`, its columns by their own names), in one
    row: both outer-joined to a row of nothing, so that either may be missing. The
    joins are nested rather than two derived tables, which would list every column
    twice: psycopg converts a statement's text once only while it is under 4 KiB
    (``MAX_CACHED_STATEMENT_LENGTH``), and again on every call above it."""
    settled_columns, settled_from = _settled_parts()
    listing = _with_images(dialect)
    anchor = select(literal(1).label("anchor")).subquery("anchor")
    listing_from = (LISTING.join(OFFICE, OFFICE.c.id == LISTING.c.office_id)
                    .outerjoin(USER, USER.c.id == LISTING.c.broker_id))
    return (
        select(*(column.label(f"s_{column.name}") for column in settled_columns),
               *listing.selected_columns)
        .select_from(anchor.outerjoin(settled_from, _PAIR)
                     .outerjoin(listing_from, LISTING.c.id == bindparam("p_listing")))
    )


ON_DRIVER_PAIR_AND_LISTING = {"postgresql": DriverStatement(_pair_and_listing("postgresql"))}
"""By store: PostgreSQL only. On SQLite a statement costs no round trip, and the joined
one cost some 20 µs more than the two it replaces."""


def read_pair_and_listing(
    conn: Connection, listing_id: str, marketplace: str, message_id: str | None = None
) -> tuple[TransferStatus | None, int, int, FeedInput | None]:
    """:func:`read_settled` and :func:`read_feed_input` together: on PostgreSQL in one
    statement (one round trip of the job's first step fewer), elsewhere one after the
    other."""
    together = ON_DRIVER_PAIR_AND_LISTING.get(conn.dialect.name)
    if together is None:
        return (*read_settled(conn, listing_id, marketplace, message_id),
                read_feed_input(conn, listing_id))
    row = together.execute(conn, {**pair(listing_id, marketplace),
                                  "p_message": message_id}).first()
    current, generation, earlier = _settled_of(
        _Prefixed(row, "s_") if row.s_listing_id is not None else None)
    feed_input = _feed_input_of(row) if row.id is not None else None
    return current, generation, earlier, feed_input
