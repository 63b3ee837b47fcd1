"""Alembic migrations of the store. ``syndication.store.db.migrate`` runs them."""
