"""Which records of a pushed document the principal may write (R14), record by record.

:class:`WriteScope` is the ``refuse`` check :func:`syndication.ingest.ingest_document`
runs on every record that is otherwise valid; a refused record is rejected
naming its field, like any input error, and its stored copy stays as it was.
The decision is :func:`syndication.rules.tenancy.can_write`:

======  ===========  =======================================================
kind    field        refused when
======  ===========  =======================================================
office  ``id``       the stored office, or the office as sent, is not writable
user    ``office_id`` the office is neither written by this document nor a
                     stored writable one
user    ``id``       the stored user belongs to an office that is not writable
user    ``companies`` a company (or ``main_company``) outside the principal's
                     own: nobody grants a tenant they do not have
listing ``office_id`` as for a user
listing ``id``       the stored listing belongs to an office that is not writable
======  ===========  =======================================================

Before tenancy, a record holding a NUL byte anywhere is refused naming the
field (PostgreSQL cannot store one; SQLite would, so the CLI takes it there).
An office of another tenant is refused with the message ingest gives for an
office that does not exist, so the answer leaks nothing. An admin is never
refused; support writes nothing (the route answers 403 before reading).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from syndication.access import ADMIN, ApiKeyPrincipal, OfficeRef, Principal
from syndication.ingest import RecordError
from syndication.rules.tenancy import can_write
from syndication.scope import office_ref
from syndication.store.models import ListingRow, OfficeRow, UserRow

NOT_YOURS = "belongs to another tenant, or the id is taken; use another id"


def missing_office(office_id: str) -> str:
    """The message of ingest for an office that is nowhere, used for another tenant's too."""
    return f"office {office_id!r} is not in the document or the store"


def nul_path(value: Any, path: str = "") -> str | None:
    """The path (``images[0].caption``) of the first key or text holding a NUL byte, if any:
    PostgreSQL cannot store one, so such a record is rejected by field before it gets there."""
    if isinstance(value, str):
        return (path or "id") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here.replace("\x00", "\\0")
            found = nul_path(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class WriteScope:
    """The write check of one principal over one document; stored rows are read as needed
    (each office once) through a session of its own, whose connection goes back to the
    pool after each record, so no read transaction is held while ingest writes."""

    def __init__(self, engine: Engine, principal: Principal) -> None:
        self.principal = principal
        self.session = Session(engine)
        self.offices: dict[str, OfficeRef | None] = {}
        self.document_offices: dict[str, OfficeRef] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> WriteScope:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, kind: str, name: str, record: dict[str, Any]) -> list[RecordError]:
        where = nul_path(record)
        if where is not None:
            return [RecordError("contains a NUL byte, which the store cannot keep",
                                record=name, field=where)]
        try:
            problem = getattr(self, f"_{kind}")(record)
        finally:
            self.session.close()
        if problem is None:
            return []
        field, message = problem
        return [RecordError(message, record=name, field=field)]

    def _is_admin(self) -> bool:
        return not isinstance(self.principal, ApiKeyPrincipal) and self.principal.role == ADMIN

    def _stored_office(self, office_id: str) -> OfficeRef | None:
        if office_id not in self.offices:
            row = self.session.get(OfficeRow, office_id)
            self.offices[office_id] = None if row is None else office_ref(row)
        return self.offices[office_id]

    def _target(self, office_id: str) -> OfficeRef | None:
        """The office a user or listing names, when the principal may write it."""
        office = self.document_offices.get(office_id) or self._stored_office(office_id)
        if office is None or not can_write(self.principal, office):
            return None
        return office

    def _office(self, record: dict[str, Any]) -> tuple[str, str] | None:
        sent = OfficeRef(record["id"], record.get("company_id"))
        stored = self._stored_office(record["id"])
        if not self._is_admin() and (
            not can_write(self.principal, sent)
            or (stored is not None and not can_write(self.principal, stored))
        ):
            return "id", NOT_YOURS
        self.document_offices[sent.id] = sent
        return None

    def _owned_elsewhere(self, model: Any, record_id: str) -> bool:
        row = self.session.get(model, record_id)
        return row is not None and self._target(row.office_id) is None

    def _user(self, record: dict[str, Any]) -> tuple[str, str] | None:
        if self._is_admin():
            return None
        office = self._target(record["office_id"])
        if office is None:
            return "office_id", missing_office(record["office_id"])
        if self._owned_elsewhere(UserRow, record["id"]):
            return "id", NOT_YOURS
        own = self._own_companies(office)
        granted = [*(record.get("companies") or ()), *filter(None, [record.get("main_company")])]
        foreign = sorted({c for c in granted if c not in own})
        if foreign:
            return "companies", (f"names companies outside your own ({', '.join(foreign)}); "
                                 "only an admin grants those")
        return None

    def _own_companies(self, office: OfficeRef) -> set[str]:
        principal = self.principal
        if not isinstance(principal, ApiKeyPrincipal) and principal.companies:
            return set(principal.companies)
        return {office.company_id} if office.company_id else set()

    def _listing(self, record: dict[str, Any]) -> tuple[str, str] | None:
        if self._is_admin():
            return None
        if self._target(record["office_id"]) is None:
            return "office_id", missing_office(record["office_id"])
        if self._owned_elsewhere(ListingRow, record["id"]):
            return "id", NOT_YOURS
        return None
