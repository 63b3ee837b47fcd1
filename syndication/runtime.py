"""The dependencies jobs run with: settings, the store, transports, the clock.

A :class:`Runtime` is built once at start-up (:meth:`Runtime.from_settings`)
and attached to the dramatiq broker by :class:`RuntimeMiddleware`, so the only
process-wide object is the broker dramatiq itself requires. Actors fetch it
with :func:`current_runtime`; tests build one by hand with fake or sandbox
transports and a fixed clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dramatiq
from dramatiq.middleware import Middleware
from sqlalchemy import Engine

from syndication.records import Contacts
from syndication.settings import Settings
from syndication.store.models import utcnow


class Closable(Protocol):
    """What :meth:`Runtime.resource` keeps: anything its :meth:`Runtime.close` can close."""

    def close(self) -> None: ...


R = TypeVar("R", bound=Closable)

if TYPE_CHECKING:
    from adapters.base import Transport
    from adapters.config import MarketplaceConfig
    from syndication.circuit import CircuitBreaker


@dataclass
class Runtime:
    """What a job needs to do its work; everything with side effects is here.

    ``breaker`` is the circuit breaker of the marketplaces (:mod:`syndication.circuit`):
    shared through Redis in production, this process's own by default.
    ``first_checks_ms`` holds the first publication check's delay of each marketplace
    that calls back (:meth:`first_check_ms`).
    """

    settings: Settings
    engine: Engine
    transports: Mapping[str, Transport] = field(default_factory=dict)
    contacts: Mapping[str, Contacts] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    breaker: CircuitBreaker = field(default_factory=lambda: _memory_breaker())
    first_checks_ms: Mapping[str, int] = field(default_factory=dict)
    _pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict, init=False, repr=False)
    _pools_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _resources: dict[str, Closable] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, migrate_store: bool = True, read_only: bool = False
    ) -> Runtime:
        """The production runtime: the configured database and transports.

        ``read_only`` opens the store read-only and never migrates it (commands
        that only look); otherwise the store is migrated first, or, with
        ``migrate_store=False`` (the worker and the scheduler unless told to
        migrate), refused when it is not at the newest schema.
        """
        from adapters.config import load_marketplaces
        from syndication.circuit import breaker_from_settings
        from syndication.store.schema import open_for_writing, open_read_only

        if read_only:
            engine = open_read_only(settings.database_url)
        else:
            engine = open_for_writing(settings.database_url, migrate_store=migrate_store)
        marketplaces = load_marketplaces(settings)
        return cls(
            settings=settings,
            engine=engine,
            transports={name: mp.transport for name, mp in marketplaces.items()},
            contacts={name: mp.contacts for name, mp in marketplaces.items()},
            breaker=breaker_from_settings(settings),
            first_checks_ms=first_checks_ms(marketplaces),
        )

    def first_check_ms(self, marketplace: str) -> int:
        """Milliseconds before a ``sent`` listing's first publication check: longer for a
        marketplace that calls back (R16), else the queue's ``confirm_delay_ms``."""
        return self.first_checks_ms.get(marketplace, self.settings.confirm_delay_ms)

    def transport(self, marketplace: str) -> Transport:
        from syndication.errors import ConfigurationError

        try:
            return self.transports[marketplace]
        except KeyError:
            raise ConfigurationError(
                f"no transport configured for marketplace {marketplace!r}", marketplace=marketplace
            ) from None

    def pool(self, name: str, size: int) -> ThreadPoolExecutor:
        """The thread pool ``name`` of this runtime, made with ``size`` threads on first use.

        Every job of the process that asks for ``name`` shares it, so ``size`` bounds
        the work of that kind in flight in the process, however many jobs run at once;
        :meth:`close` shuts it down.
        """
        with self._pools_lock:
            if name not in self._pools:
                self._pools[name] = ThreadPoolExecutor(max(1, size), thread_name_prefix=name)
            return self._pools[name]

    def resource(self, name: str, make: Callable[[], R]) -> R:
        """The helper ``name`` of this runtime (an event loop of senders, …), made by
        ``make()`` on first use and shared, like :meth:`pool`, by every job of the
        process that asks for it; :meth:`close` closes it."""
        with self._pools_lock:
            if name not in self._resources:
                self._resources[name] = make()
            return self._resources[name]  # type: ignore[return-value]

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
            resources, self._resources = list(self._resources.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        for resource in resources:
            resource.close()
        for transport in self.transports.values():
            transport.close()
        self.engine.dispose()


def first_checks_ms(marketplaces: Mapping[str, MarketplaceConfig]) -> dict[str, int]:
    """The first publication check's delay of each configured marketplace that has its
    own (one that calls back), for every runtime built from the marketplaces."""
    return {name: int(mp.first_check_delay * 1000) for name, mp in marketplaces.items()
            if mp.first_check_delay is not None}


def _memory_breaker() -> CircuitBreaker:
    """A circuit breaker of this process alone, with the default threshold and cool-down."""
    from syndication.circuit import CircuitBreaker

    defaults = Settings()
    return CircuitBreaker(
        threshold=defaults.circuit_threshold, cooldown=defaults.circuit_cooldown_ms / 1000
    )


class RuntimeMiddleware(Middleware):
    """Carries the :class:`Runtime` on the broker so actors can reach it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def attach_runtime(broker: dramatiq.Broker, runtime: Runtime) -> None:
    """Attach ``runtime`` to ``broker``, replacing any runtime attached before."""
    broker.middleware[:] = [m for m in broker.middleware if not isinstance(m, RuntimeMiddleware)]
    broker.add_middleware(RuntimeMiddleware(runtime))


def current_runtime(broker: Any = None) -> Runtime:
    """The runtime attached to ``broker`` (default: dramatiq's configured broker). Looked
    for from the end, where :func:`attach_runtime` puts it (a job asks several times)."""
    broker = broker or dramatiq.get_broker()
    for middleware in reversed(broker.middleware):
        if isinstance(middleware, RuntimeMiddleware):
            return middleware.runtime
    raise RuntimeError("no Runtime is attached to the broker; call attach_runtime() at start-up")
