"""The tables of the store (SQLModel).

One table per kind of thing; lists that are only ever read with their owner
(licence, selection, orientations, viewings, user images) are JSON columns,
while listing images have a table of their own because the photo module adds
to them. Times are stored as UTC.

Schema changes go through Alembic (``migrations/``); ``alembic revision
--autogenerate`` compares against :data:`metadata`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from syndication.access import DEFAULT_ROLE

metadata = SQLModel.metadata


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class OfficeRow(SQLModel, table=True):
    __tablename__ = "office"

    id: str = Field(primary_key=True, max_length=64)
    name: str
    company_id: str | None = Field(default=None, max_length=64)
    licence: list[str] = Field(default_factory=list, sa_type=JSON)
    category_defaults: dict[str, list[str]] = Field(default_factory=dict, sa_type=JSON)
    final_price_enabled: bool = False
    hemnet_final_price_agreement: bool = False
    logo_url: str | None = None
    phone: str | None = None
    email: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    website: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserRow(SQLModel, table=True):
    __tablename__ = "app_user"

    id: str = Field(primary_key=True, max_length=64)
    office_id: str = Field(index=True, max_length=64)
    name: str
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    show_on_internet: bool = False
    images: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    companies: list[str] = Field(default_factory=list, sa_type=JSON)
    main_company: str | None = None
    statistics_all_companies: bool = False
    password_hash: str | None = Field(default=None, sa_type=Text)
    password_legacy: bool = False
    password_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    role: str = Field(
        default=DEFAULT_ROLE, max_length=16, sa_column_kwargs={"server_default": DEFAULT_ROLE}
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKeyRow(SQLModel, table=True):
    """An office's API key (R14): only the SHA-256 of its secret is kept, never the key."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)
    office_id: str = Field(index=True, max_length=64)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SessionTokenRow(SQLModel, table=True):
    """A user's session token for the API: only the SHA-256 of its secret is kept."""

    __tablename__ = "session_token"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(index=True, max_length=64)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottleRow(SQLModel, table=True):
    """Failed logins per user name, known or not, to slow down guessing (R9)."""

    __tablename__ = "login_throttle"

    username: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    last_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ListingRow(SQLModel, table=True):
    __tablename__ = "listing"
    __table_args__ = (Index("ix_listing_final_price", "send_final_price", "state", "category"),)

    id: str = Field(primary_key=True, max_length=64)
    office_id: str = Field(index=True, max_length=64)
    system_id: str | None = Field(default=None, index=True, max_length=64)
    company_id: str | None = Field(default=None, max_length=64)
    broker_id: str | None = Field(default=None, index=True, max_length=64)
    category: str = Field(max_length=32)
    orientations: list[str] = Field(default_factory=list, sa_type=JSON)
    state: str = Field(index=True, max_length=32)
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    municipality: str | None = None
    area: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    price: int | None = None
    price_type: str = "asking"
    living_area: float | None = None
    plot_area: float | None = None
    rooms: float | None = None
    monthly_fee: int | None = None
    build_year: int | None = None
    headline: str | None = Field(default=None, sa_type=Text)
    short_description: str | None = Field(default=None, sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    viewings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    marketplaces: list[str] = Field(default_factory=list, sa_type=JSON)
    final_price: int | None = None
    contract_date: date | None = None
    send_final_price: bool = False
    country: str = Field(default="SE", max_length=2, sa_column_kwargs={"server_default": "SE"})
    province: str | None = None
    currency: str = Field(default="SEK", max_length=3, sa_column_kwargs={"server_default": "SEK"})
    bedrooms: int | None = None
    bathrooms: int | None = None
    description_en: str | None = Field(default=None, sa_type=Text)
    modified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ListingImageRow(SQLModel, table=True):
    """An image of a listing. ``source`` is ``desktop`` (replaced on every ingest)
    or ``portal`` (added by the photo module and kept across ingests)."""

    __tablename__ = "listing_image"
    __table_args__ = (
        UniqueConstraint("listing_id", "portal_image_id", name="uq_listing_portal_image"),
    )

    id: int | None = Field(default=None, primary_key=True)
    listing_id: str = Field(index=True, max_length=64)
    url: str
    position: int = 0
    caption: str | None = None
    tag: str | None = None
    source: str = Field(default="desktop", max_length=16)
    portal_image_id: str | None = Field(default=None, max_length=128)
    media_path: str | None = None
    content_type: str | None = None
    sha256: str | None = Field(default=None, max_length=64)


class TransferRequestRow(SQLModel, table=True):
    """One press of "marknadsplatsöverföring": the jobs it fanned out into carry its id.

    The fan-out is resumable from here: ``fan_out_after`` is the last listing id
    whose pairs are stored (batches go in id order), ``fanned_out_at`` is set
    once every batch and the feed jobs are stored, and ``fan_out_owner`` holds
    the fan-out until ``fan_out_until``; after that a relay may take it over
    (:mod:`syndication.transfer.request`).
    """

    __tablename__ = "transfer_request"

    id: str = Field(primary_key=True, max_length=64)
    scope: str
    jobs: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    fan_out_after: str | None = Field(default=None, max_length=64)
    fanned_out_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    fan_out_owner: str | None = Field(default=None, max_length=64)
    fan_out_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxRow(SQLModel, table=True):
    """A message written in the same transaction as the state that waits for it.

    A relay sends it to the broker (with what is left of its delay) and deletes
    it once the broker accepted it (:mod:`syndication.outbox`). ``claimed_by``
    and ``claimed_until`` keep two relays from sending one row at once; a claim
    whose time is up (its relay died) may be taken again.
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    queue_name: str = Field(max_length=64)
    actor_name: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    kwargs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    not_before: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    relay_attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)


class TransferStatusRow(SQLModel, table=True):
    """The current state of one listing on one marketplace (R8).

    ``document_hash`` is the hash of the last document the marketplace accepted:
    a transfer whose new document hashes the same sends nothing (R10).
    """

    __tablename__ = "transfer_status"

    listing_id: str = Field(primary_key=True, max_length=64)
    marketplace: str = Field(primary_key=True, max_length=32)
    state: str = Field(index=True, max_length=32)
    marketplace_id: str | None = Field(default=None, index=True, max_length=128)
    public_url: str | None = None
    action: str | None = Field(default=None, max_length=16)
    at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    document_hash: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, index=True, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TransferEventRow(SQLModel, table=True):
    """The append-only history of every status change (R8). Never updated or deleted."""

    __tablename__ = "transfer_event"
    __table_args__ = (
        Index("ix_transfer_event_listing", "listing_id", "marketplace", "id"),
        # A request's progress: the newest event of each of its pairs.
        Index("ix_transfer_event_request", "request_id", "listing_id", "marketplace", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    listing_id: str = Field(max_length=64)
    marketplace: str = Field(max_length=32)
    state: str = Field(max_length=32)
    action: str | None = Field(default=None, max_length=16)
    marketplace_id: str | None = None
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    request_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str | None = Field(default=None, max_length=128)


class FinalPriceRow(SQLModel, table=True):
    """What the final-price sync last did for a listing (R7)."""

    __tablename__ = "final_price_sync"

    listing_id: str = Field(primary_key=True, max_length=64)
    state: str = Field(index=True, max_length=16)
    sent_price: int | None = None
    sent_contract_date: date | None = None
    document_hash: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    run_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScheduleSlotRow(SQLModel, table=True):
    """A claimed run of a scheduled job: two schedulers cannot both claim one slot."""

    __tablename__ = "schedule_slot"

    job: str = Field(primary_key=True, max_length=64)
    slot: str = Field(primary_key=True, max_length=64)
    claimed_by: str | None = None
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PhotoIntakeRow(SQLModel, table=True):
    """What the photo module fetched from one portal assignment (R11)."""

    __tablename__ = "photo_intake"

    assignment_id: str = Field(primary_key=True, max_length=128)
    system_id: str = Field(index=True, max_length=64)
    listing_id: str | None = Field(default=None, max_length=64)
    images_fetched: int = 0
    last_fetched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PhotoProblemRow(SQLModel, table=True):
    """A problem support must see: an assignment naming no listing, a rejected image."""

    __tablename__ = "photo_problem"

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: str = Field(index=True, max_length=128)
    system_id: str | None = Field(default=None, index=True, max_length=64)
    listing_id: str | None = Field(default=None, index=True, max_length=64)
    message: str = Field(sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiIdempotencyRow(SQLModel, table=True):
    """The first answer to an API request sent with an ``Idempotency-Key`` header.

    Keys are per principal (``user:<id>`` or ``key:<key id>``); ``request`` is
    the request's method, path and body in canonical JSON (small: a transfer's
    scope), so a key reused with other parameters is told apart from a repeat.
    ``status_code`` is 0 while the first request is still being answered.
    """

    __tablename__ = "api_idempotency"

    principal: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=200)
    request: str = Field(sa_type=Text)
    status_code: int = 0
    body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobStartRow(SQLModel, table=True):
    """A start of a transfer message that has not ended (yet): which worker process
    runs it. Deleted when the start ends; a row whose worker is gone is a worker
    death (``syndication.transfer.lifecycle``)."""

    __tablename__ = "job_start"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True, max_length=64)
    listing_id: str = Field(max_length=64)
    marketplace: str = Field(max_length=32)
    request_id: str | None = Field(default=None, max_length=64)
    worker: str = Field(index=True, max_length=255)
    broker_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallbackSeenRow(SQLModel, table=True):
    """A marketplace callback already taken (R16): its id is refused if it comes again.

    Kept while its timestamp could still be accepted; older rows are pruned, since
    a callback that old is refused for its timestamp alone.
    """

    __tablename__ = "callback_seen"

    marketplace: str = Field(primary_key=True, max_length=32)
    callback_id: str = Field(primary_key=True, max_length=128)
    received_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UTCDateTime)


import syndication.store.guard_models  # noqa: E402, F401  (the tables of R15 and R13)
