"""The store: tables, engines, migrations and the queries the worker needs."""

from syndication.store.db import make_engine, migrate, session_scope

__all__ = ["make_engine", "migrate", "session_scope"]
