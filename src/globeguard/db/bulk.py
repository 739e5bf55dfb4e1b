"""Many rows at the driver's speed, and statements sent together.

SQLAlchemy's executemany path builds a parameter dict per row and runs every value through
its bind processing, with per-row bookkeeping around it. For the bulk paths (tens of thousands
of login events, their rollups, demo users) that bookkeeping cost more than the database's own
work. So a statement is compiled once per dialect and its rows go to the driver as positional
values in its own types:

- `DriverRows` (the bulk path's INSERTs and upserts): rows are taken apart and put back
  together by C loops (itemgetter, zip), each conversion is mapped over its column (once for
  a column that holds one value, a batch's `received_at`), and SQLite's text for a UTC
  datetime is cut from its ISO form (SQLAlchemy's way, `as_utc(...).replace(...).isoformat()`,
  took ~3 µs a value, the most of any column). PostgreSQL gets the whole batch as one JSON
  text and one execution (`json_rows_source` says why not an array per column). The values
  sent are those SQLAlchemy's conversions give, or store as those do (a test holds the two
  together).
- `BulkInsert`: a `DriverRows` for a plain INSERT of some columns.
- `run_steps`: writes whose results nobody reads (a batch's INSERT, its rollup upserts), in
  order, in the session's transaction. On the SQLite writer they ride along with the next
  statement's hop to its thread (each hop is a thread switch and a turn of the event loop,
  ~0.1-0.3 ms on a busy loop: a `POST /v1/` group made twenty); elsewhere one after another.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Boolean, Float, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.base import UtcDateTime
from globeguard.db.sqlite_writer import Step, ThreadedConnection

Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Driven:
    sql: str
    # The parameters in the order the driver takes them.
    names: tuple[str, ...]
    take: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    # (position in the row tuple, conversion), for the columns that have one.
    converters: tuple[tuple[int, Converter], ...]
    # One execution with the rows as one JSON text (PostgreSQL), not one per row.
    as_json: bool = False


class DriverRows:
    """The statement `build(dialect)` makes (its parameters named after `table`'s columns),
    run for rows given as mappings that hold every parameter. Columns in `raw` are sent as
    they are (a JSON column given its text)."""

    def __init__(
        self,
        table: Table,
        build: Callable[[Dialect], Any],
        raw: Collection[str] = (),
        *,
        arrays: bool = True,
    ) -> None:
        self.table = table
        self.build = build
        self.raw = frozenset(raw)
        # False: one execution per row on PostgreSQL too.
        self.arrays = arrays
        self._compiled: dict[str, _Driven] = {}

    def values(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's parameters, in the driver's order and types."""
        return list(zip(*self.columns(dialect, rows), strict=True))

    def columns(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """`values` as one sequence per parameter: the rows are taken apart and put back
        together by C loops, and each conversion is mapped over its column."""
        compiled = self._for(dialect)
        columns: list[Any] = list(zip(*map(compiled.take, rows), strict=True))
        for at, convert in compiled.converters:
            columns[at] = _converted(convert, columns[at])
        return columns

    def step(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> Step:
        """The statement and its parameters as the driver takes them (rows must not be
        empty): one execution of the rows as JSON on PostgreSQL, an executemany elsewhere."""
        compiled = self._for(dialect)
        if compiled.as_json:
            return compiled.sql, (json_rows(self.values(dialect, rows)),), False
        return compiled.sql, self.values(dialect, rows), True

    async def run(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            connection = await session.connection()
            await run_steps(session, [self.step(connection.dialect, rows)])

    def _for(self, dialect: Dialect) -> _Driven:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Driven:
        compiled = self.build(dialect).compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        unknown = [name for name in names if name not in self.table.c]
        if unknown:
            raise ValueError(f"{self.table.name}: parameters {unknown} are not columns")
        converters = []
        for at, name in enumerate(names):
            convert = None if name in self.raw else _converter(self.table, name, dialect)
            if convert is not None:
                converters.append((at, convert))
        take = itemgetter(*names)
        if len(names) == 1:
            single = take
            take = lambda row: (single(row),)  # type: ignore[assignment]  # noqa: E731 - one name: no tuple
        sql, as_json = str(compiled), self.arrays and dialect.name == "postgresql"
        if as_json:
            head, _, tail = _split_values(sql)
            sql = f"{head}{json_rows_source(self.table, names, dialect)}{tail}"
        return _Driven(sql, names, take, tuple(converters), as_json)


def _converted(convert: Converter, column: Sequence[Any]) -> Sequence[Any]:
    first = column[0]
    if all(value is first for value in column):  # the batch's received_at
        return (convert(first),) * len(column)
    return list(map(convert, column))


def json_rows_source(table: Table, names: Sequence[str], dialect: Dialect) -> str:
    """PostgreSQL: the rows of one JSON parameter ($1, an array of arrays), each value cast
    to its column's type (`table`'s columns `names`, in the rows' order), in the array's
    order: the source of
    an `INSERT ... SELECT` that takes a whole batch in one execution and one round trip,
    where executemany binds, executes and encodes row after row.

    Not an array per column (unnest): asyncpg checks each array element against abstract
    base classes, ~1 µs a value on the event loop, ~240 values a `POST /v1/` event with its
    rollups; orjson writes the rows in C and PostgreSQL reads them in C."""
    # Built from our column type names: nothing from a caller.
    values = ", ".join(
        f"CAST(e.v->>{at} AS {_pg_type(table, name, dialect)})" for at, name in enumerate(names)
    )
    return (
        f"SELECT {values} FROM jsonb_array_elements(CAST($1 AS JSONB))"  # noqa: S608
        " WITH ORDINALITY AS e(v, n) ORDER BY e.n"
    )


def json_rows(rows: Sequence[Sequence[Any]]) -> str:
    """The parameter of a `json_rows_source` statement: times (a naive one as UTC), days
    and uuids as their ISO and hex-with-dashes texts, which their types' casts read back
    exactly. A non-finite float would be written as null (orjson's JSON has none): the
    batches hold coordinates, distances and speeds over at least a second, all finite."""
    return orjson.dumps(rows, default=_uuid_text, option=orjson.OPT_NAIVE_UTC).decode()


def _uuid_text(value: Any) -> str:
    """A uuid orjson does not know as one: asyncpg's own, read back from a row."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON row value")


def _split_values(sql: str) -> tuple[str, str, str]:
    """(before, the VALUES group, after) of a compiled single-row INSERT."""
    start = sql.index("VALUES (")
    depth, end = 0, start + len("VALUES ")
    for end in range(start + len("VALUES "), len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            break
    return sql[:start], sql[start : end + 1], sql[end + 1 :]


def _pg_type(table: Table, name: str, dialect: Dialect) -> str:
    column = table.c[name]
    column_type = column.type
    if column_type._isnull and column.foreign_keys:  # a foreign key takes its target's type
        column_type = next(iter(column.foreign_keys)).column.type
    return str(column_type.compile(dialect=dialect))


def _converter(table: Table, name: str, dialect: Dialect) -> Converter | None:
    column_type = table.c[name].type
    convert: Converter | None = column_type.dialect_impl(dialect).bind_processor(dialect)
    if convert is None or dialect.name != "sqlite":
        return convert
    if isinstance(column_type, UtcDateTime):
        return _sqlite_time(convert)
    if isinstance(column_type, Boolean | Float):
        # int(True) and float(52) store as the values themselves do: sqlite3 binds a bool
        # as the integer, and a FLOAT column (REAL affinity) stores an integer as a real.
        return None
    return convert


def _sqlite_time(general: Converter) -> Converter:
    """UtcDateTime's SQLite text, "2024-03-01 12:00:00.000000": for a datetime already in
    UTC, its ISO text without the "+00:00"."""

    def convert(value: datetime | None) -> Any:
        if value is not None and value.tzinfo is UTC:
            return value.isoformat(" ", "microseconds")[:-6]
        return general(value)

    return convert


async def run_steps(session: AsyncSession, steps: Sequence[Step]) -> None:
    """Writes whose results nobody reads, in order, in the session's transaction. On the
    SQLite writer they are deferred to ride along with the transaction's next statement or
    its COMMIT (see `ThreadedConnection.defer`), costing no hop of their own; elsewhere they
    run now, one after another."""
    if not steps:
        return
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).dbapi_connection
    if isinstance(raw, ThreadedConnection):
        raw.defer(steps)
        return
    for sql, parameters, _many in steps:
        await connection.exec_driver_sql(sql, parameters)


class BulkInsert(DriverRows):
    """INSERT INTO `table` (`columns`) for rows given as mappings holding every column, one
    execution per row on PostgreSQL too (its callers' tables, users' among them, hold enum
    and JSON columns that were never tried as arrays)."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        named = tuple(columns)
        super().__init__(table, lambda _dialect: _insert_of(table, named), arrays=False)

    def tuples(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return self.values(dialect, rows)


def _insert_of(table: Table, columns: Sequence[str]) -> Any:
    return insert(table).values(
        {name: bindparam(name, type_=table.c[name].type) for name in columns}
    )
