"""dramatiq entry point: ``dramatiq worker`` (or ``syndication worker``) loads the actors from here.

The broker and the runtime (store, transports) are built from the environment;
:func:`~syndication.broker.setup_broker` then declares the actors on that
broker, as dramatiq requires. The store is migrated only with
``SYNDICATION_MIGRATE_ON_START=1``; otherwise a store that is behind stops the
worker with the message naming ``syndication migrate``.
"""

from syndication.broker import setup_broker
from syndication.logs import configure
from syndication.runtime import Runtime
from syndication.settings import Settings

settings = Settings.from_env()
configure(settings.log_level, settings.log_format)
broker = setup_broker(
    settings, Runtime.from_settings(settings, migrate_store=settings.migrate_on_start)
)
