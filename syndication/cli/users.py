"""``syndication user``: set a password, import legacy passwords (R9), set a role (R14).

``syndication user set-password USER`` asks for the new password twice and,
when the user already has one, for the old one first (the old password is
checked like a login: same message, throttled). For scripts,
``SYNDICATION_PASSWORD`` gives the old password and ``SYNDICATION_NEW_PASSWORD``
the new one.

``syndication user import-legacy FILE`` reads user ids and their passwords
from the old desktop versions, as CSV (columns ``user_id`` and ``password``)
or JSON (a list of ``{"user_id", "password"}`` or an object ``{user_id:
password}``), and stores each as a legacy password (case-insensitive until
changed). Users who already set a new password keep it.

``syndication user role USER ROLE`` gives USER one of the roles of
:data:`syndication.access.ROLES` and prints the change. Like every command
here it is an operator's tool on the store's own host (R14's "admin manages
roles" is checked by the API, which has a logged-in principal).

Exit status: 0 done; 1 some entries not imported or the password refused;
2 usage, an unreadable file, or an unknown user or role; 3 the old password
was wrong.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from syndication.access import ROLES
from syndication.auth import authenticate
from syndication.cli.status import EXIT_LOGIN_FAILED, ask_secret, open_store
from syndication.errors import AuthenticationFailed
from syndication.passwords import PasswordError, default_hasher, import_legacy, set_password
from syndication.scope import set_role
from syndication.settings import Settings
from syndication.store.db import session_scope
from syndication.store.models import UserRow

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "user", help="set passwords, import legacy passwords, set roles"
    )
    sub = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    setter = sub.add_parser(
        "set-password",
        help="set or change a user's password (strong policy)",
        description=(
            "Set or change USER's password. The new one needs at least 8 characters from "
            "at least 3 of the groups upper case, lower case, digits, other. Changing needs "
            "the old password. Scripts: SYNDICATION_PASSWORD (old), SYNDICATION_NEW_PASSWORD."
        ),
    )
    setter.add_argument("user", metavar="USER")
    setter.set_defaults(func=set_password_handler)
    importer = sub.add_parser(
        "import-legacy",
        help="import passwords of the old desktop versions (case-insensitive until changed)",
        description="FILE: CSV with columns user_id,password, or JSON (list or object).",
    )
    importer.add_argument("file", metavar="FILE")
    importer.set_defaults(func=import_handler)
    role = sub.add_parser(
        "role",
        help=f"set a user's role ({', '.join(ROLES)})",
        description=(
            f"Give USER the role ROLE, one of {', '.join(ROLES)}: an agent sees and acts on "
            "its companies' offices, support reads every office, admin also manages API keys "
            "and roles."
        ),
    )
    role.add_argument("user", metavar="USER")
    role.add_argument("role", metavar="ROLE")
    role.set_defaults(func=role_handler)


def role_handler(args: argparse.Namespace, settings: Settings) -> int:
    """Set the role; an unknown user or role is a usage error (exit 2) naming it."""
    with open_store(settings) as engine:
        with session_scope(engine) as session:
            old, new = set_role(session, args.user, args.role)
    change = "unchanged" if old == new else f"changed from {old} to {new}"
    print(f"role of {args.user}: {change}")
    return 0


def _new_password(settings: Settings) -> str | None:
    scripted = settings.environ.get("SYNDICATION_NEW_PASSWORD")
    if scripted is not None:
        return scripted
    first = ask_secret(settings, "SYNDICATION_NEW_PASSWORD", "New password: ")
    again = ask_secret(settings, "SYNDICATION_NEW_PASSWORD", "Repeat the new password: ")
    if first != again:
        print("error: the two new passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def set_password_handler(args: argparse.Namespace, settings: Settings) -> int:
    hasher = default_hasher()
    with open_store(settings) as engine:
        with session_scope(engine) as session:
            user = session.get(UserRow, args.user)
            if user is None:
                print(f"error: no user with id {args.user!r}", file=sys.stderr)
                return 1
            has_password = bool(user.password_hash)
        old = None
        if has_password:
            old = ask_secret(settings, "SYNDICATION_PASSWORD", f"Old password for {args.user}: ")
            try:
                with session_scope(engine) as session:
                    authenticate(session, args.user, old, hasher=hasher)
            except AuthenticationFailed as exc:
                print(f"error: {exc}; the password was not changed", file=sys.stderr)
                return EXIT_LOGIN_FAILED
        new = _new_password(settings)
        if new is None:
            return 1
        try:
            with session_scope(engine) as session:
                set_password(session, args.user, new, old_password=old, hasher=hasher)
        except PasswordError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"password {'changed' if has_password else 'set'} for {args.user}")
    return 0


def parse_legacy_file(name: str, raw: bytes) -> list[tuple[str, str]]:
    """``(user_id, password)`` pairs from a CSV or JSON file; ValueError names the problem."""
    text = raw.decode("utf-8-sig")
    stripped = text.lstrip()
    if name.lower().endswith(".json") or stripped.startswith(("[", "{")):
        data = json.loads(text)
        if isinstance(data, dict):
            pairs = list(data.items())
        elif isinstance(data, list):
            pairs = []
            for index, entry in enumerate(data):
                if not isinstance(entry, dict) or "user_id" not in entry or "password" not in entry:
                    raise ValueError(f"entry {index}: needs the keys user_id and password")
                pairs.append((entry["user_id"], entry["password"]))
        else:
            raise ValueError("JSON must be a list of {user_id, password} or an object")
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"user_id", "password"} <= set(reader.fieldnames):
            raise ValueError("CSV needs a header with the columns user_id and password")
        pairs = [(row["user_id"], row["password"]) for row in reader]
    for index, (user_id, password) in enumerate(pairs):
        if not isinstance(user_id, str) or not isinstance(password, str):
            raise ValueError(f"entry {index}: user_id and password must be text")
    return [(user_id.strip(), password) for user_id, password in pairs]


def import_handler(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = Path(args.file).read_bytes()[: MAX_IMPORT_BYTES + 1]
        if len(raw) > MAX_IMPORT_BYTES:
            raise ValueError(f"larger than {MAX_IMPORT_BYTES} bytes")
        pairs = parse_legacy_file(args.file, raw)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (ValueError, UnicodeDecodeError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    hasher = default_hasher()
    imported = kept = 0
    problems: list[str] = []
    with open_store(settings) as engine:
        for user_id, password in pairs:
            try:
                with session_scope(engine) as session:
                    if import_legacy(session, user_id, password, hasher=hasher):
                        imported += 1
                    else:
                        kept += 1
            except PasswordError as exc:
                problems.append(str(exc))
    for problem in problems:
        print(f"not imported: {problem}")
    print(
        f"{imported} legacy passwords imported, {kept} users kept their new password, "
        f"{len(problems)} not imported"
    )
    return 1 if problems else 0
