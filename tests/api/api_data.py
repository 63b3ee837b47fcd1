"""The tenants of the API tests: two companies, their offices, people of every role, keys.

====================  ==========  ========  ==========================
principal             office      company   role
====================  ==========  ========  ==========================
``agent``             K1          C1        agent (companies C1)
``agent9``            K9          C9        agent (companies C9)
``support``           K1          C1        support
``admin``             K1          C1        admin
key ``K1``            K1          C1        the office's API key
key ``K9``            K9          C9        the office's API key
====================  ==========  ========  ==========================

Listing ``O1`` is K1's, ``O9`` is K9's; both meet every marketplace's conditions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import factories
from argon2 import PasswordHasher
from sqlalchemy import Engine

from syndication.api_keys import create_key
from syndication.ingest import ingest_document
from syndication.passwords import set_password
from syndication.scope import set_role
from syndication.store.db import session_scope

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "Strong-pass-7"
USERS = {"agent": ("K1", ["C1"], "agent"), "agent9": ("K9", ["C9"], "agent"),
         "support": ("K1", ["C1"], "support"), "admin": ("K1", ["C1"], "admin")}
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass
class Tenants:
    keys: dict[str, str] = field(default_factory=dict)


def records() -> dict[str, list[dict[str, object]]]:
    """The input document of the tenants (offices, users, listings)."""
    return factories.document(
        offices=[factories.office("K1", company_id="C1"),
                 factories.office("K9", company_id="C9", name="Andra Mäklarna")],
        users=[factories.user(uid, office_id=office, companies=companies, main_company=None)
               for uid, (office, companies, _) in USERS.items()],
        listings=[factories.listing("O1", office_id="K1", broker_id="agent"),
                  factories.listing("O9", office_id="K9", broker_id="agent9")],
    )


def seed(engine: Engine) -> Tenants:
    report = ingest_document(engine, json.dumps(records()).encode())
    assert report.ok, report.errors
    tenants = Tenants()
    with session_scope(engine) as session:
        for uid, (_, _, role) in USERS.items():
            set_password(session, uid, PASSWORD, old_password=None, hasher=FAST)
            set_role(session, uid, role)
        for office in ("K1", "K9"):
            tenants.keys[office] = create_key(session, office, NOW).key
    return tenants
