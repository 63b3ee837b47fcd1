"""``syndication serve``: the read-only support web view (127.0.0.1:8080 by default).

The store is opened read-only and never migrated; a store that is behind is
refused (``syndication migrate`` first). Logins keep their throttle
bookkeeping (R9) through a separate engine, as ``syndication status`` does.

The session cookies are signed with ``SYNDICATION_WEB_SECRET`` when set (keep
sessions across restarts and several processes), else with a random key made
at start-up. ``--secure-cookies`` marks them Secure, for a deployment behind
HTTPS. Serving on anything but loopback is allowed but warned about: the view
speaks plain HTTP.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from werkzeug.serving import make_server

from syndication.cli.status import load_contacts, open_for_login
from syndication.errors import ConfigurationError
from syndication.logs import get_logger
from syndication.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the support web view (log in, find a listing, see its status)",
        description=(
            "Serve the read-only support web view. Cookies are signed with "
            "SYNDICATION_WEB_SECRET, at least 32 bytes (random per start when unset)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (8080)")
    parser.add_argument("--secure-cookies", action="store_true",
                        help="mark cookies Secure (when served behind HTTPS)")
    parser.set_defaults(func=handler)


MIN_SECRET_BYTES = 32
"""The shortest signing key of the session cookies taken (256 bits)."""


def web_secret(environ: Mapping[str, str]) -> str:
    """The cookies' signing key: ``SYNDICATION_WEB_SECRET``, or a random one per start when
    it is unset. A key shorter than :data:`MIN_SECRET_BYTES` is refused, never used: a
    short key can be guessed offline from one cookie, and every session with it."""
    configured = environ.get("SYNDICATION_WEB_SECRET")
    if not configured:
        return secrets.token_hex(MIN_SECRET_BYTES)
    size = len(configured.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"SYNDICATION_WEB_SECRET has {size} bytes; it needs at least {MIN_SECRET_BYTES} "
            "(make one with: python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return configured


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handler(args: argparse.Namespace, settings: Settings) -> int:
    from syndication.web import create_app

    if not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, not {args.port}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"warning: serving on {args.host}, not loopback; use HTTPS in front of it",
              file=sys.stderr)
    secret = web_secret(settings.environ)
    contacts = load_contacts(settings)
    with open_for_login(settings) as (engine, login_engine):
        app = create_app(engine, contacts, secret_key=secret, login_engine=login_engine,
                         secure_cookies=args.secure_cookies)
        try:
            server = make_server(args.host, args.port, app, threaded=True)
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        get_logger().info("web_view_serving", url=f"http://{args.host}:{server.server_port}/")
        print(f"support web view on http://{args.host}:{server.server_port}/ (Ctrl-C stops)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0
