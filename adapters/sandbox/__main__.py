"""Run the sandbox marketplaces until interrupted: ``python -m adapters.sandbox``.

An agency points its test set-up at them with the marketplaces file this
writes (``--write-config``); the token, if any, is read from the environment
variable named by ``--token-env`` and never printed. With ``--callback-url`` (the
worker's service, e.g. ``http://127.0.0.1:8000``) and ``--callback-secret-env`` the
marketplaces call back ``/hooks/<name>`` when they publish (R16). ``--latency-ms 100``
makes every marketplace answer after 100 ms, ``--latency-ms hemnet=250`` one of them
(repeat the option for several).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from adapters.sandbox.server import Sandbox
from syndication import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.sandbox", description=__doc__)
    parser.add_argument("--base-port", type=int, default=0, help="first port (default: free ports)")
    parser.add_argument("--publish-delay", type=float, default=5.0, help="seconds until published")
    parser.add_argument("--token-env", help="environment variable holding the bearer token")
    parser.add_argument("--write-config", metavar="PATH", help="write a marketplaces file here")
    parser.add_argument("--callback-url", metavar="URL",
                        help="the service to call back when a listing is published")
    parser.add_argument("--callback-secret-env", metavar="NAME",
                        help="environment variable holding the callbacks' secret")
    parser.add_argument("--latency-ms", action="append", default=[], metavar="[NAME=]MS",
                        help="answer after MS milliseconds: every marketplace, or NAME only "
                        "(repeatable)")
    args = parser.parse_args(argv)
    secret = None
    if args.callback_url:
        secret = os.environ.get(args.callback_secret_env or "")
        if not secret:
            print("error: --callback-url needs --callback-secret-env naming a set variable",
                  file=sys.stderr)
            return 2
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            print(f"error: environment variable {args.token_env} is not set", file=sys.stderr)
            return 2
    names = registry.names(transport="http")
    ports = {name: args.base_port + i for i, name in enumerate(names)} if args.base_port else None
    try:
        latency = _latencies(args.latency_ms, names)
    except ValueError as exc:
        print(f"error: --latency-ms: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(names, token=token, publish_delay=args.publish_delay, ports=ports,
                      latency_ms=latency)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 2
    if secret is not None:
        sandbox.call_back(args.callback_url, secret.encode())
    for name in names:
        print(f"{name:9} {sandbox.url(name)}", flush=True)
    if args.write_config:
        path = sandbox.write_marketplaces_file(
            args.write_config, token_env=args.token_env,
            callback_secret_env=args.callback_secret_env if secret is not None else None)
        print(f"marketplaces file: {path} (set SYNDICATION_MARKETPLACES to it)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def _latencies(values: list[str], names: Sequence[str]) -> dict[str, float]:
    """Each marketplace's answer latency from ``--latency-ms`` options: a bare number
    sets every marketplace, ``name=ms`` one; later options win."""
    latency = dict.fromkeys(names, 0.0)
    for value in values:
        name, _, number = value.rpartition("=")
        if name and name not in latency:
            raise ValueError(f"unknown marketplace {name!r} (known: {', '.join(names)})")
        try:
            ms = float(number)
        except ValueError:
            raise ValueError(f"{value!r} is not [NAME=]MILLISECONDS") from None
        if ms < 0:
            raise ValueError(f"{value!r}: a latency cannot be negative")
        for each in [name] if name else names:
            latency[each] = ms
    return latency


if __name__ == "__main__":
    sys.exit(main())
