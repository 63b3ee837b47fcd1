"""``syndication api-key``: create, list and revoke office API keys (R14).

``syndication api-key create --office ID`` prints a new key for the office
once: it is not stored (only its SHA-256 is) and cannot be shown again.
``syndication api-key list [--office ID]`` shows each key's id, office, when it
was created and last used, and whether it is revoked, never the key; it opens
the store read-only. ``syndication api-key revoke KEY_ID`` stops a key at once.

Rotating a key: ``create`` a new one, configure the program with it, then
``revoke`` the old one. These are operator commands on the store's host.

Exit status: 0 done; 2 usage, an unknown office or key id, or a store that is
behind (``list``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from syndication.api_keys import create_key, list_keys, revoke_key
from syndication.cli.status import open_store
from syndication.settings import Settings
from syndication.status_view import iso_utc
from syndication.store.db import session_scope
from syndication.store.schema import open_read_only


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "api-key", help="create, list and revoke the API keys of offices"
    )
    sub = parser.add_subparsers(dest="api_key_command", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", help="make a key for an office and print it once",
        description="Print a new API key for the office. It is shown once and not stored.",
    )
    create.add_argument("--office", required=True, metavar="ID", help="the office it acts for")
    create.set_defaults(func=create_handler)
    listing = sub.add_parser(
        "list", help="show the keys (id, office, created, last used, revoked), never a key"
    )
    listing.add_argument("--office", metavar="ID", help="only this office's keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_handler)
    revoke = sub.add_parser("revoke", help="stop a key at once")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the id `api-key list` shows")
    revoke.set_defaults(func=revoke_handler)


def create_handler(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as engine:
        with session_scope(engine) as session:
            created = create_key(session, args.office)
    print(f"API key {created.key_id} for office {created.office_id}:")
    print(created.key)
    print("Store it now: it is not kept and cannot be shown again.")
    return 0


def list_handler(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_read_only(settings.database_url)
    try:
        with session_scope(engine) as session:
            rows = [
                {
                    "key_id": row.id, "office_id": row.office_id,
                    "created_at": iso_utc(row.created_at),
                    "last_used_at": iso_utc(row.last_used_at),
                    "revoked_at": iso_utc(row.revoked_at),
                }
                for row in list_keys(session, args.office)
            ]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no API keys")
        return 0
    header = ("KEY ID", "OFFICE", "CREATED", "LAST USED", "REVOKED")
    table: list[tuple[str, ...]] = [header, *(
        (str(r["key_id"]), str(r["office_id"]), _short(r["created_at"]),
         _short(r["last_used_at"]), _short(r["revoked_at"]))
        for r in rows
    )]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0


def _short(moment: str | None) -> str:
    return (moment or "-")[:16].replace("T", " ")


def revoke_handler(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as engine:
        with session_scope(engine) as session:
            revoked = revoke_key(session, args.key_id)
    print(f"API key {args.key_id} {'revoked' if revoked else 'was already revoked'}")
    return 0
