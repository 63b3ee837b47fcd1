"""Who is asking (R14): the roles, the two kinds of principal, and the store's side of scope.

:data:`ROLES` is the one vocabulary of roles; the model's column default, the
``syndication user role`` command, the decision table of
:mod:`syndication.rules.tenancy` and its test all take it from here.

A principal is who an action is done for: a :class:`UserPrincipal` (a person,
logged in with a password or a session token) or an :class:`ApiKeyPrincipal`
(a program holding an office's API key). Both are plain frozen records, so
the tenancy rule (:mod:`syndication.rules.tenancy`) stays pure;
:mod:`syndication.scope` loads them from the store and turns the rule into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from syndication.errors import SyndicationError

AGENT, SUPPORT, ADMIN = "agent", "support", "admin"
ROLES: tuple[str, ...] = (AGENT, SUPPORT, ADMIN)
"""Every role a user can have, least to most powerful; ``agent`` is the default."""

DEFAULT_ROLE = AGENT

__all__ = [
    "ADMIN", "AGENT", "DEFAULT_ROLE", "ROLES", "SUPPORT", "ApiKeyPrincipal", "OfficeRef",
    "Principal", "UnknownRole", "UserPrincipal", "require_role",
]


class UnknownRole(SyndicationError, ValueError):
    """A role outside :data:`ROLES` was asked for."""


@dataclass(frozen=True, slots=True)
class OfficeRef:
    """An office as the tenancy rule sees it: its id and its company (may be unknown)."""

    id: str
    company_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A person: their role, the companies they work for and their own office."""

    user_id: str
    office_id: str
    role: str = DEFAULT_ROLE
    companies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_role(self.role)


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    """A program holding an office's API key: it acts for that office alone."""

    key_id: str
    office_id: str


Principal = UserPrincipal | ApiKeyPrincipal


def require_role(role: str) -> str:
    """``role`` when it is one of :data:`ROLES`; else :class:`UnknownRole` naming the known ones."""
    if role not in ROLES:
        raise UnknownRole(f"unknown role {role!r}; known roles: {', '.join(ROLES)}")
    return role
