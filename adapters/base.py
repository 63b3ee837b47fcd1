"""The transport interface: how a document reaches a marketplace.

A transport has one job per method and no knowledge of listings beyond the
:class:`Delivery` it is handed. Errors leave a transport only as
:class:`~syndication.errors.TransientError` (worth retrying) or
:class:`~syndication.errors.PermanentError` (not), carrying the listing and
marketplace; the HTTP client's own exceptions are translated inside the
transport and nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    """One document for one marketplace.

    ``action`` is ``create``, ``update``, ``delete``, ``final_price`` or
    ``final_price_retraction``. ``idempotency_key`` is derived from the listing,
    the marketplace and the document version: the same key must never create
    a second listing on the marketplace.
    """

    marketplace: str
    listing_id: str
    office_id: str
    action: str
    document: bytes
    idempotency_key: str


@dataclass(frozen=True)
class Receipt:
    """The marketplace's answer to an accepted delivery.

    ``not_known`` is set when the marketplace answered a removal by saying it
    did not know the listing (HTTP 404): the removal is done as far as it can
    tell, yet it may still hold the listing under another id, so the status
    keeps a note of it.
    """

    marketplace_id: str | None = None
    public_url: str | None = None
    published: bool = False
    message: str | None = None
    not_known: bool = False


@dataclass(frozen=True)
class RemoteListing:
    """What a marketplace says it holds for a listing (confirmation, R13)."""

    listing_id: str
    marketplace_id: str | None
    published: bool
    public_url: str | None = None
    document_hash: str | None = None


class Transport(ABC):
    """Delivers documents to one marketplace."""

    @abstractmethod
    def send(self, delivery: Delivery) -> Receipt:
        """Deliver one document and return the marketplace's receipt."""

    def lookup(self, marketplace: str, listing_id: str) -> RemoteListing | None:
        """What the marketplace holds for one listing, or ``None``; used to confirm
        publication. Transports that cannot ask return ``None``."""
        return None

    def inventory(self, marketplace: str, office_id: str) -> list[RemoteListing] | None:
        """Every listing the marketplace holds for an office, or ``None`` when this
        transport cannot ask (a file drop)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release pooled connections."""
