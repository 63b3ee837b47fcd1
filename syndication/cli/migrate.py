"""``syndication migrate [--check]``: bring the store to the newest schema, or check it.

Commands that only read (``status``, ``serve``, ``preview``, ``export``,
``reconcile`` without ``--repair``, ``final-prices --dry-run``, ``photos
--problems``) never migrate: on a store that is behind they refuse and name
this command. Run it once per deployment, before the workers start.

Exit status: 0 migrated or already current; with ``--check`` 0 current and 1
behind (nothing is changed, a missing SQLite file is not created); 2 a store
at a revision this version does not know, or a configuration error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syndication.settings import Settings
from syndication.store.schema import (
    SchemaState,
    make_read_only_engine,
    newest_revision,
    safe_url,
    schema_state,
    sqlite_path,
    upgrade,
)

EXIT_BEHIND = 1
EXIT_UNKNOWN_REVISION = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="upgrade the store to the newest schema (--check: only say whether it is behind)",
        description=(
            "Upgrade the store (SYNDICATION_DATABASE_URL) to the newest schema and say from "
            "which revision to which. Commands that only read never migrate and refuse a store "
            "that is behind. --check changes nothing: exit 0 when current, 1 when behind."
        ),
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; print the current and the newest revision, exit 1 when behind",
    )
    parser.set_defaults(func=handler)


def current_state(url: str) -> SchemaState:
    """The store's schema state, read without writing (a missing SQLite file has none)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        newest, known = newest_revision()
        return SchemaState(None, newest, known)
    engine = make_read_only_engine(url)
    try:
        return schema_state(engine)
    finally:
        engine.dispose()


def check(url: str) -> int:
    state = current_state(url)
    where = safe_url(url)
    if state.is_current:
        print(f"{where}: at the newest schema (revision {state.newest})")
        return 0
    if not state.is_known:
        print(
            f"{where}: at revision {state.current}, which this version does not know "
            f"(newest here: {state.newest})",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN_REVISION
    print(
        f"{where}: behind: current revision {state.describe()}, newest {state.newest}; "
        "run `syndication migrate`"
    )
    return EXIT_BEHIND


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        return check(settings.database_url)
    before, after = upgrade(settings.database_url)
    where = safe_url(settings.database_url)
    if before == after:
        print(f"{where}: already at the newest schema (revision {after})")
    elif before is None:
        print(f"{where}: created the schema at revision {after}")
    else:
        print(f"{where}: migrated from revision {before} to {after}")
    return 0
