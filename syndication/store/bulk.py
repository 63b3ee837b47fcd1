"""Many rows of one shape written in one statement, compiled once per dialect.

A fan-out batch writes hundreds of rows of the same shape in one statement
each. Through SQLAlchemy Core every row of an executemany is a parameter
dictionary that is processed column by column (a timestamp's conversion, a
JSON column's serializer) in Python, which was a large share of the batch's
CPU. :class:`BulkStatement` compiles its statement once per dialect into the
driver's positional form and takes the rows as tuples in its column order: a
value is converted as SQLAlchemy would convert it only where the column's type
has a conversion, once per distinct value in a call (a batch's rows share the
same few timestamps). On PostgreSQL the rows go as one array per column (its
text, :func:`_array_literal`) into one ``INSERT … SELECT FROM unnest(…)``; on
SQLite as the driver's executemany.
The statement is still run through the connection (``exec_driver_sql``), so it
is one statement to the engine's event hooks, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, String, Text, TypeDecorator, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

_Converters = list[tuple[int, Callable[[Any], Any]]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    text: str
    converters: _Converters
    positions: tuple[int, ...] | None
    arrays: bool


class BulkStatement:
    """An ``INSERT`` of ``columns`` of ``table`` for many rows at once, with
    ``on_conflict`` (given the dialect's own ``insert``) adding an ``ON CONFLICT``
    clause; run with :meth:`execute` on rows given as tuples in ``columns`` order.

    On PostgreSQL the rows go as one array per column into one ``INSERT … SELECT
    FROM unnest(…)``: one statement the server runs set-based, where an executemany
    runs the ``INSERT`` once per row. Elsewhere (SQLite, in-process) the statement
    is the driver's executemany of ``INSERT … VALUES``.

    ``raw`` names the columns whose values are passed to the driver as given (the
    caller already holds the text the column's type would write, such as a JSON
    document it rendered itself).
    """

    def __init__(self, table: Any, columns: Sequence[str], *, raw: Sequence[str] = (),
                 on_conflict: Callable[[Any], Any] | None = None) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.raw = frozenset(raw)
        self.on_conflict = on_conflict
        self._compiled: dict[str, _Compiled] = {}

    def _statement(self, dialect: str) -> Any:
        """The statement for ``dialect``: from unnested arrays on PostgreSQL, from one
        row's values elsewhere."""
        table = self.table
        if dialect == "postgresql":
            arrays = [bindparam(name, type_=postgresql.ARRAY(_element(table.c[name].type)))
                      for name in self.columns]
            rows = func.unnest(*arrays).table_valued(*self.columns).render_derived()
            statement: Any = postgresql.insert(table).from_select(
                list(self.columns), select(*(rows.c[name] for name in self.columns)))
        else:
            made = sqlite.insert(table) if dialect == "sqlite" else insert(table)
            statement = made.values(
                {name: bindparam(name, type_=table.c[name].type) for name in self.columns})
        if self.on_conflict is not None:
            if dialect not in ("postgresql", "sqlite"):
                raise ValueError(f"{table.name}: no bulk upsert for the {dialect!r} database")
            statement = self.on_conflict(statement)
        return statement.inline()

    def _for(self, dialect: Dialect) -> _Compiled:
        """The statement compiled for ``dialect`` in the driver's positional form, the
        conversion of each column that has one (by position in ``columns``) and, when
        the statement binds the columns in another order, the reordering of a row;
        built once per dialect."""
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        make_dialect: Any = type(dialect)
        positional = make_dialect(paramstyle="qmark" if dialect.paramstyle == "qmark"
                                  else "format")
        compiled = self._statement(dialect.name).compile(dialect=positional)
        bound = list(compiled.positiontup or ())
        if sorted(bound) != sorted(self.columns):
            raise ValueError(f"{self.table.name}: the compiled statement binds "
                             f"{bound}, not {self.columns}")
        positions = None if bound == list(self.columns) else tuple(
            self.columns.index(name) for name in bound)
        converters = []
        for position, name in enumerate(self.columns):
            if name in self.raw:
                continue
            column_type = self.table.c[name].type.dialect_impl(dialect)
            process = column_type.bind_processor(dialect)
            if process is not None:
                converters.append((position, process))
        found = _Compiled(compiled.string, converters, positions, dialect.name == "postgresql")
        self._compiled[dialect.name] = found
        return found

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run the statement once for all ``rows`` (nothing when there are none)."""
        if not rows:
            return
        compiled = self._for(conn.dialect)
        if compiled.arrays:
            columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
            for position, process in compiled.converters:
                columns[position] = _converted_column(columns[position], process)
            if compiled.positions is not None:
                columns = [columns[position] for position in compiled.positions]
            conn.exec_driver_sql(compiled.text, tuple(map(_array_literal, columns)))
            return
        if compiled.converters:
            rows = _converted(rows, compiled.converters)
        if compiled.positions is not None:
            order = itemgetter(*compiled.positions)
            rows = [order(row) for row in rows]
        conn.exec_driver_sql(compiled.text, list(rows))


def _array_literal(values: Sequence[Any]) -> str:
    """``values`` as the text of a PostgreSQL array, which the statement casts to the
    column's array type: each element quoted (a backslash and a double quote escaped),
    ``None`` as ``NULL``. psycopg's own dumping of a list walks it in Python at two to
    three times the cost.

    Most of a batch's columns take one of two quick ways, each a few passes in C: all
    strings (ids, names, a JSON document), joined at once and escaped only when one
    holds a quote or a backslash; or one value throughout (a batch's time, its
    request, a count of nought, a column nobody set), whose text is made once. Any
    other column is quoted element by element."""
    if not values:
        return "{}"
    try:
        text = '","'.join(values)
    except TypeError:  # not all strings: None, numbers, times
        pass
    else:
        if "\\" in text or text.count('"') != 2 * (len(values) - 1):  # not only ours
            text = '","'.join(map(_escaped, values))
        return '{"' + text + '"}'
    first = values[0]
    if values.count(first) == len(values) and len(set(map(type, values))) == 1:
        return "{" + ",".join([_element_text(first)] * len(values)) + "}"
    return "{" + ",".join(map(_element_text, values)) + "}"


def _escaped(value: str) -> str:
    """``value`` as the inside of a quoted array element."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _element_text(value: Any) -> str:
    """One array element's text: ``NULL``, or the value's text quoted."""
    if value is None:
        return "NULL"
    return '"' + _escaped(value if isinstance(value, str) else str(value)) + '"'


def _element(column_type: Any) -> Any:
    """The array element type of a column: a string column's without its length (a
    cast to ``VARCHAR(n)[]`` would cut a longer value short, where the column refuses
    it)."""
    stored = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    if isinstance(stored, String) and not isinstance(stored, Text):
        return String()
    return column_type


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


def _converted_column(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """One column's ``values`` converted, each distinct value once (a batch's column of
    times mostly holds one)."""
    first = values[0]
    if values.count(first) == len(values):
        return [process(first)] * len(values)
    return [row[0] for row in _converted([(value,) for value in values], [(0, process)])]
