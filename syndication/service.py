"""What the HTTP service is built from: :class:`ServiceContext`.

``syndication serve`` builds one context at start-up; tests build one by hand
(a store of their own, a clock they move, a fast password hasher). The web
view (:mod:`syndication.web`) and the JSON API (:mod:`syndication.api`) take
everything with side effects from it, so the app itself holds no globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from syndication.records import Contacts
from syndication.settings import Settings
from syndication.store.models import utcnow


@dataclass(frozen=True)
class ServiceContext:
    """The dependencies of one HTTP service.

    ``engine`` is the store, opened for writing (the API stores records and
    transfer requests) but never migrated by the service. ``secret_key`` signs
    the web view's cookies. ``hasher`` is the password hasher (``None``: the
    default argon2 parameters). ``broker`` is the dramatiq broker
    :func:`syndication.broker.setup_broker` made for the service, which transfers
    are queued on (``None``: the API sets up the configured one when it starts).
    ``callback_secrets`` holds the secret of each marketplace that may call back
    (R16, :mod:`syndication.hooks`); a marketplace not in it takes no callbacks.
    """

    settings: Settings
    engine: Engine
    contacts: Mapping[str, Contacts]
    secret_key: str
    clock: Callable[[], datetime] = utcnow
    hasher: Any = None
    secure_cookies: bool = False
    broker: Any = None
    callback_secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
