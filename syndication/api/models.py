"""The API's request and response bodies, as pydantic models.

FastAPI writes the OpenAPI document from these, so every route's answers, the
errors included (:class:`ErrorBody`), are described by the same classes that
shape them. Status documents keep the keys of DESIGN §4 (``object_id``,
``marketplaces`` with ``marketplace``, ``state``, ``marketplace_id``,
``action``, ``at``, ``error``, ``contacts``) and the extra keys the CLI's
``status --json`` prints (``public_url``, ``attempts``, ``photo_problems``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from syndication import registry
from syndication.status_view import VIEW_STATES

NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""Text without control characters (a NUL above all, which PostgreSQL cannot store)."""

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]*$"
"""The id of an office or a listing, as ``schemas/records.schema.json`` has it."""

if TYPE_CHECKING:
    State = str
    Marketplace = str
else:
    State = Literal[VIEW_STATES]
    """Every state a status view shows (the enum of the document, from one list)."""
    Marketplace = Literal[tuple(registry.names())]
    """Every registered marketplace's name (the enum of the document, from the registry)."""


class ErrorBody(BaseModel):
    """Every refusal: a stable ``code``, a message for people, and what was at fault."""

    code: str = Field(examples=["invalid"])
    message: str = Field(examples=["must be a number"])
    record: str | None = Field(default=None, examples=["listing 'O1'"])
    field: str | None = Field(default=None, examples=["price"])


class LoginBody(BaseModel):
    """``POST /sessions``: a user id and password (R9)."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    password: str = Field(min_length=1, max_length=1024, pattern=NO_CONTROL)


class SessionOut(BaseModel):
    """A new session token: shown once, never stored (only its hash is)."""

    token: str
    expires_at: datetime


class Problem(BaseModel):
    field: str | None
    message: str


class RecordOutcome(BaseModel):
    """What happened to one record of the document."""

    record: str = Field(examples=["listing 'O1'"])
    kind: Literal["office", "user", "listing", "document"]
    id: str | None
    outcome: Literal["accepted", "rejected"]
    field: str | None = None
    message: str | None = None
    problems: list[Problem] = Field(default_factory=list)


class RecordsResult(BaseModel):
    """``PUT /records``: counts and one outcome per record, in document order by kind."""

    accepted: int
    rejected: int
    created_listings: list[str]
    records: list[RecordOutcome]


class TransferBody(BaseModel):
    """``POST /transfers``: exactly one of ``object_id`` and ``office_id``; with
    ``marketplace``, to that marketplace only (the others' statuses are left as they are)."""

    model_config = ConfigDict(extra="forbid")

    object_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    office_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    marketplace: Marketplace | None = Field(
        default=None, description="transfer to this marketplace only; omitted: to every "
        "marketplace of the listing's licence and selection")


class TransferAccepted(BaseModel):
    """A queued transfer request: follow it at ``status_url``."""

    request_id: str
    status_url: str
    scope: str
    listings: int
    jobs: int
    recorded: int


class FailureOut(BaseModel):
    listing_id: str
    marketplace: str
    error: str


class TransferProgress(BaseModel):
    """How far a request has got: pairs (listing, marketplace) per state, and the outcome.

    ``outcome`` is ``running`` until every pair has a final state, then
    ``failed`` when any failed, else ``done``.
    """

    request_id: str
    scope: str
    created_at: datetime
    total: int
    done: int
    finished: bool
    outcome: Literal["running", "done", "failed"]
    counts: dict[str, int]
    unchanged: int
    failures: list[FailureOut]


class ContactsOut(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    web: str | None = None
    advice: str | None = None


class MarketplaceStatus(BaseModel):
    """One marketplace's row of a listing's status (R8)."""

    marketplace: Marketplace
    state: State
    marketplace_id: str | None
    action: str | None
    at: str | None
    error: str | None
    contacts: ContactsOut | None
    public_url: str | None
    attempts: int


class PhotoProblem(BaseModel):
    assignment_id: str
    system_id: str | None
    message: str
    at: str | None


class OfficePhotoProblem(PhotoProblem):
    listing_id: str | None
    unmatched: bool
    advice: str | None


class HistoryEvent(BaseModel):
    marketplace: str
    state: str
    action: str | None
    marketplace_id: str | None
    attempts: int
    error: str | None
    at: str | None


class ListingStatus(BaseModel):
    """DESIGN §4's status of one listing; ``history`` only when asked for."""

    object_id: str
    marketplaces: list[MarketplaceStatus]
    photo_problems: list[PhotoProblem]
    history: list[HistoryEvent] | None = None


class OfficeListing(BaseModel):
    object_id: str
    system_id: str | None
    address: str
    marketplaces: list[MarketplaceStatus]


class OfficeStatus(BaseModel):
    """Every listing of an office with its state per marketplace (filtered when asked)."""

    office_id: str
    office: str
    listings: list[OfficeListing]
    photo_problems: list[OfficePhotoProblem]


class NothingToSend(BaseModel):
    """``GET …/preview/{marketplace}`` when the next transfer would send nothing: why."""

    object_id: str
    marketplace: Marketplace
    action: Literal["none"]
    reason: str
