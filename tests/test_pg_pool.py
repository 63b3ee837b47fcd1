"""The pool behind ``postgres_engine``: every database handed out is a fresh copy of the
template and the caller's alone, and every one the pool made is dropped at the end."""

from __future__ import annotations

from pg_pool import DatabasePool
from sqlalchemy import inspect, text

from syndication.store.db import make_engine
from syndication.store.schema import schema_state


def _tables(url: str) -> tuple[list[str], str | None]:
    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names()), schema_state(engine).current
    finally:
        engine.dispose()


def test_each_database_is_a_fresh_copy_and_all_are_dropped_at_the_end(
    postgres_admin_url: str, postgres_template: str
) -> None:
    pool = DatabasePool(postgres_admin_url, postgres_template, ahead=2)
    expected = _tables(pool.url(postgres_template))
    assert expected[1] is not None and "listing" in expected[0], expected

    first = pool.take()
    assert _tables(pool.url(first)) == expected
    engine = make_engine(pool.url(first))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE scribble (x integer)"))
    engine.dispose()
    pool.give_back(first)

    second = pool.take()
    assert second != first
    assert _tables(pool.url(second)) == expected
    pool.give_back(second)
    pool.close()

    assert first in pool.made and second in pool.made and len(pool.made) >= 3
    admin = make_engine(postgres_admin_url)
    try:
        with admin.connect() as conn:
            left = conn.execute(text("SELECT datname FROM pg_database WHERE datname = ANY(:n)"),
                                {"n": pool.made}).scalars().all()
    finally:
        admin.dispose()
    assert left == [], "the pool left databases behind"
