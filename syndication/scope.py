"""The store's side of tenancy (R14): principals loaded from rows, scope as SQL, roles set.

:func:`readable_offices` is :func:`syndication.rules.tenancy.can_read` in SQL,
so a query is scoped in one statement instead of one check per office;
``tests/rules/test_tenancy.py`` checks that the two agree on every office.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, true
from sqlmodel import Session, col

from syndication.access import (
    ADMIN,
    SUPPORT,
    ApiKeyPrincipal,
    OfficeRef,
    Principal,
    UserPrincipal,
    require_role,
)
from syndication.store.models import ListingRow, OfficeRow, UserRow, utcnow


def principal_of(row: UserRow) -> UserPrincipal:
    """The principal of a stored user."""
    return UserPrincipal(
        user_id=row.id, office_id=row.office_id, role=row.role,
        companies=tuple(row.companies or ()),
    )


def user_principal(session: Session, user_id: str) -> UserPrincipal | None:
    """The stored user ``user_id`` as a principal, or ``None`` when there is none."""
    row = session.get(UserRow, user_id)
    return None if row is None else principal_of(row)


def office_ref(row: OfficeRow) -> OfficeRef:
    """A stored office as the tenancy rule sees it."""
    return OfficeRef(id=row.id, company_id=row.company_id)


def set_role(session: Session, user_id: str, role: str) -> tuple[str, str]:
    """Give ``user_id`` the role ``role``; returns ``(old, new)``. The caller commits.

    Raises :class:`UnknownRole` for a role outside :data:`ROLES` and
    :class:`~syndication.passwords.UnknownUser` for a user that is not stored.
    """
    from syndication.passwords import UnknownUser

    require_role(role)
    row = session.get(UserRow, user_id)
    if row is None:
        raise UnknownUser(f"no user with id {user_id!r}")
    old = row.role
    row.role = role
    row.updated_at = utcnow()
    session.add(row)
    return old, role


def readable_offices(principal: Principal) -> Any:
    """A ``SELECT office.id`` of every office ``principal`` may read, for ``IN (…)`` scoping.

    The same decision as :func:`syndication.rules.tenancy.can_read`, in SQL:
    support and admin every office, an API key its office, an agent the
    offices of its companies (its own office when it has no companies).
    """
    office_id = col(OfficeRow.id)
    if isinstance(principal, ApiKeyPrincipal):
        condition: Any = office_id == principal.office_id
    elif principal.role in (SUPPORT, ADMIN):
        condition = true()
    elif principal.companies:
        condition = col(OfficeRow.company_id).in_(principal.companies)
    else:
        condition = office_id == principal.office_id
    return select(office_id).where(condition)


def readable_office_ids(session: Session, principal: Principal) -> set[str]:
    """The ids of the offices ``principal`` may read, in one query."""
    return set(session.scalars(readable_offices(principal)))


def may_read_office(session: Session, principal: Principal, office_id: str) -> bool:
    """True when ``office_id`` is stored and ``principal`` may read it (one query).

    An office that is not stored and one of another tenant are both ``False``,
    so a caller answers them alike (R14: no existence leak).
    """
    query = readable_offices(principal).where(col(OfficeRow.id) == office_id)
    return session.scalars(query).first() is not None


def may_read_listing(session: Session, principal: Principal, listing_id: str) -> bool:
    """True when ``listing_id`` is stored, its office is stored and ``principal`` may read
    that office (one query); unknown and another tenant's are both ``False``."""
    query = select(col(ListingRow.id)).where(
        col(ListingRow.id) == listing_id,
        col(ListingRow.office_id).in_(readable_offices(principal)),
    )
    return session.scalars(query).first() is not None

