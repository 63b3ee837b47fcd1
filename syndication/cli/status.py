"""``syndication status``: what happened to a listing, or an office's listings, per marketplace.

``syndication status OBJECT_ID --user USER [--json] [--history]`` shows one
listing; ``syndication status --office ID --user USER [--state S]
[--marketplace M] [--json]`` every listing of an office, then the office's
unresolved photo problems (R11), whatever the filters. Both log in first
(R9): the password comes from ``SYNDICATION_PASSWORD`` or a prompt. A wrong
password and an unknown user print the same message and exit with the same
status, before anything about the listing is revealed.

What is shown is scoped to the user's tenant (R14,
:mod:`syndication.rules.tenancy`): a listing or an office the user may not
read is answered exactly as an unknown one, with the same message and exit
status 1, so nobody learns that another tenant's listing exists.

The store is opened read-only and never migrated: a store that is missing or
behind is refused (exit status 2) with the advice to run ``syndication migrate``.

Exit status: 0 shown; 1 no such listing or office; 2 usage or configuration
error (a store not at the newest schema included); 3 login failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from syndication import registry
from syndication.auth import authenticate
from syndication.errors import AuthenticationFailed, SyndicationError
from syndication.records import Contacts
from syndication.scope import may_read_listing, may_read_office, user_principal
from syndication.settings import Settings
from syndication.status_view import (
    UnknownListing,
    format_table,
    listing_status,
    unknown_listing,
)
from syndication.store.db import make_engine, session_scope
from syndication.store.schema import open_for_writing, open_read_only
from syndication.support import (
    FILTER_STATES,
    UnknownOffice,
    format_history,
    format_photo_problems,
    listing_history,
    office_photo_problems,
    office_status,
    unknown_office,
)

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_LOGIN_FAILED = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the transfer status of a listing or an office (needs a password)",
        description=(
            "Show, per marketplace of the office's licence, the state of a listing, the "
            "marketplace's id (HemnetID …), the last action and when, and for failures the "
            "error and whom to contact. The password is read from SYNDICATION_PASSWORD or "
            "prompted for. Exit status: 0 shown, 1 not found, 2 usage, 3 login failed."
        ),
    )
    parser.add_argument("object_id", nargs="?", metavar="OBJECT_ID", help="the listing's id")
    parser.add_argument("--office", metavar="ID", help="every listing of this office instead")
    parser.add_argument("--user", required=True, metavar="USER", help="your user id")
    parser.add_argument("--json", action="store_true", help="print JSON (DESIGN §4)")
    parser.add_argument("--history", action="store_true", help="add every recorded event")
    parser.add_argument("--state", choices=FILTER_STATES, help="office view: only this state")
    parser.add_argument(
        "--marketplace", choices=registry.names(), help="office view: only this one"
    )
    parser.set_defaults(func=handler)


def ask_secret(settings: Settings, variable: str, prompt: str) -> str:
    """A secret from ``settings.environ[variable]`` (scripts) or a prompt without echo."""
    value = settings.environ.get(variable)
    if value is not None:
        return value
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise SyndicationError(
            f"no password given: set {variable} or run in a terminal"
        ) from None


@contextmanager
def open_store(settings: Settings) -> Iterator[Engine]:
    """The configured store, migrated, for a command that writes; disposed of afterwards."""
    engine = open_for_writing(settings.database_url, migrate_store=True)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def open_for_login(settings: Settings) -> Iterator[tuple[Engine, Engine]]:
    """The store of a command that shows status after a login: ``(reader, login)``.

    ``reader`` is read-only and every query of what is shown goes through it;
    the store is never migrated and, when behind or missing, refused (see
    :func:`~syndication.store.schema.open_read_only`). ``login`` is a plain
    engine on the same, already checked, store that only
    :func:`~syndication.auth.authenticate` uses: R9's throttle must count a
    failed login and a success must clear it whether the user logs in here or
    on the web view, so that bookkeeping is the one write these commands make.
    """
    reader = open_read_only(settings.database_url)
    try:
        login_engine = make_engine(settings.database_url)
        try:
            yield reader, login_engine
        finally:
            login_engine.dispose()
    finally:
        reader.dispose()


def load_contacts(settings: Settings) -> dict[str, Contacts]:
    """Each marketplace's error contacts as configured; builds no transport and reads no
    delivery token (a status needs neither)."""
    from adapters.config import load_contacts as configured_contacts

    return configured_contacts(settings)

def login(engine: Engine, settings: Settings, username: str) -> bool:
    """Authenticate ``username``; on failure print the one failure message and return False."""
    password = ask_secret(settings, "SYNDICATION_PASSWORD", f"Password for {username}: ")
    try:
        with session_scope(engine) as session:
            authenticate(session, username, password)
    except AuthenticationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.object_id) == bool(args.office):
        print("error: give either OBJECT_ID or --office ID", file=sys.stderr)
        return EXIT_USAGE
    if args.object_id and (args.state or args.marketplace):
        print("error: --state and --marketplace filter the office view (--office)", file=sys.stderr)
        return EXIT_USAGE
    if args.office and args.history:
        print("error: --history goes with one listing (OBJECT_ID)", file=sys.stderr)
        return EXIT_USAGE
    contacts = load_contacts(settings)
    with open_for_login(settings) as (engine, login_engine):
        if not login(login_engine, settings, args.user):
            return EXIT_LOGIN_FAILED
        try:
            with session_scope(engine) as session:
                principal = user_principal(session, args.user)
                if args.office:
                    if principal is None or not may_read_office(session, principal, args.office):
                        raise unknown_office(args.office)
                    result = office_status(
                        session, args.office, contacts, state=args.state,
                        marketplace=args.marketplace,
                    )
                    text = format_table(result["listings"])
                    result["photo_problems"] = office_photo_problems(session, args.office)
                    if result["photo_problems"]:
                        text += "\n\nPhoto problems:\n" + format_photo_problems(
                            result["photo_problems"]
                        )
                else:
                    if principal is None or not may_read_listing(
                        session, principal, args.object_id
                    ):
                        raise unknown_listing(args.object_id)
                    result = listing_status(session, args.object_id, contacts)
                    text = format_table(result)
                    if args.history:
                        result["history"] = listing_history(session, args.object_id)
                        text += "\n\nHistory:\n" + format_history(result["history"])
        except (UnknownListing, UnknownOffice) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_NOT_FOUND
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        if args.office:
            print(f"Office {result['office_id']} ({result['office']})")
        print(text)
    return 0
