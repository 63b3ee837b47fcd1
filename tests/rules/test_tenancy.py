"""R14 tenancy: the decision table of ``syndication.rules.tenancy``, row by row, and its SQL
twin in ``syndication.scope`` agreeing with it on every office of a real store."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from syndication.access import (
    ADMIN,
    AGENT,
    ROLES,
    SUPPORT,
    ApiKeyPrincipal,
    OfficeRef,
    Principal,
    UnknownRole,
    UserPrincipal,
)
from syndication.rules.tenancy import can_manage, can_read, can_write
from syndication.scope import (
    may_read_listing,
    may_read_office,
    readable_office_ids,
)
from syndication.store.db import session_scope
from syndication.store.models import ListingRow, OfficeRow

OWN = OfficeRef("K1", "AB-1")
SISTER = OfficeRef("K2", "AB-1")
OTHER_COMPANY = OfficeRef("K3", "AB-2")
NO_COMPANY = OfficeRef("K4", None)


def user(role: str = AGENT, companies: tuple[str, ...] = ("AB-1",)) -> UserPrincipal:
    return UserPrincipal(user_id="U1", office_id="K1", role=role, companies=companies)


KEY = ApiKeyPrincipal(key_id="0123456789abcdef", office_id="K1")


@pytest.mark.parametrize(
    ("row", "principal", "office", "read", "write", "manage"),
    [
        (1, user(ADMIN), OTHER_COMPANY, True, True, True),
        (1, user(ADMIN, ()), NO_COMPANY, True, True, True),
        (2, user(SUPPORT), OTHER_COMPANY, True, False, False),
        (2, user(SUPPORT), OWN, True, False, False),
        (3, user(), OWN, True, True, False),
        (3, user(), SISTER, True, True, False),
        (3, user(companies=("AB-1", "AB-2")), OTHER_COMPANY, True, True, False),
        (4, user(), OTHER_COMPANY, False, False, False),
        (4, user(), NO_COMPANY, False, False, False),
        (4, user(companies=("AB-2",)), OWN, False, False, False),
        (5, user(companies=()), OWN, True, True, False),
        (6, user(companies=()), SISTER, False, False, False),
        (6, user(companies=()), NO_COMPANY, False, False, False),
        (7, KEY, OWN, True, True, False),
        (8, KEY, SISTER, False, False, False),
        (8, KEY, OTHER_COMPANY, False, False, False),
    ],
)
def test_decision_table(
    row: int, principal: Principal, office: OfficeRef, read: bool, write: bool, manage: bool
) -> None:
    assert (can_read(principal, office), can_write(principal, office), can_manage(principal)) == (
        read, write, manage,
    ), f"row {row}"


def test_every_role_is_in_the_table() -> None:
    assert ROLES == (AGENT, SUPPORT, ADMIN)
    with pytest.raises(UnknownRole, match="unknown role 'owner'; known roles: agent, support"):
        UserPrincipal(user_id="U1", office_id="K1", role="owner")


def test_writing_is_never_wider_than_reading() -> None:
    principals: list[Principal] = [KEY, *(user(r, c) for r in ROLES for c in ((), ("AB-1",)))]
    for principal in principals:
        for office in (OWN, SISTER, OTHER_COMPANY, NO_COMPANY):
            assert not can_write(principal, office) or can_read(principal, office)


OFFICES = (OWN, SISTER, OTHER_COMPANY, NO_COMPANY)
PRINCIPALS: list[Principal] = [
    KEY, ApiKeyPrincipal(key_id="fedcba9876543210", office_id="K4"),
    *(user(role, companies) for role in ROLES
      for companies in ((), ("AB-1",), ("AB-2",), ("AB-1", "AB-2"), ("AB-9",))),
]


def _store(engine: Engine) -> None:
    with session_scope(engine) as session:
        for office in OFFICES:
            session.add(OfficeRow(id=office.id, name=f"Office {office.id}",
                                  company_id=office.company_id))
            session.add(ListingRow(id=f"L-{office.id}", office_id=office.id, category="villa",
                                   state="for_sale"))
        session.add(ListingRow(id="L-ORPHAN", office_id="GONE", category="villa",
                               state="for_sale"))


@pytest.mark.parametrize("principal", PRINCIPALS, ids=repr)
def test_the_sql_scope_agrees_with_the_rule(engine: Engine, principal: Principal) -> None:
    """One query gives exactly the offices :func:`can_read` allows, on both databases."""
    _store(engine)
    expected = {office.id for office in OFFICES if can_read(principal, office)}
    with Session(engine) as session:
        assert readable_office_ids(session, principal) == expected
        for office in OFFICES:
            assert may_read_office(session, principal, office.id) == (office.id in expected)
            assert may_read_listing(session, principal, f"L-{office.id}") == (
                office.id in expected
            )
        assert not may_read_office(session, principal, "NOPE")
        assert not may_read_listing(session, principal, "NOPE")
        assert not may_read_listing(session, principal, "L-ORPHAN")
