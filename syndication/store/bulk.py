"""Statements compiled once per dialect and run as the driver's own ``executemany``.

A fan-out batch writes hundreds of rows of the same shape in one statement
each. Through SQLAlchemy Core every row of an executemany is a parameter
dictionary that is processed column by column (a timestamp's conversion, a
JSON column's serializer) in Python, which was a large share of the batch's
CPU. :class:`BulkStatement` compiles its statement once per dialect into the
driver's positional form and takes the rows as tuples in the statement's
column order: a value is converted as SQLAlchemy would convert it only where
the column's type has a conversion, once per distinct value in a call (a
batch's rows share the same few timestamps). The statement is still run
through the connection (``exec_driver_sql``), so it is one statement to the
engine's event hooks, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, insert
from sqlalchemy.engine import Dialect

_Converters = list[tuple[int, Callable[[Any], Any]]]
_Compiled = tuple[str, _Converters, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None]


class BulkStatement:
    """An ``INSERT`` (or an ``INSERT … ON CONFLICT``) of ``columns`` of a table, built by
    ``make`` from the dialect's name and the column values' bind parameters; run with
    :meth:`execute` on rows given as tuples in ``columns`` order.

    ``raw`` names the columns whose values are passed to the driver as given (the
    caller already holds the text the column's type would write, such as a JSON
    document it rendered itself).
    """

    def __init__(self, table: Any, columns: Sequence[str], *, raw: Sequence[str] = (),
                 make: Callable[[str, Any, dict[str, Any]], Any] | None = None) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.raw = frozenset(raw)
        self.make = make or (lambda _dialect, tbl, values: insert(tbl).values(values))
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        """The statement's text in the driver's positional form, the conversion of each
        column that has one (by position in ``columns``) and, when the statement binds
        the columns in another order, the reordering of a row, for ``dialect``; built
        once."""
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        values = {name: bindparam(name, type_=self.table.c[name].type) for name in self.columns}
        statement = self.make(dialect.name, self.table, values).inline()
        make_dialect: Any = type(dialect)
        positional = make_dialect(paramstyle="qmark" if dialect.paramstyle == "qmark"
                                   else "format")
        compiled = statement.compile(dialect=positional)
        bound = list(compiled.positiontup or ())
        if sorted(bound) != sorted(self.columns):
            raise ValueError(f"{self.table.name}: the compiled statement binds "
                             f"{bound}, not {self.columns}")
        order = None if bound == list(self.columns) else itemgetter(
            *(self.columns.index(name) for name in bound))
        converters = []
        for position, name in enumerate(self.columns):
            if name in self.raw:
                continue
            column_type = self.table.c[name].type.dialect_impl(dialect)
            process = column_type.bind_processor(dialect)
            if process is not None:
                converters.append((position, process))
        self._compiled[dialect.name] = found = (compiled.string, converters, order)
        return found

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run the statement once for all ``rows`` (nothing when there are none)."""
        if not rows:
            return
        text, converters, order = self._for(conn.dialect)
        if converters:
            rows = _converted(rows, converters)
        if order is not None:
            rows = [order(row) for row in rows]
        conn.exec_driver_sql(text, list(rows))


def _converted(rows: Sequence[tuple[Any, ...]], converters: _Converters
               ) -> list[tuple[Any, ...]]:
    """``rows`` with each converted column's values converted, each distinct value once."""
    done: list[dict[Any, Any]] = [{} for _ in converters]
    result = []
    for row in rows:
        values = list(row)
        for (position, process), seen in zip(converters, done, strict=True):
            value = values[position]
            try:
                values[position] = seen[value]
            except KeyError:
                values[position] = seen[value] = process(value)
            except TypeError:
                values[position] = process(value)
        result.append(tuple(values))
    return result
