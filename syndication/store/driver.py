"""Core statements run on the driver's own cursor, compiled once per dialect.

A transfer job runs about ten statements; SQLAlchemy's execution of a compiled,
cached Core statement still costs some 60 µs over the driver's own call (an
execution context, the parameters built and processed, a result object and its
rows), several times the SQL itself on SQLite. :class:`DriverStatement` does
that work once: per dialect and set of parameter names it keeps the SQL text,
where each parameter comes from (the caller, or a value fixed in the
statement) and the type processors SQLAlchemy itself would apply to each
parameter and each result column. A call then builds the parameters, runs
the driver's cursor (one kept per driver connection; psycopg gets the SQL as
bytes, so it neither encodes nor hashes the text again) and maps the rows to
named tuples.

It runs inside the caller's :class:`~sqlalchemy.engine.Connection`: the same
pool checkout and the same transaction (the driver's own, which the
connection begins and commits as usual), so ``begin``, ``commit`` and
``checkout`` events still fire once each, and the engine's
``before_cursor_execute`` and ``after_cursor_execute`` listeners see each
statement as through SQLAlchemy (with no execution context). A driver error
is handed to the connection's own error handling, so it is raised as SQLAlchemy's
:class:`~sqlalchemy.exc.DBAPIError`, and a lost connection invalidates the pool
exactly as through :meth:`~sqlalchemy.engine.Connection.execute`.

Only statements whose meaning needs nothing at run time are accepted: no
column default computed in Python (give every column an insert or update
sets) and no expanding ``IN`` parameter. Such a statement is refused when it
is first compiled, with the statement and the reason.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

_CURSOR = "syndication.driver_cursor"
"""The key of a connection's own cursor in its pool record's ``info``: one cursor per
driver connection, made on its first statement and kept while that connection lives."""


class _Given:
    """A parameter's placeholder while compiling: the value the caller gives by ``key``."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


@dataclass(frozen=True, slots=True)
class DriverResult:
    """What a statement did: the rows it returned (named tuples) and the rows it changed."""

    rows: list[Any]
    rowcount: int

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    wire: str | bytes
    positional: bool
    names: tuple[str, ...]
    given: tuple[str | None, ...]
    fixed: tuple[Any, ...]
    processors: tuple[Processor, ...]
    columns: tuple[tuple[str, Any], ...]
    returns_rows: bool

    def parameters(self, params: Mapping[str, Any]) -> Any:
        """The driver's parameters for the caller's ``params``, each processed as
        SQLAlchemy would (``None`` included: a type may store it as something else)."""
        values = [
            fixed if key is None else params[key] if process is None else process(params[key])
            for key, fixed, process in zip(self.given, self.fixed, self.processors, strict=True)
        ]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


class _Rows:
    """The row class and result processors of a statement's columns, made from the first
    cursor that returned them (a processor may depend on the driver's column type)."""

    __slots__ = ("make", "processed")

    def __init__(self, columns: Sequence[tuple[str, Any]], dialect: Dialect,
                 description: Sequence[Any]) -> None:
        row_class: Any = namedtuple("DriverRow", [name for name, _ in columns])  # type: ignore[misc]  # noqa: PYI024
        self.make = row_class._make
        processors = (
            type_.dialect_impl(dialect).result_processor(dialect, described[1])
            for (_, type_), described in zip(columns, description, strict=True)
        )
        self.processed = tuple((index, process) for index, process in enumerate(processors)
                               if process is not None)

    def rows(self, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        if not self.processed:
            return [self.make(row) for row in fetched]
        made = []
        for row in fetched:
            values = list(row)
            for index, process in self.processed:
                values[index] = process(values[index])
            made.append(self.make(values))
        return made


class DriverStatement:
    """A Core ``statement`` run with :meth:`execute` on the driver's cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._rows: dict[tuple[str, tuple[str, ...]], _Rows] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DriverStatement({str(self.statement)[:80]!r})"

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> DriverResult:
        """Run the statement with ``params`` in ``conn``'s transaction."""
        dialect = conn.dialect
        key = (dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compile(dialect, key)
        parameters = compiled.parameters(params)
        proxied = conn.connection
        dbapi_connection = proxied.dbapi_connection
        assert dbapi_connection is not None, "the connection is checked out"
        kept = proxied.info.get(_CURSOR)
        if kept is not None and kept[0] is dbapi_connection:
            cursor = kept[1]
        else:
            cursor = dbapi_connection.cursor()
            proxied.info[_CURSOR] = (dbapi_connection, cursor)
        sql: Any = compiled.wire
        try:
            events = conn.dispatch
            if events.before_cursor_execute or events.after_cursor_execute:
                sql = compiled.sql
                for listener in events.before_cursor_execute:
                    sql, parameters = listener(conn, cursor, sql, parameters, None, False)
                cursor.execute(sql, parameters)
                for listener in events.after_cursor_execute:
                    listener(conn, cursor, sql, parameters, None, False)
            else:
                cursor.execute(sql, parameters)
            fetched = cursor.fetchall() if compiled.returns_rows else ()
            rowcount = cursor.rowcount
            rows = self._mapped(key, compiled, dialect, cursor, fetched) if fetched else []
        except dialect.loaded_dbapi.Error as exc:
            proxied.info.pop(_CURSOR, None)
            conn._handle_dbapi_exception(exc, compiled.sql, parameters, cursor, None)
            raise  # pragma: no cover - the handler always raises
        return DriverResult(rows, rowcount)

    def _mapped(self, key: tuple[str, tuple[str, ...]], compiled: _Compiled, dialect: Dialect,
                cursor: Any, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows.setdefault(key, _Rows(compiled.columns, dialect,
                                                    cursor.description))
        return rows.rows(fetched)

    def _compile(self, dialect: Dialect, key: tuple[str, tuple[str, ...]]) -> _Compiled:
        keys = key[1]
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect,
                                                            column_keys=sorted(keys)))
        sql = compiled.string
        computed = [*getattr(compiled, "insert_prefetch", ()),
                    *getattr(compiled, "update_prefetch", ())]
        if computed:
            raise ValueError(
                f"{self!r}: columns {', '.join(c.name for c in computed)} would take a "
                f"default computed in Python; give them")
        if "POSTCOMPILE" in sql:
            raise ValueError(f"{self!r}: an expanding IN parameter cannot be run on the "
                             f"driver; write the values out")
        placeholders = dict(compiled.construct_params({name: _Given(name) for name in keys}))
        positional = compiled.positiontup is not None
        names = tuple(compiled.positiontup or ()) if positional else tuple(placeholders)
        given: list[str | None] = []
        fixed: list[Any] = []
        processors: list[Processor] = []
        for name in names:
            value = placeholders[name]
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if isinstance(value, _Given):
                given.append(value.key)
                fixed.append(None)
                processors.append(process)
            else:
                given.append(None)
                fixed.append(process(value) if process is not None else value)
                processors.append(None)
        columns = tuple((column.key, column.type)
                        for column in getattr(self.statement, "exported_columns", ()))
        wire = sql.encode() if dialect.driver == "psycopg" else sql
        made = _Compiled(sql, wire, positional, names, tuple(given), tuple(fixed),
                         tuple(processors), columns, bool(columns))
        with self._lock:
            return self._compiled.setdefault(key, made)
