"""``syndication serve``: the one HTTP service, web view and JSON API (127.0.0.1:8080 by default).

It runs on uvicorn (:mod:`syndication.http_server`), never a development
server: ``--threads`` sync routes at once, a bounded number of connections,
and a deadline for reading each request, so slow clients cannot hold the
service. The store is opened for writing (the API stores records and
transfer requests) but never migrated: a store that is behind or missing is
refused, naming ``syndication migrate``.

The session cookies are signed with ``SYNDICATION_WEB_SECRET`` when set (keep
sessions across restarts and several processes), else with a random key made
at start-up. ``--secure-cookies`` marks them Secure, for a deployment behind
HTTPS. Serving on anything but loopback is allowed but warned about: the
service speaks plain HTTP and belongs behind an HTTPS proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from adapters.config import load_callback_secrets
from syndication.cli.status import load_contacts
from syndication.errors import ConfigurationError
from syndication.http_server import ServerLimits, build_server, listen, serve
from syndication.logs import get_logger
from syndication.service import ServiceContext
from syndication.settings import Settings
from syndication.store.schema import open_for_writing

DEFAULTS = ServerLimits()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP service: the support web view and the JSON API /api/v1",
        description=(
            "Serve the support web view and the JSON API (/api/v1, described at "
            "/api/v1/openapi.json) on uvicorn. At most --threads requests run at once; "
            f"at most {DEFAULTS.limit_concurrency} connections are open (more get 503); a "
            f"request must arrive whole within {DEFAULTS.request_timeout:g} s and an idle "
            f"connection is closed after {DEFAULTS.timeout_keep_alive} s; bodies are capped "
            "at 64 KiB (the records document has its own cap). The store must be migrated "
            "(syndication migrate); it is never migrated here. Cookies are signed with "
            "SYNDICATION_WEB_SECRET, at least 32 bytes (random per start when unset). "
            "Plain HTTP: put it behind an HTTPS proxy and pass --secure-cookies."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (8080)")
    parser.add_argument("--threads", type=int, default=DEFAULTS.threads, metavar="N",
                        help=f"requests handled at once (thread pool size, {DEFAULTS.threads})")
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
    from syndication.app import create_app

    if not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, not {args.port}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"error: --threads must be at least 1, not {args.threads}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"warning: serving on {args.host}, not loopback; use HTTPS in front of it",
              file=sys.stderr)
    secret = web_secret(settings.environ)
    contacts = load_contacts(settings)
    callback_secrets = load_callback_secrets(settings)
    engine = open_for_writing(settings.database_url, migrate_store=False)
    try:
        try:
            sock = listen(args.host, args.port)
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        context = ServiceContext(settings=settings, engine=engine, contacts=contacts,
                                 secret_key=secret, secure_cookies=args.secure_cookies,
                                 callback_secrets=callback_secrets)
        limits = ServerLimits(threads=args.threads)
        server = build_server(create_app(context), limits)
        port = sock.getsockname()[1]
        get_logger().info("http_service_serving", url=f"http://{args.host}:{port}/",
                          threads=args.threads)
        print(f"support web view on http://{args.host}:{port}/ and the API on "
              f"http://{args.host}:{port}/api/v1/ (Ctrl-C stops)", flush=True)
        try:
            asyncio.run(serve(server, sock, limits.threads))
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
    finally:
        engine.dispose()
    return 0
