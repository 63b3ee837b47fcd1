"""One sandbox marketplace: what it holds, how it answers, what it counted.

:class:`SandboxMarketplace` is the marketplace without the network: ``handle``
takes a method, a path, headers and a body and returns an :class:`Answer`.
It speaks the wire protocol of :mod:`adapters.http` (``ROUTES``), checks the
bearer token, parses every document with ``parse_untrusted`` and validates it
against the marketplace's XSD, replays the first successful answer for a
repeated ``Idempotency-Key``, and publishes accepted listings after
``publish_delay`` seconds. Counters (calls, creations, received documents) let
tests prove that nothing was created twice.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lxml import etree

from adapters.http import ROUTES
from adapters.sandbox.callbacks import CallbackSender
from adapters.sandbox.faults import Fault, Faults
from feeds.validate import parse_untrusted, validate_element
from syndication.errors import PermanentError
from syndication.logs import get_logger

ID_PREFIXES = {"hemnet": "HN", "blocket": "BB", "hittahem": "HH"}
"""The marketplace's own id prefix (the HemnetID starts with HN)."""
ACTIONS_BY_ROUTE = {route: action for action, route in ROUTES.items()}
FINAL_PRICE_ACTIONS = ("final_price", "final_price_retraction")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer; ``hang`` seconds pass before it is written, then it is
    written whole, or one byte every ``trickle`` seconds; ``never``: no answer."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: float = 0.0
    trickle: float = 0.0
    never: bool = False


@dataclass(frozen=True)
class Received:
    """A document the marketplace accepted."""

    action: str
    listing_id: str
    office_id: str | None
    document: bytes
    idempotency_key: str


@dataclass
class Entry:
    """A listing the marketplace holds."""

    listing_id: str
    office_id: str | None
    marketplace_id: str
    document_hash: str
    accepted_at: float


def _xml(tag: str, **children: str | None) -> etree._Element:
    root = etree.Element(tag)
    for name, value in children.items():
        if value is not None:
            etree.SubElement(root, name).text = value
    return root


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def error(status: int, message: str, **headers: str) -> Answer:
    """An ``<error>`` answer with the marketplace's message."""
    return Answer(status, _bytes(_xml("error", status=str(status), message=message)), headers)


class SandboxMarketplace:
    """The state and behaviour of one loopback marketplace; thread-safe."""

    def __init__(
        self,
        name: str,
        *,
        token: str | None = None,
        publish_delay: float = 0.0,
        schemas: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        latency_ms: float = 0.0,
    ) -> None:
        self.name = name
        self.token = token
        self.publish_delay = publish_delay
        self.latency_ms = latency_ms
        """How long the marketplace takes to answer a call, in milliseconds (tests set it)."""
        self.in_flight = 0
        """Calls read and not yet answered now."""
        self.max_in_flight = 0
        """The most calls in flight at once since the start (or :meth:`reset_in_flight`)."""
        self.public_base = f"https://{name}.sandbox.invalid/listing"
        self.faults = Faults(seed)
        self._schemas = dict(schemas) if schemas else None
        self._clock = clock
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._listings: dict[str, Entry] = {}
        self._final_prices: dict[str, bytes] = {}
        self._replies: dict[str, tuple[tuple[str, str, str], Answer]] = {}
        self._rejections: dict[str, str] = {}
        self._next_id = 1_000_001
        self.calls: Counter[tuple[str, str]] = Counter()
        self.creations: Counter[str] = Counter()
        self.deletions: Counter[str] = Counter()
        self.delete_reasons: dict[str, str | None] = {}
        self.received: list[Received] = []
        self.replays = 0
        self.callbacks: CallbackSender | None = None
        self._log = get_logger(marketplace=name, component="sandbox")

    # --- controls -----------------------------------------------------------

    def reject(self, listing_id: str, message: str) -> None:
        """Answer 422 with ``message`` to every document for ``listing_id``."""
        with self._lock:
            self._rejections[listing_id] = message

    def accept(self, listing_id: str) -> None:
        """Stop rejecting ``listing_id``."""
        with self._lock:
            self._rejections.pop(listing_id, None)

    def configure_callbacks(self, url: str, secret: bytes) -> CallbackSender:
        """Call back ``url`` (signed with ``secret``) when an accepted listing is published."""
        self.callbacks = CallbackSender(self.name, url, secret)
        return self.callbacks

    def set_publish_delay(self, seconds: float) -> None:
        """Accepted listings count as published ``seconds`` after acceptance."""
        self.publish_delay = seconds

    def note_arrival(self) -> None:
        """A call was read; it is in flight until :meth:`note_answered`."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def note_answered(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset_in_flight(self) -> None:
        """Count the most calls in flight at once from now on."""
        with self._lock:
            self.max_in_flight = self.in_flight

    def remove_by_hand(self, listing_id: str) -> None:
        """Drop a listing as a marketplace's staff might (drift for R13)."""
        with self._lock:
            self._listings.pop(listing_id, None)

    # --- what tests read ----------------------------------------------------

    def holds(self, listing_id: str) -> bool:
        with self._lock:
            return listing_id in self._listings

    def marketplace_id(self, listing_id: str) -> str | None:
        with self._lock:
            entry = self._listings.get(listing_id)
            return entry.marketplace_id if entry else None

    def final_price(self, listing_id: str) -> bytes | None:
        """The final-price document held for ``listing_id`` (retracted: ``None``)."""
        with self._lock:
            return self._final_prices.get(listing_id)

    def documents(self, action: str | None = None, listing_id: str | None = None) -> list[Received]:
        """Accepted documents, oldest first, filtered by action and listing."""
        with self._lock:
            return [
                r
                for r in self.received
                if (action is None or r.action == action)
                and (listing_id is None or r.listing_id == listing_id)
            ]

    def call_count(self, listing_id: str | None = None, action: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (lid, act), n in self.calls.items()
                if (listing_id is None or lid == listing_id) and (action is None or act == action)
            )

    # --- answering ----------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one request (headers with lower-case names)."""
        route = self._route(method, path)
        if route is None:
            return error(
                404 if method in ("GET", "POST", "PUT", "DELETE") else 405, "no such route"
            )
        action, ident = route
        if not _xml_text(ident):
            return error(400, "ids must be text XML can carry (no control characters)")
        with self._lock:
            self.calls[(ident, action)] += 1
        if not self._authorized(headers.get("authorization")):
            return error(401, "missing or wrong bearer token")
        fault = self.faults.draw()
        if fault is not None and fault.never:
            return Answer(0, never=True)
        if fault is not None and fault.status is not None:
            extra = (
                {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            )
            if fault.body is not None:
                return Answer(fault.status, fault.body, extra)
            return error(fault.status, f"sandbox fault {fault.status}", **extra)
        answer = self._answer(action, ident, headers, body)
        return _with_hang(answer, fault)

    def _route(self, method: str, path: str) -> tuple[str, str] | None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "listings":
            if method == "GET":
                return "lookup", unquote(parts[1])
            action = ACTIONS_BY_ROUTE.get((method, "/listings/{id}"))
        elif len(parts) == 3 and parts[0] == "listings" and parts[2] == "final-price":
            action = ACTIONS_BY_ROUTE.get((method, "/listings/{id}/final-price"))
        elif (
            len(parts) == 3 and parts[0] == "offices" and parts[2] == "listings" and method == "GET"
        ):
            return "inventory", unquote(parts[1])
        else:
            return None
        return (action, unquote(parts[1])) if action else None

    def _authorized(self, header: str | None) -> bool:
        if not self.token:
            return True
        expected = f"Bearer {self.token}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)

    def _answer(self, action: str, ident: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if action == "lookup":
            with self._lock:
                entry = self._listings.get(ident)
                return (
                    Answer(200, _bytes(self._listing_xml(entry)))
                    if entry
                    else error(404, "unknown listing")
                )
        if action == "inventory":
            with self._lock:
                root = etree.Element("listings", office=ident)
                for entry in self._listings.values():
                    if entry.office_id == ident:
                        root.append(self._listing_xml(entry))
            return Answer(200, _bytes(root))
        key = headers.get("idempotency-key")
        if not key:
            return error(400, "the Idempotency-Key header is required")
        fingerprint = (action, ident, hashlib.sha256(body).hexdigest())
        with self._key_lock(key):
            with self._lock:
                stored = self._replies.get(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    return error(422, "Idempotency-Key reused for a different request")
                with self._lock:
                    self.replays += 1
                first = stored[1]
                return Answer(
                    first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"}
                )
            answer = self._deliver(action, ident, headers.get("x-office-id"), key, body)
            if 200 <= answer.status < 300:
                with self._lock:
                    self._replies[key] = (fingerprint, answer)
            return answer

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _deliver(
        self, action: str, listing_id: str, office_id: str | None, key: str, body: bytes
    ) -> Answer:
        """Check and apply one document; the single place where state changes."""
        if action in FINAL_PRICE_ACTIONS and self.name != "hemnet":
            return error(404, f"{self.name} takes no final prices")
        try:
            root = parse_untrusted(body, f"{action} document")
        except PermanentError as exc:
            self._log.info(
                "sandbox_refused", listing_id=listing_id, action=action, reason=exc.message
            )
            return error(400, exc.message)
        try:
            validate_element(self._schema(action), root)
        except PermanentError as exc:
            return error(422, exc.message)
        external = root.findtext("externalId")
        if external is not None and external != listing_id:
            return error(422, f"externalId {external!r} does not match the listing {listing_id!r}")
        office_id = office_id or root.findtext("agencyId")
        with self._lock:
            if listing_id in self._rejections:
                return error(422, self._rejections[listing_id])
            self.received.append(Received(action, listing_id, office_id, body, key))
            return self._apply(action, listing_id, office_id, root, body)

    def _apply(
        self, action: str, listing_id: str, office_id: str | None, root: Any, body: bytes
    ) -> Answer:
        if action == "final_price":
            self._final_prices[listing_id] = body
            return self._receipt(200, listing_id, None, "accepted", "final price received")
        if action == "final_price_retraction":
            if self._final_prices.pop(listing_id, None) is None:
                return error(404, "no final price held for this listing")
            return self._receipt(200, listing_id, None, "retracted", "final price retracted")
        entry = self._listings.get(listing_id)
        if action == "delete":
            if entry is None:
                return error(404, "unknown listing")
            del self._listings[listing_id]
            self.deletions[listing_id] += 1
            reason = _reason(root)
            self.delete_reasons[listing_id] = reason
            return self._receipt(
                200, listing_id, entry, "deleted", f"deleted ({reason or 'no reason'})"
            )
        digest = hashlib.sha256(body).hexdigest()
        if action == "create" or entry is None:
            entry = Entry(listing_id, office_id, self._new_id(), digest, self._clock())
            self._listings[listing_id] = entry
            self.creations[listing_id] += 1
            self._announce(entry)
            return self._receipt(201, listing_id, entry, self._state(entry), "created")
        entry.document_hash = digest
        entry.office_id = office_id or entry.office_id
        self._announce(entry)
        return self._receipt(200, listing_id, entry, self._state(entry), "updated")

    def _announce(self, entry: Entry) -> None:
        """With callbacks configured, call back once the accepted ``entry`` is published
        (or refused by a manual review, which takes it down again)."""
        if self.callbacks is None or self._state(entry) == "published":
            return
        refusal = self.callbacks.review(entry.listing_id)
        payload = {"listing_id": entry.listing_id, "document_sha256": entry.document_hash}
        if refusal is not None:
            del self._listings[entry.listing_id]
            payload.update(outcome="failed", reason=refusal)
        else:
            payload.update(outcome="published", marketplace_id=entry.marketplace_id,
                           public_url=self._url(entry))
        self.callbacks.schedule(self.publish_delay, payload)

    def _schema(self, action: str) -> str:
        if self._schemas is None:
            self._schemas = default_schemas(self.name)
        return self._schemas["final_price" if action in FINAL_PRICE_ACTIONS else "listing"]

    def _new_id(self) -> str:
        number, self._next_id = self._next_id, self._next_id + 1
        return f"{ID_PREFIXES.get(self.name, self.name[:2].upper())}{number}"

    def _state(self, entry: Entry) -> str:
        published = self._clock() - entry.accepted_at >= self.publish_delay
        return "published" if published else "accepted"

    def _url(self, entry: Entry) -> str:
        return f"{self.public_base}/{entry.marketplace_id}"

    def _receipt(
        self, status: int, listing_id: str, entry: Entry | None, state: str, message: str
    ) -> Answer:
        root = _xml(
            "receipt",
            id=entry.marketplace_id if entry else None,
            listingId=listing_id,
            url=self._url(entry) if entry and state != "deleted" else None,
            state=state,
            message=message,
        )
        return Answer(status, _bytes(root))

    def _listing_xml(self, entry: Entry) -> etree._Element:
        return _xml(
            "listing",
            id=entry.marketplace_id,
            listingId=entry.listing_id,
            office=entry.office_id,
            state=self._state(entry),
            url=self._url(entry),
            documentHash=entry.document_hash,
        )


def default_schemas(name: str) -> dict[str, str]:
    """The XSDs a marketplace validates against: its listing schema (creates,
    updates and deletes) and, on Hemnet, the final-price schema."""
    from syndication import registry

    schemas = {"listing": registry.get(name).schema}
    if name == "hemnet":
        from feeds import hemnet_final_price

        schemas["final_price"] = hemnet_final_price.SCHEMA
    return schemas


def _xml_text(value: str) -> bool:
    try:
        etree.Element("probe").text = value
    except ValueError:
        return False
    return True


def _reason(root: etree._Element) -> str | None:
    """The reason a delete document gives (each marketplace names it its own way)."""
    found = root.xpath("string((.//reason | .//orsak)[1])")
    return str(found).strip() or None


def _with_hang(answer: Answer, fault: Fault | None) -> Answer:
    if fault is None:
        return answer
    body = answer.body if fault.body is None else fault.body
    return Answer(answer.status, body, answer.headers, hang=fault.hang, trickle=fault.trickle)
