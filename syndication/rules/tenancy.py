"""R14 Tenancy: which offices a principal may read and write.

"Read" is seeing an office's listings and their status; "write" is pushing
records and starting transfers. "Manage" (API keys and roles) is the admin's
alone. The rule is pure: the caller loads the principal and the office
(:mod:`syndication.access`). Rows are checked top to bottom; the first that
matches wins.

===  ========================  ====================================  ====  =====  ======
row  principal                 office                                read  write  manage
===  ========================  ====================================  ====  =====  ======
1    admin                     any                                   yes   yes    yes
2    support                   any                                   yes   no     no
3    agent with companies      its company among the user's          yes   yes    no
4    agent with companies      any other (no company included)       no    no     no
5    agent without companies   the user's own office                 yes   yes    no
6    agent without companies   any other                             no    no     no
7    API key                   the key's office                      yes   yes    no
8    API key                   any other                             no    no     no
===  ========================  ====================================  ====  =====  ======

Why these rows:

* An agent works for companies (``UserRow.companies``); the offices of those
  companies are its tenant. The user's own office is not added on top: a
  broker whose card lists companies sees exactly their offices, as R14 says.
* A user with no companies recorded (older desktop records carry none) would
  otherwise see nothing at all, not even the listings they broker; the
  fallback is the user's own office (``UserRow.office_id``), the narrowest
  tenant that still lets them work. An office without a company is reachable
  by an agent only this way.
* Support answers questions about every office but never changes anything,
  so it reads everywhere and writes nowhere; admin does both and alone
  manages keys and roles.
* An API key is issued to one office and acts for that office alone, whatever
  the company's other offices.

A caller that refuses a read answers exactly as for an office or listing that
does not exist (R14), so the refusal leaks nothing.
"""

from __future__ import annotations

from syndication.access import (
    ADMIN,
    SUPPORT,
    ApiKeyPrincipal,
    OfficeRef,
    Principal,
    UserPrincipal,
)


def _in_tenant(principal: Principal, office: OfficeRef) -> bool:
    """Rows 3–8: whether ``office`` is the principal's own tenant."""
    if isinstance(principal, ApiKeyPrincipal):
        return office.id == principal.office_id
    if principal.companies:
        return office.company_id is not None and office.company_id in principal.companies
    return office.id == principal.office_id


def can_read(principal: Principal, office: OfficeRef) -> bool:
    """True when ``principal`` may see ``office``'s listings and their status."""
    if isinstance(principal, UserPrincipal) and principal.role in (ADMIN, SUPPORT):
        return True
    return _in_tenant(principal, office)


def can_write(principal: Principal, office: OfficeRef) -> bool:
    """True when ``principal`` may push records and start transfers for ``office``."""
    if isinstance(principal, UserPrincipal):
        if principal.role == ADMIN:
            return True
        if principal.role == SUPPORT:
            return False
    return _in_tenant(principal, office)


def can_manage(principal: Principal) -> bool:
    """True when ``principal`` may create and revoke API keys and set roles (admin only)."""
    return isinstance(principal, UserPrincipal) and principal.role == ADMIN
