"""The marketplaces file: which transport, endpoint, credentials and error
contacts each marketplace has.

Without a file (``settings.marketplaces_file`` unset) every marketplace gets
the first transport kind of its registry entry (the file drop into
``settings.outbox`` for the push marketplaces) and the registry's error
contacts. With a file (TOML)::

    [defaults]                      # optional, for every marketplace
    connect_timeout = 3.05
    read_timeout = 20
    deadline = 60                   # seconds for a whole exchange, body included
    max_attempts = 5
    max_delay = 120

    [marketplaces.hemnet]
    transport = "http"              # or "file"
    url = "https://feeds.hemnet.example"
    token_env = "HEMNET_TOKEN"      # the NAME of an environment variable
    read_timeout = 15
    [marketplaces.hemnet.contacts]
    name = "Hemnet mäklarsupport"
    phone = "08-…"

A marketplace the file leaves out keeps its default. Transport kinds come from
the table :data:`TRANSPORTS`. Error contacts load on their own
(:func:`load_contacts`), without building a transport or reading a credential.
Credentials are read
from ``settings.environ`` by the name the file gives, never written in it and
never logged. Every mistake is a :class:`ConfigurationError` naming the
marketplace and the key.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adapters.base import Transport
from adapters.filedrop import FileDropTransport
from adapters.retry import RetryPolicy
from syndication import registry
from syndication.errors import ConfigurationError
from syndication.logs import get_logger
from syndication.records import Contacts
from syndication.settings import Settings

CONTACT_KEYS = ("name", "email", "phone", "web", "advice")
NUMBER_KEYS = {
    "connect_timeout": 3.05,
    "read_timeout": 20.0,
    "deadline": 60.0,
    "max_delay": 120.0,
    "initial_wait": 0.5,
    "max_wait": 30.0,
}
FEED_KEYS = {"target", "folder", "public_url"}
"""The keys of a ``feed`` transport (with ``url`` and ``token_env`` for an HTTP PUT)."""
MARKETPLACE_KEYS = {
    "transport",
    "url",
    "token_env",
    "outbox",
    *FEED_KEYS,
    "max_attempts",
    "contacts",
    "callback_secret_env",
    "callback_check_delay",
    *NUMBER_KEYS,
}
CALLBACK_CHECK_DELAY = 900.0
"""Seconds before the first publication check of a marketplace that calls back: polling
is then the fallback for a lost callback, not the way the news arrives (R16)."""
MIN_CALLBACK_SECRET = 16
"""Fewest characters of a callback secret: a short one could be guessed."""


@dataclass(frozen=True)
class MarketplaceConfig:
    """One marketplace as configured: its transport and its error contacts.

    ``kind`` names the transport's entry in :data:`TRANSPORTS`; ``url`` and
    ``token_env`` are set for HTTP (the token itself lives only inside the
    transport's session).
    """

    name: str
    transport: Transport
    contacts: Contacts
    kind: str = "file"
    url: str | None = None
    token_env: str | None = None
    first_check_delay: float | None = None
    """Seconds before a ``sent`` listing is first checked; ``None``: the queue's
    ``confirm_delay_ms``. Set for a marketplace that calls back (:func:`first_check_delay`)."""


@dataclass(frozen=True)
class _Entry:
    """One marketplace's table of the file, merged over ``[defaults]``, with what a
    transport factory needs to build from it."""

    name: str
    values: Mapping[str, Any]
    contacts: Contacts
    settings: Settings
    sleep: Callable[[float], Any]

    def fail(self, key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"marketplace {self.name!r}, key {key!r}: {problem}", marketplace=self.name
        )


TransportFactory = Callable[[_Entry], MarketplaceConfig]


def default_contacts() -> dict[str, Contacts]:
    """The registry's error contacts of every marketplace."""
    return {entry.name: entry.contacts for entry in registry.entries()}


def load_contacts(settings: Settings) -> dict[str, Contacts]:
    """Every marketplace's error contacts: the registry's, overridden by the file's.

    Builds no transport and reads no credential, so a command that only shows
    a status (``status``, ``serve``, ``preview``) never needs a delivery token.
    """
    contacts = default_contacts()
    for name, entry in _entries(settings).items():
        contacts[name] = _contacts(
            entry.get("contacts", {}), contacts[name], _failing(name)
        )
    return contacts


def first_check_delay(entry: _Entry) -> float | None:
    """A marketplace that calls back (``callback_secret_env`` set) is first checked after
    ``callback_check_delay`` seconds (default :data:`CALLBACK_CHECK_DELAY`); the others
    after the queue's delay (``None``). Reads no secret: the worker never needs it."""
    if entry.values.get("callback_secret_env") is None:
        if "callback_check_delay" in entry.values:
            raise entry.fail("callback_check_delay", "needs callback_secret_env: only a "
                                                     "marketplace that calls back has one")
        return None
    value = entry.values.get("callback_check_delay", CALLBACK_CHECK_DELAY)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise entry.fail("callback_check_delay", "must be a positive number of seconds")
    return float(value)


def load_callback_secrets(settings: Settings) -> dict[str, bytes]:
    """The callback secret of every marketplace that may call back (R16), by name.

    A marketplace's table names the environment variable with ``callback_secret_env``;
    one without it takes no callbacks. An unset or short secret is a configuration
    error naming the marketplace and the key. Builds no transport.
    """
    secrets: dict[str, bytes] = {}
    for name, entry in _entries(settings).items():
        env = entry.get("callback_secret_env")
        if env is None:
            continue
        where = f"marketplace {name!r}, key 'callback_secret_env'"
        if not isinstance(env, str) or not env:
            raise ConfigurationError(f"{where}: must be the name of an environment variable",
                                     marketplace=name)
        secret = settings.environ.get(env)
        if not secret:
            raise ConfigurationError(f"{where}: environment variable {env} is not set",
                                     marketplace=name)
        if len(secret) < MIN_CALLBACK_SECRET:
            raise ConfigurationError(
                f"{where}: the secret in {env} is shorter than {MIN_CALLBACK_SECRET} "
                "characters", marketplace=name)
        secrets[name] = secret.encode()
    return secrets


def load_marketplaces(
    settings: Settings, *, sleep: Callable[[float], Any] = time.sleep
) -> dict[str, MarketplaceConfig]:
    """Every registered marketplace's configuration, from ``settings``.

    A marketplace the file leaves out, or every one without a file, gets the
    first transport kind of its registry entry. ``sleep`` is handed to HTTP
    transports (their retry waits); tests pass a recorder.
    """
    contacts = load_contacts(settings)
    tables = _entries(settings)
    configs = {}
    for marketplace in registry.entries():
        values = tables.get(marketplace.name, {})
        entry = _Entry(marketplace.name, values, contacts[marketplace.name], settings, sleep)
        kind = values.get("transport", marketplace.transports[0])
        if kind not in marketplace.transports:
            raise entry.fail(
                "transport",
                f"must be one of {', '.join(marketplace.transports)} for {marketplace.title}, "
                f"not {kind!r}",
            )
        config = TRANSPORTS[kind](entry)
        configs[marketplace.name] = replace(config, first_check_delay=first_check_delay(entry))
    log = get_logger()
    for name, config in configs.items():
        log.info("marketplace_configured", marketplace=name, transport=config.kind, url=config.url)
    return configs


def marketplace_tables(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each marketplace's table of the file merged over ``[defaults]``, checked, without
    building a transport or reading a credential (the retry budget is computed from it)."""
    return _entries(settings)


def _entries(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each marketplace's table of the file merged over ``[defaults]``, checked for unknown
    tables, marketplaces and keys; empty without a file."""
    if settings.marketplaces_file is None:
        return {}
    data = _read_file(Path(settings.marketplaces_file))
    unknown_top = set(data) - {"defaults", "marketplaces"}
    if unknown_top:
        raise ConfigurationError(
            f"unknown table or key {sorted(unknown_top)[0]!r} in the marketplaces file"
        )
    defaults = _table(data, "defaults", where="[defaults]")
    _check_keys(defaults, MARKETPLACE_KEYS - {"contacts", "url", "token_env",
                                              "callback_secret_env", "callback_check_delay"},
                "[defaults]")
    _budget(
        defaults, lambda key, problem: ConfigurationError(f"[defaults], key {key!r}: {problem}")
    )
    known = registry.names()
    entries = {}
    for name, entry in _table(data, "marketplaces", where="[marketplaces]").items():
        if name not in known:
            raise ConfigurationError(
                f"unknown marketplace {name!r} in the marketplaces file; "
                f"known: {', '.join(known)}",
                marketplace=name,
            )
        if not isinstance(entry, dict):
            raise ConfigurationError(f"marketplace {name!r}: expected a table", marketplace=name)
        _check_keys(entry, MARKETPLACE_KEYS, f"marketplace {name!r}", name)
        entries[name] = {**defaults, **entry}
    return entries


def _failing(name: str) -> Callable[[str, str], ConfigurationError]:
    def fail(key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"marketplace {name!r}, key {key!r}: {problem}", marketplace=name)

    return fail


def _file_transport(entry: _Entry) -> MarketplaceConfig:
    """The file drop into the marketplace's outbox (``outbox`` or the settings' folder)."""
    _budget(entry.values, entry.fail)
    outbox = entry.values.get("outbox", str(entry.settings.outbox))
    if not isinstance(outbox, str) or not outbox:
        raise entry.fail("outbox", "must be a folder path")
    return MarketplaceConfig(
        entry.name, FileDropTransport(Path(outbox)), entry.contacts, kind="file"
    )


def _http_transport(entry: _Entry) -> MarketplaceConfig:
    """The marketplace's HTTP endpoint, with its token, timeouts and retry budget; its
    connection pool keeps one connection alive for each worker thread and each
    final-price sender (``settings.final_price_concurrency``) of the process."""
    from adapters.http import HttpTransport, plain_http_refusal

    numbers, attempts = _budget(entry.values, entry.fail)
    url = entry.values.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise entry.fail("url", f"an http(s) address is required for transport 'http', not {url!r}")
    token_env = entry.values.get("token_env")
    token = None
    if token_env is not None:
        if not isinstance(token_env, str) or not token_env:
            raise entry.fail("token_env", "must be the name of an environment variable")
        refusal = plain_http_refusal(url, token_env)
        if refusal:
            raise entry.fail("url", refusal)
        token = entry.settings.environ.get(token_env)
        if not token:
            raise entry.fail("token_env", f"environment variable {token_env} is not set")
    transport = HttpTransport(
        entry.name,
        url,
        token=token,
        connect_timeout=numbers["connect_timeout"],
        read_timeout=numbers["read_timeout"],
        deadline=numbers["deadline"],
        policy=RetryPolicy.standard(
            max_attempts=attempts,
            max_delay=numbers["max_delay"],
            initial_wait=numbers["initial_wait"],
            max_wait=numbers["max_wait"],
        ),
        sleep=entry.sleep,
        pool_size=entry.settings.worker_threads + entry.settings.final_price_concurrency,
    )
    return MarketplaceConfig(
        entry.name, transport, entry.contacts, kind="http", url=url, token_env=token_env
    )


def _feed_transport(entry: _Entry) -> MarketplaceConfig:
    """A pull marketplace's feed publisher (R17): a served folder or an HTTP PUT, as the
    table says; without ``target``, the folder ``<outbox>/<marketplace>`` and its
    ``file://`` address (for a single machine and the demo)."""
    from adapters.feed import FeedTransport, FolderPublisher, feed_publisher

    values = dict(entry.values)
    values.pop("transport", None)
    if "target" not in values:
        folder = Path(values.get("folder") or entry.settings.outbox / entry.name).absolute()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise entry.fail("folder", f"cannot create the feed folder {folder}: {exc}") from exc
        publisher: Any = FolderPublisher(
            entry.name, folder, values.get("public_url") or folder.as_uri()
        )
    else:
        publisher = feed_publisher(entry.name, values, entry.settings.environ, sleep=entry.sleep)
    return MarketplaceConfig(
        entry.name, FeedTransport(publisher), entry.contacts, kind="feed",
        url=publisher.public_url,
    )


TRANSPORTS: dict[str, TransportFactory] = {
    "file": _file_transport,
    "http": _http_transport,
    "feed": _feed_transport,
}
"""Transport kind → the factory that builds it from a marketplace's table. A registry
entry's ``transports`` names which of these a marketplace accepts."""


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"marketplaces file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read marketplaces file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"marketplaces file {path} is not valid TOML: {exc}") from None


def _table(data: Mapping[str, Any], key: str, *, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table")
    return value


def _check_keys(
    entry: Mapping[str, Any], allowed: set[str], where: str, name: str | None = None
) -> None:
    for key in entry:
        if key not in allowed:
            raise ConfigurationError(
                f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}",
                marketplace=name,
            )


def _budget(
    entry: Mapping[str, Any], fail: Callable[[str, str], ConfigurationError]
) -> tuple[dict[str, float], int]:
    """The timeouts and retry budget of an entry, checked, with their defaults."""
    numbers = {
        key: _positive(entry.get(key, fallback), key, fail) for key, fallback in NUMBER_KEYS.items()
    }
    attempts = entry.get("max_attempts", 5)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise fail("max_attempts", f"must be a whole number of at least 1, not {attempts!r}")
    return numbers, attempts


def _positive(value: Any, key: str, fail: Callable[[str, str], ConfigurationError]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise fail(key, f"must be a positive number of seconds, not {value!r}")
    return float(value)


def _contacts(
    entry: Any, default: Contacts, fail: Callable[[str, str], ConfigurationError]
) -> Contacts:
    if not isinstance(entry, dict):
        raise fail("contacts", "must be a table")
    for key, value in entry.items():
        if key not in CONTACT_KEYS:
            raise fail(f"contacts.{key}", f"unknown; allowed: {', '.join(CONTACT_KEYS)}")
        if not isinstance(value, str) or not value.strip():
            raise fail(f"contacts.{key}", "must be a non-empty text")
    merged = {**default.as_dict(), **entry}
    return Contacts(**merged)
