"""Configuration, read once from the environment and passed down.

No other module reads ``os.environ``: the CLI builds a :class:`Settings` at
start-up with :meth:`Settings.from_env` and hands it to whatever needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Everything the worker can be configured with.

    * ``database_url`` — SQLAlchemy URL; default a SQLite file in the working folder.
    * ``broker_url`` — ``None`` for the in-process broker, ``redis://…`` for Redis.
    * ``marketplaces_file`` — TOML with endpoints, credentials (as names of
      environment variables) and error contacts; ``None`` delivers to the outbox.
    * ``outbox`` — the folder of the file-drop transport.
    * ``media_dir`` — where the photo module stores images.
    * ``media_base_url`` — public address the stored images are served from; unset
      gives ``file://`` addresses (fine for the sandbox).
    * ``worker_threads``, ``heartbeat_timeout_ms``, ``max_retries``, ``min_backoff_ms``,
      ``max_worker_deaths``, ``confirm_delay_ms`` — the queue's policy (see ``syndication.broker``).
    * ``marketplace_concurrency`` — ``SYNDICATION_MARKETPLACE_CONCURRENCY``: how many of a
      worker process's threads may work for one marketplace at once (default 0: half of
      ``worker_threads``, at least 1); a job over the limit is put back for
      ``bulkhead_delay_ms`` (default 500) without counting as a try (see
      ``syndication.bulkheads``). Under the concurrent worker (``syndication worker``) it
      bounds the transfers in flight per marketplace instead: default half of
      ``concurrency``.
    * ``final_price_concurrency`` — ``SYNDICATION_FINAL_PRICE_CONCURRENCY``: how many
      final-price deliveries a worker process has in flight to Hemnet at once, across
      all its batches (default 64: at 30 ms a call that is about 2,000 listings/s at
      most, room for the 800/s the nightly run needs when the event loop that sends them
      waits its turn for the interpreter behind the batches' threads; see
      ``syndication.final_price_delivery``). Must be positive.
    * ``concurrency`` — ``SYNDICATION_CONCURRENCY`` (default 256): how many messages of
      ``async def`` actors one worker process keeps in flight (``syndication.concurrent``).
    * ``step_threads`` — ``SYNDICATION_STEP_THREADS``: the threads of a concurrent
      worker process that run its jobs' store steps and settle their messages
      (``syndication.concurrent``); default 0, by the store: 2 on SQLite (a local file,
      no round trips to overlap) and 6 on PostgreSQL (enough to overlap its round
      trips). Few, because a process bound by the interpreter's lock gains nothing from
      more (:attr:`steps_in_force`). Must not be negative.
    * ``after_death_in_flight`` — ``SYNDICATION_AFTER_DEATH_IN_FLIGHT`` (default 4): how
      many transfers whose earlier start died with its worker one concurrent worker
      process runs at once (``syndication.transfer.concurrent_job``). Must be positive.
    * ``circuit_threshold``, ``circuit_cooldown_ms`` — ``SYNDICATION_CIRCUIT_THRESHOLD``
      (default 5) failures in a row open a marketplace's circuit for
      ``SYNDICATION_CIRCUIT_COOLDOWN_MS`` (default 30 s) before one probe is let through
      (see ``syndication.circuit``).
    * ``fan_out_lease_ms`` — ``SYNDICATION_FAN_OUT_LEASE_MS``: how long a fan-out stays its
      process's after its last batch; then a worker's relay takes it over and finishes it
      (see ``syndication.transfer.request``).
    * ``migrate_on_start`` — ``SYNDICATION_MIGRATE_ON_START``: the worker and the scheduler
      migrate the store on start (as their ``--migrate`` does); off, they refuse a store
      that is behind. Other commands ignore it: writing ones migrate, reading ones never do.
    * ``token_hours`` — ``SYNDICATION_TOKEN_HOURS``: how long an API session token lives
      (default 8, a working day; see ``syndication.tokens``). Must be positive.
    * ``reconcile_time`` — ``SYNDICATION_RECONCILE_TIME`` (HH:MM): the nightly
      reconciliation (R13); unset, an hour after ``final_price_time``.
    * ``mass_delete_share``, ``mass_delete_min`` — ``SYNDICATION_MASS_DELETE_SHARE``
      (default 0.2) and ``SYNDICATION_MASS_DELETE_MIN`` (default 5): one ingest or
      transfer that would remove more than that share of an office's published
      listings from a marketplace, and at least that many, is held (R15,
      ``syndication.holds``).
    * ``environ`` — the environment the settings were read from; transports look up
      credentials in it by the names the marketplaces file gives.
    """

    database_url: str = "sqlite:///syndication.db"
    broker_url: str | None = None
    marketplaces_file: Path | None = None
    outbox: Path = Path("outbox")
    media_dir: Path = Path("media")
    media_base_url: str | None = None
    photo_portal_url: str | None = None
    schedule_timezone: str = "Europe/Stockholm"
    final_price_time: str = "02:00"
    photos_interval_minutes: int = 15
    log_format: str = "console"
    log_level: str = "INFO"
    worker_threads: int = 8
    heartbeat_timeout_ms: int = 60_000
    max_retries: int = 5
    min_backoff_ms: int = 5_000
    max_worker_deaths: int = 3
    confirm_delay_ms: int = 60_000
    marketplace_concurrency: int = 0
    concurrency: int = 256
    step_threads: int = 0
    after_death_in_flight: int = 4
    bulkhead_delay_ms: int = 500
    final_price_concurrency: int = 64
    circuit_threshold: int = 5
    circuit_cooldown_ms: int = 30_000
    fan_out_lease_ms: int = 30_000
    migrate_on_start: bool = False
    token_hours: int = 8
    reconcile_time: str | None = None
    mass_delete_share: float = 0.2
    mass_delete_min: int = 5
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def marketplace_threads(self) -> int:
        """The concurrency limit per marketplace and process that is in force."""
        if self.marketplace_concurrency > 0:
            return self.marketplace_concurrency
        return max(1, self.worker_threads // 2)

    @property
    def steps_in_force(self) -> int:
        """The step threads of a concurrent worker process: ``step_threads``, or by the
        store when it is 0 (2 on SQLite, 6 on any other)."""
        if self.step_threads > 0:
            return self.step_threads
        return 2 if self.database_url.startswith("sqlite") else 6

    @property
    def marketplace_in_flight(self) -> int:
        """The limit per marketplace and process under the concurrent worker."""
        if self.marketplace_concurrency > 0:
            return self.marketplace_concurrency
        return max(1, self.concurrency // 2)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ``SYNDICATION_*`` variables; unset ones keep their defaults."""
        env = dict(os.environ if environ is None else environ)
        defaults = cls()
        marketplaces = env.get("SYNDICATION_MARKETPLACES")
        return cls(
            database_url=env.get("SYNDICATION_DATABASE_URL") or defaults.database_url,
            broker_url=env.get("SYNDICATION_BROKER_URL") or None,
            marketplaces_file=Path(marketplaces) if marketplaces else None,
            outbox=Path(env.get("SYNDICATION_OUTBOX") or defaults.outbox),
            media_dir=Path(env.get("SYNDICATION_MEDIA_DIR") or defaults.media_dir),
            media_base_url=env.get("SYNDICATION_MEDIA_BASE_URL") or None,
            photo_portal_url=env.get("SYNDICATION_PHOTO_PORTAL_URL") or None,
            schedule_timezone=env.get("SYNDICATION_TIMEZONE") or defaults.schedule_timezone,
            final_price_time=env.get("SYNDICATION_FINAL_PRICE_TIME") or defaults.final_price_time,
            photos_interval_minutes=int(
                env.get("SYNDICATION_PHOTOS_INTERVAL_MINUTES") or defaults.photos_interval_minutes
            ),
            log_format=env.get("SYNDICATION_LOG_FORMAT") or defaults.log_format,
            log_level=env.get("SYNDICATION_LOG_LEVEL") or defaults.log_level,
            worker_threads=_int(env, "SYNDICATION_WORKER_THREADS", defaults.worker_threads),
            heartbeat_timeout_ms=_int(
                env, "SYNDICATION_HEARTBEAT_MS", defaults.heartbeat_timeout_ms
            ),
            max_retries=_int(env, "SYNDICATION_MAX_RETRIES", defaults.max_retries),
            min_backoff_ms=_int(env, "SYNDICATION_MIN_BACKOFF_MS", defaults.min_backoff_ms),
            max_worker_deaths=_int(
                env, "SYNDICATION_MAX_WORKER_DEATHS", defaults.max_worker_deaths
            ),
            confirm_delay_ms=_int(env, "SYNDICATION_CONFIRM_DELAY_MS", defaults.confirm_delay_ms),
            marketplace_concurrency=_int(
                env, "SYNDICATION_MARKETPLACE_CONCURRENCY", defaults.marketplace_concurrency
            ),
            concurrency=_positive(env, "SYNDICATION_CONCURRENCY", defaults.concurrency),
            step_threads=_not_negative(env, "SYNDICATION_STEP_THREADS",
                                       defaults.step_threads),
            after_death_in_flight=_positive(
                env, "SYNDICATION_AFTER_DEATH_IN_FLIGHT", defaults.after_death_in_flight
            ),
            bulkhead_delay_ms=_positive(
                env, "SYNDICATION_BULKHEAD_DELAY_MS", defaults.bulkhead_delay_ms
            ),
            final_price_concurrency=_positive(
                env, "SYNDICATION_FINAL_PRICE_CONCURRENCY", defaults.final_price_concurrency
            ),
            circuit_threshold=_positive(
                env, "SYNDICATION_CIRCUIT_THRESHOLD", defaults.circuit_threshold
            ),
            circuit_cooldown_ms=_positive(
                env, "SYNDICATION_CIRCUIT_COOLDOWN_MS", defaults.circuit_cooldown_ms
            ),
            fan_out_lease_ms=_positive(
                env, "SYNDICATION_FAN_OUT_LEASE_MS", defaults.fan_out_lease_ms
            ),
            migrate_on_start=_flag(env, "SYNDICATION_MIGRATE_ON_START", defaults.migrate_on_start),
            token_hours=_positive(env, "SYNDICATION_TOKEN_HOURS", defaults.token_hours),
            reconcile_time=env.get("SYNDICATION_RECONCILE_TIME") or None,
            mass_delete_share=_share(env, "SYNDICATION_MASS_DELETE_SHARE",
                                     defaults.mass_delete_share),
            mass_delete_min=_positive(env, "SYNDICATION_MASS_DELETE_MIN",
                                      defaults.mass_delete_min),
            environ=env,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer variable; a malformed value is a configuration error naming it."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        from syndication.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be an integer, not {raw!r}") from None


def _not_negative(env: Mapping[str, str], name: str, default: int) -> int:
    """A variable of zero or more; less is a configuration error naming it."""
    value = _int(env, name, default)
    if value < 0:
        from syndication.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be zero or more, not {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer variable; zero or less is a configuration error naming it."""
    value = _int(env, name, default)
    if value <= 0:
        from syndication.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a positive integer, not {value}")
    return value


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    """A share between 0 (exclusive) and 1 (inclusive); anything else names the variable."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        from syndication.errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a share above 0 and at most 1 (0.2 is 20 %), "
                                 f"not {raw!r}")
    return value


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable (1/true/yes/on, 0/false/no/off); anything else names it."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    from syndication.errors import ConfigurationError

    raise ConfigurationError(f"{name} must be one of 1/true/yes/on or 0/false/no/off, not {raw!r}")
